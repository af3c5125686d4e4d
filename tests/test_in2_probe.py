"""The IN2 retrieval probes (raft.kinds.in2.probes): construction checked with the tokenizer, scoring, the lm-eval
task through a scripted server (right for some position bins, wrong for others), and
python -m raft.evaluate recipe=in2_probe with the tiny model.

Lengths are small (1k-2k tokens of the tiny tokenizer, which writes ~1.5x Llama 3's tokens per text),
with 4 bins: a bin must be wider than a piece (a corpus segment is up to 128 tokens).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import re
import uuid
from collections import Counter
from pathlib import Path

import pytest

from raft.config import ConfigError, load_config, resource_dir
from raft.kinds.in2.probes import (
    PROBES,
    QUESTIONS,
    ProbeSettings,
    build_probes,
    pieces,
    probe_prompt,
    score_probe,
)
from raft.testing import TeacherServer

TASKS_DIR = resource_dir("eval_tasks")
SETTINGS = ProbeSettings(lengths=(1024, 2048), bins=4, samples=2)


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    monkeypatch.delenv("RAFT_IN2_PROBE_CORPUS", raising=False)
    monkeypatch.delenv("RAFT_IN2_PROBE_TOKENIZER", raising=False)


@pytest.fixture(scope="module")
def corpus(shared_data) -> Path:
    return shared_data / "docs"


@pytest.fixture(scope="module")
def sweep(tiny_model, corpus) -> list[dict]:
    return build_probes(tiny_model, corpus, SETTINGS)


@pytest.fixture(scope="module")
def template(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def _utils():
    """The task's utils.py, imported by path as lm-eval does."""
    spec = importlib.util.spec_from_file_location("_raft_eval_in2_probe_utils", TASKS_DIR / "in2_probe" / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _squash(text: str) -> str:
    return " ".join(text.split())


def _context(doc: dict) -> str:
    """The context of a doc's prompt: between the instruction and the question."""
    head = probe_prompt(doc["probe"], "\0", doc["cue"]).split("\0")
    assert doc["prompt"].startswith(head[0]) and doc["prompt"].endswith(head[1])
    return doc["prompt"][len(head[0]) : len(doc["prompt"]) - len(head[1])]


# --------------------------------------------------------------------------------------------------
# construction
# --------------------------------------------------------------------------------------------------


def test_every_gold_is_at_its_recorded_tokens_in_a_prompt_of_its_length(sweep, template):
    assert Counter((d["probe"], d["target_tokens"], d["bin"]) for d in sweep) == {
        (p, n, k): 2 for p in PROBES for n in (1024, 2048) for k in range(4)
    }
    for d in sweep:
        # the prompt as the model sees it: the chat template applied, as lm-eval and the tokenizer write it
        rendered = template.apply_chat_template([{"role": "user", "content": d["prompt"]}], add_generation_prompt=True, tokenize=False)
        ids = template(rendered, add_special_tokens=False)["input_ids"]
        assert len(ids) == d["context_tokens"] and math.ceil(0.99 * d["target_tokens"]) <= len(ids) <= d["target_tokens"]
        assert d["depth"] == d["gold_start"] / d["context_tokens"] and d["bin"] == math.floor(d["depth"] * 4)
        assert d["bins"] == 4 and d["question"] == QUESTIONS[d["probe"]].format(cue=d["cue"]) and d["prompt"].endswith(d["question"])
        gold = template.decode(ids[d["gold_start"] : d["gold_end"]])
        before = template.decode(ids[: d["gold_start"]])
        if d["probe"] == "document":  # the asked sentence starts at gold_start: its cue, then its answer
            assert _squash(gold).startswith(f"{d['cue']} {d['answer']}"), (gold, d["cue"])
            assert d["cue"] not in _squash(before)
        elif d["probe"] == "structured":
            assert gold.strip() == json.dumps({"key": d["cue"], "value": d["answer"]}) and d["cue"] not in before
        else:
            assert gold.strip().startswith(f"def {d['cue']}(") and gold.rstrip().endswith(f"return {d['answer']}")
            assert d["cue"] not in before.split("\n\n", 1)[1]  # (the instruction does not name it)


def test_the_quoted_beginning_occurs_once_and_answers_are_distinct(sweep):
    for d in sweep:
        context = _squash(_context(d)).lower()
        assert context.count(d["cue"].lower()) == 1, d["id"]
        assert context.count(d["answer"].lower()) >= 1
        if d["probe"] == "document":
            words = d["cue"].split()
            assert len(words) == 8 and pieces.MIN_ANSWER_WORDS <= len(d["answer"].split()) <= pieces.MAX_ANSWER_WORDS
        elif d["probe"] == "structured":
            assert all(str(uuid.UUID(x)) == x for x in (d["cue"], d["answer"]))
            lines = _context(d).split("\n")
            assert len({json.loads(line)["key"] for line in lines}) == len(lines)  # every line a record, keys unique
    # within a length, a sample's targets differ across bins and samples
    for p in PROBES:
        for n in (1024, 2048):
            cues = [d["cue"] for d in sweep if d["probe"] == p and d["target_tokens"] == n]
            assert len(set(cues)) == len(cues)


def test_the_sweep_is_seeded_and_sample_major(tiny_model, corpus, sweep):
    speech = corpus / "state_of_the_union.txt"  # one file of the corpus: quicker to read than the PDF
    small = ProbeSettings(lengths=(1024,), bins=2, samples=2)
    first, again = build_probes(tiny_model, speech, small), build_probes(tiny_model, speech, small)
    assert first == again
    other = build_probes(tiny_model, speech, ProbeSettings(lengths=(1024,), bins=2, samples=2, seed=1))
    assert [d["prompt"] for d in other] != [d["prompt"] for d in first]
    # the first probes x lengths x bins docs are one of each cell (lm-eval's limit takes a balanced subset)
    cells = len(PROBES) * 2 * 4
    assert len({(d["probe"], d["target_tokens"], d["bin"]) for d in sweep[:cells]}) == cells
    assert [d["id"].rsplit("/", 1)[1] for d in sweep] == ["0"] * cells + ["1"] * cells


def test_sentences_records_and_functions():
    text = (
        "## Heading line that is not a sentence at all here\n\n"
        "The first sentence of this paragraph is long enough to be asked about here. Dr. Smith wrote\n"
        "a note that is also long enough but begins after an abbreviation of a title. This sentence\n"
        "is wrapped over a line break and still counts as one sentence of prose.\n\n"
        "- A list item that is a long sentence but starts with a list marker here.\n"
        "Code like `let s = String::from(x);` is never asked about in this probe at all.\n"
        "Short one."
    )
    found = pieces.sentences([text], 8)
    assert [s.cue for s in found] == [
        "The first sentence of this paragraph is long",
        "This sentence is wrapped over a line break",
    ]
    assert found[1].answer == "and still counts as one sentence of prose."
    assert text[found[1].char :].startswith("This sentence\nis wrapped")

    import random

    lines = pieces.kv_records(random.Random(0), 300)
    records = [json.loads(line) for line in lines]
    values = [r["key"] for r in records] + [r["value"] for r in records]
    assert len(set(values)) == 600 and all(str(uuid.UUID(v)) == v for v in values)
    assert pieces.kv_records(random.Random(0), 300) == lines
    made = pieces.functions(random.Random(0), 300)
    assert len({n for n, _, _ in made}) == len({e for _, _, e in made}) == 300
    for name, source, expr in made:
        tree = ast.parse(source)  # valid Python: one function of three arguments, its last line returns expr
        fn = tree.body[0]
        assert fn.name == name and len(fn.args.args) == 3 and ast.unparse(fn.body[-1].value) == expr


def test_a_raft_generate_folder_is_read_as_its_chunks(tiny_model, corpus, tmp_path):
    from raft.sources.chunking import load_tokenizer

    paragraphs = [p.strip() for p in (corpus / "state_of_the_union.txt").read_text().split("\n\n") if len(p.split()) > 40]
    folder = tmp_path / "raft_data"
    folder.mkdir()
    chunks = [{"id": f"c{i}", "text": t, "source": "speech.txt", "title": ""} for i, t in enumerate(paragraphs)]
    (folder / "chunks.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chunks))
    (folder / "test.jsonl").write_text(json.dumps({"question": "q?", "final_answer": "SECRET"}) + "\n")  # not a corpus
    segments = pieces.corpus_segments(folder, load_tokenizer(tiny_model), 128, 10**6, 0)
    assert segments and all("SECRET" not in s for s in segments)
    assert set(_squash(" ".join(segments)).split()) == set(_squash(" ".join(paragraphs)).split())
    # a corpus larger than needed is read up to max_chars only (documents in a seeded order)
    assert sum(map(len, pieces.corpus_segments(folder, load_tokenizer(tiny_model), 128, 2000, 0))) <= 2000


def _trained_on(folder: Path, segments: list[str]) -> Path:
    """An in2 training data folder (as raft.generate writes it) whose long contexts hold ``segments``."""
    folder.mkdir(parents=True)
    rows = [{"id": f"r{i}", "question": "What?", "documents": [seg], "messages": [{"role": "user", "content": "\n\n".join(
        [*segments[i::3], "What?"])}, {"role": "assistant", "content": "This."}]} for i, seg in enumerate(segments[:3])]
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:-1]))
    (folder / "test.jsonl").write_text(json.dumps(rows[-1]) + "\n")
    return folder


