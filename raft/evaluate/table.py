"""The summary table: one row per run and task (F1 / EM / answer_found, the F1 change against the
base model of the same family and precision, 4-bit F1 as a share of 16-bit; the oracle split and the
decline rates when a run has them), as rows, as cell texts and as Markdown. ``report.md`` and the table at the top of ``samples.html`` both come from
``table_rows`` and ``table_cells``.
"""

from __future__ import annotations

import math
from typing import Any

from raft.evaluate.results import Run
from raft.evaluate.run import short_name

COLUMNS = (
    "task",
    "run",
    "model",
    "precision",
    "weights",
    "F1",
    "F1 s.e.",
    "EM",
    "answer_found",
    "n",
    "F1 vs base",
    "4-bit / 16-bit F1",
)
# added when a run has the raft_domain split (run.SPLIT_METRICS): the share of questions with the
# oracle in view (has_oracle or oracle_retrieved), F1 with and without it
SPLIT_COLUMNS = ("oracle share", "F1 oracle", "F1 no oracle")
# added when a run has a decline rate (decline_unanswerable, decline_answerable): the share of
# unanswerable questions declined, of answerable ones declined wrongly
DECLINE_METRICS = ("decline_unanswerable", "decline_answerable")
DECLINE_COLUMNS = ("decline unanswerable", "decline answerable")
NO_VALUE = "—"  # a split no question fell in (NaN / null)


def pct(x: float | None, signed: bool = False) -> str:
    """0.5 -> '50.0%' (signed: '+50.0%'); None or NaN -> ''."""
    if x is None or math.isnan(x):
        return ""
    return f"{x:+.1%}" if signed else f"{x:.1%}"


def table_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per run and task, with the F1 change vs base and the 4-bit share of 16-bit."""
    rows = []
    for run in runs:
        for task, m in run.metrics.items():
            rows.append({"run": run, "task": task, **run.info, "family": short_name(run.info["model"]), **m})

    def find(task: str, family: str, precision: str, finetuned: bool) -> dict[str, Any] | None:
        """The first run of that task and model family (hub id or local copy alike) in that state."""
        key = (task, family, precision, finetuned)
        return next(
            (r for r in rows if (r["task"], r["family"], r["precision"], r["finetuned"]) == key), None
        )

    for r in rows:
        base = find(r["task"], r["family"], r["precision"], False) if r["finetuned"] else None
        r["delta"] = (r["f1"] - base["f1"]) / base["f1"] if base and base["f1"] > 0 else None
        full = find(r["task"], r["family"], "16-bit", r["finetuned"]) if r["precision"] == "4-bit" else None
        r["share"] = r["f1"] / full["f1"] if full and full["f1"] > 0 else None
    rows.sort(key=lambda r: (r["task"], r["family"], r["precision"] != "4-bit", r["finetuned"], r["label"]))
    return rows


def has_split(rows: list[dict[str, Any]]) -> bool:
    return any("f1_oracle" in r or "f1_no_oracle" in r for r in rows)


def has_declines(rows: list[dict[str, Any]]) -> bool:
    """Whether a row has a decline rate with a value (not null / NaN)."""
    return any(r.get(m) is not None and not math.isnan(r[m]) for r in rows for m in DECLINE_METRICS)


def columns(rows: list[dict[str, Any]]) -> list[str]:
    """COLUMNS, then SPLIT_COLUMNS when any row has the oracle split, then DECLINE_COLUMNS when any
    row has a decline rate."""
    split, declines = SPLIT_COLUMNS if has_split(rows) else (), DECLINE_COLUMNS if has_declines(rows) else ()
    return [*COLUMNS, *split, *declines]


def _metric(row: dict[str, Any], key: str) -> str:
    """'' where the task has no such metric, "—" where no question fell in it, else 4 decimals."""
    if key not in row:
        return ""
    value = row[key]
    return NO_VALUE if value is None or math.isnan(value) else f"{value:.4f}"


def table_cells(row: dict[str, Any], split: bool = False, declines: bool = False) -> list[str]:
    """The texts of one row of the table, in the order of COLUMNS (then SPLIT_COLUMNS with
    ``split``, then DECLINE_COLUMNS with ``declines``), not escaped for any format."""
    extra = []
    if split:
        share = "has_oracle" if "has_oracle" in row else "oracle_retrieved"
        extra = [_metric(row, share), _metric(row, "f1_oracle"), _metric(row, "f1_no_oracle")]
    if declines:
        extra += [_metric(row, m) for m in DECLINE_METRICS]
    return [
        row["task"],
        row["label"],
        row["model"],
        row["precision"],
        "fine-tuned" if row["finetuned"] else "base",
        f"{row['f1']:.4f}",
        f"{row['f1_stderr']:.4f}" if "f1_stderr" in row else "",
        f"{row.get('em', float('nan')):.4f}",
        f"{row.get('answer_found', float('nan')):.4f}",
        str(int(row.get("n", 0))),
        pct(row["delta"], signed=True),
        pct(row["share"]),
        *extra,
    ]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    heads, split, declines = columns(rows), has_split(rows), has_declines(rows)
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(["---"] * len(heads)) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in table_cells(r, split, declines)) + " |")
    return "\n".join(lines) + "\n"
