"""Generation throughput of raft.generate against a simulated vLLM-like teacher.

    python benchmarks/generation_throughput.py                     # all three measurements
    python benchmarks/generation_throughput.py --chunks 1000 --latency 1.0 --capacity 64
    python benchmarks/generation_throughput.py --zero-latency-chunks 100000

The teacher is ``raft.testing.TeacherServer`` in its own process (so its CPU time is not counted
as the client's): ``capacity`` requests are served at once, more wait in a queue, each takes a
latency drawn uniformly from ``latency * (1 ± jitter)``. One RAFT row needs two teacher calls
(question, then answer), so the bound is ``capacity / mean latency / 2`` rows per second.

1. rows/min at default settings (concurrency 64) on >= 1,000 chunks, as a share of the bound. The
   headline is over the teacher phase (first call to last reply, timed by raft.generate itself:
   ``teacher_wall_s``); the end-to-end figure (imports, chunking, writing the dataset included, a
   fixed cost of ~10 s here) is kept next to it;
2. rows/min at concurrency 1 (on fewer chunks: it is 64x slower), as a share of its own bound;
3. zero latency, many chunks: client CPU time per teacher call over the teacher phase (the whole
   process's CPU per call is kept too), and peak memory at N/10 and N chunks (flat memory means the
   ratio stays near 1): peak anonymous memory (sampled RssAnon: what the process really needs) and
   peak RSS (``ru_maxrss``, which also counts the pages of the Arrow files that ``datasets``
   memory-maps while it writes the dataset: page cache, dropped by the kernel under pressure).

The benchmark corpus repeats its text (chunks cut from one small folder of docs), so at zero
latency most of the 100,000 rows have a question another row already asks and are rejected as
duplicates; memory per row is measured all the same (every row is written, then dropped).

Writes benchmarks/results/generation_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from common import REPO, SHARED_DOCS, machine

HERE = REPO / "benchmarks"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_teacher(latency: float, capacity: int | None, jitter: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    code = (
        "import time; from raft.testing import TeacherServer, TeacherBehaviour; "
        f"TeacherServer(port={port}, behaviour=TeacherBehaviour(latency={latency}, latency_jitter={jitter}, "
        f"capacity={capacity})).start(); print('ready', flush=True); time.sleep(10**6)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc, f"http://127.0.0.1:{port}/v1"


def make_corpus(folder: Path, n: int) -> Path:
    """n documents of ~80 words (one chunk each), cut from the shared docs, as one JSON list."""
    words = " ".join(p.read_text(errors="ignore") for p in sorted(SHARED_DOCS.glob("*.[mt][dx]*"))).split()
    docs = []
    for i in range(n):
        start = (i * 37) % (len(words) - 100)
        docs.append({"title": f"doc {i}", "text": f"Record {i}. " + " ".join(words[start:start + 80])})
    path = folder / "docs.json"
    path.write_text(json.dumps(docs))
    return path


def run_generate(args: list[str]) -> dict:
    """One raft.generate run in a fresh process: its counts, wall time, CPU time and peak RSS."""
    code = (
        "import json, resource, sys, threading, time\n"
        "peak = [0]\n"
        "def sample():\n"
        "    while True:\n"
        "        status = open('/proc/self/status').read()\n"
        "        peak[0] = max(peak[0], int(status.split('RssAnon:')[1].split()[0]))\n"
        "        time.sleep(0.02)\n"
        "threading.Thread(target=sample, daemon=True).start()\n"
        "import raft.generate as g\nimport raft.kinds.raft.kind as k\nfrom raft.config import load_config\n"
        "load_pool = k.load_pool\n"
        "def loaded(*a, **k):\n"  # memory once the chunks are in: what the teacher phase starts from
        "    pool = load_pool(*a, **k)\n"
        "    out['pool_anon_mb'] = int(open('/proc/self/status').read().split('RssAnon:')[1].split()[0]) / 1024\n"
        "    return pool\n"
        "k.load_pool = loaded\nout = {}\n"
        "cfg = load_config('generate', sys.argv[1:])\n"
        "t0, c0 = time.monotonic(), time.process_time()\n"
        "out.update(g.main(cfg, progress=False))\n"
        "out['wall_s'] = time.monotonic() - t0\nout['cpu_s'] = time.process_time() - c0\n"
        "out['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "out['peak_anon_mb'] = peak[0] / 1024\n"
        "print('RESULT ' + json.dumps(out))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode or not line:
        raise SystemExit(f"raft.generate failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[7:])


def measure(work: Path, tokenizer: Path, chunks: int, latency: float, capacity: int | None, jitter: float, concurrency: int | None, tag: str) -> dict:
    (work / tag).mkdir(parents=True)
    corpus = make_corpus(work / tag, chunks)
    server, url = start_teacher(latency, capacity, jitter)
    try:
        args = [
            "recipe=docs", f"input={corpus}", f"output={work / tag / 'out'}", f"tokenizer={tokenizer}",
            "chunk_size=256", "min_chunk_tokens=1", f"teacher.base_url={url}", "teacher.model=fake-teacher",
        ]
        if concurrency:
            args.append(f"teacher.concurrency={concurrency}")
        result = run_generate(args)
    finally:
        server.kill()
    rows = result["accepted"] + sum(result["rejected"].values())
    result["rows"] = rows
    result["rows_per_min"] = rows / result["teacher_wall_s"] * 60  # the teacher phase
    result["rows_per_min_end_to_end"] = rows / result["wall_s"] * 60  # whole main(): imports, chunking, writing
    calls = max(result["calls_new"], 1)
    result["client_cpu_ms_per_call"] = 1000 * result["teacher_cpu_s"] / calls  # the teacher phase
    result["process_cpu_ms_per_call"] = 1000 * result["cpu_s"] / calls  # whole main()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--jitter", type=float, default=0.5)
    ap.add_argument("--capacity", type=int, default=64)
    ap.add_argument("--serial-chunks", type=int, default=20, help="chunks for the concurrency-1 run")
    ap.add_argument("--zero-latency-chunks", type=int, default=100_000)
    ap.add_argument("--skip", nargs="*", default=[], choices=["bound", "serial", "zero"])
    a = ap.parse_args()

    from raft.testing import build_tiny_model

    figures: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="raft-bench-gen-") as tmp:
        work = Path(tmp)
        tokenizer = build_tiny_model(work / "tiny")
        bound = a.capacity / a.latency / 2 * 60  # rows per minute
        if "bound" not in a.skip:
            r = measure(work, tokenizer, a.chunks, a.latency, a.capacity, a.jitter, None, "bound")
            figures.append({"part": "bound", "figure": f"rows/min over the teacher phase, {a.chunks} chunks, capacity {a.capacity}, "
                                      f"latency {a.latency}s±{a.jitter:.0%}, default concurrency",
                            "value": round(r["rows_per_min"], 1), "share_of_bound": round(r["rows_per_min"] / bound, 3),
                            "bound_rows_per_min": bound, "goal": ">= 0.90 of the bound",
                            "end_to_end_rows_per_min": round(r["rows_per_min_end_to_end"], 1),
                            "end_to_end_share_of_bound": round(r["rows_per_min_end_to_end"] / bound, 3), "detail": r})
        if "serial" not in a.skip:
            r = measure(work, tokenizer, a.serial_chunks, a.latency, a.capacity, a.jitter, 1, "serial")
            serial_bound = 1 / a.latency / 2 * 60
            figures.append({"part": "serial", "figure": f"rows/min over the teacher phase, {a.serial_chunks} chunks, concurrency 1",
                            "value": round(r["rows_per_min"], 2), "share_of_bound": round(r["rows_per_min"] / serial_bound, 3),
                            "bound_rows_per_min": serial_bound, "speedup_of_default_over_serial": None,
                            "end_to_end_rows_per_min": round(r["rows_per_min_end_to_end"], 2), "detail": r})
            if figures[0]["part"] == "bound":
                figures[1]["speedup_of_default_over_serial"] = round(figures[0]["value"] / figures[1]["value"], 1)
        if "zero" not in a.skip:
            small = measure(work, tokenizer, a.zero_latency_chunks // 10, 0.0, None, 0.0, None, "zero_small")
            big = measure(work, tokenizer, a.zero_latency_chunks, 0.0, None, 0.0, None, "zero_big")
            figures.append({"part": "zero", "figure": f"client CPU ms per teacher call over the teacher phase, zero latency, {a.zero_latency_chunks} chunks",
                            "value": round(big["client_cpu_ms_per_call"], 3), "goal": "< 1 ms",
                            "whole_process_cpu_ms_per_call": round(big["process_cpu_ms_per_call"], 3), "detail": big})
            figures.append({"part": "zero", "figure": f"peak anonymous memory MB at {a.zero_latency_chunks // 10} vs {a.zero_latency_chunks} chunks",
                            "value": [round(small["peak_anon_mb"]), round(big["peak_anon_mb"])],
                            "ratio": round(big["peak_anon_mb"] / small["peak_anon_mb"], 2), "goal": "flat (ratio near 1)",
                            "mb_per_1000_extra_chunks": round((big["peak_anon_mb"] - small["peak_anon_mb"]) / (0.9 * a.zero_latency_chunks / 1000), 2),
                            # the chunks must all stay at hand (any chunk can be a distractor): growth beyond them is what counts
                            "after_loading_chunks": [round(small["pool_anon_mb"]), round(big["pool_anon_mb"])],
                            "growth_in_teacher_phase_and_writing": [round(small["peak_anon_mb"] - small["pool_anon_mb"]),
                                                                    round(big["peak_anon_mb"] - big["pool_anon_mb"])],
                            "detail_small": small})
            figures.append({"part": "zero", "figure": f"peak RSS MB (ru_maxrss, memory-mapped Arrow pages included) at {a.zero_latency_chunks // 10} vs "
                                      f"{a.zero_latency_chunks} chunks",
                            "value": [round(small["peak_rss_mb"]), round(big["peak_rss_mb"])],
                            "ratio": round(big["peak_rss_mb"] / small["peak_rss_mb"], 2), "goal": "flat (ratio near 1)"})
    out = HERE / "results" / "generation_throughput.json"
    if a.skip and out.exists():  # parts not rerun keep their previous figures
        figures = [f for f in json.loads(out.read_text())["figures"] if f.get("part") in a.skip] + figures
    report = {
        "script": "benchmarks/generation_throughput.py",
        "command": "python " + " ".join(["benchmarks/generation_throughput.py", *sys.argv[1:]]),
        "machine": machine(),
        "date": date.today().isoformat(),
        "figures": figures,
    }
    for f in figures:
        print(f"{f['figure']}: {f['value']}" + (f"  ({f['share_of_bound']:.0%} of bound)" if f.get("share_of_bound") else "")
              + (f"  end to end {f['end_to_end_rows_per_min']}" if "end_to_end_rows_per_min" in f else "")
              + (f"  ratio {f['ratio']}" if "ratio" in f else ""))
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print("wrote", out, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MB")


if __name__ == "__main__":
    main()
