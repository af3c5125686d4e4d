"""Data, prompt and scoring of the ``in2_probe`` lm-eval task: judge-free retrieval probes (raft.kinds.in2.probes).

The docs are built when the task loads, from a fixed seed, the evaluated model's tokenizer and (for
the document probe) a corpus; no teacher, no data folder. Settings, first match wins:

- tokenizer: task metadata ``in2_probe_tokenizer`` (``python -m raft.evaluate`` passes its model, or
  ``tokenizer=``), the environment variable ``RAFT_IN2_PROBE_TOKENIZER``, then lm_eval's own model
  arguments, which ``lm_eval`` passes as metadata (``tokenizer``, ``pretrained``, ``model``);
- corpus (the document probe): metadata ``in2_probe_corpus`` (``raft.evaluate data=``), the
  environment variable ``RAFT_IN2_PROBE_CORPUS``: a file or folder of documents (raft.sources.documents), or a
  raft.generate output folder (its ``chunks.jsonl``). Required by the document probe, never by the others;
- exclude (the document probe): metadata ``in2_probe_exclude`` (``raft.evaluate`` passes
  ``probe_exclude=``, else the adapter's training data folder), the environment variable
  ``RAFT_IN2_PROBE_EXCLUDE``: a raft.generate output folder; corpus segments sharing a 10-word run with
  its rows are dropped and counted (a fine-tuned model must not be asked to continue sentences it
  trained on), every segment overlapping is an error. Use the same value for the base model's run, so
  that both score the same probes;
- the sweep: metadata ``in2_probe_lengths``, ``in2_probe_bins``, ``in2_probe_samples`` (per bin),
  ``in2_probe_probes``, ``in2_probe_seed``, else the task's ``dataset_kwargs`` (4k-32k, 10 bins, 5).

``process_results``: ``em`` and ``f1`` (raft.kinds.in2.probes.score), the same per probe (``em_document`` ...)
per position bin (``em_bin0`` ... ``em_bin9``, ``f1_bin0`` ...) and EM per context length (``em_2k`` ...
``em_128k``: target_tokens 4096 -> ``em_4k``) as ``(value, applies)`` pairs that ``mean_where`` averages
over the docs they apply to (NaN when none: a probe left out, fewer bins, a length not asked).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import datasets
from raft.eval_tasks.common import as_test_split
from raft.eval_tasks.common import mean_where as mean_where  # the yaml's per-subset aggregation

from raft.config import ConfigError
from raft.kinds.in2.probes import PROBES, ProbeSettings, build_probes, score_probe
from raft.long_context.lengths import length_metrics, length_name

TASK = "in2_probe"
PREFIX = "in2_probe_"  # metadata keys
TOKENIZER_ENV, CORPUS_ENV = "RAFT_IN2_PROBE_TOKENIZER", "RAFT_IN2_PROBE_CORPUS"
EXCLUDE_ENV = "RAFT_IN2_PROBE_EXCLUDE"  # a training data folder the document probe must not use
LM_EVAL_MODEL_KEYS = ("tokenizer", "pretrained", "model")  # lm_eval --model_args, passed as metadata
DECLARED_BINS = 10  # the yaml's em_bin0..em_bin9 / f1_bin0..f1_bin9
PROBE_METRICS = tuple(f"{m}_{p}" for p in PROBES for m in ("em", "f1"))
BIN_METRICS = tuple(f"{m}_bin{k}" for k in range(DECLARED_BINS) for m in ("em", "f1"))
LENGTH_METRICS = length_metrics("em", (1, 2, 4, 6, 8, 16, 32, 64, 128))  # target_tokens 4096 -> em_4k
KEEP = ("id", "probe", "target_tokens", "context_tokens", "bins", "bin", "depth", "gold_start", "gold_end",
        "question", "answer", "cue", "prompt")  # fmt: skip


def _listed(value: Any) -> list[Any]:
    """A list from a list, a tuple, an omegaconf ListConfig or a comma-separated string."""
    if isinstance(value, str):
        return [v.strip() for v in value.strip("[]").split(",") if v.strip()]
    return list(value) if not isinstance(value, int | float) else [value]


def _whole(name: str, value: Any) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or str(value).strip() != str(number):
        raise ConfigError(f"{TASK}: {name}={value!r} must be a whole number")
    return number


def settings(metadata: dict[str, Any], defaults: dict[str, Any]) -> ProbeSettings:
    """The sweep: metadata in2_probe_<name> over the task's dataset_kwargs."""

    def get(name: str) -> Any:
        value = metadata.get(PREFIX + name)
        return defaults.get(name) if value is None or value == "" else value

    return ProbeSettings(
        lengths=tuple(_whole("lengths", v) for v in _listed(get("lengths"))),
        bins=_whole("bins", get("bins")),
        samples=_whole("samples", get("samples")),
        probes=tuple(str(p) for p in _listed(get("probes"))),
        seed=_whole("seed", get("seed")),
    )


