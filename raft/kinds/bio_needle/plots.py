"""The figures of the bio needle-in-a-haystack report (``raft.kinds.bio_needle.report``), drawn with
matplotlib (imported only to draw): ``plot_heatmap`` (``bio_heatmap_<label>.png``: mean score by needle
depth and context length, annotated, in the published heatmaps' colours) and ``plot_accuracy``
(``bio_accuracy.png``: mean score against context length, one line per run, base dashed, fine-tuned solid).
``draw_heatmap`` (any annotated 0-1 matrix) and ``pyplot`` are shared with ``raft.kinds.in2.plots``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from raft.evaluate.results import Run
from raft.kinds.bio_needle.numbers import (
    by_length,
    depth_label,
    entries,
    entry_label,
    heatmap_matrix,
    length_label,
)

# the published heatmaps' colours: red (0) - yellow - green (1)
HEATMAP_COLOURS = ("#F0496E", "#EBB839", "#0CD79F")


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (imported only to draw)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_heatmap(
    matrix: list[list[float]],
    rows: list[str],
    columns: list[str],
    path: Path,
    title: str,
    ylabel: str,
    value: str = "score",
) -> Path:
    """An annotated 0-1 heatmap (``rows`` labelled top to bottom, ``columns`` the context lengths), in
    the published colours, a NaN cell blank."""
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap

    plt = pyplot()
    data = np.ma.masked_invalid(np.array(matrix, dtype=float))
    cmap = LinearSegmentedColormap.from_list("niah", HEATMAP_COLOURS).with_extremes(bad="#eeeeee")
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(columns) + 3), max(3.5, 0.45 * len(rows) + 2)))
    image = ax.imshow(data, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(matrix):
        for j, cell in enumerate(row):
            if not math.isnan(cell):
                ax.text(j, i, f"{cell:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label=value)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_heatmap(label: str, samples: list[dict[str, Any]], path: Path) -> Path:
    """Depth (rows, 0% at the top) by length (columns), each cell its mean score, annotated."""
    lengths, depths, matrix = heatmap_matrix(samples)
    columns = [length_label(t) for t in lengths]
    return draw_heatmap(matrix, [depth_label(d) for d in depths], columns, path, f"{label}: mean score", "needle depth")


def plot_accuracy(runs: list[Run], path: Path) -> Path:
    """Mean score against context length (log scale), one line per run: base dashed, fine-tuned solid."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    lengths: set[int] = set()
    for e in entries(runs):
        points = list(by_length(e).items())
        lengths.update(t for t, _ in points)
        ax.plot(
            [t for t, _ in points],
            [v for _, v in points],
            marker="o",
            linestyle="-" if e[0].info["finetuned"] else "--",
            label=entry_label(e),
        )
    if lengths:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(lengths), [length_label(t) for t in sorted(lengths)])
        ax.minorticks_off()
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("mean score (share of fields right)")
    ax.set_title("bio needle: score vs context length")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
