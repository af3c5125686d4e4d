"""Teacher backends (raft.teacher) against the local OpenAI-compatible server and the tiny model."""

from __future__ import annotations

import asyncio
import importlib.util
import socket

import pytest

from raft.config import TeacherConfig
from raft.prompts import answer_messages, question_messages
from raft.teacher import TeacherError, TeacherRejected, TeacherUnavailable, make_teacher
from raft.testing import TeacherBehaviour

CHUNK = "The Saltmere ferry leaves Quay Street at 06:40 and the last one leaves Tollan at 22:15 every day."


def _cfg(teacher, **kw) -> TeacherConfig:
    base = {"base_url": teacher.base_url, "model": "fake", "retry_backoff": 0.01, "retry_max_delay": 0.05, "max_retries": 3}
    return TeacherConfig(**{**base, **kw})


def _complete(cfg: TeacherConfig, batch):
    async def go():
        t = make_teacher(cfg)
        try:
            return await t.complete(batch)
        finally:
            await t.aclose()

    return asyncio.run(go())


def test_openai_backend_answers_in_order_with_usage(teacher):
    batch = [question_messages(CHUNK, 1), answer_messages("Which words follow «Quay Street at» in the text?", [CHUNK])]
    replies = _complete(_cfg(teacher, concurrency=2), batch)
    assert replies[0].text.startswith("1. Which words follow")
    assert "<ANSWER>: 06:40 and the" in replies[1].text
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 for r in replies)
    assert teacher.stats.requests == 2


@pytest.mark.parametrize("status", [429, 500, 503])
def test_openai_backend_retries_until_the_server_recovers(teacher, status):
    teacher.reset(TeacherBehaviour(fail_first=4, fail_status=status))
    replies = _complete(_cfg(teacher, concurrency=2, max_retries=5), [question_messages(CHUNK, 1)] * 3)
    assert all(r.text.startswith("1. Which words") for r in replies)
    assert teacher.stats.requests == 3 + 4 and teacher.stats.failed == 4


def test_openai_backend_gives_up_after_bounded_retries_with_one_line(teacher):
    teacher.reset(TeacherBehaviour(fail_always=True, fail_status=500))
    with pytest.raises(TeacherUnavailable) as e:
        _complete(_cfg(teacher, max_retries=2, concurrency=1), [question_messages(CHUNK, 1)])
    assert str(e.value).startswith(f"teacher at {teacher.base_url} failed after 2 retries: 500")
    assert "\n" not in str(e.value)
    assert teacher.stats.requests == 3


def test_openai_backend_times_out_and_gives_up(teacher):
    teacher.reset(TeacherBehaviour(hang=True))
    with pytest.raises(TeacherUnavailable, match=r"failed after 1 retries: timed out after 0.3s"):
        _complete(_cfg(teacher, max_retries=1, timeout=0.3), [question_messages(CHUNK, 1)])
    assert teacher.stats.requests == 2


def test_openai_backend_connection_refused():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = TeacherConfig(base_url=f"http://127.0.0.1:{port}/v1", retry_backoff=0.01, max_retries=1)
    with pytest.raises(TeacherUnavailable, match="failed after 1 retries: connection error"):
        _complete(cfg, [question_messages(CHUNK, 1)])


def test_openai_backend_refusals(teacher):
    teacher.reset(TeacherBehaviour(fail_always=True, fail_status=400))
    with pytest.raises(TeacherRejected, match="400"):
        _complete(_cfg(teacher), [question_messages(CHUNK, 1)])
    assert teacher.stats.requests == 1  # a bad request is not retried
    teacher.reset(TeacherBehaviour(fail_always=True, fail_status=401))
    with pytest.raises(TeacherUnavailable, match="refused the request: 401"):
        _complete(_cfg(teacher), [question_messages(CHUNK, 1)])


def test_concurrency_limit_is_respected(teacher):
    teacher.reset(TeacherBehaviour(latency=0.2, capacity=None))
    seen = []

    async def go():
        t = make_teacher(_cfg(teacher, concurrency=3))
        original = t.client.post

        async def counting_post(*a, **kw):
            seen.append(t._slots._value)  # free slots when a request goes out
            return await original(*a, **kw)

        t.client.post = counting_post
        try:
            return await t.complete([question_messages(f"{CHUNK} {i}", 1) for i in range(9)])
        finally:
            await t.aclose()

    assert len(asyncio.run(go())) == 9
    assert min(seen) == 0 and len(seen) == 9  # three in flight at once, never more (a Semaphore(3))


def test_transformers_backend_with_the_tiny_model(tiny_model):
    cfg = TeacherConfig(backend="transformers", model=str(tiny_model), max_tokens=12, batch_size=2)
    replies = _complete(cfg, [question_messages(CHUNK, 1), answer_messages("What?", [CHUNK]), question_messages("x", 2)])
    assert len(replies) == 3
    assert all(isinstance(r.text, str) and r.prompt_tokens > 0 and 0 < r.completion_tokens <= 12 for r in replies)


def test_transformers_backend_offline_hub_id_fails_in_one_line():
    cfg = TeacherConfig(backend="transformers", model="Qwen/Qwen2.5-0.5B-Instruct")
    with pytest.raises(TeacherError, match="could not be downloaded") as e:
        make_teacher(cfg)
    assert "\n" not in str(e.value)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here: the missing-package message cannot be shown")
def test_vllm_backend_without_vllm_says_how_to_install():
    with pytest.raises(TeacherError, match=r"needs the vllm package.*pip install"):
        make_teacher(TeacherConfig(backend="vllm"))


def test_unknown_backend():
    with pytest.raises(TeacherError, match="not one of openai, vllm, transformers"):
        make_teacher(TeacherConfig(backend="ollama"))


def test_api_key_comes_from_the_named_environment_variable(teacher, monkeypatch):
    monkeypatch.setenv("RAFT_TEST_KEY", "sk-from-env")
    assert make_teacher(_cfg(teacher, api_key_env="RAFT_TEST_KEY")).client.api_key == "sk-from-env"
    monkeypatch.delenv("RAFT_TEST_KEY")
    assert make_teacher(_cfg(teacher, api_key_env="RAFT_TEST_KEY")).client.api_key == "EMPTY"  # vLLM takes any key
