"""The dry run of raft.finetune: parameters and GPU memory from the model's architecture alone (a local
config.json, a built-in table of the recipe models, or the hub), without loading any weights.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import yaml

from raft.config import FinetuneConfig, to_dict
from raft.finetune.model import model_error

GiB = 1024**3

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
            raise model_error(model, e) from e
    if model in KNOWN_ARCHITECTURES:
        return LlamaConfig(**KNOWN_ARCHITECTURES[model]), "raft.finetune's table of the recipe models (no download)"
    try:
        return AutoConfig.from_pretrained(model), "the hub"
    except (OSError, ValueError) as e:
        raise model_error(model, e) from e


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
          f"gradient checkpointing {'on' if t.gradient_checkpointing else 'off'}, {t.optim}); formula: raft.finetune.memory.estimate_memory")
    for k, v in memory.items():
        print(f"  {k:<16} {v:7.2f} GiB")
    fits = [f"{g} GB: {'yes' if memory['total'] < g * 0.95 else 'no'}" for g in (24, 40, 80)]
    print("fits on a " + ", ".join(fits))
    return {"params": params, "memory_gib": memory, "config_source": source}

