"""The numbers of the bio needle-in-a-haystack report (``raft.kinds.bio_needle.report``): the heatmap
matrix (``heatmap_matrix``: mean score by depth and context length), the score by context length
(``by_length``, ``accuracy_by_length``), the summaries per run (``bio_summary``, ``summary_tables``:
score, json_valid, n, accuracy per field and per length) and the section of ``report.md``
(``bio_markdown``), with the labels they are shown by (``length_label``, ``depth_label``, ``entry_label``).

Numbers come from results.json (``Run.bio``) where it has them and are computed from the samples
where it does not.

The in2_probe report (``raft.kinds.in2.numbers``) shares the general pieces: ``heatmap_matrix``
(any row key and value), ``from_metrics``, ``merge_lengths``, ``entry_label``, ``mean``, ``fmt``,
``run_cells``, ``markdown`` and ``sections``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from raft.evaluate.results import Run
from raft.evaluate.run import BIO_TASK
from raft.evaluate.table import NO_VALUE
from raft.kinds.bio_needle.schema import FIELDS

Entry = tuple[Run, str]  # a run and one of its bio tasks


def length_label(tokens: float) -> str:
    """A target length in k tokens as the score_<n>k metrics name it: 4096 -> '4k', 131072 -> '128k',
    32000 -> '32k'; else in units of 1024: 1536 -> '1.5k'."""
    for unit in (1024, 1000):
        if tokens % unit == 0:
            return f"{int(tokens) // unit}k"
    return f"{tokens / 1024:g}k"


def depth_label(depth: float) -> str:
    """0.333... -> '33%'."""
    return f"{depth * 100:.0f}%"


def entries(runs: list[Run]) -> list[Entry]:
    return [(run, task) for run in runs for task in run.bio]


def entry_label(entry: tuple[Run, str], plain: str = BIO_TASK) -> str:
    """The run's label; with the task's name when it is not the plain task (``plain``: bio_needle)."""
    run, task = entry
    return run.info["label"] if task == plain else f"{run.info['label']} [{task}]"


def mean(values: list[float]) -> float:
    """The mean; NaN for no value."""
    return sum(values) / len(values) if values else math.nan


def fmt(value: float | None) -> str:
    """A number as the tables show it: 4 decimals, NO_VALUE for None or NaN."""
    return NO_VALUE if value is None or math.isnan(value) else f"{value:.4f}"


def run_cells(run: Run) -> list[str]:
    """The model, precision and weights ("base" or "fine-tuned") cells of a run's row."""
    return [run.info["model"], run.info["precision"], "fine-tuned" if run.info["finetuned"] else "base"]


def heatmap_matrix(
    samples: list[dict[str, Any]], row: str = "depth_target", value: str = "score"
) -> tuple[list[int], list[float], list[list[float]]]:
    """(target lengths ascending, the ``row`` values ascending (rounded to 6 places), matrix[row][length]
    = mean ``value`` of the samples in that cell, NaN for a cell without samples). By default the rows
    are the needle's target depth and the value the score (the bio heatmap)."""
    cells: dict[tuple[float, int], list[float]] = defaultdict(list)
    for s in samples:
        cells[round(float(s[row]), 6), int(s["target_tokens"])].append(float(s[value]))
    lengths = sorted({t for _, t in cells})
    rows = sorted({d for d, _ in cells})
    return lengths, rows, [[mean(cells.get((d, t), [])) for t in lengths] for d in rows]


def from_metrics(metrics: dict[str, float], prefix: str = "score") -> dict[int, float]:
    """target tokens -> value from results.json's <prefix>_<n>k metrics (score_4k, ...)."""
    pattern = re.compile(rf"^{re.escape(prefix)}_(\d+(?:\.\d+)?)k$")
    out = {}
    for name, value in metrics.items():
        m = pattern.match(name)
        if m:
            out[round(float(m.group(1)) * 1024)] = value
    return out


def merge_lengths(named: dict[int, float], measured: dict[int, float]) -> dict[str, float]:
    """{'4k': value, ...} by ascending length: results.json's value (``named``: from_metrics) where it has
    a number, else the samples' (``measured``), a sample length named as the metrics name it."""
    lengths = {length_label(t): (t, v) for t, v in named.items()}
    for t, v in measured.items():
        old = lengths.get(length_label(t))
        lengths[length_label(t)] = (t, v if old is None or math.isnan(old[1]) else old[1])
    return {name: v for name, (_, v) in sorted(lengths.items(), key=lambda kv: kv[1][0])}


def by_length(entry: Entry) -> dict[int, float]:
    """target tokens -> mean score: from the samples, else from results.json (score_<n>k)."""
    run, task = entry
    samples = run.bio_samples.get(task)
    if not samples:
        return {t: v for t, v in sorted(from_metrics(run.bio[task]).items()) if not math.isnan(v)}
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
    metrics, samples = run.bio[task], run.bio_samples.get(task, [])

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
    overall = [
        [label, *run_cells(run), fmt(s["score"]), fmt(s["json_valid"]), str(s["n"])]
        for label, (run, _), s in zip(labels, es, sums, strict=True)
    ]
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


def markdown(heads: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(h.replace("|", "\\|") for h in heads) + " |",
        "|" + "|".join(["---"] * len(heads)) + "|",
    ]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def sections(
    head: str, tables: list[tuple[str, list[str], list[list[str]]]], images: dict[str, str] | None = None
) -> str:
    """A section of report.md: ``head`` (its heading and notes), the tables (title, header, rows), then
    the plots (``images``: title -> file name)."""
    parts = [head]
    for title, heads, rows in tables:
        parts.append(f"### {title}\n\n{markdown(heads, rows)}")
    for title, name in (images or {}).items():
        parts.append(f"![{title}]({name})\n")
    return "\n".join(parts)


def bio_markdown(runs: list[Run], images: dict[str, str] | None = None) -> str:
    """The bio section of report.md: the summary tables, then the plots (``images``: title -> file name)."""
    head = "## Bio needle-in-a-haystack\n\nscore: the share of the 9 fields right; json_valid: the share of replies that parse.\n"  # fmt: skip
    return sections(head, summary_tables(runs), images)
