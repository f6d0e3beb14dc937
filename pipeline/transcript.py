"""Transcripts and their speaker turns: what ingest produces and chunking reads."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, Field, model_validator


class Turn(BaseModel):
    """One speaker's turn.

    `start:end` spans the whole turn in the transcript text, speaker label
    included; `text_start` is where the spoken words begin after the label.
    """

    index: int
    speaker: str | None
    start: int
    end: int
    text_start: int
    timestamp: str | None = None


class Transcript(BaseModel):
    id: str
    source_path: str
    source_name: str
    format: str
    encoding: str
    text: str
    turns: list[Turn]
    metadata: dict[str, str] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _turns_inside_text(self) -> Transcript:
        for turn in self.turns:
            if not (0 <= turn.start <= turn.text_start <= turn.end <= len(self.text)):
                raise ValueError(f"turn {turn.index} lies outside the transcript text")
        return self

    def turn_text(self, turn: Turn) -> str:
        return self.text[turn.text_start : turn.end]


def transcript_id(source_name: str, text: str, key: str = "") -> str:
    """Identity of a transcript: its file name, its text and (for CSV rows) the row key.

    The same file re-ingested gets the same id, so a re-run codes nothing twice;
    a transcript edited after coding is a new transcript.
    """
    digest = hashlib.sha256(f"{source_name}\0{key}\0{text}".encode()).hexdigest()
    return digest[:16]
