"""The run store of raft.generate: every finished teacher call, and the run's fingerprint.

``OUT/store.jsonl`` is append-only: one line per finished teacher call,
``{"key", "kind", "text", "prompt_tokens", "completion_tokens"}``, where ``key`` is a hash of the
request (model, messages, temperature, max_tokens). Each line goes to the file in one ``write``
as soon as the call finishes, so a killed process (SIGKILL included) loses at most the calls in
flight; the file is also fsync'd every second and on close, against a machine crash. A last line
cut off mid-write is dropped when the store is opened. A rerun finds every stored call here and
asks the teacher only for the rest.

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


def request_key(messages: list[dict[str, str]], model: str, temperature: float, max_tokens: int) -> str:
    """Stable hash of one teacher request (what decides the reply)."""
    payload = json.dumps(
        {"model": model, "messages": messages, "temperature": temperature, "max_tokens": max_tokens},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Record:
    text: str
    prompt_tokens: int
    completion_tokens: int


class Store:
    """Append-only JSONL store of finished teacher calls, opened on ``folder``."""

    FSYNC_EVERY = 1.0  # seconds

    def __init__(self, folder: str | Path, readonly: bool = False):
        self.path = Path(folder) / STORE_NAME
        self.readonly = readonly
        self.records: dict[str, Record] = {}
        self.dropped_lines = 0
        self._fd = -1
        self._load()
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._synced = time.monotonic()
        self.appended = 0

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a line cut off by a kill mid-write: drop it so appends start clean
            if not self.readonly:
                with self.path.open("r+b") as f:
                    f.truncate(end)
            self.dropped_lines += 1
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                self.records[row["key"]] = Record(row["text"], int(row.get("prompt_tokens", 0)), int(row.get("completion_tokens", 0)))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                self.dropped_lines += 1

    def __len__(self) -> int:
        return len(self.records)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def get(self, key: str) -> Record | None:
        return self.records.get(key)

    def put(self, key: str, kind: str, text: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        """Append one finished call (one write; fsync at most once a second)."""
        line = json.dumps(
            {"key": key, "kind": kind, "text": text, "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
            ensure_ascii=False,
        )
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

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


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
        changed = [k for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k)]
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
