"""RAFT data generation: chunks -> teacher questions -> RAFT samples -> teacher CoT answers -> dataset.

    python -m raft.generate recipe=hotpot teacher.base_url=http://127.0.0.1:8000/v1
    python -m raft.generate recipe=docs input=path/to/docs output=outputs/my_docs
    python -m raft.generate recipe=demo                     # small bundled example, local model
    python -m raft.generate recipe=hotpot dry_run=true      # chunks, calls, tokens, cost; no call

Per chunk the teacher writes ``questions_per_chunk`` questions; per question ``distractors`` other
chunks are chosen (random or BM25-hard), the oracle is kept with probability ``p`` (else replaced by
one more distractor, oracle_index null, same target answer), the documents are shuffled and the
teacher writes the chain-of-thought answer. The quality gate (raft.samples) rejects answers without
``<ANSWER>:``, with quotes that are not in the oracle, empty ones, HotpotQA evaluation questions and
duplicates. All choices come from a generator seeded per (chunk, question), so they never depend on
the order in which calls finish.

The two teacher phases are pipelined per chunk (asyncio): a chunk's answers are asked as soon as its
questions arrive, with ``teacher.concurrency`` requests in flight from the first second, so the
teacher stays busy. The summary gives the teacher phase's own time (first call to last reply) next
to the whole run's.

Memory does not grow with the number of rows beyond the chunks themselves (every chunk must stay at
hand as a possible distractor) and a small index per row: accepted rows and rejects are streamed to
files in the output folder as they come (the row kept for each question and the byte offsets of
both are all that stays in memory); at the end the kept rows are copied, sorted and split, into
``train.jsonl`` / ``test.jsonl``, and the datasets are built from those files (Arrow, memory-mapped).

Output folder (``output``), the contract with raft.finetune and raft.evaluate:
``recipe.yaml``, ``dataset/`` (DatasetDict train/test), ``train.jsonl``, ``test.jsonl``,
``rejects.jsonl`` (with a ``reason``), ``README.md`` (dataset card), and the run's own
``store.jsonl`` + ``run.json`` (raft.store): every finished teacher call is stored as it arrives,
so the same command after a crash or a kill resumes without repeating a call, and a changed recipe
in the same folder is refused. A teacher that stays down stops the run after bounded retries with a
one-line message (exit status 1); everything finished so far stays stored.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.config import PACKAGE_DIR, ConfigError, GenerateConfig, run_cli, save_config
from raft.documents import Chunk
from raft.prompts import (
    ANSWER_INSTRUCTIONS,
    ANSWER_SYSTEM,
    QUESTION_SYSTEM,
    answer_messages,
    question_messages,
    student_example,
)
from raft.samples import (
    HardDistractors,
    build_sample,
    check_answer,
    load_eval_questions,
    make_rng,
    normalize_question,
    parse_questions,
)
from raft.store import Store, check_fingerprint, request_key
from raft.teacher import Teacher, TeacherError, TeacherRejected, TeacherUnavailable, make_teacher

ROWS_PARTIAL = ".rows.partial.jsonl"
REJECTS_PARTIAL = ".rejects.partial.jsonl"
COLUMNS = ["id", "question", "documents", "oracle_index", "cot_answer", "final_answer", "chunk_id", "source", "messages", "prompt", "completion"]
HARD_EXTRA = 8  # BM25 candidates beyond distractors + 1, in case some share the oracle's text


def features():
    from datasets import Features, List, Value

    message = List({"role": Value("string"), "content": Value("string")})
    return Features(
        {
            "id": Value("string"),
            "question": Value("string"),
            "documents": List(Value("string")),
            "oracle_index": Value("int64"),
            "cot_answer": Value("string"),
            "final_answer": Value("string"),
            "chunk_id": Value("string"),
            "source": Value("string"),
            "messages": message,
            "prompt": message,
            "completion": message,
        }
    )


# --------------------------------------------------------------------------------------------------
# settings and inputs
# --------------------------------------------------------------------------------------------------


def validate(cfg: GenerateConfig) -> None:
    checks = [
        (cfg.source in ("docs", "hotpot"), f"source={cfg.source!r} is not docs or hotpot"),
        (0.0 <= cfg.p <= 1.0, f"p={cfg.p} is not a probability between 0 and 1"),
        (cfg.distractors >= 0, f"distractors={cfg.distractors} is negative"),
        (cfg.questions_per_chunk >= 1, f"questions_per_chunk={cfg.questions_per_chunk} must be at least 1"),
        (cfg.distractor_strategy in ("random", "hard"), f"distractor_strategy={cfg.distractor_strategy!r} is not random or hard"),
        (
            cfg.answer_context in ("oracle_and_distractors", "oracle"),
            f"answer_context={cfg.answer_context!r} is not oracle_and_distractors or oracle",
        ),
        (cfg.limit is None or cfg.limit >= 1, f"limit={cfg.limit} must be at least 1 (or null for all chunks)"),
        (0.0 <= cfg.test_size < 1.0, f"test_size={cfg.test_size} must be in [0, 1)"),
        (cfg.teacher.concurrency >= 1, f"teacher.concurrency={cfg.teacher.concurrency} must be at least 1"),
        (cfg.teacher.max_retries >= 0, f"teacher.max_retries={cfg.teacher.max_retries} is negative"),
        (bool(str(cfg.input).strip()), "input is empty: pass input=PATH (a file or folder of documents, or a HotpotQA file / hub id)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def resolve_input(value: str) -> str:
    """A local path made absolute; ``raft/...`` also finds the folders shipped in the package
    (``raft/demo`` works outside a checkout); anything else (a hub id) unchanged."""
    path = Path(value).expanduser()
    if path.exists():
        return str(path.resolve())
    if value.startswith("raft/") and (PACKAGE_DIR.parent / value).exists():
        return str((PACKAGE_DIR.parent / value).resolve())
    return value


@dataclass
class Pool:
    """Every chunk distractors may come from (questions are asked for the first ``limit``)."""

    chunks: list[Chunk]
    eval_questions: set[str]
    notes: list[str] = field(default_factory=list)


def load_pool(cfg: GenerateConfig, source: str) -> Pool:
    notes: list[str] = []
    eval_questions: set[str] = set()
    if cfg.source == "hotpot":
        from raft.hotpot import HotpotError, hotpot_chunks, load_hotpot

        try:
            examples = load_hotpot(source)
        except HotpotError as e:
            raise ConfigError(str(e)) from None
        chunks = hotpot_chunks(examples)
        eval_questions = {normalize_question(ex["question"]) for ex in examples}
        notes.append(f"{len(examples)} HotpotQA examples, {len(chunks)} distinct paragraphs")
    else:
        from raft.documents import load_chunks

        result = load_chunks(source, cfg.tokenizer, cfg.chunk_size, cfg.chunk_overlap, cfg.min_chunk_tokens)
        for problem in result.problems:
            print(f"raft.generate: skipped {problem.source}: {problem.reason}", file=sys.stderr)
        chunks = list(result.chunks)
        if result.problems:
            notes.append(f"{len(result.problems)} files skipped (see the messages above)")
        if result.dropped_small:
            notes.append(f"{result.dropped_small} chunks shorter than min_chunk_tokens={cfg.min_chunk_tokens} dropped")
        if not chunks:
            raise ConfigError(
                f"{cfg.input}: no text to generate from ({len(result.problems)} files skipped, "
                f"{result.dropped_small} chunks below min_chunk_tokens={cfg.min_chunk_tokens})"
            )
    if cfg.eval_questions:
        eval_questions |= load_eval_questions(cfg.eval_questions)
    seen: set[str] = set()
    unique = []
    for c in chunks:
        if c.text not in seen:
            seen.add(c.text)
            unique.append(c)
    if len(unique) < len(chunks):
        notes.append(f"{len(chunks) - len(unique)} chunks with the same text as an earlier one dropped")
    if len(unique) < cfg.distractors + 1:
        raise ConfigError(
            f"{cfg.input}: {len(unique)} chunks, fewer than distractors + 1 = {cfg.distractors + 1}; "
            "add documents, lower chunk_size or lower distractors"
        )
    return Pool(unique, eval_questions, notes)


def fingerprint(cfg: GenerateConfig, source: str) -> dict[str, Any]:
    """The settings that change what a run produces (see raft.store)."""
    fp: dict[str, Any] = {
        "source": cfg.source,
        "input": source,
        "seed": cfg.seed,
        "p": cfg.p,
        "distractors": cfg.distractors,
        "distractor_strategy": cfg.distractor_strategy,
        "questions_per_chunk": cfg.questions_per_chunk,
        "answer_context": cfg.answer_context,
        "eval_questions": cfg.eval_questions,
        "teacher.backend": cfg.teacher.backend,
        "teacher.model": cfg.teacher.model,
        "teacher.temperature": cfg.teacher.temperature,
        "teacher.max_tokens": cfg.teacher.max_tokens,
    }
    if cfg.source == "docs":
        fp.update(tokenizer=cfg.tokenizer, chunk_size=cfg.chunk_size, chunk_overlap=cfg.chunk_overlap, min_chunk_tokens=cfg.min_chunk_tokens)
    return fp


def cost(cfg: GenerateConfig, tokens_in: int, tokens_out: int) -> float | None:
    t = cfg.teacher
    if t.price_input_per_mtok is None and t.price_output_per_mtok is None:
        return None
    return tokens_in * (t.price_input_per_mtok or 0.0) / 1e6 + tokens_out * (t.price_output_per_mtok or 0.0) / 1e6


# --------------------------------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------------------------------


@dataclass
class Stats:
    chunks: int
    chunks_done: int = 0
    questions: int = 0
    accepted: int = 0
    rejected: Counter = field(default_factory=Counter)
    tokens_in: int = 0
    tokens_out: int = 0
    new_tokens_in: int = 0
    new_tokens_out: int = 0
    calls_new: int = 0
    calls_stored: int = 0
    started: float = field(default_factory=time.monotonic)
    teacher_wall_s: float = 0.0  # the teacher phase: first call to last reply
    teacher_cpu_s: float = 0.0  # this process's CPU time in that phase

    def rate(self, n: float) -> float:
        return n / max(time.monotonic() - self.started, 1e-9)


class Spool:
    """An append-only JSONL work file that remembers nothing: ``append`` says where a line lies, so
    callers keep only (offset, length) pairs; ``copy`` writes chosen lines to a file."""

    def __init__(self, path: Path):
        self.path = path
        self._file = path.open("w+b")
        self._end = 0

    def append(self, row: dict[str, Any]) -> tuple[int, int]:
        line = json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n"
        self._file.write(line)
        where = (self._end, len(line))
        self._end += len(line)
        return where

    def read(self, offset: int, length: int) -> dict[str, Any]:
        self._file.flush()
        return json.loads(os.pread(self._file.fileno(), length, offset))

    def close(self) -> None:
        self._file.close()

    def copy(self, spans, path: Path) -> None:
        """Write the lines at ``spans`` ((offset, length) pairs) to ``path``, atomically."""
        tmp = path.with_name(path.name + ".tmp")
        with self.path.open("rb") as f, tmp.open("wb") as out:
            fd = f.fileno()
            for offset, length in spans:
                out.write(os.pread(fd, length, offset))
        os.replace(tmp, path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class Run:
    """One pass over the chunks: teacher calls (or stored replies), samples, gate, rows."""

    def __init__(self, cfg: GenerateConfig, pool: Pool, work: int, teacher: Teacher, store: Store, out: Path):
        self.cfg, self.teacher, self.store = cfg, teacher, store
        self.chunks = pool.chunks
        self.texts = [c.text for c in pool.chunks]
        self.work = work
        self.eval_questions = pool.eval_questions
        self.stats = Stats(chunks=work)
        # what stays in memory per row: the row kept for each question (smallest id), where rows and rejects lie
        self.kept: dict[bytes, tuple[str, int, int]] = {}  # question digest -> (row id, offset, length) in rows
        self.rejected: list[tuple[str, str, int, int]] = []  # (row id, reason, offset, length) in rejects
        self.rows = Spool(out / ROWS_PARTIAL)
        self.rejects = Spool(out / REJECTS_PARTIAL)
        self.hard = None
        if cfg.distractor_strategy == "hard":
            self.hard = HardDistractors(self.texts, list(range(work)), cfg.distractors + 1 + HARD_EXTRA)
        self._bar = None
        self._shown = 0.0

    # ------------------------------------------------------------------ teacher calls
    async def call(self, messages: list[dict[str, str]], kind: str):
        t = self.cfg.teacher
        key = request_key(messages, t.model, t.temperature, t.max_tokens)
        reply = self.store.get(key)
        if reply is not None:
            self.stats.calls_stored += 1
        else:
            try:
                reply = await self.teacher.ask(messages)
            except TeacherRejected as e:
                return str(e)
            self.store.put(key, kind, reply.text, reply.prompt_tokens, reply.completion_tokens)
            self.stats.calls_new += 1
            self.stats.new_tokens_in += reply.prompt_tokens
            self.stats.new_tokens_out += reply.completion_tokens
        self.stats.tokens_in += reply.prompt_tokens
        self.stats.tokens_out += reply.completion_tokens
        return reply

    # ------------------------------------------------------------------ per chunk
    def reject(self, row_id: str, chunk_id: str, source: str, reason: str, question: str, reply: str) -> None:
        self.stats.rejected[reason] += 1
        where = self.rejects.append(
            {"id": row_id, "chunk_id": chunk_id, "source": source, "reason": reason, "question": question, "reply": reply}
        )
        self.rejected.append((row_id, reason, *where))

    def keep(self, row: dict[str, Any], norm: str) -> None:
        """Write an accepted row; of rows asking the same question only the smallest id is kept (the
        others are rejected as duplicates), whatever order they come in."""
        digest = hashlib.blake2b(norm.encode("utf-8"), digest_size=16).digest()
        before = self.kept.get(digest)
        if before is not None and before[0] < row["id"]:
            self.reject(row["id"], row["chunk_id"], row["source"], "duplicate", row["question"], row["cot_answer"])
            return
        self.kept[digest] = (row["id"], *self.rows.append(row))
        if before is None:
            self.stats.accepted += 1
            return
        old = self.rows.read(*before[1:])  # the row it replaces is read back for its reject line
        self.reject(old["id"], old["chunk_id"], old["source"], "duplicate", old["question"], old["cot_answer"])

    async def chunk(self, index: int) -> None:
        cfg, chunk = self.cfg, self.chunks[index]
        reply = await self.call(question_messages(chunk.text, cfg.questions_per_chunk), "question")
        if isinstance(reply, str):
            self.reject(f"{chunk.id}#0", chunk.id, chunk.source, "teacher_error", "", reply)
            return
        questions = parse_questions(reply.text, cfg.questions_per_chunk)
        if not questions:
            self.reject(f"{chunk.id}#0", chunk.id, chunk.source, "no_question", "", reply.text)
            return
        jobs = []
        for k, question in enumerate(questions):
            self.stats.questions += 1
            row_id = f"{chunk.id}#{k}"
            norm = normalize_question(question)
            if norm in self.eval_questions:
                self.reject(row_id, chunk.id, chunk.source, "eval_question", question, reply.text)
                continue
            ranked = self.hard.candidates(index) if self.hard else None
            sample = build_sample(make_rng(cfg.seed, chunk.id, k), self.texts, index, cfg.distractors, cfg.p, cfg.answer_context, ranked)
            jobs.append(self.answer(row_id, chunk, question, norm, sample))
        if len(jobs) == 1:
            await jobs[0]
        else:
            await asyncio.gather(*jobs)

    async def answer(self, row_id: str, chunk: Chunk, question: str, norm: str, sample) -> None:
        reply = await self.call(answer_messages(question, sample.teacher_documents), "answer")
        if isinstance(reply, str):
            self.reject(row_id, chunk.id, chunk.source, "teacher_error", question, reply)
            return
        verdict = check_answer(reply.text, chunk.text)
        if verdict.reason:
            self.reject(row_id, chunk.id, chunk.source, verdict.reason, question, reply.text)
            return
        row = {
            "id": row_id,
            "question": question,
            "documents": sample.documents,
            "oracle_index": sample.oracle_index,
            "cot_answer": verdict.cot_answer,
            "final_answer": verdict.final_answer,
            "chunk_id": chunk.id,
            "source": chunk.source,
            **student_example(sample.documents, question, verdict.cot_answer),
        }
        self.keep(row, norm)

    # ------------------------------------------------------------------ driving
    def _progress(self) -> None:
        s, bar = self.stats, self._bar
        s.chunks_done += 1
        if bar is None:
            return
        bar.update(1)
        now = time.monotonic()
        if now - self._shown >= 0.5 or s.chunks_done == s.chunks:
            self._shown = now
            rows = s.accepted + sum(s.rejected.values())
            bar.set_postfix_str(
                f"rows/s={s.rate(rows):.1f} ok={s.accepted} rej={sum(s.rejected.values())} "
                f"tok/s={s.rate(s.new_tokens_in + s.new_tokens_out):.0f}",
                refresh=False,
            )

    async def run(self, progress: bool = True) -> Stats:
        from tqdm import tqdm

        pending = iter(range(self.work))
        workers = min(self.work, 2 * self.teacher.parallelism)

        async def worker() -> None:
            for index in pending:
                await self.chunk(index)
                self._progress()

        self._bar = tqdm(total=self.work, unit="chunk", desc="raft.generate", mininterval=0.5, disable=not progress)
        wall, cpu = time.monotonic(), time.process_time()
        try:
            async with asyncio.TaskGroup() as group:  # every worker starts now: `concurrency` requests at once
                for _ in range(workers):
                    group.create_task(worker())
        except BaseExceptionGroup as eg:
            errors = list(_leaves(eg))
            raise next((e for e in errors if isinstance(e, TeacherUnavailable | TeacherError)), errors[0]) from None
        finally:
            self.stats.teacher_wall_s = time.monotonic() - wall
            self.stats.teacher_cpu_s = time.process_time() - cpu
            self._bar.close()
            self.rows.close()
            self.rejects.close()
            await self.teacher.aclose()
        return self.stats


def _leaves(group: BaseExceptionGroup):
    for e in group.exceptions:
        if isinstance(e, BaseExceptionGroup):
            yield from _leaves(e)
        else:
            yield e


# --------------------------------------------------------------------------------------------------
# output folder
# --------------------------------------------------------------------------------------------------


def split_order(n: int, test_size: float, seed: int) -> tuple[list[int], list[int]]:
    """Positions of the train and test rows among ``n`` rows: the same as ``Dataset.train_test_split``
    with ``seed`` (test = the first ``n_test`` of a seeded permutation, train = the rest, in that order)."""
    import numpy as np

    n_test = min(n - 1, max(1, math.ceil(n * test_size))) if n >= 2 and test_size > 0 else 0
    if n_test == 0:
        return list(range(n)), []
    permutation = np.random.default_rng(seed).permutation(n).tolist()
    return permutation[n_test:], permutation[:n_test]


def finalize(run: Run, out: Path, cfg: GenerateConfig) -> dict[str, int]:
    """Sort the kept rows by id, split them, write the output folder (JSONL first, then the datasets)."""
    import datasets

    rows = sorted(run.kept.values())  # (row id, offset, length), in id order
    train, test = split_order(len(rows), cfg.test_size, cfg.seed)
    counts = {"train": len(train), "test": len(test)}
    for name, order in (("train", train), ("test", test)):
        run.rows.copy((rows[i][1:] for i in order), out / f"{name}.jsonl")
    del rows, train, test
    with tempfile.TemporaryDirectory(dir=out, prefix=".cache-") as cache:
        parts = datasets.DatasetDict(
            {
                name: datasets.Dataset.from_json(str(out / f"{name}.jsonl"), features=features(), cache_dir=cache)
                if counts[name]
                else datasets.Dataset.from_dict({k: [] for k in COLUMNS}, features=features())
                for name in ("train", "test")
            }
        )
        tmp = out / ".dataset.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        # an empty split needs one explicit (empty) shard, or load_from_disk cannot read it back
        parts.save_to_disk(str(tmp), num_shards={k: 1 if len(v) == 0 else None for k, v in parts.items()})
        del parts
        shutil.rmtree(out / "dataset", ignore_errors=True)
        os.replace(tmp, out / "dataset")
    run.rejects.copy((r[2:] for r in sorted(run.rejected)), out / "rejects.jsonl")
    run.rows.remove()
    run.rejects.remove()
    return counts


def dataset_card(cfg: GenerateConfig, teacher: str, stats: Stats, counts: dict[str, int], notes: list[str], recipe_text: str) -> str:
    rejected = sum(stats.rejected.values())
    reasons = "\n".join(f"| {reason} | {n} |" for reason, n in sorted(stats.rejected.items())) or "| (none) | 0 |"
    price = cost(cfg, stats.tokens_in, stats.tokens_out)
    oracle = (
        f"With probability p = {cfg.p} the oracle chunk is among the documents; otherwise it is replaced by one more "
        "distractor, `oracle_index` is null and the target answer stays the same (the model learns to answer from "
        "what it memorised and to tolerate a failed retrieval)."
    )
    context = (
        "the oracle and the same distractors" if cfg.answer_context == "oracle_and_distractors" else "the oracle chunk alone"
    )
    return f"""---
