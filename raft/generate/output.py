"""The output folder of raft.generate: the split, the JSONL files, the ``datasets`` copy, the card.

At the end of a run the kept rows (raft.generate.pipeline) are sorted by id, split into train and
test exactly as ``Dataset.train_test_split`` would with the run's seed (or as the kind's ``split_of``
says; or, when the kind has a ``split_group(row_id)``, by whole groups: every row of a group, e.g.
the questions about one oracle chunk, on the same side, see ``split_groups``), copied line by line into
``train.jsonl`` / ``test.jsonl`` (test rows through the kind's ``held_out``), and the DatasetDict is built from those files (Arrow,
memory-mapped) with the kind's features. ``rejects.jsonl`` gets the rejects in id order, and
``README.md`` a dataset card: the kind's description and columns, the teacher, the counts, the
reasons for rejects, the notes and the effective recipe; the kind adds files of its own.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from raft.generate.pipeline import Run, Stats


def cost(cfg: Any, tokens_in: int, tokens_out: int) -> float | None:
    t = cfg.teacher
    if t.price_input_per_mtok is None and t.price_output_per_mtok is None:
        return None
    return tokens_in * (t.price_input_per_mtok or 0.0) / 1e6 + tokens_out * (t.price_output_per_mtok or 0.0) / 1e6


def split_order(n: int, test_size: float, seed: int) -> tuple[list[int], list[int]]:
    """Positions of the train and test rows among ``n`` rows: the same as ``Dataset.train_test_split``
    with ``seed`` (test = the first ``n_test`` of a seeded permutation, train = the rest, in that order)."""
    import numpy as np

    n_test = min(n - 1, max(1, math.ceil(n * test_size))) if n >= 2 and test_size > 0 else 0
    if n_test == 0:
        return list(range(n)), []
    permutation = np.random.default_rng(seed).permutation(n).tolist()
    return permutation[n_test:], permutation[:n_test]


def split_groups(groups: list[str], test_size: float, seed: int) -> tuple[list[int], list[int]]:
    """Positions of the train and test rows when rows of the same group stay together: the groups (in
    order of first appearance) in a seeded permutation, taken into test in that order while that
    brings the test rows closer to ``ceil(n * test_size)`` (a group that would overshoot by more than
    it helps is passed over); train keeps at least one group. When every group is one row this is
    exactly ``split_order``."""
    import numpy as np

    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    n, keys = len(groups), list(members)
    target = min(n - 1, max(1, math.ceil(n * test_size))) if n >= 2 and test_size > 0 else 0
    if target == 0 or len(keys) < 2:
        return list(range(n)), []
    order = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys)).tolist()]
    chosen: set[str] = set()
    taken = 0
    for g in order:
        if taken >= target:
            break
        size = len(members[g])
        if taken + size <= target or (taken + size - target < target - taken and taken + size < n):
            chosen.add(g)
            taken += size
    if not chosen:  # every group overshoots: the smallest one, first in the permutation
        chosen.add(min(order, key=lambda g: len(members[g])))
    test = [i for g in order if g in chosen for i in members[g]]
    train = [i for g in order if g not in chosen for i in members[g]]
    return train, test


def finalize(run: Run, out: Path) -> dict[str, int]:
    """Sort the kept rows by id, split them, write the output folder (JSONL first, then the datasets)."""
    import datasets

    cfg, features = run.cfg, run.kind.features()
    rows = sorted(run.kept.values())  # (row id, offset, length), in id order
    fixed = [run.kind.split_of(r[0]) for r in rows]
    group_of = getattr(run.kind, "split_group", None)
    if any(fixed):  # the kind's own split (e.g. by person)
        train = [i for i, s in enumerate(fixed) if s == "train"]
        test = [i for i, s in enumerate(fixed) if s == "test"]
    elif group_of is not None:  # whole groups (e.g. all questions about one oracle chunk) on one side
        groups = [group_of(r[0]) for r in rows]
        train, test = split_groups(groups, cfg.test_size, cfg.seed)
        if len(set(groups)) < len(groups):
            label = getattr(run.kind, "split_group_label", "group")
            run.kind.notes.append(
                f"train/test split by {label} ({len(set(groups))} of them for {len(groups)} rows, so no test question shares "
                f"its {label} with a training question): test {len(test)} rows = {len(test) / max(len(groups), 1):.1%} "
                f"(test_size={cfg.test_size})"
            )
            wanted = math.ceil(len(groups) * cfg.test_size)
            if cfg.test_size > 0 and (not test or len(test) > 2 * wanted):
                label = getattr(run.kind, "split_group_label", "group")
                print(f"raft.generate: WARNING: the split by {label} gives {len(test)} test rows of {len(groups)} for "
                      f"test_size={cfg.test_size}: {len(set(groups))} {label}(s) are too few to split finely (more "
                      f"documents, or chunk_overlap=0 to split by chunk)", file=sys.stderr, flush=True)
    else:
        train, test = split_order(len(rows), cfg.test_size, cfg.seed)
    counts = {"train": len(train), "test": len(test)}
    run.rows.copy((rows[i][1:] for i in train), out / "train.jsonl")
    run.rows.copy((rows[i][1:] for i in test), out / "test.jsonl", transform=run.kind.held_out)
    del rows, train, test
    with tempfile.TemporaryDirectory(dir=out, prefix=".cache-") as cache:
        parts = datasets.DatasetDict(
            {
                name: datasets.Dataset.from_json(str(out / f"{name}.jsonl"), features=features, cache_dir=cache)
                if counts[name]
                else datasets.Dataset.from_dict({k: [] for k in features}, features=features)
                for name in ("train", "test")
            }
        )
        tmp = out / ".dataset.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        # an empty split needs one explicit (empty) shard, or load_from_disk cannot read it back
        parts.save_to_disk(str(tmp), num_shards={k: 1 if len(v) == 0 else None for k, v in parts.items()})
        del parts
        shutil.rmtree(out / "dataset", ignore_errors=True)
        os.replace(tmp, out / "dataset")
    run.rejects.copy((r[2:] for r in sorted(run.rejected)), out / "rejects.jsonl")
    run.kind.write_outputs(out)
    run.rows.remove()
    run.rejects.remove()
    return counts


def dataset_card(run: Run, teacher: str, counts: dict[str, int], recipe_text: str) -> str:
    cfg, kind, stats = run.cfg, run.kind, run.stats
    title, about, columns = kind.card()
    rejected = sum(stats.rejected.values())
    reasons = "\n".join(f"| {reason} | {n} |" for reason, n in sorted(stats.rejected.items())) or "| (none) | 0 |"
    price = cost(cfg, stats.tokens_in, stats.tokens_out)
    names = [f"{kind.unit}s", *stats.counts, "accepted", "train", "test", "rejected"]
    values = [stats.items, *stats.counts.values(), stats.accepted, counts["train"], counts["test"], rejected]
    return f"""---
