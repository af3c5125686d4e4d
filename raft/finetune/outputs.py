"""What raft.finetune leaves in ``output``: the adapter (:func:`save_adapter`, also under FSDP),
``train_summary.json`` (with the peak memory), ``loss.png`` (``raft.finetune.curves``), the model card
``README.md``, the merged 16-bit model with its own card (``merge=true``), the ``checkpoint-*`` folders
that ``resume=true`` continues from, and ``finetune_run.json``, the fingerprint of the settings those
checkpoints were trained with. (``raft.hub`` uploads the first of these with ``push_to_hub``.)

An output folder holds one run: :func:`check_output` refuses checkpoints without ``resume=true``,
and on ``resume=true`` refuses checkpoints trained with other settings (one line naming them), so
two runs are never mixed in one folder.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path
from typing import Any

from raft.config import ConfigError, FinetuneConfig, to_dict
from raft.finetune.data import is_main_process, log, looks_like_hub_id
from raft.finetune.model import Runtime

SUMMARY_FILE = "train_summary.json"
LOSS_PLOT = "loss.png"
FINGERPRINT_FILE = "finetune_run.json"

#: Settings that do not change the trained weights, left out of the fingerprint: they may differ on
#: resume (log more often, evaluate with a larger batch, keep more checkpoints, save memory).
NOT_IN_FINGERPRINT = (
    "train.logging_steps", "train.report_to", "train.eval_steps", "train.per_device_eval_batch_size",
    "train.save_steps", "train.save_total_limit", "train.dataloader_num_workers", "train.gradient_checkpointing",
)
#: Settings added later, left out of the fingerprint at these defaults, so runs checkpointed before them still resume.
ADDED_LATER = {"train.reshuffle_documents": False}


def peak_memory() -> dict[str, Any]:
    import torch

    if torch.cuda.is_available():
        return {"bytes": int(torch.cuda.max_memory_allocated()), "what": "torch.cuda.max_memory_allocated (this process's GPU)"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"bytes": int(rss * (1 if sys.platform == "darwin" else 1024)), "what": "max RSS of the process (CPU run)"}


def build_summary(cfg: FinetuneConfig, rt: Runtime, trainer: Any, result: Any, stats: dict, resumed_from: str | None,
                  start: dict[str, int]) -> dict[str, Any]:
    """train_summary.json; ``start`` = global step and tokens seen of the checkpoint resumed from (zeros if none)."""
    state = trainer.state
    trainable, total = trainer.model.get_nb_trainable_parameters()
    history = state.log_history
    runtime = float(result.metrics.get("train_runtime", 0.0))
    eval_time = sum(e["eval_runtime"] for e in history if "eval_runtime" in e and e["step"] > start["step"])
    train_time = max(runtime - eval_time, 1e-9) if runtime else 0.0
    session_tokens = int(state.num_input_tokens_seen) - start["tokens"]
    return {
        "model": cfg.model,
        "data": cfg.data,
        # where that was when it ran (raft.evaluate.lineage traces adapter -> data from any directory)
        "data_path": str(Path(cfg.data).expanduser().resolve()) if Path(cfg.data).expanduser().exists() else "",
        "load_in_4bit": cfg.load_in_4bit,
        "base_weights": "4-bit NF4" if getattr(trainer.model.get_base_model(), "is_loaded_in_4bit", False) else rt.precision,
        "device": rt.device,
        "processes": rt.world_size,
        "precision": rt.precision,
        "optim": rt.optim,
        "fallbacks": rt.notes,
        "trainable_params": int(trainable),
        "total_params": int(total),
        "examples": {k: v for k, v in stats.items() if isinstance(v, dict)},
        "overlong_policy": stats["policy"],
        "max_length": stats["max_length"],
        "global_step": int(state.global_step),
        # passes over the training rows (train.reshuffle_documents: the trainer's epoch spans its copies of them)
        "epochs": state.epoch * stats.get("reshuffle_documents", {}).get("epochs", 1) if state.epoch is not None else None,
        "resumed_from": resumed_from,
        "tokens_seen": int(state.num_input_tokens_seen),
        "train_runtime_s": runtime,
        "tokens_per_second": session_tokens / train_time if train_time > 0 else None,  # this run, evaluation excluded
        "train_loss": result.metrics.get("train_loss"),
        "loss_curve": [{"step": e["step"], "loss": e["loss"]} for e in history if "loss" in e],
        "eval_curve": [{"step": e["step"], "eval_loss": e["eval_loss"]} for e in history if "eval_loss" in e],
        "peak_memory": peak_memory(),
    }


def model_card(cfg: FinetuneConfig, summary: dict[str, Any]) -> str:
    def num(x: Any) -> str:
        return f"{x:.4f}" if isinstance(x, float) else "n/a"

    last_eval = num(summary["eval_curve"][-1]["eval_loss"]) if summary["eval_curve"] else "n/a"
    train_stats = summary["examples"].get("train", {})
    where = cfg.push_to_hub or cfg.output
    plot = f"\n![train and eval loss, learning rate]({summary['loss_plot']})\n" if summary.get("loss_plot") else ""
    return f"""---
