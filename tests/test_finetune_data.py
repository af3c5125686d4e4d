"""raft.finetune.data on the tiny model's tokenizer: fitting examples into max_length (documents
shortened, the answer never cut) and the data sources it reads.

The fixtures here write a dataset at test time in the layout raft.generate writes (dataset/
DatasetDict with train/test, train.jsonl, test.jsonl, the contract's columns) from the shared
HotpotQA examples, with the fake teacher's chain-of-thought answers (raft.testing.fake_answer);
the training tests in tests/test_finetune.py use them too.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from raft.finetune.data import _n_tokens, fit_example, fit_split, load_data, rebuild_prompt
from raft.finetune.model import load_tokenizer
from raft.prompts import student_example
from raft.sources.hotpot import load_hotpot, paragraph_text, paragraphs
from raft.testing import fake_answer, fake_questions

HOTPOT = "hotpotqa/hotpot_dev_distractor_first100.json"


# --------------------------------------------------------------------------------------------------
# fixtures: a dataset in raft.generate's layout
# --------------------------------------------------------------------------------------------------


def raft_rows(examples: list[dict], n_docs: int = 4, doc_chars: int | None = 200, seed: int = 0) -> list[dict]:
    """Rows with the contract's columns: oracle = first supporting paragraph, shuffled distractors."""
    rng = random.Random(seed)
    rows = []
    for ex in examples:
        paras = [paragraph_text(t, x) for t, x in paragraphs(ex)]
        support = {t for t, _ in ex["supporting_facts"]}
        oracle = next((p for (t, _), p in zip(paragraphs(ex), paras, strict=True) if t in support), paras[0])
        if doc_chars:
            oracle = oracle[:doc_chars]
        question = fake_questions(oracle, 1)[0].split(". ", 1)[1]
        others = [p[:doc_chars] if doc_chars else p for p in paras if not p.startswith(oracle[:40])]
        documents = [oracle, *rng.sample(others, min(n_docs - 1, len(others)))]
        rng.shuffle(documents)
        answer = fake_answer(question, documents)
        rows.append(
            {
                "id": ex["_id"],
                "question": question,
                "documents": documents,
                "oracle_index": documents.index(oracle),
                "cot_answer": answer,
                "final_answer": answer.rsplit("<ANSWER>:", 1)[-1].strip(),
                "chunk_id": ex["_id"] + "-0",
                "source": "hotpot",
                **student_example(documents, question, answer),
            }
        )
    return rows


def write_raft_folder(folder: Path, train: list[dict], test: list[dict]) -> Path:
    """The contract's layout: dataset/ (DatasetDict train/test), train.jsonl, test.jsonl, README.md."""
    import datasets

    folder.mkdir(parents=True, exist_ok=True)
    dd = datasets.DatasetDict({s: datasets.Dataset.from_list(r) for s, r in (("train", train), ("test", test)) if r})
    dd.save_to_disk(str(folder / "dataset"))
    for split, rows in (("train", train), ("test", test)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "README.md").write_text("# test dataset in raft.generate's layout\n")
    return folder


@pytest.fixture(scope="session")
def hotpot_examples(shared_data) -> list[dict]:
    return load_hotpot(shared_data / HOTPOT, limit=48)


@pytest.fixture(scope="session")
def raft_data(tmp_path_factory, hotpot_examples) -> Path:
    """40 train + 8 test rows, 4 documents of <= 400 characters (most fit 512 tiny-model tokens)."""
    rows = raft_rows(hotpot_examples)
    return write_raft_folder(tmp_path_factory.mktemp("raft_data"), rows[:40], rows[40:])


# --------------------------------------------------------------------------------------------------
# fitting examples into max_length
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(str(tiny_model))


def test_truncate_documents_shortens_the_longest_and_keeps_the_answer(tokenizer, hotpot_examples):
    row = raft_rows(hotpot_examples[:1], doc_chars=None)[0]
    row["documents"][0] = row["documents"][0][:60]  # one short document that must stay whole
    row.update(student_example(row["documents"], row["question"], row["cot_answer"]))
    full = _n_tokens(tokenizer, row["prompt"] + row["completion"])
    limit = full - 150
    outcome, kept, n = fit_example(row, tokenizer, limit, "truncate_documents")
    assert outcome == "truncated" and n <= limit
    assert n == _n_tokens(tokenizer, kept["prompt"] + kept["completion"])
    assert kept["completion"] == row["completion"]  # the answer is never cut
    text = kept["prompt"][-1]["content"]
    assert text.endswith(row["question"] + text.split(row["question"], 1)[1])
    assert f"<DOCUMENT>{row['documents'][0]}</DOCUMENT>" in text  # short document untouched
    longest = max(row["documents"], key=len)
    assert f"<DOCUMENT>{longest}</DOCUMENT>" not in text and f"<DOCUMENT>{longest[:50]}" in text
    assert fit_example(row, tokenizer, limit, "drop")[0] == "dropped"
    assert fit_example(row, tokenizer, full, "drop")[0] == "fits"
    answer_only = _n_tokens(tokenizer, rebuild_prompt(row["prompt"], [""] * 4, row["question"]) + row["completion"])
    assert fit_example(row, tokenizer, answer_only - 1, "truncate_documents")[0] == "answer_too_long"
    no_docs = {"prompt": row["prompt"], "completion": row["completion"]}  # hub/JSONL data without documents
    assert fit_example(no_docs, tokenizer, limit, "truncate_documents")[0] == "not_shortenable"
    assert fit_example(no_docs, tokenizer, limit, "drop")[0] == "dropped"


