"""How often the old rule's hard distractors contain the final answer (issue 20, item 8).

    python benchmarks/hard_distractors.py                      # 300 chunks of ../shared/data/docs
    python benchmarks/hard_distractors.py --limit 0 --chunk-overlap 32

1. ``raft.generate`` (``distractor_strategy=hard``) on ../shared/data/docs with the local fake teacher
   (``raft.testing.TeacherServer``: "Which words follow «phrase»?", answered with the next three
   words, quoted from the oracle), the tiny model's tokenizer, as benchmarks/learning_check.py does.
2. For every question that got a final answer (accepted rows, and rows rejected as
   ``answer_in_distractors``), the distractors the old rule would have shown are recomputed: the top
   BM25 candidates of the oracle chunk, only the chunk itself and its text left out
   (``HardDistractors.raw``). Counted: rows with at least one such distractor that contains the
   final answer (``raft.kinds.raft.samples.contains_answer``), distractors that contain it, and distractors that
   overlap the oracle's text (a shared run of words, or the next/previous chunk with chunk_overlap).
3. The run's own counts (``hard_skipped_overlap`` / ``hard_skipped_answer``) are printed beside them.

Writes benchmarks/results/hard_distractors.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from common import RESULTS, SHARED_DOCS, machine, write_result

from raft.config import load_config
from raft.kinds.raft.distractors import HARD_EXTRA  # the candidates the run draws from


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=300, help="chunks to ask about (0: all)")
    ap.add_argument("--chunk-size", type=int, default=128)
    ap.add_argument("--chunk-overlap", type=int, default=0)
    ap.add_argument("--distractors", type=int, default=3)
    ap.add_argument("--output", default=str(RESULTS / "hard_distractors.json"))
    args = ap.parse_args()

    from raft import generate
    from raft.kinds.raft.samples import HardDistractors, contains_answer, parse_answer, shares_text
    from raft.testing import TeacherServer, build_tiny_model

    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tiny_model(Path(tmp) / "tiny")
        out = Path(tmp) / "run"
        with TeacherServer() as teacher:
            cfg = [
                "recipe=docs", f"input={SHARED_DOCS}", f"output={out}", f"tokenizer={tokenizer}",
                f"chunk_size={args.chunk_size}", f"chunk_overlap={args.chunk_overlap}", "min_chunk_tokens=16",
                "distractor_strategy=hard", f"distractors={args.distractors}", f"teacher.base_url={teacher.base_url}",
                "teacher.model=fake-teacher", "teacher.concurrency=16", "p=1",
            ]
            if args.limit:
                cfg.append(f"limit={args.limit}")
            result = generate.main(load_config("generate", cfg), progress=False)
        pool = [json.loads(line) for line in (out / "chunks.jsonl").read_text().splitlines()]
        texts = [c["text"] for c in pool]
        index = {c["id"]: i for i, c in enumerate(pool)}
        answered: list[tuple[int, str]] = []  # (oracle chunk, final answer)
        for split in ("train", "test"):
            for line in (out / f"{split}.jsonl").read_text().splitlines():
                row = json.loads(line)
                answered.append((index[row["chunk_id"]], row["final_answer"]))
        for line in (out / "rejects.jsonl").read_text().splitlines():
            rej = json.loads(line)
            if rej["reason"] == "answer_in_distractors":
                answered.append((index[rej["chunk_id"]], parse_answer(rej["reply"])[0]))
        work = result["chunks"]
        old = HardDistractors(texts, list(range(work)), args.distractors + 1 + HARD_EXTRA)

        def neighbour(i: int, j: int) -> bool:
            return args.chunk_overlap > 0 and pool[i]["source"] == pool[j]["source"] and abs(i - j) == 1

        rows_with, shown, with_answer, overlapping = 0, 0, 0, 0
        for oracle, final in answered:
            picks = old.raw[oracle][: args.distractors]  # what the old rule showed next to the oracle (p = 1)
            hits = [j for j in picks if contains_answer(texts[j], final)]
            rows_with += bool(hits)
            shown += len(picks)
            with_answer += len(hits)
            overlapping += sum(shares_text(texts[oracle], texts[j]) or neighbour(oracle, j) for j in picks)
    n = len(answered)
    figures = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
        "command": "python benchmarks/hard_distractors.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "output"),
        "chunks_asked": work,
        "chunk_pool": len(texts),
        "questions_with_answer": n,
        "old_rule_rows_with_answer_in_a_distractor": rows_with,
        "old_rule_rows_share": round(rows_with / max(n, 1), 4),
        "old_rule_distractors_shown": shown,
        "old_rule_distractors_with_answer": with_answer,
        "old_rule_distractors_with_answer_share": round(with_answer / max(shown, 1), 4),
        "old_rule_distractors_overlapping_oracle": overlapping,
        "run_accepted": result["accepted"],
        "run_rejected": result["rejected"],
        "run_hard_skipped_overlap": result["hard_skipped_overlap"],
        "run_hard_skipped_answer": result["hard_skipped_answer"],
        "wall_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures, indent=2))
    print(f"old rule: {rows_with} of {n} questions ({100 * rows_with / max(n, 1):.1f}%) had a hard distractor holding the "
          f"final answer ({with_answer} of {shown} distractors, {100 * with_answer / max(shown, 1):.1f}%)")
    write_result(figures, args.output)


if __name__ == "__main__":
    main()
