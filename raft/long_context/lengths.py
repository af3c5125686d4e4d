"""Context-length buckets of the long-context tasks (bio_needle, in2_probe): a target length in tokens
named as their per-length metrics name it, and those metric names.

    length_name(4096)                     # '4k' (None: not a whole number of k tokens)
    length_metrics("score")               # ('score_1k', 'score_2k', ... 'score_128k'): LENGTH_BUCKETS
    length_metrics("em", (4, 8))          # ('em_4k', 'em_8k')

lm-eval needs a static metric list, so each task declares one metric per bucket in its yaml (a length
of none of the buckets counts only in the task's overall metrics).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

# the context lengths of the published sweep and its usual extensions, in k tokens (target_tokens / 1024):
# the bio_needle task's score_<n>k metrics; 1k and 6k: the 8k-context ladder (recipe=bio_needle_8k)
LENGTH_BUCKETS = (1, 2, 4, 6, 8, 12, 16, 24, 32, 64, 128)


def length_name(target_tokens: Any) -> str | None:
    """4096 -> '4k', 12288 -> '12k', 32000 -> '32k'; None for anything else (no bucket)."""
    if isinstance(target_tokens, bool) or not isinstance(target_tokens, int) or target_tokens <= 0:
        return None
    for unit in (1024, 1000):
        if target_tokens % unit == 0:
            return f"{target_tokens // unit}k"
    return None


def length_metrics(prefix: str, buckets: Iterable[int] = LENGTH_BUCKETS) -> tuple[str, ...]:
    """The per-length metric names of a task: ``<prefix>_<n>k`` for each bucket, in order."""
    return tuple(f"{prefix}_{k}k" for k in buckets)
