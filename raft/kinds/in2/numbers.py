"""The numbers of the in2_probe report (``raft.kinds.in2.report``): the heatmap matrix
(``position_matrix``: mean EM by position bin and context length), the lines of the position figures
(``position_lines``: per context length; ``position_by_run``: per run, lengths pooled), the summaries
per run (``probe_summary``, ``summary_tables``: EM, F1, n, EM per probe type, per bin and per length)
and the section of ``report.md`` (``probe_markdown``), with the labels they are shown by
(``bin_label``, ``probe_label``).

A sample's ``bin`` is where its gold sits: bin b of N covers [b/N, (b+1)/N) of the context. N is the
samples' ``bins``, the number of ``em_bin<i>`` metrics in results.json or the highest bin plus one,
whichever is most. EM and F1 are the task's (``raft.kinds.in2.probes.score_probe``, per probe type).

Numbers come from results.json (``Run.apart``) where it has them (``em``, ``f1``, ``em_<probe>``,
``em_bin<i>``, ``em_<n>k``) and are computed from the samples where it does not; the figures and the
page use the samples. The general pieces (``heatmap_matrix``, ``mean``, ``fmt``, ...) are
``raft.kinds.bio_needle.numbers``'.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from typing import Any

from raft.evaluate import report_parts
from raft.evaluate.report_parts import (
    Entry,
    fmt,
    from_metrics,
    heatmap_matrix,
    mean,
    merge_lengths,
    run_rows,
    sections,
)
from raft.evaluate.results import Run
from raft.kinds.in2.evaluation import PROBE_TASK, TASKS

PROBE_TYPES = ("document", "structured", "code")  # IN2's three probes, in the paper's order
_BIN_METRIC = re.compile(r"^em_bin(\d+)$")
_NOT_A_PROBE = re.compile(r"^(bin\d+|\d+(?:\.\d+)?k|stderr)$")


def entries(runs: list[Run]) -> list[Entry]:
    return report_parts.entries(runs, TASKS)


def probe_label(entry: Entry) -> str:
    """The run's label; with the task's name when it is not plain in2_probe."""
    return report_parts.entry_label(entry, PROBE_TASK)


def samples_of(entry: Entry, probe: str | None = None) -> list[dict[str, Any]]:
    """The entry's samples; of one probe type when ``probe`` is given."""
    samples = entry[0].apart_samples.get(entry[1], [])
    return samples if probe is None else [s for s in samples if s["probe"] == probe]


def n_bins(entry: Entry) -> int:
    """N, the number of position bins: the most of results.json's em_bin<i> metrics, the samples' ``bins``
    (raft.kinds.in2.probes writes it in every doc) and their highest bin + 1."""
    run, task = entry
    named = [int(m.group(1)) + 1 for m in map(_BIN_METRIC.match, run.apart[task]) if m]
    samples = samples_of(entry)
    given = [int(s["bins"]) for s in samples if isinstance(s.get("bins"), int | float)]
    return max([*named, *given, *(int(s["bin"]) + 1 for s in samples), 1])


def bin_label(b: int, n: int) -> str:
    """Bin 2 of 10 -> '20-30%' (where in the context its golds sit)."""
    return f"{100 * b / n:.0f}-{100 * (b + 1) / n:.0f}%"


def bin_centre(b: int, n: int) -> float:
    """The middle of bin b of n as a share of the context: where it is drawn."""
    return (b + 0.5) / n


def probe_types(samples: list[dict[str, Any]], metrics: dict[str, float] | None = None) -> list[str]:
    """The probe types of the samples (and of results.json's em_<probe> metrics): IN2's three in their
    order, then any other alphabetically."""
    found = {s["probe"] for s in samples}
    for name in metrics or {}:
        kind = name[3:] if name.startswith("em_") else ""
        if kind and not _NOT_A_PROBE.match(kind) and not kind.endswith("_stderr"):
            found.add(kind)
    return [p for p in PROBE_TYPES if p in found] + sorted(found - set(PROBE_TYPES))


def position_matrix(
    samples: list[dict[str, Any]], probe: str | None = None
) -> tuple[list[int], list[int], list[list[float]]]:
    """(target lengths ascending, bins ascending, matrix[bin][length] = mean EM of the samples in that
    cell, NaN for a cell without samples); of one probe type when ``probe`` is given."""
    chosen = samples if probe is None else [s for s in samples if s["probe"] == probe]
    lengths, bins, matrix = heatmap_matrix(chosen, row="bin", value="em")
    return lengths, [int(b) for b in bins], matrix


