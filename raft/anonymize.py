"""Raw wiki_bio biographies, and their anonymization for the bio needle-in-a-haystack benchmark.

    people = load_wiki_bio("michaelauli/wiki_bio", split="train", limit=5000)   # or a local file
    kept, dropped = anonymize(people, count_tokens, random.Random(0))           # [(index, reason)]

A model must extract facts about one person from a long context of similar biographies; the real
names are replaced by random ones so that it cannot answer from memory.

Loading (``load_wiki_bio``): wiki_bio's loading script does not run on datasets >= 4, so the hub
source is the dataset's parquet export (the ``refs/convert/parquet`` branch, ``HUB_PARQUET``); a
local ``.parquet`` / ``.jsonl`` / ``.json`` file (or a folder of them) in the same layout works the
same. Splits: ``train``, ``val``, ``test``. Each row becomes ``{name, bio, source_id, title, headers,
infobox}``: ``name`` is the infobox ``name`` row (the article title, ``input_text.context``, when
there is none), ``bio`` the ``target_text`` on one line with wiki_bio's escaped brackets as brackets
("-lrb- born 1950 -rrb-" -> "( born 1950 )", as in the published benchmark's biographies; otherwise
lowercase and tokenized as it is), ``headers`` every infobox header and ``infobox`` the few infobox
rows anonymization reads (name-like rows, ``background``).

Anonymization rules (``anonymize``), in order, for each person:

- Rows already anonymized (they carry ``original_name``, or ``anonymized: true``) pass through
  unchanged: not filtered, not counted in ``dropped``; their names are reserved so no new name
  repeats them. The caller may also simply not call ``anonymize`` for anonymized input.
- ``group``: band and group articles are dropped: an infobox with a members row (``members``,
  ``current_members``, ``past_members``, ...), a ``background`` row saying group or band, or an
  ``origin`` row with ``genre`` / ``label`` / ``years_active`` / ``associated_acts`` and no birth or
  death row; or a first sentence that says "<name> are/were a|an|the ..." (before any is/was) or
  "is/was a|an|the [up to 5 words] band|group|duo|trio|orchestra|choir|..." (not "member of the band").
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
  otherwise ("will", "young", "rose", "hall", "king": ``_COMMON_WORDS``), a title kept in a short
  name ("earl smith"), one- and two-letter English words, particles at the start or end of a name,
  and initials. Whole words, case-insensitive, accents folded; a replacement takes the casing of
  the text it replaces (wiki_bio is lowercase). The new name (``name``) is the infobox name's words replaced,
  particles and nicknames left out.
- Names come from ``raft/names/first.txt`` and ``last.txt`` (a few hundred each, many origins,
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

import itertools
import json
import random
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from raft.config import ConfigError, first_line

WIKI_BIO = "michaelauli/wiki_bio"
# The hub's parquet export of a dataset (made for every public dataset, script-based ones included).
HUB_PARQUET = "hf://datasets/{repo}@refs%2Fconvert%2Fparquet/{config}/{split}/*.parquet"
_HUB_ALIASES = {"wiki_bio": WIKI_BIO}
_LOCAL_SUFFIXES = (".parquet", ".jsonl", ".json")
_NAMES_DIR = Path(__file__).resolve().parent / "names"

# Infobox rows a person's other names may be in (wiki_bio's headers, lowercase, underscores).
ALIAS_FIELDS = ("birth_name", "birthname", "full_name", "fullname", "real_name", "realname")
_KEPT_FIELDS = ("name", *ALIAS_FIELDS, "background")

GROUP_HEADERS = frozenset({"members", "current_members", "past_members", "former_members", "band_members",
                           "current_member", "past_member", "former_member"})
PERSON_HEADERS = frozenset({"birth_date", "birth_place", "death_date", "death_place", "born", "died",
                            "birthdate", "date_of_birth", "place_of_birth", "date_of_death", "birth_name"})
_MUSIC_HEADERS = frozenset({"genre", "label", "years_active", "associated_acts"})


# --------------------------------------------------------------------------------------- loading


def load_wiki_bio(source: str, split: str = "train", limit: int | None = None) -> list[dict[str, Any]]:
    """wiki_bio articles as ``{name, bio, source_id, title, headers, infobox}``.

    ``source``: a hub id (``michaelauli/wiki_bio``, or ``wiki_bio``), read from its parquet export
    ``HUB_PARQUET``; or a local ``.parquet`` / ``.jsonl`` / ``.json`` file, or a folder of them, in
    the same row layout (``input_text: {table: {column_header, row_number, content}, context}``,
    ``target_text``). ``split``: ``train``, ``val`` or ``test`` (hub only). ``limit``: the first N
    articles (streamed from the hub).
    ``source_id`` is the row's ``source_id`` / ``id`` when it has one, else ``<split>:<row>`` for the
    hub and ``<file name>:<row>`` for a file. One-line ConfigError when it cannot be read."""
    path = Path(source).expanduser()
    if path.exists():
        return [_person(row, where, default_id) for row, where, default_id in _local_rows(path, limit)]
    if _is_hub_id(source):
        return _hub_people(_HUB_ALIASES.get(source, source), split, limit, source)
    raise ConfigError(f"wiki_bio source not found: {source} (a hub id such as {WIKI_BIO}, or a local "
                      ".parquet / .jsonl file in the wiki_bio layout)")


def _is_hub_id(source: str) -> bool:
    return (not source.endswith(_LOCAL_SUFFIXES) and not source.startswith((".", "/", "~"))
            and re.fullmatch(r"[\w.-]+(?:/[\w.-]+)?", source) is not None)


def _hub_people(repo: str, split: str, limit: int | None, source: str) -> list[dict[str, Any]]:
    url = HUB_PARQUET.format(repo=repo, config="default", split=split)
    people = []
    try:
        import datasets

        ds = datasets.load_dataset("parquet", data_files={split: url}, split=split, streaming=limit is not None)
        for i, row in enumerate(itertools.islice(ds, limit) if limit is not None else ds):
            people.append(_person(row, f"{source} {split} row {i}", f"{split}:{i}"))
    except ConfigError:
        raise
    except Exception as e:  # offline, unknown repo or split, no parquet export, a broken file
        raise ConfigError(
            f"cannot load wiki_bio {source!r} split {split!r} from the hub ({type(e).__name__}: offline or not "
            f"found); pass a local .parquet or .jsonl file in the wiki_bio layout instead ({url})"
        ) from e
    return people


def _local_rows(path: Path, limit: int | None) -> list[tuple[dict, str, str]]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in _LOCAL_SUFFIXES and p.is_file())
        if not files:
            raise ConfigError(f"{path}: no .parquet, .jsonl or .json files in this folder")
    elif path.suffix in _LOCAL_SUFFIXES:
        files = [path]
    else:
        raise ConfigError(f"{path}: not a wiki_bio file (a .parquet, .jsonl or .json file in the wiki_bio layout)")
    out: list[tuple[dict, str, str]] = []
    for file in files:
        want = None if limit is None else limit - len(out)
        if want is not None and want <= 0:
            break
        rows = _read_file(file, want)
        out += [(row, f"{file} row {i}", f"{file.name}:{i}") for i, row in enumerate(rows)]
    return out


def _read_file(file: Path, limit: int | None) -> list[dict]:
    try:
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            rows: list[dict] = []
            for batch in pq.ParquetFile(file).iter_batches(batch_size=1024):
                rows += batch.to_pylist()
                if limit is not None and len(rows) >= limit:
                    break
            return rows[:limit] if limit is not None else rows
        text = file.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            lines = (line for line in text.splitlines() if line.strip())
            rows = [json.loads(line) for line in itertools.islice(lines, limit)]
        return rows[:limit] if limit is not None else rows
    except Exception as e:  # OSError, json.JSONDecodeError, pyarrow's ArrowInvalid for a file that is no parquet
        raise ConfigError(f"{file}: cannot read it ({type(e).__name__}: {first_line(e)})") from e


def _person(row: Any, where: str, default_id: str) -> dict[str, Any]:
    """One wiki_bio row as ``{name, bio, source_id, title, headers, infobox}``."""
    inp = row.get("input_text") if isinstance(row, dict) else None
    target = row.get("target_text") if isinstance(row, dict) else None
    if not isinstance(inp, dict) or not isinstance(target, str):
        raise ConfigError(f"{where}: not a wiki_bio row (needs input_text.table, input_text.context and target_text)")
    table = inp.get("table") or {}
    if isinstance(table, list):  # a list of {column_header, row_number, content} (some exports)
        cells = [(c.get("column_header"), c.get("content")) for c in table if isinstance(c, dict)]
    elif isinstance(table, dict):  # datasets' Sequence of a dict: a dict of lists
        cells = list(zip(table.get("column_header") or [], table.get("content") or [], strict=False))
    else:
        raise ConfigError(f"{where}: not a wiki_bio row (input_text.table is a {type(table).__name__})")
    infobox: dict[str, str] = {}
    for header, content in cells:
        header, content = str(header or "").strip(), _none(content)
        if header:
            infobox[header] = f"{infobox[header]} {content}".strip() if header in infobox else content
    title = _none(inp.get("context"))
    source_id = row.get("source_id", row.get("id"))
    return {
        "name": infobox.get("name") or title,
        "bio": _brackets(" ".join(target.split())),
        "source_id": str(source_id) if source_id is not None else default_id,
        "title": title,
        "headers": list(infobox),
        "infobox": {k: infobox[k] for k in _KEPT_FIELDS if infobox.get(k)},
    }


def _brackets(text: str) -> str:
    """wiki_bio's escaped brackets as brackets ("-lrb- born 1950 -rrb-" -> "( born 1950 )"), as in the
    published benchmark's biographies; the rest of the tokenized text stays as it is."""
    return re.sub(r"-(lrb|rrb|lsb|rsb|lcb|rcb)-", lambda m: _PTB[m.group(1)], text)


