"""Chunking: a transcript becomes passages that keep speaker turns whole.

Whole turns are packed into chunks of at most `size` characters; a turn is
split only when it alone is longer than `size`, and then at sentence
boundaries (langchain-text-splitters), never inside a word. Every chunk
carries its exact offsets: chunk.text == transcript.text[chunk.start:chunk.end].
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import BaseModel, Field

from pipeline.transcript import Transcript, Turn

DEFAULT_SIZE = 1200
DEFAULT_OVERLAP = 0
MIN_SHARE = 0.5  # a coded span counts for a chunk holding at least this share of it ...
MIN_CHARS = 200  # ... or at least this many of its characters


class ChunkTurn(BaseModel):
    """The spoken words of one turn inside a chunk (absolute offsets, label excluded)."""

    index: int
    speaker: str | None
    start: int
    end: int


class Chunk(BaseModel):
    id: str
    transcript_id: str
    index: int
    start: int
    end: int
    text: str
    speakers: list[str | None]
    first_turn: int
    last_turn: int
    turns: list[ChunkTurn]
    # Filled in when chunks are handed to a coder; not part of the chunk's identity.
    before: str = ""
    after: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)


def context(text: str, start: int, end: int, width: int = 600) -> tuple[str, str]:
    """Up to `width` characters before and after a span, cut at line breaks."""
    before = text[max(0, start - width) : start]
    if start - width > 0 and "\n" in before:
        before = before[before.index("\n") + 1 :]
    after = text[end : end + width]
    if end + width < len(text) and "\n" in after:
        after = after[: after.rindex("\n")]
    return before.strip(), after.strip()


def for_coder(chunk: Chunk, text: str, metadata: dict[str, str]) -> Chunk:
    """The chunk with what a coder is shown around it: neighbouring context and case metadata."""
    chunk.before, chunk.after = context(text, chunk.start, chunk.end)
    chunk.metadata = dict(metadata)
    return chunk


def holds(chunk: Any, start: int, end: int) -> bool:
    """Whether a span a person coded counts for a chunk: the chunk holds at least half of it, or at
    least MIN_CHARS of its characters. So a code a person gave a long stretch lands on each chunk
    that carries a real part of it, and a span that only grazes a chunk's edge does not."""
    held = min(end, chunk.end) - max(start, chunk.start)
    return held > 0 and (held >= MIN_SHARE * (end - start) or held >= MIN_CHARS)


def chunk_id(transcript_id: str, start: int, end: int) -> str:
    return hashlib.sha256(f"{transcript_id}:{start}:{end}".encode()).hexdigest()[:16]


def chunk_transcript(transcript: Transcript, size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP) -> list[Chunk]:
    """Split a transcript into turn-aware chunks.

    `overlap` repeats whole trailing turns (up to that many characters) at the
    start of the next chunk; inside an oversized turn it is passed to the
    sentence splitter.
    """
    if size < 1:
        raise ValueError("chunk size must be at least 1 character")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be at least 0 and smaller than the chunk size")

    turns = transcript.turns
    spans: list[tuple[int, int, int, int]] = []  # start, end, first turn, last turn
    i = 0
    while i < len(turns):
        turn = turns[i]
        if turn.end - turn.start > size:
            spans.extend((s, e, i, i) for s, e in _split_turn(transcript.text, turn, size, overlap))
            i += 1
            continue
        j = i
        while j + 1 < len(turns) and _fits(turns, i, j + 1, size):
            j += 1
        spans.append((turn.start, turns[j].end, i, j))
        i = _next_start(turns, i, j, size, overlap)

    chunks = []
    for index, (start, end, first, last) in enumerate(spans):
        speakers: list[str | None] = []
        spoken: list[ChunkTurn] = []
        for t in turns[first : last + 1]:
            if t.speaker not in speakers:
                speakers.append(t.speaker)
            s, e = max(start, t.text_start), min(end, t.end)
            if s < e:
                spoken.append(ChunkTurn(index=t.index, speaker=t.speaker, start=s, end=e))
        chunks.append(
            Chunk(
                id=chunk_id(transcript.id, start, end),
                transcript_id=transcript.id,
                index=index,
                start=start,
                end=end,
                text=transcript.text[start:end],
                speakers=speakers,
                first_turn=turns[first].index,
                last_turn=turns[last].index,
                turns=spoken,
            )
        )
    return chunks


def _fits(turns: list[Turn], first: int, last: int, size: int) -> bool:
    return turns[last].end - turns[first].start <= size


def _next_start(turns: list[Turn], i: int, j: int, size: int, overlap: int) -> int:
    """Where the next chunk begins: after j, or earlier to repeat trailing turns."""
    after = j + 1
    if overlap == 0 or after >= len(turns) or turns[after].end - turns[after].start > size:
        return after
    for k in range(i + 1, j + 1):
        if turns[j].end - turns[k].start <= overlap:
            # only worth repeating if the next chunk still reaches a new turn
            return k if _fits(turns, k, after, size) else after
    return after


def _split_turn(text: str, turn: Turn, size: int, overlap: int) -> list[tuple[int, int]]:
    """Split one oversized turn at sentence boundaries, then at spaces; never in a word."""
    # slow to import (it brings langchain-core), and only a turn longer than a chunk needs it
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=overlap,
        separators=[r"\n+", r"(?<=[.!?…])\s+", r"(?<=[;:,])\s+", r"\s+"],
        is_separator_regex=True,
        keep_separator="end",
        add_start_index=True,
        strip_whitespace=False,
    )
    body = text[turn.start : turn.end]
    pieces: list[tuple[int, int]] = []
    last_start, last_end = -1, 0  # of the piece before, in `body`
    for document in splitter.create_documents([body]):
        piece = document.page_content
        # a piece starts after the one before it and reaches past its end, overlap or not
        earliest = max(last_start + 1, last_end - len(piece.rstrip()) + 1)
        offset = document.metadata["start_index"]
        if offset < earliest or body[offset : offset + len(piece)] != piece:
            # the splitter finds its pieces by searching the text, and with overlap it can find
            # an earlier repeat of the same words ("0 0 0" inside "0 0 0. 0 0 0"): search on
            offset = body.find(piece, earliest)
        if offset < 0:
            continue
        last_start, last_end = offset, offset + len(piece.rstrip())
        lead = len(piece) - len(piece.lstrip())
        stripped = piece.strip()
        if not stripped:
            continue
        start = turn.start + offset + lead
        end = start + len(stripped)
        if pieces and start <= pieces[-1][0] and end <= pieces[-1][1]:
            continue
        pieces.append((start, end))
    return _merge_small(pieces, turn, size)


def _merge_small(pieces: list[tuple[int, int]], turn: Turn, size: int) -> list[tuple[int, int]]:
    """Join neighbouring pieces that fit together, and never leave the speaker label alone.

    The splitter works level by level, so a word longer than the chunk size can
    strand short fragments ("Ana:", "see") around it.
    """
    merged: list[tuple[int, int]] = []
    for start, end in pieces:
        if merged:
            first, last = merged[-1]
            label_only = last <= turn.text_start
            if label_only or (start >= last and end - first <= size):
                merged[-1] = (first, max(last, end))
                continue
        merged.append((start, end))
    return merged
