"""Training curves of raft.finetune: ``loss.png`` drawn from the trainer's log history
(:func:`write_loss_plot`: train and eval loss against the optimizer step, the learning rate on a second
axis), and the check of ``train.report_to`` made at the start of a run (:func:`check_report_to`).

``train.report_to`` names transformers' integrations (``TrainingArguments.report_to``): ``none``, ``all``
(every installed one), one name, or a list (``[tensorboard, wandb]`` or ``tensorboard,wandb``). transformers
then does the logging: TensorBoard event files go to ``output/runs/<date>_<host>`` (transformers 5 has no
``logging_dir``; ``TENSORBOARD_LOGGING_DIR`` moves them), trackio logs to a local SQLite database
(``TRACKIO_DIR``, by default ``$HF_HOME/trackio``; ``trackio show`` opens it), and wandb to its server
or, with ``WANDB_MODE=offline``, to ``WANDB_DIR/wandb/offline-run-*`` (``wandb sync`` uploads it later).
A name transformers does not know, or an integration whose package is missing, is a one-line
``ConfigError`` before anything is loaded. matplotlib is imported only to draw.
"""

from __future__ import annotations

import difflib
import importlib.util
from pathlib import Path
from typing import Any

from raft.config import ConfigError

#: transformers' reporting integrations (``INTEGRATION_TO_CALLBACK``, transformers 5.24): for each, the
#: sets of modules that make it work (any one set, all of its modules) and the pip package to install
INTEGRATIONS: dict[str, tuple[tuple[tuple[str, ...], ...], str]] = {
    "tensorboard": ((("tensorboard",), ("tensorboardX",)), "tensorboard"),
    "trackio": ((("trackio",),), "trackio"),
    "wandb": ((("wandb",),), "wandb"),
    "azure_ml": ((("azureml.core",),), "azureml-core"),
    "comet_ml": ((("comet_ml",),), "comet-ml"),
    "mlflow": ((("mlflow",),), "mlflow"),
    "neptune": ((("neptune",),), "neptune"),
    "codecarbon": ((("codecarbon",),), "codecarbon"),
    "clearml": ((("clearml",),), "clearml"),
    "dagshub": ((("dagshub", "mlflow"),), "dagshub mlflow"),
    "flyte": ((("flytekit",),), "flytekit"),
    "dvclive": ((("dvclive",),), "dvclive"),
    "swanlab": ((("swanlab",),), "swanlab"),
    "kubeflow": (((),), ""),  # no package: transformers turns it on from KUBEFLOW_TRAINER_SERVER_URL
}
#: the trackers this project installs with its ``trackers`` extra
PROJECT_TRACKERS = ("tensorboard", "trackio", "wandb")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or half-installed
        return False


def check_report_to(value: Any) -> str | list[str]:
    """``train.report_to`` as transformers' ``report_to`` takes it (``[]`` for none, ``"all"``, or a list of
    names), after checking every name is an integration transformers knows and its package is installed:
    else a one-line ``ConfigError`` naming ``train.report_to`` and what to install."""
    if value is None:
        return []
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else [str(n).strip() for n in value]
    names = [n for n in names if n and n != "none"]
    if "all" in names:
        if len(names) > 1:
            raise ConfigError(f"train.report_to={value!r}: 'all' (every installed integration) cannot be combined with names")
        return "all"
    for name in names:
        if name not in INTEGRATIONS:
            near = difflib.get_close_matches(name, INTEGRATIONS, n=1)
            raise ConfigError(f"train.report_to: {name!r} is not an integration transformers knows"
                              f"{f' (did you mean {near[0]}?)' if near else ''}; use none, all, or one or a list of: "
                              f"{', '.join(INTEGRATIONS)}")
        alternatives, package = INTEGRATIONS[name]
        if not any(all(_installed(m) for m in modules) for modules in alternatives):
            how = (f'pip install -e ".[trackers]" (or pip install {package})' if name in PROJECT_TRACKERS
                   else f"pip install {package}")
            raise ConfigError(f"train.report_to={name} needs the {package} package, which is not installed: {how}")
    return list(dict.fromkeys(names))


def write_loss_plot(log_history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path | None:
    """Draw ``loss.png`` from a trainer's ``state.log_history``: train loss (``loss``) and eval loss
    (``eval_loss``) against the step, the learning rate (``learning_rate``) on a second y axis. Returns
    the path, or None (nothing written) when the history holds no loss."""
    def series(key: str) -> tuple[list[int], list[float]]:
        points = [(e["step"], float(e[key])) for e in log_history if isinstance(e.get(key), int | float) and "step" in e]
        return [s for s, _ in points], [v for _, v in points]

    train, evaluation, lr = series("loss"), series("eval_loss"), series("learning_rate")
    if not train[0] and not evaluation[0]:
        return None
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state touched
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    lines = []
    if train[0]:
        lines += ax.plot(*train, color="tab:blue", marker="." if len(train[0]) < 60 else None, label="train loss")
    if evaluation[0]:
        lines += ax.plot(*evaluation, color="tab:orange", marker="o", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if lr[0]:
        ax_lr = ax.twinx()
        lines += ax_lr.plot(*lr, color="tab:gray", linestyle="--", label="learning rate")
        ax_lr.set_ylabel("learning rate")
        ax_lr.set_ylim(bottom=0)
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    ax.legend(lines, [line.get_label() for line in lines], loc="upper right")
    ax.set_title(title or "raft.finetune: loss and learning rate")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
