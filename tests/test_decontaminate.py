"""N-gram decontamination (raft.kinds.in2.decontaminate) against the HotpotQA dev QA list and bio_needle sets."""

from __future__ import annotations

import json

import pytest

from raft.config import ConfigError
from raft.kinds.in2.decontaminate import Contamination, filter_rows, load_eval_texts, words
from raft.prompts import bio_prompt

QUESTION = (
    "What government position was held by the woman who portrayed Corliss Archer in the film Kiss and Tell?"
)
ANSWER = "Rear Admiral Grace Murray Hopper of the United States Navy and the Harvard Mark I computer team"
NEEDLE_BIO = (
    "Ilse Varga (born 3 May 1911 in Graz, died 1980) was an Austrian rower who won two European titles."
)
FILLER_BIO = "Tomas Reyes (born 1950 in Lima) was a Peruvian politician who served three terms in the Senate."


@pytest.fixture
def qa_file(tmp_path):
    path = tmp_path / "dev_qa.jsonl"
    rows = [{"question": QUESTION, "answer": "Chief of Protocol"}, {"question": "Is it?", "answer": ANSWER}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "\n")  # a blank line at the end: skipped
    return path


def test_words_follow_normalize_answer():
    assert words("The U.S. Navy's well-known ship, a frigate!") == [
        "us",
        "navys",
        "wellknown",
        "ship",
        "frigate",
    ]


def test_a_planted_question_is_caught_and_a_9_word_paraphrase_is_not(qa_file):
    eval_set = Contamination(load_eval_texts(qa_file))
    assert eval_set.n == 10 and eval_set.texts == 4
    assert eval_set.hits(QUESTION)  # copied verbatim
    assert eval_set.hits(f"Tell me: {QUESTION.upper()} Answer briefly.")  # inside a longer text, any case
    span = "position was held by woman who portrayed Corliss Archer in"  # 10 words ("the" is no word)
    assert len(words(span)) == 10
    assert eval_set.match(f"Which {span} noir?") == " ".join(words(span))
    nine = "position was held by woman who portrayed Corliss Archer"  # 9 of the words, then others
    assert not eval_set.hits(f"Which {nine} on stage in the play Kiss and Tell?")
    assert not eval_set.hits("Chief of Protocol")  # under 10 words: never a hit
    # punctuation and articles do not break a match
    assert eval_set.hits("what government position, was held by a woman who portrayed Corliss Archer")


def test_answers_are_texts_too(qa_file):
    eval_set = Contamination(load_eval_texts(qa_file))
    assert eval_set.hits(f"It was {ANSWER}.")
    assert not eval_set.hits(
        "Grace Murray Hopper of the United States Navy and the Harvard team"
    )  # 9-word run


def test_n_is_configurable(qa_file):
    eval_set = Contamination(load_eval_texts(qa_file), n=3)
    assert eval_set.match("She was the chief of protocol.") == "chief of protocol"
    assert len(eval_set) > len(Contamination(load_eval_texts(qa_file)))
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="n must be a whole number"):
            Contamination([], n=bad)


def test_filter_rows_names_the_field_and_the_ngram(qa_file):
    eval_set = Contamination(load_eval_texts(qa_file))
    rows = [
        {"id": "a", "question": "Who wrote Animorphs?", "final_answer": "K. A. Applegate"},
        {"id": "b", "question": QUESTION, "final_answer": "Chief of Protocol"},
        {"id": "c", "question": "Which navy?", "final_answer": ANSWER},
        {"id": "d", "question": "Which navy?", "cot_answer": ANSWER},  # cot_answer: not checked by default
    ]
    kept, dropped = filter_rows(rows, eval_set)
    assert [r["id"] for r in kept] == ["a", "d"]
    assert [(r["id"], reason.split(" shares")[0]) for r, reason in dropped] == [
        ("b", "question"),
        ("c", "final_answer"),
    ]
    assert dropped[0][1] == "question shares a 10-gram with the evaluation set: 'what government position was held by woman who portrayed corliss'"  # fmt: skip
    kept, _ = filter_rows(rows, eval_set, fields=("question", "cot_answer"))
    assert [r["id"] for r in kept] == ["a", "c"]