def position_lines(
    samples: list[dict[str, Any]], probe: str | None = None
) -> dict[int, list[tuple[int, float]]]:
    """Per target length: (bin, mean EM) by ascending bin, the bins with samples: the lines of
    probe_position_<label>.png (the columns of position_matrix)."""
    lengths, bins, matrix = position_matrix(samples, probe)
    return {
        t: [(b, row[j]) for b, row in zip(bins, matrix, strict=True) if not math.isnan(row[j])]
        for j, t in enumerate(lengths)
    }


def _by_bin(samples: list[dict[str, Any]]) -> list[tuple[int, float]]:
    groups: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        groups[int(s["bin"])].append(float(s["em"]))
    return [(b, mean(groups[b])) for b in sorted(groups)]


def position_by_run(runs: list[Run], probe: str | None = None) -> dict[str, list[tuple[int, float]]]:
    """Per run (its label): (bin, mean EM over every length) by ascending bin: the lines of
    probe_position.png (one probe type when ``probe`` is given)."""
    return {probe_label(e): _by_bin(samples_of(e, probe)) for e in entries(runs) if samples_of(e)}


def probe_summary(entry: Entry) -> dict[str, Any]:
    """em, f1, n, probes {type: em}, bins {b: em} (0..N-1), lengths {'4k': em} (ascending): results.json's
    value where it has one, else the samples' mean (NaN where neither has it)."""
    run, task = entry
    metrics, samples = run.apart[task], samples_of(entry)

    def pick(name: str, chosen: list[dict[str, Any]], key: str = "em") -> float:
        if name in metrics:
            return metrics[name]
        return mean([float(s[key]) for s in chosen if isinstance(s.get(key), int | float)])

    groups: dict[int, list[float]] = defaultdict(list)
    for s in samples:
        groups[int(s["target_tokens"])].append(float(s["em"]))
    return {
        "em": pick("em", samples),
        "f1": pick("f1", samples, "f1"),
        "probes": {p: pick(f"em_{p}", samples_of(entry, p)) for p in probe_types(samples, metrics)},
        "bins": {
            b: pick(f"em_bin{b}", [s for s in samples if int(s["bin"]) == b]) for b in range(n_bins(entry))
        },
        "lengths": merge_lengths(from_metrics(metrics, "em"), {t: mean(v) for t, v in groups.items()}),
        "n": int(metrics.get("n") or len(samples)),
    }


def summary_tables(runs: list[Run]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of the four summary tables: per run; EM per probe type, per position bin
    and per context length (one column per run; a row where some run has a value)."""
    es = entries(runs)
    sums = [probe_summary(e) for e in es]
    labels = [probe_label(e) for e in es]
    overall = run_rows(es, labels, sums, ("em", "f1"))

    def rows(key: str, order: list, name=str) -> list[list[str]]:
        keep = [k for k in order if any(not math.isnan(s[key].get(k, math.nan)) for s in sums)]
        return [[name(k), *(fmt(s[key].get(k)) for s in sums)] for k in keep]

    types = list(dict.fromkeys(p for s in sums for p in s["probes"]))
    n = max([n_bins(e) for e in es] or [1])
    lengths = sorted({k for s in sums for k in s["lengths"]}, key=lambda k: float(k[:-1]))
    return [
        ("Per run", ["run", "model", "precision", "weights", "em", "f1", "n"], overall),
        ("EM per probe type", ["probe", *labels], rows("probes", types)),
        (
            "EM per position of the gold",
            ["bin", *labels],
            rows("bins", list(range(n)), lambda b: f"{b}: {bin_label(b, n)}"),
        ),  # fmt: skip
        ("EM per context length", ["length", *labels], rows("lengths", lengths)),
    ]


def probe_markdown(runs: list[Run], images: dict[str, str] | None = None) -> str:
    """The in2_probe section of report.md: the summary tables, then the figures (``images``: title -> file)."""
    head = (
        "## IN2 position probe (lost in the middle)\n\nem / f1: the reply's answer against the gold "
        "(raft.kinds.in2.probes.score_probe, per probe type); bin b of N: the gold starts in [b/N, (b+1)/N) of the context.\n"
    )
    return sections(head, summary_tables(runs), images)
