"""The bio needle-in-a-haystack evaluation: reply scoring (raft.kinds.bio_needle.score), the lm-eval task
(eval_tasks/bio_needle) on hand-made folders, and python -m raft.evaluate recipe=bio_needle.

The model in the end-to-end runs is a scripted OpenAI-compatible server (``ScriptedServer``, the
local teacher server with its ``reply`` replaced): the teacher answers a prompt that is no RAFT
prompt with a chain of thought ending in "<ANSWER>: unknown", never a JSON label, so each needle's
reply here is written by the test (exact, fenced, in prose, wrong, no JSON).
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
import types
from pathlib import Path

import datasets
import pytest

from raft.config import ConfigError, load_config, resource_dir
from raft.kinds.bio_needle.schema import FIELDS, compact
from raft.kinds.bio_needle.score import (
    FIELD_METRICS,
    LENGTH_METRICS,
    length_metric,
    length_name,
    parse_reply,
    score_reply,
)
from raft.prompts import bio_example, bio_prompt
from raft.testing import TeacherServer

TASKS_DIR = resource_dir("eval_tasks")
REPO = Path(__file__).resolve().parent.parent
RECIPE = REPO / "recipes" / "bio_needle" / "evaluate.yaml"

LABEL = {
    "nationality": "American",
    "date_of_birth": {"day": 4, "month": 7, "year": 1931},
    "date_of_death": {"day": 12, "month": 3, "year": 2001},
    "sportsperson": True,
    "politician": False,
}


@pytest.fixture(autouse=True)
def _no_data_env(monkeypatch):
    monkeypatch.delenv("RAFT_BIO_NEEDLE_DATA", raising=False)


def _utils():
    """The task's utils.py, imported by path as lm-eval does."""
    spec = importlib.util.spec_from_file_location(
        "_raft_eval_bio_needle_utils", TASKS_DIR / "bio_needle" / "utils.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _with(label: dict, field: str, value) -> dict:
    """A copy of the label with one dotted leaf replaced."""
    out = json.loads(json.dumps(label))
    *path, leaf = field.split(".")
    node = out
    for part in path:
        node = node[part]
    node[leaf] = value
    return out


# --------------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------------


def test_a_perfect_reply_scores_every_field():
    s = score_reply(compact(LABEL), LABEL)
    assert s["json_valid"] == 1 and s["score"] == 1.0 and s["parsed"] == LABEL
    assert s["fields"] == dict.fromkeys(FIELDS, 1) and list(s["fields"]) == list(FIELDS)
    # pretty-printed, keys in another order: the same object
    shuffled = {k: LABEL[k] for k in reversed(list(LABEL))}
    assert score_reply(json.dumps(shuffled, indent=2), LABEL)["score"] == 1.0


@pytest.mark.parametrize(
    ("field", "wrong"),
    [
        ("nationality", "British"),
        ("date_of_birth.day", 5),
        ("date_of_birth.month", 8),
        ("date_of_birth.year", 1932),
        ("date_of_death.day", 0),
        ("date_of_death.month", 4),
        ("date_of_death.year", 2000),
        ("sportsperson", False),
        ("politician", True),
    ],
)
def test_each_field_is_scored_on_its_own(field, wrong):
    s = score_reply(compact(_with(LABEL, field, wrong)), LABEL)
    assert s["json_valid"] == 1
    assert s["fields"] == {f: int(f != field) for f in FIELDS}
    assert s["score"] == pytest.approx(8 / 9)


def test_nationality_is_compared_stripped_and_case_insensitively():
    for said in ("american", "AMERICAN", "  American ", "aMeRiCaN"):
        assert score_reply(json.dumps(_with(LABEL, "nationality", said)), LABEL)["fields"]["nationality"] == 1
    for said in ("America", "US", "", None, 1, ["American"]):
        assert score_reply(json.dumps(_with(LABEL, "nationality", said)), LABEL)["fields"]["nationality"] == 0
    unknown = _with(LABEL, "nationality", "unknown")
    assert (
        score_reply(json.dumps(_with(LABEL, "nationality", "Unknown")), unknown)["fields"]["nationality"] == 1
    )


def test_wrong_types_score_zero_on_those_fields_and_never_crash():
    # dates: JSON integers only ("7", 7.0 and true are not 7 / 1); booleans: true / false only
    cases = [
        ("date_of_birth.day", "4"),
        ("date_of_birth.month", 7.0),
        ("date_of_birth.year", "1931"),
        ("date_of_death.day", None),
        ("sportsperson", "yes"),
        ("sportsperson", "true"),
        ("sportsperson", 1),
        ("politician", 0),
        ("politician", None),
    ]
    for field, value in cases:
        s = score_reply(json.dumps(_with(LABEL, field, value)), LABEL)
        assert s["json_valid"] == 1 and s["fields"][field] == 0, (field, value)
        assert s["score"] == pytest.approx(8 / 9)
    one = {**LABEL, "date_of_birth": {"day": 1, "month": 1, "year": 1931}}
    assert (
        score_reply(json.dumps(_with(one, "date_of_birth.day", True)), one)["fields"]["date_of_birth.day"]
        == 0
    )
    # whole parts of the wrong shape or missing
    s = score_reply(
        json.dumps({**LABEL, "date_of_birth": "4 July 1931", "date_of_death": [12, 3, 2001]}), LABEL
    )
    assert s["json_valid"] == 1 and s["score"] == pytest.approx(3 / 9)
    assert all(s["fields"][f] == 0 for f in FIELDS if f.startswith("date_of"))
    s = score_reply('{"nationality": "American"}', LABEL)
    assert s["json_valid"] == 1 and s["fields"]["nationality"] == 1 and s["score"] == pytest.approx(1 / 9)
    assert score_reply("{}", LABEL) == {
        "json_valid": 1,
        "fields": dict.fromkeys(FIELDS, 0),
        "score": 0.0,
        "parsed": {},
    }


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "I could not find this person in the text.",
        '{"nationality": "American", "date_of_birth": {"day": 4',  # cut short
        "{'nationality': 'American'}",  # Python, not JSON
        '{"nationality": "American",}',  # trailing comma
        "```json\nnot json\n```",
        "__import__('os').system('echo pwned')",
        None,
    ],
)
def test_no_json_object_scores_zero(reply):
    assert parse_reply(reply) is None
    s = score_reply(reply, LABEL)
    assert s == {"json_valid": 0, "fields": dict.fromkeys(FIELDS, 0), "score": 0.0, "parsed": None}


