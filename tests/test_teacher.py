"""Teacher backends (raft.teacher) against the local OpenAI-compatible server and the tiny model."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import time
from types import SimpleNamespace

import pytest

from raft.config import TeacherConfig
from raft.prompts import answer_messages, question_messages
from raft.teacher import (
    Reply,
    TeacherError,
    TeacherRejected,
    TeacherUnavailable,
    make_teacher,
)
from raft.teacher.local import _vllm_reply
from raft.teacher.openai_api import _reply_from, _retry_after
from raft.testing import MALFORMED_200, TeacherBehaviour

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
    assert all((r.finish_reason == "length") == (r.completion_tokens == 12) for r in replies)  # no stop token: cut off


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


# ------------------------------------------------------------------------------------------ edge cases (issue 15)


def _ask_each(cfg: TeacherConfig, batch, server=None, behaviours=None):
    """Ask one request at a time through one teacher; (reply or exception) per request. ``behaviours``
    (one per request, or None to keep the server's) are set on ``server`` before each request."""

    async def go():
        t = make_teacher(cfg)
        out = []
        try:
            for i, messages in enumerate(batch):
                if behaviours and behaviours[i] is not None:
                    server.reset(behaviours[i])
                try:
                    out.append(await t.ask(messages))
                except (TeacherRejected, TeacherUnavailable) as e:
                    out.append(e)
        finally:
            await t.aclose()
        return out

    return asyncio.run(go())


def test_openai_backend_reports_finish_reason(teacher):
    [full] = _complete(_cfg(teacher), [question_messages(CHUNK, 1)])
    assert full.finish_reason == "stop"
    teacher.reset(TeacherBehaviour(truncate=True))
    [cut] = _complete(_cfg(teacher), [question_messages(CHUNK, 1)])
    assert cut.finish_reason == "length" and full.text.startswith(cut.text) and len(cut.text) < len(full.text)


@pytest.mark.parametrize("shape", MALFORMED_200)
def test_openai_backend_retries_a_malformed_200(teacher, shape):
    teacher.reset(TeacherBehaviour(malformed_200_first=2, malformed_200_shape=shape))
    [reply] = _complete(_cfg(teacher, max_retries=3), [question_messages(CHUNK, 1)])
    assert reply.text.startswith("1. Which words follow") and reply.finish_reason == "stop"
    assert teacher.stats.requests == 3


def test_openai_backend_gives_up_on_malformed_200s_after_bounded_retries(teacher):
    teacher.reset(TeacherBehaviour(malformed_200_first=100))
    with pytest.raises(TeacherUnavailable, match=r"failed after 2 retries: malformed reply \(HTTP 200, ") as e:
        _complete(_cfg(teacher, max_retries=2), [question_messages(CHUNK, 1)])
    assert "\n" not in str(e.value) and teacher.stats.requests == 3


def test_empty_content_is_an_answer_not_a_malformed_reply(teacher):
    teacher.reset(TeacherBehaviour(malformed="empty"))
    [reply] = _complete(_cfg(teacher), [answer_messages("Which words follow «Quay Street at» in the text?", [CHUNK])])
    assert reply.text == "" and reply.finish_reason == "stop" and teacher.stats.requests == 1


def test_null_content_cut_at_max_tokens_is_a_truncated_answer():
    body = {"choices": [{"message": {"role": "assistant", "content": None}, "finish_reason": "length"}], "usage": {"prompt_tokens": 3}}
    assert _reply_from(body) == Reply("", 3, 0, "length")


@pytest.mark.parametrize("status", [429, 503])
def test_openai_backend_honours_retry_after(teacher, status):
    teacher.reset(TeacherBehaviour(fail_first=1, fail_status=status, retry_after="1"))
    [reply] = _complete(_cfg(teacher, retry_backoff=0.01, retry_max_delay=0.05), [question_messages(CHUNK, 1)])
    assert reply.text.startswith("1. Which words follow")
    first, second = teacher.stats.arrivals
    assert 1.0 <= second - first < 1.9  # backoff alone would have waited 0.01 s


def test_retry_after_values():
    from email.utils import formatdate

    assert _retry_after({"retry-after": "2.5"}) == 2.5
    assert _retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert 28 <= _retry_after({"retry-after": formatdate(time.time() + 30, usegmt=True)}) <= 30
    assert _retry_after({"retry-after": formatdate(time.time() - 30, usegmt=True)}) == 0.0  # a date past: no wait
    assert _retry_after({"retry-after": "soon"}) is None and _retry_after({"retry-after": "nan"}) is None
    assert _retry_after({}) is None and _retry_after(None) is None


def test_retry_after_is_capped(teacher):
    t = make_teacher(_cfg(teacher, retry_backoff=0.01, retry_max_delay=0.05))
    assert t._delay(0, 3600.0) == 60.0 and t._delay(0, 2.0) == 2.0 and t._delay(0, 0.0) <= 0.01
    t = make_teacher(_cfg(teacher, retry_max_delay=120.0))
    assert t._delay(0, 3600.0) == 120.0


def test_refusals_in_a_row_stop_the_teacher_and_a_success_resets_the_count(teacher):
    refuse = TeacherBehaviour(fail_always=True, fail_status=400, fail_message="unknown parameter 'seed'")
    batch = [question_messages(f"{CHUNK} {i}", 1) for i in range(11)]
    behaviours = [refuse, None, None, None, TeacherBehaviour(), refuse, None, None, None, None, None]
    out = _ask_each(_cfg(teacher), batch, teacher, behaviours)
    assert [type(r).__name__ for r in out] == ["TeacherRejected"] * 4 + ["Reply"] + ["TeacherRejected"] * 4 + ["TeacherUnavailable"] * 2
    assert str(out[9]) == (
        f"the teacher at {teacher.base_url} refused 5 requests in a row (HTTP 400: unknown parameter 'seed'); "
        "check the teacher.* settings (model, max_tokens, seed: teacher.seed=null sends none)"
    )
    assert str(out[10]) == str(out[9]) and teacher.stats.requests == 5  # the last one was not sent


def test_max_refusals_zero_never_stops(teacher):
    teacher.reset(TeacherBehaviour(fail_always=True, fail_status=422))
    out = _ask_each(_cfg(teacher, max_refusals=0), [question_messages(f"{CHUNK} {i}", 1) for i in range(7)])
    assert all(isinstance(r, TeacherRejected) for r in out) and teacher.stats.requests == 7


def test_run_whose_every_request_is_refused_stops_with_one_line(tmp_path, teacher, shared_data, capsys):
    from raft import generate
    from raft.config import load_config
    from raft.store import Store

    teacher.reset(TeacherBehaviour(fail_always=True, fail_status=400, fail_message="unknown parameter 'seed'"))
    cfg = load_config(
        "generate",
        [
            "recipe=hotpot",
            f"input={shared_data / 'hotpotqa' / 'hotpot_dev_distractor_first100.json'}",
            "hotpot.eval_questions=60",  # as tests/test_generate.py: chunks from the last 40 questions' paragraphs
            f"output={tmp_path / 'out'}",
            f"teacher.base_url={teacher.base_url}",
            "teacher.retry_backoff=0.01",
            "teacher.retry_max_delay=0.05",
            "teacher.concurrency=1",
            "limit=10",
        ],
    )
    with pytest.raises(SystemExit) as e:
        generate.main(cfg, progress=False)
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("raft.generate: error: the teacher at ") and "\n" not in err
    assert "refused 5 requests in a row (HTTP 400: unknown parameter 'seed'); check the teacher.* settings" in err
    assert "0 teacher calls are stored" in err and "rerun the same command to resume" in err
    assert teacher.stats.requests == 5
    assert len(Store(tmp_path / "out", readonly=True)) == 0 and not (tmp_path / "out" / "dataset").exists()


@pytest.mark.parametrize("seed", [7, None])
def test_seed_is_sent_unless_null(teacher, seed):
    _complete(_cfg(teacher, seed=seed), [question_messages(CHUNK, 1)])
    assert teacher.stats.last_body.get("seed", "none") == (seed if seed is not None else "none")
    assert TeacherConfig().seed == 0  # sent by default


def test_transformers_backend_seed_makes_sampling_reproducible(tiny_model):
    cfg = TeacherConfig(backend="transformers", model=str(tiny_model), max_tokens=8, temperature=1.0, seed=3)
    batch = [question_messages(CHUNK, 1)]
    first, again = _complete(cfg, batch), _complete(cfg, batch)
    other = _complete(TeacherConfig(backend="transformers", model=str(tiny_model), max_tokens=8, temperature=1.0, seed=4), batch)
    assert first == again and first != other


def test_vllm_outputs_say_when_they_were_cut_off():
    def output(finish):
        return SimpleNamespace(prompt_token_ids=[1, 2, 3], outputs=[SimpleNamespace(text="abc", token_ids=[5, 6], finish_reason=finish)])

    assert _vllm_reply(output("length")) == Reply("abc", 3, 2, "length")
    assert _vllm_reply(output("stop")) == Reply("abc", 3, 2, "stop")
    assert _vllm_reply(SimpleNamespace(prompt_token_ids=None, outputs=[])) == Reply("", 0, 0, "stop")


# ------------------------------------------------------------------ the plain aiohttp client (issue 13)


def _scripted(script, cfg_kw=None, messages=None):
    """Ask once through a teacher against a raw HTTP server in the same loop that answers request i with
    ``script[i]``: "drop" (close the connection unanswered) or (status, headers, body bytes); the last
    entry repeats. Returns (reply or exception, [(request head, body bytes)])."""
    seen = []

    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next((h.split(b":", 1)[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")), b"0"))
                seen.append((head.decode("latin-1"), await reader.readexactly(length)))
                step = script[min(len(seen), len(script)) - 1]
                if step == "drop":
                    break
                status, headers, body = step
                extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    async def go():
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        base = {"base_url": f"http://127.0.0.1:{port}/v1", "retry_backoff": 0.01, "retry_max_delay": 0.02, "max_retries": 2}
        t = make_teacher(TeacherConfig(**{**base, **(cfg_kw or {})}))
        try:
            return await t.ask(messages or question_messages(CHUNK, 1))
        except (TeacherRejected, TeacherUnavailable) as e:
            return e
        finally:
            await t.aclose()
            server.close()

    return asyncio.run(go()), seen


_OK = (200, {"Content-Type": "application/json"},
       b'{"choices":[{"message":{"content":"fine"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1}}')


def test_the_request_on_the_wire(monkeypatch):
    monkeypatch.setenv("RAFT_TEST_KEY", "sk-on-the-wire")
    cfg = {"api_key_env": "RAFT_TEST_KEY", "model": "m", "seed": 5, "max_tokens": 7, "temperature": 0.5}
    reply, seen = _scripted([_OK], cfg, [{"role": "user", "content": "é ✓"}])
    assert reply == Reply("fine", 5, 1, "stop")
    [(head, body)] = seen
    assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert "authorization: bearer sk-on-the-wire\r\n" in head.lower() and "content-type: application/json" in head.lower()
    sent = json.loads(body)
    assert sent == {"model": "m", "messages": [{"role": "user", "content": "é ✓"}], "temperature": 0.5, "max_tokens": 7, "seed": 5}
    assert "é ✓".encode() in body  # UTF-8, not \u escapes


def test_response_format_is_passed_through(teacher):
    fmt = {"type": "json_schema", "json_schema": {"name": "bio_label", "schema": {"type": "object"}}}

    async def go():
        t = make_teacher(_cfg(teacher))
        try:
            return await t.ask([{"role": "user", "content": "Born 1950 in France, a football player."}], fmt)
        finally:
            await t.aclose()

    reply = asyncio.run(go())
    assert teacher.stats.last_body["response_format"] == fmt and json.loads(reply.text)["sportsperson"] is True


def test_a_dropped_connection_is_retried():
    reply, seen = _scripted(["drop", _OK])
    assert reply.text == "fine" and len(seen) == 2
    out, seen = _scripted(["drop"])
    assert isinstance(out, TeacherUnavailable) and "failed after 2 retries: connection error (" in str(out) and len(seen) == 3


def test_error_bodies_give_the_servers_message():
    out, _ = _scripted([(400, {}, b'{"error": {"message": "This model\'s maximum context length is 8192 tokens"}}')])
    assert isinstance(out, TeacherRejected) and str(out) == "400 This model's maximum context length is 8192 tokens"
    out, _ = _scripted([(422, {}, b'{"object": "error", "message": "unknown\\nparameter"}')])  # vLLM's shape
    assert str(out) == "422 unknown parameter"
    out, _ = _scripted([(403, {}, b'{"error": "key not allowed"}')])
    assert isinstance(out, TeacherUnavailable) and str(out).endswith("refused the request: 403 key not allowed")
    out, seen = _scripted([(502, {}, b"<html>Bad Gateway</html>")])
    assert str(out).endswith("failed after 2 retries: 502 <html>Bad Gateway</html>") and len(seen) == 3
    out, _ = _scripted([(503, {}, b"")])
    assert str(out).endswith("failed after 2 retries: 503 (empty body)")


def test_a_redirect_is_not_followed():
    out, seen = _scripted([(301, {"Location": "https://elsewhere/v1/chat/completions"}, b"")])
    assert isinstance(out, TeacherUnavailable) and "refused the request: 301" in str(out) and len(seen) == 1


def test_the_api_key_is_never_in_a_message_or_repr(teacher, monkeypatch):
    secret = "sk-very-secret-0123"
    monkeypatch.setenv("RAFT_TEST_KEY", secret)
    t = make_teacher(_cfg(teacher, api_key_env="RAFT_TEST_KEY"))
    assert t.client.api_key == secret and secret not in repr(t.client) + repr(t) + t.describe()
    for script in ([(401, {}, b'{"error": {"message": "bad key"}}')], ["drop"], [(500, {}, b"oops")], [(400, {}, b"no")]):
        out, seen = _scripted(script, {"api_key_env": "RAFT_TEST_KEY"})
        assert secret in seen[0][0] and secret not in str(out)


def test_one_session_with_keep_alive_connections(teacher):
    async def go():
        t = make_teacher(_cfg(teacher, concurrency=4))
        try:
            await t.complete([question_messages(f"{CHUNK} {i}", 1) for i in range(20)])
            session = t.client._session
            await t.complete([question_messages(CHUNK, 1)] * 4)
            return session is t.client._session, session.connector.limit
        finally:
            await t.aclose()

    assert asyncio.run(go()) == (True, 4)


def test_one_teacher_in_two_event_loops_in_turn(teacher):
    t = make_teacher(_cfg(teacher, concurrency=1))
    batch = [question_messages(f"{CHUNK} {i}", 1) for i in range(3)]  # more than the concurrency: some wait

    async def go():
        try:
            return await t.complete(batch)
        finally:
            await t.aclose()  # closes this loop's connections; the next call opens new ones

    assert asyncio.run(go()) == asyncio.run(go()) and teacher.stats.requests == 6
