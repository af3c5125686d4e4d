"""The figures of the bio needle-in-a-haystack report (``raft.kinds.bio_needle.report``), drawn with
matplotlib (imported only to draw): ``plot_heatmap`` (``bio_heatmap_<label>.png``: mean score by needle
depth and context length, annotated, in the published heatmaps' colours) and ``plot_accuracy``
(``bio_accuracy.png``: mean score against context length, one line per run, base dashed, fine-tuned solid).
``draw_heatmap`` and ``pyplot`` are shared (``raft.evaluate.report_plots``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from raft.evaluate.report_plots import draw_heatmap, pyplot
from raft.evaluate.results import Run
from raft.kinds.bio_needle.numbers import (
    by_length,
    depth_label,
    entries,
    entry_label,
    heatmap_matrix,
    length_label,
)


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
