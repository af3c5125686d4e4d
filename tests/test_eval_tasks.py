"""The lm-eval tasks in eval_tasks/: data sources, prompt, generation settings, scoring, backends."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from raft.config import ConfigError, resource_dir
from raft.metrics import score
from raft.prompts import ANSWER_TAG, DECLINE_ANSWER, student_example, student_prompt
from raft.sources.hotpot import load_hotpot, paragraph_text, paragraphs
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


def make_domain_folder(
    shared_data: Path, out: Path, n_test: int = 4, no_oracle: tuple[int, ...] = ()
) -> list[dict]:
    """A raft.generate-style output folder (dataset/, test.jsonl, train.jsonl, chunks.jsonl) built
    from real text.

    Questions are the fake teacher's "Which words follow «phrase»" about one chunk (the oracle), the
    gold answer the three words that follow the phrase in that chunk, the documents the oracle and
    three distractors in a fixed shuffled order. The rows at the positions in ``no_oracle`` have the
    oracle replaced by another chunk (``oracle_index`` null), as raft.generate does with 1 - p of
    them. ``chunks.jsonl`` holds the pool: chunk ``c{j}`` is the j-th 60-word window.
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
        if len(rows) in no_oracle:  # the oracle dropped: one more distractor in its place
            spare = chunks[(i + 20) % len(chunks)]
            assert phrase not in " ".join(spare.split())
            documents = [spare if d == oracle else d for d in documents]
        after = oracle.split(phrase, 1)[1].split()[:3]
        answer = " ".join(after)
        cot = f"It says ##begin_quote##{phrase} {answer}##end_quote##.\n{ANSWER_TAG} {answer}"
        rows.append(
            {
                "id": f"q{i}",
                "question": question,
                "documents": documents,
                "oracle_index": documents.index(oracle) if oracle in documents else None,
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
    pool = [
        {"id": f"c{j}", "text": text, "source": "state_of_the_union.txt", "title": f"part {j}"}
        for j, text in enumerate(chunks)
    ]
    (out / "chunks.jsonl").write_text("".join(json.dumps(c) + "\n" for c in pool), encoding="utf-8")
    return test


# --------------------------------------------------------------------------------------------------
# task definitions
# --------------------------------------------------------------------------------------------------


def test_only_our_tasks_are_indexed():
    assert (TASKS_DIR / "__init__.py").is_file()
    assert set(manager().all_tasks) == {
        "raft_hotpot",
        "raft_hotpot_full",
        "raft_domain",
        "raft_domain_retrieval",
        "bio_needle",
        "in2_probe",
    }


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


def test_raft_domain_splits_scores_by_oracle(shared_data, tmp_path):
    """Every doc says whether its oracle is in view; f1/em_(no_)oracle average only the docs that apply."""
    rows = make_domain_folder(shared_data, tmp_path / "raft_data", n_test=4, no_oracle=(1, 3))
    utils = _utils("raft_domain")
    docs = utils.load(raft_domain_data=str(tmp_path / "raft_data"))["test"].to_list()
    assert [d["has_oracle"] for d in docs] == [True, False, True, False]
    assert [d["oracle_index"] is None for d in docs] == [r["oracle_index"] is None for r in rows]
    # right where the oracle is in view, wrong where it is not (what a grounded model would do)
    outputs = [f"{ANSWER_TAG} {d['final_answer'] if d['has_oracle'] else 'unknown'}" for d in docs]
    per_doc = [utils.process_results(d, [out]) for d, out in zip(docs, outputs, strict=True)]
    assert per_doc[0]["f1_oracle"] == (1.0, True) and per_doc[0]["f1_no_oracle"] == (1.0, False)
    assert per_doc[1]["f1_no_oracle"][1] is True and per_doc[1]["f1_oracle"][1] is False
    assert all({"f1", "em", "answer_found"} <= set(r) for r in per_doc)

    task = manager(raft_domain_data=str(tmp_path / "raft_data")).load(["raft_domain"])["tasks"]["raft_domain"]
    agg = task.aggregation()
    assert {"has_oracle", "f1_oracle", "em_oracle", "f1_no_oracle", "em_no_oracle"} <= set(agg)
    assert agg["f1"] is not agg["f1_oracle"]  # the split has its own aggregation
    values = {m: agg[m]([r[m] for r in per_doc]) for m in agg}
    assert values["has_oracle"] == 0.5
    assert values["f1_oracle"] == values["em_oracle"] == 1.0  # rows 0 and 2
    assert values["f1_no_oracle"] == values["em_no_oracle"] == 0.0
    # a split no doc falls in is NaN, not 0
    assert math.isnan(agg["f1_no_oracle"]([r["f1_no_oracle"] for r in per_doc if r["f1_oracle"][1]]))
    assert utils.mean_where([]) != utils.mean_where([])  # NaN
    # a hand-made row without oracle_index counts in neither split
    (tmp_path / "plain.jsonl").write_text('{"question": "q", "documents": ["d"], "final_answer": "a"}\n')
    plain = utils.load(raft_domain_data=str(tmp_path / "plain.jsonl"))["test"][0]
    assert plain["has_oracle"] is None
    scored = utils.process_results(plain, ["<ANSWER>: a"])
    assert scored["has_oracle"][1] is False and not scored["f1_oracle"][1] and not scored["f1_no_oracle"][1]


def test_common_helpers_the_tasks_share(monkeypatch):
    from raft.eval_tasks import common

    # (value, applies) pairs: the rows a metric does not apply to are left out; none: NaN
    assert common.mean_where([(1.0, True), (0.0, False), (0.5, True), (0.0, False)]) == 0.75
    assert common.mean_where([(True, True), (False, True)]) == 0.5
    assert math.isnan(common.mean_where([(1.0, False)])) and math.isnan(common.mean_where([]))
    for task in ("raft_domain", "bio_needle", "in2_probe"):  # the yaml's !function utils.mean_where
        assert _utils(task).mean_where is common.mean_where
    # metadata first, then the environment variable, then the default (else the error)
    monkeypatch.setenv("RAFT_X", "from-env")
    assert common.data_source({"x": "m"}, "x", "RAFT_X") == ("metadata x", "m")
    assert common.data_source({"x": ""}, "x", "RAFT_X") == ("RAFT_X", "from-env")
    monkeypatch.delenv("RAFT_X")
    assert common.data_source({}, "x", "RAFT_X", default="hub/id") == ("default", "hub/id")
    with pytest.raises(ConfigError, match="^needs x$"):
        common.data_source({}, "x", "RAFT_X", missing="needs x")
    with pytest.raises(ConfigError, match=r"^f.jsonl row 2: missing column b, c$"):
        common.require_columns(Path("f.jsonl"), 2, {"a": 1}, ("a", "b", "c"))
    split = common.as_test_split([{"a": 1, "z": 0}, {"b": "x"}], ["a", "b"])
    assert list(split) == ["test"] and split["test"].to_list() == [{"a": 1, "b": None}, {"a": None, "b": "x"}]


def test_bm25_retrieves_the_chunk_with_the_questions_rare_words():
    utils = _utils("raft_domain")
    texts = [
        "The committee met on Tuesday to discuss the annual budget and the new parking rules.",
        "Photosynthesis converts sunlight into chemical energy inside the chloroplasts of leaves.",
        "The budget for the annual festival was approved by the committee after a long meeting.",
        "Axolotls regenerate limbs; salamanders of Xochimilco are critically endangered.",
        "Parking rules change on Tuesday: the committee extended the meeting.",
    ]
    retriever = utils.Retriever(texts)
    hits = retriever.top_k(
        [
            "Where are the axolotl salamanders from, Xochimilco?",
            "What do chloroplasts do with sunlight?",
            "What did the committee say about the budget?",
        ],
        k=2,
    )
    assert hits[0][0] == 3 and hits[1][0] == 1
    assert set(hits[2]) == {0, 2} and len(hits[0]) == 2
    assert retriever.top_k(["the of and"], k=10)[0] and len(retriever.top_k(["x"], k=10)[0]) == 5  # k capped


def test_raft_domain_retrieval_reads_the_chunk_pool(shared_data, tmp_path, monkeypatch):
    rows = make_domain_folder(shared_data, tmp_path / "raft_data", n_test=4, no_oracle=(1,))
    pool = [json.loads(line) for line in (tmp_path / "raft_data" / "chunks.jsonl").read_text().splitlines()]
    utils = _utils("raft_domain")
    expected = utils.Retriever([c["text"] for c in pool]).top_k([r["question"] for r in rows], 4)
    task = manager(raft_domain_data=str(tmp_path / "raft_data")).load(["raft_domain_retrieval"])["tasks"][
        "raft_domain_retrieval"
    ]
    docs = list(task.eval_docs)
    assert [d["question"] for d in docs] == [r["question"] for r in rows]
    for doc, row, hits in zip(docs, rows, expected, strict=True):
        # the documents are the top 4 of the pool for the question, in rank order, not the row's
        assert doc["documents"] == [pool[j]["text"] for j in hits] and len(hits) == 4
        assert doc["retrieved_ids"] == [pool[j]["id"] for j in hits]
        assert doc["oracle_retrieved"] is (row["chunk_id"] in doc["retrieved_ids"]) is doc["has_oracle"]
        if doc["oracle_retrieved"]:
            assert doc["documents"][doc["oracle_index"]] == pool[int(row["chunk_id"][1:])]["text"]
        # the same student prompt and target as raft_domain
        assert task.doc_to_text(doc) == student_prompt(doc["documents"], row["question"])
        assert task.doc_to_target(doc) == row["final_answer"]
    # the row's own oracle_index does not matter: its question still finds its chunk
    assert docs[1]["oracle_retrieved"] and rows[1]["oracle_index"] is None
    assert (
        task.config.generation_kwargs
        == manager(raft_domain_data=str(tmp_path / "raft_data"))
        .load(["raft_domain"])["tasks"]["raft_domain"]
        .config.generation_kwargs
    )
    assert task.config.generation_kwargs["max_gen_toks"] == 800
    assert {"oracle_retrieved", "f1_oracle", "f1_no_oracle", "em_oracle", "em_no_oracle"} <= set(
        task.aggregation()
    )

    # k: metadata, else RAFT_RETRIEVAL_K, else the task's 4; from a JSONL file, chunks.jsonl beside it
    test_file = str(tmp_path / "raft_data" / "test.jsonl")
    assert len(utils.load_retrieval(raft_domain_data=test_file)["test"][0]["documents"]) == 4
    monkeypatch.setenv("RAFT_RETRIEVAL_K", "2")
    assert len(utils.load_retrieval(raft_domain_data=test_file)["test"][0]["documents"]) == 2
    one = utils.load_retrieval(raft_domain_data=test_file, raft_retrieval_k=1)["test"]
    assert [d["documents"] for d in one] == [[pool[h[0]]["text"]] for h in expected]
    monkeypatch.setenv("RAFT_RETRIEVAL_K", "0")
    with pytest.raises(ConfigError, match="RAFT_RETRIEVAL_K"):
        utils.load_retrieval(raft_domain_data=test_file)
    monkeypatch.delenv("RAFT_RETRIEVAL_K")

    # scoring: oracle_retrieved is a 0/1 metric, the split follows it
    doc = docs[0]
    scored = utils.process_results_retrieval(doc, [f"{ANSWER_TAG} {doc['final_answer']}"])
    assert scored["oracle_retrieved"] == float(doc["oracle_retrieved"])
    assert scored["f1_oracle"] == (1.0, doc["oracle_retrieved"]) and scored["f1"] == 1.0


def test_raft_domain_retrieval_errors_are_one_line(shared_data, tmp_path):
    utils = _utils("raft_domain")
    make_domain_folder(shared_data, tmp_path / "raft_data", n_test=2)
    (tmp_path / "raft_data" / "chunks.jsonl").unlink()  # a folder from an older raft.generate
    with pytest.raises(ConfigError) as e:
        utils.load_retrieval(raft_domain_data=str(tmp_path / "raft_data"))
    message = str(e.value)
    assert "\n" not in message and "chunks.jsonl" in message and "raft_data" in message
    assert "re-run raft.generate with this version, or use raft_domain" in message
    # the same through lm-eval
    with pytest.raises(ConfigError, match="use raft_domain"):
        manager(raft_domain_data=str(tmp_path / "raft_data")).load(["raft_domain_retrieval"])
    (tmp_path / "raft_data" / "chunks.jsonl").write_text('{"id": "other", "text": "t"}\n')
    with pytest.raises(ConfigError, match="chunk_id 'c0' is not in chunks.jsonl"):
        utils.load_retrieval(raft_domain_data=str(tmp_path / "raft_data"))
    with pytest.raises(ConfigError, match="RAFT_DOMAIN_DATA"):
        utils.load_retrieval()


def _unanswerable_folder(folder: Path, answerable_column: bool = True) -> list[dict]:
    """A hand-made raft.generate-style folder: test.jsonl (two answerable rows with the oracle at index 1
    and 0, one whose oracle was dropped, two unanswerable rows) and chunks.jsonl."""
    docs = ["Paris is the capital of France.", "Bern is the capital of Switzerland.", "Rome is in Italy."]
    rows = [
        {"id": "a", "question": "Capital of Switzerland?", "documents": docs, "final_answer": "Bern", "oracle_index": 1, "chunk_id": "c1"},
        {"id": "b", "question": "Capital of France?", "documents": docs, "final_answer": "Paris", "oracle_index": 0, "chunk_id": "c0"},
        {"id": "c", "question": "Country of Rome?", "documents": docs[:2], "final_answer": "Italy", "oracle_index": None, "chunk_id": "c2"},
        {"id": "d", "question": "Capital of Spain?", "documents": docs, "final_answer": DECLINE_ANSWER, "oracle_index": None, "chunk_id": None, "answerable": False},
        {"id": "e", "question": "Capital of Peru?", "documents": docs, "final_answer": DECLINE_ANSWER, "oracle_index": None, "chunk_id": "c0", "answerable": False},
    ]  # fmt: skip
    if answerable_column:
        for r in rows[:3]:
            r["answerable"] = True
    else:
        rows = rows[:3]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    chunks = [{"id": f"c{j}", "text": t} for j, t in enumerate(docs)]
    (folder / "chunks.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chunks), encoding="utf-8")
    return rows


def test_raft_domain_decline_rates_and_f1_by_oracle_position(tmp_path):
    """decline_unanswerable / decline_answerable count declines on each side; unanswerable rows stay in
    F1 / EM but out of the oracle split and of f1_pos<i>, which averages the rows with the oracle there."""
    rows = _unanswerable_folder(tmp_path / "raft_data")
    utils = _utils("raft_domain")
    task = manager(raft_domain_data=str(tmp_path / "raft_data")).load(["raft_domain"])["tasks"]["raft_domain"]
    docs = list(task.eval_docs)
    assert [d["answerable"] for d in docs] == [True, True, True, False, False]
    assert [d["has_oracle"] for d in docs] == [True, True, False, None, None]  # unanswerable: no oracle at all
    decline = f"No document says.\n{ANSWER_TAG} {DECLINE_ANSWER}"
    # a wrong decline on row a, right answers on b, a guess on c, a decline on d, a guess on e
    outputs = [decline, f"{ANSWER_TAG} Paris", f"{ANSWER_TAG} Rome", decline, f"{ANSWER_TAG} Lima"]
    per_doc = [utils.process_results(d, [out]) for d, out in zip(docs, outputs, strict=True)]
    agg = task.aggregation()
    assert {"decline_unanswerable", "decline_answerable", "f1_pos0", "f1_pos19"} <= set(agg)
    assert "f1_pos20" not in agg
    values = {m: agg[m]([r[m] for r in per_doc]) for m in agg}
    assert values["decline_unanswerable"] == 0.5  # d declined, e guessed
    assert values["decline_answerable"] == pytest.approx(1 / 3)  # a of a, b, c
    assert values["f1"] == pytest.approx(2 / 5)  # b, and d whose gold is the decline
    assert values["has_oracle"] == pytest.approx(2 / 3)  # a, b with the oracle; c without; d, e left out
    assert values["f1_oracle"] == 0.5 and values["f1_no_oracle"] == 0.0  # a, b; c (d, e in neither)
    assert values["f1_pos0"] == 1.0 and values["f1_pos1"] == 0.0  # b at index 0, a at index 1
    assert all(math.isnan(values[f"f1_pos{i}"]) for i in range(2, 20))  # no row has its oracle there
    assert per_doc[3]["f1_pos0"] == (1.0, False) and not any(per_doc[3][f"f1_pos{i}"][1] for i in range(20))

    # older data without the column: every row answerable, no unanswerable rate
    _unanswerable_folder(tmp_path / "old", answerable_column=False)
    old = utils.load(raft_domain_data=str(tmp_path / "old"))["test"].to_list()
    assert "answerable" not in old[0] and [d["has_oracle"] for d in old] == [True, True, False]
    scored = [utils.process_results(d, [out]) for d, out in zip(old, outputs[:3], strict=True)]
    assert math.isnan(utils.mean_where([r["decline_unanswerable"] for r in scored]))
    assert utils.mean_where([r["decline_answerable"] for r in scored]) == pytest.approx(1 / 3)
    assert utils.mean_where([r["f1_pos1"] for r in scored]) == 0.0

    # retrieval: the unanswerable questions (one without a chunk_id) are out of oracle_retrieved and its split
    task = manager(raft_domain_data=str(tmp_path / "raft_data")).load(["raft_domain_retrieval"])["tasks"][
        "raft_domain_retrieval"
    ]
    docs = list(task.eval_docs)
    assert [d["answerable"] for d in docs] == [r.get("answerable", True) for r in rows]
    assert [d["oracle_retrieved"] for d in docs[3:]] == [None, None] and all(d["oracle_retrieved"] for d in docs[:3])
    per_doc = [utils.process_results_retrieval(d, [out]) for d, out in zip(docs, outputs, strict=True)]
    assert per_doc[0]["oracle_retrieved"] == 1.0 and per_doc[3]["oracle_retrieved"] is None
    agg = task.aggregation()
    assert "f1_pos0" not in agg
    values = {m: agg[m]([r[m] for r in per_doc]) for m in agg}
    assert values["oracle_retrieved"] == 1.0 and values["f1_oracle"] == pytest.approx(1 / 3)
    assert math.isnan(values["f1_no_oracle"])
    assert values["decline_unanswerable"] == 0.5 and values["decline_answerable"] == pytest.approx(1 / 3)
    assert math.isnan(utils.mean_known([None, None])) and utils.mean_known([1.0, None, 0.0]) == 0.5


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
def test_raft_domain_split_against_a_server(teacher, shared_data, tmp_path):
    """The fake teacher answers right exactly when the oracle is in view: f1_oracle 1, f1_no_oracle 0."""
    rows = make_domain_folder(shared_data, tmp_path / "raft_data", n_test=4, no_oracle=(2,))
    args = {
        "model": "fake-teacher",
        "base_url": f"{teacher.base_url}/chat/completions",
        "tokenized_requests": False,
    }
    meta = {"raft_domain_data": str(tmp_path / "raft_data")}
    results = _evaluate("local-chat-completions", args, ["raft_domain"], meta, limit=None, max_gen_toks=800)
    m = results["results"]["raft_domain"]
    assert m["f1,none"] == m["em,none"] == 0.75 and m["answer_found,none"] == 1.0
    assert m["has_oracle,none"] == 0.75
    assert m["f1_oracle,none"] == m["em_oracle,none"] == 1.0
    assert m["f1_no_oracle,none"] == m["em_no_oracle,none"] == 0.0
    assert m["f1_oracle_stderr,none"] == "N/A"  # no closed form for the custom aggregation
    samples = sorted(results["samples"]["raft_domain"], key=lambda s: s["doc_id"])
    assert [s["doc"]["has_oracle"] for s in samples] == [r["oracle_index"] is not None for r in rows]
    assert [s["f1"] for s in samples] == [1.0, 1.0, 0.0, 1.0]

    # a test split with the oracle in every row: the no-oracle split is NaN, the rest as before
    make_domain_folder(shared_data, tmp_path / "all_oracle", n_test=2)
    meta = {"raft_domain_data": str(tmp_path / "all_oracle")}
    m = _evaluate("local-chat-completions", args, ["raft_domain"], meta, limit=None, max_gen_toks=800)[
        "results"
    ]["raft_domain"]
    assert m["f1_oracle,none"] == 1.0 and m["has_oracle,none"] == 1.0
    assert math.isnan(m["f1_no_oracle,none"]) and math.isnan(m["em_no_oracle,none"])


@pytest.mark.slow
def test_raft_domain_retrieval_against_a_server(teacher, shared_data, tmp_path):
    """Retrieval in the loop at k=1. A decoy chunk that repeats question 0's phrase (followed by
    other words) outranks its oracle, so the fake teacher answers from the decoy: F1 0, oracle not
    retrieved. The fake teacher answers right exactly when the retrieved chunk is the oracle."""
    rows = make_domain_folder(shared_data, tmp_path / "raft_data", n_test=4)
    phrase = re.search(r"«(.+?)»", rows[0]["question"]).group(1)
    decoy = f"{phrase} decoy words here. {phrase} decoy words here."
    with (tmp_path / "raft_data" / "chunks.jsonl").open("a") as f:
        f.write(json.dumps({"id": "decoy", "text": decoy, "source": "x", "title": "x"}) + "\n")
    pool = [json.loads(line) for line in (tmp_path / "raft_data" / "chunks.jsonl").read_text().splitlines()]
    top = _utils("raft_domain").Retriever([c["text"] for c in pool]).top_k([r["question"] for r in rows], 1)
    retrieved = [pool[h[0]]["id"] == r["chunk_id"] for h, r in zip(top, rows, strict=True)]
    assert pool[top[0][0]]["id"] == "decoy" and 0 < sum(retrieved) < len(rows)

    args = {
        "model": "fake-teacher",
        "base_url": f"{teacher.base_url}/chat/completions",
        "tokenized_requests": False,
    }
    meta = {"raft_domain_data": str(tmp_path / "raft_data"), "raft_retrieval_k": 1}
    results = _evaluate(
        "local-chat-completions", args, ["raft_domain_retrieval"], meta, limit=None, max_gen_toks=800
    )
    m = results["results"]["raft_domain_retrieval"]
    share = sum(retrieved) / len(rows)
    assert m["oracle_retrieved,none"] == share and m["f1,none"] == share and m["answer_found,none"] == 1.0
    assert m["f1_oracle,none"] == m["em_oracle,none"] == 1.0
    assert m["f1_no_oracle,none"] == m["em_no_oracle,none"] == 0.0
    assert teacher.stats.by_kind.get("student") == len(rows)
    for s in results["samples"]["raft_domain_retrieval"]:
        doc, row, hit = s["doc"], rows[s["doc_id"]], top[s["doc_id"]]
        assert doc["retrieved_ids"] == [pool[hit[0]]["id"]] and doc["documents"] == [pool[hit[0]]["text"]]
        assert s["oracle_retrieved"] == float(retrieved[s["doc_id"]]) == s["f1"]
        # the server got the student prompt over the retrieved chunk, not the row's documents
        prompt = s["arguments"][0][0]
        messages = json.loads(prompt[0] if isinstance(prompt, tuple) else prompt)
        assert messages == [{"role": "user", "content": student_prompt(doc["documents"], row["question"])}]
        if s["doc_id"] == 0:
            assert "decoy words here" in s["filtered_resps"][0]


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
