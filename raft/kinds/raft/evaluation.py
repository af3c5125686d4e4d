"""What ``raft.evaluate`` does for the raft kind's tasks (``raft_hotpot``, ``raft_hotpot_full``,
``raft_domain``, ``raft_domain_retrieval``): the data setting each reads, ``retrieval_k`` passed to the
retrieval task, the HotpotQA contamination check (``raft.kinds.raft.contamination``), and the oracle
split of the raft_domain tasks (the share of questions with the oracle in view, F1 / EM with and
without it) printed and copied into ``samples_<task>.jsonl``. They are F1 tasks: ``raft.evaluate``
scores, prints and reports them the common way (F1 / EM / answer_found, the summary table).
"""

from __future__ import annotations

from typing import Any

from raft.evaluate.plugins import TaskKind

RETRIEVAL_K_KEY = "raft_retrieval_k"  # task metadata read by raft_domain_retrieval (retrieval_k=)
# the raft_domain tasks' split: share of questions with the oracle in view (has_oracle for
# raft_domain, oracle_retrieved for raft_domain_retrieval), F1 / EM with and without it (NaN: no such question)
SPLIT_METRICS = ("has_oracle", "oracle_retrieved", "f1_oracle", "em_oracle", "f1_no_oracle", "em_no_oracle")
# per-sample fields of the raft_domain docs copied into samples_<task>.jsonl
SAMPLE_FIELDS = ("type", "level", "source", "chunk_id", "oracle_index", "has_oracle", "oracle_retrieved", "retrieved_ids")


def metadata(cfg: Any, tasks: list[str]) -> dict[str, Any]:
    """``retrieval_k=``: the chunks raft_domain_retrieval retrieves per question."""
    return {RETRIEVAL_K_KEY: cfg.retrieval_k} if cfg.retrieval_k is not None else {}


def contamination(adapter: str, tasks: list[str], limit: int | None) -> tuple[list[str], list[str]]:
    from raft.kinds.raft.contamination import hotpot_contamination

    return hotpot_contamination(adapter, tasks, limit)


TASKS = TaskKind(
    name="raft",
    tasks=("raft_hotpot", "raft_domain"),
    data={
        "raft_hotpot": ("raft_hotpot_path", "RAFT_HOTPOT_PATH"),
        "raft_hotpot_full": ("raft_hotpot_path", "RAFT_HOTPOT_PATH"),
        "raft_domain": ("raft_domain_data", "RAFT_DOMAIN_DATA"),
        "raft_domain_retrieval": ("raft_domain_data", "RAFT_DOMAIN_DATA"),
    },
    sample_fields=SAMPLE_FIELDS,
    shown_metrics=SPLIT_METRICS,
    metadata=metadata,
    contamination=contamination,
)
