"""The training run of raft.finetune: ``push_to_hub`` and ``train.report_to`` checked, the output folder
checked (one run per folder, resume only with the same settings), data, tokenizer, runtime, model, TRL
``SFTTrainer``, then the outputs (adapter, tokenizer, recipe, summary, ``loss.png``, model card,
optionally the merged model) and, last, the upload to the Hub (``push_to_hub``: exit status 1 if it fails).
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path
from typing import Any

from raft.config import FinetuneConfig, save_config
from raft.finetune.curves import check_report_to, write_loss_plot
from raft.finetune.data import load_checked_data, log, prepare_data
from raft.finetune.memory import GiB, dry_run
from raft.finetune.model import (
    load_model,
    load_tokenizer,
    lora_config,
    resolve_runtime,
    schedule_line,
    sft_config,
)
from raft.finetune.outputs import (
    LOSS_PLOT,
    SUMMARY_FILE,
    build_summary,
    check_output,
    merge_adapter,
    model_card,
    save_adapter,
    write_fingerprint,
)
from raft.finetune.reshuffle import reshuffle_train


def main(cfg: FinetuneConfig, callbacks: list[Any] | None = None) -> dict[str, Any] | None:
    """Train (or dry-run) the recipe; returns the training summary (None for a dry run or a non-main process).

    ``callbacks``: extra ``transformers.TrainerCallback`` objects for the trainer (tests, notebooks).
    With ``push_to_hub`` set, a failed upload prints one line and raises ``SystemExit(1)``, after every
    local output is written.
    """
    check_report_to(cfg.train.report_to)  # a tracker that is not installed: one line, before anything loads
    if cfg.push_to_hub:  # a malformed repo id (or, for a real run, no token): one line, before anything loads
        from raft.hub import check_push

        check_push(cfg.push_to_hub, merged=cfg.merge, need_token=not cfg.dry_run)
    if cfg.dry_run:
        dry_run(cfg)
        return None
    output = Path(cfg.output)
    resume_from = check_output(cfg)  # one run per folder: refuses checkpoints of another run before any loading

    data, eval_split = load_checked_data(cfg)
    tokenizer = load_tokenizer(cfg.model)
    train, evaluation, stats = prepare_data(cfg, tokenizer, data, eval_split)
    rt = resolve_runtime(cfg)
    for note in rt.notes:
        log(note)
    rows = len(train)
    # train.reshuffle_documents: the epochs as copies of the split, and max_steps set to the same optimizer steps
    train, run_cfg = reshuffle_train(cfg, tokenizer, data["train"], train, stats, rt.world_size)
    args = sft_config(run_cfg, rt, evaluation is not None)
    log(schedule_line(cfg, rows, rt.world_size, evaluation is not None))
    log(f"loading {cfg.model} ({'4-bit NF4 QLoRA' if cfg.load_in_4bit else rt.precision + ' LoRA'}, {rt.device}, "
        f"{rt.world_size} process{'es' if rt.world_size > 1 else ''})")
    model = load_model(cfg, rt)

    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=evaluation,
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
        callbacks=callbacks,
    )
    if rt.precision == "fp16":  # TRL keeps a QLoRA adapter in bf16; fp16 mixed precision needs fp32 master weights
        for param in trainer.model.parameters():
            if param.requires_grad:
                param.data = param.data.float()
    trainable, total = trainer.model.get_nb_trainable_parameters()
    log(f"trainable LoRA parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)")
    if resume_from:
        log(f"resuming from {resume_from}")
    start = {"step": 0, "tokens": 0}
    if resume_from:
        state = json.loads((Path(resume_from) / "trainer_state.json").read_text())
        start = {"step": int(state.get("global_step", 0)), "tokens": int(state.get("num_input_tokens_seen", 0))}
    write_fingerprint(cfg)  # what the checkpoints are trained with: resume=true checks it
    started = time.time()
    result = trainer.train(resume_from_checkpoint=resume_from)
    save_adapter(trainer, cfg.output)  # the adapter (and the tokenizer); every process must call it
    if not trainer.is_world_process_zero():
        return None
    summary = build_summary(cfg, rt, trainer, result, stats, resume_from, start)
    plot = write_loss_plot(trainer.state.log_history, output / LOSS_PLOT,
                           title=f"{cfg.recipe or 'raft.finetune'} ({Path(cfg.model).name}): loss and learning rate")
    summary["loss_plot"] = plot.name if plot else None
    tokenizer.save_pretrained(cfg.output)
    save_config(cfg, cfg.output)
    (output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (output / "README.md").write_text(model_card(cfg, summary))
    losses = [e["loss"] for e in summary["loss_curve"]]
    tps = summary["tokens_per_second"]
    log(f"done in {time.time() - started:.0f}s: {summary['global_step']} steps, loss {losses[0] if losses else float('nan'):.4f} -> "
        f"{losses[-1] if losses else float('nan'):.4f}, {tps if tps is not None else 0:.0f} tokens/s, "
        f"peak memory {summary['peak_memory']['bytes'] / GiB:.2f} GiB; adapter, tokenizer, recipe.yaml, "
        f"{SUMMARY_FILE}{', ' + LOSS_PLOT if plot else ''} and README.md in {output}")
    if cfg.merge:
        del trainer, model
        gc.collect()
        _empty_cuda_cache()
        merged = merge_adapter(cfg, tokenizer)
        summary["merged"] = str(merged)
        (output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if cfg.push_to_hub:  # last: a push changes nothing local, and its failure leaves a complete output
        from raft.hub import push_model

        if push_model(output, cfg.push_to_hub, cfg.hub_private, merged=cfg.merge):
            raise SystemExit(1)
    return summary


def _empty_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
