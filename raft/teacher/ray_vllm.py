"""``teacher.backend=ray_vllm``: the teacher is vLLM on a Ray cluster's GPUs, driven by Ray Data's LLM
batch API (``ray.data.llm``): ``teacher.ray.replicas`` engine replicas of ``tensor_parallel_size x
pipeline_parallel_size`` GPUs each.

    pip install -e ".[ray]" vllm                 # vllm on the GPU nodes
    python -m raft.generate recipe=hotpot_ray    # Llama-3-70B-Instruct, 2 replicas x 4 GPUs

The pipeline's concurrent calls are gathered (every work item's next call: with ``parallelism``
above the number of items that is one wave per stage: all questions, then all answers; labels; IN2
QA) and each wave becomes one Ray Dataset of requests, processed by ``build_processor(
vLLMEngineProcessorConfig(...), preprocess, postprocess)``:

- ``preprocess`` turns a row (``messages`` and ``response_format`` as JSON text, so rows of one
  block share one Arrow schema) into the chat request: ``messages`` and ``sampling_params``
  (temperature, max_tokens, seed; a JSON schema as ``structured_outputs``: vLLM's guided decoding);
- ``postprocess`` keeps the reply text, the token counts and the finish reason. Ray Data LLM's output
  rows carry no finish reason (Ray 2.60: prompt, token ids, text and counts only), so it is derived as
  vLLM decides it: "length" when the reply used every one of ``max_tokens``, or when prompt plus reply
  reached the engine's context (``max_model_len``: vLLM stops a request there), else "stop"; a
  ``finish_reason`` column, should a later Ray carry one, is taken as it is.

Ray and vLLM versions: ``should_continue_on_error`` (per-request errors as rows) and
``sampling_params["structured_outputs"]`` (JSON schemas; Ray 2.53 read only ``guided_decoding`` and
then passed ``structured_outputs`` to ``SamplingParams`` twice) are both in Ray Data LLM from Ray 2.54,
whose ``ray[llm]`` requires vLLM 0.15. :func:`check_versions` refuses older ones at start-up, in one line.

Replies stream back to the driver as Ray Data finishes them, so each is stored as soon as it
arrives (a kill loses only the replies of the wave not yet back). A request the engine fails on
(``should_continue_on_error``: a prompt longer than ``max_model_len``) is refused for that
request only (``TeacherRejected``); a wave that fails as a whole (no GPUs, the model cannot load)
stops the run with ``TeacherUnavailable``. Engine replicas and their failures are Ray Data's
(actor restarts, task retries). Why a wave per Dataset: see ``raft.teacher.ray_backend``.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import sys
from typing import Any

from raft.config import TeacherConfig
from raft.teacher.base import (
    Messages,
    Reply,
    TeacherError,
    TeacherRejected,
    TeacherUnavailable,
    one_line,
)
from raft.teacher.local import BatchTeacher

INDEX = "_raft_i"  # the request's place in its wave (Ray Data does not keep the order)
MAX_TOKENS = "_raft_max_tokens"
MAX_MODEL_LEN = "_raft_max_model_len"  # the engine's context (0: not known)
ERROR = "__inference_error__"  # Ray Data LLM's column for a row the engine failed on
#: The oldest Ray whose Data LLM has both should_continue_on_error and sampling_params.structured_outputs,
#: and the vLLM its ``ray[llm]`` extra requires (pyproject.toml's floors; tests/test_ray.py checks they agree)
RAY_FLOOR = "2.54"
VLLM_FLOOR = "0.15"


def _older(version: str, floor: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) < Version(floor)
    except InvalidVersion:
        return False  # a build we cannot read: let it run


def check_versions() -> None:
    """Refuse, in one line, a Ray or vLLM that lacks what this backend sends (see the module docstring).
    Ray that is not installed is left to ``ray_backend.connect`` (its own one-line error)."""
    try:
        import ray
        from ray.data.llm import vLLMEngineProcessorConfig
    except ImportError:
        return
    fields = getattr(vLLMEngineProcessorConfig, "model_fields", {}) or {}
    if "should_continue_on_error" not in fields or _older(ray.__version__, RAY_FLOOR):
        raise TeacherError(
            f"teacher.backend=ray_vllm needs Ray >= {RAY_FLOOR} (Ray Data LLM's should_continue_on_error and "
            f"sampling_params.structured_outputs); this is Ray {ray.__version__}: pip install -U 'ray[data]>={RAY_FLOOR}' "
            "(or 'ray[llm]' on the GPU nodes, which brings the vLLM this Ray is built for)")
    from importlib.metadata import PackageNotFoundError, version

    try:
        vllm_version = version("vllm")
    except PackageNotFoundError:
        return  # RayVLLMTeacher says vllm is missing
    if _older(vllm_version, VLLM_FLOOR):
        raise TeacherError(
            f"teacher.backend=ray_vllm needs vLLM >= {VLLM_FLOOR} (StructuredOutputsParams, as Ray Data LLM "
            f"{RAY_FLOOR}+ sends it); this is vLLM {vllm_version}: pip install -U 'ray[llm]=={ray.__version__}'")


def context_length(cfg: TeacherConfig) -> int | None:
    """The engine's ``max_model_len``: ``teacher.ray.engine_kwargs`` (which wins, as in the processor
    config), ``teacher.ray.max_model_len``, else what vLLM derives it from, the model config's
    ``max_position_embeddings`` (None when that cannot be read)."""
    r = cfg.ray
    for value in ((r.engine_kwargs or {}).get("max_model_len"), r.max_model_len):
        if value:
            return int(value)
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(cfg.model)
    except Exception:  # noqa: BLE001 - offline, gated, not a transformers model: unknown
        return None
    config = getattr(config, "text_config", None) or config  # multimodal models keep it there
    rope = getattr(config, "rope_scaling", None) or getattr(config, "rope_parameters", None) or {}
    if isinstance(rope, dict) and rope.get("rope_type", rope.get("type", "default")) not in ("default", "llama3"):
        return None  # YaRN and the like: vLLM extends the context by the factor; unknown here, not guessed short
    value = getattr(config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def processor_config(cfg: TeacherConfig) -> Any:
    """The ``vLLMEngineProcessorConfig`` of ``teacher.*`` and ``teacher.ray.*``."""
    from ray.data.llm import vLLMEngineProcessorConfig

    r = cfg.ray
    engine = {
        "tensor_parallel_size": r.tensor_parallel_size,
        "pipeline_parallel_size": r.pipeline_parallel_size,
        "enable_prefix_caching": r.enable_prefix_caching,
    }
    if r.max_model_len:
        engine["max_model_len"] = r.max_model_len
    engine.update(r.engine_kwargs or {})
    kwargs: dict[str, Any] = {
        "model_source": cfg.model,
        "engine_kwargs": engine,
        "concurrency": r.replicas,
        "batch_size": r.batch_size,
        "should_continue_on_error": True,  # one bad request is that request's refusal, not the wave's end
    }
    if r.accelerator_type:
        kwargs["accelerator_type"] = r.accelerator_type
    if r.runtime_env:
        kwargs["runtime_env"] = dict(r.runtime_env)
    return vLLMEngineProcessorConfig(**kwargs)


def sampling(cfg: TeacherConfig) -> dict[str, Any]:
    """The sampling parameters every request of the run shares (a seed only when one is set)."""
    params: dict[str, Any] = {"temperature": cfg.temperature, "max_tokens": cfg.max_tokens}
    if cfg.seed is not None:
        params["seed"] = cfg.seed
    return params


def request_row(index: int, messages: Messages, response_format: dict | None) -> dict[str, Any]:
    return {INDEX: index, "messages": json.dumps(messages, ensure_ascii=False),
            "response_format": json.dumps(response_format, ensure_ascii=False) if response_format else ""}


def preprocess(row: dict[str, Any], params: dict[str, Any], max_model_len: int | None = None) -> dict[str, Any]:
    """A request row -> what the vLLM stages read: ``messages`` and ``sampling_params`` (and, for
    ``postprocess``, the limits the reply is held to)."""
    sampling_params = dict(params)
    if row.get("response_format"):
        schema = json.loads(row["response_format"]).get("json_schema", {}).get("schema", {})
        sampling_params["structured_outputs"] = {"json": json.dumps(schema)}  # text: one Arrow type for every schema
    return {INDEX: int(row[INDEX]), "messages": json.loads(row["messages"]), "sampling_params": sampling_params,
            MAX_TOKENS: int(params["max_tokens"]), MAX_MODEL_LEN: int(max_model_len or 0)}


def postprocess(row: dict[str, Any]) -> dict[str, Any]:
    """The engine's output row -> the reply's text, token counts and finish reason: the row's own
    ``finish_reason`` if it has one, else "length" when the reply used all of max_tokens or prompt and
    reply filled the context (vLLM stops there), else "stop"."""
    prompt = int(row.get("num_input_tokens") or 0)
    completion = int(row.get("num_generated_tokens") or 0)
    limit = int(row.get(MAX_TOKENS) or 0)
    context = int(row.get(MAX_MODEL_LEN) or 0)
    reason = row.get("finish_reason")
    if not (isinstance(reason, str) and reason):
        cut = (limit and completion >= limit) or (context and prompt + completion >= context)
        reason = "length" if cut else "stop"
    return {INDEX: int(row[INDEX]), "text": str(row.get("generated_text") or ""), "prompt_tokens": prompt,
            "completion_tokens": completion, "finish_reason": reason}


def reply_of(row: dict[str, Any]) -> Reply | TeacherRejected:
    """What one output row means for its request: a reply, or the engine's refusal of it."""
    error = row.get(ERROR)
    if error:
        return TeacherRejected(one_line(error))
    return Reply(str(row["text"]), int(row["prompt_tokens"]), int(row["completion_tokens"]), str(row["finish_reason"]))


