"""The page of the data viewer (``preview.html``): its style and script around the data that
``raft.generate.preview`` builds. One self-contained file: no network, no library.

The data is a JSON block in the page (every ``<`` written as ``\\u003c``, so no text of the dataset can
close it); the script keeps the rows in memory and puts one page of them in the table at a time
(filter, search and sort work on the data, not on the table), which keeps 10,000 rows responsive.
A row's detail is built when it is opened. Element ids, which the browser tests use, are
``{tab}-q`` (search), ``{tab}-f-{key}`` (filters), ``{tab}-count``, ``{tab}-table``, ``{tab}-prev`` /
``{tab}-next`` and ``tab-{tab}`` for the tabs ``rows`` and ``rejects``.
"""

from __future__ import annotations

import html
import json
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 0.3em; } h4 { margin: 0.6em 0 0.2em; font-size: 12px; color: #555; }
.about { margin: 0.2em 0 0.8em; } .legend mark, .legend span { padding: 0 4px; margin-right: 6px; }
.tabs button { font-size: 14px; padding: 5px 14px; border: 1px solid #bbb; background: #f3f3f3; cursor: pointer; }
.tabs button.on { background: #fff; border-bottom-color: #fff; font-weight: 600; }
.controls, .pager { margin: 0.7em 0; display: flex; gap: 1em; align-items: center; flex-wrap: wrap; }
.controls input[type=search] { width: 22em; padding: 3px 6px; } .controls select { max-width: 18em; } .count { color: #444; }
table.rows { border-collapse: collapse; width: 100%; font-size: 13px; }
table.rows th, table.rows td { border: 1px solid #ddd; padding: 4px 6px; vertical-align: top; text-align: left; }
table.rows th { background: #f3f3f3; cursor: pointer; position: sticky; top: 0; white-space: nowrap; }
table.rows th.asc::after { content: " \\25B2"; } table.rows th.desc::after { content: " \\25BC"; }
tr.row { cursor: pointer; } tr.row:hover td { background: #f7f9ff; } tr.row.open td { background: #eef3ff; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.detail > td { background: #fcfcfc; padding: 6px 12px 12px; }
.block { border-left: 4px solid #ddd; padding: 0 0 0 10px; margin: 6px 0; }
.block.oracle { border-left-color: #2e9e4f; background: #f2fbf4; } .block.dropped { border-left-color: #d08a00; background: #fff8ea; }
.block.answer { border-left-color: #3367d6; } .block.context { border-left-color: #888; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: 0; font: 13px/1.45 ui-monospace, monospace; max-width: calc(100vw - 12em); }
mark.quote, a.quote { background: #fff1a8; color: inherit; } mark.quote.elsewhere { background: #ffd9a8; }
a.quote { text-decoration: underline dotted; } mark.quote.missing { background: #ffc9c9; }
mark.final { background: #dce8ff; } .flash { outline: 3px solid #e0a000; }
"""

_SCRIPT = r"""
'use strict';
const D = JSON.parse(document.getElementById('data').textContent);
const fmt = n => Number(n).toLocaleString('en-US');
const ESC = {'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'};
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ESC[c]);
const cut = (v, n) => { const s = String(v ?? ''); return s.length > n ? s.slice(0, n) + '\u2026' : s; };
const blockText = b => b.x !== undefined ? D.texts[b.x] : (b.t || '');

function marked(text, marks, prefix) {  // marks: [start, end, class, id, link], sorted, not overlapping
  let out = '', at = 0;
  for (const [s, e, cls, id, link] of marks || []) {
    if (s < at) continue;
    out += esc(text.slice(at, s));
    const idAttr = id ? ` id="${prefix}${id}"` : '', inner = esc(text.slice(s, e));
    out += link ? `<a href="#${prefix}${link}" class="${cls}"${idAttr} data-to="${prefix}${link}">${inner}</a>`
                : `<mark class="${cls}"${idAttr}>${inner}</mark>`;
    at = e;
  }
  return out + esc(text.slice(at));
}

class View {
  constructor(name, spec) {
    Object.assign(this, {name, spec, rows: spec.rows, sortCol: -1, asc: true, page: 0, size: 50, open: new Set()});
    this.order = this.rows.map((_, i) => i);
    this.root = document.getElementById(name);
    this.build();
    this.apply();
  }
  el(id) { return document.getElementById(this.name + '-' + id); }
  build() {
    const n = this.name;
    const selects = this.spec.filters.map(([key, label]) => {
      const counts = new Map();
      for (const r of this.rows) counts.set(String(r.f[key]), (counts.get(String(r.f[key])) || 0) + 1);
      const options = [...counts.keys()].sort().map(v =>
        `<option value="${esc(v)}">${esc(v === '' ? '(none)' : v)} (${fmt(counts.get(v))})</option>`).join('');
      return `<label>${esc(label)} <select id="${n}-f-${key}" data-key="${key}"><option value="">all</option>${options}</select></label>`;
    }).join('\n');
    const heads = this.spec.columns.map(([h, num], i) => `<th data-i="${i}" data-num="${num}">${esc(h)}</th>`).join('');
    this.root.innerHTML = `<div class="controls"><input id="${n}-q" type="search" placeholder="search the questions, answers and replies">
      ${selects}<label>per page <select id="${n}-size"><option>50</option><option>200</option><option>1000</option></select></label>
      <span id="${n}-count" class="count"></span></div>
      <table id="${n}-table" class="rows"><thead><tr>${heads}</tr></thead><tbody></tbody></table>
      <div class="pager"><button id="${n}-prev">&lsaquo; previous</button><span id="${n}-page"></span><button id="${n}-next">next &rsaquo;</button></div>`;
    const again = () => { this.page = 0; this.apply(); };
    this.el('q').addEventListener('input', again);
    this.root.querySelectorAll('select[data-key]').forEach(s => s.addEventListener('input', again));
    this.el('size').addEventListener('input', e => { this.size = +e.target.value; this.page = 0; this.render(); });
    this.el('prev').addEventListener('click', () => { this.page = Math.max(0, this.page - 1); this.render(); });
    this.el('next').addEventListener('click', () => { if ((this.page + 1) * this.size < this.shown.length) this.page++; this.render(); });
    this.root.querySelectorAll('th').forEach(th => th.addEventListener('click', () => this.sort(+th.dataset.i)));
    this.root.querySelector('tbody').addEventListener('click', e => {
      const link = e.target.closest('a[data-to]');
      if (link) {  // a quote: show where it occurs
        e.preventDefault();
        const to = document.getElementById(link.dataset.to);
        if (to) { to.scrollIntoView({block: 'center'}); to.classList.add('flash'); setTimeout(() => to.classList.remove('flash'), 1500); }
        return;
      }
      const tr = e.target.closest('tr.row');
      if (!tr || String(window.getSelection())) return;  // selecting text does not fold the row
      const i = +tr.dataset.i;
      if (this.open.has(i)) this.open.delete(i); else this.open.add(i);
      this.render();
    });
  }
  text(r) {  // what the search box looks in: the cells and the searchable blocks, lower case, built once
    if (r._s === undefined) r._s = [...r.c, ...r.b.filter(b => b.s).map(blockText)].join('\n').toLowerCase();
    return r._s;
  }
  apply() {
    const q = this.el('q').value.toLowerCase().trim();
    const want = [...this.root.querySelectorAll('select[data-key]')].filter(s => s.value !== '').map(s => [s.dataset.key, s.value]);
    this.shown = this.order.filter(i => {
      const r = this.rows[i];
      return want.every(([k, v]) => String(r.f[k]) === v) && (!q || this.text(r).includes(q));
    });
    this.render();
  }
  sort(col) {
    this.asc = this.sortCol === col ? !this.asc : true;
    this.sortCol = col;
    const num = this.spec.columns[col][1] === 1, sign = this.asc ? 1 : -1;
    const keys = this.rows.map(r => num ? Number(r.c[col]) : String(r.c[col]).toLowerCase());
    this.order = this.rows.map((_, i) => i).sort((a, b) => (keys[a] < keys[b] ? -sign : keys[a] > keys[b] ? sign : a - b));
    this.root.querySelectorAll('th').forEach((th, i) => { th.className = i === col ? (this.asc ? 'asc' : 'desc') : ''; });
    this.page = 0;
    this.apply();
  }
  render() {
    const from = this.page * this.size, to = Math.min(from + this.size, this.shown.length), cols = this.spec.columns;
    const parts = [];
    for (const i of this.shown.slice(from, to)) {
      const r = this.rows[i], open = this.open.has(i);
      parts.push(`<tr class="row${open ? ' open' : ''}" data-i="${i}">` +
        r.c.map((v, j) => `<td${cols[j][1] ? ' class="num"' : ''}>${esc(cut(v, 160))}</td>`).join('') + '</tr>');
      if (open) parts.push(`<tr class="detail"><td colspan="${cols.length}">${this.detail(r, i)}</td></tr>`);
    }
    this.root.querySelector('tbody').innerHTML = parts.join('');
    const held = this.rows.length, total = this.spec.total;
    const where = held < total ? `the page holds ${fmt(held)} of the ${fmt(total)} rows: view OUTPUT max_rows=N for more`
                               : `${fmt(held)} in all`;
    this.el('count').textContent = (this.shown.length ? `showing ${fmt(from + 1)}-${fmt(to)} of ${fmt(this.shown.length)} matching`
                                                       : 'no row matches') + ` (${where})`;
    this.el('page').textContent = ` page ${this.page + 1} of ${Math.max(1, Math.ceil(this.shown.length / this.size))} `;
    this.el('prev').disabled = this.page === 0;
    this.el('next').disabled = to >= this.shown.length;
  }
  detail(r, i) {
    return r.b.map(b => `<div class="block ${esc(b.c || '')}"><h4>${esc(b.h)}</h4><pre>${marked(blockText(b), b.m, `${this.name}${i}-`)}</pre></div>`).join('');
  }
}

const views = {rows: new View('rows', D.rows), rejects: new View('rejects', D.rejects)};
for (const name of Object.keys(views)) {
  document.getElementById('tab-' + name).addEventListener('click', () => {
    for (const other of Object.keys(views)) {
      document.getElementById(other).hidden = other !== name;
      document.getElementById('tab-' + other).classList.toggle('on', other === name);
    }
  });
}
"""

def page(data: dict[str, Any], legend: str = "") -> str:
    """The whole page for ``data`` (from ``raft.generate.preview.build``); ``legend``: the kind's legend
    of its marks (HTML: the ``LEGEND`` of its preview module)."""
    e = html.escape
    rows, rejects = data["rows"], data["rejects"]
    splits = {s: sum(1 for r in rows["rows"] if r["f"].get("split") == s) for s in ("train", "test")}
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(data["title"])}</title><style>{_STYLE}</style></head>
<body>
<h1>{e(data["title"])}</h1>
<p class="about">{rows["total"]:,} rows (in this page: train {splits["train"]:,}, test {splits["test"]:,}) and {rejects["total"]:,} rejects.
Click a row to open it; click a column header to sort. <span class="legend">{legend}</span></p>
<div class="tabs"><button id="tab-rows" class="on">Rows ({len(rows["rows"]):,})</button><button id="tab-rejects">Rejects ({len(rejects["rows"]):,})</button></div>
<section id="rows"></section>
<section id="rejects" hidden></section>
<script type="application/json" id="data">{blob}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
