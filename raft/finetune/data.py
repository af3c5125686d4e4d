"""Training data for raft.finetune: load a raft.generate folder, a saved dataset, a JSONL file or a hub
id, check its ``prompt`` / ``completion`` chat columns, and fit every example into ``train.max_length``
tokens (shortening the longest documents inside a RAFT student prompt, never the answer, or dropping it;
any other overlong row, e.g. an in2 long-context row, is dropped and counted, never rebuilt).

Also the small helpers the other modules of the package share: :func:`log` (one progress line, from
the main process only) and the hub checks behind the one-line "not found" errors.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from raft.config import ConfigError, FinetuneConfig, first_line
from raft.prompts import student_prompt

OVERLONG_POLICIES = ("truncate_documents", "drop")


class DataError(ConfigError):
    """Training data that cannot be used: one line naming the file, split, column or row."""


def is_main_process() -> bool:
    """True outside ``accelerate launch`` and in its rank-0 process."""
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


def log(message: str) -> None:
    """One progress line on stdout (only from the main process under accelerate launch)."""
    if is_main_process():
        print(f"raft.finetune: {message}", flush=True)


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be reached (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE)."""
    try:
        from huggingface_hub import constants

        if constants.is_offline_mode():
            return True
    except (ImportError, AttributeError):
        pass
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def looks_like_hub_id(name: str) -> bool:
    """True for an ``owner/name`` hub id (not a relative, absolute or home path)."""
    return bool(re.fullmatch(r"[\w.-]+/[\w.-]+", name)) and not name.startswith((".", "/", "~"))


# --------------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------------


def load_data(path: str) -> Any:
    """A ``DatasetDict`` from a raft.generate folder, a saved dataset, a JSONL file or a hub id."""
    p = Path(path).expanduser()
    if p.is_dir():
        import datasets

        for candidate in (p / "dataset", p):
            if (candidate / "dataset_dict.json").is_file():
                splits = json.loads((candidate / "dataset_dict.json").read_text()).get("splits", [])
                return datasets.DatasetDict({s: _load_saved(candidate / s, path, s) for s in splits})
            if (candidate / "state.json").is_file():
                return datasets.DatasetDict({"train": _load_saved(candidate, path, "train")})
        files = {s: str(p / f"{s}.jsonl") for s in ("train", "test") if (p / f"{s}.jsonl").is_file()}
        if "train" not in files:
            raise DataError(f"data {path}: no dataset/ folder, saved dataset or train.jsonl inside (is it a raft.generate output folder?)")
        return _load_json(files, path)
    if p.is_file():
        if p.suffix not in (".jsonl", ".json"):
            raise DataError(f"data {path}: expected a raft.generate folder, a .jsonl file or a hub id")
        files = {"train": str(p)}
        if p.name == "train.jsonl" and (p.parent / "test.jsonl").is_file():
            files["test"] = str(p.parent / "test.jsonl")
        return _load_json(files, path)
    hint = "run python -m raft.generate first or pass data=PATH"
    if not looks_like_hub_id(path):
        raise DataError(f"data {path} not found ({hint})")
    if hub_offline():
        raise DataError(f"data {path}: not found locally and the hub is offline ({hint})")
    import datasets

    try:
        loaded = datasets.load_dataset(path)
    except Exception as e:  # unknown id, no network, ...
        first = first_line(e)
        raise DataError(f"data {path}: not found locally and cannot be loaded from the hub ({first})") from e
    return loaded


def _load_saved(folder: Path, path: str, split: str) -> Any:
    """One split saved with ``save_to_disk``; an empty one (datasets writes no shard) as an empty Dataset."""
    import datasets

    try:
        state = json.loads((folder / "state.json").read_text())
        if state.get("_data_files") == []:  # load_from_disk cannot read a split saved without rows
            info = datasets.DatasetInfo.from_directory(str(folder))
            return datasets.Dataset.from_dict({k: [] for k in info.features or {}}, features=info.features)
        return datasets.load_from_disk(str(folder))
    except Exception as e:  # a damaged or half-written folder
        first = first_line(e)
        raise DataError(f"data {path}: cannot read split '{split}' from {folder} ({first})") from e


