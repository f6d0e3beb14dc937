"""The docs made from the code (docs/cli.md, README.md's table of the store) match the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generator():
    spec = importlib.util.spec_from_file_location("generate", ROOT / "docs" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_docs_match_the_code() -> None:
    made = generator().outputs()
    stale = [str(path.relative_to(ROOT)) for path, text in made.items() if path.read_text(encoding="utf-8") != text]
    assert not stale, f"{', '.join(stale)} differ from what the code makes: run python docs/generate.py"


def test_the_reference_has_every_command_and_the_store_table_every_table() -> None:
    module = generator()
    reference = module.cli_reference()
    for command in (
        "run",
        "schedule",
        "queue",
        "serve",
        "export",
        "import",
        "agreement",
        "eval",
        "report",
        "matrix",
        "codebook validate",
        "codebook import",
        "codebook export",
        "reviewer add",
        "reviewer grant",
        "reviewer revoke",
        "reviewer reset",
        "reviewer disable",
        "reviewer list",
    ):
        assert f"## `qcode {command}`" in reference
    table = module.store_table()
    for name in module.Base.metadata.tables:
        assert f"| `{name}` |" in table
