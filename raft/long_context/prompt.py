"""The student's view of a long-context prompt (``PromptTokens``): one user turn under the chat template,
counted in the student tokenizer; what the long-context kinds (bio_needle, in2) measure their rows with.

    prompt = PromptTokens(tokenizer)                                  # a local folder or a hub id
    tokens, offset = prompt.measure(content, context, context_tokens)  # the whole prompt, without
                                                                      # tokenizing the context again
"""

from __future__ import annotations

from raft.config import ConfigError


class PromptTokens:
    """The student's view of a long-context prompt: one user turn under the chat template (generation
    prompt included), counted in the student tokenizer; shared by the long-context kinds."""

    def __init__(self, tokenizer: str):
        from transformers import AutoTokenizer

        from raft.sources.chunking import load_tokenizer

        try:
            self.template = AutoTokenizer.from_pretrained(tokenizer)
        except (OSError, ValueError) as e:
            raise ConfigError(f"tokenizer={tokenizer!r} could not be loaded ({type(e).__name__}); pass a local folder") from None
        if not getattr(self.template, "chat_template", None):
            raise ConfigError(f"tokenizer={tokenizer}: no chat template; the context length is what the model sees under it")
        self.tok = load_tokenizer(tokenizer)

    def render(self, content: str) -> str:
        return self.template.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)

    def count(self, text: str) -> int:
        return len(self.tok.encode(text, add_special_tokens=False).ids)

    def offset(self, rendered: str, text: str) -> int:
        """The token index where ``text`` starts in the rendered prompt (a prefix-stable tokenizer)."""
        return self.count(rendered[: rendered.index(text)])

    def measure(self, content: str, context: str, context_tokens: int, edge: int = 256) -> tuple[int, int]:
        """(tokens of the whole prompt, token offset of ``context`` in it) for a user turn ``content`` that
        holds ``context`` (whose own count is known: raft.long_context.haystack counts it once per piece), without
        tokenizing the context again: only the template around it and ``edge`` characters at each end
        of the context are counted, which is exact where tokens do not reach further across a boundary
        (byte-level BPE pre-tokenizers; the tests check it against a full count)."""
        rendered = self.render(content)
        at = rendered.index(context)
        before, after = rendered[:at], rendered[at + len(context):]
        head, tail = context[:edge], context[-edge:]
        n_before, n_after = self.count(before), self.count(after)
        join_start = self.count(before + head) - n_before - self.count(head)
        join_end = self.count(tail + after) - self.count(tail) - n_after
        return n_before + context_tokens + n_after + join_start + join_end, n_before + join_start
