"""kind=in2 in the data viewer (``raft.generate.preview``): a row's question, answer and gold segments,
each with its token position in the long context and the answer marked in it. The interface every
kind's preview module has: ``raft.generate.preview_parts``."""

from __future__ import annotations

from typing import Any

from raft.generate.preview_parts import Texts, block, find

COLUMNS = [("id", 0), ("split", 0), ("type", 0), ("question", 0), ("answer", 0), ("context tokens", 1),
           ("gold depths", 0)]
FILTERS = [("split", "split"), ("type", "type"), ("source", "source")]
LEGEND = '<mark class="quote">the answer in a gold segment</mark><span class="block oracle">gold segment</span>'


def recognises(columns: set[str]) -> bool:
    """Rows with ``gold_positions``."""
    return "gold_positions" in columns


def preview_row(row: dict[str, Any], split: str, chunks: dict[str, str], texts: Texts) -> dict[str, Any]:
    """in2: the question, the answer and each gold segment with its token position in the long context."""
    answer = row.get("final_answer", "")
    blocks = [block("question", row.get("question", ""), search=True),
              block("answer", answer, cls="answer", search=True)]
    positions = row.get("gold_positions") or []
    for i, doc in enumerate(row.get("documents") or []):
        pos = positions[i] if i < len(positions) else {}
        marks = []
        for part in answer.split(";"):
            span = find(part, doc)
            if span:
                marks.append([*span, "quote", "", ""])
        head = (f"gold segment {pos.get('segment', i + 1)}: tokens {pos.get('start')}-{pos.get('end')} "
                f"of {row.get('context_tokens')} (depth {float(pos.get('depth', 0.0)):.2f})")
        blocks.append(block(head, doc, texts, marks, "oracle"))
    depths = ", ".join(f"{float(p.get('depth', 0.0)):.2f}" for p in positions)
    return {
        "c": [row.get("id", ""), split, row.get("question_type", ""), row.get("question", ""), answer,
              row.get("context_tokens", 0), depths],
        "f": {"split": split, "type": row.get("question_type", ""), "source": row.get("source", "")},
        "b": blocks,
    }
