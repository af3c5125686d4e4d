"""Figures the report parts of the kinds share, drawn with matplotlib (imported only to draw):
``pyplot`` (matplotlib on the Agg backend) and ``draw_heatmap`` (an annotated 0-1 matrix in the
published needle-in-a-haystack colours).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

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
