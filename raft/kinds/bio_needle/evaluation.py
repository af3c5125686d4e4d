"""What ``raft.evaluate`` does for the ``bio_needle`` task: its sample rows (``bio_sample_row``: the
needle's row, the reply, the JSON parsed from it and its scores, as ``samples_bio_needle.jsonl`` holds
them), its printout (overall, per field, per context length) and the cost table of its evaluated
prompts at ``prices`` (through ``raft.kinds.bio_needle.cost``, imported when it is written).

``raft.evaluate`` finds them through ``TASKS`` (``raft.evaluate.plugins``), with the report's part
(``raft.kinds.bio_needle.report``), imported when a report has a bio_needle run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from raft.config import ConfigError, EvaluateConfig, first_line
from raft.evaluate.logged import output_of, show
from raft.evaluate.plugins import TaskKind
from raft.kinds.bio_needle.score import FIELD_METRICS, LENGTH_METRICS, length_name, score_reply

BIO_TASK = "bio_needle"
# bio_needle's metrics (eval_tasks/bio_needle): overall, one per field, score per context length
BIO_METRICS = ("score", "json_valid")
BIO_FIELD_METRICS = tuple(FIELD_METRICS.values())
BIO_LENGTH_METRICS = LENGTH_METRICS  # score_2k ... score_128k: NaN / null for a length no row has
# per-sample fields of the bio_needle docs copied into samples_bio_needle.jsonl (null when a row lacks one)
BIO_SAMPLE_FIELDS = (
    "needle_name", "label", "target_tokens", "context_tokens", "depth", "depth_target", "needle_start", "needle_tokens",
)  # fmt: skip
PRICE_KEYS = ("model", "tokenizer", "input_per_mtok", "output_per_mtok")


def check_prices(prices: Any) -> list[dict[str, Any]]:
    """The cost table's price list: [{model, tokenizer, input_per_mtok, output_per_mtok}, ...]."""
    if prices is None or prices == []:
        return []
    if not isinstance(prices, list | tuple):
        raise ConfigError(f"prices must be a list of {{{', '.join(PRICE_KEYS)}}}, not {type(prices).__name__}")
    for i, p in enumerate(prices):
        if not isinstance(p, dict):
            raise ConfigError(f"prices[{i}] must be a mapping {{{', '.join(PRICE_KEYS)}}}")
        missing = [k for k in PRICE_KEYS if k not in p]
        unknown = [k for k in p if k not in PRICE_KEYS]
        if missing or unknown:
            what = f"missing {', '.join(missing)}" if missing else f"unknown key {', '.join(map(str, unknown))}"
            raise ConfigError(f"prices[{i}] ({p.get('model', '?')}): {what}; each needs {', '.join(PRICE_KEYS)}")
        for k in ("model", "tokenizer"):
            if not isinstance(p[k], str) or not p[k].strip():
                raise ConfigError(f"prices[{i}].{k} must be a non-empty name")
        for k in ("input_per_mtok", "output_per_mtok"):
            v = p[k]
            if isinstance(v, bool) or not isinstance(v, int | float) or v < 0 or math.isnan(v):
                raise ConfigError(f"prices[{i}].{k}={v!r} must be a number >= 0 (USD per million tokens)")
    return list(prices)


def is_bio_sample(sample: dict[str, Any], task: str = "") -> bool:
    """A logged sample of bio_needle: by its task, or (no task given) by its doc (a label object and a prompt)."""
    doc = sample.get("doc") or {}
    return task == BIO_TASK or (not task and isinstance(doc.get("label"), dict) and "prompt" in doc)


def bio_sample_row(sample: dict[str, Any]) -> dict[str, Any]:
    """One logged bio_needle sample: the needle's row (name, label, lengths, depths), the reply, the
    JSON object found in it (or null) and its scores (raft.kinds.bio_needle.score: json_valid, fields as
    {dotted field: 0/1}, score = share of the 9 right). samples_bio_needle.jsonl holds these."""
    doc = sample.get("doc") or {}
    response = output_of(sample)
    s = score_reply(response, doc.get("label") or {})
    return {
        "doc_id": sample.get("doc_id"),
        "id": doc.get("id"),
        **{k: doc.get(k) for k in BIO_SAMPLE_FIELDS},
        "response": response,
        "parsed": s["parsed"],
        "json_valid": s["json_valid"],
        "fields": s["fields"],
        "score": s["score"],
    }


