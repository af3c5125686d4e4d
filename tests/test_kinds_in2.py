"""raft.kinds.in2.kind: python -m raft.generate kind=in2 on the shared documents, the tiny model's tokenizer
and the local teacher server (QA pairs in JSON-schema mode)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from datasets import load_from_disk

from raft import generate
from raft.config import ConfigError, load_config
from raft.generate import command
from raft.teacher import Reply, Teacher
from raft.testing import TeacherBehaviour

REPO = Path(__file__).resolve().parent.parent
DEV_QA = Path("hotpotqa") / "hotpot_dev_all_qa.jsonl"


def in2_cfg(tmp_path: Path, shared_data: Path, tiny_model: Path, teacher, *args: str, out: str = "out"):
    return load_config("generate", [
        "recipe=in2", f"input={shared_data / 'docs'}", f"output={tmp_path / out}", f"tokenizer={tiny_model}",
        "in2.min_tokens=1024", "in2.max_tokens=2048", "in2.short_share=0.2", f"in2.eval_sets=[{shared_data / DEV_QA}]",
        "limit=24", f"teacher.base_url={teacher.base_url}", "teacher.retry_backoff=0.01", "teacher.retry_max_delay=0.05",
        *args,
    ])


def rows_of(out: Path) -> list[dict]:
    dd = load_from_disk(str(out / "dataset"))
    jsonl = [json.loads(line) for split in ("train", "test") for line in (out / f"{split}.jsonl").read_text().splitlines()]
    assert dd["train"].to_list() + dd["test"].to_list() == jsonl
    return jsonl


def test_rows_place_the_golds_where_recorded_among_other_sources(tmp_path, shared_data, tiny_model, teacher):
    from transformers import AutoTokenizer

    from raft.sources.chunking import load_chunks

    result = generate.main(in2_cfg(tmp_path, shared_data, tiny_model, teacher), progress=False)
    rows = rows_of(tmp_path / "out")
    assert result["groups"] == 24 and teacher.stats.by_kind == {"qa": 24} and len(rows) == result["accepted"] >= 20
    assert {r["question_type"] for r in rows} == {"fine_grained", "integration"}
    segments = load_chunks(shared_data / "docs", str(tiny_model), 128, 0, 32).chunks
    by_id = {c.id: c for c in segments}
    tok = AutoTokenizer.from_pretrained(tiny_model)
    short = [r for r in rows if r["target_tokens"] == 0]
    assert 0 < len(short) < len(rows)  # in2.short_share = 0.2 of the rows: the gold segments alone
    for r in rows:
        golds = [by_id[i] for i in r["chunk_id"].split("+")]
        assert [g.text for g in golds] == r["documents"] and len({g.source for g in golds}) == 1
        assert r["question_type"] == ("integration" if len(golds) > 1 else "fine_grained") and len(golds) <= 4
        rendered = tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
        ids = tok(rendered, add_special_tokens=False)["input_ids"]
        assert r["context_tokens"] == len(ids)
        if r["target_tokens"]:
            assert 0.99 * r["target_tokens"] <= r["context_tokens"] <= r["target_tokens"]
            others = [c.text for c in segments if c.source == golds[0].source and c.id not in r["chunk_id"]]
            assert not any(o in r["prompt"][0]["content"] for o in others)  # no filler from the gold's source
        for g, p in zip(golds, r["gold_positions"], strict=True):
            start = rendered.index(g.text)
            assert p["segment"] == g.id and p["start"] == len(tok(rendered[:start], add_special_tokens=False)["input_ids"])
            assert p["depth"] == pytest.approx(p["start"] / r["context_tokens"])
        assert r["completion"][0]["content"] == r["final_answer"] and len(r["final_answer"].split()) <= 30
    card = (tmp_path / "out" / "README.md").read_text()
    assert "IN2 long-context training data" in card and "decontaminated against 14,810 evaluation texts" in card


def test_bad_replies_are_rejects_with_reasons(tmp_path, shared_data, tiny_model, teacher):
    teacher.reset(TeacherBehaviour(malformed_json="cycle"))  # well formed, not JSON, no answer, "according to the text"
    result = generate.main(in2_cfg(tmp_path, shared_data, tiny_model, teacher, "teacher.concurrency=1", "limit=8"),
                           progress=False)
    assert result["rejected"] == {"invalid_json": 2, "schema": 2, "context_reference": 2} and result["accepted"] == 2
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert all(r["reply"] for r in rejects) and {r["reason"] for r in rejects} == set(result["rejected"])


def test_a_row_whose_context_cannot_fit_is_a_reject_never_kept_off_target(tmp_path, shared_data, tiny_model, teacher):
    """Segments of 120-128 tokens cannot make most targets to the token (tolerance 0.0001): such rows are
    ``no_fit`` rejects (raft.long_context.fit), as in bio_needle; none is kept shorter or longer than allowed."""
    result = generate.main(in2_cfg(tmp_path, shared_data, tiny_model, teacher, "in2.min_segment_tokens=120", "in2.tolerance=0.0001",
                                   "in2.short_share=0", "limit=12"), progress=False)
    rows = rows_of(tmp_path / "out")
    assert result["rejected"].get("no_fit", 0) >= 1 and len(rows) == result["accepted"] == 12 - result["rejected"]["no_fit"]
    assert all(0.9999 * r["target_tokens"] <= r["context_tokens"] <= r["target_tokens"] for r in rows)
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == result["rejected"]["no_fit"] and all(r["question"] for r in rejects)
    assert all(re.fullmatch(r"no whole segments add up to within 0% of \d+ tokens", r["reply"]) for r in rejects)


class PlantingTeacher(Teacher):
    """Writes a HotpotQA dev question for every fourth group: it must be dropped as contaminated."""

    def __init__(self, planted: str):
        self.planted, self.parallelism, self.n = planted, 1, 0

    async def ask(self, messages, response_format=None):
        self.n += 1
        question = self.planted if self.n % 4 == 0 else f"Which river is named in group {self.n}?"
        return Reply(json.dumps({"question": question, "answer": f"river {self.n}"}), 10, 10)


def test_a_planted_hotpotqa_question_is_removed(tmp_path, shared_data, tiny_model, teacher, monkeypatch):
    # the first dev question long enough to hold a 10-gram (shorter ones cannot match: raft.kinds.in2.decontaminate)
    planted = next(q for q in (json.loads(line)["question"] for line in (shared_data / DEV_QA).open()) if len(q.split()) >= 14)
    monkeypatch.setattr(command, "make_teacher", lambda cfg: PlantingTeacher(planted))
    result = generate.main(in2_cfg(tmp_path, shared_data, tiny_model, teacher, "limit=8"), progress=False)
    assert result["rejected"] == {"contaminated": 2} and result["accepted"] == 6
    assert not any(planted in r["question"] for r in rows_of(tmp_path / "out"))


def test_too_few_tokens_for_the_longest_context_is_one_line(tmp_path, shared_data, tiny_model, teacher):
    with pytest.raises(ConfigError, match=r"tokens in \d+ segments; contexts of up to in2.max_tokens=9,000,000 were asked"):
        generate.main(in2_cfg(tmp_path, shared_data, tiny_model, teacher, "in2.max_tokens=9000000"), progress=False)
    assert teacher.stats.requests == 0


def test_kill_then_rerun_gives_the_same_dataset(tmp_path, shared_data, tiny_model, teacher, kill_and_rerun):
    teacher.reset(TeacherBehaviour(latency=0.2))
    args = [
        "recipe=in2", f"input={shared_data / 'docs'}", f"tokenizer={tiny_model}", "in2.min_tokens=1024", "in2.max_tokens=2048",
        f"in2.eval_sets=[{shared_data / DEV_QA}]", "limit=12", f"teacher.base_url={teacher.base_url}", "teacher.concurrency=1",
    ]
    _, out = kill_and_rerun(args, calls=12, at_least=4)
    teacher.reset()
    generate.main(load_config("generate", [*args, f"output={tmp_path / 'straight'}"]), progress=False)
    for split in ("train", "test"):
        assert (out / f"{split}.jsonl").read_text() == (tmp_path / "straight" / f"{split}.jsonl").read_text()


@pytest.mark.slow
def test_finetune_trains_on_in2_rows(tmp_path, shared_data, tiny_model, teacher):
    from raft import finetune

    generate.main(in2_cfg(tmp_path, shared_data, tiny_model, teacher), progress=False)
    cfg = load_config("finetune", ["recipe=tiny", f"model={tiny_model}", f"data={tmp_path / 'out'}", f"output={tmp_path / 'ft'}",
                                   "train.max_steps=2", "train.eval_steps=0", "train.save_steps=0", "train.max_length=2304"])
    summary = finetune.main(cfg)
    assert summary["global_step"] == 2 and summary["examples"]["train"]["examples"] > 15
    assert (tmp_path / "ft" / "adapter_config.json").exists()


@pytest.mark.slow
def test_in2_probe_runs_on_the_fine_tuned_model_and_against_a_server(tmp_path, shared_data, tiny_model, teacher):
    """raft.finetune recipe=tiny on in2 rows, then raft.evaluate recipe=in2_probe on the result, and with the
    local teacher server as an OpenAI-compatible model under test."""
    from raft import evaluate, finetune

    generate.main(in2_cfg(tmp_path, shared_data, tiny_model, teacher, "limit=8"), progress=False)
    finetune.main(load_config("finetune", ["recipe=tiny", f"model={tiny_model}", f"data={tmp_path / 'out'}",
                                           f"output={tmp_path / 'ft'}", "train.max_steps=2", "train.eval_steps=0",
                                           "train.save_steps=0", "train.max_length=2304"]))
    probe = ["recipe=in2_probe", f"data={shared_data / 'docs'}", "probe_lengths=[1024]", "probe_bins=2", "probe_samples=1",
             "probe_types=[document, structured]"]
    runs = {
        "tuned": [f"model={tiny_model}", f"adapter={tmp_path / 'ft'}", "max_new_tokens=8", "dtype=float32"],
        "server": ["backend=local-chat-completions", f"base_url={teacher.base_url}", "model=fake-teacher", f"tokenizer={tiny_model}"],
    }
    for name, args in runs.items():
        evaluate.main(load_config("evaluate", [*probe, *args, f"output={tmp_path / name}"]))
        metrics = json.loads((tmp_path / name / "results.json").read_text())["results"]["in2_probe"]
        samples = [json.loads(line) for line in (tmp_path / name / "samples_in2_probe.jsonl").read_text().splitlines()]
        assert len(samples) == 4 and {s["probe"] for s in samples} == {"document", "structured"}
        assert {s["bin"] for s in samples} == {0, 1} and all(0 <= s["em"] <= 1 for s in samples)
        assert {"em,none", "em_bin0,none", "em_bin1,none", "em_structured,none"} <= set(metrics)