pretty_name: {title} ({cfg.recipe or "custom"})
task_categories: [question-answering]
language: [en]
---
# {title}

{about}

## Teacher

- model: `{cfg.teacher.model}` ({cfg.teacher.backend} backend: {teacher})
- temperature {cfg.teacher.temperature}, at most {cfg.teacher.max_tokens} tokens per reply
- tokens: {stats.tokens_in} in, {stats.tokens_out} out{f"; estimated cost ${price:.2f}" if price is not None else ""}

## Counts

| {" | ".join(names)} |
|{"---|" * len(names)}
| {" | ".join(str(v) for v in values)} |

| rejected because | rows |
|---|---|
{reasons}

{chr(10).join(f"- {n}" for n in kind.notes)}

Rejected replies are in `rejects.jsonl` with their reason.

## Columns

{columns}

Load with `datasets.load_from_disk("dataset")` or the `train.jsonl` / `test.jsonl` files.

## Recipe

```yaml
{recipe_text.strip()}
```
"""


def reject_warning(stats: Stats, out: Path, top: int = 3) -> str | None:
    """One line when no row was accepted (the run then exits 1) or most rows (> 50%) were rejected:
    how many, the ``top`` reasons with their counts and where the rejects are; else None."""
    rejected = sum(stats.rejected.values())
    total = stats.accepted + rejected
    if stats.accepted and rejected * 2 <= total:
        return None
    reasons = sorted(stats.rejected.items(), key=lambda kv: (-kv[1], kv[0]))
    named = ", ".join(f"{r} {n}" for r, n in reasons[:top]) + (f", {len(reasons) - top} more reasons" if len(reasons) > top else "")
    if stats.accepted == 0:
        if not rejected:
            return f"no row was accepted: the {stats.items} work items gave no row at all (output: {out})"
        return f"no row was accepted: {rejected} rejected ({named}); see {out / 'rejects.jsonl'}"
    return (f"{rejected} of {total} rows ({100 * rejected / total:.0f}%) were rejected ({named}); "
            f"only {stats.accepted} accepted: read {out / 'rejects.jsonl'} before training on them")


def summary(cfg: Any, stats: Stats, unit: str, counts: dict[str, int], out: Path, wall: float) -> str:
    rejected = sum(stats.rejected.values())
    reasons = ", ".join(f"{r} {n}" for r, n in sorted(stats.rejected.items())) or "none"
    own = "".join(f"{name}: {n}   " for name, n in stats.counts.items())
    lines = [
        f"{unit}s: {stats.items}   {own}accepted: {stats.accepted} "
        f"(train {counts['train']}, test {counts['test']})   rejected: {rejected} ({reasons})",
        f"teacher calls: {stats.calls_new} new, {stats.calls_stored} from the store   "
        f"tokens in/out: {stats.tokens_in:,} / {stats.tokens_out:,} (new: {stats.new_tokens_in:,} / {stats.new_tokens_out:,})",
        f"wall time: {wall:.1f}s (teacher phase {stats.teacher_wall_s:.1f}s, "
        f"{stats.calls_new / max(stats.teacher_wall_s, 1e-9):.1f} new calls/s)   output: {out}",
    ]
    price = cost(cfg, stats.tokens_in, stats.tokens_out)
    if price is not None:
        lines.insert(2, f"estimated cost: ${price:.2f} (this run: ${cost(cfg, stats.new_tokens_in, stats.new_tokens_out):.2f})")
    return "\n".join(lines)
