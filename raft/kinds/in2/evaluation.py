"""What ``raft.evaluate`` does for the ``in2_probe`` task (judge-free retrieval probes, raft.kinds.in2.probes):
the task metadata it passes (``probe_metadata``: the tokenizer the prompts are measured in, the sweep
settings), its sample rows (``probe_sample_row``, as ``samples_in2_probe.jsonl`` holds them) and its
printout (overall, per probe, per position bin).

``raft.evaluate`` finds them through ``TASKS`` (``raft.evaluate.plugins``), with the report's part
(``raft.kinds.in2.report``). The corpus of the document probe is ``data=``, passed as the task's data
setting (``TASKS.data``); the training data it must be disjoint from is
``probe_exclude=`` or the adapter's (``probe_exclude``), passed as ``in2_probe_exclude``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from raft.config import ConfigError, EvaluateConfig
from raft.evaluate.logged import output_of, show
from raft.evaluate.plugins import TaskKind

PROBE_TASK = "in2_probe"
# samples_in2_probe.jsonl: one row per probe, the fields the probe report reads
PROBE_SAMPLE_FIELDS = ("probe", "target_tokens", "context_tokens", "bins", "bin", "depth", "question", "answer")
# raft.evaluate setting -> the task's metadata key (eval_tasks/in2_probe/utils.py)
PROBE_SETTINGS = {
    "probe_lengths": "in2_probe_lengths",
    "probe_bins": "in2_probe_bins",
    "probe_samples": "in2_probe_samples",
    "probe_types": "in2_probe_probes",
}


def _plain(value: Any) -> Any:
    """A list setting as a plain list (omegaconf hands ListConfig)."""
    return [_plain(v) for v in value] if isinstance(value, list | tuple) or type(value).__name__ == "ListConfig" else value


def probe_metadata(cfg: EvaluateConfig, tasks: list[str]) -> dict[str, Any]:
    """The in2_probe task's metadata from the configuration ({} when it is not evaluated): the tokenizer
    (``tokenizer=``, else the model: the prompts are measured in the evaluated model's tokens) and the
    sweep settings that are set (null: the task's defaults), checked here in a second."""
    if PROBE_TASK not in tasks:
        return {}
    from raft.kinds.in2.probes import PROBES, ProbeSettings

    metadata: dict[str, Any] = {"in2_probe_tokenizer": cfg.tokenizer or cfg.model}
    for setting, key in PROBE_SETTINGS.items():
        value = getattr(cfg, setting)
        if value is not None:
            metadata[key] = _plain(value)
    lengths = metadata.get("in2_probe_lengths", [4096])
    types = metadata.get("in2_probe_probes", list(PROBES))
    if not isinstance(lengths, list) or not isinstance(types, list):
        raise ConfigError("probe_lengths and probe_types must be lists, e.g. probe_lengths=[4096,8192] probe_types=[structured]")
    ProbeSettings(lengths=tuple(lengths), bins=metadata.get("in2_probe_bins", 10),  # a bad value: one line, now
                  samples=metadata.get("in2_probe_samples", 5), probes=tuple(types))
    if "document" in types and not (cfg.data or os.environ.get("RAFT_IN2_PROBE_CORPUS")):
        raise ConfigError(
            "in2_probe: the document probe needs a corpus: data=DOCUMENTS (a file or folder, or a raft.generate "
            "output folder), or probe_types=[structured,code]"
        )
    if "document" in types:
        exclude = probe_exclude(cfg)
        if exclude:
            metadata["in2_probe_exclude"] = exclude
    return metadata


def probe_exclude(cfg: EvaluateConfig) -> str:
    """The training data folder the document probe's corpus is checked against: ``probe_exclude=``, else
    the adapter's (``raft.evaluate.lineage``); none for a base model. An adapter whose data cannot be
    traced gets a warning (its probe may ask about text it trained on)."""
    from raft.evaluate.lineage import training_data

    if cfg.probe_exclude:
        if not Path(cfg.probe_exclude).expanduser().is_dir():
            raise ConfigError(f"probe_exclude={cfg.probe_exclude}: no such folder (the in2 training data, a raft.generate output)")
        return str(cfg.probe_exclude)
    if not cfg.adapter:
        return ""
    data, how = training_data(cfg.adapter)
    if data is None:
        print(f"WARNING: in2_probe: cannot check the document probe's corpus against the adapter's training data ({how}); "
              "set probe_exclude=IN2_DATA_FOLDER", file=sys.stderr)
        return ""
    return str(data)


def is_probe_sample(sample: dict[str, Any], task: str = "") -> bool:
    """A logged sample of in2_probe: by its task, or (no task given) by its doc (a probe type and a bin)."""
    doc = sample.get("doc") or {}
    return task == PROBE_TASK or (not task and "probe" in doc and "bin" in doc and "cue" in doc)


def probe_sample_row(sample: dict[str, Any]) -> dict[str, Any]:
    """One logged in2_probe sample: doc_id, the probe's fields (probe, target_tokens, context_tokens,
    bins, bin, depth, question, answer: the gold), the model's response and its em / f1."""
    from raft.kinds.in2.probes import score_probe

    doc = sample.get("doc") or {}
    response = output_of(sample)
    if "em" in sample and "f1" in sample:
        scores = {"em": sample["em"], "f1": sample["f1"]}
    else:
        scores = score_probe(doc.get("probe", ""), response, str(doc.get("answer", "")), doc.get("cue") or "")
    return {
        "doc_id": sample.get("doc_id"),
        **{k: doc.get(k) for k in PROBE_SAMPLE_FIELDS},
        "response": response,
        "em": float(scores["em"]),
        "f1": float(scores["f1"]),
    }


def show_probe(task: str, metrics: dict[str, Any]) -> None:
    """Print em and f1, then EM / F1 per probe, EM per position bin and per length (those the run has)."""

    def value(name: str) -> Any:
        return metrics.get(f"{name},none")

    print(f"{task}: em {show(value('em'))}, f1 {show(value('f1'))}")
    probes = [p for p in ("document", "structured", "code") if value(f"em_{p}") is not None and show(value(f"em_{p}")) != "—"]
    if probes:
        print("  by probe: " + ", ".join(f"{p} em {show(value(f'em_{p}'))} f1 {show(value(f'f1_{p}'))}" for p in probes))
    bins = [k for k in range(100) if f"em_bin{k},none" in metrics and show(value(f"em_bin{k}")) != "—"]
    if bins:
        print("  em by position bin: " + ", ".join(f"{k} {show(value(f'em_bin{k}'))}" for k in bins))
    lengths = [m.split(",")[0] for m in metrics if m.startswith("em_") and m.endswith("k,none")]
    lengths = [m for m in lengths if show(value(m)) != "—"]
    if lengths:
        print("  em by length: " + ", ".join(f"{m[3:]} {show(value(m))}" for m in lengths))


def log_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of ``lm_eval --log_samples`` (the doc under "doc", the reply in "filtered_resps", the
    metrics at the top) as a flat probe sample row."""
    doc = {k: v for k, v in row["doc"].items() if k != "prompt"}  # the long context: not shown
    flat = {**doc, "doc_id": row.get("doc_id"), "response": output_of(row)}
    flat.update({k: row[k] for k in ("em", "f1") if k in row})
    return flat


TASKS = TaskKind(
    name="in2",
    tasks=(PROBE_TASK,),
    data={PROBE_TASK: ("in2_probe_corpus", "RAFT_IN2_PROBE_CORPUS")},  # the document probe's corpus
    apart="em",  # reported apart though it has an F1: its own part of the report
    # what every sample row must hold when a report reads it back (question, answer, response, f1,
    # depth, ... are shown when there)
    sample_keys=("target_tokens", "bin", "em"),
    sample_texts={"probe": "probe type (document, structured, code)"},
    metadata=probe_metadata,  # in2_probe's settings: a bad one fails in check
    sample_row=probe_sample_row,
    is_sample=is_probe_sample,
    log_row=log_row,
    show=lambda task, metrics, samples: show_probe(task, metrics),
    report="raft.kinds.in2.report:probe_report",
)