_PTB = {"lrb": "(", "rrb": ")", "lsb": "[", "rsb": "]", "lcb": "{", "rcb": "}"}


def _none(value: Any) -> str:
    """wiki_bio's cell text, '' for none (``<none>`` marks an empty cell)."""
    text = str(value or "").replace("<none>", " ")
    return " ".join(text.split())


# -------------------------------------------------------------------------------------- the lists


@cache
def first_names() -> tuple[str, ...]:
    """The shipped first names (``raft/names/first.txt``)."""
    return _name_list("first.txt")


@cache
def last_names() -> tuple[str, ...]:
    """The shipped last names (``raft/names/last.txt``)."""
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
_LETTER = re.compile(r"[^\W\d_]")
_BRACKETS = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_QUOTED = re.compile(r"``\s*(.*?)\s*''|\"\s*(.*?)\s*\"|“\s*(.*?)\s*”")
_ALIAS_SPLIT = re.compile(r"\s(?:née|nee|born|aka|a\.k\.a\.|also known as)\s")
# What may stand between two words of one name mention: spaces, a hyphen, nickname quotes.
_JOINER = re.compile(r"(?:[^\S\n]|-|``|''|[\"“”])+")


@lru_cache(maxsize=1)
def _ambiguous() -> frozenset[str]:
    """Name words replaced only next to another name word: months, days and nationalities (their
    replacement would change what the model must extract) and common words."""
    from raft.bio import NATIONALITIES

    nationalities = {n.lower() for n in NATIONALITIES if " " not in n}
    return frozenset({*_MONTHS, *_DAYS, *nationalities, *_EXTRA_DEMONYMS, *_COMMON_WORDS})


