"""Long contexts for the long-context kinds (bio_needle, in2): ``haystack`` (a context of filler pieces
cut to a target length in student tokens, with items placed at chosen depths), ``exact`` (exact token
counts of a built context), ``fill`` (choosing filler pieces to fill a budget), ``prompt`` (the whole
prompt measured under the student's chat template), ``fit`` (the one measure-and-retry loop that fits
a context to its budget; a row that never fits is a ``no_fit`` reject) and ``lengths`` (the context
length buckets the metrics are named by: ``score_4k``, ``em_8k``). Nothing here knows a kind of data.
"""
