"""raft.sources.hotpot: both layouts, clear errors, and the HotpotQA chunks (deduplicated context paragraphs)."""

from __future__ import annotations

import json

import pytest

from raft.sources.hotpot import (
    HotpotError,
    hotpot_chunks,
    load_hotpot,
    paragraph_text,
    paragraphs,
    training_chunks,
)

FIRST100 = "hotpotqa/hotpot_dev_distractor_first100.json"


@pytest.fixture(scope="module")
def examples(shared_data):
    return load_hotpot(shared_data / FIRST100)


def to_hf_layout(row: dict) -> dict:
    """An original-layout example as the hub's ``hotpotqa/hotpot_qa`` rows look."""
    return {
        "id": row["_id"],
        "question": row["question"],
        "answer": row["answer"],
        "type": row["type"],
        "level": row["level"],
        "supporting_facts": {"title": [t for t, _ in row["supporting_facts"]], "sent_id": [i for _, i in row["supporting_facts"]]},
        "context": {"title": [t for t, _ in row["context"]], "sentences": [s for _, s in row["context"]]},
    }


def test_original_and_hf_layouts_load_the_same(examples, tmp_path):
    assert len(examples) == 100
    hf = tmp_path / "hf.jsonl"
    hf.write_text("\n".join(json.dumps(to_hf_layout(r)) for r in examples[:5]))
    assert load_hotpot(hf) == examples[:5]
    assert load_hotpot(hf, limit=2) == examples[:2]


def test_bad_hotpot_files_name_the_file_and_row(tmp_path, examples):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"question": ')
    with pytest.raises(HotpotError, match="broken.json"):
        load_hotpot(broken)
    no_context = tmp_path / "rows.json"
    no_context.write_text(json.dumps([examples[0], {"question": "where?"}]))
    with pytest.raises(HotpotError, match=r"rows.json row 1"):
        load_hotpot(no_context)
    with pytest.raises(HotpotError, match="not a HotpotQA file"):
        load_hotpot(tmp_path / "missing.json")


def test_chunks_are_the_distinct_paragraphs_in_first_seen_order(examples):
    chunks = hotpot_chunks(examples)
    every = [p for ex in examples for p in paragraphs(ex)]
    distinct = set(every)
    assert len(every) > len(distinct)  # the first 100 dev examples share a paragraph
    assert len(chunks) == len(distinct)
    first_seen = list(dict.fromkeys(every))
    assert [(c.title, c.text) for c in chunks] == [(t, paragraph_text(t, x)) for t, x in first_seen]
    assert [c.title for c in chunks[: len(examples[0]["context"])]] == [t for t, _ in examples[0]["context"]]
    assert all(c.source == f"hotpot:{c.title}" and c.text.startswith(c.title + "\n") for c in chunks)


def test_repeated_questions_add_no_chunks_and_ids_are_stable(examples):
    chunks = hotpot_chunks(examples)
    assert hotpot_chunks(examples + examples[:10]) == chunks
    assert [c.id for c in hotpot_chunks(examples)] == [c.id for c in chunks]
    assert len({c.id for c in chunks}) == len(chunks)


def test_limit_takes_the_first_chunks(examples):
    chunks = hotpot_chunks(examples)
    assert hotpot_chunks(examples, limit=100) == chunks[:100]
    assert len(hotpot_chunks(examples, limit=100)) == 100
    assert hotpot_chunks(examples, limit=10_000) == chunks


def test_hf_layout_gives_the_same_chunks(examples, tmp_path):
    mixed = tmp_path / "mixed.json"
    rows = [to_hf_layout(r) if i % 2 else r for i, r in enumerate(examples[:8])]
    mixed.write_text(json.dumps(rows))
    assert hotpot_chunks(load_hotpot(mixed)) == hotpot_chunks(examples[:8])


def test_same_title_with_other_text_gets_its_own_position():
    a = {"context": [["Paris", ["Paris is the capital of France."]]]}
    b = {"context": [["Paris", ["Paris is a city in Texas."]], ["Lyon", ["Lyon is in France."]]]}
    chunks = hotpot_chunks([a, b])
    assert [(c.source, c.position) for c in chunks] == [("hotpot:Paris", 0), ("hotpot:Paris", 1), ("hotpot:Lyon", 0)]
    assert len({c.id for c in chunks}) == 3


def test_clean_chunks_share_no_paragraph_with_evaluated_questions(examples):
    """N = 50 of the shared 100 dev questions count as evaluated: nothing of theirs may be a chunk."""
    chunks, note = training_chunks(examples, "clean", 50)
    evaluated = {paragraph_text(t, x) for ex in examples[:50] for t, x in paragraphs(ex)}
    titles = {t for ex in examples[:50] for t, _ in paragraphs(ex)}
    assert chunks and not ({c.text for c in chunks} & evaluated) and not ({c.title for c in chunks} & titles)
    later = {paragraph_text(t, x) for ex in examples[50:] for t, x in paragraphs(ex)}
    assert {c.text for c in chunks} <= later
    assert len(chunks) == len(hotpot_chunks(examples[50:]))  # in this sample no later question reuses an evaluated article
    assert note.startswith("HotpotQA chunks: clean:") and "0 of them dropped" in note and "first 50" in note
    # a later question whose context reuses an evaluated article (same title, or same text) loses those paragraphs
    reuse = json.loads(json.dumps(examples[60]))
    (title0, sentences0), (_, sentences1) = examples[0]["context"][:2]
    reuse["context"][:2] = [[title0, ["A different paragraph about the same article."]], ["Renamed", sentences1]]
    chunks, note = training_chunks([*examples[:50], reuse, *examples[50:]], "clean", 50)
    assert not ({c.title for c in chunks} & titles) and not ({c.text.split("\n", 1)[1] for c in chunks} & {"".join(sentences1).strip()})
    assert "2 of them dropped" in note


def test_published_chunks_are_the_file_order_and_say_they_are_contaminated(examples):
    chunks, note = training_chunks(examples, "published", 50)
    assert chunks == hotpot_chunks(examples)
    assert chunks[0].text == paragraph_text(*paragraphs(examples[0])[0])  # the first evaluated question's context
    assert "contaminated" in note


def test_clean_chunks_need_questions_beyond_the_evaluated_ones(examples):
    with pytest.raises(HotpotError, match=r"no clean HotpotQA paragraphs: all 100 examples .*hotpot.eval_questions=1000"):
        training_chunks(examples, "clean", 1000)
