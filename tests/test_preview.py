"""The data viewer's data (raft.generate.preview): what preview.html holds for RAFT, bio_needle and
in2 rows and rejects, the quotes linked to where they occur, and ``python -m raft.generate view``.
The page in a real browser: tests/test_pages.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_generate import hotpot_cfg

from raft import generate
from raft.config import ConfigError
from raft.generate import preview
from raft.generate.preview import MAX_ROWS, build, main, write_preview
from raft.generate.preview_parts import Texts
from raft.kinds.raft.preview import preview_row as raft_row
from raft.testing import TeacherBehaviour

REPO = Path(__file__).resolve().parent.parent


def page_data(path: Path) -> dict:
    """The JSON data block of a preview.html, as the page's script reads it."""
    text = path.read_text(encoding="utf-8")
    blob = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S).group(1)
    return json.loads(blob)


def block_text(data: dict, block: dict) -> str:
    return data["texts"][block["x"]] if "x" in block else block.get("t", "")


def ws(text: str) -> str:
    return " ".join(text.split()).lower()


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------------
# a real run
# --------------------------------------------------------------------------------------------------


def make_hotpot_run(tmp: Path, teacher, shared_data: Path) -> Path:
    """A hotpot run with dropped oracles (p=0.5) whose rejects.jsonl also holds the rejects of a run
    against a misbehaving teacher (no tag, a quote from nowhere, empty), then rebuilt with view. Runs in
    a thread of its own: the browser tests' Playwright holds this thread's event loop."""

    def run() -> Path:
        teacher.reset(TeacherBehaviour())
        generate.main(hotpot_cfg(tmp, teacher, shared_data, "limit=30", "p=0.5"), progress=False)
        teacher.reset(TeacherBehaviour(malformed="cycle"))
        with pytest.raises(SystemExit):  # nothing accepted: exit status 1, the rejects are written
            generate.main(hotpot_cfg(tmp, teacher, shared_data, "limit=9", out="bad"), progress=False)
        teacher.reset(TeacherBehaviour())
        out = tmp / "out"
        with (out / "rejects.jsonl").open("a") as f:
            f.write((tmp / "bad" / "rejects.jsonl").read_text())
        write_preview(out)
        return out

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


