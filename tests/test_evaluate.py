"""python -m raft.evaluate: lm-eval runs written as results + samples, and the report over result folders."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raft.config import ConfigError, load_config
from raft.evaluate import ReportError, check, load_run, main, model_args, report, run_info, write_results
from raft.metrics import extract_answer, score
from raft.prompts import ANSWER_TAG

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv("RAFT_HOTPOT_PATH", raising=False)
    monkeypatch.delenv("RAFT_DOMAIN_DATA", raising=False)


@pytest.fixture
def hotpot_file(shared_data) -> Path:
    return shared_data / "hotpotqa" / "hotpot_dev_distractor_first100.json"


def cfg(*args: str):
    return load_config("evaluate", list(args))


def domain_jsonl(shared_data: Path, path: Path, n: int = 3) -> list[dict]:
    """A small raft_domain test split: fake-teacher questions about real text, gold = the next 3 words."""
    from raft.testing import fake_questions

    words = (
        (shared_data / "docs" / "rust_book_ch04-01-what-is-ownership.md").read_text(encoding="utf-8").split()
    )
    chunks = [" ".join(words[i : i + 50]) for i in range(0, 50 * 4 * n, 50)]
    rows = []
    for i in range(n):
        oracle, others = chunks[4 * i], chunks[4 * i + 1 : 4 * i + 4]
        question = re.sub(r"^\d+\.\s*", "", fake_questions(oracle, 1)[0])
        phrase = re.search(r"«(.+?)»", question).group(1)
        documents = [others[0], others[1], oracle, others[2]]
        assert sum(d.count(phrase) for d in documents) == 1
        rows.append(
            {
                "id": f"r{i}",
                "question": question,
                "documents": documents,
                "final_answer": " ".join(oracle.split(phrase, 1)[1].split()[:3]),
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


# --------------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------------


def test_recipe_loads_and_defaults_match_the_protocol():
    c = cfg("recipe=eval_hotpot", "model=meta-llama/Llama-3.1-8B-Instruct")
    assert c.max_new_tokens == 800 and c.tasks == ["raft_hotpot"] and c.apply_chat_template
    assert check(c) == ["raft_hotpot"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backend=tgi"], "backend"),
        (["backend=local-chat-completions"], "base_url"),
        (
            ["backend=local-chat-completions", "base_url=http://x/v1", "apply_chat_template=false"],
            "apply_chat_template",
        ),
        (["model=/no/such/model"], "/no/such/model"),
        (["adapter=/no/such/adapter"], "adapter_config.json"),
        (["tasks=[raft_hotpot,raft_domain]", "data=x.json"], "ambiguous"),
        (["tasks=[]"], "tasks"),
        (["limit=0"], "limit"),
        (["max_new_tokens=0"], "max_new_tokens"),
    ],
)
def test_bad_settings_fail_before_anything_loads(args, message):
    base = ["model=meta-llama/Llama-3.1-8B-Instruct"]
    with pytest.raises(ConfigError, match=re.escape(message)):
        check(cfg(*base, *args))


def test_model_args_per_backend(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 48}))
    hf = model_args(cfg("model=m", f"adapter={adapter}", "dtype=bfloat16"))
    assert hf == {"pretrained": "m", "dtype": "bfloat16", "peft": str(adapter)}
    vllm = model_args(cfg("model=m", f"adapter={adapter}", "backend=vllm", "load_in_4bit=true"))
    assert (
        vllm["lora_local_path"] == str(adapter)
        and vllm["max_lora_rank"] == 64
        and vllm["quantization"] == "bitsandbytes"
    )
    chat = model_args(cfg("model=m", "backend=local-chat-completions", "base_url=http://127.0.0.1:8000/v1/"))
    assert (
        chat["base_url"] == "http://127.0.0.1:8000/v1/chat/completions"
        and chat["tokenized_requests"] is False
    )
    assert chat["model"] == "m"
    # with a served LoRA module, its name is the model asked for
    assert (
        model_args(
            cfg("model=m", "adapter=raft-lora", "backend=local-chat-completions", "base_url=http://h/v1")
        )["model"]
        == "raft-lora"
    )


def test_unknown_task_and_missing_data_are_one_line_errors(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="unknown task 'hotpot'"):
        main(cfg(f"model={tiny_model}", "tasks=[hotpot]", f"output={tmp_path}"))
    with pytest.raises(ConfigError) as e:
        main(cfg(f"model={tiny_model}", "tasks=[raft_domain]", f"output={tmp_path}", "limit=1"))
    assert "RAFT_DOMAIN_DATA" in str(e.value) and "\n" not in str(e.value)
    # a hub id that cannot be fetched (tests run offline) fails in one line before lm-eval starts
    with pytest.raises(ConfigError, match="model=nobody/no-such-model: cannot load its config"):
        main(cfg("model=nobody/no-such-model", f"output={tmp_path}", "limit=1"))


def test_cli_error_exits_2_with_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "raft.evaluate", "model=/no/such/model", f"output={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "/no/such/model" in proc.stderr


# --------------------------------------------------------------------------------------------------
# evaluation runs
# --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_hf_run_writes_results_samples_and_recipe(tiny_model, hotpot_file, tmp_path):
    out = tmp_path / "base"
    main(cfg(f"model={tiny_model}", f"data={hotpot_file}", "limit=2", "max_new_tokens=8", f"output={out}"))
    data = json.loads((out / "results.json").read_text())
    c = cfg(f"model={tiny_model}", f"data={hotpot_file}", "limit=2", "max_new_tokens=8", f"output={out}")
    assert data["raft"] == run_info(c)
    assert data["raft"]["label"] == f"{tiny_model.name} (16-bit)" and data["raft"]["finetuned"] is False
    assert data["raft_config"]["max_new_tokens"] == 8
    rows = [json.loads(line) for line in (out / "samples_raft_hotpot.jsonl").read_text().splitlines()]
    questions = json.loads(hotpot_file.read_text())[:2]
    assert [r["question"] for r in rows] == [q["question"] for q in questions]
    assert [r["gold"] for r in rows] == [q["answer"] for q in questions]
    for r in rows:
        assert r["answer"] == extract_answer(r["output"])
        assert {k: r[k] for k in ("f1", "em", "answer_found")} == score(r["output"], r["gold"])
        assert r["type"] in ("bridge", "comparison")
    mean_f1 = sum(r["f1"] for r in rows) / len(rows)
    assert data["results"]["raft_hotpot"]["f1,none"] == pytest.approx(mean_f1)
    recipe = yaml.safe_load((out / "recipe.yaml").read_text())
    assert recipe["command"] == "evaluate" and recipe["limit"] == 2
    # the saved recipe reruns as it is
    assert load_config("evaluate", [f"recipe={out / 'recipe.yaml'}"]).model == str(tiny_model)

    # and the report renders from it
    paths = report([out], tmp_path / "report")
    assert str(tiny_model.name) in paths["table"].read_text()
    assert paths["html"].read_text().count("<tr class=") == 2


@pytest.mark.slow
def test_hf_4bit_with_adapter(tiny_model, hotpot_file, tmp_path, monkeypatch):
    import torch
    from bitsandbytes.nn import Linear4bit
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    import raft.evaluate as ev

    torch.manual_seed(0)
    peft_model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model), LoraConfig(r=8, target_modules="all-linear")
    )
    peft_model.save_pretrained(tmp_path / "adapter")
    real, built = ev._hf_4bit, []

    def spy(c):
        built.append(real(c))
        return built[-1]

    monkeypatch.setattr(ev, "_hf_4bit", spy)
    out = tmp_path / "q4"
    main(cfg(f"model={tiny_model}", f"adapter={tmp_path / 'adapter'}", "load_in_4bit=true", f"data={hotpot_file}",
             "limit=1", "max_new_tokens=2", f"output={out}", "label=tiny raft q4"))  # fmt: skip
    data = json.loads((out / "results.json").read_text())
    assert (
        data["raft"]["precision"] == "4-bit"
        and data["raft"]["finetuned"] is True
        and data["raft"]["label"] == "tiny raft q4"
    )
    assert data["results"]["raft_hotpot"]["answer_found,none"] == 0.0  # two tokens cannot hold the tag
    model = built[0].model  # what lm-eval generated with: NF4 weights under the LoRA adapter
    assert any(isinstance(m, Linear4bit) for m in model.modules())
    assert any("lora_A" in name for name, _ in model.named_modules())


@pytest.mark.slow
def test_local_chat_completions_run_scores_a_perfect_server(teacher, shared_data, tmp_path):
    rows = domain_jsonl(shared_data, tmp_path / "test.jsonl")
    out = tmp_path / "served"
    main(cfg("model=fake-teacher", "backend=local-chat-completions", f"base_url={teacher.base_url}", "tasks=[raft_domain]",
             f"data={tmp_path / 'test.jsonl'}", f"output={out}", "num_concurrent=2"))  # fmt: skip
    data = json.loads((out / "results.json").read_text())
    assert data["results"]["raft_domain"]["f1,none"] == 1.0
    samples = [json.loads(line) for line in (out / "samples_raft_domain.jsonl").read_text().splitlines()]
    assert [s["answer"] for s in samples] == [r["final_answer"] for r in rows]
    assert all(ANSWER_TAG in s["output"] for s in samples)
    assert teacher.stats.by_kind.get("student") == len(rows)


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
