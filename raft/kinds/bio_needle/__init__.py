"""kind=bio_needle: the bio needle-in-a-haystack benchmark, its whole story in this folder:
``kind`` (rows: needles in haystacks of biographies), ``schema`` (the label's fields and JSON schema),
``anonymize`` / ``name_words`` / ``names/`` / ``wiki_bio`` (the people), ``score`` (JSON-only scoring),
``evaluation`` (what ``raft.evaluate`` does for the task), ``numbers`` / ``plots`` / ``html`` /
``report`` (its part of the report) and ``cost`` (the cost table of its prompts). Its lm-eval task is
``eval_tasks/bio_needle``; its settings the ``bio_needle.*`` section.
"""
