"""RAFT sample assembly and the quality gate (pure functions; raft.generate drives them).

- ``parse_questions``: one question per line of the teacher's reply, list numbering ("1. ", "2) ",
  "- ", "Q1:") stripped, empty and duplicate questions dropped.
- ``make_rng``: the random generator of one (chunk, question): seeded from the run's seed, the
  chunk id and the question's number, so choices never depend on the order in which teacher calls
  finish (a resumed run makes the same rows as an uninterrupted one).
- ``HardDistractors``: BM25 (bm25s) over the chunk texts; for each chunk, the most similar other
  chunks (never the chunk itself, never a chunk with the same text, never a chunk that overlaps its
  text: a shared run of ``OVERLAP_WORDS`` words, or a neighbour in the same document when chunks
  overlap). A hard distractor must not hold the answer either (``contains_answer``): raft.kinds.raft.kind
  checks that once the teacher has answered and redraws (``build_sample(..., exclude=...)``).
- ``build_sample``: ``distractors`` other chunks (random or hard); with probability ``p`` the oracle
  is among the documents, otherwise it is replaced by one more distractor (the target answer stays
  the same and ``oracle_index`` is None); documents shuffled. The teacher always answers with the
  oracle in view: the oracle and the same distractors (``answer_context=oracle_and_distractors``,
  the brief's default) or the oracle alone (``answer_context=oracle``, the reference code).
- ``check_answer``: the final answer is the text after the last ``<ANSWER>:``; quotes are the spans
  between ``##begin_quote##`` and ``##end_quote##``. Reasons to reject: ``empty``, ``no_answer_tag``,
  ``unbalanced_quote``, ``quote_not_in_oracle`` (each quote must occur in the oracle after
  whitespace normalisation) and, with ``require_quote=True``, ``no_quote`` (the answer quotes
  nothing: no non-empty quote span at all).
- ``normalize_question`` / ``load_eval_questions``: questions compared after HotpotQA answer
  normalisation, to keep evaluation questions out of the training data.
"""

from __future__ import annotations

import functools
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from raft.config import ConfigError
from raft.metrics import normalize_answer
from raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE

# ----------------------------------------------------------------------------------------- questions

_NUMBERING = re.compile(
    r"^\s*(?:"
    r"(?:Q(?:uestion)?\s*\d+\s*[:.)\-]?)"  # Q1: / Question 2. / Q3)
    r"|(?:\(?\d+\s*[.):\-]|\(\d+\))"  # 1. / 2) / (3) / 4:
    r"|[-*•–]"  # bullets
    r")\s*",
    re.IGNORECASE,
)


def clean_question(line: str) -> str:
    """A question without list numbering, bullets, surrounding quotes or extra whitespace."""
    text = _NUMBERING.sub("", line, count=1).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return " ".join(text.split())


def normalize_question(question: str) -> str:
    return normalize_answer(question)


def parse_questions(reply: str, n: int) -> list[str]:
    """Up to ``n`` distinct questions from a reply written one per line.

    When some lines end with a question mark, lines that do not (a preamble such as "Here are the
    questions:") are dropped.
    """
    lines = [clean_question(line) for line in (reply or "").splitlines()]
    lines = [q for q in lines if q]
    if any(q.endswith("?") for q in lines):
        lines = [q for q in lines if q.endswith("?")]
    out, seen = [], set()
    for q in lines:
        key = normalize_question(q)
        if key and key not in seen:
            seen.add(key)
            out.append(q)
    return out[:n]


