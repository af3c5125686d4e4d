"""The data viewer: ``OUTPUT/preview.html``, one self-contained page (no network) to read a generated
dataset before spending a GPU-day on it.

    python -m raft.generate view OUTPUT                  # (re)build OUTPUT/preview.html from any output folder
    python -m raft.generate view OUTPUT max_rows=50000   # embed more rows (default 20,000 rows and rejects)

``raft.generate`` writes the page at the end of every run. Tab "Rows": one row per sample (train and
test), sortable by any column, filtered by split, source and the kind's own fields (RAFT: whether
the oracle was shown, whether every quote was found; in2: question type; bio_needle: context length),
and searched; a click opens the row. A RAFT row shows the documents the student sees with the oracle
highlighted (a dropped oracle is shown apart, marked "oracle dropped"), and the chain-of-thought
answer with each ``##begin_quote##`` span highlighted and linked to where it occurs in the oracle (or
in the document that holds it; red when it is nowhere). A bio_needle row shows its lengths, depth and
label and the context around the needle; an in2 row its gold segments with their token positions.
Tab "Rejects": every reject with its reason and the teacher's reply, filtered by reason and source.

Large datasets: the rows are data in the page (documents stored once), and only one page of rows
(50 by default) is in the document at a time, so 10,000 rows stay responsive; the page says how many
rows match and how many it holds. This module turns an output folder into that data; the page
itself (style and script) is ``raft.generate.preview_page``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from raft.config import ConfigError, first_line
from raft.kinds.raft.samples import QUOTE, QUOTE_MARKS
from raft.prompts import ANSWER_TAG

PAGE = "preview.html"
MAX_ROWS = 20_000
_EXCERPT = (400, 1600)  # characters before / after the needle shown of a long context


def _jsonl(path: Path, limit: int) -> Iterator[dict[str, Any]]:
    """The first ``limit`` rows of a JSONL file (none if it is missing); a bad line names the file and line."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if n > limit:
                return
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    raise ConfigError(f"{path} line {n}: not valid JSON ({e.msg})") from None


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def _find(needle: str, text: str) -> tuple[int, int] | None:
    """Where ``needle`` occurs in ``text``: exactly, else with any whitespace between its words,
    ignoring case (the quality gate compares quotes after whitespace normalisation)."""
    needle = needle.strip()
    if not needle:
        return None
    at = text.find(needle)
    if at >= 0:
        return at, at + len(needle)
    pattern = r"\s+".join(re.escape(w) for w in needle.split())
    m = re.search(pattern, text, re.I)
    return (m.start(), m.end()) if m else None


class Texts:
    """Every long text once: rows refer to documents by number (a chunk is a distractor of many rows)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        if text not in self._index:
            self._index[text] = len(self.items)
            self.items.append(text)
        return self._index[text]


def _block(head: str, text: str, texts: Texts | None = None, marks=(), cls: str = "", search: bool = False) -> dict:
    """A titled text of a row's detail; ``marks``: [start, end, class, id, link] spans to highlight."""
    block: dict[str, Any] = {"h": head}
    if texts is not None:
        block["x"] = texts(text)
    else:
        block["t"] = text
    if marks:
        block["m"] = sorted(marks)
    if cls:
        block["c"] = cls
    if search:
        block["s"] = 1
    return block


# ------------------------------------------------------------------------------------------ kinds
def raft_row(row: dict[str, Any], split: str, chunks: dict[str, str], texts: Texts) -> dict[str, Any]:
    """RAFT: the documents (oracle highlighted), the answer's quotes linked to where they occur."""
    docs, oracle = list(row.get("documents") or []), row.get("oracle_index")
    dropped = oracle is None
    pool = [*docs, chunks[row["chunk_id"]]] if dropped and row.get("chunk_id") in chunks else docs
    oracle_at = len(docs) if dropped and len(pool) > len(docs) else oracle
    cot = row.get("cot_answer") or ""
    answer_marks, doc_marks = [], [[] for _ in pool]
    found = 0
    # the quotes the quality gate checks (raft.kinds.raft.samples.parse_answer): without surrounding quote marks, empty ones skipped
    spans = [(m, text) for m in QUOTE.finditer(cot) if (text := m.group(1).strip(QUOTE_MARKS))]
    order = ([oracle_at] if oracle_at is not None else []) + [i for i in range(len(pool)) if i != oracle_at]
    for k, (m, text) in enumerate(spans):
        where = next(((i, span) for i in order if (span := _find(text, pool[i]))), None)
        if where is None:
            answer_marks.append([m.start(1), m.end(1), "quote missing", f"a{k}", ""])
            continue
        found += 1
        i, (start, end) = where
        answer_marks.append([m.start(1), m.end(1), "quote", f"a{k}", f"d{k}"])
        doc_marks[i].append([start, end, "quote" if i == oracle_at else "quote elsewhere", f"d{k}", ""])
    tag = cot.rfind(ANSWER_TAG)
    if tag >= 0:
        answer_marks.append([tag, len(cot), "final", "", ""])
    quotes = len(spans)
    blocks = [_block("question", row.get("question", ""), search=True)]
    for i, doc in enumerate(pool):
        if i == len(docs):
            head, cls = "oracle (dropped: not among the student's documents)", "oracle dropped"
        else:
            head, cls = (f"document {i + 1}" + (" - oracle" if i == oracle else ""), "oracle" if i == oracle else "")
        blocks.append(_block(head, doc, texts, doc_marks[i], cls))
    blocks.append(_block("chain-of-thought answer", cot, None, answer_marks, "answer", search=True))
    quotes_cell = f"{found}/{quotes}" if quotes else "none"
    return {
        "c": [row.get("id", ""), split, row.get("source", ""), row.get("question", ""), row.get("final_answer", ""),
              "dropped" if dropped else f"doc {oracle + 1}", quotes_cell, len(cot)],
        "f": {"split": split, "source": row.get("source", ""), "oracle": "dropped" if dropped else "shown",
              "quotes": "none" if not quotes else "all found" if found == quotes else "some not found"},
        "b": blocks,
    }


