"""Writes notebooks/quickstart.ipynb and notebooks/analysis.ipynb from this script (easier to review
and diff than notebook JSON):  python notebooks/make_notebooks.py"""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

def nb(cells):
    n = nbf.v4.new_notebook()
    n.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    n.cells = [nbf.v4.new_markdown_cell(c[1]) if c[0] == "md" else nbf.v4.new_code_cell(c[1]) for c in cells]
    return n

SETUP = r'''import os, subprocess, sys, tempfile
from pathlib import Path

# Offline and CPU-only: nothing here downloads anything.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
WORK = Path(os.environ.get("RAFT_QUICKSTART_DIR") or tempfile.mkdtemp(prefix="raft-quickstart-"))
# the shared HotpotQA sample sits beside the checkout (../shared/data); RAFT_SHARED_DATA overrides
SHARED = next((p / "shared" / "data" for p in [Path.cwd(), *Path.cwd().parents] if (p / "shared" / "data").is_dir()), None)
SHARED = Path(os.environ.get("RAFT_SHARED_DATA", SHARED or "shared/data"))
HOTPOT = SHARED / "hotpotqa" / "hotpot_dev_distractor_first100.json"
assert HOTPOT.is_file(), f"HotpotQA sample not found at {HOTPOT}"


def sh(*args):
    """Run one of the project's commands, show its output, fail the cell if it fails."""
    print("$", " ".join(map(str, args)))
    proc = subprocess.run([sys.executable, "-m", *map(str, args)], capture_output=True, text=True)
    print((proc.stdout + proc.stderr)[-3000:])
    assert proc.returncode == 0, f"exit code {proc.returncode}"
    return proc

print("working in", WORK)'''

quick = nb([
 ("md", "# RAFT quickstart: generate → fine-tune → evaluate → report, on CPU in a few minutes\n\n"
        "The whole pipeline on stand-ins (DESIGN.md): a **tiny random Llama** instead of Llama-3.1-8B and a "
        "**local OpenAI-compatible teacher** instead of `vllm serve Llama-3-70B-Instruct`. Every command below is "
        "the one you run for real, only the model paths and sizes differ. The numbers it prints prove the "
        "plumbing, not model quality."),
 ("code", SETUP),
 ("md", "## 1. The stand-ins: a tiny model and a teacher server on 127.0.0.1"),
 ("code", r'''from raft.testing import TeacherServer, build_tiny_model

TINY = build_tiny_model(WORK / "tiny-model")
teacher = TeacherServer().start()   # speaks POST /v1/chat/completions like `vllm serve`
print("tiny model:", TINY)
print("teacher:", teacher.base_url)'''),
 ("md", "## 2. Generate RAFT data from the HotpotQA sample\n\n"
        "`recipe=hotpot` is the published setup; here it points at the local teacher and the shared 100 dev examples, "
        "of which the first 50 count as evaluated: chunks come only from paragraphs of the other 50 that no evaluated "
        "question uses."),
 ("code", r'''DATA = WORK / "data"
sh("raft.generate", "recipe=hotpot", f"input={HOTPOT}", "hotpot.eval_questions=50", "limit=40", f"output={DATA}",
   f"teacher.base_url={teacher.base_url}", "teacher.model=fake-teacher", "teacher.concurrency=8")'''),
 ("code", r'''from datasets import load_from_disk

ds = load_from_disk(str(DATA / "dataset"))
print(ds)
row = ds["train"][0]
print("QUESTION:", row["question"])
print("ORACLE AT:", row["oracle_index"], "of", len(row["documents"]), "documents")
print("ANSWER:\n" + row["cot_answer"])'''),
 ("md", "## 3. Fine-tune (LoRA on the tiny model; `recipe=llama31_8b_q4` on a GPU)"),
 ("code", r'''FT = WORK / "finetune"
sh("raft.finetune", "recipe=tiny", f"model={TINY}", f"data={DATA}", f"output={FT}", "train.max_steps=40")

import json
summary = json.loads((FT / "train_summary.json").read_text())
print({k: summary[k] for k in ("trainable_parameters", "train_examples") if k in summary})'''),
 ("md", "## 4. Evaluate base and fine-tuned with lm-eval (`raft_domain`: the held-out split)\n\n"
        "Real runs use `max_new_tokens=800`; 64 keeps this CPU demo short."),
 ("code", r'''common = ["tasks=[raft_domain]", f"data={DATA}", "limit=4", "max_new_tokens=64", f"model={TINY}"]
sh("raft.evaluate", *common, f"output={WORK / 'eval_base'}", "label=tiny base")
sh("raft.evaluate", *common, f"adapter={FT}", f"output={WORK / 'eval_ft'}", "label=tiny RAFT")'''),
 ("md", "## 5. Report: Markdown table, F1 bar chart, per-sample HTML"),
 ("code", r'''REPORT = WORK / "report"
sh("raft.evaluate", "report", WORK / "eval_base", WORK / "eval_ft", "--out", REPORT)
print(sorted(p.name for p in REPORT.iterdir()))
md = next(REPORT.glob("*.md"))
print(md.read_text())'''),
 ("code", r'''from IPython.display import Image, display

png = next(REPORT.glob("*.png"))
display(Image(filename=str(png)))
teacher.stop()'''),
])

