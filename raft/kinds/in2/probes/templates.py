"""The probes' prompt wording (IN2 paper's VAL probing; the lost-in-the-middle key-value task).

Kept here, not in ``raft.prompts``: no training row uses them, and a probe's lengths and depths are
measured on exactly these texts. A prompt is ``PROMPT`` with its probe's instruction, the context
and the question; ``{cue}`` is the quoted beginning, the key or the function's name.
"""

from __future__ import annotations

PROMPT = "{instruction}\n\n{context}\n\n{question}"

INSTRUCTIONS = {
    "document": "Below is a long text made of many passages. A question about one of its sentences follows it.",
    "structured": (
        'Below is a table in JSON Lines format: one record per line, each with a "key" and a "value". '
        "A question about one record follows it."
    ),
    "code": "Below are many Python functions. A question about one of them follows them.",
}

QUESTIONS = {
    "document": (
        'In the text above, one sentence begins with "{cue}". How does that sentence continue? '
        "Write the rest of the sentence, word for word as it is in the text, and nothing else."
    ),
    "structured": 'What is the "value" of the record whose "key" is "{cue}"? Answer with the value only.',
    "code": (
        "What does the function {cue} return? Answer with the expression after its `return`, "
        "exactly as written, and nothing else."
    ),
}


def probe_prompt(probe: str, context: str, cue: str) -> str:
    """The user message of one probe: instruction, context, question."""
    return PROMPT.format(instruction=INSTRUCTIONS[probe], context=context, question=QUESTIONS[probe].format(cue=cue))