def build(cfg: TeacherConfig, config: Any = None) -> Any:
    """Ray Data LLM's processor for the settings: ``build_processor(vLLMEngineProcessorConfig, preprocess,
    postprocess)`` (``config``: that config, changed, in place of :func:`processor_config`'s; tests)."""
    from ray.data.llm import build_processor

    context = context_length(cfg)
    if context is None:
        print("ray_vllm: the model's context length is unknown (set teacher.ray.max_model_len): a reply cut at the "
              "context is told from a finished one only when it used all of max_tokens", file=sys.stderr)
    try:
        return build_processor(config if config is not None else processor_config(cfg),
                               preprocess=functools.partial(preprocess, params=sampling(cfg), max_model_len=context),
                               postprocess=postprocess)
    except Exception as e:  # noqa: BLE001 - a pydantic ValidationError, a model config that cannot be read
        raise TeacherError(f"teacher.backend=ray_vllm: the vLLM processor cannot be built ({one_line(e, 200)})") from None


class RayVLLMTeacher(BatchTeacher):  # its ask() queues requests; _run() sends each queued wave to Ray Data
    parallelism = 1 << 20  # every work item's next call in the same wave

    def __init__(self, cfg: TeacherConfig, processor: Any = None):
        """``processor``: a callable Dataset -> Dataset in place of the vLLM one (tests run the same
        waves on CPU with a stand-in engine); by default it is built from the settings."""
        self.cfg = cfg
        if processor is None:
            check_versions()
        if processor is None and importlib.util.find_spec("vllm") is None:
            raise TeacherError("teacher.backend=ray_vllm needs vllm, which is not installed: pip install vllm on the GPU nodes "
                               "(and pip install -e '.[ray]'), or serve the model with `vllm serve` and use teacher.backend=ray_http")
        from raft.teacher.ray_backend import connect

        self.ray, self._started = connect(cfg)
        r = cfg.ray
        self.name = (f"{cfg.model} (ray_vllm: {r.replicas} vLLM replicas x {r.tensor_parallel_size * r.pipeline_parallel_size} GPUs, "
                     "Ray Data LLM)")
        if processor is None:
            processor = build(cfg)
        self.processor = processor
        BatchTeacher.__init__(self)  # the queue of asked requests
        self.waves = 0

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                await asyncio.sleep(0)  # let every coroutine that is ready queue its request first
                wave, self._pending = self._pending, []
                futures = [f for _, _, f in wave]
                try:
                    await asyncio.to_thread(self._wave, [(m, rf) for m, rf, _ in wave], futures, loop)
                except Exception as e:  # noqa: BLE001 - the whole wave failed: the run stops, what came back is stored
                    down = TeacherUnavailable(f"the ray_vllm wave of {len(wave)} requests failed: {one_line(e, 200)}")
                    for future in futures:
                        if not future.done():
                            future.set_exception(down)
        finally:
            self._runner = None

    def _wave(self, requests: list[tuple[Messages, dict | None]], futures: list[asyncio.Future], loop) -> None:
        """One Ray Dataset of requests through the processor; each reply is handed to its caller as it comes."""
        self.waves += 1
        data = self.ray.data.from_items([request_row(i, m, rf) for i, (m, rf) in enumerate(requests)])
        seen = set()
        for row in self.processor(data).iter_rows():
            index = int(row[INDEX])
            seen.add(index)
            loop.call_soon_threadsafe(_settle, futures[index], reply_of(row))
        missing = len(requests) - len(seen)
        if missing:
            raise RuntimeError(f"{missing} requests came back without a reply")

    async def aclose(self) -> None:
        if self._started:
            self.ray.shutdown()
            self._started = False


def _settle(future: asyncio.Future, outcome: Reply | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
