"""Judge-free scoring of a probe's reply: ``score_probe(probe, reply, answer, cue)`` -> em, f1, predicted.

The reply's answer (``predicted``): its first non-empty line (a ``` fence line skipped), without
surrounding quotes or backticks and without a leading label such as ``Answer:``. Then, per probe:

- document: a reply that repeats the quoted beginning before the continuation has it dropped; EM / F1
  are ``raft.metrics`` (HotpotQA's normalisation: case, punctuation, articles, whitespace), typographic
  quotes and dashes read as ASCII ones;
- structured: the first UUID anywhere in the reply, when there is one (a UUID cannot be mistaken);
  EM is case-insensitive equality, F1 ``raft.metrics.f1`` (a UUID normalises to one word: F1 = EM);
- code: a leading ``return`` is dropped; EM is equality with all whitespace removed (operators and
  names count: ``a - b`` is not ``a + b``), F1 the overlap of code tokens (names, numbers, operators).
"""

from __future__ import annotations

import re
from collections import Counter

from raft.metrics import exact_match, f1, normalize_answer

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_LABEL = re.compile(
    r"^(?:the\s+)?(?:answer|value|continuation|rest of the sentence|return expression|expression|result)"
    r"(?:\s+is)?\s*:\s*", re.IGNORECASE,
)
_QUOTES = "\"'`“”‘’«»"
_TYPOGRAPHIC = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."})
_CODE_TOKEN = re.compile(r"\w+|//|\*\*|[^\w\s]")


def first_line(reply: str) -> str:
    """The reply's first non-empty line that is not a code fence, unquoted and unlabelled."""
    for line in (reply or "").splitlines():
        line = line.strip()
        if not line or line.startswith("```"):
            continue
        line = _LABEL.sub("", line).strip()
        while len(line) >= 2 and line[0] in _QUOTES and line[-1] in _QUOTES:
            line = line[1:-1].strip()
        return line.strip(_QUOTES + " ")
    return ""


def _drop_cue(predicted: str, cue: str) -> str:
    """The continuation alone, when the reply starts by repeating the quoted beginning."""
    said, quoted = normalize_answer(predicted), normalize_answer(cue)
    if quoted and said.startswith(quoted + " "):
        return said[len(quoted) :].strip()
    return predicted.lstrip(".…").strip()


def _code_f1(predicted: str, gold: str) -> float:
    said, ref = _CODE_TOKEN.findall(predicted), _CODE_TOKEN.findall(gold)
    same = sum((Counter(said) & Counter(ref)).values())
    if not same:
        return 0.0
    precision, recall = same / len(said), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def score_probe(probe: str, reply: str, answer: str, cue: str = "") -> dict[str, float | str]:
    """{em, f1, predicted} of one reply (see the module docstring)."""
    predicted = first_line(reply)
    if probe == "document":  # typographic quotes and dashes as ASCII: "it's" is "it’s"
        predicted = _drop_cue(predicted.translate(_TYPOGRAPHIC), cue.translate(_TYPOGRAPHIC))
        answer = answer.translate(_TYPOGRAPHIC)
        return {"em": exact_match(predicted, answer), "f1": f1(predicted, answer), "predicted": predicted}
    if probe == "structured":
        found = _UUID.search(reply or "")
        predicted = found.group().lower() if found else predicted
        return {"em": float(predicted.lower() == answer.lower()), "f1": f1(predicted, answer), "predicted": predicted}
    if probe == "code":
        predicted = re.sub(r"^return\s+", "", predicted).rstrip(";").strip()
        em = float("".join(predicted.split()) == "".join(answer.split()))
        return {"em": em, "f1": _code_f1(predicted, answer), "predicted": predicted}
    raise ValueError(f"unknown probe {probe!r}")
