"""The stand-ins themselves: the tiny model loads and generates, the teacher server speaks OpenAI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import openai
import pytest

from raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE, answer_messages, question_messages
from raft.testing import MALFORMED_200, TeacherBehaviour

REPO = Path(__file__).resolve().parent.parent


def test_tiny_model_chat_template_marks_assistant(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    assert model.num_parameters() < 1_000_000
    msgs = [{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "an answer"}]
    out = tok.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    mask = out["assistant_masks"]
    assert 0 < sum(mask) < len(mask)
    masked = tok.decode([t for t, m in zip(out["input_ids"], mask, strict=True) if m])
    assert masked.startswith("an answer")
    ids = tok("hello world", return_tensors="pt").input_ids
    gen = model.generate(ids, max_new_tokens=5, do_sample=False)
    assert gen.shape[1] == ids.shape[1] + 5


def test_tiny_model_head_std_lets_a_random_model_be_confident(tmp_path):
    """The default init caps logits near 0.02 x hidden; head_std widens the output layer only."""
    from transformers import AutoModelForCausalLM

    from raft.testing import build_tiny_model

    corpus = ["a small corpus for a small tokenizer"] * 20
    default = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "a", vocab_size=300, corpus=corpus))
    wide = AutoModelForCausalLM.from_pretrained(build_tiny_model(tmp_path / "b", vocab_size=300, corpus=corpus, head_std=0.25))
    assert default.lm_head.weight.std().item() < 0.03
    assert abs(wide.lm_head.weight.std().item() - 0.25) < 0.02
    assert (wide.model.embed_tokens.weight == default.model.embed_tokens.weight).all()  # the rest is the same model


def test_teacher_writes_questions_and_quoting_answers(teacher):
    client = openai.OpenAI(base_url=teacher.base_url, api_key="test", max_retries=0)
    chunk = "Paris is the capital and largest city of France with millions of residents living there today."
    q = client.chat.completions.create(model="m", messages=question_messages(chunk, 2)).choices[0].message.content
    lines = q.splitlines()
    assert len(lines) == 2 and lines[0].startswith("1. ")
    question = lines[0][3:]
    a = client.chat.completions.create(model="m", messages=answer_messages(question, ["unrelated text here", chunk]))
    text = a.choices[0].message.content
    quote = text.split(BEGIN_QUOTE)[1].split(END_QUOTE)[0]
    assert quote in chunk and ANSWER_TAG in text
    assert a.usage.prompt_tokens > 0 and teacher.stats.by_kind == {"question": 1, "answer": 1}


@pytest.mark.parametrize("status", [429, 500])
def test_teacher_fails_then_recovers(teacher, status):
    teacher.reset(TeacherBehaviour(fail_first=2, fail_status=status))
    client = openai.OpenAI(base_url=teacher.base_url, api_key="test", max_retries=0)
    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as err:
            client.chat.completions.create(model="m", messages=question_messages("some text " * 10, 1))
        assert err.value.status_code == status
    ok = client.chat.completions.create(model="m", messages=question_messages("some text " * 10, 1))
    assert ok.choices[0].message.content


def test_teacher_hang_times_out(teacher):
    teacher.reset(TeacherBehaviour(hang=True))
    client = openai.OpenAI(base_url=teacher.base_url, api_key="test", max_retries=0, timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="m", messages=question_messages("text " * 10, 1))


def _post(server, body: dict) -> tuple[int, dict, bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{server.base_url}/chat/completions", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_teacher_truncates_with_finish_reason_length(teacher):
    body = {"model": "m", "messages": question_messages("some words to ask about " * 4, 1), "max_tokens": 5}
    _, _, full = _post(teacher, body)
    teacher.reset(TeacherBehaviour(truncate=True))
    _, _, cut = _post(teacher, body)
    full, cut = json.loads(full)["choices"][0], json.loads(cut)["choices"][0]
    assert (full["finish_reason"], cut["finish_reason"]) == ("stop", "length")
    assert full["message"]["content"].startswith(cut["message"]["content"]) and cut["message"]["content"] != full["message"]["content"]


def test_teacher_malformed_200_shapes_then_recovers(teacher):
    teacher.reset(TeacherBehaviour(malformed_200_first=len(MALFORMED_200)))
    body = {"model": "m", "messages": question_messages("text " * 10, 1)}
    replies = [_post(teacher, body) for _ in range(len(MALFORMED_200) + 1)]
    assert all(status == 200 for status, _, _ in replies)
    assert replies[0][2].startswith(b"<html>")  # not JSON, whatever the content type says
    bodies = [json.loads(data) for _, _, data in replies[1:]]
    assert "choices" not in bodies[0] and bodies[1]["choices"] == [] and "message" not in bodies[2]["choices"][0]
    assert bodies[3]["choices"][0]["message"]["content"] is None
    assert bodies[4]["choices"][0]["message"]["content"].startswith("1. ")
    assert teacher.stats.failed == len(MALFORMED_200) and teacher.stats.completed == 1


def test_teacher_failures_carry_retry_after_and_arrivals_are_recorded(teacher):
    teacher.reset(TeacherBehaviour(fail_first=1, fail_status=503, retry_after="1", fail_message="overloaded"))
    body = {"model": "m", "messages": question_messages("text " * 10, 1), "seed": 5}
    status, headers, data = _post(teacher, body)
    assert status == 503 and headers["Retry-After"] == "1" and json.loads(data)["error"]["message"] == "overloaded"
    assert _post(teacher, body)[0] == 200
    assert len(teacher.stats.arrivals) == 2 and teacher.stats.arrivals[0] <= teacher.stats.arrivals[1]
    assert teacher.stats.last_body["seed"] == 5


def test_python_m_raft_testing_serves_and_builds_the_tiny_model(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    usage = subprocess.run([sys.executable, "-m", "raft.testing"], capture_output=True, text=True, env=env, timeout=60)
    assert usage.returncode == 2 and "python -m raft.testing serve --port 8000" in usage.stdout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve = subprocess.Popen([sys.executable, "-m", "raft.testing", "serve", "--port", str(port)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert serve.stdout.readline().strip() == f"fake teacher at http://127.0.0.1:{port}/v1 (Ctrl-C to stop)"
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="test", max_retries=0)
        assert client.chat.completions.create(model="m", messages=question_messages("text " * 10, 1)).choices[0].message.content
    finally:
        serve.terminate()
        serve.wait(timeout=10)
        serve.stdout.close()
    built = subprocess.run(
        [sys.executable, "-m", "raft.testing", "tiny-model", str(tmp_path / "tiny")], capture_output=True, text=True, env=env, timeout=300
    )
    assert built.returncode == 0 and built.stdout.strip() == str(tmp_path / "tiny")
    assert (tmp_path / "tiny" / "config.json").exists() and (tmp_path / "tiny" / "tokenizer.json").exists()
