"""The probes' pools: what each probe's contexts are made of and the targets it asks about.

- document: the corpus cut into segments (``pieces.corpus_segments``), every candidate sentence a
  target, with the segments holding its quoted beginning kept out of its contexts;
- structured / code: generated records and functions (``pieces.kv_records``, ``pieces.functions``),
  ``POOL_MIN`` or more, drawn from ``CANDIDATES`` times as many to spread evenly over their token
  lengths (``_spread``), every one a target.
"""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.config import ConfigError
from raft.kinds.in2.probes import pieces
from raft.kinds.in2.probes.prompter import ProbeSettings, Prompter
from raft.long_context.haystack import Haystack

CORPUS_CHARS_PER_TOKEN = 16  # corpus read: 16 characters per token of the longest context (~4x its text)
POOL_FACTOR = 1.5  # generated records / functions: 1.5x the longest context's tokens,
POOL_MIN = 2000  # and at least this many: their lengths differ by a few tokens only, and the fill needs
#                  that choice to come within 1% of a budget (a swap gains one piece's difference)
CANDIDATES = 4  # generated per pool piece, to spread the pool over the lengths (_spread)


@dataclass
class Target:
    """What one probe asks about: a pool piece, the gold span inside it, the cue and the answer."""

    piece: int
    char: int  # the gold's first character in the piece
    length: int  # its characters
    cue: str
    answer: str
    exclude: set[int] = field(default_factory=set)  # pool pieces that must not be filler
    check: Callable[[str], bool] | None = None  # a condition on the context


@dataclass
class Pool:
    probe: str
    hay: Haystack
    targets: list[Target]


def _once(cue: str) -> Callable[[str], bool]:
    cue = cue.lower()
    return lambda context: " ".join(context.split()).lower().count(cue) == 1


def document_pool(prompter: Prompter, corpus: str | Path, s: ProbeSettings, exclude: str | Path | None = None) -> Pool:
    """``exclude``: a training data folder; corpus segments that share a run of ``pieces.OVERLAP_WORDS``
    words with its rows are dropped (neither asked about nor filler), and how many is printed; every
    segment overlapping is a one-line error."""
    texts = pieces.corpus_segments(corpus, prompter.tok, s.segment_tokens, CORPUS_CHARS_PER_TOKEN * max(s.lengths), s.seed)
    if not texts:
        raise ConfigError(f"in2_probe: the corpus {corpus} has no segment of {pieces.MIN_SEGMENT_TOKENS}+ tokens")
    if exclude:
        seen = pieces.training_overlap(texts, pieces.training_texts(exclude))
        if len(seen) == len(texts):
            raise ConfigError(f"in2_probe: all {len(texts)} segments of the corpus {corpus} occur in the training data {exclude} "
                              "(the model trained on them: the probe would measure memory, not position); probe with documents "
                              "it was not trained on")
        print(f"in2_probe: {len(seen)} of {len(texts)} corpus segments share a {pieces.OVERLAP_WORDS}-word run with the training "
              f"data {exclude} and were dropped ({len(texts) - len(seen)} left)", file=sys.stderr)
        texts = [t for i, t in enumerate(texts) if i not in seen]
    found = pieces.sentences(texts, s.quote_words)
    if not found:
        raise ConfigError(f"in2_probe: the corpus {corpus} has no sentence of prose to ask about")
    squashed = [" ".join(t.split()).lower() for t in texts]
    targets = []
    for sentence in found:
        cue = sentence.cue.lower()
        exclude = {i for i, t in enumerate(squashed) if cue in t and i != sentence.piece}
        targets.append(Target(sentence.piece, sentence.char, len(sentence.text), sentence.cue, sentence.answer,
                              exclude, _once(sentence.cue)))
    return Pool("document", Haystack(texts, prompter.tok), targets)


def _spread(prompter: Prompter, made: list, text: Callable[[Any], str], n: int, rng: random.Random) -> list:
    """``n`` of ``made`` spread evenly over their token lengths (round-robin over the lengths, a random
    one of each): records and functions differ by a few tokens only, and the fill's swaps (one piece
    for a longer one) need long and short ones to come within 1% of a budget."""
    by_length: dict[int, list[Any]] = {}
    for item, count in zip(made, prompter.count_many([text(m) for m in made]), strict=True):
        by_length.setdefault(count, []).append(item)
    for items in by_length.values():
        rng.shuffle(items)
    out: list[Any] = []
    while len(out) < n:
        for count in sorted(by_length):
            if by_length[count] and len(out) < n:
                out.append(by_length[count].pop())
    return out


def _pool_size(prompter: Prompter, sample: str, s: ProbeSettings) -> int:
    return max(POOL_MIN, math.ceil(POOL_FACTOR * max(s.lengths) / max(1, prompter.count(sample))))


def structured_pool(prompter: Prompter, s: ProbeSettings) -> Pool:
    rng = random.Random(f"{s.seed}:structured:pool")
    n = _pool_size(prompter, pieces.kv_records(random.Random(0), 1)[0], s)
    lines = _spread(prompter, pieces.kv_records(rng, CANDIDATES * n), str, n, rng)
    targets = []
    for i, line in enumerate(lines):
        key, value = line.split('"')[3], line.split('"')[7]
        targets.append(Target(i, 0, len(line), key, value))
    return Pool("structured", Haystack(lines, prompter.tok, sep="\n"), targets)


def code_pool(prompter: Prompter, s: ProbeSettings) -> Pool:
    rng = random.Random(f"{s.seed}:code:pool")
    n = _pool_size(prompter, pieces.functions(random.Random(0), 1)[0][1], s)
    made = _spread(prompter, pieces.functions(rng, CANDIDATES * n), lambda f: f[1], n, rng)
    targets = [Target(i, 0, len(source), name, expr) for i, (name, source, expr) in enumerate(made)]
    return Pool("code", Haystack([source for _, source, _ in made], prompter.tok), targets)
