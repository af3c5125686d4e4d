"""The lm-eval run: check the settings, run ``lm_eval.simple_evaluate`` on the tasks in
``eval_tasks/``, write ``results.json``, ``samples_<task>.jsonl`` and ``recipe.yaml``, print the
metrics. What a kind of data does of its own for its tasks (its settings, sample rows, printout, files
after the run, such as bio_needle's cost table) it says through its ``TaskKind``
(``raft.evaluate.plugins``); a task no kind claims differently is scored the common way (F1 / EM /
answer_found).

``main`` is what ``python -m raft.evaluate key=value ...`` calls (see ``raft/evaluate/__main__.py``).
torch, transformers and lm_eval are imported inside the functions that need them, so ``check``
fails on a bad setting in a second and ``--help`` costs nothing.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from raft.config import ConfigError, EvaluateConfig, resource_dir, save_config, to_dict
from raft.evaluate import backends
from raft.evaluate.backends import BACKENDS, batch_size, check_model_loads, model_args, prompt_tokens
from raft.evaluate.logged import output_of, show
from raft.evaluate.plugins import (
    kind_of_sample,
    kind_of_task,
    sample_fields,
    shown_metrics,
    task_data,
    task_kinds,
)
from raft.metrics import extract_answer, score


def __getattr__(name: str):
    """``TASK_DATA``: task -> (metadata key, environment variable) read by the task's utils.load, from
    every kind's TASKS; looked up when asked for (a kind's evaluation module imports raft.evaluate)."""
    if name == "TASK_DATA":
        return task_data()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

METRICS = ("f1", "em", "answer_found")


def task_names(cfg: EvaluateConfig) -> list[str]:
    tasks = cfg.tasks
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",")]
    tasks = [str(t) for t in (tasks or []) if str(t).strip()]
    if not tasks:
        raise ConfigError("tasks is empty; try tasks=[raft_hotpot]")
    return tasks


def short_name(model: str) -> str:
    """'meta-llama/Llama-3.1-8B-Instruct' -> 'Llama-3.1-8B-Instruct'; '/x/tiny/' -> 'tiny'."""
    return Path(str(model).rstrip("/")).name or str(model)


def run_info(cfg: EvaluateConfig) -> dict[str, Any]:
    """What the report groups by: stored in results.json under 'raft'."""
    precision = "4-bit" if cfg.load_in_4bit else "16-bit"
    label = cfg.label or " + ".join(
        x for x in (short_name(cfg.model), short_name(cfg.adapter) if cfg.adapter else "") if x
    )
    if not cfg.label:
        label += f" ({precision})"
    return {
        "label": label,
        "model": cfg.model,
        "adapter": cfg.adapter,
        "finetuned": bool(cfg.adapter),
        "precision": precision,
        "backend": cfg.backend,
    }


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists()


def check(cfg: EvaluateConfig) -> list[str]:
    """Validate the configuration before anything heavy loads; returns the task names."""
    tasks = task_names(cfg)
    if cfg.backend not in BACKENDS:
        raise ConfigError(f"backend={cfg.backend!r} is not one of {', '.join(BACKENDS)}")
    if cfg.max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens={cfg.max_new_tokens} must be at least 1")
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"limit={cfg.limit} must be at least 1 (or null for all questions)")
    if cfg.retrieval_k is not None and cfg.retrieval_k < 1:
        raise ConfigError(f"retrieval_k={cfg.retrieval_k} must be at least 1 (or null for the task's 4)")
    if cfg.max_model_len is not None and cfg.max_model_len <= cfg.max_new_tokens:
        raise ConfigError(
            f"max_model_len={cfg.max_model_len} must exceed max_new_tokens={cfg.max_new_tokens} "
            "(or null: the longest prompt plus max_new_tokens)"
        )
    if cfg.backend == "local-chat-completions":
        if not cfg.base_url:
            raise ConfigError("backend=local-chat-completions needs base_url=http://HOST:PORT/v1")
        if not cfg.apply_chat_template:
            raise ConfigError(
                "backend=local-chat-completions sends chat messages: set apply_chat_template=true"
            )
    else:
        if _looks_like_path(cfg.model) and not Path(cfg.model).expanduser().is_dir():
            raise ConfigError(f"model={cfg.model}: no such model folder")
        if cfg.adapter:
            if (
                _looks_like_path(cfg.adapter)
                and not (Path(cfg.adapter).expanduser() / "adapter_config.json").is_file()
            ):
                raise ConfigError(
                    f"adapter={cfg.adapter}: no adapter_config.json there (a raft.finetune output folder?)"
                )
    data = task_data()
    kinds = {data[t][0] for t in tasks if t in data}
    if cfg.data and len(kinds) > 1:
        raise ConfigError(
            f"data= is ambiguous for tasks {tasks}: evaluate them separately, or set RAFT_HOTPOT_PATH and RAFT_DOMAIN_DATA"
        )
    for kind in task_kinds():  # each kind's own settings: a bad one fails here
        if kind.check:
            kind.check(cfg, tasks)
        if kind.metadata:
            kind.metadata(cfg, tasks)
    contaminated, unknown = contamination(cfg, tasks)
    if contaminated and not cfg.allow_contaminated:
        raise ConfigError(contaminated[0])
    for line in contaminated:
        print(f"WARNING (allow_contaminated=true, recorded in results.json): {line}", file=sys.stderr)
    for line in unknown:
        print(f"WARNING: {line}", file=sys.stderr)
    return tasks


def contamination(cfg: EvaluateConfig, tasks: list[str]) -> tuple[list[str], list[str]]:
    """(lines that refuse the run unless allow_contaminated=true, warnings) of every kind's check of
    the adapter's training data against what the tasks score."""
    contaminated: list[str] = []
    unknown: list[str] = []
    for kind in task_kinds():
        if kind.contamination:
            c, u = kind.contamination(cfg.adapter, tasks, cfg.limit)
            contaminated += c
            unknown += u
    return contaminated, unknown


def evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Run lm-eval on the configured tasks; returns lm-eval's results dict (with 'samples')."""
    tasks = check(cfg)  # before the heavy imports: a typo fails in a second
    import lm_eval
    from lm_eval.tasks import TaskManager

    metadata: dict[str, Any] = {}
    if cfg.data:
        for t in tasks:
            if t in task_data():
                metadata[task_data()[t][0]] = cfg.data
    for kind in task_kinds():  # e.g. in2_probe: the model's tokenizer, the sweep
        if kind.metadata:
            metadata.update(kind.metadata(cfg, tasks))
    manager = TaskManager(
        include_path=str(resource_dir("eval_tasks")), include_defaults=False, metadata=metadata
    )
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError(f"unknown task {unknown[0]!r}; available: {', '.join(manager.all_tasks)}")
    config = check_model_loads(cfg)
    longest = None
    if cfg.backend == "vllm" and not cfg.max_model_len:
        longest = prompt_tokens(cfg, manager, tasks)
    args = model_args(cfg, longest)
    if longest is not None:  # never past the model's own context (lm-eval truncates the prompt then)
        context = getattr(config, "max_position_embeddings", None)
        if isinstance(context, int) and args["max_model_len"] > context:
            args["max_model_len"] = context
    model: Any = cfg.backend
    if cfg.backend == "hf" and cfg.load_in_4bit:
        model = backends._hf_4bit(cfg)  # looked up at call time (tests spy on it)
    device = None
    if cfg.backend == "hf":  # lm-eval's HFLM defaults to "cuda" even where there is none
        import torch

        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    results = lm_eval.simple_evaluate(
        model=model,
        model_args=args,
        tasks=tasks,
        task_manager=manager,
        limit=cfg.limit,
        batch_size=batch_size(cfg),
        device=device,
        apply_chat_template=cfg.apply_chat_template,
        gen_kwargs={"max_gen_toks": cfg.max_new_tokens},
        log_samples=True,  # mean metrics get a closed-form standard error, no bootstrap
    )
    if results is None:  # not rank 0 of a multi-process run
        return {}
    results["config"]["model_args"] = args  # the 4-bit path passes a model object; keep the arguments
    return results


