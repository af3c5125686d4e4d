"""The per-sample HTML page (``samples.html``): the summary table, then every answer of every run,
sortable by column and filterable by F1, run and missing answer tag, for finding failure modes.
One self-contained file (its own style and script); every text from the results is escaped.

The pieces every samples page shares (``samples_page``: the page, its search box, count and sorting
script; ``html_table``, ``select``, ``folded``, ``score_band``, ``cells_html``, ``tables_html``) are here; ``bio_report``
builds ``bio_samples.html`` from them, ``probe_report`` ``probe_samples.html``.
"""

from __future__ import annotations

import html
from typing import Any

from raft.evaluate.results import Run
from raft.evaluate.table import columns, has_declines, has_split, table_cells

# The script of every samples page (samples.html, bio_samples.html): the search box ``q``, a live
# count of the rows shown, a click on a header sorts by that column (numerically by the cells'
# data-v where the header has data-num="1"); every control in .controls filters on input. The page
# adds ``keep(row)``: its own filters over the rows' data- attributes.
_HTML_SCRIPT = """
const rows = Array.from(document.querySelectorAll('#samples tbody tr'));
function applyFilter() {
  const q = document.getElementById('q').value.toLowerCase();
  let shown = 0;
  for (const r of rows) {
    const ok = (!q || r.textContent.toLowerCase().includes(q)) && keep(r);
    r.style.display = ok ? '' : 'none';
    if (ok) shown++;
  }
  document.getElementById('count').textContent = shown + ' of ' + rows.length + ' samples';
}
let sortCol = -1, sortAsc = true;
document.querySelectorAll('#samples th').forEach((th, i) => th.addEventListener('click', () => {
  sortAsc = sortCol === i ? !sortAsc : true; sortCol = i;
  const num = th.dataset.num === '1';
  const key = r => { const c = r.children[i]; return num ? parseFloat(c.dataset.v) : c.textContent.toLowerCase(); };
  rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (sortAsc ? 1 : -1));
  const body = document.querySelector('#samples tbody'); rows.forEach(r => body.appendChild(r));
}));
document.querySelectorAll('.controls input, .controls select').forEach(el => el.addEventListener('input', applyFilter));
applyFilter();
"""

# samples.html: F1 band, run, outputs without the answer tag
_RAFT_KEEP = """
function keep(r) {
  const f = document.getElementById('f1').value;
  const run = document.getElementById('run').value;
  const notag = document.getElementById('notag').checked;
  const v = parseFloat(r.dataset.f1);
  let ok = !run || r.dataset.run === run;
  if (f === 'zero') ok = ok && v === 0; else if (f === 'partial') ok = ok && v > 0 && v < 1; else if (f === 'one') ok = ok && v === 1;
  if (notag) ok = ok && r.dataset.found === '0';
  return ok;
}
"""

_HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; cursor: pointer; position: sticky; top: 0; }
tr.zero td.f1 { background: #fde2e2; } tr.partial td.f1 { background: #fff4d6; } tr.one td.f1 { background: #dff5e1; }
#summary, .summary { width: auto; margin-bottom: 1em; } #summary th, .summary th { cursor: default; position: static; }
pre { white-space: pre-wrap; margin: 0; max-width: 60em; }
.controls { margin: 0.8em 0; display: flex; gap: 1em; align-items: center; flex-wrap: wrap; }
"""


def score_band(value: float) -> str:
    """The row class of a score in [0, 1]: "zero", "partial" or "one" (the cell colour)."""
    return "zero" if value == 0 else "one" if value == 1 else "partial"


def folded(text: str) -> str:
    """A long text folded away: "<n> chars", opened with a click (escaped)."""
    return f"<details><summary>{len(text)} chars</summary><pre>{html.escape(text)}</pre></details>"


def cells_html(cells: list[tuple[str, Any, str]]) -> str:
    """The <td>s of a samples row: (HTML content, the sort key data-v or None, the class or "")."""
    return "".join(
        f"<td{f' class={cls}' if cls else ''}{f' data-v={v!r}' if v is not None else ''}>{c}</td>"
        for c, v, cls in cells
    )


def select(element_id: str, label: str, options: list[tuple[str, str]]) -> str:
    """A labelled <select> for the controls: "all" (value "") first, then (value, text) pairs, escaped."""
    e = html.escape
    items = "".join(f'<option value="{e(v)}">{e(t)}</option>' for v, t in options)
    return (
        f'<label>{e(label)} <select id="{element_id}"><option value="">all</option>{items}</select></label>'
    )


def html_table(heads: list[str], rows: list[list[str]], table_id: str = "summary") -> str:
    """A plain table of texts (escaped here); ``table_id`` "summary" gets the summary style, any
    other id the class "summary" (a page may hold several)."""
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in heads)
    body = "\n".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    attrs = f'id="{table_id}"' if table_id == "summary" else f'id="{table_id}" class="summary"'
    return f"<table {attrs}><thead><tr>{head}</tr></thead><tbody>\n{body}\n</tbody></table>"


def tables_html(tables: list[tuple[str, list[str], list[list[str]]]]) -> str:
    """Titled summary tables, (title, header, rows) each, one after the other (ids summary-0, summary-1, ...)."""
    return "\n".join(
        f"<h2>{html.escape(title)}</h2>\n{html_table(heads, rows, f'summary-{i}')}"
        for i, (title, heads, rows) in enumerate(tables)
    )


def samples_page(
    title: str,
    before: str,
    controls: str,
    heads: list[tuple[str, int]],
    body: list[str],
    after: str,
    keep_js: str,
    placeholder: str,
    style: str = "",
) -> str:
    """A self-contained samples page: ``before`` (HTML: summary tables), the controls (a search box
    with ``placeholder``, then ``controls``, then the count), the table ``#samples`` (``heads``:
    (name, 1 when numeric), ``body``: its <tr> rows), ``after`` (HTML notes) and the one script
    (sorting, search, count; ``keep_js`` defines ``keep(row)``, the page's filters)."""
    e = html.escape
    thead = "".join(f'<th data-num="{n}">{h}</th>' for h, n in heads)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title><style>{_HTML_STYLE}{style}</style></head>
<body>
<h1>{e(title)}</h1>
{before}
<div class="controls">
<input id="q" type="search" placeholder="{e(placeholder)}">
{controls}
<span id="count"></span>
</div>
<table id="samples"><thead><tr>{thead}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
{after}
<script>{keep_js}{_HTML_SCRIPT}</script>
</body></html>
"""


def oracle_cell(sample: dict[str, Any]) -> str:
    """Whether the oracle chunk was among the documents (raft_domain tasks; retrieved, for
    raft_domain_retrieval); empty where the sample does not say."""
    has = sample.get("has_oracle")
    if has is None:
        return ""
    if "oracle_retrieved" in sample:
        return "retrieved" if has else "not retrieved"
    return "yes" if has else "no"


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The summary table (the rows of table_rows, the cells of report.md) as an HTML table."""
    split, declines = has_split(rows), has_declines(rows)
    return html_table(columns(rows), [table_cells(r, split, declines) for r in rows])


def samples_html(runs: list[Run], rows: list[dict[str, Any]]) -> str:
    """A self-contained page: the summary table of ``rows`` (from table_rows), then every sample of
    every run, sortable by column, filterable by score."""
    e = html.escape
    labels = sorted({run.info["label"] for run in runs})
    body = []
    for run in runs:
        for task, samples in run.samples.items():
            for s in samples:
                f1v = float(s.get("f1", 0.0))
                kind = score_band(f1v)
                found = int(float(s.get("answer_found", 0.0)))
                cells = [
                    (e(run.info["label"]), None),
                    (e(task), None),
                    (e(str(s.get("id") or s.get("doc_id", ""))), None),
                    (e(str(s.get("type", ""))), None),
                    (e(str(s.get("question", ""))), None),
                    (e(str(s.get("gold", ""))), None),
                    (e(str(s.get("answer", ""))), None),
                    (f"{f1v:.3f}", f1v),
                    (f"{float(s.get('em', 0.0)):.0f}", float(s.get("em", 0.0))),
                    ("yes" if found else "no", found),
                    (oracle_cell(s), {True: 1, False: 0}.get(s.get("has_oracle"), -1)),
                    (folded(str(s.get("output", ""))), len(str(s.get("output", "")))),
                ]
                tds = "".join(
                    f"<td{' class=f1' if i == 7 else ''}{f' data-v={v!r}' if v is not None else ''}>{c}</td>"
                    for i, (c, v) in enumerate(cells)
                )
                body.append(
                    f'<tr class="{kind}" data-f1="{f1v}" data-found="{found}" data-run="{e(run.info["label"])}">{tds}</tr>'
                )
    heads = [
        ("run", 0),
        ("task", 0),
        ("id", 0),
        ("type", 0),
        ("question", 0),
        ("gold", 0),
        ("answer", 0),
        ("F1", 1),
        ("EM", 1),
        ("tag", 1),
        ("oracle", 1),
        ("output", 1),
    ]
    controls = "\n".join(
        [
            select("f1", "F1", [("zero", "0"), ("partial", "between 0 and 1"), ("one", "1")]),
            select("run", "run", [(lab, lab) for lab in labels]),
            '<label><input id="notag" type="checkbox"> only outputs without &lt;ANSWER&gt;:</label>',
        ]
    )
    after = """<p>Click a column header to sort. The answer is the text after the last &lt;ANSWER&gt;: of the output
(the last non-empty line when the tag is missing); F1 and EM follow the official HotpotQA rules.
"oracle": whether the chunk the question was written from was among the documents (raft_domain tasks).</p>"""
    return samples_page(
        "RAFT evaluation samples",
        summary_table(rows),
        controls,
        heads,
        body,
        after,
        _RAFT_KEEP,
        "search question, answer, output",
    )
