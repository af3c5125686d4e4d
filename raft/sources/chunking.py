"""Token-aware chunking: documents (raft.sources.documents) -> chunks of at most ``chunk_size`` student tokens.

    tokenizer = load_tokenizer("meta-llama/Llama-3.1-8B-Instruct")   # or a local path
    chunks, dropped = chunk_documents(docs, tokenizer, chunk_size=512)
    result = load_chunks("../shared/data/docs", "path/to/tokenizer", 512, 0, 32)   # load + chunk at once

The tokenizer is loaded with the ``tokenizers`` library alone (a ``tokenizer.json``), without
transformers or torch: counting tokens is all chunking needs, and importing transformers costs
seconds. ``chunk_documents`` also takes a transformers tokenizer.

Chunking uses langchain-text-splitters' ``RecursiveCharacterTextSplitter`` (paragraphs, then lines,
sentences, clauses, words, characters) with lengths counted in the student tokenizer's tokens.
Every piece is tokenized once (a per-document cache: the splitter measures each piece twice), and
the finished chunks are counted again in one batch call, which makes the limit exact: no chunk is
longer than ``chunk_size`` tokens. ``benchmarks/chunking.py`` measures the cost against one plain
batch tokenization pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.sources.documents import Document, DocumentError, Note, Problem, read_documents

# Coarse to fine; the separator stays at the end of the piece before it ("end"), so a chunk
# ends with its sentence's full stop rather than starting with it.
SEPARATORS = ["\n\n", "\n", ". ", "! ", "? ", "; ", ", ", " ", ""]


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
    problems: list[Problem]  # skipped sources
    dropped_small: int
    notes: list[Note] = field(default_factory=list)  # loaded sources with a caveat (e.g. not UTF-8)


def chunk_id(source: str, position: int, text: str) -> str:
    """Short stable id: the same source, position and text give the same id in every run."""
    return hashlib.sha1(f"{source}\0{position}\0{text}".encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------------
# tokenizer and chunking
# --------------------------------------------------------------------------------------------------


def load_tokenizer(name_or_path: str | Path) -> Any:
    """The student's tokenizer, for counting tokens; a one-line DocumentError when it cannot load.

    ``name_or_path``: a local folder holding ``tokenizer.json``, the path of such a file, or a hub id
    (its ``tokenizer.json``, from the Hugging Face cache when offline). The result is a
    ``tokenizers.Tokenizer`` with truncation and padding off; it counts the same tokens as the model's
    transformers fast tokenizer (which wraps that same file) without importing transformers or torch.
    Folders and hub repos that have only a slow tokenizer (no ``tokenizer.json``, e.g. SentencePiece
    files alone) fall back to transformers' ``AutoTokenizer``, which ``chunk_documents`` also takes.
    """
    name = str(name_or_path)
    path = Path(name_or_path).expanduser()
    try:
        if path.is_file():
            return plain_tokenizer(tokenizers_module().Tokenizer.from_file(str(path)))
        if path.is_dir():
            if (path / "tokenizer.json").is_file():
                return plain_tokenizer(tokenizers_module().Tokenizer.from_file(str(path / "tokenizer.json")))
            return _auto_tokenizer(name)  # a slow tokenizer only (or not a tokenizer folder at all)
        return _hub_tokenizer(name)
    except Exception as e:  # offline, unknown id, gated repo, broken folder or file
        raise DocumentError(
            f"cannot load tokenizer {name!r} ({type(e).__name__}); without network access "
            "or for an unknown id, pass a local tokenizer folder (tokenizer=PATH)"
        ) from e


def tokenizers_module() -> Any:
    import tokenizers

    return tokenizers


def _auto_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


def _hub_tokenizer(name: str) -> Any:
    try:
        return plain_tokenizer(tokenizers_module().Tokenizer.from_pretrained(name))
    except Exception as e:
        if not _repo_without_tokenizer_json(name, e):
            raise
    return _auto_tokenizer(name)


def _repo_without_tokenizer_json(name: str, error: Exception) -> bool:
    """Whether the hub repo exists (online, or in the cache when offline) but has no tokenizer.json."""
    try:
        from huggingface_hub import try_to_load_from_cache
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
    except ImportError:
        return False
    if isinstance(error, LocalEntryNotFoundError):  # offline or unreachable: is the repo cached at all?
        return isinstance(try_to_load_from_cache(name, "tokenizer_config.json"), str)
    return isinstance(error, EntryNotFoundError)


def plain_tokenizer(tokenizer: Any) -> Any:
    """``tokenizer`` (a ``tokenizers.Tokenizer``) with truncation and padding off; a copy when they were
    on, so the caller's object is left as it was. Either would make token counts wrong: a tokenizer.json
    can enable them, and a transformers tokenizer leaves its backend as its last call set it."""
    if tokenizer.truncation is None and tokenizer.padding is None:
        return tokenizer
    copy = type(tokenizer).from_str(tokenizer.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy


def token_counter(tokenizer: Any) -> tuple[Callable[[str], int], Callable[[list[str]], list[int]]]:
    """(count one text, count a batch) in tokens, without special tokens; the fast path when there is
    one (a ``tokenizers.Tokenizer``, or a transformers fast tokenizer's backend)."""
    if isinstance(tokenizer, tokenizers_module().Tokenizer):
        backend = tokenizer
    else:
        backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
    if backend is not None:
        backend = plain_tokenizer(backend)
        # The batch call skips offset tracking: about 20% cheaper than encode() (tokenizers >= 0.21).
        encode = getattr(backend, "encode_batch_fast", None) or backend.encode_batch

        def one(text: str) -> int:
            return len(encode([text], add_special_tokens=False)[0])

        def many(texts: list[str]) -> list[int]:
            return [len(e) for e in encode(texts, add_special_tokens=False)]

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
    fit; none across a paragraph that ended a chunk on its own, and none when the chunk's last piece
    alone is longer than ``chunk_overlap``).

    ``tokenizer``: what ``load_tokenizer`` returns (a ``tokenizers.Tokenizer``) or a transformers
    tokenizer (fast or slow); a truncation or padding setting left on it is ignored, not changed.

    Ids and positions depend only on the document and the settings, so they are the same in every run."""
    from tqdm.auto import tqdm

    if chunk_size < 1:
        raise DocumentError(f"chunk_size must be at least 1 token, got {chunk_size}")
    if not 0 <= chunk_overlap < chunk_size:
        raise DocumentError(f"chunk_overlap must be >= 0 and smaller than chunk_size ({chunk_size}), got {chunk_overlap}")
    count_one, count_many = token_counter(tokenizer)
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
    """Load a file or folder and chunk it with the named tokenizer (what ``raft.generate`` calls).

    ``problems``: the sources skipped; ``notes``: the sources loaded with a caveat the user should
    see (a file that was not UTF-8: ``docs/a.txt: decoded as cp1252 (not UTF-8)``)."""
    docs, problems, notes = read_documents(path)
    chunks, dropped = chunk_documents(docs, load_tokenizer(tokenizer_name), chunk_size, chunk_overlap, min_chunk_tokens)
    return ChunkingResult(chunks, problems, dropped, notes)
