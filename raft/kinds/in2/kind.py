"""kind=in2: IN2 (information-intensive) long-context training data (An et al. 2024, FILM-7B).

    python -m raft.generate recipe=in2 input=DOCS output=outputs/in2

Teaches a model that the crucial information can sit anywhere in a long context, with data alone:

- Segments of about ``in2.segment_tokens`` student tokens (``raft.sources.chunking``) from anything
  ``source=docs`` reads, or HotpotQA paragraphs (``source=hotpot``, the clean chunks); each keeps its
  source and position.
- Work items are segment groups: one segment (a *fine-grained* question) or, with probability
  ``in2.integration_share``, 2 to ``in2.max_segments`` consecutive segments of one source (an
  *integration* question that needs them all). The teacher writes one QA pair per group in
  JSON-schema mode (``response_format``; vLLM guided decoding), validated with pydantic. Rejects:
  ``invalid_json`` / ``schema`` / ``truncated``, ``context_reference`` (a question that says "according
  to the text" and the like), ``long_answer`` (more than ``in2.max_answer_words`` words), ``empty``,
  ``contaminated`` (a question or answer sharing an n-gram with an evaluation set, raft.kinds.in2.decontaminate),
  ``duplicate``.
- Rows: a target length drawn uniformly from [``in2.min_tokens``, ``in2.max_tokens``] (the whole
  prompt as the model sees it), the gold segments at random depths among filler segments of other
  sources (never the gold's own source, which may answer the question too), each gold's token offset
  and depth recorded (``gold_positions``); a share ``in2.short_share`` of rows are short-context (the
  gold segments alone), so short-context skills do not regress. The whole prompt is within
  ``in2.tolerance`` below the target (raft.long_context.fit); a row whose context never fits is a
  ``no_fit`` reject. The loss is on the answer only.
"""

from __future__ import annotations

import random
import re
import sys
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from raft.config import ConfigError, check_all
from raft.kinds import Estimate
from raft.kinds import Kind as BaseKind
from raft.long_context.fit import NO_FIT, fit_context, no_fit_detail
from raft.long_context.prompt import PromptTokens
from raft.prompts import response_format
from raft.sources.pool import load_pool
from raft.sources.settings import check_source, source_fingerprint

if TYPE_CHECKING:
    from raft.generate.pipeline import Run

COLUMNS = ["id", "question", "documents", "oracle_index", "cot_answer", "final_answer", "chunk_id", "source",
           "question_type", "gold_positions", "context_tokens", "target_tokens", "messages", "prompt", "completion"]
# a question that points at "the text" cannot be asked of a long context holding many texts
CONTEXT_REFERENCE = re.compile(
    r"\b(according to|in|from|based on|of) (the|this|these|that) (text|texts|passage|passages|context|segment|segments|"
    r"excerpt|document|documents|paragraph|article|above)\b|\bmentioned above\b|\bthe (above|given) text\b", re.I)


