"""Anonymization of biographies for the bio needle-in-a-haystack benchmark: random names for real ones.

    people = load_wiki_bio("michaelauli/wiki_bio", split="train", limit=5000)   # raft.kinds.bio_needle.wiki_bio, re-exported
    kept, dropped = anonymize(people, count_tokens, random.Random(0))           # [(index, reason)]

A model must extract facts about one person from a long context of similar biographies; the real
names are replaced by random ones so that it cannot answer from memory. ``raft.kinds.bio_needle.wiki_bio`` loads raw
wiki_bio and tells groups from persons; ``raft.kinds.bio_needle.name_words`` holds the name lists, parses names and
replaces words in a text; this module chooses the name, draws the new one and checks the result.

Anonymization rules (``anonymize``), in order, for each person:

- Rows already anonymized (they carry ``original_name``, or ``anonymized: true``) pass through
  unchanged: not filtered, not counted in ``dropped``; their names are reserved so no new name
  repeats them. The caller may also simply not call ``anonymize`` for anonymized input.
- ``group``: band and group articles are dropped (``raft.kinds.bio_needle.wiki_bio.is_group``: members rows, a
  ``background`` of group or band, "<name> are a ...", "is a ... band").
- The name: the infobox ``name`` (brackets "(footballer)" / "-lrb- ... -rrb-", titles such as "sir",
  suffixes such as "jr." or "obe", and anything after a comma removed), else the title, else
  ``birth_name`` / ``full_name`` / ``real_name``: the first of them whose words all occur in the
  text, else the first of them with any word in the text. ``no_name`` when none has a word left,
  ``mononym`` when it has a single word. The other forms (title, birth name, nicknames in quotes,
  "née ...") are aliases: their words are replaced too.
- Replacement: every name word maps to one random word, the same word to the same one wherever it
  occurs (also in possessives "smith 's", "smith's", and hyphenated "smith-jones", part by part):
  the last word of a name form to a random last name, the others to random first names, so a
  surname-only mention becomes the new surname. Initials ("j.", "j.r.r.") map letter by letter to
  the initials of the new first names. Particles inside a name ("van", "de", "bin") are removed
  with the name. Some name words are replaced only next to another name word (joined by spaces, a
  hyphen or nickname quotes: "june carter", not "born 23 june"): months, days and nationalities
  (replacing them would change the facts a model must extract), words biographies often use
  otherwise ("will", "young", "rose", "hall", "king": ``name_words._COMMON_WORDS``), a title kept
  in a short name ("earl smith"), one- and two-letter English words, particles at the start or end
  of a name, and initials. Whole words, case-insensitive, accents folded; a replacement takes the casing of
  the text it replaces (wiki_bio is lowercase). The new name (``name``) is the infobox name's words
  replaced, particles and nicknames left out.
- Names come from ``raft/kinds/bio_needle/names/first.txt`` and ``last.txt`` (a few hundred each, many origins,
  none a common English word), drawn with ``rng`` (same seed, same input: same names), never equal
  to a word of the original name, unique within the returned rows, and with a surname no other
  returned row has while possible.
- ``name_leak: '<word>'``: any word of 3+ letters of any name form that is still in the text (whole
  word, case-insensitive, accents folded) drops the biography: "may" in "may was elected", say.
- ``too_short`` / ``too_long``: the anonymized text outside [min_tokens, max_tokens] student tokens.

Kept rows are ``{name, bio, original_name, source_id?, json?}`` (no other input field is carried:
one could hold the real name); ``original_name`` must never reach a prompt.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from raft.config import ConfigError
from raft.kinds.bio_needle.name_words import (
    LETTER,
    Name,
    cased,
    first_names,
    fold,
    in_text,
    last_names,
    name_forms,
    parse_name,
    replace_words,
    word_re,
)
from raft.kinds.bio_needle.wiki_bio import ALIAS_FIELDS, is_group, load_wiki_bio

__all__ = ["anonymize", "load_wiki_bio"]  # load_wiki_bio: raft.kinds.bio_needle.wiki_bio's, re-exported


def _is_anonymized(row: dict[str, Any]) -> bool:
    return row.get("anonymized") is True or "original_name" in row


def _choose_name(person: dict[str, Any], text: str) -> tuple[Name | None, list[Name], str]:
    """(the name to replace by the new name, every name form, the reason when there is none)."""
    infobox = person.get("infobox") or {}
    raws = [person.get("name"), person.get("title"), *(infobox.get(f) for f in ALIAS_FIELDS),
            *(person.get("aliases") or ())]
    seen: set[str] = set()
    candidates: list[Name] = []
    extra: list[Name] = []
    for raw in raws:
        raw = str(raw or "").strip()
        if not raw or raw.lower() in seen:
            continue
        seen.add(raw.lower())
        main, others = name_forms(raw)
        candidates.append(parse_name(main))
        extra += [parse_name(o, nickname=True) for o in others]
    sized = [c for c in candidates if c.size() >= 2]
    primary = None
    for want_all in (True, False):
        for c in sized:
            found = in_text([p.key for p in c.words()], text)
            if found and (all(found) if want_all else any(found)):
                primary = c
                break
        if primary is not None:
            break
    if primary is None:
        if not sized:
            return None, [], "mononym" if any(c.size() == 1 for c in candidates) else "no_name"
        primary = sized[0]
    forms = [primary, *(c for c in candidates if c is not primary), *extra]
    return primary, forms, ""


_RANK = {"particle": 0, "initial": 1, "given": 2, "last": 3}


@dataclass
class _Draw:
    """One person's replacements: name word -> (new word or None to remove, weak)."""

    mapping: dict[str, tuple[str | None, bool]]
    name: str
    last: str


