"""raft.finetune on the tiny model on CPU: LoRA and 4-bit QLoRA runs, reload/merge/generate, resume,
2-process accelerate, overlong handling, dry run without downloads, one-line errors.

The training data is written at test time in the layout raft.generate writes (dataset/ DatasetDict
with train/test, train.jsonl, test.jsonl, the contract's columns) from the shared HotpotQA examples,
with the fake teacher's chain-of-thought answers (raft.testing.fake_answer).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from raft import finetune
from raft.config import available_recipes, load_config, recipe_path, run_cli
from raft.hotpot import load_hotpot, paragraph_text, paragraphs
from raft.prompts import student_example
from raft.testing import fake_answer, fake_questions

REPO = Path(__file__).resolve().parent.parent
HOTPOT = "hotpotqa/hotpot_dev_distractor_first100.json"


# --------------------------------------------------------------------------------------------------
# fixtures: a dataset in raft.generate's layout
# --------------------------------------------------------------------------------------------------


def raft_rows(examples: list[dict], n_docs: int = 4, doc_chars: int | None = 200, seed: int = 0) -> list[dict]:
    """Rows with the contract's columns: oracle = first supporting paragraph, shuffled distractors."""
    rng = random.Random(seed)
    rows = []
    for ex in examples:
        paras = [paragraph_text(t, x) for t, x in paragraphs(ex)]
        support = {t for t, _ in ex["supporting_facts"]}
        oracle = next((p for (t, _), p in zip(paragraphs(ex), paras, strict=True) if t in support), paras[0])
        if doc_chars:
            oracle = oracle[:doc_chars]
        question = fake_questions(oracle, 1)[0].split(". ", 1)[1]
        others = [p[:doc_chars] if doc_chars else p for p in paras if not p.startswith(oracle[:40])]
        documents = [oracle, *rng.sample(others, min(n_docs - 1, len(others)))]
        rng.shuffle(documents)
        answer = fake_answer(question, documents)
        rows.append(
            {
                "id": ex["_id"],
                "question": question,
                "documents": documents,
                "oracle_index": documents.index(oracle),
                "cot_answer": answer,
                "final_answer": answer.rsplit("<ANSWER>:", 1)[-1].strip(),
                "chunk_id": ex["_id"] + "-0",
                "source": "hotpot",
                **student_example(documents, question, answer),
            }
        )
    return rows


def write_raft_folder(folder: Path, train: list[dict], test: list[dict]) -> Path:
    """The contract's layout: dataset/ (DatasetDict train/test), train.jsonl, test.jsonl, README.md."""
    import datasets

    folder.mkdir(parents=True, exist_ok=True)
    dd = datasets.DatasetDict({s: datasets.Dataset.from_list(r) for s, r in (("train", train), ("test", test)) if r})
    dd.save_to_disk(str(folder / "dataset"))
    for split, rows in (("train", train), ("test", test)):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "README.md").write_text("# test dataset in raft.generate's layout\n")
    return folder


@pytest.fixture(scope="session")
def hotpot_examples(shared_data) -> list[dict]:
    return load_hotpot(shared_data / HOTPOT, limit=48)


@pytest.fixture(scope="session")
def raft_data(tmp_path_factory, hotpot_examples) -> Path:
    """40 train + 8 test rows, 4 documents of <= 400 characters (most fit 512 tiny-model tokens)."""
    rows = raft_rows(hotpot_examples)
    return write_raft_folder(tmp_path_factory.mktemp("raft_data"), rows[:40], rows[40:])


def tiny_cfg(tiny_model: Path, data: Path, output: Path, *overrides: str):
    return load_config("finetune", ["recipe=tiny", f"model={tiny_model}", f"data={data}", f"output={output}", *overrides])


def summary_of(output: Path) -> dict:
    return json.loads((output / finetune.SUMMARY_FILE).read_text())


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny matrices on a busy 2-core machine: one thread avoids spin-waiting (30x faster here)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)}


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