def _user_text(row: dict[str, Any]) -> str:
    messages = row.get("prompt") or [m for m in row.get("messages") or [] if m.get("role") != "assistant"]
    return "\n\n".join(m.get("content", "") for m in messages if m.get("role") == "user")


def _completion(row: dict[str, Any]) -> str:
    return "\n".join(m.get("content", "") for m in row.get("completion") or [] if m.get("role") == "assistant")


def bio_row(row: dict[str, Any], split: str, chunks: dict[str, str], texts: Texts) -> dict[str, Any]:
    """bio_needle: lengths, depth, the label, and the context around the needle (the needle's name marked)."""
    user, name = _user_text(row), row.get("needle_name", "")
    at = user.lower().find(name.lower()) if name else -1
    start = max(0, at - _EXCERPT[0]) if at >= 0 else 0
    excerpt = user[start:at + _EXCERPT[1]] if at >= 0 else user[:_EXCERPT[1]]
    marks = [[m.start(), m.end(), "quote", "", ""] for m in re.finditer(re.escape(name), excerpt, re.I)] if name else []
    head = (f"context around the needle: characters {start:,} to {start + len(excerpt):,} of {len(user):,}; "
            f"the needle starts at token {row.get('needle_start')} of {row.get('context_tokens')}")
    depth = float(row.get("depth") or 0.0)
    return {
        "c": [row.get("id", ""), split, name, row.get("target_tokens", 0), row.get("context_tokens", 0), round(depth, 3),
              row.get("needle_tokens", 0)],
        "f": {"split": split, "length": str(row.get("target_tokens", ""))},
        "b": [_block("label (the answer the student learns)", _completion(row) or json.dumps(row.get("label")),
                     search=True),
              _block(head, excerpt, None, marks, "context"),
              _block("instruction (end of the prompt)", user[-600:], search=True)],
    }


def in2_row(row: dict[str, Any], split: str, chunks: dict[str, str], texts: Texts) -> dict[str, Any]:
    """in2: the question, the answer and each gold segment with its token position in the long context."""
    answer = row.get("final_answer", "")
    blocks = [_block("question", row.get("question", ""), search=True),
              _block("answer", answer, cls="answer", search=True)]
    positions = row.get("gold_positions") or []
    for i, doc in enumerate(row.get("documents") or []):
        pos = positions[i] if i < len(positions) else {}
        marks = []
        for part in answer.split(";"):
            span = _find(part, doc)
            if span:
                marks.append([*span, "quote", "", ""])
        head = (f"gold segment {pos.get('segment', i + 1)}: tokens {pos.get('start')}-{pos.get('end')} "
                f"of {row.get('context_tokens')} (depth {float(pos.get('depth', 0.0)):.2f})")
        blocks.append(_block(head, doc, texts, marks, "oracle"))
    depths = ", ".join(f"{float(p.get('depth', 0.0)):.2f}" for p in positions)
    return {
        "c": [row.get("id", ""), split, row.get("question_type", ""), row.get("question", ""), answer,
              row.get("context_tokens", 0), depths],
        "f": {"split": split, "type": row.get("question_type", ""), "source": row.get("source", "")},
        "b": blocks,
    }


