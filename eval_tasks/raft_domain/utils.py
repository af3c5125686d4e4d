"""Data, prompt and scoring for the ``raft_domain`` lm-eval tasks: the test split of a ``raft.generate`` run.

Where the data comes from, first match wins:

1. task metadata ``raft_domain_data`` (``lm_eval --metadata '{"raft_domain_data": "OUT"}'`` or
   ``TaskManager(metadata=...)``, which ``python -m raft.evaluate tasks=[raft_domain] data=OUT`` uses),
2. the environment variable ``RAFT_DOMAIN_DATA``.

The path is the output folder of ``python -m raft.generate`` (``OUT/dataset`` saved with
``save_to_disk``, else ``OUT/test.jsonl``) or a JSONL file of rows. The gold answer is
``final_answer``, scored with the official HotpotQA F1 / EM (``raft.metrics``).

``raft_domain`` asks each row exactly as the student saw it in training:
``raft.prompts.student_prompt(row.documents, row.question)`` with the already shuffled documents
(the oracle may be missing, as in training). Besides F1 / EM / answer_found over all rows it reports
them split by whether the oracle chunk is among the documents (``oracle_index`` not null):
``f1_oracle`` / ``em_oracle`` and ``f1_no_oracle`` / ``em_no_oracle``, and ``has_oracle``, the share
of rows with the oracle. A row without an ``oracle_index`` column (a hand-made file) counts in
neither split. A split no row falls in is NaN (``mean_where``). ``f1_pos0`` ... ``f1_pos19``: F1 of the
answerable rows whose oracle is the document at that index (NaN for an index no row has).

Unanswerable rows (``answerable`` false, ``raft.unanswerable_share``: no document holds the answer, the
gold is ``raft.prompts.DECLINE_ANSWER``; a row without the column is answerable) count in F1 / EM /
answer_found like any row, and in no oracle split nor position. ``decline_unanswerable`` is the share of
them where the model declined (``raft.metrics.declines``), ``decline_answerable`` the share of the
answerable rows where it declined wrongly; both are reported, as either alone can be gamed.

``raft_domain_retrieval`` asks the same questions in the same template, but the documents are the
top ``k`` chunks that BM25 (bm25s) retrieves for the question from the run's whole chunk pool
(``OUT/chunks.jsonl``, beside the JSONL file when the path is one), in rank order. ``k``: task
metadata ``raft_retrieval_k`` (``raft.evaluate retrieval_k=``), else the environment variable
``RAFT_RETRIEVAL_K``, else the task's ``dataset_kwargs.retrieval_k`` (4). It reports
``oracle_retrieved`` (share of answerable questions whose oracle chunk, the row's ``chunk_id``, is among
the ``k``), the same F1 / EM splits, where "oracle" means "retrieved", and the same decline rates.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets
from raft.eval_tasks.common import as_test_split, data_source, require_columns
from raft.eval_tasks.common import mean_where as mean_where  # the yaml's per-split aggregation

from raft.config import ConfigError
from raft.kinds.raft.evaluation import POSITIONS  # f1_pos0 ... f1_pos19: raft_domain.yaml's static list
from raft.kinds.raft.retrieval import Retriever as Retriever  # the training side's retriever too
from raft.metrics import declines, score
from raft.prompts import student_prompt
from raft.records import read_jsonl, task_test_rows

ENV_VAR = "RAFT_DOMAIN_DATA"
METADATA_KEY = "raft_domain_data"
K_ENV_VAR = "RAFT_RETRIEVAL_K"
K_METADATA_KEY = "raft_retrieval_k"
DEFAULT_K = 4
CHUNKS_FILE = "chunks.jsonl"
REQUIRED = ("question", "documents", "final_answer")
KEEP = ("id", "question", "documents", "final_answer", "oracle_index", "chunk_id", "source")

# --------------------------------------------------------------------------------------------------
# the test split
# --------------------------------------------------------------------------------------------------


def source(metadata: dict[str, Any], task: str = "raft_domain") -> tuple[str, str]:
    """(where the setting came from, the folder or file) of the raft.generate data."""
    missing = f"{task} needs data: set {ENV_VAR} to a raft.generate output folder"
    return data_source(metadata, METADATA_KEY, ENV_VAR, missing=missing)


def test_rows(metadata: dict[str, Any], task: str = "raft_domain") -> tuple[Path, Path, list[dict[str, Any]]]:
    """(the configured path, what was read, the checked rows of the test split)."""
    origin, where = source(metadata, task)
    read, rows = task_test_rows(task, origin, where)
    for i, row in enumerate(rows):
        require_columns(read, i, row, REQUIRED)
        if not isinstance(row["documents"], list) or not all(isinstance(d, str) for d in row["documents"]):
            raise ConfigError(f"{read} row {i}: 'documents' is not a list of strings")
    return Path(where), read, rows


def answerable(row: dict[str, Any]) -> bool:
    """Whether a document of the row holds its answer: ``answerable`` is not false (older data has no
    such column: answerable)."""
    return row.get("answerable") is not False


def has_oracle(row: dict[str, Any]) -> bool | None:
    """Whether the oracle chunk is among the row's documents; None when the row does not say, or has
    no oracle at all (an unanswerable row)."""
    if "oracle_index" not in row or not answerable(row):
        return None
    return row["oracle_index"] is not None


def with_answerable(
    rows: list[dict[str, Any]], columns: Sequence[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows and ``columns``, with ``answerable`` (true where a row lacks it) when some row has it."""
    if not any("answerable" in r for r in rows):
        return rows, list(columns)
    return [{**r, "answerable": answerable(r)} for r in rows], [*columns, "answerable"]


