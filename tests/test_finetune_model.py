"""raft.finetune.model: what a machine makes of a recipe (device, precision, optimizer) and why."""

from __future__ import annotations

import pytest

from raft.config import load_config
from raft.finetune.model import resolve_runtime


def test_runtime_falls_back_on_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU fallbacks; this machine has a GPU")
    rt = resolve_runtime(load_config("finetune", ["recipe=llama31_8b_q4"]))
    assert (rt.device, rt.precision, rt.optim) == ("cpu", "fp32", "adamw_torch")
    assert any("paged_adamw_8bit" in n for n in rt.notes) and any("bf16" in n for n in rt.notes)
    assert resolve_runtime(load_config("finetune", ["recipe=tiny"])).notes == []


def test_step_settings_are_shares_or_counts():
    from raft.config import ConfigError
    from raft.finetune.model import every, sft_config

    def args(*overrides: str, has_eval: bool = True):
        cfg = load_config("finetune", ["recipe=tiny", "model=x", *overrides])
        return sft_config(cfg, resolve_runtime(cfg), has_eval)

    shares = args("train.logging_steps=0.05", "train.eval_steps=0.25", "train.save_steps=0.5")
    assert (shares.logging_steps, shares.eval_steps, shares.save_steps) == (0.05, 0.25, 0.5)
    assert (every(0.25, 30), every(0.1, 36), every(0.02, 36), every(10, 36)) == (8, 4, 1, 10)
    off = args("train.eval_steps=0", "train.save_steps=0")
    assert (off.eval_strategy, off.save_strategy) == ("no", "no")
    assert args(has_eval=False).eval_strategy == "no"  # no test split
    for bad in ("train.eval_steps=2.5", "train.save_steps=-1", "train.logging_steps=0"):
        with pytest.raises(ConfigError, match=bad.split("=")[0].replace(".", r"\.")):
            args(bad)
