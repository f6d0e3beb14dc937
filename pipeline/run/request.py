"""What a run is asked to do, and what it reports: the contract between the command line, the run
and its Prefect flow. Both are plain data, so a scheduled deployment carries its request as JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pipeline.chunk import DEFAULT_MAX_UNIT_CHARS, DEFAULT_OVERLAP, DEFAULT_SIZE, UnitKind, Units
from pipeline.files import DEFAULT_MAX_FILE_MB
from pipeline.route import RoutingPolicy
from pipeline.transcript import SpeakerChoice


class RunRequest(BaseModel):
    paths: list[str]
    name: str | None = Field(default=None, max_length=200)
    codebook: str
    db: str | None = None
    coder: str = "offline"
    coder_options: dict[str, Any] = Field(default_factory=dict)
    unit: UnitKind = "chunk"
    chunk_size: int = Field(default=DEFAULT_SIZE, ge=50)
    overlap: int = Field(default=DEFAULT_OVERLAP, ge=0)
    max_unit_chars: int = Field(default=DEFAULT_MAX_UNIT_CHARS, ge=50)
    speakers: list[str] = Field(default_factory=list)
    skip_speakers: list[str] = Field(default_factory=list)
    routing: RoutingPolicy = Field(default_factory=RoutingPolicy)
    batch_size: int | None = Field(default=None, ge=1)  # None: the coder's own batch_size
    id_column: str | None = None
    text_column: str | None = None
    batch: bool = False
    poll_interval: float = Field(default=30.0, gt=0)
    # files over this many MB are refused unread, wherever the run runs (--max-file-mb)
    max_file_mb: int = Field(default=DEFAULT_MAX_FILE_MB, ge=1)

    def units(self) -> Units:
        """How this run cuts transcripts into units."""
        return Units(
            unit=self.unit,
            size=self.chunk_size,
            overlap=self.overlap,
            max_chars=self.max_unit_chars,
            speakers=SpeakerChoice.of(self.speakers, self.skip_speakers),
        )


class FileFailure(BaseModel):
    path: str
    error: str


class FileNote(BaseModel):
    path: str
    note: str


class SourceTypeCount(BaseModel):
    """How many transcripts of a run have a source type, and how many of those qcode inferred."""

    source_type: str
    transcripts: int
    inferred: int


class FailureCount(BaseModel):
    """Chunks that came to nothing for one reason: how many, one example, and what becomes of them."""

    reason: str
    chunks: int
    example: str | None
    then: str  # "coded again next run" or "sent to a person"


class RunSummary(BaseModel):
    run_id: str  # "": no run was recorded, since no file could be read (the failures say why)
    name: str | None = None
    coder: str
    model: str
    prompt_version: str | None
    codebook: str
    codebook_version: str
    db: str
    transcripts: int
    source_types: list[SourceTypeCount] = Field(default_factory=list)
    unit: UnitKind = "chunk"
    chunks: int
    chunks_coded_now: int
    suggestions: int
    accepted: int
    queued: int
    review: int
    audit: int
    rejected: int
    failed: list[FileFailure]
    failed_chunks: int
    failures: list[FailureCount] = Field(default_factory=list)
    # an error no request could get past stopped the run: what, and what to do
    stopped: str | None = None
    requests: int
    batch_requests: int
    cache_hits: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost_usd: float | None
    notes: list[FileNote]
    seconds: float
    cpu_seconds: float
