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

# How transcripts are cut into units: `qcode run` and `qcode train` take them under the same names
# (a model is trained on the units the runs will code).
UnitOption = Annotated[
    str | None,
    typer.Option(
        "--unit", help="What is coded as one: chunk (whole turns up to --chunk-size) or turn (each speaker turn)."
    ),
]
ChunkSizeOption = Annotated[
    int | None, typer.Option("--chunk-size", help="Largest chunk in characters (default 1200).")
]
OverlapOption = Annotated[
    int | None, typer.Option("--overlap", help="Characters of trailing turns repeated in the next chunk (default 0).")
]
MaxUnitCharsOption = Annotated[
    int | None,
    typer.Option("--max-unit-chars", help="--unit turn: a longer turn is split at sentences (default 8000)."),
]
SpeakersOption = Annotated[
    str | None,
    typer.Option(
        "--speakers",
        help="Code only the words of these speakers: names, comma-separated, case-insensitive, * wildcards.",
    ),
]
SkipSpeakersOption = Annotated[
    str | None,
    typer.Option(
        "--skip-speakers", help="Do not code the words of these speakers (e.g. 'interviewer,Q'); they stay as context."
    ),
]
IdColumnOption = Annotated[str | None, typer.Option("--id-column", help="CSV: the column identifying each response.")]
TextColumnOption = Annotated[str | None, typer.Option("--text-column", help="CSV: the column holding each response.")]
# Every command that reads transcripts refuses a file over this size before it reads it: a 2 GB file
# named .txt, or a document that unpacks to gigabytes, would otherwise hold the run for minutes.
MaxFileMbOption = Annotated[
    int | None,
    typer.Option(
        "--max-file-mb",
        min=1,
        help="Refuse any file larger than this many MB (2^20 bytes) before reading it (default 100).",
    ),
]
