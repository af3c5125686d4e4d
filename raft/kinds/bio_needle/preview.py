"""kind=bio_needle in the data viewer (``raft.generate.preview``): a row's lengths, depth and label,
and the context around the needle with the needle's name marked. The interface every kind's preview
module has: ``raft.generate.preview_parts``."""

from __future__ import annotations

import json
import re
from typing import Any

from raft.generate.preview_parts import Texts, block, completion, user_text

COLUMNS = [("id", 0), ("split", 0), ("needle", 0), ("target tokens", 1), ("context tokens", 1), ("depth", 1),
           ("needle tokens", 1)]
FILTERS = [("split", "split"), ("length", "length")]
LEGEND = "<mark class=\"quote\">the needle's name</mark>"
REJECT_SOURCES = ("needle_name",)  # a reject without a source names its needle
EXCERPT = (400, 1600)  # characters before / after the needle shown of a long context


def recognises(columns: set[str]) -> bool:
    """Rows with a ``needle_name``."""
    return "needle_name" in columns


def preview_row(row: dict[str, Any], split: str, chunks: dict[str, str], texts: Texts) -> dict[str, Any]:
    """bio_needle: lengths, depth, the label, and the context around the needle (the needle's name marked)."""
    user, name = user_text(row), row.get("needle_name", "")
    at = user.lower().find(name.lower()) if name else -1
    start = max(0, at - EXCERPT[0]) if at >= 0 else 0
    excerpt = user[start:at + EXCERPT[1]] if at >= 0 else user[:EXCERPT[1]]
    marks = [[m.start(), m.end(), "quote", "", ""] for m in re.finditer(re.escape(name), excerpt, re.I)] if name else []
    head = (f"context around the needle: characters {start:,} to {start + len(excerpt):,} of {len(user):,}; "
            f"the needle starts at token {row.get('needle_start')} of {row.get('context_tokens')}")
    depth = float(row.get("depth") or 0.0)
    return {
        "c": [row.get("id", ""), split, name, row.get("target_tokens", 0), row.get("context_tokens", 0), round(depth, 3),
              row.get("needle_tokens", 0)],
        "f": {"split": split, "length": str(row.get("target_tokens", ""))},
        "b": [block("label (the answer the student learns)", completion(row) or json.dumps(row.get("label")),
                    search=True),
              block(head, excerpt, None, marks, "context"),
              block("instruction (end of the prompt)", user[-600:], search=True)],
    }