pretty_name: RAFT data ({cfg.recipe or "custom"})
task_categories: [question-answering]
language: [en]
---
# RAFT training data

Written by `python -m raft.generate` (recipe `{cfg.recipe or "none"}`) from `{cfg.input}` ({cfg.source}).
Each row is one question about one chunk, with {cfg.distractors} distractor chunks
({cfg.distractor_strategy} strategy), shuffled, and a chain-of-thought answer by the teacher that quotes the
oracle between `##begin_quote##` and `##end_quote##` and ends with `<ANSWER>: ...`. {oracle}
The teacher answered with {context} in view.

## Teacher

- model: `{cfg.teacher.model}` ({cfg.teacher.backend} backend: {teacher})
- temperature {cfg.teacher.temperature}, at most {cfg.teacher.max_tokens} tokens per reply
- tokens: {stats.tokens_in} in, {stats.tokens_out} out{f"; estimated cost ${price:.2f}" if price is not None else ""}

## Counts

| chunks | questions | accepted | train | test | rejected |
|---|---|---|---|---|---|
| {stats.chunks} | {stats.questions} | {stats.accepted} | {counts["train"]} | {counts["test"]} | {rejected} |

| rejected because | rows |
|---|---|
{reasons}

{chr(10).join(f"- {n}" for n in notes)}

