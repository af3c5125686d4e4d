"""Document loading: the user-documents input of ``python -m raft.generate`` (chunking: raft.sources.chunking).

    docs, problems = load_documents("../shared/data/docs")     # a file or a folder (recursive)
    docs, problems, notes = read_documents("docs/")           # also the notes (encodings assumed)

Loaders: .txt and .md, .pdf (pypdf), .html/.htm (BeautifulSoup, scripts and styles dropped), .json
(a list of ``{title?, text}`` objects or one such object) and .jsonl (one object a line). A file that
cannot be read (unsupported extension, binary, corrupt or encrypted PDF, no text, wrong JSON shape)
becomes a ``Problem`` naming the file (and the row) and never stops the other files; a missing path
or a folder without any loadable document raises ``DocumentError``.

Text files are read as UTF-8 (a BOM is dropped). Files that are not UTF-8 (Latin-1 and Windows-1252
above all, also UTF-16 with a BOM) are decoded with the encoding charset-normalizer detects, and the
load reports a ``Note`` for each (``docs/a.txt: decoded as cp1252 (not UTF-8)``): the text may be
wrong if the guess is. Among equally plausible Western single-byte encodings cp1252 is preferred (it
is a superset of Latin-1's printable characters). Files with NUL bytes, or that decode plausibly in
no encoding, are skipped as binary.
"""


from __future__ import annotations

import codecs
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raft.config import ConfigError, first_line

SUFFIXES = (".txt", ".md", ".pdf", ".html", ".htm", ".json", ".jsonl")


class DocumentError(ConfigError):
    """No documents to work with, or an unusable tokenizer or chunking setting (one-line message)."""


@dataclass(frozen=True)
class Document:
    """The text of one source: a file, or one object of a JSON file (``file.json#3``)."""

    source: str
    text: str
    title: str = ""
    encoding: str = ""  # the encoding the file was decoded with when it was not UTF-8 ("" otherwise)


@dataclass(frozen=True)
class Remark:
    """Something to say about one source: shown as "SOURCE: TEXT"."""

    source: str
    text: str

    def __str__(self) -> str:
        return f"{self.source}: {self.text}"


class Problem(Remark):
    """A source that was skipped, and why (``reason``)."""

    @property
    def reason(self) -> str:
        return self.text


class Note(Remark):
    """A source that was loaded, with an assumption the user should know about (its text encoding)."""

    @property
    def message(self) -> str:
        return self.text


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------


class _Skip(Exception):
    """Raised by a reader: the file becomes a Problem with this reason."""


_BOMS = [  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]


