"""Evaluate a model (and its RAFT adapter) with lm-eval, and report on one or more evaluations.

    python -m raft.evaluate recipe=eval_hotpot model=meta-llama/Llama-3.1-8B-Instruct adapter=outputs/finetune
    python -m raft.evaluate recipe=eval_hotpot model=... data=hotpot_dev_distractor_v1.json limit=100
    python -m raft.evaluate tasks=[raft_domain] data=outputs/raft_data model=... adapter=...
    python -m raft.evaluate backend=local-chat-completions base_url=http://localhost:8000/v1 model=SERVED_NAME
    python -m raft.evaluate report outputs/eval/base outputs/eval/raft [--out outputs/report]

Evaluation calls ``lm_eval.simple_evaluate`` on the tasks in ``eval_tasks/`` (``raft_hotpot``,
``raft_hotpot_full``, ``raft_domain``, ``raft_domain_retrieval``, ``bio_needle``) through a ``TaskManager`` that
indexes only that folder, the same tasks as the documented command
``lm_eval --tasks raft_hotpot --include_path eval_tasks``.
Backends (``backend=``): ``hf`` (transformers, ``adapter`` loaded with PEFT, ``load_in_4bit`` as NF4
with double quantisation like QLoRA training), ``vllm`` (``adapter`` as a LoRA request, every
request scheduled at once with ``batch_size=auto``, the context bounded by ``max_model_len``: by
default the longest prompt of the run in tokens plus ``max_new_tokens``, not the model's 131k) and
``local-chat-completions`` (any OpenAI-compatible server such as ``vllm serve``; ``model`` is the
served name, and ``adapter``, when given, the served name of the LoRA module). ``data`` is the local
HotpotQA file for the hotpot tasks or the ``raft.generate`` folder for the ``raft_domain`` tasks and
``bio_needle`` (else the environment variables ``RAFT_HOTPOT_PATH`` / ``RAFT_DOMAIN_DATA`` /
``RAFT_BIO_NEEDLE_DATA``, else the hub for HotpotQA);
``retrieval_k`` the chunks ``raft_domain_retrieval`` retrieves per question (else
``RAFT_RETRIEVAL_K``, else 4).

It writes into ``output``: ``results.json`` (lm-eval's results, plus ``raft``: model, adapter,
precision, base or fine-tuned and label, which the report groups by, and ``raft_config``; a metric
no question applies to, such as ``f1_no_oracle`` when every test row has its oracle, is null),
``samples_<task>.jsonl`` (question, gold, output, extracted answer, f1, em, answer_found per
question; for the raft_domain tasks also chunk_id, oracle_index and has_oracle, and for the
retrieval variant oracle_retrieved and retrieved_ids; for ``bio_needle`` needle_name, label,
target_tokens, context_tokens, depth, depth_target, response, parsed, json_valid, fields and score)
and ``recipe.yaml``. ``bio_needle`` reports ``score`` (share of the 9 label fields right, parsed as
JSON only: ``raft.kinds.bio_needle.score``), ``json_valid``, one metric per field and ``score_<N>k`` per context
length; with ``prices`` set, ``main`` also writes the cost table of the evaluated prompts
(``raft.kinds.bio_needle.cost``).

The report reads result folders written here (or by ``lm_eval --output_path ... --log_samples``)
and writes ``report.md`` (F1 / EM / answer_found per run, F1 change against the base model of the
same family and precision, 4-bit F1 as a share of 16-bit; for the raft_domain tasks the share of
questions with the oracle in view and F1 with and without it, "—" where no question applies),
``f1.png`` (base vs fine-tuned F1 per model) and ``samples.html`` (every answer, sortable and
filterable, for finding failure modes).

Modules, one job each (none imports torch, transformers, datasets, lm_eval or matplotlib before
it needs them): ``run`` (the lm-eval run and its result folder), ``plugins`` (how a kind of data plugs
in its tasks: ``TaskKind``, found in ``raft/kinds/<kind>/evaluation.py``), ``logged`` (a logged
sample's reply, a metric for people), ``backends`` (model_args and batch size per backend),
``lineage`` (the data an adapter was trained on), ``results`` (reading result folders), ``table`` (the
summary table), ``report_html`` (``samples.html``), ``reporting`` (the report files and the ``report``
command), ``report_parts`` / ``report_plots`` (the numbers, labels, Markdown and figures the kinds'
report parts share) and ``__main__`` (the command line). What a kind does of its own lives in its
folder: ``raft/kinds/bio_needle/`` (``evaluation``: sample rows, printout, cost table; ``report`` /
``numbers`` / ``plots`` / ``html``: its part of the report), ``raft/kinds/in2/`` (the same for the
in2_probe position probe), ``raft/kinds/raft/evaluation.py`` (the raft tasks' data, retrieval_k, the
oracle split and the HotpotQA contamination check).
"""

from raft.evaluate import run
from raft.evaluate.backends import BACKENDS, batch_size, model_args, prompt_tokens, vllm_max_model_len
from raft.evaluate.plugins import TaskKind, task_kinds
from raft.evaluate.report_html import samples_html
from raft.evaluate.reporting import REPORT_USAGE, plot_f1, report, report_cli
from raft.evaluate.results import ReportError, Run, load_run
from raft.evaluate.run import (
    METRICS,
    check,
    evaluate,
    main,
    run_info,
    sample_row,
    short_name,
    task_names,
    write_results,
)
from raft.evaluate.table import markdown_table, table_rows

__all__ = [
    "BACKENDS",
    "METRICS",
    "REPORT_USAGE",
    "TASK_DATA",
    "ReportError",
    "Run",
    "TaskKind",
    "batch_size",
    "check",
    "evaluate",
    "load_run",
    "main",
    "markdown_table",
    "model_args",
    "plot_f1",
    "prompt_tokens",
    "report",
    "report_cli",
    "run_info",
    "sample_row",
    "samples_html",
    "short_name",
    "table_rows",
    "task_kinds",
    "task_names",
    "vllm_max_model_len",
    "write_results",
]


def __getattr__(name: str):
    """``TASK_DATA`` (raft.evaluate.run), computed when asked for."""
    if name == "TASK_DATA":
        return run.TASK_DATA
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
