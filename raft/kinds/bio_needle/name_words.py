"""Person names as words: the shipped random-name lists, a name's forms parsed into roled words, and
the replacement of name words in a text (``raft.kinds.bio_needle.anonymize`` chooses the words and their replacements).

    first_names(), last_names()             # raft/kinds/bio_needle/names/first.txt, last.txt: the new names' words
    main, others = name_forms('sir john "jack" smith jr. ( footballer ) , obe')   # others: ["jack"]
    name = parse_name(main)                 # Name: slots [[Part("john", role="given")], [Part("smith", role="last")]]
    word_re(["smith", "jones"])             # whole words, case-insensitive; fold("josé") -> "jose"
    replace_words(text, {"john": ("Ivo", False), "smith": ("Brandt", False), "may": ("Lena", True)})

``name_forms`` cuts brackets ("(footballer)", "-lrb- ... -rrb-") and anything after a comma, and
splits off the other forms (nicknames in quotes, "née ...", "born ...", "aka ..."). ``parse_name``
drops titles ("sir", kept in a two-word name: "earl smith"), suffixes ("jr.", "obe") and stop words,
and gives each word a role: ``last`` (the last word; none for a nickname), ``given``, ``initial``
("j.", "j.r.r.") or ``particle`` ("van", "de", "bin" inside a name; "al-" in "al-rashid"). A word is
*weak* (replaced only next to another name word) when it is a month, a day or a nationality
(``_ambiguous``: its replacement would change the facts a model must extract), a word biographies
often use otherwise (``_COMMON_WORDS``: "will", "young", "rose", "hall", "king"), a one- or two-letter
English word, a title kept in a short name, a particle at the start or end of a name, an initial or
a single letter.

``replace_words`` replaces the mapping's words (lowercase; give the accent-folded forms too) as whole
words, case-insensitive, each in the casing of the text (``cased``); a weak word only in a mention
(words joined by spaces, a hyphen or nickname quotes) with a strong one; a word mapped to None (a
particle) is removed with what joins it to the next word of its mention.

The name lists: a few hundred names each, many origins, none a common English word.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

from raft.config import ConfigError

_NAMES_DIR = Path(__file__).resolve().parent / "names"


# -------------------------------------------------------------------------------------- the lists


@cache
def first_names() -> tuple[str, ...]:
    """The shipped first names (``raft/kinds/bio_needle/names/first.txt``)."""
    return _name_list("first.txt")


@cache
def last_names() -> tuple[str, ...]:
    """The shipped last names (``raft/kinds/bio_needle/names/last.txt``)."""
    return _name_list("last.txt")


def _name_list(file: str) -> tuple[str, ...]:
    path = _NAMES_DIR / file
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"name list missing: {path} (a broken install of raft-recipes?)") from e
    return tuple(line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#"))


# ------------------------------------------------------------------------------------- name words

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_PARTICLES = frozenset({"de", "da", "di", "do", "dos", "das", "du", "des", "del", "della", "dei", "der", "den",
                        "van", "von", "ten", "ter", "la", "le", "lo", "las", "los", "el", "al", "bin", "bint",
                        "binti", "ibn", "y", "e", "zu", "af", "av", "ap"})
_HONORIFICS = frozenset({"sir", "dame", "dr", "dr.", "lord", "lady", "mr", "mr.", "mrs", "mrs.", "ms", "ms.",
                         "prof", "prof.", "professor", "rev", "rev.", "reverend", "hon", "hon.", "sheikh",
                         "shaykh", "haji", "hajji", "pope", "king", "queen", "prince", "princess", "emperor",
                         "empress", "sultan", "count", "countess", "baron", "baroness", "duke", "duchess",
                         "earl", "marquess", "viscount", "general", "captain", "colonel", "admiral"})
_SUFFIXES = frozenset({"jr", "jr.", "sr", "sr.", "ii", "iii", "iv", "v", "vi", "vii", "viii", "phd", "md",
                       "obe", "mbe", "cbe", "kbe", "gbe", "dbe", "kcmg", "gcmg", "qc", "kc", "mp", "frs",
                       "esq", "esq."})
_STOPWORDS = frozenset({"the", "of", "and", "a", "an", "in", "on", "at", "for", "by", "with", "to", "from",
                        "or", "as", "aka", "known", "born", "nee", "née", "unknown", "none", "n/a", "na",
                        "see", "below", "above", "various", "name", "names", "text"})
# One- and two-letter English words: as name words they are replaced next to another name word only.
_SHORT_WORDS = frozenset({"a", "i", "am", "an", "as", "at", "be", "by", "do", "go", "he", "hi", "if", "in",
                          "is", "it", "me", "my", "no", "of", "oh", "on", "or", "so", "to", "up", "us", "we",
                          "ye", "yo", "ok", "ad", "ah", "ha", "ho", "lo", "ma", "pa", "mo", "ox", "id"})
# Names that are also words biographies use often ("will", "rose to fame", "hall of fame", "green party"):
# replaced next to another name word only, so one used alone is a leak and drops the biography.
_COMMON_WORDS = ("will", "may", "mark", "bill", "grant", "sue", "don", "pat", "guy", "art", "rich", "frank",
                 "chase", "rose", "young", "long", "little", "hope", "faith", "grace", "joy", "hall", "park",
                 "white", "black", "green", "king", "lord", "bishop", "knight", "page", "major", "church",
                 "power", "law", "cross", "chance", "case", "day", "early", "best", "good", "new", "well", "field",
                 "fields", "street", "house", "home", "land", "west", "east", "north", "south", "star", "rock",
                 "stone", "river", "spring", "summer", "winter", "snow", "frost", "cash", "gold", "silver", "love",
                 "short", "sharp", "strong", "wall", "glass", "ford", "bond", "post", "head", "hunt", "rush",
                 "miles", "banks", "rivers", "cook", "hunter", "dean", "earl", "noble", "sterling", "justice")
_EXTRA_DEMONYMS = ("english", "scots", "scot", "american", "african", "european", "asian", "latin", "arab",
                   "arabic", "flemish", "basque", "catalan", "welsh", "irish", "british", "cornish")
_INITIAL = re.compile(r"(?:[^\W\d_]\.)+|[^\W\d_]")
LETTER = re.compile(r"[^\W\d_]")
_BRACKETS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_QUOTED = re.compile(r"``\s*(.*?)\s*''|\"\s*(.*?)\s*\"|“\s*(.*?)\s*”")
_ALIAS_SPLIT = re.compile(r"\s(?:née|nee|born|aka|a\.k\.a\.|also known as)\s")
# What may stand between two words of one name mention: spaces, a hyphen, nickname quotes.
_JOINER = re.compile(r"(?:[^\S\n]|-|``|''|[\"“”])+")


@lru_cache(maxsize=1)
def _ambiguous() -> frozenset[str]:
    """Name words replaced only next to another name word: months, days and nationalities (their
    replacement would change what the model must extract) and common words."""
    from raft.kinds.bio_needle.schema import NATIONALITIES

    nationalities = {n.lower() for n in NATIONALITIES if " " not in n}
    return frozenset({*_MONTHS, *_DAYS, *nationalities, *_EXTRA_DEMONYMS, *_COMMON_WORDS})


@dataclass
class Part:
    """One word of a name (or one part of a hyphenated word)."""

    key: str  # lowercase, NFC
    shown: str  # as written in the name
    role: str  # "given" | "last" | "initial" | "particle"
    weak: bool  # replaced only next to another name word


@dataclass
class Name:
    """One form of a name, parsed: its words in order."""

    slots: list[list[Part]] = field(default_factory=list)  # a slot: the hyphen parts of one word

    def words(self) -> list[Part]:
        """Its given and last-name parts (no initials, no particles)."""
        return [p for slot in self.slots for p in slot if p.role in ("given", "last")]

    def size(self) -> int:
        """Its words, particles not counted."""
        return sum(any(p.role != "particle" for p in slot) for slot in self.slots)


def fold(text: str) -> str:
    """Accents off: "josé" -> "jose"."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def name_forms(raw: str) -> tuple[str, list[str]]:
    """(the name itself, its other forms: nicknames in quotes, "née ..."), brackets and commas cut."""
    s = unicodedata.normalize("NFC", raw or "")
    for tok, ch in (("-lrb-", "("), ("-rrb-", ")"), ("-lsb-", "["), ("-rsb-", "]")):
        s = s.replace(tok, ch)
    for _ in range(2):  # nested brackets
        s = _BRACKETS.sub(" ", s)
    s = re.sub(r"[()\[\]]", " ", s)
    nicknames: list[str] = []

    def nick(m: re.Match) -> str:
        nicknames.append(next(g for g in m.groups() if g is not None))
        return " "

    s = _QUOTED.sub(nick, s)
    s = s.split(",")[0].split(";")[0]
    pieces = _ALIAS_SPLIT.split(f" {s} ")
    return pieces[0], [*nicknames, *pieces[1:]]