def load_eval_questions(path: str | Path) -> set[str]:
    """Normalised questions of a JSONL file of {question, ...} rows (e.g. HotpotQA's dev set)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"eval_questions: file not found: {path}")
    out = set()
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.add(normalize_question(json.loads(line)["question"]))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ConfigError(f"{path} line {i}: not a JSON object with a 'question' ({type(e).__name__})") from None
    return out


# ----------------------------------------------------------------------------------------- documents


def make_rng(seed: int, chunk_id: str, k: int) -> random.Random:
    """The generator of question ``k`` of chunk ``chunk_id``: independent of every other question."""
    return random.Random(f"{seed}:{chunk_id}:{k}")


OVERLAP_WORDS = 8  # two chunks sharing a run of this many words share text (an overlapping window)


@functools.lru_cache(maxsize=4096)  # an oracle is compared with each of its candidates: its runs are made once
def _word_grams(text: str, n: int = OVERLAP_WORDS) -> frozenset[tuple[str, ...]]:
    words = text.split()
    return frozenset(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def shares_text(a: str, b: str, n: int = OVERLAP_WORDS) -> bool:
    """True when ``a`` and ``b`` share a run of ``n`` whitespace-separated words (or one holds the other)."""
    if a in b or b in a:
        return True
    grams = _word_grams(a, n)
    return bool(grams) and not grams.isdisjoint(_word_grams(b, n))


def contains_answer(text: str, answer: str) -> bool:
    """True when ``text`` holds the final ``answer`` (both HotpotQA-normalised, on word boundaries);
    yes / no / empty answers are never said to be contained."""
    norm = normalize_answer(answer)
    if norm in ("", "yes", "no", "noanswer"):
        return False
    return f" {norm} " in f" {normalize_answer(text)} "


class HardDistractors:
    """For each chunk, the other chunks ranked by BM25 similarity of their text to its text, without
    the chunks that overlap it: the same text, a shared run of words (``shares_text``) or
    ``neighbours(i, j)`` (e.g. the next chunk of the same document when chunks overlap)."""

    def __init__(self, texts: list[str], queries: list[int], k: int, neighbours=None):
        import bm25s

        self.texts = texts
        tokens = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        k = min(len(texts), k + 1)
        self.raw: dict[int, list[int]] = {}  # the old rule: only the chunk itself and its text left out
        self.ranked: dict[int, list[int]] = {}
        if queries and k > 0:
            hits, _ = retriever.retrieve([tokens[i] for i in queries], k=k, show_progress=False)
            for i, row in zip(queries, hits.tolist(), strict=True):
                raw = [int(j) for j in row if j != i and texts[j] != texts[i]]
                self.raw[i] = raw
                self.ranked[i] = [j for j in raw if not ((neighbours and neighbours(i, j)) or shares_text(texts[i], texts[j]))]

    def candidates(self, index: int) -> list[int]:
        return self.ranked.get(index, [])

    def skipped_overlap(self, index: int, count: int) -> int:
        """How many of the ``count`` chunks the old rule would have taken overlap the chunk's text."""
        clean = set(self.candidates(index))
        return sum(j not in clean for j in self.raw.get(index, [])[:count])


def pick_distractors(
    rng: random.Random, texts: list[str], oracle: int, count: int, ranked: list[int] | None = None, exclude=None
) -> list[int]:
    """``count`` distinct chunk indices other than the oracle (and not its text): the ranked ones
    first (hard strategy), then random ones; never one for which ``exclude(j)`` is true (fewer than
    ``count`` when too few are left). Excluding changes no draw as long as no excluded chunk would
    have been chosen: the same picks, in the same places. With a ranked list, ``rng`` is never
    advanced here (the random rest comes from a generator seeded by its state), so what the caller
    draws next (the oracle's fate, the order) is the same however many chunks were excluded."""
    n = len(texts)
    chosen: list[int] = []
    seen = {oracle}
    if ranked is not None:
        rng = random.Random(hash(rng.getstate()[1]))  # its words, a tuple of ints: the same hash in every process
    for j in ranked or []:
        if len(chosen) == count:
            return chosen
        if j not in seen and texts[j] != texts[oracle] and not (exclude and exclude(j)):
            seen.add(j)
            chosen.append(j)
    available = n - 1
    count = min(count, available)
    misses = 0
    while len(chosen) < count:
        j = rng.randrange(n)
        if j in seen:
            misses += 1
            if misses > 50 * count + 100:  # nearly all chunks taken: scan in random order instead
                rest = [i for i in range(n) if i not in seen]
                rng.shuffle(rest)
                rest = [i for i in rest if texts[i] != texts[oracle] and not (exclude and exclude(i))]
                chosen.extend(rest[: count - len(chosen)])
                break
            continue
        seen.add(j)
        if texts[j] != texts[oracle] and not (exclude and exclude(j)):
            chosen.append(j)
    return chosen


