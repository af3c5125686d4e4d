"""The README's screenshots, made by the browser tests' code (``raft.testing.browser``), never by hand.

    python -m raft.testing screenshots docs                       # docs/*.png, data from ../shared/data
    python -m raft.testing screenshots docs --shared PATH/TO/data

What is shot, all of it real runs of the project's commands on this machine's stand-ins (no GPU, no
weights): ``python -m raft.generate recipe=docs`` over ``shared/docs`` and ``recipe=hotpot`` over the
shared HotpotQA sample, each with the local test teacher (``raft.testing.TeacherServer``) and the
tiny model's tokenizer, then ``python -m raft.generate view`` of each (``viewer_docs.png``,
``viewer_hotpot.png``, with a row opened: documents, the oracle, the quotes); then ``raft.evaluate``
of the docs dataset's test split (raft_domain) with two stand-in students, the tiny random model and
the test server, and ``raft.evaluate report`` of both (``report.png``: the samples page). The test
teacher writes template questions and answers from the chunks, so the pages show the viewer and the
report, not what a 70B teacher writes.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from raft.testing.browser import VIEWPORT, browser, screenshot
from raft.testing.server import TeacherServer
from raft.testing.tiny import build_tiny_model

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def generate_examples(shared: Path, work: Path, teacher_url: str, tokenizer: Path) -> dict[str, Path]:
    """``recipe=docs`` (40 chunks) and ``recipe=hotpot`` (the published 100) output folders, with their previews."""
    from raft.config import load_config
    from raft.generate import main

    common = [f"teacher.base_url={teacher_url}", f"tokenizer={tokenizer}", "teacher.retry_backoff=0.01"]
    runs = {
        "docs": ["recipe=docs", f"input={shared / 'docs'}", "limit=40"],
        "hotpot": ["recipe=hotpot", f"input={shared / 'hotpotqa' / 'hotpot_dev_distractor_first100.json'}",
                   "hotpot.eval_questions=50"],
    }
    for name, args in runs.items():
        main(load_config("generate", [*args, *common, f"output={work / name}"]), progress=False)
    return {name: work / name for name in runs}


def report_example(data: Path, work: Path, teacher_url: str, model: Path) -> Path:
    """raft_domain on ``data``'s test split with the tiny model and the test server, then the report."""
    from raft.config import load_config
    from raft.evaluate import main, report

    runs = {
        "tiny": [f"model={model}", "max_new_tokens=32", "label=tiny random model (hf)"],
        "server": ["model=fake-teacher", "backend=local-chat-completions", f"base_url={teacher_url}",
                   "label=test server (local-chat-completions)"],
    }
    for name, args in runs.items():
        main(load_config("evaluate", [*args, "tasks=[raft_domain]", f"data={data}", "limit=8", f"output={work / name}"]))
    return report([work / name for name in runs], work / "report")["html"]


def open_row(page: Any) -> None:
    """Open the first row of the viewer whose oracle is among the documents (its detail: the documents,
    the oracle highlighted, the answer's quotes linked to it)."""
    rows = page.locator("#rows-table tbody tr.row")
    for i in range(rows.count()):
        if rows.nth(i).locator("td").nth(5).inner_text().startswith("doc"):
            rows.nth(i).click()
            return
    rows.first.click()


def shoot(out: Path, shared: Path = SHARED) -> list[Path]:
    """Run the examples in a temporary folder and write the PNGs into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="raft-screens-") as tmp, TeacherServer() as server:
        work = Path(tmp)
        model = build_tiny_model(work / "tiny")
        folders = generate_examples(shared, work, server.base_url, model)
        html = report_example(folders["docs"], work / "eval", server.base_url, model)
        shots = []
        with browser() as b:
            page = b.new_page(viewport={**VIEWPORT, "height": 1100})
            for name, folder in folders.items():
                page.goto((folder / "preview.html").as_uri())
                open_row(page)
                shots.append(screenshot(page, out / f"viewer_{name}.png", full_page=False))
            page.goto(html.as_uri())
            shots.append(screenshot(page, out / "report.png", full_page=False))
    return shots


def main(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    shared = Path(argv[argv.index("--shared") + 1]) if "--shared" in argv else SHARED
    if not (shared / "docs").is_dir():
        raise SystemExit(f"raft.testing screenshots: error: {shared / 'docs'} not found (pass --shared PATH/TO/data)")
    for path in shoot(Path(argv[0]), shared):
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