def parse_name(text: str, nickname: bool = False) -> Name:
    """The words of one name form, each with its role (given, last, initial, particle)."""
    tokens = []
    for raw in text.split():
        tok = raw.strip("`'\",;:!?{}“”‘’")
        low = tok.lower()
        if not tok or not LETTER.search(tok) or re.search(r"\d", tok) or low in _STOPWORDS:
            continue
        tokens.append(tok)
    while len(tokens) > 1 and tokens[-1].lower().rstrip(".") in _SUFFIXES:  # "jr.", "iii", "obe" at the end
        tokens.pop()
    while len(tokens) > 2 and tokens[0].lower() in _HONORIFICS:  # "sir john smith"; not "earl smith"
        tokens.pop(0)
    kinds = []
    for i, tok in enumerate(tokens):
        low = tok.lower()
        if _INITIAL.fullmatch(tok):
            kinds.append("initial")
        elif low in _PARTICLES and 0 < i < len(tokens) - 1 and not nickname:
            kinds.append("particle")
        else:
            kinds.append("word")
    words = [i for i, k in enumerate(kinds) if k == "word"]
    last = words[-1] if words and not nickname else -1
    name = Name()
    for i, (tok, kind) in enumerate(zip(tokens, kinds, strict=True)):
        if kind != "word":
            name.slots.append([Part(tok.lower(), tok, kind, True)])
            continue
        role = "last" if i == last else "given"
        subs = [s for s in tok.split("-") if s and LETTER.search(s)]
        slot = []
        for j, sub in enumerate(subs):
            low = sub.lower()
            if low in _PARTICLES and j < len(subs) - 1:  # "al-rashid"
                slot.append(Part(low, sub, "particle", True))
            else:
                weak = (low in _ambiguous() or low in _SHORT_WORDS or low in _PARTICLES or low in _HONORIFICS
                        or len(low) == 1)
                slot.append(Part(low, sub, role, weak))
        if slot:
            name.slots.append(slot)
    return name


