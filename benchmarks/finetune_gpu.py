"""Fine-tuning speed and memory on a GPU: the real Llama-3.1-8B architecture with random weights, the
``llama31_8b_q4`` recipe (QLoRA: 4-bit NF4, double quantisation, bf16 compute, LoRA rank 64 on all
linear layers, paged 8-bit AdamW, gradient checkpointing), at max_length 2048, 4096 and 8192.

    python benchmarks/finetune_gpu.py                                  # all lengths and modes
    python benchmarks/finetune_gpu.py --lengths 2048 --modes recipe --steps 2

Without a CUDA GPU it prints one line, "skipped: no CUDA GPU on this machine", and exits 0.

How the random 4-bit model is made (no download, nothing gated): the architecture comes from a
literal config dict (hidden 4096, 32 layers, 32 heads, 8 KV heads, MLP 14336, vocab 128256, RoPE
theta 500000 with Llama 3.1's rope scaling, 131072 positions); the model is built on the GPU in
bf16 with random weights and saved once (about 16 GB) to a temporary folder on local disk
(``--work``), with the tiny test tokenizer (``raft.testing``: token ids below 1,100, which any
128256-entry embedding accepts). Every run then goes through the production path,
``raft.finetune.main`` with ``recipe=llama31_8b_q4 model=THAT_FOLDER``, so transformers' bitsandbytes
integration quantises the weights to NF4 while loading, exactly as for the real checkpoint. Memory
and speed do not depend on the weight values. Each run is its own process, so that peaks do not mix
and an out-of-memory run is just recorded as such.

Data: synthetic prompt/completion rows (random words in four ``<DOCUMENT>`` blocks, a question, a
~200-token answer) whose lengths in tokens are uniform in [max_length / 2, max_length].

Modes (every mode sees 8 sequences per optimizer step, as the recipe's 1 x 8 accumulation):
``recipe`` (batch 1, 8 accumulation steps, the recipe as published), ``packing`` (``train.packing``:
TRL packs the rows into max_length bins, padding-free), ``padding_free`` (``train.padding_free``,
batch 2 x 4 accumulation steps: two rows concatenated per forward pass); each also with Liger kernels
(``liger_kernel=true``) when the ``liger-kernel`` package is installed.

Figures per run: peak GPU memory (``torch.cuda.max_memory_reserved``, what the allocator held, and
``max_memory_allocated``), tokens/s (real tokens over ``train_runtime``, from ``train_summary.json``;
the first step's warm-up is included, so more ``--steps`` gives steadier figures) and MFU =
6 x parameters x tokens/s / the GPU's dense bf16 peak (H100 SXM and H200 989 TFLOPS, H100 PCIe 756,
A100 312, L40S 362, A10G 70). 6N is the usual convention; QLoRA does less (no weight gradients for the
frozen 4-bit weights) and gradient checkpointing recomputes the forward, so read MFU as a comparison
between settings on the same GPU. "Fits in 40 GB" (the published A100) means the reserved peak plus
~0.5 GiB of CUDA context stays under 39.5 GiB. Compare figures only from the same GPU model.
Writes benchmarks/results/finetune_gpu_<gpu>.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import REPO, RESULTS, write_result

#: Llama-3.1-8B(-Instruct) config.json, as published (shapes only; weights are random).
LLAMA31_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192},
    "rms_norm_eps": 1e-5,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "tie_word_embeddings": False,
}
#: dense bf16 peak FLOP/s by GPU name (first match wins, most specific first)
BF16_PEAK = [("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12), ("A100", 312e12),
             ("L40S", 362e12), ("A10G", 70e12)]
FIT_GIB = 39.5
MODES = {
    "recipe": [],
    "packing": ["train.packing=true"],
    "padding_free": ["train.padding_free=true", "train.per_device_train_batch_size=2", "train.gradient_accumulation_steps=4"],
}
WORKER = """
import json, sys, torch
from raft.config import load_config
from raft.finetune import main
main(load_config("finetune", sys.argv[2:]))
json.dump({"max_reserved": torch.cuda.max_memory_reserved(), "max_allocated": torch.cuda.max_memory_allocated()},
          open(sys.argv[1], "w"))
