"""Recipes and overrides: every shipped recipe loads, user mistakes are one-line errors with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raft.config import (
    SCHEMAS,
    ConfigError,
    FinetuneConfig,
    available_recipes,
    help_text,
    load_config,
    resource_dir,
    save_config,
)

RECIPES = resource_dir("recipes")
ALL_YAML = sorted(RECIPES.rglob("*.yaml"))


def _run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("path", ALL_YAML, ids=[str(p.relative_to(RECIPES)) for p in ALL_YAML])
def test_every_recipe_yaml_loads(path: Path):
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), f"{path} is not a mapping"
    if "command" not in data:  # accelerate configs and similar live beside the recipes
        assert path.parent.name != "recipes", f"{path}: a top-level recipe needs a 'command' key"
        return
    command = data["command"]
    assert command in SCHEMAS
    required = {"finetune": ["model=placeholder"], "evaluate": ["model=placeholder"]}.get(command, [])
    cfg = load_config(command, [f"recipe={path}", *required])
    assert isinstance(cfg, SCHEMAS[command])


def test_overrides_merge_over_recipe_over_defaults(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("command: finetune\nmodel: some/model\nlora:\n  rank: 8\ntrain:\n  learning_rate: 1.0e-3\n")
    cfg = load_config("finetune", [f"recipe={recipe}", "lora.rank=16", "train.max_steps=5", "lora.target_modules=[q_proj, v_proj]"])
    assert cfg.model == "some/model"  # from the recipe
    assert cfg.lora.rank == 16  # override beats recipe
    assert cfg.train.learning_rate == 1e-3  # recipe beats default
    assert cfg.train.max_steps == 5
    assert cfg.lora.target_modules == ["q_proj", "v_proj"]
    assert cfg.lora.dropout == FinetuneConfig().lora.dropout  # default untouched


@pytest.mark.parametrize(
    "args, expected",
    [
        (["model=m", "lora.rnak=8"], "unknown key 'lora.rnak' in command line; did you mean 'lora.rank'?"),
        (["model=m", "lora.rank=abc"], "lora.rank='abc' is not int"),
        (["model=m", "train.learning_rate=fast"], "train.learning_rate='fast' is not float"),
        (["recipe=does_not_exist"], "unknown recipe 'does_not_exist'; available:"),
        (["lora.rank=8"], "missing required setting 'model'"),
        (["model"], "argument 'model' is not key=value"),
    ],
)
def test_user_errors_name_the_key(args, expected):
    with pytest.raises(ConfigError) as err:
        load_config("finetune", args)
    message = str(err.value)
    assert expected in message and "\n" not in message


def test_recipe_for_another_command_is_refused(tmp_path):
    recipe = tmp_path / "g.yaml"
    recipe.write_text("command: generate\nseed: 1\n")
    with pytest.raises(ConfigError, match="is for raft.generate, not raft.finetune"):
        load_config("finetune", [f"recipe={recipe}", "model=m"])


def test_unknown_key_inside_a_recipe_names_the_file(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("command: generate\nquestion_per_chunk: 2\n")
    with pytest.raises(ConfigError, match=r"bad.yaml; did you mean 'questions_per_chunk'"):
        load_config("generate", [f"recipe={recipe}"])


def test_help_lists_every_key_with_default_and_description():
    text = help_text("finetune")
    for key in ("model", "lora.rank", "lora.target_modules", "train.learning_rate", "train.max_steps", "resume", "merge", "dry_run"):
        assert f"  {key}: " in text
    assert "lora.rank: 64  LoRA rank" in text


def test_saved_config_reloads_to_the_same_configuration(tmp_path):
    cfg = load_config("finetune", ["model=m", "lora.rank=8", "train.max_steps=3"])
    path = save_config(cfg, tmp_path)
    again = load_config("finetune", [f"recipe={path}"])
    assert again.lora.rank == 8 and again.train.max_steps == 3 and again.model == "m"


def test_available_recipes_are_top_level_recipes_only():
    names = available_recipes()
    assert names, "no recipes found"
    assert all(not n.startswith("accelerate/") for n in names)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["raft.finetune", "recipe=does_not_exist"], "unknown recipe 'does_not_exist'"),
        (["raft.finetune", "recipe=llama31_8b_q4", "lora.rank=abc"], "lora.rank='abc' is not int"),
    ],
)
def test_cli_user_errors_exit_2_without_traceback(args, expected):
    if args[0] == "raft.finetune" and "recipe=llama31_8b_q4" in args and "llama31_8b_q4" not in available_recipes():
        pytest.fail("the llama31_8b_q4 recipe is missing")
    proc = _run(*args)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_help_exits_0():
    proc = _run("raft.finetune", "--help")
    assert proc.returncode == 0 and "lora.rank" in proc.stdout


def test_read_jsonl_names_the_file_and_line(tmp_path):
    from raft.records import read_jsonl

    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    path.write_text('{"a": 1}\n{"a": \n')
    with pytest.raises(ConfigError, match=r"rows.jsonl line 2: not valid JSON"):
        read_jsonl(path)
    path.write_text('{"a": 1}\n[1, 2]\n')
    with pytest.raises(ConfigError, match=r"rows.jsonl line 2: not a JSON object"):
        read_jsonl(path)
    with pytest.raises(ConfigError, match=r"missing.jsonl: cannot read"):
        read_jsonl(tmp_path / "missing.jsonl")


@pytest.mark.parametrize("command", ["generate", "finetune", "evaluate"])
def test_help_lists_only_the_recipes_of_its_command(command):
    from raft.config import help_text, recipe_path

    listed = help_text(command).split("recipes: ", 1)[1].splitlines()[0].split(", ")
    assert listed == available_recipes(command) and listed
    for name in available_recipes():
        try:
            of = (yaml.safe_load(recipe_path(name, command).read_text()) or {}).get("command")
        except ConfigError:  # a recipe folder without a file for this command
            of = None
        assert (name in listed) == (of == command), name


def test_a_recipe_folder_holds_one_file_per_command(tmp_path, monkeypatch):
    """recipes/NAME/COMMAND.yaml: the same recipe name for several commands (alignment-handbook's layout)."""
    import raft.config

    (tmp_path / "both").mkdir()
    (tmp_path / "both" / "generate.yaml").write_text("command: generate\nlimit: 7\n")
    (tmp_path / "both" / "evaluate.yaml").write_text("command: evaluate\nmodel: m\nlimit: 3\n")
    (tmp_path / "single.yaml").write_text("command: generate\nlimit: 5\n")
    (tmp_path / "accelerate").mkdir()
    (tmp_path / "accelerate" / "ddp.yaml").write_text("distributed_type: MULTI_GPU\n")  # not a recipe
    monkeypatch.setattr(raft.config, "resource_dir", lambda name: tmp_path)
    assert available_recipes() == ["both", "single"] and available_recipes("evaluate") == ["both"]
    assert load_config("generate", ["recipe=both"]).limit == 7
    assert load_config("evaluate", ["recipe=both"]).limit == 3
    assert load_config("generate", ["recipe=single"]).limit == 5
    with pytest.raises(ConfigError, match=r"recipe 'single' is for raft.generate, not raft.evaluate"):
        load_config("evaluate", ["recipe=single"])


def test_a_kinds_settings_live_in_its_section_and_short_keys_still_work(tmp_path):
    cfg = load_config("generate", ["p=0.5", "raft.distractors=2", "questions_per_chunk=3"])
    assert (cfg.kind, cfg.raft.p, cfg.raft.distractors, cfg.raft.questions_per_chunk) == ("raft", 0.5, 2, 3)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("command: generate\np: 0.25\nraft:\n  answer_context: oracle\n")
    cfg = load_config("generate", [f"recipe={recipe}", "distractor_strategy=hard"])
    assert (cfg.raft.p, cfg.raft.answer_context, cfg.raft.distractor_strategy) == (0.25, "oracle", "hard")
    assert not hasattr(cfg, "p")  # one place for each setting
    with pytest.raises(ConfigError, match=r"unknown key 'distractor' in command line; did you mean 'distractors'"):
        load_config("generate", ["distractor=2"])
    # the short form belongs to the chosen kind only: another kind does not see raft's keys
    with pytest.raises(ConfigError, match=r"unknown key 'p'"):
        load_config("generate", ["kind=other", "p=0.5"])


def test_an_old_dependency_stops_the_command_with_one_line(monkeypatch, capsys):
    """The floors pyproject.toml declares are checked before any work (here: transformers 4.56)."""
    import importlib.metadata

    from raft.cli import run_cli

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "4.56.0" if name == "transformers" else real(name))
    ran = []
    with pytest.raises(SystemExit) as e:
        run_cli("generate", ran.append, ["dry_run=true"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and not ran and len(err.splitlines()) == 1
    assert "transformers 4.56.0 is installed; raft-recipes needs transformers>=5.0" in err

    def missing(name):
        if name == "datasets":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    with pytest.raises(SystemExit):
        run_cli("generate", ran.append, ["dry_run=true"])
    assert "datasets is not installed; raft-recipes needs datasets>=4.0" in capsys.readouterr().err


def test_declared_floors_are_the_ones_the_code_needs_and_ci_installs_a_lock():
    import tomllib

    from packaging.requirements import Requirement

    root = Path(__file__).resolve().parent.parent
    declared = {Requirement(r).name: Requirement(r) for r in tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]}
    # transformers 5: warmup_steps below 1 as a share; trl 1; datasets 4: datasets.List; bitsandbytes 0.50: 4-bit on CPU
    for name, too_old, enough in [("transformers", "4.57.0", "5.0.0"), ("trl", "0.29.0", "1.0.0"),
                                  ("datasets", "3.6.0", "4.0.0"), ("bitsandbytes", "0.49.0", "0.50.0")]:
        assert not declared[name].specifier.contains(too_old) and declared[name].specifier.contains(enough), name
    lock = {}
    for line in (root / ".ci" / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            lock[name.lower()] = version.strip()
    assert "torch" not in lock and not any(n.startswith("nvidia") for n in lock)  # CI's torch is the CPU wheel
    for name, req in declared.items():
        if name != "torch":
            assert req.specifier.contains(lock[name.lower()]), f"{name}: the lock's {lock[name.lower()]} is outside {req}"
    assert "-r .ci/requirements.lock" in (root / ".ci" / "run").read_text()
