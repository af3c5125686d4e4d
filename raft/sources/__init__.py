"""Where the text comes from, shared by the kinds that read documents or HotpotQA (``source=``):
``documents`` (loading .txt/.md/.pdf/.html/.json files and folders), ``chunking`` (token-aware chunks
in the student tokenizer), ``hotpot`` (HotpotQA in the HF layout or the original JSON, and its clean
chunk pool), ``pool`` (a run's chunk pool from either) and ``settings`` (the reading settings' checks
and fingerprint). Nothing here knows a kind of data.
"""
