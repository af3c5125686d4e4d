"""Raw wiki_bio articles: loading them (the hub's parquet export or local files), and telling a
person's article from a band's or group's.

    people = load_wiki_bio("michaelauli/wiki_bio", split="train", limit=5000)   # or a local file
    persons = [p for p in people if not is_group(p)]

Loading (``load_wiki_bio``): wiki_bio's loading script does not run on datasets >= 4, so the hub
source is the dataset's parquet export (the ``refs/convert/parquet`` branch, ``HUB_PARQUET``); a
local ``.parquet`` / ``.jsonl`` / ``.json`` file (or a folder of them) in the same layout works the
same. Splits: ``train``, ``val``, ``test``. Each row becomes ``{name, bio, source_id, title, headers,
infobox}``: ``name`` is the infobox ``name`` row (the article title, ``input_text.context``, when
there is none), ``bio`` the ``target_text`` on one line with wiki_bio's escaped brackets as brackets
("-lrb- born 1950 -rrb-" -> "( born 1950 )", as in the published benchmark's biographies; otherwise
lowercase and tokenized as it is), ``headers`` every infobox header and ``infobox`` the few infobox
rows anonymization (``raft.kinds.bio_needle.anonymize``) reads: name-like rows (``name``, ``ALIAS_FIELDS``) and
``background``.

Groups (``is_group``): band and group articles, which ``raft.kinds.bio_needle.anonymize.anonymize`` drops: an infobox
with a members row (``members``, ``current_members``, ``past_members``, ...), a ``background`` row
saying group or band, or an ``origin`` row with ``genre`` / ``label`` / ``years_active`` /
``associated_acts`` and no birth or death row; or a first sentence that says "<name> are/were
a|an|the ..." (before any is/was) or "is/was a|an|the [up to 5 words] band|group|duo|trio|orchestra|
choir|..." (not "member of the band").
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

from raft.config import ConfigError, first_line

WIKI_BIO = "michaelauli/wiki_bio"
# The hub's parquet export of a dataset (made for every public dataset, script-based ones included).
HUB_PARQUET = "hf://datasets/{repo}@refs%2Fconvert%2Fparquet/{config}/{split}/*.parquet"
_HUB_ALIASES = {"wiki_bio": WIKI_BIO}
_LOCAL_SUFFIXES = (".parquet", ".jsonl", ".json")

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


# ----------------------------------------------------------------------------------------- groups

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