Rejected replies are in `rejects.jsonl` with their reason.

## Columns

- `id`: `<chunk_id>#<question number>`; `chunk_id`, `source`: where the oracle chunk comes from
- `question`, `documents` (shuffled, exactly what the student sees), `oracle_index` (null when dropped)
- `cot_answer` (the teacher's chain of thought), `final_answer` (after the last `<ANSWER>:`)
- `messages` (TRL conversational) and `prompt` / `completion` (TRL prompt-completion), built from the same
  student template the evaluation tasks use (`raft.prompts.student_prompt`)

Load with `datasets.load_from_disk("dataset")` or the `train.jsonl` / `test.jsonl` files.

## Recipe

```yaml
{recipe_text.strip()}
```
"""


# --------------------------------------------------------------------------------------------------
# command
# --------------------------------------------------------------------------------------------------


def dry_run(cfg: GenerateConfig, pool: Pool, work: int, out: Path) -> dict[str, Any]:
    q, texts = cfg.questions_per_chunk, [c.text for c in pool.chunks]
    mean_chars = sum(len(t) for t in texts) / len(texts)
    work_chars = sum(len(t) for t in texts[:work])
    shown = cfg.distractors + 1 if cfg.answer_context == "oracle_and_distractors" else 1
    question_in = len(QUESTION_SYSTEM) * work + work_chars
    answer_in = work * q * (len(ANSWER_SYSTEM) + len(ANSWER_INSTRUCTIONS) + shown * (mean_chars + 23) + 100)
    tokens_in = int((question_in + answer_in) / 4)  # about 4 characters per token
    tokens_out = work * q * (25 + 300)  # a question line, a chain-of-thought answer
    stored = 0
    if (out / "store.jsonl").exists():
        records = Store(out, readonly=True)
        t = cfg.teacher
        stored = sum(
            request_key(question_messages(c.text, q), t.model, t.temperature, t.max_tokens) in records for c in pool.chunks[:work]
        )
    price = cost(cfg, tokens_in, tokens_out)
    print(f"dry run: {work} chunks to ask about (of {len(pool.chunks)} available as distractors)")
    for note in pool.notes:
        print(f"  {note}")
    print(f"teacher calls: {work} question calls + up to {work * q} answer calls = {work + work * q} ({stored} question calls already stored)")
    print(f"estimated tokens (about 4 characters a token): {tokens_in:,} in, {tokens_out:,} out")
    if price is not None:
        print(f"estimated cost: ${price:.2f}")
    print("no teacher call was made")
    return {"chunks": work, "calls": work + work * q, "tokens_in": tokens_in, "tokens_out": tokens_out, "cost": price}


def summary(cfg: GenerateConfig, stats: Stats, counts: dict[str, int], out: Path, wall: float) -> str:
    rejected = sum(stats.rejected.values())
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(stats.rejected.items())) or "none"
    lines = [
        f"chunks: {stats.chunks}   questions: {stats.questions}   accepted: {stats.accepted} "
        f"(train {counts['train']}, test {counts['test']})   rejected: {rejected} ({reasons})",
        f"teacher calls: {stats.calls_new} new, {stats.calls_stored} from the store   "
        f"tokens in/out: {stats.tokens_in:,} / {stats.tokens_out:,} (new: {stats.new_tokens_in:,} / {stats.new_tokens_out:,})",
        f"wall time: {wall:.1f}s (teacher phase {stats.teacher_wall_s:.1f}s, "
        f"{stats.calls_new / max(stats.teacher_wall_s, 1e-9):.1f} new calls/s)   output: {out}",
    ]
    price = cost(cfg, stats.tokens_in, stats.tokens_out)
    if price is not None:
        lines.insert(2, f"estimated cost: ${price:.2f} (this run: ${cost(cfg, stats.new_tokens_in, stats.new_tokens_out):.2f})")
    return "\n".join(lines)


def main(cfg: GenerateConfig, progress: bool = True) -> dict[str, Any]:
    """Run raft.generate; returns the counts (tests call it in-process)."""
    started = time.monotonic()
    validate(cfg)
    source = resolve_input(cfg.input)
    # a local teacher is loaded first: a model that cannot be downloaded is the first thing to say
    teacher = make_teacher(cfg.teacher) if cfg.teacher.backend != "openai" and not cfg.dry_run else None
    pool = load_pool(cfg, source)
    gc.freeze()  # the chunks and everything imported stay for the whole run: no garbage collection pass scans them again
    work = min(len(pool.chunks), cfg.limit or len(pool.chunks))
    out = Path(cfg.output)
    if cfg.dry_run:
        return dry_run(cfg, pool, work, out)
    check_fingerprint(out, fingerprint(cfg, source))
    recipe_path = save_config(cfg, out)
    teacher = teacher or make_teacher(cfg.teacher)
    with Store(out) as store:
        run = Run(cfg, pool, work, teacher, store, out)
        try:
            stats = asyncio.run(run.run(progress))
        except TeacherUnavailable as e:
            print(
                f"raft.generate: error: {e}; {len(store) + store.appended} teacher calls are stored in {out}: "
                "rerun the same command to resume",
                file=sys.stderr,
            )
            raise SystemExit(1) from None
    counts = finalize(run, out, cfg)
    (out / "README.md").write_text(dataset_card(cfg, teacher.describe(), stats, counts, pool.notes, recipe_path.read_text()))
    for note in pool.notes:
        print(note)
    print(summary(cfg, stats, counts, out, time.monotonic() - started))
    return {
        "chunks": stats.chunks,
        "questions": stats.questions,
        "accepted": stats.accepted,
        "rejected": dict(stats.rejected),
        "train": counts["train"],
        "test": counts["test"],
        "calls_new": stats.calls_new,
        "calls_stored": stats.calls_stored,
        "tokens_in": stats.tokens_in,
        "tokens_out": stats.tokens_out,
        "teacher_wall_s": stats.teacher_wall_s,
        "teacher_cpu_s": stats.teacher_cpu_s,
    }


if __name__ == "__main__":
    run_cli("generate", main)
