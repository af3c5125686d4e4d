"""raft.hub (``push_to_hub=ORG/NAME``): what would be uploaded from a real raft.generate folder and from a
tiny raft.finetune run (file lists, the cards; the dataset card makes ``load_dataset`` find exactly the
train and test splits), the push itself against a recording stand-in for ``HfApi`` (repo type, private
flag, paths, one commit per repo), failures (offline, HTTP 401/403/404, no connection: one line, exit
status 1, the output byte for byte unchanged, the token never printed or written) and ``check_push``'s
one-line errors before anything heavy starts. Nothing here reaches the Hub.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
import test_finetune_data
import yaml
from huggingface_hub import HfApi
from test_generate import hotpot_cfg

from raft import finetune, generate
from raft.cli import run_cli
from raft.config import ConfigError, load_config
from raft.hub import check_push, dataset_card_for_hub, dataset_upload, model_upload, push_dataset, push_model
from raft.testing import TeacherBehaviour

REPO = Path(__file__).resolve().parent.parent
TOKEN = "hf_SENTINELtokenNeverPrinted0123456789"  # what HF_TOKEN holds in these tests
DATASET_FILES = {"train.jsonl", "test.jsonl", "rejects.jsonl", "chunks.jsonl", "recipe.yaml", "preview.html", "README.md"}
ADAPTER_FILES = {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "chat_template.jinja", "README.md", "recipe.yaml", "train_summary.json", "loss.png"}

raft_data = test_finetune_data.raft_data
hotpot_examples = test_finetune_data.hotpot_examples


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder``: modification time and SHA-256."""
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_no_token(*texts: str, folder: Path | None = None) -> None:
    assert not any(TOKEN in t for t in texts), "the token was printed"
    if folder is not None:
        leaked = [p for p in folder.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
        assert not leaked, f"the token was written to {leaked}"


def front_matter(card: str) -> dict:
    match = re.match(r"---\n(.*?)\n---\n", card, re.S)
    assert match, card[:200]
    return yaml.safe_load(match.group(1))


def uploaded_bytes(source: Path | bytes) -> bytes:
    return source if isinstance(source, bytes) else source.read_bytes()


class FakeHub:
    """Stands in for HfApi.create_repo / create_commit: records every call (and what each file held)."""

    def __init__(self, monkeypatch, fail: Exception | None = None):
        self.repos: list[dict] = []
        self.commits: list[dict] = []
        self.tokens_seen: list[str | None] = []
        hub = self

        def create_repo(api, repo_id, *, repo_type=None, private=None, exist_ok=False, **kwargs):
            hub.tokens_seen.append(huggingface_hub.get_token())
            if fail is not None:
                raise fail
            hub.repos.append({"repo_id": repo_id, "repo_type": repo_type, "private": private, "exist_ok": exist_ok, **kwargs})
            return f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"

        def create_commit(api, repo_id, operations, *, commit_message, repo_type=None, **kwargs):
            files = {op.path_in_repo: uploaded_bytes(op.path_or_fileobj if isinstance(op.path_or_fileobj, bytes)
                                                     else Path(op.path_or_fileobj)) for op in operations}
            hub.commits.append({"repo_id": repo_id, "repo_type": repo_type, "message": commit_message,
                                "paths": [op.path_in_repo for op in operations], "files": files, **kwargs})

        monkeypatch.setattr(HfApi, "create_repo", create_repo)
        monkeypatch.setattr(HfApi, "create_commit", create_commit)


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return TOKEN


@pytest.fixture
def offline(monkeypatch):
    """huggingface_hub reads HF_HUB_OFFLINE once, at import: the tests' conftest sets it; make sure."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def _http_error(status: int):
    from huggingface_hub.errors import HfHubHTTPError, Response

    http = importlib.import_module(Response.__module__)  # the HTTP library huggingface_hub uses
    response = http.Response(status, request=http.Request("POST", "https://huggingface.co/api/repos/create"))
    return HfHubHTTPError(f"{status} Client Error for url https://huggingface.co/api/repos/create (token {TOKEN})",
                          response=response)


# --------------------------------------------------------------------------------------------------
# raft.generate: the dataset repo
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated(tmp_path_factory, _teacher_server, shared_data) -> tuple[Path, dict]:
    """A real raft.generate run (10 HotpotQA chunks, the local teacher): its output folder and counts."""
    _teacher_server.reset(TeacherBehaviour())
    folder = tmp_path_factory.mktemp("generated")
    result = generate.main(hotpot_cfg(folder, _teacher_server, shared_data, "limit=10"), progress=False)
    return folder / "out", result


def test_dataset_upload_is_the_data_the_card_and_the_recipe(generated, tmp_path):
    import datasets

    out, result = generated
    before = snapshot(out)
    plan = dataset_upload(out)
    names = [name for _, name in plan]
    expected = DATASET_FILES
    assert len(names) == len(set(names)) and set(names) == expected
    assert not any(n.startswith(("dataset/", "store", "run.json")) for n in names)  # Arrow files, run store: local only
    files = {name: uploaded_bytes(src) for src, name in plan}
    for name in expected - {"README.md"}:
        assert files[name] == (out / name).read_bytes(), name

    # the card: the local one, with a configs block that names exactly the train and test files
    local, hub = (out / "README.md").read_text(), files["README.md"].decode()
    meta = front_matter(hub)
    assert meta["configs"] == [{"config_name": "default", "data_files": [{"split": "train", "path": "train.jsonl"},
                                                                        {"split": "test", "path": "test.jsonl"}]}]
    assert {k: v for k, v in meta.items() if k != "configs"} == front_matter(local)
    assert hub.split("\n---\n", 1)[1] == local.split("\n---\n", 1)[1]  # the body as written
    assert snapshot(out) == before  # planning changed nothing

    # the repo as the Hub would hold it, with a reject row of other columns: load_dataset reads train and test only
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, data in files.items():
        (repo / name).write_bytes(data)
    (repo / "rejects.jsonl").write_text(json.dumps({"id": "x", "reason": "no_answer_tag", "reply": "?"}) + "\n")
    loaded = datasets.load_dataset(str(repo))
    assert set(loaded) == {"train", "test"}
    assert (loaded["train"].num_rows, loaded["test"].num_rows) == (result["train"], result["test"]) == (9, 1)
    assert loaded["train"][0]["id"] == json.loads((out / "train.jsonl").read_text().splitlines()[0])["id"]


def test_dataset_upload_takes_the_preview_and_drops_an_empty_test_split(generated, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(generated[0], out)
    (out / "preview.html").write_text("<html><body>rows</body></html>")
    (out / "test.jsonl").write_text("")
    plan = dataset_upload(out)
    assert {name for _, name in plan} == DATASET_FILES
    card = next(uploaded_bytes(src) for src, name in plan if name == "README.md").decode()
    assert front_matter(card)["configs"][0]["data_files"] == [{"split": "train", "path": "train.jsonl"}]

    (out / "train.jsonl").unlink()
    with pytest.raises(ConfigError, match="no train.jsonl"):
        dataset_upload(out)


def test_a_card_that_has_configs_keeps_them():
    card = "---\nconfigs:\n- config_name: mine\n  data_files: all.jsonl\n---\n# mine\n"
    assert dataset_card_for_hub(card, ["train", "test"]) == card
    bare = dataset_card_for_hub("# no front matter\n", ["train"])
    assert front_matter(bare)["configs"][0]["data_files"] == [{"split": "train", "path": "train.jsonl"}]
    assert bare.endswith("\n---\n# no front matter\n")


def test_push_dataset_sends_one_commit_to_a_dataset_repo(generated, monkeypatch, capfd, token):
    out, _ = generated
    hub = FakeHub(monkeypatch)
    before = snapshot(out)
    assert push_dataset(out, "my-org/raft-hotpot", private=True) is None
    assert hub.repos == [{"repo_id": "my-org/raft-hotpot", "repo_type": "dataset", "private": True, "exist_ok": True}]
    (commit,) = hub.commits
    assert commit["repo_id"] == "my-org/raft-hotpot" and commit["repo_type"] == "dataset"
    assert commit["paths"] == [name for _, name in dataset_upload(out)]
    assert "configs:" in commit["files"]["README.md"].decode()
    assert hub.tokens_seen == [TOKEN]  # huggingface_hub found the token itself: raft.hub never handles it
    printed = capfd.readouterr()
    assert printed.out.strip() == f"raft.generate: pushed {len(commit['paths'])} files to https://huggingface.co/datasets/my-org/raft-hotpot"
    assert printed.err == ""
    assert_no_token(printed.out, printed.err, folder=out)
    assert snapshot(out) == before

    hub = FakeHub(monkeypatch)
    assert push_dataset(out, "my-org/raft-hotpot") is None  # hub_private=false: a public repo is asked for
    assert [(r["repo_id"], r["private"]) for r in hub.repos] == [("my-org/raft-hotpot", False)]


def test_push_dataset_offline_is_one_line_and_changes_nothing(generated, offline, capfd, token):
    out, _ = generated
    before = snapshot(out)
    line = push_dataset(out, "my-org/raft-hotpot", private=True)
    expected = (f"raft.generate: push_to_hub=my-org/raft-hotpot failed (the Hub is offline here: HF_HUB_OFFLINE is set); "
                f"the local output is complete in {out}")
    assert line == expected
    printed = capfd.readouterr()
    assert printed.err.splitlines() == [expected] and printed.out == ""
    assert_no_token(printed.out, printed.err, folder=out)
    assert snapshot(out) == before


@pytest.mark.parametrize(("error", "reason"), [
    (lambda: _http_error(401), "HTTP 401: the Hub refused the token (check HF_TOKEN)"),
    (lambda: _http_error(403), "HTTP 403: the token may not create or write my-org/x (it needs write access to my-org)"),
    (lambda: _http_error(404), "HTTP 404: the Hub has no namespace or repo my-org/x for this token"),
    (lambda: _http_error(500), "HTTP 500: 500 Client Error for url https://huggingface.co/api/repos/create (token ***)"),
    (lambda: importlib.import_module(huggingface_hub.errors.Response.__module__).ConnectError("[Errno 111] refused"),
     "cannot reach the Hub: [Errno 111] refused"),
    (lambda: RuntimeError(f"something else\nwith {TOKEN} on a second line"), "RuntimeError: something else"),
], ids=["401", "403", "404", "500", "no-connection", "other"])
def test_refusals_are_one_line_without_the_token(generated, monkeypatch, capfd, token, error, reason):
    out, _ = generated
    FakeHub(monkeypatch, fail=error())
    before = snapshot(out)
    line = push_dataset(out, "my-org/x")
    assert line == f"raft.generate: push_to_hub=my-org/x failed ({reason}); the local output is complete in {out}"
    printed = capfd.readouterr()
    assert printed.err.splitlines() == [line]
    assert_no_token(printed.out, printed.err)
    assert snapshot(out) == before


# --------------------------------------------------------------------------------------------------
# raft.finetune: the model repos
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, tiny_model, raft_data):
    """``python -m raft.finetune recipe=tiny ... merge=true push_to_hub=my-org/raft-tiny`` (in-process),
    4 steps with evaluation, checkpoints and TensorBoard, with a token, offline: the push fails at the end."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    output = tmp_path_factory.mktemp("finetuned") / "out"
    args = ["recipe=tiny", f"model={tiny_model}", f"data={raft_data}", f"output={output}", "train.max_steps=4",
            "train.eval_steps=2", "train.save_steps=2", "train.report_to=tensorboard", "merge=true",
            "push_to_hub=my-org/raft-tiny", "hub_private=true"]
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", TOKEN)
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as e:
            run_cli("finetune", finetune.main, args)
    torch.set_num_threads(threads)
    return output, e.value.code, stdout.getvalue(), stderr.getvalue()


@pytest.mark.slow
def test_finetune_push_offline_exits_1_after_a_complete_output(finetuned):
    output, code, out, err = finetuned
    assert code == 1
    lines = [line for line in re.split(r"[\r\n]", out + err) if "push_to_hub" in line]
    assert lines == [f"raft.finetune: push_to_hub=my-org/raft-tiny failed (the Hub is offline here: HF_HUB_OFFLINE is set); "
                     f"the local output is complete in {output}"]
    assert err.rstrip().endswith(lines[0])  # the last thing said
    for name in (*ADAPTER_FILES, "merged/config.json", "merged/model.safetensors", "merged/README.md"):
        assert (output / name).is_file(), name
    assert json.loads((output / finetune.SUMMARY_FILE).read_text())["merged"] == str(output / "merged")
    assert_no_token(out, err, folder=output)


@pytest.mark.slow
def test_model_upload_is_the_adapter_and_its_run_never_checkpoints(finetuned):
    output = finetuned[0]
    assert list(output.glob("checkpoint-*")) and (output / "training_args.bin").is_file()  # they exist locally
    plan = model_upload(output)
    names = [name for _, name in plan]
    events = [n for n in names if n.startswith("runs/")]
    assert len(events) == 1 and re.fullmatch(r"runs/[^/]+/events\.out\.tfevents\..+", events[0])
    assert len(names) == len(set(names)) and set(names) - set(events) == ADAPTER_FILES
    assert all(src == output / name for src, name in plan)

    card = (output / "README.md").read_text()
    meta = front_matter(card)
    assert meta["library_name"] == "peft" and meta["pipeline_tag"] == "text-generation"
    assert meta["base_model"] == json.loads((output / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert "raft" in meta["tags"] and "recipe `tiny`" in card and "mean train loss" in card and "last eval loss" in card
    assert "](loss.png)" in card and 'from_pretrained("my-org/raft-tiny")' in card and "my-org/raft-tiny-merged" in card


@pytest.mark.slow
def test_merged_upload_is_the_merged_model_with_its_card(finetuned):
    output = finetuned[0]
    plan = model_upload(output, merged=True)
    names = {name for _, name in plan}
    merged = {p.name for p in (output / "merged").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= merged
    assert names == merged | {"recipe.yaml", "train_summary.json", "loss.png"}
    card = (output / "merged" / "README.md").read_text()
    meta = front_matter(card)
    assert meta["library_name"] == "transformers" and "merged" in meta["tags"]
    assert meta["base_model"] == front_matter((output / "README.md").read_text())["base_model"]
    assert "my-org/raft-tiny" in card and "bfloat16" in card


@pytest.mark.slow
def test_push_model_sends_the_adapter_and_the_merged_model(finetuned, monkeypatch, capfd, token):
    output = finetuned[0]
    hub = FakeHub(monkeypatch)
    before = snapshot(output)
    assert push_model(output, "my-org/raft-tiny", private=True, merged=True) is None
    assert [(r["repo_id"], r["repo_type"], r["private"], r["exist_ok"]) for r in hub.repos] == [
        ("my-org/raft-tiny", "model", True, True), ("my-org/raft-tiny-merged", "model", True, True)]
    adapter, merged = hub.commits
    assert (adapter["repo_id"], adapter["repo_type"], merged["repo_id"]) == ("my-org/raft-tiny", "model", "my-org/raft-tiny-merged")
    assert adapter["paths"] == [n for _, n in model_upload(output)]
    assert merged["paths"] == [n for _, n in model_upload(output, merged=True)]
    assert not any("checkpoint-" in p for p in adapter["paths"] + merged["paths"])
    assert adapter["files"]["adapter_model.safetensors"] == (output / "adapter_model.safetensors").read_bytes()
    printed = capfd.readouterr()
    assert printed.out.splitlines() == [
        f"raft.finetune: pushed the adapter ({len(adapter['paths'])} files) to https://huggingface.co/my-org/raft-tiny",
        f"raft.finetune: pushed the merged model ({len(merged['paths'])} files) to https://huggingface.co/my-org/raft-tiny-merged"]
    assert_no_token(printed.out, printed.err, folder=output)
    assert snapshot(output) == before

    hub = FakeHub(monkeypatch)
    assert push_model(output, "my-org/raft-tiny") is None  # merge=false: the adapter only, a public repo
    assert [(r["repo_id"], r["private"]) for r in hub.repos] == [("my-org/raft-tiny", False)]


@pytest.mark.slow
def test_push_model_offline_changes_nothing(finetuned, offline, capfd, token):
    output = finetuned[0]
    before = snapshot(output)
    line = push_model(output, "my-org/raft-tiny", merged=True)
    assert line and line.startswith("raft.finetune: push_to_hub=my-org/raft-tiny failed (the Hub is offline")
    assert capfd.readouterr().err.splitlines() == [line]
    assert snapshot(output) == before


# --------------------------------------------------------------------------------------------------
# check_push: at start, one line
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_ID_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    assert huggingface_hub.get_token() is None


@pytest.mark.parametrize("repo", ["no-namespace", "a/b/c", "my org/x", "-org/x", "org/x.", "org/" + "n" * 97, ""])
def test_check_push_refuses_what_is_no_repo_id(repo, token):
    with pytest.raises(ConfigError) as e:
        check_push(repo)
    assert str(e.value).startswith(f"push_to_hub={repo!r}: not a Hub repo id; give ORG/NAME") and "\n" not in str(e.value)


def test_check_push_needs_room_for_merged_and_a_token(no_token, monkeypatch):
    fits = "org/" + "n" * 90
    check_push(fits, need_token=False)
    with pytest.raises(ConfigError, match="with -merged added for merge=true"):
        check_push(fits, merged=True, need_token=False)
    with pytest.raises(ConfigError) as e:
        check_push("my-org/raft-tiny", where="push_to_hub")
    assert str(e.value) == ("push_to_hub=my-org/raft-tiny needs a Hugging Face token that may write to it: "
                            "set HF_TOKEN (or run hf auth login) and run again")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    check_push("my-org/raft-tiny", merged=True)


def test_finetune_without_a_token_stops_before_loading_anything(no_token, monkeypatch, capsys, tiny_model, tmp_path):
    train = importlib.import_module("raft.finetune.train")
    monkeypatch.setattr(train, "load_checked_data", lambda cfg: pytest.fail("data loaded before check_push"))
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        run_cli("finetune", finetune.main, ["recipe=tiny", f"model={tiny_model}", f"output={tmp_path / 'out'}",
                                            "push_to_hub=my-org/raft-tiny"])
    assert e.value.code == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == ["raft.finetune: error: push_to_hub=my-org/raft-tiny needs a Hugging Face token that may write to it: "
                   "set HF_TOKEN (or run hf auth login) and run again"]
    assert not (tmp_path / "out").exists()
    # a dry run loads nothing and checks the repo id only
    cfg = load_config("finetune", ["recipe=tiny", f"model={tiny_model}", "dry_run=true", "push_to_hub=my-org/raft-tiny"])
    assert finetune.main(cfg) is None


def test_a_bad_repo_id_at_the_command_line_is_exit_2_and_one_line(tiny_model, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_TOKEN": TOKEN,
           "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-m", "raft.finetune", "recipe=tiny", f"model={tiny_model}",
                           f"output={tmp_path / 'out'}", "push_to_hub=my org/raft", "merge=true"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["raft.finetune: error: push_to_hub='my org/raft': not a Hub repo id; give ORG/NAME "
                                        "(letters, digits, '-', '_', '.'; at most 96 characters, with -merged added for merge=true)"]
    assert_no_token(proc.stdout, proc.stderr)
    assert not (tmp_path / "out").exists()


def test_the_model_card_names_a_hub_dataset_only(tmp_path, monkeypatch):
    from raft.finetune.outputs import _datasets_line

    assert _datasets_line("my-org/raft-hotpot") == "datasets: [my-org/raft-hotpot]\n"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "outputs" / "raft_data").mkdir(parents=True)  # the default data=, a local folder
    assert _datasets_line("outputs/raft_data") == "" and _datasets_line(str(tmp_path / "outputs" / "raft_data")) == ""


# --------------------------------------------------------------------------------------------------
# raft.generate push_to_hub=: the command's own path
# --------------------------------------------------------------------------------------------------


def test_generate_without_a_token_stops_before_the_teacher_is_asked(tmp_path, teacher, shared_data, no_token):
    with pytest.raises(ConfigError, match="push_to_hub=my-org/raft-data needs a Hugging Face token"):
        generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=4", "push_to_hub=my-org/raft-data"), progress=False)
    assert teacher.stats.requests == 0 and not (tmp_path / "out").exists()
    # a dry run calls nothing and uploads nothing: the repo id is still checked, no token needed
    counts = generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=4", "dry_run=true",
                                      "push_to_hub=my-org/raft-data"), progress=False)
    assert counts["calls"] == 8 and teacher.stats.requests == 0
    with pytest.raises(ConfigError, match="not a Hub repo id"):
        generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "dry_run=true", "push_to_hub=raft-data"), progress=False)


