"""Typed recipes: loading, checking and saving the settings of every command (``raft.settings``).

A command's configuration is built in three layers (later wins):

1. the dataclass defaults in ``raft.settings`` (the only place defaults live),
2. a recipe YAML: ``recipe=NAME`` loads ``recipes/NAME.yaml`` (shipped inside the package too),
   ``recipe=path/to/file.yaml`` loads that file; a recipe only says what differs,
3. dotted ``key=value`` overrides from the command line (``lora.rank=16 train.learning_rate=1e-4``).

User mistakes (unknown recipe, misspelled key, wrong type) raise ``ConfigError`` with a one-line
message; ``raft.cli.run_cli`` prints it and exits with status 2, without a traceback. ``--help`` lists every
key with its default and description. ``save_config`` writes the effective configuration next to
a command's outputs so that a run can be reproduced.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import raft.settings
from raft.settings import (  # noqa: F401  (re-exported: the commands import their schema from here)
    SCHEMAS,
    BioNeedleSettings,
    EvaluateConfig,
    FinetuneConfig,
    GenerateConfig,
    HotpotSettings,
    In2Settings,
    LoraSettings,
    RaftSettings,
    TeacherConfig,
    TrainSettings,
)

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Top-level ``recipes/`` or ``eval_tasks/``: the checkout's copy if there is one, else the installed one."""
    checkout = PACKAGE_DIR.parent / name
    return checkout if checkout.is_dir() else PACKAGE_DIR / name


class ConfigError(ValueError):
    """A user error in a recipe or an override: printed as one line, exit status 2."""


def first_line(error: BaseException | str) -> str:
    """The first line of an error's message (its type name when it has none), for one-line errors."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------


def _keys(schema: type, prefix: str = "") -> dict[str, dataclasses.Field]:
    """Every dotted key of a schema, leaves and sections."""
    out: dict[str, dataclasses.Field] = {}
    for f in dataclasses.fields(schema):
        key = prefix + f.name
        out[key] = f
        if dataclasses.is_dataclass(f.type if isinstance(f.type, type) else None):
            out.update(_keys(f.type, key + "."))
        elif isinstance(f.type, str):
            sub = vars(raft.settings).get(f.type)
            if isinstance(sub, type) and dataclasses.is_dataclass(sub):
                out.update(_keys(sub, key + "."))
    return out


def _check_keys(schema: type, keys: list[str], where: str, section: str = "") -> None:
    valid = _keys(schema)
    short = [k[len(section) + 1 :] for k in valid if section and k.startswith(section + ".")]  # also accepted
    for key in keys:
        if key not in valid and not _in_mapping(key, valid):
            near = difflib.get_close_matches(key, [*valid, *short], n=1, cutoff=0.5)
            hint = f"; did you mean '{near[0]}'?" if near else f"; valid keys: {', '.join(sorted(valid))}"
            raise ConfigError(f"unknown key '{key}' in {where}{hint}")


def _in_mapping(key: str, valid: dict[str, dataclasses.Field]) -> bool:
    """Whether ``key`` lies inside a free-form mapping setting (``teacher.ray.engine_kwargs.dtype``)."""
    parts = key.split(".")
    for n in range(1, len(parts)):
        f = valid.get(".".join(parts[:n]))
        if f is not None and f.default_factory is not dataclasses.MISSING and isinstance(f.default_factory(), dict):
            return True
    return False


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def check_all(checks: list[tuple[bool, str]]) -> None:
    """Raise ConfigError with the message of the first check that fails (settings are checked before work)."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def available_recipes(command: str = "") -> list[str]:
    """Recipe names, all of them or those of one command. ``recipes/NAME.yaml`` is recipe NAME;
    ``recipes/NAME/COMMAND.yaml`` is recipe NAME of that command (one folder per recipe that spans
    commands: ``recipe=bio_needle`` is ``bio_needle/generate.yaml`` for raft.generate and
    ``bio_needle/evaluate.yaml`` for raft.evaluate)."""
    root = resource_dir("recipes")
    names = set()
    for p in root.rglob("*.yaml"):
        of = _recipe_command(p)
        if of and (not command or of == command):
            names.add(str(p.parent.relative_to(root)) if p.stem == of and p.parent != root else str(p.relative_to(root).with_suffix("")))
    return sorted(names)


def _recipe_command(path: Path) -> str:
    """The command a recipe is for ('' when the YAML is not a recipe: accelerate configs live beside them)."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return ""
    return str(data["command"]) if isinstance(data, dict) and "command" in data else ""


def recipe_path(name: str, command: str = "") -> Path:
    """The file of recipe ``name`` (for ``command``: ``recipes/NAME/COMMAND.yaml`` first), or a path."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ConfigError(f"recipe file not found: {name}")
        return p
    root = resource_dir("recipes")
    candidates = [root / name / f"{command}.yaml"] if command else sorted((root / name).glob("*.yaml"))[:1]
    for candidate in [*candidates, root / f"{name}.yaml"]:
        if candidate.is_file() and _recipe_command(candidate):
            return candidate
    raise ConfigError(f"unknown recipe '{name}'; available: {', '.join(available_recipes(command))}")


