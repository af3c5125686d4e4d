"""Upload a finished output folder to the Hugging Face Hub (``push_to_hub=ORG/NAME``, ``hub_private=true``).

    python -m raft.generate recipe=hotpot push_to_hub=my-org/raft-hotpot            # a dataset repo
    python -m raft.finetune recipe=llama31_8b_q4 push_to_hub=my-org/raft-llama31    # a model repo (the adapter)
    python -m raft.finetune recipe=llama31_8b_q4 merge=true push_to_hub=my-org/raft-llama31  # + my-org/raft-llama31-merged

What is uploaded is decided here, as an explicit list of (local file or bytes, path in the repo), one
commit per repo (``HfApi.create_repo(..., exist_ok=True)`` then ``HfApi.create_commit``):

- ``raft.generate`` (:func:`dataset_upload`): ``train.jsonl``, ``test.jsonl``, ``rejects.jsonl``,
  ``chunks.jsonl`` (RAFT runs: the chunk pool ``raft_domain_retrieval`` searches), ``recipe.yaml``,
  ``preview.html`` (the data viewer) and the dataset card ``README.md``, uploaded
  with a ``configs:`` block added to its YAML front matter (the local card is not touched) so that
  ``datasets.load_dataset("ORG/NAME")`` finds the train and test splits; ``rejects.jsonl`` is no split.
- ``raft.finetune`` (:func:`model_upload`): the adapter (``adapter_config.json``, weights), the tokenizer
  files, the model card ``README.md``, ``recipe.yaml``, ``train_summary.json``, ``loss.png`` and the
  TensorBoard event files under ``runs/`` (``train.report_to=tensorboard``: the Hub's training-metrics
  tab); never ``checkpoint-*`` folders, ``training_args.bin`` (a pickle) or ``finetune_run.json``. With
  ``merge=true`` the files of ``output/merged`` (with recipe, summary and loss.png) go to ``ORG/NAME-merged``.

The token is huggingface_hub's (``HF_TOKEN``, or the one ``hf auth login`` stored); it is never printed,
logged or written, and is blanked out of any error text. :func:`check_push` runs at the start of a
command: a malformed repo id or no token is a one-line ``ConfigError`` (exit status 2) before anything
heavy starts. :func:`push_dataset` / :func:`push_model` run at the very end and change nothing local;
when the upload fails (``HF_HUB_OFFLINE=1``, no connection, HTTP 401/403/404, ...) they print one line
to stderr that says the local output is complete and where it is, and return it (None on success), so
that the command exits with status 1. ``hub_private`` applies when the repo is created; an existing
repo keeps its visibility.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from raft.config import ConfigError, first_line

#: (what to upload: a local file, or the bytes of a file made for the Hub, path in the repo)
Upload = tuple[Path | bytes, str]

DATASET_FILES = ("train.jsonl", "test.jsonl", "rejects.jsonl", "chunks.jsonl", "recipe.yaml", "preview.html")
SPLITS = ("train", "test")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json",
                   "added_tokens.json", "chat_template.jinja", "chat_template.json", "vocab.json", "vocab.txt",
                   "merges.txt")
RUN_FILES = ("README.md", "recipe.yaml", "train_summary.json", "loss.png")
MERGED_SUFFIX = "-merged"


def merged_repo(repo_id: str) -> str:
    """The repo of the merged model: ``ORG/NAME-merged``."""
    return repo_id + MERGED_SUFFIX


def check_push(repo_id: str, where: str = "push_to_hub", *, merged: bool = False, need_token: bool = True) -> None:
    """Call at the start of a command when ``push_to_hub`` is set: a one-line ``ConfigError`` (naming the
    setting ``where``) if ``repo_id`` is not ``ORG/NAME`` as the Hub allows it (``ORG/NAME-merged`` too
    when ``merged``), or if ``need_token`` and huggingface_hub finds no token. Reaches no server."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    for repo in (repo_id, merged_repo(repo_id)) if merged else (repo_id,):
        try:
            if repo.count("/") != 1:
                raise HFValidationError("no namespace")
            validate_repo_id(repo)
        except HFValidationError:
            raise ConfigError(f"{where}={repo_id!r}: not a Hub repo id; give ORG/NAME (letters, digits, '-', '_', '.'; "
                              f"at most 96 characters{', with -merged added for merge=true' if merged else ''})") from None
    if need_token:
        import huggingface_hub

        if not huggingface_hub.get_token():
            raise ConfigError(f"{where}={repo_id} needs a Hugging Face token that may write to it: set HF_TOKEN "
                              "(or run hf auth login) and run again")


