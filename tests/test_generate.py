"""python -m raft.generate end to end: local teacher server, real HotpotQA examples and documents."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import load_from_disk

from raft import generate
from raft.config import ConfigError, load_config
from raft.generate import command, output, pipeline
from raft.kinds.raft.kind import COLUMNS
from raft.kinds.raft.kind import Kind as RaftKind
from raft.kinds.raft.samples import contains_answer, normalize_question, parse_answer
from raft.prompts import ANSWER_TAG, student_example, student_prompt
from raft.sources.chunking import Chunk
from raft.sources.hotpot import hotpot_chunks, load_hotpot, paragraph_text, paragraphs
from raft.store import Store
from raft.teacher import Reply, Teacher
from raft.testing import TeacherBehaviour, TeacherServer

REPO = Path(__file__).resolve().parent.parent
HOTPOT = Path("hotpotqa") / "hotpot_dev_distractor_first100.json"
DEV_QA = Path("hotpotqa") / "hotpot_dev_all_qa.jsonl"
# the shared file has the first 100 dev questions; in these tests the first 60 count as the evaluated ones
# (raft_hotpot's 1,000), so the chunks come from the paragraphs of the last 40 that no evaluated question uses
EVALUATED = 60
FILES = ["recipe.yaml", "dataset", "train.jsonl", "test.jsonl", "rejects.jsonl", "chunks.jsonl", "README.md", "store.jsonl", "run.json"]


def _ws(text: str) -> str:
    return " ".join(text.split())


def hotpot_cfg(tmp_path: Path, teacher: TeacherServer, shared_data: Path, *args: str, out: str = "out"):
    return load_config(
        "generate",
        [
            "recipe=hotpot",
            f"input={shared_data / HOTPOT}",
            f"hotpot.eval_questions={EVALUATED}",
            f"output={tmp_path / out}",
            f"teacher.base_url={teacher.base_url}",
            "teacher.retry_backoff=0.01",
            "teacher.retry_max_delay=0.05",
            *args,
        ],
    )


def read_rows(out: Path) -> list[dict]:
    dd = load_from_disk(str(out / "dataset"))
    assert set(dd) == {"train", "test"}
    assert dd["train"].column_names == COLUMNS == dd["test"].column_names
    rows = list(dd["train"]) + list(dd["test"])
    jsonl = [json.loads(line) for name in ("train", "test") for line in (out / f"{name}.jsonl").read_text().splitlines()]
    assert jsonl == rows
    return rows


def check_rows(rows: list[dict], chunks: dict[str, str], distractors: int = 3) -> None:
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        oracle = chunks[r["chunk_id"]]
        assert len(r["documents"]) == distractors + 1 == len(set(r["documents"]))
        if r["oracle_index"] is None:
            assert oracle not in r["documents"]
        else:
            assert r["documents"][r["oracle_index"]] == oracle
        final, quotes = parse_answer(r["cot_answer"])
        assert final == r["final_answer"] != ""
        assert all(_ws(q) in _ws(oracle) for q in quotes)
        assert r["messages"][0] == r["prompt"][0] == {"role": "user", "content": student_prompt(r["documents"], r["question"])}
        assert r["messages"][1] == r["completion"][0] == {"role": "assistant", "content": r["cot_answer"]}


def main_accepting_nothing(cfg) -> dict:
    """generate.main on a run that accepts no row: exit status 1 after the output folder is written; its counts."""
    with pytest.raises(command.NothingAccepted) as e:
        generate.main(cfg, progress=False)
    assert e.value.code == 1
    return e.value.result


@pytest.fixture(scope="module")
def hotpot_texts(shared_data) -> dict[str, str]:
    return {c.id: c.text for c in hotpot_chunks(load_hotpot(shared_data / HOTPOT))}


# ------------------------------------------------------------------------------------------ datasets


def test_hotpot_run_writes_a_valid_dataset(tmp_path, teacher, shared_data, hotpot_texts, capsys):
    cfg = hotpot_cfg(tmp_path, teacher, shared_data, "limit=12", f"eval_questions={shared_data / DEV_QA}")
    result = generate.main(cfg, progress=False)
    out = tmp_path / "out"
    assert all((out / f).exists() for f in FILES)
    rows = read_rows(out)
    assert len(rows) == result["accepted"] == result["train"] + result["test"] == 12
    assert result["test"] == 2  # ceil(12 * 0.1)
    check_rows(rows, hotpot_texts)
    dev = {normalize_question(json.loads(line)["question"]) for line in (shared_data / DEV_QA).open()}
    assert not any(normalize_question(r["question"]) in dev for r in rows)
    # contamination: no document of any row (oracle or distractor) is a paragraph of an evaluated question
    evaluated = {paragraph_text(t, x) for ex in load_hotpot(shared_data / HOTPOT)[:EVALUATED] for t, x in paragraphs(ex)}
    assert not any(d in evaluated for r in rows for d in r["documents"])
    assert teacher.stats.requests == 24 == result["calls_new"]
    card = (out / "README.md").read_text()
    assert "meta-llama/Meta-Llama-3-70B-Instruct" in card and "| 12 | 12 | 12 | 10 | 2 | 0 |" in card
    assert "- HotpotQA chunks: clean: paragraphs of dev questions 61-100 only" in card
    printed = capsys.readouterr().out
    assert "HotpotQA chunks: clean: paragraphs of dev questions 61-100 only" in printed
    assert "accepted: 12" in printed and "tokens in/out" in printed and "wall time" in printed and "teacher phase" in printed
    assert 0 < result["teacher_wall_s"] and 0 < result["teacher_cpu_s"]
    assert not list(out.glob(".*partial*")) and not list(out.glob(".cache-*"))  # no work files left behind


def test_docs_run_writes_a_valid_dataset(tmp_path, teacher, shared_data, tiny_model):
    cfg = load_config(
        "generate",
        [
            "recipe=docs",
            f"input={shared_data / 'docs'}",
            f"output={tmp_path / 'out'}",
            f"tokenizer={tiny_model}",
            "chunk_size=128",
            "limit=10",
            f"teacher.base_url={teacher.base_url}",
        ],
    )
    result = generate.main(cfg, progress=False)
    rows = read_rows(tmp_path / "out")
    from raft.sources.chunking import load_chunks

    chunks = {c.id: c.text for c in load_chunks(shared_data / "docs", str(tiny_model), 128, 0, 32).chunks}
    check_rows(rows, chunks)
    assert len(rows) == result["accepted"] >= 8  # the fake teacher's answers are well formed
    assert {Path(r["source"]).name for r in rows} <= {p.name for p in (shared_data / "docs").iterdir()}


def test_docs_that_are_not_utf8_are_used_and_the_encoding_is_said(tmp_path, teacher, tiny_model, capsys):
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "raft" / "demo", docs)
    (docs / "café_notes.txt").write_bytes("Le café « Chez Anaïs » ouvre à 7 h ; l’entrée coûte 2 €.\n".encode("cp1252") * 6)
    cfg = load_config("generate", ["recipe=docs", f"input={docs}", f"output={tmp_path / 'out'}", f"tokenizer={tiny_model}",
                                   "chunk_size=64", "min_chunk_tokens=8", f"teacher.base_url={teacher.base_url}"])
    result = generate.main(cfg, progress=False)
    err = capsys.readouterr().err
    assert re.search(r"^raft\.generate: \S*café_notes\.txt: decoded as cp1252 \(not UTF-8\)$", err, re.M), err[-500:]
    assert "1 files not UTF-8, decoded with a detected encoding" in (tmp_path / "out" / "README.md").read_text()
    rows = read_rows(tmp_path / "out")
    assert result["accepted"] == len(rows) and any("Chez Anaïs" in d for r in rows for d in r["documents"])


@pytest.mark.parametrize("mode", ["clean", "published"])
def test_hotpot_chunks_clean_by_default_published_on_request(tmp_path, teacher, shared_data, mode):
    """N = 50 of the shared 100 dev questions evaluated: clean rows never show their paragraphs."""
    args = ["hotpot.eval_questions=50", "limit=20", "p=1"] + (["hotpot.chunks=published"] if mode == "published" else [])
    cfg = hotpot_cfg(tmp_path, teacher, shared_data, *args)
    assert cfg.hotpot.chunks == mode
    generate.main(cfg, progress=False)
    rows = read_rows(tmp_path / "out")
    evaluated = {paragraph_text(t, x) for ex in load_hotpot(shared_data / HOTPOT)[:50] for t, x in paragraphs(ex)}
    shown = [d in evaluated for r in rows for d in r["documents"]]
    card = (tmp_path / "out" / "README.md").read_text()
    if mode == "clean":
        assert rows and not any(shown) and "HotpotQA chunks: clean" in card
    else:  # the published write-up's choice: its first 100 chunks are the contexts of dev questions 0-9
        assert all(r["documents"][r["oracle_index"]] in evaluated for r in rows) and "(contaminated)" in card


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_p_decides_whether_the_oracle_is_shown(tmp_path, teacher, shared_data, hotpot_texts, p):
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=8", f"p={p}", "distractors=2"), progress=False)
    rows = read_rows(tmp_path / "out")
    check_rows(rows, hotpot_texts, distractors=2)
    assert len(rows) == 8
    train = [json.loads(line) for line in (tmp_path / "out" / "train.jsonl").read_text().splitlines()]
    assert len(train) == 7 and all((r["oracle_index"] is None) == (p == 0.0) for r in train)
    test = [json.loads(line) for line in (tmp_path / "out" / "test.jsonl").read_text().splitlines()]
    assert len(test) == 1 and all(r["oracle_index"] is not None for r in test)  # raft.test_p = 1 by default


def test_test_split_has_its_oracle_unless_test_p_says_otherwise(tmp_path, teacher, shared_data, hotpot_texts):
    """p = 0.5 in training; held-out rows keep their oracle (test_p = 1) or follow the same draw (test_p = p)."""
    args = ("limit=30", "p=0.5", "test_size=0.5")
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, *args, out="always"), progress=False)
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, *args, "test_p=0.5", out="as_p"), progress=False)
    always, as_p = read_rows(tmp_path / "always"), read_rows(tmp_path / "as_p")
    check_rows(always, hotpot_texts)
    check_rows(as_p, hotpot_texts)
    for out in ("always", "as_p"):  # the training rows are the same whatever test_p is
        assert (tmp_path / out / "train.jsonl").read_text() == (tmp_path / "always" / "train.jsonl").read_text()
    test_always = [json.loads(line) for line in (tmp_path / "always" / "test.jsonl").read_text().splitlines()]
    test_as_p = [json.loads(line) for line in (tmp_path / "as_p" / "test.jsonl").read_text().splitlines()]
    assert len(test_always) == len(test_as_p) == 15
    assert all(r["oracle_index"] is not None for r in test_always)
    dropped = [r for r in test_as_p if r["oracle_index"] is None]
    assert 0 < len(dropped) < 15  # the published mix: some held-out questions without their document
    for a, b in zip(test_always, test_as_p, strict=True):
        assert (a["id"], a["cot_answer"]) == (b["id"], b["cot_answer"])
        if b["oracle_index"] is None:  # the same documents in the same places, the oracle where the spare was
            oracle = hotpot_texts[a["chunk_id"]]
            assert [d for d in a["documents"] if d != oracle] == [d for i, d in enumerate(b["documents"]) if i != a["oracle_index"]]
        else:
            assert a == b
    card = (tmp_path / "always" / "README.md").read_text()
    assert "test_p = 1.0" in card


def test_chunk_pool_is_written_for_retrieval(tmp_path, teacher, shared_data, hotpot_texts):
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=6"), progress=False)
    pool = [json.loads(line) for line in (tmp_path / "out" / "chunks.jsonl").read_text().splitlines()]
    assert len(pool) > 6 and len({c["id"] for c in pool}) == len(pool)
    assert set(pool[0]) == {"id", "text", "source", "title"}
    texts = {c["id"]: c["text"] for c in pool}
    for r in read_rows(tmp_path / "out"):
        assert texts[r["chunk_id"]] == hotpot_texts[r["chunk_id"]]
        assert all(d in texts.values() for d in r["documents"])  # every document shown is in the pool


def test_hard_distractors_run(tmp_path, teacher, shared_data, hotpot_texts):
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=6", "distractor_strategy=hard", "p=1"), progress=False)
    rows = read_rows(tmp_path / "out")
    check_rows(rows, hotpot_texts)
    assert len(rows) == 6


def _split(out: Path) -> tuple[list[dict], list[dict]]:
    return tuple([json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()] for name in ("train", "test"))


def test_split_keeps_the_questions_of_one_chunk_together(tmp_path, teacher, shared_data):
    """questions_per_chunk=3: a test question's oracle chunk is never the oracle of a training question."""
    args = ("limit=12", "questions_per_chunk=3", "test_size=0.25")
    result = generate.main(hotpot_cfg(tmp_path, teacher, shared_data, *args), progress=False)
    train, test = _split(tmp_path / "out")
    n = len(train) + len(test)
    assert n == result["accepted"] >= 30 and len({r["chunk_id"] for r in train + test}) == 12
    assert {r["chunk_id"] for r in train}.isdisjoint({r["chunk_id"] for r in test})
    assert abs(len(test) - 0.25 * n) <= 2  # whole chunks of three questions: close to the configured share
    assert "train/test split by oracle chunk (12 of them for" in (tmp_path / "out" / "README.md").read_text()
    again = generate.main(hotpot_cfg(tmp_path, teacher, shared_data, *args, out="again"), progress=False)
    assert again["calls_new"] == result["calls_new"] and _split(tmp_path / "again") == (train, test)  # deterministic by seed


