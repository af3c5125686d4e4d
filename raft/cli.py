"""The command-line wrapper of every command (``python -m raft.generate | finetune | evaluate``):
``--help``, the installed dependencies checked against the package's floors, the configuration loaded
(``raft.config``), and one-line errors with exit status 2 (130 when interrupted: rerun to resume).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from raft.config import ConfigError, help_text, load_config


def check_dependencies(dist: str = "raft-recipes") -> None:
    """Every requirement the installed package declares is met (pyproject.toml holds the floors the
    code needs: an older transformers silently loses warm-up, an older datasets fails only after every
    teacher call is paid); else one ConfigError naming the first that is not. A checkout that was not
    installed has nothing to check against."""
    from importlib import metadata

    from packaging.requirements import Requirement

    try:
        requires = metadata.requires(dist) or []
    except metadata.PackageNotFoundError:
        return
    for line in requires:
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # an optional extra (vllm, dev)
        try:
            have = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            raise ConfigError(f"{req.name} is not installed; {dist} needs {req} (pip install '{req}')") from None
        if not req.specifier.contains(have, prereleases=True):
            raise ConfigError(f"{req.name} {have} is installed; {dist} needs {req} (pip install -U '{req}')")


def run_cli(command: str, main: Callable[[Any], Any], argv: list[str] | None = None) -> None:
    """Entry-point wrapper: --help, config loading, one-line errors with exit status 2."""
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "help") for a in args):
        try:
            print(help_text(command), flush=True)
        except BrokenPipeError:  # `--help | head`: the reader has all it wanted
            sys.stdout = None  # nothing left to flush at exit
        return
    try:
        check_dependencies()
        cfg = load_config(command, args)
        main(cfg)
    except ConfigError as e:
        print(f"raft.{command}: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print(f"raft.{command}: interrupted; rerun the same command to resume", file=sys.stderr)
        raise SystemExit(130) from None