"""


def bf16_peak(name: str) -> float | None:
    return next((peak for key, peak in BF16_PEAK if key.lower() in name.lower()), None)


def build_checkpoint(folder: Path) -> int:
    """Random-weight Llama-3.1-8B in bf16 (built on the GPU) + the tiny tokenizer, saved to ``folder``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from raft.testing import build_tiny_model

    tiny = build_tiny_model(folder / "tiny")
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    config = LlamaConfig(**{k: v for k, v in LLAMA31_8B.items() if k != "model_type"},
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device("cuda"):  # built in bf16 directly: 16 GB on the GPU, never 32 GB of fp32
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    params = sum(p.numel() for p in model.parameters())
    target = folder / "llama31-8b-random"
    model.save_pretrained(target, max_shard_size="5GB")
    tokenizer.save_pretrained(target)
    del model
    torch.cuda.empty_cache()
    shutil.rmtree(folder / "tiny")
    return params


def write_data(path: Path, tokenizer_dir: Path, max_length: int, rows: int, seed: int = 0) -> None:
    """JSONL of prompt/completion rows whose token lengths are uniform in [max_length / 2, max_length]."""
    from transformers import AutoTokenizer

    from raft.prompts import student_example

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    rng = random.Random(seed)
    words = sorted(set(re.findall(r"[a-z]{3,}", " ".join(tokenizer.get_vocab()).lower())))[:400] or ["word"]
    sample = " ".join(rng.choices(words, k=2000))
    per_word = len(tokenizer(sample, add_special_tokens=False)["input_ids"]) / 2000
    with path.open("w") as f:
        for i in range(rows):
            target = rng.randint(max_length // 2, max_length)
            answer = "Reasoning: " + " ".join(rng.choices(words, k=int(200 / per_word))) + "\n<ANSWER>: " + rng.choice(words)
            doc_words = max(1, int((target - 200 - 80) / per_word / 4))
            documents = [" ".join(rng.choices(words, k=doc_words)) for _ in range(4)]
            question = f"Question {i}: " + " ".join(rng.choices(words, k=10)) + "?"
            row = {"question": question, "documents": documents, **student_example(documents, question, answer)}
            f.write(json.dumps(row) + "\n")


def run_one(model: Path, data: Path, work: Path, length: int, mode: str, liger: bool, args: argparse.Namespace) -> dict[str, Any]:
    """One raft.finetune process; its figures, or the reason it failed (out of memory, ...)."""
    name = f"{length}-{mode}{'-liger' if liger else ''}"
    output = work / "runs" / name
    memfile = work / "runs" / f"{name}.memory.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    overrides = [
        "recipe=llama31_8b_q4", f"model={model}", f"data={data}", f"output={output}",
        f"train.max_length={length}", f"train.max_steps={args.steps}", "train.eval_steps=0",
        f"train.save_steps={10 * args.steps}", "train.logging_steps=1", f"liger_kernel={str(liger).lower()}",
        f"attn_implementation={args.attn}", *MODES[mode],
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    print(f"--- {name}: python -m raft.finetune {' '.join(overrides)}", flush=True)
    try:
        proc = subprocess.run([sys.executable, "-c", WORKER, str(memfile), *overrides], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"run": name, "max_length": length, "mode": mode, "liger": liger, "status": f"timeout after {args.timeout} s"}
    base = {"run": name, "max_length": length, "mode": mode, "liger": liger}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        oom = "out of memory" in (proc.stderr + proc.stdout).lower()
        return {**base, "status": "out of memory" if oom else f"failed: {tail[-1] if tail else proc.returncode}"}
    summary = json.loads((output / "train_summary.json").read_text())
    memory = json.loads(memfile.read_text())
    shutil.rmtree(output, ignore_errors=True)
    return {
        **base,
        "status": "ok",
        "tokens_per_second": summary["tokens_per_second"],
        "tokens_seen": summary["tokens_seen"],
        "train_runtime_s": summary["train_runtime_s"],
        "peak_reserved_gib": memory["max_reserved"] / 1024**3,
        "peak_allocated_gib": memory["max_allocated"] / 1024**3,
        "liger_used": liger and not any("liger" in n for n in summary.get("fallbacks", [])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="2048,4096,8192", help="train.max_length values")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per run (8 sequences each)")
    parser.add_argument("--attn", default="sdpa", help="attn_implementation (flash_attention_2 if flash-attn is installed)")
    parser.add_argument("--no-liger", action="store_true", help="skip the Liger runs even if liger-kernel is installed")
    parser.add_argument("--work", default="", help="folder for the 16 GB random checkpoint (default: a temporary folder)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    parser.add_argument("--output", default="", help="JSON path (default benchmarks/results/finetune_gpu_<gpu>.json; '-': none)")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("skipped: no CUDA GPU on this machine")
        return 0
    gpu = torch.cuda.get_device_name(0)
    total_gib = torch.cuda.get_device_properties(0).total_memory / 1024**3
    peak = bf16_peak(gpu)
    liger_installed = importlib.util.find_spec("liger_kernel") is not None
    ligers = [False] + ([True] if liger_installed and not args.no_liger else [])
    if not liger_installed:
        print("liger-kernel is not installed: runs without Liger kernels only")
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if any(m not in MODES for m in modes):
        raise SystemExit(f"--modes: choose from {', '.join(MODES)}")

    runs = []
    with tempfile.TemporaryDirectory(prefix="raft-gpu-", dir=args.work or None) as tmp:
        work = Path(tmp)
        params = build_checkpoint(work)
        model = work / "llama31-8b-random"
        print(f"{gpu} ({total_gib:.0f} GiB), bf16 peak {peak / 1e12 if peak else '?'} TFLOPS; "
              f"random Llama-3.1-8B: {params / 1e9:.2f} B parameters in {model}", flush=True)
        for length in lengths:
            data = work / f"data-{length}.jsonl"
            write_data(data, model, length, rows=8 * args.steps * 4)
            for mode in modes:
                for liger in ligers:
                    got = run_one(model, data, work, length, mode, liger, args)
                    if got["status"] == "ok":
                        got["mfu"] = 6 * params * got["tokens_per_second"] / peak if peak else None
                        got["fits_40gb"] = got["peak_reserved_gib"] + 0.5 < FIT_GIB
                    runs.append(got)
                    print(json.dumps(got), flush=True)

    print(f"\n{'run':<26} {'peak reserved GiB':>17} {'tokens/s':>9} {'MFU':>6}  fits 40 GB")
    for r in runs:
        if r["status"] != "ok":
            print(f"{r['run']:<26} {r['status']}")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "?"
        print(f"{r['run']:<26} {r['peak_reserved_gib']:>17.1f} {r['tokens_per_second']:>9.0f} {mfu:>6}  {'yes' if r['fits_40gb'] else 'no'}")

    command = ("python benchmarks/finetune_gpu.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    common = {"command": command, "machine": f"{gpu} ({total_gib:.0f} GiB)", "date": datetime.now(UTC).strftime("%Y-%m-%d")}
    figures = []
    for r in runs:
        if r["status"] != "ok":
            figures.append({"figure": f"{r['run']}: status", "value": r["status"], "goal": "fits in 40 GB", **common})
            continue
        figures += [
            {"figure": f"{r['run']}: peak GPU memory reserved (GiB)", "value": round(r["peak_reserved_gib"], 2),
             "goal": f"< {FIT_GIB} to fit in 40 GB", **common},
            {"figure": f"{r['run']}: tokens/s", "value": round(r["tokens_per_second"], 1), "goal": "none (report)", **common},
            {"figure": f"{r['run']}: MFU (6N)", "value": round(r["mfu"], 4) if r["mfu"] is not None else None,
             "goal": "none (report)", **common},
        ]
    result = {"figures": figures, "details": {"gpu": gpu, "params": params, "bf16_peak_flops": peak,
                                              "liger_installed": liger_installed, "steps": args.steps, "runs": runs}}
    if args.output != "-":
        slug = re.sub(r"[^a-z0-9]+", "_", gpu.lower()).strip("_")
        write_result(result, args.output or RESULTS / f"finetune_gpu_{slug}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
