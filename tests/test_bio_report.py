"""The bio needle-in-a-haystack report (raft.kinds.bio_needle.report) and the cost table (raft.kinds.bio_needle.cost),
on result folders built by hand as raft.evaluate writes them for the bio_needle task."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from raft.evaluate import ReportError, load_run, report
from raft.kinds.bio_needle.cost import OFFLINE, cost_per_1000, money, write_cost_table
from raft.kinds.bio_needle.report import (
    accuracy_by_length,
    bio_samples_html,
    bio_summary,
    heatmap_matrix,
    summary_tables,
)
from raft.kinds.bio_needle.schema import FIELDS
from raft.kinds.bio_needle.score import FIELD_METRICS

REPO = Path(__file__).resolve().parent.parent
LENGTHS = (4096, 8192, 16384)
DEPTHS = (0.0, 1 / 3, 2 / 3, 1.0)
NEEDLES = ("Ada <b>Lovelace</b>", "Bo Diddley")
LABEL = {
    "nationality": "British",
    "date_of_birth": {"day": 10, "month": 12, "year": 1815},
    "date_of_death": {"day": 27, "month": 11, "year": 1852},
    "sportsperson": False,
    "politician": False,
}


def right_fields(length: int, depth: float, needle: int, tuned: bool) -> int:
    """The made-up number of fields a run gets right in a cell: falls with length and towards the
    middle; the fine-tuned run gets two more (at most 9); needle 1 two fewer."""
    k = 9 - LENGTHS.index(length) * 2 - (3 if 0 < depth < 1 else 0) - 2 * needle + (2 if tuned else 0)
    return max(0, min(9, k))


def sample(doc_id: int, length: int, depth: float, needle: int, tuned: bool) -> dict:
    k = right_fields(length, depth, needle, tuned)
    fields = {f: int(i < k) for i, f in enumerate(FIELDS)}
    parsed = None if k == 0 else LABEL
    return {
        "doc_id": doc_id,
        "needle_name": NEEDLES[needle],
        "label": LABEL,
        "target_tokens": length,
        "context_tokens": length - 37,
        "depth": min(1.0, depth + 0.01),
        "depth_target": depth,
        "response": "<script>alert(1)</script> not JSON" if k == 0 else json.dumps(parsed),
        "parsed": parsed,
        "json_valid": int(k > 0),
        "fields": fields,
        "score": k / 9,
    }


def bio_run(
    folder: Path, tuned: bool, label: str | None = None, samples: bool = True, skip_cell=None
) -> Path:
    """A bio_needle result folder: results.json (metrics from its samples, a raft block) and
    samples_bio_needle.jsonl: 3 lengths x 4 depths x 2 needles."""
    rows = [
        sample(i, t, d, n, tuned)
        for i, (t, d, n) in enumerate((t, d, n) for t in LENGTHS for d in DEPTHS for n in range(2))
        if (t, d) != skip_cell
    ]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    metrics = {
        "alias": "bio_needle",
        "score,none": mean([r["score"] for r in rows]),
        "score_stderr,none": "N/A",
        "json_valid,none": mean([r["json_valid"] for r in rows]),
        **{f"{FIELD_METRICS[f]},none": mean([r["fields"][f] for r in rows]) for f in FIELDS},
        **{
            f"score_{t // 1024}k,none": mean([r["score"] for r in rows if r["target_tokens"] == t])
            for t in LENGTHS
        },
        "score_32k,none": None,  # a length of the task this run did not sample
    }
    adapter = "outputs/bio_raft" if tuned else ""
    info = {
        "label": label
        or ("Llama-3.1-8B-Instruct + bio_raft (16-bit)" if tuned else "Llama-3.1-8B-Instruct (16-bit)"),
        "model": "meta-llama/Llama-3.1-8B-Instruct",
        "adapter": adapter,
        "finetuned": tuned,
        "precision": "16-bit",
        "backend": "vllm",
    }
    folder.mkdir(parents=True)
    record = {"results": {"bio_needle": metrics}, "n-samples": {"bio_needle": {"original": len(rows), "effective": len(rows)}}, "raft": info}  # fmt: skip
    (folder / "results.json").write_text(json.dumps(record))
    if samples:
        (folder / "samples_bio_needle.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def raft_run(folder: Path) -> Path:
    """A raft_hotpot result folder as raft.evaluate writes it (flat sample rows)."""
    folder.mkdir(parents=True)
    info = {"label": "Llama-3.1-8B-Instruct (16-bit)", "model": "meta-llama/Llama-3.1-8B-Instruct", "adapter": "",
            "finetuned": False, "precision": "16-bit"}  # fmt: skip
    results = {"raft_hotpot": {"f1,none": 0.5, "em,none": 0.25, "answer_found,none": 0.9}}
    (folder / "results.json").write_text(json.dumps({"results": results, "raft": info}))
    rows = [{"doc_id": i, "question": f"q{i}", "gold": "a", "answer": "a", "f1": 1.0, "em": 1.0,
             "answer_found": 1.0, "output": "<ANSWER>: a"} for i in range(2)]  # fmt: skip
    (folder / "samples_raft_hotpot.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def two_runs(tmp_path) -> list[Path]:
    return [bio_run(tmp_path / "base", tuned=False), bio_run(tmp_path / "tuned", tuned=True)]


def cell_mean(length: int, depth: float, tuned: bool) -> float:
    return sum(right_fields(length, depth, n, tuned) / 9 for n in range(2)) / 2


# --------------------------------------------------------------------------------------------------


def test_load_run_reads_a_bio_folder(two_runs):
    """raft.evaluate's rows as they are; a row as lm_eval --log_samples writes it, scored by bio_run.bio_sample_row."""
    raw = {"doc_id": 7, "doc": {"needle_name": "Ada", "label": LABEL, "target_tokens": 4096, "depth_target": 0.5},
           "filtered_resps": [json.dumps({**LABEL, "politician": True})]}  # fmt: skip
    with (two_runs[0] / "samples_bio_needle.jsonl").open("a") as f:
        f.write(json.dumps(raw) + "\n")
    last = load_run(two_runs[0]).apart_samples["bio_needle"][-1]
    assert (last["needle_name"], last["score"], last["json_valid"]) == ("Ada", 8 / 9, 1)
    assert last["fields"]["politician"] == 0 and last["response"].startswith('{"nationality"')

    run = load_run(two_runs[1])
    assert run.metrics == {} and run.samples == {}  # no F1 task: the RAFT table has nothing of it
    bio = run.apart["bio_needle"]
    assert bio["n"] == 24 and math.isnan(bio["score_32k"]) and "score_stderr" not in bio
    assert bio["score_4k"] == pytest.approx(
        (cell_mean(4096, 0, True) * 2 + cell_mean(4096, 1 / 3, True) * 2) / 4
    )
    assert len(run.apart_samples["bio_needle"]) == 24


