"""The ``openai`` teacher backend: any OpenAI-compatible server (``vllm serve``), with bounded retries
(backoff with jitter, ``Retry-After``), malformed replies retried, refusals counted (see raft.teacher).

Plain aiohttp, not the ``openai`` SDK: one ``ClientSession`` per teacher (keep-alive connections, at
most ``teacher.concurrency``), the JSON body encoded once per request, the reply read with
``json.loads``. The SDK's request building and send path were most of the client's CPU time per call
(0.85 ms per call against a zero-latency server, 0.32 ms with this client: ``benchmarks/client_cpu.py``);
its retries were off already (ours are bounded and end in one line), and its typed objects unused.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import math
import os
import random
import time
from typing import Any

import aiohttp
from yarl import URL

from raft.config import TeacherConfig
from raft.teacher.base import Messages, Reply, Teacher, TeacherRejected, TeacherUnavailable, one_line

RETRY_STATUS = {408, 409, 429}
REJECT_STATUS = {400, 413, 422}
RETRY_AFTER_CAP = 60.0  # seconds: the longest Retry-After honoured (or retry_max_delay when that is longer)


class _Malformed(Exception):
    """An HTTP 200 whose body is no usable chat completion (retried like a 5xx)."""


class _Client:
    """POSTs JSON bytes to ``base_url`` + path over one aiohttp session: ``(status, headers, body)``;
    errors of the connection are aiohttp's. The session is made on first use in the running loop (again
    after ``close``, or in a new loop). The API key goes in the Authorization header only: it is in no
    repr and no message. No redirects are followed, no proxy is taken from the environment (as before)."""

    def __init__(self, base_url: str, api_key: str, timeout: float, limit: int):
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json", "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._limit = limit
        self._urls: dict[str, URL] = {}
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def api_key(self) -> str:
        return self._headers["Authorization"].removeprefix("Bearer ")

    def __repr__(self) -> str:
        return f"_Client({self.base_url!r})"

    async def post(self, path: str, content: bytes) -> tuple[int, Any, bytes]:
        session = self._session
        if session is None or session.closed or self._loop is not asyncio.get_running_loop():  # a new asyncio.run
            self._loop = asyncio.get_running_loop()
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit)
            session = self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout, connector=connector)
        url = self._urls.get(path) or self._urls.setdefault(path, URL(self.base_url + path))
        async with session.post(url, data=content, allow_redirects=False) as r:
            return r.status, r.headers, await r.read()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class OpenAITeacher(Teacher):
    def __init__(self, cfg: TeacherConfig):
        self.cfg = cfg
        self.name = f"{cfg.model} at {cfg.base_url}"
        self.parallelism = max(1, cfg.concurrency)
        self.client = _Client(cfg.base_url, os.environ.get(cfg.api_key_env) or "EMPTY", cfg.timeout, self.parallelism)
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down = ""  # set once a request gave up: the run is stopping
        self._refusals = 0  # requests refused in a row (any success resets it)
        self._jitter = random.Random()  # timing only: never affects what is generated

    def _delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cfg.retry_max_delay, self.cfg.retry_backoff * 2**attempt)
        delay = ceiling / 2 + self._jitter.uniform(0, ceiling / 2)
        if retry_after is not None:  # the server said how long to wait: at least that, within reason
            delay = max(delay, min(retry_after, max(self.cfg.retry_max_delay, RETRY_AFTER_CAP)))
        return delay

    def _refused(self, status: int, message: str) -> Exception:
        """TeacherRejected for this request, or TeacherUnavailable once max_refusals came in a row."""
        self._refusals += 1
        limit = self.cfg.max_refusals
        if not self._down and limit and self._refusals >= limit:
            self._down = (
                f"the teacher at {self.cfg.base_url} refused {self._refusals} requests in a row "
                f"(HTTP {status}: {one_line(message, 160)}); check the teacher.* settings "
                "(model, max_tokens, seed: teacher.seed=null sends none)"
            )
        if self._down:
            return TeacherUnavailable(self._down)
        return TeacherRejected(f"{status} {one_line(message)}")

    async def ask(self, messages: Messages, response_format: dict[str, Any] | None = None) -> Reply:
        if self._loop is not asyncio.get_running_loop():  # first call, or a new asyncio.run
            self._loop, self._slots = asyncio.get_running_loop(), asyncio.Semaphore(self.parallelism)
        cfg = self.cfg
        body = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        if response_format is not None:  # structured output: vLLM's guided decoding, OpenAI's json_schema mode
            body["response_format"] = response_format
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()  # once, also for retries
        last = ""
        async with self._slots:
            if self._down:  # another request already gave up: ask nothing more
                raise TeacherUnavailable(self._down)
            for attempt in range(cfg.max_retries + 1):
                retry_after = None
                try:
                    status, headers, data = await self.client.post("/chat/completions", content)
                except aiohttp.ClientConnectorError as e:  # refused, unreachable, DNS
                    last = f"connection error ({one_line(e)})"
                except aiohttp.ConnectionTimeoutError:
                    last = f"connection error (no connection within {cfg.timeout:g}s)"
                except TimeoutError:
                    last = f"timed out after {cfg.timeout:g}s"
                except aiohttp.ClientError as e:  # dropped connection, broken reply
                    last = f"connection error ({one_line(str(e) or type(e).__name__)})"
                else:
                    if 200 <= status < 300:
                        try:
                            reply = _reply_from(json.loads(data))
                        except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
                            last = f"malformed reply (HTTP {status}, body is not JSON)"
                        except _Malformed as e:
                            last = f"malformed reply (HTTP {status}, {e})"
                        else:
                            self._refusals = 0
                            return reply
                    else:
                        message = _server_message(data)
                        if status in REJECT_STATUS:
                            raise self._refused(status, message) from None
                        if status not in RETRY_STATUS and status < 500:
                            self._down = f"teacher at {cfg.base_url} refused the request: {status} {one_line(message)}"
                            raise TeacherUnavailable(self._down) from None
                        last = f"{status} {one_line(message)}"
                        retry_after = _retry_after(headers)
                if attempt < cfg.max_retries:
                    await asyncio.sleep(self._delay(attempt, retry_after))
        self._down = f"teacher at {cfg.base_url} failed after {cfg.max_retries} retries: {last}"
        raise TeacherUnavailable(self._down)

    async def aclose(self) -> None:
        await self.client.close()


def _reply_from(response: Any) -> Reply:
    """Reply text, usage and finish reason of a chat-completion JSON body.

    A body that is no chat completion (not a JSON object, no or empty ``choices``, no ``message``,
    ``content`` null or missing) raises ``_Malformed``: it is retried, never stored as an empty reply.
    Content "" is an answer (a bad one), and so is null content cut off at max_tokens (a reasoning
    model that spent every token thinking): "" with finish_reason "length".
    """
    if not isinstance(response, dict):
        raise _Malformed("body is not a JSON object")
    choices = response.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _Malformed("no choices")
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _Malformed("no message")
    finish = choice.get("finish_reason")
    finish = finish if isinstance(finish, str) and finish else "stop"
    text = message.get("content")
    if text is None and finish == "length":
        text = ""
    if not isinstance(text, str):
        raise _Malformed("no message content")
    usage = response.get("usage") if isinstance(response.get("usage"), dict) else {}
    return Reply(text, _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens")), finish)


def _count(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError, OverflowError):
        return 0


def _server_message(data: bytes) -> str:
    """The server's own message in an error body (``{"error": {"message"}}``, ``{"error": "..."}``, or
    vLLM's ``{"message"}``), else the body as text; one line."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        body = None
    error = body.get("error", body) if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    if not isinstance(message, str) or not message.strip():
        message = data.decode("utf-8", "replace") if body is None else json.dumps(body, ensure_ascii=False)
    return one_line(message) or "(empty body)"


def _retry_after(headers: Any) -> float | None:
    """Seconds to wait that a response's ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)
    asks for; None when it asks nothing readable."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        value = headers.get("retry-after")
    except Exception:  # noqa: BLE001 - headers of an unexpected type: no wish to honour
        return None
    try:
        seconds = float(ms) / 1000 if ms else None
    except ValueError:
        seconds = None
    if seconds is None and value:
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
            if when.tzinfo is None:  # "-0000": UTC as well
                when = when.replace(tzinfo=datetime.UTC)
            seconds = when.timestamp() - time.time()
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