def test_the_document_probe_drops_corpus_segments_the_model_trained_on(tiny_model, corpus, sweep, tmp_path, capsys):
    """A probe corpus must be disjoint from the fine-tuned model's training text: segments sharing a
    10-word run with the training rows (long contexts included) are neither asked about nor filler,
    and their number is printed; a corpus the model trained on entirely is refused."""
    from raft.kinds.in2.decontaminate import Contamination
    from raft.kinds.in2.probes.pools import CORPUS_CHARS_PER_TOKEN
    from raft.kinds.in2.probes.prompter import Prompter

    tok = Prompter(tiny_model).tok
    segments = pieces.corpus_segments(corpus, tok, SETTINGS.segment_tokens, CORPUS_CHARS_PER_TOKEN * max(SETTINGS.lengths), SETTINGS.seed)
    trained = segments[: len(segments) // 2]
    folder = _trained_on(tmp_path / "in2", trained)
    seen = Contamination(pieces.training_texts(folder), pieces.OVERLAP_WORDS)
    documents = [d for d in sweep if d["probe"] == "document"]
    assert any(seen.hits(_context(d)) for d in documents)  # without the check the probe uses trained text

    capsys.readouterr()
    docs = build_probes(tiny_model, corpus, SETTINGS, exclude=folder)
    err = capsys.readouterr().err
    dropped = len(pieces.training_overlap(segments, pieces.training_texts(folder)))
    assert dropped >= len(trained)
    assert f"in2_probe: {dropped} of {len(segments)} corpus segments share a 10-word run with the training data {folder}" in err
    kept = [d for d in docs if d["probe"] == "document"]
    assert len(kept) == len(documents)  # the same sweep, from the segments left
    for d in kept:
        assert not seen.hits(_context(d)), d["id"]  # neither the asked sentence nor any filler was trained on
        assert not seen.hits(d["cue"] + " " + d["answer"])

    everything = _trained_on(tmp_path / "all", segments)
    with pytest.raises(ConfigError) as e:
        build_probes(tiny_model, corpus, SETTINGS, exclude=everything)
    assert "\n" not in str(e.value) and f"all {len(segments)} segments of the corpus {corpus} occur in the training data" in str(e.value)
    with pytest.raises(ConfigError, match="is not a raft.generate output folder"):
        build_probes(tiny_model, corpus, SETTINGS, exclude=tmp_path)


def test_raft_evaluate_checks_the_probe_corpus_against_the_adapters_training_data(tiny_model, corpus, tmp_path, capsys):
    from raft.config import save_config
    from raft.kinds.in2.evaluation import probe_metadata

    data = _trained_on(tmp_path / "in2", ["one two three four five six seven eight nine ten eleven"])
    save_config(load_config("generate", ["recipe=in2", "input=docs"]), data)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "finetune_run.json").write_text(json.dumps({"data": str(data)}))
    base = ["recipe=in2_probe", f"model={tiny_model}", f"data={corpus}"]
    assert probe_metadata(load_config("evaluate", [*base, f"adapter={adapter}"]), ["in2_probe"])["in2_probe_exclude"] == str(data)
    assert "in2_probe_exclude" not in probe_metadata(load_config("evaluate", base), ["in2_probe"])  # a base model
    other = _trained_on(tmp_path / "other", ["x"])
    chosen = probe_metadata(load_config("evaluate", [*base, f"probe_exclude={other}", f"adapter={adapter}"]), ["in2_probe"])
    assert chosen["in2_probe_exclude"] == str(other)  # the setting wins (and serves the base model's run too)
    with pytest.raises(ConfigError, match=r"probe_exclude=.*missing: no such folder"):
        probe_metadata(load_config("evaluate", [*base, f"probe_exclude={tmp_path / 'missing'}"]), ["in2_probe"])
    (adapter / "finetune_run.json").unlink()
    capsys.readouterr()
    assert "in2_probe_exclude" not in probe_metadata(load_config("evaluate", [*base, f"adapter={adapter}"]), ["in2_probe"])
    assert "WARNING: in2_probe: cannot check the document probe's corpus against the adapter's training data" in capsys.readouterr().err
    utils = _utils()
    assert utils.exclude({"in2_probe_exclude": str(data)}) == str(data) and utils.exclude({}) is None


