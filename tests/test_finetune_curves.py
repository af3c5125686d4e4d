"""raft.finetune's training curves: ``loss.png`` (drawn from a hand-made log history and written by a tiny
run with evaluation), the ``train.report_to`` check (names, lists, a missing package: one line at start),
and the trackers themselves on a tiny CPU run, offline: TensorBoard event files read back, wandb in
offline mode, trackio's local database.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import sqlite3
from pathlib import Path

import pytest
import test_finetune_data

from raft import finetune
from raft.cli import run_cli
from raft.config import ConfigError, load_config
from raft.finetune import curves
from raft.finetune.curves import INTEGRATIONS, check_report_to, write_loss_plot

raft_data = test_finetune_data.raft_data
hotpot_examples = test_finetune_data.hotpot_examples

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

HISTORY = [  # what Trainer.state.log_history holds: train logs, eval logs, the final summary
    *({"loss": 7.0 - 0.1 * s, "grad_norm": 0.3, "learning_rate": 0.01 * (1 - s / 10), "epoch": s / 10, "step": s}
      for s in range(1, 11)),
    {"eval_loss": 6.8, "eval_runtime": 0.1, "epoch": 0.5, "step": 5},
    {"eval_loss": 6.3, "eval_runtime": 0.1, "epoch": 1.0, "step": 10},
    {"train_runtime": 1.0, "train_loss": 6.5, "epoch": 1.0, "step": 10},
]


def tiny_cfg(tiny_model: Path, data: Path, output: Path, *overrides: str):
    return load_config("finetune", ["recipe=tiny", f"model={tiny_model}", f"data={data}", f"output={output}", *overrides])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _check_png(path: Path, min_bytes: int = 10_000) -> tuple[int, int]:
    import matplotlib.image

    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > min_bytes, (len(data), data[:8])
    image = matplotlib.image.imread(path)
    return image.shape[0], image.shape[1]


# --------------------------------------------------------------------------------------------------
# loss.png from a log history
# --------------------------------------------------------------------------------------------------


def test_loss_plot_draws_train_and_eval_loss_and_the_learning_rate(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    drawn = []
    real_savefig = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda self, *a, **k: (drawn.append(self), real_savefig(self, *a, **k))[1])
    path = write_loss_plot(HISTORY, tmp_path / "plots" / "loss.png", title="tiny run")
    assert path == tmp_path / "plots" / "loss.png"
    height, width = _check_png(path)
    assert (width, height) == (960, 540)  # 8 x 4.5 inches at 120 dpi

    (fig,) = drawn
    loss_ax, lr_ax = fig.axes
    lines = {line.get_label(): line for line in loss_ax.get_lines()}
    assert set(lines) == {"train loss", "eval loss"}
    assert list(lines["train loss"].get_xdata()) == list(range(1, 11))
    assert list(lines["train loss"].get_ydata()) == pytest.approx([7.0 - 0.1 * s for s in range(1, 11)])
    assert list(lines["eval loss"].get_xdata()) == [5, 10] and list(lines["eval loss"].get_ydata()) == [6.8, 6.3]
    (lr_line,) = lr_ax.get_lines()
    assert lr_line.get_label() == "learning rate" and lr_line.get_ydata()[0] == pytest.approx(0.009)
    assert (loss_ax.get_xlabel(), loss_ax.get_ylabel(), lr_ax.get_ylabel()) == ("optimizer step", "loss", "learning rate")
    assert loss_ax.get_title() == "tiny run"
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train loss", "eval loss", "learning rate"]


def test_loss_plot_without_a_loss_writes_nothing(tmp_path):
    assert write_loss_plot([], tmp_path / "empty.png") is None
    only_lr = [{"learning_rate": 0.01, "step": 1}, {"train_runtime": 1.0, "train_loss": 6.5, "step": 1}]
    assert write_loss_plot(only_lr, tmp_path / "lr.png") is None
    assert list(tmp_path.iterdir()) == []
    # one train point and no evaluation or learning rate: still a plot
    assert write_loss_plot([{"loss": 6.9, "step": 1}], tmp_path / "one.png") == tmp_path / "one.png"
    _check_png(tmp_path / "one.png", min_bytes=5_000)


# --------------------------------------------------------------------------------------------------
# train.report_to at start
# --------------------------------------------------------------------------------------------------


def test_report_to_names_are_the_integrations_transformers_knows():
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    assert set(INTEGRATIONS) == set(INTEGRATION_TO_CALLBACK)


def test_report_to_values_become_what_transformers_takes():
    assert check_report_to("none") == [] and check_report_to(None) == [] and check_report_to([]) == []
    assert check_report_to("tensorboard") == ["tensorboard"]
    assert check_report_to("tensorboard, wandb") == ["tensorboard", "wandb"]
    assert check_report_to(["trackio", "tensorboard", "trackio"]) == ["trackio", "tensorboard"]
    assert check_report_to("all") == "all" and check_report_to(["all"]) == "all"
    with pytest.raises(ConfigError, match="'all'.*cannot be combined"):
        check_report_to(["all", "wandb"])
    with pytest.raises(ConfigError) as e:
        check_report_to(["tensorbord"])
    message = str(e.value)
    assert "\n" not in message and message.startswith("train.report_to: 'tensorbord' is not an integration")
    assert "did you mean tensorboard?" in message and "tensorboard, trackio, wandb" in message


@pytest.mark.parametrize(("name", "hidden"), [("wandb", {"wandb"}), ("trackio", {"trackio"}),
                                              ("tensorboard", {"tensorboard", "tensorboardX"})])
def test_report_to_a_tracker_that_is_not_installed_is_one_line(monkeypatch, name, hidden):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m.split(".")[0] in hidden else real(m, *a))
    with pytest.raises(ConfigError) as e:
        check_report_to(["none", name])
    assert str(e.value) == (f"train.report_to={name} needs the {name} package, which is not installed: "
                            f'pip install -e ".[trackers]" (or pip install {name})')
    if name == "tensorboard":  # tensorboardX alone is enough (transformers falls back to it)
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda m, *a: object() if m == "tensorboardX" else None if m == "tensorboard" else real(m, *a))
        assert check_report_to("tensorboard") == ["tensorboard"]


def test_a_missing_tracker_stops_the_command_before_anything_loads(monkeypatch, capsys, tiny_model, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda m, *a: None if m == "wandb" else real(m, *a))
    monkeypatch.setattr(importlib.import_module("raft.finetune.train"), "load_checked_data", lambda cfg: pytest.fail("data loaded before the check"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run_cli("finetune", finetune.main, ["recipe=tiny", f"model={tiny_model}", f"output={tmp_path / 'out'}",
                                            "train.report_to=[tensorboard,wandb]"])
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ['raft.finetune: error: train.report_to=wandb needs the wandb package, which is not installed: '
                   'pip install -e ".[trackers]" (or pip install wandb)']
    assert not (tmp_path / "out").exists()


def test_sft_config_gets_the_checked_list(tiny_model):
    from raft.finetune.model import resolve_runtime, sft_config

    for value, expected in (("none", []), ("tensorboard", ["tensorboard"]), ("[tensorboard,trackio]", ["tensorboard", "trackio"])):
        cfg = load_config("finetune", ["recipe=tiny", f"model={tiny_model}", f"train.report_to={value}"])
        assert sft_config(cfg, resolve_runtime(cfg), has_eval=True).report_to == expected


# --------------------------------------------------------------------------------------------------
# tiny runs: loss.png and the trackers, offline
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tensorboard_run(tmp_path_factory, tiny_model, raft_data):
    """6 steps, evaluated every 3, reported to TensorBoard."""
    output = tmp_path_factory.mktemp("curves") / "out"
    summary = finetune.main(tiny_cfg(tiny_model, raft_data, output, "train.max_steps=6", "train.eval_steps=3",
                                     "train.save_steps=0", "train.report_to=tensorboard"))
    return output, summary


@pytest.mark.slow
def test_a_run_writes_loss_png_and_names_it(tensorboard_run):
    output, summary = tensorboard_run
    _check_png(output / "loss.png")
    assert summary["loss_plot"] == "loss.png" == json.loads((output / finetune.SUMMARY_FILE).read_text())["loss_plot"]
    assert "![train and eval loss, learning rate](loss.png)" in (output / "README.md").read_text()


@pytest.mark.slow
def test_tensorboard_event_files_hold_the_losses(tensorboard_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    output, summary = tensorboard_run
    (events,) = output.glob("runs/*/events.out.tfevents.*")  # transformers 5: output_dir/runs/<date>_<host>
    acc = EventAccumulator(str(events.parent))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "eval/loss", "train/learning_rate"} <= tags, tags
    train = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert [s for s, _ in train] == [e["step"] for e in summary["loss_curve"]] == list(range(1, 7))
    assert [v for _, v in train] == pytest.approx([e["loss"] for e in summary["loss_curve"]], rel=1e-5)
    assert [e.step for e in acc.Scalars("eval/loss")] == [3, 6]


@pytest.mark.slow
def test_wandb_offline_logs_the_run_locally(tmp_path, monkeypatch, tiny_model, raft_data):
    wandb = pytest.importorskip("wandb")
    for key, folder in (("WANDB_DIR", "wandb-runs"), ("WANDB_CONFIG_DIR", "wandb-config"),
                        ("WANDB_CACHE_DIR", "wandb-cache"), ("WANDB_DATA_DIR", "wandb-data")):
        (tmp_path / folder).mkdir()
        monkeypatch.setenv(key, str(tmp_path / folder))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_DISABLED", raising=False)
    monkeypatch.setenv("WANDB_PROJECT", "raft-tests")
    try:
        finetune.main(tiny_cfg(tiny_model, raft_data, tmp_path / "out", "train.max_steps=2", "train.eval_steps=0",
                               "train.save_steps=0", "train.report_to=wandb"))
    finally:
        wandb.finish()
        wandb.teardown()
    (run,) = (tmp_path / "wandb-runs" / "wandb").glob("offline-run-*")
    (log,) = run.glob("run-*.wandb")
    assert b"train/loss" in log.read_bytes()  # the history records hold the logged keys


@pytest.mark.slow
def test_trackio_logs_to_its_local_database(tmp_path, monkeypatch, tiny_model, raft_data):
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))  # read when trackio is first imported
    pytest.importorskip("trackio")
    import trackio.utils

    finetune.main(tiny_cfg(tiny_model, raft_data, tmp_path / "out", "train.max_steps=2", "train.eval_steps=0",
                           "train.save_steps=0", "train.report_to=trackio"))
    db = Path(trackio.utils.TRACKIO_DIR) / "huggingface.db"  # transformers' default project name
    with sqlite3.connect(db) as con:
        logged = [json.loads(m) for (m,) in con.execute("select metrics from metrics")]
    steps = [m["train/global_step"] for m in logged if "train/loss" in m]
    assert steps[-2:] == [1, 2], logged


def test_curves_module_imports_no_matplotlib_until_it_draws():
    import subprocess
    import sys

    code = "import sys, raft.finetune.curves; print(sorted(m for m in ('matplotlib', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(curves.__file__).parents[2],
                         timeout=120)
    assert out.returncode == 0 and re.fullmatch(r"\[\]\s*", out.stdout), out.stdout + out.stderr
