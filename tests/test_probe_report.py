"""The in2_probe ("lost in the middle" position probe) report (raft.kinds.in2.report), on result
folders built by hand as raft.evaluate writes them for the in2_probe task."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from raft.evaluate import ReportError, load_run, report, report_plots
from raft.kinds.bio_needle import plots as bio_plots
from raft.kinds.in2 import plots as probe_plots
from raft.kinds.in2.html import probe_samples_html
from raft.kinds.in2.numbers import (
    n_bins,
    position_by_run,
    position_lines,
    position_matrix,
    probe_summary,
    summary_tables,
)

REPO = Path(__file__).resolve().parent.parent
LENGTHS = (4096, 8192, 16384)
N = 10
PROBES = ("document", "structured", "code")
BASE, TUNED = "Mistral-7B-Instruct (16-bit)", "Mistral-7B-Instruct + in2 (16-bit)"


def right(length: int, b: int, probe: str, k: int, tuned: bool) -> int:
    """The made-up EM of a sample: lost in the middle (the edge bins always right, the middle ones in
    a pattern over length, probe, sample and bin); the fine-tuned run gets some of those right too."""
    fails = 0 < b < N - 1 and (2 * LENGTHS.index(length) + PROBES.index(probe) + k + b) % 4 != 0
    return int(not fails or (tuned and (k == 0 or b % 3 == 0)))


def sample(doc_id: int, length: int, b: int, probe: str, k: int, tuned: bool) -> dict:
    em = right(length, b, probe, k, tuned)
    return {
        "doc_id": doc_id,
        "probe": probe,
        "target_tokens": length,
        "context_tokens": length - 21,
        "bin": b,
        "depth": (b + 0.25 + 0.5 * k) / N,
        "question": f"What is the value of key <k{doc_id}>?",
        "answer": f"v{doc_id}",
        "response": f"v{doc_id}" if em else "<script>alert(1)</script> " + "no idea " * 60 * k,
        "em": em,
        "f1": float(em) if em else 0.25 * k,
    }


def rows_of(tuned: bool, skip_cell=None) -> list[dict]:
    cells = [(t, b, p, k) for t in LENGTHS for b in range(N) for p in PROBES for k in range(2)]
    return [sample(i, t, b, p, k, tuned) for i, (t, b, p, k) in enumerate(cells) if (t, b) != skip_cell]


def mean(xs) -> float:
    xs = list(xs)
    return sum(xs) / len(xs)


def probe_run(
    folder: Path, tuned: bool, label: str | None = None, samples: bool = True, skip_cell=None
) -> Path:
    """An in2_probe result folder: results.json (metrics from its samples, a raft block) and
    samples_in2_probe.jsonl: 3 lengths x 10 bins x 3 probes x 2 samples."""
    rows = rows_of(tuned, skip_cell)
    metrics = {
        "alias": "in2_probe",
        "em,none": mean(r["em"] for r in rows),
        "em_stderr,none": "N/A",
        "f1,none": mean(r["f1"] for r in rows),
        **{
            f"em_{p},none": mean(r["em"] for r in rows if r["probe"] == p) for p in ("document", "structured")
        },
        "em_code,none": None,  # as if the task had no code probe: taken from results.json, shown as a dash
        **{f"em_bin{b},none": mean(r["em"] for r in rows if r["bin"] == b) for b in range(N)},
    }
    info = {"label": label or (TUNED if tuned else BASE), "model": "mistralai/Mistral-7B-Instruct-v0.2",
            "adapter": "outputs/in2" if tuned else "", "finetuned": tuned, "precision": "16-bit"}  # fmt: skip
    folder.mkdir(parents=True)
    record = {"results": {"in2_probe": metrics}, "n-samples": {"in2_probe": {"original": len(rows), "effective": len(rows)}}, "raft": info}  # fmt: skip
    (folder / "results.json").write_text(json.dumps(record))
    if samples:
        (folder / "samples_in2_probe.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def two_runs(tmp_path) -> list[Path]:
    return [probe_run(tmp_path / "base", tuned=False), probe_run(tmp_path / "tuned", tuned=True)]


class _KeepFigures:
    """pyplot, except that close() keeps the figure: what was drawn can be read back."""

    def __init__(self, plt) -> None:
        self._plt, self.figures = plt, []

    def __getattr__(self, name):
        return getattr(self._plt, name)

    def close(self, fig) -> None:
        self.figures.append(fig)


@pytest.fixture
def drawn(monkeypatch) -> _KeepFigures:
    keep = _KeepFigures(bio_plots.pyplot())
    monkeypatch.setattr(bio_plots, "pyplot", lambda: keep)
    monkeypatch.setattr(probe_plots, "pyplot", lambda: keep)
    monkeypatch.setattr(report_plots, "pyplot", lambda: keep)  # draw_heatmap, shared by the kinds
    yield keep
    for fig in keep.figures:
        keep._plt.close(fig)


# --------------------------------------------------------------------------------------------------


def test_load_run_reads_a_probe_folder(two_runs):
    run = load_run(two_runs[0])
    assert (
        run.metrics == {} and run.samples == {} and run.apart.keys() == {"in2_probe"}
    )  # not in the RAFT table, though it has an f1
    probe = run.apart["in2_probe"]
    assert probe["n"] == 180 and math.isnan(probe["em_code"]) and "em_stderr" not in probe
    assert len(run.apart_samples["in2_probe"]) == 180 and n_bins((run, "in2_probe")) == N

    # a row as lm_eval --log_samples writes it: the doc, the filtered reply, the metrics at the top
    raw = {"doc_id": 7, "doc": {"probe": "code", "target_tokens": 4096, "bin": 3, "bins": 12, "question": "q",
                                "answer": "a", "prompt": "the long context"},
           "filtered_resps": [["a"]], "em": 1.0, "f1": 1.0}  # fmt: skip
    with (two_runs[0] / "samples_in2_probe.jsonl").open("a") as f:
        f.write(json.dumps(raw) + "\n")
    last = load_run(two_runs[0]).apart_samples["in2_probe"][-1]
    got = (last["doc_id"], last["probe"], last["bin"], last["response"], last["em"])
    assert got == (7, "code", 3, "a", 1.0) and "prompt" not in last  # the long context is not kept
    assert n_bins((load_run(two_runs[0]), "in2_probe")) == 12  # a doc's bins is N (more than em_bin0..9)


def test_matrix_and_lines_are_the_samples_means(tmp_path):
    folder = probe_run(tmp_path / "base", tuned=False, skip_cell=(8192, 4))
    samples = load_run(folder).apart_samples["in2_probe"]
    lengths, bins, matrix = position_matrix(samples)
    assert lengths == list(LENGTHS) and bins == list(range(N))
    for b in range(N):
        for j, t in enumerate(LENGTHS):
            if (t, b) == (8192, 4):
                assert math.isnan(matrix[b][j])  # no sample: blank, not 0
            else:
                want = mean(right(t, b, p, k, False) for p in PROBES for k in range(2))
                assert matrix[b][j] == pytest.approx(want), (t, b)
    assert matrix[0][0] == 1 and 0 < matrix[5][2] < 1

    lines = position_lines(samples, "structured")
    assert list(lines) == list(LENGTHS) and [b for b, _ in lines[8192]] == [0, 1, 2, 3, 5, 6, 7, 8, 9]
    for t, points in lines.items():
        for b, v in points:
            assert v == pytest.approx(mean(right(t, b, "structured", k, False) for k in range(2))), (t, b)


def test_the_figures_draw_those_numbers(two_runs, tmp_path, drawn):
    runs = [load_run(f) for f in two_runs]
    entry = (runs[1], "in2_probe")
    samples = runs[1].apart_samples["in2_probe"]

    probe_plots.plot_positions(entry, tmp_path / "p.png")
    fig = drawn.figures[-1]
    assert [ax.get_title() for ax in fig.axes] == [
        "all probes",
        "document probe",
        "structured probe",
        "code probe",
    ]
    for ax, probe in zip(fig.axes, (None, *PROBES), strict=True):
        lines = position_lines(samples, probe)
        assert [line.get_label() for line in ax.get_lines()] == ["4k", "8k", "16k"]
        for line, t in zip(ax.get_lines(), LENGTHS, strict=True):
            assert list(line.get_xdata()) == pytest.approx([100 * (b + 0.5) / N for b, _ in lines[t]])
            assert list(line.get_ydata()) == pytest.approx([v for _, v in lines[t]])

    probe_plots.plot_probe_heatmap(entry, tmp_path / "h.png")
    image = drawn.figures[-1].axes[0].images[0].get_array()
    matrix = position_matrix(samples)[2]
    assert len(image) == N and all(
        list(got) == pytest.approx(want) for got, want in zip(image.tolist(), matrix, strict=True)
    )
    assert [t.get_text() for t in drawn.figures[-1].axes[0].get_yticklabels()][:2] == ["0-10%", "10-20%"]

    probe_plots.plot_position_comparison(runs, tmp_path / "c.png")
    for ax, probe in zip(drawn.figures[-1].axes, (None, *PROBES), strict=True):
        base, tuned = ax.get_lines()
        assert (base.get_label(), base.get_linestyle(), tuned.get_label(), tuned.get_linestyle()) == (BASE, "--", TUNED, "-")  # fmt: skip
        pooled = position_by_run(runs, probe)
        assert list(tuned.get_ydata()) == pytest.approx([v for _, v in pooled[TUNED]])


def test_position_by_run_of_two_runs(two_runs):
    runs = [load_run(f) for f in two_runs]
    lines = position_by_run(runs)
    for label, tuned in ((BASE, False), (TUNED, True)):
        want = [
            mean(right(t, b, p, k, tuned) for t in LENGTHS for p in PROBES for k in range(2))
            for b in range(N)
        ]
        assert [b for b, _ in lines[label]] == list(range(N))
        assert [v for _, v in lines[label]] == pytest.approx(want)
    assert lines[BASE][0][1] == lines[BASE][-1][1] == 1  # the edges: found
    assert all(t >= b for (_, b), (_, t) in zip(lines[BASE], lines[TUNED], strict=True))
    code = position_by_run(runs, "code")[BASE]
    assert code[4][1] == pytest.approx(mean(right(t, 4, "code", k, False) for t in LENGTHS for k in range(2)))


def test_summary_takes_results_json_then_the_samples(two_runs):
    runs = [load_run(f) for f in two_runs]
    rows = rows_of(False)
    s = probe_summary((runs[0], "in2_probe"))
    assert s["em"] == runs[0].apart["in2_probe"]["em"] and s["n"] == 180
    assert s["probes"]["document"] == pytest.approx(mean(r["em"] for r in rows if r["probe"] == "document"))
    assert math.isnan(s["probes"]["code"])  # null in results.json: results.json's word
    assert list(s["bins"]) == list(range(N)) and s["bins"][5] == pytest.approx(mean(r["em"] for r in rows if r["bin"] == 5))  # fmt: skip
    assert list(s["lengths"]) == ["4k", "8k", "16k"]  # from the samples (results.json has no em_<n>k)
    assert s["lengths"]["16k"] == pytest.approx(mean(r["em"] for r in rows if r["target_tokens"] == 16384))

    record = json.loads((two_runs[0] / "results.json").read_text())
    record["results"]["in2_probe"] = {"em,none": 0.5, "em_16k,none": 0.125}  # the rest: from the samples
    (two_runs[0] / "results.json").write_text(json.dumps(record))
    s = probe_summary((load_run(two_runs[0]), "in2_probe"))
    assert s["em"] == 0.5 and s["lengths"]["16k"] == 0.125 and s["n"] == 180
    assert s["f1"] == pytest.approx(mean(r["f1"] for r in rows))
    assert s["probes"]["code"] == pytest.approx(mean(r["em"] for r in rows if r["probe"] == "code"))

    (_, run_head, overall), (_, probe_head, probes), (_, _, bins), (_, _, lengths) = summary_tables(runs)
    assert run_head == ["run", "model", "precision", "weights", "em", "f1", "n"]
    assert overall[1][0] == TUNED and overall[1][3] == "fine-tuned" and overall[0][6] == "180"
    assert probe_head == ["probe", BASE, TUNED]
    assert [r[0] for r in probes] == ["document", "structured"]  # code: null in both results.json, left out
    assert [r[0] for r in bins][:2] == ["0: 0-10%", "1: 10-20%"] and len(bins) == N
    assert [r[0] for r in lengths] == ["4k", "8k", "16k"]


def test_probe_samples_page(two_runs):
    runs = [load_run(f) for f in two_runs]
    page = probe_samples_html(runs)
    body = page.split('<table id="samples">', 1)[1]
    assert body.count("<tr class=") == 360  # every sample of both runs
    assert set(re.findall(r'data-run="([^"]*)"', body)) == {BASE, TUNED}
    assert set(re.findall(r'data-probe="([^"]*)"', body)) == set(PROBES)
    for control in (
        'id="q"',
        'id="run"',
        'id="probe"',
        'id="length"',
        'id="bin"',
        'id="em"',
        'id="f1"',
        'id="count"',
    ):
        assert control in page
    assert (
        '<option value="structured">structured</option>' in page
        and '<option value="8192">8k</option>' in page
    )
    assert '<option value="3">3: 30-40%</option>' in page and '<option value="1">1 (right)</option>' in page
    heads = re.findall(r'<th data-num="\d">([^<]*)</th>', page)
    assert heads == [
        "run",
        "probe",
        "length",
        "context",
        "bin",
        "depth",
        "question",
        "answer",
        "response",
        "EM",
        "F1",
    ]
    assert "addEventListener('click'" in page and "function keep(r)" in page
    assert page.count("<script>") == 1 and "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "What is the value of key &lt;k3&gt;?" in page
    assert "<details><summary>" in page  # a long response is folded away
    assert "src=" not in page and "http" not in page  # self-contained
    row = re.search(r'<tr class="(\w+)" data-run="[^"]*" data-probe="code" data-length="16384" data-bin="4" data-em="(\d)"[^>]*>(.*?)</tr>', body)  # fmt: skip
    assert row and row.group(3).startswith(f"<td>{BASE}</td><td>code</td><td data-v=16384>16k</td>")
    assert row.group(1) == {"0": "zero", "1": "one"}[row.group(2)]
    assert page.count('class="summary"') == 4  # the summary tables at the top


def test_report_on_raft_bio_and_probe_folders(two_runs, tmp_path):
    from test_bio_report import bio_run, raft_run

    hotpot, bio = raft_run(tmp_path / "hotpot"), bio_run(tmp_path / "bio", tuned=False)
    paths = report([hotpot, bio, *two_runs], tmp_path / "r")
    names = {p.name for p in (tmp_path / "r").iterdir()}
    probe_files = {
        "probe_position.png", "probe_samples.html",
        "probe_position_Mistral-7B-Instruct_16-bit.png", "probe_position_Mistral-7B-Instruct_in2_16-bit.png",
        "probe_heatmap_Mistral-7B-Instruct_16-bit.png", "probe_heatmap_Mistral-7B-Instruct_in2_16-bit.png",
    }  # fmt: skip
    assert names == {"report.md", "f1.png", "samples.html", "bio_accuracy.png", "bio_samples.html",
                     "bio_heatmap_Llama-3.1-8B-Instruct_16-bit.png", *probe_files}  # fmt: skip
    assert set(paths.values()) == {tmp_path / "r" / n for n in names}
    for name in probe_files - {"probe_samples.html"}:
        png = tmp_path / "r" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000, name
    md = paths["table"].read_text()
    assert md.startswith("# RAFT evaluation\n\n| task | run |") and "in2_probe" not in md.split("## Bio")[0]
    assert md.index("## Bio needle-in-a-haystack") < md.index("## IN2 position probe (lost in the middle)")
    assert "### EM per probe type" in md and "### EM per position of the gold" in md and "| 0: 0-10% |" in md
    assert f"![{TUNED}: EM by position of the gold](probe_position_Mistral-7B-Instruct_in2_16-bit.png)" in md
    assert "![EM by position of the gold, runs side by side](probe_position.png)" in md
    assert paths["html"].read_text().count("<tr class=") == 2  # the RAFT page: RAFT samples alone
    assert paths["probe_html"].read_text().split('<table id="samples">')[1].count("<tr class=") == 360

    # one probe run alone: no RAFT or bio files, no side-by-side figure
    alone = report([two_runs[0]], tmp_path / "alone")
    assert set(alone) == {"table", "probe_html", "probe_position_Mistral-7B-Instruct_16-bit", "probe_heatmap_Mistral-7B-Instruct_16-bit"}  # fmt: skip
    assert alone["table"].read_text().startswith("# RAFT evaluation\n\n## IN2 position probe")
    # results.json without samples: the tables, no figure
    bare = report([probe_run(tmp_path / "bare", tuned=True, samples=False)], tmp_path / "bare_r")
    assert set(bare) == {"table", "probe_html"} and "| document | " in bare["table"].read_text()


def test_report_cli_on_probe_runs(two_runs, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "raft.evaluate", "report", *map(str, two_runs), "--out", str(tmp_path / "r")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (
        "## IN2 position probe" in proc.stdout
        and "probe_html: " in proc.stdout
        and "probe_position: " in proc.stdout
    )


@pytest.mark.parametrize(
    "row, message",
    [
        (
            {"probe": "code", "target_tokens": 4096, "em": 1},
            r"samples_in2_probe.jsonl sample 181: no number for bin",
        ),
        ({"target_tokens": 4096, "bin": 2, "em": 0}, r"samples_in2_probe.jsonl sample 181: no probe type"),
    ],
)
def test_bad_probe_sample_names_the_file(two_runs, tmp_path, row, message):
    path = two_runs[0] / "samples_in2_probe.jsonl"
    path.write_text(path.read_text() + json.dumps(row) + "\n")
    with pytest.raises(ReportError, match=message) as info:
        report(two_runs, tmp_path / "r")
    assert "\n" not in str(info.value)
