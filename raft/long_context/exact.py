"""Exact token positions for ``raft.long_context.haystack``: pieces counted once, the check that the tokenizer is
additive over the separator, and the fallback that tokenizes a context.

    counts = Counts(tokenizer, "\\n\\n")
    tokens, units = counts.pieces(texts)                        # per piece: alone / followed by sep
    problem, prefix_stable = counts.check(texts, tokens, units)  # '' when additive over sep
    total, spans = counts.spans(text, [(char_start, char_end)])  # one tokenization: exact token spans

A haystack's positions (``Placed.start`` / ``end``, ``Assembled.tokens``: see ``raft.long_context.haystack``) are
computed without tokenizing the context, from counts made once per piece, where the tokenizer is
*additive* over ``sep``:

- a piece's *unit* (``units``) is its tokens followed by ``sep`` in a text, counted once as
  ``tokens(piece + sep + "x") - tokens("x")``; ``tokens`` are its tokens alone. Pieces p1..pn joined
  have ``units[p1..pn-1] + tokens[pn]`` tokens and piece k starts at ``units[p1..pk-1]``. That holds
  when no pre-token crosses the point between a separator and the next piece: true of the byte-level
  regexes of GPT-2 (and the tiny test tokenizer), Llama 3 and Qwen 2 for pieces without edge
  whitespace and a separator of newlines (a BPE merge never crosses a pre-token; Llama 3's
  ".\\n\\n" stays inside the unit);
- it is not assumed: ``Haystack`` checks it on every piece of the pool (``check``: one shuffled
  arrangement of all pieces, tokenized with offsets in segments of 64: each piece's start and end
  token and each segment's length must be as predicted). Where any is not (a Metaspace/SentencePiece
  tokenizer, a normalizer or merges that cross pieces, pieces with edge whitespace), ``mode`` is
  ``"tokenize"`` (``note`` says why): each assembled context is tokenized once (``spans``), offsets
  give the golds' spans, and ``build`` corrects the few tokens its plan was off by.
  ``mode="tokenize"`` asks for that path; a slow tokenizer (no offsets, ``backend`` None) takes it,
  counting prefixes. A gold given as text with edge whitespace has its context tokenized the same way.
- ``prefix_stable`` (checked on a sample of 512 pieces): a text that ends with the separator has on
  its own the tokens it has before the next piece, so ``start == len(tokenize(text[:char_start]))``.
  True for the tiny tokenizer and Llama 3. GPT-2's own vocabulary has one "\\n\\n" token that its
  regex uses only where a text ends: the prefix alone is one token shorter there, and ``start`` is
  the in-context index, which is what a model sees.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from raft.sources.chunking import plain_tokenizer, token_counter, tokenizers_module

PROBE = "x"  # what follows a unit when it is counted: any non-whitespace text starts a new pre-token
CHECK_SEGMENT = 64  # pieces per segment of the check
PREFIX_SAMPLE = 512  # pieces whose text + sep is counted on its own (prefix_stable)


def join(texts: Sequence[str], sep: str) -> tuple[str, list[tuple[int, int]]]:
    """The texts joined by sep, and each one's character span."""
    chars, char, step = [], 0, len(sep)
    for t in texts:
        chars.append((char, char + len(t)))
        char += len(t) + step
    return sep.join(texts), chars


class Counts:
    """A tokenizer's counts for texts joined by ``sep``; see the module docstring."""

    def __init__(self, tokenizer: Any, sep: str):
        self.sep = sep
        self.count_one, self.count_many = token_counter(tokenizer)
        self.backend = fast_backend(tokenizer)  # a tokenizers.Tokenizer (offsets), or None for a slow tokenizer
        self._probe = self.count_one(PROBE)

    def pieces(self, texts: list[str]) -> tuple[list[int], list[int]]:
        """(tokens, units): each text's tokens alone, and followed by ``sep`` in a text."""
        if not texts:
            return [], []
        alone = self.count_many(texts)
        followed = self.count_many([t + self.sep + PROBE for t in texts])
        return alone, [f - self._probe for f in followed]

    def check(self, texts: list[str], tokens: list[int], units: list[int]) -> tuple[str, bool]:
        """(problem, prefix_stable): problem is '' when every piece's predicted start, end and each
        segment's length match the tokenizer (one shuffled arrangement of all ``texts``), else what did
        not; prefix_stable is only checked (on a sample) when there is no problem."""
        order = list(range(len(texts)))
        random.Random(0).shuffle(order)
        segments = [order[k:k + CHECK_SEGMENT] for k in range(0, len(order), CHECK_SEGMENT)]
        joined = [join([texts[i] for i in seg], self.sep) for seg in segments]
        encodings = self.backend.encode_batch([text for text, _ in joined], add_special_tokens=False)
        for seg, enc, (_, span) in zip(segments, encodings, joined, strict=True):
            offsets, start = enc.offsets, 0
            for k, (i, (cs, ce)) in enumerate(zip(seg, span, strict=True)):
                last = k == len(seg) - 1
                # the tokens that overlap its characters (fewer than alone where a merge with the separator saved one)
                end = start + (tokens[i] if last else min(tokens[i], units[i]))
                # its tokens: those from start that begin before its end (the last may also carry the separator)
                ok = (start < end <= len(offsets) and offsets[start][0] >= cs and offsets[start][1] > cs
                      and (start == 0 or offsets[start - 1][1] <= cs) and offsets[end - 1][0] < ce
                      and (end == len(offsets) or offsets[end][0] >= ce))
                if not ok:
                    return f"not additive over {self.sep!r}: piece {i} is not tokens {start}..{end} in context", False
                if not last:
                    start += units[i]
            if end != len(offsets):
                return (f"not additive over {self.sep!r}: a check segment has {len(offsets)} tokens, {end} predicted",
                        False)
        # a text that ends with a separator, on its own, has the tokens it has before the next piece
        sample = order[:PREFIX_SAMPLE]
        alone = self.count_many([texts[i] + self.sep for i in sample])
        return "", all(a == units[i] for a, i in zip(alone, sample, strict=True))

    def spans(self, text: str, chars: list[tuple[int, int]]) -> tuple[int, list[tuple[int, int]]]:
        """The text's exact length and, for each character span, its token span (one tokenization)."""
        if self.backend is None:
            counts = self.count_many([text] + [text[:c] for span in chars for c in span])
            return counts[0], [(counts[1 + 2 * k], counts[2 + 2 * k]) for k in range(len(chars))]
        offsets = self.backend.encode_batch([text], add_special_tokens=False)[0].offsets
        spans = []
        for cs, ce in chars:
            start = next((k for k, (_, e) in enumerate(offsets) if e > cs), len(offsets))
            end = next((k for k in range(start, len(offsets)) if offsets[k][0] >= ce), len(offsets))
            spans.append((start, end))
        return len(offsets), spans


def fast_backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind ``tokenizer`` (truncation and padding off), or None."""
    if isinstance(tokenizer, tokenizers_module().Tokenizer):
        return plain_tokenizer(tokenizer)
    if getattr(tokenizer, "is_fast", False) and getattr(tokenizer, "backend_tokenizer", None) is not None:
        return plain_tokenizer(tokenizer.backend_tokenizer)
    return None
