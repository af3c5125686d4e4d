"""The fill algorithm of ``raft.long_context.haystack``: whole pieces, in a random order, to a token budget.

    pool = Pool(tokens, units)                    # per piece: tokens alone / followed by the separator
    pool.most(banned)                             # the longest text the pool allows, less ``banned``
    chosen = pool.fill(rng, budget, low, banned)  # indices; their joined text: low <= tokens <= budget

Pieces p1..pn joined have ``units[p1..pn-1] + tokens[pn]`` tokens (``raft.long_context.exact``). ``fill``
is a random greedy fill (a lazy shuffle: pieces until the first that does not fit), then best fit
for the gap (the longest piece that still fits, a random one among equals), then up to 8
one-for-one swaps (one piece for a longer one) while the text is under ``low``; the chosen pieces
are shuffled again so best-fit and swapped pieces are not left at the end, and the text ends on a
piece whose separator costs the most when ending on another would exceed the budget. ``Haystack.fill``
checks the budget and raises ``HaystackError``; ``fill`` here assumes ``low <= most(banned)``.
"""

from __future__ import annotations

import bisect
import random


class Pool:
    """A pool's token counts, sorted for the fill."""

    def __init__(self, tokens: list[int], units: list[int]):
        self.tokens, self.units = tokens, units
        self.s = [u - t for t, u in zip(tokens, units, strict=True)]  # each piece's separator, in context
        self._by_t = sorted(range(len(tokens)), key=tokens.__getitem__)
        self._t_sorted = [tokens[i] for i in self._by_t]
        self._by_u = sorted(range(len(units)), key=units.__getitem__)
        self._u_sorted = [units[i] for i in self._by_u]
        self._units_total = sum(units)
        self.min_s, self.max_s = min(self.s, default=0), max(self.s, default=0)

    def most(self, banned: set[int]) -> int:
        """The longest text the pool less ``banned`` allows (the separator saved after the last piece: at
        least the least one); 0 when nothing is left."""
        if len(self.tokens) == len(banned):
            return 0
        return self._units_total - sum(self.units[i] for i in banned) - self.min_s

    def fill(self, rng: random.Random, budget: int, low: float, banned: set[int]) -> list[int]:
        """Indices of pieces not in ``banned``, in a random order, whose joined text has at most ``budget``
        tokens and at least ``low`` when the pool allows it (the module docstring says how)."""
        n = len(self.tokens)
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
        total = units - self.s[chosen[-1]] if chosen else 0
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
        if chosen and units - self.s[chosen[-1]] > budget:  # a last piece whose separator cost less: end on a costlier one
            k = max(range(len(chosen)), key=lambda p: self.s[chosen[p]])
            chosen[k], chosen[-1] = chosen[-1], chosen[k]
        return chosen

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
