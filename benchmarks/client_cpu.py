"""Client CPU time per teacher call of the ``openai`` backend (raft.teacher.openai_api.OpenAITeacher).

    python benchmarks/client_cpu.py                          # 10,000 calls, concurrency 64, median of 3 rounds
    python benchmarks/client_cpu.py --calls 20000 --concurrency 64 --repeats 3
    python benchmarks/client_cpu.py --calls 5000 --profile   # plus a cProfile of one more round (top 15)

The teacher is ``raft.testing.TeacherServer`` at zero latency in its own process, so its CPU time is
not counted. This process runs ``--calls`` ``OpenAITeacher.ask`` calls, ``--concurrency`` in flight
(the generate pipeline's default is 64), alternating the two calls of a RAFT row: a question call
(one ~80-word chunk) and an answer call (the question and four documents). The figure is this
process's CPU time (``time.process_time``: every thread) over the calls divided by their number,
after 200 warm-up calls that open the connections; calls/s is over wall time (on a 2-core machine
the server competes for the cores). Each round uses a fresh teacher; the median round is reported.
This is the client alone: ``generation_throughput.py`` part 3 also counts raft.generate's own work
per row (distractors, quote checks, the store), so its figure is higher by that work.

Goal (issue 13): < 1 ms per call. ``--output PATH`` writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import random
import socket
import statistics
import subprocess
import sys
import time
from datetime import date

from common import machine, write_result

from raft.config import TeacherConfig
from raft.prompts import answer_messages, question_messages
from raft.teacher import make_teacher

WARMUP = 200


def start_server() -> tuple[subprocess.Popen, str]:
    """The local teacher at zero latency in another process; (process, base URL)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import time; from raft.testing import TeacherServer; "
        f"TeacherServer(port={port}).start(); print('ready', flush=True); time.sleep(10**6)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit("the teacher server did not start")
    return proc, f"http://127.0.0.1:{port}/v1"


def workload(n: int) -> list[list[dict[str, str]]]:
    """n request bodies: question and answer calls in turn, over 64 distinct ~80-word chunks."""
    rng = random.Random(0)
    vocab = [f"{rng.choice('bcdfglmnprst')}{rng.choice('aeiou')}{rng.choice('lmnrst')}{i % 97}" for i in range(2000)]
    chunks = [" ".join(rng.choices(vocab, k=80)) for _ in range(64)]
    out = []
    for i in range(n):
        chunk = chunks[i % len(chunks)]
        if i % 2 == 0:
            out.append(question_messages(chunk, 1))
        else:
            words = chunk.split()
            question = f"Which words follow «{' '.join(words[20:24])}» in the text?"
            out.append(answer_messages(question, [chunk, *(chunks[(i + k) % len(chunks)] for k in (7, 19, 31))]))
    return out


async def run_calls(cfg: TeacherConfig, bodies: list, concurrency: int, profiler: cProfile.Profile | None = None) -> dict:
    """One round: a fresh teacher, warm-up calls, then every body through ``ask``; CPU and wall time."""
    teacher = make_teacher(cfg)
    try:
        await asyncio.gather(*(teacher.ask(m) for m in bodies[:WARMUP]))
        todo = iter(bodies)
        tokens = [0]

        async def worker() -> None:
            for messages in todo:
                reply = await teacher.ask(messages)
                tokens[0] += reply.completion_tokens

        if profiler:
            profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profiler:
            profiler.disable()
    finally:
        await teacher.aclose()
    assert tokens[0] > 0, "no reply had any completion tokens"
    return {"cpu_ms_per_call": 1000 * cpu / len(bodies), "calls_per_s": len(bodies) / wall, "cpu_s": cpu, "wall_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported")
    ap.add_argument("--profile", action="store_true", help="one more round under cProfile: the top 15 functions")
    ap.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumulative ...)")
    ap.add_argument("--output", default="", help="write the figures as JSON here")
    a = ap.parse_args()

    server, url = start_server()
    try:
        cfg = TeacherConfig(base_url=url, model="fake-teacher", concurrency=a.concurrency)
        bodies = workload(a.calls)
        rounds = []
        for i in range(a.repeats):
            r = asyncio.run(run_calls(cfg, bodies, a.concurrency))
            rounds.append(r)
            print(f"round {i + 1}: {r['cpu_ms_per_call']:.3f} ms CPU per call, {r['calls_per_s']:.0f} calls/s", flush=True)
        profile_text = ""
        if a.profile:
            profiler = cProfile.Profile()
            asyncio.run(run_calls(cfg, bodies, a.concurrency, profiler))
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(a.sort).print_stats(15)
            profile_text = out.getvalue()
            print(profile_text)
    finally:
        server.kill()
        server.wait()
    cpu = statistics.median(r["cpu_ms_per_call"] for r in rounds)
    rate = statistics.median(r["calls_per_s"] for r in rounds)
    command = "python " + " ".join(["benchmarks/client_cpu.py", *sys.argv[1:]])
    print(f"client CPU per teacher call (openai backend, zero latency, {a.calls} calls, concurrency {a.concurrency}, "
          f"median of {len(rounds)}): {cpu:.3f} ms (goal < 1 ms), {rate:.0f} calls/s | `{command}` | {date.today()}")
    write_result({"script": "benchmarks/client_cpu.py", "command": command, "machine": machine(), "date": date.today().isoformat(),
                  "calls": a.calls, "concurrency": a.concurrency, "cpu_ms_per_call": round(cpu, 4), "calls_per_s": round(rate, 1),
                  "goal": "< 1 ms", "rounds": rounds, "profile": profile_text}, a.output)


if __name__ == "__main__":
    main()
