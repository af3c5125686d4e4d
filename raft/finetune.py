"""Fine-tune a student model on RAFT data: a recipe becomes TRL ``SFTConfig`` + PEFT ``LoraConfig`` +
transformers ``BitsAndBytesConfig``, and TRL's ``SFTTrainer`` trains (no training loop of our own).

    python -m raft.finetune recipe=llama31_8b_q4                      # QLoRA, the headline recipe
    python -m raft.finetune recipe=llama31_8b_q4 data=outputs/raft_data train.max_steps=300 merge=true
    python -m raft.finetune recipe=llama31_8b_q4 dry_run=true          # parameters and GPU memory, no download
    python -m raft.finetune recipe=llama31_8b_q4 resume=true           # continue after a crash
    accelerate launch --config_file recipes/accelerate/ddp.yaml -m raft.finetune recipe=llama31_8b_q4

Data (``data=``): the folder ``raft.generate`` writes (``OUT/dataset`` is read with ``load_from_disk``;
``OUT/dataset`` itself works too), a JSONL file, or a hub id. Training uses the ``prompt`` /
``completion`` columns (TRL's conversational format): TRL applies the model's chat template and
computes the loss on the completion only. The test split, if there is one, is the evaluation set.

Examples longer than ``train.max_length`` tokens (prompt + answer under the chat template) are
counted and, with ``train.overlong=truncate_documents``, fitted by shortening the longest documents
inside the prompt (rebuilt with ``raft.prompts.student_prompt`` from the ``documents`` and
``question`` columns), so that the answer is never cut; ``train.overlong=drop`` drops them. An
example whose answer does not fit even with empty documents is always dropped. The log and
``train_summary.json`` say what happened.

Outputs in ``output``: the LoRA adapter and the tokenizer, ``recipe.yaml`` (the effective recipe),
``train_summary.json``, a model card ``README.md``, ``checkpoint-*`` folders (for ``resume=true``)
and, with ``merge=true``, ``merged/``: the base model with the adapter merged in, in 16 bits, which
transformers, vLLM and lm-eval load like any model.

Hardware: on a GPU, 4-bit NF4 with double quantisation and bf16 compute (``load_in_4bit=true``) or
bf16 LoRA, paged AdamW, gradient checkpointing. On a CPU (the tests) bitsandbytes 0.50 still runs
4-bit, but bf16 mixed precision and paged/8-bit optimizers do not: training falls back to fp32 and
``adamw_torch``, and one log line says so. Under ``accelerate launch`` (DDP) every process puts the
model on its own GPU; under FSDP (``recipes/accelerate/fsdp_qlora.yaml``) the 4-bit weights are stored
as bf16 so that FSDP can shard them. The multi-process path can be tried on a CPU (gloo backend):

    CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 -m raft.finetune recipe=tiny

(``accelerate launch --cpu --num_processes 2`` starts a single process in accelerate 1.x.)
"""

from __future__ import annotations

import functools
import gc
import json
import os
import re
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from raft.config import ConfigError, FinetuneConfig, first_line, run_cli, save_config, to_dict
from raft.prompts import student_prompt

SUMMARY_FILE = "train_summary.json"
OVERLONG_POLICIES = ("truncate_documents", "drop")
GiB = 1024**3


class DataError(ConfigError):
    """Training data that cannot be used: one line naming the file, split, column or row."""


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def log(message: str) -> None:
    """One progress line on stdout (only from the main process under accelerate launch)."""
    if _is_main_process():
        print(f"raft.finetune: {message}", flush=True)


def _hub_offline() -> bool:
    try:
        from huggingface_hub import constants

        if constants.is_offline_mode():
            return True
    except (ImportError, AttributeError):
        pass
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _looks_like_hub_id(name: str) -> bool:
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", name)) and not name.startswith((".", "/", "~"))


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------