def _draw(primary: Name, forms: list[Name], rng: random.Random, free_lasts: list[str] | None) -> _Draw:
    """New words for every name word of ``forms``; the new surname of ``primary`` from ``free_lasts``
    (the last names no kept row has yet) when one there fits."""
    firsts, lasts = first_names(), last_names()
    roles: dict[str, str] = {}  # a word's strongest role over all forms: last > given > initial > particle
    weak: dict[str, bool] = {}
    for form in forms:
        for slot in form.slots:
            for p in slot:
                if _RANK[p.role] > _RANK[roles.get(p.key, "particle")] or p.key not in roles:
                    roles[p.key] = p.role
                weak[p.key] = weak.get(p.key, False) or p.weak
    originals = set(roles) | {fold(k) for k in roles}
    taken: set[str] = set()

    def pick(pool: tuple[str, ...]) -> str:
        for _ in range(1000):
            new = rng.choice(pool)
            low = new.lower()
            if low not in originals and low not in taken:
                taken.add(low)
                return new
        raise ConfigError("the shipped name lists are too small to draw distinct names for one person")

    new: dict[str, str] = {}
    primary_last = next((p.key for slot in primary.slots for p in slot if p.role == "last"), None)
    for key, role in roles.items():
        if role not in ("given", "last"):
            continue
        fits: list[str] = []
        if key == primary_last and free_lasts:
            fits = [n for n in free_lasts if n.lower() not in originals and n.lower() not in taken]
        if fits:
            new[key] = rng.choice(fits)
            taken.add(new[key].lower())
        else:
            new[key] = pick(lasts if role == "last" else firsts)
    letters: dict[str, str] = {}
    for key, role in roles.items():
        if role == "given" and LETTER.match(key):
            letters.setdefault(key[0], new[key][0].lower())
    for key, role in roles.items():
        if role == "initial":
            for ch in key:
                while ch.isalpha() and ch not in letters:
                    letter = rng.choice(firsts)[0].lower()
                    if letter != ch:
                        letters[ch] = letter
    mapping: dict[str, tuple[str | None, bool]] = {}
    for key, role in roles.items():
        if role == "particle":
            value: str | None = None
        elif role == "initial":
            value = "".join(letters.get(ch, ch) for ch in key)
        else:
            value = new[key]
        mapping[key] = (value, weak[key])
    for key, role in roles.items():  # "j." for "john", next to another name word only
        if role == "given" and LETTER.match(key) and f"{key[0]}." not in mapping:
            mapping[f"{key[0]}."] = (f"{letters[key[0]]}.", True)
    for key in list(mapping):
        mapping.setdefault(fold(key), mapping[key])
    shown = []
    for slot in primary.slots:
        parts = [cased(mapping[p.key][0] or "", p.shown) for p in slot if p.role != "particle"]
        if parts:
            shown.append("-".join(parts))
    return _Draw(mapping, " ".join(shown), new.get(primary_last, "") if primary_last else "")


