"""raft.kinds.bio_needle.kind: python -m raft.generate kind=bio_needle on the shared biographies, the tiny
model's tokenizer and the local teacher server (labels in JSON-schema mode)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import load_from_disk

from raft import generate
from raft.config import ConfigError, load_config
from raft.kinds.bio_needle.schema import BioLabel, compact
from raft.testing import TeacherBehaviour, fake_label

REPO = Path(__file__).resolve().parent.parent
BIOS = Path("bio_haystack")


@pytest.fixture(scope="module")
def people(shared_data, tmp_path_factory) -> dict[str, Path]:
    """Small JSONL files cut from the shared sets: 24 labelled training needles, 6 evaluation needles."""
    folder = tmp_path_factory.mktemp("bios")
    train = [json.loads(line) for line in (shared_data / BIOS / "train_needles_5000.jsonl").open().readlines()[:24]]
    evaluation = [json.loads(line) for line in (shared_data / BIOS / "needles_140.jsonl").open().readlines()[:6]]
    for name, rows in (("train", train), ("eval", evaluation)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    unlabelled = [{"name": r["name"], "bio": r["bio"]} for r in train[:8]]
    (folder / "unlabelled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in unlabelled))
    return {"train": folder / "train.jsonl", "eval": folder / "eval.jsonl", "unlabelled": folder / "unlabelled.jsonl",
            "haystack": shared_data / BIOS / "haystack_bios_131.jsonl"}


def bio_cfg(tmp_path: Path, people: dict, tiny_model: Path, teacher, *args: str, out: str = "out"):
    return load_config("generate", [
        "recipe=bio_needle", f"input={people['train']}", f"output={tmp_path / out}", f"tokenizer={tiny_model}",
        f"bio_needle.eval_input={people['eval']}", f"bio_needle.haystack={people['haystack']}",
        "bio_needle.train_lengths=[2048, 4096]", "bio_needle.eval_lengths=[2048, 4096]", "bio_needle.eval_depths=3",
        "bio_needle.needles_per_cell=2", "limit=null", f"teacher.base_url={teacher.base_url}",
        "teacher.retry_backoff=0.01", "teacher.retry_max_delay=0.05", *args,
    ])


def rows_of(out: Path) -> dict[str, list[dict]]:
    dd = load_from_disk(str(out / "dataset"))
    jsonl = {split: [json.loads(line) for line in (out / f"{split}.jsonl").read_text().splitlines()] for split in ("train", "test")}
    assert {split: dd[split].to_list() for split in dd} == jsonl
    return jsonl


def test_rows_have_exact_lengths_recorded_depths_and_disjoint_people(tmp_path, people, tiny_model, teacher):
    from transformers import AutoTokenizer

    result = generate.main(bio_cfg(tmp_path, people, tiny_model, teacher), progress=False)
    rows = rows_of(tmp_path / "out")
    assert teacher.stats.requests == 0  # every needle came with its label
    assert result["needles"] == 30 and len(rows["test"]) == 2 * 3 * 2
    # the shared labels are LLM-made and noisy: line 14 of the training set says day 200; it is rejected, not trained on
    assert len(rows["train"]) == 23 and result["rejected"] == {"bad_input_label": 1}
    reject = json.loads((tmp_path / "out" / "rejects.jsonl").read_text())
    assert reject["id"] == "train/000019" and "date_of_death" in reject["reply"] and "less than or equal to 31" in reject["reply"]
    tok = AutoTokenizer.from_pretrained(tiny_model)
    train_people = {json.loads(line)["name"]: json.loads(line) for line in people["train"].open()}
    eval_people = {json.loads(line)["name"]: json.loads(line) for line in people["eval"].open()}
    cells = {(r["target_tokens"], r["depth_target"]) for r in rows["test"]}
    assert cells == {(n, d) for n in (2048, 4096) for d in (0.0, 0.5, 1.0)}
    for split, group in rows.items():
        for r in group:
            person = (train_people if split == "train" else eval_people)[r["needle_name"]]
            prompt = r["prompt"][0]["content"]
            rendered = tok.apply_chat_template(r["prompt"], add_generation_prompt=True, tokenize=False)
            ids = tok(rendered, add_special_tokens=False)["input_ids"]
            assert 0.99 * r["target_tokens"] <= r["context_tokens"] == len(ids) <= r["target_tokens"]
            assert prompt.count(person["bio"]) == 1  # the needle once, never also as its own filler
            start = rendered.index(person["bio"])
            assert r["needle_start"] == len(tok(rendered[:start], add_special_tokens=False)["input_ids"])
            assert r["depth"] == pytest.approx(r["needle_start"] / r["context_tokens"])
            assert r["completion"][0]["content"] == compact(person["json"]) and r["label"] == BioLabel.model_validate(person["json"]).model_dump()
            if split == "train":  # an evaluation person never appears in a training row, as needle or as filler
                assert not any(p["bio"] in prompt for p in eval_people.values())
    depths = sorted(r["depth"] for r in rows["test"] if r["depth_target"] == 0.5)
    assert all(0.3 < d < 0.7 for d in depths)  # the needle sits near the middle of the whole prompt
    assert all(r["depth"] < 0.15 for r in rows["test"] if r["depth_target"] == 0.0)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "Bio needle-in-a-haystack data" in card and "24 training needles, 6 evaluation needles" in card


def test_teacher_labels_in_json_mode_and_bad_replies_are_rejects(tmp_path, people, tiny_model, teacher):
    cfg = bio_cfg(tmp_path, people, tiny_model, teacher, f"input={people['unlabelled']}", "bio_needle.rows_per_needle=1")
    result = generate.main(cfg, progress=False)
    assert teacher.stats.by_kind == {"label": 8} and result["accepted"] == 8 + 12
    assert teacher.stats.last_body["response_format"]["json_schema"]["schema"] == BioLabel.model_json_schema()
    bios = {json.loads(line)["name"]: json.loads(line)["bio"] for line in people["unlabelled"].open()}
    for r in rows_of(tmp_path / "out")["train"]:
        assert r["label"] == fake_label(bios[r["needle_name"]])

    teacher.reset(TeacherBehaviour(malformed_json="cycle"))  # well-formed, not JSON, JSON against the schema, in turn
    result = generate.main(bio_cfg(tmp_path, people, tiny_model, teacher, f"input={people['unlabelled']}",
                                   "teacher.concurrency=1", out="bad"), progress=False)
    assert result["rejected"] == {"invalid_json": 3, "schema": 3} and result["accepted"] == 2 + 12  # requests 3 and 6 well formed
    rejects = [json.loads(line) for line in (tmp_path / "bad" / "rejects.jsonl").read_text().splitlines()]
    assert {r["reason"] for r in rejects} == {"invalid_json", "schema"} and all(r["needle_name"] in bios for r in rejects)


def test_bad_inputs_are_one_line_errors_and_lose_nothing(tmp_path, people, tiny_model, teacher):
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"name": "A B", "bio": "a b was born in 1950 ."}\n{"bio": "no name here"}\n')
    with pytest.raises(ConfigError, match=r"broken.jsonl row 2: no 'name'"):
        generate.main(bio_cfg(tmp_path, people, tiny_model, teacher, f"input={broken}"), progress=False)
    with pytest.raises(ConfigError, match=r"the haystack has [\d,]+ tokens in 131 biographies; the longest context asked is 900,000"):
        generate.main(bio_cfg(tmp_path, people, tiny_model, teacher, "bio_needle.eval_lengths=[900000]"), progress=False)
    assert teacher.stats.requests == 0  # both stopped before any teacher call


@pytest.mark.parametrize("setting", ["input", "bio_needle.eval_input", "bio_needle.haystack"])
def test_binary_jsonl_is_a_one_line_error_naming_the_file(tmp_path, people, tiny_model, teacher, setting):
    binary = tmp_path / "photo.jsonl"  # e.g. a PNG saved under the wrong name
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfa" + bytes(range(256)) * 4)
    with pytest.raises(ConfigError) as e:
        generate.main(bio_cfg(tmp_path, people, tiny_model, teacher, f"{setting}={binary}"), progress=False)
    message = str(e.value)
    assert str(binary) in message and "\n" not in message and "utf-8" in message.lower(), message
    assert teacher.stats.requests == 0


def test_kill_then_rerun_gives_the_same_dataset(tmp_path, people, tiny_model, teacher, kill_and_rerun):
    teacher.reset(TeacherBehaviour(latency=0.2))
    args = [
        "recipe=bio_needle", f"input={people['unlabelled']}", f"tokenizer={tiny_model}", f"bio_needle.eval_input={people['eval']}",
        f"bio_needle.haystack={people['haystack']}", "bio_needle.train_lengths=[2048]", "bio_needle.eval_lengths=[2048]",
        "bio_needle.eval_depths=2", "bio_needle.needles_per_cell=1", "bio_needle.relabel=true", "limit=null",
        f"teacher.base_url={teacher.base_url}", "teacher.concurrency=1",
    ]
    _, out = kill_and_rerun(args, calls=14, at_least=4)
    teacher.reset()
    generate.main(load_config("generate", [*args, f"output={tmp_path / 'straight'}"]), progress=False)
    for split in ("train", "test"):
        assert (out / f"{split}.jsonl").read_text() == (tmp_path / "straight" / f"{split}.jsonl").read_text()


@pytest.mark.slow
def test_finetune_trains_on_bio_needle_rows(tmp_path, people, tiny_model, teacher):
    from raft import finetune

    generate.main(bio_cfg(tmp_path, people, tiny_model, teacher), progress=False)
    cfg = load_config("finetune", ["recipe=tiny", f"model={tiny_model}", f"data={tmp_path / 'out'}", f"output={tmp_path / 'ft'}",
                                   "train.max_steps=2", "train.eval_steps=0", "train.save_steps=0", "train.max_length=4352"])
    summary = finetune.main(cfg)
    assert summary["global_step"] == 2 and summary["examples"]["train"]["examples"] == 23
    assert (tmp_path / "ft" / "adapter_config.json").exists()


def test_raw_wiki_bio_is_anonymized_before_anything_else(tmp_path, people, tiny_model, teacher):
    """A local file in wiki_bio's layout: names replaced (seeded), leaks and groups dropped, then labelled."""
    def raw(name: str, text: str, headers=("name", "birth_date")) -> dict:
        table = {"column_header": list(headers), "row_number": [1] * len(headers),
                 "content": [name, *["1950"] * (len(headers) - 1)]}
        return {"input_text": {"table": table, "context": name + "\n"}, "target_text": text}

    rows = [raw(f"carl{s} brandt", f"carl{s} brandt -lrb- born 1950 -rrb- is a german footballer . brandt played as a "
                f"defender for twelve seasons and later coached the youth team . " * 3) for s in "abcdef"]
    rows.append(raw("june stone", "june stone -lrb- born 1950 -rrb- is an american politician . stone , born june 4 , served as mayor ."))
    rows.append(raw("the kettles", "the kettles are a scottish rock band formed in 1990 .", ("name", "origin", "genre", "label")))
    source = tmp_path / "wiki_bio.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = bio_cfg(tmp_path, people, tiny_model, teacher, f"input={source}", "bio_needle.min_bio_tokens=5")
    result = generate.main(cfg, progress=False)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "8 raw biographies anonymized: 6 kept, 2 dropped (group 1, name_leak 1)" in card
    train = rows_of(tmp_path / "out")["train"]
    assert result["accepted"] == 6 + 12 and teacher.stats.by_kind == {"label": 6} and len(train) == 6
    for r in train:
        prompt = r["prompt"][0]["content"]
        assert "brandt" not in prompt.lower() and r["needle_name"] in prompt and r["label"]["sportsperson"]
    again = generate.main(bio_cfg(tmp_path, people, tiny_model, teacher, f"input={source}", "bio_needle.min_bio_tokens=5",
                                  out="again"), progress=False)
    assert again["accepted"] == result["accepted"]
    assert rows_of(tmp_path / "again")["train"] == train  # the same seed, the same names


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["hf", "local-chat-completions"])
def test_evaluate_recipe_bio_needle_on_the_generated_sweep(tmp_path, people, tiny_model, teacher, backend):
    """raft.evaluate recipe=bio_needle on what raft.generate wrote: the tiny model (hf), and the local
    teacher server as an OpenAI-compatible model under test (it answers with the label of the biography
    that names the person: a model that reads the haystack right)."""
    from raft import evaluate

    generate.main(bio_cfg(tmp_path, people, tiny_model, teacher), progress=False)
    args = ["recipe=bio_needle", f"data={tmp_path / 'out'}", f"output={tmp_path / 'eval'}", "prices=[]", "limit=4"]
    if backend == "hf":
        args += [f"model={tiny_model}", "max_new_tokens=8", "dtype=float32"]
    else:
        args += ["backend=local-chat-completions", f"base_url={teacher.base_url}", "model=fake-teacher",
                 "apply_chat_template=true"]
    evaluate.main(load_config("evaluate", args))
    metrics = json.loads((tmp_path / "eval" / "results.json").read_text())["results"]["bio_needle"]
    samples = [json.loads(line) for line in (tmp_path / "eval" / "samples_bio_needle.jsonl").read_text().splitlines()]
    assert len(samples) == 4 and {"score,none", "json_valid,none", "nationality,none"} <= set(metrics)
    if backend == "local-chat-completions":
        assert metrics["json_valid,none"] == 1.0
        truth = {json.loads(line)["name"]: json.loads(line)["bio"] for line in people["eval"].open()}
        for s in samples:  # the server's answer is its rule-made label of the needle; the gold is the input's label
            assert s["parsed"] == fake_label(truth[s["needle_name"]]) and 0 <= s["score"] <= 1
        assert metrics["score,none"] > 0.3