@pytest.mark.parametrize("reply", ["[1, 2]", f"[{compact(LABEL)}]", '"American"', "42", "true", "null"])
def test_valid_json_that_is_no_object_is_no_answer(reply):
    assert json.loads(reply) is not None or reply == "null"
    assert parse_reply(reply) is None and score_reply(reply, LABEL)["json_valid"] == 0
    assert parse_reply(f"```json\n{reply}\n```") is None


def test_json_in_a_fence_or_surrounded_by_text():
    body = json.dumps(LABEL, indent=2)
    for reply in (
        f"```json\n{body}\n```",
        f"Here is the information:\n\n```json\n{body}\n```\nLet me know if you need more.",
        f"```\n{body}\n```",
        f"Sure! {compact(LABEL)} Hope this helps.",
        f"The person is {{name}} per the text; the answer: {compact(LABEL)}.",  # a {span} that is no JSON first
        f"Answer:\n{body}\n(dates as day, month, year)",
    ):
        assert parse_reply(reply) == LABEL, reply
        assert score_reply(reply, LABEL)["score"] == 1.0
    # braces inside JSON strings do not end the object
    tricky = _with(LABEL, "nationality", "Amer}ican{")
    assert parse_reply(f"result: {json.dumps(tricky)} done") == tricky
    # the first object that parses wins; an object cut short ends the search (no inner {"day": ...})
    assert parse_reply('first {"a": 1} then {"b": 2}') == {"a": 1}
    assert (
        parse_reply('{"nationality": "American", "date_of_birth": {"day": 4, "month": 7, "year": 1931}, "da')
        is None
    )