def test_heatmap_cells_are_the_mean_score_of_their_samples(tmp_path):
    folder = bio_run(tmp_path / "base", tuned=False, skip_cell=(8192, 1.0))
    lengths, depths, matrix = heatmap_matrix(load_run(folder).apart_samples["bio_needle"])
    assert lengths == list(LENGTHS) and depths == pytest.approx(list(DEPTHS))
    for i, d in enumerate(DEPTHS):
        for j, t in enumerate(LENGTHS):
            if (t, d) == (8192, 1.0):
                assert math.isnan(matrix[i][j])  # no sample in that cell: blank, not 0
            else:
                assert matrix[i][j] == pytest.approx(cell_mean(t, d, False)), (t, d)
    assert matrix[0][0] == pytest.approx((9 + 7) / 18) and matrix[1][2] == pytest.approx((2 + 0) / 18)

    paths = report([folder], tmp_path / "r")
    png = paths["bio_heatmap_Llama-3.1-8B-Instruct_16-bit"]
    assert png.name == "bio_heatmap_Llama-3.1-8B-Instruct_16-bit.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_accuracy_by_length_of_two_runs(two_runs, tmp_path):
    runs = [load_run(f) for f in two_runs]
    lines = accuracy_by_length(runs)
    expected = {
        tuned: [(t, sum(cell_mean(t, d, tuned) for d in DEPTHS) / len(DEPTHS)) for t in LENGTHS]
        for tuned in (False, True)
    }
    base, fine = lines["Llama-3.1-8B-Instruct (16-bit)"], lines["Llama-3.1-8B-Instruct + bio_raft (16-bit)"]
    assert [t for t, _ in base] == list(LENGTHS) and [v for _, v in base] == pytest.approx(
        [v for _, v in expected[False]]
    )
    assert [v for _, v in fine] == pytest.approx([v for _, v in expected[True]])
    assert all(f > b for (_, b), (_, f) in zip(base, fine, strict=True))

    # without samples: the score_<n>k metrics of results.json (the absent 32k left out)
    bare = load_run(bio_run(tmp_path / "bare", tuned=True, label="bare", samples=False))
    got = accuracy_by_length([bare])["bare"]
    assert [t for t, _ in got] == list(LENGTHS) and [v for _, v in got] == pytest.approx(
        [v for _, v in expected[True]]
    )

    png = report(two_runs, tmp_path / "r")["bio_plot"]
    assert png.name == "bio_accuracy.png" and png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000


