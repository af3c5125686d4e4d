"""Every HTML page the project writes, in a real browser (Playwright driving Debian's chromium): the
report pages of ``python -m raft.evaluate report`` (samples.html of RAFT runs, bio_samples.html,
probe_samples.html) and the data viewer of ``raft.generate`` (preview.html of RAFT, bio_needle and in2
data, and of 10,000 rows) each load without a console error, sort on a header click, narrow their
rows with a filter and with the search box, and are screenshot into the test's tmp folder.

Where playwright or chromium is missing the tests skip, naming what is missing; in CI (CI=true) they
fail instead. The browser is the system's chromium (RAFT_CHROMIUM, else ``chromium`` on PATH, else
/usr/bin/chromium), launched by ``raft.testing.browser``: Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from test_bio_report import bio_run
from test_evaluate_report import fake_run
from test_preview import bio_folder, in2_folder, jsonl
from test_probe_report import probe_run

from raft.evaluate import report
from raft.generate.preview import write_preview
from raft.testing.browser import VIEWPORT, BrowserMissing, screenshot
from raft.testing.browser import browser as launch


def _missing(what: str) -> None:
    """Skip, naming what is missing; in CI (CI=true), fail."""
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"{what} (CI=true: the browser tests must run)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def browser():
    """One headless chromium for the module (raft.testing.browser: the README screenshots use it too)."""
    try:
        with launch() as b:
            yield b
    except BrowserMissing as e:
        _missing(str(e))


@pytest.fixture
def open_page(browser):
    """``open_page(path)``: the page loaded in a fresh context; its console errors, uncaught
    exceptions and dialogs (an alert() would mean unescaped script) are gathered and must be none
    once loaded and again at the end of the test."""
    contexts, problems = [], []

    def open_(path: Path):
        context = browser.new_context(viewport=VIEWPORT)
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


# --------------------------------------------------------------------------------------------------
# the data viewer (preview.html of raft.generate)
# --------------------------------------------------------------------------------------------------


def viewer_count(page, tab: str = "rows") -> str:
    return page.locator(f"#{tab}-count").inner_text()


def viewer_rows(page, tab: str = "rows"):
    return page.locator(f"#{tab}-table tbody tr.row")


def viewer_column(page, i: int, tab: str = "rows") -> list[str]:
    """The texts of column ``i`` of the rows in the table now (one page of them)."""
    return page.eval_on_selector_all(f"#{tab}-table tbody tr.row", "(rows, i) => rows.map(r => r.children[i].textContent)", i)


def sort_by(page, header: str, tab: str = "rows") -> None:
    page.locator(f"#{tab}-table thead th", has_text=header).first.click()


def test_preview_page(open_page, hotpot_run, tmp_path):
    """preview.html of a hotpot run (30 rows, some oracles dropped) with the rejects of a misbehaving teacher."""
    rows = jsonl(hotpot_run / "train.jsonl") + jsonl(hotpot_run / "test.jsonl")
    rejects = jsonl(hotpot_run / "rejects.jsonl")
    n = len(rows)
    page = open_page(hotpot_run / "preview.html")
    assert page.title() == "out: raft data"
    assert viewer_count(page) == f"showing 1-{n} of {n} matching ({n} in all)" and viewer_rows(page).count() == n
    # sorting: numeric by answer length, up then down; by id as text
    before = viewer_column(page, 0)
    sort_by(page, "answer chars")
    up = [int(c) for c in viewer_column(page, 7)]
    assert up == sorted(up) and up[0] < up[-1] and viewer_column(page, 0) != before
    sort_by(page, "answer chars")
    assert [int(c) for c in viewer_column(page, 7)] == sorted(up, reverse=True)
    sort_by(page, "id")
    assert viewer_column(page, 0) == sorted(r["id"] for r in rows)
    # the oracle filter, then the search box on top, then the search alone
    dropped = [r for r in rows if r["oracle_index"] is None]
    page.select_option("#rows-f-oracle", "dropped")
    assert viewer_rows(page).count() == len(dropped) < n and set(viewer_column(page, 5)) == {"dropped"}
    assert viewer_count(page) == f"showing 1-{len(dropped)} of {len(dropped)} matching ({n} in all)"
    phrase = "which words follow"  # every question; then one row's own phrase
    page.fill("#rows-q", phrase.upper())
    assert viewer_rows(page).count() == len(dropped)
    own = re.search(r"«(.*?)»", dropped[0]["question"]).group(1)
    page.fill("#rows-q", own)
    assert 1 <= viewer_rows(page).count() < len(dropped)
    page.select_option("#rows-f-oracle", "")
    everywhere = sum(own.lower() in (r["question"] + "\n" + r["cot_answer"] + "\n" + r["source"]).lower() for r in rows)
    assert viewer_rows(page).count() == everywhere
    page.fill("#rows-q", "")
    assert viewer_rows(page).count() == n
    # a row with its oracle shown: open it, follow a quote to the oracle
    first = next(i for i, cell in enumerate(viewer_column(page, 5)) if cell.startswith("doc"))
    viewer_rows(page).nth(first).click()
    detail = page.locator("#rows-table tr.detail")
    assert detail.count() == 1 and detail.locator(".block.oracle").count() == 1
    link = detail.locator("a.quote").first
    target = page.locator(f"[id='{link.get_attribute('data-to')}']")
    link.click()
    assert target.evaluate("e => e.closest('.block').classList.contains('oracle')")
    assert " ".join(target.inner_text().split()).lower() == " ".join(link.inner_text().split()).lower()
    assert "flash" in target.get_attribute("class")
    screenshot(page, tmp_path / "preview.png")
    viewer_rows(page).nth(first).click()  # folds again
    assert page.locator("#rows-table tr.detail").count() == 0
    # the rejects tab: every reject, narrowed by reason
    page.click("#tab-rejects")
    assert page.locator("#rows").is_hidden() and page.locator("#rejects").is_visible()
    total = len(rejects)
    assert viewer_count(page, "rejects") == f"showing 1-{total} of {total} matching ({total} in all)"
    reason = rejects[0]["reason"]
    page.select_option("#rejects-f-reason", reason)
    assert set(viewer_column(page, 1, "rejects")) == {reason}
    assert viewer_rows(page, "rejects").count() == sum(r["reason"] == reason for r in rejects) < total
    screenshot(page, tmp_path / "preview_rejects.png")


def test_preview_page_stays_paged_with_10000_rows(open_page, tmp_path):
    """10,000 rows: one page of 50 in the table, next/previous, sort, filter and search over all of them."""
    out = tmp_path / "big"
    out.mkdir()
    docs = [f"Document {k}: the value of item {k} is {k * 7} units, said the report." for k in range(500)]
    with (out / "train.jsonl").open("w") as f:
        for k in range(10_000):
            oracle = docs[k % 500]
            f.write(json.dumps({
                "id": f"{k:05d}#0", "question": f"What is the value of item {k % 500} (q{k})?", "chunk_id": f"c{k % 500}",
                "documents": [docs[(k + 1) % 500], oracle], "oracle_index": 1 if k % 5 else None, "source": f"file{k % 3}.txt",
                "cot_answer": f"It says ##begin_quote##{oracle[12:]}##end_quote##." + " x" * (k % 17) + f" <ANSWER>: {k % 500 * 7}",
                "final_answer": str(k % 500 * 7)}) + "\n")
    write_preview(out)
    page = open_page(out / "preview.html")
    assert viewer_count(page) == "showing 1-50 of 10,000 matching (10,000 in all)" and viewer_rows(page).count() == 50
    page.click("#rows-next")
    assert viewer_count(page).startswith("showing 51-100 of 10,000") and viewer_column(page, 0)[0] == "00050#0"
    page.click("#rows-prev")
    assert viewer_column(page, 0)[0] == "00000#0"
    sort_by(page, "answer chars")
    sort_by(page, "answer chars")  # longest first
    lengths = [int(c) for c in viewer_column(page, 7)]
    rows = jsonl(out / "train.jsonl")
    assert lengths == sorted(len(r["cot_answer"]) for r in rows)[::-1][:50]
    sort_by(page, "answer chars")  # shortest first
    assert int(viewer_column(page, 7)[0]) == min(len(r["cot_answer"]) for r in rows) < lengths[0]
    page.select_option("#rows-f-oracle", "dropped")
    assert viewer_count(page) == "showing 1-50 of 2,000 matching (10,000 in all)"
    page.fill("#rows-q", "(q4242)")
    assert viewer_rows(page).count() == 0 and viewer_count(page).startswith("no row matches")  # 4242 % 5 != 0: shown
    page.select_option("#rows-f-oracle", "")
    assert viewer_column(page, 0) == ["04242#0"]
    page.fill("#rows-q", "")
    page.select_option("#rows-size", "1000")
    assert viewer_rows(page).count() == 1000 and viewer_count(page).startswith("showing 1-1,000 of 10,000")


def test_preview_pages_of_long_context_data(open_page, tmp_path):
    """bio_needle and in2 rows: the kind's own filter narrows, an opened row marks the needle / the answer."""
    page = open_page(write_preview(bio_folder(tmp_path / "bio")))
    assert page.title() == "bio: bio_needle data" and viewer_rows(page).count() == 4
    page.select_option("#rows-f-length", "4096")
    assert viewer_column(page, 3) == ["4096", "4096"]
    viewer_rows(page).first.click()
    assert page.locator("#rows-table tr.detail mark.quote").all_inner_texts() == ["ada lovelace 1"]
    screenshot(page, tmp_path / "preview_bio.png")
    in2 = in2_folder(tmp_path / "in2")
    page = open_page(write_preview(in2))
    page.select_option("#rows-f-type", "fine_grained")
    assert viewer_column(page, 2) == ["fine_grained", "fine_grained"]
    viewer_rows(page).first.click()
    assert page.locator("#rows-table tr.detail .block.oracle").count() == 1
    assert page.locator("#rows-table tr.detail mark.quote").all_inner_texts() == ["Paris"]
    screenshot(page, tmp_path / "preview_in2.png")


@pytest.mark.slow
def test_readme_screenshots_are_made_by_this_code(browser, tmp_path, shared_data):
    """``python -m raft.testing screenshots docs`` (the README's PNGs): docs and hotpot runs, their
    viewers with a row opened, the report of two stand-in students. (A thread of its own: the module's
    Playwright holds this thread's event loop, and raft.generate runs one.)"""
    from concurrent.futures import ThreadPoolExecutor

    from raft.testing.screenshots import shoot

    with ThreadPoolExecutor(1) as pool:
        shots = pool.submit(shoot, tmp_path / "docs", shared_data).result()
    assert [p.name for p in shots] == ["viewer_docs.png", "viewer_hotpot.png", "report.png"]
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert all(f"(docs/{p.name})" in readme for p in shots)
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 50_000 for p in shots)