def test_length_buckets_are_named_by_target_tokens():
    assert [length_name(n) for n in (2048, 4096, 8192, 12288, 16384, 24576, 32768, 131072)] == [
        "2k", "4k", "8k", "12k", "16k", "24k", "32k", "128k",
    ]  # fmt: skip
    assert length_name(4000) == "4k" and length_name(5000) == "5k" and length_name(5001) is None
    assert length_name(None) is None and length_name(True) is None and length_name(0) is None
    assert length_metric(4096) == "score_4k" and length_metric(12288) == "score_12k"
    assert length_metric(5000) is None  # named, but no metric is declared for it
    assert set(FIELD_METRICS.values()) == {
        "nationality", "birth_day", "birth_month", "birth_year", "death_day", "death_month", "death_year",
        "sportsperson", "politician",
    }  # fmt: skip


# --------------------------------------------------------------------------------------------------
# hand-made folders
# --------------------------------------------------------------------------------------------------

FILLER = [
    ("Mara Voss", "Mara Voss (1902-1977) was a Danish painter known for her seascapes."),
    ("Tomas Real", "Tomas Real (born 1960) is a Chilean engineer who designed bridges in Santiago."),
    ("Ines Okafor", "Ines Okafor (1944-2010) was a Nigerian novelist and teacher in Lagos."),
]

# name, label, target_tokens, depth_target, what the scripted model replies
NEEDLES = [
    ("Ada Quill", LABEL, 4096, 0.0, "exact"),
    ("Bo Renn", {**LABEL, "nationality": "French", "sportsperson": False}, 4096, 1.0, "fenced"),
    ("Cy Moss", {**LABEL, "nationality": "Canadian", "politician": True}, 8192, 0.5, "prose_one_wrong"),
    ("Di Lark", {**LABEL, "date_of_death": {"day": 0, "month": 0, "year": 0}}, 8192, 0.5, "no_json"),
    ("Ed Pike", {**LABEL, "nationality": "unknown"}, 5000, 0.5, "list"),
]


def _needle_bio(name: str, label: dict) -> str:
    b, d = label["date_of_birth"], label["date_of_death"]
    return (
        f"{name} ({b['day']}/{b['month']}/{b['year']} - {d['day']}/{d['month']}/{d['year']}) was a "
        f"{label['nationality']} {'athlete' if label['sportsperson'] else 'writer'}."
    )


def bio_rows() -> list[dict]:
    """Rows in the generator's shape: a short haystack with the needle at its depth."""
    rows = []
    for i, (name, label, tokens, depth, _) in enumerate(NEEDLES):
        bios = [bio for _, bio in FILLER]
        at = round(depth * len(bios))
        bios.insert(at, _needle_bio(name, label))
        haystack = "\n\n".join(bios)
        prompt = bio_prompt(haystack, name)
        rows.append(
            {
                "id": f"n{i}",
                "needle_name": name,
                "label": label,
                "target_tokens": tokens,
                "context_tokens": tokens - 7,
                "depth": at / len(bios),
                "depth_target": depth,
                "needle_start": prompt.index(name),
                "needle_tokens": 20,
                **bio_example(haystack, name, compact(label)),
            }
        )
    return rows


def make_bio_folder(out: Path, rows: list[dict] | None = None) -> list[dict]:
    """A raft.generate-style folder: dataset/ (train, test), train.jsonl, test.jsonl."""
    rows = rows or bio_rows()
    out.mkdir(parents=True, exist_ok=True)
    train = [{**rows[0], "id": "t0"}]
    datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(train), "test": datasets.Dataset.from_list(rows)}
    ).save_to_disk(str(out / "dataset"))
    for split, part in (("train", train), ("test", rows)):
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
    return rows


