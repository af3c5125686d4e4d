"""``python -m raft.generate [recipe=NAME] [key=value ...]``: see raft.generate."""

from raft.config import run_cli
from raft.generate.command import main

run_cli("generate", main)
