"""Cost of building long contexts with raft.long_context.haystack: 1,000 contexts of 16k tokens, one needle each.

    python benchmarks/haystack.py                      # the shared bio sets, or generated text without them
    python benchmarks/haystack.py --contexts 200 --length 32768 --verify 50

Pool: ``../shared/data/bio_haystack/train_needles_5000.jsonl`` + ``haystack_bios_131.jsonl`` (5,131
biographies), or, without ../shared, 5,131 generated paragraphs of random words; tokenizer: the tiny
model's (``raft.testing.build_tiny_model`` into a temporary folder; byte-level BPE of 1,024 tokens, so
a biography is ~170 tokens, ~1.8× what Llama 3 counts). Each context: ``Haystack.build`` with the
budget ``--length``, the needle a random pool piece (excluded from its own filler) at a random depth.

Figures: the pool's set-up (every piece tokenized: alone, followed by the separator, and the check of
all pieces in one arrangement) against one plain batch tokenization of the pool; the contexts
(seconds, contexts/s, context tokens/s); how close to the budget they are; then ``--verify`` of them
tokenized whole with offsets, once each (what finding the positions by tokenizing every context would
cost), checking that each length and needle start is what was recorded (and, for the first 100, that the
start is the token count of the text before the needle tokenized on its own).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from common import REPO, RESULTS, machine, write_result

RESULT = RESULTS / "haystack.json"
BIOS = REPO.parent / "shared" / "data" / "bio_haystack"
FILES = ("train_needles_5000.jsonl", "haystack_bios_131.jsonl")


def pool(n: int = 5131) -> tuple[list[str], str]:
    """The shared biographies, or ``n`` generated paragraphs of 30-250 words when they are missing."""
    if all((BIOS / f).is_file() for f in FILES):
        texts = [json.loads(line)["bio"] for f in FILES for line in (BIOS / f).read_text().splitlines()]
        return texts, " + ".join(f"../shared/data/bio_haystack/{f}" for f in FILES)
    rng = random.Random(0)
    words = ("the of and a to in is was he she born died played for team city party elected first season minister "
             "album river county university football married 1911 1986 , . 's --").split()
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(30, 250))).capitalize() + "." for _ in range(n)]
    return texts, f"{n} generated paragraphs (../shared/data/bio_haystack not found)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, default=1000)
    parser.add_argument("--length", type=int, default=16384, help="each context's budget in tokens")
    parser.add_argument("--verify", type=int, default=1000, help="contexts tokenized whole to check (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=str(RESULT), help="where the JSON goes ('' to write nothing)")
    args = parser.parse_args()

    from raft.long_context.haystack import Haystack
    from raft.sources.chunking import load_tokenizer
    from raft.testing import build_tiny_model

    texts, source = pool()
    with tempfile.TemporaryDirectory() as tmp:
        tok = load_tokenizer(build_tiny_model(Path(tmp) / "tiny"))
    t0 = time.perf_counter()
    plain = sum(len(e) for e in tok.encode_batch_fast(texts, add_special_tokens=False))
    plain_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    hay = Haystack(texts, tok)
    setup_s = time.perf_counter() - t0

    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    contexts = []
    for _ in range(args.contexts):
        needle = rng.randrange(len(texts))
        contexts.append((needle, hay.build(rng, args.length, [(needle, rng.random())])))
    build_s = time.perf_counter() - t0
    lengths = [c.tokens for _, c in contexts]
    tokens = sum(lengths)
    within = sum(args.length * 0.99 <= n <= args.length for n in lengths)
    own = sum(needle in c.pieces for needle, c in contexts)

    checked = wrong = 0
    t0 = time.perf_counter()
    for _, c in contexts[: args.verify]:  # what finding the positions by tokenizing each context would cost
        offsets = tok.encode_batch([c.text], add_special_tokens=False)[0].offsets
        p = c.placed[0]
        checked += 1
        wrong += len(offsets) != c.tokens or offsets[p.start][0] != p.char_start or (p.start > 0 and offsets[p.start - 1][1] > p.char_start)
    verify_s = time.perf_counter() - t0
    for _, c in contexts[: min(args.verify, 100)]:  # the needle's start: the text before it, tokenized on its own
        p = c.placed[0]
        wrong += len(tok.encode(c.text[: p.char_start], add_special_tokens=False).ids) != p.start

    result = {
        "command": "python benchmarks/haystack.py" + (f" --contexts {args.contexts}" if args.contexts != 1000 else "")
                   + (f" --length {args.length}" if args.length != 16384 else ""),
        "machine": machine(),
        "date": date.today().isoformat(),
        "pool": source,
        "pieces": len(texts),
        "pool_tokens": plain,
        "tokenizer": "tiny (byte-level BPE, 1,024 tokens)",
        "mode": hay.mode,
        "prefix_stable": hay.prefix_stable,
        "plain_tokenization_s": round(plain_s, 3),
        "setup_s": round(setup_s, 3),
        "contexts": args.contexts,
        "length": args.length,
        "contexts_s": round(build_s, 3),
        "total_s": round(setup_s + build_s, 3),
        "contexts_per_s": round(args.contexts / build_s, 1),
        "context_tokens_per_s": round(tokens / build_s),
        "tokens_min": min(lengths),
        "tokens_median": statistics.median(lengths),
        "tokens_max": max(lengths),
        "within_1_percent": within,
        "needle_in_own_haystack": own,
        "pieces_per_context_mean": round(statistics.mean(len(c.pieces) for _, c in contexts), 1),
        "verified_contexts": checked,
        "verify_tokenize_s": round(verify_s, 3),
        "verify_tokenize_ms_per_context": round(1000 * verify_s / checked, 2) if checked else None,
        "verify_mismatches": wrong,
    }
    print(f"pool: {len(texts):,} pieces, {plain:,} tokens ({source}); one plain batch tokenization {plain_s:.2f} s")
    print(f"Haystack set-up (mode {hay.mode}): {setup_s:.2f} s = {setup_s / plain_s:.1f}x the plain pass")
    print(f"{args.contexts:,} contexts of {args.length:,}: {build_s:.2f} s, {args.contexts / build_s:,.0f} contexts/s, "
          f"{tokens / build_s:,.0f} tokens/s; with set-up {setup_s + build_s:.2f} s")
    print(f"lengths {min(lengths):,}..{max(lengths):,} (median {statistics.median(lengths):,}); within 1% below the "
          f"budget: {within}/{args.contexts}; needle in its own haystack: {own}")
    if checked:
        print(f"tokenizing each context whole, once: {verify_s:.2f} s for {checked} ({1000 * verify_s / checked:.1f} ms each); "
              f"mismatches with the recorded lengths and needle starts: {wrong}")
    write_result(result, args.output)


if __name__ == "__main__":
    main()
