"""Every setting of every command: its type, its default and a one-line description.

This is the only place defaults live; recipes (``recipes/*.yaml``) say only what differs, and
``raft.config`` loads them, applies ``key=value`` overrides and checks every key against these
dataclasses. ``--help`` prints the descriptions. A kind of data (``raft.kinds``) has its own section
of ``GenerateConfig`` (``raft: RaftSettings`` for ``kind=raft``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


def _f(default: Any, help: str, **kw: Any) -> Any:
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


# --------------------------------------------------------------------------------------------------
# raft.generate
# --------------------------------------------------------------------------------------------------


@dataclass
class RaySettings:
    """teacher.backend=ray_http | ray_vllm: the Ray cluster and how the teacher calls are spread over it
    (raft.teacher.ray_backend)."""

    address: str = _f("", "Ray cluster to join: '' (RAY_ADDRESS, or the cluster `ray start` began on this machine, else a new local "
                          "instance) | local (always a new local instance) | auto (a running cluster, else an error) | HOST:6379 | ray://HOST:10001")
    num_cpus: int | None = _f(None, "CPUs a new local instance may use (null: all of this machine's); ignored when joining a cluster")
    workers: int = _f(2, "ray_http: client actors that send the requests (each runs the openai backend's client with its retries)")
    worker_cpus: float = _f(1.0, "ray_http: CPUs reserved per client actor (one client process keeps one core busy at ~1,000 calls/s)")
    batch_size: int = _f(64, "ray_http: most requests handed to a client actor in one Ray call; ray_vllm: rows per batch sent to an engine replica")
    replicas: int = _f(1, "ray_vllm: vLLM engine replicas (Ray Data actors), each on tensor_parallel_size x pipeline_parallel_size GPUs")
    tensor_parallel_size: int = _f(1, "ray_vllm: GPUs that share each layer of one replica (a 70B model in bf16: 4 x 80 GB)")
    pipeline_parallel_size: int = _f(1, "ray_vllm: pipeline stages per replica (layers split over GPUs, or nodes)")
    max_model_len: int | None = _f(None, "ray_vllm: the engine's context length (null: the model's; lower it to fit the KV cache)")
    enable_prefix_caching: bool = _f(True, "ray_vllm: reuse the KV cache of shared prompt prefixes (the system prompts repeat in every call)")
    engine_kwargs: Any = _f({}, "ray_vllm: more vllm engine arguments, e.g. {gpu_memory_utilization: 0.9, dtype: bfloat16}; win over the above")
    accelerator_type: str = _f("", "ray_vllm: GPU type the replicas must run on, e.g. A100 or H100 (empty: any)")
    runtime_env: Any = _f({}, "Ray runtime_env for the workers, e.g. {pip: [raft-recipes]} when the nodes lack the package (empty: same image)")


@dataclass
class TeacherConfig:
    backend: str = _f("openai", "openai (any OpenAI-compatible server, e.g. vllm serve) | vllm (offline engine) | transformers (local model) "
                                "| ray_http (many endpoints from Ray workers) | ray_vllm (vLLM replicas on a Ray cluster, Ray Data LLM)")
    base_url: Any = _f("http://localhost:8000/v1", "OpenAI-compatible endpoint; `vllm serve MODEL` listens here by default; "
                                                   "ray_http: a list of endpoints ([URL, URL] or URL,URL)")
    model: str = _f("meta-llama/Meta-Llama-3-70B-Instruct", "teacher model name (served name for openai, hub id or path otherwise)")
    api_key_env: str = _f("OPENAI_API_KEY", "name of the environment variable that holds the API key (never the key itself)")
    concurrency: int = _f(64, "requests in flight at once (openai backend; ray_http: per endpoint); high enough to keep a vLLM server busy")
    timeout: float = _f(300.0, "seconds before one request is abandoned and retried")
    max_retries: int = _f(6, "retries per request on 429, 5xx, malformed replies, timeouts and connection errors (exponential backoff with jitter)")
    retry_backoff: float = _f(1.0, "seconds before the first retry; doubles with each retry (with jitter), capped by retry_max_delay")
    retry_max_delay: float = _f(30.0, "longest wait between two retries, in seconds (a server's Retry-After is honoured up to max(this, 60))")
    max_refusals: int = _f(5, "stop the run after this many requests in a row refused with HTTP 400/413/422 (e.g. an unsupported parameter); a success resets the count; 0: never stop")
    temperature: float = _f(0.0, "sampling temperature; 0 makes reruns reproducible on the same server")
    max_tokens: int = _f(1024, "most tokens the teacher may write per reply")
    seed: int | None = _f(0, "sampling seed sent to the server (vLLM and OpenAI accept `seed`; the local backends seed their sampling); part of each request's store key; null: none sent")
    tensor_parallel_size: int = _f(1, "GPUs for the vllm offline engine")
    batch_size: int = _f(8, "prompts per generate() call for the transformers backend")
    price_input_per_mtok: float | None = _f(None, "USD per million prompt tokens, for the cost estimate (unset: no cost shown)")
    price_output_per_mtok: float | None = _f(None, "USD per million completion tokens, for the cost estimate")
    ray: RaySettings = field(default_factory=RaySettings, metadata={"help": "ray_http / ray_vllm: the Ray cluster and how calls are spread over it"})


@dataclass
class RaftSettings:
    """kind=raft: RAFT question answering (one question per chunk, CoT answer over oracle + distractors)."""

    questions_per_chunk: int = _f(1, "questions the teacher writes per chunk")
    distractors: int = _f(3, "distractor chunks per sample (the paper uses 3)")
    distractor_strategy: str = _f("random", "random | hard (BM25: chunks similar to the oracle, but wrong) | retrieved (what BM25 "
                                  "retrieves for the generated question, as raft_domain_retrieval does: train as you test)")
    unanswerable_share: float = _f(0.0, "share of questions made unanswerable: documents without the oracle or any chunk holding "
                                        "the answer, target raft.prompts.DECLINE_ANSWER (0: none; ~0.05 in a published recipe)")
    p: float = _f(0.8, "probability that the oracle chunk is among the documents (paper: 0.8)")
    answer_context: str = _f("oracle_and_distractors", "what the teacher sees when answering: oracle_and_distractors | oracle (the reference code)")
    require_quote: bool = _f(True, "reject answers that quote nothing from the documents (no ##begin_quote## span) as no_quote")
    max_answer_tokens: int = _f(800, "reject chain-of-thought answers longer than this in student tokens as too_long: the evaluation's generation budget (max_new_tokens=800)")
    eval_questions: str = _f("", "JSONL of {question, answer} that must not appear in the data (hotpot: dev questions); "
                             "short key eval_questions=")
    test_p: float = _f(1.0, "probability that the oracle is among the documents of a test-split row (1.0: every held-out question has its right document; set it to p to test on the training mix)")


@dataclass
class HotpotSettings:
    """source=hotpot: which HotpotQA paragraphs the chunks may come from."""

    chunks: str = _f("clean", "clean: no paragraph of an evaluated question (oracle or distractor) | published: file order, as the published run (contaminated)")
    eval_questions: int = _f(1000, "the first N dev questions raft_hotpot evaluates; clean chunks come from the questions after them")


@dataclass
class BioNeedleSettings:
    """kind=bio_needle: biographies -> teacher JSON labels -> needle-in-a-haystack rows (raft.kinds.bio_needle.kind)."""

    haystack: str = _f("", "JSONL of {name, bio} filler biographies (empty: the input's own training people fill the haystacks)")
    eval_input: str = _f("", "JSONL of {name, bio, json?} evaluation needles (empty: eval_people of the input are held out)")
    eval_people: int = _f(20, "people of the input held out as evaluation needles when eval_input is empty (never in a training row)")
    train_lengths: Any = _f([4096, 8192, 16384, 32768], "context lengths of training rows, in student tokens (drawn at random per row)")
    rows_per_needle: int = _f(1, "training rows per training needle (each with its own length, depth and haystack)")
    eval_lengths: Any = _f([4096, 8192, 12288, 16384], "the evaluation sweep's context lengths (the published run: 4k-16k step 4k)")
    eval_depths: int = _f(10, "needle depths in the evaluation sweep, evenly from 0% to 100%")
    needles_per_cell: int = _f(5, "evaluation needles per (length, depth) cell")
    relabel: bool = _f(False, "ask the teacher for labels even where the input has them (its 'json' field)")
    tolerance: float = _f(0.01, "a context may be this much shorter than its target length (never longer)")
    min_bio_tokens: int = _f(150, "raw biographies (wiki_bio) shorter than this are dropped")
    max_bio_tokens: int = _f(400, "raw biographies longer than this are dropped")


@dataclass
class In2Settings:
    """kind=in2: IN2 long-context QA (raft.kinds.in2.kind)."""

    segment_tokens: int = _f(128, "segment length in student tokens (the IN2 paper: 128)")
    min_segment_tokens: int = _f(32, "shorter segments (ends of documents) are dropped")
    integration_share: float = _f(0.5, "share of questions that need 2 or more segments combined (integration and reasoning)")
    max_segments: int = _f(4, "most segments an integration question combines (at least 2)")
    min_tokens: int = _f(4096, "shortest context drawn, in student tokens (the paper: 4k)")
    max_tokens: int = _f(32768, "longest context drawn (the paper: 32k)")
    short_share: float = _f(0.1, "share of short-context rows (the gold segments alone), so short-context skills do not regress")
    max_answer_words: int = _f(30, "answers longer than this are rejected (long_answer): IN2 answers are short")
    eval_sets: Any = _f(["hotpotqa/hotpot_qa"], "evaluation sets QA must not overlap with: HotpotQA (hub id or file), QA JSONL, bio_needle output folders")
    decontaminate_n: int = _f(10, "a question or answer sharing an n-gram of this many words with an evaluation set is dropped")
    tolerance: float = _f(0.01, "a context may be this much shorter than its target length (never longer)")


@dataclass
class GenerateConfig:
    """Shared settings at the top; each kind of data has its own section (``raft.*``, ...).

    A kind's settings may also be given without their section on the command line and in recipes
    (``p=1.0`` means ``raft.p=1.0`` when ``kind=raft``), so the short forms of the docs keep working.
    """

    recipe: str = _f("", "recipe this configuration came from (filled in)")
    kind: str = _f("raft", "kind of data: raft (RAFT QA) | bio_needle (long-context extraction) | in2 (IN2 long-context QA); one folder per kind in raft/kinds/")
    source: str = _f("docs", "docs (a file or folder of .txt/.md/.pdf/.html/.json) | hotpot (HotpotQA dev contexts)")
    input: str = _f("", "documents file/folder, or for hotpot a local HotpotQA file or the hub id hotpotqa/hotpot_qa")
    output: str = _f("outputs/raft_data", "output folder: dataset, JSONL, rejects, run store, dataset card")
    limit: int | None = _f(None, "ask about at most this many work items, e.g. chunks (distractors still come from all of them; hotpot recipe: 100, the published run)")
    seed: int = _f(42, "seed for every random choice of a kind (distractors, oracle dropping, shuffling) and the train/test split")
    tokenizer: str = _f("meta-llama/Llama-3.1-8B-Instruct", "student tokenizer used to count chunk tokens (hub id or path)")
    chunk_size: int = _f(512, "chunk length in student tokens")
    chunk_overlap: int = _f(0, "tokens shared by consecutive chunks")
    min_chunk_tokens: int = _f(32, "chunks shorter than this are dropped (and counted)")
    test_size: float = _f(0.1, "share of rows held out as the test split")
    dry_run: bool = _f(False, "count work items, calls, tokens and cost, call nothing")
    push_to_hub: str = _f("", "ORG/NAME: also upload the dataset (train/test JSONL, rejects, chunks, card, recipe, preview.html) to this Hugging Face Hub "
                              "dataset repo at the end; token from HF_TOKEN (never printed); empty: local only")
    hub_private: bool = _f(False, "create the Hub repo private (push_to_hub)")
    teacher: TeacherConfig = field(default_factory=TeacherConfig, metadata={"help": "teacher model and how to reach it"})
    hotpot: HotpotSettings = field(default_factory=HotpotSettings, metadata={"help": "source=hotpot: contamination rule"})
    raft: RaftSettings = field(default_factory=RaftSettings, metadata={"help": "kind=raft: RAFT question answering"})
    bio_needle: BioNeedleSettings = field(default_factory=BioNeedleSettings, metadata={"help": "kind=bio_needle: long-context extraction"})
    in2: In2Settings = field(default_factory=In2Settings, metadata={"help": "kind=in2: IN2 long-context QA"})


# --------------------------------------------------------------------------------------------------
# raft.finetune
# --------------------------------------------------------------------------------------------------


@dataclass
class LoraSettings:
    rank: int = _f(64, "LoRA rank; the published runs found 64 better than 16")
    alpha: int = _f(16, "LoRA scaling numerator (scale = alpha / rank)")
    dropout: float = _f(0.05, "dropout on the LoRA branch")
    target_modules: Any = _f("all-linear", "all-linear, or a list of module names such as [q_proj, v_proj]")


@dataclass
class TrainSettings:
    learning_rate: float = _f(2e-4, "peak learning rate (QLoRA paper's value for 7-13B models)")
    max_steps: int = _f(-1, "stop after this many optimizer steps (-1: train num_train_epochs)")
    num_train_epochs: float = _f(1.0, "passes over the training split")
    per_device_train_batch_size: int = _f(1, "sequences per GPU per step")
    per_device_eval_batch_size: int = _f(1, "sequences per GPU per evaluation step")
    gradient_accumulation_steps: int = _f(8, "steps accumulated per optimizer update")
    warmup_ratio: float = _f(0.03, "share of steps spent warming up the learning rate")
    lr_scheduler_type: str = _f("cosine", "learning-rate schedule after warm-up")
    weight_decay: float = _f(0.0, "AdamW weight decay")
    max_grad_norm: float = _f(0.3, "gradient clipping (QLoRA paper)")
    optim: str = _f("paged_adamw_8bit", "optimizer name as transformers knows it")
    max_length: int = _f(4096, "longest training sequence in tokens: 4 chunks of 512 + question + answer fit")
    overlong: str = _f("truncate_documents", "what happens to longer examples: truncate_documents (never the answer) | drop")
    reshuffle_documents: bool = _f(False, "show each RAFT row's documents in a fresh seeded order every epoch, so the model cannot "
                                          "learn a position (the same optimizer steps); off: the order as generated")
    gradient_checkpointing: bool = _f(True, "recompute activations in the backward pass: less memory, ~30% slower")
    bf16: bool = _f(True, "bf16 mixed precision (needs an Ampere+ GPU)")
    packing: bool = _f(False, "pack several examples into one sequence")
    padding_free: bool = _f(False, "concatenate the batch without padding (needs flash attention on GPU)")
    logging_steps: float = _f(0.02, "log the loss every N optimizer steps; below 1, that share of the run's steps, rounded up "
                                    "(0.02: about 50 points whatever the run's length, every step of a short run)")
    eval_steps: float = _f(0.1, "evaluate on the test split every N optimizer steps; below 1, that share of the run's steps, "
                                "rounded up (0.1: ten evaluations per run, even a 36-step one on 90 rows); 0: never")
    save_steps: float = _f(0.1, "checkpoint every N optimizer steps, for resume=true; below 1, that share of the run's steps, "
                                "rounded up (0.1: a crash loses at most a tenth of the run); 0: never")
    save_total_limit: int = _f(2, "checkpoints kept")
    report_to: Any = _f("none", "none | tensorboard (event files in output/runs) | trackio | wandb, or a list of them: "
                                    "transformers' integrations; the package must be installed (checked at start)")
    dataloader_num_workers: int = _f(0, "workers that prepare batches")


@dataclass
class FinetuneConfig:
    recipe: str = _f("", "recipe this configuration came from (filled in)")
    model: str = _f(MISSING, "student model: hub id or local path")
    data: str = _f("outputs/raft_data", "dataset folder written by raft.generate, a JSONL file, or a hub id")
    output: str = _f("outputs/finetune", "output folder: adapter, tokenizer, recipe, summary, checkpoints")
    seed: int = _f(42, "seed for initialisation and data order")
    load_in_4bit: bool = _f(True, "QLoRA: 4-bit NF4 weights, double quantisation, bf16 compute")
    attn_implementation: str = _f("sdpa", "sdpa | flash_attention_2 | eager")
    liger_kernel: bool = _f(False, "use Liger kernels if installed (less memory for long sequences)")
    resume: bool = _f(False, "continue from the last checkpoint in output/ (same settings, checked against its finetune_run.json); "
                             "without it, an output that holds checkpoints is refused")
    merge: bool = _f(False, "also write a merged 16-bit model (output/merged) for vLLM and lm-eval")
    merge_dtype: str = _f("bfloat16", "dtype of the merged model: bfloat16 (what vLLM and lm-eval load) | float16 | float32")
    dry_run: bool = _f(False, "print the recipe, trainable parameters and a GPU memory estimate; load nothing heavy")
    push_to_hub: str = _f("", "ORG/NAME: also upload the adapter (with its model card, recipe, summary, loss.png, TensorBoard logs) to this Hugging Face Hub "
                              "model repo at the end, and with merge=true the merged model to ORG/NAME-merged; token from HF_TOKEN; empty: local only")
    hub_private: bool = _f(False, "create the Hub repos private (push_to_hub)")
    lora: LoraSettings = field(default_factory=LoraSettings, metadata={"help": "LoRA adapter"})
    train: TrainSettings = field(default_factory=TrainSettings, metadata={"help": "optimisation"})


# --------------------------------------------------------------------------------------------------
# raft.evaluate
# --------------------------------------------------------------------------------------------------


@dataclass
class EvaluateConfig:
    recipe: str = _f("", "recipe this configuration came from (filled in)")
    model: str = _f(MISSING, "model to evaluate: hub id or local path (a merged model works)")
    adapter: str = _f("", "LoRA adapter folder written by raft.finetune (empty: the base model)")
    tasks: Any = _f(["raft_hotpot"], "lm-eval tasks: raft_hotpot | raft_hotpot_full | raft_domain | raft_domain_retrieval | bio_needle | in2_probe")
    data: str = _f("", "local data for the task: HotpotQA file, or a raft.generate folder for raft_domain(_retrieval) or bio_needle; "
                       "in2_probe: the document probe's corpus (documents, or a raft.generate folder: its chunks.jsonl)")
    retrieval_k: int | None = _f(None, "raft_domain_retrieval: chunks BM25 retrieves per question (null: RAFT_RETRIEVAL_K, else 4)")
    backend: str = _f("hf", "lm-eval model type: hf | vllm | local-chat-completions")
    base_url: str = _f("", "server URL for local-chat-completions")
    load_in_4bit: bool = _f(False, "load the model in 4-bit NF4 (as it was fine-tuned)")
    dtype: str = _f("auto", "weights dtype for the hf backend")
    apply_chat_template: bool = _f(True, "wrap the prompt in the model's chat template (instruct models)")
    max_new_tokens: int = _f(800, "generation budget: at 512 the chain of thought was cut and F1 halved")
    batch_size: int = _f(1, "prompts per forward pass (hf; vllm schedules all of them itself: batch_size=auto)")
    num_concurrent: int = _f(16, "requests in flight at once with local-chat-completions (the server batches them)")
    max_model_len: int | None = _f(None, "vllm context length (null: longest prompt in tokens + max_new_tokens, rounded up to 256)")
    limit: int | None = _f(None, "evaluate only the first N questions")
    allow_contaminated: bool = _f(False, "score an adapter on HotpotQA questions whose paragraphs its training data may show "
                                         "(beyond its generate run's hotpot.eval_questions, or hotpot.chunks=published); "
                                         "results.json then says so")
    output: str = _f("outputs/eval", "results folder: results JSON and per-sample outputs")
    label: str = _f("", "name of this run in reports (default: model and adapter)")
    tokenizer: str = _f("", "in2_probe: the tokenizer its prompts are built and measured in (empty: the model's; set it when model= is a served name)")
    probe_lengths: Any = _f(None, "in2_probe: context lengths, whole prompts in the model's tokens (null: the task's [4096, 8192, 16384, 32768])")
    probe_bins: int | None = _f(None, "in2_probe: position bins of the gold (null: the task's 10)")
    probe_samples: int | None = _f(None, "in2_probe: prompts per probe, length and bin (null: the task's 5)")
    probe_types: Any = _f(None, "in2_probe: probes to build, of document, structured, code (null: all three; document needs data=)")
    probe_exclude: str = _f("", "in2_probe: a raft.generate folder (the in2 training data) whose text the document probe must not ask about: "
                                 "corpus segments sharing a 10-word run with its rows are dropped and counted (empty: the adapter's training data; "
                                 "set it for the base model's run too, so both score the same probes)")
    prices: Any = _f([], "bio_needle: cost table of the evaluated prompts, a list of {model, tokenizer, input_per_mtok, output_per_mtok} (USD per million tokens; empty: none)")


SCHEMAS: dict[str, type] = {"generate": GenerateConfig, "finetune": FinetuneConfig, "evaluate": EvaluateConfig}
