"""The shared generation pipeline: drives a kind's work items against the teacher, through the store.

``Run`` knows nothing of any kind of data. It hands a kind (``raft.kinds``) three things:

- ``await run.call(messages, tag)``: one teacher call, answered from the run store when it was
  made before (a resumed run asks nothing twice), else asked and stored as soon as it finishes;
  a request the teacher refuses comes back as its one-line reason (a ``str``);
- ``run.keep(row, dedup_key)``: an accepted row; of rows with the same key only the smallest id is
  kept (the others are rejected as ``duplicate``), whatever order they come in;
- ``run.reject(record)``: a rejected row, ``{"id", "reason", ...}``, counted by reason.

Work items run on ``2 x teacher.parallelism`` asyncio workers, so ``teacher.concurrency`` requests
are in flight from the first second and the teacher stays busy; a work item's later calls are
asked as soon as its earlier replies arrive. The progress bar shows items, rows/s, accepted,
rejected and tokens/s; ``Stats`` keeps the counts and the teacher phase's own time.

Memory does not grow with the number of rows beyond a small index per row: accepted rows and
rejects are streamed to work files in the output folder (``Spool``) as they come; only the row
kept for each dedup key and the byte offsets of both stay in memory (raft.generate.output copies
them out at the end).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.store import Store, teacher_key
from raft.teacher import Teacher, TeacherError, TeacherRejected, TeacherUnavailable

ROWS_PARTIAL = ".rows.partial.jsonl"
REJECTS_PARTIAL = ".rejects.partial.jsonl"


@dataclass
class Stats:
    items: int
    items_done: int = 0
    counts: Counter = field(default_factory=Counter)  # the kind's own counts (e.g. questions)
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

    def copy(self, spans, path: Path, transform=None) -> None:
        """Write the lines at ``spans`` ((offset, length) pairs) to ``path``, atomically; with
        ``transform``, each row goes through it (read, changed, written again) instead."""
        tmp = path.with_name(path.name + ".tmp")
        with self.path.open("rb") as f, tmp.open("wb") as out:
            fd = f.fileno()
            for offset, length in spans:
                line = os.pread(fd, length, offset)
                if transform is not None:
                    line = json.dumps(transform(json.loads(line)), ensure_ascii=False).encode("utf-8") + b"\n"
                out.write(line)
        os.replace(tmp, path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class Run:
    """One pass over a kind's first ``work`` items: teacher calls (or stored replies), rows, rejects."""

    def __init__(self, kind: Any, work: int, teacher: Teacher, store: Store | None, out: Path):
        self.kind, self.cfg, self.teacher, self.store = kind, kind.cfg, teacher, store
        self.work = work
        self.stats = Stats(items=work, counts=Counter(dict.fromkeys(kind.counters, 0)))
        # what stays in memory per row: the row kept for each dedup key (smallest id), where rows and rejects lie
        self.kept: dict[bytes, tuple[str, int, int]] = {}  # key digest -> (row id, offset, length) in rows
        self.rejected: list[tuple[str, str, int, int]] = []  # (row id, reason, offset, length) in rejects
        self.rows = Spool(out / ROWS_PARTIAL)
        self.rejects = Spool(out / REJECTS_PARTIAL)
        self._bar = None
        self._shown = 0.0

    # ------------------------------------------------------------------ what a kind calls
    async def call(self, messages: list[dict[str, str]], tag: str, response_format: dict | None = None):
        """The teacher's reply (``raft.teacher.Reply``, or the stored ``raft.store.Record``: both have
        text, token counts and finish_reason), or the one-line reason it refused the request."""
        key = teacher_key(messages, self.cfg.teacher, response_format)
        reply = self.store.get(key)
        if reply is not None:
            self.stats.calls_stored += 1
        else:
            try:
                reply = await self.teacher.ask(messages, response_format) if response_format else await self.teacher.ask(messages)
            except TeacherRejected as e:
                return str(e)
            self.store.put(key, tag, reply.text, reply.prompt_tokens, reply.completion_tokens, finish_reason=reply.finish_reason)
            self.stats.calls_new += 1
            self.stats.new_tokens_in += reply.prompt_tokens
            self.stats.new_tokens_out += reply.completion_tokens
        self.stats.tokens_in += reply.prompt_tokens
        self.stats.tokens_out += reply.completion_tokens
        return reply

    def count(self, name: str, n: int = 1) -> None:
        self.stats.counts[name] += n

    def reject(self, record: dict[str, Any]) -> None:
        self.stats.rejected[record["reason"]] += 1
        self.rejected.append((record["id"], record["reason"], *self.rejects.append(record)))

    def keep(self, row: dict[str, Any], dedup_key: str) -> None:
        """Write an accepted row; of rows with the same ``dedup_key`` only the smallest id is kept (the
        others are rejected as duplicates), whatever order they come in."""
        digest = hashlib.blake2b(dedup_key.encode("utf-8"), digest_size=16).digest()
        before = self.kept.get(digest)
        if before is not None and before[0] < row["id"]:
            self.reject(self.kind.as_reject(row, "duplicate"))
            return
        self.kept[digest] = (row["id"], *self.rows.append(row))
        if before is None:
            self.stats.accepted += 1
            return
        old = self.rows.read(*before[1:])  # the row it replaces is read back for its reject line
        self.reject(self.kind.as_reject(old, "duplicate"))

    # ------------------------------------------------------------------ driving
    def _progress(self) -> None:
        s, bar = self.stats, self._bar
        s.items_done += 1
        if bar is None:
            return
        bar.update(1)
        now = time.monotonic()
        if now - self._shown >= 0.5 or s.items_done == s.items:
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
                await self.kind.item(self, index)
                self._progress()

        self._bar = tqdm(total=self.work, unit=self.kind.unit, desc="raft.generate", mininterval=0.5, disable=not progress)
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
