"""Results at CPU scale: the real SmolLM2-135M-Instruct, base vs RAFT, measured with the README's commands.

    python benchmarks/cpu_results.py                    # every stage not done yet (resumes), then the table
    python benchmarks/cpu_results.py --only docs        # the raft_domain block only (docs run)
    python benchmarks/cpu_results.py --table            # print the README table from the stored results

Each stage runs one documented command as a subprocess (the line is stored with its wall time and
date) and its results are kept in ``benchmarks/results/cpu_results.json`` as soon as it ends, so an
interrupted run goes on where it stopped. The teacher is the local stand-in (``raft.testing`` server
on 127.0.0.1: questions "Which words follow «4-word phrase» in the text?", answers that quote the
document holding the phrase); the student is SmolLM2-135M-Instruct (``raft.testing.smollm2``).

- docs: ``raft.generate recipe=docs`` over ../shared/data/docs with ``test_p=0.8`` (the held-out rows
  in the training mix, so ``raft_domain`` has questions with and without the oracle in view), then
  ``raft_domain`` and ``raft_domain_retrieval`` (BM25 over the run's chunks, k=4) for the base model
  and for ``raft.finetune recipe=smollm2_cpu``'s adapter.
- hotpot: ``raft.generate recipe=hotpot`` on the shared first 100 dev questions with
  ``hotpot.eval_questions=50`` (clean chunks from questions 50-99), fine-tuned the same way, and
  ``raft_hotpot`` scored on questions 0-49 (``limit=50``) with real HotpotQA questions and answers.
- bio: ``recipe=bio_needle_8k`` from the shared labelled biographies (training contexts of 1k-2k
  tokens; the sweep 1k-6k x 5 depths x 2 needles), the base model and a fine-tuned one.
- in2: ``recipe=in2_8k`` (contexts of 1k-3k tokens here, for the CPU) from two of the shared docs,
  and ``recipe=in2_probe_8k`` on the other two (a probe corpus the IN2 run never saw).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import REPO, RESULTS, SHARED_DOCS, TEACHER, metrics_of, run_stages

RESULT = RESULTS / "cpu_results.json"
HOTPOT_FILE = REPO.parent / "shared" / "data" / "hotpotqa" / "hotpot_dev_distractor_first100.json"
BIO = REPO.parent / "shared" / "data" / "bio_haystack"
IN2_TRAIN_DOCS = ("state_of_the_union.txt", "rust_book_ch04-01-what-is-ownership.md")  # IN2 rows come from these ...
PROBE_DOCS = ("lm_eval_new_task_guide.md", "UC_Berkeley_short.pdf")  # ... and the probe asks about these: never trained on


def stages(out: Path, args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    """(block, name, command) in order; ``{teacher}`` is the stand-in teacher's base URL."""
    model = out / "smollm2"
    ev = ["python", "-m", "raft.evaluate", f"model={model}", "batch_size=8", "dtype=float32",
          f"max_new_tokens={args.max_new_tokens}"]
    docs, hotpot, bio, in2 = out / "docs", out / "hotpot", out / "bio", out / "in2"
    ft = ["python", "-m", "raft.finetune", "recipe=smollm2_cpu", f"model={model}", "train.eval_steps=0.25",
          "train.save_steps=0.5"]
    return [
        ("setup", "smollm2", ["python", "-m", "raft.testing", "smollm2", str(model)]),
        ("docs", "docs_data", ["python", "-m", "raft.generate", "recipe=docs", f"input={SHARED_DOCS}", f"output={docs}",
                               f"tokenizer={model}", "chunk_size=128", f"limit={args.docs_chunks}", "test_size=0.15",
                               "raft.test_p=0.8", f"teacher.base_url={TEACHER}", "teacher.model=raft-test-teacher"]),
        ("docs", "docs_base", [*ev, "recipe=eval_domain", f"data={docs}", f"output={out / 'eval/docs_base'}",
                               "label=SmolLM2-135M-Instruct"]),
        ("docs", "docs_base_retrieval", [*ev, "recipe=eval_domain_retrieval", f"data={docs}", "retrieval_k=4",
                                         f"output={out / 'eval/docs_base_retrieval'}", "label=SmolLM2-135M-Instruct"]),
        ("docs", "docs_finetune", [*ft, f"data={docs}", f"output={out / 'ft_docs'}", f"train.max_steps={args.docs_steps}"]),
        ("docs", "docs_raft", [*ev, "recipe=eval_domain", f"data={docs}", f"adapter={out / 'ft_docs'}",
                               f"output={out / 'eval/docs_raft'}", "label=SmolLM2-135M-Instruct + RAFT"]),
        ("docs", "docs_raft_retrieval", [*ev, "recipe=eval_domain_retrieval", f"data={docs}", "retrieval_k=4",
                                         f"adapter={out / 'ft_docs'}", f"output={out / 'eval/docs_raft_retrieval'}",
                                         "label=SmolLM2-135M-Instruct + RAFT"]),
        ("hotpot", "hotpot_data", ["python", "-m", "raft.generate", "recipe=hotpot", f"input={HOTPOT_FILE}",
                                   "hotpot.eval_questions=50", f"output={hotpot}", f"tokenizer={model}",
                                   f"teacher.base_url={TEACHER}", "teacher.model=raft-test-teacher"]),
        ("hotpot", "hotpot_base", [*ev, "recipe=eval_hotpot", f"data={HOTPOT_FILE}", "limit=50",
                                   f"output={out / 'eval/hotpot_base'}", "label=SmolLM2-135M-Instruct"]),
        ("hotpot", "hotpot_finetune", [*ft, f"data={hotpot}", f"output={out / 'ft_hotpot'}", "train.max_length=2048",
                                       f"train.max_steps={args.hotpot_steps}"]),
        ("hotpot", "hotpot_raft", [*ev, "recipe=eval_hotpot", f"data={HOTPOT_FILE}", "limit=50",
                                   f"adapter={out / 'ft_hotpot'}", f"output={out / 'eval/hotpot_raft'}",
                                   "label=SmolLM2-135M-Instruct + RAFT"]),
        ("bio", "bio_data", ["python", "-m", "raft.generate", "recipe=bio_needle_8k", f"input={BIO / 'train_needles_5000.jsonl'}",
                             f"bio_needle.eval_input={BIO / 'needles_140.jsonl'}", f"bio_needle.haystack={BIO / 'haystack_bios_131.jsonl'}",
                             "limit=340", f"output={bio}", f"tokenizer={model}", f"teacher.base_url={TEACHER}",
                             "teacher.model=raft-test-teacher"]),
        ("bio", "bio_base", ["python", "-m", "raft.evaluate", "recipe=bio_needle_8k", f"model={model}", f"data={bio}",
                             f"output={out / 'eval/bio_base'}", "label=SmolLM2-135M-Instruct"]),
        ("bio", "bio_finetune", [*ft, f"data={bio}", f"output={out / 'ft_bio'}", "train.max_length=2304",
                                 f"train.max_steps={args.long_steps}"]),
        ("bio", "bio_raft", ["python", "-m", "raft.evaluate", "recipe=bio_needle_8k", f"model={model}", f"data={bio}",
                             f"adapter={out / 'ft_bio'}", f"output={out / 'eval/bio_raft'}", "label=SmolLM2-135M-Instruct + RAFT"]),
        ("in2", "in2_data", ["python", "-m", "raft.generate", "recipe=in2_8k", f"input={out / 'in2_docs'}", f"output={in2}",
                             f"tokenizer={model}", "in2.max_tokens=3072", "in2.eval_sets=[]", "limit=200",
                             f"teacher.base_url={TEACHER}", "teacher.model=raft-test-teacher"]),
        ("in2", "in2_base", ["python", "-m", "raft.evaluate", "recipe=in2_probe_8k", f"model={model}", f"data={out / 'probe_docs'}",
                             f"probe_exclude={in2}", f"probe_samples={args.probe_samples}", f"output={out / 'eval/in2_base'}",
                             "label=SmolLM2-135M-Instruct"]),
        ("in2", "in2_finetune", [*ft, f"data={in2}", f"output={out / 'ft_in2'}", "train.max_length=3328",
                                 f"train.max_steps={args.in2_steps}"]),
        ("in2", "in2_raft", ["python", "-m", "raft.evaluate", "recipe=in2_probe_8k", f"model={model}", f"data={out / 'probe_docs'}",
                             f"adapter={out / 'ft_in2'}", f"probe_samples={args.probe_samples}", f"output={out / 'eval/in2_raft'}",
                             "label=SmolLM2-135M-Instruct + IN2"]),
    ]


