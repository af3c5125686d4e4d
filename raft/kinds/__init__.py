"""Kinds of training data that ``raft.generate`` makes: one folder per kind, named as ``kind=`` says.

The pipeline (``raft.generate``) owns everything shared: the recipe, the teacher, the resumable
store, concurrency, progress, rejects, the split, the output folder and its dataset card. A kind
says only what is its own, by subclassing ``Kind`` in ``raft/kinds/<name>/kind.py``:

- ``load()``: the work items (chunks, needles, segment groups) and notes for the summary;
  ``prepare(work)`` builds what asking needs (e.g. a BM25 index) once the number to ask is known;
- ``item(run, index)``: the teacher calls one work item needs, in order (a later call may depend
  on an earlier reply: ``await run.call(messages, tag)``), and how the replies become accepted rows
  (``run.keep(row, dedup_key)``) or rejects with a reason (``run.reject(record)``);
- ``features()`` / ``columns``: the dataset's columns; ``card()``: its part of the dataset card;
  ``fingerprint()``: its settings that change results; ``estimate()``: the dry run's figures;
- ``split_of(row_id)``: the split a row belongs to when the kind decides it (by person, say);
- ``held_out(row)``: a test-split row as it is written (e.g. with its oracle put back);
  ``write_outputs(folder)``: files of its own in the output folder (e.g. the chunk pool).

Its settings live in their own section of the typed config (``raft.settings``: ``raft.*`` for
``kind=raft``). A new kind is a new folder here, its settings section and a recipe. What kinds share
lives outside: reading sources (``raft.sources``: ``pool``, ``settings``), long contexts
(``raft.long_context``: ``prompt``, ``fit``), prompts and reply formats (``raft.prompts``).
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raft.config import ConfigError

if TYPE_CHECKING:
    from raft.generate.pipeline import Run


@dataclass
class Estimate:
    """What a dry run prints: the work, the calls and the tokens (about 4 characters a token)."""

    work_line: str  # e.g. "10 chunks to ask about (of 90 available as distractors)"
    calls_line: str  # e.g. "10 question calls + up to 10 answer calls = 20 (3 question calls already stored)"
    calls: int
    tokens_in: int
    tokens_out: int


class Kind:
    """One kind of data (see the module docstring); ``cfg`` is the whole GenerateConfig."""

    name = "kind"
    unit = "item"  # what one work item is called, in the progress bar and the summary
    counters: tuple[str, ...] = ()  # the kind's own counts, reported next to accepted / rejected
    columns: list[str] = []

    def __init__(self, cfg: Any, source: str):
        self.cfg = cfg
        self.source = source  # cfg.input resolved (an absolute path, or a hub id)
        self.notes: list[str] = []

    def validate(self) -> None:
        """Raise ConfigError for a bad setting of this kind (before anything is loaded)."""

    def load(self) -> int:
        """Load the inputs; return how many work items there are (``limit`` takes the first ones)."""
        raise NotImplementedError

    def prepare(self, work: int) -> None:
        """Called once before the first ``item`` with the number of items that will be asked about."""

    async def item(self, run: Run, index: int) -> None:
        raise NotImplementedError

    def as_reject(self, row: dict[str, Any], reason: str) -> dict[str, Any]:
        """The rejects.jsonl record of an accepted row rejected later (a duplicate)."""
        return {"id": row["id"], "reason": reason, "row": row}

    def split_of(self, row_id: str) -> str | None:
        """"train" or "test" when the kind decides a row's split itself (e.g. by person), else None: the
        run's seeded ``test_size`` split."""
        return None

    def held_out(self, row: dict[str, Any]) -> dict[str, Any]:
        """A row of the test split as it is written (default: as it was generated)."""
        return row

    def write_outputs(self, folder: Any) -> None:
        """Write the kind's own files into the output folder (default: none)."""

    def features(self) -> Any:
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        return {}

    def estimate(self, work: int, stored: Any) -> Estimate:
        raise NotImplementedError

    def card(self) -> tuple[str, str, str]:
        """(title, what the data is, its columns) for the dataset card, in Markdown."""
        raise NotImplementedError


def available_kinds() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg and not m.name.startswith("_"))


def make_kind(cfg: Any, source: str) -> Kind:
    """The ``Kind`` of ``cfg.kind`` (module ``raft.kinds.<kind>.kind``); unknown: one line with the nearest."""
    names = available_kinds()
    if cfg.kind not in names:
        near = difflib.get_close_matches(cfg.kind, names, n=1)
        hint = f"; did you mean '{near[0]}'?" if near else ""
        raise ConfigError(f"kind={cfg.kind!r} is not a kind of data; available: {', '.join(names)}{hint}")
    kind = importlib.import_module(f"raft.kinds.{cfg.kind}.kind").Kind(cfg, source)
    kind.validate()
    return kind
