"""``python -m raft.quickstart``: set-up command 1, offline, with the real SmolLM2 student (a short run:
2 LoRA steps and 24 new tokens; benchmarks/README.md has the full run's figures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAFT_CACHE": str(tmp_path / "cache")}
    return subprocess.run([sys.executable, "-m", "raft.quickstart", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=900)


def test_quickstart_runs_offline_end_to_end_and_reports_base_vs_raft(smollm2, tmp_path):
    out = tmp_path / "qs"
    proc = _run(["--model", str(smollm2), "--output", str(out), "--steps", "2", "--max-new-tokens", "24"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "quickstart.json").read_text())
    test_rows = [json.loads(line) for line in (out / "data" / "test.jsonl").read_text().splitlines()]
    train_rows = [json.loads(line) for line in (out / "data" / "train.jsonl").read_text().splitlines()]
    assert result["test_questions"] == len(test_rows) >= 10 and len(train_rows) >= 30
    # no test question's chunk is trained on (3 questions per chunk: the split is by chunk)
    assert not {r["chunk_id"] for r in test_rows} & {r["chunk_id"] for r in train_rows}
    for which in ("base", "raft"):
        metrics = json.loads((out / "eval" / which / "results.json").read_text())["results"]["raft_domain"]
        assert result[which]["f1"] == pytest.approx(metrics["f1,none"])
    assert f"{result['base']['f1']:8.3f}{result['raft']['f1']:8.3f}" in proc.stdout  # the printed table is the results'
    summary = json.loads((out / "raft" / "train_summary.json").read_text())
    assert summary["global_step"] == 2 and summary["model"] == str(smollm2)
    for f in ("data/preview.html", "raft/loss.png", "raft/adapter_config.json", "report/report.md", "report/samples.html"):
        assert (out / f).exists(), f
    assert "SmolLM2-135M-Instruct + RAFT (2 steps)" in (out / "report" / "report.md").read_text()
    assert not (tmp_path / "cache").exists()  # --model given: nothing fetched, nothing cached


def test_quickstart_bad_steps_is_a_usage_error(tmp_path):
    proc = _run(["--steps", "0"], tmp_path)
    assert proc.returncode == 2 and "--steps must be at least 1" in proc.stderr


def test_demo_recipe_offline_points_to_the_quickstart(tmp_path):
    """The Qwen in-process teacher demo is the online path: offline its one line names what to run."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "raft.generate", "recipe=demo", f"output={tmp_path / 'demo'}"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "python -m raft.quickstart" in proc.stderr
