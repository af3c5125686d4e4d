"""The figures of the in2_probe report (``raft.kinds.in2.report``), drawn with matplotlib (imported
only to draw):

- ``plot_positions`` (``probe_position_<label>.png``, one per run): EM against the gold's relative
  position (the middle of its bin, % of the context), one line per context length (colours: short to
  long, light to dark), one panel per probe type plus an "all probes" panel first when the run has
  more than one type;
- ``plot_position_comparison`` (``probe_position.png``, for two runs or more: base vs fine-tuned side
  by side as in the IN2 paper's figure): the same panels, one line per run over every length pooled,
  base dashed, fine-tuned solid;
- ``plot_probe_heatmap`` (``probe_heatmap_<label>.png``): position bin (rows, the start of the
  context at the top) by context length (columns), each cell its mean EM, annotated:
  ``raft.kinds.bio_needle.plots.draw_heatmap``, the bio heatmap's drawing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from raft.evaluate.report_parts import length_label
from raft.evaluate.report_plots import draw_heatmap, pyplot
from raft.evaluate.results import Run
from raft.kinds.in2.numbers import (
    bin_centre,
    bin_label,
    entries,
    n_bins,
    position_by_run,
    position_lines,
    position_matrix,
    probe_label,
    probe_types,
    samples_of,
)


def _panels(types: list[str]) -> list[str | None]:
    """None (every probe) first when there is more than one type, then one per type."""
    return [None, *types] if len(types) > 1 else [*types] or [None]


def _draw(panels: list[str | None], draw: Callable[[Any, str | None], None], title: str, path: Path) -> Path:
    """One row of panels sharing the y axis (EM, 0 to 1) and the x axis (position, 0 to 100%)."""
    plt = pyplot()
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.6 * len(panels) + 0.6, 4.2), sharey=True, squeeze=False
    )
    for ax, probe in zip(axes[0], panels, strict=True):
        draw(ax, probe)
        ax.set_title("all probes" if probe is None else f"{probe} probe", fontsize=10)
        ax.set_xlim(0, 100)
        ax.set_xticks(range(0, 101, 20), [f"{x}%" for x in range(0, 101, 20)])
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("position of the gold (share of the context)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("EM (exact match)")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_positions(entry: tuple[Run, str], path: Path) -> Path:
    """A run's EM against the gold's position, one line per context length, one panel per probe type."""
    import matplotlib

    samples, n = samples_of(entry), n_bins(entry)
    lengths = sorted({int(s["target_tokens"]) for s in samples})
    colours = matplotlib.colormaps["viridis_r"]

    def draw(ax: Any, probe: str | None) -> None:
        for t, points in position_lines(samples, probe).items():
            shade = 0.15 + 0.75 * (lengths.index(t) / max(1, len(lengths) - 1))
            xs = [100 * bin_centre(b, n) for b, _ in points]
            ax.plot(xs, [v for _, v in points], marker="o", color=colours(shade), label=length_label(t))

    title = f"{probe_label(entry)}: EM by position of the gold, per context length"
    return _draw(_panels(probe_types(samples)), draw, title, path)


def plot_position_comparison(runs: list[Run], path: Path) -> Path:
    """EM against the gold's position, one line per run (every length pooled): base dashed, fine-tuned solid."""
    es = [e for e in entries(runs) if samples_of(e)]
    finetuned = {probe_label(e): e[0].info["finetuned"] for e in es}
    bins = {probe_label(e): n_bins(e) for e in es}

    def draw(ax: Any, probe: str | None) -> None:
        for label, points in position_by_run(runs, probe).items():
            if points:
                ax.plot(
                    [100 * bin_centre(b, bins[label]) for b, _ in points],
                    [v for _, v in points],
                    marker="o",
                    linestyle="-" if finetuned[label] else "--",
                    label=label,
                )

    types = list(dict.fromkeys(p for e in es for p in probe_types(samples_of(e))))
    return _draw(_panels(types), draw, "in2_probe: EM by position of the gold, base vs fine-tuned", path)


def plot_probe_heatmap(entry: tuple[Run, str], path: Path) -> Path:
    """Position bin (rows) by context length (columns), each cell the mean EM of its samples."""
    lengths, bins, matrix = position_matrix(samples_of(entry))
    n = n_bins(entry)
    return draw_heatmap(
        matrix,
        [bin_label(b, n) for b in bins],
        [length_label(t) for t in lengths],
        path,
        f"{probe_label(entry)}: mean EM",
        "position of the gold",
        "EM",
    )
