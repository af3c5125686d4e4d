"""Reading result folders: a ``raft.evaluate`` output (``results.json``, ``samples_<task>.jsonl``)
or an ``lm_eval --output_path ... --log_samples`` one (``results_*.json``, ``samples_<task>_*.jsonl``)
as a ``Run``: who was evaluated, the metrics per task and the samples per task.

A ``bio_needle`` task (the bio needle-in-a-haystack benchmark) has no F1: its metrics (``score``,
``json_valid``, one per scored field, ``score_<n>k`` per context length) go to ``Run.bio`` and its
samples (one row per needle, length and depth) to ``Run.bio_samples``, which ``raft.kinds.bio_needle.report``
reports on; ``Run.metrics`` and ``Run.samples`` keep the F1 tasks alone.

An ``in2_probe`` task (the IN2 "lost in the middle" position probe) is reported apart too, though it
has an F1: its metrics (``em``, ``f1``, ``em_<probe>``, ``em_bin<i>``, ...) go to ``Run.probe`` and its
samples (one row per probe: probe type, target_tokens, bin, depth, question, answer, response, em,
f1) to ``Run.probe_samples``, which ``raft.kinds.in2.report`` reports on.

Every problem with a folder is a ``ReportError``: one line naming the file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.config import ConfigError, read_jsonl
from raft.evaluate.run import BIO_TASK, METRICS, SPLIT_METRICS, sample_row, short_name
from raft.kinds.bio_needle.evaluation import bio_sample_row


class ReportError(ConfigError):
    """A result folder that cannot be reported on: one line naming the file."""


@dataclass
class Run:
    """One result folder: who was evaluated, the metrics per task, the samples per task."""

    folder: Path
    info: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # bio_needle tasks: metric name ("score", "json_valid", "nationality", "score_4k", ...) -> value
    # (NaN: no sample of that kind), and the samples as raft.evaluate writes them
    bio: dict[str, dict[str, float]] = field(default_factory=dict)
    bio_samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # in2_probe tasks: metric name ("em", "f1", "em_document", "em_bin0", ...) -> value (NaN: none of
    # that kind), and the samples
    probe: dict[str, dict[str, float]] = field(default_factory=dict)
    probe_samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


# what every bio sample row must hold (the rest: needle_name, label, response, fields, ... are shown when there)
BIO_SAMPLE_KEYS = ("target_tokens", "depth_target", "score")


# the IN2 position probe: what every sample row must hold (question, answer, response, f1, depth, ... are
# shown when there)
PROBE_TASK = "in2_probe"
PROBE_SAMPLE_KEYS = ("target_tokens", "bin", "em")


def is_bio_task(task: str) -> bool:
    """bio_needle (or a variant named after it): reported by raft.kinds.bio_needle.report."""
    return task.startswith(BIO_TASK)


def is_probe_task(task: str) -> bool:
    """in2_probe (or a variant named after it): reported by raft.kinds.in2.report."""
    return task.startswith(PROBE_TASK)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: missing (not a raft.evaluate or lm_eval result folder)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: not a JSON object")
    return data


def _read_samples(path: Path) -> list[dict[str, Any]]:
    return [
        row if "output" in row and "gold" in row else sample_row(row) for row in read_jsonl(path, ReportError)
    ]


def _bio_metrics(path: Path, task: str, values: dict[str, Any]) -> dict[str, float]:
    """Every ``<name>,none`` number of a bio_needle or in2_probe task (stderr left out); null or NaN -> NaN."""
    out = {}
    for key, value in values.items():
        name, _, filt = key.partition(",")
        if filt != "none" or name.endswith("_stderr"):
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ReportError(f"{path}: results of {task} are not numbers ({key}: {value!r})")
        out[name] = math.nan if value is None else float(value)
    return out


def _read_task_samples(path: Path, flat, numbers: tuple[str, ...], probe: bool = False) -> list[dict[str, Any]]:
    """The rows of a task's samples file: raft.evaluate's rows as they are, a row of ``lm_eval
    --log_samples`` (the doc under "doc", the reply in "filtered_resps") through ``flat``; a row without
    a number for each of ``numbers`` (or, for the probe, without its probe type) is a ReportError."""
    rows = []
    for n, row in enumerate(read_jsonl(path, ReportError), 1):
        if "response" not in row and isinstance(row.get("doc"), dict):
            row = flat(row)
        missing = [k for k in numbers if not isinstance(row.get(k), int | float)]
        if missing:
            raise ReportError(f"{path} sample {n}: no number for {', '.join(missing)}")
        if probe and (not isinstance(row.get("probe"), str) or not row["probe"]):
            raise ReportError(f"{path} sample {n}: no probe type (document, structured, code)")
        rows.append(row)
    return rows


def _probe_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row of ``lm_eval --log_samples`` (the doc under "doc", the reply in "filtered_resps", the
    metrics at the top) as a flat probe sample row."""
    reply: Any = row.get("filtered_resps") or row.get("resps") or [""]
    while isinstance(reply, list):
        reply = reply[0] if reply else ""
    doc = {k: v for k, v in row["doc"].items() if k != "prompt"}  # the long context: not shown
    flat = {**doc, "doc_id": row.get("doc_id"), "response": str(reply)}
    flat.update({k: row[k] for k in ("em", "f1") if k in row})
    return flat