analysis = nb([
 ("md", "# Analysis of evaluation results\n\n"
        "Load one or more result folders written by `python -m raft.evaluate`, then look at F1 by HotpotQA "
        "question type (bridge / comparison) and by gold-answer length. Set `RAFT_RESULTS` to a "
        "space-separated list of folders; without it the notebook makes one small result folder first "
        "(the local teacher server answering `raft_hotpot` through lm-eval's `local-chat-completions`)."),
 ("code", SETUP),
 ("code", r'''from raft.testing import TeacherServer

folders = [Path(p) for p in os.environ.get("RAFT_RESULTS", "").split()]
if not folders:
    with TeacherServer() as server:
        out = WORK / "eval_teacher"
        os.environ["RAFT_HOTPOT_PATH"] = str(HOTPOT)
        sh("raft.evaluate", "backend=local-chat-completions", f"base_url={server.base_url}/chat/completions",
           "model=fake-teacher", "tasks=[raft_hotpot]", f"data={HOTPOT}", "limit=40", f"output={out}", "label=fake teacher")
    folders = [out]
print(folders)'''),
 ("code", r'''import json
import pandas as pd

from raft.sources.hotpot import load_hotpot

meta = {ex["question"]: ex for ex in load_hotpot(HOTPOT)}
rows = []
for folder in folders:
    for path in sorted(folder.glob("samples_*.jsonl")):
        for line in path.read_text().splitlines():
            s = json.loads(line)
            ex = meta.get(s.get("question"), {})
            rows.append({"run": folder.name, "task": path.stem.removeprefix("samples_"), **s,
                         "type": s.get("type") or ex.get("type", "unknown"),
                         "gold_words": len(str(s.get("gold", "")).split())})
df = pd.DataFrame(rows)
print(len(df), "samples")
df[["run", "task", "f1", "em", "answer_found"]].groupby(["run", "task"]).mean()'''),
 ("code", r'''by_type = df.groupby(["run", "type"])[["f1", "em", "answer_found"]].mean()
by_type'''),
 ("code", r'''import matplotlib.pyplot as plt

df["answer_length"] = pd.cut(df["gold_words"], bins=[0, 1, 2, 4, 100], labels=["1", "2", "3-4", "5+"])
by_len = df.groupby(["answer_length", "run"], observed=False)["f1"].mean().unstack()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
df.groupby(["type", "run"])["f1"].mean().unstack().plot.bar(ax=axes[0], title="F1 by question type", rot=0)
by_len.plot.bar(ax=axes[1], title="F1 by gold answer length (words)", rot=0)
for ax in axes:
    ax.set_ylim(0, 1)
plt.tight_layout()
plt.show()'''),
 ("code", r'''# the worst samples: where to look for failure modes
df.sort_values("f1")[["run", "question", "gold", "answer", "f1"]].head(10)'''),
])

nbf.write(quick, HERE / "quickstart.ipynb")
nbf.write(analysis, HERE / "analysis.ipynb")
print("written")
