"""Training and evaluation under the students' real chat templates (tests/chat_templates.py).

For each of Llama-2-chat, Llama-3-Instruct and Llama-3.1-Instruct (and Llama-3.1 with the base
tokenizer's EOS ``<|end_of_text|>``), the tiny tokenizer gets the template, its special tokens and its
bos / eos / pad settings, and then:

a. TRL, driven the way raft.finetune drives it (``prompt``/``completion`` rows fitted by
   ``raft.finetune.data.fit_split``, tokenizer from ``raft.finetune.model.load_tokenizer``, ``SFTConfig``
   from ``raft.finetune.model.sft_config``), trains on exactly the answer and the end-of-turn token;
b. lm-eval's HF backend, asked with ``apply_chat_template`` on a raft_domain document, feeds the model the
   very token ids the training example had before its answer (one BOS, same date header);
c. lm-eval stops generating at the token that ends an assistant turn (the task's ``until`` plus the EOS
   lm-eval adds), also in a real generation by the tiny model scripted to say the trained completion.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from chat_templates import CASES, LLAMA3_INSTRUCT, LLAMA31_INSTRUCT, TemplateCase

from raft.config import resource_dir
from raft.prompts import ANSWER_TAG, BEGIN_QUOTE, END_QUOTE, student_example, student_prompt

TASKS_DIR = resource_dir("eval_tasks")

DOCS = [
    {
        "id": "d0",
        "question": "Which city is the capital of France?",
        "documents": [
            "Lyon is known for its cuisine and its silk industry.",
            "Paris is the capital of France and its largest city.",
            "The Loire is the longest river in France.",
        ],
        "final_answer": "Paris",
        "oracle_index": 1,
    },
    {
        "id": "d1",
        "question": "What is the longest river in France?",
        "documents": [
            "The Loire is the longest river in France.",
            "Paris is the capital of France and its largest city.",
        ],
        "final_answer": "the Loire",
        "oracle_index": 0,
    },
]


def cot(doc: dict) -> str:
    oracle = doc["documents"][doc["oracle_index"]]
    return f"The document says {BEGIN_QUOTE}{oracle}{END_QUOTE}.\n{ANSWER_TAG} {doc['final_answer']}"


def expected_completion(case: TemplateCase, answer: str) -> str:
    """What the template writes after the prompt for an assistant answer (the loss must cover all of it)."""
    if case.name.startswith("llama-2"):
        return f" {answer}{case.end_of_turn}"  # `' ' + content.strip() + ' ' + eos_token`
    return f"{answer}{case.end_of_turn}"


# --------------------------------------------------------------------------------------------------
# the students
# --------------------------------------------------------------------------------------------------


def build_tokenizer(tiny: Path, case: TemplateCase) -> Any:
    """The tiny tokenizer dressed as ``case``'s: its special tokens, bos / eos / unk, pad unset (as
    published), a BOS prepended on ``add_special_tokens=True`` (as the real Llama tokenizers do), the template."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    tok.add_tokens(list(case.special_tokens), special_tokens=True)
    tok.bos_token, tok.eos_token = case.bos, case.eos
    if case.unk:
        tok.unk_token = case.unk
    tok.pad_token = None
    tok.add_bos_token = True  # rewrites the post-processor: "<bos> $A"
    tok.chat_template = case.template
    return tok


def build_student(tiny: Path, case: TemplateCase, folder: Path) -> Path:
    """``build_tokenizer`` and the tiny model, embeddings resized to the new vocabulary, bos / eos ids and
    generation_config's eos_token_id as published, saved into ``folder``."""
    import torch
    from transformers import AutoModelForCausalLM

    tok = build_tokenizer(tiny, case)
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny)
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    ids = [tok.convert_tokens_to_ids(t) for t in case.generation_eos]
    model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id = tok.bos_token_id, tok.eos_token_id, None
    model.generation_config.bos_token_id = tok.bos_token_id
    model.generation_config.eos_token_id = ids[0] if len(ids) == 1 else ids
    model.generation_config.pad_token_id = None
    model.save_pretrained(folder)
    return folder