# --------------------------------------------------------------------------------------------------
# recipes
# --------------------------------------------------------------------------------------------------

OWN_RECIPES = ["llama31_8b_q4", "llama31_8b", "llama3_8b_q4", "llama3_8b", "llama2_7b_chat_q4", "llama2_7b_chat", "tiny"]


def _finetune_recipes() -> list[str]:
    import yaml

    return [n for n in available_recipes() if (yaml.safe_load(recipe_path(n).read_text()) or {}).get("command") == "finetune"]


def test_every_finetune_recipe_loads_and_says_only_what_differs():
    import yaml

    names = _finetune_recipes()
    assert set(OWN_RECIPES) <= set(names)
    defaults = load_config("finetune", ["model=x"])
    for name in names:
        cfg = load_config("finetune", [f"recipe={name}"])
        assert cfg.recipe == name and cfg.model
        text = recipe_path(name).read_text()
        data = yaml.safe_load(text)
        for line in text.splitlines():  # torchtune style: every setting carries a why-comment
            if re.match(r"^\s*[a-z_]+:\s*\S", line) and not line.startswith("command:"):
                assert "#" in line, f"{name}: setting without a comment: {line!r}"
        for section, values in data.items():
            if isinstance(values, dict):
                for key, value in values.items():
                    assert getattr(getattr(defaults, section), key) != value, f"{name}: {section}.{key} repeats the default"
            elif section not in ("command", "model"):
                assert getattr(defaults, section) != values, f"{name}: {section} repeats the default"
    q4 = load_config("finetune", ["recipe=llama31_8b_q4"])
    assert (q4.model, q4.load_in_4bit, q4.lora.rank, q4.lora.target_modules, q4.train.max_length) == (
        "meta-llama/Llama-3.1-8B-Instruct", True, 64, "all-linear", 4096)
    assert all(load_config("finetune", [f"recipe={n}"]).load_in_4bit == n.endswith("_q4") for n in OWN_RECIPES if n != "tiny")


def test_accelerate_configs_are_not_recipes():
    import yaml

    folder = REPO / "recipes" / "accelerate"
    configs = {p.stem: yaml.safe_load(p.read_text()) for p in folder.glob("*.yaml")}
    assert configs["ddp"]["distributed_type"] == "MULTI_GPU"
    assert configs["fsdp_qlora"]["distributed_type"] == "FSDP"
    assert configs["fsdp_qlora"]["fsdp_config"]["fsdp_use_orig_params"] is False
    assert "bnb_4bit_quant_storage" in (folder / "fsdp_qlora.yaml").read_text()
    assert not any(n.startswith("accelerate") for n in available_recipes())


# --------------------------------------------------------------------------------------------------
# dry run: no download, no weights
# --------------------------------------------------------------------------------------------------


def _lora_params_by_hand(h: int, kv: int, i: int, layers: int, rank: int) -> int:
    per_layer = [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)]  # q k v o gate up down
    return layers * rank * sum(a + b for a, b in per_layer)