def test_bad_settings_are_one_line_errors(tiny_model, corpus, tmp_path):
    for kwargs, message in [
        ({"bins": 0}, "bins=0"),
        ({"lengths": ()}, "lengths is empty"),
        ({"lengths": (4096, "8k")}, "lengths='8k'"),
        ({"probes": ("document", "tables")}, "must be some of document, structured, code"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            ProbeSettings(**kwargs)
    cases = [
        (None, ProbeSettings(lengths=(1024,)), "the document probe needs a corpus"),
        (tmp_path / "missing", ProbeSettings(lengths=(1024,)), "in2_probe corpus:"),
        (corpus, ProbeSettings(lengths=(262144,), probes=("document",)), "lower the lengths"),
        (None, ProbeSettings(lengths=(1024,), bins=40, probes=("code",)), "use fewer bins or longer contexts"),
    ]
    for where, settings, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)) as e:
            build_probes(tiny_model, where, settings)
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="cannot load tokenizer"):
        build_probes(tmp_path / "no-tokenizer", None, ProbeSettings(probes=("code",)))


# --------------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------------


def test_scoring_per_probe():
    cue, rest = "The variable is valid from the point at", "which it’s declared until the end of the current scope."
    assert score_probe("document", rest, rest, cue)["em"] == 1.0
    replies = (f'"{rest}"', f"{cue} {rest}", f"... {rest}\n\nI hope this helps.", f"Answer: {rest.upper()}",
               rest.replace("’", "'"))
    for reply in replies:
        assert score_probe("document", reply, rest, cue) | {"predicted": ""} == {"em": 1.0, "f1": 1.0, "predicted": ""}, reply
    half = score_probe("document", "which it’s declared until the end", rest, cue)
    assert half["em"] == 0.0 and 0.5 < half["f1"] < 1.0
    assert score_probe("document", "", rest, cue)["f1"] == 0.0

    key, value = "bd0cd17d-7645-4037-8b66-831649bd2769", "2a624a2d-e864-4b3c-a1c7-3aa573a5a551"
    for reply in (value, value.upper(), f'The value of "{key[:8]}" is "{value}".', f"```\n{value}\n```"):
        assert score_probe("structured", reply, value, key)["em"] == 1.0, reply
    wrong = score_probe("structured", key, value, key)  # the key itself is another UUID: wrong
    assert wrong["em"] == 0.0 and wrong["f1"] == 0.0 and score_probe("structured", "unknown", value, key)["em"] == 0.0

    expr = "w - 58 + k % p"
    for reply in (expr, "w-58+k%p", f"`{expr}`", f"return {expr}", f"```python\nreturn {expr}\n```"):
        assert score_probe("code", reply, expr, "f_1003ad28")["em"] == 1.0, reply
    near = score_probe("code", "w + 58 + k % p", expr, "f_1003ad28")
    assert near["em"] == 0.0 and near["f1"] == pytest.approx(6 / 7)  # one operator of 7 tokens differs
    with pytest.raises(ValueError, match="unknown probe"):
        score_probe("tables", "x", "x")


