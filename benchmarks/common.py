"""What the benchmark scripts share: offline settings, paths, and the machine's description.

Imported by the scripts in this folder (``python benchmarks/NAME.py`` puts the folder on sys.path);
importing it also puts the repository first on sys.path, so the scripts run from a checkout.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SHARED_DOCS = REPO.parent / "shared" / "data" / "docs"
RESULTS = REPO / "benchmarks" / "results"


def machine() -> str:
    """CPU model, cores, Python and OS, for the results' ``machine`` field."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def write_result(result: dict, output: str | Path) -> None:
    """Write a script's figures as JSON to ``output`` (nothing when it is empty) and say where."""
    if not output:
        return
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


def metrics_of(command: list[str]) -> dict:
    """The task metrics of an evaluate stage, or the training summary's figures of a finetune stage."""
    out = next((Path(a.split("=", 1)[1]) for a in command if a.startswith("output=")), None)
    if out is None:
        return {}
    if "raft.evaluate" in command:
        results = json.loads((out / "results.json").read_text())["results"]
        return {task: {k.split(",")[0]: v for k, v in m.items() if k.endswith(",none")} for task, m in results.items()}
    if "raft.finetune" in command:
        s = json.loads((out / "train_summary.json").read_text())
        curve = s.get("loss_curve") or []
        tail = [p["loss"] for p in curve[-10:]]
        return {"steps": s.get("global_step"), "first_loss": curve[0]["loss"] if curve else None,
                "last10_mean_loss": sum(tail) / len(tail) if tail else None, "tokens_per_s": s.get("tokens_per_second"),
                "train_rows": (s.get("examples") or {}).get("train", {}).get("kept"), "loss_png": str(out / "loss.png")}
    return {}


TEACHER = "{teacher}"  # in a stage's command: replaced by the stand-in teacher's URL when the stage runs


def run_stages(stages: list[tuple[str, str, list[str]]], result: Path, out: Path, metrics_of: Callable[[list[str]], dict],
               only: str | None = None, redo: bool = False) -> dict:
    """Run each (block, name, command) stage not stored in ``result`` yet (a documented command as a
    subprocess, the stand-in teacher serving on 127.0.0.1), and store its command line, wall time, date
    and ``metrics_of(command)`` as soon as it ends: an interrupted run goes on where it stopped. ``only``:
    one block (and "setup"); ``redo``: run stored stages again."""
    from raft.testing import TeacherServer

    stored = json.loads(result.read_text()) if result.exists() else {"stages": {}}
    stored["machine"] = machine()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    with TeacherServer() as teacher:
        for block, name, command in stages:
            if only and block not in (only, "setup"):
                continue
            if name in stored["stages"] and not redo:
                continue
            command = [c.replace(TEACHER, teacher.base_url) for c in command]
            shown = (shlex.join(command).replace(str(out), "OUT").replace(str(REPO.parent) + "/", "../")
                     .replace(teacher.base_url, "http://127.0.0.1:PORT/v1"))
            print(f"\n== {name}: {shown}", flush=True)
            started = time.monotonic()
            proc = subprocess.run([sys.executable, *command[1:]], cwd=REPO, env=env)
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed (exit {proc.returncode}): {shown}")
            stored["stages"][name] = {
                "command": shown, "wall_s": round(time.monotonic() - started, 1),
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "metrics": metrics_of(command),
            }
            stored["output"] = str(out)
            result.parent.mkdir(parents=True, exist_ok=True)
            result.write_text(json.dumps(stored, indent=2) + "\n")
    return stored
