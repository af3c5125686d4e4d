"""kind=raft in the data viewer (``raft.generate.preview``): a row's documents with the oracle
highlighted (a dropped oracle shown apart, from chunks.jsonl), and the chain-of-thought answer with
each quote linked to where it occurs (the oracle, another document, or nowhere). The interface every
kind's preview module has: ``raft.generate.preview_parts``."""

from __future__ import annotations

from typing import Any

from raft.generate.preview_parts import Texts, block, find
from raft.kinds.raft.samples import QUOTE, QUOTE_MARKS
from raft.prompts import ANSWER_TAG

COLUMNS = [("id", 0), ("split", 0), ("source", 0), ("question", 0), ("final answer", 0), ("oracle", 0),
           ("quotes found", 0), ("answer chars", 1)]
FILTERS = [("split", "split"), ("source", "source"), ("oracle", "oracle"), ("quotes", "quotes")]
LEGEND = ('<mark class="quote">quote, found in the oracle</mark><mark class="quote elsewhere">found in another document'
          '</mark><mark class="quote missing">found nowhere</mark><mark class="final">final answer</mark>'
          '<span class="block oracle">oracle</span><span class="block dropped">oracle dropped (p)</span>')
CHUNKS = True  # a dropped oracle is shown from the chunk pool
FALLBACK = True  # rows that no other kind recognises are RAFT rows


def recognises(columns: set[str]) -> bool:
    """Any row (asked last: ``FALLBACK``)."""
    return True


def preview_row(row: dict[str, Any], split: str, chunks: dict[str, str], texts: Texts) -> dict[str, Any]:
    """RAFT: the documents (oracle highlighted), the answer's quotes linked to where they occur."""
    docs, oracle = list(row.get("documents") or []), row.get("oracle_index")
    dropped = oracle is None
    pool = [*docs, chunks[row["chunk_id"]]] if dropped and row.get("chunk_id") in chunks else docs
    oracle_at = len(docs) if dropped and len(pool) > len(docs) else oracle
    cot = row.get("cot_answer") or ""
    answer_marks, doc_marks = [], [[] for _ in pool]
    found = 0
    # the quotes the quality gate checks (raft.kinds.raft.samples.parse_answer): without surrounding quote marks, empty ones skipped
    spans = [(m, text) for m in QUOTE.finditer(cot) if (text := m.group(1).strip(QUOTE_MARKS))]
    order = ([oracle_at] if oracle_at is not None else []) + [i for i in range(len(pool)) if i != oracle_at]
    for k, (m, text) in enumerate(spans):
        where = next(((i, span) for i in order if (span := find(text, pool[i]))), None)
        if where is None:
            answer_marks.append([m.start(1), m.end(1), "quote missing", f"a{k}", ""])
            continue
        found += 1
        i, (start, end) = where
        answer_marks.append([m.start(1), m.end(1), "quote", f"a{k}", f"d{k}"])
        doc_marks[i].append([start, end, "quote" if i == oracle_at else "quote elsewhere", f"d{k}", ""])
    tag = cot.rfind(ANSWER_TAG)
    if tag >= 0:
        answer_marks.append([tag, len(cot), "final", "", ""])
    quotes = len(spans)
    blocks = [block("question", row.get("question", ""), search=True)]
    for i, doc in enumerate(pool):
        if i == len(docs):
            head, cls = "oracle (dropped: not among the student's documents)", "oracle dropped"
        else:
            head, cls = (f"document {i + 1}" + (" - oracle" if i == oracle else ""), "oracle" if i == oracle else "")
        blocks.append(block(head, doc, texts, doc_marks[i], cls))
    blocks.append(block("chain-of-thought answer", cot, None, answer_marks, "answer", search=True))
    quotes_cell = f"{found}/{quotes}" if quotes else "none"
    return {
        "c": [row.get("id", ""), split, row.get("source", ""), row.get("question", ""), row.get("final_answer", ""),
              "dropped" if dropped else f"doc {oracle + 1}", quotes_cell, len(cot)],
        "f": {"split": split, "source": row.get("source", ""), "oracle": "dropped" if dropped else "shown",
              "quotes": "none" if not quotes else "all found" if found == quotes else "some not found"},
        "b": blocks,
    }
