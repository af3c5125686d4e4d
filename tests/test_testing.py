"""The stand-ins themselves: the tiny model loads and generates, the teacher server speaks OpenAI."""

from __future__ import annotations

import openai
import pytest

from raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE, answer_messages, question_messages
from raft.testing import TeacherBehaviour


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
