"""The two stand-ins DESIGN.md allows, for tests, notebooks and benchmarks on a machine without a GPU,
weights or network:

- ``build_tiny_model(folder)`` (``raft.testing.tiny``): a random-weight Llama of a few hundred
  thousand parameters with a byte-level BPE tokenizer trained on the spot and a Llama-3-style chat
  template whose assistant part is wrapped in ``{% generation %}`` markers (so TRL can compute an
  assistant-only loss).
- ``TeacherServer`` (``raft.testing.server``): a real HTTP server on 127.0.0.1 that speaks the OpenAI
  chat-completions API and answers from the prompt: questions about a chunk, chain-of-thought answers
  that quote the right document. ``TeacherBehaviour`` tells it to be slow, to answer 429 or 500 for a
  while (with a Retry-After header), to reply malformed (bad answers, or HTTP 200 bodies that are no
  chat completion), to cut replies short (finish_reason "length"), to queue beyond a fixed capacity
  (like a vLLM server) or not to answer at all.

    python -m raft.testing serve --port 8000            # a teacher for trying raft.generate by hand
    python -m raft.testing tiny-model outputs/tiny      # the tiny model
    python -m raft.testing smollm2 outputs/smollm2      # the real SmolLM2-135M-Instruct (raft.testing.smollm2)
"""

from __future__ import annotations

from pathlib import Path  # noqa: F401  (tests replace raft.testing.Path)

from raft.testing.answers import fake_answer, fake_label, fake_questions
from raft.testing.server import MALFORMED_200, TeacherBehaviour, TeacherServer, TeacherStats
from raft.testing.tiny import CHAT_TEMPLATE, SPECIAL_TOKENS, build_tiny_model

__all__ = [
    "CHAT_TEMPLATE",
    "MALFORMED_200",
    "SPECIAL_TOKENS",
    "TeacherBehaviour",
    "TeacherServer",
    "TeacherStats",
    "build_tiny_model",
    "fake_answer",
    "fake_label",
    "fake_questions",
]
