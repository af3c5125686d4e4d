"""Generation on a Ray cluster: ``teacher.backend=ray_http`` and ``teacher.backend=ray_vllm``.

    pip install -e ".[ray]"                      # ray[data]; GPU nodes also need vllm for ray_vllm
    python -m raft.generate recipe=hotpot_ray    # ray_vllm: a 70B teacher on 2 replicas x 4 GPUs
    python -m raft.generate recipe=hotpot teacher.backend=ray_http \\
        teacher.base_url=[http://node1:8000/v1,http://node2:8000/v1] teacher.ray.workers=4

The design, and why: the shared pipeline (``raft.generate.pipeline.Run``) stays as it is. Its
asyncio workers call ``await teacher.ask(...)``; the run store, resume, deduplication, rows,
rejects, progress and summary all live in the driver, so they keep every guarantee of the
``openai`` backend (same requests, same store keys, same rows for the same replies). These two
backends are ``Teacher`` subclasses that ship the concurrent ``ask`` calls to Ray:

- ``ray_http`` (``raft.teacher.ray_http``; the actor: ``raft.teacher.ray_worker``): a pool of
  plain async Ray actors, each running the ``openai`` backend's own client (``OpenAITeacher``:
  retries with backoff, Retry-After, malformed replies, refusals) against every endpoint of
  ``teacher.base_url``. The driver routes each
  request to an endpoint (at most ``teacher.concurrency`` in flight per endpoint), hands requests to
  the actors in batches and collects finished replies in batches. A request that an endpoint gave
  up on (its retries exhausted, or connection refused) is asked at another endpoint, and that
  endpoint is skipped for ``teacher.retry_max_delay`` seconds (then given one request at a time
  until one succeeds); only a request that failed at every
  endpoint stops the run (``TeacherUnavailable``, as the ``openai`` backend does). A dead actor is
  restarted by Ray (``max_restarts=-1``) and the requests it held are asked again.
  Why not ``HttpRequestProcessorConfig``: it posts to one URL, retries 429/502/503/504 but not 500,
  ignores Retry-After, returns a 400's error body as if it were a reply and fails the whole dataset
  (a ``RuntimeError``) when one row runs out of retries. Why not Ray Data ``map_batches`` with our
  client: every Dataset execution starts its actor pool again, 2.1-2.4 s per execution for 8 or 64
  rows on this machine, and the pipeline asks in small waves. Plain actors, measured here (2 cores):
  one Ray call per request 1,840 calls/s at 0.53 ms driver CPU per call; a streaming generator per
  batch the same (0.47-0.55 ms a reply); a batch of 8 or 64 in one call 0.067 / 0.009 ms per
  request. So requests go out and replies come back in batches: the driver sends what is waiting
  (``teacher.ray.batch_size`` at most per call) and each actor returns everything finished since
  its last answer, so a slow reply never holds back a fast one. ``benchmarks/ray_http.py`` (this
  2-core VM, two zero-latency teachers, medians of 3): the teacher alone 2,214 calls/s with 1 worker,
  2,382 with 2; ``raft.generate`` 1,368 and 1,560. Two cores cap it (1.8 busy at N=2; per call the
  driver spends 0.1 ms, or 0.3 ms with the pipeline's own work, each worker 0.3-0.7 ms, the teachers
  0.2-0.3 ms): a worker on a core of its own adds ~2,000-3,000 calls/s until the driver's ~0.3 ms a
  call binds. Two teachers of capacity 64 at 1 s latency are kept 96.8% and 96.6% busy.
- ``ray_vllm`` (``raft.teacher.ray_vllm``): each wave of concurrent calls (questions, then
  answers; labels; IN2 QA) becomes one Ray Dataset processed by ``ray.data.llm.build_processor(
  vLLMEngineProcessorConfig(...))`` on the cluster's GPUs; replies stream back to the driver (and
  into the store) as Ray Data finishes them. The engines start once per wave (a Dataset's actor
  pool lives as long as its execution), which for a 70B model costs minutes: worth it for 10k+
  rows, not for 100 (use ``vllm serve`` and the ``openai`` or ``ray_http`` backend there).

This module holds what both share: the endpoint list, the settings checks, joining the cluster
(``teacher.ray.address``) with one-line errors; ``raft.teacher.make_teacher`` picks the backend.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any
from urllib.parse import urlparse

from raft.config import ConfigError, TeacherConfig, check_all
from raft.teacher.base import TeacherError, one_line

RAY_BACKENDS = ("ray_http", "ray_vllm")
INSTALL = "pip install -e '.[ray]'"


def endpoints(cfg: TeacherConfig) -> list[str]:
    """``teacher.base_url`` as a list: a YAML list, or one string of URLs split at commas or spaces."""
    value = cfg.base_url
    urls = [str(u).strip() for u in value] if isinstance(value, list | tuple) else str(value).replace(",", " ").split()
    urls = [u for u in urls if u]
    if not urls:
        raise ConfigError("teacher.base_url is empty: give one endpoint or a list ([http://HOST:8000/v1, ...])")
    if len(set(urls)) != len(urls):
        raise ConfigError(f"teacher.base_url lists an endpoint twice: {', '.join(urls)}")
    return urls


def check_settings(cfg: TeacherConfig) -> None:
    r = cfg.ray
    check_all([
        (r.workers >= 1, f"teacher.ray.workers={r.workers} must be at least 1"),
        (r.worker_cpus >= 0, f"teacher.ray.worker_cpus={r.worker_cpus} is negative"),
        (r.batch_size >= 1, f"teacher.ray.batch_size={r.batch_size} must be at least 1"),
        (r.replicas >= 1, f"teacher.ray.replicas={r.replicas} must be at least 1"),
        (r.tensor_parallel_size >= 1 and r.pipeline_parallel_size >= 1,
         f"teacher.ray.tensor_parallel_size={r.tensor_parallel_size} and pipeline_parallel_size={r.pipeline_parallel_size} must be at least 1"),
        (r.num_cpus is None or r.num_cpus >= 1, f"teacher.ray.num_cpus={r.num_cpus} must be at least 1 (or null: all)"),
        (isinstance(r.engine_kwargs, dict), f"teacher.ray.engine_kwargs={r.engine_kwargs!r} must be a mapping"),
        (isinstance(r.runtime_env, dict), f"teacher.ray.runtime_env={r.runtime_env!r} must be a mapping"),
    ])


def import_ray(backend: str) -> Any:
    try:
        import ray
        import ray.data  # noqa: F401  (the [data] extra)
    except ImportError:
        raise TeacherError(f"teacher.backend={backend} needs ray, which is not installed: {INSTALL}") from None
    return ray


def _reachable(address: str) -> str:
    """'' when HOST:PORT of a cluster address accepts a TCP connection, else why not (one line)."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        return "not HOST:PORT"
    if not host or not port:
        return "not HOST:PORT"
    try:
        with socket.create_connection((host, port), timeout=5):
            return ""
    except OSError as e:
        return one_line(e.strerror or e, 120)


