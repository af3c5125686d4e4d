"""The raft kind's part of the report (``python -m raft.evaluate report``), for the runs of its F1 tasks:
``oracle_position.png``, F1 by the oracle's index among the documents, one line per run (base dashed,
fine-tuned solid), and a section of report.md with the same numbers, one line per run (a list, not a
table: report.md's tables are the runs'). The numbers come from
the ``raft_domain`` samples that have an ``oracle_index`` (answerable questions whose oracle chunk was in
view; an unanswerable one has none), so a run without such samples adds nothing, and a report without
any such run gets no file and no section. matplotlib is imported only to draw
(``raft.evaluate.report_plots.pyplot``).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from raft.evaluate.report_parts import fmt, mean, sections
from raft.evaluate.report_plots import pyplot
from raft.evaluate.results import Run

POSITION_TASK = "raft_domain"  # where the oracle's index among the documents is the row's own
PLOT_FILE = "oracle_position.png"


def f1_by_position(run: Run) -> dict[int, tuple[float, int]]:
    """index -> (mean F1, questions) over the run's raft_domain samples of answerable questions whose
    oracle is the document at that index; {} when no sample says where its oracle is."""
    cells: dict[int, list[float]] = defaultdict(list)
    for s in run.samples.get(POSITION_TASK, []):
        at = s.get("oracle_index")
        if isinstance(at, int) and not isinstance(at, bool) and s.get("answerable") is not False:
            cells[at].append(float(s.get("f1", 0.0)))
    return {i: (mean(values), len(values)) for i, values in sorted(cells.items())}


def plot_oracle_position(lines: list[tuple[Run, dict[int, tuple[float, int]]]], path: Path) -> Path:
    """F1 against the oracle's index, one line per run: base dashed, fine-tuned solid."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    for run, by_index in lines:
        ax.plot(
            list(by_index),
            [f1 for f1, _ in by_index.values()],
            marker="o",
            linestyle="-" if run.info["finetuned"] else "--",
            label=run.info["label"],
        )
    last = max(i for _, by_index in lines for i in by_index)
    ax.set_xticks(range(last + 1))
    ax.set_xlabel("index of the oracle among the documents (0: first)")
    ax.set_ylabel("F1")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{POSITION_TASK}: F1 by oracle position (base dashed, fine-tuned solid)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def oracle_report(runs: list[Run], out: Path) -> tuple[dict[str, Path], str]:
    """``oracle_position.png`` and its section of report.md for the runs whose raft_domain samples say
    where the oracle was; ({}, "") when none does."""
    lines = [(run, by_index) for run in runs if (by_index := f1_by_position(run))]
    if not lines:
        return {}, ""
    out.mkdir(parents=True, exist_ok=True)
    path = plot_oracle_position(lines, out / PLOT_FILE)
    items = [
        f"- {run.info['label']} ({'fine-tuned' if run.info['finetuned'] else 'base'}): "
        + ", ".join(f"{i} {fmt(f1)}" for i, (f1, _) in by_index.items())
        + f" (n {sum(n for _, n in by_index.values())})"
        for run, by_index in lines
    ]
    head = (
        "## F1 by oracle position\n\n"
        f"F1 of the {POSITION_TASK} questions whose oracle (the chunk the question was written from) is the "
        "document at that index (0: first), answerable questions only; n: such questions.\n\n"
        + "\n".join(items)
        + "\n"
    )
    return {"oracle_position": path}, sections(head, [], {"F1 by oracle position": path.name})
