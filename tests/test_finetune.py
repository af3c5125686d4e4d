"""raft.finetune on the tiny model on CPU: LoRA and 4-bit QLoRA runs, reload/merge/generate, resume
(and the refusals that keep two runs out of one folder), the recipes' schedule (fractional eval/save
steps), 2-process accelerate, one-line errors, and a ``--help`` that imports no training library.

The training data is the fixture of tests/test_finetune_data.py: a dataset in the layout
raft.generate writes, from the shared HotpotQA examples with the fake teacher's answers.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import test_finetune_data
from test_finetune_data import HOTPOT, raft_rows, write_raft_folder

from raft import finetune
from raft.cli import run_cli
from raft.config import ConfigError, available_recipes, load_config, recipe_path
from raft.finetune.data import fit_example, load_data
from raft.finetune.model import optimizer_steps, resolve_runtime, sft_config
from raft.finetune.outputs import FINGERPRINT_FILE, last_checkpoint
from raft.settings import TrainSettings

REPO = Path(__file__).resolve().parent.parent

# the data fixtures (a dataset in raft.generate's layout), shared with the data tests
hotpot_examples = test_finetune_data.hotpot_examples
raft_data = test_finetune_data.raft_data


def tiny_cfg(tiny_model: Path, data: Path, output: Path, *overrides: str):
    return load_config("finetune", ["recipe=tiny", f"model={tiny_model}", f"data={data}", f"output={output}", *overrides])


def summary_of(output: Path) -> dict:
    return json.loads((output / finetune.SUMMARY_FILE).read_text())


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


# --------------------------------------------------------------------------------------------------
# recipes
# --------------------------------------------------------------------------------------------------

OWN_RECIPES = ["llama31_8b_q4", "llama31_8b", "llama3_8b_q4", "llama3_8b", "llama2_7b_chat_q4", "llama2_7b_chat", "tiny"]


def _finetune_recipes() -> list[str]:
    import yaml

    return [n for n in available_recipes() if (yaml.safe_load(recipe_path(n).read_text()) or {}).get("command") == "finetune"]


def test_every_finetune_recipe_loads_and_says_only_what_differs():
    import yaml

    names = _finetune_recipes()
    assert set(OWN_RECIPES) <= set(names)
    defaults = load_config("finetune", ["model=x"])
    for name in names:
        cfg = load_config("finetune", [f"recipe={name}"])
        assert cfg.recipe == name and cfg.model
        text = recipe_path(name).read_text()
        data = yaml.safe_load(text)
        for line in text.splitlines():  # torchtune style: every setting carries a why-comment
            if re.match(r"^\s*[a-z_]+:\s*\S", line) and not line.startswith("command:"):
                assert "#" in line, f"{name}: setting without a comment: {line!r}"
        for section, values in data.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    assert getattr(getattr(defaults, section), key) != value, f"{name}: {section}.{key} repeats the default"
            elif section not in ("command", "model"):
                assert getattr(defaults, section) != values, f"{name}: {section} repeats the default"
    q4 = load_config("finetune", ["recipe=llama31_8b_q4"])
    assert (q4.model, q4.load_in_4bit, q4.lora.rank, q4.lora.target_modules, q4.train.max_length) == (
        "meta-llama/Llama-3.1-8B-Instruct", True, 64, "all-linear", 4096)
    assert all(load_config("finetune", [f"recipe={n}"]).load_in_4bit == n.endswith("_q4") for n in OWN_RECIPES if n != "tiny")


PUBLISHED_TRAIN_ROWS = 90  # recipe=hotpot: 100 rows, 10% held out as the test split


def test_llama_recipes_evaluate_and_checkpoint_on_the_published_data():
    """~90 rows at batch 1 x 8 accumulation: the llama recipes run 36 optimizer steps (their comments say
    so), and the fractional eval/save defaults make the SFTConfig evaluate and checkpoint every 4 of them."""
    from transformers import TrainerState

    for name in (n for n in OWN_RECIPES if n != "tiny"):
        cfg = load_config("finetune", [f"recipe={name}"])
        steps = optimizer_steps(cfg, PUBLISHED_TRAIN_ROWS)
        assert steps == 36 and cfg.train.num_train_epochs == 3, name
        assert f"-> {steps} optimizer steps" in recipe_path(name).read_text(), f"{name}: its comment must give the step count"
        args = sft_config(cfg, resolve_runtime(cfg), has_eval=True)
        assert (args.eval_strategy, args.save_strategy) == ("steps", "steps")
        assert (args.logging_steps, args.eval_steps, args.save_steps) == (0.02, 0.1, 0.1)  # shares of the run
        state = TrainerState()
        state.compute_steps(args, steps)  # what the Trainer makes of them at the start of training
        assert (state.logging_steps, state.eval_steps, state.save_steps) == (1, 4, 4)
        assert steps // state.eval_steps == 9 and steps // state.save_steps == 9
    # a run of a few rows still evaluates and checkpoints (every step); integers from 1 on stay step counts
    tiny = load_config("finetune", ["recipe=llama31_8b_q4"])
    state = TrainerState()
    state.compute_steps(sft_config(tiny, resolve_runtime(tiny), has_eval=True), optimizer_steps(tiny, 10))
    assert optimizer_steps(tiny, 10) == 6 and (state.eval_steps, state.save_steps) == (1, 1)
    fixed = load_config("finetune", ["recipe=llama31_8b_q4", "train.eval_steps=5", "train.save_steps=10", "train.logging_steps=1"])
    args = sft_config(fixed, resolve_runtime(fixed), has_eval=True)
    assert (args.logging_steps, args.eval_steps, args.save_steps) == (1, 5, 10)


def _launch_env(config: Path) -> dict[str, str]:
    """The environment `accelerate launch --config_file CONFIG -m raft.finetune` gives each process
    (accelerate's own parser and launcher code; nothing is started)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(
        ["--config_file", str(config), "-m", "raft.finetune", "recipe=llama31_8b_q4"]))
    return prepare_multi_gpu_env(args)