def test_split_with_overlapping_chunks_keeps_each_document_on_one_side(tmp_path, teacher, tiny_model):
    cfg = load_config("generate", ["recipe=docs", f"input={REPO / 'raft' / 'demo'}", f"output={tmp_path / 'out'}", f"tokenizer={tiny_model}",
                                   "chunk_size=64", "chunk_overlap=16", "min_chunk_tokens=8", "test_size=0.3",
                                   f"teacher.base_url={teacher.base_url}"])
    result = generate.main(cfg, progress=False)
    train, test = _split(tmp_path / "out")
    assert result["accepted"] == len(train) + len(test) >= 30 and len({r["source"] for r in train + test}) == 3
    assert test and {r["source"] for r in train}.isdisjoint({r["source"] for r in test})  # neighbours share text
    assert "train/test split by source document (3 of them" in (tmp_path / "out" / "README.md").read_text()


def test_split_by_document_of_one_document_warns_that_nothing_is_held_out(tmp_path, teacher, tiny_model, capsys):
    cfg = load_config("generate", ["recipe=docs", f"input={REPO / 'raft' / 'demo' / 'greenhouse_notes.txt'}",
                                   f"output={tmp_path / 'out'}", f"tokenizer={tiny_model}", "chunk_size=64", "chunk_overlap=16",
                                   "min_chunk_tokens=8", "test_size=0.2", f"teacher.base_url={teacher.base_url}"])
    result = generate.main(cfg, progress=False)
    assert result["test"] == 0 and result["train"] == result["accepted"] > 0
    err = capsys.readouterr().err
    assert f"WARNING: the split by source document gives 0 test rows of {result['accepted']} for test_size=0.2" in err