def test_process_results_and_per_bin_metrics(sweep):
    utils = _utils()
    docs = [d for d in sweep if d["target_tokens"] == 1024]
    per_doc = [utils.process_results(d, [d["answer"] if d["bin"] in (0, 3) else "no idea"]) for d in docs]
    for d, r in zip(docs, per_doc, strict=True):
        assert r["em"] == r["f1"] == float(d["bin"] in (0, 3))
        assert [m for m in utils.BIN_METRICS if r[m][1]] == [f"em_bin{d['bin']}", f"f1_bin{d['bin']}"]
        assert [m for m in utils.PROBE_METRICS if r[m][1]] == [f"em_{d['probe']}", f"f1_{d['probe']}"]
        assert [m for m in utils.LENGTH_METRICS if r[m][1]] == ["em_1k"]  # the 8k ladder's lengths are declared
    assert not any(r[1] for m, r in utils.process_results({**docs[0], "target_tokens": 3000}, ["x"]).items()
                   if m in utils.LENGTH_METRICS)  # 3k: no declared length metric
    assert utils.process_results({**docs[0], "target_tokens": 4096}, ["x"])["em_4k"] == (0.0, True)
    bins = {m: utils.mean_where([r[m] for r in per_doc]) for m in utils.BIN_METRICS}
    assert bins["em_bin0"] == bins["em_bin3"] == 1.0 and bins["em_bin1"] == bins["f1_bin2"] == 0.0
    assert all(math.isnan(bins[f"em_bin{k}"]) for k in range(4, 10))