def test_accelerate_configs_turn_on_what_raft_finetune_needs(monkeypatch):
    """As accelerate reads them: fsdp_qlora.yaml makes raft.finetune store the 4-bit weights as bf16 (FSDP
    shards one dtype), keep checkpoints sharded and flatten frozen and LoRA weights together; ddp.yaml
    runs plain data parallel (uint8 storage, no FSDP plugin). Neither is a raft recipe."""
    import torch
    from accelerate.utils import FullyShardedDataParallelPlugin

    from raft.finetune.model import bnb_config

    folder = REPO / "recipes" / "accelerate"
    cfg = load_config("finetune", ["recipe=llama31_8b_q4"])
    for name in ("fsdp_qlora", "ddp"):
        env = _launch_env(folder / f"{name}.yaml")
        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith(("ACCELERATE_", "FSDP_"))]:
                m.delenv(key)
            for key, value in env.items():
                m.setenv(key, value)
            rt = resolve_runtime(cfg)
            storage = bnb_config(cfg, rt).bnb_4bit_quant_storage
            if name == "fsdp_qlora":
                assert rt.fsdp and storage == torch.bfloat16
                assert any("bnb_4bit_quant_storage" in n for n in rt.notes)
                # the plugin each process builds from that environment (sync_module_states asks for the GPU's index)
                m.setattr("accelerate.utils.dataclasses.is_cuda_available", lambda: True)
                m.setattr(torch.cuda, "current_device", lambda: 0)
                plugin = FullyShardedDataParallelPlugin()
                assert "SHARDED_STATE_DICT" in str(plugin.state_dict_type) and plugin.use_orig_params is False
                assert plugin.cpu_ram_efficient_loading and plugin.sync_module_states and plugin.fsdp_version == 1
            else:
                assert not rt.fsdp and storage == torch.uint8 and env.get("ACCELERATE_USE_FSDP") is None
    assert not any(n.startswith("accelerate") for n in available_recipes())


# --------------------------------------------------------------------------------------------------
# one-line errors
# --------------------------------------------------------------------------------------------------


def _cli_error(capsys, args: list[str]) -> str:
    capsys.readouterr()  # drop what the fixtures printed
    with pytest.raises(SystemExit) as e:
        run_cli("finetune", finetune.main, args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = [line.strip() for line in re.split(r"[\r\n]", err) if "error" in line.lower()]  # progress bars aside
    assert len(lines) == 1 and lines[0].startswith("raft.finetune: error: ") and "Traceback" not in err, err
    return lines[0]


def test_missing_dataset_is_one_line_without_traceback(tiny_model, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "raft.finetune", "recipe=tiny", f"model={tiny_model}", f"data={tmp_path / 'nothing'}", f"output={tmp_path / 'o'}"],
        capture_output=True, text=True, env=_env(), cwd=REPO, timeout=300,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"raft.finetune: error: data {tmp_path / 'nothing'} not found (run python -m raft.generate first or pass data=PATH)"]
    assert not (tmp_path / "o").exists()


