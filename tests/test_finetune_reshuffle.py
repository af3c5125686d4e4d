"""raft.finetune.reshuffle (``train.reshuffle_documents``): a new seeded document order per epoch for
RAFT rows, other rows as they are, nothing changed by default, and the same optimizer steps.

The data fixtures are those of tests/test_finetune_data.py; one short CPU run per setting on the tiny
model shows that the trainer takes the same number of steps with and without the option.
"""

from __future__ import annotations

import dataclasses

import pytest
import test_finetune_data
from test_finetune_data import raft_rows, write_raft_folder

from raft import finetune
from raft.config import ConfigError, FinetuneConfig, load_config
from raft.finetune.data import is_student_prompt, prepare_data
from raft.finetune.model import load_tokenizer, optimizer_steps
from raft.finetune.outputs import fingerprint
from raft.finetune.reshuffle import document_order, epoch_rows, passes, reshuffle_train
from raft.prompts import in2_example, student_example, student_prompt

hotpot_examples = test_finetune_data.hotpot_examples


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return load_tokenizer(str(tiny_model))


def orders(rows: list[dict]) -> list[list[str]]:
    return [r["documents"] for r in rows]


def test_orders_differ_between_epochs_and_are_seeded(hotpot_examples):
    rows = raft_rows(hotpot_examples[:12])
    first, moved = epoch_rows(rows, 42, 1)
    second, _ = epoch_rows(rows, 42, 2)
    assert moved == 12
    assert epoch_rows(rows, 42, 1)[0] == first  # same seed, same epoch: the same orders
    assert orders(epoch_rows(rows, 43, 1)[0]) != orders(first)  # another seed: other orders
    for a, b in ((rows, first), (first, second), (rows, second)):
        assert sum(x != y for x, y in zip(orders(a), orders(b), strict=True)) >= 9  # 4 documents: 1 in 24 keeps its order
    assert document_order(42, "id-1", 1, 4) == document_order(42, "id-1", 1, 4) != document_order(42, "id-1", 2, 4)
    assert sorted(document_order(7, 3, 5, 6)) == list(range(6))


def test_a_reordered_row_is_the_student_example_of_its_new_documents(hotpot_examples):
    rows = raft_rows(hotpot_examples[:12])
    rows[0] = {**rows[0], "oracle_index": None}  # the oracle dropped: stays None
    for epoch in (1, 2):
        for old, new in zip(rows, epoch_rows(rows, 42, epoch)[0], strict=True):
            assert sorted(new["documents"]) == sorted(old["documents"])
            assert new["prompt"][-1]["content"] == student_prompt(new["documents"], new["question"])
            assert {k: new[k] for k in ("prompt", "completion", "messages")} == student_example(
                new["documents"], new["question"], new["cot_answer"])
            assert new["completion"] == old["completion"] and new["cot_answer"] == old["cot_answer"]
            if old["oracle_index"] is None:
                assert new["oracle_index"] is None
            else:
                assert new["documents"][new["oracle_index"]] == old["documents"][old["oracle_index"]]
            assert is_student_prompt(new)
            assert {k: v for k, v in new.items() if k not in ("documents", "oracle_index", "prompt", "messages")} == \
                {k: v for k, v in old.items() if k not in ("documents", "oracle_index", "prompt", "messages")}


def test_other_rows_are_left_as_they_are(hotpot_examples):
    raft_row = raft_rows(hotpot_examples[:1])[0]
    question = "Which two things are described?"
    in2_row = {"id": "in2-0", "question": question, "documents": raft_row["documents"][:2], "oracle_index": None,
               **in2_example("\n\n".join(raft_row["documents"]), question, "Both. <ANSWER>: both")}
    edited = dict(raft_row, prompt=[{"role": "user", "content": raft_row["prompt"][-1]["content"] + " Be brief."}])
    no_documents = {"id": "hub-0", "prompt": raft_row["prompt"], "completion": raft_row["completion"]}
    rows = [in2_row, edited, no_documents, raft_row]
    out, moved = epoch_rows(rows, 42, 1)
    assert moved == 1 and out[:3] == rows[:3] and out[3] != raft_row


def tiny_settings(**train) -> FinetuneConfig:
    cfg = FinetuneConfig(data="in-memory")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_length=512, **train))