def connect(cfg: TeacherConfig) -> tuple[Any, bool]:
    """(the ray module, whether this call started Ray): joins ``teacher.ray.address`` unless this process
    is already connected (tests, notebooks); TeacherError with one line when it cannot."""
    ray = import_ray(cfg.backend)
    if ray.is_initialized():
        return ray, False
    address = cfg.ray.address.strip()
    if address not in ("", "auto", "local"):
        why = _reachable(address)
        if why:
            raise TeacherError(f"teacher.ray.address={address} cannot be reached ({why}): start the cluster "
                               "(`ray start --head` on its head node) or fix the address")
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if address in ("", "local"):
        kwargs["num_cpus"] = cfg.ray.num_cpus
    if cfg.ray.runtime_env:
        kwargs["runtime_env"] = dict(cfg.ray.runtime_env)
    try:
        ray.init(address=address or None, **kwargs)
    except Exception as e:  # noqa: BLE001 - ConnectionError, ValueError, RuntimeError: one line whatever it is
        raise TeacherError(f"teacher.ray.address={address or '(default)'}: Ray could not start or join a cluster "
                           f"({one_line(e, 160)})") from None
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    return ray, True


def say(message: str) -> None:
    """One line on stderr (the run's own progress bar is on stderr too)."""
    print(f"raft.generate: {message}", file=sys.stderr, flush=True)
