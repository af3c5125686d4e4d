"""The probes' pieces: corpus segments and the sentences a document probe may ask about, seeded
JSON-lines records of UUIDs, seeded Python functions.

- ``corpus_segments(path, tokenizer, tokens, max_chars, seed)``: documents (``raft.sources.documents``: a file
  or folder; a raft.generate output folder is read as its ``chunks.jsonl``) cut into segments of at
  most ``tokens`` tokens (``raft.sources.chunking``: paragraphs, lines, then sentences). Documents are taken
  in a seeded order until ``max_chars`` characters: a large corpus is not all chunked for a few
  hundred contexts.
- ``sentences(texts, quote_words, ...)``: the candidate sentences: one line of prose, beginning with a
  capital letter after a sentence end, ending with . ! or ?, words of letters, digits and ordinary
  punctuation only (no code, markup or list markers), ``quote_words`` words quoted and 4 to 24 words
  left to continue.
- ``training_overlap(segments, training, n)``: the segments that share a run of ``n`` words
  (``raft.kinds.in2.decontaminate``'s normalised words) with the rows of a training data folder
  (``raft.generate`` output: every text of its ``train.jsonl`` and ``test.jsonl`` rows, long contexts
  included): a document probe must not ask a fine-tuned model to continue sentences it trained on.
- ``kv_records(rng, n)``: ``{"key": UUID, "value": UUID}`` lines, every key and value distinct.
- ``functions(rng, n)``: ``def f_<hex>(a, b, c)`` with one assignment and one ``return`` line; names
  and return expressions distinct.
"""

from __future__ import annotations

import json
import random
import re
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from raft.config import ConfigError
from raft.records import iter_jsonl

CHUNKS_FILE = "chunks.jsonl"  # a raft.generate output folder's chunk pool
OVERLAP_WORDS = 10  # a probe segment sharing this many consecutive words with training text is dropped
MIN_SEGMENT_TOKENS = 32  # shorter segments (headings, stray lines) are dropped
MIN_ANSWER_WORDS, MAX_ANSWER_WORDS = 4, 24  # the continuation asked for
_PARAGRAPH = re.compile(r"\S(?:.|\n(?!\s*\n))*")  # a run of non-blank lines
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_WORD = re.compile(r"^[A-Za-z0-9'’\",;:()\-.!?%$&/]+$")
_ABBREVIATION = re.compile(r"(?:^|\s)(?:[A-Za-z]|Mr|Mrs|Ms|Dr|St|Jr|Sr|No|vs|etc|e\.g|i\.e|U\.S)\.$")
_INITIALS = re.compile(r"\b[A-Z]\.")


@dataclass(frozen=True)
class Sentence:
    piece: int  # index of its segment in the pool
    char: int  # its first character in the segment
    text: str  # the whole sentence
    cue: str  # its first words, quoted in the question
    answer: str  # the rest of it: what the model must write


def corpus_segments(path: str | Path, tokenizer: Any, tokens: int, max_chars: int, seed: int) -> list[str]:
    """Segments of at most ``tokens`` tokens of the corpus at ``path`` (see the module docstring)."""
    from raft.sources.chunking import chunk_documents
    from raft.sources.documents import DocumentError, read_documents

    path = Path(path).expanduser()
    if path.is_dir() and (path / CHUNKS_FILE).is_file():
        path = path / CHUNKS_FILE
    try:
        docs, _, _ = read_documents(path)
    except DocumentError as e:  # no such path, no loadable document
        raise ConfigError(f"in2_probe corpus: {e}") from None
    docs = sorted(docs, key=lambda d: d.source)
    random.Random(f"{seed}:corpus").shuffle(docs)
    taken, chars = [], 0
    for doc in docs:
        if chars >= max_chars:
            break
        text = doc.text
        if chars + len(text) > max_chars:  # the last document up to the limit, at a paragraph end
            cut = text.rfind("\n\n", 0, max_chars - chars)
            text = text[: cut if cut > 0 else max_chars - chars]
        taken.append(replace(doc, text=text))
        chars += len(text)
    chunks, _ = chunk_documents(taken, tokenizer, tokens, 0, MIN_SEGMENT_TOKENS, progress=False)
    return [c.text.strip() for c in chunks if c.text.strip()]