class In2QA(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str
    answer: str


def features():
    from datasets import Features, List, Value

    message = List({"role": Value("string"), "content": Value("string")})
    position = {"segment": Value("string"), "start": Value("int64"), "end": Value("int64"), "depth": Value("float64")}
    types = {"documents": List(Value("string")), "oracle_index": Value("int64"), "gold_positions": List(position),
             "context_tokens": Value("int64"), "target_tokens": Value("int64"), "messages": message, "prompt": message,
             "completion": message}
    return Features({c: types.get(c, Value("string")) for c in COLUMNS})  # the RAFT columns, and the IN2 ones


class Kind(BaseKind):
    """IN2: segment group -> teacher QA (JSON mode) -> a long context with the golds placed -> row."""

    name = "in2"
    unit = "group"
    counters = ("questions",)
    columns = COLUMNS

    def validate(self) -> None:
        check_source(self.cfg)
        s = self.cfg.in2
        checks = [
            (0 < s.min_tokens <= s.max_tokens, f"in2.min_tokens={s.min_tokens} and max_tokens={s.max_tokens}: 0 < min <= max"),
            (s.segment_tokens >= 16, f"in2.segment_tokens={s.segment_tokens} must be at least 16"),
            (0 <= s.integration_share <= 1 and 0 <= s.short_share <= 1, "in2.integration_share and short_share are shares in [0, 1]"),
            (s.max_segments >= 2, f"in2.max_segments={s.max_segments} must be at least 2"),
        ]
        check_all(checks)

    # ------------------------------------------------------------------ inputs
    def load(self) -> int:
        cfg, s = self.cfg, self.cfg.in2
        pool = load_pool(self.source, cfg.input, cfg.hotpot if cfg.source == "hotpot" else None, cfg.tokenizer,
                         s.segment_tokens, 0, s.min_segment_tokens)  # segments: chunks of in2's size, no overlap
        self.segments, self.notes = pool.chunks, pool.notes
        by_source: dict[str, list[int]] = {}
        for i, c in enumerate(self.segments):
            by_source.setdefault(c.source, []).append(i)
        self.by_source = by_source
        rng = random.Random(f"{cfg.seed}:in2-groups")
        order = list(range(len(self.segments)))
        rng.shuffle(order)
        self.groups: list[list[int]] = []
        for i in order:
            same = by_source[self.segments[i].source]
            after = same[same.index(i):]
            if len(after) >= 2 and rng.random() < s.integration_share:
                self.groups.append(after[: rng.randint(2, min(s.max_segments, len(after)))])
            else:
                self.groups.append([i])
        self.notes.append(f"{len(self.segments)} segments of about {s.segment_tokens} tokens from {len(by_source)} sources")
        return len(self.groups)

    def prepare(self, work: int) -> None:
        from raft.kinds.in2.decontaminate import Contamination
        from raft.long_context.haystack import Haystack

        cfg, s = self.cfg, self.cfg.in2
        self.prompt = PromptTokens(cfg.tokenizer)
        self.haystack = Haystack([c.text for c in self.segments], self.prompt.tok)
        if sum(self.haystack.tokens) < s.max_tokens:
            raise ConfigError(f"{cfg.input}: {sum(self.haystack.tokens):,} tokens in {len(self.segments)} segments; contexts of up "
                              f"to in2.max_tokens={s.max_tokens:,} were asked (add documents or lower in2.max_tokens)")
        texts = [t for path in s.eval_sets for t in eval_texts(path)]
        self.contamination = Contamination(texts, n=s.decontaminate_n)
        self.notes.append(f"decontaminated against {len(texts):,} evaluation texts ({', '.join(s.eval_sets) or 'none'}): "
                          f"{s.decontaminate_n}-grams")

    # ------------------------------------------------------------------ one group
    def _reject(self, run: Run, row_id: str, group: list[int], reason: str, question: str, reply: str) -> None:
        first = self.segments[group[0]]
        run.reject({"id": row_id, "chunk_id": "+".join(self.segments[i].id for i in group), "source": first.source,
                    "reason": reason, "question": question, "reply": reply})

    def as_reject(self, row: dict[str, Any], reason: str) -> dict[str, Any]:
        return {"id": row["id"], "chunk_id": row["chunk_id"], "source": row["source"], "reason": reason,
                "question": row["question"], "reply": row["final_answer"]}

    async def item(self, run: Run, index: int) -> None:
        from pydantic import ValidationError

        from raft.long_context.haystack import HaystackError
        from raft.metrics import normalize_answer
        from raft.prompts import in2_qa_messages

        s, group = self.cfg.in2, self.groups[index]
        row_id = f"{index:07d}"
        reply = await run.call(in2_qa_messages([self.segments[i].text for i in group]), "qa", response_format(In2QA, "in2_qa"))
        if isinstance(reply, str):
            return self._reject(run, row_id, group, "teacher_error", "", reply)
        if reply.finish_reason == "length":
            return self._reject(run, row_id, group, "truncated", "", reply.text)
        try:
            qa = In2QA.model_validate_json(reply.text)
        except ValidationError as e:
            reason = "invalid_json" if e.errors()[0]["type"] == "json_invalid" else "schema"
            return self._reject(run, row_id, group, reason, "", reply.text)
        question, answer = " ".join(qa.question.split()), " ".join(qa.answer.split())
        run.count("questions")
        reason = ("empty" if not question or not answer else
                  "context_reference" if CONTEXT_REFERENCE.search(question) else
                  "long_answer" if len(answer.split()) > s.max_answer_words else
                  "contaminated" if self.contamination.hits(question) or self.contamination.hits(answer) else None)
        if reason:
            return self._reject(run, row_id, group, reason, question, reply.text)
        seed = f"{self.cfg.seed}:in2:{index}"
        try:
            row = self.build_row(row_id, group, question, answer, random.Random(seed))
        except HaystackError as e:  # the other sources hold too few tokens for this length
            return self._reject(run, row_id, group, "haystack", question, str(e))
        if row is None:  # whole segments cannot come within tolerance of the length drawn (the same draw again)
            target = self.draw_target(random.Random(seed))
            return self._reject(run, row_id, group, NO_FIT, question, no_fit_detail("segments", s.tolerance, target))
        run.keep(row, normalize_answer(question))

    def draw_target(self, rng: random.Random) -> int:
        """A row's length in prompt tokens, the first draw of its ``rng``: 0 for a short-context row (a share
        ``in2.short_share``), else uniform in [``in2.min_tokens``, ``in2.max_tokens``]."""
        s = self.cfg.in2
        return 0 if rng.random() < s.short_share else rng.randint(s.min_tokens, s.max_tokens)

    def build_row(self, row_id: str, group: list[int], question: str, answer: str, rng: random.Random) -> dict[str, Any] | None:
        """One row: the gold segments of ``group`` at random depths in a context of the length drawn, or alone
        (a short-context row); None when whole segments cannot come within ``in2.tolerance`` of the length."""
        from raft.prompts import in2_example

        s = self.cfg.in2
        target = self.draw_target(rng)
        golds = [(i, rng.random()) for i in group]
        if not target:  # short: the gold segments alone, in their own order
            context = self.haystack.sep.join(self.segments[i].text for i in group)
            content = in2_example(context, question, answer)["prompt"][0]["content"]
            context_tokens = self.prompt.count(self.prompt.render(content))
            rendered = self.prompt.render(content)
            starts = [self.prompt.offset(rendered, self.segments[i].text) for i in group]
        else:
            exclude = set(self.by_source[self.segments[group[0]].source])  # the gold's source may answer the question too
            fit = fit_context(self.prompt, target, s.tolerance, lambda text: in2_example(text, question, answer)["prompt"][0]["content"],
                              lambda budget: self.haystack.build(rng, budget, golds=golds, exclude=exclude, tolerance=s.tolerance / 2))
            if fit is None:
                return None
            context, context_tokens = fit.built.text, fit.tokens
            starts = [fit.offset + p.start for p in fit.built.placed]
        example = in2_example(context, question, answer)
        positions = [{"segment": self.segments[i].id, "start": start, "end": start + self.haystack.tokens[i],
                      "depth": start / context_tokens} for i, start in zip(group, starts, strict=True)]
        first = self.segments[group[0]]
        return {"id": row_id, "question": question, "documents": [self.segments[i].text for i in group], "oracle_index": None,
                "cot_answer": answer, "final_answer": answer, "chunk_id": "+".join(self.segments[i].id for i in group),
                "source": first.source, "question_type": "fine_grained" if len(group) == 1 else "integration",
                "gold_positions": positions, "context_tokens": context_tokens, "target_tokens": target, **example}

    # ------------------------------------------------------------------ outputs
    def features(self):
        return features()

    def fingerprint(self) -> dict[str, Any]:
        s = self.cfg.in2
        return {**source_fingerprint(self.cfg), "tokenizer": self.cfg.tokenizer,
                **{f"in2.{k}": getattr(s, k) for k in vars(s)}}

    def estimate(self, work: int, stored) -> Estimate:
        from raft.prompts import in2_qa_messages

        groups = self.groups[:work]
        already = sum(stored(in2_qa_messages([self.segments[i].text for i in g]), response_format(In2QA, "in2_qa")) for g in groups)
        chars = sum(sum(len(self.segments[i].text) for i in g) + 600 for g in groups)
        integration = sum(len(g) > 1 for g in groups)
        return Estimate(work_line=f"{work} segment groups ({integration} integration, {work - integration} fine-grained)",
                        calls_line=f"{work} QA calls ({already} already stored)", calls=work, tokens_in=chars // 4,
                        tokens_out=40 * work)

    def card(self) -> tuple[str, str, str]:
        cfg, s = self.cfg, self.cfg.in2
        about = f"""Written by `python -m raft.generate` (recipe `{cfg.recipe or "none"}`, kind in2) from `{cfg.input}` ({cfg.source}).
IN2 training data (An et al. 2024): each row is a question whose answer needs one segment (fine-grained) or
2-{s.max_segments} segments of one source combined (integration), asked over a long context of
{s.min_tokens}-{s.max_tokens} student tokens (drawn uniformly; the whole prompt as the model sees it) with the
gold segments at random depths among segments of other sources; {s.short_share:.0%} of rows are short-context
(the gold segments alone). Questions and answers that share a {s.decontaminate_n}-gram with an evaluation set
are dropped ({", ".join(s.eval_sets) or "none given"})."""
        columns = """- `question`, `final_answer` (= `cot_answer`: short), `question_type` (fine_grained | integration)
- `documents`: the gold segments; `chunk_id`: their ids joined by `+`; `source`
- `gold_positions`: each gold's token `start` / `end` in the prompt and `depth` (start / context_tokens)
- `context_tokens` (what the model sees), `target_tokens` (the length drawn; 0 for a short-context row)
- `messages`, `prompt` / `completion`: TRL formats; the loss is on the answer only"""
        return "IN2 long-context training data", about, columns


def eval_texts(path: str) -> list[str]:
    """Question and answer texts of an evaluation set: a HotpotQA source (hub id or file, as raft.sources.hotpot
    reads it) or anything raft.kinds.in2.decontaminate reads (a QA JSONL, a bio_needle output folder)."""
    from raft.kinds.in2.decontaminate import load_eval_texts

    if path == "hotpotqa/hotpot_qa":
        from raft.sources.hotpot import HotpotError, load_hotpot

        try:
            return [t for ex in load_hotpot(path) for t in (ex["question"], ex["answer"])]
        except HotpotError as e:
            print(f"raft.generate: {e}", file=sys.stderr)
            raise ConfigError(f"in2.eval_sets: {e}") from None
    return load_eval_texts(path)