def test_task_settings_tokenizer_and_corpus_resolution(tiny_model, monkeypatch):
    utils = _utils()
    defaults = {"lengths": [4096, 8192], "bins": 10, "samples": 5, "probes": list(PROBES), "seed": 0}
    s = utils.settings({"in2_probe_lengths": "1024, 2048", "in2_probe_probes": ["code"], "in2_probe_bins": "4"}, defaults)
    assert (s.lengths, s.bins, s.samples, s.probes, s.seed) == ((1024, 2048), 4, 5, ("code",), 0)
    with pytest.raises(ConfigError, match=r"in2_probe: bins='four' must be a whole number"):
        utils.settings({"in2_probe_bins": "four"}, defaults)
    with pytest.raises(ConfigError, match="needs the evaluated model's tokenizer"):
        utils.tokenizer_name({})
    assert utils.tokenizer_name({"pretrained": "a", "model": "b"}) == "a"  # lm_eval --model_args, as metadata
    monkeypatch.setenv("RAFT_IN2_PROBE_TOKENIZER", "env")
    assert utils.tokenizer_name({"pretrained": "a"}) == "env"
    assert utils.tokenizer_name({"in2_probe_tokenizer": "meta", "pretrained": "a"}) == "meta"
    monkeypatch.setenv("RAFT_IN2_PROBE_CORPUS", "docs")
    assert utils.corpus({}) == "docs" and utils.corpus({"in2_probe_corpus": "mine"}) == "mine"


# --------------------------------------------------------------------------------------------------
# the task through lm-eval, against a scripted server
# --------------------------------------------------------------------------------------------------

# question -> doc of the sweep the scripted server answers (filled in by the test)
SCRIPT: dict[str, dict] = {}
RIGHT_BINS = (0, 3)  # the scripted model finds the gold at the edges, not in the middle


def scripted_reply(doc: dict) -> str:
    if doc["bin"] not in RIGHT_BINS:
        return "I could not find it in the context."
    if doc["probe"] == "document":
        return f"{doc['cue']} {doc['answer']}"  # repeats the quoted beginning: dropped by the scoring
    if doc["probe"] == "structured":
        return f"The value is \"{doc['answer']}\"."
    return f"`return {doc['answer']}`"


class ScriptedServer(TeacherServer):
    """The local OpenAI-compatible server, replying to a probe prompt with its scripted reply."""

    def reply(self, messages: list[dict], n: int = 0) -> tuple[str, str]:
        user = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
        doc = SCRIPT.get(user.rsplit("\n\n", 1)[-1])
        return ("probe", scripted_reply(doc)) if doc else ("other", "no probe prompt")