def sentences(texts: list[str], quote_words: int) -> list[Sentence]:
    """Every sentence of ``texts`` that a document probe may ask about (see the module docstring).
    A sentence may span the line breaks of a hard-wrapped paragraph; its cue and answer have single
    spaces there (the scoring collapses whitespace)."""
    out = []
    for i, text in enumerate(texts):
        for para in _PARAGRAPH.finditer(text):
            block, offset, start = para.group().rstrip(), para.start(), 0
            for part in _SPLIT.split(block):
                char = block.index(part, start)
                before = block[:char].rstrip()
                start = char + len(part)
                words = part.split()
                if not (quote_words + MIN_ANSWER_WORDS <= len(words) <= quote_words + MAX_ANSWER_WORDS):
                    continue
                if not part[0].isupper() or part[-1] not in ".!?" or _ABBREVIATION.search(before):
                    continue
                if (before and before[-1] not in ".!?") or _INITIALS.search(part[:-1]):
                    continue
                if not all(_WORD.match(w) and any(ch.isalnum() for ch in w) for w in words):
                    continue
                if sum(w[0].isalpha() for w in words) < 0.8 * len(words):
                    continue
                out.append(Sentence(i, offset + char, part, " ".join(words[:quote_words]), " ".join(words[quote_words:])))
    return out


def kv_records(rng: random.Random, n: int) -> list[str]:
    """``n`` JSON lines ``{"key": UUID, "value": UUID}`` (version-4 UUIDs from ``rng``), all distinct."""
    seen: set[str] = set()
    lines = []
    while len(lines) < n:
        key, value = (str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(2))
        if key in seen or value in seen or key == value:
            continue
        seen.update((key, value))
        lines.append(json.dumps({"key": key, "value": value}))
    return lines


PARAMS = ("a", "b", "c", "d", "k", "m", "n", "p", "q", "x", "y", "z")
LOCALS = ("r", "s", "t", "u", "v", "w")
OPS = ("+", "-", "*", "//", "%")


def functions(rng: random.Random, n: int) -> list[tuple[str, str, str]]:
    """``n`` (name, source, return expression): three-line functions of three parameters, distinct
    names and distinct return expressions."""
    names: set[str] = set()
    returns: set[str] = set()
    out = []
    while len(out) < n:
        name = f"f_{rng.getrandbits(32):08x}"
        a, b, c = rng.sample(PARAMS, 3)
        local = rng.choice(LOCALS)
        body = f"{local} = {a} {rng.choice(OPS)} {rng.randint(2, 99)}"
        terms = [local, b, c, str(rng.randint(2, 99))]
        rng.shuffle(terms)
        expr = f"{terms[0]} {rng.choice(OPS)} {terms[1]} {rng.choice(OPS)} {terms[2]} {rng.choice(OPS)} {terms[3]}"
        if name in names or expr in returns:
            continue
        names.add(name)
        returns.add(expr)
        out.append((name, f"def {name}({a}, {b}, {c}):\n    {body}\n    return {expr}", expr))
    return out


def too_small(what: str, available: int, needed: int) -> ConfigError:
    return ConfigError(f"in2_probe: {what} has {available:,} tokens; the longest context asked needs about {needed:,}")


def _strings(value: Any):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def training_texts(folder: str | Path):
    """Every text of the rows of a ``raft.generate`` output folder (``train.jsonl``, ``test.jsonl``), streamed."""
    folder = Path(folder).expanduser()
    files = [folder / f"{split}.jsonl" for split in ("train", "test") if (folder / f"{split}.jsonl").is_file()]
    if not files:
        raise ConfigError(f"in2_probe exclude: {folder} is not a raft.generate output folder (no train.jsonl / test.jsonl)")
    for path in files:
        try:
            for row in iter_jsonl(path):
                # `messages` repeats `prompt` + `completion` (the long context twice): read it once
                yield from _strings({k: v for k, v in row.items() if k != "messages"} if "prompt" in row else row)
        except ConfigError as e:
            raise ConfigError(f"in2_probe exclude: {e}") from None


def training_overlap(segments: list[str], training: Any, n: int = OVERLAP_WORDS) -> set[int]:
    """Indices of ``segments`` sharing ``n`` consecutive (normalised) words with any text of ``training``
    (a segment of fewer words: all of them, in a row). Only the segments' n-grams are held in memory;
    the training texts stream past them."""
    from raft.kinds.in2.decontaminate import ngrams, words

    owners: dict[int, set[int]] = {}
    short: dict[int, str] = {}
    for i, text in enumerate(segments):
        tokens = words(text)
        if 0 < len(tokens) < n:
            short[i] = f" {' '.join(tokens)} "
        for g in ngrams(tokens, n):
            owners.setdefault(hash(g), set()).add(i)
    hit: set[int] = set()
    for text in training:
        tokens = words(text)
        for g in ngrams(tokens, n):
            found = owners.get(hash(g))
            if found:
                hit |= found
        if short:
            joined = f" {' '.join(tokens)} "
            hit |= {i for i, words_in_a_row in short.items() if i not in hit and words_in_a_row in joined}
        if len(hit) == len(segments):
            break
    return hit