@dataclass(frozen=True)
class Sample:
    documents: list[str]  # what the student sees, shuffled
    oracle_index: int | None  # position of the oracle in documents, None when it was dropped
    teacher_documents: list[str]  # what the teacher answers from (always holds the oracle)
    picks: tuple[int, ...] = ()  # the chunks drawn as distractors (the last one the spare that replaces a dropped oracle)


def build_sample(
    rng: random.Random,
    texts: list[str],
    oracle: int,
    distractors: int,
    p: float,
    answer_context: str = "oracle_and_distractors",
    ranked: list[int] | None = None,
    exclude=None,
) -> Sample:
    """One RAFT sample for the chunk at ``oracle`` (see the module docstring); ``exclude(j)``: chunks
    never drawn (the same sample, but for the excluded chunks it would have held)."""
    picks = pick_distractors(rng, texts, oracle, distractors + 1, ranked, exclude)
    main, spare = picks[:distractors], picks[distractors:]
    keep = rng.random() < p
    order = [oracle, *main]
    rng.shuffle(order)
    teacher_docs = [texts[i] for i in order] if answer_context == "oracle_and_distractors" else [texts[oracle]]
    if keep:
        return Sample([texts[i] for i in order], order.index(oracle), teacher_docs, tuple(picks))
    student = [texts[spare[0]] if i == oracle else texts[i] for i in order] if spare else [texts[i] for i in main]
    return Sample(student, None, teacher_docs, tuple(picks))


# ----------------------------------------------------------------------------------------- answers

# a quote span of an answer (the viewer, raft.generate.preview, finds them with the same pattern)
QUOTE = re.compile(re.escape(BEGIN_QUOTE) + r"(.*?)" + re.escape(END_QUOTE), re.S)
QUOTE_MARKS = "\"'“”‘’ \n\t"


def _ws(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Answer:
    cot_answer: str
    final_answer: str
    quotes: list[str]
    reason: str | None  # None: accepted


def parse_answer(text: str) -> tuple[str, list[str]]:
    """(final answer, quotes) of a chain-of-thought reply; the final answer is '' without the tag."""
    text = text or ""
    final = ""
    if ANSWER_TAG in text:
        after = text.rsplit(ANSWER_TAG, 1)[1].strip()
        final = after.splitlines()[0].strip() if after else ""
    quotes = [q.strip(QUOTE_MARKS) for q in QUOTE.findall(text)]
    return final, [q for q in quotes if q]


def check_answer(text: str, oracle: str, require_quote: bool = False) -> Answer:
    """Parse a teacher answer and apply the quality gate against the oracle chunk's text.

    ``require_quote``: an answer without any (non-empty) quote span is rejected as ``no_quote``,
    checked after every other reason.
    """
    cot = (text or "").strip()
    final, quotes = parse_answer(cot)
    if not cot:
        reason = "empty"
    elif ANSWER_TAG not in cot:
        reason = "no_answer_tag"
    elif not final:
        reason = "empty"
    elif cot.count(BEGIN_QUOTE) != cot.count(END_QUOTE):
        reason = "unbalanced_quote"
    else:
        where = _ws(oracle)
        reason = "quote_not_in_oracle" if any(_ws(q) not in where for q in quotes) else None
        if reason is None and require_quote and not quotes:
            reason = "no_quote"
    return Answer(cot, final, quotes, reason)
