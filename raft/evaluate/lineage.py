"""What an adapter was trained on, traced from the files the commands leave behind, and what that
means for a score: ``adapter/`` -> its ``finetune_run.json`` (or ``recipe.yaml`` / ``train_summary.json``)
names the training data folder -> that folder's ``recipe.yaml`` (written by ``raft.generate``) says
how the data was made.

Used before anything heavy loads: :func:`training_data` (the data folder an adapter was trained on)
and :func:`generate_recipe` (the settings that folder was made with) let a kind check a score against
the training data, e.g. the HotpotQA contamination check of the raft kind
(``raft.kinds.raft.contamination``) and the in2 probe's disjointness check (``raft.kinds.in2.evaluation``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

RECORDS = ("finetune_run.json", "recipe.yaml", "train_summary.json")  # what raft.finetune writes, each with `data`


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _run_folder(path: Path) -> Path | None:
    """The raft.generate folder holding ``path`` (the folder itself, its ``dataset/`` or a JSONL in it)."""
    for candidate in (path, *list(path.parents)[:2]):
        if (candidate / "recipe.yaml").is_file() and generate_recipe(candidate):
            return candidate
    return None


def training_data(adapter: str | Path) -> tuple[Path | None, str]:
    """(the data folder ``adapter`` was fine-tuned on, or None; how it was found or why not). The
    records are read in the adapter folder, or in its parent for a ``checkpoint-N`` folder; the absolute
    path ``raft.finetune`` recorded comes first, then ``data`` as typed, resolved against the folders
    that hold the adapter (nearest first: where the command was run) and only then the current one."""
    folder = Path(adapter).expanduser()
    for records in (folder, folder.parent):
        found = {name: _read(records / name) for name in RECORDS}
        data = next((str(r.get("data") or "") for r in found.values() if r.get("data")), "")
        if data:
            break
    if not data:
        return None, f"adapter {adapter} records no training data ({' / '.join(RECORDS)})"
    recorded = str(found["train_summary.json"].get("data_path") or "")
    path = Path(data).expanduser()
    parents = list(records.resolve().parents)
    candidates = [Path(recorded)] if recorded else []
    candidates += [path] if path.is_absolute() else [*(parent / path for parent in parents), Path.cwd() / path]
    for candidate in candidates:
        run = _run_folder(candidate)
        if run is not None:
            return run, f"adapter {adapter} was trained on {run}"
    return None, f"adapter {adapter} was trained on data={data}, which is not a raft.generate folder here (no recipe.yaml)"


def generate_recipe(data: Path) -> dict[str, Any]:
    """The ``raft.generate`` settings a data folder was made with (empty if none)."""
    recipe = _read(data / "recipe.yaml")
    return recipe if recipe.get("command", "generate") == "generate" else {}
