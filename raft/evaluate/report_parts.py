"""Pieces the report parts of the kinds share (numbers, labels, Markdown, file names): a kind's
``numbers`` / ``html`` / ``report`` modules build on these, so that two kinds' tables and files look
alike. ``Entry`` is a run and one of its tasks that the task's kind reports apart (``Run.apart``).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from raft.evaluate.plugins import TaskKind
from raft.evaluate.results import Run
from raft.evaluate.table import NO_VALUE

Entry = tuple[Run, str]  # a run and one of its tasks reported apart


def entries(runs: list[Run], kind: TaskKind) -> list[Entry]:
    """(run, task) for every task of ``kind`` that the runs report apart."""
    return [(run, task) for run in runs for task in run.apart if kind.owns(task)]


def entry_label(entry: Entry, plain: str) -> str:
    """The run's label; with the task's name when it is not the plain task (``plain``: e.g. bio_needle)."""
    run, task = entry
    return run.info["label"] if task == plain else f"{run.info['label']} [{task}]"


def length_label(tokens: float) -> str:
    """A target length in k tokens as the score_<n>k metrics name it: 4096 -> '4k', 131072 -> '128k',
    32000 -> '32k'; else in units of 1024: 1536 -> '1.5k'."""
    for unit in (1024, 1000):
        if tokens % unit == 0:
            return f"{int(tokens) // unit}k"
    return f"{tokens / 1024:g}k"


def depth_label(depth: float) -> str:
    """0.333... -> '33%'."""
    return f"{depth * 100:.0f}%"


def mean(values: list[float]) -> float:
    """The mean; NaN for no value."""
    return sum(values) / len(values) if values else math.nan


def fmt(value: float | None) -> str:
    """A number as the tables show it: 4 decimals, NO_VALUE for None or NaN."""
    return NO_VALUE if value is None or math.isnan(value) else f"{value:.4f}"


def run_cells(run: Run) -> list[str]:
    """The model, precision and weights ("base" or "fine-tuned") cells of a run's row."""
    return [run.info["model"], run.info["precision"], "fine-tuned" if run.info["finetuned"] else "base"]


def run_rows(es: list[Entry], labels: list[str], sums: list[dict[str, Any]], keys: tuple[str, ...]) -> list[list[str]]:
    """The "Per run" table's rows: label, model, precision, weights, the summaries' ``keys``, n."""
    return [
        [label, *run_cells(run), *(fmt(s[k]) for k in keys), str(s["n"])]
        for label, (run, _), s in zip(labels, es, sums, strict=True)
    ]


def heatmap_matrix(
    samples: list[dict[str, Any]], row: str = "depth_target", value: str = "score"
) -> tuple[list[int], list[float], list[list[float]]]:
    """(target lengths ascending, the ``row`` values ascending (rounded to 6 places), matrix[row][length]
    = mean ``value`` of the samples in that cell, NaN for a cell without samples). By default the rows
    are the needle's target depth and the value the score (the bio heatmap)."""
    cells: dict[tuple[float, int], list[float]] = defaultdict(list)
    for s in samples:
        cells[round(float(s[row]), 6), int(s["target_tokens"])].append(float(s[value]))
    lengths = sorted({t for _, t in cells})
    rows = sorted({d for d, _ in cells})
    return lengths, rows, [[mean(cells.get((d, t), [])) for t in lengths] for d in rows]


def from_metrics(metrics: dict[str, float], prefix: str = "score") -> dict[int, float]:
    """target tokens -> value from results.json's <prefix>_<n>k metrics (score_4k, ...)."""
    pattern = re.compile(rf"^{re.escape(prefix)}_(\d+(?:\.\d+)?)k$")
    out = {}
    for name, value in metrics.items():
        m = pattern.match(name)
        if m:
            out[round(float(m.group(1)) * 1024)] = value
    return out


def merge_lengths(named: dict[int, float], measured: dict[int, float]) -> dict[str, float]:
    """{'4k': value, ...} by ascending length: results.json's value (``named``: from_metrics) where it has
    a number, else the samples' (``measured``), a sample length named as the metrics name it."""
    lengths = {length_label(t): (t, v) for t, v in named.items()}
    for t, v in measured.items():
        old = lengths.get(length_label(t))
        lengths[length_label(t)] = (t, v if old is None or math.isnan(old[1]) else old[1])
    return {name: v for name, (_, v) in sorted(lengths.items(), key=lambda kv: kv[1][0])}


def markdown(heads: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(h.replace("|", "\\|") for h in heads) + " |",
        "|" + "|".join(["---"] * len(heads)) + "|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def sections(
    head: str, tables: list[tuple[str, list[str], list[list[str]]]], images: dict[str, str] | None = None
) -> str:
    """A section of report.md: ``head`` (its heading and notes), the tables (title, header, rows), then
    the plots (``images``: title -> file name)."""
    parts = [head]
    for title, heads, rows in tables:
        parts.append(f"### {title}\n\n{markdown(heads, rows)}")
    for title, name in (images or {}).items():
        parts.append(f"![{title}]({name})\n")
    return "\n".join(parts)


def file_slug(label: str) -> str:
    """A label as a file name part: 'Llama-3.1-8B + raft (4-bit)' -> 'Llama-3.1-8B_raft_4-bit'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_.") or "run"


def unique_slug(label: str, used: set[str]) -> str:
    """``file_slug(label)``, with _2, _3, ... when ``used`` has it already (two runs, one label); added to ``used``."""
    slug, n = file_slug(label), 2
    while slug in used:
        slug, n = f"{file_slug(label)}_{n}", n + 1
    used.add(slug)
    return slug