def sample_row(sample: dict[str, Any], task: str = "") -> dict[str, Any]:
    """One lm-eval logged sample as a flat record: question, gold, output, extracted answer, scores
    (a sample of a kind with rows of its own, such as bio_needle: that kind's ``sample_row``)."""
    kind = kind_of_sample(sample, task)
    if kind and kind.sample_row:
        return kind.sample_row(sample)
    doc = sample.get("doc") or {}
    output = output_of(sample)
    gold = sample.get("target", doc.get("answer", doc.get("final_answer", "")))
    scores = {m: sample[m] for m in METRICS if m in sample} or score(output, str(gold))
    row = {
        "doc_id": sample.get("doc_id"),
        "id": doc.get("id"),
        "question": doc.get("question", ""),
        "gold": str(gold),
        "answer": extract_answer(output),
        **{m: float(scores.get(m, 0.0)) for m in METRICS},
        "output": output,
    }
    for key in sample_fields():
        if key in doc:
            row[key] = doc[key]
    return row


def _nan_to_null(value: Any) -> Any:
    """NaN (a split no question fell in) as None, so that results.json is strict JSON (null)."""
    if isinstance(value, dict):
        return {k: _nan_to_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_nan_to_null(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def write_results(results: dict[str, Any], cfg: EvaluateConfig) -> Path:
    """results.json, samples_<task>.jsonl and recipe.yaml in cfg.output."""
    from lm_eval.utils import handle_non_serializable

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    samples = results.pop("samples", {}) or {}
    for task, rows in samples.items():
        with (out / f"samples_{task}.jsonl").open("w", encoding="utf-8") as f:
            for s in rows:
                f.write(json.dumps(sample_row(s, task), ensure_ascii=False, default=handle_non_serializable) + "\n")
    info = run_info(cfg)
    contaminated, _ = contamination(cfg, list(samples) or task_names(cfg))
    if contaminated:  # scored with allow_contaminated=true: the result says so
        info["contaminated"] = contaminated
    record = _nan_to_null({"raft": info, "raft_config": to_dict(cfg), **results})
    path = out / "results.json"
    path.write_text(
        json.dumps(record, indent=2, ensure_ascii=False, default=handle_non_serializable), encoding="utf-8"
    )
    save_config(cfg, out)
    return path


def print_scores(task: str, metrics: dict[str, Any]) -> None:
    """The line printed for an F1 task: f1 / em / answer_found, then the kinds' shown metrics it has."""
    shown = ", ".join(
        f"{m} {show(metrics[f'{m},none'])}" for m in METRICS + shown_metrics() if f"{m},none" in metrics
    )
    print(f"{task}: {shown}")


def main(cfg: EvaluateConfig) -> Path:
    """Evaluate, write the result folder, print the metrics per task (a kind's task: its own printout),
    then let each kind write its files (e.g. bio_needle's cost table)."""
    results = evaluate(cfg)
    if not results:
        return Path(cfg.output)
    samples = dict(results.get("samples") or {})  # write_results pops the samples
    path = write_results(results, cfg)
    for task, metrics in results["results"].items():
        kind = kind_of_task(task)
        if kind and kind.show:
            kind.show(task, metrics, list(samples.get(task) or []))
        else:
            print_scores(task, metrics)
    print(f"results: {path}")
    for kind in task_kinds():
        if kind.finish:
            kind.finish(cfg, {task: list(rows) for task, rows in samples.items() if kind.owns(task)})
    return path
