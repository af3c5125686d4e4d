"""How a kind of data plugs its lm-eval tasks into ``raft.evaluate`` without ``raft.evaluate`` naming it.

A kind folder whose data has evaluation tasks holds ``raft/kinds/<kind>/evaluation.py`` with ``TASKS``,
a ``TaskKind``: which tasks are its own (a variant named after one is too: ``raft_hotpot_full``), the
data setting each reads, and hooks the run and the report call where the kind does something of its
own (its settings, its sample rows, its printout, files after the run, its part of the report).
``task_kinds()`` finds them by importing each kind's evaluation module (they import nothing heavy);
``kind_of_task`` and ``kind_of_sample`` say whose a task or a logged sample is. A task no kind claims
is scored the common way: F1 / EM / answer_found (``raft.evaluate.run``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TaskKind:
    """What a kind adds to ``raft.evaluate`` for its tasks; every hook is optional."""

    name: str  # the kind (its folder under raft/kinds)
    tasks: tuple[str, ...]  # its lm-eval tasks (eval_tasks/<task>); a task named after one is its too
    data: dict[str, tuple[str, str]] = field(default_factory=dict)  # task -> (metadata key, env var) of data=
    # reported apart from the F1 table when results.json has this metric for the task ("" : in the F1 table)
    apart: str = ""
    sample_keys: tuple[str, ...] = ()  # numbers every sample row of an apart task must hold
    sample_texts: dict[str, str] = field(default_factory=dict)  # text key a sample row must hold -> what it is
    sample_fields: tuple[str, ...] = ()  # doc fields copied into the sample rows of its F1 tasks
    shown_metrics: tuple[str, ...] = ()  # metrics of its F1 tasks printed and read after f1 / em / answer_found
    check: Callable[[Any, list[str]], None] | None = None  # (cfg, tasks): a bad setting raises ConfigError
    metadata: Callable[[Any, list[str]], dict[str, Any]] | None = None  # (cfg, tasks) -> task metadata
    # (adapter, tasks, limit) -> (lines that refuse the run unless allow_contaminated=true, warnings)
    contamination: Callable[[str, list[str], int | None], tuple[list[str], list[str]]] | None = None
    sample_row: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # logged sample -> samples_<task> row
    is_sample: Callable[[dict[str, Any]], bool] | None = None  # a logged sample of its, told by its doc alone
    log_row: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # an lm_eval --log_samples row -> row
    show: Callable[[str, dict[str, Any], list[dict[str, Any]]], None] | None = None  # (task, metrics, samples)
    finish: Callable[[Any, dict[str, list[dict[str, Any]]]], None] | None = None  # (cfg, samples by task)
    # its part of the report, as "module:function", imported when a report has runs of its tasks:
    # (runs with a task of its reported apart, or with an F1 task of its for a kind without ``apart``,
    # output folder) -> (files written, its section of report.md, "" for none)
    report: str = ""

    def owns(self, task: str) -> bool:
        return any(task.startswith(t) for t in self.tasks)

    def write_report(self, runs: list[Any], out: Path) -> tuple[dict[str, Path], str]:
        module, _, function = self.report.partition(":")
        return getattr(importlib.import_module(module), function)(runs, out)


@cache
def task_kinds() -> tuple[TaskKind, ...]:
    """Every kind's ``TASKS``, by kind name (a kind folder without an evaluation module has no tasks)."""
    import raft.kinds

    found = []
    for module in sorted(pkgutil.iter_modules(raft.kinds.__path__), key=lambda m: m.name):
        if not module.ispkg or module.name.startswith("_"):
            continue
        name = f"raft.kinds.{module.name}.evaluation"
        try:
            found.append(importlib.import_module(name).TASKS)
        except ModuleNotFoundError as e:
            if e.name != name:
                raise
    return tuple(found)


def kind_of_task(task: str) -> TaskKind | None:
    return next((k for k in task_kinds() if k.owns(task)), None)


def kind_of_sample(sample: dict[str, Any], task: str = "") -> TaskKind | None:
    """The kind of a logged sample: by its task, or (no task given) by its doc."""
    if task:
        return kind_of_task(task)
    return next((k for k in task_kinds() if k.is_sample and k.is_sample(sample)), None)


def task_data() -> dict[str, tuple[str, str]]:
    """task -> (metadata key, environment variable) of the data each task reads (``data=``)."""
    return {task: where for k in task_kinds() for task, where in k.data.items()}


def shown_metrics() -> tuple[str, ...]:
    """The metrics of F1 tasks shown after f1 / em / answer_found (e.g. the oracle split)."""
    return tuple(dict.fromkeys(m for k in task_kinds() for m in k.shown_metrics))


def sample_fields() -> tuple[str, ...]:
    """Doc fields copied into the sample rows of F1 tasks."""
    return tuple(dict.fromkeys(f for k in task_kinds() for f in k.sample_fields))
