"""``python -m raft.generate [recipe=NAME] [key=value ...]`` | ``python -m raft.generate view OUTPUT``: see raft.generate."""

import sys

from raft.cli import run_cli

if sys.argv[1:2] == ["view"]:  # the data viewer: rebuild OUTPUT/preview.html (raft.generate.preview)
    from raft.config import ConfigError

    try:
        from raft.generate.preview import main as view

        view(sys.argv[2:])
    except ConfigError as e:
        print(f"raft.generate view: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
else:
    from raft.generate.command import main

    run_cli("generate", main)
