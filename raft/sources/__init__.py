"""Where the text comes from, shared by the kinds that read documents or HotpotQA (``source=``):
``documents`` (loading .txt/.md/.pdf/.html/.json files and folders), ``chunking`` (token-aware chunks
in the student tokenizer) and ``hotpot`` (HotpotQA in the HF layout or the original JSON, and its clean
chunk pool). Nothing here knows a kind of data.
"""
