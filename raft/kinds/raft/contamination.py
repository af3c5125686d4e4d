"""Which HotpotQA dev questions an adapter's training data shows, and what that means for a score.

``raft_hotpot`` scores the first 1,000 HotpotQA dev questions and ``raft_hotpot_full`` all 7,405. Clean
RAFT or IN2 data from HotpotQA (``hotpot.chunks=clean``) is made only of paragraphs of the dev questions
after the first ``hotpot.eval_questions``, so a task that scores any question past those shows the
model paragraphs it trained on; ``hotpot.chunks=published`` trains on the evaluated contexts themselves.
Such a run is refused unless ``allow_contaminated=true`` (then results.json says so); an adapter whose
data cannot be traced (``raft.evaluate.lineage``) gets a warning.
"""

from __future__ import annotations

from raft.evaluate.lineage import generate_recipe, training_data

#: questions each HotpotQA task scores (its YAML's ``dataset_kwargs.questions``; None: all 7,405)
HOTPOT_TASK_QUESTIONS: dict[str, int | None] = {"raft_hotpot": 1000, "raft_hotpot_full": None}
DEV_QUESTIONS = 7405


def hotpot_contamination(adapter: str, tasks: list[str], limit: int | None) -> tuple[list[str], list[str]]:
    """(contaminated: one line per HotpotQA task that would score questions the adapter's training data
    shows paragraphs of; unknown: one line per task when the adapter's data cannot be traced)."""
    hotpot = [t for t in tasks if t in HOTPOT_TASK_QUESTIONS]
    if not adapter or not hotpot:
        return [], []
    data, how = training_data(adapter)
    recipe = generate_recipe(data) if data else {}
    if not recipe:
        reason = how if data is None else f"{data}/recipe.yaml is not a raft.generate recipe"
        return [], [f"{t}: cannot check which HotpotQA dev questions the adapter's training data shows ({reason}); if it was "
                    f"made from HotpotQA dev paragraphs (hotpot.chunks=clean uses those of the questions after "
                    f"hotpot.eval_questions), questions past that are contaminated" for t in hotpot]
    if recipe.get("source") != "hotpot":
        return [], []
    settings = recipe.get("hotpot") or {}
    mode, kept = settings.get("chunks", "clean"), int(settings.get("eval_questions", 1000) or 0)
    contaminated = []
    for task in hotpot:
        count = HOTPOT_TASK_QUESTIONS[task]
        scored = min(x for x in (count, limit) if x is not None) if (count, limit) != (None, None) else None
        shown = f"the first {scored}" if scored is not None else f"all {DEV_QUESTIONS}"
        if mode == "published":
            contaminated.append(
                f"{task} scores {shown} HotpotQA dev questions, but {how}, made with hotpot.chunks=published: its rows show the "
                "evaluated questions' own paragraphs (contaminated); train on hotpot.chunks=clean data, or pass "
                "allow_contaminated=true to score it anyway")
        elif scored is None or scored > kept:
            contaminated.append(
                f"{task} scores {shown} HotpotQA dev questions, but {how}, made of paragraphs of the dev questions after the first "
                f"hotpot.eval_questions={kept}: questions {kept + 1}-{scored or DEV_QUESTIONS} show paragraphs it trained on; "
                f"evaluate with limit={kept} (raft_hotpot), generate with hotpot.eval_questions covering what you score, or pass "
                "allow_contaminated=true to score it anyway")
    return contaminated, []
