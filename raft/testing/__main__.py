"""``python -m raft.testing serve [--port 8000] [--latency S] [--capacity N]`` | ``tiny-model DIR`` |
``smollm2 [DIR]`` (the real SmolLM2-135M-Instruct as a transformers folder: raft.testing.smollm2) |
``screenshots DIR [--shared PATH]`` (the README's screenshots: raft.testing.screenshots)."""

from __future__ import annotations

import sys
import time

import raft.testing
from raft.testing.server import TeacherBehaviour, TeacherServer
from raft.testing.tiny import build_tiny_model


def main(argv: list[str]) -> None:
    if len(argv) >= 1 and argv[0] == "serve":
        port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 8000
        latency = float(argv[argv.index("--latency") + 1]) if "--latency" in argv else 0.0
        capacity = int(argv[argv.index("--capacity") + 1]) if "--capacity" in argv else None
        server = TeacherServer(port=port, behaviour=TeacherBehaviour(latency=latency, capacity=capacity)).start()
        print(f"fake teacher at {server.base_url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            server.stop()
    elif argv[:1] == ["screenshots"]:
        from raft.testing.screenshots import main as screenshots

        screenshots(argv[1:])
    elif argv[:1] == ["smollm2"] and len(argv) <= 2:
        from raft.testing.smollm2 import SmolLM2Error, build_smollm2

        try:
            print(build_smollm2(argv[1] if len(argv) == 2 else None))
        except SmolLM2Error as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(2) from None
    elif len(argv) == 2 and argv[0] == "tiny-model":
        print(build_tiny_model(argv[1]))
    else:
        print(raft.testing.__doc__)
        raise SystemExit(2)


if __name__ == "__main__":
    main(sys.argv[1:])
