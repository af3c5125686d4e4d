"""The samples page of the in2_probe report (``raft.kinds.in2.report``): ``probe_samples.html``,
the summary tables, then every sample (run, probe, length, context, bin, depth, question, answer,
response, EM, F1), sortable, searchable and filterable by run, probe type, length, bin, EM and F1. The
page itself (table, sorting, search) is ``raft.evaluate.report_html``'s.
"""

from __future__ import annotations

import html
from typing import Any

from raft.evaluate.report_html import cells_html, folded, samples_page, score_band, select, tables_html
from raft.evaluate.report_parts import length_label
from raft.evaluate.results import Run
from raft.kinds.in2.numbers import bin_label, entries, n_bins, probe_label, probe_types, summary_tables

_PROBE_KEEP = """
function keep(r) {
  const v = id => document.getElementById(id).value;
  const f = parseFloat(r.dataset.f1);
  let ok = (!v('run') || r.dataset.run === v('run')) && (!v('probe') || r.dataset.probe === v('probe'))
    && (!v('length') || r.dataset.length === v('length')) && (!v('bin') || r.dataset.bin === v('bin'))
    && (!v('em') || r.dataset.em === v('em'));
  if (v('f1') === 'zero') ok = ok && f === 0; else if (v('f1') === 'partial') ok = ok && f > 0 && f < 1; else if (v('f1') === 'one') ok = ok && f === 1;
  return ok;
}
"""
_PROBE_STYLE = """
tr.zero td.em { background: #fde2e2; } tr.one td.em { background: #dff5e1; }
"""
_PROBE_HEADS = [
    ("run", 0),
    ("probe", 0),
    ("length", 1),
    ("context", 1),
    ("bin", 1),
    ("depth", 1),
    ("question", 0),
    ("answer", 0),
    ("response", 1),
    ("EM", 1),
    ("F1", 1),
]
FOLD_OVER = 300  # a response longer than this (characters) is folded away


def _sample_row(label: str, n: int, s: dict[str, Any]) -> str:
    e = html.escape
    em, tokens, b = float(s["em"]), int(s["target_tokens"]), int(s["bin"])
    f1 = float(s["f1"]) if isinstance(s.get("f1"), int | float) else em
    depth = s.get("depth")
    response = str(s.get("response", ""))
    cells = [
        (e(label), None, ""),
        (e(s["probe"]), None, ""),
        (e(length_label(tokens)), tokens, ""),
        (e(str(s.get("context_tokens", ""))), float(s.get("context_tokens") or 0), ""),
        (e(f"{b}: {bin_label(b, n)}"), b, ""),
        (f"{float(depth):.1%}" if isinstance(depth, int | float) else "", float(depth or 0), ""),
        (e(str(s.get("question", ""))), None, ""),
        (e(str(s.get("answer", ""))), None, ""),
        (folded(response) if len(response) > FOLD_OVER else e(response), len(response), ""),
        (f"{em:.0f}", em, "em"),
        (f"{f1:.3f}", f1, "f1"),
    ]
    tds = cells_html(cells)
    return (
        f'<tr class="{score_band(em)}" data-run="{e(label)}" data-probe="{e(s["probe"])}" data-length="{tokens}" '
        f'data-bin="{b}" data-em="{em:.0f}" data-f1="{f1}">{tds}</tr>'
    )


def probe_samples_html(runs: list[Run]) -> str:
    """A self-contained page: the summary tables, then every sample of every in2_probe run."""
    body, labels, probes, lengths, bins, n = [], [], [], set(), set(), 1
    for entry in entries(runs):
        label, n_entry = probe_label(entry), n_bins(entry)
        labels.append(label)
        n = max(n, n_entry)
        samples = entry[0].apart_samples.get(entry[1], [])
        probes += [p for p in probe_types(samples) if p not in probes]
        for s in samples:
            body.append(_sample_row(label, n_entry, s))
            lengths.add(int(s["target_tokens"]))
            bins.add(int(s["bin"]))
    controls = "\n".join(
        [
            select("run", "run", [(lab, lab) for lab in labels]),
            select("probe", "probe", [(p, p) for p in probes]),
            select("length", "length", [(str(t), length_label(t)) for t in sorted(lengths)]),
            select("bin", "bin", [(str(b), f"{b}: {bin_label(b, n)}") for b in sorted(bins)]),
            select("em", "EM", [("0", "0 (wrong)"), ("1", "1 (right)")]),
            select("f1", "F1", [("zero", "0"), ("partial", "between 0 and 1"), ("one", "1")]),
        ]
    )
    before = tables_html(summary_tables(runs))
    after = """<p>Click a column header to sort. length: the target context length; context: its measured length
in tokens; bin: where the gold sits (bin b of N: [b/N, (b+1)/N) of the context); depth: its measured start as a
share of the context. EM and F1: the response's answer against the gold (raft.kinds.in2.probes.score_probe, per probe type).</p>"""
    return samples_page(
        "IN2 position probe samples",
        before,
        controls,
        _PROBE_HEADS,
        body,
        after,
        _PROBE_KEEP,
        "search question, answer, response",
        _PROBE_STYLE,
    )
