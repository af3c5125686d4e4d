"""How lm-eval loads the model: its ``model_args`` and batch size for each backend (hf with PEFT and
4-bit, vLLM with a bounded context, an OpenAI-compatible server), and the prompt length that sizes
vLLM's context. Heavy libraries are imported inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from raft.config import ConfigError, EvaluateConfig, first_line

BACKENDS = ("hf", "vllm", "local-chat-completions")
VLLM_MAX_MODEL_LEN = 8192


def vllm_max_model_len(cfg: EvaluateConfig, prompt_tokens: int | None = None) -> int:
    """vLLM's context length: ``max_model_len`` when set, else the longest prompt (in tokens, chat
    template included) plus ``max_new_tokens`` rounded up to a multiple of 256, else 8,192.

    Without it vLLM sizes the KV cache for the model's full context (131,072 tokens for Llama 3.1:
    16 GiB at 128 KiB per token), which does not fit beside the 16 GB of 8B weights on a 24-40 GB
    card; RAFT prompts are a few thousand tokens."""
    if cfg.max_model_len:
        return int(cfg.max_model_len)
    if prompt_tokens is None:
        return VLLM_MAX_MODEL_LEN
    return -(-(prompt_tokens + cfg.max_new_tokens) // 256) * 256


def batch_size(cfg: EvaluateConfig) -> int | str:
    """lm-eval's batch_size: vLLM schedules every request itself ("auto"), a server gets one
    request per call (num_concurrent in flight), hf takes batch_size prompts per forward pass."""
    if cfg.backend == "vllm":
        return "auto"
    if cfg.backend == "local-chat-completions":
        return 1
    return cfg.batch_size


def model_args(cfg: EvaluateConfig, prompt_tokens: int | None = None) -> dict[str, Any]:
    """lm-eval model_args for the backend (what `lm_eval --model_args` would say); ``prompt_tokens``
    (the longest prompt) sizes vLLM's context (vllm_max_model_len)."""
    if cfg.backend == "hf":
        args: dict[str, Any] = {"pretrained": cfg.model, "dtype": cfg.dtype}
        if cfg.adapter:
            args["peft"] = cfg.adapter
        if cfg.load_in_4bit:  # recorded only: transformers 5 refuses it, evaluate() preloads the NF4 model
            args["load_in_4bit"] = True
        return args
    if cfg.backend == "vllm":
        args = {
            "pretrained": cfg.model,
            "dtype": cfg.dtype,
            "max_model_len": vllm_max_model_len(cfg, prompt_tokens),
        }
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


def check_model_loads(cfg: EvaluateConfig) -> Any:
    """A hub id that cannot be reached (offline, typo) fails here in one line, not deep in lm-eval."""
    if cfg.backend == "local-chat-completions":
        return None
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(cfg.model)
    except (OSError, ValueError) as e:
        raise ConfigError(f"model={cfg.model}: cannot load its config ({first_line(e)})") from None


def prompt_tokens(cfg: EvaluateConfig, manager: Any, tasks: list[str]) -> int:
    """The longest prompt of the questions to be asked (the first ``limit`` of each task), in the
    model's tokens, chat template included when it is applied (as lm-eval sends it)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    bos = tokenizer.bos_token or ""
    longest = 0
    for task in manager.load(tasks)["tasks"].values():
        docs = list(task.eval_docs)
        for doc in docs[: cfg.limit] if cfg.limit else docs:
            text = task.doc_to_text(doc)
            if cfg.apply_chat_template:
                text = tokenizer.apply_chat_template(
                    [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
                )
            special = not (bos and text.startswith(bos))  # a template that writes BOS: no second one
            longest = max(longest, len(tokenizer(text, add_special_tokens=special)["input_ids"]))
    return longest