def _load_json(files: dict[str, str], path: str) -> Any:
    import datasets

    try:
        return datasets.load_dataset("json", data_files=files)
    except Exception as e:
        first = first_line(e)
        raise DataError(f"data {path}: cannot read JSON lines ({first})") from e


def check_columns(ds: Any, split: str, path: str) -> None:
    """Fail with one line unless ``ds`` has non-empty conversational ``prompt`` / ``completion`` columns."""
    missing = [c for c in ("prompt", "completion") if c not in ds.column_names]
    if missing:
        raise DataError(
            f"data {path}: split '{split}' lacks column(s) {', '.join(missing)} "
            f"(has: {', '.join(ds.column_names) or 'none'}); raft.generate writes prompt/completion chat messages"
        )
    if len(ds) == 0:
        raise DataError(f"data {path}: split '{split}' is empty")
    for column in ("prompt", "completion"):
        value = ds[0][column]
        if not (isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)):
            raise DataError(f"data {path}: split '{split}' row 0 column '{column}' is not a list of chat messages ({{role, content}})")


# --------------------------------------------------------------------------------------------------
# fitting examples into max_length
# --------------------------------------------------------------------------------------------------


def _n_tokens(tokenizer: Any, messages: list[dict], add_generation_prompt: bool = False) -> int:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=False)
    return len(ids)


