"""The ``openai`` teacher backend: any OpenAI-compatible server (``vllm serve``), with bounded retries
(backoff with jitter, ``Retry-After``), malformed replies retried, refusals counted (see raft.teacher)."""

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

from raft.config import TeacherConfig
from raft.teacher import Messages, Reply, Teacher, TeacherRejected, TeacherUnavailable, _one_line

RETRY_STATUS = {408, 409, 429}
REJECT_STATUS = {400, 413, 422}
RETRY_AFTER_CAP = 60.0  # seconds: the longest Retry-After honoured (or retry_max_delay when that is longer)


class _Malformed(Exception):
    """An HTTP 200 whose body is no usable chat completion (retried like a 5xx)."""


class OpenAITeacher(Teacher):
    def __init__(self, cfg: TeacherConfig):
        import openai

        self.cfg = cfg
        self.name = f"{cfg.model} at {cfg.base_url}"
        self.parallelism = max(1, cfg.concurrency)
        self._openai = openai
        api_key = os.environ.get(cfg.api_key_env) or "EMPTY"
        try:  # aiohttp transport: a third of httpx's CPU time per request
            http_client = openai.DefaultAioHttpClient(timeout=cfg.timeout)
        except RuntimeError:  # aiohttp not installed
            http_client = None
        # retries are ours (bounded, with the one-line final error), so the client's are off
        self.client = openai.AsyncOpenAI(
            base_url=cfg.base_url, api_key=api_key, timeout=cfg.timeout, max_retries=0, http_client=http_client
        )
        self._slots: asyncio.Semaphore | None = None
        self._down = ""  # set once a request gave up: the run is stopping
        self._refusals = 0  # requests refused in a row (any success resets it)
        self._jitter = random.Random()  # timing only: never affects what is generated

    def _delay(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.cfg.retry_max_delay, self.cfg.retry_backoff * 2**attempt)
        delay = ceiling / 2 + self._jitter.uniform(0, ceiling / 2)
        if retry_after is not None:  # the server said how long to wait: at least that, within reason
            delay = max(delay, min(retry_after, max(self.cfg.retry_max_delay, RETRY_AFTER_CAP)))
        return delay

    def _refused(self, status: int, error: Any) -> Exception:
        """TeacherRejected for this request, or TeacherUnavailable once max_refusals came in a row."""
        self._refusals += 1
        limit = self.cfg.max_refusals
        if not self._down and limit and self._refusals >= limit:
            self._down = (
                f"the teacher at {self.cfg.base_url} refused {self._refusals} requests in a row "
                f"(HTTP {status}: {_server_message(error)}); check the teacher.* settings "
                "(model, max_tokens, seed: teacher.seed=null sends none)"
            )
        if self._down:
            return TeacherUnavailable(self._down)
        return TeacherRejected(f"{status} {_one_line(getattr(error, 'message', error))}")

    async def ask(self, messages: Messages, response_format: dict[str, Any] | None = None) -> Reply:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.parallelism)
        openai, cfg = self._openai, self.cfg
        # the JSON body, encoded once (also for retries): the SDK sends bytes as they are, without its own
        # deep copy and encoding of the messages
        body = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        if response_format is not None:  # structured output: vLLM's guided decoding, OpenAI's json_schema mode
            body["response_format"] = response_format
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        last = ""
        async with self._slots:
            if self._down:  # another request already gave up: ask nothing more
                raise TeacherUnavailable(self._down)
            for attempt in range(cfg.max_retries + 1):
                retry_after = None
                try:
                    # the untyped post skips the SDK's request transform (most of its CPU time per call);
                    # errors, headers, base URL and timeouts are the SDK's as with chat.completions.create
                    r = await self.client.post("/chat/completions", content=content, cast_to=object)
                except openai.APITimeoutError as e:
                    cause = e.__cause__
                    if type(cause).__name__ in ("ConnectTimeout", "ConnectError"):  # the aiohttp transport's refusals
                        last = f"connection error ({_one_line(cause)})"
                    else:
                        last = f"timed out after {cfg.timeout:g}s"
                except openai.APIConnectionError as e:
                    last = f"connection error ({_one_line(e.__cause__ or e)})"
                except openai.APIStatusError as e:
                    status = e.status_code
                    message = _one_line(getattr(e, "message", e))
                    if status in REJECT_STATUS:
                        raise self._refused(status, e) from None
                    if status not in RETRY_STATUS and status < 500:
                        self._down = f"teacher at {cfg.base_url} refused the request: {status} {message}"
                        raise TeacherUnavailable(self._down) from None
                    last = f"{status} {message}"
                    retry_after = _retry_after(getattr(getattr(e, "response", None), "headers", None))
                except (json.JSONDecodeError, UnicodeDecodeError):  # a JSON content type around something else
                    last = "malformed reply (HTTP 200, body is not JSON)"
                else:
                    try:
                        reply = _reply_from(r)
                    except _Malformed as e:
                        last = f"malformed reply (HTTP 200, {e})"
                    else:
                        self._refusals = 0
                        return reply
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


def _server_message(error: Any) -> str:
    """The server's own error message (``{"error": {"message"}}``, or vLLM's ``{"message"}``), one line."""
    body = getattr(error, "body", None)
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        message = getattr(error, "message", None) or str(error)
    return _one_line(message, 160)


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
