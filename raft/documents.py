"""Document loading and token-aware chunking: the user-documents input of ``python -m raft.generate``.

    docs, problems = load_documents("../shared/data/docs")     # a file or a folder (recursive)
    tokenizer = load_tokenizer("meta-llama/Llama-3.1-8B-Instruct")   # or a local path
    chunks, dropped = chunk_documents(docs, tokenizer, chunk_size=512)

    result = load_chunks("../shared/data/docs", "path/to/tokenizer", 512, 0, 32)   # all three at once

Loaders: .txt and .md (UTF-8), .pdf (pypdf), .html/.htm (BeautifulSoup, scripts and styles
dropped), .json (a list of ``{title?, text}`` objects or one such object) and .jsonl (one object a
line). A file that cannot be read (unsupported extension, binary, not UTF-8, corrupt or encrypted
PDF, no text, wrong JSON shape) becomes a ``Problem`` naming the file (and the row) and never stops
the other files; a missing path or a folder without any loadable document raises ``DocumentError``.

Chunking uses langchain-text-splitters' ``RecursiveCharacterTextSplitter`` (paragraphs, then lines,
sentences, clauses, words, characters) with lengths counted in the student tokenizer's tokens.
Every piece is tokenized once (a per-document cache: the splitter measures each piece twice), and
the finished chunks are counted again in one batch call, which makes the limit exact: no chunk is
longer than ``chunk_size`` tokens. ``benchmarks/chunking.py`` measures the cost against one plain
batch tokenization pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raft.config import ConfigError, first_line

SUFFIXES = (".txt", ".md", ".pdf", ".html", ".htm", ".json", ".jsonl")
# Coarse to fine; the separator stays at the end of the piece before it ("end"), so a chunk
# ends with its sentence's full stop rather than starting with it.
SEPARATORS = ["\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ", ""]


class DocumentError(ConfigError):
    """No documents to work with, or an unusable tokenizer or chunking setting (one-line message)."""


@dataclass(frozen=True)
class Document:
    """The text of one source: a file, or one object of a JSON file (``file.json#3``)."""

    source: str
    text: str
    title: str = ""


@dataclass(frozen=True)
class Problem:
    """A source that was skipped, and why."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True)
class Chunk:
    """One chunk of a source document: the unit the teacher writes questions about."""

    id: str  # stable across runs: derived from source and position (and text hash)
    text: str  # what the student sees inside <DOCUMENT> ... </DOCUMENT>
    source: str  # file path, or "hotpot:<title>"
    position: int  # index of the chunk within its source
    title: str = ""  # the source's title (file name, HTML/PDF/JSON title, HotpotQA title)
    tokens: int = 0  # length in the student tokenizer's tokens (0: not counted)


@dataclass
class ChunkingResult:
    chunks: list[Chunk]
    problems: list[Problem]
    dropped_small: int


def chunk_id(source: str, position: int, text: str) -> str:
    """Short stable id: the same source, position and text give the same id in every run."""
    return hashlib.sha1(f"{source}\0{position}\0{text}".encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------


class _Skip(Exception):
    """Raised by a reader: the file becomes a Problem with this reason."""


def _decode(data: bytes) -> str:
    if b"\0" in data[:8192]:
        raise _Skip("binary file (NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _Skip(f"not UTF-8 text (undecodable byte at offset {e.start})") from e


def _read_text(path: Path, source: str) -> list[Document]:
    return [Document(source, _decode(path.read_bytes()), path.stem)]


def _read_html(path: Path, source: str) -> list[Document]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(path.read_bytes()), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    lines = (" ".join(line.split()) for line in soup.get_text("\n").splitlines())
    return [Document(source, "\n".join(line for line in lines if line), title or path.stem)]


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


def _json_rows(rows: Any, path: Path, source: str) -> list[Document]:
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
        docs.append(Document(f"{source}#{i}", row["text"], title or f"{path.stem} #{i}"))
    return docs


def _read_json(path: Path, source: str) -> list[Document]:
    try:
        rows = json.loads(_decode(path.read_bytes()))
    except json.JSONDecodeError as e:
        raise _Skip(f"not valid JSON (line {e.lineno} column {e.colno}: {e.msg})") from e
    return _json_rows(rows, path, source)


def _read_jsonl(path: Path, source: str) -> list[Document]:
    rows = []
    for i, line in enumerate(_decode(path.read_bytes()).splitlines()):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise _Skip(f"row {len(rows)} (line {i + 1}): not valid JSON ({e.msg})") from e
    return _json_rows(rows, path, source)


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
    chunk ids do not depend on the working directory or on how the path was written.
    """
    root = Path(path)
    if not root.exists():
        raise DocumentError(f"{path}: no such file or folder")
    base = root.resolve().parent
    docs: list[Document] = []
    problems: list[Problem] = []
    files = _files(root)
    for file in files:
        source = file.resolve().relative_to(base).as_posix()
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
        for doc in found:
            if doc.text.strip():
                docs.append(doc)
            else:
                problems.append(Problem(doc.source, "no text in this document" + (" (a scanned PDF?)" if file.suffix.lower() == ".pdf" else "")))
    if not docs:
        what = "empty folder" if not files else f"no loadable documents among {len(files)} file(s); first problem: {problems[0]}"
        raise DocumentError(f"{path}: {what}")
    return docs, problems


# --------------------------------------------------------------------------------------------------
# tokenizer and chunking
# --------------------------------------------------------------------------------------------------


def load_tokenizer(name_or_path: str | Path) -> Any:
    """The student's tokenizer (hub id or local folder); a one-line DocumentError when it cannot load."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(name_or_path))
    except Exception as e:  # offline, unknown id, gated repo, broken folder
        raise DocumentError(
            f"cannot load tokenizer {str(name_or_path)!r} ({type(e).__name__}); without network access "
            "or for an unknown id, pass a local tokenizer folder (tokenizer=PATH)"
        ) from e


def _counter(tokenizer: Any) -> tuple[Callable[[str], int], Callable[[list[str]], list[int]]]:
    """(count one text, count a batch) in tokens, without special tokens; the fast path when there is one."""
    backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
    if backend is not None:

        def one(text: str) -> int:  # the batch call skips offset tracking: about 20% cheaper than encode()
            return len(backend.encode_batch_fast([text], add_special_tokens=False)[0])

        def many(texts: list[str]) -> list[int]:
            return [len(e) for e in backend.encode_batch_fast(texts, add_special_tokens=False)]

        return one, many

    def one_slow(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def many_slow(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    return one_slow, many_slow


def _splitter(chunk_size: int, chunk_overlap: int, length: Callable[[str], int]) -> Any:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        separators=SEPARATORS,
        keep_separator="end",
        chunk_size=chunk_size,
        chunk_overlap=min(chunk_overlap, chunk_size - 1),
        length_function=length,
    )


def chunk_documents(
    docs: Iterable[Document],
    tokenizer: Any,
    chunk_size: int = 512,
    chunk_overlap: int = 0,
    min_chunk_tokens: int = 32,
    progress: bool = True,
) -> tuple[list[Chunk], int]:
    """Token-aware chunks of ``docs`` and the number of chunks dropped for being shorter than
    ``min_chunk_tokens``. Every chunk is at most ``chunk_size`` tokens long (counted without special
    tokens). With ``chunk_overlap`` > 0, consecutive chunks cut from one run of pieces share up to
    ``chunk_overlap`` tokens of whole pieces (langchain's semantics: sentences, clauses or words that
    fit; none across a paragraph that ended a chunk on its own).

    Ids and positions depend only on the document and the settings, so they are the same in every run."""
    from tqdm.auto import tqdm

    if chunk_size < 1:
        raise DocumentError(f"chunk_size must be at least 1 token, got {chunk_size}")
    if not 0 <= chunk_overlap < chunk_size:
        raise DocumentError(f"chunk_overlap must be >= 0 and smaller than chunk_size ({chunk_size}), got {chunk_overlap}")
    count_one, count_many = _counter(tokenizer)
    docs = list(docs)
    chunks: list[Chunk] = []
    dropped = 0
    for doc in tqdm(docs, desc="chunking", unit="doc", disable=not progress or len(docs) < 2):
        cache: dict[str, int] = {}  # per document: the splitter measures every piece twice

        def length(text: str, cache: dict[str, int] = cache) -> int:
            n = cache.get(text)
            if n is None:
                n = cache[text] = count_one(text)
            return n

        texts = _splitter(chunk_size, chunk_overlap, length).split_text(doc.text)
        sizes = count_many(texts)  # exact lengths of the finished chunks (one batch call)
        for position, (text, size) in enumerate(_fit(texts, sizes, chunk_size, count_one, count_many)):
            if size < min_chunk_tokens:
                dropped += 1
                continue
            chunks.append(Chunk(chunk_id(doc.source, position, text), text, doc.source, position, doc.title, size))
    return chunks, dropped


def _fit(
    texts: list[str], sizes: list[int], chunk_size: int, count_one: Callable[[str], int], count_many: Callable[[list[str]], list[int]]
) -> list[tuple[str, int]]:
    """(text, tokens) of each chunk, splitting again the rare ones whose joined pieces count more
    tokens than the sum of their parts (BPE merges across a piece boundary)."""
    out: list[tuple[str, int]] = []
    for text, size in zip(texts, sizes, strict=True):
        if size <= chunk_size:
            out.append((text, size))
            continue
        limit = chunk_size - (size - chunk_size)
        while True:
            limit = max(1, limit)
            parts = _splitter(limit, 0, count_one).split_text(text)
            part_sizes = count_many(parts)
            if all(s <= chunk_size for s in part_sizes) or limit == 1:
                break
            limit -= max(part_sizes) - chunk_size
        # A single character can still be several byte tokens when chunk_size is tiny: keep only what fits.
        out.extend((p, s) for p, s in zip(parts, part_sizes, strict=True) if s <= chunk_size)
    return out


def load_chunks(
    path: str | Path, tokenizer_name: str | Path, chunk_size: int = 512, chunk_overlap: int = 0, min_chunk_tokens: int = 32
) -> ChunkingResult:
    """Load a file or folder and chunk it with the named tokenizer (what ``raft.generate`` calls)."""
    docs, problems = load_documents(path)
    chunks, dropped = chunk_documents(docs, load_tokenizer(tokenizer_name), chunk_size, chunk_overlap, min_chunk_tokens)
    return ChunkingResult(chunks, problems, dropped)
