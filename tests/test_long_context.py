"""raft.long_context.fit and raft.long_context.prompt: a context fitted to its target, measured as the whole
prompt the model sees; one that never fits is None (the kinds reject the row), never kept off target."""

from __future__ import annotations

import random

import pytest

from raft.long_context.fit import NO_FIT, fit_context, no_fit_detail
from raft.long_context.haystack import Assembled, Haystack
from raft.long_context.prompt import PromptTokens

WORDS = "the of and a to in is was born died played for team city river county 1986 , . 's".split()


@pytest.fixture(scope="module")
def prompt(tiny_model):
    return PromptTokens(str(tiny_model))


def paragraphs(n: int) -> list[str]:
    rng = random.Random(0)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120))).capitalize() + "." for _ in range(n)]


def wrap(text: str) -> str:
    return f"Read the texts below.\n\n{text}\n\nWhich word comes first?"


@pytest.mark.parametrize("target", [600, 1500, 3000])
def test_a_context_fits_and_is_measured_as_the_whole_prompt(prompt, target):
    hay = Haystack(paragraphs(200), prompt.tok)
    rng = random.Random(target)
    fit = fit_context(prompt, target, 0.01, wrap, lambda budget: hay.build(rng, budget, golds=[(0, 0.5)], tolerance=0.005))
    assert fit is not None and fit.content == wrap(fit.built.text)
    rendered = prompt.render(fit.content)
    assert 0.99 * target <= fit.tokens == prompt.count(rendered) <= target  # the whole prompt, counted in full
    assert fit.offset == prompt.offset(rendered, fit.built.text)
    assert fit.offset + fit.built.placed[0].start == prompt.offset(rendered, hay.texts[0])


@pytest.mark.parametrize("tokens", [40, 5000])  # always too short / always too long for the target
def test_a_context_that_never_fits_is_none_after_every_try(prompt, tokens):
    text = " ".join(["word"] * tokens)
    built = Assembled(text, prompt.count(text), [], [])
    budgets = []

    def build(budget: int) -> Assembled:
        budgets.append(budget)
        return built

    assert fit_context(prompt, 1000, 0.01, wrap, build, reserve=10, tries=3) is None
    overhead, _ = prompt.measure(wrap("\x00"), "\x00", 0)
    assert len(budgets) == 3 and budgets[0] == 1000 - overhead - 10  # each try corrected by what the last missed
    assert NO_FIT == "no_fit" and no_fit_detail("segments", 0.01, 1000) == "no whole segments add up to within 1% of 1000 tokens"


def test_over_the_target_is_not_a_fit_even_on_the_last_try(prompt):
    """The old bio loop kept a context above its target when the last try overshot."""
    sizes = iter([100, 5000])
    texts = {n: " ".join(["word"] * n) for n in (100, 5000)}

    def build(budget: int) -> Assembled:
        text = texts[next(sizes)]
        return Assembled(text, prompt.count(text), [], [])

    assert fit_context(prompt, 1000, 0.01, wrap, build, tries=2) is None