def test_generate_writes_the_preview_and_view_rebuilds_the_same_page(tmp_path, teacher, shared_data, capsys):
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=6"), progress=False)
    out = tmp_path / "out"
    page = out / "preview.html"
    first = page.read_bytes()
    assert "python -m raft.generate view" in capsys.readouterr().out
    page.unlink()
    done = subprocess.run([sys.executable, "-m", "raft.generate", "view", str(out)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert page.read_bytes() == first and str(page) in done.stdout
    data = page_data(page)
    assert data["kind"] == "raft" and data["rows"]["total"] == len(data["rows"]["rows"]) == 6


def test_raft_rows_show_the_documents_the_oracle_and_linked_quotes(hotpot_run):
    data = page_data(hotpot_run / "preview.html")
    rows = jsonl(hotpot_run / "train.jsonl") + jsonl(hotpot_run / "test.jsonl")
    chunks = {c["id"]: c["text"] for c in jsonl(hotpot_run / "chunks.jsonl")}
    shown = data["rows"]["rows"]
    assert len(shown) == len(rows) == data["rows"]["total"] == 30
    assert [r["c"][1] for r in shown].count("test") == len(jsonl(hotpot_run / "test.jsonl"))
    dropped = 0
    for row, view in zip(rows, shown, strict=True):
        assert view["c"][0] == row["id"] and view["c"][3] == row["question"] and view["c"][4] == row["final_answer"]
        docs = [b for b in view["b"] if b["h"].startswith(("document", "oracle"))]
        assert [block_text(data, b) for b in docs[: len(row["documents"])]] == row["documents"]
        oracles = [b for b in docs if "oracle" in b.get("c", "")]
        assert len(oracles) == 1  # the oracle once: among the documents, or apart when dropped
        if row["oracle_index"] is None:
            dropped += 1
            assert view["f"]["oracle"] == "dropped" and oracles[0]["c"] == "oracle dropped"
            assert block_text(data, oracles[0]) == chunks[row["chunk_id"]] and len(docs) == len(row["documents"]) + 1
        else:
            assert docs[row["oracle_index"]] is oracles[0] and view["f"]["oracle"] == "shown"
        answer = next(b for b in view["b"] if b["h"] == "chain-of-thought answer")
        assert answer["t"] == row["cot_answer"]
        links = [m for m in answer["m"] if m[2] == "quote"]
        quotes = re.findall(r"##begin_quote##(.*?)##end_quote##", row["cot_answer"], re.S)
        assert len(links) == len(quotes) >= 1 and view["c"][6] == f"{len(quotes)}/{len(quotes)}"
        targets = {m[3]: (b, m) for b in oracles for m in b.get("m", [])}
        for (start, end, _, _, link), quote in zip(links, quotes, strict=True):
            block, (s, e, cls, _, _) = targets[link]  # the link points at a mark in the oracle
            assert cls == "quote" and ws(block_text(data, block)[s:e]) == ws(quote) == ws(row["cot_answer"][start:end])
        final = [m for m in answer["m"] if m[2] == "final"]
        assert row["cot_answer"][final[0][0]:].startswith("<ANSWER>:")
    assert 0 < dropped < 30


def test_rejects_tab_holds_every_reject_with_its_reason_and_reply(hotpot_run):
    data = page_data(hotpot_run / "preview.html")
    rejects = jsonl(hotpot_run / "rejects.jsonl")
    shown = data["rejects"]["rows"]
    assert len(shown) == len(rejects) == data["rejects"]["total"] >= 9
    assert [r["f"]["reason"] for r in shown] == [r["reason"] for r in rejects]
    assert len({r["reason"] for r in rejects}) >= 2
    assert [block_text(data, r["b"][1]) for r in shown] == [r["reply"] for r in rejects]


def test_quotes_found_elsewhere_or_nowhere_are_marked_so():
    row = {"id": "c#0", "question": "q?", "documents": ["the distractor says blue  sky", "the oracle says green"],
           "oracle_index": 1, "chunk_id": "c", "source": "s", "final_answer": "x",
           "cot_answer": "##begin_quote##blue sky##end_quote## ##begin_quote##GREEN##end_quote## "
                         "##begin_quote##red##end_quote## <ANSWER>: x"}
    view = raft_row(row, "train", {}, Texts())
    answer = view["b"][-1]
    assert [m[2] for m in answer["m"]] == ["quote", "quote", "quote missing", "final"]
    distractor, oracle = view["b"][1], view["b"][2]
    assert distractor["m"][0][2] == "quote elsewhere" and oracle["m"][0][2] == "quote"  # whitespace, case: still found
    assert view["c"][6] == "2/3" and view["f"]["quotes"] == "some not found"
    # as the quality gate reads quotes: surrounding quote marks stripped, an empty quote no quote at all
    row["cot_answer"] = '##begin_quote## "the oracle says green" ##end_quote## ##begin_quote## ##end_quote## <ANSWER>: x'
    view = raft_row(row, "train", {}, Texts())
    assert [m[2] for m in view["b"][-1]["m"]] == ["quote", "final"] and view["c"][6] == "1/1"


def bio_folder(folder: Path, n: int = 4) -> Path:
    """A bio_needle output folder of ``n`` hand-made rows (lengths 2048 / 4096 in turn; needle "person k") and one reject."""
    folder.mkdir(parents=True)
    rows = []
    for k in range(n):
        name, length = f"ada lovelace {k}", 2048 * (1 + k % 2)
        haystack = "filler text . " * 400 + f"{name} ( born 10 december 1815 ) was a mathematician . " + "more filler . " * 300
        user = f"{haystack}\n\nGiven this information, extract information about {name} as one JSON object."
        rows.append({"id": f"train/00000{k}/000", "needle_name": name, "label": {"nationality": "British"},
                     "target_tokens": length, "context_tokens": length - 8, "depth": 0.57, "needle_start": 1170,
                     "needle_tokens": 14, "prompt": [{"role": "user", "content": user}],
                     "completion": [{"role": "assistant", "content": '{"nationality":"British"}'}]})
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "rejects.jsonl").write_text(json.dumps({"id": "train/000009", "needle_name": "bob", "reason": "bad_input_label",
                                                      "reply": "day: at most 31"}) + "\n")
    return folder


def in2_folder(folder: Path, n: int = 4) -> Path:
    """An in2 output folder (recipe.yaml says kind: in2) of ``n`` rows, integration and fine_grained in turn."""
    folder.mkdir(parents=True)
    (folder / "recipe.yaml").write_text("kind: in2\n")
    rows = []
    for k in range(n):
        segments = [f"The capital of land {k} is Paris.", "It has 2 million people."][: 2 - k % 2]
        positions = [{"segment": "a", "start": 100, "end": 110, "depth": 0.025},
                     {"segment": "b", "start": 3000, "end": 3012, "depth": 0.75}][: len(segments)]
        answer = "Paris; 2 million" if len(segments) == 2 else "Paris"
        rows.append({"id": f"000000{k}", "question": f"Which city is the capital of land {k}?", "documents": segments,
                     "oracle_index": None, "cot_answer": answer, "final_answer": answer, "chunk_id": "a+b",
                     "source": "doc.txt", "question_type": "integration" if len(segments) == 2 else "fine_grained",
                     "context_tokens": 4000, "target_tokens": 4096, "gold_positions": positions})
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_long_context_rows_bio_needle_and_in2(tmp_path):
    data = build(bio_folder(tmp_path / "bio"))
    assert data["kind"] == "bio_needle"  # no recipe.yaml: told by the columns
    row = data["rows"]["rows"][0]
    assert row["c"] == ["train/000000/000", "train", "ada lovelace 0", 2048, 2040, 0.57, 14] and row["f"]["length"] == "2048"
    context = row["b"][1]
    assert "ada lovelace 0 ( born 10 december 1815 )" in context["t"] and len(context["t"]) < 3000
    assert [context["t"][s:e] for s, e, *_ in context["m"]] == ["ada lovelace 0"]
    assert block_text(data, row["b"][0]) == '{"nationality":"British"}' and data["rejects"]["rows"][0]["f"]["source"] == "bob"

    data = build(in2_folder(tmp_path / "in2"))
    row = data["rows"]["rows"][0]
    assert data["kind"] == "in2" and row["c"][2] == "integration" and row["c"][-1] == "0.03, 0.75"
    golds = row["b"][2:]
    assert [block_text(data, b) for b in golds] == ["The capital of land 0 is Paris.", "It has 2 million people."]
    assert "tokens 3000-3012 of 4000 (depth 0.75)" in golds[1]["h"]
    assert [block_text(data, b)[s:e] for b in golds for s, e, *_ in b["m"]] == ["Paris", "2 million"]


def test_text_of_the_data_cannot_close_the_script(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    nasty = "</script><script>alert(1)</script><!--"
    (out / "train.jsonl").write_text(json.dumps({"id": "x#0", "question": nasty, "documents": [nasty], "oracle_index": 0,
                                                 "cot_answer": f"##begin_quote##{nasty}##end_quote## <ANSWER>: {nasty}",
                                                 "final_answer": nasty, "chunk_id": "x", "source": nasty}) + "\n")
    page = write_preview(out)
    text = page.read_text()
    assert text.count("</script>") == 2 and "<!--" not in text  # the two closers of the page's own scripts
    assert page_data(page)["rows"]["rows"][0]["c"][3] == nasty


def test_max_rows_caps_the_page_and_says_how_many_there_are(hotpot_run, tmp_path):
    data = build(hotpot_run, max_rows=7)
    assert len(data["rows"]["rows"]) == 7 and data["rows"]["total"] == 30
    assert MAX_ROWS >= 10_000


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "usage: python -m raft.generate view OUTPUT"),
        (["{missing}"], "is not a folder"),
        (["{empty}"], "has no train.jsonl, test.jsonl or rejects.jsonl"),
        (["{bad}"], "train.jsonl line 2: not valid JSON"),
        (["{bad}", "colour=red"], "unknown option colour="),
        (["{bad}", "max_rows=lots"], "max_rows=lots is not a number"),
    ],
)
def test_view_errors_are_one_line(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "train.jsonl").write_text('{"id": "a#0"}\n{"id": \n')
    args = [a.format(missing=tmp_path / "nope", empty=tmp_path / "empty", bad=tmp_path / "bad") for a in args]
    with pytest.raises(ConfigError, match=re.escape(message)):
        main(args)
    done = subprocess.run([sys.executable, "-m", "raft.generate", "view", *args], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and message in done.stderr
    assert not (tmp_path / "bad" / "preview.html").exists()


def test_view_help_and_generate_help_name_the_viewer():
    done = subprocess.run([sys.executable, "-m", "raft.generate", "view", "--help"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0 and "view OUTPUT max_rows=" in done.stdout and not done.stderr
    done = subprocess.run([sys.executable, "-m", "raft.generate", "--help"], cwd=REPO, capture_output=True, text=True)
    assert "python -m raft.generate view OUTPUT" in done.stdout.splitlines()[1]


# --------------------------------------------------------------------------------------------------
# the kinds' views: found by name, a kind without one shown plainly
# --------------------------------------------------------------------------------------------------


def test_every_kind_has_a_preview_module_with_the_views_interface():
    for kind, module in preview.preview_modules():
        assert module.__doc__ and callable(module.preview_row) and callable(module.recognises), kind
        assert {len(c) for c in module.COLUMNS} == {2} and all(key and label for key, label in module.FILTERS)
        assert isinstance(module.LEGEND, str) and module.LEGEND
    assert {"bio_needle", "in2", "raft"} <= {kind for kind, _ in preview.preview_modules()}


@pytest.mark.parametrize(
    "columns, kind",
    [({"needle_name", "gold_positions"}, "bio_needle"), ({"needle_name"}, "bio_needle"), ({"gold_positions", "question"}, "in2"),
     ({"documents", "cot_answer"}, "raft"), (set(), "raft")],
)
def test_a_folder_without_recipe_is_told_by_its_columns_as_before(columns, kind):
    assert preview.guess_kind(columns) == kind


def test_a_kind_without_a_preview_module_shows_each_rows_json(tmp_path, monkeypatch):
    real = preview.available_kinds()
    monkeypatch.setattr(preview, "available_kinds", lambda: [*real, "no_such_kind"])
    out = tmp_path / "out"
    out.mkdir()
    (out / "recipe.yaml").write_text("kind: no_such_kind\n")
    rows = [{"id": "a", "text": "é < b", "n": 1}, {"text": "no id"}]
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "rejects.jsonl").write_text(json.dumps({"id": "r", "reason": "why", "needle_name": "bob"}) + "\n")
    page = write_preview(out)
    data = page_data(page)
    assert data["kind"] == "no_such_kind" and data["title"] == "out: no_such_kind data"
    assert [c for c, _ in data["rows"]["columns"]] == ["id", "split", "row"] and data["rows"]["filters"] == [["split", "split"]]
    shown = data["rows"]["rows"]
    assert [r["c"][:2] for r in shown] == [["a", "train"], ["", "train"]]
    assert [json.loads(r["c"][2]) for r in shown] == rows == [json.loads(block_text(data, r["b"][0])) for r in shown]
    assert data["rejects"]["rows"][0]["f"] == {"reason": "why", "source": "bob"}  # the kinds' reject sources still count
    assert '<span class="legend"></span>' in page.read_text()
