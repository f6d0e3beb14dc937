"""The store: every transcript, chunk, run, suggestion, rejection and decision.

SQLAlchemy 2 over a SQLite file by default, or any database URL. The schema is
created and upgraded by Alembic migrations (pipeline/store/migrations) when a store
is opened. Each write that belongs together is one transaction, so a crash or
kill leaves the store consistent and the next run finishes the work.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from pipeline import __version__
from pipeline.chunk import Chunk, ChunkTurn, for_coder
from pipeline.codebook import Codebook
from pipeline.errors import StoreBusy, StoreError
from pipeline.store.migrations import upgrade
from pipeline.store.records import (
    AssignmentRecord,
    Base,
    BatchRecord,
    ChunkCodingRecord,
    ChunkRecord,
    CodebookRecord,
    DecisionRecord,
    EmbeddingRecord,
    GrantRecord,
    HumanCodeRecord,
    ImportRecord,
    LearnedModelRecord,
    ModelCallRecord,
    OpeningRecord,
    PassageWordsRecord,
    RejectionRecord,
    ReviewerRecord,
    ReviewerSessionRecord,
    RunChunkRecord,
    RunRecord,
    SuggestionRecord,
    TranscriptRecord,
    TurnRecord,
    now,
)
from pipeline.suggestion import ChunkCoding, Provenance, Rejection, Suggestion, Usage
from pipeline.transcript import Transcript, Turn
from pipeline.words import TranscriptWords

__all__ = [
    "AssignmentRecord",
    "Base",
    "BatchRecord",
    "ChunkCodingRecord",
    "ChunkRecord",
    "CodebookRecord",
    "DecisionRecord",
    "EmbeddingRecord",
    "GrantRecord",
    "HumanCodeRecord",
    "ImportRecord",
    "LearnedModelRecord",
    "ModelCallRecord",
    "OpeningRecord",
    "PassageWordsRecord",
    "RejectionRecord",
    "ReviewerRecord",
    "ReviewerSessionRecord",
    "RunChunkRecord",
    "RunRecord",
    "Store",
    "StoreError",
    "SuggestionRecord",
    "TranscriptRecord",
    "TurnRecord",
    "chunk_of",
    "database_url",
    "has_password",
    "in_batches",
    "now",
    "redact",
    "transcripts_of",
]

DEFAULT_DB = "qcode.db"
_DRIVERS = ("psycopg", "psycopg2", "pymysql", "MySQLdb")


def database_url(db: str | None = None) -> str:
    """--db, then QCODE_DB, then ./qcode.db. A bare path means a SQLite file.

    A URL whose password reads `***` (as qcode records it, see `redact`) takes
    the password from QCODE_DB, so passwords never sit in run records.
    """
    value = db or os.environ.get("QCODE_DB") or DEFAULT_DB
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    url = make_url(value)
    if url.password == "***":
        secret = os.environ.get("QCODE_DB", "")
        if "://" in secret and redact(secret) == url.render_as_string(hide_password=True):
            return secret
        raise StoreError(f"{redact(value)}: the password is hidden; give the full URL in QCODE_DB")
    return value


def _busy(exc: OperationalError) -> bool:
    """SQLite's "database is locked" (or busy); PostgreSQL's lock_not_available."""
    message = str(getattr(exc, "orig", exc)).lower()
    return (
        "database is locked" in message or "database is busy" in message or getattr(exc.orig, "pgcode", "") == "55P03"
    )


def redact(url: str) -> str:
    """The URL with any password shown as ***."""
    return make_url(url).render_as_string(hide_password=True) if "://" in url else url


def has_password(url: str | None) -> bool:
    return bool(url and "://" in url and make_url(url).password not in (None, "***"))


BUSY_SECONDS = 30.0  # how long a write waits for another program's to finish, by default


class Store:
    """The store over one database. A write waits up to `busy_seconds` for another program's write
    lock (SQLite) and then raises StoreBusy."""

    def __init__(
        self, db: str | None = None, migrate: bool = True, create: bool = True, busy_seconds: float = BUSY_SECONDS
    ):
        self.url = database_url(db)
        self.busy_seconds = busy_seconds
        if not create and self.url.startswith("sqlite:///"):
            path = Path(self.url.removeprefix("sqlite:///"))
            if not path.exists():
                raise StoreError(f"no database at {path}", hint="name one with --db or QCODE_DB")
        try:
            self.engine: Engine = create_engine(self.url)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", self._sqlite_pragmas)
            self.sessions = sessionmaker(self.engine, expire_on_commit=False)
            if migrate:
                upgrade(self.engine)
        except ModuleNotFoundError as exc:
            if exc.name not in _DRIVERS:
                raise
            raise StoreError(
                f"the database driver '{exc.name}' is not installed",
                hint="for PostgreSQL: pip install 'qcode[postgres]'",
            ) from None
        except (DatabaseError, ArgumentError) as exc:  # DatabaseError: not reachable, not a database...
            raise StoreError(
                f"{redact(self.url)}: the database cannot be opened: {getattr(exc, 'orig', None) or exc}"
            ) from None

    def _sqlite_pragmas(self, dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # in WAL mode NORMAL survives a killed process; only an OS crash can lose the last commits
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(self.busy_seconds * 1000)}")
        cursor.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        try:
            with self.sessions.begin() as session:
                yield session
        except OperationalError as exc:
            if _busy(exc):
                raise StoreBusy(
                    f"{redact(self.url)}: another program is writing to the database (waited "
                    f"{self.busy_seconds:g} s); try again"
                ) from None
            raise

    def insert(self, table: Any) -> Any:
        """An INSERT that can say ON CONFLICT DO NOTHING on both SQLite and PostgreSQL."""
        if self.engine.dialect.name == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # --- codebooks and runs ---------------------------------------------------

    def save_codebook(self, codebook: Codebook, source_path: str) -> None:
        with self.session() as s:
            self.add_codebook(s, codebook, source_path)

    @staticmethod
    def add_codebook(s: Session, codebook: Codebook, source_path: str) -> None:
        """The codebook, within a transaction of the caller's; once per version."""
        if s.get(CodebookRecord, codebook.version) is None:
            s.add(
                CodebookRecord(
                    version=codebook.version,
                    name=codebook.name,
                    source_path=source_path,
                    content=codebook.model_dump(mode="json"),
                    created_at=now(),
                )
            )

    def start_run(
        self,
        provenance: Provenance,
        codebook: Codebook,
        inputs: list[str],
        parameters: dict[str, Any],
        name: str | None = None,
    ) -> str:
        run_id = str(uuid.uuid4())
        host = socket.gethostname()
        with self.session() as s:
            for other in s.scalars(select(RunRecord).where(RunRecord.status == "running", RunRecord.host == host)):
                if not _alive(other.pid):
                    other.status = "interrupted"  # killed: its process is gone
            s.add(
                RunRecord(
                    host=host,
                    pid=os.getpid(),
                    id=run_id,
                    name=name,
                    started_at=now(),
                    finished_at=None,
                    status="running",
                    coder=provenance.coder,
                    model=provenance.model,
                    coder_key=provenance.coder_key,
                    prompt_version=provenance.prompt_version,
                    codebook_name=codebook.name,
                    codebook_version=codebook.version,
                    parameters=parameters,
                    inputs=inputs,
                    summary=None,
                    qcode_version=__version__,
                )
            )
        return run_id

    def add_run_chunks(self, run_id: str, chunk_ids: Sequence[str]) -> None:
        with self.session() as s:
            s.add_all(RunChunkRecord(run_id=run_id, chunk_id=c) for c in dict.fromkeys(chunk_ids))

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any]) -> None:
        with self.session() as s:
            run = s.get_one(RunRecord, run_id)
            run.status = status
            run.finished_at = now()
            run.summary = summary

    # --- transcripts and chunks -------------------------------------------------

    def save_transcripts(self, prepared: Sequence[tuple[Transcript, Sequence[Chunk]]]) -> None:
        """Store the transcripts of one file with their turns and chunks, all or nothing.

        A transcript already stored gets its metadata refreshed and any chunks
        of a new chunk size added; nothing is duplicated.
        """
        with self.session() as s:
            for transcript, chunks in prepared:
                self.save_transcript(s, transcript, chunks)

    @staticmethod
    def save_transcript(s: Session, transcript: Transcript, chunks: Sequence[Chunk]) -> None:
        # rows go in as one INSERT per table: the ORM's bookkeeping of an object per turn
        # and chunk cost more than storing them
        record = s.get(TranscriptRecord, transcript.id)
        if record is None:
            s.execute(
                insert(TranscriptRecord),
                [
                    dict(
                        id=transcript.id,
                        source_path=transcript.source_path,
                        source_name=transcript.source_name,
                        format=transcript.format,
                        encoding=transcript.encoding,
                        text=transcript.text,
                        case_metadata=transcript.metadata,
                        notes=transcript.notes,
                        ingested_at=now(),
                    )
                ],
            )
            if transcript.turns:
                s.execute(
                    insert(TurnRecord),
                    [dict(transcript_id=transcript.id, **turn.model_dump()) for turn in transcript.turns],
                )
        else:
            record.case_metadata = transcript.metadata
            record.source_path = transcript.source_path
            s.flush()
        known = set(s.scalars(select(ChunkRecord.id).where(ChunkRecord.transcript_id == transcript.id)))
        rows = [
            dict(
                id=c.id,
                transcript_id=c.transcript_id,
                index=c.index,
                start=c.start,
                end=c.end,
                text=c.text,
                speakers=c.speakers,
                first_turn=c.first_turn,
                last_turn=c.last_turn,
                turns=[t.model_dump() for t in c.turns],
                unit=c.unit,
                part=c.part,
                parts=c.parts,
                page_start=c.page_start,
                page_end=c.page_end,
            )
            for c in chunks
            if c.id not in known
        ]
        if rows:
            s.execute(insert(ChunkRecord), rows)
            turns = sorted(transcript.turns, key=lambda t: t.index)
            words = TranscriptWords(transcript.text, [(t.text_start, t.end) for t in turns])
            s.execute(
                insert(PassageWordsRecord),
                [
                    dict(chunk_id=c.id, key=key, start=start, end=end)
                    for c in chunks
                    if c.id not in known
                    for key, start, end in words.passage(c.start, c.end, c.first_turn, c.last_turn)
                ],
            )

    def coded_chunk_ids(self, chunk_ids: Iterable[str], coder_key: str) -> set[str]:
        """Those of the chunk ids coded under this coder already (a failed chunk is not coded)."""
        done: set[str] = set()
        with self.session() as s:
            for part in in_batches(list(chunk_ids)):
                done |= set(
                    s.scalars(
                        select(ChunkCodingRecord.chunk_id).where(
                            ChunkCodingRecord.coder_key == coder_key,
                            ChunkCodingRecord.status == "coded",
                            ChunkCodingRecord.chunk_id.in_(part),
                        )
                    )
                )
        return done

    def pending_chunks(self, chunk_ids: Iterable[str], coder_key: str) -> list[Chunk]:
        """Those of the chunks (stored) not yet coded under this coder (failed ones are retried)."""
        ids = list(chunk_ids)
        done = self.coded_chunk_ids(ids, coder_key)
        with self.session() as s:
            wanted = [i for i in ids if i not in done]
            records: dict[str, ChunkRecord] = {}
            for part in in_batches(wanted):
                records.update((r.id, r) for r in s.scalars(select(ChunkRecord).where(ChunkRecord.id.in_(part))))
            transcripts: dict[str, TranscriptRecord] = {}
            for part in in_batches(sorted({r.transcript_id for r in records.values()})):
                transcripts.update(
                    (t.id, t) for t in s.scalars(select(TranscriptRecord).where(TranscriptRecord.id.in_(part)))
                )
        chunks = []
        for i in wanted:
            if i in records:
                chunk = chunk_of(records[i])
                transcript = transcripts[chunk.transcript_id]
                chunks.append(for_coder(chunk, transcript.text, transcript.case_metadata))
        return chunks

    # --- coding results -----------------------------------------------------------

    def save_codings(
        self,
        run_id: str,
        provenance: Provenance,
        results: Sequence[tuple[ChunkCoding, list[Suggestion], list[Rejection]]],
    ) -> None:
        """Store a batch of chunk codings with their suggestions and rejections, all or nothing."""
        stamp = now()
        recorded = dict(
            coder=provenance.coder,
            model=provenance.model,
            prompt_version=provenance.prompt_version,
            codebook_version=provenance.codebook_version,
            run_id=run_id,
            coder_key=provenance.coder_key,
            created_at=stamp,
        )
        codings: list[dict[str, Any]] = []
        suggestion_rows: list[dict[str, Any]] = []
        rejection_rows: list[dict[str, Any]] = []
        with self.session() as s:
            existing = {
                r.chunk_id: r
                for r in s.scalars(
                    select(ChunkCodingRecord).where(
                        ChunkCodingRecord.coder_key == provenance.coder_key,
                        ChunkCodingRecord.chunk_id.in_([coding.chunk_id for coding, _, _ in results]),
                    )
                )
            }
            for coding, suggestions, rejections in results:
                record = existing.get(coding.chunk_id)
                if record is not None and record.status == "coded":
                    continue  # coded meanwhile by another process
                state = dict(
                    run_id=run_id,
                    status="failed" if coding.error else "coded",
                    error=coding.error,
                    reason=(coding.reason or _kind(coding.error)) if coding.error else None,
                    raw=coding.raw,
                    input_tokens=coding.usage.input_tokens,
                    cached_input_tokens=coding.usage.cached_input_tokens,
                    output_tokens=coding.usage.output_tokens,
                    requests=coding.usage.requests,
                    cache_hits=coding.usage.cache_hits,
                    duration_ms=coding.duration_ms,
                    coded_at=stamp,
                )
                if record is None:
                    codings.append(dict(chunk_id=coding.chunk_id, coder_key=provenance.coder_key, **state))
                else:  # failed before: coded again now
                    for name, value in state.items():
                        setattr(record, name, value)
                if coding.error:
                    continue
                suggestion_rows += [
                    dict(
                        **suggestion.model_dump(),
                        **recorded,
                        parameters=provenance.parameters,
                        input_tokens=coding.usage.input_tokens,
                        output_tokens=coding.usage.output_tokens,
                        duration_ms=coding.duration_ms,
                    )
                    for suggestion in suggestions
                ]
                rejection_rows += [
                    dict(
                        **rejection.model_dump(exclude={"code"}),
                        code=_fit(rejection.code, RejectionRecord.code),
                        **recorded,
                    )
                    for rejection in rejections
                ]
            # one INSERT of many rows per table: the ORM's bookkeeping of an object per row
            # cost more than the rows themselves
            for table, rows in (
                (ChunkCodingRecord, codings),
                (SuggestionRecord, suggestion_rows),
                (RejectionRecord, rejection_rows),
            ):
                if rows:
                    s.execute(insert(table), rows)

    def run_usage(self, run_id: str) -> Usage:
        """Tokens, requests and cache hits of the model calls made by one run."""
        columns = (
            ChunkCodingRecord.input_tokens,
            ChunkCodingRecord.cached_input_tokens,
            ChunkCodingRecord.output_tokens,
            ChunkCodingRecord.requests,
            ChunkCodingRecord.cache_hits,
        )
        with self.session() as s:
            row = s.execute(
                select(*(func.coalesce(func.sum(c), 0) for c in columns)).where(ChunkCodingRecord.run_id == run_id)
            ).one()
        return Usage(
            input_tokens=row[0], cached_input_tokens=row[1], output_tokens=row[2], requests=row[3], cache_hits=row[4]
        )

    def failures(self, chunk_ids: Sequence[str], coder_key: str) -> list[dict[str, Any]]:
        """Why chunks came to nothing under one coder, by kind, most first: failures (coded again
        next run) and replies nothing could be read from (sent to a person), each with an example."""
        kinds: dict[tuple[str, str], dict[str, Any]] = {}

        def count(reason: str, then: str, example: str | None) -> None:
            entry = kinds.setdefault((reason, then), {"reason": reason, "chunks": 0, "example": example, "then": then})
            entry["chunks"] += 1

        with self.session() as s:
            for part in in_batches(chunk_ids):
                for reason, error in s.execute(
                    select(ChunkCodingRecord.reason, ChunkCodingRecord.error).where(
                        ChunkCodingRecord.coder_key == coder_key,
                        ChunkCodingRecord.chunk_id.in_(part),
                        ChunkCodingRecord.status == "failed",
                    )
                ):
                    count(reason or _kind(error), "coded again next run", error)
                for reason, raw in s.execute(
                    select(RejectionRecord.reason, RejectionRecord.raw).where(
                        RejectionRecord.coder_key == coder_key,
                        RejectionRecord.chunk_id.in_(part),
                        RejectionRecord.code.is_(None),
                    )
                ):
                    said = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
                    count(
                        reason.split(":", 1)[0] if reason.startswith("the model refused") else reason,
                        "sent to a person",
                        f"{reason} ({' '.join(said.split())[:200]})" if said else reason,
                    )
        return sorted(kinds.values(), key=lambda k: (-k["chunks"], k["reason"]))

    def tally(self, chunk_ids: Sequence[str], coder_key: str) -> dict[str, Any]:
        """Counts over the given chunks under one coder: what a run summary reports."""
        counts = {"accepted": 0, "review": 0, "audit": 0, "rejected": 0, "failed_chunks": 0, "coded_chunks": 0}
        with self.session() as s:
            for part in in_batches(chunk_ids):
                for status, n in s.execute(
                    select(SuggestionRecord.status, func.count())
                    .where(SuggestionRecord.coder_key == coder_key, SuggestionRecord.chunk_id.in_(part))
                    .group_by(SuggestionRecord.status)
                ):
                    counts[status] = counts.get(status, 0) + n
                counts["rejected"] += (
                    s.scalar(
                        select(func.count())
                        .select_from(RejectionRecord)
                        .where(RejectionRecord.coder_key == coder_key, RejectionRecord.chunk_id.in_(part))
                    )
                    or 0
                )
                for status, n in s.execute(
                    select(ChunkCodingRecord.status, func.count())
                    .where(ChunkCodingRecord.coder_key == coder_key, ChunkCodingRecord.chunk_id.in_(part))
                    .group_by(ChunkCodingRecord.status)
                ):
                    counts["coded_chunks" if status == "coded" else "failed_chunks"] += n
        return counts