def test_dry_run_headline_recipe_offline(capsys):
    assert not Path("meta-llama/Llama-3.1-8B-Instruct").exists()  # nothing local, the hub offline: the built-in shapes
    run_cli("finetune", finetune.main, ["recipe=llama31_8b_q4", "dry_run=true"])
    out = capsys.readouterr().out
    h, kv, i, layers, vocab = 4096, 1024, 14336, 32, 128256
    total = 2 * vocab * h + layers * (2 * h * h + 2 * h * kv + 3 * h * i + 2 * h) + h
    assert f"parameters: {total:,} total" in out  # 8.03 B
    assert f"trainable LoRA parameters (rank 64, all-linear): {_lora_params_by_hand(h, kv, i, layers, 64):,}" in out
    assert "model: meta-llama/Llama-3.1-8B-Instruct" in out and "max_length: 4096" in out and "no download" in out
    q4 = float(re.search(r"total\s+([\d.]+) GiB", out).group(1))
    assert q4 < 0.95 * 40 and "40 GB: yes" in out  # the published setting: one 40 GB A100

    bf16 = finetune.dry_run(load_config("finetune", ["recipe=llama31_8b"]))["memory_gib"]
    assert bf16["weights"] == pytest.approx(total * 2 / finetune.GiB)
    assert bf16["total"] > q4 + 5
    # rank, targets and max_length move the numbers the way they should
    small = finetune.dry_run(load_config("finetune", ["recipe=llama31_8b_q4", "lora.rank=16", "lora.target_modules=[q_proj,v_proj]"]))
    assert small["params"]["lora"] == layers * 16 * ((h + h) + (h + kv))
    base = finetune.dry_run(load_config("finetune", ["recipe=llama31_8b_q4"]))["memory_gib"]
    longer = finetune.dry_run(load_config("finetune", ["recipe=llama31_8b_q4", "train.max_length=8192"]))["memory_gib"]
    assert longer["activations"] == pytest.approx(2 * base["activations"]) and longer["weights"] == base["weights"]
    llama2 = finetune.dry_run(load_config("finetune", ["recipe=llama2_7b_chat_q4"]))
    assert llama2["params"]["lora"] == _lora_params_by_hand(4096, 4096, 11008, 32, 64)


def test_dry_run_counts_match_a_real_peft_model(tiny_model):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    cfg = load_config("finetune", ["recipe=tiny", f"model={tiny_model}", "dry_run=true"])
    estimate = finetune.dry_run(cfg)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), finetune.lora_config(cfg))
    trainable, total = model.get_nb_trainable_parameters()
    assert estimate["params"]["lora"] == trainable
    assert estimate["params"]["total"] == total - trainable


# --------------------------------------------------------------------------------------------------
# fitting examples into max_length
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return finetune.load_tokenizer(str(tiny_model))


def test_truncate_documents_shortens_the_longest_and_keeps_the_answer(tokenizer, hotpot_examples):
    row = raft_rows(hotpot_examples[:1], doc_chars=None)[0]
    row["documents"][0] = row["documents"][0][:60]  # one short document that must stay whole
    row.update(student_example(row["documents"], row["question"], row["cot_answer"]))
    full = finetune._n_tokens(tokenizer, row["prompt"] + row["completion"])
    limit = full - 150
    outcome, kept, n = finetune.fit_example(row, tokenizer, limit, "truncate_documents")
    assert outcome == "truncated" and n <= limit
    assert n == finetune._n_tokens(tokenizer, kept["prompt"] + kept["completion"])
    assert kept["completion"] == row["completion"]  # the answer is never cut
    text = kept["prompt"][-1]["content"]
    assert text.endswith(row["question"] + text.split(row["question"], 1)[1])
    assert f"<DOCUMENT>{row['documents'][0]}</DOCUMENT>" in text  # short document untouched
    longest = max(row["documents"], key=len)
    assert f"<DOCUMENT>{longest}</DOCUMENT>" not in text and f"<DOCUMENT>{longest[:50]}" in text
    assert finetune.fit_example(row, tokenizer, limit, "drop")[0] == "dropped"
    assert finetune.fit_example(row, tokenizer, full, "drop")[0] == "fits"
    answer_only = finetune._n_tokens(tokenizer, finetune._rebuild_prompt(row["prompt"], [""] * 4, row["question"]) + row["completion"])
    assert finetune.fit_example(row, tokenizer, answer_only - 1, "truncate_documents")[0] == "answer_too_long"
    no_docs = {"prompt": row["prompt"], "completion": row["completion"]}  # hub/JSONL data without documents
    assert finetune.fit_example(no_docs, tokenizer, limit, "truncate_documents")[0] == "dropped"