def load_data(path: str) -> Any:
    """A ``DatasetDict`` from a raft.generate folder, a saved dataset, a JSONL file or a hub id."""
    p = Path(path).expanduser()
    if p.is_dir():
        import datasets

        for candidate in (p / "dataset", p):
            if (candidate / "dataset_dict.json").is_file():
                splits = json.loads((candidate / "dataset_dict.json").read_text()).get("splits", [])
                return datasets.DatasetDict({s: _load_saved(candidate / s, path, s) for s in splits})
            if (candidate / "state.json").is_file():
                return datasets.DatasetDict({"train": _load_saved(candidate, path, "train")})
        files = {s: str(p / f"{s}.jsonl") for s in ("train", "test") if (p / f"{s}.jsonl").is_file()}
        if "train" not in files:
            raise DataError(f"data {path}: no dataset/ folder, saved dataset or train.jsonl inside (is it a raft.generate output folder?)")
        return _load_json(files, path)
    if p.is_file():
        if p.suffix not in (".jsonl", ".json"):
            raise DataError(f"data {path}: expected a raft.generate folder, a .jsonl file or a hub id")
        files = {"train": str(p)}
        if p.name == "train.jsonl" and (p.parent / "test.jsonl").is_file():
            files["test"] = str(p.parent / "test.jsonl")
        return _load_json(files, path)
    hint = "run python -m raft.generate first or pass data=PATH"
    if not _looks_like_hub_id(path):
        raise DataError(f"data {path} not found ({hint})")
    if _hub_offline():
        raise DataError(f"data {path}: not found locally and the hub is offline ({hint})")
    import datasets

    try:
        loaded = datasets.load_dataset(path)
    except Exception as e:  # unknown id, no network, ...
        first = first_line(e)
        raise DataError(f"data {path}: not found locally and cannot be loaded from the hub ({first})") from e
    return loaded


def _load_saved(folder: Path, path: str, split: str) -> Any:
    """One split saved with ``save_to_disk``; an empty one (datasets writes no shard) as an empty Dataset."""
    import datasets

    try:
        state = json.loads((folder / "state.json").read_text())
        if state.get("_data_files") == []:  # load_from_disk cannot read a split saved without rows
            info = datasets.DatasetInfo.from_directory(str(folder))
            return datasets.Dataset.from_dict({k: [] for k in info.features or {}}, features=info.features)
        return datasets.load_from_disk(str(folder))
    except Exception as e:  # a damaged or half-written folder
        first = first_line(e)
        raise DataError(f"data {path}: cannot read split '{split}' from {folder} ({first})") from e


def _load_json(files: dict[str, str], path: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset("json", data_files=files)
    except Exception as e:
        first = first_line(e)
        raise DataError(f"data {path}: cannot read JSON lines ({first})") from e


def check_columns(ds: Any, split: str, path: str) -> None:
    """Fail with one line unless ``ds`` has non-empty conversational ``prompt`` / ``completion`` columns."""
    missing = [c for c in ("prompt", "completion") if c not in ds.column_names]
    if missing:
        raise DataError(
            f"data {path}: split '{split}' lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(ds.column_names) or 'none'}); raft.generate writes prompt/completion chat messages"
        )
    if len(ds) == 0:
        raise DataError(f"data {path}: split '{split}' is empty")
    for column in ("prompt", "completion"):
        value = ds[0][column]
        if not (isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)):
            raise DataError(f"data {path}: split '{split}' row 0 column '{column}' is not a list of chat messages ({{role, content}})")


def _n_tokens(tokenizer: Any, messages: list[dict], add_generation_prompt: bool = False) -> int:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=False)
    return len(ids)