@pytest.mark.parametrize(("sizes", "test_size"), [([3] * 12, 0.25), ([1, 2, 3] * 9, 0.1), ([1] * 37, 0.1), ([5, 1], 0.5), ([4], 0.3)])
def test_grouped_split_keeps_groups_whole_close_to_the_share_and_by_seed(sizes, test_size):
    groups = [f"g{g}" for g, size in enumerate(sizes) for _ in range(size)]
    train, test = output.split_groups(groups, test_size, 42)
    assert sorted(train + test) == list(range(len(groups)))
    assert {groups[i] for i in train}.isdisjoint({groups[i] for i in test})
    if len(sizes) > 1:
        assert train and test and abs(len(test) - test_size * len(groups)) <= max(sizes)
    else:
        assert test == []
    assert output.split_groups(groups, test_size, 42) == (train, test)
    if max(sizes) == 1:  # one row per group: exactly the row split of today
        assert (train, test) == output.split_order(len(groups), test_size, 42)


def _overlaps(row: dict, chunks: dict[str, Chunk], by_text: dict[str, Chunk]) -> bool:
    from raft.kinds.raft.samples import shares_text

    oracle = chunks[row["chunk_id"]]
    others = [by_text[d] for d in row["documents"] if d != oracle.text]
    return any(shares_text(oracle.text, c.text) or (c.source == oracle.source and abs(c.position - oracle.position) == 1) for c in others)