def scripted_reply(name: str) -> str:
    label, how = next((lab, how) for n, lab, _, _, how in NEEDLES if n == name)
    if how == "exact":
        return compact(label)
    if how == "fenced":
        return f"Here is the extracted information:\n\n```json\n{json.dumps(label, indent=2)}\n```"
    if how == "prose_one_wrong":  # nationality lower-cased (right), death year wrong
        said = {
            **label,
            "nationality": label["nationality"].lower(),
            "date_of_death": {**label["date_of_death"], "year": 1999},
        }
        return f"Based on the text, {json.dumps(said)} is the answer."
    if how == "no_json":
        return "I could not find this person in the text."
    return json.dumps([label])  # valid JSON, not an object


# per needle: (score, json_valid, fields right)
EXPECTED = {
    "Ada Quill": (1.0, 1, set(FIELDS)),
    "Bo Renn": (1.0, 1, set(FIELDS)),
    "Cy Moss": (8 / 9, 1, set(FIELDS) - {"date_of_death.year"}),
    "Di Lark": (0.0, 0, set()),
    "Ed Pike": (0.0, 0, set()),
}


class ScriptedServer(TeacherServer):
    """The local OpenAI-compatible server, replying to a bio prompt with the needle's scripted reply."""

    def reply(self, messages: list[dict], n: int = 0) -> tuple[str, str]:
        user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        m = re.search(r"extract information about (.+?) as one JSON object", user)
        return "bio", scripted_reply(m.group(1)) if m else "no bio prompt"


@pytest.fixture(scope="module")
def scripted():
    with ScriptedServer() as server:
        yield server


def manager(**metadata):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata=metadata)


# --------------------------------------------------------------------------------------------------
# the task
# --------------------------------------------------------------------------------------------------


def test_task_reads_a_generate_folder(tmp_path, monkeypatch):
    rows = make_bio_folder(tmp_path / "bio")
    task = manager(bio_needle_data=str(tmp_path / "bio")).load(["bio_needle"])["tasks"]["bio_needle"]
    docs = list(task.eval_docs)
    assert [d["needle_name"] for d in docs] == [r["needle_name"] for r in rows]  # the test split, in order
    for doc, row in zip(docs, rows, strict=True):
        # the evaluation prompt is the prompt the student was trained on; the target its completion
        assert task.doc_to_text(doc) == row["prompt"][0]["content"]
        assert task.doc_to_target(doc) == compact(row["label"]) == row["completion"][0]["content"]
        for key in ("label", "target_tokens", "context_tokens", "depth", "depth_target", "needle_start"):
            assert doc[key] == row[key]
    assert "messages" not in docs[0] and "completion" not in docs[0]  # not carried into the samples
    gen = task.config.generation_kwargs
    assert gen["max_gen_toks"] == 256 and gen["do_sample"] is False and gen["temperature"] == 0.0
    assert gen["until"] == ["<|eot_id|>"] and not any(
        stop in json.dumps(LABEL, indent=2) for stop in gen["until"]
    )
    assert task.config.num_fewshot == 0
    expected = {"score", "json_valid", *FIELD_METRICS.values(), *LENGTH_METRICS}
    assert set(task.aggregation()) == expected
    assert {"score_4k", "score_8k", "score_12k", "score_16k", "score_24k", "score_32k"} <= expected

    # test.jsonl without dataset/, a JSONL file, the environment variable; metadata wins over it
    utils = _utils()
    import shutil

    shutil.rmtree(tmp_path / "bio" / "dataset")
    monkeypatch.setenv("RAFT_BIO_NEEDLE_DATA", str(tmp_path / "bio"))
    assert utils.load()["test"]["needle_name"] == [r["needle_name"] for r in rows]
    (tmp_path / "one.jsonl").write_text(json.dumps(rows[2]) + "\n")
    assert utils.load(bio_needle_data=str(tmp_path / "one.jsonl"))["test"]["needle_name"] == ["Cy Moss"]


