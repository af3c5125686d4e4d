"""The model side of raft.finetune: what this machine makes of the recipe (:class:`Runtime`: device,
precision, optimizer and their fallbacks), the tokenizer, the 4-bit quantisation config, the base model,
and the PEFT ``LoraConfig`` and TRL ``SFTConfig`` built from the recipe.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.config import ConfigError, FinetuneConfig, first_line
from raft.finetune.curves import check_report_to
from raft.finetune.data import hub_offline, log, looks_like_hub_id

_BNB_OPTIMIZERS = ("paged_", "_8bit", "bnb")


@dataclass
class Runtime:
    """What this machine makes of the recipe: device, precision, optimizer, placement; and why."""

    device: str  # cuda | cpu
    precision: str  # bf16 | fp16 | fp32
    optim: str
    fsdp: bool = False
    world_size: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def dtype(self) -> Any:
        import torch

        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[self.precision]


def resolve_runtime(cfg: FinetuneConfig) -> Runtime:
    """Map the recipe onto this machine; each fallback adds a note that is logged as one line."""
    import torch

    cuda = torch.cuda.is_available()
    notes = []
    if cuda:
        if not cfg.train.bf16:
            precision = "fp32"
        elif torch.cuda.is_bf16_supported():
            precision = "bf16"
        else:
            precision = "fp16"
            notes.append("this GPU has no bf16: training in fp16 mixed precision (4-bit compute dtype fp16)")
    else:
        precision = "fp32"
        if cfg.train.bf16:
            notes.append("no CUDA GPU: bf16 mixed precision is off, training in fp32")
    optim = cfg.train.optim
    if not cuda and any(k in optim for k in _BNB_OPTIMIZERS):
        notes.append(f"no CUDA GPU: optimizer {optim} (bitsandbytes, paged) replaced by adamw_torch")
        optim = "adamw_torch"
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true")
    if fsdp and cfg.load_in_4bit:
        notes.append("FSDP: 4-bit weights stored as bf16 (bnb_4bit_quant_storage) so that FSDP can shard them")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return Runtime("cuda" if cuda else "cpu", precision, optim, fsdp, world, notes)


def model_error(model: str, error: Exception) -> ConfigError:
    """The one-line ConfigError for a model that cannot be loaded: a folder, a hub id offline or unknown."""
    first = first_line(error)
    if Path(model).expanduser().exists():
        return ConfigError(f"cannot load model {model}: {first}")
    if not looks_like_hub_id(model):
        return ConfigError(f"cannot load model {model}: no such folder")
    if hub_offline():
        return ConfigError(f"cannot load model {model}: not found locally and the hub is offline; pass a local path")
    return ConfigError(f"cannot load model {model}: not found locally or on the hub ({first})")


def load_tokenizer(model: str) -> Any:
    """The student's tokenizer, with a pad token and a chat template (or a one-line error)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as e:
        raise model_error(model, e) from e
    if not tokenizer.chat_template:
        raise ConfigError(f"model {model}: its tokenizer has no chat template; use an instruct/chat model")
    if tokenizer.pad_token is None:
        vocab = tokenizer.get_vocab()
        pad = next((t for t in ("<|finetune_right_pad_id|>", "<|reserved_special_token_0|>") if t in vocab), None)
        tokenizer.pad_token = pad or tokenizer.unk_token or tokenizer.eos_token
    return tokenizer