def _type_name(schema: type, key: str) -> str:
    f = _keys(schema).get(key)
    if f is None:
        return "a valid value"
    t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return str(t).replace("typing.", "")


def _in_section(schema: type, flat: dict[str, Any], section: str) -> dict[str, Any]:
    """Short keys of one section spelled in full: ``p`` -> ``raft.p`` when ``section='raft'`` and the
    schema has no top-level ``p``."""
    valid = _keys(schema)
    return {f"{section}.{k}" if k not in valid and f"{section}.{k}" in valid else k: v for k, v in flat.items()}


def _merge(schema: type, base: DictConfig, layer: dict[str, Any], where: str, section: str = "") -> DictConfig:
    flat = _flatten(layer)
    if section:
        flat = _in_section(schema, flat, section)
    _check_keys(schema, list(flat), where, section)
    for key, value in flat.items():
        try:
            OmegaConf.update(base, key, value, merge=True)
        except OmegaConfBaseException as e:
            raise ConfigError(f"{where}: {key}={value!r} is not {_type_name(schema, key)}") from e
    return base


def _parse_value(raw: str) -> Any:
    """'16' -> 16, 'true' -> True, '[q_proj, v_proj]' -> list, 'null' -> None; otherwise the string."""
    try:
        return yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        return raw


def load_config(command: str, args: list[str]) -> Any:
    """Build the effective configuration of ``command`` ('generate', 'finetune', 'evaluate') from CLI args."""
    schema = SCHEMAS[command]
    overrides: dict[str, Any] = {}
    recipe = ""
    for arg in args:
        if "=" not in arg:
            raise ConfigError(f"argument '{arg}' is not key=value (try --help)")
        key, raw = arg.split("=", 1)
        key = key.lstrip("-")
        if key == "recipe":
            recipe = raw
        else:
            overrides[key] = _parse_value(raw)
    cfg = OmegaConf.structured(schema)
    data: dict[str, Any] = {}
    if recipe:
        path = recipe_path(recipe, command)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML ({first_line(e)})") from e
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a recipe must be a YAML mapping")
        rcmd = data.pop("command", command)
        if rcmd != command:
            raise ConfigError(f"recipe '{recipe}' is for raft.{rcmd}, not raft.{command}")
    # the chosen kind's section (generate): its keys may be written without the section name
    section = str(overrides.get("kind", data.get("kind", cfg.kind))) if "kind" in cfg else ""
    if recipe:
        cfg = _merge(schema, cfg, data, str(path), section)
        cfg.recipe = recipe
    cfg = _merge(schema, cfg, overrides, "command line", section)
    missing = sorted(k for k in OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"missing required setting '{missing[0]}' (pass {missing[0]}=... or a recipe that sets it)")
    return OmegaConf.to_object(cfg)


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, folder: str | Path, name: str = "recipe.yaml") -> Path:
    """Write the effective configuration (a reproducible recipe) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    command = next(k for k, v in SCHEMAS.items() if isinstance(cfg, v))
    data = {"command": command, **to_dict(cfg)}
    path.write_text("# effective configuration: rerun with recipe=" + str(path) + "\n" + yaml.safe_dump(data, sort_keys=False))
    return path


def help_text(command: str) -> str:
    schema = SCHEMAS[command]
    usage = {"generate": ["       python -m raft.generate view OUTPUT [max_rows=N]   (the data viewer: OUTPUT/preview.html)"],
             "evaluate": ["       python -m raft.evaluate report RUN_FOLDER ... [--out DIR]"]}.get(command, [])
    lines = [f"usage: python -m raft.{command} [recipe=NAME|PATH.yaml] [key=value ...]", *usage, "", "recipes: " + ", ".join(available_recipes(command)), "", "settings (key: default  description):"]
    defaults = OmegaConf.structured(schema)
    for key, f in _keys(schema).items():
        if key == "recipe":
            continue
        value = OmegaConf.select(defaults, key, throw_on_missing=False)
        if isinstance(value, DictConfig):
            lines.append(f"  [{key}]  {f.metadata.get('help', '')}")
            continue
        if OmegaConf.is_missing(defaults, key) if "." not in key else False:
            shown = "(required)"
        else:
            shown = OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        lines.append(f"  {key}: {shown}  {f.metadata.get('help', '')}")
    return "\n".join(lines)
