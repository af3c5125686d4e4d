"""The report on IN2 "lost in the middle" position probe runs (task ``in2_probe``), written next to
``report.md`` by ``python -m raft.evaluate report``:

- ``probe_position_<label>.png`` per run: EM against the gold's relative position (the middle of its
  bin), one line per context length, one panel per probe type (plus "all probes" when there are
  several; ``position_lines`` returns the numbers drawn);
- ``probe_position.png`` when two runs or more have samples: base vs fine-tuned side by side, the same
  panels, one line per run over every length pooled, base dashed, fine-tuned solid
  (``position_by_run``);
- ``probe_heatmap_<label>.png`` per run: position bin by context length, each cell the mean EM of its
  samples, annotated, drawn as the bio heatmaps are (``position_matrix``);
- ``probe_samples.html``: every sample (run, probe, length, context, bin, depth, question, answer,
  response, EM, F1), sortable, searchable and filterable by run, probe type, length, bin, EM and F1;
- a section of ``report.md`` (``probe_markdown``): per run EM, F1, n, then EM per probe type, per
  position bin and per context length, one column per run.

Numbers come from results.json (``Run.probe``) where it has them and are computed from the samples
where it does not; the figures and the page use the samples (a run without samples has its tables
only). This module writes the files; the numbers and the Markdown are
``raft.kinds.in2.numbers``', the figures ``raft.kinds.in2.plots``' and the page
``raft.kinds.in2.html``'s.
"""

from __future__ import annotations

from pathlib import Path

from raft.evaluate.report_parts import unique_slug
from raft.evaluate.results import Run
from raft.kinds.in2.html import probe_samples_html
from raft.kinds.in2.numbers import entries, probe_label, probe_markdown, samples_of
from raft.kinds.in2.plots import plot_position_comparison, plot_positions, plot_probe_heatmap


def probe_report(runs: list[Run], out: Path) -> tuple[dict[str, Path], str]:
    """Write the position figures, heatmaps and probe_samples.html for the runs with an in2_probe task
    into ``out``; returns their paths (keys: probe_position_<slug>, probe_heatmap_<slug>,
    probe_position, probe_html) and the Markdown section for report.md."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    images: dict[str, str] = {}
    used: set[str] = set()
    drawn = [e for e in entries(runs) if samples_of(e)]  # results.json alone: nothing to draw
    for entry in drawn:
        label, slug = probe_label(entry), unique_slug(probe_label(entry), used)
        position = plot_positions(entry, out / f"probe_position_{slug}.png")
        heatmap = plot_probe_heatmap(entry, out / f"probe_heatmap_{slug}.png")
        paths[f"probe_position_{slug}"], paths[f"probe_heatmap_{slug}"] = position, heatmap
        images[f"{label}: EM by position of the gold"] = position.name
        images[f"{label}: EM by position bin and length"] = heatmap.name
    if len(drawn) > 1:
        paths["probe_position"] = plot_position_comparison(runs, out / "probe_position.png")
        images["EM by position of the gold, runs side by side"] = paths["probe_position"].name
    paths["probe_html"] = out / "probe_samples.html"
    paths["probe_html"].write_text(probe_samples_html(runs), encoding="utf-8")
    return paths, probe_markdown(runs, images)