def test_bad_data_errors(capsys, tiny_model, tmp_path, hotpot_examples):
    rows = raft_rows(hotpot_examples[:4])
    base = ["recipe=tiny", f"model={tiny_model}", f"output={tmp_path / 'out'}"]

    wrong = write_raft_folder(tmp_path / "wrong", [{k: v for k, v in r.items() if k != "completion"} for r in rows], rows[:1])
    err = _cli_error(capsys, [*base, f"data={wrong}"])
    assert "split 'train' lacks column(s) completion" in err and str(wrong) in err

    import datasets

    features = datasets.Dataset.from_list(rows).features
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({k: [] for k in features}, features=features)}).save_to_disk(str(tmp_path / "empty2"))
    err = _cli_error(capsys, [*base, f"data={tmp_path / 'empty2'}"])
    assert "split 'train' is empty" in err

    err = _cli_error(capsys, [*base, f"data={write_raft_folder(tmp_path / 'ok', rows, rows[:1])}", "train.max_length=40"])
    assert "no training example fits train.max_length=40" in err and "4 answers alone are longer" in err

    err = _cli_error(capsys, [*base, f"data={tmp_path / 'ok'}", "train.overlong=cut"])
    assert "train.overlong='cut'" in err

    err = _cli_error(capsys, [*base, f"data={tmp_path / 'ok'}", "resume=true"])
    assert "resume=true" in err and "no checkpoint" in err

    err = _cli_error(capsys, [*base, f"data={tmp_path / 'ok'}", "model=nobody/no-such-model"])
    assert err == "raft.finetune: error: cannot load model nobody/no-such-model: not found locally and the hub is offline; pass a local path"

    err = _cli_error(capsys, [*base, "data=nobody/no-such-dataset"])
    assert "hub is offline" in err


# --------------------------------------------------------------------------------------------------
# start-up cost
# --------------------------------------------------------------------------------------------------


HEAVY = ("torch", "transformers", "datasets", "trl", "peft", "bitsandbytes", "accelerate")
_IMPORTS_AFTER = (  # run `python -m raft.finetune ARGS`, then list the heavy modules it imported
    "import runpy, sys\n"
    "sys.argv = ['raft.finetune', *sys.argv[1:]]\n"
    "runpy.run_module('raft.finetune', run_name='__main__', alter_sys=True)\n"
    f"print('IMPORTED', sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
)


def _imported_by(*args: str) -> tuple[str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", _IMPORTS_AFTER, *args], capture_output=True, text=True, env=_env(),
                          cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out, _, imported = proc.stdout.rpartition("IMPORTED ")
    return out, ast.literal_eval(imported.strip())


def test_help_and_dry_run_import_no_training_stack(tiny_model):
    out, imported = _imported_by("--help")
    assert out.startswith("usage: python -m raft.finetune") and "lora.rank" in out
    assert imported == []  # --help imports none of torch, transformers, datasets, TRL, PEFT, bitsandbytes, accelerate
    out, imported = _imported_by("recipe=tiny", "dry_run=true", f"model={tiny_model}")
    assert "trainable LoRA parameters" in out
    # the dry run reads the config and builds an empty model (torch, transformers): no data or training library
    assert not {"datasets", "trl", "peft", "bitsandbytes"} & set(imported), imported


# --------------------------------------------------------------------------------------------------
# training runs on CPU
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_model, raft_data):
    """The tiny recipe as shipped (fp32 LoRA, 30 steps), with merge=true."""
    output = tmp_path_factory.mktemp("lora") / "out"
    cfg = tiny_cfg(tiny_model, raft_data, output, "merge=true")
    summary = finetune.main(cfg)
    return cfg, output, summary


