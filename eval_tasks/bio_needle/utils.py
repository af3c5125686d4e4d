"""Data, prompt and scoring of the ``bio_needle`` lm-eval task: the test split of a bio needle run.

Where the data comes from, first match wins:

1. task metadata ``bio_needle_data`` (``lm_eval --metadata '{"bio_needle_data": "OUT"}'`` or
   ``TaskManager(metadata=...)``, which ``python -m raft.evaluate recipe=bio_needle data=OUT`` uses),
2. the environment variable ``RAFT_BIO_NEEDLE_DATA``.

The path is the output folder of ``python -m raft.generate recipe=bio_needle`` (``OUT/dataset``
saved with ``save_to_disk``, its ``test`` split, else ``OUT/test.jsonl``) or a JSONL file of rows.
The test split is the evaluation sweep: context lengths x needle depths x needles per cell.

Each row is asked exactly as the student saw it in training: its ``prompt[0].content``
(``raft.prompts.bio_prompt(haystack, name)``). The target is ``raft.kinds.bio_needle.schema.compact(label)``. A reply
is scored field by field (``raft.kinds.bio_needle.score``): ``score`` (share of the 9 fields right), ``json_valid``,
one metric per field (``nationality``, ``birth_day`` ... ``death_year``, ``sportsperson``,
``politician``) and ``score_<N>k`` per context length (``target_tokens`` 4096 -> ``score_4k``), a
``(value, applies)`` pair averaged by ``mean_where`` over the rows of that length (NaN when none).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import datasets
from pydantic import ValidationError
from raft.eval_tasks.common import as_test_split, data_source, require_columns
from raft.eval_tasks.common import mean_where as mean_where  # the yaml's per-length aggregation

from raft.config import ConfigError, first_line
from raft.kinds.bio_needle.schema import BioLabel, compact
from raft.kinds.bio_needle.score import FIELD_METRICS, LENGTH_METRICS, length_metric, score_reply
from raft.records import task_test_rows

TASK = "bio_needle"
ENV_VAR = "RAFT_BIO_NEEDLE_DATA"
METADATA_KEY = "bio_needle_data"
REQUIRED = ("prompt", "label")
# the columns carried into the docs (and lm-eval's logged samples); messages / completion are not
KEEP = (
    "id", "needle_name", "label", "target_tokens", "context_tokens", "depth", "depth_target",
    "needle_start", "needle_tokens", "prompt",
)  # fmt: skip


def source(metadata: dict[str, Any]) -> tuple[str, str]:
    """(where the setting came from, the folder or file) of the bio needle data."""
    missing = f"{TASK} needs data: set {ENV_VAR} (or data=) to a `raft.generate recipe=bio_needle` output folder"
    return data_source(metadata, METADATA_KEY, ENV_VAR, missing=missing)


def _check(read: Path, i: int, row: dict[str, Any]) -> dict[str, Any]:
    """The row with its label checked against the schema (as BioLabel dumps it)."""
    require_columns(read, i, row, REQUIRED)
    prompt = row["prompt"]
    if not (
        isinstance(prompt, list)
        and prompt
        and isinstance(prompt[0], dict)
        and isinstance(prompt[0].get("content"), str)
    ):
        raise ConfigError(f"{read} row {i}: 'prompt' is not a list of chat messages (the user turn first)")
    try:
        label = BioLabel.model_validate(row["label"]).model_dump()
    except ValidationError as e:
        raise ConfigError(
            f"{read} row {i}: 'label' breaks the BioLabel schema ({first_line(str(e))})"
        ) from None
    tokens = row.get("target_tokens")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int)):
        raise ConfigError(f"{read} row {i}: 'target_tokens' is not a whole number ({tokens!r})")
    return {**row, "label": label}


def test_rows(metadata: dict[str, Any]) -> tuple[Path, list[dict[str, Any]]]:
    """(what was read, the checked rows of the test split)."""
    read, rows = task_test_rows(TASK, *source(metadata))
    return read, [_check(read, i, row) for i, row in enumerate(rows)]


def load(**metadata: Any) -> datasets.DatasetDict:
    """``custom_dataset`` of ``bio_needle``: a DatasetDict with the split ``test``."""
    read, rows = test_rows(metadata)
    lengths = sorted({r.get("target_tokens") for r in rows if r.get("target_tokens") is not None})
    unbucketed = [n for n in lengths if length_metric(n) is None]
    if unbucketed:  # counted in score, not per length; raft.evaluate prints every length from the samples
        print(
            f"{TASK}: no per-length metric for target_tokens {unbucketed} (declared: {', '.join(LENGTH_METRICS)})",
            file=sys.stderr,
        )
    return as_test_split(rows, KEEP)


# --------------------------------------------------------------------------------------------------
# prompt and scoring
# --------------------------------------------------------------------------------------------------


def doc_to_text(doc: dict[str, Any]) -> str:
    return doc["prompt"][0]["content"]


def doc_to_target(doc: dict[str, Any]) -> str:
    return compact(doc["label"])


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """score, json_valid, one 0/1 per field, and the per-length (value, applies) pairs."""
    s = score_reply(results[0], doc["label"])
    mine = length_metric(doc.get("target_tokens"))
    return {
        "score": s["score"],
        "json_valid": float(s["json_valid"]),
        **{FIELD_METRICS[f]: float(v) for f, v in s["fields"].items()},
        **{m: (s["score"], m == mine) for m in LENGTH_METRICS},
    }
