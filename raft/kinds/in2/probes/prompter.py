"""The probes' settings (``ProbeSettings``) and the evaluated model's tokenizer (``Prompter``): it counts
tokens (``raft.sources.chunking``: a ``tokenizers.Tokenizer``, or a transformers tokenizer), renders the chat
template when the tokenizer has one (a transformers tokenizer, loaded for its template only) and finds
a character span's tokens in a rendered prompt (one tokenization, with offsets).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raft.config import ConfigError
from raft.long_context.exact import fast_backend

PROBES = ("document", "structured", "code")


@dataclass(frozen=True)
class ProbeSettings:
    lengths: tuple[int, ...] = (4096, 8192, 16384, 32768)  # whole prompts, in the model's tokens
    bins: int = 10  # position bins: bin k holds depths in [k/bins, (k+1)/bins)
    samples: int = 5  # per probe, length and bin
    probes: tuple[str, ...] = PROBES
    seed: int = 0
    segment_tokens: int = 128  # the document probe's corpus segments (IN2's)
    quote_words: int = 8  # words of the asked sentence quoted in the question
    tolerance: float = 0.01  # a prompt may be this much shorter than its target, never longer

    def __post_init__(self) -> None:
        def whole(name: str, value: Any, least: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"in2_probe: {name}={value!r} must be a whole number >= {least}")

        if not self.lengths:
            raise ConfigError("in2_probe: lengths is empty")
        for n in self.lengths:
            whole("lengths", n, 64)
        whole("bins", self.bins, 1)
        whole("samples", self.samples, 1)
        whole("seed", self.seed, 0)
        whole("segment_tokens", self.segment_tokens, 16)
        whole("quote_words", self.quote_words, 2)
        unknown = [p for p in self.probes if p not in PROBES]
        if unknown or not self.probes:
            raise ConfigError(f"in2_probe: probes={list(self.probes)} must be some of {', '.join(PROBES)}")
        if not 0 <= self.tolerance < 0.5:
            raise ConfigError(f"in2_probe: tolerance={self.tolerance} must be in [0, 0.5)")


class Prompter:
    """The evaluated model's tokenizer: counts tokens, renders its chat template, finds token spans."""

    def __init__(self, tokenizer: str | Path):
        from raft.sources.chunking import load_tokenizer, token_counter

        self.name = str(tokenizer)
        self.tok = load_tokenizer(tokenizer)  # a one-line DocumentError when it cannot load
        self.template = _chat_template(tokenizer)
        self.count, self.count_many = token_counter(self.tok)
        self._backend = fast_backend(self.tok)

    def render(self, content: str) -> str:
        """One user turn as the model sees it (chat template and generation prompt, when it has one)."""
        if self.template is None:
            return content
        messages = [{"role": "user", "content": content}]
        return self.template.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def span(self, text: str, chars: tuple[int, int]) -> tuple[int, int, int]:
        """(tokens of ``text``, the first token of the characters ``chars``, one past their last)."""
        if self._backend is None:  # a slow tokenizer: count prefixes
            return self.count(text), self.count(text[: chars[0]]), self.count(text[: chars[1]])
        offsets = self._backend.encode(text, add_special_tokens=False).offsets
        ends, starts = [e for _, e in offsets], [s for s, _ in offsets]
        return len(offsets), bisect.bisect_right(ends, chars[0]), bisect.bisect_left(starts, chars[1])


def _chat_template(tokenizer: str | Path) -> Any:
    """A transformers tokenizer that has a chat template, or None (none, or a bare tokenizer.json)."""
    if Path(tokenizer).expanduser().is_file():
        return None
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(tokenizer))
    except Exception:  # load_tokenizer loaded it: a folder without a tokenizer_config.json
        return None
    return tok if getattr(tok, "chat_template", None) else None
