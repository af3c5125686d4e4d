"""Long contexts from whole pieces, to an exact token budget, with gold pieces at chosen depths.

    hay = Haystack([p["bio"] for p in fillers], tokenizer)          # every piece tokenized once
    ctx = hay.build(rng, budget, golds=[(needle, 0.25)], exclude=namesakes)
    ctx.text, ctx.tokens, ctx.pieces                                 # the haystack, its exact length, its filler
    ctx.placed[0].start, .end, .depth, .char_start, .char_end        # the needle's span, measured

    filler = hay.fill(rng, budget, exclude={own_index})              # or in two steps: whole pieces only,
    ctx = hay.assemble(filler, [(needle, 0.25), (other, 0.8)])       # then golds at piece boundaries
    gap = budget - hay.length(filler)                                # exact length of any arrangement

The one place where long contexts are assembled (the bio needle now, IN2's gold segments next).
A context is whole pieces (biographies, text segments: never cut) joined by ``sep``. A gold is
``(text or pool index, depth)``: it goes to the piece boundary whose token offset is nearest
``depth`` x the filler's tokens (0: before everything, 1: after everything); golds at one boundary
are in depth order, ties in the order given; ``placed[k]`` is ``golds[k]``'s. Tokens are the student
tokenizer's (``raft.sources.chunking.load_tokenizer``: a ``tokenizers.Tokenizer``; a transformers tokenizer
works too), without special tokens.

Exactness. ``Placed.start`` is the index of the gold's first token in the tokenization of the whole
assembled text, ``end`` one past its last (the last token that begins inside it; it may carry the
separator), ``depth`` is start / tokens, ``Assembled.tokens`` the text's exact length. Where the
tokenizer is additive over ``sep`` (``mode == "additive"``: checked on the whole pool at
construction) they come from counts made once per piece, without tokenizing the context; elsewhere
(``mode == "tokenize"``, ``note`` says why; ``mode="tokenize"`` asks for it) each context is tokenized
once. ``prefix_stable``: ``start == len(tokenize(text[:char_start]))`` too. How and why:
``raft.long_context.exact``.

Budgets. ``fill(rng, budget)``: pieces in a random order (none in ``exclude``) whose joined text has
at most ``budget`` tokens and, when the pool allows it, at least ``budget * (1 - tolerance)`` (a
random greedy fill, then best fit for the gap, then one-for-one swaps: ``raft.long_context.fill``).
``build(rng, budget, golds)``: the budget is the whole haystack's, golds included; no filler piece
has a gold's text (a gold given by index, or a duplicate of it in the pool); ``exclude`` adds more (a needle's namesakes). A caller that
wraps the haystack in a fixed prompt passes the target minus the prompt's own tokens. A pool (less
``exclude``) with fewer tokens than the lower bound is a one-line ``HaystackError`` naming the tokens
available and asked; with between the bound and ``budget`` it is used whole.

Cost (``benchmarks/haystack.py``, tiny tokenizer, 5,131 biographies): the pool is tokenized three
times at construction (alone, with the separator, the check: 2.5 s); a context of 16k tokens then
costs its Python bookkeeping, 0.33 ms, where tokenizing it once would cost 29 ms.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from raft.long_context.exact import Counts, join
from raft.long_context.fill import Pool

Gold = tuple["str | int", float]


class HaystackError(ValueError):
    """A haystack cannot be built as asked; the message is one line."""


@dataclass(frozen=True)
class Placed:
    """Where a gold piece landed in an assembled text."""

    start: int  # index of its first token in the whole text's tokenization
    end: int  # one past its last token: the last that begins inside it (it may also carry the separator)
    depth: float  # start / the text's tokens
    char_start: int  # its characters: text[char_start:char_end] is the gold's text
    char_end: int
    gold: int  # its index in the golds given to assemble/build


@dataclass
class Assembled:
    """A context: whole pieces joined by the separator, golds inserted; positions in tokens."""

    text: str
    tokens: int  # the text's exact length in tokens
    placed: list[Placed]  # one per gold, in the order the golds were given
    pieces: list[int]  # the filler's pool indices, in text order (golds not included)


class Haystack:
    """A pool of whole pieces, each tokenized once; see the module docstring."""

    def __init__(self, texts: Sequence[str], tokenizer: Any, sep: str = "\n\n",
                 mode: Literal["auto", "tokenize"] = "auto"):
        self.texts = list(texts)
        self.sep = sep
        for i, text in enumerate(self.texts):
            if not isinstance(text, str) or not text:
                raise HaystackError(f"piece {i} is {'empty' if text == '' else type(text).__name__}: pieces must be non-empty texts")
        if mode not in ("auto", "tokenize"):
            raise HaystackError(f"mode={mode!r}: expected 'auto' or 'tokenize'")
        self._counts = Counts(tokenizer, sep)
        self.tokens, self.units = self._counts.pieces(self.texts)  # per piece: alone / followed by sep in context
        self._pool = Pool(self.tokens, self.units)
        self._gold_cache: dict[str, tuple[int, int]] = {}
        self._index: dict[str, list[int]] = {}  # text -> the pieces with it (a pool may hold duplicates)
        for i, text in enumerate(self.texts):
            self._index.setdefault(text, []).append(i)
        self.prefix_stable = False
        if mode == "tokenize" or self._counts.backend is None:
            self.mode = "tokenize"
            self.note = "asked" if mode == "tokenize" else "a slow tokenizer: each context is counted"
        else:
            problem, self.prefix_stable = self._counts.check(self.texts, self.tokens, self.units)
            self.mode = "tokenize" if problem else "additive"
            self.note = problem or f"additive over {sep!r}: checked on all {len(self.texts):,} pieces"

    def _gold_counts(self, gold: str | int) -> tuple[int, int]:
        """A gold's (tokens, units): a pool piece's, or a text's, counted once."""
        if isinstance(gold, int):
            return self.tokens[gold], self.units[gold]
        if gold not in self._gold_cache:
            if len(self._gold_cache) > 100_000:
                self._gold_cache.clear()
            t, u = self._counts.pieces([gold])
            self._gold_cache[gold] = (t[0], u[0])
        return self._gold_cache[gold]

    # ------------------------------------------------------------------ filling
    def fill(self, rng: random.Random, budget: int, exclude: Collection[int] = (), tolerance: float = 0.01) -> list[int]:
        """Pool indices of whole pieces, in a random order and none in ``exclude``, whose text joined
        by ``sep`` has at most ``budget`` tokens and at least ``budget * (1 - tolerance)`` when the pool
        allows it (random greedy fill, best fit for the gap, then one-for-one swaps). HaystackError when
        the pool minus ``exclude`` has fewer tokens than that lower bound (all of it is given when it
        has between the bound and ``budget``)."""
        banned = self._banned(exclude)
        if budget < 0 or not 0 <= tolerance < 1:
            raise HaystackError(f"budget={budget} and tolerance={tolerance}: need budget >= 0 and 0 <= tolerance < 1")
        low = budget * (1 - tolerance)
        pool_max = self._pool.most(banned)
        if pool_max < low:
            available = len(self.texts) - len(banned)
            left = f" ({len(banned):,} excluded)" if banned else ""
            raise HaystackError(f"the haystack has {pool_max:,} tokens in {available:,} pieces{left}; {budget:,} were asked")
        return self._pool.fill(rng, budget, low, banned)

    def _banned(self, exclude: Collection[int], what: str = "exclude") -> set[int]:
        banned = set(exclude)
        for i in banned:
            if not isinstance(i, int) or not 0 <= i < len(self.texts):
                raise HaystackError(f"{what}: {i!r} is not a piece index (0..{len(self.texts) - 1})")
        return banned

    # ------------------------------------------------------------------ assembling
    def assemble(self, filler: Sequence[int], golds: Sequence[Gold] = ()) -> Assembled:
        """``filler`` (pool indices, in order) joined by ``sep``, each gold (text or pool index, depth)
        inserted at the boundary whose token offset is nearest depth x the filler's tokens."""
        filler = list(filler)
        self._banned(filler, "filler")
        golds = self._golds(golds)
        # token offsets of the filler's boundaries: before each piece, then its end
        bounds, units = [], 0
        for i in filler:
            bounds.append(units)
            units += self.units[i]
        bounds.append(units - self._pool.s[filler[-1]] if filler else 0)
        at: list[list[int]] = [[] for _ in bounds]
        for g in sorted(range(len(golds)), key=lambda g: golds[g][1]):  # stable: ties keep the given order
            at[_nearest(bounds, golds[g][1] * bounds[-1])].append(g)
        items: list[tuple[str | int, int]] = []  # (pool index or gold text, gold number or -1)
        for k, i in enumerate(filler):
            items += [(golds[g][0], g) for g in at[k]]
            items.append((i, -1))
        items += [(golds[g][0], g) for g in at[-1]]
        return self._place(items, filler, len(golds))

    def _golds(self, golds: Sequence[Gold]) -> list[Gold]:
        golds = list(golds)
        for g, d in golds:
            if not (isinstance(g, str) and g) and not (isinstance(g, int) and 0 <= g < len(self.texts)):
                raise HaystackError(f"gold {g!r}: expected a non-empty text or a piece index")
            if not (isinstance(d, int | float) and 0 <= d <= 1):
                raise HaystackError(f"gold depth {d!r}: expected a number in [0, 1]")
        return golds

    def _join(self, pieces: Sequence[str | int]) -> tuple[str, list[tuple[int, int]]]:
        """The pieces (pool indices or texts) joined by sep, and each one's character span."""
        return join([self.texts[x] if isinstance(x, int) else x for x in pieces], self.sep)

    def _place(self, items: list[tuple[str | int, int]], filler: list[int], n_golds: int) -> Assembled:
        text, chars = self._join([x for x, _ in items])
        placed: list[Placed | None] = [None] * n_golds
        exact = self.mode == "additive" and all(isinstance(x, int) or x == x.strip() for x, _ in items)
        if exact:  # piece k starts after the units before it; the last piece has no separator after it
            units, total, spans = 0, 0, []
            for k, (x, _) in enumerate(items):
                t, u = self._gold_counts(x)
                last = k == len(items) - 1
                spans.append((units, units + (t if last else min(t, u))))
                total = units + t if last else total
                units += u
        else:
            total, spans = self._counts.spans(text, [chars[k] for k, (_, g) in enumerate(items) if g >= 0])
            it = iter(spans)
            spans = [next(it) if g >= 0 else (0, 0) for _, g in items]
        for k, (_, g) in enumerate(items):
            if g >= 0:
                start, end = spans[k]
                placed[g] = Placed(start, end, start / total if total else 0.0, chars[k][0], chars[k][1], g)
        return Assembled(text, total, placed, filler)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ both at once
    def build(self, rng: random.Random, budget: int, golds: Sequence[Gold] = (), exclude: Collection[int] = (),
              tolerance: float = 0.01) -> Assembled:
        """A context of at most ``budget`` tokens, golds included, at least ``budget * (1 - tolerance)``
        when the pool allows it. No filler piece has a gold's text (a gold given by index, or a pool piece
        equal to a gold: pools may hold duplicates); ``exclude`` bans more (e.g. the needle's namesakes)."""
        golds = self._golds(golds)
        banned = self._banned(exclude)
        for g, _ in golds:
            banned.update(self._index.get(self.texts[g] if isinstance(g, int) else g, ()))  # and its duplicates
        counts = [self._gold_counts(g) for g, _ in golds]
        seps = [u - t for t, u in counts]
        # a gold that ends the text saves its separator instead of the filler's last one: reserve the difference
        slack = max(0, self._pool.max_s - min(seps)) if golds else 0
        gold_units = sum(u for _, u in counts)
        asked = budget - gold_units - slack
        if asked < 0:
            raise HaystackError(f"the golds alone take {sum(t for t, _ in counts):,} tokens; the budget is {budget:,}")
        # the filler's lower bound: the context's, less the golds (which may save a separator at the end)
        filler_low = min(asked, max(0.0, budget * (1 - tolerance) - gold_units + max(seps, default=0)))
        filler_tolerance = 1 - filler_low / asked if asked else 0.0
        for _ in range(6):
            try:
                filler = self.fill(rng, asked, banned, filler_tolerance)
            except HaystackError as e:
                raise HaystackError(f"{e} (the budget {budget:,} less {budget - asked:,} for the golds)") from None
            ctx = self.assemble(filler, golds)
            if ctx.tokens <= budget:
                return ctx
            asked -= ctx.tokens - budget  # only where counts are estimates (mode "tokenize")
        raise HaystackError(f"no context of at most {budget:,} tokens found in 6 tries (last: {ctx.tokens:,})")

    def length(self, pieces: Sequence[str | int]) -> int:
        """Exact tokens of ``pieces`` (pool indices or texts) joined by ``sep`` in that order."""
        if not pieces:
            return 0
        return self._place([(p, -1) for p in pieces], [], 0).tokens


def _nearest(bounds: list[int], target: float) -> int:
    """Index of the value in sorted ``bounds`` nearest ``target`` (the lower one on a tie)."""
    k = bisect.bisect_left(bounds, target)
    if k == 0:
        return 0
    if k == len(bounds):
        return k - 1
    return k - 1 if target - bounds[k - 1] <= bounds[k] - target else k