@dataclass
class Student:
    case: TemplateCase
    folder: Path
    tokenizer: Any  # as raft.finetune loads it (pad chosen by load_tokenizer)
    input_ids: list[int]  # TRL's training example for DOCS[0]
    labels: list[int]  # after SFTTrainer's preprocessing and its data collator
    data_file: Path  # DOCS as a raft_domain JSONL file


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def student(request, tiny_model, tmp_path_factory) -> Student:
    """One student per template, with its training example prepared by TRL as raft.finetune prepares it."""
    import datasets
    from transformers import AutoModelForCausalLM
    from trl import SFTTrainer

    from raft.config import FinetuneConfig
    from raft.finetune.data import fit_split
    from raft.finetune.model import load_tokenizer, resolve_runtime, sft_config

    case: TemplateCase = request.param
    root = tmp_path_factory.mktemp(case.name)
    folder = build_student(tiny_model, case, root / "model")
    data_file = root / "test.jsonl"
    data_file.write_text("".join(json.dumps(d) + "\n" for d in DOCS), encoding="utf-8")

    cfg = FinetuneConfig(model=str(folder), output=str(root / "out"), load_in_4bit=False)
    cfg.train.max_length = 1024
    tokenizer = load_tokenizer(cfg.model)
    rows = [
        {**student_example(d["documents"], d["question"], cot(d)), "documents": d["documents"], "question": d["question"]}
        for d in DOCS
    ]
    raw = datasets.Dataset.from_list(rows)
    train, stats = fit_split(raw, tokenizer, cfg.train.max_length, cfg.train.overlong, "train")
    assert stats["kept"] == len(DOCS) and stats["overlong"] == 0, stats
    args = sft_config(cfg, resolve_runtime(cfg), has_eval=False)
    model = AutoModelForCausalLM.from_pretrained(folder)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    # the dataset is shuffled by TRL: take DOCS[0]'s example by its text
    prepared = [r for r in trainer.train_dataset if cot(DOCS[0]) in tokenizer.decode(r["input_ids"])]
    assert len(prepared) == 1
    batch = trainer.data_collator([{"input_ids": prepared[0]["input_ids"], "labels": prepared[0]["labels"]}])
    return Student(
        case=case,
        folder=folder,
        tokenizer=tokenizer,
        input_ids=batch["input_ids"][0].tolist(),
        labels=batch["labels"][0].tolist(),
        data_file=data_file,
    )


def split_example(s: Student) -> tuple[list[int], list[int]]:
    """(prompt ids: the masked-out head, completion ids: the trained tail); fails unless that is the shape."""
    n = next(i for i, label in enumerate(s.labels) if label != -100)
    assert all(label == -100 for label in s.labels[:n])
    assert s.labels[n:] == s.input_ids[n:], "the trained part must be one contiguous tail, labels == input_ids"
    return s.input_ids[:n], s.input_ids[n:]


# --------------------------------------------------------------------------------------------------
# the templates themselves
# --------------------------------------------------------------------------------------------------


def test_templates_match_trl_copies():
    """Our from-memory Llama-3 / 3.1 strings are byte-identical to TRL's copies of the Hub templates."""
    import trl

    folder = Path(trl.__file__).parent / "chat_templates"
    for ours, name in ((LLAMA3_INSTRUCT, "llama3.jinja"), (LLAMA31_INSTRUCT, "llama3_1.jinja")):
        if not (folder / name).is_file():
            pytest.skip(f"this TRL has no {name}")
        assert ours == (folder / name).read_text(encoding="utf-8"), name


def test_templates_render_their_published_format(tiny_model):
    """What each template makes of a system + user + assistant conversation (spot checks of the format)."""
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi?"},
        {"role": "assistant", "content": "Hello."},
    ]
    rendered = {}
    for case in CASES[:3]:
        tok = build_tokenizer(tiny_model, case)
        rendered[case.name] = tok.apply_chat_template(chat, tokenize=False)
        assert "{% generation %}" not in case.template  # so TRL cannot build assistant masks from it
    assert rendered["llama-2-chat"] == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi? [/INST] Hello. </s>"
    assert rendered["llama-3-instruct"] == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
    )
    assert rendered["llama-3.1-instruct"] == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
    )


# --------------------------------------------------------------------------------------------------
# a. the loss mask
# --------------------------------------------------------------------------------------------------


def test_loss_mask_is_answer_and_end_of_turn(student):
    """The labels TRL builds for raft.finetune's prompt/completion rows cover exactly the answer and the
    template's end of turn (`<|eot_id|>`; ` </s>` for Llama-2), nothing of the prompt or its header."""
    tok = student.tokenizer
    prompt_ids, completion_ids = split_example(student)
    assert tok.decode(completion_ids, skip_special_tokens=False) == expected_completion(student.case, cot(DOCS[0]))
    assert completion_ids[-1] == tok.convert_tokens_to_ids(student.case.end_of_turn.strip())
    # the prompt part is the template's prompt with its generation prompt, as lm-eval will send it
    prompt = [{"role": "user", "content": student_prompt(DOCS[0]["documents"], DOCS[0]["question"])}]
    assert tok.decode(prompt_ids, skip_special_tokens=False) == tok.apply_chat_template(
        prompt, tokenize=False, add_generation_prompt=True
    )
    if "3.1" in student.case.name:
        assert "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" in tok.decode(prompt_ids)
    # no padding, no EOS appended after the end of turn (TRL adds none to conversational rows)
    assert tok.pad_token_id not in student.input_ids