def test_summary_tables(two_runs):
    runs = [load_run(f) for f in two_runs]
    s = bio_summary((runs[0], "bio_needle"))
    assert s["score"] == runs[0].apart["bio_needle"]["score"] and s["n"] == 24
    assert s["json_valid"] == pytest.approx(22 / 24)  # no field right: 16k, the 2 middle depths, needle 1
    assert s["fields"]["nationality"] == pytest.approx(22 / 24) and s["fields"][
        "politician"
    ] == pytest.approx(2 / 24)
    assert math.isnan(s["lengths"]["32k"])  # in results.json, null: no sample
    (_, overall_head, overall), (_, field_head, fields), (_, length_head, lengths) = summary_tables(runs)
    assert overall_head == ["run", "model", "precision", "weights", "score", "json_valid", "n"]
    assert overall[1][0] == "Llama-3.1-8B-Instruct + bio_raft (16-bit)" and overall[1][3] == "fine-tuned"
    assert overall[0][4] == f"{s['score']:.4f}" and overall[0][6] == "24"
    assert field_head == [
        "field",
        "Llama-3.1-8B-Instruct (16-bit)",
        "Llama-3.1-8B-Instruct + bio_raft (16-bit)",
    ]
    assert [r[0] for r in fields] == list(FIELDS)
    assert [r[0] for r in lengths] == ["4k", "8k", "16k"]  # 32k: no run has a score for it
    assert lengths[0][1:] == [
        f"{s['lengths']['4k']:.4f}",
        f"{bio_summary((runs[1], 'bio_needle'))['lengths']['4k']:.4f}",
    ]