def link_docs(out: Path) -> None:
    """Two folders of the shared docs, disjoint: what IN2 trains on and what the probe asks about."""
    for folder, names in (("in2_docs", IN2_TRAIN_DOCS), ("probe_docs", PROBE_DOCS)):
        (out / folder).mkdir(parents=True, exist_ok=True)
        for name in names:
            if not (out / folder / name).exists():
                (out / folder / name).symlink_to(SHARED_DOCS / name)


def run(args: argparse.Namespace) -> dict:
    out = Path(args.output)
    link_docs(out)
    return run_stages(stages(out, args), RESULT, out, metrics_of, args.only, args.redo)


def _cell(stages_: dict, name: str, task: str, metric: str) -> str:
    value = ((stages_.get(name) or {}).get("metrics") or {}).get(task, {}).get(metric)
    if value is None:
        return "not run yet"
    return "—" if value != value else f"{value:.3f}"  # NaN: no question in that split


def table(stored: dict) -> str:
    s = stored.get("stages", {})
    rows = [
        ("raft_domain, oracle in view", "docs", "raft_domain", "f1_oracle", "em_oracle"),
        ("raft_domain, oracle dropped", "docs", "raft_domain", "f1_no_oracle", "em_no_oracle"),
        ("raft_domain, all test questions", "docs", "raft_domain", "f1", "em"),
        ("raft_domain_retrieval (BM25, k=4)", "docs", "raft_domain_retrieval", "f1", "em"),
        ("raft_hotpot, dev questions 0-49", "hotpot", "raft_hotpot", "f1", "em"),
    ]
    lines = ["| task | base F1 | RAFT F1 | base EM | RAFT EM | base answer_found | RAFT answer_found |",
             "|---|---|---|---|---|---|---|"]
    for label, block, task, f1, em in rows:
        suffix = "_retrieval" if task.endswith("retrieval") else ""
        base, tuned = f"{block}_base{suffix}", f"{block}_raft{suffix}"
        lines.append(f"| {label} | {_cell(s, base, task, f1)} | {_cell(s, tuned, task, f1)} | {_cell(s, base, task, em)} | "
                     f"{_cell(s, tuned, task, em)} | {_cell(s, base, task, 'answer_found')} | {_cell(s, tuned, task, 'answer_found')} |")
    return "\n".join(lines)


