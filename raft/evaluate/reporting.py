"""The report over result folders: ``report.md`` (the summary table), ``f1.png`` (base vs
fine-tuned F1 per model) and ``samples.html`` (every answer), and its command line,
``python -m raft.evaluate report RESULT_DIR [RESULT_DIR ...] [--out DIR]``.

Runs of a task that its kind reports apart get that kind's files beside them and a section of
report.md (``TaskKind.report``: e.g. bio_needle's ``bio_heatmap_<label>.png``, ``bio_accuracy.png``,
``bio_samples.html``; the in2_probe position probe's ``probe_position*.png``, ``probe_heatmap_<label>.png``,
``probe_samples.html``); a kind that reports nothing apart may add files and a section for its F1
runs (the raft kind's ``oracle_position.png``), placed right after the summary table. The F1 files are
written when at least one run has an F1 task, so a report over any mix of RAFT, bio and probe runs works.

matplotlib is imported only when the plot is drawn.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from raft.config import ConfigError
from raft.evaluate.plugins import TaskKind, task_kinds
from raft.evaluate.report_html import samples_html
from raft.evaluate.results import ReportError, Run, load_run
from raft.evaluate.table import markdown_table, pct, table_rows

REPORT_USAGE = "usage: python -m raft.evaluate report RESULT_DIR [RESULT_DIR ...] [--out DIR]"


def plot_f1(rows: list[dict[str, Any]], path: Path) -> Path:
    """Grouped bars: per model and precision, F1 of the base model and of the fine-tuned ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(
        len(tasks), 1, figsize=(max(6.0, 1.6 * len(rows) / len(tasks) + 3), 4.2 * len(tasks)), squeeze=False
    )
    colours = {False: "#9e9e9e", True: "#1f77b4"}
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            if r["task"] == task:
                groups.setdefault((r["family"], r["precision"]), []).append(r)
        x, ticks, labels_done = 0.0, [], set()
        for (family, precision), members in groups.items():
            members.sort(key=lambda r: (r["finetuned"], r["label"]))
            width = 0.8 / len(members)
            for i, r in enumerate(members):
                kind = "fine-tuned" if r["finetuned"] else "base"
                bar = ax.bar(
                    x + i * width,
                    r["f1"],
                    width * 0.95,
                    color=colours[r["finetuned"]],
                    label=kind if kind not in labels_done else None,
                )
                labels_done.add(kind)
                change = f"\n{pct(r['delta'], signed=True)}" if r["delta"] is not None else ""
                ax.bar_label(bar, labels=[f"{r['f1']:.3f}{change}"], fontsize=8)
            ticks.append((x + 0.4 - width / 2, f"{family}\n{precision}"))
            x += 1.0
        ax.set_xticks([t for t, _ in ticks], [label for _, label in ticks], fontsize=8)
        ax.set_ylabel("F1")
        ax.set_ylim(0, max([r["f1"] for r in rows if r["task"] == task] + [0.01]) * 1.2)
        ax.set_title(f"{task}: F1 of the final answer, base vs fine-tuned")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def kind_runs(kind: TaskKind, runs: list[Run]) -> list[Run]:
    """The runs a kind's part of the report gets: those with a task it reports apart (a kind with
    ``apart``), else those with an F1 task of its."""
    if kind.apart:
        return [run for run in runs if any(kind.owns(task) for task in run.apart)]
    return [run for run in runs if any(kind.owns(task) for task in run.metrics)]


def report(folders: list[str | Path], out: str | Path) -> dict[str, Path]:
    """Write report.md, f1.png and samples.html for the result folders (and, for runs of a task its kind
    reports apart, or of an F1 task whose kind adds a part, that kind's files); returns their paths."""
    if not folders:
        raise ReportError("no result folders given")
    runs = [load_run(f) for f in folders]
    raft_runs = [run for run in runs if run.metrics]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "report.md"}
    text = "# RAFT evaluation\n\n"
    if raft_runs:
        rows = table_rows(raft_runs)
        text += markdown_table(rows)
        paths["plot"], paths["html"] = out / "f1.png", out / "samples.html"
        plot_f1(rows, paths["plot"])
        paths["html"].write_text(samples_html(raft_runs, rows), encoding="utf-8")
    sections = [text] if raft_runs else []
    for kind in sorted(task_kinds(), key=lambda k: bool(k.apart)):  # F1 kinds' parts first
        its_runs = kind_runs(kind, runs)
        if kind.report and its_runs:
            kind_paths, section = kind.write_report(its_runs, out)
            if section:
                sections.append(section)
            paths.update(kind_paths)
    text = "\n".join(sections) if raft_runs else "# RAFT evaluation\n\n" + "\n".join(sections)
    paths["table"].write_text(text, encoding="utf-8")
    return paths


def _usage_error(message: str) -> None:
    print(f"raft.evaluate report: error: {message}\n{REPORT_USAGE}", file=sys.stderr)
    raise SystemExit(2)


def report_cli(argv: list[str]) -> None:
    """``report RESULT_DIR ... [--out DIR]``: the report, then its paths; errors: one line, exit 2."""
    if not argv or any(a in ("-h", "--help") for a in argv):
        print(REPORT_USAGE)
        raise SystemExit(0 if argv else 2)
    out, folders = "outputs/report", []
    it = iter(argv)
    for arg in it:
        if arg == "--out":
            out = next(it, "")
            if not out:
                _usage_error("--out needs a folder")
        elif arg.startswith("--out="):
            out = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            _usage_error(f"unknown option {arg.split('=', 1)[0]}")
        else:
            folders.append(arg)
    try:
        paths = report(folders, out)
    except ConfigError as e:
        print(f"raft.evaluate report: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(paths["table"].read_text(encoding="utf-8"))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