@pytest.fixture(scope="module")
def scripted():
    with ScriptedServer() as server:
        yield server


def manager(**metadata):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata=metadata)


@pytest.mark.slow
def test_lm_eval_run_against_a_scripted_server(scripted, tiny_model, corpus):
    import lm_eval

    metadata = {"in2_probe_tokenizer": str(tiny_model), "in2_probe_corpus": str(corpus),
                "in2_probe_lengths": [1024], "in2_probe_bins": 4, "in2_probe_samples": 1}
    task = manager(**metadata).load(["in2_probe"])["tasks"]["in2_probe"]
    docs = list(task.eval_docs)
    assert Counter((d["probe"], d["target_tokens"], d["bin"]) for d in docs) == {(p, 1024, k): 1 for p in PROBES for k in range(4)}
    assert task.config.generation_kwargs["max_gen_toks"] == 64 and task.config.generation_kwargs["until"] == ["<|eot_id|>"]
    SCRIPT.clear()
    SCRIPT.update({d["question"]: d for d in docs})
    results = lm_eval.simple_evaluate(
        model="local-chat-completions",
        model_args={"model": "scripted", "base_url": f"{scripted.base_url}/chat/completions", "tokenized_requests": False},
        tasks=[task],  # the task loaded above: its docs are built once
        apply_chat_template=True,
        log_samples=True,
        bootstrap_iters=0,
    )
    m = results["results"]["in2_probe"]
    assert m["em,none"] == m["f1,none"] == 0.5
    for p in PROBES:
        assert m[f"em_{p},none"] == m[f"f1_{p},none"] == 0.5
    assert [m[f"em_bin{k},none"] for k in range(4)] == [1.0, 0.0, 0.0, 1.0]
    assert [m[f"f1_bin{k},none"] for k in range(4)] == [1.0, 0.0, 0.0, 1.0]
    assert all(math.isnan(m[f"em_bin{k},none"]) for k in range(4, 10)) and math.isnan(m["em_4k,none"])
    samples = sorted(results["samples"]["in2_probe"], key=lambda s: s["doc_id"])
    assert [s["em"] for s in samples] == [float(d["bin"] in RIGHT_BINS) for d in docs]
    prompt = samples[0]["arguments"][0][0]
    assert json.loads(prompt[0] if isinstance(prompt, tuple) else prompt) == [{"role": "user", "content": docs[0]["prompt"]}]
    assert scripted.stats.by_kind.get("probe") == len(docs) and scripted.stats.last_body["max_tokens"] == 64


# --------------------------------------------------------------------------------------------------
# python -m raft.evaluate recipe=in2_probe
# --------------------------------------------------------------------------------------------------

SAMPLE_FIELDS = ["doc_id", "probe", "target_tokens", "context_tokens", "bins", "bin", "depth", "question", "answer",
                 "response", "em", "f1"]  # fmt: skip


