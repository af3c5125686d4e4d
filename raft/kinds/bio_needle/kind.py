"""kind=bio_needle: the bio needle-in-a-haystack data (training rows and the evaluation sweep).

    python -m raft.generate recipe=bio_needle input=BIOS.jsonl output=outputs/bio_needle

A model must extract facts about one person (``raft.kinds.bio_needle.schema.BioLabel``: nationality, dates of birth and
death, sportsperson, politician) from a long context of many similar, anonymized biographies.

- People (raft.kinds.bio_needle.people): ``input`` is JSONL of ``{name, bio, json?}`` (anonymized;
  ``json`` is a label; raw wiki_bio is anonymized first). Evaluation needles are
  ``bio_needle.eval_input`` or the first ``eval_people`` of the input in a seeded order; they never
  appear in a training row, as needle or as filler. Fillers are ``bio_needle.haystack`` (or the
  training people); a needle is never in its own haystack.
- Work items are the needles. Each needs its label: the input's (``json``, validated) unless
  ``relabel=true``, else one teacher call in structured-output mode (``response_format`` from the
  pydantic model: vLLM's guided decoding, OpenAI's json_schema), validated with pydantic; a reply that
  is cut off, not JSON or breaks the schema is a reject with the reason. Calls go through the run store.
- Rows: training needles get ``rows_per_needle`` rows at random lengths (``train_lengths``) and
  depths; evaluation needles fill the sweep ``eval_lengths`` x ``eval_depths`` x ``needles_per_cell``
  (the test split). Haystacks are whole biographies (raft.long_context.haystack), the needle inserted at the
  biography boundary nearest the depth, the whole prompt (chat template applied: what the model
  sees) within ``tolerance`` below the target (raft.long_context.fit; a row that never fits is a
  ``no_fit`` reject). Each row records ``context_tokens``, ``depth`` (the needle's measured start /
  context_tokens), ``needle_start``, ``needle_tokens``, ``label``.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Any

from raft.config import ConfigError, check_all
from raft.kinds import Estimate
from raft.kinds import Kind as BaseKind
from raft.kinds.bio_needle.people import load_people
from raft.long_context.fit import NO_FIT, fit_context, no_fit_detail
from raft.long_context.prompt import PromptTokens

if TYPE_CHECKING:
    from raft.generate.pipeline import Run
    from raft.long_context.haystack import Assembled

COLUMNS = ["id", "needle_name", "label", "target_tokens", "context_tokens", "depth", "depth_target", "needle_start",
           "needle_tokens", "messages", "prompt", "completion"]


def features():
    from datasets import Features, List, Value

    date = {"day": Value("int64"), "month": Value("int64"), "year": Value("int64")}
    label = {"nationality": Value("string"), "date_of_birth": date, "date_of_death": date,
             "sportsperson": Value("bool"), "politician": Value("bool")}
    message = List({"role": Value("string"), "content": Value("string")})
    return Features({"id": Value("string"), "needle_name": Value("string"), "label": label,
                     "target_tokens": Value("int64"), "context_tokens": Value("int64"), "depth": Value("float64"),
                     "depth_target": Value("float64"), "needle_start": Value("int64"), "needle_tokens": Value("int64"),
                     "messages": message, "prompt": message, "completion": message})


class Kind(BaseKind):
    """Bio needle-in-a-haystack: needle -> label (teacher, JSON mode) -> rows at lengths x depths."""

    name = "bio_needle"
    unit = "needle"
    counters = ("rows_built",)
    columns = COLUMNS

    def validate(self) -> None:
        s = self.cfg.bio_needle
        lengths = [*s.train_lengths, *s.eval_lengths]
        checks = [
            (all(isinstance(n, int) and n > 0 for n in lengths), "bio_needle.train_lengths / eval_lengths must be positive token counts"),
            (s.eval_depths >= 1 and s.needles_per_cell >= 1, "bio_needle.eval_depths and needles_per_cell must be at least 1"),
            (s.rows_per_needle >= 0, "bio_needle.rows_per_needle is negative"),
            (0 < s.tolerance < 0.5, f"bio_needle.tolerance={s.tolerance} must be in (0, 0.5)"),
        ]
        check_all(checks)

    # ------------------------------------------------------------------ inputs
    def load(self) -> int:
        cfg, people = self.cfg, load_people(self.cfg, self.source)
        evaluation, training, self.fillers = people.evaluation, people.training, people.fillers
        # evaluation needles first: `limit` (needles asked about) then caps the training needles only
        self.needles = [("test", p) for p in evaluation] + [("train", p) for p in training]
        trained = min(len(training), max(0, (cfg.limit or len(self.needles)) - len(evaluation)))
        self.notes = [*people.notes, f"{trained} training needles, {len(evaluation)} evaluation needles (never in a training row), "
                      f"{len(self.fillers)} filler biographies"]
        return len(self.needles)

    def prepare(self, work: int) -> None:
        from raft.long_context.haystack import Haystack

        cfg, s = self.cfg, self.cfg.bio_needle
        self.prompt = PromptTokens(cfg.tokenizer)
        self.tok = self.prompt.tok
        self.haystack = Haystack([p["bio"] for p in self.fillers], self.tok)
        self.namesakes: dict[str, set[int]] = {}  # name -> every filler biography of that name (the published
        for i, p in enumerate(self.fillers):      # sets have people who share a name)
            self.namesakes.setdefault(p["name"], set()).add(i)
        longest = max([*s.train_lengths, *s.eval_lengths])
        available = sum(self.haystack.tokens)
        if available < longest:
            raise ConfigError(f"the haystack has {available:,} tokens in {len(self.fillers)} biographies; the longest context "
                              f"asked is {longest:,} (add biographies with bio_needle.haystack or lower the lengths)")
        # the evaluation sweep: each (length, depth) cell gets needles_per_cell distinct evaluation needles
        tests = [i for i, (split, _) in enumerate(self.needles[:work]) if split == "test"]
        depths = [k / max(1, s.eval_depths - 1) for k in range(s.eval_depths)]
        self.cells: dict[int, list[tuple[int, float]]] = {i: [] for i in tests}
        rng = random.Random(f"{cfg.seed}:sweep")
        for length in s.eval_lengths:
            for depth in depths:
                for i in rng.sample(tests, min(s.needles_per_cell, len(tests))):
                    self.cells[i].append((length, depth))

    # ------------------------------------------------------------------ one needle
    def _reject(self, run: Run, row_id: str, name: str, reason: str, reply: str) -> None:
        run.reject({"id": row_id, "needle_name": name, "reason": reason, "reply": reply})

    def as_reject(self, row: dict[str, Any], reason: str) -> dict[str, Any]:
        return {"id": row["id"], "needle_name": row["needle_name"], "reason": reason, "reply": json.dumps(row["label"])}

    async def label(self, run: Run, index: int) -> dict[str, Any] | None:
        from pydantic import ValidationError

        from raft.kinds.bio_needle.schema import BioLabel, response_format
        from raft.prompts import bio_label_messages

        split, person = self.needles[index]
        row_id = f"{split}/{index:06d}"
        if "json" in person and not self.cfg.bio_needle.relabel:
            try:
                return BioLabel.model_validate(person["json"]).model_dump()
            except ValidationError as e:
                self._reject(run, row_id, person["name"], "bad_input_label", f"{e.errors()[0]['loc']}: {e.errors()[0]['msg']}")
                return None
        reply = await run.call(bio_label_messages(person["bio"], person["name"]), "label", response_format())
        if isinstance(reply, str):
            self._reject(run, row_id, person["name"], "teacher_error", reply)
        elif reply.finish_reason == "length":
            self._reject(run, row_id, person["name"], "truncated", reply.text)
        else:
            try:
                return BioLabel.model_validate_json(reply.text).model_dump()
            except ValidationError as e:
                first = e.errors()[0]
                reason = "invalid_json" if first["type"] == "json_invalid" else "schema"
                self._reject(run, row_id, person["name"], reason, reply.text)
        return None

    async def item(self, run: Run, index: int) -> None:
        s = self.cfg.bio_needle
        label = await self.label(run, index)
        if label is None:
            return
        split, person = self.needles[index]
        rng = random.Random(f"{self.cfg.seed}:{split}:{index}")
        if split == "train":
            plan = [(rng.choice(list(s.train_lengths)), rng.random()) for _ in range(s.rows_per_needle)]
        else:
            plan = self.cells[index]
        for j, (length, depth) in enumerate(plan):
            row_id = f"{split}/{index:06d}/{j:03d}"
            row = self.build_row(row_id, person, label, length, depth, rng)
            if row is None:  # the pool's whole biographies cannot come within tolerance of the length
                self._reject(run, row_id, person["name"], NO_FIT, no_fit_detail("biographies", s.tolerance, length))
                continue
            run.count("rows_built")
            run.keep(row, row["id"])

    def build_row(self, row_id: str, person: dict, label: dict, length: int, depth: float, rng: random.Random) -> dict | None:
        """One row: a haystack of ``length`` prompt tokens with ``person``'s biography at ``depth`` (None when
        the pool's whole biographies cannot come within ``tolerance`` of the length)."""
        from raft.kinds.bio_needle.schema import compact
        from raft.prompts import bio_example, bio_prompt

        s, needle, name = self.cfg.bio_needle, person["bio"], person["name"]
        needle_tokens = len(self.tok.encode(needle, add_special_tokens=False).ids)
        exclude = self.namesakes.get(name, set())  # a needle is never in its own haystack, nor is a namesake

        def build(budget: int) -> Assembled:
            filler = self.haystack.fill(rng, budget, exclude=exclude, tolerance=s.tolerance / 2)
            return self.haystack.assemble(filler, [(needle, depth)])

        # 2: about the separators around the needle
        fit = fit_context(self.prompt, length, s.tolerance, lambda text: bio_prompt(text, name), build, reserve=needle_tokens + 2)
        if fit is None:
            return None
        context_tokens, built = fit.tokens, fit.built
        example = bio_example(built.text, name, compact(label))
        start = fit.offset + built.placed[0].start
        return {"id": row_id, "needle_name": person["name"], "label": label, "target_tokens": length,
                "context_tokens": context_tokens, "depth": start / context_tokens, "depth_target": depth,
                "needle_start": start, "needle_tokens": needle_tokens, **example}

    # ------------------------------------------------------------------ outputs
    def split_of(self, row_id: str) -> str | None:
        return row_id.split("/", 1)[0]

    def features(self):
        return features()

    def fingerprint(self) -> dict[str, Any]:
        s = self.cfg.bio_needle
        return {"tokenizer": self.cfg.tokenizer, **{f"bio_needle.{k}": getattr(s, k) for k in (
            "haystack", "eval_input", "eval_people", "train_lengths", "rows_per_needle", "eval_lengths", "eval_depths",
            "needles_per_cell", "relabel", "tolerance")}}

    def estimate(self, work: int, stored) -> Estimate:
        from raft.kinds.bio_needle.schema import response_format
        from raft.prompts import bio_label_messages

        asked = [p for _, p in self.needles[:work] if "json" not in p or self.cfg.bio_needle.relabel]
        already = sum(stored(bio_label_messages(p["bio"], p["name"]), response_format()) for p in asked)
        chars = sum(len(p["bio"]) + 400 for p in asked) + len(json.dumps(response_format())) * len(asked)
        return Estimate(
            work_line=f"{work} needles ({len(asked)} to label by the teacher, the rest labelled in the input)",
            calls_line=f"{len(asked)} label calls ({already} already stored)",
            calls=len(asked), tokens_in=chars // 4, tokens_out=60 * len(asked),
        )

    def card(self) -> tuple[str, str, str]:
        cfg, s = self.cfg, self.cfg.bio_needle
        about = f"""Written by `python -m raft.generate` (recipe `{cfg.recipe or "none"}`, kind bio_needle) from `{cfg.input}`.
Each row is a long context of whole anonymized biographies with one needle biography inserted at a
biography boundary, and the question to extract the needle person's facts as JSON. Training rows:
{s.rows_per_needle} per training needle at lengths {list(s.train_lengths)} (student tokens, chat template
applied) and random depths. Test split: the evaluation sweep, lengths {list(s.eval_lengths)} x
{s.eval_depths} depths x {s.needles_per_cell} needles per cell, over people never used in training
(as needle or filler). Labels: the input's, or the teacher's in JSON-schema mode, validated with pydantic."""
        columns = """- `id` (`train/...` or `test/...`), `needle_name`, `label` (the 9 scored fields, see `raft.kinds.bio_needle.schema`)
- `target_tokens` (the length asked), `context_tokens` (what the model sees), `depth` (the needle's measured
  start / context_tokens), `depth_target`, `needle_start`, `needle_tokens`
- `messages`, `prompt` / `completion`: TRL formats; the completion is the label as compact JSON"""
        return "Bio needle-in-a-haystack data", about, columns
