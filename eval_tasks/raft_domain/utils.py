"""Data, prompt and scoring for the ``raft_domain`` lm-eval task: the test split of a ``raft.generate`` run.

Where the data comes from, first match wins:

1. task metadata ``raft_domain_data`` (``lm_eval --metadata '{"raft_domain_data": "OUT"}'`` or
   ``TaskManager(metadata=...)``, which ``python -m raft.evaluate tasks=[raft_domain] data=OUT`` uses),
2. the environment variable ``RAFT_DOMAIN_DATA``.

The path is the output folder of ``python -m raft.generate`` (``OUT/dataset`` saved with
``save_to_disk``, else ``OUT/test.jsonl``) or a JSONL file of rows. Each row is asked exactly as the
student saw it in training: ``raft.prompts.student_prompt(row.documents, row.question)`` with the
already shuffled documents (the oracle may be missing, as in training); the gold answer is
``final_answer``, scored with the official HotpotQA F1 / EM (``raft.metrics``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import datasets

from raft.config import ConfigError, read_jsonl
from raft.metrics import score
from raft.prompts import student_prompt

ENV_VAR = "RAFT_DOMAIN_DATA"
METADATA_KEY = "raft_domain_data"
REQUIRED = ("question", "documents", "final_answer")
KEEP = ("id", "question", "documents", "final_answer", "oracle_index", "chunk_id", "source")


def _rows(path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """(file or folder actually read, rows of the test split)."""
    if path.is_file():
        return path, read_jsonl(path)
    if (path / "dataset").is_dir():
        try:
            data = datasets.load_from_disk(str(path / "dataset"))
        except Exception as e:  # a half-written or foreign folder
            raise ConfigError(f"{path / 'dataset'}: cannot load ({type(e).__name__}: {e})") from None
        if not isinstance(data, datasets.DatasetDict) or "test" not in data:
            raise ConfigError(f"{path / 'dataset'}: no 'test' split")
        return path / "dataset", data["test"].to_list()
    if (path / "test.jsonl").is_file():
        return path / "test.jsonl", read_jsonl(path / "test.jsonl")
    raise FileNotFoundError(path)


def load(**metadata: Any) -> datasets.DatasetDict:
    """``custom_dataset`` of the task: a DatasetDict with the split ``test``."""
    if metadata.get(METADATA_KEY):
        origin, where = f"metadata {METADATA_KEY}", str(metadata[METADATA_KEY])
    elif os.environ.get(ENV_VAR):
        origin, where = ENV_VAR, os.environ[ENV_VAR]
    else:
        raise ConfigError(f"raft_domain needs data: set {ENV_VAR} to a raft.generate output folder")
    try:
        read, rows = _rows(Path(where))
    except FileNotFoundError:
        raise ConfigError(
            f"raft_domain data ({origin}={where}): not a raft.generate output folder (no dataset/ or test.jsonl) "
            f"nor a JSONL file; check {origin}"
        ) from None
    except OSError as e:
        raise ConfigError(f"raft_domain data ({origin}={where}): cannot read ({e}); check {origin}") from None
    if not rows:
        raise ConfigError(f"{read}: the test split is empty")
    for i, row in enumerate(rows):
        missing = [c for c in REQUIRED if c not in row]
        if missing:
            raise ConfigError(f"{read} row {i}: missing column {', '.join(missing)}")
        if not isinstance(row["documents"], list) or not all(isinstance(d, str) for d in row["documents"]):
            raise ConfigError(f"{read} row {i}: 'documents' is not a list of strings")
    keep = [c for c in KEEP if c in rows[0]]
    return datasets.DatasetDict(
        {"test": datasets.Dataset.from_list([{c: r.get(c) for c in keep} for r in rows])}
    )


def doc_to_text(doc: dict[str, Any]) -> str:
    return student_prompt(doc["documents"], doc["question"])


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """F1, EM (official HotpotQA rules) and whether the output has the <ANSWER>: tag."""
    return score(results[0], doc["final_answer"])
