"""The store's tables, one record class each: what qcode keeps, and what a researcher can query.

A record's docstring says what its table holds; the README's table of the store is made from them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class RunRecord(Base):
    """Each run: coder, model, codebook version, parameters, inputs, times and summary."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))  # what the researcher called it (qcode run --name)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16))
    coder: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    coder_key: Mapped[str] = mapped_column(String(16))
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    codebook_name: Mapped[str] = mapped_column(String(200))
    codebook_version: Mapped[str] = mapped_column(String(16), ForeignKey("codebooks.version"))
    parameters: Mapped[dict[str, Any]]
    inputs: Mapped[list[Any]]
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    qcode_version: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]


class RunChunkRecord(Base):
    """The chunks each run covered (coded then, or already coded before), so `export --run ID` matches
    that run's summary."""

    __tablename__ = "run_chunks"

    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    chunk_id: Mapped[str] = mapped_column(String(16), ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True)


class CodebookRecord(Base):
    """Every codebook version used, in full."""

    __tablename__ = "codebooks"

    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source_path: Mapped[str] = mapped_column(Text)
    content: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class TranscriptRecord(Base):
    """The text of each transcript as read, with its case metadata and encoding notes."""

    __tablename__ = "transcripts"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    source_path: Mapped[str] = mapped_column(Text)
    source_name: Mapped[str] = mapped_column(String(500))
    format: Mapped[str] = mapped_column(String(16))
    encoding: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    case_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    notes: Mapped[list[Any]]
    ingested_at: Mapped[datetime]


class TurnRecord(Base):
    """The speaker turns of each transcript, with their offsets and timestamps."""

    __tablename__ = "turns"

    transcript_id: Mapped[str] = mapped_column(
        String(16), ForeignKey("transcripts.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    speaker: Mapped[str | None] = mapped_column(String(200))
    start: Mapped[int]
    end: Mapped[int]
    text_start: Mapped[int]
    timestamp: Mapped[str | None] = mapped_column(String(32))
    page_start: Mapped[int | None]
    page_end: Mapped[int | None]


class ChunkRecord(Base):
    """The units each transcript was cut into (chunks of turns, or turns), with their exact offsets,
    speakers, and pages."""

    __tablename__ = "chunks"
    __table_args__ = (Index("ix_chunks_transcript", "transcript_id", "index"),)

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    transcript_id: Mapped[str] = mapped_column(String(16), ForeignKey("transcripts.id", ondelete="CASCADE"))
    index: Mapped[int]
    start: Mapped[int]
    end: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    speakers: Mapped[list[Any]]
    first_turn: Mapped[int]
    last_turn: Mapped[int]
    turns: Mapped[list[Any]]
    unit: Mapped[str] = mapped_column(String(8), default="chunk", server_default="chunk")
    part: Mapped[int | None]
    parts: Mapped[int | None]
    page_start: Mapped[int | None]
    page_end: Mapped[int | None]


class PassageWordsRecord(Base):
    """Where each passage's words lie, as every copy of its transcript places them whatever its file
    name: under a hash of the transcript's whitespace-normalised text, and under a hash of each turn
    it touches (with the turns either side), its span there. Passages whose spans under one key
    overlap share words: one passage for blind coding, samples and the queue."""

    __tablename__ = "passage_words"
    __table_args__ = (Index("ix_passage_words_key", "key"),)

    chunk_id: Mapped[str] = mapped_column(String(16), ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    start: Mapped[int]
    end: Mapped[int]


class ChunkCodingRecord(Base):
    """That a chunk was coded (or failed, with the error) under a coder configuration; requests, cache
    hits, tokens and time."""

    __tablename__ = "chunk_codings"

    chunk_id: Mapped[str] = mapped_column(String(16), ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True)
    coder_key: Mapped[str] = mapped_column(String(16), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id"))
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    # the kind of failure ("timed out", "server error (500)", ...): failures are counted by it
    reason: Mapped[str | None] = mapped_column(String(120))
    raw: Mapped[str | None] = mapped_column(Text)
    input_tokens: Mapped[int] = mapped_column(default=0)
    cached_input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    requests: Mapped[int] = mapped_column(default=0)
    cache_hits: Mapped[int] = mapped_column(default=0)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    coded_at: Mapped[datetime]


class ModelCallRecord(Base):
    """Every model call and its reply, addressed by a hash of everything that shapes the reply (the cache)."""

    __tablename__ = "model_calls"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    endpoint: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    request: Mapped[dict[str, Any]]
    response: Mapped[dict[str, Any]]
    input_tokens: Mapped[int] = mapped_column(default=0)
    cached_input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime]


class BatchRecord(Base):
    """Batch API jobs, pending and done, kept so a run survives restarts while one is pending."""

    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id"))
    coder_key: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    input_file_id: Mapped[str] = mapped_column(String(200))
    output_file_id: Mapped[str | None] = mapped_column(String(200))
    requests: Mapped[dict[str, Any]]
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class SuggestionRecord(Base):
    """Code, justification, quote and its absolute offsets, confidence, status (`accepted`, `review`,
    `audit`) and provenance of every suggestion; who settled it in review."""

    __tablename__ = "suggestions"
    __table_args__ = (
        UniqueConstraint("chunk_id", "coder_key", "code", name="uq_suggestion_chunk_coder_code"),
        Index("ix_suggestions_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id"))
    chunk_id: Mapped[str] = mapped_column(String(16), ForeignKey("chunks.id", ondelete="CASCADE"))
    transcript_id: Mapped[str] = mapped_column(String(16), ForeignKey("transcripts.id", ondelete="CASCADE"))
    coder_key: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(200))
    justification: Mapped[str] = mapped_column(Text)
    quote: Mapped[str] = mapped_column(Text)
    quote_start: Mapped[int]
    quote_end: Mapped[int]
    confidence: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    coder: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    codebook_version: Mapped[str] = mapped_column(String(16))
    parameters: Mapped[dict[str, Any]]
    input_tokens: Mapped[int] = mapped_column(default=0)
    output_tokens: Mapped[int] = mapped_column(default=0)
    duration_ms: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime]
    # optimistic concurrency for reviewers deciding the same suggestion at once
    version: Mapped[int] = mapped_column(default=1)
    # who settled it in review; the proposal itself is never changed
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(200))
    # why it goes to a person whatever its confidence ("possible instructions in the data")
    flag: Mapped[str | None] = mapped_column(String(200))

    __mapper_args__ = {"version_id_col": version}


