"""Which RAFT options help, measured on the real CPU student (SmolLM2-135M-Instruct): each option against
the default, with the same data budget and the same steps, over two or more seeds.

    python benchmarks/raft_options.py                   # every stage not done yet (resumes), then the table
    python benchmarks/raft_options.py --seeds 1 2 3     # more seeds
    python benchmarks/raft_options.py --table           # print the table from the stored results

Per seed (the generate seed and the training seed alike) it runs the README's commands as subprocesses
(stages stored in ``benchmarks/results/raft_options.json`` with their command, wall time and date):

- data: ``raft.generate recipe=docs`` over ../shared/data/docs (stand-in teacher) three times, the same
  chunks and questions: the default (random distractors), ``unanswerable_share`` and
  ``distractor_strategy=retrieved``; ``raft.test_p=0.5`` so the test split has questions with and without
  the oracle in view;
- training: ``raft.finetune recipe=smollm2_cpu`` with the same steps on each, and once more on the default
  data with ``train.reshuffle_documents=true``;
- evaluation: every adapter on the default run's test split (the same questions for all), with
  ``raft_domain`` (F1 with the oracle in view / without it) and ``raft_domain_retrieval`` (BM25, k=4);
  the default and the unanswerable adapters also on the unanswerable run's test split, for the decline
  rates (declined on unanswerable rows; wrongly declined on answerable ones);
- epochs: ``train.reshuffle_documents`` keeps the generated order in the first epoch, so at the steps
  above (less than one epoch) it changes nothing; a pair of two-epoch runs on the default data, with and
  without it (``--epoch-seeds``), measures it.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

from common import REPO, RESULTS, SHARED_DOCS, TEACHER, metrics_of, run_stages

RESULT = RESULTS / "raft_options.json"
# option -> (generate overrides, finetune overrides, the data it trains on)
OPTIONS = {
    "default": ([], [], "default"),
    "unanswerable": (["raft.unanswerable_share={share}"], [], "unanswerable"),
    "retrieved": (["raft.distractor_strategy=retrieved"], [], "retrieved"),
    "reshuffle": ([], ["train.reshuffle_documents=true"], "default"),
}


def stages(out: Path, args: argparse.Namespace) -> list[tuple[str, str, list[str]]]:
    model = out / "smollm2"
    found = [("setup", "smollm2", ["python", "-m", "raft.testing", "smollm2", str(model)])]
    ev = ["python", "-m", "raft.evaluate", f"model={model}", "batch_size=8", "dtype=float32", f"max_new_tokens={args.max_new_tokens}"]
    for seed in args.seeds:
        block = f"seed{seed}"
        for data in ("default", "unanswerable", "retrieved"):
            extra = [a.format(share=args.unanswerable_share) for opt in OPTIONS.values() if opt[2] == data for a in opt[0]]
            found.append((block, f"{data}_data_{seed}", [
                "python", "-m", "raft.generate", "recipe=docs", f"input={SHARED_DOCS}", f"output={out / f'{data}_{seed}'}",
                f"tokenizer={model}", f"chunk_size={args.chunk_size}", f"limit={args.chunks}", "test_size=0.2", "raft.test_p=0.5",
                f"seed={seed}", f"teacher.base_url={TEACHER}", "teacher.model=raft-test-teacher", *extra]))
        for option, (_, train, data) in OPTIONS.items():
            adapter = out / f"ft_{option}_{seed}"
            found.append((block, f"{option}_finetune_{seed}", [
                "python", "-m", "raft.finetune", "recipe=smollm2_cpu", f"model={model}", f"data={out / f'{data}_{seed}'}",
                f"output={adapter}", f"train.max_steps={args.steps}", f"seed={seed}", "train.eval_steps=0.5",
                "train.save_steps=0.5", *train]))
            default = out / f"default_{seed}"
            found.append((block, f"{option}_oracle_{seed}", [
                *ev, "recipe=eval_domain", f"data={default}", f"adapter={adapter}", f"output={out / f'eval/{option}_{seed}'}",
                f"label=RAFT {option}"]))
            found.append((block, f"{option}_retrieval_{seed}", [
                *ev, "recipe=eval_domain_retrieval", f"data={default}", "retrieval_k=4", f"adapter={adapter}",
                f"output={out / f'eval/{option}_retrieval_{seed}'}", f"label=RAFT {option}"]))
            if option in ("default", "unanswerable"):
                found.append((block, f"{option}_decline_{seed}", [
                    *ev, "recipe=eval_domain", f"data={out / f'unanswerable_{seed}'}", f"adapter={adapter}",
                    f"output={out / f'eval/{option}_decline_{seed}'}", f"label=RAFT {option}"]))
    # reshuffle changes nothing within the first epoch (it keeps the generated order there): a longer run,
    # two epochs over the default data, with and without it
    for seed in args.epoch_seeds:
        for option, train in (("default", []), ("reshuffle", ["train.reshuffle_documents=true"])):
            adapter = out / f"ft_{option}_2ep_{seed}"
            found.append((f"epochs{seed}", f"{option}_2ep_finetune_{seed}", [
                "python", "-m", "raft.finetune", "recipe=smollm2_cpu", f"model={model}", f"data={out / f'default_{seed}'}",
                f"output={adapter}", "train.max_steps=-1", "train.num_train_epochs=2", f"seed={seed}", "train.eval_steps=0.5",
                "train.save_steps=0.5", *train]))
            found.append((f"epochs{seed}", f"{option}_2ep_oracle_{seed}", [
                *ev, "recipe=eval_domain", f"data={out / f'default_{seed}'}", f"adapter={adapter}",
                f"output={out / f'eval/{option}_2ep_{seed}'}", f"label=RAFT {option}, 2 epochs"]))
            found.append((f"epochs{seed}", f"{option}_2ep_retrieval_{seed}", [
                *ev, "recipe=eval_domain_retrieval", f"data={out / f'default_{seed}'}", "retrieval_k=4", f"adapter={adapter}",
                f"output={out / f'eval/{option}_2ep_retrieval_{seed}'}", f"label=RAFT {option}, 2 epochs"]))
    return found


def value(stored: dict, stage: str, task: str, metric: str) -> float | None:
    v = ((stored.get("stages", {}).get(stage) or {}).get("metrics") or {}).get(task, {}).get(metric)
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def cell(values: list[float | None]) -> str:
    """mean ± half the range over the seeds that have a number ('not run yet' when none)."""
    got = [v for v in values if v is not None]
    if not got:
        return "not run yet"
    mean = sum(got) / len(got)
    return f"{mean:.3f} ± {(max(got) - min(got)) / 2:.3f}" if len(got) > 1 else f"{mean:.3f}"


def table(stored: dict) -> str:
    seeds = sorted({int(m.group(1)) for name in stored.get("stages", {}) if (m := re.search(r"_(\d+)$", name))})
    columns = [("F1, oracle in view", "oracle", "raft_domain", "f1_oracle"),
               ("F1, oracle dropped", "oracle", "raft_domain", "f1_no_oracle"),
               ("F1, BM25 k=4", "retrieval", "raft_domain_retrieval", "f1"),
               ("declines unanswerable", "decline", "raft_domain", "decline_unanswerable"),
               ("declines answerable", "decline", "raft_domain", "decline_answerable")]
    lines = ["| option | " + " | ".join(c[0] for c in columns) + " | train s (mean) |",
             "|---|" + "---|" * (len(columns) + 1)]
    rows = [*OPTIONS, *(f"{o}_2ep" for o in ("default", "reshuffle") if any(k.startswith(f"{o}_2ep_") for k in stored.get("stages", {})))]
    for option in rows:
        cells = []
        for _, stage, task, metric in columns:
            if stage == "decline" and option not in ("default", "unanswerable"):  # no decline run for it
                cells.append("")
                continue
            cells.append(cell([value(stored, f"{option}_{stage}_{s}", task, metric) for s in seeds]))
        walls = [stored["stages"][f"{option}_finetune_{s}"]["wall_s"] for s in seeds if f"{option}_finetune_{s}" in stored.get("stages", {})]
        lines.append(f"| {option} | " + " | ".join(cells) + f" | {sum(walls) / len(walls):.0f} |" if walls else
                     f"| {option} | " + " | ".join(cells) + " | |")
    return "\n".join(lines) + f"\n\nseeds: {', '.join(map(str, seeds)) or 'none yet'}; mean ± half the range over the seeds"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default=str(REPO / "outputs" / "raft_options"), help="where the runs' folders go")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="generate and training seeds")
    parser.add_argument("--chunks", type=int, default=120, help="chunks of each docs run (limit=): one question each")
    parser.add_argument("--chunk-size", type=int, default=64, help="chunk length in student tokens")
    parser.add_argument("--steps", type=int, default=60, help="LoRA steps of every fine-tuning run (one row each)")
    parser.add_argument("--unanswerable-share", type=float, default=0.2, help="raft.unanswerable_share of that option")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="generation budget (the teacher's answers are ~60 tokens)")
    parser.add_argument("--epoch-seeds", type=int, nargs="*", default=[1],
                        help="seeds of the two-epoch default / reshuffle pair (reshuffle acts from the second epoch on)")
    parser.add_argument("--only", help="one block of stages, e.g. seed1 or epochs1")
    parser.add_argument("--redo", action="store_true", help="run stored stages again")
    parser.add_argument("--table", action="store_true", help="print the table from the stored results and stop")
    args = parser.parse_args()
    if args.table:
        stored = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    else:
        out = Path(args.output)
        stored = run_stages(stages(out, args), RESULT, out, metrics_of, args.only, args.redo)
    print(table(stored))


if __name__ == "__main__":
    main()
