"""python -m raft.evaluate: lm-eval runs written as results + samples (the report: test_evaluate_report.py)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raft.config import ConfigError, load_config
from raft.evaluate import check, main, model_args, report, run_info
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


def domain_jsonl(
    shared_data: Path, path: Path, n: int = 3, no_oracle: tuple[int, ...] | None = None
) -> list[dict]:
    """A small raft_domain test split: fake-teacher questions about real text, gold = the next 3 words.

    With ``no_oracle`` (row numbers, possibly none), rows as raft.generate writes them: ``chunk_id``
    and ``oracle_index`` (null for those rows, whose oracle is replaced by another chunk), and the
    chunk pool in ``chunks.jsonl`` beside the file."""
    from raft.testing import fake_questions

    words = (
        (shared_data / "docs" / "rust_book_ch04-01-what-is-ownership.md").read_text(encoding="utf-8").split()
    )
    chunks = [" ".join(words[i : i + 50]) for i in range(0, 50 * 5 * n, 50)]
    rows = []
    for i in range(n):
        oracle, others = chunks[4 * i], chunks[4 * i + 1 : 4 * i + 4]
        question = re.sub(r"^\d+\.\s*", "", fake_questions(oracle, 1)[0])
        phrase = re.search(r"«(.+?)»", question).group(1)
        documents = [others[0], others[1], oracle, others[2]]
        assert sum(d.count(phrase) for d in documents) == 1
        row = {
            "id": f"r{i}",
            "question": question,
            "documents": documents,
            "final_answer": " ".join(oracle.split(phrase, 1)[1].split()[:3]),
        }
        if no_oracle is not None:
            row.update(chunk_id=f"c{4 * i}", oracle_index=2)
            if i in no_oracle:
                assert phrase not in chunks[4 * n + i]
                row.update(oracle_index=None, documents=[others[0], others[1], chunks[4 * n + i], others[2]])
        rows.append(row)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    if no_oracle is not None:
        pool = [{"id": f"c{j}", "text": t, "source": "rust.md", "title": ""} for j, t in enumerate(chunks)]
        (path.parent / "chunks.jsonl").write_text(
            "".join(json.dumps(c) + "\n" for c in pool), encoding="utf-8"
        )
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


def test_vllm_bounds_the_context_and_batches_everything():
    """vLLM gets max_model_len (not the model's 131k context) and batch_size=auto; hf is unchanged."""
    from raft.evaluate import batch_size, vllm_max_model_len

    vllm = cfg("model=m", "backend=vllm")
    assert model_args(vllm) == {"pretrained": "m", "dtype": "auto", "max_model_len": 8192}  # nothing computed
    assert model_args(vllm, 1000)["max_model_len"] == 2048  # 1,000 prompt + 800 new tokens, up to 256
    assert vllm_max_model_len(vllm, 3000) == 3840 and vllm_max_model_len(vllm, 2784) == 3584
    assert model_args(cfg("model=m", "backend=vllm", "max_model_len=6000"), 1000)["max_model_len"] == 6000
    assert batch_size(vllm) == "auto" and batch_size(cfg("model=m", "backend=vllm", "batch_size=8")) == "auto"
    hf = cfg("model=m", "batch_size=8")
    assert model_args(hf) == model_args(hf, 1000) == {"pretrained": "m", "dtype": "auto"}
    assert batch_size(hf) == 8
    assert batch_size(cfg("model=m", "backend=local-chat-completions", "base_url=http://h/v1")) == 1
    with pytest.raises(ConfigError, match="max_model_len=800 must exceed max_new_tokens=800"):
        check(cfg("model=m", "backend=vllm", "max_model_len=800"))
    with pytest.raises(ConfigError, match="retrieval_k=0"):
        check(cfg("model=m", "tasks=[raft_domain_retrieval]", "retrieval_k=0"))


def test_evaluate_sizes_vllms_context_from_the_prompts(tiny_model, shared_data, tmp_path, monkeypatch):
    """What raft.evaluate hands lm-eval for backend=vllm (vLLM itself cannot be installed here)."""
    import lm_eval
    from transformers import AutoTokenizer

    from raft.evaluate import evaluate
    from raft.prompts import student_prompt

    rows = domain_jsonl(shared_data, tmp_path / "test.jsonl", n=3)
    calls = []

    def spy(**kwargs):
        calls.append(kwargs)
        return {"config": {}, "results": {}}

    monkeypatch.setattr(lm_eval, "simple_evaluate", spy)
    base = [f"model={tiny_model}", "tasks=[raft_domain]", f"data={tmp_path / 'test.jsonl'}"]
    evaluate(cfg(*base, "backend=vllm"))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    lengths = []
    for r in rows:
        text = tok.apply_chat_template(
            [{"role": "user", "content": student_prompt(r["documents"], r["question"])}],
            tokenize=False,
            add_generation_prompt=True,
        )
        lengths.append(len(tok(text, add_special_tokens=False)["input_ids"]))
    expected = -(-(max(lengths) + 800) // 256) * 256
    assert calls[-1]["model"] == "vllm" and calls[-1]["batch_size"] == "auto"
    assert calls[-1]["model_args"]["max_model_len"] == expected
    assert max(lengths) + 800 <= expected < max(lengths) + 800 + 256
    # limit: only the prompts that will be asked; an explicit max_model_len is used as it is
    evaluate(cfg(*base, "backend=vllm", "limit=1"))
    assert calls[-1]["model_args"]["max_model_len"] == -(-(lengths[0] + 800) // 256) * 256
    evaluate(cfg(*base, "backend=vllm", "max_model_len=5000"))
    assert calls[-1]["model_args"]["max_model_len"] == 5000
    # hf: the same arguments as before
    evaluate(cfg(*base, "batch_size=4"))
    assert calls[-1]["model"] == "hf" and calls[-1]["batch_size"] == 4
    assert calls[-1]["model_args"] == {"pretrained": str(tiny_model), "dtype": "auto"}


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


HEAVY = ("torch", "transformers", "datasets", "lm_eval", "matplotlib")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--help"], "usage: python -m raft.evaluate report RESULT_DIR"),
        (["report", "--help"], "usage: python -m raft.evaluate report RESULT_DIR"),
    ],
)
def test_help_imports_nothing_heavy(args, expected):
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['raft.evaluate', *{args!r}]\n"
        "try:\n"
        "    runpy.run_module('raft.evaluate', run_name='__main__', alter_sys=True)\n"
        "    status = 0\n"
        "except SystemExit as e:\n"
        "    status = e.code\n"
        f"print('exit', status, 'heavy', [m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "exit 0 heavy []"
    assert expected in proc.stdout
    if args == ["--help"]:  # the settings, then the report's usage line
        assert "settings (key: default  description):" in proc.stdout


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

    import raft.evaluate.backends as ev

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


@pytest.mark.slow
def test_domain_split_and_retrieval_runs_and_report(teacher, shared_data, tmp_path, capsys):
    """raft_domain with a row whose oracle was dropped, then raft_domain_retrieval, through
    python -m raft.evaluate: results.json (null for an empty split), samples, the report table."""
    data = tmp_path / "data"
    data.mkdir()
    rows = domain_jsonl(shared_data, data / "test.jsonl", n=3, no_oracle=(1,))
    served = [
        "model=fake-teacher",
        "backend=local-chat-completions",
        f"base_url={teacher.base_url}",
        f"data={data}",
    ]
    main(cfg(*served, "tasks=[raft_domain]", f"output={tmp_path / 'domain'}", "label=domain"))
    m = json.loads((tmp_path / "domain" / "results.json").read_text())["results"]["raft_domain"]
    assert m["f1,none"] == pytest.approx(2 / 3) and m["has_oracle,none"] == pytest.approx(2 / 3)
    assert m["f1_oracle,none"] == m["em_oracle,none"] == 1.0
    assert m["f1_no_oracle,none"] == m["em_no_oracle,none"] == 0.0
    samples = [
        json.loads(line)
        for line in (tmp_path / "domain" / "samples_raft_domain.jsonl").read_text().splitlines()
    ]
    assert [s["has_oracle"] for s in samples] == [True, False, True]
    assert [s["chunk_id"] for s in samples] == [r["chunk_id"] for r in rows]
    assert [s["f1"] for s in samples] == [1.0, 0.0, 1.0]
    out = capsys.readouterr().out
    assert "decline_answerable 0.0000" in out and "  f1 by oracle position: " in out

    main(
        cfg(
            *served,
            "tasks=[raft_domain_retrieval]",
            "retrieval_k=5",
            f"output={tmp_path / 'retr'}",
            "label=retr",
        )
    )
    text = (tmp_path / "retr" / "results.json").read_text()
    assert (
        "oracle_retrieved 1.0000, f1_oracle 1.0000, em_oracle 1.0000, f1_no_oracle —"
        in capsys.readouterr().out
    )

    def no_nan(name):
        raise AssertionError(f"{name} in results.json")

    m = json.loads(text, parse_constant=no_nan)["results"]["raft_domain_retrieval"]  # strict JSON
    assert m["oracle_retrieved,none"] == 1.0 and m["f1,none"] == 1.0 and m["f1_oracle,none"] == 1.0
    assert m["f1_no_oracle,none"] is None and m["em_no_oracle,none"] is None  # no question missed its oracle
    samples = [
        json.loads(line)
        for line in (tmp_path / "retr" / "samples_raft_domain_retrieval.jsonl").read_text().splitlines()
    ]
    assert all(s["oracle_retrieved"] is True and s["has_oracle"] is True for s in samples)
    assert all(len(s["retrieved_ids"]) == 5 and s["chunk_id"] in s["retrieved_ids"] for s in samples)
    assert yaml.safe_load((tmp_path / "retr" / "recipe.yaml").read_text())["retrieval_k"] == 5

    paths = report([tmp_path / "domain", tmp_path / "retr"], tmp_path / "report")
    lines = [line for line in paths["table"].read_text().splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    table = {
        cells[1]: dict(zip(header, cells, strict=True))
        for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])
    }
    assert (
        table["domain"]["oracle share"],
        table["domain"]["F1 oracle"],
        table["domain"]["F1 no oracle"],
    ) == ("0.6667", "1.0000", "0.0000")
    assert (table["retr"]["oracle share"], table["retr"]["F1 oracle"], table["retr"]["F1 no oracle"]) == (
        "1.0000",
        "1.0000",
        "—",
    )
    page = paths["html"].read_text()
    assert "F1 no oracle" in page and "not retrieved" not in page and ">retrieved<" in page
    assert paths["oracle_position"].is_file()  # the domain run's samples say where the oracle was


