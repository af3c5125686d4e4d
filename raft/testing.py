"""The two stand-ins DESIGN.md allows, for tests, notebooks and benchmarks on a machine without a GPU,
weights or network:

- ``build_tiny_model(folder)``: a random-weight Llama of a few hundred thousand parameters with a
  byte-level BPE tokenizer trained on the spot and a Llama-3-style chat template whose assistant
  part is wrapped in ``{% generation %}`` markers (so TRL can compute an assistant-only loss).
- ``TeacherServer``: a real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API and
  answers from the prompt: questions about a chunk, chain-of-thought answers that quote the right
  document. It can be told to be slow, to answer 429 or 500 for a while, to reply malformed, to
  queue beyond a fixed capacity (like a vLLM server) or not to answer at all.

    python -m raft.testing serve --port 8000            # a teacher for trying raft.generate by hand
    python -m raft.testing tiny-model outputs/tiny      # the tiny model
"""

from __future__ import annotations

import json
import random
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE, QUESTION_SYSTEM, STUDENT_INSTRUCTION

# --------------------------------------------------------------------------------------------------
# tiny model
# --------------------------------------------------------------------------------------------------

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
    demo = Path(__file__).resolve().parent / "demo"
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


# --------------------------------------------------------------------------------------------------
# teacher server
# --------------------------------------------------------------------------------------------------

_PHRASE = re.compile(r"«(.+?)»", re.S)
_DOC = re.compile(r"<DOCUMENT>(.*?)</DOCUMENT>", re.S)


def _norm(text: str) -> str:
    return " ".join(text.split())


def fake_questions(chunk: str, n: int) -> list[str]:
    """Numbered questions about word windows of the chunk (numbering tests that it gets stripped)."""
    words = chunk.split()
    span = max(1, len(words) - 8)
    out = []
    for i in range(n):
        start = (i * 11 + len(words) // 3) % span
        out.append(f"{i + 1}. Which words follow «{' '.join(words[start:start + 4])}» in the text?")
    return out


def fake_answer(question: str, documents: list[str]) -> str:
    """A chain-of-thought answer quoting the document that holds the question's phrase."""
    m = _PHRASE.search(question)
    phrase = _norm(m.group(1)) if m else ""
    for doc in documents:
        text = _norm(doc)
        at = text.find(phrase) if phrase else -1
        if at >= 0:
            after = text[at + len(phrase):].split()
            answer = " ".join(after[:3]) or "nothing"
            quote = _norm(f"{phrase} {' '.join(after[:6])}")
            return (
                f"The question asks which words follow a phrase. One document says {BEGIN_QUOTE}{quote}{END_QUOTE}. "
                f"So the words after the phrase are {answer}.\n{ANSWER_TAG} {answer}"
            )
    return f"None of the documents contains the phrase, so the answer cannot be quoted.\n{ANSWER_TAG} unknown"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen() backlog: must be set before the socket binds (class attribute)


@dataclass
class TeacherBehaviour:
    """How the server misbehaves; tests change it while the server runs."""

    latency: float = 0.0  # seconds per request (mean when latency_jitter > 0)
    latency_jitter: float = 0.0  # latency drawn uniformly from latency * (1 ± jitter)
    capacity: int | None = None  # requests served at once; more wait in a queue, as in vLLM
    fail_first: int = 0  # the first N requests get fail_status
    fail_status: int = 500  # 429, 500, 503 ...
    fail_always: bool = False  # never recover
    hang: bool = False  # accept requests and never answer
    malformed: str = ""  # "" | "no_tag" | "bad_quote" | "empty" | "cycle" (all three in turn)


@dataclass
class TeacherStats:
    requests: int = 0
    completed: int = 0
    failed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)


