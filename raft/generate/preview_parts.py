"""The parts a kind's view in the data viewer (``raft.generate.preview``) is built from: the texts
stored once, a titled text block of a row's detail, where a quote occurs, and a chat row's user text
and completion.

Each kind says how its rows look in ``raft/kinds/<kind>/preview.py``, a module that names:

- ``COLUMNS``: the Rows table's columns, ``(name, 1 if numeric else 0)``;
- ``FILTERS``: its filters, ``(key of the row's "f", label)``;
- ``LEGEND``: the page's legend (HTML) of the marks and blocks its rows use;
- ``preview_row(row, split, chunks, texts) -> dict``: one row of train.jsonl / test.jsonl as the page
  holds it: ``"c"`` its cells (as ``COLUMNS``), ``"f"`` its filter values, ``"b"`` its blocks (``block``);
- ``recognises(columns) -> bool``: whether rows with these columns (a set) are the kind's own, for an
  output folder without recipe.yaml;

and, where it needs them: ``CHUNKS = True`` (``preview_row`` gets ``chunks.jsonl`` as ``{id: text}``,
else ``{}``), ``FALLBACK = True`` (the kind of rows no other kind recognises: asked last) and
``REJECT_SOURCES`` (the columns, after ``source``, a reject of any kind may name its source in). A
kind without such a module is shown plainly: each row's JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any


def find(needle: str, text: str) -> tuple[int, int] | None:
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


def block(head: str, text: str, texts: Texts | None = None, marks=(), cls: str = "", search: bool = False) -> dict:
    """A titled text of a row's detail; ``marks``: [start, end, class, id, link] spans to highlight."""
    out: dict[str, Any] = {"h": head}
    if texts is not None:
        out["x"] = texts(text)
    else:
        out["t"] = text
    if marks:
        out["m"] = sorted(marks)
    if cls:
        out["c"] = cls
    if search:
        out["s"] = 1
    return out


def user_text(row: dict[str, Any]) -> str:
    """The user turns of a chat row's prompt (``prompt``, or ``messages`` without the assistant's)."""
    messages = row.get("prompt") or [m for m in row.get("messages") or [] if m.get("role") != "assistant"]
    return "\n\n".join(m.get("content", "") for m in messages if m.get("role") == "user")


def completion(row: dict[str, Any]) -> str:
    """The assistant turns of a chat row's ``completion``."""
    return "\n".join(m.get("content", "") for m in row.get("completion") or [] if m.get("role") == "assistant")


# the plain view: a kind without a preview module
PLAIN_COLUMNS = [("id", 0), ("split", 0), ("row", 0)]
PLAIN_FILTERS = [("split", "split")]


def plain_row(row: dict[str, Any], split: str, chunks: dict[str, str], texts: Texts) -> dict[str, Any]:
    """Any row: its id and split, and its JSON (in the table cut short, whole in the detail)."""
    return {
        "c": [row.get("id", ""), split, json.dumps(row, ensure_ascii=False)],
        "f": {"split": split},
        "b": [block("row", json.dumps(row, ensure_ascii=False, indent=1), search=True)],
    }

