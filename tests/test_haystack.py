"""raft.long_context.haystack: whole pieces to an exact token budget, golds at depths, exact token positions.

The core tests run on generated text with the tiny model's tokenizer (no ../shared needed); the
``shared_data`` ones use the bio haystack files. Other tokenizer families (Llama 3's pre-tokenizer
regex, SentencePiece-style Metaspace) are small BPEs trained here in milliseconds.
"""

from __future__ import annotations

import json
import random

import pytest

from raft.long_context.haystack import Assembled, Haystack, HaystackError
from raft.sources.chunking import load_tokenizer

TARGETS = [4096, 8192, 16384, 32768]
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
WORDS = ("the of and a to in is was he she born died played for team city party elected first season "
         "minister album river county university football married (1911) 1986 , . 's -- novelist").split()


def count(tok, text: str) -> int:
    return len(tok.encode(text, add_special_tokens=False).ids)


def generated(tok, n: int, low: int = 50, high: int = 400, seed: int = 0) -> list[str]:
    """``n`` paragraphs of random words, each of low..high tokens in ``tok``."""
    rng = random.Random(seed)
    pieces = []
    while len(pieces) < n:
        words = [rng.choice(WORDS) for _ in range(rng.randint(low // 2, high))]
        text = " ".join(words).capitalize() + rng.choice([".", ".", "!", " 1986", ")", "'"])
        if low <= count(tok, text) <= high:
            pieces.append(text)
    return pieces


def bios(shared_data, name: str) -> list[str]:
    return [json.loads(line)["bio"] for line in (shared_data / "bio_haystack" / name).read_text().splitlines()]


@pytest.fixture(scope="module")
def tok(tiny_model):
    return load_tokenizer(tiny_model)


@pytest.fixture(scope="module")
def gen_hay(tok):
    return Haystack(generated(tok, 400), tok)


@pytest.fixture(scope="module")
def bio_hay(shared_data, tok):
    return Haystack(bios(shared_data, "train_needles_5000.jsonl") + bios(shared_data, "haystack_bios_131.jsonl"), tok)


def train_bpe(pre_tokenizer, decoder=None, joiner="\n\n"):
    """A small byte-level BPE whose merges include the separator (".\\n\\n" where the split allows it)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    rng = random.Random(0)
    paragraphs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30))) + rng.choice([".", "!", ")"])
                  for _ in range(400)]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoder or decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tokenizer.train_from_iterator([joiner.join(paragraphs[k:k + 20]) for k in range(0, 400, 20)], trainer=trainer)
    return tokenizer


def llama3_like():
    from tokenizers import Regex, pre_tokenizers

    return train_bpe(pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated"),
                                              pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]))


def metaspace_like():
    from tokenizers import decoders, pre_tokenizers

    return train_bpe(pre_tokenizers.Metaspace(), decoders.Metaspace())


def check_exact(tok, hay: Haystack, ctx: Assembled, golds) -> None:
    """Length, spans and the texts of an assembled context, against the tokenizer itself."""
    enc = tok.encode(ctx.text, add_special_tokens=False)
    assert len(enc.ids) == ctx.tokens
    texts = [hay.texts[i] for i in ctx.pieces]
    for p, (gold, _) in zip(ctx.placed, golds, strict=True):
        gold_text = hay.texts[gold] if isinstance(gold, int) else gold
        assert ctx.text[p.char_start:p.char_end] == gold_text
        assert p.start == count(tok, ctx.text[:p.char_start])  # the text before it, tokenized on its own
        assert enc.offsets[p.start][0] == p.char_start and (p.start == 0 or enc.offsets[p.start - 1][1] <= p.char_start)
        # its tokens in the whole text: those that begin inside it
        assert p.end == next((k for k, (s, _) in enumerate(enc.offsets) if s >= p.char_end), ctx.tokens)
        assert p.depth == p.start / ctx.tokens
    pieces = ctx.text.split(hay.sep)  # every piece whole, golds included, nothing else
    assert [x for x in pieces if x not in {(hay.texts[g] if isinstance(g, int) else g) for g, _ in golds}] == texts


# ------------------------------------------------------------------ exact positions and lengths
def test_positions_and_lengths_are_exact_on_random_contexts(tok, gen_hay):
    assert gen_hay.mode == "additive" and gen_hay.prefix_stable
    rng = random.Random(1)
    for k in range(40):
        golds = [(rng.randrange(len(gen_hay.texts)), rng.random()) for _ in range(rng.randint(1, 4))]
        golds = list({g: (g, d) for g, d in golds}.values())
        if k % 3 == 0:
            golds.append(("A gold text that is not in the pool, born 1911.", rng.choice([0.0, 0.5, 1.0])))
        if k % 3 == 1:  # edge whitespace: this context is tokenized to be exact
            golds.append((" A spaced gold. ", rng.choice([0.0, 0.5, 1.0])))
        ctx = gen_hay.build(rng, rng.choice([2000, 5000, 8000]), golds)
        check_exact(tok, gen_hay, ctx, golds)
        for p, (gold, _) in zip(ctx.placed, golds, strict=True):  # the tiny tokenizer's separator is two tokens of
            if gold != " A spaced gold. ":                           # its own: ends are prefixes too
                assert p.end == count(tok, ctx.text[:p.char_end])
        assert gen_hay.length(ctx.pieces) == count(tok, gen_hay.sep.join(gen_hay.texts[i] for i in ctx.pieces))


def test_positions_are_exact_for_a_llama3_style_tokenizer():
    """Llama 3's split joins punctuation with the newlines after it (".\\n\\n" is one token): still additive."""
    tok = llama3_like()
    assert ".ĊĊ" in tok.get_vocab()
    hay = Haystack(generated(tok, 300, 20, 120), tok)
    assert hay.mode == "additive" and hay.prefix_stable
    assert 0 in {hay.units[i] - hay.tokens[i] for i in range(300)}  # some separators cost no token of their own
    # " ,." then "\n\n": one token " ,.ĊĊ" where " ," and "." were two: the piece has a token less in context
    merged = [i for i in range(300) if hay.units[i] < hay.tokens[i]]
    assert merged
    rng = random.Random(2)
    for k in range(25):
        golds = [(i, rng.random()) for i in rng.sample(range(300), 3)]
        golds[0] = (merged[k % len(merged)], rng.random())
        golds = list({g: (g, d) for g, d in golds}.values())
        ctx = hay.build(rng, 3000, golds)
        check_exact(tok, hay, ctx, golds)
        assert 0.99 * 3000 <= ctx.tokens <= 3000


def test_a_non_additive_tokenizer_falls_back_to_tokenizing_each_context():
    tok = metaspace_like()
    hay = Haystack(generated(tok, 200, 20, 120), tok)
    assert hay.mode == "tokenize" and "not additive" in hay.note
    rng = random.Random(3)
    for _ in range(10):
        golds = [(rng.randrange(200), rng.random()), (" spaced gold text. ", rng.random())]
        ctx = hay.build(rng, 2000, golds)
        assert 0.99 * 2000 <= ctx.tokens <= 2000
        assert count(tok, ctx.text) == ctx.tokens
        for p in ctx.placed:  # the first token that overlaps the gold, one past the last
            enc = tok.encode(ctx.text, add_special_tokens=False)
            assert enc.offsets[p.start][1] > p.char_start and (p.start == 0 or enc.offsets[p.start - 1][1] <= p.char_start)
            assert p.end == len(enc.ids) or enc.offsets[p.end][0] >= p.char_end


def test_a_slow_tokenizer_counts_prefixes(tok):
    class Slow:  # a transformers slow tokenizer's call signature: no offsets, no backend
        def __call__(self, texts, add_special_tokens=False):
            ids = [e.ids for e in tok.encode_batch(texts if isinstance(texts, list) else [texts], add_special_tokens=False)]
            return {"input_ids": ids if isinstance(texts, list) else ids[0]}

    pieces = generated(tok, 60)
    hay = Haystack(pieces, Slow())
    assert hay.mode == "tokenize"
    golds = [(3, 0.3), ("Gold.", 1.0)]
    ctx = hay.build(random.Random(4), 3000, golds)
    check_exact(tok, hay, ctx, golds)


def test_a_separator_token_used_only_where_a_text_ends_is_not_prefix_stable():
    """GPT-2's regex splits "\\n\\n" before a letter into two pre-tokens but keeps it whole at the end of a
    text, where GPT-2's own vocabulary has one token for it: starts stay exact in context (what a model
    sees), but the text before a piece, counted alone, is one token shorter; prefix_stable says so."""
    from tokenizers import pre_tokenizers

    tok = train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False), joiner="\n\n ")  # learns "ĊĊ"
    assert "ĊĊ" in tok.get_vocab()
    hay = Haystack(generated(tok, 100, 20, 80), tok)
    assert hay.mode == "additive" and not hay.prefix_stable
    golds = [(0, 0.5)]
    ctx = hay.build(random.Random(11), 1000, golds)
    p = ctx.placed[0]
    assert count(tok, ctx.text) == ctx.tokens
    assert tok.encode(ctx.text, add_special_tokens=False).offsets[p.start][0] == p.char_start
    assert count(tok, ctx.text[:p.char_start]) == p.start - 1


# ------------------------------------------------------------------ budgets
@pytest.mark.parametrize("target", TARGETS)
def test_fill_is_within_one_percent_of_the_budget_generated(tok, target):
    hay = Haystack(generated(tok, max(120, target // 120), seed=target), tok)
    rng = random.Random(target)
    for _ in range(10):
        filler = hay.fill(rng, target)
        assert 0.99 * target <= hay.length(filler) <= target
        assert len(set(filler)) == len(filler)
    ctx = hay.build(rng, target, [(0, 0.5)])
    assert 0.99 * target <= count(tok, ctx.text) == ctx.tokens <= target


@pytest.mark.parametrize("target", TARGETS)
def test_fill_is_within_one_percent_of_the_budget_bios(shared_data, tok, target):
    hay = Haystack(bios(shared_data, "haystack_bios_131.jsonl"), tok)
    rng = random.Random(target)
    for k in range(10):
        filler = hay.fill(rng, target, exclude={k})
        assert 0.99 * target <= hay.length(filler) <= target and k not in filler
    ctx = hay.build(rng, target, [(5, rng.random())])
    assert 0.99 * target <= count(tok, ctx.text) == ctx.tokens <= target


def test_whole_prompt_within_one_percent_with_a_fixed_overhead(tok, gen_hay):
    """The caller's use: target minus its prompt's own tokens is the haystack's budget."""
    prefix, suffix = "Read these biographies.\n\n", "\n\nWho was born in 1911? Answer in JSON."
    overhead = count(tok, prefix + suffix)
    rng = random.Random(5)
    for target in (1024, 4096, 8192):
        ctx = gen_hay.build(rng, target - overhead, [("The needle was born in 1911.", rng.random())])
        prompt = prefix + ctx.text + suffix
        assert 0.99 * target <= count(tok, prompt) <= target
        p = ctx.placed[0]  # the gold's position in the whole prompt: the prefix's tokens + start
        assert count(tok, prompt[: len(prefix) + p.char_start]) == count(tok, prefix) + p.start


def test_too_small_a_pool_is_a_one_line_error(tok):
    hay = Haystack(generated(tok, 10), tok)
    available = hay.length(range(10))
    with pytest.raises(HaystackError, match=rf"^the haystack has {available:,} tokens in 10 pieces; 64,000 were asked$"):
        hay.fill(random.Random(0), 64_000)
    with pytest.raises(HaystackError, match=r"in 9 pieces \(1 excluded\); .* \(the budget 64,000 less \d+ for the golds\)$"):
        hay.build(random.Random(0), 64_000, [(3, 0.5)])
    assert sorted(hay.fill(random.Random(0), available)) == list(range(10))  # exactly all of it: fine
    with pytest.raises(HaystackError, match="not a piece index"):
        hay.fill(random.Random(0), 100, exclude={10})
    with pytest.raises(HaystackError, match="depth"):
        hay.assemble([0, 1], [("gold", 1.5)])
    with pytest.raises(HaystackError, match="piece 1 is empty"):
        Haystack(["a", ""], tok)


# ------------------------------------------------------------------ pieces, exclusion, determinism, depths
def test_pieces_are_never_cut_and_a_needle_is_never_in_its_own_haystack(tok, gen_hay):
    rng = random.Random(6)
    n = len(gen_hay.texts)
    for needle in range(0, n, 7):
        ctx = gen_hay.build(rng, 3000, [(needle, rng.random())], exclude={(needle + 1) % n})
        assert needle not in ctx.pieces and (needle + 1) % n not in ctx.pieces
        assert ctx.text.count(gen_hay.texts[needle]) == 1
        assert sorted(ctx.text.split("\n\n")) == sorted([gen_hay.texts[i] for i in ctx.pieces] + [gen_hay.texts[needle]])
        assert all(i != needle for i in gen_hay.fill(rng, 3000, exclude={needle}))


def test_build_never_puts_a_copy_of_a_gold_in_the_filler(tok):
    pieces = generated(tok, 30)
    pieces += pieces[:5]  # duplicates: pieces 30..34 are 0..4 again
    hay = Haystack(pieces, tok)
    rng = random.Random(12)
    for k in range(20):
        index, text = k % 2, 2 + k % 3  # a gold by index, a gold by text: both have a copy in the pool
        ctx = hay.build(rng, 2000, [(index, rng.random()), (pieces[text], rng.random())])
        assert {index, index + 30, text, text + 30}.isdisjoint(ctx.pieces)
        assert ctx.text.count(pieces[index]) == 1 and ctx.text.count(pieces[text]) == 1


def test_the_same_seed_gives_the_same_context(gen_hay):
    golds = [(1, 0.3), ("gold", 0.7)]
    a = gen_hay.build(random.Random(42), 4000, golds)
    b = gen_hay.build(random.Random(42), 4000, golds)
    c = gen_hay.build(random.Random(43), 4000, golds)
    assert a == b and a.text != c.text
    assert gen_hay.fill(random.Random(7), 4000) == gen_hay.fill(random.Random(7), 4000)


def test_depths_0_half_and_1(tok, gen_hay):
    rng = random.Random(8)
    filler = gen_hay.fill(rng, 4000, exclude={0, 1, 2})
    ctx = gen_hay.assemble(filler, [(0, 0.0), (1, 0.5), (2, 1.0)])
    first, middle, last = ctx.placed
    assert first.start == 0 and ctx.text.startswith(gen_hay.texts[0])
    assert last.char_end == len(ctx.text) and last.end == ctx.tokens
    # the middle gold sits at the filler boundary nearest half the filler's tokens (counted by the tokenizer)
    bounds = [count(tok, "\n\n".join(gen_hay.texts[i] for i in filler[:k]) + "\n\n") if k else 0 for k in range(len(filler))]
    half = count(tok, "\n\n".join(gen_hay.texts[i] for i in filler)) / 2
    nearest = min(bounds, key=lambda b: abs(b - half))
    assert middle.start - first.end - (gen_hay.units[0] - gen_hay.tokens[0]) == nearest
    assert abs(middle.depth - 0.5) < 0.05 and first.depth == 0.0 and last.depth > 0.95


def test_golds_that_tie_keep_their_order_and_placed_follows_the_given_order(gen_hay):
    filler = gen_hay.fill(random.Random(9), 2000, exclude={0, 1, 2})
    ctx = gen_hay.assemble(filler, [(2, 0.9), (0, 0.4), (1, 0.4)])
    assert [p.gold for p in ctx.placed] == [0, 1, 2]
    late, a, b = ctx.placed
    assert a.end < b.start < late.start and b.char_start == a.char_end + 2  # the tie: given order, adjacent
    empty = gen_hay.assemble([], [("x", 0.9), ("y", 0.1)])
    assert empty.text == "y\n\nx" and empty.placed[1].start == 0


# ------------------------------------------------------------------ the shared bio haystack
def test_bio_contexts_exact_on_the_shared_haystack(tok, bio_hay):
    assert bio_hay.mode == "additive" and bio_hay.prefix_stable
    rng = random.Random(10)
    n = len(bio_hay.texts)
    for target in (4096, 16384):
        for _ in range(8):
            needle = rng.randrange(n)
            golds = [(needle, rng.random())]
            ctx = bio_hay.build(rng, target, golds)
            check_exact(tok, bio_hay, ctx, golds)
            assert needle not in ctx.pieces and 0.99 * target <= ctx.tokens <= target
