"""RAFT recipes: generate chain-of-thought QA data with a teacher, fine-tune a small model, evaluate it."""

import logging

# bitsandbytes, on a CPU with AVX512-BF16, tries an optional 4-bit kernel from the hub through the `kernels`
# package and logs a warning when it is not installed, then uses its own CPU kernel: nothing for a user to
# do, and it would be the first line of every command's output (and of every one-line error) on such CPUs.
logging.getLogger("bitsandbytes.backends.cpu.ops").setLevel(logging.ERROR)
