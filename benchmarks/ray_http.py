"""raft.generate with ``teacher.backend=ray_http`` on a local Ray instance: how calls/s scale with the
number of client workers, and how busy it keeps two vLLM-like teachers.

    python benchmarks/ray_http.py                          # both parts (about 6 minutes on 2 cores)
    python benchmarks/ray_http.py --skip busy --workers 1 2 4 --repeats 5

1. ``zero``: calls/s against two zero-latency teachers (``raft.testing.TeacherServer``, each in its
   own process, with TCP_NODELAY: without it every reply waits ~40 ms for a delayed ACK and the
   "zero-latency" teacher caps a client at concurrency / 44 ms), with ``teacher.ray.workers`` 1 and
   2: (a) the ray_http teacher alone (a child process that only asks: what the Ray side can do) and
   (b) ``python -m raft.generate`` over its teacher phase (the pipeline, the store and the kind's
   work in the driver too), with the ``openai`` backend against one teacher for reference. Each run
   is a fresh process with its own local Ray instance; the CPU seconds of the driver, the Ray
   workers and the teachers in the phase come from /proc (sampled, so that workers which exit keep
   their reading): on a small machine they all share the same cores, which is what caps N=2.
2. ``busy``: the busy share of two teachers of capacity 64 with 1 s latency (±50%), served from
   this process (TCP_NODELAY too): the seconds of service each gave (``TeacherStats.busy_s``) over
   capacity x the teacher phase, for ``raft.generate`` with ray_http at the default
   ``teacher.concurrency`` (64 per endpoint). Goal: >= 90% each.

Writes benchmarks/results/ray_http.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from datetime import date
from pathlib import Path

from common import REPO, machine, write_result
from generation_throughput import free_port, make_corpus, run_generate

TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_process() -> dict[int, tuple[str, float]]:
    """pid -> (group, CPU seconds so far) of the processes that matter: the raft.generate driver (or the
    client-only child), Ray's client workers, the teachers, Ray's own processes."""
    out: dict[int, tuple[str, float]] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="ignore")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICK
        if "TeacherServer" in cmd:
            group = "teachers"
        elif "HttpWorker" in cmd:
            group = "workers"
        elif "RESULT" in cmd or "--client-only" in cmd:
            group = "driver"
        elif "ray" in cmd:
            group = "ray_own"
        else:
            continue
        out[int(pid)] = (group, seconds)
    return out


class CpuSampler:
    """CPU seconds per group used from now to ``stop()``; sampled every 0.1 s so that processes which exit
    before the end (Ray's workers) keep their last reading."""

    def __init__(self):
        self.start = cpu_by_process()
        self.last = dict(self.start)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.last.update(cpu_by_process())

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self.last.update(cpu_by_process())
        used: dict[str, float] = {}
        for pid, (group, seconds) in self.last.items():
            used[group] = used.get(group, 0.0) + seconds - self.start.get(pid, (group, 0.0))[1]
        return used


def start_server(**behaviour) -> tuple[subprocess.Popen, str]:
    """A TeacherServer in its own process (TCP_NODELAY, as vLLM's server: see TeacherBehaviour.nodelay)."""
    port = free_port()
    code = ("import time; from raft.testing import TeacherServer, TeacherBehaviour; "
            f"TeacherServer(port={port}, behaviour=TeacherBehaviour(nodelay=True, **{behaviour!r})).start(); "
            "print('ready', flush=True); time.sleep(10**6)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc, f"http://127.0.0.1:{port}/v1"


def generate_args(corpus: Path, out: Path, tokenizer: Path, urls: list[str], backend: str, workers: int) -> list[str]:
    args = ["recipe=docs", f"input={corpus}", f"output={out}", f"tokenizer={tokenizer}", "chunk_size=256", "min_chunk_tokens=1",
            "teacher.model=fake-teacher", f"teacher.backend={backend}"]
    if backend == "ray_http":
        args += [f"teacher.base_url=[{','.join(urls)}]", "teacher.ray.address=local", f"teacher.ray.workers={workers}",
                 "teacher.ray.worker_cpus=0.5"]
    else:
        args.append(f"teacher.base_url={urls[0]}")
    return args


def client_only(workers: int, calls: int, urls: list[str]) -> None:
    """(In a child process) the ray_http teacher alone: ``calls`` asks at once, nothing else in the driver."""
    import asyncio
    import json as _json
    import time

    from raft.config import TeacherConfig
    from raft.prompts import question_messages
    from raft.teacher import make_teacher

    cfg = TeacherConfig(backend="ray_http", base_url=urls, model="fake-teacher")
    cfg.ray.address, cfg.ray.workers, cfg.ray.worker_cpus = "local", workers, 0.5
    teacher = make_teacher(cfg)
    batch = [question_messages(f"chunk {i} of a text with some words to ask a question about", 1) for i in range(calls)]

    async def go() -> dict:
        await teacher.complete(batch[:500])  # warm: connections open, code paths hot
        print("PHASE START", flush=True)
        wall, cpu = time.monotonic(), time.process_time()
        await teacher.complete(batch)
        out = {"wall_s": time.monotonic() - wall, "driver_cpu_s": time.process_time() - cpu}
        print("PHASE END", flush=True)
        await teacher.aclose()
        return out

    print("RESULT " + _json.dumps(asyncio.run(go())), flush=True)


def run_client_only(workers: int, calls: int, urls: list[str]) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--client-only", str(workers), str(calls), *urls], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    sampler, used = None, {}
    for line in proc.stdout:
        if line.startswith("PHASE START"):
            sampler = CpuSampler()
        elif line.startswith("PHASE END"):
            used = sampler.stop()
        elif line.startswith("RESULT "):
            result = json.loads(line[7:])
    proc.wait()
    return {**result, "teachers_cpu_s": used.get("teachers", 0.0), "workers_cpu_s": used.get("workers", 0.0)}


def per_call(seconds: float, calls: int) -> float:
    return round(1000 * seconds / calls, 3)


def zero(work: Path, tokenizer: Path, chunks: int, calls: int, workers: list[int], repeats: int) -> list[dict]:
    """Rounds of: the teacher alone with each number of workers, then raft.generate with the openai backend
    and ray_http with each number of workers (alternated, so that the other jobs of a shared machine
    weigh on each alike); the figures are the medians."""
    corpus = make_corpus(work, chunks)
    servers = [start_server() for _ in range(2)]
    urls = [url for _, url in servers]
    runs: list[dict] = []
    try:
        for round_ in range(repeats):
            for n in workers:
                r = run_client_only(n, calls, urls)
                cpu = {"driver": per_call(r["driver_cpu_s"], calls), "workers": per_call(r["workers_cpu_s"], calls),
                       "teachers": per_call(r["teachers_cpu_s"], calls)}
                runs.append({"what": "teacher alone", "workers": n, "calls": calls, "calls_per_s": round(calls / r["wall_s"], 1),
                             "cpu_ms_per_call": cpu,
                             "cores_busy": round((r["driver_cpu_s"] + r["workers_cpu_s"] + r["teachers_cpu_s"]) / r["wall_s"], 2)})
                print(f"round {round_ + 1}: ray_http teacher alone, {n} workers: {runs[-1]['calls_per_s']} calls/s, "
                      f"CPU ms/call {cpu}, cores busy {runs[-1]['cores_busy']}", flush=True)
            for backend, n in [("openai", 1)] + [("ray_http", n) for n in workers]:
                sampler = CpuSampler()
                r = run_generate(generate_args(corpus, work / f"{round_}_{backend}_{n}", tokenizer, urls, backend, n))
                used = sampler.stop()
                made = r["calls_new"]
                cpu = {"driver": per_call(r["teacher_cpu_s"], made)}
                if backend == "ray_http":  # the workers and teachers work only in the teacher phase
                    cpu["workers"] = per_call(used.get("workers", 0.0), made)
                cpu["teachers"] = per_call(used.get("teachers", 0.0), made)
                runs.append({"what": f"raft.generate, {backend}", "workers": n if backend == "ray_http" else None, "calls": made,
                             "calls_per_s": round(made / r["teacher_wall_s"], 1), "cpu_ms_per_call": cpu})
                print(f"round {round_ + 1}: raft.generate {backend} {n}: {runs[-1]['calls_per_s']} calls/s over the teacher phase "
                      f"({made} calls), CPU ms/call {cpu}", flush=True)
    finally:
        for proc, _ in servers:
            proc.kill()
    figures = []
    for what, label in (("teacher alone", f"ray_http teacher alone (the driver only asks), {calls} calls"),
                        ("raft.generate, ray_http", f"raft.generate over the teacher phase, ray_http, {chunks} documents")):
        medians = {n: statistics.median(r["calls_per_s"] for r in runs if r["what"] == what and r["workers"] == n) for n in workers}
        figures.append({"part": "zero", "figure": f"calls/s against two zero-latency teachers, {label}, median of {repeats}, "
                                                  f"workers {' vs '.join(map(str, workers))}",
                        "value": [round(medians[n]) for n in workers],
                        "ratio": round(medians[workers[-1]] / medians[workers[0]], 2)})
    openai = [r["calls_per_s"] for r in runs if r["what"] == "raft.generate, openai"]
    figures.append({"part": "zero", "figure": "calls/s, raft.generate over the teacher phase, openai backend (one process) against one "
                                              f"of the teachers, median of {repeats}", "value": round(statistics.median(openai))})
    figures.append({"part": "zero", "figure": "every run", "value": None, "runs": runs})
    return figures


def busy(work: Path, tokenizer: Path, chunks: int, latency: float, jitter: float, capacity: int, workers: int) -> dict:
    from raft.testing import TeacherBehaviour, TeacherServer

    corpus = make_corpus(work, chunks)
    behaviour = {"latency": latency, "latency_jitter": jitter, "capacity": capacity, "nodelay": True}
    servers = [TeacherServer(behaviour=TeacherBehaviour(**behaviour)).start() for _ in range(2)]
    try:
        r = run_generate(generate_args(corpus, work / "busy", tokenizer, [s.base_url for s in servers], "ray_http", workers))
    finally:
        for s in servers:
            s.stop()
    wall = r["teacher_wall_s"]
    shares = [round(s.stats.busy_s / (capacity * wall), 3) for s in servers]
    result = {"part": "busy", "figure": f"busy share of two teachers of capacity {capacity}, latency {latency}s±{jitter:.0%}, "
                                       f"{chunks} chunks ({r['calls_new']} calls), ray_http with {workers} workers, concurrency 64 per endpoint",
              "value": shares, "goal": ">= 0.90 each", "calls_per_teacher": [s.stats.completed for s in servers],
              "teacher_wall_s": round(wall, 2), "calls_per_s": round(r["calls_new"] / wall, 1),
              "bound_calls_per_s": 2 * capacity / latency}
    print(f"busy share {shares} over {wall:.1f}s ({result['calls_per_s']} calls/s, bound {result['bound_calls_per_s']:g})", flush=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zero-chunks", type=int, default=4000, help="chunks (2 calls each) for the zero-latency raft.generate runs")
    ap.add_argument("--client-calls", type=int, default=20000, help="calls of the zero-latency runs of the teacher alone")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3, help="rounds of the zero-latency runs (medians are reported)")
    ap.add_argument("--busy-chunks", type=int, default=2000)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--jitter", type=float, default=0.5)
    ap.add_argument("--capacity", type=int, default=64)
    ap.add_argument("--busy-workers", type=int, default=2)
    ap.add_argument("--skip", nargs="*", default=[], choices=["zero", "busy"])
    ap.add_argument("--output", default=str(REPO / "benchmarks" / "results" / "ray_http.json"))
    a = ap.parse_args()

    from raft.testing import build_tiny_model

    figures: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="raft-bench-ray-") as tmp:
        work = Path(tmp)
        tokenizer = build_tiny_model(work / "tiny")
        if "zero" not in a.skip:
            (work / "zero").mkdir()
            figures += zero(work / "zero", tokenizer, a.zero_chunks, a.client_calls, a.workers, a.repeats)
        if "busy" not in a.skip:
            (work / "busy").mkdir()
            figures.append(busy(work / "busy", tokenizer, a.busy_chunks, a.latency, a.jitter, a.capacity, a.busy_workers))
    out = Path(a.output)
    if a.skip and out.exists():  # parts not rerun keep their previous figures
        figures = [f for f in json.loads(out.read_text())["figures"] if f.get("part") in a.skip] + figures
    write_result({"script": "benchmarks/ray_http.py", "command": "python " + " ".join(["benchmarks/ray_http.py", *sys.argv[1:]]),
                  "machine": machine(), "date": date.today().isoformat(), "figures": figures}, out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--client-only"]:
        client_only(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
    else:
        main()
