"""Kinds of training data that ``raft.generate`` makes: one module per kind, named as ``kind=`` says.

The pipeline (``raft.generate``) owns everything shared: the recipe, the teacher, the resumable
store, concurrency, progress, rejects, the split, the output folder and its dataset card. A kind
says only what is its own, by subclassing ``Kind`` in ``raft/kinds/<name>.py``:

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
``kind=raft``). A new kind is a new module here, its settings section and a recipe.
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


def check_source(cfg: Any) -> None:
    """For kinds that read documents or HotpotQA (``source``)."""
    if cfg.source not in ("docs", "hotpot"):
        raise ConfigError(f"source={cfg.source!r} is not docs or hotpot")
    if cfg.source == "hotpot" and cfg.hotpot.chunks not in ("clean", "published"):
        raise ConfigError(f"hotpot.chunks={cfg.hotpot.chunks!r} is not clean or published")
    if cfg.source == "hotpot" and cfg.hotpot.eval_questions < 0:
        raise ConfigError(f"hotpot.eval_questions={cfg.hotpot.eval_questions} is negative")


def source_fingerprint(cfg: Any) -> dict[str, Any]:
    """The reading settings that change results: ``source`` and, for documents, how they are chunked."""
    fp: dict[str, Any] = {"source": cfg.source}
    if cfg.source == "hotpot":
        fp.update({"hotpot.chunks": cfg.hotpot.chunks, "hotpot.eval_questions": cfg.hotpot.eval_questions})
    if cfg.source == "docs":
        fp.update(tokenizer=cfg.tokenizer, chunk_size=cfg.chunk_size, chunk_overlap=cfg.chunk_overlap, min_chunk_tokens=cfg.min_chunk_tokens)
    return fp


class PromptTokens:
    """The student's view of a long-context prompt: one user turn under the chat template (generation
    prompt included), counted in the student tokenizer; shared by the long-context kinds."""

    def __init__(self, tokenizer: str):
        from transformers import AutoTokenizer

        from raft.sources.chunking import load_tokenizer

        try:
            self.template = AutoTokenizer.from_pretrained(tokenizer)
        except (OSError, ValueError) as e:
            raise ConfigError(f"tokenizer={tokenizer!r} could not be loaded ({type(e).__name__}); pass a local folder") from None
        if not getattr(self.template, "chat_template", None):
            raise ConfigError(f"tokenizer={tokenizer}: no chat template; the context length is what the model sees under it")
        self.tok = load_tokenizer(tokenizer)

    def render(self, content: str) -> str:
        return self.template.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)

    def count(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False).ids)

    def offset(self, rendered: str, text: str) -> int:
        """The token index where ``text`` starts in the rendered prompt (a prefix-stable tokenizer)."""
        return self.count(rendered[: rendered.index(text)])

    def measure(self, content: str, context: str, context_tokens: int, edge: int = 256) -> tuple[int, int]:
        """(tokens of the whole prompt, token offset of ``context`` in it) for a user turn ``content`` that
        holds ``context`` (whose own count is known: raft.long_context.haystack counts it once per piece), without
        tokenizing the context again: only the template around it and ``edge`` characters at each end
        of the context are counted, which is exact where tokens do not reach further across a boundary
        (byte-level BPE pre-tokenizers; the tests check it against a full count)."""
        rendered = self.render(content)
        at = rendered.index(context)
        before, after = rendered[:at], rendered[at + len(context):]
        head, tail = context[:edge], context[-edge:]
        n_before, n_after = self.count(before), self.count(after)
        join_start = self.count(before + head) - n_before - self.count(head)
        join_end = self.count(tail + after) - self.count(tail) - n_after
        return n_before + context_tokens + n_after + join_start + join_end, n_before + join_start


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