base_model: {cfg.model}
library_name: peft
pipeline_tag: text-generation
tags: [raft, lora, {'qlora, ' if cfg.load_in_4bit else ''}trl, sft]
{_datasets_line(cfg.data)}---

# RAFT adapter for {cfg.model}

A LoRA adapter trained with RAFT (Zhang et al. 2024) data by `python -m raft.finetune`
(recipe `{cfg.recipe or 'none'}`; the effective recipe is `recipe.yaml` in this folder).

- Base model: `{cfg.model}` {'loaded in 4-bit NF4 with double quantisation (QLoRA)' if cfg.load_in_4bit else 'in 16 bits'}
- LoRA: rank {cfg.lora.rank}, alpha {cfg.lora.alpha}, dropout {cfg.lora.dropout}, targets {cfg.lora.target_modules}
- Data: `{cfg.data}`: {train_stats.get('kept', '?')} training examples of at most {summary['max_length']} tokens
  (overlong policy `{summary['overlong_policy']}`); loss on the answer only
- Training: {summary['global_step']} steps, learning rate {cfg.train.learning_rate} ({cfg.train.lr_scheduler_type}),
  {summary['precision']}, optimizer {summary['optim']}; mean train loss {num(summary['train_loss'])}, last eval loss {last_eval}
- Trainable parameters: {summary['trainable_params']:,} of {summary['total_params']:,}; details (loss curves, tokens/s,
  peak memory) in `train_summary.json`
{plot}
The prompt is `raft.prompts.student_prompt`: each document in `<DOCUMENT>...</DOCUMENT>`, then the
question; the answer reasons step by step, quotes with `##begin_quote##...##end_quote##` and ends with
`<ANSWER>: ...`. Use the model's chat template.

## Use

```python
from peft import AutoPeftModelForCausalLM
model = AutoPeftModelForCausalLM.from_pretrained("{where}")
```

Evaluate: `python -m raft.evaluate model={cfg.model} adapter={where}` (or `merge=true` and point
lm-eval / vLLM at `{merged_location(cfg)}`).
"""


def _datasets_line(data: str) -> str:
    """The card's ``datasets:`` line when the training data is a Hub dataset (not a local folder or file)."""
    return f"datasets: [{data}]\n" if looks_like_hub_id(data) and not Path(data).expanduser().exists() else ""


def merged_location(cfg: FinetuneConfig) -> str:
    """Where the merged model is: ``ORG/NAME-merged`` when pushed, else ``output/merged``."""
    return f"{cfg.push_to_hub}-merged" if cfg.push_to_hub else str(Path(cfg.output) / "merged")


def merged_model_card(cfg: FinetuneConfig) -> str:
    """``merged/README.md``: the base model with the RAFT adapter merged in."""
    return f"""---
base_model: {cfg.model}
library_name: transformers
pipeline_tag: text-generation
tags: [raft, merged, lora, trl, sft]
{_datasets_line(cfg.data)}---

# {cfg.model} with a RAFT LoRA adapter merged in

`{cfg.model}` with the LoRA adapter `{cfg.push_to_hub or cfg.output}` (trained by `python -m raft.finetune`,
recipe `{cfg.recipe or 'none'}`; its model card has the training details) merged into its weights, saved in
{cfg.merge_dtype}: transformers, vLLM and lm-eval load it like any model. Use the model's chat template.
"""


