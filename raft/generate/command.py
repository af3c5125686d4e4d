"""``python -m raft.generate``: read the recipe, load a kind's work, drive the teacher, write the outputs.

The steps, each in its own module: the kind (``raft.kinds.<kind>``) loads its inputs and says what
to ask; the pipeline (``raft.generate.pipeline``) asks the teacher through the resumable store
(``raft.store``); the output folder is written by ``raft.generate.output``. This module checks the
shared settings, does the dry run and prints the summary. Nothing heavy (datasets, transformers,
torch) is imported before a step needs it.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from pathlib import Path
from typing import Any

from raft.config import PACKAGE_DIR, check_all, save_config
from raft.generate.output import cost, dataset_card, finalize, reject_warning, summary
from raft.generate.pipeline import Run
from raft.generate.preview import write_preview
from raft.kinds import Kind, make_kind
from raft.store import Store, check_fingerprint, teacher_key
from raft.teacher import TeacherUnavailable, make_teacher


class NothingAccepted(SystemExit):
    """Exit status 1 for a run that accepted no row (its output folder is complete); ``result`` holds
    the counts ``main`` would have returned (tests read them)."""

    def __init__(self, result: dict[str, Any]):
        super().__init__(1)
        self.result = result


def validate(cfg: Any) -> None:
    """The shared settings (a kind checks its own section)."""
    checks = [
        (cfg.limit is None or cfg.limit >= 1, f"limit={cfg.limit} must be at least 1 (or null for all work items)"),
        (0.0 <= cfg.test_size < 1.0, f"test_size={cfg.test_size} must be in [0, 1)"),
        (cfg.teacher.concurrency >= 1, f"teacher.concurrency={cfg.teacher.concurrency} must be at least 1"),
        (cfg.teacher.max_retries >= 0, f"teacher.max_retries={cfg.teacher.max_retries} is negative"),
        (cfg.teacher.max_refusals >= 0, f"teacher.max_refusals={cfg.teacher.max_refusals} is negative"),
        (bool(str(cfg.input).strip()), "input is empty: pass input=PATH (what the recipe's kind reads: documents, a HotpotQA file or hub id, ...)"),
        (not Path(cfg.output).exists() or Path(cfg.output).is_dir(), f"output={cfg.output} is a file, not a folder; pass output=DIR"),
    ]
    check_all(checks)
    if cfg.push_to_hub:  # a bad repo id or no token is said now, not after the teacher is paid
        from raft.hub import check_push

        check_push(cfg.push_to_hub, need_token=not cfg.dry_run)


def resolve_input(value: str) -> str:
    """A local path made absolute; ``raft/...`` also finds the folders shipped in the package
    (``raft/demo`` works outside a checkout); anything else (a hub id) unchanged."""
    path = Path(value).expanduser()
    if path.exists():
        return str(path.resolve())
    if value.startswith("raft/") and (PACKAGE_DIR.parent / value).exists():
        return str((PACKAGE_DIR.parent / value).resolve())
    return value


def fingerprint(kind: Kind) -> dict[str, Any]:
    """The settings that change what a run produces (see raft.store): the shared ones and the kind's."""
    cfg = kind.cfg
    fp = {"kind": cfg.kind, "input": kind.source, "seed": cfg.seed, **kind.fingerprint()}
    fp.update({f"teacher.{k}": getattr(cfg.teacher, k) for k in ("backend", "model", "temperature", "max_tokens", "seed")})
    return fp


def dry_run(kind: Kind, work: int, out: Path) -> dict[str, Any]:
    cfg = kind.cfg
    records = Store(out, readonly=True) if (out / "store.jsonl").exists() else None

    def stored(messages, response_format=None) -> bool:
        return records is not None and teacher_key(messages, cfg.teacher, response_format) in records

    est = kind.estimate(work, stored)
    price = cost(cfg, est.tokens_in, est.tokens_out)
    print(f"dry run: {est.work_line}")
    for note in kind.notes:
        print(f"  {note}")
    print(f"teacher calls: {est.calls_line}")
    print(f"estimated tokens (about 4 characters a token): {est.tokens_in:,} in, {est.tokens_out:,} out")
    if price is not None:
        print(f"estimated cost: ${price:.2f}")
    print("no teacher call was made")
    return {kind.unit + "s": work, "calls": est.calls, "tokens_in": est.tokens_in, "tokens_out": est.tokens_out, "cost": price}


def main(cfg: Any, progress: bool = True) -> dict[str, Any]:
    """Run raft.generate; returns the counts (tests call it in-process)."""
    started = time.monotonic()
    validate(cfg)
    source = resolve_input(cfg.input)
    kind = make_kind(cfg, source)
    # a local teacher is loaded first: a model that cannot be downloaded is the first thing to say
    teacher = make_teacher(cfg.teacher) if cfg.teacher.backend != "openai" and not cfg.dry_run else None
    available = kind.load()
    gc.freeze()  # the inputs and everything imported stay for the whole run: no garbage collection pass scans them again
    work = min(available, cfg.limit or available)
    out = Path(cfg.output)
    if cfg.dry_run:
        return dry_run(kind, work, out)
    check_fingerprint(out, fingerprint(kind))
    recipe_path = save_config(cfg, out)
    teacher = teacher or make_teacher(cfg.teacher)
    kind.prepare(work)
    with Store(out) as store:
        run = Run(kind, work, teacher, store, out)
        try:
            stats = asyncio.run(run.run(progress))
        except TeacherUnavailable as e:
            print(
                f"raft.generate: error: {e}; {len(store) + store.appended} teacher calls are stored in {out}: "
                "rerun the same command to resume",
                file=sys.stderr,
            )
            raise SystemExit(1) from None
    counts = finalize(run, out)
    (out / "README.md").write_text(dataset_card(run, teacher.describe(), counts, recipe_path.read_text()))
    preview = write_preview(out)
    for note in kind.notes:
        print(note)
    print(summary(cfg, stats, kind.unit, counts, out, time.monotonic() - started))
    print(f"look at the data: {preview} (python -m raft.generate view {out} rebuilds it)")
    result = {
        kind.unit + "s": stats.items,
        **stats.counts,
        "accepted": stats.accepted,
        "rejected": dict(stats.rejected),
        "train": counts["train"],
        "test": counts["test"],
        "calls_new": stats.calls_new,
        "calls_stored": stats.calls_stored,
        "tokens_in": stats.tokens_in,
        "tokens_out": stats.tokens_out,
        "teacher_wall_s": stats.teacher_wall_s,
        "teacher_cpu_s": stats.teacher_cpu_s,
    }
    warning = reject_warning(stats, out)
    if warning is not None:
        print(f"raft.generate: {'error' if stats.accepted == 0 else 'WARNING'}: {warning}", file=sys.stderr, flush=True)
        if stats.accepted == 0:  # raft.finetune would only fail later on an empty train split
            raise NothingAccepted(result)
    if cfg.push_to_hub:
        from raft.hub import push_dataset

        if push_dataset(out, cfg.push_to_hub, cfg.hub_private) is not None:
            raise SystemExit(1)  # the one line is printed; the local output is complete
    return result