def test_raft_printout_adds_f1_by_oracle_position_where_it_has_a_value(capsys):
    """The raft kind prints the common line (unchanged for old results), then the positions that have an F1."""
    from raft.evaluate.plugins import kind_of_task
    from raft.kinds.raft.evaluation import SAMPLE_FIELDS, SPLIT_METRICS

    assert {"decline_unanswerable", "decline_answerable"} <= set(SPLIT_METRICS) and "answerable" in SAMPLE_FIELDS
    show = kind_of_task("raft_domain").show
    old = {"alias": "raft_domain", "f1,none": 0.5, "f1_stderr,none": 0.1, "em,none": 0.25, "answer_found,none": 1.0,
           "has_oracle,none": 0.75, "f1_oracle,none": 0.5, "f1_no_oracle,none": float("nan")}  # fmt: skip
    show("raft_domain", old, [])
    assert capsys.readouterr().out == (
        "raft_domain: f1 0.5000, em 0.2500, answer_found 1.0000, has_oracle 0.7500, f1_oracle 0.5000, f1_no_oracle —\n"
    )
    new = {**old, "decline_unanswerable,none": 1.0, "decline_answerable,none": 0.0,
           **{f"f1_pos{i},none": float("nan") for i in range(20)}, "f1_pos0,none": 0.5, "f1_pos3,none": 1.0}  # fmt: skip
    show("raft_domain", new, [])
    first, second = capsys.readouterr().out.splitlines()
    assert first.endswith("f1_no_oracle —, decline_unanswerable 1.0000, decline_answerable 0.0000")
    assert second == "  f1 by oracle position: 0 0.5000, 3 1.0000"
    show("raft_hotpot", {"f1,none": 1.0, "em,none": 1.0, "answer_found,none": 1.0}, [])
    assert capsys.readouterr().out == "raft_hotpot: f1 1.0000, em 1.0000, answer_found 1.0000\n"


