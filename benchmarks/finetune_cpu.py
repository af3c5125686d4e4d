"""Fine-tuning speed on CPU (tiny model): tokens/s and padding efficiency with plain padding, packing
and padding-free batches, on the length distribution of a dataset that ``raft.generate`` wrote.

    python benchmarks/finetune_cpu.py                         # ~5 min on 2 cores
    python benchmarks/finetune_cpu.py --steps 30 --batch-size 8 --chunk-size 512 --max-length 4096

1. ``raft.generate`` writes a dataset from ../shared/data/docs with the local fake teacher
   (``raft.testing.TeacherServer``), chunk lengths counted with the tiny model's tokenizer.
2. ``raft.finetune`` (recipe ``tiny``: fp32 LoRA, sdpa attention) trains the tiny model
   (``raft.testing.build_tiny_model``) for ``--steps`` steps in three modes, same data, same seed:
   ``padding`` (batch of ``--batch-size`` sequences padded to the longest), ``packing``
   (``train.packing=true``: TRL 1.x's best-fit-decreasing packing into ``max_length`` bins, which
   TRL runs padding-free) and ``padding_free`` (``train.padding_free=true``: the batch concatenated
   into one row, sequence boundaries from ``position_ids``; on CPU with sdpa transformers turns them
   into a block-diagonal mask).

Figures per mode:
- tokens/s: real (non-padding) tokens per second of training, from ``train_summary.json``
  (``num_input_tokens_seen`` counted by the trainer with ``include_num_input_tokens_seen=non_padding``
  over ``train_runtime``);
- tokens per CPU-second: the same tokens over the process CPU time of ``trainer.train`` (all threads),
  which a busy shared machine disturbs less than wall time;
- padding efficiency: real tokens / token slots in the batches the trainer actually formed (the TRL
  collator is wrapped and every batch it returns is counted: slots = ``input_ids.numel()``).
The ratios to plain padding are the figures to compare: the machine is shared and noisy, the three
runs follow each other in one process (``--repeats`` runs the round several times and keeps the
median). Writes benchmarks/results/finetune_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import REPO, SHARED_DOCS, machine, write_result

from raft.config import load_config

RESULT = REPO / "benchmarks" / "results" / "finetune_cpu.json"
MODES = {
    "padding": [],
    "packing": ["train.packing=true"],
    "padding_free": ["train.padding_free=true"],
}




def generate_data(tokenizer: Path, output: Path, chunk_size: int) -> dict[str, Any]:
    """A raft.generate dataset from the shared docs, answered by the local fake teacher."""
    from raft import generate
    from raft.testing import TeacherServer

    with TeacherServer() as teacher:
        cfg = load_config("generate", [
            "source=docs", f"input={SHARED_DOCS}", f"output={output}", f"tokenizer={tokenizer}",
            f"chunk_size={chunk_size}", f"teacher.base_url={teacher.base_url}", "teacher.model=fake-teacher",
            "teacher.concurrency=16",
        ])
        return generate.main(cfg, progress=False)


@contextmanager
def train_cpu_time(record: dict[str, float]):
    """Wrap ``SFTTrainer.train``: the process CPU seconds it took (all threads), less sensitive to a busy machine."""
    import trl

    original = trl.SFTTrainer.train

    def train(self: Any, *a: Any, **k: Any) -> Any:
        start = time.process_time()
        try:
            return original(self, *a, **k)
        finally:
            record["cpu_s"] = time.process_time() - start

    trl.SFTTrainer.train = train
    try:
        yield
    finally:
        trl.SFTTrainer.train = original


@contextmanager
def count_batches(record: list[tuple[int, int, int]]):
    """Wrap TRL's SFT collator: append (real tokens, token slots, sequences) for every batch it builds."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    original = DataCollatorForLanguageModeling.torch_call

    def torch_call(self: Any, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = original(self, examples)
        real = sum(len(e["input_ids"]) for e in examples)
        sequences = sum(len(e["seq_lengths"]) if "seq_lengths" in e else 1 for e in examples)
        record.append((real, int(batch["input_ids"].numel()), sequences))
        return batch

    DataCollatorForLanguageModeling.torch_call = torch_call
    try:
        yield
    finally:
        DataCollatorForLanguageModeling.torch_call = original


def train(mode: str, model: Path, data: Path, output: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One raft.finetune run; its summary figures and the counted batches."""
    from raft import finetune

    cfg = load_config("finetune", [
        "recipe=tiny", f"model={model}", f"data={data}", f"output={output}",
        f"train.max_steps={args.steps}", f"train.per_device_train_batch_size={args.batch_size}",
        f"train.max_length={args.max_length}", "train.eval_steps=0", f"train.save_steps={args.steps}",
        "train.save_total_limit=1", f"train.logging_steps={args.steps}", *MODES[mode],
    ])
    batches: list[tuple[int, int, int]] = []
    cpu: dict[str, float] = {}
    with count_batches(batches), train_cpu_time(cpu):
        summary = finetune.main(cfg)
    # the dataloader may build a batch or two ahead of the last step: count the batches trained on
    trained = batches[: args.steps]
    real, slots, sequences = (sum(b[i] for b in trained) for i in range(3))
    losses = summary["loss_curve"]
    return {
        "tokens_per_second": summary["tokens_per_second"],
        "padding_efficiency": real / slots,
        "tokens_per_cpu_second": summary["tokens_seen"] / cpu["cpu_s"],
        "slots_per_second": slots / summary["train_runtime_s"],
        "tokens_seen": summary["tokens_seen"],
        "real_tokens_counted": real,
        "token_slots": slots,
        "sequences": sequences,
        "train_runtime_s": summary["train_runtime_s"],
        "train_cpu_s": cpu["cpu_s"],
        "first_loss": losses[0]["loss"] if losses else None,
        "peak_rss_gib": summary["peak_memory"]["bytes"] / 1024**3,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunk-size", type=int, default=256, help="chunk length in student tokens (raft.generate)")
    parser.add_argument("--max-length", type=int, default=2048, help="train.max_length (packing bin size)")
    parser.add_argument("--batch-size", type=int, default=4, help="train.per_device_train_batch_size")
    parser.add_argument("--steps", type=int, default=15, help="optimizer steps per mode")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the three modes; the median is kept")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    parser.add_argument("--output", default=str(RESULT), help="where the JSON goes ('' to write nothing)")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"--modes: unknown mode {unknown[0]!r} (choose from {', '.join(MODES)})")

    from transformers import AutoTokenizer

    from raft.testing import build_tiny_model

    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="raft-finetune-cpu-") as tmp:
        work = Path(tmp)
        model = build_tiny_model(work / "model")
        t0 = time.perf_counter()
        counts = generate_data(model, work / "data", args.chunk_size)
        tokenizer = AutoTokenizer.from_pretrained(model)
        rows = [json.loads(line) for line in (work / "data" / "train.jsonl").read_text().splitlines()]
        lengths = [len(tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=True, return_dict=False))
                   for r in rows]
        print(f"data: {counts['train']} training rows in {time.perf_counter() - t0:.0f} s; tokens per example "
              f"min {min(lengths)}, median {statistics.median(lengths):.0f}, max {max(lengths)}")
        for r in range(args.repeats):
            for mode in modes:
                got = train(mode, model, work / "data", work / f"{mode}-{r}", args)
                runs[mode].append(got)
                print(f"[{r + 1}/{args.repeats}] {mode}: {got['tokens_per_second']:.0f} tokens/s, "
                      f"{got['tokens_per_cpu_second']:.0f} tokens/CPU-s, "
                      f"padding efficiency {got['padding_efficiency']:.3f}, first loss {got['first_loss']}")

    def median(mode: str, key: str) -> float:
        return statistics.median(x[key] for x in runs[mode])

    command = ("python benchmarks/finetune_cpu.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    common = {"command": command, "machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    setup = f"tiny model, batch {args.batch_size}, max_length {args.max_length}, chunk_size {args.chunk_size}"
    figures = []
    for mode in modes:
        figures.append({"figure": f"CPU fine-tuning tokens/s, {mode} ({setup})", "value": round(median(mode, "tokens_per_second"), 1),
                        "goal": "none (report)", **common})
        figures.append({"figure": f"padding efficiency, {mode} (real tokens / token slots in the trainer's batches)",
                        "value": round(median(mode, "padding_efficiency"), 4), "goal": "none (report)", **common})
        if mode != "padding" and "padding" in runs:
            figures.append({"figure": f"tokens/s ratio {mode} / padding (same run)",
                            "value": round(median(mode, "tokens_per_second") / median("padding", "tokens_per_second"), 3),
                            "goal": "> 1", **common})
            figures.append({"figure": f"tokens per CPU-second ratio {mode} / padding (same run; CPU time of trainer.train)",
                            "value": round(median(mode, "tokens_per_cpu_second") / median("padding", "tokens_per_cpu_second"), 3),
                            "goal": "> 1", **common})
    result = {
        "figures": figures,
        "details": {
            "how": "tokens/s: train_summary.json tokens_per_second (non-padding tokens the trainer counted / train_runtime); "
                   "padding efficiency: real tokens / input_ids.numel() over the batches TRL's collator built for the trained steps",
            "data": {"train_rows": counts["train"], "chunk_size": args.chunk_size, "tokens_min": min(lengths),
                     "tokens_median": statistics.median(lengths), "tokens_max": max(lengths)},
            "steps": args.steps,
            "repeats": args.repeats,
            "runs": runs,
        },
    }
    for f in figures:
        print(f"{f['figure']}: {f['value']}")
    write_result(result, args.output)
    return result


if __name__ == "__main__":
    main()
