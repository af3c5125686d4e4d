"""raft.metrics: the official HotpotQA scoring rules, hand-worked, and equality with the official code."""

from __future__ import annotations

import re
import string
from collections import Counter

import pytest

from raft.metrics import answer_found, exact_match, extract_answer, f1, normalize_answer, score

# --------------------------------------------------------------------------------------------------
# A faithful copy of the scoring functions of the official hotpot_evaluate_v1.py
# (https://github.com/hotpotqa/hotpot, Yang et al. 2018), kept as the reference.
# --------------------------------------------------------------------------------------------------


def official_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def official_f1_score(prediction, ground_truth):
    normalized_prediction = official_normalize_answer(prediction)
    normalized_ground_truth = official_normalize_answer(ground_truth)

    ZERO_METRIC = (0, 0, 0)

    if (
        normalized_prediction in ["yes", "no", "noanswer"]
        and normalized_prediction != normalized_ground_truth
    ):
        return ZERO_METRIC
    if (
        normalized_ground_truth in ["yes", "no", "noanswer"]
        and normalized_prediction != normalized_ground_truth
    ):
        return ZERO_METRIC

    prediction_tokens = normalized_prediction.split()
    ground_truth_tokens = normalized_ground_truth.split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return ZERO_METRIC
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1, precision, recall


def official_exact_match_score(prediction, ground_truth):
    return official_normalize_answer(prediction) == official_normalize_answer(ground_truth)


# --------------------------------------------------------------------------------------------------
# hand-worked cases, one group per rule
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("Paris", "paris"),  # case
        ("PaRiS, France!", "paris france"),  # punctuation dropped, not replaced by a space
        ("U.S.A.", "usa"),
        ("Tom's", "toms"),
        ("well-known", "wellknown"),
        ("The Beatles", "beatles"),  # articles, at the start
        ("a cat and an owl", "cat and owl"),
        ("Theatre thereby anathema", "theatre thereby anathema"),  # only whole words are articles
        ("THE end", "end"),  # articles after lowercasing
        ("the, end", "end"),  # punctuation goes first, then the article
        ("  New\n\tYork   City ", "new york city"),  # whitespace collapsed
        ("", ""),
        ("«Café» — naïve", "«café» — naïve"),  # only ASCII punctuation is removed
    ],
)
def test_normalize_answer(text, normalized):
    assert normalize_answer(text) == normalized
    assert official_normalize_answer(text) == normalized


def test_normalize_answer_none_is_empty():
    assert normalize_answer(None) == ""


@pytest.mark.parametrize(
    ("prediction", "gold", "em"),
    [
        ("The Eiffel Tower.", "eiffel tower", 1.0),
        ("eiffel  tower", "Eiffel Tower", 1.0),
        ("Eiffel Tower, Paris", "Eiffel Tower", 0.0),
        ("", "", 1.0),
        ("", "Paris", 0.0),
    ],
)
def test_exact_match(prediction, gold, em):
    assert exact_match(prediction, gold) == em


def test_f1_partial_overlap_by_hand():
    # pred: [eiffel, tower, paris] (3), gold: [eiffel, tower] (2), common 2
    # precision 2/3, recall 1 -> F1 = 2 * (2/3) / (5/3) = 0.8
    assert f1("the Eiffel Tower, Paris", "Eiffel Tower") == pytest.approx(0.8)
    # pred [1920] gold [may, 1920]: p=1, r=1/2 -> 2/3
    assert f1("1920", "May 1920") == pytest.approx(2 / 3)


def test_f1_repeated_tokens_count_as_a_multiset():
    # pred [new, new, new] gold [new, york]: common = min(3,1) = 1 -> p=1/3 r=1/2 -> F1 = 0.4
    assert f1("new new new", "New York") == pytest.approx(0.4)
    # pred [york, new, new] gold [new, new, york, city]: common 3 -> p=1, r=3/4 -> 6/7
    assert f1("york new new", "new new york city") == pytest.approx(6 / 7)


def test_f1_yes_no_noanswer_special_case():
    assert f1("yes", "yes") == 1.0
    assert f1("Yes.", "yes") == 1.0  # normalized before the comparison
    assert f1("no", "yes") == 0.0
    assert f1("yes it is", "yes") == 0.0  # token F1 would be 0.5; the special case makes it 0
    assert f1("yes", "yes it is") == 0.0
    assert f1("noanswer", "no answer") == 0.0
    assert f1("no answer", "no") == 0.0  # gold is 'no' and they differ


def test_f1_empty_prediction_scores_zero():
    assert f1("", "Paris") == 0.0
    assert f1("   ", "Paris") == 0.0
    assert f1("", "") == 0.0  # no common token: zero, although exact match is 1
    assert f1("the", "a") == 0.0  # both normalize to nothing


def test_f1_is_symmetric_and_bounded():
    assert f1("a b c", "b c d e") == f1("b c d e", "a b c")
    assert 0.0 <= f1("a b c", "b c d e") <= 1.0