def test_bad_data_is_a_one_line_error(tmp_path, monkeypatch):
    utils = _utils()
    with pytest.raises(ConfigError, match="RAFT_BIO_NEEDLE_DATA"):
        utils.load()
    monkeypatch.setenv("RAFT_BIO_NEEDLE_DATA", str(tmp_path))  # an empty folder
    with pytest.raises(ConfigError, match="RAFT_BIO_NEEDLE_DATA"):
        utils.load()
    row = bio_rows()[0]
    cases = [
        ({k: v for k, v in row.items() if k != "label"}, "row 0: missing column label"),
        ({**row, "prompt": "text"}, "row 0: 'prompt' is not a list of chat messages"),
        ({**row, "label": {**LABEL, "sportsperson": "maybe"}}, "row 0: 'label' breaks the BioLabel schema"),
        ({**row, "target_tokens": "4k"}, "row 0: 'target_tokens' is not a whole number"),
    ]
    for bad, message in cases:
        (tmp_path / "test.jsonl").write_text(json.dumps(bad) + "\n")
        with pytest.raises(ConfigError, match=re.escape(message)) as e:
            utils.load()
        assert "\n" not in str(e.value) and "test.jsonl" in str(e.value)
    (tmp_path / "test.jsonl").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        utils.load()


def test_process_results_and_per_length_aggregation(tmp_path, capsys):
    rows = make_bio_folder(tmp_path / "bio")
    utils = _utils()
    docs = utils.load(bio_needle_data=str(tmp_path / "bio"))["test"].to_list()
    assert "no per-length metric for target_tokens [5000]" in capsys.readouterr().err
    per_doc = [utils.process_results(d, [scripted_reply(d["needle_name"])]) for d in docs]
    for d, r in zip(docs, per_doc, strict=True):
        score, valid, right = EXPECTED[d["needle_name"]]
        assert r["score"] == pytest.approx(score) and r["json_valid"] == valid
        assert {f for f in FIELDS if r[FIELD_METRICS[f]] == 1.0} == right
        # every length metric is a (score, applies) pair; exactly one applies, or none for 5000
        assert [m for m in LENGTH_METRICS if r[m][1]] == (
            [length_metric(d["target_tokens"])] if d["target_tokens"] != 5000 else []
        )
        assert all(r[m][0] == r["score"] for m in LENGTH_METRICS)

    task = manager(bio_needle_data=str(tmp_path / "bio")).load(["bio_needle"])["tasks"]["bio_needle"]
    agg = task.aggregation()
    values = {m: agg[m]([r[m] for r in per_doc]) for m in agg}
    assert values["score"] == pytest.approx((1 + 1 + 8 / 9) / 5) and values["json_valid"] == pytest.approx(
        3 / 5
    )
    assert values["nationality"] == pytest.approx(3 / 5) and values["death_year"] == pytest.approx(2 / 5)
    assert values["score_4k"] == 1.0 and values["score_8k"] == pytest.approx(4 / 9)
    assert all(math.isnan(values[m]) for m in LENGTH_METRICS if m not in ("score_4k", "score_8k"))
    assert len(rows) == 5


