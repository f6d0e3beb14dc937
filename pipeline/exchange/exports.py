"""Exports: suggestions with their full provenance, and the long coding table.

`jsonl` and `csv` write one record per suggestion; `codings` writes the long
table `unit_id,coder,code` (a unit is a chunk) that agreement statistics read:
one row per applied code, and one row with an empty code for a unit a coder
saw and applied nothing to; the coders are the model, reviewers coding blind
and the people whose codes came in with an imported project. `qdpx` writes a
REFI-QDA project (pipeline.exchange.projects).
"""

from __future__ import annotations

import csv
import itertools
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pipeline.store import (
    ChunkCodingRecord,
    ChunkRecord,
    CodebookRecord,
    RunChunkRecord,
    RunRecord,
    Store,
    StoreError,
    SuggestionRecord,
    TranscriptRecord,
)
from pipeline.suggestion import QUEUED

FORMATS = ("jsonl", "csv", "codings", "decisions", "blind", "qdpx")


def suggestion_records(store: Store, run_id: str | None = None, status: str | None = None) -> Iterator[dict[str, Any]]:
    """Every suggestion with its transcript, case metadata, chunk and provenance."""
    query = (
        select(SuggestionRecord, TranscriptRecord, ChunkRecord)
        .join(TranscriptRecord, SuggestionRecord.transcript_id == TranscriptRecord.id)
        .join(ChunkRecord, SuggestionRecord.chunk_id == ChunkRecord.id)
        .order_by(TranscriptRecord.source_name, TranscriptRecord.id, ChunkRecord.index, SuggestionRecord.code)
    )
    if run_id:
        query = query.where(
            SuggestionRecord.chunk_id.in_(select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id)),
            SuggestionRecord.coder_key == select(RunRecord.coder_key).where(RunRecord.id == run_id).scalar_subquery(),
        )
    if status == "queued":
        query = query.where(SuggestionRecord.status.in_(QUEUED))
    elif status:
        query = query.where(SuggestionRecord.status == status)
    with store.session() as s:
        names = _code_names(s)
        for suggestion, transcript, chunk in s.execute(query):
            yield {
                "suggestion_id": suggestion.id,
                "run_id": suggestion.run_id,
                "transcript_id": transcript.id,
                "source_path": transcript.source_path,
                "source_name": transcript.source_name,
                "metadata": transcript.case_metadata,
                "chunk_id": chunk.id,
                "chunk_index": chunk.index,
                "chunk_start": chunk.start,
                "chunk_end": chunk.end,
                "speakers": chunk.speakers,
                "code": suggestion.code,
                "code_name": names.get((suggestion.codebook_version, suggestion.code)),
                "justification": suggestion.justification,
                "quote": suggestion.quote,
                "quote_start": suggestion.quote_start,
                "quote_end": suggestion.quote_end,
                "confidence": suggestion.confidence,
                "status": suggestion.status,
                "coder": suggestion.coder,
                "model": suggestion.model,
                "prompt_version": suggestion.prompt_version,
                "codebook_version": suggestion.codebook_version,
                "parameters": suggestion.parameters,
                "input_tokens": suggestion.input_tokens,
                "output_tokens": suggestion.output_tokens,
                "duration_ms": suggestion.duration_ms,
                "created_at": suggestion.created_at.isoformat(),
            }


def _code_names(session: Any) -> dict[tuple[str, str], str]:
    names = {}
    for record in session.scalars(select(CodebookRecord)):
        for code in record.content.get("codes", []):
            names[(record.version, code["id"])] = code["name"]
    return names


def coding_rows(store: Store, run_id: str | None = None) -> Iterator[dict[str, str]]:
    """The long table: unit_id (chunk id), coder, code."""
    with store.session() as s:
        runs = {r.id: r for r in s.scalars(select(RunRecord))}
        query = select(ChunkCodingRecord).where(ChunkCodingRecord.status == "coded")
        if run_id:
            query = query.where(
                ChunkCodingRecord.coder_key == runs[run_id].coder_key,
                ChunkCodingRecord.chunk_id.in_(select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id)),
            )
        codings = list(s.scalars(query.order_by(ChunkCodingRecord.coder_key, ChunkCodingRecord.chunk_id)))
        labels = _coder_labels(runs.values())
        applied: dict[tuple[str, str], list[str]] = {}
        for chunk_id, key, code in s.execute(
            select(SuggestionRecord.chunk_id, SuggestionRecord.coder_key, SuggestionRecord.code)
        ):
            applied.setdefault((chunk_id, key), []).append(code)
    for coding in codings:
        label = labels.get(coding.coder_key, coding.coder_key)
        codes = sorted(applied.get((coding.chunk_id, coding.coder_key), []))
        for code in codes or [""]:
            yield {"unit_id": coding.chunk_id, "coder": label, "code": code}


