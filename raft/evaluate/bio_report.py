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

Numbers come from results.json (``Run.bio``) where it has them and are computed from the samples
where it does not; the plots and the page use the samples. matplotlib is imported only to draw.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from raft.bio import FIELDS, flatten
from raft.evaluate.report_html import folded, html_table, samples_page, score_band, select
from raft.evaluate.results import Run
from raft.evaluate.run import BIO_TASK
from raft.evaluate.table import NO_VALUE

Entry = tuple[Run, str]  # a run and one of its bio tasks
# the published heatmaps' colours: red (0) - yellow - green (1)
HEATMAP_COLOURS = ("#F0496E", "#EBB839", "#0CD79F")
_LENGTH_METRIC = re.compile(r"^score_(\d+(?:\.\d+)?)k$")
# field -> short name in the per-field marks of the samples page
_SHORT = {"nationality": "nat", "date_of_birth": "born", "date_of_death": "died", "sportsperson": "sport", "politician": "pol"}  # fmt: skip


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


# --------------------------------------------------------------------------------------------------
# the numbers
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# the plots
# --------------------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_heatmap(label: str, samples: list[dict[str, Any]], path: Path) -> Path:
    """Depth (rows, 0% at the top) by length (columns), each cell its mean score, annotated."""
    import numpy as np
    from matplotlib.colors import LinearSegmentedColormap

    plt = _pyplot()
    lengths, depths, matrix = heatmap_matrix(samples)
    data = np.ma.masked_invalid(np.array(matrix, dtype=float))
    cmap = LinearSegmentedColormap.from_list("niah", HEATMAP_COLOURS).with_extremes(bad="#eeeeee")
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(lengths) + 3), max(3.5, 0.45 * len(depths) + 2)))
    image = ax.imshow(data, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if not math.isnan(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(lengths)), [length_label(t) for t in lengths])
    ax.set_yticks(range(len(depths)), [depth_label(d) for d in depths])
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("needle depth")
    ax.set_title(f"{label}: mean score", fontsize=10)
    fig.colorbar(image, ax=ax, label="score")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy(runs: list[Run], path: Path) -> Path:
    """Mean score against context length (log scale), one line per run: base dashed, fine-tuned solid."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    lengths: set[int] = set()
    for e in entries(runs):
        points = list(by_length(e).items())
        lengths.update(t for t, _ in points)
        ax.plot(
            [t for t, _ in points],
            [v for _, v in points],
            marker="o",
            linestyle="-" if e[0].info["finetuned"] else "--",
            label=entry_label(e),
        )
    if lengths:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(lengths), [length_label(t) for t in sorted(lengths)])
        ax.minorticks_off()
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("mean score (share of fields right)")
    ax.set_title("bio needle: score vs context length")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------------
# the samples page
# --------------------------------------------------------------------------------------------------

_BIO_KEEP = """
function keep(r) {
  const v = id => document.getElementById(id).value;
  const s = parseFloat(r.dataset.score), failed = v('failed');
  let ok = (!v('run') || r.dataset.run === v('run')) && (!v('length') || r.dataset.length === v('length'))
    && (!v('depth') || r.dataset.depth === v('depth'));
  if (v('score') === 'zero') ok = ok && s === 0; else if (v('score') === 'partial') ok = ok && s > 0 && s < 1; else if (v('score') === 'one') ok = ok && s === 1;
  if (failed === 'any') ok = ok && s < 1; else if (failed) ok = ok && r.dataset.failed.split(' ').includes(failed);
  return ok;
}
"""
_BIO_STYLE = """
tr.zero td.score { background: #fde2e2; } tr.partial td.score { background: #fff4d6; } tr.one td.score { background: #dff5e1; }
.ok { color: #137333; } .bad { color: #c5221f; font-weight: bold; } td.marks { white-space: nowrap; }
"""
_BIO_HEADS = [
    ("run", 0),
    ("length", 1),
    ("context", 1),
    ("depth", 1),
    ("needle", 0),
    ("label", 0),
    ("response", 1),
    ("JSON", 1),
    ("fields", 1),
    ("score", 1),
]


def _mark(ok: bool, title: str) -> str:
    return f'<span class="{"ok" if ok else "bad"}" title="{html.escape(title)}">{"✓" if ok else "✗"}</span>'


def field_marks(sample: dict[str, Any]) -> tuple[str, int, list[str]]:
    """(the marks, grouped: "nat ✓ born ✓✓✗ ...", each with the expected and the parsed value as its
    title; the number of fields right; the names of the fields wrong)."""
    marks = sample.get("fields") or {}
    label = flatten(sample["label"]) if isinstance(sample.get("label"), dict) else {}
    parsed = flatten(sample["parsed"]) if isinstance(sample.get("parsed"), dict) else {}
    groups: dict[str, list[str]] = {}
    right, wrong = 0, []
    for f in FIELDS:
        ok = bool(marks.get(f))
        right += ok
        if not ok:
            wrong.append(f)
        title = f"{f}: expected {json.dumps(label.get(f))}, got {json.dumps(parsed.get(f))}"
        groups.setdefault(_SHORT.get(f.split(".")[0], f), []).append(_mark(ok, title))
    return " ".join(f"{name} {''.join(m)}" for name, m in groups.items()), right, wrong


def _sample_row(label: str, s: dict[str, Any]) -> str:
    e = html.escape
    score = float(s["score"])
    tokens, depth = int(s["target_tokens"]), float(s["depth_target"])
    marks, right, wrong = field_marks(s)
    valid = bool(s.get("json_valid"))
    measured = s.get("depth")
    depth_text = depth_label(depth) + (
        f" ({float(measured):.1%})" if isinstance(measured, int | float) else ""
    )
    response = str(s.get("response", ""))
    cells = [
        (e(label), None, ""),
        (e(length_label(tokens)), tokens, ""),
        (e(str(s.get("context_tokens", ""))), float(s.get("context_tokens") or 0), ""),
        (e(depth_text), depth, ""),
        (e(str(s.get("needle_name", ""))), None, ""),
        (e(json.dumps(s.get("label"), ensure_ascii=False, separators=(",", ":"))), None, ""),
        (folded(response), len(response), ""),
        ("✓" if valid else "✗", int(valid), ""),
        (marks, right, "marks"),
        (f"{score:.3f}", score, "score"),
    ]
    tds = "".join(
        f"<td{f' class={cls}' if cls else ''}{f' data-v={v!r}' if v is not None else ''}>{c}</td>"
        for c, v, cls in cells
    )
    failed = " ".join([*wrong, *([] if valid else ["json"])])
    return (
        f'<tr class="{score_band(score)}" data-run="{e(label)}" data-length="{tokens}" '
        f'data-depth="{round(depth, 6)}" data-score="{score}" data-failed="{e(failed)}">{tds}</tr>'
    )


def bio_samples_html(runs: list[Run]) -> str:
    """A self-contained page: the summary tables, then every sample of every bio run."""
    body, labels, lengths, depths = [], [], set(), set()
    for entry in entries(runs):
        label = entry_label(entry)
        labels.append(label)
        for s in entry[0].bio_samples.get(entry[1], []):
            body.append(_sample_row(label, s))
            lengths.add(int(s["target_tokens"]))
            depths.add(round(float(s["depth_target"]), 6))
    controls = "\n".join(
        [
            select("run", "run", [(lab, lab) for lab in labels]),
            select("length", "length", [(str(t), length_label(t)) for t in sorted(lengths)]),
            select("depth", "depth", [(str(d), depth_label(d)) for d in sorted(depths)]),
            select("score", "score", [("zero", "0"), ("partial", "between 0 and 1"), ("one", "1")]),
            select(
                "failed",
                "failed",
                [("any", "any field"), ("json", "JSON (no parse)"), *((f, f) for f in FIELDS)],
            ),
        ]
    )
    before = "\n".join(
        f"<h2>{html.escape(title)}</h2>\n{html_table(heads, rows, f'summary-{i}')}"
        for i, (title, heads, rows) in enumerate(summary_tables(runs))
    )
    after = """<p>Click a column header to sort. length: the target context length; context: its measured length
in tokens; depth: where the needle sits (target, then measured in brackets). fields: one mark per scored field
(nationality; born and died: day, month, year; sportsperson; politician), hover for the expected and the parsed
value. score: the share of the 9 fields right.</p>"""
    return samples_page(
        "Bio needle-in-a-haystack samples",
        before,
        controls,
        _BIO_HEADS,
        body,
        after,
        _BIO_KEEP,
        "search needle, label, response",
        _BIO_STYLE,
    )


# --------------------------------------------------------------------------------------------------
# the files
# --------------------------------------------------------------------------------------------------


def file_slug(label: str) -> str:
    """A label as a file name part: 'Llama-3.1-8B + raft (4-bit)' -> 'Llama-3.1-8B_raft_4-bit'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_.") or "run"


def bio_report(runs: list[Run], out: Path) -> tuple[dict[str, Path], str]:
    """Write the heatmaps, bio_accuracy.png and bio_samples.html for the runs with a bio task into
    ``out``; returns their paths and the Markdown section for report.md."""
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    images: dict[str, str] = {}
    used: set[str] = set()
    for entry in entries(runs):
        samples = entry[0].bio_samples.get(entry[1])
        if not samples:
            continue  # results.json alone: no cells to draw
        slug, n = file_slug(entry_label(entry)), 2
        while slug in used:
            slug, n = f"{file_slug(entry_label(entry))}_{n}", n + 1
        used.add(slug)
        path = plot_heatmap(entry_label(entry), samples, out / f"bio_heatmap_{slug}.png")
        paths[f"bio_heatmap_{slug}"] = path
        images[f"{entry_label(entry)}: score by depth and length"] = path.name
    paths["bio_plot"] = plot_accuracy(runs, out / "bio_accuracy.png")
    images["score vs context length"] = paths["bio_plot"].name
    paths["bio_html"] = out / "bio_samples.html"
    paths["bio_html"].write_text(bio_samples_html(runs), encoding="utf-8")
    return paths, bio_markdown(runs, images)