def test_hard_distractors_never_overlap_the_oracle(tmp_path, teacher, tiny_model, capsys):
    """chunk_overlap > 0: the neighbouring chunk of the same document is the most BM25-similar one; it
    holds the oracle's text, so it is skipped, and the run says how many were."""
    from raft.sources.chunking import load_chunks

    cfg = load_config("generate", ["recipe=docs", f"input={REPO / 'raft' / 'demo'}", f"output={tmp_path / 'out'}", f"tokenizer={tiny_model}",
                                   "chunk_size=64", "chunk_overlap=16", "min_chunk_tokens=8", "distractor_strategy=hard", "p=1",
                                   f"teacher.base_url={teacher.base_url}"])
    result = generate.main(cfg, progress=False)
    pool = load_chunks(REPO / "raft" / "demo", str(tiny_model), 64, 16, 8).chunks
    chunks, by_text = {c.id: c for c in pool}, {c.text: c for c in pool}
    rows = read_rows(tmp_path / "out")
    assert len(rows) >= 25 and not any(_overlaps(r, chunks, by_text) for r in rows)
    assert result["hard_skipped_overlap"] >= len(rows) // 3  # the old rule took a neighbour for many of them
    assert not any(contains_answer(d, r["final_answer"]) for r in rows for d in r["documents"] if d != chunks[r["chunk_id"]].text)
    printed = capsys.readouterr().out
    assert f"hard_skipped_overlap: {result['hard_skipped_overlap']}" in printed and "hard_skipped_answer: " in printed


ISLANDS = ["Zanzibar", "Mafia", "Pemba", "Unguja", "Latham", "Chumbe", "Bawe", "Changuu"]


class IslandTeacher(Teacher):
    """answer_context=oracle: sees only the oracle; answers with the island it is about (or ``fixed``)."""

    def __init__(self, fixed: str = ""):
        self.fixed, self.parallelism = fixed, 4

    async def ask(self, messages):
        text = messages[-1]["content"]
        if "<CHUNK>" in text:
            number = re.search(r"Island notes (\d+)", text).group(1)
            return Reply(f"1. Which island do notes {number} describe?", 5, 5)
        name = self.fixed or re.search(r"The island of (\w+) is", text).group(1)
        return Reply(f"The notes name it.\n{ANSWER_TAG} {name}", 5, 5)


def island_docs(folder: Path) -> Path:
    """Eight one-chunk notes about islands, much alike (no long run of words in common); each but the
    last names the next island too."""
    folder.mkdir()
    for i, name in enumerate(ISLANDS):
        also = f" Ferries {i} also sail on to {ISLANDS[i + 1]}." if i + 1 < len(ISLANDS) else ""
        (folder / f"{i}_{name.lower()}.txt").write_text(
            f"Island notes {i}. The island of {name} is in the warm ocean. Its harbor {i} has fishing boats. "
            f"Spice markets {i} open at dawn, and ferries {i} leave for the coast.{also} Visitors {i} arrive by ferry.\n")
    return folder


