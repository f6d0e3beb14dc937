"""What a run is asked to do, and what it reports: the contract between the command line, the run
and its Prefect flow. Both are plain data, so a scheduled deployment carries its request as JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pipeline.chunk import DEFAULT_OVERLAP, DEFAULT_SIZE
from pipeline.route import RoutingPolicy


class RunRequest(BaseModel):
    paths: list[str]
    codebook: str
    db: str | None = None
    coder: str = "offline"
    coder_options: dict[str, Any] = Field(default_factory=dict)
    chunk_size: int = Field(default=DEFAULT_SIZE, ge=50)
    overlap: int = Field(default=DEFAULT_OVERLAP, ge=0)
    routing: RoutingPolicy = Field(default_factory=RoutingPolicy)
    batch_size: int | None = Field(default=None, ge=1)  # None: the coder's own batch_size
    id_column: str | None = None
    text_column: str | None = None
    batch: bool = False
    poll_interval: float = Field(default=30.0, gt=0)


class FileFailure(BaseModel):
    path: str
    error: str


class FileNote(BaseModel):
    path: str
    note: str


class RunSummary(BaseModel):
    run_id: str
    coder: str
    model: str
    prompt_version: str | None
    codebook: str
    codebook_version: str
    db: str
    transcripts: int
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