def _water_level(lengths: list[int], budget: int) -> int:
    """Largest cap c with sum(min(l, c)) <= budget: trimming the longest documents first."""
    lo, hi = 0, max(lengths, default=0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def rebuild_prompt(prompt: list[dict], documents: list[str], question: str) -> list[dict]:
    """``prompt`` (or a whole conversation) with its last user message the student prompt of ``documents``."""
    last_user = max(i for i, m in enumerate(prompt) if m["role"] == "user")
    out = [dict(m) for m in prompt]
    out[last_user] = {"role": "user", "content": student_prompt(documents, question)}
    return out


def is_student_prompt(row: dict) -> bool:
    """True when the row's prompt is the RAFT student prompt of its own ``documents`` and ``question``
    (the only rows whose documents may be shortened: rebuilding any other prompt, e.g. an in2 row
    whose ``documents`` hold only the gold segments of a long context, would destroy it)."""
    documents, question, prompt = row.get("documents"), row.get("question"), row.get("prompt")
    if not (isinstance(documents, list) and documents and all(isinstance(d, str) for d in documents) and isinstance(question, str)):
        return False
    users = [m for m in prompt or [] if isinstance(m, dict) and m.get("role") == "user"]
    return bool(users) and users[-1].get("content") == student_prompt(documents, question)


def fit_example(row: dict, tokenizer: Any, max_length: int, policy: str) -> tuple[str, dict | None, int]:
    """Make one row fit ``max_length`` tokens: (outcome, {prompt, completion} or None, tokens).

    outcome: ``fits`` | ``truncated`` (documents shortened) | ``dropped`` (overlong with policy drop) |
    ``not_shortenable`` (overlong, and its prompt is not the RAFT student prompt of its documents, so
    nothing in it may be cut: dropped) | ``answer_too_long`` (does not fit even with empty documents).
    """
    prompt, completion = row["prompt"], row["completion"]
    n = _n_tokens(tokenizer, prompt + completion)
    if n <= max_length:
        return "fits", {"prompt": prompt, "completion": completion}, n
    documents, question = row.get("documents"), row.get("question")
    can_trim = is_student_prompt(row)
    if can_trim:
        empty = _n_tokens(tokenizer, rebuild_prompt(prompt, [""] * len(documents), question) + completion)
    else:
        empty = _n_tokens(tokenizer, [m for m in prompt if m["role"] != "user"] + [{"role": "user", "content": ""}] + completion)
    if empty > max_length:
        return "answer_too_long", None, n
    if policy == "drop":
        return "dropped", None, n
    if not can_trim:
        return "not_shortenable", None, n
    ids = [tokenizer(d, add_special_tokens=False)["input_ids"] for d in documents]
    lengths = [len(x) for x in ids]
    excess = n - max_length
    for _ in range(8):  # re-tokenising cut text can differ by a token or two: tighten until it fits
        cap = _water_level(lengths, max(0, sum(lengths) - excess))
        trimmed = [tokenizer.decode(x[:cap]) if len(x) > cap else d for x, d in zip(ids, documents, strict=True)]
        new_prompt = rebuild_prompt(prompt, trimmed, question)
        m = _n_tokens(tokenizer, new_prompt + completion)
        if m <= max_length:
            return "truncated", {"prompt": new_prompt, "completion": completion}, m
        excess += m - max_length
    return "dropped", None, n


def fit_split(ds: Any, tokenizer: Any, max_length: int, policy: str, split: str) -> tuple[Any, dict[str, Any]]:
    """Apply :func:`fit_example` to a split; returns a prompt/completion ``Dataset`` and the counts."""
    import datasets
    from tqdm.auto import tqdm

    rows, counts, tokens = [], {"fits": 0, "truncated": 0, "dropped": 0, "not_shortenable": 0, "answer_too_long": 0}, 0
    for row in tqdm(ds, desc=f"fitting {split} to max_length={max_length}", disable=not is_main_process(), leave=False):
        outcome, kept, n = fit_example(row, tokenizer, max_length, policy)
        counts[outcome] += 1
        if kept is not None:
            rows.append(kept)
            tokens += n
    stats = {
        "examples": len(ds),
        "kept": len(rows),
        "overlong": len(ds) - counts["fits"],
        "truncated_documents": counts["truncated"],
        "dropped_overlong": counts["dropped"] + counts["not_shortenable"],
        "dropped_not_shortenable": counts["not_shortenable"],
        "dropped_answer_too_long": counts["answer_too_long"],
        "tokens": tokens,
    }
    out = datasets.Dataset.from_list(rows) if rows else None
    return out, stats


def load_checked_data(cfg: FinetuneConfig) -> tuple[Any, str | None]:
    """(the DatasetDict, the evaluation split or None), columns checked: fails before any model loads."""
    if cfg.train.overlong not in OVERLONG_POLICIES:
        raise ConfigError(f"train.overlong={cfg.train.overlong!r} is not one of {', '.join(OVERLONG_POLICIES)}")
    data = load_data(cfg.data)
    if "train" not in data:
        raise DataError(f"data {cfg.data}: no 'train' split (splits: {', '.join(data) or 'none'})")
    eval_split = next((s for s in ("test", "validation") if s in data and len(data[s]) > 0), None)
    check_columns(data["train"], "train", cfg.data)
    if eval_split:
        check_columns(data[eval_split], eval_split, cfg.data)
    return data, eval_split


def prepare_data(cfg: FinetuneConfig, tokenizer: Any, data: Any, eval_split: str | None) -> tuple[Any, Any, dict[str, Any]]:
    """(train, eval or None, stats): fitted to ``train.max_length``, only prompt/completion kept."""
    t = cfg.train
    stats: dict[str, Any] = {"policy": t.overlong, "max_length": t.max_length}
    train, stats["train"] = fit_split(data["train"], tokenizer, t.max_length, t.overlong, "train")
    if train is None:
        s = stats["train"]
        raise DataError(
            f"data {cfg.data}: no training example fits train.max_length={t.max_length} "
            f"({s['dropped_answer_too_long']} answers alone are longer, {s['dropped_overlong']} dropped as overlong); raise train.max_length"
        )
    evaluation = None
    if eval_split:
        evaluation, stats[eval_split] = fit_split(data[eval_split], tokenizer, t.max_length, t.overlong, eval_split)
    stats["eval_split"] = eval_split if evaluation is not None else None
    for split in ("train", eval_split):
        if split and split in stats:
            s = stats[split]
            fitted = f"{s['truncated_documents']} fitted by shortening their documents, " if t.overlong == "truncate_documents" else ""
            other = (f" ({s['dropped_not_shortenable']} of them because their prompt is not the RAFT student prompt of "
                     f"their documents, so it may not be shortened)") if s["dropped_not_shortenable"] else ""
            log(
                f"{split}: {s['examples']} examples, {s['overlong']} longer than max_length={t.max_length} "
                f"(overlong={t.overlong}): {fitted}{s['dropped_overlong']} dropped{other}, {s['dropped_answer_too_long']} dropped "
                f"because the answer alone does not fit; {s['kept']} kept, {s['tokens']} tokens"
            )
    if evaluation is None:
        log("no test split: training without evaluation")
    return train, evaluation, stats