class RejectionRecord(Base):
    """Proposals that failed validation, with the reason and the raw proposal, waiting for a person."""

    __tablename__ = "rejections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id"))
    chunk_id: Mapped[str] = mapped_column(String(16), ForeignKey("chunks.id", ondelete="CASCADE"))
    coder_key: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(200))
    quote: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[Any | None] = mapped_column(JSON)
    coder: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    prompt_version: Mapped[str | None] = mapped_column(String(64))
    codebook_version: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime]
    # a rejection waits for a person like a queued suggestion, with the same conflict rule
    version: Mapped[int] = mapped_column(default=1, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class DecisionRecord(Base):
    """Reviewers' decisions: verdict, final code, quote offsets, reason, note, who and when.

    The suggestion or rejection a decision settles keeps its original form."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_suggestion", "suggestion_id"), Index("ix_decisions_chunk", "chunk_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    suggestion_id: Mapped[str | None] = mapped_column(String(16), ForeignKey("suggestions.id"))
    chunk_id: Mapped[str] = mapped_column(String(16), ForeignKey("chunks.id"))
    reviewer: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(16))
    final_code: Mapped[str | None] = mapped_column(String(200))
    quote_start: Mapped[int | None]
    quote_end: Mapped[int | None]
    reason: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime]
    rejection_id: Mapped[int | None] = mapped_column(ForeignKey("rejections.id", name="fk_decisions_rejection"))
    # the codebook a code was added under (a suggestion's decisions have it from the suggestion)
    codebook_version: Mapped[str | None] = mapped_column(String(16))


class ReviewerRecord(Base):
    """Reviewer accounts (argon2 password hashes) and roles: a lead also assigns double coding and sees
    every run."""

    __tablename__ = "reviewers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class ReviewerSessionRecord(Base):
    """Reviewers' sign-ins. A session cookie names one; signing out, a password reset or disabling the
    account ends it here, so a copied cookie stops working too."""

    __tablename__ = "reviewer_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class GrantRecord(Base):
    """The runs (a project's suggestions) each reviewer may see."""

    __tablename__ = "reviewer_runs"

    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id", ondelete="CASCADE"), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    granted_at: Mapped[datetime]


class AssignmentRecord(Base):
    """Blind double-coding samples: a passage, a reviewer, and the codes they applied.

    `codes` is empty until coded, then the list of codes applied ([] for none)."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("sample", "chunk_id", "reviewer_id", name="uq_assignment"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sample: Mapped[str] = mapped_column(String(36))
    run_id: Mapped[str] = mapped_column(String(36), ForeignKey("runs.id", ondelete="CASCADE"))
    chunk_id: Mapped[str] = mapped_column(String(16), ForeignKey("chunks.id", ondelete="CASCADE"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id", ondelete="CASCADE"))
    assigned_by: Mapped[str] = mapped_column(String(200))
    assigned_at: Mapped[datetime]
    codes: Mapped[list[Any] | None] = mapped_column(JSON)
    note: Mapped[str | None] = mapped_column(Text)
    coded_at: Mapped[datetime | None]


class OpeningRecord(Base):
    """The passages each reviewer has seen with the model's suggestions in view (an item or a rejected
    proposal opened), first when: such a passage is never drawn for them to code blind."""

    __tablename__ = "openings"

    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewers.id", ondelete="CASCADE"), primary_key=True)
    chunk_id: Mapped[str] = mapped_column(String(16), ForeignKey("chunks.id", ondelete="CASCADE"), primary_key=True)
    opened_at: Mapped[datetime]


class ImportRecord(Base):
    """Project files brought in from another QDA tool, with what came of each."""

    __tablename__ = "imports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(String(500))
    project_name: Mapped[str | None] = mapped_column(String(500))
    codebook_version: Mapped[str | None] = mapped_column(String(16))
    summary: Mapped[dict[str, Any]]
    imported_at: Mapped[datetime]


class HumanCodeRecord(Base):
    """Codes people applied to spans of transcripts in another QDA tool, imported with a project.

    `start:end` are code points of the transcript's text as qcode stores it; `original_start` and
    `original_end` are the positions as the exporting tool wrote them. The same person applying the
    same code to the same span twice says nothing more, so that is one row."""

    __tablename__ = "human_codes"
    __table_args__ = (
        UniqueConstraint("transcript_id", "coder", "code", "start", "end", name="uq_human_code"),
        Index("ix_human_codes_transcript", "transcript_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    import_id: Mapped[str] = mapped_column(String(36), ForeignKey("imports.id", ondelete="CASCADE"))
    transcript_id: Mapped[str] = mapped_column(String(16), ForeignKey("transcripts.id", ondelete="CASCADE"))
    coder: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(200))
    codebook_version: Mapped[str | None] = mapped_column(String(16))
    start: Mapped[int]
    end: Mapped[int]
    original_start: Mapped[int]
    original_end: Mapped[int]
    note: Mapped[str | None] = mapped_column(Text)
    coded_at: Mapped[datetime | None]


class EmbeddingRecord(Base):
    """A text's sentence embedding (and, under a name of its own, the mean of the encoder's lower
    layers), by the embedding model and a hash of the text: computed once, so training the learned
    coder again after new decisions does not embed what it has seen."""

    __tablename__ = "embeddings"

    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    text_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)  # float32, little-endian


class LearnedModelRecord(Base):
    """A coder trained on the team's own codes (`qcode train`): its version (a hash of its training
    data, features and parameters), the codebook it codes with, its model card, and the fitted
    model itself (pickled: it is read back only from the team's own store)."""

    __tablename__ = "learned_models"
    __table_args__ = (Index("ix_learned_models_codebook", "codebook_version", "trained_at"),)

    version: Mapped[str] = mapped_column(String(16), primary_key=True)
    codebook_version: Mapped[str] = mapped_column(String(16))
    trained_at: Mapped[datetime]
    parameters: Mapped[dict[str, Any]]
    card: Mapped[dict[str, Any]]
    model: Mapped[bytes] = mapped_column(LargeBinary)
