"""Scoring a model's reply in the bio needle-in-a-haystack task, field by field, no judge model.

    parsed = parse_reply(text)          # the JSON object in the reply, or None
    scores = score_reply(text, label)   # {"json_valid", "score", "fields": {dotted field: 0/1}}

Parsing uses ``json.loads`` only (nothing in a reply is ever evaluated). The object is looked for,
first match wins:

1. the whole reply (stripped): a JSON object is the answer; valid JSON that is no object (a list, a
   string, a number) is no answer (None);
2. a fenced block (```json ... ``` or ``` ... ```): the first fence whose content parses decides as in 1;
3. the first balanced ``{...}`` of the text that parses (braces inside JSON strings do not count). A
   balanced span that does not parse is skipped as a whole (its inner objects are not answers); an
   opening brace that never closes ends the search (a reply cut short is no answer, even if one of
   its inner ``{"day": ...}`` objects is complete).

Each of the 9 leaves of ``raft.kinds.bio_needle.schema.FIELDS`` is 1 when it equals the label's, else 0, with the types
of the schema and nothing looser:

- ``nationality``: a string, compared stripped and case-insensitively ("american " = "American");
- the date parts: JSON integers only. ``"5"`` (a string), ``5.0`` (a float) and ``true`` (a bool) do
  not equal ``5`` / ``1``: the schema and the training target say integers, and guided decoding emits
  integers, so a reply that breaks the schema is not rewarded (``json_valid`` still says it was JSON);
- ``sportsperson`` / ``politician``: JSON ``true`` / ``false`` only (``"yes"``, ``"true"``, ``1`` are
  wrong).

A missing key or a value of the wrong type is a 0 for that field, never an error. ``score`` is the
share of the 9 fields right (0 when no JSON object was found).
"""

from __future__ import annotations

import json
import re
from typing import Any

from raft.kinds.bio_needle.schema import FIELDS, flatten
from raft.long_context.lengths import LENGTH_BUCKETS as LENGTH_BUCKETS  # importable from here too
from raft.long_context.lengths import length_metrics, length_name

# lm-eval metric name of each field (no dots): date_of_birth.day -> birth_day
FIELD_METRICS: dict[str, str] = {f: f.replace("date_of_", "").replace(".", "_") for f in FIELDS}
# the per-length metrics the bio_needle task declares (lm-eval needs a static metric list): one per
# raft.long_context.lengths.LENGTH_BUCKETS, named by target_tokens / 1024
LENGTH_METRICS = length_metrics("score")

_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.S)


def length_metric(target_tokens: Any) -> str | None:
    """The declared per-length metric of a context length ('score_4k'), or None when none is declared."""
    name = length_name(target_tokens)
    metric = f"score_{name}" if name else None
    return metric if metric in LENGTH_METRICS else None


def _loads(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def _balanced_end(text: str, start: int) -> int:
    """Index just past the brace that closes the one at ``start`` (-1: it never closes)."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        c = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return -1


def parse_reply(text: Any) -> dict[str, Any] | None:
    """The JSON object in a reply (see the module docstring), or None."""
    if not isinstance(text, str):
        return None
    ok, value = _loads(text.strip())
    if ok:
        return value if isinstance(value, dict) else None
    for m in _FENCE.finditer(text):
        ok, value = _loads(m.group(1).strip())
        if ok:
            return value if isinstance(value, dict) else None
    at = text.find("{")
    while at >= 0:
        end = _balanced_end(text, at)
        if end < 0:
            return None
        ok, value = _loads(text[at:end])
        if ok and isinstance(value, dict):
            return value
        at = text.find("{", end)
    return None


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def field_right(field: str, got: Any, want: Any) -> bool:
    """Whether one leaf of the reply equals the label's, with the schema's types (module docstring)."""
    if field == "nationality":
        return (
            isinstance(got, str)
            and isinstance(want, str)
            and got.strip().casefold() == want.strip().casefold()
        )
    if field in ("sportsperson", "politician"):
        return isinstance(got, bool) and isinstance(want, bool) and got is want
    return _int(got) and _int(want) and got == want


def score_reply(text: Any, label: dict[str, Any]) -> dict[str, Any]:
    """``json_valid`` (0/1), ``fields`` ({dotted field: 0/1}), ``score`` (share of the 9 right) and
    ``parsed`` (the object found, or None) for one reply against its label (a BioLabel-shaped dict)."""
    parsed = parse_reply(text)
    want = flatten(label)
    got = flatten(parsed) if parsed is not None else {}
    fields = {f: int(parsed is not None and field_right(f, got.get(f), want[f])) for f in FIELDS}
    return {
        "json_valid": int(parsed is not None),
        "fields": fields,
        "score": sum(fields.values()) / len(FIELDS),
        "parsed": parsed,
    }