def _coder_labels(runs: Any) -> dict[str, str]:
    """A readable name per coder configuration, e.g. 'offline:all-MiniLM-L6-v2'."""
    by_key: dict[str, str] = {}
    for run in runs:
        by_key[run.coder_key] = f"{run.coder}:{run.model.rsplit('/', 1)[-1]}"
    counts: dict[str, int] = {}
    for label in by_key.values():
        counts[label] = counts.get(label, 0) + 1
    return {key: label if counts[label] == 1 else f"{label}#{key[:6]}" for key, label in by_key.items()}


def resolve_run(store: Store, run_id: str | None) -> str | None:
    """A run id, with 'latest' for the most recent run; an unknown id is an error."""
    if run_id is None:
        return None
    with store.session() as s:
        if run_id == "latest":
            found = s.scalar(select(RunRecord.id).order_by(RunRecord.started_at.desc()).limit(1))
            if found is None:
                raise StoreError("the database has no runs yet")
            return found
        if s.get(RunRecord, run_id) is None:
            raise StoreError(f"no run '{run_id}' in the database")
    return run_id


@contextmanager
def written_aside(out: Path) -> Iterator[Path]:
    """A file appears whole or not at all: the caller writes the path yielded, beside `out`, and it
    is moved into place when the block ends without an error (and removed when it does not)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(out.name + ".partial")
    try:
        yield temporary
        temporary.replace(out)
    finally:
        temporary.unlink(missing_ok=True)


def export(store: Store, fmt: str, out: Path | None, run_id: str | None = None, status: str | None = None) -> int:
    """Write an export file (standard output when `out` is None); returns the number of records.
    A file appears whole or not at all: it is written aside and moved into place."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    run_id = resolve_run(store, run_id)
    if fmt == "qdpx":
        from pipeline.exchange.projects import write_project

        if out is not None:
            return write_project(store, out, run_id).codings
        with tempfile.TemporaryDirectory() as folder:  # a ZIP is written whole, then copied out
            written = write_project(store, Path(folder) / "project.qdpx", run_id)
            with open(written.path, "rb") as handle:
                shutil.copyfileobj(handle, sys.stdout.buffer)
            sys.stdout.buffer.flush()
        return written.codings
    if out is None:
        return _write(store, fmt, sys.stdout, run_id, status)
    with written_aside(out) as temporary, temporary.open("w", encoding="utf-8", newline="") as handle:
        return _write(store, fmt, handle, run_id, status)


def _write(store: Store, fmt: str, handle: Any, run_id: str | None, status: str | None) -> int:
    count = 0
    if fmt == "jsonl":
        for record in suggestion_records(store, run_id, status):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    elif fmt == "csv":
        records = [_flatten(r) for r in suggestion_records(store, run_id, status)]
        columns = list(dict.fromkeys(key for record in records for key in record)) or ["suggestion_id"]
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
        count = len(records)
    elif fmt == "decisions":
        from pipeline.review.decisions import decision_log

        records = [{k: _inert(v) for k, v in r.items()} for r in decision_log(store)]
        columns = list(records[0]) if records else DECISION_COLUMNS
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
        count = len(records)
    else:
        from pipeline.review.blind import blind_rows

        writer = csv.DictWriter(handle, fieldnames=["unit_id", "coder", "code"])
        writer.writeheader()
        rows = blind_rows(store, run_id=run_id)
        if fmt == "codings":
            from pipeline.store.human_codes import human_rows

            rows = itertools.chain(coding_rows(store, run_id), rows, human_rows(store, run_id))
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


def _inert(value: Any) -> Any:
    """Reviewers' free text as a spreadsheet shows it, never as a formula it runs (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


DECISION_COLUMNS = [
    "decision_id",
    "decided_at",
    "reviewer",
    "verdict",
    "suggestion_id",
    "rejection_id",
    "chunk_id",
    "transcript_id",
    "source_name",
    "suggested_code",
    "suggested_quote",
    "suggested_quote_start",
    "suggested_quote_end",
    "confidence",
    "routing",
    "final_code",
    "quote_start",
    "quote_end",
    "quote",
    "reason",
    "note",
    "coder",
    "model",
    "prompt_version",
    "codebook_version",
]


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in record.items() if k not in ("metadata", "speakers", "parameters")}
    flat["speakers"] = "; ".join(s or "" for s in record["speakers"])
    flat["parameters"] = json.dumps(record["parameters"], sort_keys=True)
    flat.update({f"case_{k}": v for k, v in record["metadata"].items()})
    return flat