# --------------------------------------------------------------------------------------------------
# b. evaluation prompt == training prompt
# --------------------------------------------------------------------------------------------------


def _lm(student: Student, model: Any = None):
    """lm-eval's HF backend over the student as raft.evaluate builds it: tokenizer from the folder."""
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = model or AutoModelForCausalLM.from_pretrained(student.folder)
    return HFLM(pretrained=model, tokenizer=AutoTokenizer.from_pretrained(student.folder), batch_size=1, device="cpu")


def _domain_task(student: Student):
    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager(
        include_path=str(TASKS_DIR), include_defaults=False, metadata={"raft_domain_data": str(student.data_file)}
    )
    return get_task_dict(["raft_domain"], manager)["raft_domain"]


def _requests(student: Student, lm: Any) -> list[Any]:
    task = _domain_task(student)
    task.build_all_requests(limit=1, apply_chat_template=True, chat_template=lm.apply_chat_template, tokenizer_name="student")
    return task.instances


def test_eval_prompt_equals_training_prompt(student):
    """lm-eval (apply_chat_template=True) feeds the raft_domain question to the model as exactly the token
    ids TRL trained on before the answer: same header, same date line, a single BOS."""
    lm = _lm(student)
    instances = _requests(student, lm)
    assert len(instances) == 1 and instances[0].doc["id"] == DOCS[0]["id"]
    context = instances[0].args[0]
    prompt_ids, _ = split_example(student)
    batch_ids, _ = lm.tok_batch_encode([context])  # what generate_until feeds the model
    assert batch_ids[0].tolist() == prompt_ids
    assert lm.tok_encode(context) == prompt_ids  # what it sorts requests by (and loglikelihood uses)
    bos = student.tokenizer.bos_token_id
    assert prompt_ids[0] == bos and prompt_ids.count(bos) == 1


# --------------------------------------------------------------------------------------------------
# c. generation stops at the end of turn
# --------------------------------------------------------------------------------------------------


TASK_YAML = {
    "raft_domain": "raft_domain/raft_domain.yaml",
    "raft_hotpot": "raft_hotpot/raft_hotpot.yaml",
    "raft_hotpot_full": "raft_hotpot/raft_hotpot_full.yaml",
}


@pytest.mark.parametrize("task", sorted(TASK_YAML))
def test_stop_set_holds_end_of_turn(student, task):
    """until (from the task's YAML, includes resolved as lm-eval does) + the EOS lm-eval's generate_until
    adds holds the token the template ends an assistant turn with: `</s>` (the EOS) for Llama-2,
    `<|eot_id|>` for Llama-3/3.1 whatever their EOS."""
    from lm_eval.models.utils import handle_stop_sequences
    from lm_eval.tasks._yaml_loader import load_yaml
    from transformers import AutoTokenizer

    config = load_yaml(TASKS_DIR / TASK_YAML[task], resolve_func=False)
    until = config.get("generation_kwargs", {}).get("until")
    assert until, f"{task}: no until (lm-eval would stop at its default '\\n\\n')"
    tok = AutoTokenizer.from_pretrained(student.folder)
    # as HFLM.generate_until: eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
    eos = tok.decode(tok.eos_token_id, skip_special_tokens=False)
    stops = handle_stop_sequences(list(until), eos=eos)
    end = student.case.end_of_turn.strip()
    assert end in stops, f"{student.case.name}: a turn ends with {end!r}, lm-eval stops at {stops}"


def test_generation_is_cut_at_end_of_turn(student):
    """A real lm-eval generate_until on the raft_domain request, the tiny model scripted (through its
    output layer) to say the completion it was trained on and then keep talking: the output is the answer,
    cut at the end-of-turn token, nothing after it."""
    import torch
    from transformers import AutoModelForCausalLM

    tok = student.tokenizer
    _, completion_ids = split_example(student)
    tail = tok(" and then it keeps talking", add_special_tokens=False)["input_ids"]
    script = completion_ids + tail + [tok.eos_token_id] * 4
    model = AutoModelForCausalLM.from_pretrained(student.folder)
    step = {"n": 0}

    def scripted(module, inputs, logits):  # one call per generated token (prefill included)
        forced = torch.full_like(logits, -1e4)
        forced[..., script[min(step["n"], len(script) - 1)]] = 1e4
        step["n"] += 1
        return forced

    model.lm_head.register_forward_hook(scripted)
    lm = _lm(student, model)
    instances = _requests(student, lm)
    out = lm.generate_until(instances, disable_tqdm=True)[0]
    assert out.strip() == cot(DOCS[0])
    assert "keeps talking" not in out
    assert step["n"] <= len(completion_ids) + 2, "generation ran past the end of turn"
