"""BM25 retrieval over a run's chunk pool (bm25s, English stopwords removed): what
``raft_domain_retrieval`` retrieves for a question in evaluation, and what ``distractor_strategy=retrieved``
retrieves for a generated question in training (train as you test).

    retriever = Retriever(texts)
    retriever.top_k(["Who founded the harbour ferry?"], k=4)   # [[chunk index, ...]] best first
"""

from __future__ import annotations


class Retriever:
    """BM25 over chunk texts, the same settings as ``raft.kinds.raft.samples.HardDistractors``."""

    def __init__(self, texts: list[str]):
        import bm25s

        self.size = len(texts)
        tokens = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
        self.bm25 = bm25s.BM25()
        self.bm25.index(tokens, show_progress=False)

    def top_k(self, queries: list[str], k: int) -> list[list[int]]:
        """The indices of the ``k`` best chunks per query, best first (fewer when the pool is smaller)."""
        import bm25s

        if not queries:
            return []
        tokens = bm25s.tokenize(queries, stopwords="en", return_ids=False, show_progress=False)
        hits, _ = self.bm25.retrieve(tokens, k=min(k, self.size), show_progress=False)
        return [[int(j) for j in row] for row in hits.tolist()]
