"""``train.reshuffle_documents=true`` for raft.finetune: every epoch shows each RAFT row's documents in a
new seeded order, so the student cannot learn where the oracle sits.

TRL's ``SFTTrainer`` prepares its dataset once, so the epochs are materialised: the training split is
repeated E times, where E is the number of passes over the training rows that the run's optimizer
steps consume (``train.num_train_epochs`` rounded up when the rows fill whole steps of batch x
accumulation x processes; with ``train.max_steps``, as many passes as its steps need). The first
copy keeps the order as generated (it is the split fitted as without the option); in copy e >= 1 each
row whose prompt is the RAFT student prompt of its documents (:func:`raft.finetune.data.is_student_prompt`)
gets its documents permuted by ``random.Random`` seeded with (seed, row id, e), ``oracle_index`` moved
with the oracle, and its prompt (and ``messages``) rebuilt from the one student template; the
completion never changes. Other rows (bio_needle, in2) repeat as they are. Each copy is fitted to
``train.max_length`` like the split. The trainer then runs exactly the optimizer steps of the run
without the option (``train.max_steps`` set to them), so the learning-rate schedule and the logging,
evaluation and checkpoint intervals are the same; every step is a full batch x accumulation (without
the option an epoch's last step may hold fewer rows). The evaluation split is never reshuffled.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

from raft.config import ConfigError, FinetuneConfig
from raft.finetune.data import fit_split, is_student_prompt, log, rebuild_prompt
from raft.finetune.model import optimizer_steps


def passes(cfg: FinetuneConfig, rows: int, world_size: int = 1) -> int:
    """E: the passes over ``rows`` training examples that the run's optimizer steps consume."""
    t = cfg.train
    examples = optimizer_steps(cfg, rows, world_size) * t.per_device_train_batch_size * t.gradient_accumulation_steps * world_size
    return max(1, math.ceil(examples / rows))


def document_order(seed: int, row_id: Any, epoch: int, n: int) -> list[int]:
    """The order of a row's ``n`` documents in copy ``epoch``: new_documents[j] = documents[order[j]]."""
    order = list(range(n))
    random.Random(f"{seed}/{row_id}/{epoch}").shuffle(order)
    return order


def reorder(row: dict, order: list[int]) -> dict:
    """``row`` with its documents in ``order``: oracle_index follows the oracle, the prompt (and messages)
    rebuilt with the student prompt of the new documents, everything else (the completion) as it is."""
    documents = [row["documents"][i] for i in order]
    out = {**row, "documents": documents, "prompt": rebuild_prompt(row["prompt"], documents, row["question"])}
    if row.get("oracle_index") is not None:
        out["oracle_index"] = order.index(row["oracle_index"])
    if row.get("messages"):
        out["messages"] = rebuild_prompt(row["messages"], documents, row["question"])
    return out


def epoch_rows(raw: Any, seed: int, epoch: int) -> tuple[list[dict], int]:
    """(copy ``epoch`` of the raw training rows, how many were RAFT rows given a new document order)."""
    rows, moved = [], 0
    for i, row in enumerate(raw):
        if is_student_prompt(row):
            row_id = i if row.get("id") is None else row["id"]
            row = reorder(row, document_order(seed, row_id, epoch, len(row["documents"])))
            moved += 1
        rows.append(row)
    return rows, moved


def reshuffle_train(cfg: FinetuneConfig, tokenizer: Any, raw: Any, train: Any, stats: dict[str, Any],
                    world_size: int = 1) -> tuple[Any, FinetuneConfig]:
    """(the training dataset, the config the trainer runs with); both as given unless
    ``train.reshuffle_documents``. ``raw``: the training split as loaded; ``train``: it fitted by
    :func:`raft.finetune.data.prepare_data`, whose ``stats`` get a ``reshuffle_documents`` entry."""
    t = cfg.train
    if not t.reshuffle_documents:
        return train, cfg
    if t.packing and t.max_steps <= 0:
        raise ConfigError("train.reshuffle_documents=true with train.packing=true needs train.max_steps: "
                          "the optimizer steps of packed epochs are not known before TRL packs them")
    import datasets

    steps = optimizer_steps(cfg, len(train), world_size)
    epochs = passes(cfg, len(train), world_size)
    copies, moved = [train], sum(is_student_prompt(row) for row in raw)
    for epoch in range(1, epochs):
        rows, _ = epoch_rows(raw, cfg.seed, epoch)  # its RAFT rows: `moved`, the same in every copy
        fitted, _ = fit_split(rows, tokenizer, t.max_length, t.overlong, f"train epoch {epoch}")
        if fitted is not None:
            copies.append(fitted)
    out = datasets.concatenate_datasets(copies) if len(copies) > 1 else train
    others = len(raw) - moved
    stats["reshuffle_documents"] = {"epochs": epochs, "raft_rows": moved, "other_rows": others, "rows": len(out),
                                    "optimizer_steps": steps}
    if epochs > 1:
        log(f"reshuffle_documents: {epochs} epochs of {moved} RAFT rows, documents in a new order each after the first "
            f"(the first as generated; {others} other rows as they are): {len(out)} rows, {steps} optimizer steps")
    else:
        log(f"reshuffle_documents: the run's {steps} optimizer steps take one pass over the rows: documents in the order as generated")
    return out, dataclasses.replace(cfg, train=dataclasses.replace(t, max_steps=steps))
