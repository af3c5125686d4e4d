"""N-gram decontamination: drop generated QA that shares an n-gram with an evaluation set.

    from raft.kinds.in2.decontaminate import Contamination, filter_rows, load_eval_texts

    eval_set = Contamination(load_eval_texts("../shared/data/hotpotqa/hotpot_dev_all_qa.jsonl"), n=10)
    eval_set.hits("Were Scott Derrickson and Ed Wood of the same nationality?")   # -> True or False
    eval_set.match(text)                           # the first shared n-gram ("were scott ... same"), or None
    kept, dropped = filter_rows(rows, eval_set)    # dropped: (row, reason), the reason naming the n-gram

Words are those of ``raft.metrics.normalize_answer`` (the official HotpotQA normalisation): lowercase,
ASCII punctuation dropped (so "U.S." is "us" and "well-known" is "wellknown"), the articles a, an
and the dropped, whitespace collapsed. An n-gram is ``n`` consecutive such words (default 10, the
usual decontamination window); a text *hits* when one of its n-grams is one of the evaluation
set's. A text (evaluation or generated) with fewer than ``n`` words has no n-gram: it never matches,
so a short answer such as "yes" or "Animorphs" is never a hit, however often it occurs.

The evaluation set's n-grams are stored hashed (Python's ``hash`` of the word tuple, one int each,
valid within the process) in a set: the 7,405 questions and answers of the HotpotQA dev set load
in a fraction of a second and a look-up costs one hash per n-gram of the text.

``load_eval_texts(path)`` reads the evaluation texts of:

- a JSONL file (or a JSON list, such as ``hotpot_dev_distractor_v1.json``) of objects, each giving
  one or more of ``question``, ``answer``, ``final_answer``, ``bio``, ``text`` (every string among
  them is a text: the HotpotQA dev QA list ``{question, answer}``, the bio needles ``{name, bio}``);
- a ``raft.generate`` output folder: its ``test.jsonl``, whose rows are read as above; a
  ``bio_needle`` test row (``needle_name`` and ``prompt``) gives its needle's biography: the pieces of
  the haystack in its prompt (``raft.prompts.bio_prompt``, pieces joined by blank lines) that name
  the needle. The fillers, which are other people's biographies, are left out.

Problems (a missing or unreadable file, a bad line, a row with no text) are one-line ``ConfigError``s
naming the file and the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from raft.config import ConfigError
from raft.metrics import normalize_answer
from raft.records import read_json, read_jsonl

DEFAULT_N = 10
# the keys of a row whose strings are texts: of an evaluation row, and checked in a generated row
TEXT_KEYS = ("question", "answer", "final_answer", "bio", "text")
# the fields of a generated row that filter_rows checks by default (a raft row's cot_answer quotes
# its documents: add it to ``fields`` to check it too)
QA_FIELDS = ("question", "answer", "final_answer")

__all__ = [
    "DEFAULT_N",
    "QA_FIELDS",
    "TEXT_KEYS",
    "Contamination",
    "filter_rows",
    "load_eval_texts",
    "ngrams",
    "words",
]


def words(text: str) -> list[str]:
    """The words n-grams are made of: ``normalize_answer``'s (lowercase, no punctuation, no articles)."""
    return normalize_answer(text).split()


def ngrams(tokens: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    """Every run of ``n`` consecutive tokens, in order; none when there are fewer than ``n``."""
    for i in range(len(tokens) - n + 1):
        yield tuple(tokens[i : i + n])


class Contamination:
    """The hashed word n-grams of an evaluation set; ``hits``/``match`` test a text against them.

    A text shorter than ``n`` words (after normalisation) cannot match, neither as an evaluation
    text (it adds no n-gram) nor as a text tested."""

    def __init__(self, texts: Iterable[str], n: int = DEFAULT_N):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"decontamination n must be a whole number >= 1, got {n!r}")
        self.n = n
        self.texts = 0
        self._hashes: set[int] = set()
        for text in texts:
            self.texts += 1
            self._hashes.update(hash(g) for g in ngrams(words(text), n))

    @classmethod
    def from_files(cls, paths: Iterable[str | Path], n: int = DEFAULT_N) -> Contamination:
        """The n-grams of the evaluation texts of every path (see ``load_eval_texts``)."""
        return cls((t for p in paths for t in load_eval_texts(p)), n)

    def __len__(self) -> int:
        """The number of distinct n-grams."""
        return len(self._hashes)

    def match(self, text: str) -> str | None:
        """The first n-gram of ``text`` that the evaluation set has (its normalised words joined by
        spaces), or None."""
        for g in ngrams(words(text), self.n):
            if hash(g) in self._hashes:
                return " ".join(g)
        return None

    def hits(self, text: str) -> bool:
        """Whether ``text`` shares an n-gram with the evaluation set."""
        return self.match(text) is not None

    def __repr__(self) -> str:
        return f"Contamination(n={self.n}, texts={self.texts}, ngrams={len(self)})"