# --------------------------------------------------------------------------------------------------
# bio_needle (the task and the end-to-end runs: test_bio_needle_task.py)
# --------------------------------------------------------------------------------------------------

BIO_LABEL = {
    "nationality": "Danish",
    "date_of_birth": {"day": 2, "month": 5, "year": 1913},
    "date_of_death": {"day": 0, "month": 0, "year": 1980},
    "sportsperson": False,
    "politician": True,
}


def test_bio_needle_recipe_and_its_settings():
    from raft.evaluate import TASK_DATA

    assert TASK_DATA["bio_needle"] == ("bio_needle_data", "RAFT_BIO_NEEDLE_DATA")
    path = REPO / "recipes" / "bio_needle" / "evaluate.yaml"
    c = cfg(f"recipe={path}")
    assert c.tasks == ["bio_needle"] and c.data == "outputs/bio_needle" and c.max_new_tokens == 256
    assert c.apply_chat_template and check(c) == ["bio_needle"]
    assert c.prices and all(set(p) == {"model", "tokenizer", "input_per_mtok", "output_per_mtok"} for p in c.prices)
    # every setting of the recipe says why
    for line in path.read_text().splitlines():
        if re.match(r"^[a-z_]+: ", line):
            assert "#" in line, line
    # by name: recipes/bio_needle/evaluate.yaml for raft.evaluate (generate.yaml for raft.generate)
    named = cfg("recipe=bio_needle")
    assert named.recipe == "bio_needle" and named.max_new_tokens == c.max_new_tokens
    assert named.tasks == ["bio_needle"] and named.prices == c.prices and named.data == c.data
    assert load_config("generate", ["recipe=bio_needle"]).kind == "bio_needle"
    assert cfg("model=m").prices == []  # no cost table unless asked for


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        ("gpt-4o", "prices must be a list"),
        ("[gpt-4o]", "prices[0] must be a mapping"),
        ("[{model: x, input_per_mtok: 1, output_per_mtok: 1}]", "prices[0] (x): missing tokenizer"),
        ("[{model: x, tokenizer: t, input_per_mtok: 1, output_per_mtok: 1, cached: 1}]", "unknown key cached"),
        ("[{model: x, tokenizer: t, input_per_mtok: -1, output_per_mtok: 1}]", "prices[0].input_per_mtok=-1"),
        ("[{model: x, tokenizer: t, input_per_mtok: 1, output_per_mtok: cheap}]", "prices[0].output_per_mtok='cheap'"),
        ("[{model: '', tokenizer: t, input_per_mtok: 1, output_per_mtok: 1}]", "prices[0].model must be"),
    ],
)
def test_bad_prices_fail_before_anything_loads(prices, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        check(cfg("model=m", "tasks=[bio_needle]", f"prices={prices}"))


def test_bio_needle_data_and_task_errors(tiny_model, tmp_path):
    with pytest.raises(ConfigError, match="ambiguous"):
        check(cfg("model=m", "tasks=[raft_domain,bio_needle]", "data=x"))
    with pytest.raises(ConfigError) as e:
        main(cfg(f"model={tiny_model}", "tasks=[bio_needle]", f"output={tmp_path}", "limit=1"))
    assert "RAFT_BIO_NEEDLE_DATA" in str(e.value) and "\n" not in str(e.value)


def test_bio_sample_row_is_what_the_report_reads():
    from raft.evaluate import sample_row
    from raft.kinds.bio_needle.schema import FIELDS, compact

    doc = {
        "id": "n1",
        "needle_name": "Karen Holt",
        "label": BIO_LABEL,
        "target_tokens": 8192,
        "context_tokens": 8150,
        "depth": 0.33,
        "depth_target": 1 / 3,
        "needle_start": 2700,
        "needle_tokens": 180,
        "prompt": [{"role": "user", "content": "long haystack ..."}],
    }
    said = {**BIO_LABEL, "nationality": "danish", "politician": False}
    reply = f"```json\n{json.dumps(said)}\n```"
    sample = {"doc_id": 3, "doc": doc, "target": compact(BIO_LABEL), "filtered_resps": [reply], "score": 8 / 9}
    row = sample_row(sample, "bio_needle")
    assert row == sample_row(sample)  # recognised by its doc as well
    assert {
        "needle_name", "label", "target_tokens", "context_tokens", "depth", "depth_target",
        "response", "parsed", "json_valid", "fields", "score",
    } <= set(row)  # fmt: skip
    assert row["doc_id"] == 3 and row["id"] == "n1" and row["needle_name"] == "Karen Holt"
    assert row["label"] == BIO_LABEL and row["target_tokens"] == 8192 and row["depth_target"] == 1 / 3
    assert row["response"] == reply and row["parsed"] == said and row["json_valid"] == 1
    assert row["fields"] == {f: int(f != "politician") for f in FIELDS}
    assert row["score"] == pytest.approx(8 / 9)
    assert "prompt" not in row and "f1" not in row
    # no JSON in the reply
    none = sample_row({**sample, "filtered_resps": ["no idea"]}, "bio_needle")
    assert none["parsed"] is None and none["json_valid"] == 0 and none["score"] == 0.0
    assert set(none["fields"].values()) == {0}
    # a raft_domain sample is unchanged
    qa = sample_row(
        {"doc": {"question": "q", "final_answer": "Oslo"}, "target": "Oslo", "filtered_resps": ["<ANSWER>: Oslo"]}
    )
    assert qa["f1"] == 1.0 and "fields" not in qa


def test_cost_table_output_tokens_are_the_gold_labels_in_the_models_tokenizer(tiny_model):
    from transformers import AutoTokenizer

    from raft.kinds.bio_needle.evaluation import _target_tokens
    from raft.kinds.bio_needle.schema import compact

    targets = [compact(BIO_LABEL), compact({**BIO_LABEL, "nationality": "unknown"})]
    tok = AutoTokenizer.from_pretrained(tiny_model)
    counts = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in targets]
    tokens, how = _target_tokens(cfg(f"model={tiny_model}"), targets)
    assert tokens == round(sum(counts) / 2) and "mean tokens of the 2 gold labels" in how
    # a served name without a tokenizer: max_new_tokens, an upper bound
    tokens, how = _target_tokens(cfg("model=nobody/no-such-model", "max_new_tokens=256"), targets)
    assert tokens == 256 and "upper bound" in how and "nobody/no-such-model" in how