def test_hard_distractors_that_hold_the_answer_are_redrawn_or_the_row_rejected(tmp_path, shared_data, tiny_model, monkeypatch, capsys):
    docs = island_docs(tmp_path / "islands")
    args = ["recipe=docs", f"input={docs}", f"tokenizer={tiny_model}", "min_chunk_tokens=8", "distractor_strategy=hard",
            "distractors=3", "p=1", "answer_context=oracle", "require_quote=false", "test_size=0.25"]
    monkeypatch.setattr(command, "make_teacher", lambda cfg: IslandTeacher())
    result = generate.main(load_config("generate", [*args, f"output={tmp_path / 'out'}"]), progress=False)
    rows = read_rows(tmp_path / "out")
    assert result["accepted"] == len(rows) == 8 and result["hard_skipped_answer"] >= 1
    for r in rows:  # the chunk naming the next island never shows up as a distractor of that island's question
        assert [d for d in r["documents"] if contains_answer(d, r["final_answer"])] == [r["documents"][r["oracle_index"]]]
    assert f"hard_skipped_answer: {result['hard_skipped_answer']}" in capsys.readouterr().out
    # every chunk holds the answer ("ocean"): no clean distractor is left, so each row is rejected with its reason
    monkeypatch.setattr(command, "make_teacher", lambda cfg: IslandTeacher(fixed="warm ocean"))
    empty = main_accepting_nothing(load_config("generate", [*args, f"output={tmp_path / 'ocean'}"]))
    assert empty["rejected"] == {"answer_in_distractors": 8}


def test_every_concurrent_request_is_sent_before_the_first_reply(tmp_path, teacher, shared_data, monkeypatch):
    """No ramp-up: `concurrency` requests go out at once, question calls of new chunks included."""
    teacher.reset(TeacherBehaviour(latency=0.3))
    sent, replied, in_flight, most = [], [], [0], [0]

    def counting_teacher(cfg):
        t = real_make_teacher(cfg)
        post = t.client.post

        async def counted(*args, **kwargs):
            sent.append(len(replied))  # replies seen when this request went out
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
            try:
                return await post(*args, **kwargs)
            finally:
                in_flight[0] -= 1
                replied.append(1)

        t.client.post = counted
        return t

    real_make_teacher = command.make_teacher
    monkeypatch.setattr(command, "make_teacher", counting_teacher)
    result = generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=12", "teacher.concurrency=6"), progress=False)
    assert result["calls_new"] == 24 == len(sent)
    assert sent[:6] == [0] * 6  # the first six requests were all sent before any reply came back
    assert most[0] == 6  # and never more than the concurrency


def _row(row_id: str, question: str) -> dict:
    docs = [f"document {i} of {row_id}" for i in range(4)]
    return {"id": row_id, "question": question, "documents": docs, "oracle_index": 0, "cot_answer": f"because {row_id}",
            "final_answer": "x", "chunk_id": row_id.split("#")[0], "source": "s.txt", "answerable": True, "withheld_answer": "",
            **student_example(docs, question, f"because {row_id}")}


def test_duplicates_keep_the_smallest_id_whatever_the_order_rows_arrive_in(tmp_path, shared_data):
    cfg = load_config("generate", ["recipe=hotpot", f"input={shared_data / HOTPOT}", f"output={tmp_path}", "test_size=0",
                                   f"hotpot.eval_questions={EVALUATED}"])
    kind = RaftKind(cfg, cfg.input)
    kind.chunks = [Chunk(str(i), f"text {i}", "s.txt", 0) for i in range(4)]
    run = pipeline.Run(kind, 4, Teacher(), None, tmp_path)
    for row_id in ("c#0", "b#0", "d#0", "a#0"):  # the smallest id comes last: each earlier row is replaced in turn
        run.keep(_row(row_id, "What is it?"), normalize_question("What is it?"))
    run.keep(_row("b#1", "Another one?"), normalize_question("Another one?"))
    run.rows.close()
    run.rejects.close()
    assert output.finalize(run, tmp_path) == {"train": 2, "test": 0}
    assert run.stats.accepted == 2 and run.stats.rejected == {"duplicate": 3}
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert rows == [_row("a#0", "What is it?"), _row("b#1", "Another one?")]
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["id"], r["reason"], r["reply"]) for r in rejects] == [(i, "duplicate", f"because {i}") for i in ("b#0", "c#0", "d#0")]
    assert read_rows(tmp_path) == rows


@pytest.mark.parametrize(("n", "test_size"), [(37, 0.1), (5, 0.5), (1, 0.1), (10, 0.0)])
def test_split_is_the_one_datasets_train_test_split_makes(n, test_size):
    from datasets import Dataset

    train, test = output.split_order(n, test_size, 42)
    assert sorted(train + test) == list(range(n))
    if test:
        parts = Dataset.from_dict({"i": list(range(n))}).train_test_split(test_size=len(test), seed=42)
        assert (train, test) == (parts["train"]["i"], parts["test"]["i"])
    else:
        assert train == list(range(n)) and (n < 2 or test_size == 0)


