"""RAFT sample assembly and the quality gate (raft.kinds.raft.samples)."""

from __future__ import annotations

import json

import pytest

from raft.config import ConfigError
from raft.kinds.raft.samples import (
    HardDistractors,
    build_sample,
    check_answer,
    clean_question,
    contains_answer,
    load_eval_questions,
    make_rng,
    parse_answer,
    parse_questions,
    pick_distractors,
    shares_text,
)
from raft.metrics import normalize_answer
from raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE
from raft.testing import fake_answer, fake_questions

TEXTS = [f"chunk {i} about topic {i % 5} with words {i * 7}" for i in range(20)]


@pytest.mark.parametrize(
    "line, expected",
    [
        ("1. What is RAFT?", "What is RAFT?"),
        ("2) Who wrote it?", "Who wrote it?"),
        ("- Where is it?", "Where is it?"),
        ("* When was it?", "When was it?"),
        ("Q1: Why?", "Why?"),
        ("Question 3. How many?", "How many?"),
        ("(4) Which one?", "Which one?"),
        ('  "Quoted   question?"  ', "Quoted question?"),
        ("What year was 1984 published?", "What year was 1984 published?"),
    ],
)
def test_clean_question_strips_numbering(line, expected):
    assert clean_question(line) == expected


def test_parse_questions_drops_empty_duplicates_and_preamble():
    reply = "Here are the questions:\n1. What is RAFT?\n\n2. what is raft\n3. Who made it?\n4.   \n5. Why?"
    assert parse_questions(reply, 10) == ["What is RAFT?", "Who made it?", "Why?"]
    assert parse_questions(reply, 2) == ["What is RAFT?", "Who made it?"]
    assert parse_questions("", 3) == []
    assert parse_questions("1. \n2. ", 3) == []


def test_pick_distractors_distinct_never_oracle_nor_its_text():
    texts = [*TEXTS, TEXTS[3]]  # index 20 has the oracle's text
    for seed in range(30):
        picks = pick_distractors(make_rng(seed, "c", 0), texts, 3, 5)
        assert len(picks) == 5 and len(set(picks)) == 5
        assert 3 not in picks and 20 not in picks
    # as many as there are: all other chunks
    assert sorted(pick_distractors(make_rng(0, "c", 0), TEXTS[:4], 0, 3)) == [1, 2, 3]


@pytest.mark.parametrize("distractors", [1, 3, 4])
def test_build_sample_p1_always_has_the_oracle(distractors):
    for k in range(40):
        s = build_sample(make_rng(1, "x", k), TEXTS, 7, distractors, p=1.0)
        assert len(s.documents) == distractors + 1 == len(set(s.documents))
        assert s.oracle_index is not None and s.documents[s.oracle_index] == TEXTS[7]
        assert s.teacher_documents == s.documents


def test_build_sample_p0_never_has_the_oracle_but_teacher_sees_it():
    for k in range(40):
        s = build_sample(make_rng(1, "x", k), TEXTS, 7, 3, p=0.0)
        assert s.oracle_index is None
        assert TEXTS[7] not in s.documents and len(s.documents) == 4 == len(set(s.documents))
        assert TEXTS[7] in s.teacher_documents and len(s.teacher_documents) == 4
        # the replacement takes the oracle's place; the other documents are the teacher's distractors
        assert len(set(s.documents) & set(s.teacher_documents)) == 3


def test_build_sample_keeps_the_oracle_with_probability_p():
    kept = sum(build_sample(make_rng(5, f"c{i}", 0), TEXTS, i % 20, 3, p=0.8).oracle_index is not None for i in range(500))
    assert 0.72 < kept / 500 < 0.88
    positions = {build_sample(make_rng(5, f"c{i}", 0), TEXTS, 0, 3, p=1.0).oracle_index for i in range(100)}
    assert positions == {0, 1, 2, 3}  # shuffled


def test_build_sample_is_a_function_of_seed_chunk_and_question():
    a = build_sample(make_rng(42, "chunk-a", 0), TEXTS, 2, 3, 0.5)
    assert a == build_sample(make_rng(42, "chunk-a", 0), TEXTS, 2, 3, 0.5)
    others = [build_sample(make_rng(s, "chunk-a", k), TEXTS, 2, 3, 0.5) for s, k in [(43, 0), (42, 1), (44, 0), (42, 2)]]
    assert any(o != a for o in others)