def test_fit_split_counts(tokenizer, hotpot_examples):
    import datasets

    rows = raft_rows(hotpot_examples[:6], doc_chars=None)
    rows[0]["completion"] = [{"role": "assistant", "content": "word " * 600}]
    out, stats = finetune.fit_split(datasets.Dataset.from_list(rows), tokenizer, 400, "truncate_documents", "train")
    assert stats["examples"] == 6 and stats["dropped_answer_too_long"] == 1 and stats["kept"] == len(out) == 5
    assert stats["truncated_documents"] == stats["overlong"] - 1 > 0
    assert set(out.column_names) == {"prompt", "completion"}
    assert stats["tokens"] == sum(finetune._n_tokens(tokenizer, r["prompt"] + r["completion"]) for r in out)


# --------------------------------------------------------------------------------------------------
# data sources
# --------------------------------------------------------------------------------------------------


def test_load_data_accepts_the_folder_its_dataset_and_jsonl(raft_data):
    for source in (raft_data, raft_data / "dataset", raft_data / "train.jsonl"):
        data = finetune.load_data(str(source))
        assert len(data["train"]) == 40 and len(data["test"]) == 8, source
        assert data["train"][0]["completion"][0]["role"] == "assistant"
    only_train = finetune.load_data(str(raft_data / "test.jsonl"))
    assert list(only_train) == ["train"] and len(only_train["train"]) == 8


def test_runtime_falls_back_on_cpu():
    import torch

    if torch.cuda.is_available():
        pytest.skip("checks the CPU fallbacks; this machine has a GPU")
    rt = finetune.resolve_runtime(load_config("finetune", ["recipe=llama31_8b_q4"]))
    assert (rt.device, rt.precision, rt.optim) == ("cpu", "fp32", "adamw_torch")
    assert any("paged_adamw_8bit" in n for n in rt.notes) and any("bf16" in n for n in rt.notes)
    assert finetune.resolve_runtime(load_config("finetune", ["recipe=tiny"])).notes == []


# --------------------------------------------------------------------------------------------------
# one-line errors
# --------------------------------------------------------------------------------------------------


def _cli_error(capsys, args: list[str]) -> str:
    capsys.readouterr()  # drop what the fixtures printed
    with pytest.raises(SystemExit) as e:
        run_cli("finetune", finetune.main, args)
    assert e.value.code == 2
    err = capsys.readouterr().err
    lines = [line.strip() for line in re.split(r"[\r\n]", err) if "error" in line.lower()]  # progress bars aside
    assert len(lines) == 1 and lines[0].startswith("raft.finetune: error: ") and "Traceback" not in err, err
    return lines[0]


def test_missing_dataset_is_one_line_without_traceback(tiny_model, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "raft.finetune", "recipe=tiny", f"model={tiny_model}", f"data={tmp_path / 'nothing'}", f"output={tmp_path / 'o'}"],
        capture_output=True, text=True, env=_env(), cwd=REPO, timeout=300,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [f"raft.finetune: error: data {tmp_path / 'nothing'} not found (run python -m raft.generate first or pass data=PATH)"]
    assert not (tmp_path / "o").exists()


def test_bad_data_errors(capsys, tiny_model, tmp_path, hotpot_examples):
    rows = raft_rows(hotpot_examples[:4])
    base = ["recipe=tiny", f"model={tiny_model}", f"output={tmp_path / 'out'}"]

    wrong = write_raft_folder(tmp_path / "wrong", [{k: v for k, v in r.items() if k != "completion"} for r in rows], rows[:1])
    err = _cli_error(capsys, [*base, f"data={wrong}"])
    assert "split 'train' lacks column(s) completion" in err and str(wrong) in err

    import datasets

    features = datasets.Dataset.from_list(rows).features
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({k: [] for k in features}, features=features)}).save_to_disk(str(tmp_path / "empty2"))
    err = _cli_error(capsys, [*base, f"data={tmp_path / 'empty2'}"])
    assert "split 'train' is empty" in err

    err = _cli_error(capsys, [*base, f"data={write_raft_folder(tmp_path / 'ok', rows, rows[:1])}", "train.max_length=40"])
    assert "no training example fits train.max_length=40" in err and "4 answers alone are longer" in err

    err = _cli_error(capsys, [*base, f"data={tmp_path / 'ok'}", "train.overlong=cut"])
    assert "train.overlong='cut'" in err

    err = _cli_error(capsys, [*base, f"data={tmp_path / 'ok'}", "resume=true"])
    assert "resume=true" in err and "no checkpoint" in err

    err = _cli_error(capsys, [*base, f"data={tmp_path / 'ok'}", "model=nobody/no-such-model"])
    assert err == "raft.finetune: error: cannot load model nobody/no-such-model: not found locally and the hub is offline; pass a local path"

    err = _cli_error(capsys, [*base, "data=nobody/no-such-dataset"])
    assert "hub is offline" in err


