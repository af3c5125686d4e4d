"""Every prompt of the project, in one place.

- ``student_prompt``: what the fine-tuned model sees, in training (raft.generate writes it into the
  dataset) and in evaluation (the lm-eval tasks call the same function). One template for both.
- ``question_messages``: the teacher writes questions about one chunk.
- ``answer_messages``: the teacher writes the chain-of-thought answer against the documents.
- ``bio_label_messages`` / ``bio_prompt`` / ``bio_example``: the bio needle-in-a-haystack labels (teacher)
  and the student prompt (training and evaluation).
- ``in2_qa_messages`` / ``in2_example``: IN2 question-answer pairs (teacher) and the long-context student row.
- ``response_format``: the reply format a structured-output request asks for (a pydantic model's JSON
  schema: the bio labels, the IN2 question-answer pairs).

- ``DECLINE_ANSWER`` / ``decline_answer``: the fixed target of an unanswerable row (``raft.unanswerable_share``):
  no document holds the answer, and the student says so in this form.

The answer format (from the RAFT paper and its reference code): reasoning step by step, text copied
from the documents wrapped in ``##begin_quote##`` ... ``##end_quote##``, and a last line
``<ANSWER>: final answer``.
"""

from __future__ import annotations

from typing import Any

BEGIN_QUOTE = "##begin_quote##"
END_QUOTE = "##end_quote##"
ANSWER_TAG = "<ANSWER>:"
# an unanswerable row's final answer (raft.unanswerable_share): the documents hold no answer. Fixed, so the
# evaluation can tell a decline from an answer (raft.metrics.declines); ChatRAG Bench scores the same skill
DECLINE_ANSWER = "The documents do not contain the answer."

STUDENT_INSTRUCTION = (
    "Answer the question using the documents above. Think step by step, copy the sentences that "
    f"support the answer between {BEGIN_QUOTE} and {END_QUOTE}, and end with a line "
    f"'{ANSWER_TAG} <final answer>'."
)


def format_documents(documents: list[str]) -> str:
    return "".join(f"<DOCUMENT>{doc}</DOCUMENT>\n" for doc in documents)


def decline_answer() -> str:
    """The chain-of-thought target of an unanswerable row: no quote (nothing to quote), then the decline."""
    return (
        "None of the documents says what the question asks; answering would mean guessing, so the answer is "
        f"that the documents do not contain it.\n{ANSWER_TAG} {DECLINE_ANSWER}"
    )


def student_prompt(documents: list[str], question: str) -> str:
    """The student's input: each document in a <DOCUMENT> block (already shuffled), then the question."""
    return f"{format_documents(documents)}\nQuestion: {question}\n\n{STUDENT_INSTRUCTION}"


QUESTION_SYSTEM = (
    "You are a synthetic question-answer pair generator. Given a chunk of context about some topic, "
    "generate {n} example questions a user could ask and would be answered using information from the "
    "chunk. The questions should be able to be answered in a few words or less. Write one question per "
    "line and nothing else."
)


def question_messages(chunk: str, n: int) -> list[dict[str, str]]:
    """Chat messages asking the teacher for ``n`` questions about ``chunk`` (one per line)."""
    return [
        {"role": "system", "content": QUESTION_SYSTEM.format(n=n)},
        {"role": "user", "content": f"<CHUNK>\n{chunk}\n</CHUNK>"},
    ]


ANSWER_SYSTEM = (
    "You are a helpful question answerer who can provide an answer given a question and relevant context."
)

ANSWER_INSTRUCTIONS = f"""Answer this question using the information given in the context above. Here are things to pay attention to:
- First provide step-by-step reasoning on how to answer the question.
- In the reasoning, if you need to copy paste some sentences from the context, include them in {BEGIN_QUOTE} and {END_QUOTE}. This means that things outside of {BEGIN_QUOTE} and {END_QUOTE} are not directly copy paste from the context.
- Only copy text that appears word for word in the context.
- End your response with the final answer in the form {ANSWER_TAG} $answer, the answer should be succinct.
You MUST begin your final answer with the tag "{ANSWER_TAG}"."""


def answer_messages(question: str, documents: list[str]) -> list[dict[str, str]]:
    """Chat messages asking the teacher for a chain-of-thought answer to ``question`` over ``documents``."""
    return [
        {"role": "system", "content": ANSWER_SYSTEM},
        {"role": "user", "content": f"{format_documents(documents)}\nQuestion: {question}\n\n{ANSWER_INSTRUCTIONS}"},
    ]