def test_summary_takes_results_json_then_the_samples(tmp_path):
    """results.json's numbers (fields by their lm-eval names: birth_day, ...) where it has them, else
    the samples' means; a 32000-token sweep is the '32k' of score_32k."""
    folder = bio_run(tmp_path / "base", tuned=False)
    record = json.loads((folder / "results.json").read_text())
    record["results"]["bio_needle"] = {"score,none": 0.5, "birth_day,none": 0.125, "score_32k,none": 0.25}
    (folder / "results.json").write_text(json.dumps(record))
    s = bio_summary((load_run(folder), "bio_needle"))
    assert s["score"] == 0.5 and s["fields"]["date_of_birth.day"] == 0.125  # results.json's values
    assert s["fields"]["politician"] == pytest.approx(2 / 24) and s["json_valid"] == pytest.approx(22 / 24)
    assert s["lengths"]["4k"] == pytest.approx(sum(cell_mean(4096, d, False) for d in DEPTHS) / 4)
    assert list(s["lengths"]) == ["4k", "8k", "16k", "32k"] and s["lengths"]["32k"] == 0.25

    rows = [json.loads(line) for line in (folder / "samples_bio_needle.jsonl").read_text().splitlines()]
    for r in rows:
        r["target_tokens"] = {4096: 32000, 8192: 8192, 16384: 16384}[r["target_tokens"]]
    (folder / "samples_bio_needle.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    s = bio_summary((load_run(folder), "bio_needle"))
    assert list(s["lengths"]) == ["8k", "16k", "32k"] and s["lengths"]["32k"] == 0.25  # one 32k, not two


def test_bio_samples_page(two_runs):
    runs = [load_run(f) for f in two_runs]
    page = bio_samples_html(runs)
    body = page.split('<table id="samples">', 1)[1]
    assert body.count("<tr class=") == 48  # every sample of both runs
    assert set(re.findall(r'data-run="([^"]*)"', body)) == {r.info["label"] for r in runs}
    for control in (
        'id="q"',
        'id="run"',
        'id="length"',
        'id="depth"',
        'id="score"',
        'id="failed"',
        'id="count"',
    ):
        assert control in page
    assert '<option value="8192">8k</option>' in page and '<option value="date_of_birth.year">' in page
    assert '<option value="json">' in page and 'data-failed="sportsperson politician"' in page
    assert "addEventListener('click'" in page and '<th data-num="1">score</th>' in page
    assert page.count("<script>") == 1 and "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in page
    assert "src=" not in page and "http" not in page  # self-contained
    assert page.count('class="ok"') + page.count('class="bad"') == 48 * 9
    assert 'title="date_of_birth.year: expected 1815, got null"' in page  # an unparsed reply
    assert page.count('class="summary"') == 3  # the summary tables at the top


def test_report_on_bio_and_raft_folders(two_runs, tmp_path):
    hotpot = raft_run(tmp_path / "hotpot")
    paths = report([hotpot, *two_runs], tmp_path / "r")
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert names == {
        "report.md", "f1.png", "samples.html", "bio_accuracy.png", "bio_samples.html",
        "bio_heatmap_Llama-3.1-8B-Instruct_16-bit.png", "bio_heatmap_Llama-3.1-8B-Instruct_bio_raft_16-bit.png",
    }  # fmt: skip
    assert set(paths.values()) == {tmp_path / "r" / n for n in names}
    md = paths["table"].read_text()
    assert md.startswith("# RAFT evaluation\n\n| task | run |")
    assert "| raft_hotpot | Llama-3.1-8B-Instruct (16-bit) |" in md
    assert (
        "## Bio needle-in-a-haystack" in md
        and "### Accuracy per field" in md
        and "| date_of_birth.year |" in md
    )
    assert "![score vs context length](bio_accuracy.png)" in md
    assert paths["html"].read_text().count("<tr class=") == 2  # the RAFT page: RAFT samples alone
    assert paths["bio_html"].read_text().split('<table id="samples">')[1].count("<tr class=") == 48

    # bio runs alone: no RAFT files; same labels: distinct heatmap files
    again = bio_run(tmp_path / "again", tuned=False)
    alone = report([two_runs[0], again], tmp_path / "alone")
    assert "plot" not in alone and not (tmp_path / "alone" / "f1.png").exists()
    assert {p.name for p in alone.values() if p.name.startswith("bio_heatmap")} == {
        "bio_heatmap_Llama-3.1-8B-Instruct_16-bit.png",
        "bio_heatmap_Llama-3.1-8B-Instruct_16-bit_2.png",
    }


def test_report_cli_on_a_mix(two_runs, tmp_path):
    hotpot = raft_run(tmp_path / "hotpot")
    proc = subprocess.run(
        [sys.executable, "-m", "raft.evaluate", "report", str(hotpot), str(two_runs[0]), "--out", str(tmp_path / "r")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "## Bio needle-in-a-haystack" in proc.stdout and "bio_html: " in proc.stdout


def test_bio_sample_without_a_score_names_the_file(two_runs, tmp_path):
    path = two_runs[0] / "samples_bio_needle.jsonl"
    path.write_text(path.read_text() + json.dumps({"target_tokens": 4096, "depth_target": 0.5}) + "\n")
    with pytest.raises(ReportError, match=r"samples_bio_needle.jsonl sample 25: no number for score"):
        report(two_runs, tmp_path / "r")


# --------------------------------------------------------------------------------------------------
# cost
# --------------------------------------------------------------------------------------------------


def test_cost_arithmetic():
    # 1000 x (2000 x $0.15 + 60 x $0.60) / 1e6
    assert cost_per_1000(2000, 60, 0.15, 0.60) == pytest.approx(0.336)
    assert cost_per_1000(0, 0, 3.0, 15.0) == 0
    assert (money(1234.5), money(0.042), money(0.336)) == ("$1,234.50", "$0.0420", "$0.3360")


def test_cost_table(tiny_model, tmp_path):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_model / "tokenizer.json"))
    prompts = {4096: ["Ada Lovelace was born in London.", "x " * 50], 8192: ["The analytical engine " * 20]}
    counts = {t: [len(tok.encode(p, add_special_tokens=False).ids) for p in ps] for t, ps in prompts.items()}
    prices = [
        {"model": "tiny", "tokenizer": str(tiny_model), "input_per_mtok": 2.5, "output_per_mtok": 10.0},
        {
            "model": "hub",
            "tokenizer": "raft-tests/not-in-any-cache",
            "input_per_mtok": 0.1,
            "output_per_mtok": 0.2,
        },
        {
            "model": "gone",
            "tokenizer": str(tmp_path / "no-such-folder"),
            "input_per_mtok": 1,
            "output_per_mtok": 1,
        },
    ]
    (tmp_path / "broken.json").write_text("{}")
    prices.append(
        {
            "model": "broken",
            "tokenizer": str(tmp_path / "broken.json"),
            "input_per_mtok": 1,
            "output_per_mtok": 1,
        }
    )
    md = write_cost_table(prompts, prices, output_tokens=40, folder=tmp_path / "cost")
    assert md == tmp_path / "cost" / "cost.md"
    data = json.loads((tmp_path / "cost" / "cost.json").read_text())
    tiny, hub, gone, broken = data["models"]
    for t, c in counts.items():
        mean = sum(c) / len(c)
        assert tiny["mean_input_tokens"][str(t)] == pytest.approx(mean)
        assert tiny["cost_per_1000"][str(t)] == pytest.approx(1000 * (mean * 2.5 + 40 * 10.0) / 1e6)
    # offline, a hub id cannot load: reported, never guessed
    assert hub["error"] == OFFLINE and "cost_per_1000" not in hub and "mean_input_tokens" not in hub
    assert gone["error"] == OFFLINE and "cannot load tokenizer" in gone["detail"]
    assert broken["error"].startswith("tokenizer not loadable (cannot load tokenizer")  # there, but broken
    lines = md.read_text().splitlines()
    assert "| model | tokenizer | $ / Mtok in | $ / Mtok out | 4k | 8k |" in lines
    tiny_cost = {t: 1000 * (sum(c) / len(c) * 2.5 + 40 * 10.0) / 1e6 for t, c in counts.items()}
    assert (
        f"| tiny | {tiny_model} | 2.5 | 10 | {money(tiny_cost[4096])} | {money(tiny_cost[8192])} |" in lines
    )
    assert f"| hub | raft-tests/not-in-any-cache | 0.1 | 0.2 | {OFFLINE} |  |" in lines
