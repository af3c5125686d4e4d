"""raft.finetune.outputs without training: the adapter save under FSDP (transformers' Trainer and
accelerate's FSDP plugin; only the FSDP gather, which cannot run on a CPU, is stood in for), and the output-folder rules (one run per folder; resume only with the same settings).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from raft import finetune
from raft.cli import run_cli
from raft.config import ConfigError, load_config
from raft.finetune.outputs import (
    FINGERPRINT_FILE,
    NOT_IN_FINGERPRINT,
    check_output,
    fingerprint,
    last_checkpoint,
    save_adapter,
    write_fingerprint,
)

# --------------------------------------------------------------------------------------------------
# the adapter under FSDP
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def lora_trainer(tiny_model, tmp_path):
    """A real transformers Trainer around a LoRA model of the tiny Llama (CPU, no training)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), LoraConfig(r=4, target_modules="all-linear"))
    return Trainer(model=model, args=TrainingArguments(output_dir=str(tmp_path / "run"), use_cpu=True, report_to=[]))


def test_save_adapter_under_fsdp_switches_to_a_full_state_dict_first(lora_trainer, tmp_path, monkeypatch):
    """transformers' own Trainer.save_model and accelerate's own FSDP plugin, as fsdp_qlora.yaml makes it
    (SHARDED_STATE_DICT checkpoints). FSDP itself cannot run on a CPU, so only what it would do differently
    is stood in for: the trainer is told FSDP is on (as Trainer.__init__ sets it under accelerate launch),
    and accelerate's get_state_dict, which would gather the shards, reads the unsharded model."""
    from accelerate.utils import FullyShardedDataParallelPlugin

    plugin = FullyShardedDataParallelPlugin(state_dict_type="SHARDED_STATE_DICT")
    monkeypatch.setattr(lora_trainer.accelerator.state, "fsdp_plugin", plugin, raising=False)
    monkeypatch.setattr(lora_trainer, "is_fsdp_enabled", True)

    lora_trainer.save_model(str(tmp_path / "plain_save"))  # what Trainer.save_model does on its own
    assert not (tmp_path / "plain_save" / "adapter_model.safetensors").exists()

    save_adapter(lora_trainer, tmp_path / "out")
    assert "FULL_STATE_DICT" in str(plugin.state_dict_type)
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file() and (tmp_path / "out" / "adapter_config.json").is_file()
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "out" / "adapter_model.safetensors")
    assert saved and all("lora_" in k for k in saved)  # the adapter, not the base weights


def test_save_adapter_without_fsdp_leaves_the_plugin_alone(lora_trainer, tmp_path):
    assert lora_trainer.is_fsdp_enabled is False
    save_adapter(lora_trainer, tmp_path / "plain")  # one GPU, DDP, CPU
    assert (tmp_path / "plain" / "adapter_model.safetensors").is_file()
    assert getattr(lora_trainer.accelerator.state, "fsdp_plugin", None) is None


