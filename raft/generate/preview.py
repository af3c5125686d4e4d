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
rows match and how many it holds. This module turns an output folder into that data: the kind (its
recipe.yaml, else the columns of its first row) and the kind's view, ``raft/kinds/<kind>/preview.py``
(built from ``raft.generate.preview_parts``; a kind without one shows each row's JSON). The page
itself (style and script) is ``raft.generate.preview_page``.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any

from raft.config import ConfigError, first_line
from raft.generate.preview_parts import PLAIN_COLUMNS, PLAIN_FILTERS, Texts, block, plain_row
from raft.kinds import available_kinds
from raft.settings import GenerateConfig

PAGE = "preview.html"
MAX_ROWS = 20_000
DEFAULT_KIND = next(f.default for f in fields(GenerateConfig) if f.name == "kind")  # of a recipe.yaml without kind:


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


# ------------------------------------------------------------------------------------------ kinds
@dataclass
class View:
    """How the rows of one kind look in the page: its ``raft.kinds.<kind>.preview`` (see
    ``raft.generate.preview_parts``), or the plain view of each row's JSON for a kind without one."""

    kind: str
    columns: list[tuple[str, int]]
    filters: list[tuple[str, str]]
    row: Callable[[dict[str, Any], str, dict[str, str], Texts], dict[str, Any]]
    legend: str = ""
    chunks: bool = False  # whether ``row`` needs chunks.jsonl


def preview_module(kind: str) -> ModuleType | None:
    """``raft.kinds.<kind>.preview``, or None where the kind has none."""
    name = f"raft.kinds.{kind}.preview"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name in (name, f"raft.kinds.{kind}"):
            return None
        raise


def preview_modules() -> list[tuple[str, ModuleType]]:
    """(kind, its preview module) of every kind that has one, in name order."""
    return [(kind, m) for kind in available_kinds() if (m := preview_module(kind)) is not None]


def view_of(kind: str) -> View:
    """The ``View`` of a kind: its preview module's, else the plain one."""
    module = preview_module(kind)
    if module is None:
        return View(kind, PLAIN_COLUMNS, PLAIN_FILTERS, plain_row)
    return View(kind, module.COLUMNS, module.FILTERS, module.preview_row, module.LEGEND, getattr(module, "CHUNKS", False))


def guess_kind(columns: set[str]) -> str:
    """The kind whose preview module recognises rows with these columns: the kinds in name order, those
    marked ``FALLBACK`` (the kind of rows no other kind recognises) last; "unknown" where none does."""
    for kind, module in sorted(preview_modules(), key=lambda km: bool(getattr(km[1], "FALLBACK", False))):
        if module.recognises(columns):
            return kind
    return "unknown"


def source_columns() -> list[str]:
    """The columns a reject names its source in, first found first: ``source``, then the kinds' ``REJECT_SOURCES``."""
    return ["source", *(column for _, m in preview_modules() for column in getattr(m, "REJECT_SOURCES", ()))]


def reject_row(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """A reject: its id, reason, source (the first of ``columns`` it has) and question; the teacher's reply."""
    source = next((row[c] for c in columns if row.get(c)), "")
    return {
        "c": [row.get("id", ""), row.get("reason", ""), source, row.get("question", "")],
        "f": {"reason": row.get("reason", ""), "source": source},
        "b": [block("question", row.get("question", ""), search=True),
              block("teacher's reply", str(row.get("reply", "")), search=True)],
    }


def kind_of(out: Path) -> str:
    """The kind of an output folder: its recipe.yaml says; without one, the columns of its first row."""
    recipe = out / "recipe.yaml"
    if recipe.exists():
        import yaml

        kind = (yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}).get("kind", DEFAULT_KIND)
        if kind in available_kinds():
            return kind
    first = next(_jsonl(out / "train.jsonl", 1), None) or next(_jsonl(out / "test.jsonl", 1), None) or {}
    return guess_kind(set(first))


def build(out: Path, max_rows: int = MAX_ROWS) -> dict[str, Any]:
    """The page's data: the kind's rows of train.jsonl and test.jsonl (at most ``max_rows``) and the rejects."""
    kind = kind_of(out)
    view = view_of(kind)
    chunks = {c["id"]: c["text"] for c in _jsonl(out / "chunks.jsonl", 10**9)} if view.chunks else {}
    texts, rows = Texts(), []
    for split in ("train", "test"):
        for n, row in enumerate(_jsonl(out / f"{split}.jsonl", max_rows - len(rows)), 1):
            try:
                rows.append(view.row(row, split, chunks, texts))
            except (TypeError, ValueError, KeyError, AttributeError, IndexError) as e:
                raise ConfigError(f"{out / (split + '.jsonl')} row {n}: not a {kind} row ({first_line(e)})") from None
    columns = source_columns()
    rejects = [reject_row(r, columns) for r in _jsonl(out / "rejects.jsonl", max_rows)]
    total = _count_lines(out / "train.jsonl") + _count_lines(out / "test.jsonl")
    return {
        "title": f"{out.name or out.resolve().name}: {kind} data",
        "kind": kind,
        "texts": texts.items,
        "rows": {"columns": view.columns, "filters": view.filters, "rows": rows, "total": total},
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
    tmp.write_text(page(data, view_of(data["kind"]).legend), encoding="utf-8")
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
