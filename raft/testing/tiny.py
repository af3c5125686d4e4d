"""The tiny model: a random-weight Llama of a few hundred thousand parameters, with a byte-level BPE
tokenizer trained on the spot and a Llama-3-style chat template whose assistant part is wrapped in
``{% generation %}`` markers (so TRL can compute an assistant-only loss)."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}<|start_header_id|>assistant<|end_header_id|>\n\n"
    "{% generation %}{{ message['content'] }}<|eot_id|>{% endgeneration %}"
    "{% else %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n{{ message['content'] }}<|eot_id|>{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
SPECIAL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|pad|>"]


def _default_corpus() -> list[str]:
    """The tiny tokenizer's training text: the project's own prompts and demo documents only, so the
    tokenizer (and every test that counts tokens) is the same on every machine, with or without
    ../shared/data beside the checkout."""
    from raft import prompts

    texts = [v for v in vars(prompts).values() if isinstance(v, str)]
    demo = Path(__file__).resolve().parent.parent / "demo"
    texts += [p.read_text(encoding="utf-8") for p in sorted(demo.iterdir()) if p.suffix in (".md", ".txt")]
    return texts


def build_tiny_model(
    folder: str | Path,
    vocab_size: int = 1024,
    hidden_size: int = 64,
    num_layers: int = 2,
    corpus: list[str] | None = None,
    seed: int = 0,
    head_std: float | None = None,
) -> Path:
    """Save a random-weight Llama and its freshly trained tokenizer into ``folder``; return the folder.

    ``head_std``: standard deviation of the output layer's weights. By default transformers draws
    them with std 0.02, so a logit can never exceed about 0.02 x hidden_size (2.6 at hidden 128):
    such a model cannot become confident however it is fine-tuned with LoRA (the head is frozen),
    and its loss stalls near ln(vocab). A model meant to learn (benchmarks/learning_check.py) uses
    about 1.5 / sqrt(hidden_size): logits of std 1.5 at the start, up to ~17 once aligned.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus if corpus is not None else _default_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|pad|>",
        model_max_length=8192,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    if head_std is not None:
        with torch.no_grad():
            model.lm_head.weight.normal_(0.0, head_std)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    return folder