# --------------------------------------------------------------------------------------------------
# HotpotQA contamination: adapter -> its training data -> the generate run's hotpot.eval_questions
# --------------------------------------------------------------------------------------------------


def _trained_adapter(tmp_path: Path, *generate_args: str, record: str = "finetune_run.json") -> Path:
    """An adapter folder as raft.finetune leaves it (what the check reads of it) and its data folder's recipe."""
    from raft.config import save_config

    data = tmp_path / "data"
    save_config(load_config("generate", list(generate_args)), data)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    if record == "recipe.yaml":
        save_config(load_config("finetune", ["recipe=tiny", "model=m", f"data={data}"]), adapter)
    else:
        (adapter / record).write_text(json.dumps({"data": str(data)}))
    return adapter


def test_hotpot_tasks_refuse_questions_the_adapters_training_data_shows(tmp_path, capsys):
    adapter = _trained_adapter(tmp_path, "recipe=hotpot", "hotpot.eval_questions=50")
    base = ["model=m", f"adapter={adapter}"]
    with pytest.raises(ConfigError) as e:
        check(cfg(*base, "tasks=[raft_hotpot_full]"))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("raft_hotpot_full scores all 7405 HotpotQA dev questions, but adapter")
    assert "hotpot.eval_questions=50: questions 51-7405 show paragraphs it trained on" in msg
    assert "allow_contaminated=true" in msg and str(tmp_path / "data") in msg
    with pytest.raises(ConfigError, match=r"raft_hotpot scores the first 1000 .* questions 51-1000 show"):
        check(cfg(*base))  # raft_hotpot's 1,000 are past this run's 50
    assert check(cfg(*base, "limit=50")) == ["raft_hotpot"]  # the questions no training row shows
    assert check(cfg("model=m", "tasks=[raft_hotpot_full]")) == ["raft_hotpot_full"]  # a base model trained on none
    capsys.readouterr()
    assert check(cfg(*base, "tasks=[raft_hotpot_full]", "allow_contaminated=true")) == ["raft_hotpot_full"]
    err = capsys.readouterr().err
    assert "WARNING (allow_contaminated=true, recorded in results.json): raft_hotpot_full scores all 7405" in err
    from raft.evaluate.run import write_results

    allowed = cfg(*base, "tasks=[raft_hotpot_full]", "allow_contaminated=true", f"output={tmp_path / 'eval'}")
    write_results({"results": {"raft_hotpot_full": {"f1,none": 0.5}}, "samples": {"raft_hotpot_full": []}, "config": {}}, allowed)
    recorded = json.loads((tmp_path / "eval" / "results.json").read_text())["raft"]["contaminated"]
    assert len(recorded) == 1 and recorded[0].startswith("raft_hotpot_full scores all 7405")

    # the default run: 1,000 evaluated questions; the same chain through the adapter's recipe.yaml
    default = _trained_adapter(tmp_path / "d", "recipe=hotpot", record="recipe.yaml")
    assert check(cfg("model=m", f"adapter={default}")) == ["raft_hotpot"]
    with pytest.raises(ConfigError, match="questions 1001-7405 show paragraphs it trained on"):
        check(cfg("model=m", f"adapter={default}", "tasks=[raft_hotpot_full]"))
    published = _trained_adapter(tmp_path / "p", "recipe=hotpot", "hotpot.chunks=published", record="train_summary.json")
    with pytest.raises(ConfigError, match="made with hotpot.chunks=published: its rows show the evaluated questions' own paragraphs"):
        check(cfg("model=m", f"adapter={published}", "limit=10"))
    docs = _trained_adapter(tmp_path / "docs", "recipe=docs", "input=somewhere")
    assert check(cfg("model=m", f"adapter={docs}", "tasks=[raft_hotpot_full]")) == ["raft_hotpot_full"]  # not HotpotQA


