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
tokenizer's (``raft.chunking.load_tokenizer``: a ``tokenizers.Tokenizer``; a transformers tokenizer
works too), without special tokens.

Exactness. ``Placed.start`` is the index of the gold's first token in the tokenization of the whole
assembled text, ``end`` one past its last (the last token that begins inside it: Llama 3 writes
".\\n\\n" as one token, so a gold's last token may carry the separator), ``depth`` is start / tokens,
``Assembled.tokens`` the text's exact length. They are computed without tokenizing the context,
from counts made once per piece, where the tokenizer is *additive* over ``sep``:

- a piece's *unit* (``units``) is its tokens followed by ``sep`` in a text, counted once as
  ``tokens(piece + sep + "x") - tokens("x")``; ``tokens`` are its tokens alone. Pieces p1..pn joined
  have ``units[p1..pn-1] + tokens[pn]`` tokens and piece k starts at ``units[p1..pk-1]``. That holds
  when no pre-token crosses the point between a separator and the next piece: true of the byte-level
  regexes of GPT-2 (and the tiny test tokenizer), Llama 3 and Qwen 2 for pieces without edge
  whitespace and a separator of newlines (a BPE merge never crosses a pre-token; Llama 3's
  ".\\n\\n" stays inside the unit);
- it is not assumed: the constructor checks it on every piece of the pool (one shuffled arrangement
  of all pieces, tokenized with offsets in segments of 64: each piece's start and end token and each
  segment's length must be as predicted). Where any is not (a Metaspace/SentencePiece tokenizer, a
  normalizer or merges that cross pieces, pieces with edge whitespace), ``mode`` is ``"tokenize"``
  (``note`` says why): each assembled context is tokenized once, offsets give the golds' spans, and
  ``build`` corrects the few tokens its plan was off by. ``mode="tokenize"`` asks for that path; a
  slow tokenizer (no offsets) takes it, counting prefixes. A gold given as text with edge whitespace
  has its context tokenized the same way.
- ``prefix_stable`` (checked on a sample of 512 pieces): a text that ends with the separator has on
  its own the tokens it has before the next piece, so ``start == len(tokenize(text[:char_start]))``.
  True for the tiny tokenizer and Llama 3. GPT-2's own vocabulary has one "\\n\\n" token that its
  regex uses only where a text ends: the prefix alone is one token shorter there, and ``start`` is
  the in-context index, which is what a model sees.

Budgets. ``fill(rng, budget)``: pieces in a random order (none in ``exclude``) whose joined text has
at most ``budget`` tokens and, when the pool allows it, at least ``budget * (1 - tolerance)`` (a
random greedy fill, then best fit for the gap, then one-for-one swaps). ``build(rng, budget, golds)``:
the budget is the whole haystack's, golds included; no filler piece has a gold's text (a gold given by
index, or a duplicate of it in the pool); ``exclude`` adds more (a needle's namesakes). A caller that
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

from raft.chunking import _counter, _plain, _tokenizers

PROBE = "x"  # what follows a unit when it is counted: any non-whitespace text starts a new pre-token
CHECK_SEGMENT = 64  # pieces per segment of the constructor's check
PREFIX_SAMPLE = 512  # pieces whose text + sep is counted on its own (prefix_stable)
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
        self._count_one, self._count_many = _counter(tokenizer)
        self._backend = _backend(tokenizer)  # a tokenizers.Tokenizer (offsets), or None for a slow tokenizer
        self._probe = self._count_one(PROBE)
        self.tokens, self.units = self._measure(self.texts)  # per piece: alone / followed by sep in context
        self._s = [u - t for t, u in zip(self.tokens, self.units, strict=True)]
        self._by_t = sorted(range(len(self.texts)), key=self.tokens.__getitem__)
        self._t_sorted = [self.tokens[i] for i in self._by_t]
        self._by_u = sorted(range(len(self.texts)), key=self.units.__getitem__)
        self._u_sorted = [self.units[i] for i in self._by_u]
        self._units_total = sum(self.units)
        self._min_s, self._max_s = min(self._s, default=0), max(self._s, default=0)
        self._gold_cache: dict[str, tuple[int, int]] = {}
        self._index: dict[str, list[int]] = {}  # text -> the pieces with it (a pool may hold duplicates)
        for i, text in enumerate(self.texts):
            self._index.setdefault(text, []).append(i)
        self.prefix_stable = False
        if mode == "tokenize" or self._backend is None:
            self.mode = "tokenize"
            self.note = "asked" if mode == "tokenize" else "a slow tokenizer: each context is counted"
        else:
            problem = self._check()
            self.mode = "tokenize" if problem else "additive"
            self.note = problem or f"additive over {sep!r}: checked on all {len(self.texts):,} pieces"

    # ------------------------------------------------------------------ counting
    def _measure(self, texts: list[str]) -> tuple[list[int], list[int]]:
        if not texts:
            return [], []
        alone = self._count_many(texts)
        followed = self._count_many([t + self.sep + PROBE for t in texts])
        return alone, [f - self._probe for f in followed]

    def _own(self, piece: int, last: bool) -> int:
        """The tokens that overlap a pool piece's characters in a text (fewer than alone where a merge
        with the separator saved one)."""
        return self.tokens[piece] if last else min(self.tokens[piece], self.units[piece])

    def _gold_counts(self, gold: str | int) -> tuple[int, int]:
        if isinstance(gold, int):
            return self.tokens[gold], self.units[gold]
        if gold not in self._gold_cache:
            if len(self._gold_cache) > 100_000:
                self._gold_cache.clear()
            t, u = self._measure([gold])
            self._gold_cache[gold] = (t[0], u[0])
        return self._gold_cache[gold]

    def _check(self) -> str:
        """'' when every piece's predicted start, end and each segment's length match the tokenizer
        (one shuffled arrangement of the whole pool); else what did not."""
        order = list(range(len(self.texts)))
        random.Random(0).shuffle(order)
        segments = [order[k:k + CHECK_SEGMENT] for k in range(0, len(order), CHECK_SEGMENT)]
        texts, spans = [], []
        for seg in segments:
            text, span = self._join(seg)
            texts.append(text)
            spans.append(span)
        encodings = self._backend.encode_batch(texts, add_special_tokens=False)
        for seg, enc, span in zip(segments, encodings, spans, strict=True):
            offsets, start = enc.offsets, 0
            for k, (i, (cs, ce)) in enumerate(zip(seg, span, strict=True)):
                last = k == len(seg) - 1
                end = start + self._own(i, last)
                # its tokens: those from start that begin before its end (the last may also carry the separator)
                ok = (start < end <= len(offsets) and offsets[start][0] >= cs and offsets[start][1] > cs
                      and (start == 0 or offsets[start - 1][1] <= cs) and offsets[end - 1][0] < ce
                      and (end == len(offsets) or offsets[end][0] >= ce))
                if not ok:
                    return f"not additive over {self.sep!r}: piece {i} is not tokens {start}..{end} in context"
                if not last:
                    start += self.units[i]
            if end != len(offsets):
                return f"not additive over {self.sep!r}: a check segment has {len(offsets)} tokens, {end} predicted"
        # a text that ends with a separator, on its own, has the tokens it has before the next piece
        sample = order[:PREFIX_SAMPLE]
        alone = self._count_many([self.texts[i] + self.sep for i in sample])
        self.prefix_stable = all(a == self.units[i] for a, i in zip(alone, sample, strict=True))
        return ""

    # ------------------------------------------------------------------ filling
    def fill(self, rng: random.Random, budget: int, exclude: Collection[int] = (), tolerance: float = 0.01) -> list[int]:
        """Pool indices of whole pieces, in a random order and none in ``exclude``, whose text joined
        by ``sep`` has at most ``budget`` tokens and at least ``budget * (1 - tolerance)`` when the pool
        allows it (random greedy fill, best fit for the gap, then one-for-one swaps). HaystackError when
        the pool minus ``exclude`` has fewer tokens than that lower bound (all of it is given when it
        has between the bound and ``budget``)."""
        n = len(self.texts)
        banned = self._banned(exclude)
        if budget < 0 or not 0 <= tolerance < 1:
            raise HaystackError(f"budget={budget} and tolerance={tolerance}: need budget >= 0 and 0 <= tolerance < 1")
        low = budget * (1 - tolerance)
        available = n - len(banned)
        # the longest text the pool allows (the separator saved after the last piece: at least the least one)
        pool_max = self._units_total - sum(self.units[i] for i in banned) - self._min_s if available else 0
        if pool_max < low:
            left = f" ({len(banned):,} excluded)" if banned else ""
            raise HaystackError(f"the haystack has {pool_max:,} tokens in {available:,} pieces{left}; {budget:,} were asked")
        if budget == 0:
            return []
        order = list(range(n))  # a lazy Fisher-Yates shuffle: only the pieces drawn cost anything
        taken: set[int] = set()
        chosen: list[int] = []
        units = 0  # sum of the chosen pieces' units; the text has units - s[last] tokens
        for k in range(n):
            j = rng.randrange(k, n)
            order[k], order[j] = order[j], order[k]
            i = order[k]
            if i in banned:
                continue
            if units + self.tokens[i] > budget:
                break  # the first piece that does not fit: best fit from here
            chosen.append(i)
            taken.add(i)
            units += self.units[i]
        while True:  # best fit: the longest piece that still fits (a random one among equals)
            i = self._largest(self._by_t, self._t_sorted, budget - units, banned, taken, rng)
            if i is None:
                break
            chosen.append(i)
            taken.add(i)
            units += self.units[i]
        total = units - self._s[chosen[-1]] if chosen else 0
        for _ in range(8):  # swaps: replace one piece by a longer one that lands in [low, budget]
            if total >= low or not chosen:
                break
            best = None
            for pos, a in enumerate(chosen):
                last = pos == len(chosen) - 1
                cost = self.tokens[a] if last else self.units[a]
                keys, values = (self._by_t, self._t_sorted) if last else (self._by_u, self._u_sorted)
                b = self._largest(keys, values, cost + budget - total, banned, taken, rng)
                if b is not None:
                    gain = (self.tokens[b] if last else self.units[b]) - cost
                    if gain > 0 and (best is None or gain > best[0]):
                        best = (gain, pos, b)
            if best is None:
                break
            gain, pos, b = best
            taken.discard(chosen[pos])
            taken.add(b)
            chosen[pos] = b
            total += gain
        units = sum(self.units[i] for i in chosen)
        rng.shuffle(chosen)  # best-fit and swapped pieces are not left at the end
        if chosen and units - self._s[chosen[-1]] > budget:  # a last piece whose separator cost less: end on a costlier one
            k = max(range(len(chosen)), key=lambda p: self._s[chosen[p]])
            chosen[k], chosen[-1] = chosen[-1], chosen[k]
        return chosen

    def _banned(self, exclude: Collection[int], what: str = "exclude") -> set[int]:
        banned = set(exclude)
        for i in banned:
            if not isinstance(i, int) or not 0 <= i < len(self.texts):
                raise HaystackError(f"{what}: {i!r} is not a piece index (0..{len(self.texts) - 1})")
        return banned

    @staticmethod
    def _largest(keys: list[int], values: list[int], limit: int, banned: set[int], taken: set[int],
                 rng: random.Random) -> int | None:
        """A random free piece among those with the largest value <= limit."""
        hi = bisect.bisect_right(values, limit)
        while hi > 0:
            lo = bisect.bisect_left(values, values[hi - 1], 0, hi)
            run = keys[lo:hi]
            free = [i for i in run if i not in banned and i not in taken]
            if free:
                return free[rng.randrange(len(free))]
            hi = lo
        return None

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
        bounds.append(units - self._s[filler[-1]] if filler else 0)
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
        texts = [self.texts[x] if isinstance(x, int) else x for x in pieces]
        chars, char, step = [], 0, len(self.sep)
        for t in texts:
            chars.append((char, char + len(t)))
            char += len(t) + step
        return self.sep.join(texts), chars

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
            total, spans = self._tokenize_spans(text, [chars[k] for k, (_, g) in enumerate(items) if g >= 0])
            it = iter(spans)
            spans = [next(it) if g >= 0 else (0, 0) for _, g in items]
        for k, (_, g) in enumerate(items):
            if g >= 0:
                start, end = spans[k]
                placed[g] = Placed(start, end, start / total if total else 0.0, chars[k][0], chars[k][1], g)
        return Assembled(text, total, placed, filler)  # type: ignore[arg-type]

    def _tokenize_spans(self, text: str, chars: list[tuple[int, int]]) -> tuple[int, list[tuple[int, int]]]:
        """The text's exact length and, for each character span, its token span (one tokenization)."""
        if self._backend is None:
            counts = self._count_many([text] + [text[:c] for span in chars for c in span])
            return counts[0], [(counts[1 + 2 * k], counts[2 + 2 * k]) for k in range(len(chars))]
        offsets = self._backend.encode_batch([text], add_special_tokens=False)[0].offsets
        spans = []
        for cs, ce in chars:
            start = next((k for k, (_, e) in enumerate(offsets) if e > cs), len(offsets))
            end = next((k for k in range(start, len(offsets)) if offsets[k][0] >= ce), len(offsets))
            spans.append((start, end))
        return len(offsets), spans

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
        slack = max(0, self._max_s - min(seps)) if golds else 0
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


def _backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind ``tokenizer`` (truncation and padding off), or None."""
    if isinstance(tokenizer, _tokenizers().Tokenizer):
        return _plain(tokenizer)
    if getattr(tokenizer, "is_fast", False) and getattr(tokenizer, "backend_tokenizer", None) is not None:
        return _plain(tokenizer.backend_tokenizer)
    return None