def test_lora_run_loss_falls(lora_run):
    cfg, output, summary = lora_run
    on_disk = summary_of(output)
    assert on_disk["loss_curve"] == summary["loss_curve"] and on_disk["merged"] == str(output / "merged")
    losses = [e["loss"] for e in summary["loss_curve"]]
    assert [e["step"] for e in summary["loss_curve"]] == list(range(1, 31))
    early, late = _mean(losses[:5]), _mean(losses[-5:])
    print(f"tiny LoRA loss: first 5 steps {early:.3f}, last 5 steps {late:.3f}")
    assert late < early - 0.15, losses
    evals = [e["eval_loss"] for e in summary["eval_curve"]]
    assert [e["step"] for e in summary["eval_curve"]] == [10, 20, 30] and evals[-1] < evals[0]
    assert summary["global_step"] == 30 and summary["base_weights"] == "fp32" and summary["fallbacks"] == []
    assert 0 < summary["trainable_params"] < summary["total_params"]
    assert summary["examples"]["train"]["kept"] == 40 and summary["examples"]["test"]["kept"] == 8
    assert summary["overlong_policy"] == "truncate_documents" and summary["max_length"] == 512
    assert summary["tokens_seen"] > 30 * 100 and summary["tokens_per_second"] > 0 and summary["peak_memory"]["bytes"] > 0


def test_lora_run_outputs(lora_run):
    cfg, output, summary = lora_run
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja", "README.md"):
        assert (output / name).is_file(), name
    again = load_config("finetune", [f"recipe={output / 'recipe.yaml'}"])
    assert (again.model, again.lora, again.train) == (cfg.model, cfg.lora, cfg.train)
    card = (output / "README.md").read_text()
    assert f"base_model: {cfg.model}" in card and "rank 8" in card and "30 steps" in card
    assert json.loads((output / "adapter_config.json").read_text())["r"] == 8


def _example_loss(model, tokenizer, row) -> float:
    import torch

    prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=False)
    full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], return_dict=False)
    ids = torch.tensor([full])
    labels = ids.clone()
    labels[0, : len(prompt)] = -100
    with torch.no_grad():
        return model(input_ids=ids, labels=labels).loss.item()


def test_adapter_reloads_merges_and_generates(lora_run, tiny_model, raft_data):
    import datasets
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, output, _ = lora_run
    tokenizer = AutoTokenizer.from_pretrained(output)
    row = fit_example(datasets.load_from_disk(str(raft_data / "dataset"))["train"][0], tokenizer, 512, "truncate_documents")[1]
    base_loss = _example_loss(AutoModelForCausalLM.from_pretrained(tiny_model), tokenizer, row)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), output)
    tuned_loss = _example_loss(model, tokenizer, row)
    assert tuned_loss < base_loss - 0.1  # the trained adapter came back
    merged = model.merge_and_unload()
    assert not isinstance(merged, PeftModel)
    assert _example_loss(merged, tokenizer, row) == pytest.approx(tuned_loss, abs=1e-3)
    ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = merged.generate(**ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]

    # merge=true wrote a 16-bit model that loads like any model, with the tokenizer and its chat template
    disk = AutoModelForCausalLM.from_pretrained(output / "merged")
    assert disk.dtype == torch.bfloat16 and not hasattr(disk, "peft_config")
    assert AutoTokenizer.from_pretrained(output / "merged").chat_template == tokenizer.chat_template
    assert _example_loss(disk.float(), tokenizer, row) == pytest.approx(tuned_loss, abs=0.05)


LINEAR_MODULES = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


def _inspect_lora_layers(model) -> dict:
    """What the trainer's model is made of: every LoRA layer's frozen base layer, and what trains."""
    import bitsandbytes as bnb
    import torch
    from peft.tuners.lora import LoraLayer

    layers = {name: m.get_base_layer() for name, m in model.named_modules() if isinstance(m, LoraLayer)}
    return {
        "layers": len(layers),
        "targets": {name.rsplit(".", 1)[-1] for name in layers},
        "classes": {type(b).__name__ for b in layers.values()},
        "all_4bit": all(isinstance(b, bnb.nn.Linear4bit) and isinstance(b.weight, bnb.nn.Params4bit) for b in layers.values()),
        "quant_types": {b.weight.quant_state.quant_type for b in layers.values()},
        "double_quant": {bool(b.weight.quant_state.nested) for b in layers.values()},
        "packed_uint8": all(b.weight.dtype == torch.uint8 and not b.weight.requires_grad for b in layers.values()),
        "trainable": {n for n, p in model.named_parameters() if p.requires_grad},
    }


