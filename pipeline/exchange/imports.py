"""`qcode import`: a project coded in another QDA tool into the store: its codebook, its transcripts
(chunked as a run chunks them) and its people's codes, in one transaction."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field
from sqlalchemy import func, select

from pipeline.chunk import DEFAULT_OVERLAP, DEFAULT_SIZE, chunk_transcript
from pipeline.errors import ExchangeError
from pipeline.exchange.projects import Project
from pipeline.store import HumanCodeRecord, ImportRecord, Store, TranscriptRecord, now


class ImportSummary(BaseModel):
    import_id: str
    path: str
    project: str | None
    origin: str | None
    counting: str
    transcripts: int
    chunks: int
    codes: int
    codebook_version: str | None
    coders: list[str]
    human_codes: int
    merged: int = Field(description="codings of the same span with the same code by the same person, kept once")
    warnings: list[str]


def import_project(
    store: Store, project: Project, *, chunk_size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> ImportSummary:
    """Store a project's codebook, transcripts (chunked) and human codes: all of it, or nothing."""
    prepared = [(t, chunk_transcript(t, chunk_size, overlap)) for t in project.transcripts]
    import_id = str(uuid.uuid4())
    codebook = project.codebook.codebook if project.codebook else None
    with store.session() as s:
        for transcript in project.transcripts:
            existing = s.get(TranscriptRecord, transcript.id)
            if existing is not None and existing.text != transcript.text:
                raise ExchangeError(
                    f"{project.path}: source '{transcript.source_name}' carries the id of transcript "
                    f"{transcript.id} ({existing.source_name}) but not its text"
                )
        if codebook is not None:
            Store.add_codebook(s, codebook, str(project.path))
        for transcript, chunks in prepared:
            Store.save_transcript(s, transcript, chunks)
        record = ImportRecord(
            id=import_id,
            path=str(project.path),
            sha256=project.sha256,
            origin=project.origin,
            project_name=project.name,
            codebook_version=codebook.version if codebook else None,
            summary={},
            imported_at=now(),
        )
        s.add(record)
        s.flush()
        rows = [
            {
                "import_id": import_id,
                "transcript_id": c.transcript_id,
                "coder": c.coder,
                "code": c.code,
                "codebook_version": codebook.version if codebook else None,
                "start": c.start,
                "end": c.end,
                "original_start": c.original_start,
                "original_end": c.original_end,
                "note": c.note,
                "coded_at": c.coded_at,
            }
            for c in project.codes
        ]
        if rows:
            s.execute(store.insert(HumanCodeRecord).on_conflict_do_nothing(), rows)
        stored = (
            s.scalar(select(func.count()).select_from(HumanCodeRecord).where(HumanCodeRecord.import_id == import_id))
            or 0
        )
        record.summary = {
            "warnings": project.warnings,
            "coders": project.coders,
            "counting": project.counting,
            "human_codes": stored,
        }
    return ImportSummary(
        import_id=import_id,
        path=str(project.path),
        project=project.name,
        origin=project.origin,
        counting=project.counting,
        transcripts=len(prepared),
        chunks=sum(len(c) for _, c in prepared),
        codes=len(codebook.codes) if codebook else 0,
        codebook_version=codebook.version if codebook else None,
        coders=project.coders,
        human_codes=stored,
        merged=len(rows) - stored,
        warnings=project.warnings,
    )
