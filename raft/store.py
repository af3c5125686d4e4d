"""The run store of raft.generate: every finished teacher call, and the run's fingerprint.

``OUT/store.jsonl`` is append-only: one line per finished teacher call,
``{"key", "kind", "text", "prompt_tokens", "completion_tokens"}``, where ``key`` is a hash of the
request (model, messages, temperature, max_tokens, and ``teacher.seed`` when one is sent). A reply
that did not end normally also has ``"finish_reason"`` (``"length"``: cut off at max_tokens); a
line without it reads as ``"stop"``, so a store written before the field existed reads as before
and a resumed run knows which stored replies were truncated. Each line goes to the file in one
``write`` as soon as the call finishes, so a killed process (SIGKILL included) loses at most the
calls in flight; the file is also fsync'd every second and on close, against a machine crash. A last line
cut off mid-write is dropped when the store is opened. A rerun finds every stored call here and
asks the teacher only for the rest.

Memory stays small however large the store: opening it reads the file line by line and keeps only
``key -> (offset, length)``; ``get`` reads that one line back from the file. Calls stored during
this run are written, not kept (each request is asked once per run).

``OUT/run.json`` holds the fingerprint of the settings that change results. A rerun in the same
folder with a different fingerprint is refused with a one-line message naming the settings, so
stored results are never silently mixed. Settings that do not change results (limit, dry_run,
concurrency, base_url, output) are not part of it: raising ``limit`` continues a run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raft.config import ConfigError

STORE_NAME = "store.jsonl"
FINGERPRINT_NAME = "run.json"


def request_key(
    messages: list[dict[str, str]], model: str, temperature: float, max_tokens: int, seed: int | None = None,
    response_format: dict | None = None,
) -> str:
    """Stable hash of one teacher request (what decides the reply).

    ``seed`` (``teacher.seed``) changes sampled replies, so it is part of the key when one is sent;
    ``seed=None`` gives the key a request had before seeds existed.
    """
    request: dict[str, object] = {"model": model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens}
    if seed is not None:
        request["seed"] = seed
    if response_format is not None:  # a structured-output request is another request
        request["response_format"] = response_format
    payload = json.dumps(
        request,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def teacher_key(messages: list[dict[str, str]], teacher: Any, response_format: dict | None = None) -> str:
    """``request_key`` of a request made with the settings of ``teacher`` (a TeacherConfig)."""
    return request_key(messages, teacher.model, teacher.temperature, teacher.max_tokens, seed=teacher.seed,
                       response_format=response_format)


@dataclass(frozen=True)
class Record:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"  # "length": the stored reply was cut off at max_tokens


class Store:
    """Append-only JSONL store of finished teacher calls, opened on ``folder``."""

    FSYNC_EVERY = 1.0  # seconds

    def __init__(self, folder: str | Path, readonly: bool = False):
        self.path = Path(folder) / STORE_NAME
        self.readonly = readonly
        self.records: dict[str, tuple[int, int]] = {}  # key -> (offset, length) of its line in the file
        self.dropped_lines = 0
        self._fd = -1
        self._read_fd = -1
        self._load()
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._synced = time.monotonic()
        self.appended = 0

    def _load(self) -> None:
        if not self.path.exists():
            return
        offset = 0
        with self.path.open("rb") as f:
            for line in f:
                if not line.endswith(b"\n"):  # a line cut off by a kill mid-write: drop it so appends start clean
                    if not self.readonly:
                        with self.path.open("r+b") as w:
                            w.truncate(offset)
                    self.dropped_lines += 1
                    break
                if line.strip():
                    parsed = _parse(line)
                    if parsed is None:
                        self.dropped_lines += 1
                    else:
                        self.records[parsed[0]] = (offset, len(line))
                offset += len(line)

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> Record | None:
        """The stored reply of a request (read back from the file), or None."""
        where = self.records.get(key)
        if where is None:
            return None
        if self._read_fd < 0:
            self._read_fd = os.open(self.path, os.O_RDONLY)
        parsed = _parse(os.pread(self._read_fd, where[1], where[0]))
        return parsed[1] if parsed else None

    def put(
        self, key: str, kind: str, text: str, prompt_tokens: int = 0, completion_tokens: int = 0, finish_reason: str = "stop"
    ) -> None:
        """Append one finished call (one write; fsync at most once a second)."""
        row = {"key": key, "kind": kind, "text": text, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        if finish_reason != "stop":  # the usual case leaves lines as they always were
            row["finish_reason"] = finish_reason
        line = json.dumps(row, ensure_ascii=False)
        os.write(self._fd, (line + "\n").encode("utf-8"))
        self.appended += 1
        now = time.monotonic()
        if now - self._synced >= self.FSYNC_EVERY:
            os.fsync(self._fd)
            self._synced = now

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._read_fd >= 0:
            os.close(self._read_fd)
            self._read_fd = -1

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _parse(line: bytes) -> tuple[str, Record] | None:
    """(key, record) of one store line; None when it is not a valid record."""
    try:
        row = json.loads(line)
        finish = row.get("finish_reason") or "stop"
        if not isinstance(finish, str):
            return None
        return row["key"], Record(row["text"], int(row.get("prompt_tokens", 0)), int(row.get("completion_tokens", 0)), finish)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError):
        return None


def check_fingerprint(folder: str | Path, fingerprint: dict[str, Any]) -> None:
    """Write ``run.json`` for a new run; refuse (ConfigError) a folder whose run had other settings."""
    folder = Path(folder)
    path = folder / FINGERPRINT_NAME
    current = json.loads(json.dumps(fingerprint))  # the JSON form, as it would be read back
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError) as e:
            raise ConfigError(f"{path}: unreadable run fingerprint ({type(e).__name__}); choose another output folder") from None
        # a setting a kind no longer records (e.g. eval_questions of a bio_needle or in2 run, recorded by
        # every kind before it moved to raft.eval_questions) that was left empty changes nothing
        gone = {k for k in set(stored) - set(current) if stored[k] in ("", None)}
        changed = [k for k in sorted((set(stored) | set(current)) - gone) if stored.get(k) != current.get(k)]
        if changed:
            what = ", ".join(f"{k}={current.get(k)!r} (stored run: {stored.get(k)!r})" for k in changed)
            raise ConfigError(
                f"output folder {folder} holds a run with other settings: {what}; "
                "choose another output folder (output=...) or delete this one"
            )
        return
    if (folder / STORE_NAME).exists():
        raise ConfigError(f"{folder} has a run store but no {FINGERPRINT_NAME}; choose another output folder")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
