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
- ``ray_http``: the ``openai`` client in Ray actors (``teacher.ray.workers``) against one or many
  endpoints (``teacher.base_url`` may be a list; ``teacher.concurrency`` in flight per endpoint), a
  request that one endpoint gave up on asked at another (``raft.teacher.ray_http``).
- ``ray_vllm``: vLLM replicas on a Ray cluster's GPUs through Ray Data's LLM batch API, each wave of
  concurrent calls one Ray Dataset (``raft.teacher.ray_vllm``). Both need ``pip install -e ".[ray]"``
  and join ``teacher.ray.address`` (``raft.teacher.ray_backend``: the design and its figures).

Every reply says why it ended: ``Reply.finish_reason`` is "length" when the teacher hit
``teacher.max_tokens`` (the text is cut off), else what the server said ("stop" normally).
``teacher.seed`` (when not null) goes to every backend: the ``seed`` field of the request body
(vLLM and OpenAI accept it), ``SamplingParams(seed=...)``, or ``torch.manual_seed`` before each
sampled ``generate()`` call.

The two local backends collect concurrent ``ask`` calls into batches, so the same pipeline drives
every backend. Modules: this one (``make_teacher``; it re-exports the names of ``raft.teacher.base``: the
interface, ``Reply``, the errors), ``raft.teacher.openai_api`` (the HTTP client with its retries),
``raft.teacher.local`` (vllm, transformers) and ``raft.teacher.ray_backend`` (ray_http, ray_vllm).
"""

from __future__ import annotations

import dataclasses

from raft.config import ConfigError, TeacherConfig
from raft.teacher.base import Messages, Reply, Teacher, TeacherError, TeacherRejected, TeacherUnavailable

__all__ = ["BACKENDS", "Messages", "Reply", "Teacher", "TeacherError", "TeacherRejected", "TeacherUnavailable",
           "make_teacher"]

BACKENDS = ("openai", "vllm", "transformers", "ray_http", "ray_vllm")


def make_teacher(cfg: TeacherConfig) -> Teacher:
    """The backend named by ``cfg.backend``; TeacherError (one line) when it cannot be set up."""
    if cfg.backend not in BACKENDS:
        raise TeacherError(f"teacher.backend={cfg.backend!r} is not one of {', '.join(BACKENDS)}")
    if cfg.backend.startswith("ray_"):
        from raft.teacher.ray_backend import check_settings

        check_settings(cfg)
        if cfg.backend == "ray_http":
            from raft.teacher.ray_http import RayHTTPTeacher

            return RayHTTPTeacher(cfg)
        from raft.teacher.ray_vllm import RayVLLMTeacher

        return RayVLLMTeacher(cfg)
    if cfg.backend == "openai":
        from raft.teacher.openai_api import OpenAITeacher

        if not isinstance(cfg.base_url, str):  # a list from the recipe: one endpoint is fine, more need ray_http
            from raft.teacher.ray_backend import endpoints

            urls = endpoints(cfg)
            if len(urls) > 1:
                raise ConfigError(f"teacher.base_url lists {len(urls)} endpoints; the openai backend talks to one: "
                                  "use teacher.backend=ray_http for many")
            cfg = dataclasses.replace(cfg, base_url=urls[0])
        return OpenAITeacher(cfg)
    from raft.teacher.local import TransformersTeacher, VLLMTeacher

    return (VLLMTeacher if cfg.backend == "vllm" else TransformersTeacher)(cfg)