def merge_adapter(cfg: FinetuneConfig, tokenizer: Any) -> Path:
    """Reload the base model in ``merge_dtype``, merge the adapter into it, save it to output/merged."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if cfg.merge_dtype not in dtypes:
        raise ConfigError(f"merge_dtype={cfg.merge_dtype!r} is not one of {', '.join(dtypes)}")
    target = Path(cfg.output) / "merged"
    log(f"merging the adapter into {cfg.model} ({cfg.merge_dtype}) -> {target}")
    base = AutoModelForCausalLM.from_pretrained(cfg.model, dtype=dtypes[cfg.merge_dtype],
                                                device_map="auto" if torch.cuda.is_available() else None)
    merged = PeftModel.from_pretrained(base, cfg.output).merge_and_unload()
    merged.config.use_cache = True
    merged.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / "README.md").write_text(merged_model_card(cfg))
    return target


def save_adapter(trainer: Any, output: str | Path) -> None:
    """Save the adapter (every process must call it). Under FSDP the recipe's checkpoints are sharded
    (``SHARDED_STATE_DICT``), and ``Trainer.save_model`` then writes no adapter at all: switch to
    ``FULL_STATE_DICT`` first, as PEFT's FSDP-QLoRA guide does."""
    if getattr(trainer, "is_fsdp_enabled", False):
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(output))


def last_checkpoint(output: str | Path) -> str | None:
    """The ``checkpoint-N`` folder with the largest N (``transformers.trainer_utils.get_last_checkpoint``)."""
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output)) if Path(output).is_dir() else None


def fingerprint(cfg: FinetuneConfig) -> dict[str, Any]:
    """The settings that change the trained weights, as flat dotted keys: model, data, seed,
    load_in_4bit, lora.* and train.* but :data:`NOT_IN_FINGERPRINT`."""
    d = to_dict(cfg)
    out: dict[str, Any] = {k: d[k] for k in ("model", "data", "seed", "load_in_4bit")}
    for section in ("lora", "train"):
        out.update({f"{section}.{k}": v for k, v in d[section].items() if f"{section}.{k}" not in NOT_IN_FINGERPRINT})
    out = {k: v for k, v in out.items() if not (k in ADDED_LATER and v == ADDED_LATER[k])}
    return json.loads(json.dumps(out))  # the JSON form, as it is read back


def _differences(stored: dict[str, Any], current: dict[str, Any]) -> str:
    changed = [k for k in sorted(set(stored) | set(current)) if stored.get(k) != current.get(k)]
    return ", ".join(f"{k}={current.get(k)!r} (checkpoints: {stored.get(k)!r})" for k in changed)


def check_output(cfg: FinetuneConfig) -> str | None:
    """The checkpoint to resume from (None for a new run), or a one-line ConfigError: checkpoints in
    ``output`` without ``resume=true``, or with settings other than this recipe's."""
    output = Path(cfg.output)
    checkpoint = last_checkpoint(output)
    if checkpoint is None:
        if cfg.resume:
            raise ConfigError(f"resume=true but {output} holds no checkpoint-* folder; run without resume=true to start")
        return None
    name = Path(checkpoint).name
    path = output / FINGERPRINT_FILE
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{output} holds {name} but no {FINGERPRINT_FILE} (not written by this raft.finetune): "
                          "choose another output=, or delete the folder") from None
    except (json.JSONDecodeError, OSError) as e:
        raise ConfigError(f"{path}: unreadable run fingerprint ({type(e).__name__}); choose another output=, or delete the folder") from None
    changed = _differences(stored, fingerprint(cfg))
    if not cfg.resume:
        what = f"of a run with other settings: {changed}" if changed else "of a run with these settings"
        raise ConfigError(f"{output} already holds checkpoints ({name}) {what}; pass resume=true to continue it, "
                          "or another output= (runs are never mixed in one folder)")
    if changed:
        raise ConfigError(f"resume=true: the checkpoints in {output} were trained with other settings: {changed}; "
                          "resume with their settings, or start in another output=")
    if not (Path(checkpoint) / "trainer_state.json").is_file():
        raise ConfigError(f"{checkpoint} is incomplete (no trainer_state.json: the run stopped while saving it); "
                          "delete it to resume from the checkpoint before it")
    return checkpoint


def write_fingerprint(cfg: FinetuneConfig) -> None:
    """``output/finetune_run.json`` (main process only; written atomically)."""
    if not is_main_process():
        return
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    tmp = output / (FINGERPRINT_FILE + ".tmp")
    tmp.write_text(json.dumps(fingerprint(cfg), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, output / FINGERPRINT_FILE)
