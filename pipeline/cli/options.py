"""Command-line options shared by the `qcode` commands, wherever their code lives."""

from __future__ import annotations

from typing import Annotated

import typer

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL or SQLite path (default: $QCODE_DB, then ./qcode.db).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