def _decode(data: bytes) -> tuple[str, str]:
    """(text, encoding): encoding is "" for UTF-8 (the fast path, as before), else the one assumed."""
    for bom, encoding in _BOMS:  # UTF-16 and UTF-32 text is full of NUL bytes: known by its BOM
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                break
    if b"\0" in data[:8192]:
        raise _Skip("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError as e:
        utf8_error = e
    encoding = _detect_encoding(data)
    if encoding is None:
        raise _Skip(f"binary file or unknown encoding (not UTF-8: undecodable byte at offset {utf8_error.start})")
    try:
        return data.decode(encoding), encoding
    except (UnicodeDecodeError, LookupError) as e:  # detection looks at samples of a long file
        raise _Skip(f"not UTF-8 text (undecodable byte at offset {utf8_error.start}), nor {encoding}") from e


def _detect_encoding(data: bytes) -> str | None:
    """The most plausible encoding of non-UTF-8 bytes by charset-normalizer, preferring cp1252 when
    it is as plausible as the best guess (short Western texts fit many code pages equally well, and
    cp1252 is what such files nearly always are); None when nothing decodes without mess (binary)."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return None
    best = matches[0]
    for m in matches:
        if "cp1252" in m.could_be_from_charset and m.chaos <= best.chaos + 0.01 and m.coherence >= best.coherence - 0.05:
            return "cp1252"
    return best.encoding


def _read_text(path: Path, source: str) -> list[Document]:
    text, encoding = _decode(path.read_bytes())
    return [Document(source, text, path.stem, encoding)]


def _read_html(path: Path, source: str) -> list[Document]:
    from bs4 import BeautifulSoup

    text, encoding = _decode(path.read_bytes())
    soup = BeautifulSoup(text, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    lines = (" ".join(line.split()) for line in soup.get_text("\n").splitlines())
    return [Document(source, "\n".join(line for line in lines if line), title or path.stem, encoding)]


def _read_pdf(path: Path, source: str) -> list[Document]:
    import logging

    from pypdf import PdfReader

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # corrupt files are reported as Problems
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise _Skip("encrypted PDF (needs a password); decrypt it first")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or path.stem
    except _Skip:
        raise
    except Exception as e:  # pypdf raises many kinds on damaged files
        if type(e).__name__ == "DependencyError":  # AES-encrypted, and the cryptography package is missing
            raise _Skip(f"encrypted PDF that pypdf cannot open here ({e})") from e
        raise _Skip(f"corrupt PDF ({type(e).__name__}: {first_line(e)})") from e
    return [Document(source, "\n\n".join(p.strip() for p in pages if p.strip()), str(title))]


def _json_rows(rows: Any, path: Path, source: str, encoding: str = "") -> list[Document]:
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list):
        raise _Skip(f"JSON must be a list of {{title?, text}} objects or one such object, not {type(rows).__name__}")
    docs = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise _Skip(f"row {i}: expected an object with a string 'text' (and optional 'title')")
        title = row.get("title")
        if title is not None and not isinstance(title, str):
            raise _Skip(f"row {i}: 'title' must be a string")
        docs.append(Document(f"{source}#{i}", row["text"], title or f"{path.stem} #{i}", encoding))
    return docs


def _read_json(path: Path, source: str) -> list[Document]:
    text, encoding = _decode(path.read_bytes())
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        raise _Skip(f"not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from e
    return _json_rows(rows, path, source, encoding)


def _read_jsonl(path: Path, source: str) -> list[Document]:
    text, encoding = _decode(path.read_bytes())
    rows = []
    for i, line in enumerate(text.splitlines()):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise _Skip(f"row {len(rows)} (line {i + 1}): not valid JSON ({e.msg})") from e
    return _json_rows(rows, path, source, encoding)


READERS: dict[str, Callable[[Path, str], list[Document]]] = {
    ".txt": _read_text,
    ".md": _read_text,
    ".html": _read_html,
    ".htm": _read_html,
    ".pdf": _read_pdf,
    ".json": _read_json,
    ".jsonl": _read_jsonl,
}


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))


def load_documents(path: str | Path) -> tuple[list[Document], list[Problem]]:
    """Documents from a file or a folder (recursive, sorted), and the files that were skipped.

    A document's ``source`` is its path relative to the input's parent folder (``docs/a.txt``), so
    chunk ids do not depend on the working directory or on how the path was written. A document
    decoded from a file that was not UTF-8 names the encoding assumed in ``Document.encoding``
    (``load_chunks`` reports those files as ``Note``s).
    """
    docs, problems, _ = read_documents(path)
    return docs, problems


def read_documents(path: str | Path) -> tuple[list[Document], list[Problem], list[Note]]:
    root = Path(path)
    if not root.exists():
        raise DocumentError(f"{path}: no such file or folder")
    # sources are named from the input's parent down, as given: a symlinked file keeps its name in the
    # folder (resolving it would leave the folder, e.g. a folder of links to shared documents)
    base = Path(os.path.abspath(root)).parent
    docs: list[Document] = []
    problems: list[Problem] = []
    notes: list[Note] = []
    files = _files(root)
    for file in files:
        source = Path(os.path.abspath(file)).relative_to(base).as_posix()
        reader = READERS.get(file.suffix.lower())
        if reader is None:
            problems.append(Problem(source, f"unsupported file type {file.suffix or '(none)'!r}; use one of {', '.join(SUFFIXES)}"))
            continue
        try:
            found = reader(file, source)
        except _Skip as e:
            problems.append(Problem(source, str(e)))
            continue
        except OSError as e:
            problems.append(Problem(source, f"cannot read ({e.strerror or type(e).__name__})"))
            continue
        except Exception as e:  # a reader's library failing on odd input must not stop the other files
            problems.append(Problem(source, f"cannot read ({type(e).__name__}: {first_line(e)})"))
            continue
        encoding = next((doc.encoding for doc in found if doc.encoding), "")
        if encoding:
            notes.append(Note(source, f"decoded as {encoding} (not UTF-8)"))
        for doc in found:
            if doc.text.strip():
                docs.append(doc)
            else:
                problems.append(Problem(doc.source, "no text in this document" + (" (a scanned PDF?)" if file.suffix.lower() == ".pdf" else "")))
    if not docs:
        what = "empty folder" if not files else f"no loadable documents among {len(files)} file(s); first problem: {problems[0]}"
        raise DocumentError(f"{path}: {what}")
    return docs, problems, notes