def bnb_config(cfg: FinetuneConfig, rt: Runtime) -> Any:
    """4-bit NF4, double quantisation, compute in the training precision (bf16 on a modern GPU)."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=rt.dtype,
        bnb_4bit_quant_storage=torch.bfloat16 if rt.fsdp else torch.uint8,
    )


def load_model(cfg: FinetuneConfig, rt: Runtime) -> Any:
    """The base model: 4-bit (prepared for k-bit training) or in the training dtype, on this process's GPU."""
    import torch
    from transformers import AutoModelForCausalLM

    attn = cfg.attn_implementation
    if attn == "flash_attention_2" and rt.device != "cuda":
        log("flash_attention_2 needs a GPU: using sdpa")
        attn = "sdpa"
    kwargs: dict[str, Any] = {"attn_implementation": attn}
    if cfg.load_in_4bit:
        kwargs["quantization_config"] = bnb_config(cfg, rt)
        # non-quantised weights (embeddings, norms): bf16 under FSDP (one dtype to shard), else the training dtype
        kwargs["dtype"] = torch.bfloat16 if rt.fsdp else rt.dtype
    else:
        kwargs["dtype"] = rt.dtype
    if rt.device == "cuda" and not rt.fsdp:
        from accelerate import PartialState

        kwargs["device_map"] = {"": PartialState().local_process_index}  # DDP: one whole model per GPU
    elif cfg.load_in_4bit and not rt.fsdp:
        kwargs["device_map"] = {"": "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(cfg.model, **kwargs)
    except (OSError, ValueError) as e:
        raise model_error(cfg.model, e) from e
    model.config.use_cache = False  # incompatible with gradient checkpointing; generation turns it back on
    if cfg.load_in_4bit and not rt.fsdp:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=cfg.train.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    return model


def lora_config(cfg: FinetuneConfig) -> Any:
    from peft import LoraConfig

    targets = cfg.lora.target_modules
    if isinstance(targets, str) and targets != "all-linear":
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    return LoraConfig(
        r=cfg.lora.rank,
        lora_alpha=cfg.lora.alpha,
        lora_dropout=cfg.lora.dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
    )


def sft_config(cfg: FinetuneConfig, rt: Runtime, has_eval: bool) -> Any:
    """TRL ``SFTConfig`` from the recipe's ``train`` section and the runtime's fallbacks."""
    from trl import SFTConfig

    t = cfg.train
    if not 0 <= t.warmup_ratio < 1:
        raise ConfigError(f"train.warmup_ratio={t.warmup_ratio} must be in [0, 1)")
    logging_steps, eval_steps, save_steps = (_interval(cfg, k) for k in ("logging_steps", "eval_steps", "save_steps"))
    if logging_steps == 0:
        raise ConfigError("train.logging_steps=0: the loss must be logged (a share of the steps such as 0.02, or a number of steps)")
    evaluate = has_eval and eval_steps > 0
    liger = cfg.liger_kernel
    if liger:
        try:
            import liger_kernel  # noqa: F401
        except ImportError:
            log("liger_kernel=true but the liger-kernel package is not installed: training without it")
            liger = False
    checkpointing = {  # transformers 5.2x renamed gradient_checkpointing to activation_checkpointing
        "activation_checkpointing": t.gradient_checkpointing,
        "activation_checkpointing_kwargs": {"use_reentrant": rt.fsdp},  # FSDP-QLoRA wants reentrant (PEFT's guide)
    }
    if "activation_checkpointing" not in {f.name for f in dataclasses.fields(SFTConfig)}:
        checkpointing = {k.replace("activation", "gradient"): v for k, v in checkpointing.items()}
    return SFTConfig(
        **checkpointing,
        output_dir=cfg.output,
        seed=cfg.seed,
        max_steps=t.max_steps,
        num_train_epochs=t.num_train_epochs,
        per_device_train_batch_size=t.per_device_train_batch_size,
        per_device_eval_batch_size=t.per_device_eval_batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler_type,
        warmup_steps=t.warmup_ratio,  # transformers 5: a value below 1 is a share of the steps
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=rt.optim,
        bf16=rt.precision == "bf16",
        fp16=rt.precision == "fp16",
        # prepare_data already fitted every example to max_length; TRL refuses padding_free without packing
        # when max_length is set (it would not enforce it), so it gets None there
        max_length=None if t.padding_free and not t.packing else t.max_length,
        packing=t.packing,
        padding_free=t.padding_free,
        completion_only_loss=True,
        logging_steps=logging_steps,  # below 1: transformers takes that share of the run's steps, rounded up
        logging_first_step=True,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=eval_steps if evaluate else None,
        save_strategy="steps" if save_steps > 0 else "no",
        save_steps=save_steps,
        save_total_limit=t.save_total_limit,
        report_to=check_report_to(t.report_to),  # transformers' integrations; tensorboard writes output/runs/
        dataloader_num_workers=t.dataloader_num_workers,
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False if rt.world_size > 1 else None,
        use_liger_kernel=liger,
        use_cpu=rt.device == "cpu",
    )


def _interval(cfg: FinetuneConfig, key: str) -> float:
    """``train.logging_steps`` / ``eval_steps`` / ``save_steps`` checked: a share of the run's steps in
    (0, 1), a whole number of steps from 1 on, or 0 (off)."""
    value = getattr(cfg.train, key)
    if value < 0 or (value >= 1 and value != int(value)):
        raise ConfigError(f"train.{key}={value}: give a share of the run's steps below 1 (0.1: every tenth of the run), "
                          "a whole number of steps from 1 on, or 0")
    return int(value) if value >= 1 else float(value)


def every(value: float, steps: int) -> int:
    """The interval in optimizer steps that a ``*_steps`` setting means in a run of ``steps`` (transformers' rule)."""
    return math.ceil(steps * value) if value < 1 else int(value)


def optimizer_steps(cfg: FinetuneConfig, rows: int, world_size: int = 1) -> int:
    """Optimizer steps of a run on ``rows`` training examples (without packing), as transformers counts them:
    ``train.max_steps`` if set, else ceil(epochs x ceil(ceil(rows / (batch x processes)) / accumulation))."""
    t = cfg.train
    if t.max_steps > 0:
        return t.max_steps
    batches = math.ceil(rows / (t.per_device_train_batch_size * world_size))
    per_epoch = max(math.ceil(batches / t.gradient_accumulation_steps), 1)
    return math.ceil(t.num_train_epochs * per_epoch)


def schedule_line(cfg: FinetuneConfig, rows: int, world_size: int, has_eval: bool) -> str:
    """One log line: how many optimizer steps the run takes and how often it logs, evaluates and saves."""
    t = cfg.train
    steps = optimizer_steps(cfg, rows, world_size)
    processes = f" x {world_size} processes" if world_size > 1 else ""
    per_epoch = optimizer_steps(dataclasses.replace(cfg, train=dataclasses.replace(t, max_steps=-1, num_train_epochs=1)), rows, world_size)
    how = (f"train.max_steps={t.max_steps}" if t.max_steps > 0 else
           f"{t.num_train_epochs:g} epoch(s) x {per_epoch} ({rows} rows / (batch {t.per_device_train_batch_size} x "
           f"{t.gradient_accumulation_steps} accumulation{processes}))")
    evaluation = f"evaluation every {every(t.eval_steps, steps)} and at the end" if has_eval and t.eval_steps > 0 else "no evaluation"
    saving = f"a checkpoint every {every(t.save_steps, steps)} and at the end" if t.save_steps > 0 else "no checkpoints"
    packed = " (counted before packing)" if t.packing else ""
    return (f"{steps} optimizer steps{packed}: {how}; loss logged every {every(t.logging_steps, steps)} step(s), "
            f"{evaluation}, {saving}")
