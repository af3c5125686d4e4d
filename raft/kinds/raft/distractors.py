"""The documents of each RAFT question (kind=raft): ``raft.distractors`` other chunks, random, hard or
retrieved.

    chosen = Distractors(cfg, chunks, work)       # BM25 over the pool once, for hard / retrieved ones
    sample = chosen.sample(index, k, cfg.raft.p, question=q)  # question k of chunk index: its documents
    sample, bad = chosen.redraw(index, k, sample, final_answer, q)   # none may hold the answer

Random distractors are drawn from the whole pool; hard ones are the chunk's BM25 neighbours
(``raft.kinds.raft.samples.HardDistractors``); retrieved ones are what BM25 retrieves for the generated
question from the pool (``raft.kinds.raft.retrieval``, the retriever of ``raft_domain_retrieval``: train
as you test), the oracle left out (it is added with probability ``p``). Both take ``HARD_EXTRA`` more
candidates than needed in case some overlap the oracle's text: a shared run of words, or, with
``chunk_overlap`` > 0, the neighbouring chunk of the same document (``neighbours``). Once the teacher
has answered, ranked distractors that hold the final answer are false negatives: ``redraw`` replaces
them by the next clean candidates (the same draws otherwise), or gives None when none is left (the row
is rejected as ``answer_in_distractors``).
"""

from __future__ import annotations

from typing import Any

from raft.kinds.raft.retrieval import Retriever
from raft.kinds.raft.samples import (
    HardDistractors,
    Sample,
    build_sample,
    contains_answer,
    make_rng,
    shares_text,
)
from raft.sources.chunking import Chunk

HARD_EXTRA = 8  # BM25 candidates beyond distractors + 1, in case some share the oracle's text


class Distractors:
    """The distractor choice of a run: ``cfg`` the GenerateConfig, ``chunks`` the pool, the first ``work``
    of them asked about."""

    def __init__(self, cfg: Any, chunks: list[Chunk], work: int):
        self.cfg, self.chunks = cfg, chunks
        self.texts = [c.text for c in chunks]
        s = cfg.raft
        self.hard = self.retriever = None
        if s.distractor_strategy == "hard":
            self.hard = HardDistractors(self.texts, list(range(work)), s.distractors + 1 + HARD_EXTRA, self.neighbours)
        if s.distractor_strategy == "retrieved":
            self.retriever = Retriever(self.texts)
        self.ranked_kinds = self.hard is not None or self.retriever is not None

    def neighbours(self, i: int, j: int) -> bool:
        """Chunks i and j overlap by construction: consecutive chunks of one document with chunk_overlap > 0."""
        a, b = self.chunks[i], self.chunks[j]
        return self.cfg.chunk_overlap > 0 and a.source == b.source and abs(a.position - b.position) <= 1

    def skipped_overlap(self, index: int) -> int:
        """Hard candidates of chunk ``index`` skipped for overlapping its text (0 with random distractors)."""
        return self.hard.skipped_overlap(index, self.cfg.raft.distractors + 1) if self.hard is not None else 0

    def ranked(self, index: int, question: str = "") -> list[int] | None:
        """The candidates of chunk ``index`` best first: its hard BM25 neighbours, or what BM25 retrieves
        for ``question`` (never the oracle, its text or a chunk that overlaps it); None: random."""
        if self.hard is not None:
            return self.hard.candidates(index)
        if self.retriever is None:
            return None
        s, texts = self.cfg.raft, self.texts
        hits = self.retriever.top_k([question], s.distractors + 2 + HARD_EXTRA)[0]
        return [j for j in hits if j != index and texts[j] != texts[index] and not self.neighbours(index, j)
                and not shares_text(texts[index], texts[j])]

    def sample(self, index: int, k: int, p: float, answer: str | None = None, question: str = "") -> Sample:
        """The documents of question ``k`` of chunk ``index``; the same draws whatever ``p`` is, so the
        oracle is shown in training when u < p and in the test split when u < test_p (same u). With hard
        or retrieved distractors and the final ``answer``, chunks that hold the answer are never drawn
        (the same sample, the offending distractors replaced by the next candidates)."""
        s = self.cfg.raft
        ranked = self.ranked(index, question)
        rng = make_rng(self.cfg.seed, self.chunks[index].id, k)
        exclude = None
        if self.ranked_kinds and answer is not None:
            exclude = lambda j: contains_answer(self.texts[j], answer)  # noqa: E731
        return build_sample(rng, self.texts, index, s.distractors, p, s.answer_context, ranked, exclude)

    def redraw(self, index: int, k: int, sample: Sample, answer: str, question: str = "") -> tuple[Sample | None, int]:
        """(the sample without ranked distractors that hold ``answer``, or None when too few clean
        candidates are left; how many shown distractors held it). Random distractors: the sample as it is."""
        if not self.ranked_kinds:
            return sample, 0
        s = self.cfg.raft
        shown = sample.picks if s.p < 1 or s.test_p < 1 else sample.picks[:s.distractors]  # the spare only replaces a dropped oracle
        bad = sum(contains_answer(self.texts[j], answer) for j in shown)
        if not bad:
            return sample, 0
        clean = self.sample(index, k, s.p, answer, question)
        return (clean if len(clean.picks) >= len(sample.picks) else None), bad