def tokenizer_name(metadata: dict[str, Any]) -> str:
    for value in (metadata.get(PREFIX + "tokenizer"), os.environ.get(TOKENIZER_ENV),
                  *(metadata.get(k) for k in LM_EVAL_MODEL_KEYS)):
        if isinstance(value, str) and value:
            return value
    raise ConfigError(
        f"{TASK} needs the evaluated model's tokenizer: metadata {PREFIX}tokenizer (raft.evaluate passes its model) "
        f"or {TOKENIZER_ENV}"
    )


def corpus(metadata: dict[str, Any]) -> str | None:
    return metadata.get(PREFIX + "corpus") or os.environ.get(CORPUS_ENV) or None


def exclude(metadata: dict[str, Any]) -> str | None:
    """The training data folder whose text the document probe must not ask about (None: no check)."""
    return metadata.get(PREFIX + "exclude") or os.environ.get(EXCLUDE_ENV) or None


def load(probe_lengths: Any = (4096, 8192, 16384, 32768), probe_bins: Any = 10, probe_samples: Any = 5,
         probe_kinds: Any = PROBES, probe_seed: Any = 0, **metadata: Any) -> datasets.DatasetDict:
    """``custom_dataset`` of ``in2_probe``: the sweep's docs as the split ``test``. The keyword defaults
    are the task's ``dataset_kwargs`` (named apart from the metadata: lm-eval passes both as keywords,
    and lm_eval's model arguments, such as vllm's ``seed``, arrive as metadata)."""
    defaults = {"lengths": probe_lengths, "bins": probe_bins, "samples": probe_samples, "probes": probe_kinds,
                "seed": probe_seed}
    s = settings(metadata, defaults)
    if s.bins > DECLARED_BINS:  # counted in em / f1; raft.evaluate's samples have every bin
        print(f"{TASK}: bins {DECLARED_BINS}..{s.bins - 1} have no per-bin metric (declared: bin0..bin{DECLARED_BINS - 1})",
              file=sys.stderr)
    docs = build_probes(tokenizer_name(metadata), corpus(metadata), s, exclude(metadata))
    return as_test_split(docs, KEEP)


def doc_to_text(doc: dict[str, Any]) -> str:
    return doc["prompt"]


def process_results(doc: dict[str, Any], results: list[str]) -> dict[str, Any]:
    """em, f1, and the (value, applies) pairs per probe, per position bin and per context length."""
    s = score_probe(doc["probe"], results[0], doc["answer"], doc.get("cue") or "")
    out: dict[str, Any] = {"em": s["em"], "f1": s["f1"]}
    for p in PROBES:
        for m in ("em", "f1"):
            out[f"{m}_{p}"] = (s[m], doc["probe"] == p)
    for k in range(DECLARED_BINS):
        for m in ("em", "f1"):
            out[f"{m}_bin{k}"] = (s[m], doc["bin"] == k)
    mine = f"em_{length_name(doc['target_tokens'])}"
    for m in LENGTH_METRICS:
        out[m] = (s["em"], m == mine)
    return out