def _info_from_lm_eval(config: dict[str, Any]) -> dict[str, Any]:
    """run_info for a folder written by the lm_eval CLI: read from its model_args."""
    from lm_eval.utils import simple_parse_args_string

    args = config.get("model_args") or {}
    if isinstance(args, str):
        args = simple_parse_args_string(args)
    model = str(args.get("pretrained") or args.get("model") or config.get("model") or "?")
    adapter = str(args.get("peft") or args.get("lora_local_path") or "")
    four = bool(args.get("load_in_4bit")) or args.get("quantization") in ("bitsandbytes", "bnb")
    precision = "4-bit" if four else "16-bit"
    label = (
        " + ".join(x for x in (short_name(model), short_name(adapter) if adapter else "") if x)
        + f" ({precision})"
    )
    return {
        "label": label,
        "model": model,
        "adapter": adapter,
        "finetuned": bool(adapter),
        "precision": precision,
    }


def load_run(folder: str | Path) -> Run:
    """A result folder of raft.evaluate (results.json) or of lm_eval --output_path (results_*.json)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such result folder")
    path = folder / "results.json"
    if not path.exists():
        found = sorted(folder.rglob("results_*.json"))
        path = found[-1] if found else path
    data = _read_json(path)
    results = data.get("results")
    if not isinstance(results, dict) or not results:
        raise ReportError(f"{path}: no 'results' section")
    info = data.get("raft")
    if not isinstance(info, dict):
        if not isinstance(data.get("config"), dict):
            raise ReportError(f"{path}: neither a 'raft' nor a 'config' section (who was evaluated?)")
        info = _info_from_lm_eval(data["config"])
    for key in ("label", "model", "finetuned", "precision"):
        if key not in info:
            raise ReportError(f"{path}: 'raft' section lacks '{key}'")
    metrics: dict[str, dict[str, float]] = {}
    bio: dict[str, dict[str, float]] = {}
    probe: dict[str, dict[str, float]] = {}
    for task, values in results.items():
        if not isinstance(values, dict):
            raise ReportError(f"{path}: results of {task} are not a mapping")
        apart = None  # a task reported apart: bio_needle (no F1), in2_probe (its own report)
        if is_bio_task(task) and "score,none" in values:
            apart = bio
        elif is_probe_task(task) and "em,none" in values:
            apart = probe
        if apart is not None:
            apart[task] = _bio_metrics(path, task, values)
            n = data.get("n-samples", {}).get(task, {})
            apart[task]["n"] = float(n.get("effective", n.get("original", 0))) if isinstance(n, dict) else 0.0
            continue
        got = {m: values.get(f"{m},none") for m in METRICS}
        if got["f1"] is None:
            continue  # a task that is not ours
        split = {m: values[f"{m},none"] for m in SPLIT_METRICS if f"{m},none" in values}
        try:
            metrics[task] = {m: float(v) for m, v in got.items() if v is not None}
            # null (raft.evaluate) or NaN (lm_eval): no question in that split
            metrics[task].update({m: math.nan if v is None else float(v) for m, v in split.items()})
        except (TypeError, ValueError):
            raise ReportError(f"{path}: results of {task} are not numbers") from None
        n = data.get("n-samples", {}).get(task, {})
        metrics[task]["n"] = float(n.get("effective", n.get("original", 0))) if isinstance(n, dict) else 0.0
        stderr = values.get("f1_stderr,none")
        if isinstance(stderr, int | float):
            metrics[task]["f1_stderr"] = float(stderr)
    if not metrics and not bio and not probe:
        raise ReportError(f"{path}: no task with an f1 metric (nor a bio_needle score, nor an in2_probe em)")
    run = Run(folder=folder, info=info, metrics=metrics, bio=bio, probe=probe)
    for task in [*metrics, *bio, *probe]:
        files = (
            [folder / f"samples_{task}.jsonl"]
            if (folder / f"samples_{task}.jsonl").is_file()
            else sorted(path.parent.glob(f"samples_{task}_*.jsonl"))
        )
        if files and task in bio:
            run.bio_samples[task] = _read_task_samples(files[-1], bio_sample_row, BIO_SAMPLE_KEYS)
        elif files and task in probe:
            run.probe_samples[task] = _read_task_samples(files[-1], _probe_row, PROBE_SAMPLE_KEYS, probe=True)
        elif files:
            run.samples[task] = _read_samples(files[-1])
    return run