def word_re(words: Iterable[str]) -> re.Pattern | None:
    alternatives = sorted({re.escape(w) for w in words if w}, key=len, reverse=True)
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def in_text(words: list[str], text: str) -> list[bool]:
    return [bool(word_re([w, fold(w)]).search(text)) for w in words]


def cased(new: str, like: str) -> str:
    """``new`` in the casing of ``like``: lowercase, UPPERCASE or Capitalized."""
    if like.islower():
        return new.lower()
    if like.isupper() and sum(c.isalpha() for c in like) > 1:
        return new.upper()
    return new[:1].upper() + new[1:]


def replace_words(text: str, mapping: dict[str, tuple[str | None, bool]]) -> str:
    """``text`` with the name words replaced: weak words only in a mention with a strong one.
    ``mapping``: lowercase word -> (its replacement, None to remove it; weak)."""
    pattern = word_re(mapping)
    matches = list(pattern.finditer(text)) if pattern else []
    if not matches:
        return text

    def entry(m: re.Match) -> tuple[str | None, bool]:
        word = m.group(0).lower()
        return mapping.get(word) or mapping.get(fold(word)) or (m.group(0), True)

    runs: list[int] = []
    for i, m in enumerate(matches):
        joined = i > 0 and _JOINER.fullmatch(text, matches[i - 1].end(), m.start()) is not None
        runs.append(runs[-1] if joined else (runs[-1] + 1 if runs else 0))
    strong = {runs[i] for i, m in enumerate(matches) if not entry(m)[1]}
    out, pos = [], 0
    for i, m in enumerate(matches):
        value, weak = entry(m)
        if weak and runs[i] not in strong:
            continue
        out.append(text[pos : m.start()])
        if value is None:  # a particle: removed with what joins it to the next word of the mention
            following = i + 1 < len(matches) and runs[i + 1] == runs[i]
            if following:
                pos = matches[i + 1].start()
            else:
                out.append(m.group(0))
                pos = m.end()
            continue
        out.append(cased(value, m.group(0)))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)