def test_generate_push_offline_exits_1_after_a_complete_output(tmp_path, teacher, shared_data, token, offline, capfd):
    with pytest.raises(SystemExit) as e:
        generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=4", "push_to_hub=my-org/raft-data",
                                 "hub_private=true"), progress=False)
    assert e.value.code == 1
    out = tmp_path / "out"
    captured = capfd.readouterr()
    line = [x for x in captured.err.splitlines() if "push_to_hub" in x]
    assert line == [f"raft.generate: push_to_hub=my-org/raft-data failed (the Hub is offline here: HF_HUB_OFFLINE is set); "
                    f"the local output is complete in {out}"]
    assert all((out / f).exists() for f in ("train.jsonl", "test.jsonl", "dataset", "README.md", "preview.html"))
    assert_no_token(captured.out, captured.err, folder=out)


def test_generate_push_sends_the_finished_folder(tmp_path, teacher, shared_data, token, monkeypatch, capfd):
    hub = FakeHub(monkeypatch)
    generate.main(hotpot_cfg(tmp_path, teacher, shared_data, "limit=4", "push_to_hub=my-org/raft-data"), progress=False)
    (repo,) = hub.repos
    (commit,) = hub.commits
    assert (repo["repo_id"], repo["repo_type"], repo["private"]) == ("my-org/raft-data", "dataset", False)
    assert set(commit["paths"]) == DATASET_FILES
    assert commit["files"]["preview.html"] == (tmp_path / "out" / "preview.html").read_bytes()
    assert "raft.generate: pushed 7 files to https://huggingface.co/datasets/my-org/raft-data" in capfd.readouterr().out
