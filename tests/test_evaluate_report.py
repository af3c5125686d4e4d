"""python -m raft.evaluate report: result folders -> report.md, f1.png, samples.html, and its command line."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from raft.config import load_config
from raft.evaluate import ReportError, load_run, report, run_info, write_results

REPO = Path(__file__).resolve().parent.parent


def cfg(*args: str):
    return load_config("evaluate", list(args))


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------


def fake_run(
    folder: Path, model: str, f1: float, adapter: str = "", four_bit: bool = False, task: str = "raft_hotpot"
) -> Path:
    """A result folder as raft.evaluate writes it, from an lm-eval-shaped results dict."""
    samples = [
        {"doc_id": 0, "doc": {"id": "a", "question": "Who <b>wrote</b> it?", "answer": "Ann & Bob", "type": "bridge"}, "target": "Ann & Bob",
         "filtered_resps": ["Thinking <script>alert(1)</script>\n<ANSWER>: Ann & Bob"], "f1": 1.0, "em": 1.0, "answer_found": 1.0},
        {"doc_id": 1, "doc": {"id": "b", "question": "Yes or no?", "answer": "yes", "type": "comparison"}, "target": "yes",
         "filtered_resps": ["no idea"], "f1": 0.0, "em": 0.0, "answer_found": 0.0},
    ]  # fmt: skip
    results = {
        "results": {
            task: {
                "alias": task,
                "f1,none": f1,
                "f1_stderr,none": 0.015 if adapter else "N/A",
                "em,none": f1 / 2,
                "answer_found,none": 0.9,
            }
        },
        "n-samples": {task: {"original": 1000, "effective": 1000}},
        "config": {"model": "hf"},
        "samples": {task: samples},
    }
    args = [f"model={model}", f"output={folder}", f"load_in_4bit={str(four_bit).lower()}"] + (
        [f"adapter={adapter}"] if adapter else []
    )
    write_results(results, cfg(*args))
    return folder


@pytest.fixture
def four_runs(tmp_path) -> list[Path]:
    m = "meta-llama/Llama-3.1-8B-Instruct"
    return [
        fake_run(tmp_path / "base16", m, 0.40),
        fake_run(tmp_path / "raft16", m, 0.60, adapter="outputs/llama31_8b"),
        fake_run(tmp_path / "base4", m, 0.36, four_bit=True),
        fake_run(tmp_path / "raft4", m, 0.57, adapter="outputs/llama31_8b_q4", four_bit=True),
        fake_run(tmp_path / "other", "meta-llama/Meta-Llama-3-8B-Instruct", 0.30),
    ]


def _table(md: str) -> dict[str, dict[str, str]]:
    """run label -> {column header: cell} of the Markdown table."""
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    split = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    header, body = split[0], split[1:]
    return {cells[1]: dict(zip(header, cells, strict=True)) for cells in body}


def test_report_table_plot_and_html(four_runs, tmp_path):
    paths = report(four_runs, tmp_path / "report")
    rows = _table(paths["table"].read_text())
    assert len(rows) == 5
    base16 = rows["Llama-3.1-8B-Instruct (16-bit)"]
    raft16 = rows["Llama-3.1-8B-Instruct + llama31_8b (16-bit)"]
    base4 = rows["Llama-3.1-8B-Instruct (4-bit)"]
    raft4 = rows["Llama-3.1-8B-Instruct + llama31_8b_q4 (4-bit)"]
    assert (base16["precision"], base16["weights"], base16["F1"]) == ("16-bit", "base", "0.4000")
    assert base16["F1 vs base"] == "" and base16["4-bit / 16-bit F1"] == ""
    assert raft16["weights"] == "fine-tuned" and raft16["F1 vs base"] == "+50.0%"  # (0.60 - 0.40) / 0.40
    assert raft4["F1 vs base"] == "+58.3%"  # against the 4-bit base: (0.57 - 0.36) / 0.36
    assert (
        raft4["4-bit / 16-bit F1"] == "95.0%" and base4["4-bit / 16-bit F1"] == "90.0%"
    )  # 0.57/0.60, 0.36/0.40
    assert (
        rows["Meta-Llama-3-8B-Instruct (16-bit)"]["F1 vs base"] == ""
    )  # no fine-tuned run: nothing to compare
    assert (raft16["EM"], raft16["answer_found"], raft16["n"]) == ("0.3000", "0.9000", "1000")
    assert raft16["F1 s.e."] == "0.0150" and base16["F1 s.e."] == ""
    assert raft16["model"] == "meta-llama/Llama-3.1-8B-Instruct"

    png = paths["plot"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000

    page = paths["html"].read_text()
    assert page.count("<tr class=") == 2 * len(four_runs)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Who &lt;b&gt;wrote&lt;/b&gt; it?" in page and "Ann &amp; Bob" in page
    assert page.count("<script>") == 1  # only the page's own sorting / filtering code
    assert 'data-f1="0.0"' in page and 'data-found="0"' in page


def test_report_cli(four_runs, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "raft.evaluate", "report", *map(str, four_runs[:2]), "--out", str(tmp_path / "r")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "+50.0%" in proc.stdout
    assert {p.name for p in (tmp_path / "r").iterdir()} == {"report.md", "f1.png", "samples.html"}


def test_report_reads_what_write_results_wrote(four_runs):
    run = load_run(four_runs[1])
    assert run.info == run_info(cfg("model=meta-llama/Llama-3.1-8B-Instruct", "adapter=outputs/llama31_8b"))
    assert run.metrics["raft_hotpot"]["f1"] == 0.60
    first, second = run.samples["raft_hotpot"]
    assert first["answer"] == "Ann & Bob" and first["gold"] == "Ann & Bob" and first["type"] == "bridge"
    assert second["answer"] == "no idea" and second["answer_found"] == 0.0


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "results.json").unlink(), "results.json: missing"),
        (lambda d: (d / "results.json").write_text('{"results": {'), "results.json: not valid JSON"),
        (lambda d: (d / "results.json").write_text("[1, 2]"), "results.json: not a JSON object"),
        (lambda d: (d / "results.json").write_text('{"raft": {}}'), "results.json: no 'results'"),
        (
            lambda d: (d / "results.json").write_text(
                '{"results": {"raft_hotpot": {"f1,none": "high"}}, "raft": {"label": "x", "model": "m", "finetuned": false, "precision": "16-bit"}}'
            ),
            "not numbers",
        ),
        (
            lambda d: (d / "samples_raft_hotpot.jsonl").write_text(
                '{"question": "q", "gold": "g", "output": "o"}\n{broken\n'
            ),
            "samples_raft_hotpot.jsonl line 2",
        ),
    ],
)
def test_report_errors_name_the_file(four_runs, tmp_path, damage, message):
    damage(four_runs[0])
    with pytest.raises(ReportError, match=re.escape(message)) as e:
        report(four_runs, tmp_path / "report")
    assert "\n" not in str(e.value) and str(four_runs[0]) in str(e.value)


def test_report_cli_error_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "raft.evaluate", "report", str(tmp_path / "nothing")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "nothing" in proc.stderr


def test_report_groups_a_hub_id_with_its_local_copy(tmp_path):
    runs = [
        fake_run(tmp_path / "base", "meta-llama/Llama-3.1-8B-Instruct", 0.5),
        fake_run(tmp_path / "raft", "/models/Llama-3.1-8B-Instruct", 0.6, adapter="outputs/raft"),
    ]
    rows = _table(report(runs, tmp_path / "report")["table"].read_text())
    assert rows["Llama-3.1-8B-Instruct + raft (16-bit)"]["F1 vs base"] == "+20.0%"


@pytest.mark.parametrize(
    ("flag", "named"),
    [
        (["--output", "X"], "--output"),
        (["--output=X"], "--output"),
        (["-o", "X"], "-o"),
        (["--outdir"], "--outdir"),
    ],
)
def test_report_cli_unknown_option_is_named(four_runs, tmp_path, flag, named):
    proc = subprocess.run(
        [sys.executable, "-m", "raft.evaluate", "report", str(four_runs[0]), *flag, "--out", str(tmp_path / "r")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    error, usage = proc.stderr.strip().splitlines()
    assert error == f"raft.evaluate report: error: unknown option {named}"
    assert usage.startswith("usage: python -m raft.evaluate report") and "--out DIR" in usage
    assert not (tmp_path / "r").exists() and proc.stdout == ""


class _Tables(HTMLParser):
    """Every <table> of a page: its id and its rows, each a list of (tag, text) per cell."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self.cell: list[str] | None = None
        self.pre: list[str] = []
        self.in_pre = False

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append({"id": dict(attrs).get("id"), "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self.cell = [tag, ""]
        elif tag == "pre":
            self.in_pre, self.pre = True, [*self.pre, ""]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1]["rows"][-1].append(tuple(self.cell))
            self.cell = None
        elif tag == "pre":
            self.in_pre = False

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[1] += data
        if self.in_pre:
            self.pre[-1] += data


def test_report_html_summary_is_a_table(four_runs, tmp_path):
    record = json.loads((four_runs[1] / "results.json").read_text())
    record["raft"]["label"] = "raft <b>16</b> & co | x"  # escaped in HTML, '|' kept as it is
    (four_runs[1] / "results.json").write_text(json.dumps(record))
    paths = report(four_runs, tmp_path / "report")
    md = paths["table"].read_text()
    page = paths["html"].read_text()
    parser = _Tables()
    parser.feed(page)
    summary = parser.tables[0]
    header, *body = summary["rows"]
    md_header = [c.strip() for c in md.splitlines()[2].strip("|").split("|")]
    assert [text for _, text in header] == md_header and {tag for tag, _ in header} == {"th"}
    assert len(body) == len(four_runs) and all(tag == "td" for row in body for tag, _ in row)
    labels = {row[1][1] for row in body}
    assert labels == {load_run(f).info["label"] for f in four_runs}
    assert "raft <b>16</b> & co | x" in labels and "raft &lt;b&gt;16&lt;/b&gt; &amp; co | x" in page
    # every cell as in report.md (where '|' is written '\|')
    md_rows = {line for line in md.splitlines()[4:] if line.startswith("| ")}
    assert {"| " + " | ".join(t.replace("|", "\\|") for _, t in row) + " |" for row in body} == md_rows
    assert parser.tables[1]["id"] == "samples"
    assert not any("| task |" in pre or "---|" in pre for pre in parser.pre)  # no Markdown in a <pre>
    assert "| task |" not in page


def test_report_shows_the_oracle_split_and_a_dash_for_an_empty_one(tmp_path):
    """raft_domain runs get 'oracle share', 'F1 oracle', 'F1 no oracle' columns; a split without
    questions is NaN in lm-eval's results, null in results.json and "—" in the report."""
    m = "meta-llama/Llama-3.1-8B-Instruct"
    base = fake_run(tmp_path / "base", m, 0.40, task="raft_domain")
    tuned = fake_run(tmp_path / "raft", m, 0.60, adapter="outputs/raft", task="raft_domain")
    for folder, split in (
        (base, {"has_oracle": 0.8, "f1_oracle": 0.45, "f1_no_oracle": 0.2, "em_oracle": 0.3, "em_no_oracle": 0.1}),
        (tuned, {"has_oracle": 1.0, "f1_oracle": 0.6, "f1_no_oracle": float("nan"), "em_oracle": 0.3, "em_no_oracle": float("nan")}),
    ):  # fmt: skip
        record = json.loads((folder / "results.json").read_text())
        record["results"]["raft_domain"].update({f"{k},none": v for k, v in split.items()})
        samples = [{"doc_id": 0, "doc": {"question": "q", "final_answer": "a", "has_oracle": False}, "target": "a",
                    "filtered_resps": ["<ANSWER>: a"], "f1": 1.0, "em": 1.0, "answer_found": 1.0}]  # fmt: skip
        write_results({**record, "samples": {"raft_domain": samples}}, cfg(*_args(record)))
    text = (tuned / "results.json").read_text()
    assert "NaN" not in text and '"f1_no_oracle,none": null' in text
    assert json.loads((tuned / "samples_raft_domain.jsonl").read_text())["has_oracle"] is False

    # a folder of the lm_eval CLI keeps NaN as lm-eval writes it
    cli = tmp_path / "cli"
    cli.mkdir()
    record = json.loads(text)
    record.pop("raft")
    record["results"]["raft_domain"]["f1_no_oracle,none"] = float("nan")
    record["config"] = {"model": "hf", "model_args": f"pretrained={m},peft=outputs/other"}
    (cli / "results_2025.json").write_text(json.dumps(record))
    assert "NaN" in (cli / "results_2025.json").read_text()
    hotpot = fake_run(tmp_path / "hotpot", m, 0.5)

    paths = report([base, tuned, cli, hotpot], tmp_path / "report")
    lines = [line for line in paths["table"].read_text().splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    rows = {(r[0], r[1]): dict(zip(cells[0], r, strict=True)) for r in cells[1:]}
    name = "Llama-3.1-8B-Instruct"
    b, t = rows["raft_domain", f"{name} (16-bit)"], rows["raft_domain", f"{name} + raft (16-bit)"]
    c, h = rows["raft_domain", f"{name} + other (16-bit)"], rows["raft_hotpot", f"{name} (16-bit)"]
    assert (b["oracle share"], b["F1 oracle"], b["F1 no oracle"]) == ("0.8000", "0.4500", "0.2000")
    assert (t["oracle share"], t["F1 oracle"], t["F1 no oracle"]) == ("1.0000", "0.6000", "—")
    assert c["F1 no oracle"] == "—" and c["F1"] == "0.6000"
    assert (h["oracle share"], h["F1 oracle"], h["F1 no oracle"]) == ("", "", "")  # not a raft_domain task
    page = paths["html"].read_text()
    assert "<th>F1 no oracle</th>" in page and "<td>—</td>" in page
    assert load_run(tuned).metrics["raft_domain"]["f1_oracle"] == 0.6

    # without a raft_domain run the table is as before
    only_hotpot = report([hotpot], tmp_path / "report2")["table"].read_text()
    assert "oracle" not in only_hotpot and "F1 no oracle" in lines[0]


def _domain_run(folder: Path, adapter: str, replies: list[tuple[int | None, bool, float]], extra: dict) -> Path:
    """A raft_domain result folder whose samples are (oracle_index, answerable, f1) and whose results.json
    has the metrics ``extra`` besides F1 / EM / answer_found."""
    fake_run(folder, "meta-llama/Llama-3.1-8B-Instruct", 0.5, adapter=adapter, task="raft_domain")
    record = json.loads((folder / "results.json").read_text())
    record["results"]["raft_domain"].update({f"{k},none": v for k, v in extra.items()})
    samples = [
        {"doc_id": i, "doc": {"question": f"q{i}", "final_answer": "a", "oracle_index": at, "answerable": ok,
                              "has_oracle": at is not None if ok else None},
         "target": "a", "filtered_resps": ["<ANSWER>: a"], "f1": f1, "em": f1, "answer_found": 1.0}
        for i, (at, ok, f1) in enumerate(replies)
    ]  # fmt: skip
    write_results({**record, "samples": {"raft_domain": samples}}, cfg(*_args(record)))
    return folder


def test_report_plots_f1_by_oracle_position_and_shows_decline_rates(tmp_path):
    """Runs whose raft_domain samples say where the oracle was get oracle_position.png and a section;
    the decline rates become columns of the table when a run has them."""
    replies = [(0, True, 1.0), (0, True, 0.0), (2, True, 1.0), (None, True, 0.0), (None, False, 1.0)]
    base = _domain_run(tmp_path / "base", "", replies, {"decline_unanswerable": 1.0, "decline_answerable": 0.25})
    tuned = _domain_run(
        tmp_path / "tuned", "outputs/raft", [(1, True, 1.0), (3, False, 0.0)],
        {"decline_unanswerable": None, "decline_answerable": 0.0},
    )  # fmt: skip
    assert json.loads((base / "samples_raft_domain.jsonl").read_text().splitlines()[4])["answerable"] is False
    hotpot = fake_run(tmp_path / "hotpot", "meta-llama/Meta-Llama-3-8B-Instruct", 0.4)
    paths = report([base, tuned, hotpot], tmp_path / "report")
    assert paths["oracle_position"] == tmp_path / "report" / "oracle_position.png"
    png = paths["oracle_position"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    md = paths["table"].read_text()
    assert md.index("| task |") < md.index("## F1 by oracle position")  # right after the summary table
    assert "![F1 by oracle position](oracle_position.png)" in md
    section = md[md.index("## F1 by oracle position") :]
    per_run = [line for line in section.splitlines() if line.startswith("- ")]
    assert per_run == [  # index 3: an unanswerable row's; the rows without the oracle left out
        "- Llama-3.1-8B-Instruct (16-bit) (base): 0 0.5000, 2 1.0000 (n 3)",
        "- Llama-3.1-8B-Instruct + raft (16-bit) (fine-tuned): 1 1.0000 (n 1)",
    ]
    assert "| " not in section  # the table rows of report.md are the summary table's alone
    rows = _table(md)
    b, t = rows["Llama-3.1-8B-Instruct (16-bit)"], rows["Llama-3.1-8B-Instruct + raft (16-bit)"]
    assert (b["decline unanswerable"], b["decline answerable"]) == ("1.0000", "0.2500")
    assert (t["decline unanswerable"], t["decline answerable"]) == ("—", "0.0000")
    h = rows["Meta-Llama-3-8B-Instruct (16-bit)"]
    assert (h["decline unanswerable"], h["decline answerable"]) == ("", "")  # raft_hotpot has none
    assert "<th>decline answerable</th>" in paths["html"].read_text()
    assert load_run(base).metrics["raft_domain"]["decline_answerable"] == 0.25

    # runs without oracle_index in their raft_domain samples (or without raft_domain): no plot, no section,
    # and no decline columns without a decline rate
    only = report([hotpot], tmp_path / "report2")
    assert set(only) == {"table", "plot", "html"} and "oracle position" not in only["table"].read_text()
    plain = fake_run(tmp_path / "plain", "meta-llama/Llama-3.1-8B-Instruct", 0.5, task="raft_domain")
    again = report([plain, hotpot], tmp_path / "report3")
    text = again["table"].read_text()
    assert "oracle_position" not in again and "F1 by oracle position" not in text and "decline" not in text
    assert not (tmp_path / "report3" / "oracle_position.png").exists()


def _args(record: dict) -> list[str]:
    """The raft.evaluate settings a results.json was written with (for rewriting it)."""
    c = record["raft_config"]
    return [
        f"model={c['model']}",
        f"output={c['output']}",
        f"load_in_4bit={str(c['load_in_4bit']).lower()}",
    ] + ([f"adapter={c['adapter']}"] if c["adapter"] else [])