@pytest.mark.slow
def test_lm_eval_run_against_a_scripted_server(scripted, tmp_path):
    """The task through lm-eval's local-chat-completions: the prompt sent, the metrics, NaN lengths."""
    import lm_eval

    rows = make_bio_folder(tmp_path / "bio")
    results = lm_eval.simple_evaluate(
        model="local-chat-completions",
        model_args={
            "model": "scripted",
            "base_url": f"{scripted.base_url}/chat/completions",
            "tokenized_requests": False,
        },
        tasks=["bio_needle"],
        task_manager=manager(bio_needle_data=str(tmp_path / "bio")),
        apply_chat_template=True,
        log_samples=True,
        bootstrap_iters=0,
    )
    m = results["results"]["bio_needle"]
    assert m["score,none"] == pytest.approx((1 + 1 + 8 / 9) / 5) and m["json_valid,none"] == pytest.approx(
        0.6
    )
    assert m["nationality,none"] == pytest.approx(0.6) and m["death_year,none"] == pytest.approx(0.4)
    assert m["score_4k,none"] == 1.0 and m["score_8k,none"] == pytest.approx(4 / 9)
    assert math.isnan(m["score_16k,none"]) and math.isnan(m["score_32k,none"])
    assert m["score_4k_stderr,none"] == "N/A"  # no closed form for the custom aggregation
    samples = sorted(results["samples"]["bio_needle"], key=lambda s: s["doc_id"])
    assert [s["score"] for s in samples] == pytest.approx([EXPECTED[r["needle_name"]][0] for r in rows])
    for s, row in zip(samples, rows, strict=True):
        prompt = s["arguments"][0][0]  # lm-eval's JsonChatStr: the messages as JSON
        messages = json.loads(prompt[0] if isinstance(prompt, tuple) else prompt)
        assert messages == row["prompt"]  # the student's prompt as the one user message
        assert s["target"] == compact(row["label"])
    assert scripted.stats.by_kind.get("bio") == len(rows)
    assert scripted.stats.last_body["max_tokens"] == 256  # the task's generation budget


# --------------------------------------------------------------------------------------------------
# python -m raft.evaluate recipe=bio_needle
# --------------------------------------------------------------------------------------------------


def _served(scripted, data: Path, out: Path, *extra: str):
    return load_config(
        "evaluate",
        [
            f"recipe={RECIPE}",
            "model=scripted",
            "backend=local-chat-completions",
            f"base_url={scripted.base_url}",
            f"data={data}",
            f"output={out}",
            "num_concurrent=2",
            *extra,
        ],
    )


@pytest.mark.slow
def test_raft_evaluate_writes_bio_samples_metrics_and_the_cost_table(scripted, tmp_path, monkeypatch, capsys):
    from raft.evaluate import main

    rows = make_bio_folder(tmp_path / "bio")
    calls = []

    def write_cost_table(prompts_by_length, prices, output_tokens, folder):
        calls.append((prompts_by_length, prices, output_tokens, folder))
        path = Path(folder) / "cost.md"
        path.write_text("cost")
        return path

    monkeypatch.setitem(
        sys.modules, "raft.kinds.bio_needle.cost", types.SimpleNamespace(write_cost_table=write_cost_table)
    )
    out = tmp_path / "eval"
    cfg = _served(scripted, tmp_path / "bio", out)
    assert cfg.max_new_tokens == 256 and cfg.tasks == ["bio_needle"] and cfg.prices
    main(cfg)
    printed = capsys.readouterr().out

    # results.json: strict JSON, null for a length no row has
    def no_nan(name):
        raise AssertionError(f"{name} in results.json")

    data = json.loads((out / "results.json").read_text(), parse_constant=no_nan)
    m = data["results"]["bio_needle"]
    assert m["score,none"] == pytest.approx((1 + 1 + 8 / 9) / 5) and m["score_8k,none"] == pytest.approx(
        4 / 9
    )
    assert m["score_16k,none"] is None and data["raft_config"]["prices"] == cfg.prices

    # samples_bio_needle.jsonl: what the report reads
    samples = [json.loads(line) for line in (out / "samples_bio_needle.jsonl").read_text().splitlines()]
    assert [s["needle_name"] for s in samples] == [r["needle_name"] for r in rows]
    for s, row in zip(samples, rows, strict=True):
        score, valid, right = EXPECTED[row["needle_name"]]
        for key in ("label", "target_tokens", "context_tokens", "depth", "depth_target"):
            assert s[key] == row[key]
        assert s["response"] == scripted_reply(row["needle_name"])
        assert s["json_valid"] == valid and s["score"] == pytest.approx(score)
        assert s["fields"] == {f: int(f in right) for f in FIELDS}
        assert (s["parsed"] is None) == (not valid) and (not valid or isinstance(s["parsed"], dict))
        assert "prompt" not in s and "output" not in s  # the 32k-token prompt is not repeated
    assert samples[1]["parsed"] == rows[1]["label"]  # read out of the ```json fence

    # what it printed: overall, fields, every length (also the undeclared 5000)
    assert f"bio_needle: score {(1 + 1 + 8 / 9) / 5:.4f}, json_valid 0.6000" in printed
    assert "  fields: nationality 0.6000, birth_day 0.6000" in printed
    assert "  by length: 4k 1.0000, 5k 0.0000, 8k 0.4444" in printed

    # the cost table: prompts of the evaluated rows by target_tokens, the recipe's prices
    ((prompts, prices, output_tokens, folder),) = calls
    assert prompts == {
        n: [r["prompt"][0]["content"] for r in rows if r["target_tokens"] == n] for n in (4096, 5000, 8192)
    }
    assert list(prompts) == [4096, 5000, 8192] and prices == cfg.prices and Path(folder) == out
    assert output_tokens == 256  # "scripted" has no tokenizer: max_new_tokens, and it says so
    assert "cost table: " in printed and "max_new_tokens, an upper bound" in printed

    # limit: only the evaluated rows are priced; without the cost module: a clear line, results kept
    calls.clear()
    main(_served(scripted, tmp_path / "bio", tmp_path / "one", "limit=1"))
    assert calls[0][0] == {4096: [rows[0]["prompt"][0]["content"]]}
    monkeypatch.setitem(sys.modules, "raft.kinds.bio_needle.cost", None)  # as if cost.py were missing
    main(_served(scripted, tmp_path / "bio", tmp_path / "nocost", "limit=1"))
    assert "cost table skipped: raft.kinds.bio_needle.cost is missing" in capsys.readouterr().out
    assert (tmp_path / "nocost" / "results.json").is_file()
    # prices=[]: no cost table asked for
    calls.clear()
    monkeypatch.setitem(
        sys.modules, "raft.kinds.bio_needle.cost", types.SimpleNamespace(write_cost_table=write_cost_table)
    )
    main(_served(scripted, tmp_path / "bio", tmp_path / "noprices", "limit=1", "prices=[]"))
    assert calls == [] and "cost table" not in capsys.readouterr().out


