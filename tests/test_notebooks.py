"""The notebooks run top to bottom (CI executes them; any cell error fails the test)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quickstart.ipynb", "analysis.ipynb"])
def test_notebook_executes(name, tmp_path, shared_data, monkeypatch):
    monkeypatch.setenv("RAFT_QUICKSTART_DIR", str(tmp_path))
    monkeypatch.setenv("RAFT_SHARED_DATA", str(shared_data))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("RAFT_RESULTS", raising=False)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert any(os.scandir(tmp_path)), "the notebook wrote nothing"
