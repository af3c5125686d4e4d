"""kind=raft: RAFT question answering, from chunks to rows (``kind``), the row assembly (``samples``:
oracle, distractors, p, shuffle; answer parsing and quote checks). Its lm-eval tasks are
``eval_tasks/raft_hotpot`` and ``eval_tasks/raft_domain``; its settings the ``raft.*`` section.
"""