# ------------------------------------------------------------------------------------------ gate


class ScriptedTeacher(Teacher):
    """Asks a HotpotQA dev question (reworded in case) and a question every chunk shares."""

    def __init__(self, dev_question: str):
        self.dev_question = dev_question
        self.server = TeacherServer.__new__(TeacherServer)  # only its reply logic
        self.server.behaviour = TeacherBehaviour()
        self.parallelism = 4

    async def ask(self, messages):
        if "<CHUNK>" in messages[-1]["content"]:
            return Reply(f"1. {self.dev_question.upper()}\n2) What is this text about?\n3. what is this text about", 5, 5)
        return Reply(self.server.reply(messages)[1], 5, 5)


def test_gate_rejects_eval_questions_and_duplicates(tmp_path, shared_data, monkeypatch, capsys):
    dev_question = json.loads((shared_data / DEV_QA).open().readline())["question"]
    monkeypatch.setattr(command, "make_teacher", lambda cfg: ScriptedTeacher(dev_question))
    cfg = load_config(
        "generate",
        ["recipe=hotpot", f"input={shared_data / HOTPOT}", f"hotpot.eval_questions={EVALUATED}", f"output={tmp_path / 'out'}", "limit=5",
         "questions_per_chunk=3",
         f"eval_questions={shared_data / DEV_QA}", "require_quote=false"],  # its answers quote nothing
    )
    result = generate.main(cfg, progress=False)
    rows = read_rows(tmp_path / "out")
    # per chunk: the dev question (rejected) and one shared question; only the first of five is kept
    assert result["questions"] == 10 and result["rejected"] == {"eval_question": 5, "duplicate": 4}
    assert [r["question"] for r in rows] == ["What is this text about?"]
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert sorted(r["reason"] for r in rejects) == ["duplicate"] * 4 + ["eval_question"] * 5
    assert all(r["id"] > rows[0]["id"] for r in rejects if r["reason"] == "duplicate")
    # 9 of 10 rows rejected: a loud warning (one line) naming the top reasons and the rejects file, exit status 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("raft.generate")]
    assert err == [f"raft.generate: WARNING: 9 of 10 rows (90%) were rejected (eval_question 5, duplicate 4); only 1 accepted: "
                   f"read {tmp_path / 'out' / 'rejects.jsonl'} before training on them"]


def test_malformed_replies_are_rejected_with_reasons(tmp_path, teacher, shared_data):
    teacher.reset(TeacherBehaviour(malformed="cycle"))  # answers: no tag, a quote from nowhere, empty, in turn
    result = main_accepting_nothing(hotpot_cfg(tmp_path, teacher, shared_data, "limit=9", "teacher.concurrency=1"))
    reasons = result["rejected"]
    assert result["accepted"] == 0 and sum(reasons.values()) == 9 and teacher.stats.requests == 18
    assert set(reasons) <= {"no_answer_tag", "quote_not_in_oracle", "empty"} and len(reasons) >= 2
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == 9 and all(r["reason"] in reasons and r["question"] for r in rejects)
    assert read_rows(tmp_path / "out") == []
    card = (tmp_path / "out" / "README.md").read_text()
    assert all(f"| {reason} | {n} |" in card for reason, n in reasons.items())


# ------------------------------------------------------------------------------------------ faults


def test_replies_cut_at_max_tokens_are_truncated_also_when_read_back_from_the_store(tmp_path, teacher, shared_data):
    teacher.reset(TeacherBehaviour(truncate=True))
    first = main_accepting_nothing(hotpot_cfg(tmp_path, teacher, shared_data, "limit=4"))
    assert first["accepted"] == 0 and first["rejected"] == {"truncated": 4} and teacher.stats.requests == 4
    teacher.reset()  # a healthy teacher now: the stored (cut) replies are used, not asked again
    again = main_accepting_nothing(hotpot_cfg(tmp_path, teacher, shared_data, "limit=4"))
    assert again["rejected"] == {"truncated": 4} and teacher.stats.requests == 0 and again["calls_stored"] == 4


