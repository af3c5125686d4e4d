"""The lm-eval tasks in eval_tasks/: data sources, prompt, generation settings, scoring, backends."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from raft.config import ConfigError, resource_dir
from raft.hotpot import load_hotpot, paragraph_text, paragraphs
from raft.metrics import score
from raft.prompts import ANSWER_TAG, student_example, student_prompt
from raft.testing import fake_questions

TASKS_DIR = resource_dir("eval_tasks")
REPO = Path(__file__).resolve().parent.parent


def _utils(task: str):
    """The task's utils.py, imported by path as lm-eval does."""
    path = TASKS_DIR / task / "utils.py"
    spec = importlib.util.spec_from_file_location(f"_raft_eval_{task}_utils", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def hotpot_file(shared_data) -> Path:
    return shared_data / "hotpotqa" / "hotpot_dev_distractor_first100.json"


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv("RAFT_HOTPOT_PATH", raising=False)
    monkeypatch.delenv("RAFT_DOMAIN_DATA", raising=False)


def manager(**metadata):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata=metadata)


def make_domain_folder(shared_data: Path, out: Path, n_test: int = 4) -> list[dict]:
    """A raft.generate-style output folder (dataset/, test.jsonl, train.jsonl) built from real text.

    Questions are the fake teacher's "Which words follow «phrase»" about one chunk (the oracle), the
    gold answer the three words that follow the phrase in that chunk, the documents the oracle and
    three distractors in a fixed shuffled order.
    """
    words = []
    for name in ("state_of_the_union.txt", "rust_book_ch04-01-what-is-ownership.md"):
        words += (shared_data / "docs" / name).read_text(encoding="utf-8").split()
    chunks = [" ".join(words[i : i + 60]) for i in range(0, 60 * 40, 60)]
    rows = []
    for i in range(0, len(chunks) - 4, 4):
        oracle, distractors = chunks[i], chunks[i + 1 : i + 4]
        question = re.sub(r"^\d+\.\s*", "", fake_questions(oracle, 1)[0])
        phrase = re.search(r"«(.+?)»", question).group(1)
        base, k = [distractors[0], oracle, distractors[1], distractors[2]], (i // 4) % 4
        documents = base[k:] + base[:k]  # the oracle at a different position in each row
        if sum(" ".join(d.split()).count(phrase) for d in documents) != 1:
            continue  # the phrase must identify the oracle
        after = oracle.split(phrase, 1)[1].split()[:3]
        answer = " ".join(after)
        cot = f"It says ##begin_quote##{phrase} {answer}##end_quote##.\n{ANSWER_TAG} {answer}"
        rows.append(
            {
                "id": f"q{i}",
                "question": question,
                "documents": documents,
                "oracle_index": documents.index(oracle),
                "cot_answer": cot,
                "final_answer": answer,
                "chunk_id": f"c{i}",
                "source": "state_of_the_union.txt",
                **student_example(documents, question, cot),
            }
        )
    test, train = rows[:n_test], rows[n_test:]
    assert len(test) == n_test and train
    out.mkdir(parents=True, exist_ok=True)
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(train), "test": datasets.Dataset.from_list(test)}
    ).save_to_disk(str(out / "dataset"))
    for split, part in (("train", train), ("test", test)):
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    return test


# --------------------------------------------------------------------------------------------------
# task definitions
# --------------------------------------------------------------------------------------------------


def test_only_our_tasks_are_indexed():
    assert (TASKS_DIR / "__init__.py").is_file()
    assert set(manager().all_tasks) == {"raft_hotpot", "raft_hotpot_full", "raft_domain"}


