"""Training data generation: a kind's work items -> teacher calls (resumable) -> rows -> dataset.

    python -m raft.generate recipe=hotpot teacher.base_url=http://127.0.0.1:8000/v1
    python -m raft.generate recipe=docs input=path/to/docs output=outputs/my_docs
    python -m raft.generate recipe=demo                     # small bundled example, local model
    python -m raft.generate recipe=hotpot dry_run=true      # work items, calls, tokens, cost; no call

One pipeline makes every kind of data; ``kind=`` (default ``raft``) chooses the module in
``raft/kinds/`` that says which work items exist, which teacher calls each needs and how replies
become rows or rejects. Where each step lives:

- ``raft.generate.command``: the command (settings, dry run, summary);
- ``raft.generate.pipeline``: asyncio workers, store-backed teacher calls, rows and rejects streamed
  to work files, deduplication, progress;
- ``raft.generate.output``: split, ``train.jsonl`` / ``test.jsonl``, the ``datasets`` copy, the card;
- ``raft.kinds.raft.kind``: RAFT QA (questions per chunk, distractors, oracle probability p, quality gate).

Output folder (``output``), the contract with raft.finetune and raft.evaluate:
``recipe.yaml``, ``dataset/`` (DatasetDict train/test), ``train.jsonl``, ``test.jsonl``,
``rejects.jsonl`` (with a ``reason``), ``README.md`` (dataset card), and the run's own
``store.jsonl`` + ``run.json`` (raft.store): every finished teacher call is stored as it arrives,
so the same command after a crash or a kill resumes without repeating a call, and a changed recipe
in the same folder is refused. A teacher that stays down stops the run after bounded retries with a
one-line message (exit status 1); everything finished so far stays stored.
"""

from raft.generate.command import main

__all__ = ["main"]