@pytest.mark.parametrize("source", ["hotpot", "docs"])
def test_answers_longer_than_the_students_budget_are_too_long(tmp_path, teacher, shared_data, tiny_model, source):
    if source == "hotpot":  # the student tokenizer (a hub id) cannot load offline: the teacher's counts are used
        cfg = hotpot_cfg(tmp_path, teacher, shared_data, "limit=6", "max_answer_tokens=20")
        how = "counted in the teacher's tokens"
    else:
        cfg = load_config("generate", ["recipe=docs", f"input={REPO / 'raft' / 'demo'}", f"output={tmp_path / 'out'}",
                                       f"tokenizer={tiny_model}", "chunk_size=64", "min_chunk_tokens=8", "limit=6",
                                       f"teacher.base_url={teacher.base_url}", "max_answer_tokens=20"])
        how = f"counted with the student tokenizer {tiny_model}"
    result = main_accepting_nothing(cfg)
    assert result["accepted"] == 0 and result["rejected"] == {"too_long": 6}
    assert how in (tmp_path / "out" / "README.md").read_text()
    cfg.raft.max_answer_tokens = 800
    cfg.output = str(tmp_path / "roomy")
    assert generate.main(cfg, progress=False)["accepted"] == 6  # the same answers fit the default budget


def test_teacher_failing_for_a_while_then_recovering_loses_nothing(tmp_path, teacher, shared_data, hotpot_texts):
    teacher.reset(TeacherBehaviour(fail_first=6, fail_status=429))
    result = generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=8", "teacher.max_retries=8"), progress=False)
    assert result["accepted"] == 8 and teacher.stats.requests == 16 + 6
    check_rows(read_rows(tmp_path / "out"), hotpot_texts)


def test_teacher_that_never_recovers_stops_then_the_rerun_resumes(tmp_path, teacher, shared_data, capsys):
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=4"), progress=False)
    teacher.reset(TeacherBehaviour(fail_always=True, fail_status=500))
    args = ("limit=10", "teacher.max_retries=2", "teacher.concurrency=2")
    with pytest.raises(SystemExit) as e:
        generate.main(hotpot_cfg(tmp_path, teacher, shared_data, *args), progress=False)
    assert e.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "failed after 2 retries: 500" in err and "rerun the same command to resume" in err
    assert teacher.stats.requests <= 2 * 3  # bounded: two requests in flight, three attempts each
    assert len(Store(tmp_path / "out", readonly=True)) == 8
    teacher.reset()
    result = generate.main(hotpot_cfg(tmp_path, teacher, shared_data, *args), progress=False)
    assert teacher.stats.requests == 20 - 8 == result["calls_new"] and result["calls_stored"] == 8
    assert result["accepted"] == 10


def test_changed_recipe_in_the_same_folder_is_refused(tmp_path, teacher, shared_data):
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=3"), progress=False)
    with pytest.raises(ConfigError, match=r"seed=7 \(stored run: 42\).*choose another output folder"):
        generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=3", "seed=7"), progress=False)
    with pytest.raises(ConfigError, match="distractors=2"):
        generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=3", "distractors=2"), progress=False)
    # what does not change results may change: more chunks, another server, more concurrency
    teacher.reset()
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=4", "teacher.concurrency=3"), progress=False)
    assert teacher.stats.requests == 2


def test_dry_run_calls_nothing(tmp_path, teacher, shared_data, capsys):
    cfg = hotpot_cfg(tmp_path, teacher, shared_data, "limit=10", "dry_run=true", "teacher.price_input_per_mtok=0.5",
                     "teacher.price_output_per_mtok=1.5")
    result = generate.main(cfg, progress=False)
    printed = capsys.readouterr().out
    assert teacher.stats.requests == 0 and not (tmp_path / "out").exists()
    assert "10 question calls + up to 10 answer calls = 20" in printed and "estimated cost: $" in printed
    assert result["calls"] == 20 and result["tokens_in"] > 10 * 100 and result["cost"] > 0


def test_api_key_is_never_written(tmp_path, teacher, shared_data, monkeypatch, capsys):
    secret = "sk-raft-test-DO-NOT-STORE-5f3a9c"
    monkeypatch.setenv("RAFT_TEST_KEY", secret)
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=3", "teacher.api_key_env=RAFT_TEST_KEY"), progress=False)
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(files) >= 8
    assert not [p for p in files if secret.encode() in p.read_bytes()]
    captured = capsys.readouterr()
    assert secret not in captured.out + captured.err


def test_transformers_backend_garbage_is_rejected_not_a_crash(tmp_path, tiny_model):
    cfg = load_config(
        "generate",
        [
            "recipe=demo",  # the bundled documents, found as raft/demo
            f"output={tmp_path / 'out'}",
            f"tokenizer={tiny_model}",
            f"teacher.model={tiny_model}",
            "chunk_size=64",
            "limit=3",
            "teacher.max_tokens=16",
        ],
    )
    result = main_accepting_nothing(cfg)
    assert result["accepted"] == 0 and sum(result["rejected"].values()) >= 3
    assert set(result["rejected"]) <= {"no_question", "no_answer_tag", "empty", "unbalanced_quote", "quote_not_in_oracle", "no_quote",
                                       "truncated"}
    assert read_rows(tmp_path / "out") == []
    assert len((tmp_path / "out" / "rejects.jsonl").read_text().splitlines()) == sum(result["rejected"].values())


# ------------------------------------------------------------------------------------------ command line