# --------------------------------------------------------------------------------------------------
# training runs on CPU
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_model, raft_data):
    """The tiny recipe as shipped (fp32 LoRA, 30 steps), with merge=true."""
    output = tmp_path_factory.mktemp("lora") / "out"
    cfg = tiny_cfg(tiny_model, raft_data, output, "merge=true")
    summary = finetune.main(cfg)
    return cfg, output, summary


def test_lora_run_loss_falls(lora_run):
    cfg, output, summary = lora_run
    on_disk = summary_of(output)
    assert on_disk["loss_curve"] == summary["loss_curve"] and on_disk["merged"] == str(output / "merged")
    losses = [e["loss"] for e in summary["loss_curve"]]
    assert [e["step"] for e in summary["loss_curve"]] == list(range(1, 31))
    early, late = _mean(losses[:5]), _mean(losses[-5:])
    print(f"tiny LoRA loss: first 5 steps {early:.3f}, last 5 steps {late:.3f}")
    assert late < early - 0.15, losses
    evals = [e["eval_loss"] for e in summary["eval_curve"]]
    assert [e["step"] for e in summary["eval_curve"]] == [10, 20, 30] and evals[-1] < evals[0]
    assert summary["global_step"] == 30 and summary["base_weights"] == "fp32" and summary["fallbacks"] == []
    assert 0 < summary["trainable_params"] < summary["total_params"]
    assert summary["examples"]["train"]["kept"] == 40 and summary["examples"]["test"]["kept"] == 8
    assert summary["overlong_policy"] == "truncate_documents" and summary["max_length"] == 512
    assert summary["tokens_seen"] > 30 * 100 and summary["tokens_per_second"] > 0 and summary["peak_memory"]["bytes"] > 0


def test_lora_run_outputs(lora_run):
    cfg, output, summary = lora_run
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "chat_template.jinja", "README.md"):
        assert (output / name).is_file(), name
    again = load_config("finetune", [f"recipe={output / 'recipe.yaml'}"])
    assert (again.model, again.lora, again.train) == (cfg.model, cfg.lora, cfg.train)
    card = (output / "README.md").read_text()
    assert f"base_model: {cfg.model}" in card and "rank 8" in card and "30 steps" in card
    assert json.loads((output / "adapter_config.json").read_text())["r"] == 8


def _example_loss(model, tokenizer, row) -> float:
    import torch

    prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=False)
    full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], return_dict=False)
    ids = torch.tensor([full])
    labels = ids.clone()
    labels[0, : len(prompt)] = -100
    with torch.no_grad():
        return model(input_ids=ids, labels=labels).loss.item()


