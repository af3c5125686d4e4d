"""The numbers of the bio needle-in-a-haystack report (``raft.kinds.bio_needle.report``): the heatmap
matrix (``heatmap_matrix``: mean score by depth and context length), the score by context length
(``by_length``, ``accuracy_by_length``), the summaries per run (``bio_summary``, ``summary_tables``:
score, json_valid, n, accuracy per field and per length) and the section of ``report.md``
(``bio_markdown``), with the labels they are shown by (``length_label``, ``depth_label``, ``entry_label``).

Numbers come from results.json (``Run.apart``) where it has them and are computed from the samples
where it does not.

The general pieces (``heatmap_matrix``, ``from_metrics``, ``merge_lengths``, ``mean``, ``fmt``,
``run_cells``, ``markdown``, ``sections``, the labels) are ``raft.evaluate.report_parts``, shared with the
in2_probe report.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from raft.evaluate import report_parts
from raft.evaluate.report_parts import (
    Entry,
    depth_label,
    fmt,
    from_metrics,
    heatmap_matrix,
    length_label,
    markdown,
    mean,
    merge_lengths,
    run_rows,
    sections,
)
from raft.evaluate.results import Run
from raft.kinds.bio_needle.evaluation import BIO_TASK, TASKS
from raft.kinds.bio_needle.schema import FIELDS

__all__ = ["depth_label", "heatmap_matrix", "length_label", "markdown", "mean"]  # shared, used from here too


def entries(runs: list[Run]) -> list[Entry]:
    return report_parts.entries(runs, TASKS)


def entry_label(entry: Entry) -> str:
    return report_parts.entry_label(entry, BIO_TASK)


def by_length(entry: Entry) -> dict[int, float]:
    """target tokens -> mean score: from the samples, else from results.json (score_<n>k)."""
    run, task = entry
    samples = run.apart_samples.get(task)
    if not samples:
        return {t: v for t, v in sorted(from_metrics(run.apart[task]).items()) if not math.isnan(v)}
    groups: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        groups[int(s["target_tokens"])].append(float(s["score"]))
    return {t: mean(groups[t]) for t in sorted(groups)}


def accuracy_by_length(runs: list[Run]) -> dict[str, list[tuple[int, float]]]:
    """Per run (its label): (target tokens, mean score) by ascending length: the lines of bio_accuracy.png."""
    return {entry_label(e): list(by_length(e).items()) for e in entries(runs)}


def _metric(metrics: dict[str, float], name: str) -> float | None:
    """A metric of results.json by its name; a field also by its lm-eval names (raft.kinds.bio_needle.score.FIELD_METRICS
    names date_of_birth.day 'birth_day'; 'date_of_birth_day' is taken too)."""
    for key in (name, name.replace(".", "_"), name.replace("date_of_", "").replace(".", "_")):
        if key in metrics:
            return metrics[key]
    return None


def bio_summary(entry: Entry) -> dict[str, Any]:
    """score, json_valid, n, fields {field: accuracy}, lengths {'4k': score, ...} (ascending): results.json's
    value where it has one, else the samples' mean (NaN where neither has it)."""
    run, task = entry
    metrics, samples = run.apart[task], run.apart_samples.get(task, [])

    def pick(name: str, per_sample) -> float:
        value = _metric(metrics, name)
        if value is not None:
            return value
        return mean([float(v) for v in map(per_sample, samples) if v is not None])

    return {
        "score": pick("score", lambda s: s.get("score")),
        "json_valid": pick("json_valid", lambda s: s.get("json_valid")),
        "fields": {f: pick(f, lambda s, f=f: (s.get("fields") or {}).get(f)) for f in FIELDS},
        "lengths": merge_lengths(from_metrics(metrics), by_length(entry)),
        "n": int(metrics.get("n") or len(samples)),
    }


def summary_tables(runs: list[Run]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the three summary tables: per run; per field; per length (one column per run)."""
    es = entries(runs)
    sums = [bio_summary(e) for e in es]
    labels = [entry_label(e) for e in es]
    overall = run_rows(es, labels, sums, ("score", "json_valid"))
    fields = [[f, *(fmt(s["fields"][f]) for s in sums)] for f in FIELDS]
    # every length some run has a score for (the task declares more buckets than a sweep fills), ascending
    lengths = list(dict.fromkeys(n for s in sums for n, v in s["lengths"].items() if not math.isnan(v)))
    lengths.sort(key=lambda n: float(n[:-1]))
    per_length = [[n, *(fmt(s["lengths"].get(n)) for s in sums)] for n in lengths]
    return [
        ("Per run", ["run", "model", "precision", "weights", "score", "json_valid", "n"], overall),
        ("Accuracy per field", ["field", *labels], fields),
        ("Score per context length", ["length", *labels], per_length),
    ]


def bio_markdown(runs: list[Run], images: dict[str, str] | None = None) -> str:
    """The bio section of report.md: the summary tables, then the plots (``images``: title -> file name)."""
    head = "## Bio needle-in-a-haystack\n\nscore: the share of the 9 fields right; json_valid: the share of replies that parse.\n"  # fmt: skip
    return sections(head, summary_tables(runs), images)
