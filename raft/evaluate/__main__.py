"""The command line of raft.evaluate:

    python -m raft.evaluate [recipe=NAME|PATH.yaml] [key=value ...]      # an lm-eval run (run.main)
    python -m raft.evaluate report RESULT_DIR [RESULT_DIR ...] [--out DIR]  # the report (reporting.report_cli)

``python -m raft.evaluate --help`` lists the settings, ``python -m raft.evaluate report --help``
the report's usage. Errors are one line on stderr with exit status 2.
"""

from __future__ import annotations

import sys

from raft.cli import run_cli
from raft.evaluate.reporting import REPORT_USAGE, report_cli
from raft.evaluate.run import main


def cli(argv: list[str]) -> None:
    if argv[:1] == ["report"]:
        report_cli(argv[1:])
    else:
        run_cli("evaluate", main, argv)
        if any(a in ("-h", "--help", "help") for a in argv):
            print(f"\nreport over result folders:\n  {REPORT_USAGE}")


if __name__ == "__main__":
    cli(sys.argv[1:])