def test_adapter_reloads_merges_and_generates(lora_run, tiny_model, raft_data):
    import datasets
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, output, _ = lora_run
    tokenizer = AutoTokenizer.from_pretrained(output)
    row = finetune.fit_example(datasets.load_from_disk(str(raft_data / "dataset"))["train"][0], tokenizer, 512, "truncate_documents")[1]
    base_loss = _example_loss(AutoModelForCausalLM.from_pretrained(tiny_model), tokenizer, row)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model), output)
    tuned_loss = _example_loss(model, tokenizer, row)
    assert tuned_loss < base_loss - 0.1  # the trained adapter came back
    merged = model.merge_and_unload()
    assert not isinstance(merged, PeftModel)
    assert _example_loss(merged, tokenizer, row) == pytest.approx(tuned_loss, abs=1e-3)
    ids = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = merged.generate(**ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]

    # merge=true wrote a 16-bit model that loads like any model, with the tokenizer and its chat template
    disk = AutoModelForCausalLM.from_pretrained(output / "merged")
    assert disk.dtype == torch.bfloat16 and not hasattr(disk, "peft_config")
    assert AutoTokenizer.from_pretrained(output / "merged").chat_template == tokenizer.chat_template
    assert _example_loss(disk.float(), tokenizer, row) == pytest.approx(tuned_loss, abs=0.05)


def test_qlora_4bit_run(tmp_path, tiny_model, raft_data):
    output = tmp_path / "q4"
    summary = finetune.main(tiny_cfg(tiny_model, raft_data, output, "load_in_4bit=true", "train.max_steps=4",
                                     "train.eval_steps=0", "merge=true"))
    assert summary["base_weights"] == "4-bit NF4" and summary["global_step"] == 4
    losses = [e["loss"] for e in summary["loss_curve"]]
    print(f"tiny QLoRA loss: {losses}")
    assert len(losses) == 4 and all(0 < x < 20 for x in losses)
    merged = json.loads((output / "merged" / "config.json").read_text())
    assert "quantization_config" not in merged and merged["dtype"] == "bfloat16"  # de-quantised base + adapter


def test_resume_continues_from_the_checkpoint(tmp_path, tiny_model, raft_data):
    output = tmp_path / "resume"
    common = ["train.eval_steps=0", "train.save_steps=2"]
    first = finetune.main(tiny_cfg(tiny_model, raft_data, output, "train.max_steps=4", *common))
    assert (output / "checkpoint-4").is_dir() and first["global_step"] == 4
    second = finetune.main(tiny_cfg(tiny_model, raft_data, output, "train.max_steps=8", "resume=true", *common))
    assert second["resumed_from"] == str(output / "checkpoint-4")
    assert second["global_step"] == 8 and (output / "checkpoint-8").is_dir()
    # the history up to step 4 came from the checkpoint; only steps 5-8 were trained now
    assert second["loss_curve"][:4] == first["loss_curve"]
    assert [e["step"] for e in second["loss_curve"]] == list(range(1, 9))
    assert second["tokens_seen"] > first["tokens_seen"]


@pytest.mark.slow
def test_two_process_accelerate_launch(tmp_path, tiny_model, raft_data):
    output = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "raft.finetune", "recipe=tiny", f"model={tiny_model}",
        f"data={raft_data}", f"output={output}", "train.max_steps=3", "train.eval_steps=0",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = summary_of(output)
    assert summary["processes"] == 2 and summary["global_step"] == 3
    assert proc.stdout.count("raft.finetune: done") == 1  # only the main process reports and writes
    assert (output / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_trains_on_what_raft_generate_writes(tmp_path, teacher, shared_data, tiny_model):
    """The contract end to end: raft.generate (local teacher server) -> raft.finetune on its folder."""
    from raft import generate

    data = tmp_path / "generated"
    generate.main(load_config("generate", ["recipe=hotpot", f"input={shared_data / HOTPOT}", f"output={data}",
                                           f"teacher.base_url={teacher.base_url}", "limit=12"]), progress=False)
    rows = finetune.load_data(str(data))
    summary = finetune.main(tiny_cfg(tiny_model, data, tmp_path / "out", "train.max_steps=3", "train.eval_steps=0"))
    assert summary["global_step"] == 3 and summary["examples"]["train"]["examples"] == len(rows["train"]) > 0
    assert summary["examples"]["train"]["kept"] > 0