def test_raft_hotpot_prompt_target_and_generation(hotpot_file):
    task = manager(raft_hotpot_path=str(hotpot_file)).load(["raft_hotpot"])["tasks"]["raft_hotpot"]
    docs = task.eval_docs
    examples = load_hotpot(hotpot_file)
    assert len(docs) == len(examples) == 100  # fewer than the 1,000 cap: all of them, in order
    for doc, ex in zip(list(docs)[:5] + [docs[99]], examples[:5] + [examples[99]], strict=True):
        documents = [paragraph_text(t, x) for t, x in paragraphs(ex)]
        assert task.doc_to_text(doc) == student_prompt(documents, ex["question"])
        assert task.doc_to_target(doc) == ex["answer"]
        assert doc["type"] == ex["type"]
    # the paragraphs keep the given order (title first) and each is one <DOCUMENT>
    text = task.doc_to_text(docs[0])
    titles = [t for t, _ in examples[0]["context"]]
    assert text.count("<DOCUMENT>") == len(titles)
    assert [text.index(f"<DOCUMENT>{t}\n") for t in titles] == sorted(
        text.index(f"<DOCUMENT>{t}\n") for t in titles
    )

    gen = task.config.generation_kwargs
    assert gen["max_gen_toks"] == 800 and gen["do_sample"] is False and gen["temperature"] == 0.0
    # no stop sequence may occur inside a well-formed chain-of-thought answer
    cot = "Step one.\n\nStep two: ##begin_quote##Ed Wood was American.##end_quote##\n\n<ANSWER>: yes"
    assert gen["until"] and not any(stop in cot for stop in gen["until"])
    assert task.config.num_fewshot == 0
    assert task.config.dataset_kwargs["questions"] == 1000


def test_raft_hotpot_full_takes_every_question(hotpot_file):
    tasks = manager(raft_hotpot_path=str(hotpot_file)).load(["raft_hotpot_full"])["tasks"]
    full = tasks["raft_hotpot_full"]
    assert full.config.dataset_kwargs["questions"] is None
    assert len(full.eval_docs) == 100
    assert full.config.generation_kwargs["max_gen_toks"] == 800


def test_hotpot_question_cap_and_both_layouts(hotpot_file, tmp_path, monkeypatch):
    utils = _utils("raft_hotpot")
    first = utils.load(questions=3, raft_hotpot_path=str(hotpot_file))["validation"]
    assert first["question"] == [ex["question"] for ex in load_hotpot(hotpot_file)[:3]]
    # the same questions in the Hugging Face layout (JSONL), found through the environment variable
    hf_rows = []
    for ex in json.loads(hotpot_file.read_text())[:3]:
        hf_rows.append(
            {
                "id": ex["_id"],
                "question": ex["question"],
                "answer": ex["answer"],
                "type": ex["type"],
                "level": ex["level"],
                "supporting_facts": {
                    "title": [t for t, _ in ex["supporting_facts"]],
                    "sent_id": [i for _, i in ex["supporting_facts"]],
                },
                "context": {
                    "title": [t for t, _ in ex["context"]],
                    "sentences": [s for _, s in ex["context"]],
                },
            }
        )
    hf_file = tmp_path / "hotpot_hf.jsonl"
    hf_file.write_text("".join(json.dumps(r) + "\n" for r in hf_rows))
    monkeypatch.setenv("RAFT_HOTPOT_PATH", str(hf_file))
    from_hf = utils.load(questions=1000)["validation"]
    assert from_hf.to_list() == first.to_list()
    # task metadata wins over the environment variable
    monkeypatch.setenv("RAFT_HOTPOT_PATH", str(tmp_path / "missing.json"))
    assert len(utils.load(questions=2, raft_hotpot_path=str(hf_file))["validation"]) == 2


def test_hotpot_bad_source_is_one_line_naming_the_variable(tmp_path, monkeypatch):
    utils = _utils("raft_hotpot")
    monkeypatch.setenv("RAFT_HOTPOT_PATH", str(tmp_path / "nope.json"))
    with pytest.raises(ConfigError) as e:
        utils.load(questions=10)
    assert "RAFT_HOTPOT_PATH" in str(e.value) and "nope.json" in str(e.value) and "\n" not in str(e.value)
    bad = tmp_path / "bad.json"
    bad.write_text('[{"question": 1')
    with pytest.raises(ConfigError, match="bad.json"):
        utils.load(raft_hotpot_path=str(bad))
    # offline and no local file: the hub default fails with a hint to the variable
    monkeypatch.delenv("RAFT_HOTPOT_PATH")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ConfigError) as e:
        utils.load(questions=10)
    assert "RAFT_HOTPOT_PATH" in str(e.value) and "\n" not in str(e.value)