def _kind(error: str | None) -> str:
    """The kind of a failure recorded without one: the error's name ("TimeoutError: ...")."""
    return (error or "").split(":", 1)[0].strip()[:120] or "unknown"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def transcripts_of(session: Session, ids: Iterable[str]) -> list[Transcript]:
    """Stored transcripts with their turns, as ingest made them (their case metadata as stored)."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    turns: dict[str, list[Turn]] = {}
    for t in session.scalars(select(TurnRecord).where(TurnRecord.transcript_id.in_(wanted)).order_by(TurnRecord.index)):
        turns.setdefault(t.transcript_id, []).append(Turn.model_validate(t, from_attributes=True))
    return [
        Transcript(
            id=r.id,
            source_path=r.source_path,
            source_name=r.source_name,
            format=r.format,
            encoding=r.encoding,
            text=r.text,
            turns=turns.get(r.id, []),
            metadata={str(k): str(v) for k, v in (r.case_metadata or {}).items()},
        )
        for r in session.scalars(select(TranscriptRecord).where(TranscriptRecord.id.in_(wanted)))
    ]


def chunk_of(record: ChunkRecord) -> Chunk:
    """A stored chunk as the noun the steps work with."""
    return Chunk(
        id=record.id,
        transcript_id=record.transcript_id,
        index=record.index,
        start=record.start,
        end=record.end,
        text=record.text,
        speakers=record.speakers,
        first_turn=record.first_turn,
        last_turn=record.last_turn,
        turns=[ChunkTurn.model_validate(t) for t in record.turns],
        unit="turn" if record.unit == "turn" else "chunk",
        part=record.part,
        parts=record.parts,
        page_start=record.page_start,
        page_end=record.page_end,
    )


def _fit(value: str | None, column: Any) -> str | None:
    """A value cut to its column's length. A rejected proposal's code is whatever the model said,
    of any length: PostgreSQL refuses a string longer than its VARCHAR (SQLite never checks), and
    with it the transaction of the whole batch. The rejection's raw proposal keeps it whole."""
    length = column.type.length
    if value is None or length is None or len(value) <= length:
        return value
    return value[: length - 1] + "…"


IN_BATCH = 500  # values in one SQL `IN (...)`: well under every database's limit on parameters


def in_batches(items: Iterable[str], size: int = IN_BATCH) -> Iterator[list[str]]:
    """The items in lists of at most `size`, for queries that match them with `IN`."""
    values = list(items)
    for i in range(0, len(values), size):
        yield values[i : i + size]