def test_recipe_and_its_settings_reach_the_task(tiny_model, corpus, monkeypatch):
    from raft.evaluate import TASK_DATA, check
    from raft.kinds.in2.evaluation import probe_metadata

    cfg = load_config("evaluate", ["recipe=in2_probe"])
    assert cfg.tasks == ["in2_probe"] and cfg.max_new_tokens == 64 and cfg.apply_chat_template
    assert (cfg.probe_lengths, cfg.probe_bins, cfg.probe_samples) == ([4096, 8192, 16384, 32768], 10, 5)
    assert TASK_DATA["in2_probe"] == ("in2_probe_corpus", "RAFT_IN2_PROBE_CORPUS")
    cfg = load_config("evaluate", ["recipe=in2_probe", f"model={tiny_model}", f"data={corpus}", "probe_lengths=[1024]",
                                   "probe_types=[code,structured]"])
    assert probe_metadata(cfg, ["in2_probe"]) == {
        "in2_probe_tokenizer": str(tiny_model), "in2_probe_lengths": [1024], "in2_probe_bins": 10,
        "in2_probe_samples": 5, "in2_probe_probes": ["code", "structured"],
    }  # fmt: skip
    assert probe_metadata(cfg, ["raft_domain"]) == {}
    served = load_config("evaluate", ["recipe=in2_probe", "model=served", "tokenizer=tok"])
    assert probe_metadata(served, ["in2_probe"])["in2_probe_tokenizer"] == "tok"
    for args, message in [
        (["data="], "the document probe needs a corpus: data="),
        (["probe_bins=0"], "bins=0"),
        (["probe_types=[tables]"], "must be some of"),
        (["probe_lengths=4096"], "probe_lengths and probe_types must be lists"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            check(load_config("evaluate", ["recipe=in2_probe", *args]))
    monkeypatch.setenv("RAFT_IN2_PROBE_CORPUS", str(corpus))
    check(load_config("evaluate", ["recipe=in2_probe", "data="]))  # the environment variable is a corpus too


def test_probe_sample_row_is_what_the_report_reads():
    from raft.evaluate import sample_row

    doc = {"id": "code/4096/3/0", "probe": "code", "target_tokens": 4096, "context_tokens": 4090, "bins": 10, "bin": 3,
           "depth": 0.31, "gold_start": 1270, "gold_end": 1300, "question": "What does f_1 return?",
           "answer": "a + 1", "cue": "f_1", "prompt": "long"}  # fmt: skip
    sample = {"doc_id": 7, "doc": doc, "target": "a + 1", "filtered_resps": ["return a + 1"], "em": 1.0, "f1": 1.0}
    row = sample_row(sample, "in2_probe")
    assert list(row) == SAMPLE_FIELDS
    assert row == {**{k: doc[k] for k in SAMPLE_FIELDS if k in doc}, "doc_id": 7, "response": "return a + 1",
                   "em": 1.0, "f1": 1.0}  # fmt: skip
    # without the task's metrics (lm_eval --log_samples rows are read by the report itself): scored again
    assert sample_row({k: v for k, v in sample.items() if k not in ("em", "f1")})["em"] == 1.0


@pytest.mark.slow
def test_raft_evaluate_recipe_in2_probe_with_the_tiny_model(tiny_model, corpus, tmp_path, monkeypatch, capsys):
    from lm_eval.models.huggingface import HFLM

    from raft.evaluate import main

    seen: list[int] = []  # the prompt lengths the model was given
    encode = HFLM.tok_batch_encode

    def spy(self, strings, *args, **kwargs):
        ids, mask = encode(self, strings, *args, **kwargs)
        seen.extend(int(m.sum()) for m in mask)
        return ids, mask

    monkeypatch.setattr(HFLM, "tok_batch_encode", spy)
    out = tmp_path / "eval"
    cfg = load_config("evaluate", ["recipe=in2_probe", f"model={tiny_model}", f"data={corpus}", "probe_lengths=[1024]",
                                   "probe_bins=2", "probe_samples=1", "max_new_tokens=4", f"output={out}"])
    main(cfg)
    printed = capsys.readouterr().out
    assert "in2_probe: em " in printed and "em by position bin: 0 " in printed

    def no_nan(name):
        raise AssertionError(f"{name} in results.json")

    data = json.loads((out / "results.json").read_text(), parse_constant=no_nan)
    m = data["results"]["in2_probe"]
    rows = [json.loads(line) for line in (out / "samples_in2_probe.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(list(r) == SAMPLE_FIELDS for r in rows)
    assert Counter((r["probe"], r["bin"]) for r in rows) == {(p, k): 1 for p in PROBES for k in (0, 1)}
    assert m["em,none"] == pytest.approx(sum(r["em"] for r in rows) / 6)
    assert m["f1,none"] == pytest.approx(sum(r["f1"] for r in rows) / 6)
    assert m["em_bin5,none"] is None and m["em_4k,none"] is None  # no such bin or length: null
    for r in rows:
        assert r["target_tokens"] == 1024 and r["bins"] == 2 and r["bin"] == math.floor(r["depth"] * 2)
        scores = score_probe(r["probe"], r["response"], r["answer"])
        assert r["em"] == scores["em"]
    # the model saw every prompt at the length recorded: the chat template applied, no second BOS
    assert sorted(seen) == sorted(r["context_tokens"] for r in rows)