# (name, numeric) columns, filters (key, label) and the row builder of each kind
KINDS = {
    "raft": ([("id", 0), ("split", 0), ("source", 0), ("question", 0), ("final answer", 0), ("oracle", 0),
              ("quotes found", 0), ("answer chars", 1)],
             [("split", "split"), ("source", "source"), ("oracle", "oracle"), ("quotes", "quotes")], raft_row),
    "bio_needle": ([("id", 0), ("split", 0), ("needle", 0), ("target tokens", 1), ("context tokens", 1), ("depth", 1),
                    ("needle tokens", 1)], [("split", "split"), ("length", "length")], bio_row),
    "in2": ([("id", 0), ("split", 0), ("type", 0), ("question", 0), ("answer", 0), ("context tokens", 1),
             ("gold depths", 0)], [("split", "split"), ("type", "type"), ("source", "source")], in2_row),
}


def reject_row(row: dict[str, Any]) -> dict[str, Any]:
    source = row.get("source") or row.get("needle_name") or ""
    return {
        "c": [row.get("id", ""), row.get("reason", ""), source, row.get("question", "")],
        "f": {"reason": row.get("reason", ""), "source": source},
        "b": [_block("question", row.get("question", ""), search=True),
              _block("teacher's reply", str(row.get("reply", "")), search=True)],
    }


def kind_of(out: Path) -> str:
    """The kind of an output folder: its recipe.yaml says; without one, the columns of its first row."""
    recipe = out / "recipe.yaml"
    if recipe.exists():
        import yaml

        kind = (yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}).get("kind", "raft")
        if kind in KINDS:
            return kind
    first = next(_jsonl(out / "train.jsonl", 1), None) or next(_jsonl(out / "test.jsonl", 1), None) or {}
    return "bio_needle" if "needle_name" in first else "in2" if "gold_positions" in first else "raft"


def build(out: Path, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """The page's data: the kind's rows of train.jsonl and test.jsonl (at most ``max_rows``) and the rejects."""
    kind = kind_of(out)
    heads, filters, make = KINDS[kind]
    chunks = {}
    if kind == "raft":
        chunks = {c["id"]: c["text"] for c in _jsonl(out / "chunks.jsonl", 10**9)}
    texts, rows = Texts(), []
    for split in ("train", "test"):
        for n, row in enumerate(_jsonl(out / f"{split}.jsonl", max_rows - len(rows)), 1):
            try:
                rows.append(make(row, split, chunks, texts))
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
                raise ConfigError(f"{out / (split + '.jsonl')} row {n}: not a {kind} row ({first_line(e)})") from None
    rejects = [reject_row(r) for r in _jsonl(out / "rejects.jsonl", max_rows)]
    total = _count_lines(out / "train.jsonl") + _count_lines(out / "test.jsonl")
    return {
        "title": f"{out.name or out.resolve().name}: {kind} data",
        "kind": kind,
        "texts": texts.items,
        "rows": {"columns": heads, "filters": filters, "rows": rows, "total": total},
        "rejects": {"columns": [("id", 0), ("reason", 0), ("source", 0), ("question", 0)],
                    "filters": [("reason", "reason"), ("source", "source")], "rows": rejects,
                    "total": _count_lines(out / "rejects.jsonl")},
    }


def write_preview(out: str | Path, max_rows: int = MAX_ROWS) -> Path:
    """Write ``out/preview.html`` from the output folder ``out``; returns its path."""
    from raft.generate.preview_page import page

    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"{out} is not a folder (pass the output folder of a raft.generate run)")
    if not any((out / f).exists() for f in ("train.jsonl", "test.jsonl", "rejects.jsonl")):
        raise ConfigError(f"{out} has no train.jsonl, test.jsonl or rejects.jsonl: not the folder of a finished "
                          "raft.generate run (a run writes them at its end)")
    data = build(out, max_rows)
    path = out / PAGE
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(page(data), encoding="utf-8")
    tmp.replace(path)
    return path


def main(args: list[str]) -> Path:
    """``view OUTPUT [max_rows=N]``: rebuild the page, print where it is."""
    if any(a in ("-h", "--help", "help") for a in args):
        try:
            print(__doc__, flush=True)
        except BrokenPipeError:  # `view --help | head`: the reader has all it wanted
            sys.stdout = None
        raise SystemExit(0)
    folders = [a for a in args if "=" not in a]
    options = dict(a.split("=", 1) for a in args if "=" in a)
    unknown = sorted(set(options) - {"max_rows"})
    if len(folders) != 1 or unknown:
        raise ConfigError("usage: python -m raft.generate view OUTPUT [max_rows=N]" +
                          (f" (unknown option {unknown[0]}=)" if unknown else ""))
    try:
        max_rows = int(options.get("max_rows", MAX_ROWS))
    except ValueError:
        raise ConfigError(f"max_rows={options['max_rows']} is not a number") from None
    if max_rows < 1:
        raise ConfigError(f"max_rows={max_rows} must be at least 1")
    path = write_preview(folders[0], max_rows)
    print(f"wrote {path}: open it in a browser (file://{path.resolve()})")
    return path
