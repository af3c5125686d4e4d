"""Learning check on CPU: the whole pipeline agrees with itself (issue 6, item 5).

    python benchmarks/learning_check.py                          # defaults: ~12 min on 2 quiet cores
    python benchmarks/learning_check.py --steps 8000 --hidden 256 --layers 4   # bigger, longer
    python benchmarks/learning_check.py --quick                  # 40 steps, 16 questions: a smoke run

1. ``raft.generate`` writes a dataset from ../shared/data/docs with the local fake teacher
   (``raft.testing.TeacherServer``: questions "Which words follow «4-word phrase» in the text?",
   answers that quote the document holding the phrase and end with "<ANSWER>: next three words"),
   chunked to ``--chunk-size`` student tokens (short, so that sequences stay short on a CPU).
2. A random tiny Llama (``raft.testing.build_tiny_model``, ``--hidden`` / ``--layers``; its output
   layer drawn wide enough, ``--head-logit-std``, that it can become confident at all) is evaluated with ``raft.evaluate`` (lm-eval task ``raft_domain``, the held-out test split).
3. ``raft.finetune`` (recipe ``tiny``, LoRA ``--rank`` on all linear layers, ``--lr``) trains it for
   ``--steps`` steps; the adapter is evaluated the same way.
4. Three consistency checks on the same rows: the prompt tokens TRL trained on (its tokenized eval
   split, up to the first label) equal the tokens lm-eval generated from (the logged context,
   encoded as lm-eval's HF backend does); the labels are exactly the completion (the assistant
   turn plus its end-of-turn token); and ``raft.metrics`` finds the gold answer in every teacher
   answer (F1 1).
5. Memorisation (``--memorize`` rows, ``--memorize-steps``): the base model is trained on a few
   training rows only and evaluated on exactly those rows, the classic overfit-one-batch check: a
   model that has learnt its rows by heart scores well unless prompts, loss mask or answer
   extraction disagree, whether or not the random model can learn the task itself.

Goal (issue 6): after training answer_found >= 0.95 and F1 >= 0.5 (before: about 0). Prints the
figures and writes benchmarks/results/learning_check.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import REPO, SHARED_DOCS, machine, write_result

from raft.config import load_config

RESULT = REPO / "benchmarks" / "results" / "learning_check.json"
GOALS = {"answer_found": 0.95, "f1": 0.5}




def generate_data(tokenizer: Path, output: Path, chunk_size: int, limit: int | None, questions: int = 1) -> dict[str, Any]:
    """A raft.generate dataset from the shared docs, answered by the local fake teacher."""
    from raft import generate
    from raft.testing import TeacherServer

    with TeacherServer() as teacher:
        args = [
            "source=docs", f"input={SHARED_DOCS}", f"output={output}", f"tokenizer={tokenizer}",
            f"chunk_size={chunk_size}", "min_chunk_tokens=16", f"teacher.base_url={teacher.base_url}",
            "teacher.model=fake-teacher", "teacher.concurrency=16", f"questions_per_chunk={questions}",
            "test_p=0.8",  # held-out rows in the training mix (p = 0.8), so F1 with and without the oracle both exist
        ]
        if limit:
            args.append(f"limit={limit}")
        return generate.main(load_config("generate", args), progress=False)


def evaluate(model: Path, adapter: Path | None, data: Path, output: Path, limit: int, max_new_tokens: int) -> dict[str, Any]:
    """raft.evaluate on raft_domain; returns metrics, the contexts lm-eval sent and the outputs, by doc_id."""
    from raft import evaluate as ev

    args = [f"model={model}", "tasks=[raft_domain]", f"data={data}", f"limit={limit}",
            f"max_new_tokens={max_new_tokens}", f"output={output}", "batch_size=8", "dtype=float32"]
    if adapter:
        args.append(f"adapter={adapter}")
    cfg = load_config("evaluate", args)
    results = ev.evaluate(cfg)
    samples = results.get("samples", {}).get("raft_domain", [])
    contexts = {s["doc_id"]: s["arguments"][0][0] if isinstance(s["arguments"][0], list | tuple) else s["arguments"]["gen_args_0"]["arg_0"]
                for s in samples}
    ev.write_results(results, cfg)
    metrics = results["results"]["raft_domain"]
    rows = [json.loads(line) for line in (output / "samples_raft_domain.jsonl").read_text().splitlines()]
    return {
        "metrics": {m: metrics[f"{m},none"] for m in ("answer_found", "f1", "em", "has_oracle", "f1_oracle", "f1_no_oracle")},
        "contexts": contexts,
        "rows": rows,
    }


def finetune(model: Path, data: Path, output: Path, args: argparse.Namespace) -> tuple[dict[str, Any], Any]:
    """raft.finetune (recipe tiny); returns its summary and the SFTTrainer (its tokenized splits)."""
    import trl

    from raft import finetune as ft

    captured: dict[str, Any] = {}
    original = trl.SFTTrainer.train

    def train(self: Any, *a: Any, **k: Any) -> Any:
        captured["trainer"] = self
        return original(self, *a, **k)

    cfg = load_config("finetune", [
        "recipe=tiny", f"model={model}", f"data={data}", f"output={output}",
        f"lora.rank={args.rank}", f"lora.alpha={args.alpha}", f"train.learning_rate={args.lr}",
        f"train.max_steps={args.steps}", f"train.per_device_train_batch_size={args.batch_size}",
        "train.lr_scheduler_type=cosine", "train.warmup_ratio=0.05", "train.eval_steps=0",
        f"train.save_steps={args.steps}", "train.save_total_limit=1", f"train.logging_steps={max(1, args.steps // 20)}",
        f"train.max_length={args.max_length}",
    ])
    trl.SFTTrainer.train = train
    try:
        summary = ft.main(cfg)
    finally:
        trl.SFTTrainer.train = original
    return summary, captured["trainer"]


def template_checks(trainer: Any, tokenizer: Any, test_rows: list[dict], contexts: dict[int, str]) -> dict[str, Any]:
    """TRL's training tokens vs lm-eval's prompt tokens, the loss mask, and answer extraction."""
    from raft.metrics import score

    tokenized = trainer.eval_dataset
    checked = mismatched = label_errors = 0
    first_mismatch = None
    bos = tokenizer.bos_token
    for doc_id, context in sorted(contexts.items()):
        ids = tokenized[doc_id]["input_ids"]
        labels = tokenized[doc_id]["labels"]
        start = next(i for i, x in enumerate(labels) if x != -100)
        trl_prompt = ids[:start]
        # lm-eval's HF backend (tok_batch_encode): no extra special tokens when the context starts with BOS
        lm_eval_prompt = tokenizer(context, add_special_tokens=not (bos and context.startswith(bos)))["input_ids"]
        checked += 1
        if trl_prompt != lm_eval_prompt:
            mismatched += 1
            if first_mismatch is None:
                at = next((i for i, (a, b) in enumerate(zip(trl_prompt, lm_eval_prompt, strict=False)) if a != b),
                          min(len(trl_prompt), len(lm_eval_prompt)))
                first_mismatch = {"doc_id": doc_id, "position": at, "trl": tokenizer.decode(trl_prompt[at:at + 20]),
                                  "lm_eval": tokenizer.decode(lm_eval_prompt[at:at + 20])}
        target = [x for x in labels if x != -100]
        expected = tokenizer(test_rows[doc_id]["completion"][0]["content"] + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        if target != expected or labels[start:] != ids[start:]:
            label_errors += 1
    gold = [score(r["cot_answer"], r["final_answer"]) for r in test_rows]
    return {
        "prompts_compared": checked,
        "prompt_token_mismatches": mismatched,
        "first_mismatch": first_mismatch,
        "label_errors": label_errors,
        "teacher_answers_scored": len(gold),
        "teacher_answer_f1": sum(g["f1"] for g in gold) / max(1, len(gold)),
        "teacher_answer_found": sum(g["answer_found"] for g in gold) / max(1, len(gold)),
    }


def memorize(model: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Overfit a few training rows and evaluate on exactly those rows: whatever the model learns to
    write is scored, so prompts, loss mask and answer extraction that disagree show up even where the
    random model cannot learn the task itself (the classic overfit-one-batch check)."""
    rows = (work / "data" / "train.jsonl").read_text().splitlines()[: args.memorize]
    data = work / "memorize"
    data.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):  # the test split is the training rows themselves
        (data / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    settings = argparse.Namespace(**{**vars(args), "steps": args.memorize_steps})
    t0 = time.perf_counter()
    summary, _ = finetune(model, data, work / "memorize_adapter", settings)
    after = evaluate(model, work / "memorize_adapter", data, work / "eval_memorize", len(rows), args.max_new_tokens)
    print(f"memorisation, {len(rows)} training rows after {summary['global_step']} steps: {after['metrics']}")
    losses = summary["loss_curve"]
    return {"rows": len(rows), "steps": summary["global_step"], "after": after, "seconds": round(time.perf_counter() - t0, 1),
            "loss_last": losses[-1]["loss"] if losses else None}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=128, help="tiny model hidden size")
    parser.add_argument("--layers", type=int, default=2, help="tiny model decoder layers")
    parser.add_argument("--head-logit-std", type=float, default=1.5,
                        help="std of the random model's logits at the start (output layer std = this / sqrt(hidden)); "
                             "0: transformers' default init, whose logits cannot exceed ~2.6 at hidden 128")
    parser.add_argument("--chunk-size", type=int, default=64, help="chunk length in student tokens")
    parser.add_argument("--rows", type=int, default=0, help="chunks asked about (0: all of ../shared/data/docs)")
    parser.add_argument("--questions-per-chunk", type=int, default=1, help="more rows from the same chunks")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rank", type=int, default=64)
    parser.add_argument("--alpha", type=int, default=128)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--eval-limit", type=int, default=32, help="test questions evaluated")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--memorize", type=int, default=32, help="training rows to overfit and evaluate on (0: skip)")
    parser.add_argument("--memorize-steps", type=int, default=400, help="steps on those rows")
    parser.add_argument("--quick", action="store_true", help="smoke run: 40 steps, 16 questions")
    parser.add_argument("--keep", default="", help="keep the work folder here instead of a temporary one")
    parser.add_argument("--output", default=str(RESULT), help="where the JSON goes ('' to write nothing)")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.eval_limit, args.memorize, args.memorize_steps = 40, 16, 8, 40

    from transformers import AutoTokenizer

    from raft.testing import build_tiny_model

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="raft-learning-") as tmp:
        work = Path(args.keep or tmp)
        head_std = args.head_logit_std / args.hidden**0.5 if args.head_logit_std > 0 else None
        model = build_tiny_model(work / "model", hidden_size=args.hidden, num_layers=args.layers, head_std=head_std)
        tokenizer = AutoTokenizer.from_pretrained(model)
        t0 = time.perf_counter()
        counts = generate_data(model, work / "data", args.chunk_size, args.rows or None, args.questions_per_chunk)
        gen_s = time.perf_counter() - t0
        test_rows = [json.loads(line) for line in (work / "data" / "test.jsonl").read_text().splitlines()]
        limit = min(args.eval_limit, len(test_rows))
        print(f"data: {counts['train']} train / {counts['test']} test rows in {gen_s:.0f} s; evaluating {limit} test questions")

        t0 = time.perf_counter()
        before = evaluate(model, None, work / "data", work / "eval_before", limit, args.max_new_tokens)
        print(f"before training: {before['metrics']}")
        t1 = time.perf_counter()
        summary, trainer = finetune(model, work / "data", work / "adapter", args)
        t2 = time.perf_counter()
        after = evaluate(model, work / "adapter", work / "data", work / "eval_after", limit, args.max_new_tokens)
        t3 = time.perf_counter()
        print(f"after {summary['global_step']} steps: {after['metrics']}")
        checks = template_checks(trainer, tokenizer, test_rows, after["contexts"])
        print(f"checks: {checks}")
        examples = [{k: r[k] for k in ("gold", "answer", "f1", "output")} for r in after["rows"][:3]]
        memo = memorize(model, work, args) if args.memorize else None

    losses = summary["loss_curve"]
    command = "python benchmarks/learning_check.py " + " ".join(argv if argv is not None else sys.argv[1:])
    common = {"command": command.strip(), "machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    figures = []
    for metric in ("answer_found", "f1"):
        for when, res in (("before", before), ("after", after)):
            value = round(float(res["metrics"][metric]), 4)
            goal = f">= {GOALS[metric]}" if when == "after" else "about 0"
            figures.append({"figure": f"raft_domain {metric} {when} training ({limit} held-out questions)", "value": value,
                            "goal": goal, "met": value >= GOALS[metric] if when == "after" else None, **common})
    share = after["metrics"]["has_oracle"]
    for metric, rows in (("f1_oracle", "with the oracle among the documents"), ("f1_no_oracle", "without it")):
        for when, res in (("before", before), ("after", after)):
            value = float(res["metrics"][metric])
            figures.append({"figure": f"raft_domain {metric} {when} training: the held-out questions {rows} "
                                      f"(test_p = 0.8: {share:.0%} of {limit} have it)",
                            "value": None if value != value else round(value, 4), "goal": "report", "met": None, **common})
    result = {
        "figures": figures,
        "details": {
            "model": f"raft.testing.build_tiny_model(hidden_size={args.hidden}, num_layers={args.layers}, head_std={head_std}), "
                     f"{summary['total_params']:,} parameters, {summary['trainable_params']:,} trainable (LoRA)",
            "data": {"chunk_size": args.chunk_size, "questions_per_chunk": args.questions_per_chunk, **{k: counts[k] for k in ("chunks", "train", "test")}},
            "training": {"steps": summary["global_step"], "batch_size": args.batch_size, "lora_rank": args.rank,
                         "lora_alpha": args.alpha, "learning_rate": args.lr, "epochs": summary["epochs"],
                         "loss_first": losses[0]["loss"] if losses else None, "loss_last": losses[-1]["loss"] if losses else None,
                         "tokens_per_second": summary["tokens_per_second"], "seconds": round(t2 - t1, 1),
                         "loss_curve": [round(e["loss"], 3) for e in losses]},
            "evaluation": {"max_new_tokens": args.max_new_tokens, "before": before["metrics"], "after": after["metrics"],
                           "seconds_before": round(t1 - t0, 1), "seconds_after": round(t3 - t2, 1)},
            "consistency_checks": checks,
            "examples_after": examples,
            "total_seconds": round(time.perf_counter() - started, 1),
        },
    }
    if memo:
        for metric in ("answer_found", "f1"):
            value = round(float(memo["after"]["metrics"][metric]), 4)
            figures.append({"figure": f"raft_domain {metric} on {memo['rows']} training rows after {memo['steps']} steps on them "
                                      "(memorisation: the same rows through raft.finetune and lm-eval)",
                            "value": value, "goal": f">= {GOALS[metric]}", "met": value >= GOALS[metric], **common})
        result["details"]["memorisation"] = {k: v for k, v in memo.items() if k != "after"} | {
            "metrics": memo["after"]["metrics"],
            "examples": [{k: r[k] for k in ("gold", "answer", "f1", "output")} for r in memo["after"]["rows"][:3]]}
    met = all(f["met"] for f in figures if f["met"] is not None)
    for f in figures:
        print(f"{f['figure']}: {f['value']} (goal {f['goal']})")
    print(f"goal {'met' if met else 'MISSED'}; total {result['details']['total_seconds']:.0f} s")
    write_result(result, args.output)
    return result


if __name__ == "__main__":
    main()
