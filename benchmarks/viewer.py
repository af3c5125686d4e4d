"""The data viewer (``preview.html``) with many rows: build time, page size, and how long chromium
takes to load it, search, filter, sort and page through it.

    python benchmarks/viewer.py                          # 10,000 RAFT rows, the worst case: every row its own chunks
    python benchmarks/viewer.py --rows 20000 --output benchmarks/results/viewer.json

Rows: ``--rows`` RAFT rows, each with 4 documents of ~2,300 characters (about 512 Llama tokens), the
oracle a chunk of its own and 3 distractors drawn from the pool of all chunks, a chain-of-thought answer
with a quote from the oracle; a fifth of the oracles dropped. Texts are random words, so no document is
shared by chance beyond what the draw shares. Timings in the browser come from the page itself
(``performance.now()`` around each action, the layout included by reading ``offsetHeight``), in
Debian's chromium driven by Playwright (``raft.testing.browser``); each action is the median of 5.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

from common import machine, write_result

from raft.generate.preview import write_preview
from raft.testing.browser import VIEWPORT, browser

WORDS = ("alpha beta gamma delta epsilon river mountain city court law science music history "
         "engine protein market theory vote harbour castle novel").split()


def make_rows(folder: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    chunks = [" ".join(rng.choices(WORDS, k=330)) for _ in range(n)]
    with (folder / "train.jsonl").open("w") as f, (folder / "chunks.jsonl").open("w") as c:
        for k, oracle in enumerate(chunks):
            c.write(json.dumps({"id": f"c{k}", "text": oracle, "source": f"doc{k % 40}.txt", "title": ""}) + "\n")
            docs = [chunks[rng.randrange(n)] for _ in range(3)]
            dropped = rng.random() < 0.2
            at = rng.randrange(4)
            if not dropped:
                docs.insert(at, oracle)
            else:
                docs.append(chunks[rng.randrange(n)])
            quote = oracle[100:220]
            cot = f"##Reason: the document says ##begin_quote##{quote}##end_quote## so it is. <ANSWER>: {oracle[:20]}"
            f.write(json.dumps({"id": f"c{k}#0", "question": f"What does document {k} say about {WORDS[k % 20]}?",
                                "documents": docs, "oracle_index": None if dropped else at, "cot_answer": cot,
                                "final_answer": oracle[:20], "chunk_id": f"c{k}", "source": f"doc{k % 40}.txt"}) + "\n")


def timed(page, script: str) -> float:
    """Median of 5 runs of ``script`` (JS statements) in the page, in ms, the layout it causes included."""
    runs = [page.evaluate(f"() => {{ const t0 = performance.now(); {script}; document.body.offsetHeight; "
                          f"return performance.now() - t0; }}") for _ in range(5)]
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--output", default="")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="raft-viewer-") as tmp:
        folder = Path(tmp)
        make_rows(folder, args.rows)
        t0 = time.perf_counter()
        page_path = write_preview(folder, max_rows=args.rows)
        build_s = time.perf_counter() - t0
        size_mb = page_path.stat().st_size / 1e6
        with browser() as b:
            page = b.new_page(viewport=VIEWPORT)
            t0 = time.perf_counter()
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            page.wait_for_selector("#rows-table tbody tr.row")
            load_s = time.perf_counter() - t0
            q = "document.getElementById('rows-q')"
            search = timed(page, f"{q}.value = 'about river'; {q}.dispatchEvent(new Event('input'))")
            clear = timed(page, f"{q}.value = ''; {q}.dispatchEvent(new Event('input'))")
            f = "document.getElementById('rows-f-oracle')"
            filt = timed(page, f"{f}.value = 'dropped'; {f}.dispatchEvent(new Event('input'))")
            page.evaluate(f"() => {{ {f}.value = ''; {f}.dispatchEvent(new Event('input')); }}")
            sort = timed(page, "document.querySelectorAll('#rows-table th')[7].click()")
            nxt = timed(page, "document.getElementById('rows-next').click()")
            opened = timed(page, "document.querySelector('#rows-table tbody tr.row').click()")
            in_dom = page.locator("#rows-table tbody tr.row").count()
            count = page.locator("#rows-count").inner_text()
            heap = page.evaluate("() => performance.memory ? performance.memory.usedJSHeapSize : null")
    result = {
        "command": f"python benchmarks/viewer.py --rows {args.rows}",
        "machine": machine(),
        "date": date.today().isoformat(),
        "rows": args.rows,
        "build_s": round(build_s, 2),
        "page_mb": round(size_mb, 1),
        "load_s": round(load_s, 2),
        "ms": {"search": round(search, 1), "clear_search": round(clear, 1), "filter": round(filt, 1), "sort": round(sort, 1),
               "next_page": round(nxt, 1), "open_row": round(opened, 1)},
        "rows_in_table": in_dom,
        "count_text": count,
        "js_heap_mb": round(heap / 1e6, 1) if heap else None,
    }
    print(json.dumps(result, indent=2))
    write_result(result, args.output)


if __name__ == "__main__":
    main()
