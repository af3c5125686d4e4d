"""``teacher.backend=ray_http``: the teacher calls of raft.generate sent by Ray actors to one or many
OpenAI-compatible endpoints (``teacher.base_url`` may be a list), for more calls per second than one
client process makes.

    python -m raft.generate recipe=hotpot teacher.backend=ray_http \\
        teacher.base_url=[http://node1:8000/v1,http://node2:8000/v1] teacher.ray.workers=4

The driver (``RayHTTPTeacher``) keeps the pipeline, the store and the routing: each request goes to
the endpoint with the fewest requests in flight (at most ``teacher.concurrency`` each), and to an
actor (``raft.teacher.ray_worker.HttpWorker``, ``teacher.ray.workers`` of them, ``teacher.ray.worker_cpus`` each) in a
batch; each actor asks with the ``openai`` backend's client (``OpenAITeacher``: retries, backoff,
Retry-After, malformed replies, refusals) and hands back every reply finished since it was last
asked. Per request, what comes back is a value, never a crashed task: a reply, a refusal
(``TeacherRejected`` for that request only) or "this endpoint gave up" (its retries exhausted):
the request is then asked at another endpoint, and the endpoint is skipped for
``teacher.retry_max_delay`` seconds, then given one request at a time until one succeeds; a
request that every endpoint gave up on stops the run with ``TeacherUnavailable`` (with one
endpoint: the ``openai`` backend's own message). Endpoints that
accept no connection at start are skipped from the first request (one line says so). A worker
that dies (killed, out of memory) is restarted by Ray and the requests it held are asked again,
at most 3 times each. Why this design rather than Ray Data: see ``raft.teacher.ray_backend``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from raft.config import TeacherConfig
from raft.teacher.base import (
    Messages,
    Reply,
    Teacher,
    TeacherError,
    TeacherRejected,
    TeacherUnavailable,
    one_line,
)
from raft.teacher.ray_worker import COLLECT_WAIT, OK, REJECTED, HttpWorker

START_TIMEOUT = 120.0  # seconds for the workers to be placed and started
PROBE_TIMEOUT = 5.0  # seconds for an endpoint to accept a TCP connection at start
MAX_LOSSES = 3  # a request asked again this many times after its worker died stops the run
LOST_REST = 0.5  # seconds a lost worker gets no new request (doubling with each loss in a row, at most 8 s):
# Ray restarts a killed actor, and a request sent while it restarts is lost again at once


@dataclass(eq=False)
class _Request:
    rid: int
    messages: Messages
    response_format: dict | None
    future: asyncio.Future
    tried: dict[str, str] = field(default_factory=dict)  # endpoint -> why it gave up
    url: str = ""
    losses: int = 0


@dataclass(eq=False)
class _Endpoint:
    url: str
    in_flight: int = 0
    down_until: float = 0.0  # skipped until then (unless every endpoint a request may still try is)
    failed: bool = False  # its last outcome was giving up: one request at a time until one succeeds
    served: int = 0


@dataclass(eq=False)
class _Worker:
    handle: Any
    outstanding: dict[int, _Request] = field(default_factory=dict)
    rest_until: float = 0.0  # lost lately (e.g. restarting): no new request before this
    losses: int = 0  # losses in a row, for the rest's length


class RayHTTPTeacher(Teacher):
    def __init__(self, cfg: TeacherConfig):
        from raft.teacher.ray_backend import connect, endpoints, say

        urls = endpoints(cfg)
        self.ray, self._started = connect(cfg)
        ray, r = self.ray, cfg.ray
        self.cfg = cfg
        self.name = f"{cfg.model} at {', '.join(urls)} (ray_http, {r.workers} workers)"
        self.parallelism = max(1, cfg.concurrency) * len(urls)
        self.endpoints = {u: _Endpoint(u) for u in urls}
        self.lost_workers = 0
        self.failovers = 0  # requests asked again at another endpoint after one gave up
        actor = ray.remote(HttpWorker).options(num_cpus=r.worker_cpus, max_restarts=-1, max_task_retries=0)
        worker_cfg = dataclasses.replace(cfg, backend="openai", base_url=urls[0])
        self.workers = [_Worker(actor.remote(worker_cfg, urls)) for _ in range(r.workers)]
        try:
            ray.get([w.handle.pid.remote() for w in self.workers], timeout=START_TIMEOUT)
            down = ray.get(self.workers[0].handle.probe.remote(PROBE_TIMEOUT), timeout=START_TIMEOUT)
        except ray.exceptions.GetTimeoutError:
            cpus = ray.cluster_resources().get("CPU", 0)
            self._stop()
            raise TeacherError(f"the {r.workers} ray_http workers ({r.worker_cpus:g} CPU each) did not start within "
                               f"{START_TIMEOUT:g}s on a cluster of {cpus:g} CPUs: lower teacher.ray.workers or "
                               "teacher.ray.worker_cpus") from None
        except ray.exceptions.RayError as e:
            self._stop()
            raise TeacherError(f"the ray_http workers could not start: {one_line(e, 200)}") from None
        for url, why in zip(urls, down, strict=True):
            if why and len(urls) > 1:
                self.endpoints[url].down_until, self.endpoints[url].failed = time.monotonic() + cfg.retry_max_delay, True
                say(f"teacher endpoint {url} accepts no connection ({why}); the other endpoints take its share until it does")
        self._ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._down = ""

    # ------------------------------------------------------------------ the asyncio side (driver)
    def _begin(self) -> None:
        """Queue, dispatcher and one collector per worker, on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._queue: deque[_Request] = deque()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        for ep in self.endpoints.values():
            ep.in_flight = 0
        for w in self.workers:
            w.outstanding.clear()
            self._spawn(self._collect(w))
        self._spawn(self._dispatch())

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def ask(self, messages: Messages, response_format: dict[str, Any] | None = None) -> Reply:
        if self._down:
            raise TeacherUnavailable(self._down)
        if self._loop is not asyncio.get_running_loop():
            self._begin()
        request = _Request(next(self._ids), messages, response_format, self._loop.create_future())
        self._queue.append(request)
        self._wake.set()
        return await request.future

    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0)  # let every coroutine that is ready queue its request first
            self._route()

    def _pick(self, request: _Request) -> _Endpoint | None | bool:
        """The endpoint to ask now; None: wait for a free slot; False: every endpoint gave up on it."""
        candidates = [e for e in self.endpoints.values() if e.url not in request.tried]
        if not candidates:
            return False
        now = time.monotonic()
        pool = [e for e in candidates if e.down_until <= now] or [min(candidates, key=lambda e: e.down_until)]
        free = [e for e in pool if e.in_flight < self._room(e)]
        return min(free, key=lambda e: e.in_flight) if free else None

    def _room(self, ep: _Endpoint) -> int:
        """Requests the endpoint may have in flight: one while it is on trial after giving up."""
        return 1 if ep.failed else self.cfg.concurrency

    def _route(self) -> None:
        waiting: deque[_Request] = deque()
        sends: dict[int, list[_Request]] = {}
        while self._queue:
            if all(e.in_flight >= self._room(e) for e in self.endpoints.values()):  # no slot anywhere: the rest wait as they are
                waiting.extend(self._queue)
                self._queue.clear()
                break
            request = self._queue.popleft()
            if request.future.done():
                continue
            ep = self._pick(request)
            if ep is None:
                waiting.append(request)
            elif ep is False:
                self._give_up(request)
            else:
                ep.in_flight += 1
                request.url = ep.url
                now = time.monotonic()
                ready = [i for i, w in enumerate(self.workers) if w.rest_until <= now]
                if not ready:  # every worker is resting after a loss: ask again when the first is back
                    waiting.append(request)
                    continue
                index = min(ready, key=lambda i: len(self.workers[i].outstanding))
                self.workers[index].outstanding[request.rid] = request
                sends.setdefault(index, []).append(request)
        self._queue = waiting
        size = self.cfg.ray.batch_size
        for index, requests in sends.items():
            for start in range(0, len(requests), size):
                self._spawn(self._submit(self.workers[index], requests[start:start + size]))

    async def _submit(self, w: _Worker, requests: list[_Request]) -> None:
        payload = [(q.rid, q.url, q.messages, q.response_format) for q in requests]
        try:
            await w.handle.submit.remote(payload)
        except self.ray.exceptions.RayError as e:
            self._lost(w, e)

    async def _collect(self, w: _Worker) -> None:
        while True:
            try:
                done = await w.handle.collect.remote(COLLECT_WAIT)
            except self.ray.exceptions.RayError as e:
                self._lost(w, e)
                await asyncio.sleep(0.2)
                continue
            for rid, status, value in done:
                self._finish(w, rid, status, value)
            if done:
                self._wake.set()

    async def _wake_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._wake.set()

    def _finish(self, w: _Worker, rid: int, status: int, value: Any) -> None:
        w.losses = 0  # it answers: back in service
        request = w.outstanding.pop(rid, None)
        if request is None:  # asked again after its worker was lost, and answered there too
            return
        ep = self.endpoints[request.url]
        ep.in_flight -= 1
        if request.future.done():
            return
        if status == OK:
            ep.served += 1
            ep.failed = False
            request.future.set_result(Reply(*value))
        elif status == REJECTED:
            request.future.set_exception(TeacherRejected(value))
        else:  # this endpoint gave up on the request: ask another one, and rest this one a while
            ep.down_until, ep.failed = time.monotonic() + self.cfg.retry_max_delay, True
            request.tried[request.url] = value
            self.failovers += 1
            self._queue.append(request)

    def _give_up(self, request: _Request) -> None:
        reasons = list(request.tried.values())
        message = reasons[0] if len(reasons) == 1 else one_line("every teacher endpoint gave up: " + "; ".join(reasons), 600)
        self._down = self._down or message
        request.future.set_exception(TeacherUnavailable(self._down))

    def _lost(self, w: _Worker, error: Exception) -> None:
        """A worker died (or cannot be reached): the requests it held are asked again."""
        lost, w.outstanding = list(w.outstanding.values()), {}
        rest = min(LOST_REST * 2 ** w.losses, 8.0)
        w.rest_until, w.losses = time.monotonic() + rest, w.losses + 1
        self._spawn(self._wake_after(rest))
        if not lost:
            return
        self.lost_workers += 1
        from raft.teacher.ray_backend import say

        say(f"a ray_http worker was lost ({type(error).__name__}); its {len(lost)} requests are asked again")
        for request in lost:
            self.endpoints[request.url].in_flight -= 1
            if request.future.done():
                continue
            request.losses += 1
            if request.losses > MAX_LOSSES:
                self._down = self._down or f"ray_http workers died {MAX_LOSSES + 1} times while asking one request ({one_line(error, 160)})"
                request.future.set_exception(TeacherUnavailable(self._down))
            else:
                self._queue.append(request)
        self._wake.set()

    # ------------------------------------------------------------------ lifecycle
    def worker_pids(self) -> list[int]:
        return self.ray.get([w.handle.pid.remote() for w in self.workers])

    def _stop(self) -> None:
        for w in self.workers:
            try:
                self.ray.kill(w.handle)
            except Exception:  # noqa: BLE001, S110 - already gone
                pass
        if self._started:
            self.ray.shutdown()
            self._started = False

    async def aclose(self) -> None:
        tasks = list(getattr(self, "_tasks", ()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop = None
        self._stop()

    def describe(self) -> str:
        return self.name
