"""Command-line options that several `qcode` commands share, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL or SQLite path (default: $QCODE_DB, then ./qcode.db).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace the file named by --out if it exists.")]
RunOption = Annotated[
    str | None,
    typer.Option("--run", help="Only this run (an id, or latest); default: every run in the database."),
]
OutOption = Annotated[Path | None, typer.Option("--out", help="The file to write (default: standard output).")]
