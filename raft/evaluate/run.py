"""The lm-eval run: check the settings, run ``lm_eval.simple_evaluate`` on the tasks in
``eval_tasks/``, write ``results.json``, ``samples_<task>.jsonl`` and ``recipe.yaml``.

``main`` is what ``python -m raft.evaluate key=value ...`` calls (see ``raft/evaluate/__main__.py``).
torch, transformers and lm_eval are imported inside the functions that need them, so ``check``
fails on a bad setting in a second and ``--help`` costs nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raft.config import ConfigError, EvaluateConfig, first_line, resource_dir, save_config, to_dict
from raft.metrics import extract_answer, score

BACKENDS = ("hf", "vllm", "local-chat-completions")
# task -> (metadata key, environment variable) read by the task's utils.load
TASK_DATA = {
    "raft_hotpot": ("raft_hotpot_path", "RAFT_HOTPOT_PATH"),
    "raft_hotpot_full": ("raft_hotpot_path", "RAFT_HOTPOT_PATH"),
    "raft_domain": ("raft_domain_data", "RAFT_DOMAIN_DATA"),
}
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
    return tasks


def model_args(cfg: EvaluateConfig) -> dict[str, Any]:
    """lm-eval model_args for the backend (what `lm_eval --model_args` would say)."""
    if cfg.backend == "hf":
        args: dict[str, Any] = {"pretrained": cfg.model, "dtype": cfg.dtype}
        if cfg.adapter:
            args["peft"] = cfg.adapter
        if cfg.load_in_4bit:  # recorded only: transformers 5 refuses it, evaluate() preloads the NF4 model
            args["load_in_4bit"] = True
        return args
    if cfg.backend == "vllm":
        args = {"pretrained": cfg.model, "dtype": cfg.dtype}
        if cfg.adapter:
            args["lora_local_path"] = cfg.adapter
            args["max_lora_rank"] = _adapter_rank(cfg.adapter)
        if cfg.load_in_4bit:
            args["quantization"] = "bitsandbytes"
        return args
    url = cfg.base_url.rstrip("/")
    if not url.endswith("/chat/completions"):
        url += "/chat/completions"
    return {
        "model": cfg.adapter or cfg.model,
        "base_url": url,
        "tokenized_requests": False,
        "num_concurrent": cfg.num_concurrent,
        "max_gen_toks": cfg.max_new_tokens,
    }


def _adapter_rank(adapter: str) -> int:
    """vLLM needs max_lora_rank >= the adapter's rank (its default, 16, is below RAFT's 64)."""
    try:
        rank = int(json.loads((Path(adapter) / "adapter_config.json").read_text())["r"])
    except (OSError, KeyError, ValueError, TypeError):
        return 64
    return next((r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= rank), rank)


def _hf_4bit(cfg: EvaluateConfig) -> Any:
    """An lm-eval HFLM over a 4-bit NF4 model (transformers 5 no longer takes load_in_4bit=True)."""
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    cuda = torch.cuda.is_available()
    compute = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )
    model = AutoModelForCausalLM.from_pretrained(
        cfg.model, quantization_config=quant, dtype=compute, device_map={"": 0} if cuda else None
    )
    if cfg.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.adapter)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.batch_size)


def _check_model_loads(cfg: EvaluateConfig) -> None:
    """A hub id that cannot be reached (offline, typo) fails here in one line, not deep in lm-eval."""
    if cfg.backend == "local-chat-completions":
        return
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(cfg.model)
    except (OSError, ValueError) as e:
        raise ConfigError(f"model={cfg.model}: cannot load its config ({first_line(e)})") from None


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
    manager = TaskManager(
        include_path=str(resource_dir("eval_tasks")), include_defaults=False, metadata=metadata
    )
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError(f"unknown task {unknown[0]!r}; available: {', '.join(manager.all_tasks)}")
    _check_model_loads(cfg)
    args = model_args(cfg)
    model: Any = cfg.backend
    if cfg.backend == "hf" and cfg.load_in_4bit:
        model = _hf_4bit(cfg)
    batch_size = 1 if cfg.backend == "local-chat-completions" else cfg.batch_size
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
        batch_size=batch_size,
        device=device,
        apply_chat_template=cfg.apply_chat_template,
        gen_kwargs={"max_gen_toks": cfg.max_new_tokens},
        log_samples=True,  # mean metrics get a closed-form standard error, no bootstrap
    )
    if results is None:  # not rank 0 of a multi-process run
        return {}
    results["config"]["model_args"] = args  # the 4-bit path passes a model object; keep the arguments
    return results


def sample_row(sample: dict[str, Any]) -> dict[str, Any]:
    """One lm-eval logged sample as a flat record: question, gold, output, extracted answer, scores."""
    doc = sample.get("doc") or {}
    output = sample.get("filtered_resps", sample.get("resps", [""]))
    while isinstance(output, list):
        output = output[0] if output else ""
    output = str(output)
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
    for key in ("type", "level", "source", "oracle_index"):
        if key in doc:
            row[key] = doc[key]
    return row


def write_results(results: dict[str, Any], cfg: EvaluateConfig) -> Path:
    """results.json, samples_<task>.jsonl and recipe.yaml in cfg.output."""
    from lm_eval.utils import handle_non_serializable

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    samples = results.pop("samples", {}) or {}
    for task, rows in samples.items():
        with (out / f"samples_{task}.jsonl").open("w", encoding="utf-8") as f:
            for s in rows:
                f.write(json.dumps(sample_row(s), ensure_ascii=False, default=handle_non_serializable) + "\n")
    record = {"raft": run_info(cfg), "raft_config": to_dict(cfg), **results}
    path = out / "results.json"
    path.write_text(
        json.dumps(record, indent=2, ensure_ascii=False, default=handle_non_serializable), encoding="utf-8"
    )
    save_config(cfg, out)
    return path


def main(cfg: EvaluateConfig) -> Path:
    results = evaluate(cfg)
    if not results:
        return Path(cfg.output)
    path = write_results(results, cfg)
    for task, metrics in results["results"].items():
        shown = ", ".join(f"{m} {metrics[f'{m},none']:.4f}" for m in METRICS if f"{m},none" in metrics)
        print(f"{task}: {shown}")
    print(f"results: {path}")
    return path