def test_answer_context_oracle_shows_the_teacher_only_the_oracle():
    s = build_sample(make_rng(0, "c", 0), TEXTS, 4, 3, 1.0, answer_context="oracle")
    assert s.teacher_documents == [TEXTS[4]] and len(s.documents) == 4


def test_hard_distractors_are_similar_and_never_the_oracle():
    texts = [
        "The cat sat on the warm mat near the kitchen door.",
        "A cat and a kitten sleep on the mat by the door all day.",
        "Cats like warm mats; the kitten sat on one near the door.",
        "The stock market fell sharply after the bank raised interest rates.",
        "Interest rates and bank bonds moved the stock market on Monday.",
        "Volcanoes erupt when magma rises through the crust.",
        "Magma, lava and ash: how a volcano erupts.",
        "The cat sat on the warm mat near the kitchen door.",  # same text as 0
    ]
    hard = HardDistractors(texts, list(range(len(texts))), k=4)
    for i in range(len(texts)):
        ranked = hard.candidates(i)
        assert i not in ranked and all(texts[j] != texts[i] for j in ranked)
    assert set(hard.candidates(0)[:2]) == {1, 2}
    assert set(hard.candidates(3)[:1]) == {4}
    s = build_sample(make_rng(0, "c", 0), texts, 0, 2, 1.0, ranked=hard.candidates(0))
    assert sorted(d for d in s.documents if d != texts[0]) == sorted([texts[1], texts[2]])


def test_hard_distractors_skip_chunks_that_overlap_the_oracle():
    """An overlapping window (a shared run of words) or a declared neighbour is never a hard distractor,
    however similar: it holds the oracle's own text. The old rule's skips are counted."""
    base = "The ferry to the island leaves the harbor at seven and returns at noon every day of the week"
    texts = [
        base + " in summer.",  # 0: the oracle
        "returns at noon every day of the week in summer. The ferry to the island also carries bicycles and dogs.",  # 1: its next window
        "A ferry leaves the island harbor at noon; the island ferry returns at seven each week.",  # 2: similar, no shared run
        "The island harbor ferry: summer ferry times for the week, noon and seven.",  # 3: similar
        "Volcanoes erupt when magma rises through the crust.",
        "Magma, lava and ash: how a volcano erupts.",
        "Interest rates moved the stock market on Monday.",
    ]
    plain = HardDistractors(texts, [0], k=6)
    assert 1 in plain.raw[0][:3]  # the old rule ranks the overlapping window among the top
    assert 1 not in plain.candidates(0) and {2, 3} <= set(plain.candidates(0)[:3])
    assert plain.skipped_overlap(0, 3) == 1
    s = build_sample(make_rng(0, "c", 0), texts, 0, 2, 1.0, ranked=plain.candidates(0))
    assert texts[1] not in s.documents and sorted(s.picks[:2]) == [2, 3]
    near = HardDistractors(texts, [0], k=6, neighbours=lambda i, j: j == 2)  # e.g. the same document's next chunk
    assert 2 not in near.candidates(0) and 1 not in near.candidates(0) and near.skipped_overlap(0, 3) == 2
    assert shares_text(texts[0], texts[1]) and not shares_text(texts[0], texts[2])


def test_contains_answer_on_word_boundaries_after_normalisation():
    assert contains_answer("It lies on the Seine, in Paris.", "paris")
    assert contains_answer("The Seine River flows.", "the Seine river")
    assert not contains_answer("Parisian cafes.", "Paris")
    assert not contains_answer("Yes, no, maybe.", "yes") and not contains_answer("anything", "")


def test_excluded_distractors_are_replaced_in_place_and_nothing_else_changes():
    """The redraw once the answer is known: the same sample (same oracle draw, same shuffle), without the
    distractor that holds the answer (the next clean candidates move up); too few left: fewer picks."""
    ranked = [5, 6, 7, 8, 9]
    for seed in range(20):
        for p in (1.0, 0.0):
            before = build_sample(make_rng(seed, "c", 0), TEXTS, 0, 3, p, ranked=ranked)
            same = build_sample(make_rng(seed, "c", 0), TEXTS, 0, 3, p, ranked=ranked, exclude=lambda j: j == 9)
            assert same == before  # nothing excluded was drawn: identical
            after = build_sample(make_rng(seed, "c", 0), TEXTS, 0, 3, p, ranked=ranked, exclude=lambda j: j == 6)
            assert before.picks == (5, 6, 7, 8) and after.picks == (5, 7, 8, 9)
            assert after.oracle_index == before.oracle_index
            moved = {TEXTS[6]: TEXTS[7], TEXTS[7]: TEXTS[8], TEXTS[8]: TEXTS[9]}  # the next candidate moves up
            assert after.documents == [moved.get(d, d) for d in before.documents] and TEXTS[6] not in after.documents
    short = pick_distractors(make_rng(0, "c", 0), TEXTS[:5], 0, 4, [1, 2, 3, 4], exclude=lambda j: j in (2, 3))
    assert short == [1, 4]


