"""Document loading and token-aware chunking (to be completed: see issue 3)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chunk:
    """One chunk of a source document: the unit the teacher writes questions about."""

    id: str  # stable across runs: derived from source and position (and text hash)
    text: str  # what the student sees inside <DOCUMENT> ... </DOCUMENT>
    source: str  # file path, or "hotpot:<title>"
    position: int  # index of the chunk within its source