# --------------------------------------------------------------------------------------------------
# equality with the official evaluator over every rule
# --------------------------------------------------------------------------------------------------

CASES = [
    ("Paris", "Paris"),
    ("paris", "PARIS"),
    ("Paris, France.", "Paris"),
    ("The Beatles", "Beatles"),
    ("an apple a day", "the apple day"),
    ("U.S.", "US"),
    ("yes", "yes"),
    ("yes", "no"),
    ("Yes!", "yes"),
    ("yes indeed", "yes"),
    ("no", "no way"),
    ("noanswer", "noanswer"),
    ("noanswer", "anything"),
    ("", "Paris"),
    ("", ""),
    ("the the the", "the"),
    ("new new new", "New York"),
    ("york new new", "new new york city"),
    ("1,000", "1000"),
    ("1 000", "1000"),
    ("  New\n York ", "new york"),
    ("Arthur's Magazine", "Arthur's Magazine"),
    ("Chief of Protocol", "Chief of Protocol of the United States"),
    ("Kiss and Tell", "Kiss and Tell (1945 film)"),
    ("Greenwich Village, New York City", "Greenwich Village"),
    ("Theater", "the theater"),
    ("Ä b", "ä B"),
]


@pytest.mark.parametrize(("prediction", "gold"), CASES)
def test_equals_official_evaluator(prediction, gold):
    assert normalize_answer(prediction) == official_normalize_answer(prediction)
    assert exact_match(prediction, gold) == float(official_exact_match_score(prediction, gold))
    assert f1(prediction, gold) == pytest.approx(official_f1_score(prediction, gold)[0])


def test_cases_cover_every_rule():
    """The equality check above is only worth something if its cases exercise each rule."""
    normalized = [(official_normalize_answer(p), official_normalize_answer(g)) for p, g in CASES]
    assert any(p != p.lower() for p, _ in CASES)  # case
    assert any(set(p) & set(string.punctuation) for p, _ in CASES)  # punctuation
    assert any(re.search(r"\b(a|an|the)\b", p.lower()) for p, _ in CASES)  # articles
    assert any("  " in p or "\n" in p for p, _ in CASES)  # whitespace
    assert any({p, g} & {"yes", "no", "noanswer"} and p != g for p, g in normalized)  # special case
    assert any(max(Counter(p.split()).values(), default=0) > 1 for p, _ in normalized)  # repeats
    assert any(p == "" for p, _ in normalized)  # empty prediction
    assert {official_f1_score(p, g)[0] for p, g in CASES} >= {0, 1}
    assert any(0 < official_f1_score(p, g)[0] < 1 for p, g in CASES)


# --------------------------------------------------------------------------------------------------
# answer extraction
# --------------------------------------------------------------------------------------------------


def test_extract_answer_after_the_tag():
    out = "The document says ##begin_quote##Paris is the capital##end_quote##.\n<ANSWER>: Paris"
    assert extract_answer(out) == "Paris"


def test_extract_answer_last_tag_wins():
    out = "Format: <ANSWER>: $answer\nReasoning...\n<ANSWER>: London\nWait, no.\n<ANSWER>: Paris"
    assert extract_answer(out) == "Paris"


def test_extract_answer_keeps_the_first_line_after_the_tag():
    assert extract_answer("<ANSWER>: Paris\n\nIs there anything else?") == "Paris"
    assert extract_answer("<ANSWER>:\n  Paris  \nmore") == "Paris"  # answer on the next line


def test_extract_answer_missing_tag_falls_back_to_the_last_non_empty_line():
    out = "Some reasoning.\nThe answer is Paris\n\n   \n"
    assert extract_answer(out) == "The answer is Paris"
    assert answer_found(out) == 0.0


def test_extract_answer_of_nothing():
    assert extract_answer("") == ""
    assert extract_answer(None) == ""
    assert extract_answer("<ANSWER>:") == ""
    assert answer_found("") == 0.0


def test_answer_found_needs_the_exact_tag():
    assert answer_found("blah <ANSWER>: x") == 1.0
    assert answer_found("blah ANSWER: x") == 0.0
    assert answer_found("blah <answer>: x") == 0.0


def test_score_combines_extraction_and_scoring():
    s = score("The text quotes it.\n<ANSWER>: the Eiffel Tower", "Eiffel Tower")
    assert s == {"f1": 1.0, "em": 1.0, "answer_found": 1.0}
    # missing tag: the fallback line is scored, and the miss is counted
    s = score("I think it is Eiffel Tower", "Eiffel Tower")
    assert s["answer_found"] == 0.0 and s["em"] == 0.0
    assert s["f1"] == pytest.approx(official_f1_score("I think it is Eiffel Tower", "Eiffel Tower")[0])
    # empty output: zero, still a sample
    assert score("", "Paris") == {"f1": 0.0, "em": 0.0, "answer_found": 0.0}
    # the yes/no rule applies to the extracted answer
    assert score("Both are American.\n<ANSWER>: Yes.", "yes")["f1"] == 1.0
    assert score("<ANSWER>: yes, both", "yes")["f1"] == 0.0
