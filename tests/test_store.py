"""The append-only run store and the run fingerprint (raft.store)."""

from __future__ import annotations

import json

import pytest

from raft.config import ConfigError
from raft.store import Record, Store, check_fingerprint, request_key

MESSAGES = [{"role": "user", "content": "Question about «a chunk»?"}]


def test_request_key_depends_on_everything_that_decides_the_reply():
    key = request_key(MESSAGES, "m", 0.0, 100)
    assert key == request_key([dict(m) for m in MESSAGES], "m", 0.0, 100)
    variants = [
        request_key([{"role": "user", "content": "other"}], "m", 0.0, 100),
        request_key(MESSAGES, "m2", 0.0, 100),
        request_key(MESSAGES, "m", 0.7, 100),
        request_key(MESSAGES, "m", 0.0, 101),
    ]
    assert len({key, *variants}) == 5


def test_store_round_trip_across_reopen(tmp_path):
    with Store(tmp_path) as store:
        store.put("k1", "question", "1. What?", 10, 3)
        store.put("k2", "answer", "text with «unicode» and\nnewlines", 20, 7)
        assert store.get("k1") is None  # new calls are not kept in memory (flat memory)
    with Store(tmp_path) as store:
        assert len(store) == 2
        assert store.get("k2").text == "text with «unicode» and\nnewlines"
        assert (store.get("k1").prompt_tokens, store.get("k1").completion_tokens) == (10, 3)


def test_store_drops_a_line_cut_off_by_a_kill_and_appends_cleanly(tmp_path):
    with Store(tmp_path) as store:
        store.put("k1", "question", "one")
    path = tmp_path / "store.jsonl"
    with path.open("ab") as f:
        f.write(b'{"key": "k2", "kind": "answer", "te')  # SIGKILL mid-write
    with Store(tmp_path) as store:
        assert len(store) == 1 and store.dropped_lines == 1
        store.put("k3", "answer", "three")
    lines = path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["k1", "k3"]
    with Store(tmp_path) as store:
        assert set(store.records) == {"k1", "k3"} and store.dropped_lines == 0


def test_store_skips_a_damaged_line_and_reads_the_others_back(tmp_path):
    with Store(tmp_path) as store:
        store.put("k1", "question", "one", 1, 2)
    with (tmp_path / "store.jsonl").open("ab") as f:
        f.write(b"not json at all\n")
    with Store(tmp_path) as store:
        store.put("k3", "answer", "three «3»", 3, 4)
    with Store(tmp_path) as store:
        assert len(store) == 2 and store.dropped_lines == 1 and "k1" in store and "k2" not in store
        assert store.get("k3") == Record("three «3»", 3, 4) and store.get("k1") == Record("one", 1, 2)
        assert store.get("k2") is None


def test_readonly_store_changes_nothing(tmp_path):
    assert len(Store(tmp_path / "none", readonly=True)) == 0
    assert not (tmp_path / "none").exists()
    with Store(tmp_path) as store:
        store.put("k1", "question", "one")
    path = tmp_path / "store.jsonl"
    with path.open("ab") as f:
        f.write(b'{"key": "k2"')
    before = path.read_bytes()
    assert len(Store(tmp_path, readonly=True)) == 1
    assert path.read_bytes() == before


def test_fingerprint_refuses_a_changed_run(tmp_path):
    fp = {"seed": 42, "p": 0.8, "teacher.model": "m"}
    check_fingerprint(tmp_path, fp)
    assert json.loads((tmp_path / "run.json").read_text()) == fp
    check_fingerprint(tmp_path, dict(fp))  # same settings: resume
    with pytest.raises(ConfigError, match=r"seed=7 \(stored run: 42\).*choose another output folder") as e:
        check_fingerprint(tmp_path, {**fp, "seed": 7})
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="distractors"):
        check_fingerprint(tmp_path, {**fp, "distractors": 4})


def test_fingerprint_refuses_a_store_without_fingerprint(tmp_path):
    (tmp_path / "store.jsonl").write_text("")
    with pytest.raises(ConfigError, match="no run.json"):
        check_fingerprint(tmp_path, {"seed": 1})


def test_request_key_includes_the_seed_only_when_one_is_sent():
    plain = request_key(MESSAGES, "m", 0.7, 100)
    assert request_key(MESSAGES, "m", 0.7, 100, seed=None) == plain  # no seed: the key stores had before seeds
    seeded = {request_key(MESSAGES, "m", 0.7, 100, seed=s) for s in (0, 1, 2)}
    assert len(seeded) == 3 and plain not in seeded
    assert request_key(MESSAGES, "m", 0.7, 100, seed=1) == request_key(MESSAGES, "m", 0.7, 100, 1)


def test_store_keeps_the_finish_reason_and_old_lines_read_as_stop(tmp_path):
    path = tmp_path / "store.jsonl"
    path.write_text(json.dumps({"key": "old", "kind": "answer", "text": "before the field", "prompt_tokens": 1, "completion_tokens": 2}) + "\n")
    with Store(tmp_path) as store:
        store.put("cut", "answer", "The document says", 5, 1024, finish_reason="length")
        store.put("full", "answer", "a whole answer", 5, 6)
        store.put("legacy", "question", "1. What?", 3, 4)  # positional, as before
    lines = {json.loads(line)["key"]: json.loads(line) for line in path.read_text().splitlines()}
    assert lines["cut"]["finish_reason"] == "length" and "finish_reason" not in lines["full"]  # usual lines unchanged
    with Store(tmp_path) as store:
        assert store.get("cut") == Record("The document says", 5, 1024, "length")
        assert store.get("full").finish_reason == "stop" == store.get("old").finish_reason
        assert store.get("old") == Record("before the field", 1, 2)


def test_a_setting_no_longer_recorded_and_left_empty_keeps_the_run_resumable(tmp_path):
    """eval_questions moved into the raft section (raft.eval_questions): a bio_needle or in2 run made
    before recorded it empty, and resumes; one that had set it, or any other change, is still refused."""
    (tmp_path / "run.json").write_text(json.dumps({"kind": "in2", "seed": 1, "eval_questions": ""}))
    check_fingerprint(tmp_path, {"kind": "in2", "seed": 1})
    (tmp_path / "run.json").write_text(json.dumps({"kind": "in2", "seed": 1, "eval_questions": "qa.jsonl"}))
    with pytest.raises(ConfigError, match="eval_questions=None"):
        check_fingerprint(tmp_path, {"kind": "in2", "seed": 1})
