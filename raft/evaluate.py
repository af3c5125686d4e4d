"""Evaluate a model (and its RAFT adapter) with lm-eval, and report on one or more evaluations.

    python -m raft.evaluate recipe=eval_hotpot model=meta-llama/Llama-3.1-8B-Instruct adapter=outputs/finetune
    python -m raft.evaluate recipe=eval_hotpot model=... data=hotpot_dev_distractor_v1.json limit=100
    python -m raft.evaluate tasks=[raft_domain] data=outputs/raft_data model=... adapter=...
    python -m raft.evaluate backend=local-chat-completions base_url=http://localhost:8000/v1 model=SERVED_NAME
    python -m raft.evaluate report outputs/eval/base outputs/eval/raft [--out outputs/report]

Evaluation calls ``lm_eval.simple_evaluate`` on the tasks in ``eval_tasks/`` (``raft_hotpot``,
``raft_hotpot_full``, ``raft_domain``) through a ``TaskManager`` that indexes only that folder, the
same tasks as the documented command ``lm_eval --tasks raft_hotpot --include_path eval_tasks``.
Backends (``backend=``): ``hf`` (transformers, ``adapter`` loaded with PEFT, ``load_in_4bit`` as NF4
with double quantisation like QLoRA training), ``vllm`` (``adapter`` as a LoRA request) and
``local-chat-completions`` (any OpenAI-compatible server such as ``vllm serve``; ``model`` is the
served name, and ``adapter``, when given, the served name of the LoRA module). ``data`` is the local
HotpotQA file for the hotpot tasks or the ``raft.generate`` folder for ``raft_domain`` (else the
environment variables ``RAFT_HOTPOT_PATH`` / ``RAFT_DOMAIN_DATA``, else the hub for HotpotQA).

It writes into ``output``: ``results.json`` (lm-eval's results, plus ``raft``: model, adapter,
precision, base or fine-tuned and label, which the report groups by, and ``raft_config``),
``samples_<task>.jsonl`` (question, gold, output, extracted answer, f1, em, answer_found per
question) and ``recipe.yaml``.

The report reads result folders written here (or by ``lm_eval --output_path ... --log_samples``)
and writes ``report.md`` (F1 / EM / answer_found per run, F1 change against the base model of the
same family and precision, 4-bit F1 as a share of 16-bit), ``f1.png`` (base vs fine-tuned F1 per
model) and ``samples.html`` (every answer, sortable and filterable, for finding failure modes).
"""

from __future__ import annotations

import html
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from raft.config import (
    ConfigError,
    EvaluateConfig,
    first_line,
    read_jsonl,
    resource_dir,
    run_cli,
    save_config,
    to_dict,
)
from raft.metrics import extract_answer, score

BACKENDS = ("hf", "vllm", "local-chat-completions")
# task -> (metadata key, environment variable) read by the task's utils.load
TASK_DATA = {
    "raft_hotpot": ("raft_hotpot_path", "RAFT_HOTPOT_PATH"),
    "raft_hotpot_full": ("raft_hotpot_path", "RAFT_HOTPOT_PATH"),
    "raft_domain": ("raft_domain_data", "RAFT_DOMAIN_DATA"),
}
METRICS = ("f1", "em", "answer_found")


class ReportError(ConfigError):
    """A result folder that cannot be reported on: one line naming the file."""


# --------------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------------


def task_names(cfg: EvaluateConfig) -> list[str]:
    tasks = cfg.tasks
    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",")]
    tasks = [str(t) for t in (tasks or []) if str(t).strip()]
    if not tasks:
        raise ConfigError("tasks is empty; try tasks=[raft_hotpot]")
    return tasks


def short_name(model: str) -> str:
    """'meta-llama/Llama-3.1-8B-Instruct' -> 'Llama-3.1-8B-Instruct'; '/x/tiny/' -> 'tiny'."""
    return Path(str(model).rstrip("/")).name or str(model)