class TeacherServer:
    """OpenAI-compatible chat-completions server on 127.0.0.1 (ephemeral port unless given).

    with TeacherServer() as server:
        client = OpenAI(base_url=server.base_url, api_key="x")
    """

    def __init__(self, port: int = 0, behaviour: TeacherBehaviour | None = None, model: str = "fake-teacher"):
        self.behaviour = behaviour or TeacherBehaviour()
        self.stats = TeacherStats()
        self.model = model
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._slots: threading.Semaphore | None = None
        self._rng = random.Random(0)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found"}})
                    return
                status, payload = server._respond(body)
                if status is None:  # hang
                    server._stop.wait()
                    return
                self._send(status, payload)

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._httpd = _Server(("127.0.0.1", port), Handler)
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> TeacherServer:
        b = self.behaviour
        self._slots = threading.Semaphore(b.capacity) if b.capacity else None
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> TeacherServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset(self, behaviour: TeacherBehaviour | None = None) -> None:
        """New behaviour and zeroed counters (between tests sharing one server)."""
        with self._lock:
            self.behaviour = behaviour or TeacherBehaviour()
            self.stats = TeacherStats()
            self._slots = threading.Semaphore(self.behaviour.capacity) if self.behaviour.capacity else None

    # ------------------------------------------------------------------ replies
    def _respond(self, body: dict) -> tuple[int | None, dict]:
        b = self.behaviour
        with self._lock:
            self.stats.requests += 1
            n = self.stats.requests
        if b.hang:
            return None, {}
        if b.fail_always or n <= b.fail_first:
            with self._lock:
                self.stats.failed += 1
            return b.fail_status, {"error": {"message": f"simulated {b.fail_status}", "type": "server_error", "code": b.fail_status}}
        messages = body.get("messages") or []
        kind, reply = self.reply(messages, n)
        slots = self._slots
        if slots:
            slots.acquire()
        try:
            delay = b.latency * (1 + b.latency_jitter * (2 * self._rng.random() - 1)) if b.latency else 0.0
            if delay > 0:
                time.sleep(delay)
        finally:
            if slots:
                slots.release()
        prompt_text = " ".join(str(m.get("content", "")) for m in messages)
        with self._lock:
            self.stats.completed += 1
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        return 200, {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": len(prompt_text.split()),
                "completion_tokens": len(reply.split()),
                "total_tokens": len(prompt_text.split()) + len(reply.split()),
            },
        }

    def reply(self, messages: list[dict], n: int = 0) -> tuple[str, str]:
        """(kind, text) for a chat request: kind is question, answer or student."""
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        if system.startswith(QUESTION_SYSTEM.split("{")[0]):
            count = int(re.search(r"generate (\d+)", system).group(1)) if re.search(r"generate (\d+)", system) else 1
            chunk = user.split("<CHUNK>", 1)[-1].rsplit("</CHUNK>", 1)[0]
            return "question", "\n".join(fake_questions(chunk, count))
        kind = "student" if STUDENT_INSTRUCTION in user else "answer"
        question = user.rsplit("Question:", 1)[-1]
        text = fake_answer(question, _DOC.findall(user))
        mode = self.behaviour.malformed
        if kind == "answer" and mode:
            if mode == "cycle":
                mode = ("no_tag", "bad_quote", "empty")[n % 3]
            if mode == "no_tag":
                text = text.replace(ANSWER_TAG, "Final:")
            elif mode == "bad_quote":
                text = f"It says {BEGIN_QUOTE}words that appear in no document at all{END_QUOTE}.\n{ANSWER_TAG} invented"
            elif mode == "empty":
                text = ""
        return kind, text


def _main(argv: list[str]) -> None:
    if len(argv) >= 1 and argv[0] == "serve":
        port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 8000
        latency = float(argv[argv.index("--latency") + 1]) if "--latency" in argv else 0.0
        capacity = int(argv[argv.index("--capacity") + 1]) if "--capacity" in argv else None
        server = TeacherServer(port=port, behaviour=TeacherBehaviour(latency=latency, capacity=capacity)).start()
        print(f"fake teacher at {server.base_url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            server.stop()
    elif len(argv) == 2 and argv[0] == "tiny-model":
        print(build_tiny_model(argv[1]))
    else:
        print(__doc__)
        raise SystemExit(2)


if __name__ == "__main__":
    _main(sys.argv[1:])
