"""``python -m raft.finetune [recipe=NAME] [key=value ...]`` (also under ``accelerate launch -m``)."""

from raft.cli import run_cli
from raft.finetune import main

run_cli("finetune", main)
