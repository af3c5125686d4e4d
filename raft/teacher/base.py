"""What every teacher backend shares: the ``Teacher`` base class, ``Reply``, the errors and ``one_line``.

It imports no other teacher module, so the backends (``raft.teacher.openai_api``, ``raft.teacher.local``,
``raft.teacher.ray_*``) import from here and ``raft.teacher`` re-exports these names.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from raft.config import ConfigError

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class Reply:
    """One finished teacher call: the reply text, the token usage the backend reported and why it ended
    ("length": cut off at max_tokens; "stop" or another server reason otherwise)."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"


class TeacherError(ConfigError):
    """The teacher cannot be set up (missing package, model not found): one line, exit status 2."""


class TeacherUnavailable(RuntimeError):
    """The teacher stopped answering (retries exhausted, or it refused every request): one line."""


class TeacherRejected(Exception):
    """The teacher refused this one request (HTTP 400/413/422, e.g. a prompt longer than its context)."""


def one_line(text: Any, limit: int = 200) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters with "..."."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class Teacher:
    """Base class: ``complete`` runs a batch through ``ask``; subclasses implement ``ask``."""

    name = "teacher"
    parallelism = 1  # requests the pipeline should keep waiting on this teacher

    async def ask(self, messages: Messages, response_format: dict[str, Any] | None = None) -> Reply:
        """One reply; ``response_format`` (``{"type": "json_schema", ...}``) asks for structured output."""
        raise NotImplementedError

    async def complete(self, batch: list[Messages]) -> list[Reply]:
        return list(await asyncio.gather(*(self.ask(m) for m in batch)))

    async def aclose(self) -> None:
        pass

    def describe(self) -> str:
        return self.name