def run_info(cfg: EvaluateConfig) -> dict[str, Any]:
    """What the report groups by: stored in results.json under 'raft'."""
    precision = "4-bit" if cfg.load_in_4bit else "16-bit"
    label = cfg.label or " + ".join(
        x for x in (short_name(cfg.model), short_name(cfg.adapter) if cfg.adapter else "") if x
    )
    if not cfg.label:
        label += f" ({precision})"
    return {
        "label": label,
        "model": cfg.model,
        "adapter": cfg.adapter,
        "finetuned": bool(cfg.adapter),
        "precision": precision,
        "backend": cfg.backend,
    }


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists()


def check(cfg: EvaluateConfig) -> list[str]:
    """Validate the configuration before anything heavy loads; returns the task names."""
    tasks = task_names(cfg)
    if cfg.backend not in BACKENDS:
        raise ConfigError(f"backend={cfg.backend!r} is not one of {', '.join(BACKENDS)}")
    if cfg.max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens={cfg.max_new_tokens} must be at least 1")
    if cfg.limit is not None and cfg.limit < 1:
        raise ConfigError(f"limit={cfg.limit} must be at least 1 (or null for all questions)")
    if cfg.backend == "local-chat-completions":
        if not cfg.base_url:
            raise ConfigError("backend=local-chat-completions needs base_url=http://HOST:PORT/v1")
        if not cfg.apply_chat_template:
            raise ConfigError(
                "backend=local-chat-completions sends chat messages: set apply_chat_template=true"
            )
    else:
        if _looks_like_path(cfg.model) and not Path(cfg.model).expanduser().is_dir():
            raise ConfigError(f"model={cfg.model}: no such model folder")
        if cfg.adapter:
            if (
                _looks_like_path(cfg.adapter)
                and not (Path(cfg.adapter).expanduser() / "adapter_config.json").is_file()
            ):
                raise ConfigError(
                    f"adapter={cfg.adapter}: no adapter_config.json there (a raft.finetune output folder?)"
                )
    kinds = {TASK_DATA[t][0] for t in tasks if t in TASK_DATA}
    if cfg.data and len(kinds) > 1:
        raise ConfigError(
            f"data= is ambiguous for tasks {tasks}: evaluate them separately, or set RAFT_HOTPOT_PATH and RAFT_DOMAIN_DATA"
        )
    return tasks


def model_args(cfg: EvaluateConfig) -> dict[str, Any]:
    """lm-eval model_args for the backend (what `lm_eval --model_args` would say)."""
    if cfg.backend == "hf":
        args: dict[str, Any] = {"pretrained": cfg.model, "dtype": cfg.dtype}
        if cfg.adapter:
            args["peft"] = cfg.adapter
        if cfg.load_in_4bit:  # recorded only: transformers 5 refuses it, evaluate() preloads the NF4 model
            args["load_in_4bit"] = True
        return args
    if cfg.backend == "vllm":
        args = {"pretrained": cfg.model, "dtype": cfg.dtype}
        if cfg.adapter:
            args["lora_local_path"] = cfg.adapter
            args["max_lora_rank"] = _adapter_rank(cfg.adapter)
        if cfg.load_in_4bit:
            args["quantization"] = "bitsandbytes"
        return args
    url = cfg.base_url.rstrip("/")
    if not url.endswith("/chat/completions"):
        url += "/chat/completions"
    return {
        "model": cfg.adapter or cfg.model,
        "base_url": url,
        "tokenized_requests": False,
        "num_concurrent": cfg.num_concurrent,
        "max_gen_toks": cfg.max_new_tokens,
    }


def _adapter_rank(adapter: str) -> int:
    """vLLM needs max_lora_rank >= the adapter's rank (its default, 16, is below RAFT's 64)."""
    try:
        rank = int(json.loads((Path(adapter) / "adapter_config.json").read_text())["r"])
    except (OSError, KeyError, ValueError, TypeError):
        return 64
    return next((r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= rank), rank)


