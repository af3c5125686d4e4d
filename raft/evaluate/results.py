"""Reading result folders: a ``raft.evaluate`` output (``results.json``, ``samples_<task>.jsonl``)
or an ``lm_eval --output_path ... --log_samples`` one (``results_*.json``, ``samples_<task>_*.jsonl``)
as a ``Run``: who was evaluated, the metrics per task and the samples per task.
A task that its kind reports apart (``TaskKind.apart``: e.g. bio_needle, which has no F1, and the IN2
position probe in2_probe, which has its own report) keeps every number of results.json in
``Run.apart`` and its sample rows in ``Run.apart_samples``, for the kind's part of the report;
``Run.metrics`` and ``Run.samples`` keep the F1 tasks alone.
Every problem with a folder is a ``ReportError``: one line naming the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.config import ConfigError
from raft.evaluate.plugins import TaskKind, kind_of_task, shown_metrics
from raft.evaluate.run import METRICS, sample_row, short_name
from raft.records import read_json, read_jsonl


class ReportError(ConfigError):
    """A result folder that cannot be reported on: one line naming the file."""


@dataclass
class Run:
    """One result folder: who was evaluated, the metrics per task, the samples per task."""

    folder: Path
    info: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # tasks reported apart by their kind: metric name ("score", "json_valid", "score_4k", "em_bin0", ...)
    # -> value (NaN: no sample of that kind), and the samples as raft.evaluate writes them
    apart: dict[str, dict[str, float]] = field(default_factory=dict)
    apart_samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return read_json(path, ReportError)
    except FileNotFoundError:
        raise ReportError(f"{path}: missing (not a raft.evaluate or lm_eval result folder)") from None


def _read_samples(path: Path) -> list[dict[str, Any]]:
    return [
        row if "output" in row and "gold" in row else sample_row(row) for row in read_jsonl(path, ReportError)
    ]


def _numbers(path: Path, task: str, values: dict[str, Any]) -> dict[str, float]:
    """Every ``<name>,none`` number of a task reported apart (stderr left out); null or NaN -> NaN."""
    out = {}
    for key, value in values.items():
        name, _, filt = key.partition(",")
        if filt != "none" or name.endswith("_stderr"):
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ReportError(f"{path}: results of {task} are not numbers ({key}: {value!r})")
        out[name] = math.nan if value is None else float(value)
    return out


def _read_task_samples(path: Path, kind: TaskKind) -> list[dict[str, Any]]:
    """The rows of a task's samples file: raft.evaluate's rows as they are, a row of ``lm_eval
    --log_samples`` (the doc under "doc", the reply in "filtered_resps") through the kind's ``log_row``;
    a row without a number for each of the kind's ``sample_keys`` (or without one of its
    ``sample_texts``) is a ReportError."""
    rows = []
    for n, row in enumerate(read_jsonl(path, ReportError), 1):
        if "response" not in row and isinstance(row.get("doc"), dict) and kind.log_row:
            row = kind.log_row(row)
        missing = [k for k in kind.sample_keys if not isinstance(row.get(k), int | float)]
        if missing:
            raise ReportError(f"{path} sample {n}: no number for {', '.join(missing)}")
        for key, what in kind.sample_texts.items():
            if not isinstance(row.get(key), str) or not row[key]:
                raise ReportError(f"{path} sample {n}: no {what}")
        rows.append(row)
    return rows


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
    apart: dict[str, dict[str, float]] = {}
    for task, values in results.items():
        if not isinstance(values, dict):
            raise ReportError(f"{path}: results of {task} are not a mapping")
        kind = kind_of_task(task)  # a task reported apart: bio_needle (no F1), in2_probe (its own report)
        if kind and kind.apart and f"{kind.apart},none" in values:
            apart[task] = _numbers(path, task, values)
            n = data.get("n-samples", {}).get(task, {})
            apart[task]["n"] = float(n.get("effective", n.get("original", 0))) if isinstance(n, dict) else 0.0
            continue
        got = {m: values.get(f"{m},none") for m in METRICS}
        if got["f1"] is None:
            continue  # a task that is not ours
        split = {m: values[f"{m},none"] for m in shown_metrics() if f"{m},none" in values}
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
    if not metrics and not apart:
        raise ReportError(f"{path}: no task with an f1 metric (nor a bio_needle score, nor an in2_probe em)")
    run = Run(folder=folder, info=info, metrics=metrics, apart=apart)
    for task in [*metrics, *apart]:
        files = (
            [folder / f"samples_{task}.jsonl"]
            if (folder / f"samples_{task}.jsonl").is_file()
            else sorted(path.parent.glob(f"samples_{task}_*.jsonl"))
        )
        if files and task in apart:
            run.apart_samples[task] = _read_task_samples(files[-1], kind_of_task(task))
        elif files:
            run.samples[task] = _read_samples(files[-1])
    return run
