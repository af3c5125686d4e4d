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
