"""Generation on Ray (raft.teacher.ray_backend): ray_http against two local teacher servers on a local Ray
instance (2 CPUs, no cluster), the ray_vllm waves with a stand-in engine, and the vLLM processor config."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from raft import generate
from raft.config import ConfigError, TeacherConfig, load_config
from raft.generate import command
from raft.prompts import question_messages
from raft.store import Store
from raft.teacher import TeacherError, TeacherRejected, TeacherUnavailable, make_teacher
from raft.testing import TeacherBehaviour, TeacherServer

REPO = Path(__file__).resolve().parent.parent
HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray not installed: pip install -e '.[ray]'")
OUTPUTS = ("train.jsonl", "test.jsonl", "rejects.jsonl")
FAST = ["teacher.retry_backoff=0.01", "teacher.retry_max_delay=0.05", "teacher.model=fake"]


def _dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray instance for the module (2 CPUs, no dashboard, a short temp dir: Unix socket paths)."""
    if not HAVE_RAY:
        pytest.skip("ray not installed: pip install -e '.[ray]'")
    import ray

    temp = tempfile.mkdtemp(prefix="r", dir="/tmp")
    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def servers():
    with TeacherServer() as a, TeacherServer() as b:
        yield a, b


@pytest.fixture
def two(servers):
    for s in servers:
        s.reset()
    yield servers
    for s in servers:
        s.reset()


@pytest.fixture(scope="module")
def docs_args(tiny_model, shared_data) -> list[str]:
    """A small docs recipe: 10 chunks (20 calls); the answer budget rejects some rows as too_long."""
    return ["recipe=docs", f"input={shared_data / 'docs'}", f"tokenizer={tiny_model}", "chunk_size=128", "limit=10",
            "max_answer_tokens=120", *FAST]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, servers, docs_args) -> Path:
    """The openai backend's run of docs_args against one server: what every Ray run must reproduce."""
    out = tmp_path_factory.mktemp("reference")
    servers[0].reset()
    result = generate.main(load_config("generate", [*docs_args, f"output={out}", f"teacher.base_url={servers[0].base_url}"]), progress=False)
    assert result["accepted"] > 0 and result["rejected"] and result["calls_new"] == 20
    return out


def _same_rows(out: Path, reference: Path) -> None:
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name


def _ray_http(docs_args, out: Path, urls: list[str], *args: str) -> list[str]:
    return [*docs_args, f"output={out}", "teacher.backend=ray_http", f"teacher.base_url=[{','.join(urls)}]", *args]


# ------------------------------------------------------------------------------------------ settings, errors


def test_base_url_may_be_a_list_and_the_openai_backend_takes_one():
    from raft.teacher.ray_backend import endpoints

    cfg = load_config("generate", ["teacher.base_url=[http://a:8000/v1,http://b:8000/v1]", "teacher.ray.workers=3",
                                   "teacher.ray.engine_kwargs.gpu_memory_utilization=0.9"])
    assert endpoints(cfg.teacher) == ["http://a:8000/v1", "http://b:8000/v1"]
    assert cfg.teacher.ray.workers == 3 and cfg.teacher.ray.engine_kwargs == {"gpu_memory_utilization": 0.9}
    assert endpoints(TeacherConfig(base_url="http://a/v1, http://b/v1")) == ["http://a/v1", "http://b/v1"]
    with pytest.raises(ConfigError, match="lists an endpoint twice"):
        endpoints(TeacherConfig(base_url=["http://a/v1", "http://a/v1"]))
    with pytest.raises(ConfigError, match="lists 2 endpoints; the openai backend talks to one: use teacher.backend=ray_http"):
        make_teacher(cfg.teacher)
    one = make_teacher(TeacherConfig(base_url=["http://127.0.0.1:1/v1"]))
    assert one.cfg.base_url == "http://127.0.0.1:1/v1"
    with pytest.raises(ConfigError, match="teacher.ray.workers=0 must be at least 1"):
        make_teacher(TeacherConfig(backend="ray_http", ray=type(cfg.teacher.ray)(workers=0)))
    with pytest.raises(TeacherError, match="not one of openai, vllm, transformers, ray_http, ray_vllm"):
        make_teacher(TeacherConfig(backend="ray"))


