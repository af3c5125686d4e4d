"""raft.finetune.memory: the dry run counts parameters and estimates GPU memory from the architecture
alone (the built-in shapes of the recipe models offline, a local config.json), and its counts match a
real PEFT model.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from raft import finetune
from raft.cli import run_cli
from raft.config import load_config
from raft.finetune.memory import GiB, dry_run
from raft.finetune.model import lora_config


def _lora_params_by_hand(h: int, kv: int, i: int, layers: int, rank: int) -> int:
    per_layer = [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]  # q k v o gate up down
    return layers * rank * sum(a + b for a, b in per_layer)


def test_dry_run_headline_recipe_offline(capsys):
    assert not Path("meta-llama/Llama-3.1-8B-Instruct").exists()  # nothing local, the hub offline: the built-in shapes
    run_cli("finetune", finetune.main, ["recipe=llama31_8b_q4", "dry_run=true"])
    out = capsys.readouterr().out
    h, kv, i, layers, vocab = 4096, 1024, 14336, 32, 128256
    total = 2 * vocab * h + layers * (2 * h * h + 2 * h * kv + 3 * h * i + 2 * h) + h
    assert f"parameters: {total:,} total" in out  # 8.03 B
    assert f"trainable LoRA parameters (rank 64, all-linear): {_lora_params_by_hand(h, kv, i, layers, 64):,}" in out
    assert "model: meta-llama/Llama-3.1-8B-Instruct" in out and "max_length: 4096" in out and "no download" in out
    q4 = float(re.search(r"total\s+([\d.]+) GiB", out).group(1))
    assert q4 < 0.95 * 40 and "40 GB: yes" in out  # the published setting: one 40 GB A100

    bf16 = dry_run(load_config("finetune", ["recipe=llama31_8b"]))["memory_gib"]
    assert bf16["weights"] == pytest.approx(total * 2 / GiB)
    assert bf16["total"] > q4 + 5
    # rank, targets and max_length move the numbers the way they should
    small = dry_run(load_config("finetune", ["recipe=llama31_8b_q4", "lora.rank=16", "lora.target_modules=[q_proj,v_proj]"]))
    assert small["params"]["lora"] == layers * 16 * ((h + h) + (h + kv))
    base = dry_run(load_config("finetune", ["recipe=llama31_8b_q4"]))["memory_gib"]
    longer = dry_run(load_config("finetune", ["recipe=llama31_8b_q4", "train.max_length=8192"]))["memory_gib"]
    assert longer["activations"] == pytest.approx(2 * base["activations"]) and longer["weights"] == base["weights"]
    llama2 = dry_run(load_config("finetune", ["recipe=llama2_7b_chat_q4"]))
    assert llama2["params"]["lora"] == _lora_params_by_hand(4096, 4096, 11008, 32, 64)


def test_dry_run_counts_match_a_real_peft_model(tiny_model):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    cfg = load_config("finetune", ["recipe=tiny", f"model={tiny_model}", "dry_run=true"])
    estimate = dry_run(cfg)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), lora_config(cfg))
    trainable, total = model.get_nb_trainable_parameters()
    assert estimate["params"]["lora"] == trainable
    assert estimate["params"]["total"] == total - trainable
