"""Long contexts for the long-context kinds (bio_needle, in2): ``haystack`` (a context of filler pieces
cut to a target length in student tokens, with items placed at chosen depths), ``exact`` (exact token
counts of a built context), ``fill`` (choosing filler pieces to fill a budget). Nothing here knows a
kind of data.
"""