def test_raft_domain_reads_a_generate_folder(shared_data, tmp_path, monkeypatch):
    rows = make_domain_folder(shared_data, tmp_path / "raft_data")
    task = manager(raft_domain_data=str(tmp_path / "raft_data")).load(["raft_domain"])["tasks"]["raft_domain"]
    docs = list(task.eval_docs)
    assert [d["question"] for d in docs] == [r["question"] for r in rows]
    for doc, row in zip(docs, rows, strict=True):
        assert task.doc_to_text(doc) == student_prompt(row["documents"], row["question"])
        # the evaluation prompt is the prompt the student was trained on
        assert task.doc_to_text(doc) == row["prompt"][0]["content"]
        assert task.doc_to_target(doc) == row["final_answer"]
    assert "messages" not in docs[0]  # training columns are not carried into the logged samples
    assert task.config.generation_kwargs["max_gen_toks"] == 800
    # without dataset/, the test.jsonl; a JSONL file directly; through the environment variable
    utils = _utils("raft_domain")
    shutil.rmtree(tmp_path / "raft_data" / "dataset")
    monkeypatch.setenv("RAFT_DOMAIN_DATA", str(tmp_path / "raft_data"))
    assert utils.load()["test"]["question"] == [r["question"] for r in rows]
    assert utils.load(raft_domain_data=str(tmp_path / "raft_data" / "test.jsonl"))["test"][
        "final_answer"
    ] == [r["final_answer"] for r in rows]


def test_raft_domain_errors_are_one_line(tmp_path, monkeypatch):
    utils = _utils("raft_domain")
    with pytest.raises(ConfigError, match="RAFT_DOMAIN_DATA"):
        utils.load()
    monkeypatch.setenv("RAFT_DOMAIN_DATA", str(tmp_path))  # an empty folder
    with pytest.raises(ConfigError, match="RAFT_DOMAIN_DATA"):
        utils.load()
    (tmp_path / "test.jsonl").write_text(
        '{"question": "q", "documents": ["d"], "final_answer": "a"}\n{"question": "q2", "documents": ["d"]}\n'
    )
    with pytest.raises(ConfigError) as e:
        utils.load()
    assert "test.jsonl row 1" in str(e.value) and "final_answer" in str(e.value)
    (tmp_path / "test.jsonl").write_text(
        '{"question": "q", "documents": ["d"], "final_answer": "a"}\n{oops\n'
    )
    with pytest.raises(ConfigError, match="test.jsonl line 2"):
        utils.load()
    (tmp_path / "test.jsonl").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        utils.load()
    (tmp_path / "test.jsonl").write_text(
        '{"question": "q", "documents": "not a list", "final_answer": "a"}\n'
    )
    with pytest.raises(ConfigError, match="documents"):
        utils.load()


def test_process_results_scores_the_extracted_answer():
    for task, gold_key in (("raft_hotpot", "answer"), ("raft_domain", "final_answer")):
        utils = _utils(task)
        doc = {gold_key: "Chief of Protocol"}
        out = "Reasoning.\n<ANSWER>: the Chief of Protocol"
        assert (
            utils.process_results(doc, [out])
            == score(out, "Chief of Protocol")
            == {"f1": 1.0, "em": 1.0, "answer_found": 1.0}
        )
        assert utils.process_results(doc, ["no tag here"])["answer_found"] == 0.0


# --------------------------------------------------------------------------------------------------
# running the tasks: hf (base and LoRA), local-chat-completions against an OpenAI-compatible server
# --------------------------------------------------------------------------------------------------


def _evaluate(model, model_args, tasks, metadata, limit, apply_chat_template=True, max_gen_toks=8, **kw):
    import lm_eval

    return lm_eval.simple_evaluate(
        model=model,
        model_args=model_args,
        tasks=tasks,
        task_manager=manager(**metadata),
        limit=limit,
        apply_chat_template=apply_chat_template,
        gen_kwargs={"max_gen_toks": max_gen_toks},
        log_samples=True,
        bootstrap_iters=0,
        **kw,
    )


def _outputs(results, task):
    return [s["filtered_resps"][0] for s in results["samples"][task]]


