"""Units: a transcript becomes the passages a coder codes, one `Chunk` each, in one of two ways.

- chunks (`unit="chunk"`, the default): whole turns are packed into chunks of at most `size`
  characters; a turn is split only when it alone is longer than `size`, and then at sentence
  boundaries (langchain-text-splitters), never inside a word.
- turns (`unit="turn"`): every speaker turn is one unit, its spoken words without the speaker's
  label, whatever its length; a turn longer than `max_chars` is split at sentence boundaries into
  parts that record their place in it.

Either way every unit carries its exact offsets (unit.text == transcript.text[unit.start:unit.end])
and an id made of them, so a re-run finds the units it coded. A `SpeakerChoice` says whose words are
coded: with turn units another speaker's turns are no units (the coder sees them as context); with
chunks they stay in the chunk, marked as not coded, and a quote from them is rejected. A transcript's
header (`Transcript.header`: a title, a date line before the first speaker label) is in no unit at all,
whatever the choice: it is context before the first unit.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.transcript import SpeakerChoice, Transcript, Turn

DEFAULT_SIZE = 1200
DEFAULT_OVERLAP = 0
DEFAULT_MAX_UNIT_CHARS = 8000
MIN_SHARE = 0.5  # a coded span counts for a chunk holding at least this share of it ...
MIN_CHARS = 200  # ... or at least this many of its characters

UnitKind = Literal["chunk", "turn"]
UNIT_KINDS: tuple[UnitKind, ...] = ("chunk", "turn")


class Units(BaseModel):
    """How transcripts are cut into units: a run's, an eval configuration's, a gold set's."""

    model_config = ConfigDict(frozen=True)

    unit: UnitKind = "chunk"
    size: int = Field(default=DEFAULT_SIZE, ge=50)  # chunk units: the largest chunk
    overlap: int = Field(default=DEFAULT_OVERLAP, ge=0)  # chunk units: trailing turns repeated
    max_chars: int = Field(default=DEFAULT_MAX_UNIT_CHARS, ge=50)  # turn units: longer turns are split
    speakers: SpeakerChoice = SpeakerChoice()

    def describe(self) -> str:
        if self.unit == "turn":
            return f"turns (split above {self.max_chars} characters)"
        return f"chunks of {self.size}" + (f", overlap {self.overlap}" if self.overlap else "")


class ChunkTurn(BaseModel):
    """The spoken words of one turn inside a chunk (absolute offsets, label excluded)."""

    index: int
    speaker: str | None
    start: int
    end: int
    coded: bool = True  # False: a speaker whose words are not coded, there as context


class Chunk(BaseModel):
    """A unit a coder codes: a chunk of whole turns, or one turn (or a part of a long one)."""

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
    unit: UnitKind = "chunk"
    # a turn unit cut from a turn longer than the largest unit: its place (1-based) among how many
    part: int | None = None
    parts: int | None = None
    page_start: int | None = None
    page_end: int | None = None
    # Filled in when chunks are handed to a coder; not part of the chunk's identity.
    before: str = ""
    after: str = ""
    metadata: dict[str, str] = Field(default_factory=dict)

    @property
    def coded_speakers(self) -> list[str | None]:
        """The speakers whose words in this unit are coded, in order."""
        return list(dict.fromkeys(t.speaker for t in self.turns if t.coded))

    @property
    def context_speakers(self) -> list[str | None]:
        """The speakers in this unit whose words are context only."""
        coded = self.coded_speakers
        return [s for s in dict.fromkeys(t.speaker for t in self.turns if not t.coded) if s not in coded]


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
    """Whether a span a person coded counts for a unit (a Chunk, or a stored row with its start,
    end and unit).

    A chunk: it holds at least half of the span, or at least MIN_CHARS of its characters. So a code
    a person gave a long stretch lands on each chunk that carries a real part of it, and a span that
    only grazes a chunk's edge does not. A turn: it holds at least half of the span, or the span
    covers at least half of the turn; so a code inside a turn counts for that turn, a code over
    several turns for each of them, and one that grazes the next turn's first word does not."""
    held = min(end, chunk.end) - max(start, chunk.start)
    if held <= 0:
        return False
    if chunk.unit == "turn":
        return held >= MIN_SHARE * min(end - start, chunk.end - chunk.start)
    return held >= MIN_SHARE * (end - start) or held >= MIN_CHARS


def chunk_id(transcript_id: str, start: int, end: int, kind: str = "") -> str:
    """A unit's id, from where it lies; a turn unit's id differs from a chunk's over the same span,
    as what the coder is shown around it differs."""
    suffix = f":{kind}" if kind else ""
    return hashlib.sha256(f"{transcript_id}:{start}:{end}{suffix}".encode()).hexdigest()[:16]


def cut(transcript: Transcript, units: Units) -> list[Chunk]:
    """A transcript's units, as a run stores and codes them. The transcript's own speaker choice (its
    manifest row or front matter) stands over the run's."""
    speakers = transcript.speaker_choice or units.speakers
    if units.unit == "turn":
        return turn_units(transcript, units.max_chars, speakers)
    return chunk_transcript(transcript, units.size, units.overlap, speakers)