def test_without_ray_one_line_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    for backend in ("ray_http", "ray_vllm"):
        with pytest.raises(TeacherError, match=r"needs ray, which is not installed: pip install -e '\.\[ray\]'"):
            from raft.teacher.ray_backend import connect

            connect(TeacherConfig(backend=backend))


@needs_ray
def test_unreachable_ray_address_is_one_line_and_exit_2(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    address = _dead_url().split("//")[1].split("/")[0]
    proc = subprocess.run([sys.executable, "-m", "raft.generate", "recipe=docs", "input=raft/demo", f"output={tmp_path / 'o'}",
                           "teacher.backend=ray_http", f"teacher.ray.address={address}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(err) == 1, proc.stderr
    assert f"teacher.ray.address={address} cannot be reached" in err[0] and "ray start --head" in err[0]


# ------------------------------------------------------------------------------------------ ray_http


@needs_ray
@pytest.mark.slow
def test_ray_http_rows_equal_the_openai_backends(ray_local, two, docs_args, reference, tmp_path):
    out = tmp_path / "ray"
    result = generate.main(load_config("generate", _ray_http(docs_args, out, [s.base_url for s in two], "teacher.concurrency=4")),
                           progress=False)
    _same_rows(out, reference)
    assert result["calls_new"] == 20 == sum(s.stats.requests for s in two)
    assert all(s.stats.completed > 0 for s in two)  # both endpoints served
    assert "(ray_http, 2 workers)" in (out / "README.md").read_text()


@needs_ray
@pytest.mark.slow
def test_ray_http_completes_with_one_endpoint_failing_a_while_and_one_down(ray_local, two, docs_args, reference, tmp_path, capsys,
                                                                            monkeypatch):
    """A answers 429 then 500 for a while (some requests run out of retries there and move to B); the
    third endpoint accepts no connection at all. Every row is made, and made as the reference."""
    a, b = two
    a.reset(TeacherBehaviour(fail_first=12, fail_status=429))
    out, made = tmp_path / "ray", []
    monkeypatch.setattr(command, "make_teacher", lambda cfg: made.append(make_teacher(cfg)) or made[-1])
    urls = [a.base_url, _dead_url(), b.base_url]
    settings = ("teacher.max_retries=2", "teacher.concurrency=3")
    generate.main(load_config("generate", _ray_http(docs_args, out, urls, *settings)), progress=False)
    _same_rows(out, reference)
    assert a.stats.failed >= 9 and b.stats.completed > 0  # 3 requests in flight at A ran out of their 3 tries
    assert made[0].failovers >= 1  # some requests ran out of retries at A and were asked at B
    assert "accepts no connection" in capsys.readouterr().err
    b.reset(TeacherBehaviour(fail_first=10, fail_status=500))  # now B fails a while, A is well
    a.reset()
    generate.main(load_config("generate", _ray_http(docs_args, tmp_path / "again", urls, *settings)), progress=False)
    _same_rows(tmp_path / "again", reference)
    assert b.stats.failed >= 9 and made[1].failovers >= 1


@needs_ray
def test_ray_http_refusals_are_per_request_and_endpoints_that_all_give_up_stop(ray_local, two):
    a, b = two
    cfg = TeacherConfig(backend="ray_http", base_url=[a.base_url, b.base_url], model="fake", retry_backoff=0.01,
                        retry_max_delay=0.05, max_retries=1, max_refusals=0)

    async def ask_all(teacher, n):
        try:
            return await asyncio.gather(*(teacher.ask(question_messages(f"chunk {i} of words", 1)) for i in range(n)),
                                        return_exceptions=True)
        finally:
            await teacher.aclose()

    a.reset(TeacherBehaviour(fail_always=True, fail_status=400))
    b.reset(TeacherBehaviour(fail_always=True, fail_status=400))
    replies = asyncio.run(ask_all(make_teacher(cfg), 6))
    assert all(isinstance(r, TeacherRejected) and "400" in str(r) for r in replies)
    assert a.stats.requests + b.stats.requests == 6  # a refusal is not asked again elsewhere
    a.reset(TeacherBehaviour(fail_always=True, fail_status=500))
    b.reset(TeacherBehaviour(fail_always=True, fail_status=503))
    replies = asyncio.run(ask_all(make_teacher(cfg), 2))
    assert all(isinstance(r, TeacherUnavailable) for r in replies)
    message = str(replies[0])
    assert message.startswith("every teacher endpoint gave up: teacher at") and "\n" not in message
    assert "failed after 1 retries: 500" in message and "failed after 1 retries: 503" in message


@needs_ray
@pytest.mark.slow
def test_ray_http_survives_a_worker_killed_mid_run(ray_local, two, docs_args, reference, tmp_path, monkeypatch):
    for s in two:
        s.reset(TeacherBehaviour(latency=0.1))
    out, made = tmp_path / "ray", []

    def teacher_with_a_killer(cfg):
        teacher = make_teacher(cfg)
        made.append(teacher)
        pid = teacher.worker_pids()[0]

        def kill_when_some_are_stored():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                store = out / "store.jsonl"
                if store.exists() and store.read_bytes().count(b"\n") >= 4:
                    os.kill(pid, signal.SIGKILL)
                    return
                time.sleep(0.01)

        threading.Thread(target=kill_when_some_are_stored, daemon=True).start()
        return teacher

    monkeypatch.setattr(command, "make_teacher", teacher_with_a_killer)
    result = generate.main(load_config("generate", _ray_http(docs_args, out, [s.base_url for s in two], "teacher.concurrency=3")),
                           progress=False)
    _same_rows(out, reference)
    assert made[0].lost_workers >= 1 and result["calls_new"] == 20


@needs_ray
@pytest.mark.slow
def test_sigkill_of_the_driver_then_the_same_command_resumes(ray_local, two, docs_args, reference, tmp_path):
    """python -m raft.generate with ray_http (its own local Ray instance) killed with SIGKILL mid-run; the
    same command again asks only what was not stored and writes the reference rows."""
    for s in two:
        s.reset(TeacherBehaviour(latency=0.15))
    out = tmp_path / "killed"
    args = _ray_http(docs_args, out, [s.base_url for s in two], "teacher.concurrency=1", "teacher.ray.address=local",
                     "teacher.ray.num_cpus=2", "teacher.ray.workers=1")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "raft.generate", *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store, deadline = out / "store.jsonl", time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if store.exists() and store.read_bytes().count(b"\n") >= 6:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    time.sleep(2)  # the killed driver's Ray workers are reaped; a request they had sent has arrived
    stored = len(Store(out, readonly=True))
    assert 6 <= stored < 20 and not (out / "dataset").exists()
    for s in two:
        s.reset()
    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert sum(s.stats.requests for s in two) == 20 - stored  # no stored call asked again
    _same_rows(out, reference)


# ------------------------------------------------------------------------------------------ ray_vllm


def _vllm_cfg(**ray) -> TeacherConfig:
    cfg = load_config("generate", ["teacher.backend=ray_vllm", "teacher.ray.replicas=2", "teacher.ray.tensor_parallel_size=4",
                                   "teacher.ray.max_model_len=8192", "teacher.ray.batch_size=16", "teacher.seed=7"]).teacher
    for key, value in ray.items():
        setattr(cfg.ray, key, value)
    return cfg


@needs_ray
def test_vllm_settings_reach_the_engine_stage_ray_data_llm_builds(ray_local, tiny_model):
    """What Ray's own build_processor makes of our processor config (not the config echoed back): its
    stages, the engine stage's constructor arguments and scheduling, and per-request errors kept as rows."""
    from ray.data.llm import build_processor

    from raft.teacher.ray_vllm import processor_config

    cfg = _vllm_cfg(engine_kwargs={"gpu_memory_utilization": 0.85, "max_model_len": 4096}, accelerator_type="H100")
    cfg.model = str(tiny_model)  # build_processor reads the model's config and tokenizer (no hub here)
    processor = build_processor(processor_config(cfg))
    assert processor.list_stage_names() == ["ChatTemplateStage", "TokenizeStage", "vLLMEngineStage", "DetokenizeStage"]
    engine = processor.get_stage_by_name("vLLMEngineStage")
    made = engine.fn_constructor_kwargs
    assert made["model"] == str(tiny_model) and made["should_continue_on_error"] is True
    assert {k: made["engine_kwargs"][k] for k in ("tensor_parallel_size", "pipeline_parallel_size", "max_model_len",
                                                  "gpu_memory_utilization", "enable_prefix_caching")} == \
        {"tensor_parallel_size": 4, "pipeline_parallel_size": 1, "max_model_len": 4096,  # engine_kwargs win
         "gpu_memory_utilization": 0.85, "enable_prefix_caching": True}
    kwargs = engine.map_batches_kwargs  # 2 replicas, each a placement group of 4 GPUs (Ray's executor for TP 4)
    assert made["engine_kwargs"]["distributed_executor_backend"] == "ray" and kwargs["num_gpus"] == 0
    assert kwargs["compute"].max_size == 2 and kwargs["accelerator_type"] == "H100"
    assert made["batch_size"] == 16
    one = _vllm_cfg(replicas=1, tensor_parallel_size=1, max_model_len=None)
    one.model = str(tiny_model)
    single = build_processor(processor_config(one)).get_stage_by_name("vLLMEngineStage")
    assert single.map_batches_kwargs["num_gpus"] == 1 and "max_model_len" not in single.fn_constructor_kwargs["engine_kwargs"]


def test_ray_and_vllm_floors_are_checked_at_start_up(monkeypatch):
    """Ray < 2.54 lacks should_continue_on_error (or reads only guided_decoding); vLLM < 0.15 is older than
    what Ray 2.54's ray[llm] needs: each refused in one line before anything starts; pyproject says the same."""
    from raft.teacher import ray_vllm

    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'ray = ["ray[data]>={ray_vllm.RAY_FLOOR}"]' in pyproject and f'vllm = ["vllm>={ray_vllm.VLLM_FLOOR}"]' in pyproject
    if not HAVE_RAY:
        pytest.skip("ray not installed: pip install -e '.[ray]'")
    import ray
    from ray.data import llm

    ray_vllm.check_versions()  # the installed Ray passes
    monkeypatch.setattr(ray, "__version__", "2.53.0")  # has should_continue_on_error, sends guided_decoding only
    with pytest.raises(TeacherError) as e:
        make_teacher(_vllm_cfg())
    assert "\n" not in str(e.value) and str(e.value).startswith("teacher.backend=ray_vllm needs Ray >= 2.54")
    assert "this is Ray 2.53.0" in str(e.value) and "pip install -U 'ray[data]>=2.54'" in str(e.value)

    monkeypatch.setattr(ray, "__version__", "2.60.0")

    class OldConfig:  # Ray 2.44-2.52: no should_continue_on_error field
        model_fields = {k: v for k, v in llm.vLLMEngineProcessorConfig.model_fields.items() if k != "should_continue_on_error"}

    monkeypatch.setattr(llm, "vLLMEngineProcessorConfig", OldConfig)
    with pytest.raises(TeacherError, match=r"needs Ray >= 2\.54 \(Ray Data LLM's should_continue_on_error"):
        ray_vllm.check_versions()
    monkeypatch.undo()

    monkeypatch.setattr("importlib.metadata.version", lambda name: "0.8.5" if name == "vllm" else "9")
    with pytest.raises(TeacherError, match=r"needs vLLM >= 0\.15 .*this is vLLM 0\.8\.5"):
        ray_vllm.check_versions()


def test_vllm_preprocess_and_postprocess_on_plain_rows():
    from raft.teacher.ray_vllm import ERROR, postprocess, preprocess, reply_of, request_row, sampling

    cfg = _vllm_cfg()
    messages = question_messages("Some chunk of text.", 1)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    plain = preprocess(request_row(3, messages, None), params=sampling(cfg))
    assert plain == {"_raft_i": 3, "messages": messages, "sampling_params": {"temperature": 0.0, "max_tokens": 1024, "seed": 7},
                     "_raft_max_tokens": 1024, "_raft_max_model_len": 0}
    guided = preprocess(request_row(4, messages, rf), params=sampling(cfg))
    assert json.loads(guided["sampling_params"]["structured_outputs"]["json"]) == schema
    cfg.seed = None
    assert "seed" not in preprocess(request_row(5, messages, None), params=sampling(cfg))["sampling_params"]
    engine_row = {**plain, "generated_text": "1. A question?", "num_input_tokens": 40, "num_generated_tokens": 5}
    out = postprocess(engine_row)
    assert out == {"_raft_i": 3, "text": "1. A question?", "prompt_tokens": 40, "completion_tokens": 5, "finish_reason": "stop"}
    assert reply_of(out).text == "1. A question?"
    assert postprocess({**engine_row, "num_generated_tokens": 1024})["finish_reason"] == "length"
    # cut by the context: 8,150 prompt tokens + 42 new ones fill max_model_len 8192 long before max_tokens
    long = preprocess(request_row(6, messages, None), params=sampling(cfg), max_model_len=8192)
    assert long["_raft_max_model_len"] == 8192
    cut = {**long, "generated_text": "The answer is", "num_input_tokens": 8150, "num_generated_tokens": 42}
    assert postprocess(cut)["finish_reason"] == "length"
    assert postprocess({**cut, "num_generated_tokens": 41})["finish_reason"] == "stop"
    assert postprocess({**cut, "finish_reason": "stop"})["finish_reason"] == "stop"  # an engine's own reason wins
    assert reply_of(postprocess(cut)).finish_reason == "length"  # -> the truncated reject
    refused = reply_of({"_raft_i": 3, ERROR: "prompt of 9000 tokens is longer than max_model_len 8192"})
    assert isinstance(refused, TeacherRejected) and "max_model_len" in str(refused)


def test_vllm_missing_is_one_line():
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    with pytest.raises(TeacherError, match=r"ray_vllm needs vllm, which is not installed: pip install vllm on the GPU nodes"):
        make_teacher(_vllm_cfg())


@needs_ray
@pytest.mark.slow
def test_ray_vllm_waves_with_a_stand_in_engine_give_the_reference_rows(ray_local, docs_args, reference, tmp_path, monkeypatch):
    """The ray_vllm path on CPU: each wave is a Ray Dataset through preprocess, an engine stand-in that
    answers as the local teacher server does, and postprocess; the rows are the openai backend's."""
    from raft.teacher.ray_vllm import RayVLLMTeacher, postprocess, preprocess, sampling

    def stand_in(cfg):
        def engine(row):
            from raft.testing.server import TeacherBehaviour, TeacherServer

            server = TeacherServer.__new__(TeacherServer)  # only its reply logic
            server.behaviour = TeacherBehaviour()
            messages = [dict(m) for m in row["messages"]]
            text = server.reply(messages)[1]
            prompt = " ".join(str(m.get("content", "")) for m in messages)
            return {**row, "generated_text": text, "num_input_tokens": len(prompt.split()), "num_generated_tokens": len(text.split())}

        def processor(data):
            return data.map(functools.partial(preprocess, params=sampling(cfg))).map(engine).map(postprocess)

        teachers.append(RayVLLMTeacher(cfg, processor=processor))
        return teachers[-1]

    teachers = []
    monkeypatch.setattr(command, "make_teacher", stand_in)
    out = tmp_path / "vllm"
    result = generate.main(load_config("generate", [*docs_args, f"output={out}", "teacher.backend=ray_vllm"]), progress=False)
    _same_rows(out, reference)
    assert result["calls_new"] == 20 and teachers[0].waves == 2  # all questions, then all answers


@needs_ray
@pytest.mark.slow
def test_ray_vllm_through_ray_data_llms_own_stages_with_a_cpu_engine(ray_local, tiny_model, tmp_path):
    """The processor ray_vllm builds with Ray's build_processor, run as it is: Ray's chat-template,
    tokenize and detokenize stages on the model's own tokenizer, Ray's engine stage with its per-request
    error handling; only the vLLM engine inside that stage is a CPU stand-in (vLLM has no CPU wheel here),
    which holds a request to vLLM's limits: a prompt longer than max_model_len fails, a reply stops at
    max_tokens or where prompt plus reply fill max_model_len. What it was sent is written down and checked."""
    from ray.llm._internal.batch.stages.base import StatefulStageUDF
    from ray.llm._internal.batch.stages.vllm_engine_stage import vLLMEngineStageUDF
    from transformers import AutoTokenizer

    from raft.teacher import ray_vllm

    seen = tmp_path / "engine_requests.jsonl"
    cfg = _vllm_cfg(replicas=1, tensor_parallel_size=1, max_model_len=64, batch_size=8)
    cfg.model, cfg.max_tokens = str(tiny_model), 48
    config = ray_vllm.processor_config(cfg)
    for stage in ("chat_template_stage", "tokenize_stage", "detokenize_stage"):
        setattr(config, stage, {"num_cpus": 0.1})  # four actor pools on a 2-CPU Ray

    class CpuEngine(vLLMEngineStageUDF):  # Ray's UDF (udf(), error rows); its vLLM engine replaced
        def __init__(self, data_column, expected_input_keys, **kwargs):
            StatefulStageUDF.__init__(self, data_column, expected_input_keys)
            self.should_continue_on_error = kwargs["should_continue_on_error"]
            self.engine_kwargs = {"disable_log_stats": True}
            tokenizer, limit, idx = AutoTokenizer.from_pretrained(kwargs["model"]), kwargs["engine_kwargs"]["max_model_len"], self.IDX_IN_BATCH_COLUMN

            class Engine:
                async def generate_async(self, row):
                    prompt, params = list(row["tokenized_prompt"]), dict(row["sampling_params"])
                    with open(seen, "a") as f:
                        f.write(json.dumps({"prompt": row["prompt"], "tokens": len(prompt), "params": params}) + "\n")
                    if len(prompt) > limit:
                        raise ValueError(f"The decoder prompt (length {len(prompt)}) is longer than the maximum model length of {limit}.")
                    user = row["messages"][-1]["content"]
                    text = "Paris is the capital." if "capital" in user else '{"a": "b"}' if "json" in user else "on and on " * 100
                    budget = min(params["max_tokens"], limit - len(prompt))
                    tokens = tokenizer(text, add_special_tokens=False)["input_ids"][:budget]
                    request = SimpleNamespace(request_id=0, idx_in_batch=row[idx], params=params)
                    return request, {"prompt": row["prompt"], "num_input_tokens": len(prompt), "generated_tokens": tokens,
                                     "num_generated_tokens": len(tokens)}, 0.0

                def shutdown(self):
                    pass

            self.llm = Engine()

    processor = ray_vllm.build(cfg, config)
    engine = processor.get_stage_by_name("vLLMEngineStage")
    engine.fn = CpuEngine
    engine.map_batches_kwargs.update(num_gpus=0, num_cpus=0.1)
    teacher = ray_vllm.RayVLLMTeacher(cfg, processor=processor)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    asks = [([{"role": "user", "content": "What is the capital?"}], None),
            ([{"role": "user", "content": "Tell me everything."}], None),
            ([{"role": "user", "content": "Answer in json."}], {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}),
            ([{"role": "user", "content": "word " * 200}], None)]

    async def ask_all():
        try:
            return await asyncio.gather(*(teacher.ask(m, rf) for m, rf in asks), return_exceptions=True)
        finally:
            await teacher.aclose()

    short, long, guided, too_long = asyncio.run(ask_all())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    requests = {json.loads(line)["prompt"]: json.loads(line) for line in seen.read_text().splitlines()}
    for (messages, _), reply in zip(asks[:3], (short, long, guided), strict=True):
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert prompt in requests, prompt  # Ray's chat-template stage applied the model's own template
        assert reply.prompt_tokens == requests[prompt]["tokens"] == len(tokenizer(prompt)["input_ids"])
        assert requests[prompt]["params"]["max_tokens"] == 48 and requests[prompt]["params"]["seed"] == 7
    assert (short.text, short.finish_reason) == ("Paris is the capital.", "stop")  # Ray's detokenize stage
    assert long.finish_reason == "length" and long.prompt_tokens + long.completion_tokens == 64 < long.prompt_tokens + 48
    assert guided.text == '{"a": "b"}' and guided.finish_reason == "stop"
    sent = requests[tokenizer.apply_chat_template(asks[2][0], tokenize=False, add_generation_prompt=True)]["params"]
    assert json.loads(sent["structured_outputs"]["json"]) == schema  # the key Ray >= 2.54 hands vLLM
    assert isinstance(too_long, TeacherRejected) and "longer than the maximum model length of 64" in str(too_long)
    assert teacher.waves == 1


@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vllm not installed (needs GPUs)")
def test_vllm_processor_runs_on_gpus(ray_local):
    from raft.teacher.ray_vllm import RayVLLMTeacher

    cfg = _vllm_cfg(replicas=1, tensor_parallel_size=1, max_model_len=2048)
    cfg.model = os.environ.get("RAFT_TEST_VLLM_MODEL", "Qwen/Qwen2.5-0.5B-Instruct")
    cfg.max_tokens = 32
    teacher = RayVLLMTeacher(cfg)
    replies = asyncio.run(teacher.complete([question_messages("The ferry leaves at 06:40 every day.", 1)] * 2))
    assert all(r.text and r.completion_tokens > 0 for r in replies)


def test_context_length_is_the_engines_or_none_when_it_cannot_be_known(tmp_path):
    """What a reply is measured against for `truncated`: the configured max_model_len, else the model's
    max_position_embeddings (also under text_config); with YaRN-style rope scaling vLLM's context is
    longer than that, so it is unknown (None) rather than guessed short."""
    from transformers import LlamaConfig

    from raft.teacher.ray_vllm import context_length

    def teacher(config, *args):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        config.save_pretrained(folder)
        return load_config("generate", [f"teacher.model={folder}", *args]).teacher

    plain = LlamaConfig(max_position_embeddings=2048, hidden_size=64, num_hidden_layers=1, num_attention_heads=2)
    assert context_length(teacher(plain)) == 2048
    assert context_length(teacher(plain, "teacher.ray.max_model_len=1024")) == 1024
    yarn = LlamaConfig(max_position_embeddings=2048, hidden_size=64, num_hidden_layers=1, num_attention_heads=2,
                       rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 2048})
    assert context_length(teacher(yarn)) is None
    assert context_length(load_config("generate", [f"teacher.model={tmp_path / 'nothing'}"]).teacher) is None
