"""The HTML pages of ``python -m raft.evaluate report`` in a real browser (Playwright driving Debian's
chromium): samples.html (RAFT runs), bio_samples.html (bio_needle runs) and probe_samples.html
(in2_probe runs) each load without a console error, sort on a header click, narrow their rows with a
filter and with the search box, and are screenshot into the test's tmp folder.

Where playwright or chromium is missing the tests skip, naming what is missing; in CI (CI=true) they
fail instead. The browser is the system's chromium (RAFT_CHROMIUM, else ``chromium`` on PATH, else
/usr/bin/chromium): Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from test_bio_report import bio_run
from test_evaluate_report import fake_run
from test_probe_report import probe_run

from raft.evaluate import report

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # without these chromium keeps calling out (a closed network floods)
    "--disable-component-update",
    "--disable-sync",
]


def _missing(what: str) -> None:
    """Skip, naming what is missing; in CI (CI=true), fail."""
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{what} (CI=true: the browser tests must run)")
    pytest.skip(what)


def _chromium() -> str | None:
    for path in (os.environ.get("RAFT_CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if path and Path(path).is_file() and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    """One headless chromium for the module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; the dev extra has it)")
    executable = _chromium()
    if executable is None:
        _missing("chromium is not installed (apt-get install chromium, or set RAFT_CHROMIUM)")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield b
        b.close()
    finally:
        pw.stop()


@pytest.fixture
def open_page(browser):
    """``open_page(path)``: the page loaded in a fresh context; its console errors, uncaught
    exceptions and dialogs (an alert() would mean unescaped script) are gathered and must be none
    once loaded and again at the end of the test."""
    contexts, problems = [], []

    def open_(path: Path):
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None
        )
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))

        def on_dialog(d):
            problems.append(f"dialog {d.type}: {d.message}")
            d.dismiss()

        page.on("dialog", on_dialog)
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        assert problems == [], f"{path.name} did not load cleanly"
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == []


# --------------------------------------------------------------------------------------------------
# what every page is checked for
# --------------------------------------------------------------------------------------------------


def visible(page) -> int:
    return page.locator("#samples tbody tr:visible").count()


def count_text(page) -> str:
    return page.locator("#count").inner_text()


def column(page, header: str) -> list[dict]:
    """The cells of the samples table's column ``header``, in the rows' order: text and data-v."""
    return page.eval_on_selector_all(
        "#samples tbody tr",
        """(rows, header) => {
             const i = Array.from(document.querySelectorAll('#samples thead th')).findIndex(th => th.textContent === header);
             if (i < 0) throw new Error('no column ' + header);
             return rows.map(r => ({text: r.children[i].textContent, v: r.children[i].dataset.v}));
           }""",
        header,
    )


def first_cells(page) -> list[str]:
    """Every row's text, in the table's order (a row's identity for the order checks)."""
    return page.eval_on_selector_all("#samples tbody tr", "rows => rows.map(r => r.textContent)")


def check_sort(page, header: str, numeric: bool) -> None:
    """A click on ``header`` sorts the rows ascending by it (changing their order), a second click descending."""
    before = first_cells(page)
    page.locator("#samples thead th", has_text=header).first.click()
    after = first_cells(page)
    assert after != before, f"a click on {header!r} left the rows as they were"
    assert sorted(after) == sorted(before)  # the same rows, moved

    def keys() -> list:
        cells = column(page, header)
        return [float(c["v"]) for c in cells] if numeric else [c["text"].lower() for c in cells]

    up = keys()
    assert up == sorted(up) and up[0] != up[-1]
    page.locator("#samples thead th", has_text=header).first.click()
    down = keys()
    assert down == sorted(up, reverse=True)
    assert first_cells(page)[0] != after[0]


def check_narrowing(
    page,
    total: int,
    select_id: str,
    value: str,
    select_rows: int,
    query: str,
    query_rows: int,
    both_rows: int,
) -> None:
    """The select ``select_id`` set to ``value`` shows ``select_rows`` rows, the search box with
    ``query`` (on top) ``both_rows``; back to "all": ``query_rows``; cleared: every row again.
    The count under the controls follows."""
    assert visible(page) == total and count_text(page) == f"{total} of {total} samples"
    page.select_option(f"#{select_id}", value)
    assert visible(page) == select_rows < total
    assert count_text(page) == f"{select_rows} of {total} samples"
    page.fill("#q", query)
    assert visible(page) == both_rows
    page.select_option(f"#{select_id}", "")
    assert visible(page) == query_rows < total
    assert count_text(page) == f"{query_rows} of {total} samples"
    page.fill("#q", "")
    assert visible(page) == total


