"""The lm-eval run: check the settings, run ``lm_eval.simple_evaluate`` on the tasks in
``eval_tasks/``, write ``results.json``, ``samples_<task>.jsonl`` and ``recipe.yaml``, print the
metrics. What is particular to ``bio_needle`` (its sample rows, its printout, the cost table of its
prompts at ``prices``) is ``raft.kinds.bio_needle.evaluation``'s, which imports this module: it is imported
inside the functions that hand a bio_needle task to it.

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
from raft.evaluate.backends import BACKENDS, _check_model_loads, batch_size, model_args, prompt_tokens
from raft.evaluate.lineage import hotpot_contamination
from raft.metrics import extract_answer, score

# task -> (metadata key, environment variable) read by the task's utils.load
TASK_DATA = {
    "raft_hotpot": ("raft_hotpot_path", "RAFT_HOTPOT_PATH"),
    "raft_hotpot_full": ("raft_hotpot_path", "RAFT_HOTPOT_PATH"),
    "raft_domain": ("raft_domain_data", "RAFT_DOMAIN_DATA"),
    "raft_domain_retrieval": ("raft_domain_data", "RAFT_DOMAIN_DATA"),
    "bio_needle": ("bio_needle_data", "RAFT_BIO_NEEDLE_DATA"),
    "in2_probe": ("in2_probe_corpus", "RAFT_IN2_PROBE_CORPUS"),  # the document probe's corpus
}
BIO_TASK = "bio_needle"
RETRIEVAL_K_KEY = "raft_retrieval_k"  # task metadata read by raft_domain_retrieval (retrieval_k=)
METRICS = ("f1", "em", "answer_found")
# the raft_domain tasks' split: share of questions with the oracle in view (has_oracle for
# raft_domain, oracle_retrieved for raft_domain_retrieval), F1 / EM with and without it (NaN: no such question)
SPLIT_METRICS = ("has_oracle", "oracle_retrieved", "f1_oracle", "em_oracle", "f1_no_oracle", "em_no_oracle")
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
)
# vllm: the context length when it is neither set (max_model_len=) nor computed from the prompts;
# enough for HotpotQA's ten paragraphs or a few 512-token chunks plus 800 new tokens


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
    kinds = {TASK_DATA[t][0] for t in tasks if t in TASK_DATA}
    if cfg.data and len(kinds) > 1:
        raise ConfigError(
            f"data= is ambiguous for tasks {tasks}: evaluate them separately, or set RAFT_HOTPOT_PATH and RAFT_DOMAIN_DATA"
        )
    from raft.kinds.bio_needle.evaluation import check_prices  # it imports this module
    from raft.kinds.in2.evaluation import probe_metadata

    check_prices(cfg.prices)
    probe_metadata(cfg, tasks)  # in2_probe's settings: a bad one fails here
    contaminated, unknown = hotpot_contamination(cfg.adapter, tasks, cfg.limit)
    if contaminated and not cfg.allow_contaminated:
        raise ConfigError(contaminated[0])
    for line in contaminated:
        print(f"WARNING (allow_contaminated=true, recorded in results.json): {line}", file=sys.stderr)
    for line in unknown:
        print(f"WARNING: {line}", file=sys.stderr)
    return tasks


def evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Run lm-eval on the configured tasks; returns lm-eval's results dict (with 'samples')."""
    tasks = check(cfg)  # before the heavy imports: a typo fails in a second
    import lm_eval
    from lm_eval.tasks import TaskManager

    metadata: dict[str, Any] = {}
    if cfg.data:
        for t in tasks:
            if t in TASK_DATA:
                metadata[TASK_DATA[t][0]] = cfg.data
    if cfg.retrieval_k is not None:
        metadata[RETRIEVAL_K_KEY] = cfg.retrieval_k
    from raft.kinds.in2.evaluation import probe_metadata  # it imports this module

    metadata.update(probe_metadata(cfg, tasks))  # in2_probe: the model's tokenizer, the sweep
    manager = TaskManager(
        include_path=str(resource_dir("eval_tasks")), include_defaults=False, metadata=metadata
    )
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError(f"unknown task {unknown[0]!r}; available: {', '.join(manager.all_tasks)}")
    config = _check_model_loads(cfg)
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


def _output(sample: dict[str, Any]) -> str:
    """The model's (filtered) reply of one logged sample."""
    output = sample.get("filtered_resps", sample.get("resps", [""]))
    while isinstance(output, list):
        output = output[0] if output else ""
    return str(output)


def sample_row(sample: dict[str, Any], task: str = "") -> dict[str, Any]:
    """One lm-eval logged sample as a flat record: question, gold, output, extracted answer, scores
    (a bio_needle sample: ``raft.kinds.bio_needle.evaluation.bio_sample_row``)."""
    from raft.evaluate import bio_run, probe_run  # they import this module

    if bio_run.is_bio_sample(sample, task):
        return bio_run.bio_sample_row(sample)
    if probe_run.is_probe_sample(sample, task):
        return probe_run.probe_sample_row(sample)
    doc = sample.get("doc") or {}
    output = _output(sample)
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
    for key in SAMPLE_FIELDS:
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


def show(value: Any) -> str:
    """A metric for people: 4 decimals, "—" for NaN or null (no question in that split)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.4f}"


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
    contaminated, _ = hotpot_contamination(cfg.adapter, list(samples) or task_names(cfg), cfg.limit)
    if contaminated:  # scored with allow_contaminated=true: the result says so
        info["contaminated"] = contaminated
    record = _nan_to_null({"raft": info, "raft_config": to_dict(cfg), **results})
    path = out / "results.json"
    path.write_text(
        json.dumps(record, indent=2, ensure_ascii=False, default=handle_non_serializable), encoding="utf-8"
    )
    save_config(cfg, out)
    return path


def main(cfg: EvaluateConfig) -> Path:
    """Evaluate, write the result folder, print the metrics per task (and for bio_needle the cost table)."""
    from raft.evaluate import bio_run, probe_run  # they import this module

    results = evaluate(cfg)
    if not results:
        return Path(cfg.output)
    bio_samples = list((results.get("samples") or {}).get(BIO_TASK) or [])  # write_results pops the samples
    path = write_results(results, cfg)
    for task, metrics in results["results"].items():
        if task == BIO_TASK:
            bio_run.show_bio(task, metrics, bio_samples)
            continue
        if task == probe_run.PROBE_TASK:
            probe_run.show_probe(task, metrics)
            continue
        shown = ", ".join(
            f"{m} {show(metrics[f'{m},none'])}" for m in METRICS + SPLIT_METRICS if f"{m},none" in metrics
        )
        print(f"{task}: {shown}")
    print(f"results: {path}")
    if bio_samples:
        bio_run.write_bio_cost(cfg, bio_samples)
    return path