def _water_level(lengths: list[int], budget: int) -> int:
    """Largest cap c with sum(min(l, c)) <= budget: trimming the longest documents first."""
    lo, hi = 0, max(lengths, default=0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _rebuild_prompt(prompt: list[dict], documents: list[str], question: str) -> list[dict]:
    last_user = max(i for i, m in enumerate(prompt) if m["role"] == "user")
    out = [dict(m) for m in prompt]
    out[last_user] = {"role": "user", "content": student_prompt(documents, question)}
    return out


def fit_example(row: dict, tokenizer: Any, max_length: int, policy: str) -> tuple[str, dict | None, int]:
    """Make one row fit ``max_length`` tokens: (outcome, {prompt, completion} or None, tokens).

    outcome: ``fits`` | ``truncated`` (documents shortened) | ``dropped`` (overlong, policy drop or no
    documents to shorten) | ``answer_too_long`` (does not fit even with empty documents).
    """
    prompt, completion = row["prompt"], row["completion"]
    n = _n_tokens(tokenizer, prompt + completion)
    if n <= max_length:
        return "fits", {"prompt": prompt, "completion": completion}, n
    documents, question = row.get("documents"), row.get("question")
    can_trim = isinstance(documents, list) and bool(documents) and isinstance(question, str)
    if can_trim:
        empty = _n_tokens(tokenizer, _rebuild_prompt(prompt, [""] * len(documents), question) + completion)
    else:
        empty = _n_tokens(tokenizer, [m for m in prompt if m["role"] != "user"] + [{"role": "user", "content": ""}] + completion)
    if empty > max_length:
        return "answer_too_long", None, n
    if policy == "drop" or not can_trim:
        return "dropped", None, n
    ids = [tokenizer(d, add_special_tokens=False)["input_ids"] for d in documents]
    lengths = [len(x) for x in ids]
    excess = n - max_length
    for _ in range(8):  # re-tokenising cut text can differ by a token or two: tighten until it fits
        cap = _water_level(lengths, max(0, sum(lengths) - excess))
        trimmed = [tokenizer.decode(x[:cap]) if len(x) > cap else d for x, d in zip(ids, documents, strict=True)]
        new_prompt = _rebuild_prompt(prompt, trimmed, question)
        m = _n_tokens(tokenizer, new_prompt + completion)
        if m <= max_length:
            return "truncated", {"prompt": new_prompt, "completion": completion}, m
        excess += m - max_length
    return "dropped", None, n


def fit_split(ds: Any, tokenizer: Any, max_length: int, policy: str, split: str) -> tuple[Any, dict[str, Any]]:
    """Apply :func:`fit_example` to a split; returns a prompt/completion ``Dataset`` and the counts."""
    import datasets
    from tqdm.auto import tqdm

    rows, counts, tokens = [], {"fits": 0, "truncated": 0, "dropped": 0, "answer_too_long": 0}, 0
    for row in tqdm(ds, desc=f"fitting {split} to max_length={max_length}", disable=not _is_main_process(), leave=False):
        outcome, kept, n = fit_example(row, tokenizer, max_length, policy)
        counts[outcome] += 1
        if kept is not None:
            rows.append(kept)
            tokens += n
    stats = {
        "examples": len(ds),
        "kept": len(rows),
        "overlong": len(ds) - counts["fits"],
        "truncated_documents": counts["truncated"],
        "dropped_overlong": counts["dropped"],
        "dropped_answer_too_long": counts["answer_too_long"],
        "tokens": tokens,
    }
    out = datasets.Dataset.from_list(rows) if rows else None
    return out, stats


def load_checked_data(cfg: FinetuneConfig) -> tuple[Any, str | None]:
    """(the DatasetDict, the evaluation split or None), columns checked: fails before any model loads."""
    if cfg.train.overlong not in OVERLONG_POLICIES:
        raise ConfigError(f"train.overlong={cfg.train.overlong!r} is not one of {', '.join(OVERLONG_POLICIES)}")
    data = load_data(cfg.data)
    if "train" not in data:
        raise DataError(f"data {cfg.data}: no 'train' split (splits: {', '.join(data) or 'none'})")
    eval_split = next((s for s in ("test", "validation") if s in data and len(data[s]) > 0), None)
    check_columns(data["train"], "train", cfg.data)
    if eval_split:
        check_columns(data[eval_split], eval_split, cfg.data)
    return data, eval_split


def prepare_data(cfg: FinetuneConfig, tokenizer: Any, data: Any, eval_split: str | None) -> tuple[Any, Any, dict[str, Any]]:
    """(train, eval or None, stats): fitted to ``train.max_length``, only prompt/completion kept."""
    t = cfg.train
    stats: dict[str, Any] = {"policy": t.overlong, "max_length": t.max_length}
    train, stats["train"] = fit_split(data["train"], tokenizer, t.max_length, t.overlong, "train")
    if train is None:
        s = stats["train"]
        raise DataError(
            f"data {cfg.data}: no training example fits train.max_length={t.max_length} "
            f"({s['dropped_answer_too_long']} answers alone are longer, {s['dropped_overlong']} dropped as overlong); raise train.max_length"
        )
    evaluation = None
    if eval_split:
        evaluation, stats[eval_split] = fit_split(data[eval_split], tokenizer, t.max_length, t.overlong, eval_split)
    stats["eval_split"] = eval_split if evaluation is not None else None
    for split in ("train", eval_split):
        if split and split in stats:
            s = stats[split]
            fitted = f"{s['truncated_documents']} fitted by shortening their documents, " if t.overlong == "truncate_documents" else ""
            log(
                f"{split}: {s['examples']} examples, {s['overlong']} longer than max_length={t.max_length} "
                f"(overlong={t.overlong}): {fitted}{s['dropped_overlong']} dropped, {s['dropped_answer_too_long']} dropped "
                f"because the answer alone does not fit; {s['kept']} kept, {s['tokens']} tokens"
            )
    if evaluation is None:
        log("no test split: training without evaluation")
    return train, evaluation, stats


# --------------------------------------------------------------------------------------------------
# hardware and model
# --------------------------------------------------------------------------------------------------

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


def _model_error(model: str, error: Exception) -> ConfigError:
    first = first_line(error)
    if Path(model).expanduser().exists():
        return ConfigError(f"cannot load model {model}: {first}")
    if not _looks_like_hub_id(model):
        return ConfigError(f"cannot load model {model}: no such folder")
    if _hub_offline():
        return ConfigError(f"cannot load model {model}: not found locally and the hub is offline; pass a local path")
    return ConfigError(f"cannot load model {model}: not found locally or on the hub ({first})")


def load_tokenizer(model: str) -> Any:
    """The student's tokenizer, with a pad token and a chat template (or a one-line error)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as e:
        raise _model_error(model, e) from e
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
        raise _model_error(cfg.model, e) from e
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
    import dataclasses

    from trl import SFTConfig

    t = cfg.train
    if not 0 <= t.warmup_ratio < 1:
        raise ConfigError(f"train.warmup_ratio={t.warmup_ratio} must be in [0, 1)")
    evaluate = has_eval and t.eval_steps > 0
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
        logging_steps=t.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=t.eval_steps if evaluate else None,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        report_to=[] if t.report_to in ("none", "", None) else t.report_to,
        dataloader_num_workers=t.dataloader_num_workers,
        include_num_input_tokens_seen="non_padding",
        ddp_find_unused_parameters=False if rt.world_size > 1 else None,
        use_liger_kernel=liger,
        use_cpu=rt.device == "cpu",
    )


# --------------------------------------------------------------------------------------------------
# dry run: parameters and GPU memory from the architecture alone
# --------------------------------------------------------------------------------------------------

_LLAMA3_8B = dict(
    hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=8,
    vocab_size=128256, max_position_embeddings=131072, rms_norm_eps=1e-5, tie_word_embeddings=False,
)
_LLAMA2_7B = dict(
    hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32,
    vocab_size=32000, max_position_embeddings=4096, rms_norm_eps=1e-5, tie_word_embeddings=False,
)
#: Shapes of the recipe models (from their published config.json), so that dry_run needs no download.
KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "meta-llama/Llama-3.1-8B-Instruct": _LLAMA3_8B,
    "meta-llama/Meta-Llama-3.1-8B-Instruct": _LLAMA3_8B,
    "meta-llama/Llama-3.1-8B": _LLAMA3_8B,
    "meta-llama/Meta-Llama-3-8B-Instruct": _LLAMA3_8B,
    "meta-llama/Meta-Llama-3-8B": _LLAMA3_8B,
    "meta-llama/Llama-2-7b-chat-hf": _LLAMA2_7B,
    "meta-llama/Llama-2-7b-hf": _LLAMA2_7B,
}


def model_config(model: str) -> tuple[Any, str]:
    """(transformers config, where it came from): a local folder, the built-in table, or the hub."""
    from transformers import AutoConfig, LlamaConfig

    if Path(model).expanduser().exists():
        try:
            return AutoConfig.from_pretrained(model), f"{model}/config.json"
        except (OSError, ValueError) as e:
            raise _model_error(model, e) from e
    if model in KNOWN_ARCHITECTURES:
        return LlamaConfig(**KNOWN_ARCHITECTURES[model]), "raft.finetune's table of the recipe models (no download)"
    try:
        return AutoConfig.from_pretrained(model), "the hub"
    except (OSError, ValueError) as e:
        raise _model_error(model, e) from e


@functools.lru_cache(maxsize=8)
def _linear_shapes(config_json: str) -> tuple[int, tuple[tuple[str, int, int], ...]]:
    """(total parameters, (name, in, out) of every linear layer but the LM head) of an empty model."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config_dict = json.loads(config_json)
    config = AutoConfig.for_model(config_dict.pop("model_type"), **config_dict)
    with torch.device("meta"):  # shapes only: no memory, no weights
        model = AutoModelForCausalLM.from_config(config)
    output_layer = model.get_output_embeddings()
    linears = tuple(
        (name, m.in_features, m.out_features)
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and m is not output_layer
    )
    return sum(p.numel() for p in model.parameters()), linears


def count_parameters(config: Any, target_modules: Any, rank: int) -> dict[str, int]:
    """Parameter counts from an empty (meta-device) model: total, in quantisable linears, LoRA."""
    total, linears = _linear_shapes(config.to_json_string(use_diff=False))
    if isinstance(target_modules, str) and target_modules != "all-linear":
        target_modules = [t.strip() for t in target_modules.split(",") if t.strip()]
    linear = lora = 0
    for name, n_in, n_out in linears:
        linear += n_in * n_out
        leaf = name.rsplit(".", 1)[-1]
        if target_modules == "all-linear" or leaf in target_modules or name in target_modules:
            lora += rank * (n_in + n_out)
    return {"total": total, "quantised_linear": linear, "lora": lora}


def estimate_memory(cfg: FinetuneConfig, config: Any, params: dict[str, int]) -> dict[str, float]:
    """Estimated peak GPU memory of one training process, in GiB, term by term.

    With ``P_q`` the parameters of the linear layers (4-bit under QLoRA; lm_head stays 16-bit),
    ``P_o`` the others (embeddings, lm_head, norms), ``P_l`` the LoRA parameters, ``s`` =
    ``max_length`` x ``per_device_train_batch_size`` tokens, ``h`` hidden size, ``i`` MLP size,
    ``kv`` = key/value width, ``L`` layers:

    - weights: QLoRA ``P_q`` x 0.516 B (NF4 4 bits + double-quantised absmax 0.127 bits) +
      ``P_o`` x 4 B (``prepare_model_for_kbit_training`` upcasts them to fp32); 16-bit LoRA
      (``P_q`` + ``P_o``) x 2 B;
    - LoRA weights and gradients: QLoRA 2 + 2 B (TRL keeps the adapter in bf16), 16-bit LoRA 4 + 4 B
      (PEFT keeps the adapter in fp32);
    - optimizer: ``P_l`` x 8 B for 32-bit AdamW (two fp32 moments), x 2 B for 8-bit AdamW (paged
      variants may move them to CPU memory under pressure);
    - activations of one decoder layer: ``s`` x (2 B x (12h + 2kv + 5i) + 4 B x 2h): its inputs
      and the q, k, v, attention, MLP gate/up/act/product tensors in bf16, the LoRA dropout copies,
      and the fp32 RMSNorm upcasts (attention is O(s) with SDPA/flash, TRL's fused LM head never
      builds the full logits). With gradient checkpointing: ``L`` x ``s`` x h x 2 B saved layer
      inputs + one layer recomputed; without: ``L`` layers;
    - 1 GiB for the CUDA context and kernels. The caching allocator's fragmentation can add 10-20%.
    """
    t = cfg.train
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    heads = config.num_attention_heads
    kv = (getattr(config, "num_key_value_heads", None) or heads) * (getattr(config, "head_dim", None) or h // heads)
    s = t.max_length * t.per_device_train_batch_size
    p_q, p_o, p_l = params["quantised_linear"], params["total"] - params["quantised_linear"], params["lora"]
    if cfg.load_in_4bit:
        weights = p_q * (4 + 8 / 64 + 32 / (64 * 256)) / 8 + p_o * 4
        lora = p_l * (2 + 2)
    else:
        weights = (p_q + p_o) * 2
        lora = p_l * (4 + 4)
    optimizer = p_l * (2 if "8bit" in t.optim else 8)
    layer = s * (2 * (12 * h + 2 * kv + 5 * i) + 4 * 2 * h)
    activations = layers * s * h * 2 + layer if t.gradient_checkpointing else layers * layer
    overhead = GiB
    parts = {"weights": weights, "lora_and_grads": lora, "optimizer": optimizer, "activations": activations, "cuda_overhead": overhead}
    out = {k: v / GiB for k, v in parts.items()}
    out["total"] = sum(parts.values()) / GiB
    return out


def dry_run(cfg: FinetuneConfig) -> dict[str, Any]:
    """Print the effective recipe, the trainable parameters and a GPU memory estimate; load no weights."""
    config, source = model_config(cfg.model)
    params = count_parameters(config, cfg.lora.target_modules, cfg.lora.rank)
    memory = estimate_memory(cfg, config, params)
    print("# effective recipe")
    print(yaml.safe_dump({"command": "finetune", **to_dict(cfg)}, sort_keys=False).rstrip())
    print(f"\n# model {cfg.model}: shapes from {source}")
    print(f"hidden {config.hidden_size}, MLP {config.intermediate_size}, layers {config.num_hidden_layers}, "
          f"heads {config.num_attention_heads}/{getattr(config, 'num_key_value_heads', config.num_attention_heads)} kv, vocab {config.vocab_size}")
    print(f"parameters: {params['total']:,} total, {params['quantised_linear']:,} in linear layers "
          f"({'4-bit NF4' if cfg.load_in_4bit else '16-bit'})")
    print(f"trainable LoRA parameters (rank {cfg.lora.rank}, {cfg.lora.target_modules}): {params['lora']:,} "
          f"({100 * params['lora'] / params['total']:.2f}% of the model)")
    t = cfg.train
    print(f"\n# estimated peak GPU memory per process (max_length {t.max_length}, batch {t.per_device_train_batch_size}, "
          f"gradient checkpointing {'on' if t.gradient_checkpointing else 'off'}, {t.optim}); formula: raft.finetune.estimate_memory")
    for k, v in memory.items():
        print(f"  {k:<16} {v:7.2f} GiB")
    fits = [f"{g} GB: {'yes' if memory['total'] < g * 0.95 else 'no'}" for g in (24, 40, 80)]
    print("fits on a " + ", ".join(fits))
    return {"params": params, "memory_gib": memory, "config_source": source}


# --------------------------------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------------------------------


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
        "epochs": state.epoch,
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
    return f"""---
base_model: {cfg.model}
library_name: peft
tags: [raft, lora, {'qlora, ' if cfg.load_in_4bit else ''}trl, sft]
---

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

The prompt is `raft.prompts.student_prompt`: each document in `<DOCUMENT>...</DOCUMENT>`, then the
question; the answer reasons step by step, quotes with `##begin_quote##...##end_quote##` and ends with
`<ANSWER>: ...`. Use the model's chat template.

## Use

```python
from peft import AutoPeftModelForCausalLM
model = AutoPeftModelForCausalLM.from_pretrained("{cfg.output}")
```

Evaluate: `python -m raft.evaluate model={cfg.model} adapter={cfg.output}` (or `merge=true` and point
lm-eval / vLLM at `{cfg.output}/merged`).
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
    return target


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------


def last_checkpoint(output: Path) -> str | None:
    """The ``checkpoint-N`` folder with the largest N that holds a trainer state (what resume=true uses)."""
    found = [p for p in output.glob("checkpoint-*") if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
    return str(max(found, key=lambda p: int(p.name.split("-")[-1]))) if found else None


def main(cfg: FinetuneConfig) -> dict[str, Any] | None:
    """Train (or dry-run) the recipe; returns the training summary (None for a dry run or a non-main process)."""
    if cfg.dry_run:
        dry_run(cfg)
        return None
    output = Path(cfg.output)
    resume_from = None
    if cfg.resume:
        resume_from = last_checkpoint(output)
        if resume_from is None:
            raise ConfigError(f"resume=true but {output} holds no checkpoint-* folder; run without resume=true to start")
    elif last_checkpoint(output):
        log(f"{output} already holds checkpoints: starting over (pass resume=true to continue from the last one)")

    data, eval_split = load_checked_data(cfg)
    tokenizer = load_tokenizer(cfg.model)
    train, evaluation, stats = prepare_data(cfg, tokenizer, data, eval_split)
    rt = resolve_runtime(cfg)
    for note in rt.notes:
        log(note)
    args = sft_config(cfg, rt, evaluation is not None)
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
    started = time.time()
    result = trainer.train(resume_from_checkpoint=resume_from)
    trainer.save_model(cfg.output)  # the adapter (and the tokenizer); every process must call it
    if not trainer.is_world_process_zero():
        return None
    summary = build_summary(cfg, rt, trainer, result, stats, resume_from, start)
    tokenizer.save_pretrained(cfg.output)
    save_config(cfg, cfg.output)
    (output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (output / "README.md").write_text(model_card(cfg, summary))
    losses = [e["loss"] for e in summary["loss_curve"]]
    tps = summary["tokens_per_second"]
    log(f"done in {time.time() - started:.0f}s: {summary['global_step']} steps, loss {losses[0] if losses else float('nan'):.4f} -> "
        f"{losses[-1] if losses else float('nan'):.4f}, {tps if tps is not None else 0:.0f} tokens/s, "
        f"peak memory {summary['peak_memory']['bytes'] / GiB:.2f} GiB; adapter, tokenizer, recipe.yaml, "
        f"{SUMMARY_FILE} and README.md in {output}")
    if cfg.merge:
        del trainer, model
        gc.collect()
        _empty_cuda_cache()
        merged = merge_adapter(cfg, tokenizer)
        summary["merged"] = str(merged)
        (output / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _empty_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


if __name__ == "__main__":
    run_cli("finetune", main)