def test_relative_data_is_traced_from_where_the_adapter_lives_not_from_here(tmp_path, monkeypatch):
    """data=outputs/hotpot typed in the project folder; evaluated later from another folder that has an
    outputs/hotpot of its own (a docs run): the adapter's own run is found, and refused; the same
    through a checkpoint folder and through data= given as the run's train.jsonl."""
    from raft.config import save_config

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    save_config(load_config("generate", ["recipe=hotpot", "hotpot.eval_questions=50"]), project / "outputs" / "hotpot")
    save_config(load_config("generate", ["recipe=docs", "input=x"]), elsewhere / "outputs" / "hotpot")  # the decoy
    adapter = project / "outputs" / "ft"
    (adapter / "checkpoint-10").mkdir(parents=True)
    for folder in (adapter, adapter / "checkpoint-10"):
        (folder / "adapter_config.json").write_text("{}")
    (adapter / "finetune_run.json").write_text(json.dumps({"data": "outputs/hotpot"}))
    monkeypatch.chdir(elsewhere)
    for where in (adapter, adapter / "checkpoint-10"):
        with pytest.raises(ConfigError, match=r"questions 51-1000 show paragraphs it trained on"):
            check(cfg("model=m", f"adapter={where}"))
    (adapter / "finetune_run.json").write_text(json.dumps({"data": "outputs/hotpot/train.jsonl"}))
    with pytest.raises(ConfigError, match=str(project / "outputs" / "hotpot")):
        check(cfg("model=m", f"adapter={adapter}"))