def long_context_table(stored: dict) -> str:
    """bio_needle (field score) and in2_probe (exact match) per context length, base vs fine-tuned."""
    s = stored.get("stages", {})
    rows = [("bio_needle: field score", "bio", "bio_needle", "score"), ("in2_probe: exact match", "in2", "in2_probe", "em"),
            ("in2_probe, document probe", "in2", "in2_probe", "em_document"),
            ("in2_probe, structured probe", "in2", "in2_probe", "em_structured")]
    lengths = ("1k", "2k", "4k", "6k")
    lines = ["| task | model | " + " | ".join(lengths) + " | overall |", "|---|---|" + "---|" * (len(lengths) + 1)]
    for label, block, task, metric in rows:
        for which, name in (("base", "base"), ("raft", "fine-tuned")):
            stage = f"{block}_{which}"
            per_length = [_cell(s, stage, task, f"{metric.split('_')[0]}_{n}") if metric in ("score", "em") else "" for n in lengths]
            lines.append(f"| {label} | {name} | " + " | ".join(per_length) + f" | {_cell(s, stage, task, metric)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(REPO / "outputs" / "cpu_results"), help="where the runs' folders go")
    parser.add_argument("--only", choices=["docs", "hotpot", "bio", "in2"], help="one block of stages")
    parser.add_argument("--long-steps", type=int, default=60, help="LoRA steps on the bio_needle run (1k-2k-token rows)")
    parser.add_argument("--in2-steps", type=int, default=40, help="LoRA steps on the IN2 run (1k-3k-token rows)")
    parser.add_argument("--probe-samples", type=int, default=1, help="in2_probe prompts per probe, length and bin (40 in all)")
    parser.add_argument("--docs-chunks", type=int, default=240, help="chunks of the docs run (limit=)")
    parser.add_argument("--docs-steps", type=int, default=150, help="LoRA steps on the docs run (one row each)")
    parser.add_argument("--hotpot-steps", type=int, default=100, help="LoRA steps on the hotpot run")
    parser.add_argument("--max-new-tokens", type=int, default=160, help="generation budget (the teacher's answers are ~60 tokens)")
    parser.add_argument("--redo", action="store_true", help="run stored stages again")
    parser.add_argument("--table", action="store_true", help="print the table from the stored results and stop")
    args = parser.parse_args()
    stored = json.loads(RESULT.read_text()) if args.table and RESULT.exists() else ({} if args.table else run(args))
    print(table(stored))
    print()
    print(long_context_table(stored))


if __name__ == "__main__":
    main()
