"""kind=in2: IN2-style long-context QA training data and the ``in2_probe`` position probe, its whole
story in this folder: ``kind`` (rows: gold segments placed in long contexts), ``decontaminate`` (no
question overlapping an evaluation set), ``probes/`` (the judge-free retrieval probes),
``evaluation`` (what ``raft.evaluate`` does for in2_probe) and ``numbers`` / ``plots`` / ``html`` /
``report`` (its part of the report). Its lm-eval task is ``eval_tasks/in2_probe``; its settings the
``in2.*`` section.
"""
