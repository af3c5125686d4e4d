"""The numbers of the bio needle-in-a-haystack report (``raft.evaluate.bio_report``): the heatmap
matrix (``heatmap_matrix``: mean score by depth and context length), the score by context length
(``by_length``, ``accuracy_by_length``), the summaries per run (``bio_summary``, ``summary_tables``:
score, json_valid, n, accuracy per field and per length) and the section of ``report.md``
(``bio_markdown``), with the labels they are shown by (``length_label``, ``depth_label``, ``entry_label``).

Numbers come from results.json (``Run.bio``) where it has them and are computed from the samples
where it does not.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from raft.bio import FIELDS
from raft.evaluate.results import Run
from raft.evaluate.run import BIO_TASK
from raft.evaluate.table import NO_VALUE

Entry = tuple[Run, str]  # a run and one of its bio tasks
_LENGTH_METRIC = re.compile(r"^score_(\d+(?:\.\d+)?)k$")


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


def entry_label(entry: Entry) -> str:
    """The run's label; with the task's name when it is not plain bio_needle."""
    run, task = entry
    return run.info["label"] if task == BIO_TASK else f"{run.info['label']} [{task}]"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _fmt(value: float | None) -> str:
    return NO_VALUE if value is None or math.isnan(value) else f"{value:.4f}"


def heatmap_matrix(samples: list[dict[str, Any]]) -> tuple[list[int], list[float], list[list[float]]]:
    """(target lengths ascending, target depths ascending, matrix[depth][length] = mean score of the
    samples in that cell, NaN for a cell without samples)."""
    cells: dict[tuple[float, int], list[float]] = defaultdict(list)
    for s in samples:
        cells[round(float(s["depth_target"]), 6), int(s["target_tokens"])].append(float(s["score"]))
    lengths = sorted({t for _, t in cells})
    depths = sorted({d for d, _ in cells})
    return lengths, depths, [[_mean(cells.get((d, t), [])) for t in lengths] for d in depths]


def _from_metrics(metrics: dict[str, float]) -> dict[int, float]:
    """target tokens -> score from results.json's score_<n>k metrics."""
    out = {}
    for name, value in metrics.items():
        m = _LENGTH_METRIC.match(name)
        if m:
            out[round(float(m.group(1)) * 1024)] = value
    return out


def by_length(entry: Entry) -> dict[int, float]:
    """target tokens -> mean score: from the samples, else from results.json (score_<n>k)."""
    run, task = entry
    samples = run.bio_samples.get(task)
    if not samples:
        return {t: v for t, v in sorted(_from_metrics(run.bio[task]).items()) if not math.isnan(v)}
    groups: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        groups[int(s["target_tokens"])].append(float(s["score"]))
    return {t: _mean(groups[t]) for t in sorted(groups)}


def accuracy_by_length(runs: list[Run]) -> dict[str, list[tuple[int, float]]]:
    """Per run (its label): (target tokens, mean score) by ascending length: the lines of bio_accuracy.png."""
    return {entry_label(e): list(by_length(e).items()) for e in entries(runs)}


def _metric(metrics: dict[str, float], name: str) -> float | None:
    """A metric of results.json by its name; a field also by its lm-eval names (raft.bio_score.FIELD_METRICS
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
        return _mean([float(v) for v in map(per_sample, samples) if v is not None])

    lengths = {length_label(t): (t, v) for t, v in _from_metrics(metrics).items()}
    for t, v in by_length(entry).items():  # the samples' lengths, named as the metrics name them
        old = lengths.get(length_label(t))
        lengths[length_label(t)] = (t, v if old is None or math.isnan(old[1]) else old[1])
    return {
        "score": pick("score", lambda s: s.get("score")),
        "json_valid": pick("json_valid", lambda s: s.get("json_valid")),
        "fields": {f: pick(f, lambda s, f=f: (s.get("fields") or {}).get(f)) for f in FIELDS},
        "lengths": {name: v for name, (_, v) in sorted(lengths.items(), key=lambda kv: kv[1][0])},
        "n": int(metrics.get("n") or len(samples)),
    }


def summary_tables(runs: list[Run]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the three summary tables: per run; per field; per length (one column per run)."""
    es = entries(runs)
    sums = [bio_summary(e) for e in es]
    labels = [entry_label(e) for e in es]
    overall = [
        [
            label,
            run.info["model"],
            run.info["precision"],
            "fine-tuned" if run.info["finetuned"] else "base",
            _fmt(s["score"]),
            _fmt(s["json_valid"]),
            str(s["n"]),
        ]
        for label, (run, _), s in zip(labels, es, sums, strict=True)
    ]
    fields = [[f, *(_fmt(s["fields"][f]) for s in sums)] for f in FIELDS]
    # every length some run has a score for (the task declares more buckets than a sweep fills), ascending
    lengths = list(dict.fromkeys(n for s in sums for n, v in s["lengths"].items() if not math.isnan(v)))
    lengths.sort(key=lambda n: float(n[:-1]))
    per_length = [[n, *(_fmt(s["lengths"].get(n)) for s in sums)] for n in lengths]
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


def bio_markdown(runs: list[Run], images: dict[str, str] | None = None) -> str:
    """The bio section of report.md: the summary tables, then the plots (``images``: title -> file name)."""
    parts = [
        "## Bio needle-in-a-haystack\n\nscore: the share of the 9 fields right; json_valid: the share of replies that parse.\n"
    ]
    for title, heads, rows in summary_tables(runs):
        parts.append(f"### {title}\n\n{markdown(heads, rows)}")
    for title, name in (images or {}).items():
        parts.append(f"![{title}]({name})\n")
    return "\n".join(parts)
