"""The people of a bio_needle run (kind=bio_needle): who is a needle (training or evaluation) and who fills.

    people = load_people(cfg, source)        # cfg: the GenerateConfig; source: cfg.input resolved
    people.evaluation, people.training, people.fillers, people.notes

``input`` is JSONL of anonymized ``{name, bio, json?}`` rows (``read_people``), or raw wiki_bio (``is_raw``:
a hub id, a parquet file or folder, JSONL with ``target_text``), anonymized first (``raw_people``).
Evaluation needles are ``bio_needle.eval_input`` or the first ``eval_people`` of the input in a seeded
order; they are never a training needle nor a filler. Fillers are ``bio_needle.haystack`` or the
training people. A problem is a one-line ``ConfigError`` naming the file.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raft.config import ConfigError, first_line
from raft.records import read_jsonl


@dataclass
class People:
    evaluation: list[dict[str, Any]]  # the evaluation needles (the test split's sweep)
    training: list[dict[str, Any]]  # the training needles
    fillers: list[dict[str, Any]]  # the haystacks' biographies
    notes: list[str]  # for the run's summary (raw input: how many were anonymized and dropped)


def is_raw(source: str) -> bool:
    """Raw wiki_bio rather than anonymized ``{name, bio}`` rows: a hub id, a parquet file, or JSONL whose
    first row has wiki_bio's ``target_text``."""
    path = Path(source)
    if not path.exists():
        return "/" in source and not source.startswith((".", "/"))  # owner/name: the hub
    if path.suffix == ".parquet" or path.is_dir():  # a folder of wiki_bio files: raft.kinds.bio_needle.wiki_bio reads it
        return True
    try:
        with path.open("rb") as f:
            first = f.readline().decode("utf-8")
    except UnicodeDecodeError as e:  # a binary file (or another encoding) named .jsonl
        raise ConfigError(f"input {path}: not a UTF-8 text file (byte {e.object[e.start]:#04x} at position {e.start}); "
                          "expected a JSONL of {name, bio} biographies or wiki_bio rows, or a .parquet file") from None
    except OSError as e:
        raise ConfigError(f"input {path}: cannot read ({first_line(e)})") from None
    try:
        return "target_text" in json.loads(first)
    except (json.JSONDecodeError, TypeError):
        return False


def read_people(path: str, what: str) -> list[dict[str, Any]]:
    """``{name, bio, json?}`` rows of a JSONL file; a row without them is a one-line error naming it."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{what}: file not found: {path} (a JSONL of {{name, bio}} biographies)")
    rows = read_jsonl(file)
    for n, row in enumerate(rows, 1):
        for key in ("name", "bio"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise ConfigError(f"{file} row {n}: no '{key}' (each line must be a JSON object with 'name' and 'bio')")
    if not rows:
        raise ConfigError(f"{file}: no biographies")
    return rows


def raw_people(cfg: Any, source: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(people, notes) of raw wiki_bio (the hub's parquet export, or a local file in its layout), anonymized:
    every token of each name replaced by a seeded random name; leaks, groups and lengths outside
    [min_bio_tokens, max_bio_tokens] dropped and counted."""
    from collections import Counter

    from raft.kinds.bio_needle.anonymize import anonymize, load_wiki_bio
    from raft.sources.chunking import load_tokenizer, token_counter

    s = cfg.bio_needle
    raw = load_wiki_bio(source)
    count = token_counter(load_tokenizer(cfg.tokenizer))[0]
    kept, dropped = anonymize(raw, count, random.Random(f"{cfg.seed}:names"), s.min_bio_tokens, s.max_bio_tokens)
    reasons = Counter(reason.split(":")[0] for _, reason in dropped)
    notes = [f"{len(raw)} raw biographies anonymized: {len(kept)} kept, {len(dropped)} dropped "
             f"({', '.join(f'{r} {n}' for r, n in sorted(reasons.items())) or 'none'})"]
    if not kept:
        raise ConfigError(f"{cfg.input}: no biography left after anonymization ({notes[0]})")
    return [{"name": p["name"], "bio": p["bio"]} for p in kept], notes  # the original name never goes further


def load_people(cfg: Any, source: str) -> People:
    """The evaluation needles, the training needles and the fillers of a run (see the module docstring)."""
    s, notes = cfg.bio_needle, []
    if is_raw(source):
        people, notes = raw_people(cfg, source)
    else:
        people = read_people(source, "input")
    if s.eval_input:
        evaluation = read_people(s.eval_input, "bio_needle.eval_input")
        training = people
    else:
        order = list(range(len(people)))
        random.Random(f"{cfg.seed}:eval-people").shuffle(order)
        held = set(order[: s.eval_people])
        evaluation = [people[i] for i in sorted(held)]
        training = [p for i, p in enumerate(people) if i not in held]
    eval_names = {p["name"] for p in evaluation}
    training = [p for p in training if p["name"] not in eval_names]  # an evaluation person is never trained on
    fillers = read_people(s.haystack, "bio_needle.haystack") if s.haystack else training
    fillers = [p for p in fillers if p["name"] not in eval_names]
    return People(evaluation, training, fillers, notes)