def _cli(*args: str, cwd: Path = REPO, **popen) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "raft.generate", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def _run_cli(*args: str) -> tuple[int, str, str]:
    proc = _cli(*args)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def test_cli_bad_inputs_give_one_line_and_exit_2(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _run_cli("recipe=docs", f"input={empty}", f"output={tmp_path / 'o1'}")
    assert code == 2 and len(err.strip().splitlines()) == 1 and str(empty) in err, err
    small = tmp_path / "small.json"
    small.write_text(json.dumps([{"_id": "x", "question": "q?", "answer": "a", "context": [["A", ["Alpha text."]], ["B", ["Beta text."]]]}]))
    code, _, err = _run_cli("recipe=hotpot", "hotpot.chunks=published", f"input={small}", f"output={tmp_path / 'o2'}")
    assert code == 2 and err.strip().count("\n") == 0 and "2 chunks, fewer than distractors + 1 = 4" in err, err
    code, _, err = _run_cli("recipe=docs", f"output={tmp_path / 'o3'}")  # the recipe's placeholder input
    assert code == 2 and len(err.strip().splitlines()) == 1 and "path/to/your/documents" in err, err


@pytest.mark.parametrize("behaviour", [TeacherBehaviour(truncate=True), TeacherBehaviour(malformed="no_tag")], ids=["truncated", "no_tag"])
def test_cli_run_that_accepts_nothing_exits_1_naming_the_reasons(tmp_path, teacher, shared_data, behaviour):
    teacher.reset(behaviour)
    out = tmp_path / "out"
    code, stdout, err = _run_cli("recipe=hotpot", f"input={shared_data / HOTPOT}", f"hotpot.eval_questions={EVALUATED}",
                                 f"teacher.base_url={teacher.base_url}", "limit=5", f"output={out}")
    reason = "truncated" if behaviour.truncate else "no_answer_tag"
    assert code == 1, err
    lines = [line for line in err.splitlines() if line.startswith(("raft.generate: error", "raft.generate: WARNING"))]
    assert lines == [f"raft.generate: error: no row was accepted: 5 rejected ({reason} 5); see {out / 'rejects.jsonl'}"], err
    assert "accepted: 0" in stdout  # the summary is printed as before, and every file is written
    assert all((out / f).exists() for f in FILES) and len((out / "rejects.jsonl").read_text().splitlines()) == 5
    assert f"| {reason} | 5 |" in (out / "README.md").read_text()


def test_cli_demo_recipe_offline_says_the_model_cannot_be_downloaded(tmp_path):
    code, _, err = _run_cli("recipe=demo", f"output={tmp_path / 'demo'}")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "'Qwen/Qwen2.5-0.5B-Instruct' could not be loaded" in err and "could not be downloaded" in err


@pytest.mark.slow
def test_sigkill_then_rerun_gives_the_uninterrupted_dataset(tmp_path, teacher, shared_data, kill_and_rerun):
    teacher.reset(TeacherBehaviour(latency=0.05))
    args = [
        "recipe=hotpot",
        f"input={shared_data / HOTPOT}",
        f"hotpot.eval_questions={EVALUATED}",
        f"teacher.base_url={teacher.base_url}",
        "limit=40",
        "teacher.concurrency=2",
        "p=0.5",
    ]
    _, out = kill_and_rerun(args, calls=80, at_least=16)
    teacher.reset()
    generate.main(load_config("generate", [*args, f"output={tmp_path / 'straight'}"]), progress=False)
    dump = lambda rows: {json.dumps(r, sort_keys=True) for r in rows}  # noqa: E731
    assert dump(read_rows(out)) == dump(read_rows(tmp_path / "straight"))
    for split in ("train", "test"):
        assert (out / f"{split}.jsonl").read_text() == (tmp_path / "straight" / f"{split}.jsonl").read_text()


def test_unknown_kind_names_the_available_ones(tmp_path):
    cfg = load_config("generate", ["kind=rafft", "input=x", f"output={tmp_path / 'o'}"])
    with pytest.raises(ConfigError, match=r"kind='rafft' is not a kind of data; available: .*raft.*did you mean 'raft'"):
        generate.main(cfg, progress=False)
    assert not (tmp_path / "o").exists()


def test_output_that_is_a_file_is_one_line_and_exit_2(tmp_path, shared_data):
    existing = tmp_path / "taken.txt"
    existing.write_text("keep me\n")
    code, _, err = _run_cli("recipe=hotpot", f"input={shared_data / HOTPOT}", f"output={existing}")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "is a file, not a folder" in err and str(existing) in err, err
    assert existing.read_text() == "keep me\n"


def test_help_and_start_up_import_no_heavy_library():
    """`--help` and the modules a run starts with import none of transformers, torch, datasets."""
    code = (
        "import sys, runpy, contextlib, io\n"
        "sys.argv = ['raft.generate', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    runpy.run_module('raft.generate', run_name='__main__')\n"
        "import raft.generate.command, raft.kinds.raft.kind, raft.sources.chunking, raft.teacher\n"
        "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'pyarrow') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
