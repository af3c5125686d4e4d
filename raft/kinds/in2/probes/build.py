"""The probe sweep: probes x context lengths x position bins x samples, each a prompt of an exact length
in the evaluated model's tokens with its gold at a measured depth.

One probe (``_place``): the gold piece (a corpus segment holding the asked sentence, a record, a
function) goes into a haystack of its probe's pool (``raft.long_context.haystack``) aimed at a random depth in its
bin; the prompt (``templates.probe_prompt``) is rendered with the model's chat template when the
tokenizer has one (one user turn, generation prompt included: what lm-eval sends) and tokenized once.
It is kept when it has between ``target * (1 - tolerance)`` and ``target`` tokens, the gold's first
token (the asked sentence's, the record's, the function's) is in the bin (``start * bins // tokens``),
and, for a sentence, its quoted beginning occurs once in the context (whitespace and case aside);
else it is built again (a context over the target is rebuilt shorter by the excess).
"""

from __future__ import annotations

import bisect
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

from raft.config import ConfigError
from raft.kinds.in2.probes.pools import Pool, Target, code_pool, document_pool, structured_pool
from raft.kinds.in2.probes.prompter import PROBES, ProbeSettings, Prompter
from raft.kinds.in2.probes.templates import QUESTIONS, probe_prompt
from raft.long_context.haystack import Haystack, HaystackError

__all__ = ["PROBES", "ProbeSettings", "Prompter", "build_probes"]
TRIES = 24  # builds per probe before a bin is declared out of reach
PLACEHOLDER = "X"  # the context when the prompt's own tokens are counted


def _lengthen(hay: Haystack, filler: list[int], banned: set[int], least: int, most: int) -> list[int] | None:
    """``filler`` changed until its pieces' units grew by ``least`` to ``most`` tokens (the caller
    measures the text again), or None: swaps of one piece for a free one (not in the filler, not
    ``banned``) whose change comes nearest that window, and where no swap helps, one more piece (the
    shortest free one; swaps then shrink the excess). The fill's own few swaps (one piece for a longer
    one) do not close every gap of pieces of near-equal lengths (records, functions) near 1%."""
    units = hay.units
    taken = set(filler) | banned
    free = sorted((units[i], i) for i in range(len(hay.texts)) if i not in taken)
    filler, gained = list(filler), 0

    def off(change: int) -> int:  # how far a change leaves the units from the window still wanted
        return max(least - gained - change, change - (most - gained), 0)

    for _ in range(4 * len(filler) + 4):
        if off(0) == 0:
            return filler
        if not free:
            return None
        best = None  # (distance, position in filler, position in free)
        want = (least + most) / 2 - gained
        for pos, a in enumerate(filler):
            k = bisect.bisect_left(free, (units[a] + want, -1))
            for j in (k - 1, k):
                if 0 <= j < len(free) and (best is None or off(free[j][0] - units[a]) < best[0]):
                    best = (off(free[j][0] - units[a]), pos, j)
        if best is not None and best[0] < off(0):
            _, pos, j = best
            a, (change, b) = filler[pos], free.pop(j)
            bisect.insort(free, (units[a], a))
            filler[pos], gained = b, gained + change - units[a]
        elif gained < least:  # too short even with the longest swaps: one more piece, then shrink
            change, b = free.pop(0)
            filler.append(b)
            gained += change
        else:
            return None
    return None