@dataclass
class _Part:
    key: str  # lowercase, NFC
    shown: str  # as written in the name
    role: str  # "given" | "last" | "initial" | "particle"
    weak: bool  # replaced only next to another name word


@dataclass
class _Name:
    slots: list[list[_Part]] = field(default_factory=list)  # a slot: the hyphen parts of one word

    def words(self) -> list[_Part]:
        return [p for slot in self.slots for p in slot if p.role in ("given", "last")]

    def size(self) -> int:
        return sum(any(p.role != "particle" for p in slot) for slot in self.slots)


def _fold(text: str) -> str:
    """Accents off: "josé" -> "jose"."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _name_forms(raw: str) -> tuple[str, list[str]]:
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


def _parse(text: str, nickname: bool = False) -> _Name:
    """The words of one name form, each with its role (given, last, initial, particle)."""
    tokens = []
    for raw in text.split():
        tok = raw.strip("`'\",;:!?{}“”‘’")
        low = tok.lower()
        if not tok or not _LETTER.search(tok) or re.search(r"\d", tok) or low in _STOPWORDS:
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
    name = _Name()
    for i, (tok, kind) in enumerate(zip(tokens, kinds, strict=True)):
        if kind != "word":
            name.slots.append([_Part(tok.lower(), tok, kind, True)])
            continue
        role = "last" if i == last else "given"
        subs = [s for s in tok.split("-") if s and _LETTER.search(s)]
        slot = []
        for j, sub in enumerate(subs):
            low = sub.lower()
            if low in _PARTICLES and j < len(subs) - 1:  # "al-rashid"
                slot.append(_Part(low, sub, "particle", True))
            else:
                weak = (low in _ambiguous() or low in _SHORT_WORDS or low in _PARTICLES or low in _HONORIFICS
                        or len(low) == 1)
                slot.append(_Part(low, sub, role, weak))
        if slot:
            name.slots.append(slot)
    return name


def _word_re(words: Iterable[str]) -> re.Pattern | None:
    alternatives = sorted({re.escape(w) for w in words if w}, key=len, reverse=True)
    if not alternatives:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def _in_text(words: list[str], text: str) -> list[bool]:
    return [bool(_word_re([w, _fold(w)]).search(text)) for w in words]


def _cased(new: str, like: str) -> str:
    """``new`` in the casing of ``like``: lowercase, UPPERCASE or Capitalized."""
    if like.islower():
        return new.lower()
    if like.isupper() and sum(c.isalpha() for c in like) > 1:
        return new.upper()
    return new[:1].upper() + new[1:]


# ------------------------------------------------------------------------------------ group test

_FIRST_SENTENCE_END = re.compile(r"(?<!\b[^\W\d_])\.(?=\s|$)")
_BAND_NOUNS = (r"(?:band|bands|group|duo|trio|quartet|quintet|sextet|ensemble|orchestra|choir|collective|"
               r"boyband|supergroup)")
_BAND = re.compile(
    r"\b(?:is|was|are|were)\s+(?:a|an|the)\s+"
    r"(?:(?!(?:of|in|with|for|and|who|from|at|by|on|member|members|singer|leader|founder|musician)\b)[\w'-]+\s+){0,5}"
    + _BAND_NOUNS + r"\b(?!\s*'s)(?!\s+(?:leader|member|founder|singer|vocalist|director|conductor)\b)",
    re.IGNORECASE,
)
_ARE = re.compile(r"\b(?:are|were)\s+(?:a|an|the)\b", re.IGNORECASE)
_IS = re.compile(r"\b(?:is|was)\b", re.IGNORECASE)


def is_group(person: dict[str, Any]) -> bool:
    """Whether a wiki_bio article is about a band or group, not one person (rules: module docstring)."""
    headers = {str(h).lower() for h in person.get("headers") or ()}
    infobox = person.get("infobox") or {}
    if headers & GROUP_HEADERS:
        return True
    if re.search(r"group|band", str(infobox.get("background", "")), re.IGNORECASE):
        return True
    if "origin" in headers and headers & _MUSIC_HEADERS and not headers & PERSON_HEADERS:
        return True
    text = str(person.get("bio") or "")
    end = _FIRST_SENTENCE_END.search(text)
    first = text[: end.start()] if end else text
    are = _ARE.search(first)
    if are and not _IS.search(first, 0, are.start()):
        return True
    return bool(_BAND.search(first))


# ----------------------------------------------------------------------------------- anonymizing


def _is_anonymized(row: dict[str, Any]) -> bool:
    return row.get("anonymized") is True or "original_name" in row


def _choose_name(person: dict[str, Any], text: str) -> tuple[_Name | None, list[_Name], str]:
    """(the name to replace by the new name, every name form, the reason when there is none)."""
    infobox = person.get("infobox") or {}
    raws = [person.get("name"), person.get("title"), *(infobox.get(f) for f in ALIAS_FIELDS),
            *(person.get("aliases") or ())]
    seen: set[str] = set()
    candidates: list[_Name] = []
    extra: list[_Name] = []
    for raw in raws:
        raw = str(raw or "").strip()
        if not raw or raw.lower() in seen:
            continue
        seen.add(raw.lower())
        main, others = _name_forms(raw)
        candidates.append(_parse(main))
        extra += [_parse(o, nickname=True) for o in others]
    sized = [c for c in candidates if c.size() >= 2]
    primary = None
    for want_all in (True, False):
        for c in sized:
            found = _in_text([p.key for p in c.words()], text)
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


def _draw(primary: _Name, forms: list[_Name], rng: random.Random, free_lasts: list[str] | None) -> _Draw:
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
    originals = set(roles) | {_fold(k) for k in roles}
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
        if role == "given" and _LETTER.match(key):
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
        if role == "given" and _LETTER.match(key) and f"{key[0]}." not in mapping:
            mapping[f"{key[0]}."] = (f"{letters[key[0]]}.", True)
    for key in list(mapping):
        mapping.setdefault(_fold(key), mapping[key])
    shown = []
    for slot in primary.slots:
        parts = [_cased(mapping[p.key][0] or "", p.shown) for p in slot if p.role != "particle"]
        if parts:
            shown.append("-".join(parts))
    return _Draw(mapping, " ".join(shown), new.get(primary_last, "") if primary_last else "")


def _replace(text: str, mapping: dict[str, tuple[str | None, bool]]) -> str:
    """``text`` with the name words replaced: weak words only in a mention with a strong one."""
    pattern = _word_re(mapping)
    matches = list(pattern.finditer(text)) if pattern else []
    if not matches:
        return text

    def entry(m: re.Match) -> tuple[str | None, bool]:
        word = m.group(0).lower()
        return mapping.get(word) or mapping.get(_fold(word)) or (m.group(0), True)

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
        out.append(_cased(value, m.group(0)))
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def _leak(forms: list[_Name], text: str) -> str | None:
    """The first name word (3+ letters) of any form still in ``text``, as a whole word."""
    seen: set[str] = set()
    for form in forms:
        for p in form.words():
            for word in (p.key, _fold(p.key)):
                if len(word) >= 3 and word not in seen:
                    seen.add(word)
                    if _word_re([word]).search(text):
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
        bio = _replace(text, draw.mapping)
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

