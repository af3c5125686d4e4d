"""The client actor of ``teacher.backend=ray_http`` (``raft.teacher.ray_http``): one process that asks
the endpoints with the ``openai`` backend's client, one ``OpenAITeacher`` per endpoint, and keeps
what finished until the driver collects it. Every outcome is a value (``OK`` and the reply,
``REJECTED`` and the refusal, ``DOWN`` and why the endpoint gave up), never a crashed task.
Imported by Ray in each worker process (the package must be installed there, or shipped with
``teacher.ray.runtime_env``)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from typing import Any
from urllib.parse import urlparse

from raft.config import TeacherConfig
from raft.teacher.base import Messages, TeacherRejected, TeacherUnavailable, one_line

OK, REJECTED, DOWN = 0, 1, 2
COLLECT_WAIT = 1.0  # seconds a worker holds a collect call open when nothing is finished


class HttpWorker:
    """One client process (a Ray actor): asks with one ``OpenAITeacher`` per endpoint and keeps the
    finished requests until the driver collects them."""

    def __init__(self, cfg: TeacherConfig, urls: list[str]):
        self.cfg, self.urls = cfg, list(urls)
        self.clients: dict[str, Any] = {}
        self.retired: list[Any] = []  # clients that gave up (their in-flight requests finish on them)
        self.done: list[tuple[int, int, Any]] = []
        self.tasks: set[asyncio.Task] = set()
        self._event: asyncio.Event | None = None

    def pid(self) -> int:
        return os.getpid()

    def _ready(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def _client(self, url: str) -> Any:
        client = self.clients.get(url)
        if client is None:
            from raft.teacher.openai_api import OpenAITeacher

            client = self.clients[url] = OpenAITeacher(dataclasses.replace(self.cfg, base_url=url))
        return client

    async def probe(self, timeout: float) -> list[str]:
        """Per endpoint, '' when it accepts a TCP connection, else why not."""

        async def one(url: str) -> str:
            parsed = urlparse(url)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(parsed.hostname, port), timeout)
            except (OSError, TimeoutError) as e:
                return one_line(getattr(e, "strerror", None) or f"no answer in {timeout:g}s", 120)
            writer.close()
            return ""

        return list(await asyncio.gather(*(one(u) for u in self.urls)))

    async def submit(self, requests: list[tuple[int, str, Messages, dict | None]]) -> None:
        for rid, url, messages, response_format in requests:
            task = asyncio.create_task(self._one(rid, url, messages, response_format))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _one(self, rid: int, url: str, messages: Messages, response_format: dict | None) -> None:
        client = self._client(url)
        try:
            reply = await client.ask(messages, response_format)
            out = (rid, OK, (reply.text, reply.prompt_tokens, reply.completion_tokens, reply.finish_reason))
        except TeacherRejected as e:
            out = (rid, REJECTED, str(e))
        except TeacherUnavailable as e:  # this client stays down: the next request to the endpoint gets a new one
            if self.clients.get(url) is client:
                self.retired.append(self.clients.pop(url))
            out = (rid, DOWN, str(e))
        except Exception as e:  # noqa: BLE001 - a value for the driver, never a crashed actor
            out = (rid, DOWN, f"teacher at {url}: {type(e).__name__}: {one_line(e, 160)}")
        self.done.append(out)
        self._ready().set()

    async def collect(self, wait: float) -> list[tuple[int, int, Any]]:
        """Every request finished since the last call; waits up to ``wait`` seconds for one."""
        if not self.done:
            try:
                await asyncio.wait_for(self._ready().wait(), wait)
            except TimeoutError:
                pass
        out, self.done = self.done, []
        self._ready().clear()
        return out
