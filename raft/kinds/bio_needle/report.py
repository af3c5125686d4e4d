"""The report on bio needle-in-a-haystack runs (task ``bio_needle``), written next to ``report.md`` by
``python -m raft.evaluate report``:

- ``bio_heatmap_<label>.png`` per run: depth (where the needle sits, as % of the context) by context
  length (k tokens), each cell the mean score of its samples, annotated, as in the published
  needle-in-a-haystack heatmaps (``heatmap_matrix`` returns the numbers drawn);
- ``bio_accuracy.png``: mean score against context length, one line per run (base dashed,
  fine-tuned solid; ``accuracy_by_length`` returns the numbers drawn);
- ``bio_samples.html``: every sample (run, length, depth, needle, label, response, a mark per scored
  field, score), sortable, searchable and filterable by run, length, depth, score and failed field;
- a section of ``report.md`` (``bio_markdown``): per run the overall score, json_valid, n, then the
  accuracy per field and per context length, one column per run.

Numbers come from results.json (``Run.apart``) where it has them and are computed from the samples
where it does not; the plots and the page use the samples. This module writes the files; the numbers
and the Markdown are ``raft.kinds.bio_needle.numbers``'s, the figures ``raft.kinds.bio_needle.plots``'s
(matplotlib is imported only to draw) and the page ``raft.kinds.bio_needle.html``'s.
"""

from __future__ import annotations

from pathlib import Path

from raft.evaluate.report_parts import file_slug, unique_slug
from raft.evaluate.results import Run
from raft.kinds.bio_needle.html import bio_samples_html
from raft.kinds.bio_needle.numbers import (
    accuracy_by_length,
    bio_markdown,
    bio_summary,
    entries,
    entry_label,
    heatmap_matrix,
    length_label,
    markdown,
    summary_tables,
)
from raft.kinds.bio_needle.plots import plot_accuracy, plot_heatmap

__all__ = [
    "accuracy_by_length",
    "bio_markdown",
    "bio_report",
    "bio_samples_html",
    "bio_summary",
    "file_slug",
    "heatmap_matrix",
    "length_label",
    "markdown",
    "summary_tables",
    "unique_slug",
]


def bio_report(runs: list[Run], out: Path) -> tuple[dict[str, Path], str]:
    """Write the heatmaps, bio_accuracy.png and bio_samples.html for the runs with a bio task into
    ``out``; returns their paths and the Markdown section for report.md."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    images: dict[str, str] = {}
    used: set[str] = set()
    for entry in entries(runs):
        samples = entry[0].apart_samples.get(entry[1])
        if not samples:
            continue  # results.json alone: no cells to draw
        slug = unique_slug(entry_label(entry), used)
        path = plot_heatmap(entry_label(entry), samples, out / f"bio_heatmap_{slug}.png")
        paths[f"bio_heatmap_{slug}"] = path
        images[f"{entry_label(entry)}: score by depth and length"] = path.name
    paths["bio_plot"] = plot_accuracy(runs, out / "bio_accuracy.png")
    images["score vs context length"] = paths["bio_plot"].name
    paths["bio_html"] = out / "bio_samples.html"
    paths["bio_html"].write_text(bio_samples_html(runs), encoding="utf-8")
    return paths, bio_markdown(runs, images)
