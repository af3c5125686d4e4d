"""kind=raft: RAFT question answering data (the default kind of ``raft.generate``).

    python -m raft.generate recipe=hotpot                  # HotpotQA dev contexts, the published run
    python -m raft.generate recipe=docs input=DOCS         # your documents

Work items are chunks (of documents, or HotpotQA paragraphs: raft.sources.pool). Per chunk the teacher writes
``raft.questions_per_chunk`` questions; per question ``raft.distractors`` other chunks are chosen
(random or BM25-hard), the oracle is kept with probability ``raft.p`` (else replaced by one more
distractor, oracle_index null, same target answer), the documents are shuffled and the teacher
writes the chain-of-thought answer (a second call that depends on the first reply). The quality
gate (raft.kinds.raft.samples) rejects answers without ``<ANSWER>:``, with quotes that are not in the oracle,
empty ones, answers that quote nothing (``require_quote``), replies cut at the teacher's max_tokens
(``truncated``), answers longer than the student's evaluation budget (``too_long``, 800 student
tokens), evaluation questions and duplicates. All choices come from a generator seeded per
(chunk, question), so they never depend on the order in which calls finish.

Hard distractors (raft.kinds.raft.distractors) never overlap the oracle's text (a shared run of words,
or the neighbouring chunk of the same document when ``chunk_overlap`` > 0) and never hold the final
answer: once the teacher has answered, such distractors are replaced by the next clean candidates, or
the row is rejected as ``answer_in_distractors``; the summary counts the skipped candidates
(``hard_skipped_overlap`` / ``hard_skipped_answer``). The train/test split keeps all questions about one
oracle chunk (with ``chunk_overlap`` > 0: one source document) on the same side (``split_group``).
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from raft.config import ConfigError, check_all
from raft.kinds import Estimate
from raft.kinds import Kind as BaseKind
from raft.kinds.raft.card import card
from raft.kinds.raft.distractors import Distractors
from raft.kinds.raft.samples import check_answer, load_eval_questions, normalize_question, parse_questions
from raft.kinds.raft.unanswerable import documents_without_answer, is_unanswerable
from raft.prompts import (
    ANSWER_INSTRUCTIONS,
    ANSWER_SYSTEM,
    DECLINE_ANSWER,
    QUESTION_SYSTEM,
    answer_messages,
    decline_answer,
    question_messages,
    student_example,
)
from raft.sources.chunking import Chunk
from raft.sources.pool import load_pool
from raft.sources.settings import check_source, source_fingerprint

if TYPE_CHECKING:
    from raft.generate.pipeline import Run

COLUMNS = ["id", "question", "documents", "oracle_index", "cot_answer", "final_answer", "chunk_id", "source", "answerable",
           "withheld_answer", "messages", "prompt", "completion"]


def features():
    from datasets import Features, List, Value

    message = List({"role": Value("string"), "content": Value("string")})
    types = {"documents": List(Value("string")), "oracle_index": Value("int64"), "answerable": Value("bool"),
             "messages": message, "prompt": message, "completion": message}
    return Features({c: types.get(c, Value("string")) for c in COLUMNS})


class Kind(BaseKind):
    """RAFT QA: chunk -> questions -> (per question) sample -> chain-of-thought answer -> row."""

    name = "raft"
    unit = "chunk"
    counters = ("questions",)
    columns = COLUMNS

    def validate(self) -> None:
        check_source(self.cfg)
        s = self.cfg.raft
        checks = [
            (0.0 <= s.p <= 1.0, f"raft.p={s.p} is not a probability between 0 and 1"),
            (0.0 <= s.test_p <= 1.0, f"raft.test_p={s.test_p} is not a probability between 0 and 1"),
            (s.distractors >= 0, f"raft.distractors={s.distractors} is negative"),
            (s.questions_per_chunk >= 1, f"raft.questions_per_chunk={s.questions_per_chunk} must be at least 1"),
            (s.distractor_strategy in ("random", "hard", "retrieved"),
             f"raft.distractor_strategy={s.distractor_strategy!r} is not random, hard or retrieved"),
            (0.0 <= s.unanswerable_share <= 1.0, f"raft.unanswerable_share={s.unanswerable_share} is not a share between 0 and 1"),
            (
                s.answer_context in ("oracle_and_distractors", "oracle"),
                f"raft.answer_context={s.answer_context!r} is not oracle_and_distractors or oracle",
            ),
        ]
        check_all(checks)

    def load(self) -> int:
        cfg, distractors = self.cfg, self.cfg.raft.distractors
        pool = load_pool(self.source, cfg.input, cfg.hotpot if cfg.source == "hotpot" else None, cfg.tokenizer,
                         cfg.chunk_size, cfg.chunk_overlap, cfg.min_chunk_tokens)
        self.chunks, self.notes = pool.chunks, pool.notes
        self.eval_questions = {normalize_question(q) for q in pool.questions}  # questions never trained on
        if cfg.raft.eval_questions:
            self.eval_questions |= load_eval_questions(cfg.raft.eval_questions)
        if len(self.chunks) < distractors + 1:
            raise ConfigError(
                f"{cfg.input}: {len(self.chunks)} chunks, fewer than distractors + 1 = {distractors + 1}; "
                "add documents, lower chunk_size or lower distractors"
            )
        self.texts = [c.text for c in self.chunks]
        self.index = {c.id: i for i, c in enumerate(self.chunks)}
        return len(self.chunks)

    def prepare(self, work: int) -> None:
        s = self.cfg.raft
        self.count_tokens = self.student_counter()
        self.distractors = Distractors(self.cfg, self.chunks, work)
        if s.distractor_strategy in ("hard", "retrieved"):
            # candidates the old rule would have taken: overlapping the oracle's text / holding the final answer
            self.counters = (*type(self).counters, *(("hard_skipped_overlap",) if s.distractor_strategy == "hard" else ()),
                             f"{s.distractor_strategy}_skipped_answer")
            how = "BM25 neighbours of the oracle" if s.distractor_strategy == "hard" else "what BM25 retrieves for the question"
            self.notes.append(f"{s.distractor_strategy} distractors ({how}): never a chunk that overlaps the oracle's text (a "
                              "shared run of words, or the neighbouring chunk of the same document when chunk_overlap > 0) nor "
                              "one that holds the final answer (redrawn once the teacher has answered; rejected as "
                              "answer_in_distractors when none is left)")
        if s.unanswerable_share > 0:
            self.counters = (*self.counters, "unanswerable")
            self.notes.append(f"unanswerable rows: about {s.unanswerable_share:.0%} of questions get documents without the "
                              "oracle or any chunk holding the answer, and the target declines (raft.prompts.DECLINE_ANSWER)")

    @property
    def split_group_label(self) -> str:
        return "source document" if self.cfg.chunk_overlap > 0 else "oracle chunk"

    def split_group(self, row_id: str) -> str:
        """The group a row is split with (raft.generate.output): its oracle chunk, so no test question's
        oracle is the oracle of a training question; with chunk_overlap > 0 its whole source document
        (neighbouring chunks share text)."""
        chunk_id = row_id.rsplit("#", 1)[0]
        if self.cfg.chunk_overlap > 0 and chunk_id in self.index:
            return f"source:{self.chunks[self.index[chunk_id]].source}"
        return f"chunk:{chunk_id}"

    def student_counter(self):
        """Counts answer tokens with the student's tokenizer, or None (the teacher's own counts are used)."""
        from raft.sources.chunking import DocumentError, load_tokenizer, token_counter

        how = f"counted with the student tokenizer {self.cfg.tokenizer}"
        try:
            count = token_counter(load_tokenizer(self.cfg.tokenizer))[0]
        except DocumentError:
            count, how = None, f"counted in the teacher's tokens (the student tokenizer {self.cfg.tokenizer} could not be loaded)"
        self.notes.append(f"answers longer than raft.max_answer_tokens={self.cfg.raft.max_answer_tokens} tokens rejected as too_long ({how})")
        return count

    # ------------------------------------------------------------------ one chunk
    def _reject(self, run: Run, row_id: str, chunk: Chunk, reason: str, question: str, reply: str) -> None:
        run.reject({"id": row_id, "chunk_id": chunk.id, "source": chunk.source, "reason": reason, "question": question, "reply": reply})

    def as_reject(self, row: dict[str, Any], reason: str) -> dict[str, Any]:
        return {"id": row["id"], "chunk_id": row["chunk_id"], "source": row["source"], "reason": reason,
                "question": row["question"], "reply": row["cot_answer"]}

    async def item(self, run: Run, index: int) -> None:
        s, chunk = self.cfg.raft, self.chunks[index]
        reply = await run.call(question_messages(chunk.text, s.questions_per_chunk), "question")
        if isinstance(reply, str):
            self._reject(run, f"{chunk.id}#0", chunk, "teacher_error", "", reply)
            return
        if reply.finish_reason == "length":  # cut at max_tokens: the last question may be half a question
            self._reject(run, f"{chunk.id}#0", chunk, "truncated", "", reply.text)
            return
        questions = parse_questions(reply.text, s.questions_per_chunk)
        if not questions:
            self._reject(run, f"{chunk.id}#0", chunk, "no_question", "", reply.text)
            return
        jobs = []
        for k, question in enumerate(questions):
            run.count("questions")
            row_id = f"{chunk.id}#{k}"
            norm = normalize_question(question)
            if norm in self.eval_questions:
                self._reject(run, row_id, chunk, "eval_question", question, reply.text)
                continue
            if self.distractors.hard is not None:
                run.count("hard_skipped_overlap", self.distractors.skipped_overlap(index))
            jobs.append(self.answer(run, row_id, chunk, question, norm, self.distractors.sample(index, k, s.p, question=question)))
        if len(jobs) == 1:  # the common case: no task to create
            await jobs[0]
        else:
            await asyncio.gather(*jobs)

    async def answer(self, run: Run, row_id: str, chunk: Chunk, question: str, norm: str, sample) -> None:
        reply = await run.call(answer_messages(question, sample.teacher_documents), "answer")
        if isinstance(reply, str):
            self._reject(run, row_id, chunk, "teacher_error", question, reply)
            return
        s = self.cfg.raft
        if reply.finish_reason == "length":  # cut at max_tokens: the chain of thought did not end
            self._reject(run, row_id, chunk, "truncated", question, reply.text)
            return
        verdict = check_answer(reply.text, chunk.text, require_quote=s.require_quote)
        if verdict.reason:
            self._reject(run, row_id, chunk, verdict.reason, question, reply.text)
            return
        length = self.count_tokens(verdict.cot_answer) if self.count_tokens else reply.completion_tokens
        if length > s.max_answer_tokens:  # the student would be cut off in evaluation: never train on it
            self._reject(run, row_id, chunk, "too_long", question, reply.text)
            return
        k = int(row_id.rsplit("#", 1)[1])
        row = {"id": row_id, "question": question, "chunk_id": chunk.id, "source": chunk.source}
        if is_unanswerable(self.cfg.seed, chunk.id, k, s.unanswerable_share):
            documents = documents_without_answer(self.distractors, self.index[chunk.id], k, question, verdict.final_answer)
            if documents is None:
                self._reject(run, row_id, chunk, "no_clean_documents", question, reply.text)
                return
            run.count("unanswerable")
            row.update(documents=documents, oracle_index=None, cot_answer=decline_answer(), final_answer=DECLINE_ANSWER,
                       answerable=False, withheld_answer=verdict.final_answer)
        else:
            # a ranked distractor that holds the answer is a false negative: redraw it
            sample, bad = self.distractors.redraw(self.index[chunk.id], k, sample, verdict.final_answer, question)
            if bad:
                run.count(f"{s.distractor_strategy}_skipped_answer", bad)
            if sample is None:
                self._reject(run, row_id, chunk, "answer_in_distractors", question, reply.text)
                return
            row.update(documents=sample.documents, oracle_index=sample.oracle_index, cot_answer=verdict.cot_answer,
                       final_answer=verdict.final_answer, answerable=True, withheld_answer="")
        run.keep({**row, **student_example(row["documents"], question, row["cot_answer"])}, norm)

    # ------------------------------------------------------------------ outputs
    def held_out(self, row: dict[str, Any]) -> dict[str, Any]:
        """A test row with the oracle among its documents with probability ``raft.test_p`` (default 1:
        always), the other documents and their order as generated; the answer is unchanged (the
        teacher always answered with the oracle in view)."""
        if row.get("answerable") is False:  # unanswerable: no document holds the answer, in the test split too
            return row
        k = int(row["id"].rsplit("#", 1)[1])
        sample = self.distractors.sample(self.index[row["chunk_id"]], k, self.cfg.raft.test_p, row["final_answer"], row["question"])
        if sample.documents == row["documents"]:
            return row
        student = student_example(sample.documents, row["question"], row["cot_answer"])
        return {**row, "documents": sample.documents, "oracle_index": sample.oracle_index, **student}

    def write_outputs(self, folder) -> None:
        """``chunks.jsonl``: the whole chunk pool (what a retriever searches in raft_domain_retrieval)."""
        with (folder / "chunks.jsonl").open("w", encoding="utf-8") as f:
            for c in self.chunks:
                f.write(json.dumps({"id": c.id, "text": c.text, "source": c.source, "title": c.title}, ensure_ascii=False) + "\n")

    def features(self):
        return features()

    def fingerprint(self) -> dict[str, Any]:
        s = self.cfg.raft
        return {
            **source_fingerprint(self.cfg),
            "eval_questions": s.eval_questions,
            "p": s.p,
            "distractors": s.distractors,
            "distractor_strategy": s.distractor_strategy,
            **({"unanswerable_share": s.unanswerable_share} if s.unanswerable_share else {}),  # runs before it: 0
            "questions_per_chunk": s.questions_per_chunk,
            "answer_context": s.answer_context,
            "require_quote": s.require_quote,
            "max_answer_tokens": s.max_answer_tokens,
            "test_p": s.test_p,
        }

    def estimate(self, work: int, stored) -> Estimate:
        s, texts = self.cfg.raft, self.texts
        q = s.questions_per_chunk
        mean_chars = sum(len(t) for t in texts) / len(texts)
        work_chars = sum(len(t) for t in texts[:work])
        shown = s.distractors + 1 if s.answer_context == "oracle_and_distractors" else 1
        question_in = len(QUESTION_SYSTEM) * work + work_chars
        answer_in = work * q * (len(ANSWER_SYSTEM) + len(ANSWER_INSTRUCTIONS) + shown * (mean_chars + 23) + 100)
        already = sum(stored(question_messages(t, q)) for t in texts[:work])
        calls = work + work * q
        return Estimate(
            work_line=f"{work} chunks to ask about (of {len(texts)} available as distractors)",
            calls_line=f"{work} question calls + up to {work * q} answer calls = {calls} ({already} question calls already stored)",
            calls=calls,
            tokens_in=int((question_in + answer_in) / 4),
            tokens_out=work * q * (25 + 300),  # a question line, a chain-of-thought answer
        )

    def card(self) -> tuple[str, str, str]:
        return card(self.cfg)
