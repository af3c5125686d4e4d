"""The local teacher backends: ``vllm`` (the offline engine) and ``transformers`` (a local model);
concurrent ``ask()`` calls are gathered into batches and run in a worker thread (see raft.teacher)."""

from __future__ import annotations

import asyncio
from typing import Any

from raft.config import TeacherConfig
from raft.teacher.base import Messages, Reply, Teacher, TeacherError, one_line


class BatchTeacher(Teacher):
    max_batch = 8

    def __init__(self) -> None:
        self._pending: list[tuple[Messages, dict | None, asyncio.Future]] = []
        self._runner: asyncio.Task | None = None

    def generate(self, batch: list[Messages], formats: list[dict | None]) -> list[Reply]:
        raise NotImplementedError

    async def ask(self, messages: Messages, response_format: dict[str, Any] | None = None) -> Reply:
        future = asyncio.get_running_loop().create_future()
        self._pending.append((messages, response_format, future))
        if self._runner is None:
            self._runner = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        try:
            while self._pending:
                await asyncio.sleep(0)  # let every coroutine that is ready queue its request first
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    replies = await asyncio.to_thread(self.generate, [m for m, _, _ in batch], [f for _, f, _ in batch])
                except Exception as e:  # noqa: BLE001 - handed to every waiting caller
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(e)
                    continue
                for (_, _, future), reply in zip(batch, replies, strict=True):
                    if not future.done():
                        future.set_result(reply)
        finally:
            self._runner = None


class TransformersTeacher(BatchTeacher):
    def __init__(self, cfg: TeacherConfig):
        super().__init__()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.cfg = cfg
        self.name = f"{cfg.model} (transformers, local)"
        self.max_batch = max(1, cfg.batch_size)
        self.parallelism = self.max_batch
        self._torch = torch
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(cfg.model)
            device = "cuda" if torch.cuda.is_available() else "cpu"
            self.model = AutoModelForCausalLM.from_pretrained(cfg.model, dtype="auto").to(device).eval()
        except (OSError, ValueError) as e:
            raise TeacherError(
                f"teacher model '{cfg.model}' could not be loaded: not found locally and could not be downloaded "
                f"({one_line(e, 160)}); with no hub, `python -m raft.quickstart` runs RAFT end to end offline"
            ) from None
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not getattr(self.tokenizer, "chat_template", None):
            raise TeacherError(f"teacher model '{cfg.model}' has no chat template; use an instruct model")

    def generate(self, batch: list[Messages], formats: list[dict | None]) -> list[Reply]:
        """``formats`` are not enforced here (no guided decoding in transformers' generate): structured
        replies are validated by the caller like any other."""
        tok, torch = self.tokenizer, self._torch
        texts = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in batch]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
        kwargs: dict[str, Any] = {"max_new_tokens": self.cfg.max_tokens, "pad_token_id": tok.pad_token_id}
        if self.cfg.temperature > 0:
            kwargs.update(do_sample=True, temperature=self.cfg.temperature)
            if self.cfg.seed is not None:
                torch.manual_seed(self.cfg.seed)
        else:
            kwargs.update(do_sample=False)
        with torch.no_grad():
            out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        stops = {tok.pad_token_id, tok.eos_token_id, *(_as_list(self.model.generation_config.eos_token_id))}
        replies = []
        for row, mask in zip(new.tolist(), enc["attention_mask"].tolist(), strict=True):
            n = next((i for i, t in enumerate(row) if t in stops), len(row))
            finish = "length" if n == len(row) >= self.cfg.max_tokens else "stop"  # no stop token: cut at max_tokens
            replies.append(Reply(tok.decode(row[:n], skip_special_tokens=True), int(sum(mask)), n, finish))
        return replies


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


class VLLMTeacher(BatchTeacher):
    def __init__(self, cfg: TeacherConfig):
        super().__init__()
        try:
            import vllm
        except ImportError:
            raise TeacherError(
                "teacher.backend=vllm needs the vllm package, which is not installed: pip install 'raft-recipes[vllm]' "
                "on a CUDA machine, or run `vllm serve MODEL` and use teacher.backend=openai"
            ) from None
        self.cfg = cfg
        self.name = f"{cfg.model} (vllm offline engine)"
        self.max_batch = 1_000_000  # the engine schedules a whole batch itself
        self.parallelism = 4096
        self.llm = vllm.LLM(model=cfg.model, tensor_parallel_size=cfg.tensor_parallel_size)
        self.params = vllm.SamplingParams(temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed)

    def generate(self, batch: list[Messages], formats: list[dict | None]) -> list[Reply]:
        params = [self.params if f is None else self._guided(f) for f in formats]
        outputs = self.llm.chat(batch, params, use_tqdm=False)
        return [_vllm_reply(o) for o in outputs]

    def _guided(self, response_format: dict) -> Any:
        """SamplingParams that decode JSON of the format's schema (vLLM's structured outputs)."""
        import vllm

        schema = response_format.get("json_schema", {}).get("schema", {})
        base = {"temperature": self.cfg.temperature, "max_tokens": self.cfg.max_tokens, "seed": self.cfg.seed}
        try:  # vLLM >= 0.10
            from vllm.sampling_params import StructuredOutputsParams

            return vllm.SamplingParams(**base, structured_outputs=StructuredOutputsParams(json=schema))
        except ImportError:
            from vllm.sampling_params import GuidedDecodingParams

            return vllm.SamplingParams(**base, guided_decoding=GuidedDecodingParams(json=schema))


def _vllm_reply(output: Any) -> Reply:
    """Reply of one ``vllm.RequestOutput``: finish_reason "length" when it stopped at max_tokens."""
    prompt_tokens = len(output.prompt_token_ids or [])
    if not output.outputs:
        return Reply("", prompt_tokens, 0)
    first = output.outputs[0]
    finish = "length" if first.finish_reason == "length" else "stop"
    return Reply(first.text, prompt_tokens, len(first.token_ids), finish)
