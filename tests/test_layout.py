"""The code's layout (README, "How the code is laid out"): a kind of data is one folder
(``raft/kinds/<kind>/``), shared code imports no kind module, no import circle, no private name
imported across modules, every module says its job and stays short; a new kind is found from its
folder alone (generation, evaluation, the data viewer)."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KINDS = ROOT / "raft" / "kinds"
MAX_LINES = 300


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((ROOT / "raft").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = modules()


def resolve(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str) -> list[tuple[str, str]]:
    """(module imported, name imported from it) for every import statement of ``module``, at any depth
    (an import inside a function is an edge too)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(t, "") for a in node.names if (t := resolve(a.name))]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for a in node.names:
                full = f"{base}.{a.name}"
                target = full if full in MODULES else resolve(base)
                if target:
                    found.append((target, "" if full in MODULES else a.name))
    return [(t, n) for t, n in found if t != module]


def kind_of(module: str) -> str | None:
    """The kind a module belongs to (``raft.kinds.<kind>...``), else None."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["raft", "kinds"] else None


def test_shared_code_imports_no_kind_module():
    """Everything outside raft/kinds/<kind>/ (and the test stand-ins in raft/testing, which play every
    kind's teacher) reaches a kind only through the registries (raft.kinds.make_kind, raft.evaluate.plugins,
    the data viewer), never by importing it; a kind imports no other kind."""
    wrong = []
    for module in MODULES:
        if module.startswith("raft.testing"):
            continue
        mine = kind_of(module)
        for target, _ in imports(module):
            theirs = kind_of(target)
            if theirs and theirs != mine:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle():
    graph = {m: {t for t, _ in imports(m)} for m in MODULES}
    # a package's __init__ that re-exports its modules is not a circle with them unless they import it back
    state: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                circles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[m] = 2

    sys.setrecursionlimit(10_000)
    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert not circles, "\n".join(" -> ".join(c) for c in circles)


def test_no_private_name_is_imported_across_modules():
    wrong = [f"{m} imports {n} from {t}" for m in MODULES for t, n in imports(m) if n.startswith("_")]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_says_its_job_and_stays_short(module):
    path = MODULES[module]
    text = path.read_text(encoding="utf-8")
    assert ast.get_docstring(ast.parse(text)), f"{path.relative_to(ROOT)}: no docstring saying its job"
    assert len(text.splitlines()) <= MAX_LINES, f"{path.relative_to(ROOT)}: {len(text.splitlines())} lines"


def test_each_kind_is_one_folder():
    """Every kind folder holds its generation side (kind.py); nothing of a kind is left at the root."""
    from raft.kinds import available_kinds

    kinds = available_kinds()
    assert kinds == sorted(p.name for p in KINDS.iterdir() if (p / "__init__.py").is_file())
    assert all((KINDS / k / "kind.py").is_file() for k in kinds)
    assert not [p.name for p in KINDS.glob("*.py") if p.name != "__init__.py"]


def test_a_new_kind_is_found_from_its_folder_alone(tmp_path, monkeypatch):
    """The README's "adding a kind": a folder raft/kinds/<kind>/ with kind.py (generation), evaluation.py
    (its lm-eval tasks) and preview.py (the data viewer) is picked up by kind=, raft.evaluate and the viewer."""
    import raft.kinds
    from raft.config import load_config
    from raft.evaluate import plugins
    from raft.generate import preview

    folder = tmp_path / "toy"
    folder.mkdir()
    (folder / "__init__.py").write_text('"""kind=toy: a kind made in a test."""\n')
    (folder / "kind.py").write_text(textwrap.dedent('''
        """The toy kind's rows."""
        from raft.kinds import Kind as BaseKind

        class Kind(BaseKind):
            name = "toy"

            def load(self):
                return 0
    '''))
    (folder / "evaluation.py").write_text(textwrap.dedent('''
        """The toy kind's task."""
        from raft.evaluate.plugins import TaskKind

        TASKS = TaskKind(name="toy", tasks=("toy_task",), data={"toy_task": ("toy_data", "RAFT_TOY_DATA")})
    '''))
    (folder / "preview.py").write_text(textwrap.dedent('''
        """The toy kind's view in the data viewer."""
        from raft.generate.preview_parts import plain_row as preview_row  # noqa: F401

        COLUMNS, FILTERS, LEGEND = ["id"], [], ""

        def recognises(columns):
            return "toy_field" in columns
    '''))
    monkeypatch.setattr(raft.kinds, "__path__", [*raft.kinds.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "raft.kinds.toy", raising=False)
    plugins.task_kinds.cache_clear()
    try:
        assert "toy" in raft.kinds.available_kinds()
        cfg = load_config("generate", ["kind=toy", "input=."])
        assert type(raft.kinds.make_kind(cfg, ".")).__module__ == "raft.kinds.toy.kind"
        assert plugins.kind_of_task("toy_task").name == "toy"
        assert plugins.task_data()["toy_task"] == ("toy_data", "RAFT_TOY_DATA")
        assert preview.guess_kind({"toy_field"}) == "toy" and preview.view_of("toy").columns == ["id"]
    finally:
        plugins.task_kinds.cache_clear()


def test_every_module_imports_first_on_its_own():
    """No circle at run time either: each module imported first in a fresh set of raft modules (a package's
    __init__ runs before its module, which the static check above does not see)."""
    import subprocess

    names = [m for m in MODULES if not m.endswith("__main__")]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for k in [k for k in sys.modules if k == 'raft' or k.startswith('raft.')]:\n"
        "        del sys.modules[k]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as e:\n"
        "        print(f'{name}: {type(e).__name__}: {e}')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr[-2000:]
