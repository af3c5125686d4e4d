"""What the stand-in teacher (``raft.testing.server``) answers, read off the prompt: questions about a
chunk (``fake_questions``: each asks for the words that follow a quoted phrase, so the answer must be
read from the oracle), a chain-of-thought answer quoting the document that holds the phrase
(``fake_answer``) and the bio label of a biography (``fake_label``).
"""

from __future__ import annotations

import re

from raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE

PHRASE = re.compile(r"«(.+?)»", re.S)
DOC = re.compile(r"<DOCUMENT>(.*?)</DOCUMENT>", re.S)


def norm(text: str) -> str:
    return " ".join(text.split())


def fake_questions(chunk: str, n: int) -> list[str]:
    """Numbered questions about word windows of the chunk (numbering tests that it gets stripped)."""
    words = chunk.split()
    span = max(1, len(words) - 8)
    out = []
    for i in range(n):
        start = (i * 11 + len(words) // 3) % span
        out.append(f"{i + 1}. Which words follow «{' '.join(words[start:start + 4])}» in the text?")
    return out


def fake_answer(question: str, documents: list[str]) -> str:
    """A chain-of-thought answer quoting the document that holds the question's phrase."""
    m = PHRASE.search(question)
    phrase = norm(m.group(1)) if m else ""
    for doc in documents:
        text = norm(doc)
        at = text.find(phrase) if phrase else -1
        if at >= 0:
            after = text[at + len(phrase):].split()
            answer = " ".join(after[:3]) or "nothing"
            quote = norm(f"{phrase} {' '.join(after[:6])}")
            return (
                f"The question asks which words follow a phrase. One document says {BEGIN_QUOTE}{quote}{END_QUOTE}. "
                f"So the words after the phrase are {answer}.\n{ANSWER_TAG} {answer}"
            )
    return f"None of the documents contains the phrase, so the answer cannot be quoted.\n{ANSWER_TAG} unknown"


BIO_ASK = re.compile(r"Given this information, extract information about (.+?) as one JSON object")
YEAR = re.compile(r"\b(1[5-9]\d\d|20[0-2]\d)\b")


def fake_label(text: str) -> dict:
    """A bio label read off a biography by rules (the stand-in for a teacher in JSON mode): the first
    nationality named, the first two years as birth and death, sportsperson / politician by keywords."""
    from raft.kinds.bio_needle.schema import NATIONALITIES

    lower = text.lower()
    nationality = next((n for n in NATIONALITIES[1:] if re.search(rf"\b{re.escape(n.lower())}\b", lower)), "unknown")
    years = [int(y) for y in YEAR.findall(text)]
    return {
        "nationality": nationality,
        "date_of_birth": {"day": 0, "month": 0, "year": years[0] if years else 0},
        "date_of_death": {"day": 0, "month": 0, "year": years[1] if len(years) > 1 else 0},
        "sportsperson": bool(re.search(r"\b(football|player|athlete|olympic|cricket|rugby|coach)", lower)),
        "politician": bool(re.search(r"\b(politician|minister|senator|parliament|mayor|governor)", lower)),
    }