@pytest.mark.slow
def test_hf_backend_and_vllm_context_sizing(tiny_model, tmp_path, monkeypatch, capsys):
    """hf: the tiny model's (random) replies are scored and written like any other; vllm (not
    installable here): max_model_len from the longest bio prompt, chat template applied, + 256."""
    import lm_eval
    from transformers import AutoTokenizer

    from raft.evaluate import evaluate, main

    rows = make_bio_folder(tmp_path / "bio")
    base = [
        f"recipe={RECIPE}",
        f"model={tiny_model}",
        f"data={tmp_path / 'bio'}",
        "prices=[]",
        "batch_size=2",
    ]
    out = tmp_path / "hf"
    main(load_config("evaluate", [*base, "limit=2", "max_new_tokens=4", f"output={out}"]))
    samples = [json.loads(line) for line in (out / "samples_bio_needle.jsonl").read_text().splitlines()]
    assert [s["needle_name"] for s in samples] == [r["needle_name"] for r in rows[:2]]
    for s in samples:
        assert s == {
            **s,
            **{k: v for k, v in score_reply(s["response"], s["label"]).items() if k != "parsed"},
        }
    assert "bio_needle: score " in capsys.readouterr().out

    calls = []
    monkeypatch.setattr(
        lm_eval, "simple_evaluate", lambda **kw: calls.append(kw) or {"config": {}, "results": {}}
    )
    evaluate(load_config("evaluate", [*base, "backend=vllm"]))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    longest = max(
        len(
            tok(
                tok.apply_chat_template(r["prompt"], tokenize=False, add_generation_prompt=True),
                add_special_tokens=False,
            )["input_ids"]
        )
        for r in rows
    )
    assert calls[-1]["model_args"]["max_model_len"] == -(-(longest + 256) // 256) * 256
    assert calls[-1]["gen_kwargs"] == {"max_gen_toks": 256}
