"""CSV files of open-ended responses: one transcript per row; the other columns are case metadata."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import IngestError
from pipeline.ingest.sources import CsvOptions
from pipeline.ingest.text import new_transcript
from pipeline.transcript import Transcript, Turn

if TYPE_CHECKING:  # pandas is slow to import, and only CSV files need it
    import pandas as pd

_ID_NAMES = (
    "id",
    "respondent_id",
    "respondent",
    "participant_id",
    "participant",
    "response_id",
    "record_id",
    "case_id",
)
_TEXT_NAMES = ("response", "text", "answer", "comment", "comments", "open_response", "open_ended", "feedback")


def read_responses(
    path: Path, name: str, text: str, encoding: str, metadata: dict[str, str], options: CsvOptions
) -> list[Transcript]:
    frame = read_table(path, text, "not a readable CSV")
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if frame.empty:
        raise IngestError(path, "CSV has a header but no rows")
    text_column = _pick_text_column(path, frame, options)
    id_column = _pick_id_column(path, frame, options, text_column)

    transcripts = []
    for row_number, row in enumerate(frame.to_dict(orient="records"), start=2):
        response = str(row[text_column]).strip()
        if not response:
            continue
        key = str(row[id_column]).strip() if id_column else str(row_number - 1)
        row_metadata = {c: str(v) for c, v in row.items() if c not in (text_column, id_column) and str(v).strip()}
        if id_column:
            row_metadata[id_column] = key
        turn = Turn(index=0, speaker=key, start=0, end=len(response), text_start=0)
        transcripts.append(
            new_transcript(
                path,
                name,
                "csv",
                encoding,
                response,
                [turn],
                {**metadata, **row_metadata},
                key=key,
                notes=[f"CSV row {row_number}"],
            )
        )
    if not transcripts:
        raise IngestError(path, f"column '{text_column}' has no responses")
    return transcripts


def read_table(path: Path, text: str, problem: str) -> pd.DataFrame:
    """A CSV with its delimiter (comma, semicolon, tab or bar) detected from the header."""
    import pandas as pd

    header = text.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=delimiter)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise IngestError(path, f"{problem}: {exc}") from exc


def _pick_text_column(path: Path, frame: pd.DataFrame, options: CsvOptions) -> str:
    columns = list(frame.columns)
    if options.text_column:
        if options.text_column not in columns:
            raise IngestError(path, f"no column '{options.text_column}' (columns: {', '.join(columns)})")
        return options.text_column
    lowered = {c.lower().strip(): c for c in columns}
    for name in _TEXT_NAMES:
        if name in lowered:
            return lowered[name]
    for c in columns:
        if any(word in c.lower() for word in ("response", "comment", "answer")):
            return c
    best, best_length = None, 0.0
    for c in columns:
        values = [v for v in frame[c] if v.strip()]
        if not values:
            continue
        prose = sum(1 for v in values if len(v.split()) >= 4) / len(values)
        mean = sum(len(v) for v in values) / len(values)
        if prose >= 0.5 and mean >= 30 and mean > best_length:
            best, best_length = c, mean
    if best is None:
        raise IngestError(
            path,
            f"no text column found (columns: {', '.join(columns)}); name one with --text-column",
        )
    return best


def _pick_id_column(path: Path, frame: pd.DataFrame, options: CsvOptions, text_column: str) -> str | None:
    if options.id_column:
        if options.id_column not in frame.columns:
            raise IngestError(path, f"no column '{options.id_column}' (columns: {', '.join(frame.columns)})")
        column: str = options.id_column
    else:
        lowered = {c.lower().strip(): c for c in frame.columns if c != text_column}
        found = next((lowered[n] for n in _ID_NAMES if n in lowered), None)
        if found is None:
            return None
        column = found
    values = [v.strip() for v in frame[column]]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise IngestError(path, f"id column '{column}' repeats values: {', '.join(duplicates[:5])}")
    return column