def test_an_adapter_whose_data_cannot_be_traced_gets_a_warning(tmp_path, capsys):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    capsys.readouterr()
    assert check(cfg("model=m", f"adapter={adapter}", "tasks=[raft_hotpot_full]")) == ["raft_hotpot_full"]
    err = capsys.readouterr().err
    assert "WARNING: raft_hotpot_full: cannot check which HotpotQA dev questions the adapter's training data shows" in err
    (adapter / "finetune_run.json").write_text(json.dumps({"data": "my-org/raft-hotpot"}))  # a hub dataset
    check(cfg("model=m", f"adapter={adapter}", "tasks=[raft_hotpot]"))
    assert "data=my-org/raft-hotpot, which is not a raft.generate folder here" in capsys.readouterr().err


def test_hotpot_task_question_counts_are_the_task_yamls():
    from raft.kinds.raft.contamination import HOTPOT_TASK_QUESTIONS

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: None)
    folder = REPO / "eval_tasks" / "raft_hotpot"
    counts = {}
    for path in folder.glob("*.yaml"):
        task = yaml.load(path.read_text(), Loader=Loader)
        counts[task["task"]] = task["dataset_kwargs"]["questions"]
    assert counts == HOTPOT_TASK_QUESTIONS
    assert "CONTAMINATED for a model fine-tuned on this repo's HotpotQA data" in (folder / "raft_hotpot_full.yaml").read_text()