def filter_rows(
    rows: Iterable[dict[str, Any]], contamination: Contamination, fields: Sequence[str] = QA_FIELDS
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
    """(the rows none of whose ``fields`` hits, [(row, reason) for the others]); the reason names the
    first field that hits and the n-gram it shares: "question shares a 10-gram with the evaluation
    set: 'were scott ...'". A field a row lacks (or that is not a string) is not checked."""
    kept, dropped = [], []
    for row in rows:
        for name in fields:
            value = row.get(name)
            hit = contamination.match(value) if isinstance(value, str) else None
            if hit is not None:
                reason = f"{name} shares a {contamination.n}-gram with the evaluation set: '{hit}'"
                dropped.append((row, reason))
                break
        else:
            kept.append(row)
    return kept, dropped


# --------------------------------------------------------------------------------------------------
# loading evaluation sets
# --------------------------------------------------------------------------------------------------


def _needle_bio(row: dict[str, Any], where: str) -> list[str]:
    """The needle's biography in a bio_needle test row: the haystack pieces of its prompt that name it."""
    from raft.prompts import bio_prompt

    name, prompt = row["needle_name"], row["prompt"]
    content = prompt[0].get("content") if isinstance(prompt, list) and prompt and isinstance(prompt[0], dict) else prompt  # fmt: skip
    if not isinstance(name, str) or not name or not isinstance(content, str):
        raise ConfigError(f"{where}: needle_name and prompt are not texts")
    head, tail = bio_prompt("\x00", name).split("\x00")
    if not (content.startswith(head) and content.endswith(tail)):
        raise ConfigError(f"{where}: prompt is not raft.prompts.bio_prompt's for needle {name!r}")
    pieces = [p for p in content[len(head) : len(content) - len(tail)].split("\n\n") if name in p]
    if not pieces:
        raise ConfigError(f"{where}: the needle {name!r} is not in its prompt's haystack")
    return pieces


def _row_texts(row: dict[str, Any], where: str) -> list[str]:
    texts = [row[k] for k in TEXT_KEYS if isinstance(row.get(k), str) and row[k].strip()]
    if "needle_name" in row and "prompt" in row and not isinstance(row.get("bio"), str):
        texts += _needle_bio(row, where)
    if not texts:
        raise ConfigError(f"{where}: no text ({', '.join(TEXT_KEYS)}; nor a bio_needle prompt)")
    return texts


def _json_list(path: Path) -> list[dict[str, Any]]:
    data = read_json(path, of=list, what="a JSON list of objects")
    for i, row in enumerate(data, 1):
        if not isinstance(row, dict):
            raise ConfigError(f"{path} item {i}: not a JSON object")
    return data


def load_eval_texts(path: str | Path) -> list[str]:
    """Every evaluation text of a JSONL file, a JSON list or a raft.generate output folder (its
    test.jsonl); see the module docstring for what a row gives."""
    path = Path(path)
    if path.is_dir():
        if not (path / "test.jsonl").is_file():
            raise ConfigError(f"{path}: a folder without test.jsonl (not a raft.generate output folder)")
        path = path / "test.jsonl"
    elif not path.is_file():
        raise ConfigError(f"{path}: no such evaluation file or folder")
    if path.suffix == ".json":
        rows, unit = _json_list(path), "item"
        numbered = enumerate(rows, 1)
    else:
        unit = "line"
        numbered = _numbered_jsonl(path)
    texts: list[str] = []
    for n, row in numbered:
        texts += _row_texts(row, f"{path} {unit} {n}")
    if not texts:
        raise ConfigError(f"{path}: no evaluation text (empty)")
    return texts


def _numbered_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of a JSONL file, blank lines skipped (bad lines: read_jsonl's errors)."""
    rows = iter(read_jsonl(path))
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                yield n, next(rows)