def student_example(documents: list[str], question: str, answer: str) -> dict[str, list[dict[str, str]]]:
    """Ready-to-train columns in TRL's conversational formats, built from the one student template.

    ``prompt``/``completion`` give TRL a completion-only loss; ``messages`` is the same conversation
    for assistant-only loss with a chat template that marks the assistant part.
    """
    user = {"role": "user", "content": student_prompt(documents, question)}
    assistant = {"role": "assistant", "content": answer}
    return {"messages": [user, assistant], "prompt": [user], "completion": [assistant]}


def response_format(model: Any, name: str) -> dict[str, Any]:
    """The ``response_format`` of a structured-output request (vLLM guided decoding and OpenAI): the JSON
    schema of ``model`` (a pydantic model class), under ``name``."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": model.model_json_schema(), "strict": True}}


# ------------------------------------------------------------------------------------ bio needle

BIO_FIELDS_TEXT = (
    "nationality (a demonym such as \"American\", or \"unknown\"), date_of_birth and date_of_death as "
    "{day, month, year} (0 for an unknown part), sportsperson (true/false), politician (true/false)"
)

BIO_LABEL_SYSTEM = "You are a helpful assistant that extracts information about a person in json."


def bio_label_messages(bio: str, name: str) -> list[dict[str, str]]:
    """The teacher labels one biography (in JSON-schema mode: raft.kinds.bio_needle.schema.response_format())."""
    return [
        {"role": "system", "content": BIO_LABEL_SYSTEM},
        {"role": "user", "content": f"{bio}\nGiven this information, extract information about {name}: {BIO_FIELDS_TEXT}."},
    ]


def bio_prompt(haystack: str, name: str) -> str:
    """The student's input in the bio needle-in-a-haystack task, in training and in evaluation (one
    user turn: the published system line, the biographies, then the question with the fields asked)."""
    return (
        f"{BIO_LABEL_SYSTEM}\n\n{haystack}\n\nGiven this information, extract information about {name} "
        f"as one JSON object with the fields {BIO_FIELDS_TEXT}."
    )


def bio_example(haystack: str, name: str, target: str) -> dict[str, list[dict[str, str]]]:
    """Ready-to-train columns (as ``student_example``) for one bio needle row; ``target`` is compact JSON."""
    user = {"role": "user", "content": bio_prompt(haystack, name)}
    assistant = {"role": "assistant", "content": target}
    return {"messages": [user, assistant], "prompt": [user], "completion": [assistant]}


# ------------------------------------------------------------------------------------ IN2

IN2_SYSTEM = (
    "You write one question-answer pair for reading-comprehension training. The question must be specific and "
    "answerable on its own by someone who has the text but has not seen this instruction: never write 'according "
    "to the text', 'in this passage', 'the context' or 'the segment'. The answer is short: a few words, copied or "
    "closely paraphrased from the text. Reply with JSON: {\"question\": ..., \"answer\": ...}."
)


def in2_qa_messages(segments: list[str]) -> list[dict[str, str]]:
    """The teacher writes one QA pair: about one segment (fine-grained information awareness), or one that
    needs every given segment, combined (integration and reasoning). JSON-schema mode (raft.kinds.in2.kind)."""
    if len(segments) == 1:
        task = "Write a question whose answer is a specific detail stated in this text."
        text = segments[0]
    else:
        task = (f"Write a question that can only be answered by combining information from all {len(segments)} "
                "texts below (for example comparing, counting or relating facts from each).")
        text = "\n\n".join(f"<TEXT {i + 1}>\n{s}\n</TEXT {i + 1}>" for i, s in enumerate(segments))
    return [{"role": "system", "content": IN2_SYSTEM}, {"role": "user", "content": f"{task}\n\n{text}"}]


IN2_INSTRUCTION = "Answer the question using the text above. Give a short answer."


def in2_example(context: str, question: str, answer: str) -> dict[str, list[dict[str, str]]]:
    """Ready-to-train columns for one IN2 row: the long context, then the question; the loss is on the answer."""
    user = {"role": "user", "content": f"{context}\n\nQuestion: {question}\n\n{IN2_INSTRUCTION}"}
    assistant = {"role": "assistant", "content": answer}
    return {"messages": [user, assistant], "prompt": [user], "completion": [assistant]}