# --------------------------------------------------------------------------------------------------
# what would be uploaded
# --------------------------------------------------------------------------------------------------


def _front_matter(card: str) -> tuple[dict[str, Any], str]:
    """The YAML front matter of a card (``{}`` if none or unreadable) and the text after it."""
    match = re.match(r"---\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)", card, re.S)
    if not match:
        return {}, card
    try:
        data = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError:
        return {}, card
    return (data, card[match.end():]) if isinstance(data, dict) else ({}, card)


def dataset_card_for_hub(card: str, splits: list[str]) -> str:
    """The dataset card with a ``configs:`` block in its front matter (kept if it has one already): the
    default config's data files are ``{split}.jsonl`` for each split, so ``load_dataset("ORG/NAME")``
    reads exactly these splits and never ``rejects.jsonl``."""
    data, body = _front_matter(card)
    if "configs" in data:
        return card
    data["configs"] = [{"config_name": "default",
                        "data_files": [{"split": s, "path": f"{s}.jsonl"} for s in splits]}]
    head = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None, width=1000)
    return f"---\n{head}---\n{body}"


def dataset_upload(out: str | Path) -> list[Upload]:
    """What :func:`push_dataset` uploads from a finished ``raft.generate`` folder: the files of
    :data:`DATASET_FILES` that exist (``train.jsonl`` must) and ``README.md``, the card with its
    ``configs:`` block, as bytes. The test split is a split only when ``test.jsonl`` has rows."""
    out = Path(out)
    if not (out / "train.jsonl").is_file():
        raise ConfigError(f"{out} holds no train.jsonl: not a finished raft.generate output")
    files: list[Upload] = [(out / name, name) for name in DATASET_FILES if (out / name).is_file()]
    splits = [s for s in SPLITS if (out / f"{s}.jsonl").is_file() and (s == "train" or (out / f"{s}.jsonl").stat().st_size)]
    readme = out / "README.md"
    card = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {out.name}\n\nWritten by raft.generate.\n"
    files.append((dataset_card_for_hub(card, splits).encode("utf-8"), "README.md"))
    return files


def model_upload(out: str | Path, merged: bool = False) -> list[Upload]:
    """What :func:`push_model` uploads from a finished ``raft.finetune`` folder: the adapter repo's files,
    or with ``merged`` the merged model's (``output/merged``, plus recipe, summary and loss.png)."""
    out = Path(out)
    if merged:
        folder = out / "merged"
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{folder} holds no merged model (config.json)")
        files: list[Upload] = [(p, p.name) for p in sorted(folder.iterdir()) if p.is_file()]
        names = {name for _, name in files}
        return files + [(out / n, n) for n in RUN_FILES[1:] if (out / n).is_file() and n not in names]
    if not (out / "adapter_config.json").is_file():
        raise ConfigError(f"{out} holds no adapter (adapter_config.json): not a finished raft.finetune output")
    files = [(out / n, n) for n in (*ADAPTER_FILES, *TOKENIZER_FILES, *RUN_FILES) if (out / n).is_file()]
    runs = out / "runs"
    if runs.is_dir():
        files += [(p, p.relative_to(out).as_posix()) for p in sorted(runs.rglob("events.out.tfevents.*")) if p.is_file()]
    return files


# --------------------------------------------------------------------------------------------------
# the upload
# --------------------------------------------------------------------------------------------------