def screenshot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


# --------------------------------------------------------------------------------------------------
# the pages
# --------------------------------------------------------------------------------------------------


def test_samples_page(open_page, tmp_path):
    """samples.html: 3 RAFT runs of 2 samples each (one right, F1 1, one wrong without the tag)."""
    m = "meta-llama/Llama-3.1-8B-Instruct"
    folders = [
        fake_run(tmp_path / "base16", m, 0.40),
        fake_run(tmp_path / "raft16", m, 0.60, adapter="outputs/llama31_8b"),
        fake_run(tmp_path / "base4", m, 0.36, four_bit=True),
    ]
    paths = report(folders, tmp_path / "report")
    page = open_page(paths["html"])
    assert page.title() == "RAFT evaluation samples"
    total = 6
    check_sort(page, "F1", numeric=True)
    check_sort(page, "run", numeric=False)
    # run filter: 2 rows; search "yes or no": one per run; both: 1
    check_narrowing(page, total, "run", "Llama-3.1-8B-Instruct (4-bit)", 2, "yes or no", 3, 1)
    page.select_option("#f1", "zero")
    assert visible(page) == 3
    page.select_option("#f1", "")
    page.check("#notag")
    assert (
        visible(page) == 3
        and page.locator("#samples tbody tr:visible td.f1").all_inner_texts() == ["0.000"] * 3
    )
    page.uncheck("#notag")
    assert visible(page) == total
    # the escaped output is text, not markup: the <script> of the output shows as written
    assert page.locator("#samples tbody tr pre", has_text="<script>alert(1)</script>").count() == 3
    screenshot(page, tmp_path / "samples.png")


def test_bio_samples_page(open_page, tmp_path):
    """bio_samples.html: 2 bio runs, 3 lengths x 4 depths x 2 needles each."""
    folders = [bio_run(tmp_path / "base", tuned=False), bio_run(tmp_path / "tuned", tuned=True)]
    report(folders, tmp_path / "report")
    page = open_page(tmp_path / "report" / "bio_samples.html")
    assert page.title() == "Bio needle-in-a-haystack samples"
    total = 48
    check_sort(page, "score", numeric=True)
    check_sort(page, "needle", numeric=False)
    # length 4k: 2 runs x 4 depths x 2 needles; "bo diddley": half; both: 8
    check_narrowing(page, total, "length", "4096", 16, "bo diddley", 24, 8)
    page.select_option("#depth", "0.333333")  # 1/3, as the option's value rounds it
    assert visible(page) == 12
    page.select_option("#depth", "")
    page.select_option("#score", "one")
    ones = visible(page)
    assert 0 < ones < total
    assert set(page.locator("#samples tbody tr:visible td.score").all_inner_texts()) == {"1.000"}
    page.select_option("#score", "")
    page.select_option("#failed", "json")  # the samples with no field right: no JSON
    assert 0 < visible(page) < total
    assert set(page.locator("#samples tbody tr:visible td.score").all_inner_texts()) == {"0.000"}
    page.select_option("#failed", "")
    assert visible(page) == total
    screenshot(page, tmp_path / "bio_samples.png")


def test_probe_samples_page(open_page, tmp_path):
    """probe_samples.html: 2 in2_probe runs, 3 lengths x 10 bins x 3 probes x 2 samples each."""
    folders = [probe_run(tmp_path / "base", tuned=False), probe_run(tmp_path / "tuned", tuned=True)]
    report(folders, tmp_path / "report")
    page = open_page(tmp_path / "report" / "probe_samples.html")
    assert page.title() == "IN2 position probe samples"
    total = 360
    check_sort(page, "F1", numeric=True)
    check_sort(page, "bin", numeric=True)
    check_sort(page, "question", numeric=False)
    # probe "code": a third; the question of sample 5 ("<k5>"): one per run, a code probe; with "structured": none
    check_narrowing(page, total, "probe", "structured", 120, "<k5>", 2, 0)
    page.select_option("#bin", "0")
    assert visible(page) == 36
    page.select_option("#em", "1")  # the edge bins are always right
    assert visible(page) == 36
    page.select_option("#bin", "")
    page.select_option("#em", "")
    page.select_option("#f1", "partial")
    assert 0 < visible(page) < total
    page.select_option("#f1", "")
    assert visible(page) == total
    screenshot(page, tmp_path / "probe_samples.png")