def test_only_raft_student_prompts_are_shortened(tokenizer, hotpot_examples, capsys):
    """An in2 row has documents (its gold segments) and a question, but its prompt is a long context:
    rebuilding it as a RAFT student prompt would drop the context. It is dropped and counted instead."""
    import datasets

    from raft.finetune.data import is_student_prompt
    from raft.prompts import in2_example

    raft_row = raft_rows(hotpot_examples[:1], doc_chars=None)[0]
    assert is_student_prompt(raft_row)
    gold = [paragraph_text(t, x) for t, x in paragraphs(hotpot_examples[1])][:2]
    filler = [paragraph_text(t, x) for ex in hotpot_examples[2:8] for t, x in paragraphs(ex)]
    context = "\n\n".join(filler[:10] + gold[:1] + filler[10:20] + gold[1:])
    in2_row = {"id": "in2-0", "question": "Which two things are described?", "documents": gold, "oracle_index": None,
               **in2_example(context, "Which two things are described?", "Both are described. <ANSWER>: both")}
    assert not is_student_prompt(in2_row)
    full = _n_tokens(tokenizer, in2_row["prompt"] + in2_row["completion"])
    limit = full // 3
    outcome, kept, n = fit_example(in2_row, tokenizer, limit, "truncate_documents")
    assert (outcome, kept, n) == ("not_shortenable", None, full)
    edited = dict(raft_row, prompt=[{"role": "user", "content": raft_row["prompt"][-1]["content"] + " Be brief."}])
    assert not is_student_prompt(edited)  # a RAFT row whose prompt was changed is not rebuilt either
    short = _n_tokens(tokenizer, raft_row["prompt"] + raft_row["completion"]) - 100
    assert fit_example(edited, tokenizer, short, "truncate_documents")[0] == "not_shortenable"
    assert fit_example(raft_row, tokenizer, short, "truncate_documents")[0] == "truncated"

    cols = ["id", "question", "documents", "prompt", "completion"]
    rows = [{k: r[k] for k in cols} for r in (in2_row, edited, raft_row)]
    out, stats = fit_split(datasets.Dataset.from_list(rows), tokenizer, short, "truncate_documents", "train")
    assert stats["dropped_not_shortenable"] == 2 and stats["dropped_overlong"] == 2
    assert stats["truncated_documents"] == stats["kept"] == len(out) == 1
    assert out[0]["prompt"][-1]["content"].endswith(raft_row["prompt"][-1]["content"].split("Question:", 1)[1])

    from raft.config import FinetuneConfig
    from raft.finetune.data import prepare_data

    cfg = FinetuneConfig(data="in-memory")
    cfg.train.max_length = short
    prepare_data(cfg, tokenizer, datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)}), None)
    logged = capsys.readouterr().out
    assert "1 fitted by shortening their documents, 2 dropped (2 of them because their prompt is not the RAFT student prompt" in logged


def test_fit_split_counts(tokenizer, hotpot_examples):
    import datasets

    rows = raft_rows(hotpot_examples[:6], doc_chars=None)
    rows[0]["completion"] = [{"role": "assistant", "content": "word " * 600}]
    out, stats = fit_split(datasets.Dataset.from_list(rows), tokenizer, 400, "truncate_documents", "train")
    assert stats["examples"] == 6 and stats["dropped_answer_too_long"] == 1 and stats["kept"] == len(out) == 5
    assert stats["truncated_documents"] == stats["overlong"] - 1 > 0
    assert set(out.column_names) == {"prompt", "completion"}
    assert stats["tokens"] == sum(_n_tokens(tokenizer, r["prompt"] + r["completion"]) for r in out)


# --------------------------------------------------------------------------------------------------
# data sources
# --------------------------------------------------------------------------------------------------


def test_load_data_accepts_the_folder_its_dataset_and_jsonl(raft_data):
    for source in (raft_data, raft_data / "dataset", raft_data / "train.jsonl"):
        data = load_data(str(source))
        assert len(data["train"]) == 40 and len(data["test"]) == 8, source
        assert data["train"][0]["completion"][0]["role"] == "assistant"
    only_train = load_data(str(raft_data / "test.jsonl"))
    assert list(only_train) == ["train"] and len(only_train["train"]) == 8
