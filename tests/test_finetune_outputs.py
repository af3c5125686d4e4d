"""raft.finetune.outputs without training: the adapter save under FSDP (a fake trainer: FSDP cannot run
on a CPU), and the output-folder rules (one run per folder; resume only with the same settings).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from raft import finetune
from raft.config import ConfigError, load_config, run_cli
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


class FakeFsdpTrainer:
    """What save_adapter touches of a transformers Trainer under FSDP, with Trainer.save_model's rule:
    it writes the adapter only when the plugin's state dict type is FULL_STATE_DICT."""

    def __init__(self, fsdp: bool, state_dict_type: str = "StateDictType.SHARDED_STATE_DICT"):
        self.calls: list[tuple[str, str]] = []
        self.is_fsdp_enabled = fsdp
        plugin = SimpleNamespace(state_dict_type=state_dict_type, set_state_dict_type=self._set_state_dict_type)
        self.plugin = plugin
        self.accelerator = SimpleNamespace(state=SimpleNamespace(fsdp_plugin=plugin if fsdp else None))

    def _set_state_dict_type(self, state_dict_type: str) -> None:
        self.calls.append(("set_state_dict_type", state_dict_type))
        self.plugin.state_dict_type = f"StateDictType.{state_dict_type}"

    def save_model(self, output_dir: str) -> None:
        self.calls.append(("save_model", output_dir))
        if not self.is_fsdp_enabled or "FULL_STATE_DICT" in str(self.plugin.state_dict_type):
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "adapter_model.safetensors").write_bytes(b"adapter")


def test_save_adapter_under_fsdp_switches_to_a_full_state_dict_first(tmp_path):
    trainer = FakeFsdpTrainer(fsdp=True)  # fsdp_qlora.yaml: SHARDED_STATE_DICT checkpoints
    save_adapter(trainer, tmp_path / "out")
    assert trainer.calls == [("set_state_dict_type", "FULL_STATE_DICT"), ("save_model", str(tmp_path / "out"))]
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()  # sharded, save_model would write nothing

    plain = FakeFsdpTrainer(fsdp=False)  # one GPU, DDP, CPU: the plugin is left alone
    save_adapter(plain, tmp_path / "plain")
    assert plain.calls == [("save_model", str(tmp_path / "plain"))]
    assert (tmp_path / "plain" / "adapter_model.safetensors").is_file()


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