def _hf_4bit(cfg: EvaluateConfig) -> Any:
    """An lm-eval HFLM over a 4-bit NF4 model (transformers 5 no longer takes load_in_4bit=True)."""
    import torch
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    cuda = torch.cuda.is_available()
    compute = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute,
    )
    model = AutoModelForCausalLM.from_pretrained(
        cfg.model, quantization_config=quant, dtype=compute, device_map={"": 0} if cuda else None
    )
    if cfg.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, cfg.adapter)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.batch_size)


def _check_model_loads(cfg: EvaluateConfig) -> None:
    """A hub id that cannot be reached (offline, typo) fails here in one line, not deep in lm-eval."""
    if cfg.backend == "local-chat-completions":
        return
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(cfg.model)
    except (OSError, ValueError) as e:
        raise ConfigError(f"model={cfg.model}: cannot load its config ({first_line(e)})") from None


def evaluate(cfg: EvaluateConfig) -> dict[str, Any]:
    """Run lm-eval on the configured tasks; returns lm-eval's results dict (with 'samples')."""
    tasks = check(cfg)  # before the heavy imports: a typo fails in a second
    import lm_eval
    from lm_eval.tasks import TaskManager

    metadata: dict[str, Any] = {}
    if cfg.data:
        for t in tasks:
            if t in TASK_DATA:
                metadata[TASK_DATA[t][0]] = cfg.data
    manager = TaskManager(
        include_path=str(resource_dir("eval_tasks")), include_defaults=False, metadata=metadata
    )
    unknown = [t for t in tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError(f"unknown task {unknown[0]!r}; available: {', '.join(manager.all_tasks)}")
    _check_model_loads(cfg)
    args = model_args(cfg)
    model: Any = cfg.backend
    if cfg.backend == "hf" and cfg.load_in_4bit:
        model = _hf_4bit(cfg)
    batch_size = 1 if cfg.backend == "local-chat-completions" else cfg.batch_size
    device = None
    if cfg.backend == "hf":  # lm-eval's HFLM defaults to "cuda" even where there is none
        import torch

        device = "cuda:0" if torch.cuda.is_available() else "cpu"
    results = lm_eval.simple_evaluate(
        model=model,
        model_args=args,
        tasks=tasks,
        task_manager=manager,
        limit=cfg.limit,
        batch_size=batch_size,
        device=device,
        apply_chat_template=cfg.apply_chat_template,
        gen_kwargs={"max_gen_toks": cfg.max_new_tokens},
        log_samples=True,  # mean metrics get a closed-form standard error, no bootstrap
    )
    if results is None:  # not rank 0 of a multi-process run
        return {}
    results["config"]["model_args"] = args  # the 4-bit path passes a model object; keep the arguments
    return results


def sample_row(sample: dict[str, Any]) -> dict[str, Any]:
    """One lm-eval logged sample as a flat record: question, gold, output, extracted answer, scores."""
    doc = sample.get("doc") or {}
    output = sample.get("filtered_resps", sample.get("resps", [""]))
    while isinstance(output, list):
        output = output[0] if output else ""
    output = str(output)
    gold = sample.get("target", doc.get("answer", doc.get("final_answer", "")))
    scores = {m: sample[m] for m in METRICS if m in sample} or score(output, str(gold))
    row = {
        "doc_id": sample.get("doc_id"),
        "id": doc.get("id"),
        "question": doc.get("question", ""),
        "gold": str(gold),
        "answer": extract_answer(output),
        **{m: float(scores.get(m, 0.0)) for m in METRICS},
        "output": output,
    }
    for key in ("type", "level", "source", "oracle_index"):
        if key in doc:
            row[key] = doc[key]
    return row


def write_results(results: dict[str, Any], cfg: EvaluateConfig) -> Path:
    """results.json, samples_<task>.jsonl and recipe.yaml in cfg.output."""
    from lm_eval.utils import handle_non_serializable

    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)
    samples = results.pop("samples", {}) or {}
    for task, rows in samples.items():
        with (out / f"samples_{task}.jsonl").open("w", encoding="utf-8") as f:
            for s in rows:
                f.write(json.dumps(sample_row(s), ensure_ascii=False, default=handle_non_serializable) + "\n")
    record = {"raft": run_info(cfg), "raft_config": to_dict(cfg), **results}
    path = out / "results.json"
    path.write_text(
        json.dumps(record, indent=2, ensure_ascii=False, default=handle_non_serializable), encoding="utf-8"
    )
    save_config(cfg, out)
    return path


