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
def _teacher_server():
    with TeacherServer() as server:
        yield server


@pytest.fixture
def teacher(_teacher_server) -> TeacherServer:
    """The local OpenAI-compatible teacher, well behaved and with zeroed counters for each test."""
    _teacher_server.reset(TeacherBehaviour())
    yield _teacher_server
    _teacher_server.reset(TeacherBehaviour())