def _leak(forms: list[Name], text: str) -> str | None:
    """The first name word (3+ letters) of any form still in ``text``, as a whole word."""
    seen: set[str] = set()
    for form in forms:
        for p in form.words():
            for word in (p.key, fold(p.key)):
                if len(word) >= 3 and word not in seen:
                    seen.add(word)
                    if word_re([word]).search(text):
                        return p.key
    return None


_MAX_TRIES = 2000
_TRIES_FOR_NEW_SURNAME = 40


def anonymize(
    people: list[dict[str, Any]],
    count_tokens: Callable[[str], int],
    rng: random.Random,
    min_tokens: int = 150,
    max_tokens: int = 400,
) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """(kept rows ``{name, bio, original_name, source_id?, json?}``, dropped ``(index, reason)``).

    ``people``: ``{name, bio}`` rows, with wiki_bio's ``title``, ``headers`` and ``infobox`` when
    ``load_wiki_bio`` made them, and optionally ``aliases`` (other forms of the name to replace). ``count_tokens``: the student tokenizer's count of a text. Reasons:
    ``group``, ``no_name``, ``mononym``, ``name_leak: '<word>'``, ``too_short``, ``too_long``. The
    rules are in the module docstring. Rows already anonymized pass through unchanged."""
    kept: list[dict[str, Any]] = []
    dropped: list[tuple[int, str]] = []
    used = {str(p.get("name", "")).lower() for p in people if isinstance(p, dict) and _is_anonymized(p)}
    free_lasts = list(last_names())  # surnames no kept row has yet: drawn first
    for index, person in enumerate(people):
        if not isinstance(person, dict) or not isinstance(person.get("bio"), str):
            raise ConfigError(f"person {index}: not a {{name, bio}} row")
        if _is_anonymized(person):
            kept.append(person)
            continue
        text = unicodedata.normalize("NFC", person["bio"])
        if is_group(person):
            dropped.append((index, "group"))
            continue
        primary, forms, reason = _choose_name(person, text)
        if primary is None:
            dropped.append((index, reason))
            continue
        for attempt in range(_MAX_TRIES):
            draw = _draw(primary, forms, rng, free_lasts if attempt < _TRIES_FOR_NEW_SURNAME else None)
            if draw.name.lower() not in used:
                break
        else:
            raise ConfigError(f"could not draw a new name for person {index} that no other person has after "
                              f"{_MAX_TRIES} tries: too many people for the shipped name lists")
        bio = replace_words(text, draw.mapping)
        leaked = _leak(forms, bio)
        if leaked:
            dropped.append((index, f"name_leak: '{leaked}'"))
            continue
        tokens = count_tokens(bio)
        if tokens < min_tokens or tokens > max_tokens:
            dropped.append((index, "too_short" if tokens < min_tokens else "too_long"))
            continue
        used.add(draw.name.lower())
        if draw.last in free_lasts:
            free_lasts.remove(draw.last)
        row: dict[str, Any] = {"name": draw.name, "bio": bio, "original_name": person.get("name")}
        for key in ("source_id", "json"):
            if key in person:
                row[key] = person[key]
        kept.append(row)
    return kept, dropped