def test_fsdp_config_keeps_sharded_checkpoints():
    import yaml

    config = yaml.safe_load((Path(__file__).resolve().parent.parent / "recipes" / "accelerate" / "fsdp_qlora.yaml").read_text())
    assert config["fsdp_config"]["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"  # save_adapter gathers the final one


# --------------------------------------------------------------------------------------------------
# one run per output folder
# --------------------------------------------------------------------------------------------------


def _cfg(output: Path, *overrides: str):
    return load_config("finetune", ["recipe=tiny", "model=some/model", "data=some/data", f"output={output}", *overrides])


def _checkpoint(output: Path, step: int, complete: bool = True) -> Path:
    folder = output / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def test_fingerprint_holds_what_changes_the_weights(tmp_path):
    fp = fingerprint(_cfg(tmp_path))
    assert {"model", "data", "seed", "load_in_4bit", "lora.rank", "lora.alpha", "lora.target_modules",
            "train.learning_rate", "train.max_steps", "train.num_train_epochs", "train.max_length"} <= set(fp)
    assert not set(NOT_IN_FINGERPRINT) & set(fp)
    assert not {"output", "resume", "merge", "dry_run", "recipe"} & set(fp)
    assert fp["model"] == "some/model" and fp["lora.rank"] == 8


def test_a_new_folder_starts_and_resume_needs_a_checkpoint(tmp_path):
    assert check_output(_cfg(tmp_path / "new")) is None
    assert last_checkpoint(tmp_path / "new") is None
    with pytest.raises(ConfigError, match="resume=true but .* holds no checkpoint"):
        check_output(_cfg(tmp_path / "new", "resume=true"))
    write_fingerprint(_cfg(tmp_path / "fp"))  # a run that died before its first checkpoint: starting again is fine
    assert check_output(_cfg(tmp_path / "fp", "lora.rank=4")) is None


def test_checkpoints_need_resume_and_the_same_settings(tmp_path):
    out = tmp_path / "run"
    write_fingerprint(_cfg(out))
    _checkpoint(out, 3)
    _checkpoint(out, 12)

    # without resume=true: refused, whatever the settings
    with pytest.raises(ConfigError) as e:
        check_output(_cfg(out))
    msg = str(e.value)
    assert "already holds checkpoints (checkpoint-12)" in msg and "pass resume=true" in msg and "output=" in msg
    with pytest.raises(ConfigError, match=r"other settings: lora\.rank=4 \(checkpoints: 8\)"):
        check_output(_cfg(out, "lora.rank=4"))

    # resume=true, same settings: the last checkpoint (settings that do not change the weights may differ)
    assert check_output(_cfg(out, "resume=true")) == str(out / "checkpoint-12")
    assert check_output(_cfg(out, "resume=true", "train.eval_steps=0.5", "train.logging_steps=5",
                              "train.save_total_limit=4", "train.per_device_eval_batch_size=4")) == str(out / "checkpoint-12")

    # resume=true, other settings: one line naming each of them
    with pytest.raises(ConfigError) as e:
        check_output(_cfg(out, "resume=true", "train.learning_rate=0.02", "seed=1", "train.max_steps=60"))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("resume=true: the checkpoints in")
    assert "seed=1 (checkpoints: 42)" in msg and "train.learning_rate=0.02 (checkpoints: 0.01)" in msg
    assert "train.max_steps=60 (checkpoints: 30)" in msg and "lora" not in msg


def test_checkpoints_of_unknown_origin_or_half_written_are_refused(tmp_path):
    foreign = tmp_path / "foreign"
    _checkpoint(foreign, 5)  # no finetune_run.json: not this raft.finetune's
    for resume in ("false", "true"):
        with pytest.raises(ConfigError, match=f"holds checkpoint-5 but no {FINGERPRINT_FILE}"):
            check_output(_cfg(foreign, f"resume={resume}"))

    cut = tmp_path / "cut"
    write_fingerprint(_cfg(cut))
    _checkpoint(cut, 4)
    _checkpoint(cut, 8, complete=False)  # killed while saving
    with pytest.raises(ConfigError, match="checkpoint-8 is incomplete"):
        check_output(_cfg(cut, "resume=true"))


def test_refusals_are_one_line_at_the_command_line(tmp_path, capsys):
    out = tmp_path / "run"
    write_fingerprint(_cfg(out))
    _checkpoint(out, 6)
    for extra, expected in (([], "already holds checkpoints (checkpoint-6)"), (["resume=true", "lora.alpha=32"], "lora.alpha=32 (checkpoints: 16)")):
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:  # refused before the (missing) data or model is looked at
            run_cli("finetune", finetune.main, ["recipe=tiny", "model=some/model", "data=some/data", f"output={out}", *extra])
        assert e.value.code == 2
        lines = [line for line in re.split(r"[\r\n]", capsys.readouterr().err) if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("raft.finetune: error: ") and expected in lines[0], lines