def bio_by_length(samples: list[dict[str, Any]]) -> dict[int, float]:
    """Mean score per target_tokens over logged bio_needle samples (every length, declared or not)."""
    scores: dict[int, list[float]] = {}
    for s in samples:
        tokens = (s.get("doc") or {}).get("target_tokens")
        if isinstance(tokens, int):
            scores.setdefault(tokens, []).append(float(s["score"]) if "score" in s else bio_sample_row(s)["score"])
    return {n: sum(v) / len(v) for n, v in sorted(scores.items())}


def show_bio(task: str, metrics: dict[str, Any], samples: list[dict[str, Any]]) -> None:
    """Print the task's score and json_valid, its accuracy per field and its score per context length."""

    def shown(names: tuple[str, ...] | list[str]) -> str:
        return ", ".join(f"{m} {show(metrics[f'{m},none'])}" for m in names if f"{m},none" in metrics)

    print(f"{task}: {shown(BIO_METRICS)}")
    print(f"  fields: {shown(BIO_FIELD_METRICS)}")
    by_length = bio_by_length(samples)
    if by_length:  # from the samples: every length, also those without a score_<N>k metric
        print("  by length: " + ", ".join(f"{length_name(n) or n} {show(v)}" for n, v in by_length.items()))


def _target_tokens(cfg: EvaluateConfig, targets: list[str]) -> tuple[int, str]:
    """(mean tokens of the gold labels in the evaluated model's tokenizer, how it was found); when the
    tokenizer cannot be loaded (a served name, offline), max_new_tokens: an upper bound."""
    if targets:
        try:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(cfg.model)
            counts = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in targets]
            return round(sum(counts) / len(counts)), f"mean tokens of the {len(counts)} gold labels"
        except (OSError, ValueError, ImportError) as e:
            why = f"no tokenizer for model={cfg.model} ({first_line(e)})"
    else:
        why = "no gold labels"
    return cfg.max_new_tokens, f"max_new_tokens, an upper bound: {why}"


def bio_cost_inputs(samples: list[dict[str, Any]]) -> tuple[dict[int, list[str]], list[str]]:
    """(prompts of the evaluated docs by target_tokens, their gold labels) for the cost table."""
    prompts: dict[int, list[str]] = {}
    targets = []
    for s in samples:
        doc = s.get("doc") or {}
        tokens = doc.get("target_tokens")
        if isinstance(tokens, int) and doc.get("prompt"):
            prompts.setdefault(tokens, []).append(doc["prompt"][0]["content"])
            targets.append(str(s.get("target", "")))
    return dict(sorted(prompts.items())), targets


def write_bio_cost(cfg: EvaluateConfig, samples: list[dict[str, Any]]) -> Path | None:
    """The cost table of the evaluated prompts at cfg.prices (raft.kinds.bio_needle.cost), in cfg.output."""
    prices = check_prices(cfg.prices)
    if not prices:
        return None
    try:
        from raft.kinds.bio_needle.cost import write_cost_table
    except ModuleNotFoundError as e:
        if e.name != "raft.kinds.bio_needle.cost":
            raise
        print("cost table skipped: raft.kinds.bio_needle.cost is missing from this installation (prices= is set)")
        return None
    prompts, targets = bio_cost_inputs(samples)
    if not prompts:
        print("cost table skipped: no evaluated bio_needle row has target_tokens")
        return None
    output_tokens, how = _target_tokens(cfg, targets)
    try:
        path = write_cost_table(prompts, prices, output_tokens, Path(cfg.output))
    except (ConfigError, OSError) as e:  # the results are written already: say so, keep them
        print(f"cost table not written: {first_line(e)}")
        return None
    print(f"cost table: {path} (output tokens per reply: {output_tokens}, {how})")
    return path


def finish(cfg: EvaluateConfig, samples: dict[str, list[dict[str, Any]]]) -> None:
    """After the result folder is written: the cost table of the evaluated prompts (``prices=``)."""
    if samples.get(BIO_TASK):
        write_bio_cost(cfg, samples[BIO_TASK])


# what every sample row must hold when a report reads it back (the rest: needle_name, label, response,
# fields, ... are shown when there)
BIO_SAMPLE_KEYS = ("target_tokens", "depth_target", "score")

TASKS = TaskKind(
    name="bio_needle",
    tasks=(BIO_TASK,),
    data={BIO_TASK: ("bio_needle_data", "RAFT_BIO_NEEDLE_DATA")},
    apart="score",  # no F1: its own part of the report
    sample_keys=BIO_SAMPLE_KEYS,
    check=lambda cfg, tasks: check_prices(cfg.prices) and None,
    sample_row=bio_sample_row,
    is_sample=is_bio_sample,
    log_row=bio_sample_row,
    show=show_bio,
    finish=finish,
    report="raft.kinds.bio_needle.report:bio_report",
)
