"""Answer scoring exactly as the official HotpotQA evaluation defines it, and answer extraction.

- ``normalize_answer``: lowercase, drop ASCII punctuation, replace the articles a/an/the by a space,
  collapse whitespace.
- ``exact_match`` / ``f1``: on normalized strings; F1 counts repeated tokens (multiset overlap). If
  either side normalizes to yes, no or noanswer and the two differ, F1 is 0.
- ``extract_answer``: the text after the last ``<ANSWER>:`` of a chain-of-thought output. Fallback
  when the tag is missing: the last non-empty line of the output (``answer_found`` reports how often
  that happened, so the fallback never hides a format failure).
"""

from __future__ import annotations

import re
import string
from collections import Counter

from raft.prompts import ANSWER_TAG, DECLINE_ANSWER

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    text = (text or "").lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction), normalize_answer(gold)
    special = ("yes", "no", "noanswer")
    if (pred in special or ref in special) and pred != ref:
        return 0.0
    pred_tokens, ref_tokens = pred.split(), ref.split()
    common = Counter(pred_tokens) & Counter(ref_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


def answer_found(output: str) -> float:
    return float(ANSWER_TAG in (output or ""))


def extract_answer(output: str) -> str:
    """Final answer of a chain-of-thought output (see the module docstring for the fallback)."""
    output = output or ""
    if ANSWER_TAG in output:
        answer = output.rsplit(ANSWER_TAG, 1)[1]
    else:
        lines = [line for line in output.strip().splitlines() if line.strip()]
        answer = lines[-1] if lines else ""
    answer = answer.strip()
    # a chat model sometimes keeps talking after the answer line: keep the first line only
    return answer.splitlines()[0].strip() if answer else ""


def score(output: str, gold: str) -> dict[str, float]:
    """All per-sample metrics of a generated output against a gold answer."""
    predicted = extract_answer(output)
    return {"f1": f1(predicted, gold), "em": exact_match(predicted, gold), "answer_found": answer_found(output)}


def declines(output: str) -> bool:
    """The reply declines (``raft.prompts.DECLINE_ANSWER`` as its final answer, after normalisation): it
    says the documents do not answer the question instead of answering it."""
    return normalize_answer(extract_answer(output)) == normalize_answer(DECLINE_ANSWER)
