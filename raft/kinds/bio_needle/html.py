"""The samples page of the bio needle-in-a-haystack report (``raft.kinds.bio_needle.report``):
``bio_samples.html``, the summary tables, then every sample (run, length, depth, needle, label,
response, a mark per scored field with the expected and the parsed value, score), sortable, searchable
and filterable by run, length, depth, score and failed field. The page itself (table, sorting,
search) is ``raft.evaluate.report_html``'s.
"""

from __future__ import annotations

import html
import json
from typing import Any

from raft.evaluate.report_html import cells_html, folded, samples_page, score_band, select, tables_html
from raft.evaluate.results import Run
from raft.kinds.bio_needle.numbers import depth_label, entries, entry_label, length_label, summary_tables
from raft.kinds.bio_needle.schema import FIELDS, flatten

# field -> short name in the per-field marks of the samples page
_SHORT = {"nationality": "nat", "date_of_birth": "born", "date_of_death": "died", "sportsperson": "sport", "politician": "pol"}  # fmt: skip

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
    tds = cells_html(cells)
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
        for s in entry[0].apart_samples.get(entry[1], []):
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
    before = tables_html(summary_tables(runs))
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