def main(cfg: EvaluateConfig) -> Path:
    results = evaluate(cfg)
    if not results:
        return Path(cfg.output)
    path = write_results(results, cfg)
    for task, metrics in results["results"].items():
        shown = ", ".join(f"{m} {metrics[f'{m},none']:.4f}" for m in METRICS if f"{m},none" in metrics)
        print(f"{task}: {shown}")
    print(f"results: {path}")
    return path


# --------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    """One result folder: who was evaluated, the metrics per task, the samples per task."""

    folder: Path
    info: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: missing (not a raft.evaluate or lm_eval result folder)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: cannot read ({e})") from None
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: not valid JSON (line {e.lineno}: {e.msg})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: not a JSON object")
    return data


def _read_samples(path: Path) -> list[dict[str, Any]]:
    return [row if "output" in row and "gold" in row else sample_row(row) for row in read_jsonl(path, ReportError)]


def _info_from_lm_eval(config: dict[str, Any]) -> dict[str, Any]:
    """run_info for a folder written by the lm_eval CLI: read from its model_args."""
    from lm_eval.utils import simple_parse_args_string

    args = config.get("model_args") or {}
    if isinstance(args, str):
        args = simple_parse_args_string(args)
    model = str(args.get("pretrained") or args.get("model") or config.get("model") or "?")
    adapter = str(args.get("peft") or args.get("lora_local_path") or "")
    four = bool(args.get("load_in_4bit")) or args.get("quantization") in ("bitsandbytes", "bnb")
    precision = "4-bit" if four else "16-bit"
    label = (
        " + ".join(x for x in (short_name(model), short_name(adapter) if adapter else "") if x)
        + f" ({precision})"
    )
    return {
        "label": label,
        "model": model,
        "adapter": adapter,
        "finetuned": bool(adapter),
        "precision": precision,
    }


