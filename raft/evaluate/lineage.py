"""What an adapter was trained on, traced from the files the commands leave behind, and what that
means for a score: ``adapter/`` -> its ``finetune_run.json`` (or ``recipe.yaml`` / ``train_summary.json``)
names the training data folder -> that folder's ``recipe.yaml`` (written by ``raft.generate``) says
how the data was made.

Used for two checks before anything heavy loads:

- :func:`hotpot_contamination`: ``raft_hotpot`` scores the first 1,000 HotpotQA dev questions and
  ``raft_hotpot_full`` all 7,405. Clean RAFT or IN2 data from HotpotQA (``hotpot.chunks=clean``) is made
  only of paragraphs of the dev questions after the first ``hotpot.eval_questions``, so a task that
  scores any question past those shows the model paragraphs it trained on; ``hotpot.chunks=published``
  trains on the evaluated contexts themselves. Such a run is refused unless ``allow_contaminated=true``
  (then results.json says so); an adapter whose data cannot be traced gets a warning.
- :func:`training_data`: the in2 training folder of an adapter, for the in2 probe's disjointness check
  (``raft.kinds.in2.evaluation``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

#: questions each HotpotQA task scores (its YAML's ``dataset_kwargs.questions``; None: all 7,405)
HOTPOT_TASK_QUESTIONS: dict[str, int | None] = {"raft_hotpot": 1000, "raft_hotpot_full": None}
DEV_QUESTIONS = 7405
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


def hotpot_contamination(adapter: str, tasks: list[str], limit: int | None) -> tuple[list[str], list[str]]:
    """(contaminated: one line per HotpotQA task that would score questions the adapter's training data
    shows paragraphs of; unknown: one line per task when the adapter's data cannot be traced)."""
    hotpot = [t for t in tasks if t in HOTPOT_TASK_QUESTIONS]
    if not adapter or not hotpot:
        return [], []
    data, how = training_data(adapter)
    recipe = generate_recipe(data) if data else {}
    if not recipe:
        reason = how if data is None else f"{data}/recipe.yaml is not a raft.generate recipe"
        return [], [f"{t}: cannot check which HotpotQA dev questions the adapter's training data shows ({reason}); if it was "
                    f"made from HotpotQA dev paragraphs (hotpot.chunks=clean uses those of the questions after "
                    f"hotpot.eval_questions), questions past that are contaminated" for t in hotpot]
    if recipe.get("source") != "hotpot":
        return [], []
    settings = recipe.get("hotpot") or {}
    mode, kept = settings.get("chunks", "clean"), int(settings.get("eval_questions", 1000) or 0)
    contaminated = []
    for task in hotpot:
        count = HOTPOT_TASK_QUESTIONS[task]
        scored = min(x for x in (count, limit) if x is not None) if (count, limit) != (None, None) else None
        shown = f"the first {scored}" if scored is not None else f"all {DEV_QUESTIONS}"
        if mode == "published":
            contaminated.append(
                f"{task} scores {shown} HotpotQA dev questions, but {how}, made with hotpot.chunks=published: its rows show the "
                "evaluated questions' own paragraphs (contaminated); train on hotpot.chunks=clean data, or pass "
                "allow_contaminated=true to score it anyway")
        elif scored is None or scored > kept:
            contaminated.append(
                f"{task} scores {shown} HotpotQA dev questions, but {how}, made of paragraphs of the dev questions after the first "
                f"hotpot.eval_questions={kept}: questions {kept + 1}-{scored or DEV_QUESTIONS} show paragraphs it trained on; "
                f"evaluate with limit={kept} (raft_hotpot), generate with hotpot.eval_questions covering what you score, or pass "
                "allow_contaminated=true to score it anyway")
    return contaminated, []
