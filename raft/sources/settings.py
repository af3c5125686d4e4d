"""The reading settings shared by the kinds that read documents or HotpotQA (``source=``): their checks
(``check_source``) and the part of a run's fingerprint they make (``source_fingerprint``)."""

from __future__ import annotations

from typing import Any

from raft.config import ConfigError


def check_source(cfg: Any) -> None:
    """For kinds that read documents or HotpotQA (``source``)."""
    if cfg.source not in ("docs", "hotpot"):
        raise ConfigError(f"source={cfg.source!r} is not docs or hotpot")
    if cfg.source == "hotpot" and cfg.hotpot.chunks not in ("clean", "published"):
        raise ConfigError(f"hotpot.chunks={cfg.hotpot.chunks!r} is not clean or published")
    if cfg.source == "hotpot" and cfg.hotpot.eval_questions < 0:
        raise ConfigError(f"hotpot.eval_questions={cfg.hotpot.eval_questions} is negative")


def source_fingerprint(cfg: Any) -> dict[str, Any]:
    """The reading settings that change results: ``source`` and, for documents, how they are chunked."""
    fp: dict[str, Any] = {"source": cfg.source}
    if cfg.source == "hotpot":
        fp.update({"hotpot.chunks": cfg.hotpot.chunks, "hotpot.eval_questions": cfg.hotpot.eval_questions})
    if cfg.source == "docs":
        fp.update(tokenizer=cfg.tokenizer, chunk_size=cfg.chunk_size, chunk_overlap=cfg.chunk_overlap, min_chunk_tokens=cfg.min_chunk_tokens)
    return fp