def load_run(folder: str | Path) -> Run:
    """A result folder of raft.evaluate (results.json) or of lm_eval --output_path (results_*.json)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"{folder}: no such result folder")
    path = folder / "results.json"
    if not path.exists():
        found = sorted(folder.rglob("results_*.json"))
        path = found[-1] if found else path
    data = _read_json(path)
    results = data.get("results")
    if not isinstance(results, dict) or not results:
        raise ReportError(f"{path}: no 'results' section")
    info = data.get("raft")
    if not isinstance(info, dict):
        if not isinstance(data.get("config"), dict):
            raise ReportError(f"{path}: neither a 'raft' nor a 'config' section (who was evaluated?)")
        info = _info_from_lm_eval(data["config"])
    for key in ("label", "model", "finetuned", "precision"):
        if key not in info:
            raise ReportError(f"{path}: 'raft' section lacks '{key}'")
    metrics: dict[str, dict[str, float]] = {}
    for task, values in results.items():
        if not isinstance(values, dict):
            raise ReportError(f"{path}: results of {task} are not a mapping")
        got = {m: values.get(f"{m},none") for m in METRICS}
        if got["f1"] is None:
            continue  # a task that is not ours
        try:
            metrics[task] = {m: float(v) for m, v in got.items() if v is not None}
        except (TypeError, ValueError):
            raise ReportError(f"{path}: results of {task} are not numbers") from None
        n = data.get("n-samples", {}).get(task, {})
        metrics[task]["n"] = float(n.get("effective", n.get("original", 0))) if isinstance(n, dict) else 0.0
        stderr = values.get("f1_stderr,none")
        if isinstance(stderr, int | float):
            metrics[task]["f1_stderr"] = float(stderr)
    if not metrics:
        raise ReportError(f"{path}: no task with an f1 metric")
    run = Run(folder=folder, info=info, metrics=metrics)
    for task in metrics:
        files = (
            [folder / f"samples_{task}.jsonl"]
            if (folder / f"samples_{task}.jsonl").is_file()
            else sorted(path.parent.glob(f"samples_{task}_*.jsonl"))
        )
        if files:
            run.samples[task] = _read_samples(files[-1])
    return run


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None or math.isnan(x):
        return ""
    return f"{x:+.1%}" if signed else f"{x:.1%}"


def table_rows(runs: list[Run]) -> list[dict[str, Any]]:
    """One row per run and task, with the F1 change vs base and the 4-bit share of 16-bit."""
    rows = []
    for run in runs:
        for task, m in run.metrics.items():
            rows.append({"run": run, "task": task, **run.info, "family": short_name(run.info["model"]), **m})

    def find(task: str, family: str, precision: str, finetuned: bool) -> dict[str, Any] | None:
        """The first run of that task and model family (hub id or local copy alike) in that state."""
        key = (task, family, precision, finetuned)
        return next(
            (r for r in rows if (r["task"], r["family"], r["precision"], r["finetuned"]) == key), None
        )

    for r in rows:
        base = find(r["task"], r["family"], r["precision"], False) if r["finetuned"] else None
        r["delta"] = (r["f1"] - base["f1"]) / base["f1"] if base and base["f1"] > 0 else None
        full = find(r["task"], r["family"], "16-bit", r["finetuned"]) if r["precision"] == "4-bit" else None
        r["share"] = r["f1"] / full["f1"] if full and full["f1"] > 0 else None
    rows.sort(key=lambda r: (r["task"], r["family"], r["precision"] != "4-bit", r["finetuned"], r["label"]))
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    head = "| task | run | model | precision | weights | F1 | F1 s.e. | EM | answer_found | n | F1 vs base | 4-bit / 16-bit F1 |"
    lines = [head, "|" + "|".join(["---"] * (head.count("|") - 1)) + "|"]
    for r in rows:
        cells = [
            r["task"],
            r["label"],
            r["model"],
            r["precision"],
            "fine-tuned" if r["finetuned"] else "base",
            f"{r['f1']:.4f}",
            f"{r['f1_stderr']:.4f}" if "f1_stderr" in r else "",
            f"{r.get('em', float('nan')):.4f}",
            f"{r.get('answer_found', float('nan')):.4f}",
            str(int(r.get("n", 0))),
            _pct(r["delta"], signed=True),
            _pct(r["share"]),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot_f1(rows: list[dict[str, Any]], path: Path) -> Path:
    """Grouped bars: per model and precision, F1 of the base model and of the fine-tuned ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(
        len(tasks), 1, figsize=(max(6.0, 1.6 * len(rows) / len(tasks) + 3), 4.2 * len(tasks)), squeeze=False
    )
    colours = {False: "#9e9e9e", True: "#1f77b4"}
    for ax, task in zip(axes[:, 0], tasks, strict=True):
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in rows:
            if r["task"] == task:
                groups.setdefault((r["family"], r["precision"]), []).append(r)
        x, ticks, labels_done = 0.0, [], set()
        for (family, precision), members in groups.items():
            members.sort(key=lambda r: (r["finetuned"], r["label"]))
            width = 0.8 / len(members)
            for i, r in enumerate(members):
                kind = "fine-tuned" if r["finetuned"] else "base"
                bar = ax.bar(
                    x + i * width,
                    r["f1"],
                    width * 0.95,
                    color=colours[r["finetuned"]],
                    label=kind if kind not in labels_done else None,
                )
                labels_done.add(kind)
                change = f"\n{_pct(r['delta'], signed=True)}" if r["delta"] is not None else ""
                ax.bar_label(bar, labels=[f"{r['f1']:.3f}{change}"], fontsize=8)
            ticks.append((x + 0.4 - width / 2, f"{family}\n{precision}"))
            x += 1.0
        ax.set_xticks([t for t, _ in ticks], [label for _, label in ticks], fontsize=8)
        ax.set_ylabel("F1")
        ax.set_ylim(0, max([r["f1"] for r in rows if r["task"] == task] + [0.01]) * 1.2)
        ax.set_title(f"{task}: F1 of the final answer, base vs fine-tuned")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


