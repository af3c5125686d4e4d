"""Long-context rows from stored replies: how long building 1,000 rows takes once the labels / QA pairs
are known (no teacher), for kind=in2 at 32k tokens and kind=bio_needle at 16k.

    python benchmarks/long_context.py                 # tiny tokenizer, shared biographies as the corpus
    python benchmarks/long_context.py --rows 200      # fewer rows

Each segment / biography is tokenized once (raft.long_context.haystack); per row only the chat template around the
context and a few hundred characters at its edges are counted (PromptTokens.measure), and the rows are
checked against a full tokenization of a sample. Prints the figures and writes benchmarks/results/long_context.json.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import date
from pathlib import Path

from common import REPO, RESULTS, machine, write_result

from raft.config import load_config
from raft.kinds import make_kind

RESULT = RESULTS / "long_context.json"
BIOS = REPO.parent / "shared" / "data" / "bio_haystack" / "train_needles_5000.jsonl"


def timed_rows(kind, rows: int, build) -> tuple[float, list[dict]]:
    t0 = time.perf_counter()
    out = [build(i) for i in range(rows)]
    return time.perf_counter() - t0, out


def check(kind, rows: list[dict], sample: int = 20) -> int:
    """Rows whose recorded length differs from a full tokenization of the prompt (should be 0)."""
    bad = 0
    for r in rows[:sample]:
        if r is not None and kind.prompt.count(kind.prompt.render(r["prompt"][0]["content"])) != r["context_tokens"]:
            bad += 1
    return bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows per kind")
    parser.add_argument("--output", default=str(RESULT), help="where the JSON goes ('' to write nothing)")
    args = parser.parse_args()
    from raft.testing import build_tiny_model

    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_model(Path(tmp) / "tiny")
        corpus = Path(tmp) / "bios.jsonl"  # the biographies as documents for IN2's segments
        people = [json.loads(line) for line in BIOS.open()]
        corpus.write_text("".join(json.dumps({"title": p["name"], "text": p["bio"]}) + "\n" for p in people))

        cfg = load_config("generate", ["recipe=in2", f"input={corpus}", f"tokenizer={tiny}", "in2.eval_sets=[]",
                                       "in2.min_tokens=32768", "in2.max_tokens=32768", "in2.short_share=0"])
        t0 = time.perf_counter()
        kind = make_kind(cfg, str(corpus))
        kind.load()
        kind.prepare(args.rows)
        setup = time.perf_counter() - t0
        seconds, rows = timed_rows(kind, args.rows, lambda i: kind.build_row(
            f"{i:07d}", kind.groups[i], "Which words follow the phrase in the text?", "three short words", random.Random(i)))
        figures["in2"] = {"rows": args.rows, "target_tokens": 32768, "setup_s": round(setup, 2), "rows_s": round(seconds, 2),
                          "ms_per_row": round(1000 * seconds / args.rows, 2), "segments": len(kind.segments),
                          "length_mismatches_in_20": check(kind, rows)}

        cfg = load_config("generate", ["recipe=bio_needle", f"input={BIOS}", f"tokenizer={tiny}", "bio_needle.eval_people=0",
                                       "bio_needle.train_lengths=[16384]"])
        t0 = time.perf_counter()
        kind = make_kind(cfg, str(BIOS))
        kind.load()
        kind.prepare(args.rows)
        setup = time.perf_counter() - t0
        label = people[0]["json"]
        seconds, rows = timed_rows(kind, args.rows, lambda i: kind.build_row(
            f"train/{i:06d}/000", kind.needles[i][1], label, 16384, random.Random(i).random(), random.Random(i)))
        figures["bio_needle"] = {"rows": args.rows, "target_tokens": 16384, "setup_s": round(setup, 2), "rows_s": round(seconds, 2),
                                 "ms_per_row": round(1000 * seconds / args.rows, 2), "biographies": len(kind.fillers),
                                 "length_mismatches_in_20": check(kind, rows)}
    for name, f in figures.items():
        print(f"{name}: {f['rows']} rows of {f['target_tokens']} tokens in {f['rows_s']} s ({f['ms_per_row']} ms a row) "
              f"after {f['setup_s']} s of set-up; length mismatches in 20 checked: {f['length_mismatches_in_20']}")
    write_result({"command": "python benchmarks/long_context.py", "machine": machine(), "date": date.today().isoformat(),
                  "figures": figures}, args.output)


if __name__ == "__main__":
    main()