def test_redraw_past_the_ranked_list_keeps_the_oracles_fate_and_order():
    """When the exclusions use up the ranked list, the rest is drawn at random: that must not change
    whether the oracle is shown, nor where it sits (the keep draw and the shuffle come after the picks)."""
    ranked = [5, 6, 7, 8]  # exactly the 4 picks (3 distractors + the spare): excluding one needs a random draw
    for seed in range(200):
        for p in (0.5,):
            before = build_sample(make_rng(seed, "c", 0), TEXTS, 0, 3, p, ranked=ranked)
            after = build_sample(make_rng(seed, "c", 0), TEXTS, 0, 3, p, ranked=ranked, exclude=lambda j: j == 6)
            assert 6 not in after.picks and after.picks[:3] == (5, 7, 8)
            assert after.oracle_index == before.oracle_index, seed
            assert (before.oracle_index is None) == (TEXTS[0] not in before.documents)


def _answer(quote: str, final: str = "Paris") -> str:
    return f"The document says {BEGIN_QUOTE}{quote}{END_QUOTE}. So it is {final}.\n{ANSWER_TAG} {final}"


ORACLE = "Paris is the capital of France.\nIt lies on the   Seine river."


def test_check_answer_accepts_quotes_from_the_oracle_after_whitespace_normalisation():
    v = check_answer(_answer("It lies on the Seine\n river."), ORACLE)
    assert v.reason is None and v.final_answer == "Paris" and v.quotes == ["It lies on the Seine\n river."]
    assert check_answer("No quotes at all.\n<ANSWER>: France", ORACLE).reason is None


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("It is Paris.", "no_answer_tag"),
        (f"It is Paris.\n{ANSWER_TAG}   ", "empty"),
        (_answer("Berlin is the capital of Germany."), "quote_not_in_oracle"),
        (f"{BEGIN_QUOTE}Paris is the capital\n{ANSWER_TAG} Paris", "unbalanced_quote"),
    ],
)
def test_check_answer_rejects_with_reasons(reply, reason):
    assert check_answer(reply, ORACLE).reason == reason


def test_parse_answer_takes_the_last_tag_and_its_first_line():
    final, quotes = parse_answer(f"{ANSWER_TAG} draft\nmore thinking\n{ANSWER_TAG}  Paris \nextra talk")
    assert final == "Paris" and quotes == []


def test_load_eval_questions_normalises(shared_data, tmp_path):
    path = shared_data / "hotpotqa" / "hotpot_dev_all_qa.jsonl"
    questions = load_eval_questions(path)
    first = json.loads(path.open().readline())["question"]
    assert len(questions) > 7000
    assert normalize_answer(first.upper() + "  ?") in questions
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok?"}\nnot json\n')
    with pytest.raises(ConfigError, match="line 2"):
        load_eval_questions(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_eval_questions(tmp_path / "missing.jsonl")


@pytest.mark.parametrize(
    "reply, reason",
    [
        ("No quotes at all.\n<ANSWER>: France", "no_quote"),
        (f"An empty quote {BEGIN_QUOTE}  {END_QUOTE}.\n{ANSWER_TAG} France", "no_quote"),
        (_answer("It lies on the Seine river."), None),
        ("No quotes and no tag.", "no_answer_tag"),  # the existing reasons come first
        (_answer("Berlin is the capital of Germany."), "quote_not_in_oracle"),
        ("", "empty"),
    ],
)
def test_check_answer_require_quote_rejects_answers_that_quote_nothing(reply, reason):
    assert check_answer(reply, ORACLE, require_quote=True).reason == reason
    if reason == "no_quote":
        assert check_answer(reply, ORACLE).reason is None  # off by default: as before


def test_the_fake_teachers_answers_pass_the_gate_with_quotes_required():
    chunk = "The Saltmere ferry leaves Quay Street at 06:40 and the last one leaves Tollan at 22:15 every day of the year."
    for question in fake_questions(chunk, 3):
        verdict = check_answer(fake_answer(question, [TEXTS[0], chunk, TEXTS[1]]), chunk, require_quote=True)
        assert verdict.reason is None and verdict.quotes
