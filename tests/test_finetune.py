"""raft.finetune on the tiny model on CPU: LoRA and 4-bit QLoRA runs, reload/merge/generate, resume,
2-process accelerate, overlong handling, dry run without downloads, one-line errors.

The training data is written at test time in the layout raft.generate writes (dataset/ DatasetDict
with train/test, train.jsonl, test.jsonl, the contract's columns) from the shared HotpotQA examples,
with the fake teacher's chain-of-thought answers (raft.testing.fake_answer).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from raft import finetune
from raft.config import ConfigError, available_recipes, load_config, recipe_path, run_cli
from raft.hotpot import load_hotpot, paragraph_text, paragraphs
from raft.prompts import student_example
from raft.testing import fake_answer, fake_questions

REPO = Path(__file__).resolve().parent.parent
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
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_list(train), "test": datasets.Dataset.from_list(test)})
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


def tiny_cfg(tiny_model: Path, data: Path, output: Path, *overrides: str):
    return load_config("finetune", ["recipe=tiny", f"model={tiny_model}", f"data={data}", f"output={output}", *overrides])


def summary_of(output: Path) -> dict:
    return json.loads((output / finetune.SUMMARY_FILE).read_text())