def fitted(cfg: FinetuneConfig, tokenizer, rows: list[dict]):
    import datasets

    raw = datasets.Dataset.from_list(rows)
    train, _, stats = prepare_data(cfg, tokenizer, datasets.DatasetDict({"train": raw}), None)
    return raw, train, stats


def test_the_default_changes_nothing(tokenizer, hotpot_examples):
    cfg = tiny_settings()
    assert cfg.train.reshuffle_documents is False
    raw, train, stats = fitted(cfg, tokenizer, raft_rows(hotpot_examples[:10]))
    before = dict(stats)
    out, run_cfg = reshuffle_train(cfg, tokenizer, raw, train, stats)
    assert out is train and run_cfg is cfg and stats == before
    assert "train.reshuffle_documents" not in fingerprint(cfg)  # runs checkpointed before the setting still resume
    on = tiny_settings(reshuffle_documents=True)
    assert fingerprint(on)["train.reshuffle_documents"] is True


def test_epochs_become_copies_and_the_steps_stay(tokenizer, hotpot_examples, capsys):
    cfg = tiny_settings(reshuffle_documents=True, num_train_epochs=3.0, gradient_accumulation_steps=8)
    rows = raft_rows(hotpot_examples[:16])
    raw, train, stats = fitted(cfg, tokenizer, rows)
    assert len(train) == 16 and passes(cfg, 16) == 3
    out, run_cfg = reshuffle_train(cfg, tokenizer, raw, train, stats)
    assert len(out) == 48 and out[:16] == train[:16]  # the first copy: the split as generated and fitted
    assert run_cfg.train.max_steps == optimizer_steps(cfg, 16) == 6 and cfg.train.max_steps == -1
    assert optimizer_steps(run_cfg, len(out)) == 6
    assert stats["reshuffle_documents"] == {"epochs": 3, "raft_rows": 16, "other_rows": 0, "rows": 48, "optimizer_steps": 6}
    copies = [[p[-1]["content"] for p in out[i * 16:(i + 1) * 16]["prompt"]] for i in range(3)]
    assert copies[1] != copies[0] != copies[2] != copies[1]
    assert [c["content"] for p in out["completion"] for c in p] == [r["cot_answer"] for r in rows] * 3
    assert "reshuffle_documents: 3 epochs of 16 RAFT rows, documents in a new order each after the first " \
           "(the first as generated; 0 other rows as they are): 48 rows, 6 optimizer steps" in capsys.readouterr().out
    # rows that do not fill whole steps (10 rows, 8 per step): the 2 steps of one epoch take 16 rows, 2 passes
    assert (optimizer_steps(cfg, 10), passes(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, num_train_epochs=1)), 10)) == (6, 2)
    assert passes(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_steps=5)), 16) == 3  # 40 rows of 16
    packed = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, packing=True))
    with pytest.raises(ConfigError, match="needs train.max_steps"):
        reshuffle_train(packed, tokenizer, raw, train, stats)


@pytest.mark.usefixtures("one_torch_thread")
def test_the_trainer_takes_the_same_steps(tmp_path, tiny_model, hotpot_examples):
    """10 rows, 4 per optimizer step, 2 epochs: 3 steps per epoch (the last of 2 rows), 6 in all, both ways."""
    data = write_raft_folder(tmp_path / "data", raft_rows(hotpot_examples[:10]), [])
    summaries = {}
    for on in (False, True):
        cfg = load_config("finetune", ["recipe=tiny", f"model={tiny_model}", f"data={data}", f"output={tmp_path / str(on)}",
                                       "train.max_steps=-1", "train.num_train_epochs=2", "train.gradient_accumulation_steps=4",
                                       "train.eval_steps=0", "train.save_steps=0", f"train.reshuffle_documents={str(on).lower()}"])
        summaries[on] = finetune.main(cfg)
    off, on = summaries[False], summaries[True]
    assert off["global_step"] == on["global_step"] == 6
    assert [e["step"] for e in off["loss_curve"]] == [e["step"] for e in on["loss_curve"]] == list(range(1, 7))
    assert on["examples"]["reshuffle_documents"] == {"epochs": 3, "raft_rows": 10, "other_rows": 0, "rows": 30, "optimizer_steps": 6}
    assert off["examples"]["train"] == on["examples"]["train"] and "reshuffle_documents" not in off["examples"]
    assert off["epochs"] == pytest.approx(2.0) and on["epochs"] == pytest.approx(2.4)  # 6 full steps of 4 rows: 24 of 10
