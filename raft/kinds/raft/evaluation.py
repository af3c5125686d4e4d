"""What ``raft.evaluate`` does for the raft kind's tasks (``raft_hotpot``, ``raft_hotpot_full``,
``raft_domain``, ``raft_domain_retrieval``): the data setting each reads, ``retrieval_k`` passed to the
retrieval task, the HotpotQA contamination check (``raft.kinds.raft.contamination``), and the oracle
split of the raft_domain tasks (the share of questions with the oracle in view, F1 / EM with and
without it) and their decline rates (``decline_unanswerable``, ``decline_answerable``) printed and
copied into ``samples_<task>.jsonl``, then, for raft_domain, F1 by the oracle's index among the
documents (``f1_pos<i>``) printed where an index has a value (``show_scores``). They are F1 tasks:
``raft.evaluate`` scores and reports them the common way (F1 / EM / answer_found, the summary table),
and the report adds the F1 by oracle position plot (``raft.kinds.raft.report``).
"""

from __future__ import annotations

from typing import Any

from raft.evaluate.plugins import TaskKind

RETRIEVAL_K_KEY = "raft_retrieval_k"  # task metadata read by raft_domain_retrieval (retrieval_k=)
# the raft_domain tasks' split: share of questions with the oracle in view (has_oracle for
# raft_domain, oracle_retrieved for raft_domain_retrieval), F1 / EM with and without it (NaN: no such
# question), then the share of unanswerable questions declined and of answerable ones declined wrongly
SPLIT_METRICS = (
    "has_oracle",
    "oracle_retrieved",
    "f1_oracle",
    "em_oracle",
    "f1_no_oracle",
    "em_no_oracle",
    "decline_unanswerable",
    "decline_answerable",
)
# per-sample fields of the raft_domain docs copied into samples_<task>.jsonl
SAMPLE_FIELDS = (
    "type",
    "level",
    "source",
    "chunk_id",
    "oracle_index",
    "has_oracle",
    "oracle_retrieved",
    "retrieved_ids",
    "answerable",
)
POSITIONS = 20  # raft_domain's f1_pos0 ... f1_pos19 (eval_tasks/raft_domain/raft_domain.yaml)


def metadata(cfg: Any, tasks: list[str]) -> dict[str, Any]:
    """``retrieval_k=``: the chunks raft_domain_retrieval retrieves per question."""
    return {RETRIEVAL_K_KEY: cfg.retrieval_k} if cfg.retrieval_k is not None else {}


def contamination(adapter: str, tasks: list[str], limit: int | None) -> tuple[list[str], list[str]]:
    from raft.kinds.raft.contamination import hotpot_contamination

    return hotpot_contamination(adapter, tasks, limit)


def show_scores(task: str, metrics: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    """The line ``raft.evaluate`` prints for an F1 task (f1 / em / answer_found, then the shown metrics
    the task has), then "f1 by oracle position: 0 0.5000, ..." for the indices that have a value."""
    from raft.evaluate.logged import show
    from raft.evaluate.run import print_scores

    print_scores(task, metrics)
    positions = [(i, metrics.get(f"f1_pos{i},none")) for i in range(POSITIONS)]
    known = [f"{i} {show(v)}" for i, v in positions if show(v) != "—"]
    if known:
        print("  f1 by oracle position: " + ", ".join(known))


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
    show=show_scores,  # the common line, then F1 by oracle position (raft_domain)
    report="raft.kinds.raft.report:oracle_report",  # the F1 by oracle position plot
)