def test_qlora_4bit_run(tmp_path, tiny_model, raft_data, monkeypatch):
    """QLoRA as named: NF4 double-quantised Linear4bit base layers during training, a LoRA adapter (and
    only the adapter) saved with the recipe's rank/alpha/targets, a loss that falls, and a 16-bit merge."""
    import importlib
    import math

    from safetensors import safe_open
    from transformers import TrainerCallback

    seen: dict = {}

    class Inspect(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == 2:  # mid-run, after optimizer steps
                seen.update(_inspect_lora_layers(model))

    train_module = importlib.import_module("raft.finetune.train")
    saved = []
    real_save = train_module.save_adapter
    monkeypatch.setattr(train_module, "save_adapter", lambda trainer, out: (saved.append(out), real_save(trainer, out)))

    output = tmp_path / "q4"
    cfg = tiny_cfg(tiny_model, raft_data, output, "load_in_4bit=true", "train.max_steps=4", "train.eval_steps=2", "merge=true")
    summary = finetune.main(cfg, callbacks=[Inspect()])
    assert summary["base_weights"] == "4-bit NF4" and summary["global_step"] == 4
    losses = [e["loss"] for e in summary["loss_curve"]]
    evals = [e["eval_loss"] for e in summary["eval_curve"]]
    print(f"tiny QLoRA loss: {losses}, eval loss at steps 2 and 4: {evals}")
    assert len(losses) == 4 and all(0 < x < 20 for x in losses)

    # during the run: every LoRA target is a bitsandbytes Linear4bit holding packed NF4 weights with
    # double quantisation (nested absmax), frozen; only LoRA A/B matrices train
    assert seen["layers"] == 7 * 2 and seen["targets"] == LINEAR_MODULES  # 7 linear layers x 2 decoder layers
    assert seen["classes"] == {"Linear4bit"} and seen["all_4bit"] and seen["packed_uint8"]
    assert seen["quant_types"] == {"nf4"} and seen["double_quant"] == {True}
    assert seen["trainable"] and all(".lora_A." in n or ".lora_B." in n for n in seen["trainable"])

    # the loss falls: evaluated at steps 2 and 4, finite, lower at the end; training loss too
    assert [e["step"] for e in summary["eval_curve"]] == [2, 4] and all(math.isfinite(x) for x in evals)
    assert evals[-1] < evals[0] and losses[-1] < losses[0]

    # what is saved is the LoRA adapter with the recipe's settings, and only its weights
    assert saved == [cfg.output]
    adapter = json.loads((output / "adapter_config.json").read_text())
    assert (adapter["peft_type"], adapter["r"], adapter["lora_alpha"]) == ("LORA", cfg.lora.rank, cfg.lora.alpha)
    assert adapter["base_model_name_or_path"] == str(tiny_model)
    targets = adapter["target_modules"]  # all-linear, resolved by PEFT to the module names it wrapped
    assert len(set(targets)) == seen["layers"] and {t.rsplit(".", 1)[-1] for t in targets} == LINEAR_MODULES
    with safe_open(str(output / "adapter_model.safetensors"), "pt") as f:
        keys = list(f.keys())
        numel = sum(f.get_slice(k).get_shape()[0] * f.get_slice(k).get_shape()[1] for k in keys)
    assert len(keys) == 2 * seen["layers"] and all(".lora_A." in k or ".lora_B." in k for k in keys), keys
    assert numel == summary["trainable_params"]  # no base weight, no embedding, no norm
    assert not (output / "model.safetensors").exists()
    merged = json.loads((output / "merged" / "config.json").read_text())
    assert "quantization_config" not in merged and merged["dtype"] == "bfloat16"  # de-quantised base + adapter


def _stop_after(step: int):
    """A callback that ends training after ``step`` (its checkpoint written): a crash, seen from resume."""
    from transformers import TrainerCallback

    class StopAfter(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= step:
                control.should_training_stop = True

    return StopAfter()


def test_resume_continues_from_the_checkpoint(tmp_path, tiny_model, raft_data):
    output = tmp_path / "resume"
    common = ["train.max_steps=8", "train.eval_steps=0", "train.save_steps=2"]
    # an 8-step run that stops after step 4 (as if killed after its checkpoint)
    first = finetune.main(tiny_cfg(tiny_model, raft_data, output, *common), callbacks=[_stop_after(4)])
    assert (output / "checkpoint-4").is_dir() and first["global_step"] == 4
    assert json.loads((output / FINGERPRINT_FILE).read_text())["train.max_steps"] == 8

    # the same folder without resume=true, or resumed with other settings: refused, nothing mixed in
    with pytest.raises(ConfigError) as refused:
        finetune.main(tiny_cfg(tiny_model, raft_data, output, *common))
    assert "already holds checkpoints (checkpoint-4)" in str(refused.value) and "pass resume=true" in str(refused.value)
    with pytest.raises(ConfigError) as refused:
        finetune.main(tiny_cfg(tiny_model, raft_data, output, *common, "resume=true", "lora.rank=4", "train.learning_rate=0.02"))
    assert "lora.rank=4 (checkpoints: 8), train.learning_rate=0.02 (checkpoints: 0.01)" in str(refused.value)
    assert last_checkpoint(output) == str(output / "checkpoint-4")

    second = finetune.main(tiny_cfg(tiny_model, raft_data, output, "resume=true", *common))
    assert second["resumed_from"] == str(output / "checkpoint-4")
    assert second["global_step"] == 8 and (output / "checkpoint-8").is_dir()
    # the history up to step 4 came from the checkpoint; only steps 5-8 were trained now
    assert second["loss_curve"][:4] == first["loss_curve"]
    assert [e["step"] for e in second["loss_curve"]] == list(range(1, 9))
    assert second["tokens_seen"] > first["tokens_seen"]
    # and it is the run that was interrupted: the same losses as 8 steps without a stop
    straight = finetune.main(tiny_cfg(tiny_model, raft_data, tmp_path / "straight", *common))
    assert [e["loss"] for e in second["loss_curve"]] == pytest.approx([e["loss"] for e in straight["loss_curve"]], abs=1e-4)
    assert second["tokens_seen"] == straight["tokens_seen"]


@pytest.mark.slow
def test_recipe_schedule_evaluates_and_checkpoints_a_short_run(tmp_path, tiny_model, raft_data):
    """The llama recipes' schedule (batch 1 x 8 accumulation, 3 epochs, the fractional logging/eval/save
    defaults) on the 40-row fixture: 15 optimizer steps, evaluated and checkpointed every 2 and at the end."""
    defaults = TrainSettings()
    output = tmp_path / "schedule"
    cfg = tiny_cfg(tiny_model, raft_data, output, "train.max_steps=-1", "train.num_train_epochs=3",
                   "train.gradient_accumulation_steps=8", "train.per_device_eval_batch_size=8",
                   f"train.logging_steps={defaults.logging_steps}",
                   f"train.eval_steps={defaults.eval_steps}", f"train.save_steps={defaults.save_steps}")
    assert (cfg.train.eval_steps, cfg.train.save_steps) == (0.1, 0.1)
    summary = finetune.main(cfg)
    assert summary["global_step"] == optimizer_steps(cfg, 40) == 15
    assert [e["step"] for e in summary["loss_curve"]] == list(range(1, 16))
    evals = [e["eval_loss"] for e in summary["eval_curve"]]
    # every 2 steps (ceil(0.1 x 15)), and at the last step (transformers evaluates and saves there too)
    assert [e["step"] for e in summary["eval_curve"]] == [2, 4, 6, 8, 10, 12, 14, 15] and all(0 < x < 20 for x in evals)
    assert evals[-1] < evals[0]
    assert last_checkpoint(output) == str(output / "checkpoint-15") and (output / "checkpoint-14").is_dir()
    state = json.loads((output / "checkpoint-15" / "trainer_state.json").read_text())
    assert (state["eval_steps"], state["save_steps"], state["logging_steps"]) == (2, 2, 1)
    assert any("eval_loss" in e for e in state["log_history"])


@pytest.mark.slow
def test_two_process_accelerate_launch(tmp_path, tiny_model, raft_data):
    output = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "raft.finetune", "recipe=tiny", f"model={tiny_model}",
        f"data={raft_data}", f"output={output}", "train.max_steps=3", "train.eval_steps=0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = summary_of(output)
    assert summary["processes"] == 2 and summary["global_step"] == 3
    assert proc.stdout.count("raft.finetune: done") == 1  # only the main process reports and writes
    assert (output / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_trains_on_what_raft_generate_writes(tmp_path, teacher, shared_data, tiny_model):
    """The contract end to end: raft.generate (local teacher server) -> raft.finetune on its folder."""
    from raft import generate

    data = tmp_path / "generated"
    generate.main(load_config("generate", ["recipe=hotpot", f"input={shared_data / HOTPOT}", f"output={data}",
                                           f"teacher.base_url={teacher.base_url}", "limit=12", "hotpot.eval_questions=50"]), progress=False)
    rows = load_data(str(data))
    summary = finetune.main(tiny_cfg(tiny_model, data, tmp_path / "out", "train.max_steps=3", "train.eval_steps=0"))
    assert summary["global_step"] == 3 and summary["examples"]["train"]["examples"] == len(rows["train"]) > 0
    assert summary["examples"]["train"]["kept"] > 0