def load(**metadata: Any) -> datasets.DatasetDict:
    """``custom_dataset`` of ``raft_domain``: a DatasetDict with the split ``test``."""
    _, _, rows = test_rows(metadata)
    keep = [c for c in KEEP if c in rows[0]]
    rows, keep = with_answerable(rows, keep)
    return as_test_split([{**r, "has_oracle": has_oracle(r)} for r in rows], [*keep, "has_oracle"])


# --------------------------------------------------------------------------------------------------
# the retrieval variant
# --------------------------------------------------------------------------------------------------


def read_chunks(path: Path) -> list[dict[str, Any]]:
    """The chunk pool of a raft.generate run: ``chunks.jsonl`` in the folder (beside the file)."""
    folder = path if path.is_dir() else path.parent
    file = folder / CHUNKS_FILE
    if not file.is_file():
        raise ConfigError(
            f"{folder}: no {CHUNKS_FILE} (the run's chunk pool, which raft_domain_retrieval retrieves from); "
            "re-run raft.generate with this version, or use raft_domain"
        )
    chunks = read_jsonl(file)
    if not chunks:
        raise ConfigError(f"{file}: empty")
    for i, c in enumerate(chunks):
        if not isinstance(c.get("id"), str | int) or not isinstance(c.get("text"), str):
            raise ConfigError(f"{file} line {i + 1}: needs an 'id' and a 'text'")
    return chunks


def resolve_k(metadata: dict[str, Any], default: Any = DEFAULT_K) -> int:
    """k: metadata raft_retrieval_k, else RAFT_RETRIEVAL_K, else the task's default."""
    for origin, value in (
        (f"metadata {K_METADATA_KEY}", metadata.get(K_METADATA_KEY)),
        (K_ENV_VAR, os.environ.get(K_ENV_VAR)),
        ("retrieval_k", default),
    ):
        if value is None or value == "":
            continue
        try:
            k = int(value)
        except (TypeError, ValueError):
            k = 0
        if k < 1 or str(value).strip() != str(k):
            raise ConfigError(
                f"{origin}={value!r}: the number of retrieved chunks must be a whole number >= 1"
            )
        return k
    return DEFAULT_K


