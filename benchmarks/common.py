"""What the benchmark scripts share: offline settings, paths, and the machine's description.

Imported by the scripts in this folder (``python benchmarks/NAME.py`` puts the folder on sys.path);
importing it also puts the repository first on sys.path, so the scripts run from a checkout.
"""

from __future__ import annotations

import json
import os
import platform
import sys
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
