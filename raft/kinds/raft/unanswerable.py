"""Unanswerable RAFT rows (``raft.unanswerable_share``, default 0): a share of questions whose documents
hold no answer, with a target that says so in a fixed form (``raft.prompts.decline_answer``, final answer
``raft.prompts.DECLINE_ANSWER``), so the student learns to decline instead of guessing when retrieval
failed; one published RAFT chatbot recipe uses about 5% such rows, and ChatRAG Bench scores the skill.

Which questions: a draw seeded per (run seed, chunk, question), so resuming changes nothing, made once the
teacher has answered (its final answer is needed). Their documents: ``distractors + 1`` chunks (as many
as an answerable row shows) drawn as the run's distractors are (random, hard or retrieved), never the
oracle, never a chunk that overlaps the oracle's text (a shared run of words, or the neighbouring chunk
of the same document when ``chunk_overlap`` > 0) and never one that holds the teacher's final answer
(``raft.kinds.raft.samples.contains_answer``); a row for which too few such chunks are left is rejected
as ``no_clean_documents``. The row keeps the teacher's answer in ``withheld_answer`` (what a document
would have had to hold) and ``answerable`` is false; in the test split it is held out as it is.
"""

from __future__ import annotations

import random

from raft.kinds.raft.distractors import Distractors
from raft.kinds.raft.samples import contains_answer, make_rng, pick_distractors, shares_text


def is_unanswerable(seed: int, chunk_id: str, k: int, share: float) -> bool:
    """Whether question ``k`` of ``chunk_id`` becomes unanswerable: a draw of its own (the sample's draws
    stay as they are), below ``share``."""
    return share > 0 and random.Random(f"{seed}:{chunk_id}:{k}:unanswerable").random() < share


def documents_without_answer(chosen: Distractors, index: int, k: int, question: str, answer: str) -> list[str] | None:
    """``distractors + 1`` shuffled chunks, none the oracle, overlapping it or holding ``answer``; None
    when the pool has too few."""
    texts, oracle = chosen.texts, chosen.texts[index]
    count = chosen.cfg.raft.distractors + 1

    def holds(j: int) -> bool:
        return contains_answer(texts[j], answer) or shares_text(texts[j], oracle) or chosen.neighbours(index, j)

    rng = make_rng(chosen.cfg.seed, chosen.chunks[index].id, k)
    picks = pick_distractors(rng, texts, index, count, chosen.ranked(index, question), holds)
    if len(picks) < count:
        return None
    rng.shuffle(picks)
    return [texts[j] for j in picks]
