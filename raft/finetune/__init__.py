"""Fine-tune a student model on RAFT data: a recipe becomes TRL ``SFTConfig`` + PEFT ``LoraConfig`` +
transformers ``BitsAndBytesConfig``, and TRL's ``SFTTrainer`` trains (no training loop of our own).

    python -m raft.finetune recipe=llama31_8b_q4                      # QLoRA, the headline recipe
    python -m raft.finetune recipe=llama31_8b_q4 data=outputs/raft_data train.max_steps=300 merge=true
    python -m raft.finetune recipe=llama31_8b_q4 dry_run=true          # parameters and GPU memory, no download
    python -m raft.finetune recipe=llama31_8b_q4 resume=true           # continue after a crash (same settings)
    python -m raft.finetune recipe=llama31_8b_q4 train.report_to=tensorboard push_to_hub=my-org/raft-llama31
    accelerate launch --config_file recipes/accelerate/ddp.yaml -m raft.finetune recipe=llama31_8b_q4

Data (``data=``): the folder ``raft.generate`` writes (``OUT/dataset`` is read with ``load_from_disk``;
``OUT/dataset`` itself works too), a JSONL file, or a hub id. Training uses the ``prompt`` /
``completion`` columns (TRL's conversational format): TRL applies the model's chat template and
computes the loss on the completion only. The test split, if there is one, is the evaluation set.

Examples longer than ``train.max_length`` tokens (prompt + answer under the chat template) are
counted and, with ``train.overlong=truncate_documents``, fitted by shortening the longest documents
inside the prompt (rebuilt with ``raft.prompts.student_prompt`` from the ``documents`` and
``question`` columns), so that the answer is never cut; ``train.overlong=drop`` drops them. An
example whose answer does not fit even with empty documents is always dropped. The log and
``train_summary.json`` say what happened.

``train.reshuffle_documents=true`` shows each RAFT row's documents in a new seeded order every epoch
(``reshuffle``: the epochs as copies of the split, the same optimizer steps), so the model cannot learn
a position; off (the default), the order as generated.

Outputs in ``output``: the LoRA adapter and the tokenizer, ``recipe.yaml`` (the effective recipe),
``train_summary.json``, ``loss.png`` (train and eval loss against the step, the learning rate on a
second axis), a model card ``README.md``, ``checkpoint-*`` folders (for ``resume=true``),
``finetune_run.json`` (the settings the checkpoints are trained with) and, with ``merge=true``,
``merged/``: the base model with the adapter merged in, in 16 bits, which transformers, vLLM and
lm-eval load like any model.

Trackers: ``train.report_to`` (``none``, ``tensorboard``, ``trackio``, ``wandb``, a list, or ``all``) is
transformers' ``report_to``; TensorBoard event files go to ``output/runs/``. A tracker whose package is
missing is a one-line error at start (``pip install -e ".[trackers]"``). ``push_to_hub=ORG/NAME``
(``hub_private=true``) uploads the adapter, tokenizer, card, recipe, summary and loss.png to a Hub model
repo at the very end, and with ``merge=true`` the merged model to ``ORG/NAME-merged`` (``raft.hub``):
the token comes from ``HF_TOKEN`` and is never printed; a malformed repo id or no token stops the run at
start (exit status 2); a failed upload prints one line saying the local output is complete, exit status 1.

One run per folder: an ``output`` that already holds checkpoints is refused unless ``resume=true``,
and ``resume=true`` is refused when the settings that change the trained weights (model, data, seed,
``load_in_4bit``, ``lora.*``, and ``train.*`` except logging, evaluation, checkpointing, reporting
and gradient checkpointing) differ from ``finetune_run.json``; the one-line error names them.

Schedule: ``train.logging_steps``, ``train.eval_steps`` and ``train.save_steps`` below 1 are shares of
the run's optimizer steps (rounded up), so a short run on the published ~90 rows still evaluates and
checkpoints; from 1 on they count steps. A log line at the start of the run gives the step count
and the intervals.

Hardware: on a GPU, 4-bit NF4 with double quantisation and bf16 compute (``load_in_4bit=true``) or
bf16 LoRA, paged AdamW, gradient checkpointing. On a CPU (the tests) bitsandbytes 0.50 still runs
4-bit, but bf16 mixed precision and paged/8-bit optimizers do not: training falls back to fp32 and
``adamw_torch``, and one log line says so. Under ``accelerate launch`` (DDP) every process puts the
model on its own GPU; under FSDP (``recipes/accelerate/fsdp_qlora.yaml``) the 4-bit weights are stored
as bf16 so that FSDP can shard them, and the final adapter is gathered with ``FULL_STATE_DICT``
(checkpoints stay sharded). The multi-process path can be tried on a CPU (gloo backend):

    CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 -m raft.finetune recipe=tiny

(``accelerate launch --cpu --num_processes 2`` starts a single process in accelerate 1.x.)

Modules, one job each: ``data`` (load, check and fit the training data), ``reshuffle`` (a new
document order per epoch), ``model`` (runtime and its fallbacks, tokenizer, 4-bit config, base model,
LoRA and SFT configs), ``memory`` (the dry run: parameters and a GPU memory estimate), ``outputs``
(summary, model card, merge, checkpoints), ``curves`` (``loss.png``, the ``train.report_to`` check)
and ``train`` (:func:`main`, the run). None imports torch,
transformers, TRL, PEFT, datasets or matplotlib before a function needs them, so ``--help`` and errors
in the recipe come back at once.
"""

from raft.finetune.outputs import SUMMARY_FILE
from raft.finetune.train import main

__all__ = ["SUMMARY_FILE", "main"]
