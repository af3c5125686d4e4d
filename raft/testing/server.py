"""The stand-in teacher: a real OpenAI-compatible chat-completions server on 127.0.0.1 that answers
from the prompt (questions about a chunk, chain-of-thought answers quoting the right document), and
misbehaves on demand (``TeacherBehaviour``)."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE, QUESTION_SYSTEM, STUDENT_INSTRUCTION
from raft.testing.answers import BIO_ASK, DOC, fake_answer, fake_label, fake_questions


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # listen() backlog: must be set before the socket binds (class attribute)


MALFORMED_200 = ("not_json", "no_choices", "empty_choices", "no_message", "null_content")


@dataclass
class TeacherBehaviour:
    """How the server misbehaves; tests change it while the server runs."""

    latency: float = 0.0  # seconds per request (mean when latency_jitter > 0)
    latency_jitter: float = 0.0  # latency drawn uniformly from latency * (1 ± jitter)
    capacity: int | None = None  # requests served at once; more wait in a queue, as in vLLM
    fail_first: int = 0  # the first N requests get fail_status
    fail_status: int = 500  # 429, 500, 503 ...
    fail_always: bool = False  # never recover
    fail_message: str = ""  # the error message of a failure ("" : "simulated <status>")
    retry_after: str = ""  # Retry-After header sent with each failure ("1", or an HTTP date)
    hang: bool = False  # accept requests and never answer
    malformed: str = ""  # "" | "no_tag" | "bad_quote" | "empty" | "cycle" (all three in turn)
    malformed_200_first: int = 0  # the first N requests get HTTP 200 with a body that is no chat completion
    malformed_200_shape: str = "cycle"  # one of MALFORMED_200, or "cycle" (each in turn)
    truncate: bool = False  # cut every reply in half and say finish_reason "length" (max_tokens reached)
    malformed_json: str = ""  # structured (json_schema) requests: "" | "not_json" | "bad_schema" | "cycle" (ok, then each)
    nodelay: bool = False  # TCP_NODELAY on new connections, as vLLM's server has: off, a keep-alive client waits ~40 ms
    # per reply (headers and body go out in two writes: Nagle's algorithm meets the client's delayed ACK)


@dataclass
class TeacherStats:
    requests: int = 0
    completed: int = 0
    failed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    prompts: list[str] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each request
    last_body: dict = field(default_factory=dict)  # the JSON body of the latest chat request
    busy_s: float = 0.0  # seconds of service (latency) given to completed requests: busy share = busy_s / (capacity x wall)


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

            def setup(self) -> None:  # per connection: the behaviour when it was opened
                self.disable_nagle_algorithm = server.behaviour.nodelay
                super().setup()

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
                status, payload, headers = server._respond(body)
                if status is None:  # hang
                    server._stop.wait()
                    return
                self._send(status, payload, headers)

            def _send(self, status: int, payload: dict | bytes, headers: dict[str, str] | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
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
    def _respond(self, body: dict) -> tuple[int | None, dict | bytes, dict[str, str]]:
        b = self.behaviour
        with self._lock:
            self.stats.requests += 1
            self.stats.arrivals.append(time.monotonic())
            self.stats.last_body = body
            n = self.stats.requests
        if b.hang:
            return None, {}, {}
        if b.fail_always or n <= b.fail_first:
            with self._lock:
                self.stats.failed += 1
            message = b.fail_message or f"simulated {b.fail_status}"
            error = {"error": {"message": message, "type": "server_error", "code": b.fail_status}}
            return b.fail_status, error, ({"Retry-After": b.retry_after} if b.retry_after else {})
        if n <= b.malformed_200_first:
            with self._lock:
                self.stats.failed += 1
            shape = b.malformed_200_shape if b.malformed_200_shape != "cycle" else MALFORMED_200[(n - 1) % len(MALFORMED_200)]
            return 200, _malformed_200(shape, n), {}
        messages = body.get("messages") or []
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema" and response_format.get("json_schema", {}).get("name") == "in2_qa":
            kind, reply = "qa", self.qa(messages, n)
        elif response_format.get("type") == "json_schema":
            kind, reply = "label", self.label(messages, n)
        else:
            kind, reply = self.reply(messages, n)
        finish_reason = "stop"
        if b.truncate:  # as a server does when the reply reaches max_tokens
            words = reply.split(" ")
            reply, finish_reason = " ".join(words[: max(1, len(words) // 2)]), "length"
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
            self.stats.busy_s += delay
            self.stats.by_kind[kind] = self.stats.by_kind.get(kind, 0) + 1
        return 200, {
            "id": f"chatcmpl-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": len(prompt_text.split()),
                "completion_tokens": len(reply.split()),
                "total_tokens": len(prompt_text.split()) + len(reply.split()),
            },
        }, {}

    def qa(self, messages: list[dict], n: int = 0) -> str:
        """An IN2 question-answer pair as JSON: which words follow a phrase of each given text (one text:
        fine-grained; several: one phrase of each, the answers joined); ``malformed_json`` as for labels,
        and "reference" for a question that points at "the text"."""
        user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        mode = self.behaviour.malformed_json
        if mode == "cycle":
            mode = ("", "not_json", "bad_schema", "reference")[n % 4]
        if mode == "not_json":
            return "Question: what follows? Answer: the rest."
        texts = re.findall(r"<TEXT \d+>\n(.*?)\n</TEXT \d+>", user, re.S) or [user.split("\n\n", 1)[-1]]
        phrases, answers = [], []
        for text in texts:
            words = text.split()
            start = len(words) // 3
            phrases.append(" ".join(words[start:start + 5]))
            answers.append(" ".join(words[start + 5:start + 8]))
        question = " and ".join(f"which words follow «{p}»" for p in phrases).capitalize() + "?"
        if mode == "reference":
            question = "According to the text, " + question[0].lower() + question[1:]
        qa = {"question": question, "answer": "; ".join(answers)}
        if mode == "bad_schema":
            qa = {"question": question}
        return json.dumps(qa)

    def label(self, messages: list[dict], n: int = 0) -> str:
        """A structured (JSON) reply: the bio label read off the biography (``fake_label``), or, with
        ``malformed_json``, text that is no JSON ("not_json") or JSON that breaks the schema ("bad_schema")."""
        user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        mode = self.behaviour.malformed_json
        if mode == "cycle":
            mode = ("", "not_json", "bad_schema")[n % 3]
        if mode == "not_json":
            return "Here is the information: nationality American, born 1950."
        label = fake_label(user.split("\nGiven this information", 1)[0])  # the biography, not the instructions
        if mode == "bad_schema":
            label["date_of_birth"] = "1950"
        return json.dumps(label)

    def reply(self, messages: list[dict], n: int = 0) -> tuple[str, str]:
        """(kind, text) for a chat request: kind is question, answer or student."""
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        if system.startswith(QUESTION_SYSTEM.split("{")[0]):
            count = int(re.search(r"generate (\d+)", system).group(1)) if re.search(r"generate (\d+)", system) else 1
            chunk = user.split("<CHUNK>", 1)[-1].rsplit("</CHUNK>", 1)[0]
            return "question", "\n".join(fake_questions(chunk, count))
        asked = BIO_ASK.search(user)
        if asked:  # a bio needle prompt: the label of the biography that names the person, as JSON
            parts = [part for part in user.split("\n\n") if asked.group(1) in part and "Given this information" not in part]
            bio = parts[0] if parts else ""
            return "bio", json.dumps(fake_label(bio))
        kind = "student" if STUDENT_INSTRUCTION in user else "answer"
        question = user.rsplit("Question:", 1)[-1]
        text = fake_answer(question, DOC.findall(user))
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


def _malformed_200(shape: str, n: int) -> dict | bytes:
    """An HTTP 200 body that is no usable chat completion (as a broken proxy or server may send)."""
    if shape == "not_json":
        return b"<html>502 Bad Gateway</html>"
    base = {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()), "model": "fake-teacher"}
    if shape == "no_choices":
        return base
    if shape == "empty_choices":
        return {**base, "choices": []}
    if shape == "no_message":
        return {**base, "choices": [{"index": 0, "finish_reason": "stop"}]}
    if shape == "null_content":
        return {**base, "choices": [{"index": 0, "message": {"role": "assistant", "content": None}, "finish_reason": "stop"}]}
    raise ValueError(f"malformed_200_shape={shape!r} is not one of {', '.join(MALFORMED_200)} or cycle")