def turn_units(
    transcript: Transcript, max_chars: int = DEFAULT_MAX_UNIT_CHARS, speakers: SpeakerChoice | None = None
) -> list[Chunk]:
    """One unit per coded speaker turn: its spoken words, label excluded. A turn longer than
    `max_chars` is split at sentence boundaries into parts."""
    if max_chars < 50:
        raise ValueError("the largest unit must be at least 50 characters")
    choice = speakers or SpeakerChoice()
    units: list[Chunk] = []
    for turn in transcript.spoken_turns():
        if not choice.codes(turn.speaker) or turn.end <= turn.text_start:
            continue
        spoken = Turn(**{**turn.model_dump(), "start": turn.text_start})
        spans = [(spoken.start, spoken.end)]
        if spoken.end - spoken.start > max_chars:
            spans = _split_turn(transcript.text, spoken, max_chars, 0)
        for part, (start, end) in enumerate(spans, 1):
            text = transcript.text[start:end]
            if not text.strip():
                continue
            units.append(
                Chunk(
                    id=chunk_id(transcript.id, start, end, "turn"),
                    transcript_id=transcript.id,
                    index=len(units),
                    start=start,
                    end=end,
                    text=text,
                    speakers=[turn.speaker],
                    first_turn=turn.index,
                    last_turn=turn.index,
                    turns=[ChunkTurn(index=turn.index, speaker=turn.speaker, start=start, end=end)],
                    unit="turn",
                    part=part if len(spans) > 1 else None,
                    parts=len(spans) if len(spans) > 1 else None,
                    page_start=turn.page_start,
                    page_end=turn.page_end,
                )
            )
    return units


def chunk_transcript(
    transcript: Transcript,
    size: int = DEFAULT_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    speakers: SpeakerChoice | None = None,
) -> list[Chunk]:
    """Split a transcript into turn-aware chunks.

    `overlap` repeats whole trailing turns (up to that many characters) at the
    start of the next chunk; inside an oversized turn it is passed to the
    sentence splitter. The turns of speakers not chosen stay in the chunks,
    marked as not coded; a chunk of their turns alone is not a unit.
    """
    choice = speakers or SpeakerChoice()
    if size < 1:
        raise ValueError("chunk size must be at least 1 character")
    if not 0 <= overlap < size:
        raise ValueError("overlap must be at least 0 and smaller than the chunk size")

    # the header is no chunk's: a chunk begins at the first spoken turn (its turns keep their indices)
    turns = transcript.spoken_turns()
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

    chunks: list[Chunk] = []
    for start, end, first, last in spans:
        present: list[str | None] = []
        spoken: list[ChunkTurn] = []
        for t in turns[first : last + 1]:
            if t.speaker not in present:
                present.append(t.speaker)
            s, e = max(start, t.text_start), min(end, t.end)
            if s < e:
                spoken.append(
                    ChunkTurn(index=t.index, speaker=t.speaker, start=s, end=e, coded=choice.codes(t.speaker))
                )
        if choice.chosen and not any(t.coded for t in spoken):
            continue  # nothing in it is coded
        in_pages = [p for t in turns[first : last + 1] for p in (t.page_start, t.page_end) if p is not None]
        chunks.append(
            Chunk(
                # a chunk whose turns are coded differently is coded anew: the id says which are
                id=chunk_id(transcript.id, start, end, _uncoded_turns(spoken)),
                transcript_id=transcript.id,
                index=len(chunks),
                start=start,
                end=end,
                text=transcript.text[start:end],
                speakers=present,
                first_turn=turns[first].index,
                last_turn=turns[last].index,
                turns=spoken,
                page_start=min(in_pages) if in_pages else None,
                page_end=max(in_pages) if in_pages else None,
            )
        )
    return chunks


def _uncoded_turns(turns: list[ChunkTurn]) -> str:
    skipped = [str(t.index) for t in turns if not t.coded]
    return "context " + ",".join(skipped) if skipped else ""


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
    return [cut for piece in _merge_small(pieces, turn, size) for cut in _cut_run(text, *piece, size)]


MAX_WORD = 1000  # characters without a space: longer is no word a person said (base64, a pasted log)


def _cut_run(text: str, start: int, end: int, size: int) -> list[tuple[int, int]]:
    """A piece the splitter could not cut because it holds a run of characters without a space
    longer than any word (MAX_WORD), cut into pieces of at most `size` (at a space where one is near),
    so no unit outgrows the chunk size a model's context was chosen for."""
    if end - start <= max(size, MAX_WORD):
        return [(start, end)]
    cuts = []
    while end - start > size:
        at = start + size
        space = max(text.rfind(" ", start + size // 2, at), text.rfind("\n", start + size // 2, at))
        at = space if space > start else at
        cuts.append((start, at))
        start = at
        while start < end and text[start].isspace():
            start += 1
    if start < end:
        cuts.append((start, end))
    return cuts


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
