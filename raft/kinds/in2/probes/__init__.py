"""Judge-free retrieval probes of long contexts (the IN2 paper's VAL probing; "lost in the middle").

    from raft.kinds.in2.probes import ProbeSettings, build_probes, score_probe
    docs = build_probes("meta-llama/Llama-3.1-8B-Instruct", "../shared/data/docs",
                        ProbeSettings(lengths=(4096, 8192), bins=10, samples=5))
    score_probe(doc["probe"], reply, doc["answer"], doc["cue"])   # {"em", "f1", "predicted"}

Three probes, built without a teacher from a fixed seed, the evaluated model's tokenizer and (for the
first) a corpus:

- ``document``: the context is corpus segments of ~128 tokens (whole sentences, ``raft.sources.chunking``);
  the question quotes the first 8 words of one sentence (a beginning that occurs once in the
  context) and asks for the rest of it (4 to 24 words); EM / F1 of the continuation.
- ``structured``: a JSON-lines table of seeded random UUID pairs ``{"key": ..., "value": ...}``; one
  key is asked, its value is the answer (the lost-in-the-middle paper's key-value task); EM.
- ``code``: seeded Python functions ``def f_<hex>(a, b, c)`` of one assignment and one return line;
  one is asked by name for its return expression; EM (whitespace aside).

The sweep is probes x ``lengths`` x ``bins`` x ``samples``. A doc's ``target_tokens`` is its length:
the whole prompt as the model sees it (chat template and generation prompt, when the tokenizer has a
template) has ``context_tokens`` tokens, at most the target and at least 1% below it. ``depth`` is
measured: the gold's first token (the asked sentence's, record's, function's: ``gold_start``; one past
its last: ``gold_end``) over ``context_tokens``; ``bin`` is ``floor(depth x bins)``, the bin it was
built for. Each doc also has ``id``, ``probe``, ``bins``, ``question``, ``answer``, ``cue`` (the quoted
beginning, key or function name) and ``prompt`` (the user message). Modules: ``build`` (the sweep,
one probe placed and measured), ``pools`` (each probe's pieces and targets), ``pieces`` (segments,
sentences, records, functions), ``prompter`` (settings; the tokenizer and its chat template),
``score``, ``templates`` (the prompt wording).
"""

from raft.kinds.in2.probes.build import PROBES, ProbeSettings, Prompter, build_probes
from raft.kinds.in2.probes.score import score_probe
from raft.kinds.in2.probes.templates import INSTRUCTIONS, PROMPT, QUESTIONS, probe_prompt

__all__ = [
    "INSTRUCTIONS",
    "PROBES",
    "PROMPT",
    "QUESTIONS",
    "ProbeSettings",
    "Prompter",
    "build_probes",
    "probe_prompt",
    "score_probe",
]