def _place(prompter: Prompter, pool: Pool, target: Target, length: int, k: int, s: ProbeSettings,
           rng: random.Random) -> dict[str, Any]:
    """One probe of ``length`` tokens with its gold in bin ``k`` (see the module docstring)."""
    probe, hay = pool.probe, pool.hay
    empty = probe_prompt(probe, PLACEHOLDER, target.cue)
    at = empty.index(PLACEHOLDER)  # where the context starts in the user message
    rendered = prompter.render(empty)
    offset = rendered.find(empty)
    if offset < 0:
        raise ConfigError(f"in2_probe: the chat template of {prompter.name} changes the user message's text")
    prefix = prompter.count(rendered[: offset + at])
    budget = length - (prompter.count(rendered) - prompter.count(PLACEHOLDER))
    low = math.ceil(length * (1 - s.tolerance))
    inner = prompter.count(hay.texts[target.piece][: target.char]) if target.char else 0
    longer, depth = None, 0.0  # a lengthened filler to assemble instead of building anew
    for _ in range(TRIES):
        if longer is None:
            aim = (k + rng.random()) / s.bins * length  # the gold's first token, in the prompt
            depth = min(1.0, max(0.0, (aim - prefix - inner) / max(1, budget - hay.units[target.piece])))
            tolerance = min(0.5, max(0.0, 1 - (low - (length - budget)) / budget)) if budget > 0 else 0.0
            try:
                ctx = hay.build(rng, budget, [(target.piece, depth)], target.exclude, tolerance)
            except HaystackError as e:
                where = "the corpus (add documents)" if probe == "document" else "the generated pool"
                raise ConfigError(f"in2_probe {probe} probe at {length:,} tokens: {e}; {where} or lower the lengths") from None
        else:
            ctx, longer = hay.assemble(longer, [(target.piece, depth)]), None
        content = probe_prompt(probe, ctx.text, target.cue)
        rendered = prompter.render(content)
        gold = offset + at + ctx.placed[0].char_start + target.char
        tokens, start, end = prompter.span(rendered, (gold, gold + target.length))
        if tokens > length:
            budget -= tokens - length
            continue
        if tokens < low:
            longer = _lengthen(hay, ctx.pieces, target.exclude | {target.piece}, low - tokens, length - tokens)
            continue
        if start * s.bins // tokens != k or (target.check and not target.check(ctx.text)):
            continue
        return {
            "probe": probe, "target_tokens": length, "context_tokens": tokens, "bins": s.bins, "bin": k,
            "depth": start / tokens, "gold_start": start, "gold_end": end,
            "question": QUESTIONS[probe].format(cue=target.cue), "answer": target.answer, "cue": target.cue,
            "prompt": content,
        }  # fmt: skip
    mean = round(sum(hay.tokens) / len(hay.tokens))
    raise ConfigError(
        f"in2_probe {probe} probe: no prompt of {length:,} tokens with its gold in bin {k} of {s.bins} in {TRIES} "
        f"tries (contexts are whole pieces of ~{mean} tokens: use fewer bins or longer contexts)"
    )


def build_probes(tokenizer: str | Path, corpus: str | Path | None = None,
                 settings: ProbeSettings | None = None, exclude: str | Path | None = None) -> list[dict[str, Any]]:
    """The sweep's docs, sample-major (the first probes x lengths x bins docs are one of each cell, so
    lm-eval's ``limit`` takes a balanced subset). Deterministic for given settings, tokenizer, corpus and
    ``exclude`` (a training data folder whose text the document probe must not use: ``pools.document_pool``)."""
    s = settings or ProbeSettings()
    began = time.perf_counter()
    prompter = Prompter(tokenizer)
    pools = {}
    for probe in s.probes:
        if probe == "document":
            if not corpus:
                raise ConfigError(
                    "in2_probe: the document probe needs a corpus: set in2_probe_corpus (raft.evaluate data=) or "
                    "RAFT_IN2_PROBE_CORPUS to documents or a raft.generate output folder, or leave it out of probes"
                )
            pools[probe] = document_pool(prompter, corpus, s, exclude)
        else:
            pools[probe] = structured_pool(prompter, s) if probe == "structured" else code_pool(prompter, s)
    orders = {}
    for probe, pool in pools.items():
        for length in s.lengths:
            order = list(range(len(pool.targets)))
            random.Random(f"{s.seed}:{probe}:{length}:order").shuffle(order)
            orders[probe, length] = order
    docs = []
    for j in range(s.samples):
        for probe, pool in pools.items():
            for length in s.lengths:
                for k in range(s.bins):
                    order = orders[probe, length]
                    target = pool.targets[order[(j * s.bins + k) % len(order)]]
                    rng = random.Random(f"{s.seed}:{probe}:{length}:{k}:{j}")
                    doc = _place(prompter, pool, target, length, k, s, rng)
                    docs.append({"id": f"{probe}/{length}/{k}/{j}", **doc})
    print(f"in2_probe: {len(docs)} probes built in {time.perf_counter() - began:.1f} s "
          f"({', '.join(s.probes)}; lengths {', '.join(map(str, s.lengths))}; {s.bins} bins)", file=sys.stderr)
    return docs
