"""What coders propose, what validation makes of it, and what people code.

A coder returns a ChunkCoding per chunk: raw proposals, not yet trusted.
Validation turns each proposal into a Suggestion (the code is in the codebook
and the quote is verbatim in the chunk) or a Rejection with the reason.
A HumanCode is a person's code on a span of a transcript: from a project coded
in another QDA tool, or from an eval's gold set.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

Status = Literal["accepted", "review", "audit"]
QUEUED: tuple[Status, ...] = ("review", "audit")


class Proposal(BaseModel):
    """One code a coder proposes for a chunk, as the coder states it."""

    code: str
    justification: str = Field(min_length=1)
    quote: str = Field(min_length=1)
    confidence: float = Field(ge=0, le=1)


class Usage(BaseModel):
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0
    cache_hits: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{k: getattr(self, k) + getattr(other, k) for k in Usage.model_fields})


class ChunkCoding(BaseModel):
    """A coder's answer for one chunk. `proposals` are raw: validation checks them."""

    chunk_id: str
    proposals: list[Any] = Field(default_factory=list)
    raw: str | None = None
    usage: Usage = Field(default_factory=Usage)
    duration_ms: float = 0.0  # to 0.1 ms (`milliseconds`)
    error: str | None = None
    # the kind of failure, for counting failures by kind ("timed out", "server error (500)", ...)
    reason: str | None = None
    # a reply that never parsed, after every attempt: stored as a rejection for a person, with why
    # ("the model refused: ...", "the reply was cut off at 1024 tokens ...")
    invalid_reply: str | None = None
    invalid_reason: str | None = None

    @field_validator("duration_ms")
    @classmethod
    def _to_a_tenth(cls, value: float) -> float:
        return milliseconds(value)


def milliseconds(value: float) -> float:
    """A duration in milliseconds as it is stored and exported: to 0.1 ms. A clock's last digits
    (531.1698754062509) are noise, and a column of them is unreadable."""
    return round(value, 1)


class Provenance(BaseModel):
    """Who and what produced a suggestion; stored with every one of them."""

    coder: str
    model: str
    coder_key: str
    prompt_version: str | None
    codebook_version: str
    parameters: dict[str, Any]


class Suggestion(BaseModel):
    id: str
    chunk_id: str
    transcript_id: str
    code: str
    justification: str
    quote: str
    quote_start: int
    quote_end: int
    confidence: float
    status: Status = "review"
    # why a person must see it whatever its confidence (`pipeline.route.INSTRUCTIONS`)
    flag: str | None = None


class Rejection(BaseModel):
    chunk_id: str
    code: str | None
    quote: str | None
    reason: str
    raw: Any = None


def suggestion_id(chunk_id: str, coder_key: str, code: str) -> str:
    return hashlib.sha256(f"{chunk_id}:{coder_key}:{code}".encode()).hexdigest()[:16]


class HumanCode(BaseModel):
    """A person's code on the span [start, end) of a transcript's text.

    `original_start` and `original_end` are the positions as another QDA tool wrote them, where
    the code came from one (they may count UTF-16 units, or CR LF as one)."""

    coder: str
    code: str
    transcript_id: str
    start: int
    end: int
    original_start: int | None = None
    original_end: int | None = None
    note: str | None = None
    coded_at: datetime | None = None