def load_retrieval(retrieval_k: Any = DEFAULT_K, **metadata: Any) -> datasets.DatasetDict:
    """``custom_dataset`` of ``raft_domain_retrieval``: the test questions with the top-k chunks
    retrieved from ``chunks.jsonl`` as their documents (see the module docstring)."""
    task = "raft_domain_retrieval"
    k = resolve_k(metadata, retrieval_k)
    where, read, rows = test_rows(metadata, task)
    chunks = read_chunks(where)
    index = {str(c["id"]): i for i, c in enumerate(chunks)}
    for i, row in enumerate(rows):
        if row.get("chunk_id") is None and not answerable(row):
            continue  # no oracle to look for
        if row.get("chunk_id") is None:
            raise ConfigError(f"{read} row {i}: no chunk_id (which chunk the question is about)")
        if str(row["chunk_id"]) not in index:
            raise ConfigError(
                f"{read} row {i}: chunk_id {row['chunk_id']!r} is not in {CHUNKS_FILE} (a file from another run?)"
            )
    ranked = Retriever([c["text"] for c in chunks]).top_k([r["question"] for r in rows], k)
    rows, keep = with_answerable(rows, ("id", "question", "final_answer", "chunk_id", "source"))
    out = []
    for row, hits in zip(rows, ranked, strict=True):
        oracle = index[str(row["chunk_id"])] if answerable(row) else None  # unanswerable: out of the split
        found = oracle in hits if oracle is not None else None
        out.append(
            {
                **{c: row.get(c) for c in keep},
                "documents": [chunks[j]["text"] for j in hits],
                "retrieved_ids": [str(chunks[j]["id"]) for j in hits],
                "oracle_index": hits.index(oracle) if found else None,
                "oracle_retrieved": found,
                "has_oracle": found,
            }
        )
    return as_test_split(out, list(out[0]))


# --------------------------------------------------------------------------------------------------
# prompt and scoring
# --------------------------------------------------------------------------------------------------


def doc_to_text(doc: dict[str, Any]) -> str:
    return student_prompt(doc["documents"], doc["question"])


def split_scores(scores: dict[str, float], oracle: bool | None) -> dict[str, tuple[float, bool]]:
    """F1 / EM as (value, applies) pairs for the rows with and without the oracle (see mean_where)."""
    return {
        "f1_oracle": (scores["f1"], oracle is True),
        "em_oracle": (scores["em"], oracle is True),
        "f1_no_oracle": (scores["f1"], oracle is False),
        "em_no_oracle": (scores["em"], oracle is False),
    }


def decline_scores(output: str, doc: dict[str, Any]) -> dict[str, tuple[float, bool]]:
    """Whether the reply declined, as (value, applies) pairs: over the unanswerable rows (right to) and
    over the answerable ones (wrong to)."""
    declined, unanswerable = float(declines(output)), not answerable(doc)
    return {
        "decline_unanswerable": (declined, unanswerable),
        "decline_answerable": (declined, not unanswerable),
    }


def position_scores(f1: float, doc: dict[str, Any]) -> dict[str, tuple[float, bool]]:
    """F1 as (value, applies) pairs per index of the oracle among the documents (f1_pos0 ... f1_pos19):
    it applies at the oracle's index, for an answerable row whose oracle is in view."""
    at = doc.get("oracle_index") if doc.get("has_oracle") and answerable(doc) else None
    return {f"f1_pos{i}": (f1, at == i) for i in range(POSITIONS)}


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """F1, EM (official HotpotQA rules), whether the output has the <ANSWER>: tag, and for every doc
    that load() built (it has ``has_oracle``) the same split by whether the oracle was in view, F1 by
    the oracle's index and the decline rates."""
    scores = score(results[0], doc["final_answer"])
    if "has_oracle" not in doc:
        return scores
    oracle = doc["has_oracle"] if answerable(doc) else None
    return {
        **scores,
        "has_oracle": (float(bool(oracle)), oracle is not None),
        **split_scores(scores, oracle),
        **position_scores(scores["f1"], doc),
        **decline_scores(results[0], doc),
    }


def mean_known(items: list[float | None]) -> float:
    """The mean of the values that are not None (``oracle_retrieved``: an unanswerable question has
    none); NaN when none is."""
    return mean_where([(v or 0.0, v is not None) for v in items])


def process_results_retrieval(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """As process_results, with ``oracle_retrieved`` (0 or 1; None for an unanswerable question, which
    has no oracle) in place of ``has_oracle``, and no positions."""
    scores = score(results[0], doc["final_answer"])
    found = None if doc["oracle_retrieved"] is None or not answerable(doc) else bool(doc["oracle_retrieved"])
    return {
        **scores,
        "oracle_retrieved": None if found is None else float(found),
        **split_scores(scores, found),
        **decline_scores(results[0], doc),
    }
