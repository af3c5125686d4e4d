"""The raft kind's part of the dataset card (``raft.generate`` writes it into README.md of the output):
what the rows are, how they were made, their columns."""

from __future__ import annotations

from typing import Any

from raft.prompts import DECLINE_ANSWER


def card(cfg: Any) -> tuple[str, str, str]:
    """(title, what the data is, its columns) of the dataset card, in Markdown."""
    s = cfg.raft
    oracle = (
        f"With probability p = {s.p} the oracle chunk is among the documents; otherwise it is replaced by one more "
        "distractor, `oracle_index` is null and the target answer stays the same (the model learns to answer from "
        "what it memorised and to tolerate a failed retrieval)."
    )
    unanswerable = (
        f"\nAbout {s.unanswerable_share:.0%} of the questions (raft.unanswerable_share) are unanswerable: their documents "
        "are neither the oracle nor any chunk that holds the answer, `answerable` is false, and the target declines "
        f"with `<ANSWER>: {DECLINE_ANSWER}`." if s.unanswerable_share else ""
    )
    context = "the oracle and the same distractors" if s.answer_context == "oracle_and_distractors" else "the oracle chunk alone"
    about = f"""Written by `python -m raft.generate` (recipe `{cfg.recipe or "none"}`) from `{cfg.input}` ({cfg.source}).
Each row is one question about one chunk, with {s.distractors} distractor chunks
({s.distractor_strategy} strategy), shuffled, and a chain-of-thought answer by the teacher that quotes the
oracle between `##begin_quote##` and `##end_quote##` and ends with `<ANSWER>: ...`. {oracle}
The teacher answered with {context} in view. In the test split the oracle is among the documents with
probability test_p = {s.test_p} (the same draw as in training, compared with test_p instead of p), so
held-out questions are scored with their right document unless test_p says otherwise.{unanswerable}"""
    columns = """- `id`: `<chunk_id>#<question number>`; `chunk_id`, `source`: where the oracle chunk comes from
- `question`, `documents` (shuffled, exactly what the student sees), `oracle_index` (null when dropped)
- `cot_answer` (the teacher's chain of thought), `final_answer` (after the last `<ANSWER>:`)
- `answerable` (false for an unanswerable row), `withheld_answer` (its teacher answer, that no document holds)
- `messages` (TRL conversational) and `prompt` / `completion` (TRL prompt-completion), built from the same
  student template the evaluation tasks use (`raft.prompts.student_prompt`)"""
    return "RAFT training data", about, columns