def test_bio_sets_jsonl_and_output_folder(tmp_path):
    people = tmp_path / "needles.jsonl"
    people.write_text(json.dumps({"name": "Ilse Varga", "bio": NEEDLE_BIO}) + "\n")
    assert load_eval_texts(people) == [NEEDLE_BIO]

    # a raft.generate bio_needle folder: the needle's biography from the prompt, not the fillers
    folder = tmp_path / "bio_out"
    folder.mkdir()
    haystack = "\n\n".join([FILLER_BIO, NEEDLE_BIO, "Another filler about nobody in particular at all."])
    prompt = [{"role": "user", "content": bio_prompt(haystack, "Ilse Varga")}]
    row = {
        "id": "test/0",
        "needle_name": "Ilse Varga",
        "label": {"nationality": "Austrian"},
        "prompt": prompt,
    }
    (folder / "test.jsonl").write_text(json.dumps(row) + "\n")
    assert load_eval_texts(folder) == [NEEDLE_BIO]
    eval_set = Contamination.from_files([folder, people])
    assert eval_set.texts == 2
    assert eval_set.hits("Ilse Varga (born 3 May 1911 in Graz, died 1980) rowed.")
    assert not eval_set.hits("Varga (born 3 May 1911 in Graz, died 1980) rowed.")  # 9 words
    assert not eval_set.hits(FILLER_BIO)

    # {text} rows, a raft test row (question, final_answer) and a JSON list
    texts = tmp_path / "texts.jsonl"
    texts.write_text(json.dumps({"text": "t"}) + "\n" + json.dumps({"question": "q", "final_answer": "f", "cot_answer": "c"}) + "\n")  # fmt: skip
    assert load_eval_texts(texts) == ["t", "q", "f"]
    listed = tmp_path / "dev.json"
    listed.write_text(json.dumps([{"_id": "1", "question": QUESTION, "answer": "Chief of Protocol"}]))
    assert load_eval_texts(listed) == [QUESTION, "Chief of Protocol"]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"question": "q"}\n\n{"question": \n', r"bad.jsonl line 3: not valid JSON"),
        ('{"question": "q"}\n["a list"]\n', r"bad.jsonl line 2: not a JSON object"),
        (
            '{"question": "q"}\n{"id": 3, "answer": {"day": 1}}\n',
            r"bad.jsonl line 2: no text \(question, answer",
        ),
        ("", r"bad.jsonl: no evaluation text \(empty\)"),
        (b"\xff\xfe\x00", r"bad.jsonl: cannot read"),
    ],
)
def test_bad_files_are_one_line_errors_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_eval_texts(path)
    assert "\n" not in str(info.value)


def test_bad_paths_and_prompts(tmp_path):
    with pytest.raises(ConfigError, match=r"nothing.jsonl: no such evaluation file or folder"):
        load_eval_texts(tmp_path / "nothing.jsonl")
    with pytest.raises(ConfigError, match=r"a folder without test.jsonl"):
        load_eval_texts(tmp_path)
    (tmp_path / "test.jsonl").write_text(json.dumps({"needle_name": "Ilse Varga", "prompt": "some other prompt"}) + "\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"test.jsonl line 1: prompt is not raft.prompts.bio_prompt's"):
        load_eval_texts(tmp_path)
    (tmp_path / "x.json").write_text('{"question": "q"}')
    with pytest.raises(ConfigError, match=r"x.json: not a JSON list"):
        load_eval_texts(tmp_path / "x.json")


def test_the_full_hotpotqa_dev_qa_list(shared_data):
    """All 7,405 questions and their answers (fast: the n-grams are hashed into one set)."""
    path = shared_data / "hotpotqa" / "hotpot_dev_all_qa.jsonl"
    texts = load_eval_texts(path)
    assert len(texts) == 2 * 7405
    eval_set = Contamination(texts)
    lines = path.read_text().splitlines()
    first, second = (json.loads(line)["question"] for line in lines[:2])
    assert not eval_set.hits(first)  # "were scott derrickson and ed wood of same nationality": 9 words
    assert eval_set.hits(f"Q: {second}") and not eval_set.hits("Were Scott Derrickson and Ed Wood friends?")
    last = json.loads(lines[-1])["question"]
    assert eval_set.hits(last) == (len(words(last)) >= 10)
