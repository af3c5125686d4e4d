"""Data, prompt and scoring for the ``raft_hotpot`` lm-eval tasks (HotpotQA dev, distractor setting).

Where the questions come from, first match wins:

1. task metadata ``raft_hotpot_path`` (``lm_eval --metadata '{"raft_hotpot_path": "FILE"}'`` or
   ``TaskManager(metadata=...)``, which ``python -m raft.evaluate data=FILE`` uses),
2. the environment variable ``RAFT_HOTPOT_PATH``,
3. the hub: ``hotpotqa/hotpot_qa``, config ``distractor``, split ``validation``.

A local file may be in the original layout (``hotpot_dev_distractor_v1.json``) or the Hugging Face
layout, JSON or JSONL (``raft.sources.hotpot.load_hotpot``). The questions keep the official order; the task's
``dataset_kwargs.questions`` takes the first N (1,000 for ``raft_hotpot``, all for ``raft_hotpot_full``).
``raft_hotpot_full`` is contaminated for a model trained on this repo's clean HotpotQA chunks (they are
paragraphs of the questions after the first ``hotpot.eval_questions``); ``python -m raft.evaluate``
refuses that combination (``raft.evaluate.lineage``), lm_eval cannot tell.
Each context paragraph becomes one ``<DOCUMENT>`` in the given order, in the same student template
the model was fine-tuned on (``raft.prompts.student_prompt``).
"""

from __future__ import annotations

from typing import Any

import datasets
from raft.eval_tasks.common import data_source

from raft.config import ConfigError
from raft.metrics import score
from raft.prompts import student_prompt
from raft.sources.hotpot import HUB_ID, HotpotError, load_hotpot, paragraph_text, paragraphs

ENV_VAR = "RAFT_HOTPOT_PATH"
METADATA_KEY = "raft_hotpot_path"


def source(metadata: dict[str, Any]) -> tuple[str, str]:
    """(where the setting came from, the path or hub id) for the HotpotQA questions."""
    return data_source(metadata, METADATA_KEY, ENV_VAR, default=HUB_ID)


def load(questions: int | None = None, **metadata: Any) -> datasets.DatasetDict:
    """``custom_dataset`` of the task: a DatasetDict with the split ``validation``."""
    origin, where = source(metadata)
    try:
        examples = load_hotpot(where, split="validation", limit=questions)
    except HotpotError as e:
        hint = f"set {ENV_VAR} to a local HotpotQA file" if origin == "default" else f"check {origin}"
        raise ConfigError(f"raft_hotpot data ({origin}={where}): {e}; {hint}") from None
    except OSError as e:
        raise ConfigError(
            f"raft_hotpot data ({origin}={where}): cannot read ({e.strerror or e}); check {origin}"
        ) from None
    if not examples:
        raise ConfigError(f"raft_hotpot data ({origin}={where}): no questions")
    rows = [
        {
            "id": str(ex["_id"]),
            "question": ex["question"],
            "answer": ex["answer"],
            "type": ex["type"],
            "level": ex["level"],
            "documents": [paragraph_text(title, text) for title, text in paragraphs(ex)],
        }
        for ex in examples
    ]
    return datasets.DatasetDict({"validation": datasets.Dataset.from_list(rows)})


def doc_to_text(doc: dict[str, Any]) -> str:
    return student_prompt(doc["documents"], doc["question"])


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, float]:
    """F1, EM (official HotpotQA rules) and whether the output has the <ANSWER>: tag."""
    return score(results[0], doc["answer"])
