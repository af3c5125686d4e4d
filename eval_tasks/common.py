"""Helpers the lm-eval tasks of eval_tasks/ share (raft_hotpot, raft_domain, bio_needle, in2_probe): where a
task's data comes from, the checks and the split of its rows, and the aggregation of its per-subset metrics.

Each task's ``utils.py`` is loaded by lm-eval from its file path (``!function utils.load`` in the task
yaml), not as part of a package, so the utils import these as ``raft.eval_tasks.common`` (eval_tasks/
ships as ``raft.eval_tasks``: pyproject.toml) and keep the names their yaml refers to
(``utils.mean_where``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from raft.config import ConfigError


def data_source(
    metadata: dict[str, Any], key: str, env_var: str, *, default: str | None = None, missing: str = ""
) -> tuple[str, str]:
    """(where the setting came from, the path or id): task metadata ``key``, else the environment
    variable ``env_var``, else ``("default", default)``; a ConfigError saying ``missing`` when no default."""
    if metadata.get(key):
        return f"metadata {key}", str(metadata[key])
    if os.environ.get(env_var):
        return env_var, os.environ[env_var]
    if default is not None:
        return "default", default
    raise ConfigError(missing)


def require_columns(read: Path, i: int, row: dict[str, Any], required: Sequence[str]) -> None:
    """A ConfigError naming the columns of ``required`` that row ``i`` of ``read`` lacks."""
    missing = [c for c in required if c not in row]
    if missing:
        raise ConfigError(f"{read} row {i}: missing column {', '.join(missing)}")


def as_test_split(rows: list[dict[str, Any]], columns: Sequence[str]) -> datasets.DatasetDict:
    """The docs of a task: a DatasetDict whose split ``test`` has the rows' ``columns`` (None where missing)."""
    return datasets.DatasetDict(
        {"test": datasets.Dataset.from_list([{c: r.get(c) for c in columns} for r in rows])}
    )


def mean_where(items: list[tuple[float, bool]]) -> float:
    """The mean of the values whose flag is true; NaN when none is (lm-eval writes it as NaN,
    raft.evaluate as null, and its report shows "—"). The aggregation of the metrics that apply to
    some docs only: ``process_results`` gives them as (value, applies) pairs."""
    values = [float(v) for v, applies in items if applies]
    return sum(values) / len(values) if values else math.nan
