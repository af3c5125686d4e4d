"""Fitting a long context to its token budget: build a context, measure the whole prompt, correct, retry.

    fit = fit_context(prompt, target, tolerance, wrap=lambda text: user_turn(text), build=lambda budget:
                      haystack.build(rng, budget, golds=golds, tolerance=tolerance / 2))
    if fit is None:                                   # never fits: the row is a reject, never kept
        run.reject({..., "reason": NO_FIT, "reply": no_fit_detail("segments", tolerance, target)})
    fit.built, fit.content, fit.tokens, fit.offset    # the context, the user turn, the prompt's tokens, where
                                                      # the context starts in them

The whole prompt decides (the chat template applied, counted by ``raft.long_context.prompt.PromptTokens``),
not the context alone. ``wrap(text)`` is the user turn that holds a context; ``build(budget)`` makes a
context of about ``budget`` tokens (``Haystack.build``, or ``fill`` then ``assemble``). The first budget is
the target less the prompt's own tokens around the context and ``reserve`` (tokens the caller adds inside
the context, e.g. a needle); each try moves the budget by what the last one missed. A context fits when
the prompt has between ``(1 - tolerance) x target`` and ``target`` tokens. One that does not fit in
``tries`` tries (the pool's whole pieces cannot come that close) is None: the caller rejects the row as
``NO_FIT``, so no row is ever kept shorter or longer than its target allows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from raft.long_context.haystack import Assembled
from raft.long_context.prompt import PromptTokens

NO_FIT = "no_fit"  # the reject reason of a row whose context never fits its target
MARK = "\x00"  # stands for the context while the prompt's own tokens are counted


@dataclass
class Fit:
    built: Assembled  # the context
    content: str  # the user turn that holds it
    tokens: int  # the whole prompt's tokens (chat template applied)
    offset: int  # the token index where the context starts in the prompt


def fit_context(prompt: PromptTokens, target: int, tolerance: float, wrap: Callable[[str], str],
                build: Callable[[int], Assembled], reserve: int = 0, tries: int = 4) -> Fit | None:
    """The first context whose whole prompt has ``(1 - tolerance) x target`` to ``target`` tokens, or None."""
    overhead, _ = prompt.measure(wrap(MARK), MARK, 0)
    budget = target - overhead - reserve
    for _ in range(tries):  # the haystack is counted once per piece; the template around it is measured
        built = build(budget)
        content = wrap(built.text)
        tokens, offset = prompt.measure(content, built.text, built.tokens)
        if (1 - tolerance) * target <= tokens <= target:
            return Fit(built, content, tokens, offset)
        budget += target - tokens
    return None


def no_fit_detail(pieces: str, tolerance: float, target: int) -> str:
    """What a ``NO_FIT`` reject says: ``pieces`` names the pool's pieces (biographies, segments)."""
    return f"no whole {pieces} add up to within {tolerance:.0%} of {target} tokens"