def _reason(error: BaseException, repo_id: str, token: str | None) -> str:
    """One line on why an upload failed, without the token."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(error, OfflineModeIsEnabled):
        text = "the Hub is offline here: HF_HUB_OFFLINE is set"
    elif isinstance(error, HfHubHTTPError) and getattr(error, "response", None) is not None:
        status = error.response.status_code
        text = {
            401: "HTTP 401: the Hub refused the token (check HF_TOKEN)",
            403: f"HTTP 403: the token may not create or write {repo_id} (it needs write access to {repo_id.split('/')[0]})",
            404: f"HTTP 404: the Hub has no namespace or repo {repo_id} for this token",
        }.get(status, f"HTTP {status}: {first_line(error)}")
    elif isinstance(error, ConfigError):
        text = str(error)
    elif isinstance(error, ConnectionError | TimeoutError) or "connect" in type(error).__name__.lower():
        text = f"cannot reach the Hub: {first_line(error)}"
    else:
        text = f"{type(error).__name__}: {first_line(error)}"
    if token:
        text = text.replace(token, "***")
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _push(files: list[Upload], repo_id: str, repo_type: str, private: bool, message: str) -> str:
    """Create the repo if needed and upload ``files`` in one commit; returns the repo's URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=path, path_or_fileobj=src if isinstance(src, bytes) else str(src))
                  for src, path in files]
    api.create_commit(repo_id, operations, commit_message=message, repo_type=repo_type)
    return str(url)


def _failed(where: str, setting: str, reason: str, out: Path) -> str:
    line = f"{where}: push_to_hub={setting} failed ({reason}); the local output is complete in {out}"
    print(line, file=sys.stderr, flush=True)
    return line


def push_dataset(out: str | Path, repo_id: str, private: bool = False, where: str = "raft.generate") -> str | None:
    """Upload a finished ``raft.generate`` folder (:func:`dataset_upload`) to the dataset repo ``repo_id``
    (created, ``private`` if asked, when it does not exist). Call it last, after everything local is
    written: it changes nothing in ``out``. Returns None on success (one line on stdout names the repo);
    on any failure it prints one line to stderr, ``raft.generate: push_to_hub=ORG/NAME failed (REASON);
    the local output is complete in OUT``, and returns that line: exit with status 1 then."""
    import huggingface_hub

    out = Path(out)
    token = huggingface_hub.get_token()
    try:
        files = dataset_upload(out)
        url = _push(files, repo_id, "dataset", private, f"{where}: {out.name}")
    except Exception as e:  # offline, refused, unreachable, ...: the local output stands
        return _failed(where, repo_id, _reason(e, repo_id, token), out)
    print(f"{where}: pushed {len(files)} files to {url}", flush=True)
    return None


def push_model(out: str | Path, repo_id: str, private: bool = False, merged: bool = False,
               where: str = "raft.finetune") -> str | None:
    """Upload a finished ``raft.finetune`` folder: the adapter to the model repo ``repo_id`` and, with
    ``merged``, ``output/merged`` to ``ORG/NAME-merged`` (each created, ``private`` if asked, when it
    does not exist). Changes nothing in ``out``. Returns None on success, else the one line it printed
    to stderr (as :func:`push_dataset`; the merged model is not tried when the adapter failed)."""
    import huggingface_hub

    out = Path(out)
    token = huggingface_hub.get_token()
    targets = [(repo_id, False)] + ([(merged_repo(repo_id), True)] if merged else [])
    for n, (repo, is_merged) in enumerate(targets):
        try:
            files = model_upload(out, merged=is_merged)
            url = _push(files, repo, "model", private, f"{where}: {'merged model' if is_merged else 'adapter'} from {out.name}")
        except Exception as e:
            reason = _reason(e, repo, token)
            if n:
                reason = f"{repo}: {reason}; the adapter is on the Hub in {repo_id}"
            return _failed(where, repo_id, reason, out)
        print(f"{where}: pushed the {'merged model' if is_merged else 'adapter'} ({len(files)} files) to {url}", flush=True)
    return None
