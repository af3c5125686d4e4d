"""HotpotQA (distractor setting) in either layout, as plain dicts in the original layout.

    examples = load_hotpot("../shared/data/hotpotqa/hotpot_dev_distractor_first100.json")
    examples = load_hotpot("hotpotqa/hotpot_qa")          # the hub, validation split
    chunks = hotpot_chunks(examples, limit=100)           # deduplicated context paragraphs
    chunks, note = training_chunks(examples, "clean", 1000)  # none of the first 1,000 (evaluated) questions' paragraphs

Original layout: ``{_id, question, answer, type, level, supporting_facts: [[title, sent_id], ...],
context: [[title, [sentence, ...]], ...]}``. The Hugging Face layout (``id``, ``supporting_facts:
{title, sent_id}``, ``context: {title, sentences}``) is converted to it. Files may be JSON (a list)
or JSONL.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raft.sources.chunking import Chunk, chunk_id

HUB_ID = "hotpotqa/hotpot_qa"


class HotpotError(ValueError):
    """A HotpotQA source that cannot be read; the message names the file and the row."""


def _to_original(row: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        context = row["context"]
        if isinstance(context, dict):  # HF layout
            context = [[t, list(s)] for t, s in zip(context["title"], context["sentences"], strict=True)]
        facts = row.get("supporting_facts") or []
        if isinstance(facts, dict):
            facts = [[t, i] for t, i in zip(facts["title"], facts["sent_id"], strict=True)]
        return {
            "_id": row.get("_id", row.get("id")),
            "question": row["question"],
            "answer": row.get("answer", ""),
            "type": row.get("type", ""),
            "level": row.get("level", ""),
            "supporting_facts": facts,
            "context": context,
        }
    except (KeyError, TypeError, ValueError) as e:
        raise HotpotError(f"{where}: not a HotpotQA example ({type(e).__name__}: {e})") from e


def load_hotpot(source: str | Path, split: str = "validation", limit: int | None = None) -> list[dict[str, Any]]:
    """Examples from a local JSON/JSONL file (either layout) or from the hub (``hotpotqa/hotpot_qa``)."""
    path = Path(source)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        try:
            rows = json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise HotpotError(f"{path}: not valid JSON or JSONL (line {e.lineno}: {e.msg})") from e
        rows = rows[:limit] if limit else rows
        return [_to_original(r, f"{path} row {i}") for i, r in enumerate(rows)]
    if path.exists() or str(source).startswith((".", "/")):
        raise HotpotError(f"{source}: not a HotpotQA file")
    import datasets

    try:
        ds = datasets.load_dataset(str(source), "distractor", split=split)
    except Exception as e:  # offline, unknown id, ...
        raise HotpotError(f"cannot load {source} from the hub ({type(e).__name__}); pass a local file instead") from e
    if limit:
        ds = ds.select(range(min(limit, len(ds))))
    return [_to_original(r, f"{source} row {i}") for i, r in enumerate(ds)]


def paragraphs(example: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, text) of each context paragraph of an example in the original layout."""
    return [(title, "".join(sentences).strip()) for title, sentences in example["context"]]


def paragraph_text(title: str, text: str) -> str:
    """How a paragraph is shown as a document: its title, then its text (one format everywhere)."""
    return f"{title}\n{text}"


def hotpot_chunks(examples: list[dict[str, Any]], limit: int | None = None) -> list[Chunk]:
    """The chunks of HotpotQA mode: every context paragraph of ``examples`` (original layout, as
    ``load_hotpot`` returns them) shown as ``paragraph_text(title, text)``, each (title, text) once
    across all questions, in first-seen order (empty paragraphs skipped); ``limit`` keeps the first
    N (the published run: 100).
    Ids are stable: the same paragraphs give the same ids in every run."""
    seen: set[tuple[str, str]] = set()
    per_title: dict[str, int] = {}
    chunks: list[Chunk] = []
    for example in examples:
        for title, text in paragraphs(example):
            if (title, text) in seen or not text:
                continue
            seen.add((title, text))
            source = f"hotpot:{title}"
            position = per_title.get(title, 0)
            per_title[title] = position + 1
            shown = paragraph_text(title, text)
            chunks.append(Chunk(chunk_id(source, position, shown), shown, source, position, title))
            if limit is not None and len(chunks) >= limit:
                return chunks
    return chunks


def training_chunks(examples: list[dict[str, Any]], mode: str, eval_questions: int) -> tuple[list[Chunk], str]:
    """The chunks RAFT data may be made of, and a note saying how they were chosen.

    ``raft_hotpot`` scores the first ``eval_questions`` dev questions (official order). ``clean``
    (the default): only paragraphs of the questions after those, and none whose title or text is a
    paragraph (oracle or distractor) of an evaluated question, so no training row can contain text
    the evaluation shows. ``published``: every paragraph in file order, as the published write-up did
    (the first 100 are the full contexts of dev questions 0-9: contaminated).
    """
    if mode == "published":
        chunks = hotpot_chunks(examples)
        return chunks, (
            f"HotpotQA chunks: published (contaminated): paragraphs in file order, including those of the first "
            f"{eval_questions} questions raft_hotpot evaluates"
        )
    evaluated, rest = examples[:eval_questions], examples[eval_questions:]
    seen_titles = {title for ex in evaluated for title, _ in paragraphs(ex)}
    seen_texts = {text for ex in evaluated for _, text in paragraphs(ex)}
    chunks = [c for c in hotpot_chunks(rest) if c.title not in seen_titles and c.text.split("\n", 1)[1] not in seen_texts]
    if not chunks:
        raise HotpotError(
            f"no clean HotpotQA paragraphs: all {len(examples)} examples are among the first hotpot.eval_questions="
            f"{eval_questions} that raft_hotpot evaluates; use the whole dev set (the hub id hotpotqa/hotpot_qa or "
            "hotpot_dev_distractor_v1.json), set hotpot.eval_questions to what you evaluate, or hotpot.chunks=published "
            "(contaminated)"
        )
    dropped = len(hotpot_chunks(rest)) - len(chunks)
    return chunks, (
        f"HotpotQA chunks: clean: paragraphs of dev questions {eval_questions + 1}-{len(examples)} only, {dropped} of them "
        f"dropped as paragraphs of the first {eval_questions} questions raft_hotpot evaluates"
    )