_HTML_SCRIPT = """
const rows = Array.from(document.querySelectorAll('#samples tbody tr'));
function applyFilter() {
  const q = document.getElementById('q').value.toLowerCase();
  const f = document.getElementById('f1').value;
  const run = document.getElementById('run').value;
  const notag = document.getElementById('notag').checked;
  let shown = 0;
  for (const r of rows) {
    const v = parseFloat(r.dataset.f1);
    let ok = (!q || r.textContent.toLowerCase().includes(q)) && (!run || r.dataset.run === run);
    if (f === 'zero') ok = ok && v === 0; else if (f === 'partial') ok = ok && v > 0 && v < 1; else if (f === 'one') ok = ok && v === 1;
    if (notag) ok = ok && r.dataset.found === '0';
    r.style.display = ok ? '' : 'none';
    if (ok) shown++;
  }
  document.getElementById('count').textContent = shown + ' of ' + rows.length + ' samples';
}
let sortCol = -1, sortAsc = true;
document.querySelectorAll('#samples th').forEach((th, i) => th.addEventListener('click', () => {
  sortAsc = sortCol === i ? !sortAsc : true; sortCol = i;
  const num = th.dataset.num === '1';
  const key = r => { const c = r.children[i]; return num ? parseFloat(c.dataset.v) : c.textContent.toLowerCase(); };
  rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (sortAsc ? 1 : -1));
  const body = document.querySelector('#samples tbody'); rows.forEach(r => body.appendChild(r));
}));
['q', 'f1', 'run', 'notag'].forEach(id => document.getElementById(id).addEventListener('input', applyFilter));
applyFilter();
"""

_HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; cursor: pointer; position: sticky; top: 0; }
tr.zero td.f1 { background: #fde2e2; } tr.partial td.f1 { background: #fff4d6; } tr.one td.f1 { background: #dff5e1; }
pre { white-space: pre-wrap; margin: 0; max-width: 60em; }
.controls { margin: 0.8em 0; display: flex; gap: 1em; align-items: center; flex-wrap: wrap; }
"""


def samples_html(runs: list[Run], table: str) -> str:
    """A self-contained page: every sample of every run, sortable by column, filterable by score."""
    e = html.escape
    labels = sorted({run.info["label"] for run in runs})
    body = []
    for run in runs:
        for task, samples in run.samples.items():
            for s in samples:
                f1v = float(s.get("f1", 0.0))
                kind = "zero" if f1v == 0 else "one" if f1v == 1 else "partial"
                found = int(float(s.get("answer_found", 0.0)))
                cells = [
                    (e(run.info["label"]), None),
                    (e(task), None),
                    (e(str(s.get("id") or s.get("doc_id", ""))), None),
                    (e(str(s.get("type", ""))), None),
                    (e(str(s.get("question", ""))), None),
                    (e(str(s.get("gold", ""))), None),
                    (e(str(s.get("answer", ""))), None),
                    (f"{f1v:.3f}", f1v),
                    (f"{float(s.get('em', 0.0)):.0f}", float(s.get("em", 0.0))),
                    ("yes" if found else "no", found),
                    (
                        f"<details><summary>{len(str(s.get('output', '')))} chars</summary><pre>{e(str(s.get('output', '')))}</pre></details>",
                        len(str(s.get("output", ""))),
                    ),
                ]
                tds = "".join(
                    f"<td{' class=f1' if i == 7 else ''}{f' data-v={v!r}' if v is not None else ''}>{c}</td>"
                    for i, (c, v) in enumerate(cells)
                )
                body.append(
                    f'<tr class="{kind}" data-f1="{f1v}" data-found="{found}" data-run="{e(run.info["label"])}">{tds}</tr>'
                )
    heads = [
        ("run", 0),
        ("task", 0),
        ("id", 0),
        ("type", 0),
        ("question", 0),
        ("gold", 0),
        ("answer", 0),
        ("F1", 1),
        ("EM", 1),
        ("tag", 1),
        ("output", 1),
    ]
    thead = "".join(f'<th data-num="{n}">{h}</th>' for h, n in heads)
    options = "".join(f'<option value="{e(lab)}">{e(lab)}</option>' for lab in labels)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>RAFT evaluation samples</title><style>{_HTML_STYLE}</style></head>
<body>
<h1>RAFT evaluation samples</h1>
<pre>{e(table)}</pre>
<div class="controls">
<input id="q" type="search" placeholder="search question, answer, output">
<label>F1 <select id="f1"><option value="">all</option><option value="zero">0</option><option value="partial">between 0 and 1</option><option value="one">1</option></select></label>
<label>run <select id="run"><option value="">all</option>{options}</select></label>
<label><input id="notag" type="checkbox"> only outputs without &lt;ANSWER&gt;:</label>
<span id="count"></span>
</div>
<table id="samples"><thead><tr>{thead}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table>
<p>Click a column header to sort. The answer is the text after the last &lt;ANSWER&gt;: of the output
(the last non-empty line when the tag is missing); F1 and EM follow the official HotpotQA rules.</p>
<script>{_HTML_SCRIPT}</script>
</body></html>
"""


def report(folders: list[str | Path], out: str | Path) -> dict[str, Path]:
    """Write report.md, f1.png and samples.html for the result folders; returns their paths."""
    if not folders:
        raise ReportError("no result folders given")
    runs = [load_run(f) for f in folders]
    rows = table_rows(runs)
    table = markdown_table(rows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "report.md", "plot": out / "f1.png", "html": out / "samples.html"}
    paths["table"].write_text("# RAFT evaluation\n\n" + table, encoding="utf-8")
    plot_f1(rows, paths["plot"])
    paths["html"].write_text(samples_html(runs, table), encoding="utf-8")
    return paths


REPORT_USAGE = "usage: python -m raft.evaluate report RESULT_DIR [RESULT_DIR ...] [--out DIR]"


def report_cli(argv: list[str]) -> None:
    if not argv or any(a in ("-h", "--help") for a in argv):
        print(REPORT_USAGE)
        raise SystemExit(0 if argv else 2)
    out, folders = "outputs/report", []
    it = iter(argv)
    for arg in it:
        if arg == "--out":
            out = next(it, "")
            if not out:
                print(f"raft.evaluate report: error: --out needs a folder\n{REPORT_USAGE}", file=sys.stderr)
                raise SystemExit(2)
        elif arg.startswith("--out="):
            out = arg.split("=", 1)[1]
        else:
            folders.append(arg)
    try:
        paths = report(folders, out)
    except ConfigError as e:
        print(f"raft.evaluate report: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    print(paths["table"].read_text(encoding="utf-8"))
    for kind, path in paths.items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["report"]:
        report_cli(sys.argv[2:])
    else:
        run_cli("evaluate", main)
        if any(a in ("-h", "--help", "help") for a in sys.argv[1:]):
            print(f"\nreport over result folders:\n  {REPORT_USAGE}")
