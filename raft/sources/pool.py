"""The chunk pool of a run: every chunk of the documents or of HotpotQA (``source=``), duplicates dropped.

    pool = load_pool(source, cfg.input, cfg.hotpot if cfg.source == "hotpot" else None,
                     cfg.tokenizer, cfg.chunk_size, cfg.chunk_overlap, cfg.min_chunk_tokens)
    pool.chunks, pool.questions, pool.notes

Documents are chunked in the student tokenizer (``raft.sources.chunking``; files skipped or decoded with
a detected encoding are named on stderr and counted in the notes); HotpotQA gives its paragraphs
(``raft.sources.hotpot.training_chunks``: clean or published, as ``hotpot`` says) and its questions, for a
kind that keeps evaluation questions out of its rows. A chunk with the same text as an earlier one is
dropped. A problem is a one-line ``ConfigError``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from raft.config import ConfigError
from raft.sources.chunking import Chunk


@dataclass
class Pool:
    chunks: list[Chunk]  # distinct texts, in the order read
    questions: list[str] = field(default_factory=list)  # HotpotQA's questions (source=hotpot), as written
    notes: list[str] = field(default_factory=list)  # for the run's summary


def load_pool(source: str, name: str, hotpot: Any | None, tokenizer: str, chunk_size: int, chunk_overlap: int,
              min_chunk_tokens: int) -> Pool:
    """The pool of ``source`` (a resolved path or hub id; ``name`` is how the input was given): HotpotQA
    when ``hotpot`` (its settings: ``chunks``, ``eval_questions``) is given, else documents chunked by the
    other arguments."""
    notes: list[str] = []
    questions: list[str] = []
    if hotpot is not None:
        from raft.sources.hotpot import HotpotError, load_hotpot, training_chunks

        try:
            examples = load_hotpot(source)
            chunks, rule = training_chunks(examples, hotpot.chunks, hotpot.eval_questions)
        except HotpotError as e:
            raise ConfigError(str(e)) from None
        questions = [ex["question"] for ex in examples]
        notes.append(f"{len(examples)} HotpotQA examples, {len(chunks)} distinct paragraphs to use")
        notes.append(rule)
    else:
        from raft.sources.chunking import load_chunks

        result = load_chunks(source, tokenizer, chunk_size, chunk_overlap, min_chunk_tokens)
        for problem in result.problems:
            print(f"raft.generate: skipped {problem.source}: {problem.reason}", file=sys.stderr)
        for note in result.notes:
            print(f"raft.generate: {note}", file=sys.stderr)
        if result.notes:
            notes.append(f"{len(result.notes)} files not UTF-8, decoded with a detected encoding (see the messages above)")
        chunks = list(result.chunks)
        if result.problems:
            notes.append(f"{len(result.problems)} files skipped (see the messages above)")
        if result.dropped_small:
            notes.append(f"{result.dropped_small} chunks shorter than min_chunk_tokens={min_chunk_tokens} dropped")
        if not chunks:
            raise ConfigError(
                f"{name}: no text to generate from ({len(result.problems)} files skipped, "
                f"{result.dropped_small} chunks below min_chunk_tokens={min_chunk_tokens})"
            )
    seen: set[str] = set()
    unique = []
    for c in chunks:
        if c.text not in seen:
            seen.add(c.text)
            unique.append(c)
    if len(unique) < len(chunks):
        notes.append(f"{len(chunks) - len(unique)} chunks with the same text as an earlier one dropped")
    return Pool(unique, questions, notes)
