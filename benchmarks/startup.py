"""Start-up cost of ``python -m raft.generate``: a whole run on 5 chunks of a local text, teacher excluded.

    python benchmarks/startup.py                          # this checkout
    python benchmarks/startup.py --repo /path/to/other    # another checkout (e.g. an older commit), same inputs

What it runs, in a fresh process each time (``--repeats``, the median is kept):
``python -m raft.generate recipe=docs input=TEXT tokenizer=TINY_TOKENIZER_FOLDER limit=5 chunk_size=128``
against the local stand-in teacher (``raft.testing.TeacherServer``, in this process, no latency),
so what is measured is the command itself: imports, tokenizer, chunking, the store, writing the
output folder. "Teacher excluded" = wall time minus the teacher phase that raft.generate reports.
``-X importtime`` of the same command gives the three costliest top-level imports. Whether the
installed packages have their bytecode compiled is recorded: without it (``uv pip install`` does not
compile unless ``--compile-bytecode``; ``PYTHONDONTWRITEBYTECODE=1`` keeps Python from caching it)
every start compiles the imported sources again, which costs more than the code itself.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from common import REPO, RESULTS, SHARED_DOCS, machine, write_result

RESULT = RESULTS / "startup.json"
TEXT = SHARED_DOCS / "state_of_the_union.txt"


def run_once(repo: Path, args: list[str], importtime: bool = False) -> tuple[float, float, str]:
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "raft.generate", *args]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"raft.generate failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    teacher = float(re.search(r"teacher phase ([\d.]+)s", proc.stdout).group(1))
    return wall, teacher, proc.stderr


def top_imports(stderr: str, n: int = 3) -> list[tuple[str, float]]:
    """The costliest top-level imports (cumulative seconds) in ``-X importtime`` output."""
    tops = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)  # no indent: a top-level import
        if m:
            tops.append((m.group(2).strip(), int(m.group(1)) / 1e6))
    return sorted(tops, key=lambda t: -t[1])[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(REPO), help="checkout whose raft.generate is measured")
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes; the median is kept")
    parser.add_argument("--output", default=str(RESULT), help="where the JSON goes ('' to write nothing)")
    args = parser.parse_args()
    repo = Path(args.repo).resolve()

    from raft.testing import TeacherServer, build_tiny_model

    with tempfile.TemporaryDirectory() as tmp, TeacherServer() as teacher:
        tokenizer = build_tiny_model(Path(tmp) / "tiny")
        text = Path(tmp) / "speech.txt"
        text.write_text(TEXT.read_text(encoding="utf-8")[:6000], encoding="utf-8")  # ~12 chunks of 128 tokens: 5 asked
        walls, teachers = [], []
        for i in range(args.repeats + 1):
            cli = ["recipe=docs", f"input={text}", f"tokenizer={tokenizer}", "chunk_size=128", "min_chunk_tokens=16",
                   "limit=5", f"output={Path(tmp) / f'out{i}'}", f"teacher.base_url={teacher.base_url}", "teacher.model=fake-teacher"]
            wall, phase, stderr = run_once(repo, cli, importtime=(i == 0))
            if i == 0:  # the first run also warms the page cache; its import profile is kept, its time is not
                imports = top_imports(stderr)
                continue
            walls.append(wall)
            teachers.append(phase)
    wall, phase = statistics.median(walls), statistics.median(teachers)
    import importlib.util

    import datasets

    # with PYTHONDONTWRITEBYTECODE=1 (set on the project's VMs) and an install that did not compile
    # bytecode (uv's default), every import compiles its source again: seconds, not the code's own cost
    compiled = Path(importlib.util.cache_from_source(datasets.__file__)).exists()
    result = {
        "command": "python benchmarks/startup.py" + (f" --repo {args.repo}" if args.repo != str(REPO) else ""),
        "machine": machine(),
        "date": date.today().isoformat(),
        "repo": str(repo),
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip(),
        "runs": args.repeats,
        "site_packages_bytecode_compiled": compiled,
        "wall_s_median": round(wall, 2),
        "teacher_phase_s_median": round(phase, 2),
        "without_teacher_s": round(wall - phase, 2),
        "walls_s": [round(w, 2) for w in walls],
        "top_imports_s": [[name, round(s, 2)] for name, s in imports],
    }
    print(f"raft.generate, 5 chunks, local tokenizer: {wall:.2f} s wall, teacher phase {phase:.2f} s, "
          f"without teacher {wall - phase:.2f} s (median of {args.repeats})")
    print(f"site-packages bytecode compiled: {compiled}")
    print("costliest top-level imports: " + ", ".join(f"{n} {s:.2f} s" for n, s in imports))
    write_result(result, args.output)


if __name__ == "__main__":
    main()
