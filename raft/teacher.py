"""Teacher backends: the model that writes questions and chain-of-thought answers for raft.generate.

All backends share one asynchronous interface::

    teacher = make_teacher(cfg.teacher)          # TeacherConfig from raft.config
    replies = await teacher.complete([messages_1, messages_2, ...])   # list[Reply], same order
    reply = await teacher.ask(messages)          # one request (what the generate pipeline uses)
    await teacher.aclose()

- ``openai``: any OpenAI-compatible server (``vllm serve MODEL`` listens on http://localhost:8000/v1).
  ``teacher.concurrency`` requests in flight (an ``asyncio.Semaphore``), a per-request timeout, and
  retries with exponential backoff and jitter on 429, 5xx, timeouts, connection errors and malformed
  HTTP 200 replies (not JSON, no choices, no message content: never stored as an empty reply); a
  ``Retry-After`` header (seconds or an HTTP date) makes the wait at least that long, up to
  ``max(teacher.retry_max_delay, 60 s)``. The API key comes from the environment variable named by
  ``teacher.api_key_env`` ("EMPTY" when unset: vLLM accepts any key); it is never printed, logged or
  stored. A request that still fails after ``teacher.max_retries`` retries raises
  ``TeacherUnavailable`` with a one-line message. A refused request (HTTP 400/413/422, e.g. a prompt
  longer than the context) raises ``TeacherRejected`` for that request only, but after
  ``teacher.max_refusals`` refusals in a row (a success resets the count) the teacher is taken to
  refuse everything (an unsupported parameter, a wrong model name): ``TeacherUnavailable`` names the
  status and the server's message, and the run stops.
- ``vllm``: the offline ``vllm.LLM`` engine (optional extra, imported lazily); prompts are batched.
- ``transformers``: a local model generating with its chat template, ``teacher.batch_size`` prompts
  per ``generate()`` call; for small runs on any machine (the tests use the tiny random model).

Every reply says why it ended: ``Reply.finish_reason`` is "length" when the teacher hit
``teacher.max_tokens`` (the text is cut off), else what the server said ("stop" normally).
``teacher.seed`` (when not null) goes to every backend: the ``seed`` field of the request body
(vLLM and OpenAI accept it), ``SamplingParams(seed=...)``, or ``torch.manual_seed`` before each
sampled ``generate()`` call.

The two local backends collect concurrent ``ask`` calls into batches, so the same pipeline drives
every backend.
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
from dataclasses import dataclass
from typing import Any

from raft.config import ConfigError, TeacherConfig

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


def _one_line(text: Any, limit: int = 200) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class Teacher:
    """Base class: ``complete`` runs a batch through ``ask``; subclasses implement ``ask``."""

    name = "teacher"
    parallelism = 1  # requests the pipeline should keep waiting on this teacher

    async def ask(self, messages: Messages) -> Reply:
        raise NotImplementedError

    async def complete(self, batch: list[Messages]) -> list[Reply]:
        return list(await asyncio.gather(*(self.ask(m) for m in batch)))

    async def aclose(self) -> None:
        pass

    def describe(self) -> str:
        return self.name


# --------------------------------------------------------------------------------------------------
# openai: any OpenAI-compatible server
# --------------------------------------------------------------------------------------------------

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

    async def ask(self, messages: Messages) -> Reply:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.parallelism)
        openai, cfg = self._openai, self.cfg
        # the JSON body, encoded once (also for retries): the SDK sends bytes as they are, without its own
        # deep copy and encoding of the messages
        body = {"model": cfg.model, "messages": messages, "temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
        if cfg.seed is not None:
            body["seed"] = cfg.seed
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


# --------------------------------------------------------------------------------------------------
# local backends: concurrent ask() calls are gathered into batches, run in a worker thread
# --------------------------------------------------------------------------------------------------


class BatchTeacher(Teacher):
    max_batch = 8

    def __init__(self) -> None:
        self._pending: list[tuple[Messages, asyncio.Future]] = []
        self._runner: asyncio.Task | None = None

    def generate(self, batch: list[Messages]) -> list[Reply]:
        raise NotImplementedError

    async def ask(self, messages: Messages) -> Reply:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((messages, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # let every coroutine that is ready queue its request first
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    replies = await asyncio.to_thread(self.generate, [m for m, _ in batch])
                except Exception as e:  # noqa: BLE001 - handed to every waiting caller
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(e)
                    continue
                for (_, future), reply in zip(batch, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
        finally:
            self._runner = None


class TransformersTeacher(BatchTeacher):
    def __init__(self, cfg: TeacherConfig):
        super().__init__()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.name = f"{cfg.model} (transformers, local)"
        self.max_batch = max(1, cfg.batch_size)
        self.parallelism = self.max_batch
        self._torch = torch
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(cfg.model)
            device = "cuda" if torch.cuda.is_available() else "cpu"
            self.model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype="auto").to(device).eval()
        except (OSError, ValueError) as e:
            raise TeacherError(
                f"teacher model '{cfg.model}' could not be loaded: not found locally and could not be downloaded "
                f"({_one_line(e, 160)})"
            ) from None
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not getattr(self.tokenizer, "chat_template", None):
            raise TeacherError(f"teacher model '{cfg.model}' has no chat template; use an instruct model")

    def generate(self, batch: list[Messages]) -> list[Reply]:
        tok, torch = self.tokenizer, self._torch
        texts = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in batch]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
        kwargs: dict[str, Any] = {"max_new_tokens": self.cfg.max_tokens, "pad_token_id": tok.pad_token_id}
        if self.cfg.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.cfg.temperature)
            if self.cfg.seed is not None:
                torch.manual_seed(self.cfg.seed)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        stops = {tok.pad_token_id, tok.eos_token_id, *(_as_list(self.model.generation_config.eos_token_id))}
        replies = []
        for row, mask in zip(new.tolist(), enc["attention_mask"].tolist(), strict=True):
            n = next((i for i, t in enumerate(row) if t in stops), len(row))
            finish = "length" if n == len(row) >= self.cfg.max_tokens else "stop"  # no stop token: cut at max_tokens
            replies.append(Reply(tok.decode(row[:n], skip_special_tokens=True), int(sum(mask)), n, finish))
        return replies


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


class VLLMTeacher(BatchTeacher):
    def __init__(self, cfg: TeacherConfig):
        super().__init__()
        try:
            import vllm
        except ImportError:
            raise TeacherError(
                "teacher.backend=vllm needs the vllm package, which is not installed: pip install 'raft-recipes[vllm]' "
                "on a CUDA machine, or run `vllm serve MODEL` and use teacher.backend=openai"
            ) from None
        self.cfg = cfg
        self.name = f"{cfg.model} (vllm offline engine)"
        self.max_batch = 1_000_000  # the engine schedules a whole batch itself
        self.parallelism = 4096
        self.llm = vllm.LLM(model=cfg.model, tensor_parallel_size=cfg.tensor_parallel_size)
        self.params = vllm.SamplingParams(temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed)

    def generate(self, batch: list[Messages]) -> list[Reply]:
        outputs = self.llm.chat(batch, self.params, use_tqdm=False)
        return [_vllm_reply(o) for o in outputs]


def _vllm_reply(output: Any) -> Reply:
    """Reply of one ``vllm.RequestOutput``: finish_reason "length" when it stopped at max_tokens."""
    prompt_tokens = len(output.prompt_token_ids or [])
    if not output.outputs:
        return Reply("", prompt_tokens, 0)
    first = output.outputs[0]
    finish = "length" if first.finish_reason == "length" else "stop"
    return Reply(first.text, prompt_tokens, len(first.token_ids), finish)


BACKENDS = {"openai": OpenAITeacher, "vllm": VLLMTeacher, "transformers": TransformersTeacher}


def make_teacher(cfg: TeacherConfig) -> Teacher:
    """The backend named by ``cfg.backend``; TeacherError (one line) when it cannot be set up."""
    if cfg.backend not in BACKENDS:
        raise TeacherError(f"teacher.backend={cfg.backend!r} is not one of {', '.join(BACKENDS)}")
    return BACKENDS[cfg.backend](cfg)
