"""The RAFT options of issue 22 on the generation side (raft/kinds/raft): unanswerable rows
(``raft.unanswerable_share``) and retrieved distractors (``distractor_strategy=retrieved``); the real
stand-in teacher over HTTP, the demo documents, the tiny tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import load_from_disk

from raft import generate
from raft.config import ConfigError, load_config
from raft.kinds.raft.retrieval import Retriever
from raft.kinds.raft.samples import contains_answer, shares_text
from raft.prompts import DECLINE_ANSWER, decline_answer, student_prompt

REPO = Path(__file__).resolve().parent.parent


def run(tmp_path: Path, teacher, tiny_model, *args: str, out: str = "out") -> tuple[dict, list[dict], dict[str, str]]:
    cfg = load_config("generate", ["recipe=docs", f"input={REPO / 'raft' / 'demo'}", f"output={tmp_path / out}",
                                   f"tokenizer={tiny_model}", "chunk_size=64", "min_chunk_tokens=8", "test_size=0.25",
                                   "questions_per_chunk=2", f"teacher.base_url={teacher.base_url}", *args])
    result = generate.main(cfg, progress=False)
    rows = [json.loads(line) for split in ("train", "test") for line in (tmp_path / out / f"{split}.jsonl").read_text().splitlines()]
    chunks = {c["id"]: c["text"] for c in map(json.loads, (tmp_path / out / "chunks.jsonl").read_text().splitlines())}
    return result, rows, chunks


def test_unanswerable_rows_hold_no_answer_bearing_document(tmp_path, teacher, tiny_model):
    result, rows, chunks = run(tmp_path, teacher, tiny_model, "unanswerable_share=0.3", "distractors=3")
    unanswerable = [r for r in rows if r["answerable"] is False]
    answerable = [r for r in rows if r["answerable"] is True]
    assert len(unanswerable) + len(answerable) == len(rows) and result["unanswerable"] == len(unanswerable)
    assert 0.15 * len(rows) <= len(unanswerable) <= 0.45 * len(rows)  # a seeded draw per question at 0.3
    for r in unanswerable:
        oracle = chunks[r["chunk_id"]]
        assert r["withheld_answer"] and r["final_answer"] == DECLINE_ANSWER and r["cot_answer"] == decline_answer()
        assert r["oracle_index"] is None and len(r["documents"]) == 4
        assert not [d for d in r["documents"] if contains_answer(d, r["withheld_answer"]) or shares_text(d, oracle)]
        assert r["prompt"][0]["content"] == student_prompt(r["documents"], r["question"])
    for r in answerable:
        assert r["withheld_answer"] == "" and r["final_answer"] != DECLINE_ANSWER
    test_ids = {json.loads(line)["id"] for line in (tmp_path / "out" / "test.jsonl").read_text().splitlines()}
    assert test_ids & {r["id"] for r in unanswerable}  # held out as they are: still without the answer
    dataset = load_from_disk(str(tmp_path / "out" / "dataset"))
    assert dataset["train"].features["answerable"].dtype == "bool"
    assert "unanswerable" in (tmp_path / "out" / "README.md").read_text()

    # the same settings, again: the same rows (the draw is seeded per question, not by call order)
    _, again, _ = run(tmp_path, teacher, tiny_model, "unanswerable_share=0.3", "distractors=3", out="again")
    assert sorted((r["id"], r["answerable"]) for r in again) == sorted((r["id"], r["answerable"]) for r in rows)


def test_the_default_makes_no_unanswerable_row_and_keeps_the_fingerprint(tmp_path, teacher, tiny_model):
    _, rows, _ = run(tmp_path, teacher, tiny_model)
    assert rows and all(r["answerable"] is True for r in rows)
    assert "unanswerable_share" not in json.loads((tmp_path / "out" / "run.json").read_text())


def test_retrieved_distractors_are_what_bm25_retrieves_for_the_question(tmp_path, teacher, tiny_model):
    result, rows, chunks = run(tmp_path, teacher, tiny_model, "distractor_strategy=retrieved", "distractors=3", "p=1", "test_p=1")
    texts = list(chunks.values())
    retriever = Retriever(texts)
    assert rows and "retrieved_skipped_answer" in result
    for r in rows:
        oracle = chunks[r["chunk_id"]]
        ranked = [texts[j] for j in retriever.top_k([r["question"]], len(texts))[0]]
        ranked = [t for t in ranked if t != oracle and not shares_text(t, oracle) and not contains_answer(t, r["final_answer"])]
        shown = [d for i, d in enumerate(r["documents"]) if i != r["oracle_index"]]
        assert r["documents"][r["oracle_index"]] == oracle
        assert sorted(shown) == sorted(ranked[:3])  # the top 3 clean hits for the question, shuffled


@pytest.mark.parametrize(("arg", "message"), [
    ("distractor_strategy=bm25", r"raft.distractor_strategy='bm25' is not random, hard or retrieved"),
    ("unanswerable_share=1.5", r"raft.unanswerable_share=1.5 is not a share between 0 and 1"),
])
def test_bad_option_values_are_one_line_errors(tmp_path, arg, message):
    cfg = load_config("generate", ["recipe=docs", f"input={REPO / 'raft' / 'demo'}", f"output={tmp_path}", arg])
    with pytest.raises(ConfigError, match=message):
        generate.main(cfg, progress=False)