@pytest.fixture(scope="module")
def lora_adapter(tiny_model, tmp_path_factory) -> Path:
    """A LoRA adapter on the tiny model with non-zero B (so it changes the outputs), saved by PEFT."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    peft_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=64, target_modules="all-linear", init_lora_weights=False)
    )
    folder = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_hf_base_and_lora_adapter(tiny_model, lora_adapter, hotpot_file, shared_data, tmp_path):
    make_domain_folder(shared_data, tmp_path / "raft_data", n_test=2)
    meta = {"raft_hotpot_path": str(hotpot_file), "raft_domain_data": str(tmp_path / "raft_data")}
    tasks = ["raft_hotpot", "raft_domain"]
    base = _evaluate("hf", {"pretrained": str(tiny_model)}, tasks, meta, limit=2, device="cpu")
    tuned = _evaluate(
        "hf", {"pretrained": str(tiny_model), "peft": str(lora_adapter)}, tasks, meta, limit=2, device="cpu"
    )
    for results in (base, tuned):
        for task in tasks:
            metrics = results["results"][task]
            assert {"f1,none", "em,none", "answer_found,none"} <= set(metrics)
            assert all(0.0 <= metrics[f"{m},none"] <= 1.0 for m in ("f1", "em", "answer_found"))
            samples = results["samples"][task]
            assert len(samples) == 2
            for s in samples:  # logged scores are the raft.metrics scores of the logged output
                assert {k: s[k] for k in ("f1", "em", "answer_found")} == score(
                    s["filtered_resps"][0], s["target"]
                )
            # the chat template was applied around the student prompt
            prompt = samples[0]["arguments"][0][0]
            assert "<|start_header_id|>user<|end_header_id|>" in prompt and "<DOCUMENT>" in prompt
            assert prompt.rstrip().endswith("<|start_header_id|>assistant<|end_header_id|>")
    assert _outputs(base, "raft_hotpot") != _outputs(tuned, "raft_hotpot")  # the adapter was applied


@pytest.mark.slow
def test_local_chat_completions_against_a_server(teacher, shared_data, tmp_path, hotpot_file):
    """The fake teacher answers 'which words follow «phrase»' correctly: F1 1 proves prompt, extraction, scoring."""
    rows = make_domain_folder(shared_data, tmp_path / "raft_data", n_test=4)
    args = {
        "model": "fake-teacher",
        "base_url": f"{teacher.base_url}/chat/completions",
        "tokenized_requests": False,
    }
    results = _evaluate(
        "local-chat-completions",
        args,
        ["raft_domain"],
        {"raft_domain_data": str(tmp_path / "raft_data")},
        limit=None,
        max_gen_toks=800,
    )
    metrics = results["results"]["raft_domain"]
    assert metrics["f1,none"] == 1.0 and metrics["em,none"] == 1.0 and metrics["answer_found,none"] == 1.0
    assert teacher.stats.by_kind.get("student") == len(rows)
    # the server got the student prompt as the one user message
    for s in results["samples"]["raft_domain"]:
        prompt = s["arguments"][0][0]  # lm-eval's JsonChatStr: a 1-tuple holding the messages as JSON
        messages = json.loads(prompt[0] if isinstance(prompt, tuple) else prompt)
        row = rows[s["doc_id"]]
        assert messages == [{"role": "user", "content": student_prompt(row["documents"], row["question"])}]

    # HotpotQA questions have no «phrase»: the fake answers "unknown" with the tag -> F1 0, tag found
    teacher.reset()
    results = _evaluate(
        "local-chat-completions",
        args,
        ["raft_hotpot"],
        {"raft_hotpot_path": str(hotpot_file)},
        limit=3,
        max_gen_toks=800,
    )
    metrics = results["results"]["raft_hotpot"]
    assert metrics["answer_found,none"] == 1.0 and metrics["f1,none"] == 0.0
    assert teacher.stats.completed == 3


@pytest.mark.slow
def test_documented_lm_eval_command(tiny_model, hotpot_file, tmp_path):
    """`lm_eval --model hf --model_args pretrained=... --tasks raft_hotpot --include_path eval_tasks` works."""
    env = {**os.environ, "RAFT_HOTPOT_PATH": str(hotpot_file)}
    cmd = [
        str(Path(sys.executable).parent / "lm_eval"),
        "--model", "hf",
        "--model_args", f"pretrained={tiny_model}",
        "--tasks", "raft_hotpot",
        "--include_path", "eval_tasks",
        "--limit", "2",
        "--gen_kwargs", "max_gen_toks=8",
        "--apply_chat_template",
        "--device", "cpu",
        "--output_path", str(tmp_path / "out"),
        "--log_samples",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = sorted((tmp_path / "out").rglob("results_*.json"))
    samples = sorted((tmp_path / "out").rglob("samples_raft_hotpot_*.jsonl"))
    assert results and samples
    data = json.loads(results[-1].read_text())
    assert 0.0 <= data["results"]["raft_hotpot"]["f1,none"] <= 1.0
    assert len(samples[-1].read_text().splitlines()) == 2
    # the report reads the lm_eval CLI's result folder as well
    from raft.evaluate import load_run

    run = load_run(tmp_path / "out")
    assert run.info["model"] == str(tiny_model) and run.info["finetuned"] is False
    assert len(run.samples["raft_hotpot"]) == 2
