"""What the review app's pages show, as typed views: the contract between the store's reads and the
templates (which read them by attribute)."""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel

from pipeline.codebook import Code, Codebook
from pipeline.transcript import TIMESTAMP


class ContextTurn(BaseModel):
    """A turn shown around a passage."""

    speaker: str | None
    text: str
    start: int
    timestamp: str | None

    @property
    def said(self) -> str | None:
        """The turn's words without its speaker's label as written (`**Ms. Chen:**`, `Ms. Chen:`,
        `[00:02:32] Mr. Ortiz:`), so the page shows the name (and the time, from `timestamp`), not
        the markdown or the brackets; None when the label is not found."""
        label = speaker_label(self.text, self.speaker, 0) if self.speaker else None
        return self.text[label[-1][1] :] if label else None


def speaker_label(text: str, speaker: str, at: int) -> list[tuple[int, int, str]] | None:
    """The parts of the speaker's label that begins at `at` in `text` (`**Ms. Chen:**`,
    `[00:02:32] Mr. Ortiz:`): each (start, end, kind), kind "stamp" for a timestamp before it,
    "markup" for the markdown around the name, "speaker" for the name and its colon, "space" for
    the blanks after it; None when no label of this speaker begins there."""
    found = re.compile(
        rf"(?P<stamp>\[{TIMESTAMP}\])?(?P<pre>[\s*_]*)(?P<name>"
        + re.escape(speaker)
        + r")(?P<mid>[\s*_]*):(?P<post>[\s*_]*)"
    ).match(text, at)
    if not found:
        return None
    parts: list[tuple[int, int, str]] = []
    if found.group("stamp"):
        parts.append((found.start("stamp"), found.end("stamp"), "stamp"))
    for group in ("pre", "name", "mid", "post"):
        if group == "name":
            parts.append((found.start("name"), found.end("name"), "speaker"))
            continue
        for run in re.finditer(r"[*_]+|\s+", found.group(group)):
            kind = "markup" if run.group()[0] in "*_" else "space"
            parts.append((found.start(group) + run.start(), found.start(group) + run.end(), kind))
        if group == "mid":
            colon = found.end("mid")
            parts.append((colon, colon + 1, "speaker"))
    return parts


class Segment(BaseModel):
    """A piece of a passage, cut at the edges of a marked span; `start` counts code points from the
    transcript's beginning (what the page sends back when a quote is selected)."""

    text: str
    start: int
    marked: bool
    # "markup" (hidden: `**` around a speaker's name), "speaker" (shown as a name), "stamp" (a label's time)
    kind: str | None = None


class Passage(BaseModel):
    """A chunk with its transcript's text around it."""

    chunk_id: str
    transcript_id: str
    source_name: str
    metadata: dict[str, object]
    start: int
    end: int
    text: str
    speakers: list[str]
    before: list[ContextTurn]
    after: list[ContextTurn]
    segments: list[Segment] = []
    pages: str | None = None  # "p. 4", "pp. 4–5": where a document's passage lies
    unit: str | None = None  # "one turn", "part 2 of 3 of a turn"; None for a chunk
    unit_speaker: str | None = None  # whose turn a turn unit is (None: a paragraph with no speaker)
    context_speakers: list[str] = []  # speakers in the passage whose words are not coded
    labels: list[tuple[int, int, str]] = []  # speakers' labels' parts in the passage (`speaker_label`)


class DecisionView(BaseModel):
    id: int
    reviewer: str
    verdict: str
    final_code: str | None
    quote_start: int | None
    quote_end: int | None
    reason: str | None
    note: str | None
    decided_at: datetime
    suggestion_id: str | None


class SuggestionDetail(BaseModel):
    id: str
    code: str
    justification: str
    quote: str
    quote_start: int
    quote_end: int
    confidence: float
    status: str
    version: int
    decided_at: datetime | None
    decided_by: str | None
    coder: str
    model: str
    prompt_version: str | None
    codebook_version: str
    run_id: str
    chunk_id: str
    flag: str | None = None  # why a person must see it whatever its confidence


class OtherSuggestion(BaseModel):
    id: str
    code: str
    status: str
    confidence: float


class SuggestionView(BaseModel):
    """Everything the item page shows about one suggestion."""

    suggestion: SuggestionDetail
    passage: Passage
    codebook: Codebook | None
    code: Code | None
    decisions: list[DecisionView]
    other_suggestions: list[OtherSuggestion]


class RejectionDetail(BaseModel):
    id: int
    code: str | None
    quote: str | None
    reason: str
    status: str
    version: int
    chunk_id: str
    coder: str
    model: str
    codebook_version: str
    run_id: str


class RejectionView(BaseModel):
    """A rejected proposal's page: the passage, what the model said and why it failed."""

    rejection: RejectionDetail
    passage: Passage
    codebook: Codebook | None
    code: Code | None = None  # the proposed code, when the codebook has it
    settled: DecisionView | None


class Assignment(BaseModel):
    """A passage a reviewer codes blind."""

    id: int
    sample: str
    chunk_id: str
    codes: list[str]
    note: str | None = None
    coded: bool
    codebook_version: str | None = None
    source_name: str | None = None  # the transcript, as the list names the passage
    position: int | None = None  # the passage's place in its transcript, from 1
    respondent: str | None = None  # a CSV row's respondent: every row of a file has the file's name

    @property
    def place(self) -> str:
        """Where the passage is, after its transcript's name: "passage 3", or "response R12"."""
        return f"response {self.respondent}" if self.respondent else f"passage {self.position}"


class AssignmentView(BaseModel):
    """The blind-coding page: the passage and the codebook, and nothing the model or other reviewers said."""

    assignment: Assignment
    passage: Passage
    codebook: Codebook | None


class Progress(BaseModel):
    coded: int
    total: int


class Drawing(BaseModel):
    """A sample just drawn: how many passages each reviewer codes, and the passages of the run left
    out, by why."""

    sample: str
    passages: int
    coding_already: int  # one of the reviewers codes it (or words it shares) blind already
    seen: int  # one of them reviewed or opened it (or words it shares) with the model's codes in view
    copies: int  # it shares words with another passage that could be drawn: one of them is

    def left_out(self) -> str:
        reasons = [
            (self.coding_already, "already coded blind by one of them"),
            (self.seen, "seen by one of them with the model's suggestions (reviewed or opened)"),
            (self.copies, "the same words as another passage of the run (a copy of a transcript, another chunking)"),
        ]
        said = [f"{n:,} {why}" for n, why in reasons if n]
        return "left out " + "; ".join(said) if said else "none left out"


class Sample(BaseModel):
    """A double-coding sample with each reviewer's progress."""

    sample: str
    run_id: str
    run_name: str | None
    assigned_at: datetime
    reviewers: dict[str, Progress]


class QueueItem(BaseModel):
    """A suggestion in the queue page's list."""

    id: str
    code: str
    confidence: float
    status: str
    decided_by: str | None
    quote: str
    source_name: str
    metadata: dict[str, object] | None
    chunk_id: str


class FilterOptions(BaseModel):
    """The codes, transcripts and case attribute values a reviewer can narrow the queue to."""

    codes: list[str]
    transcripts: list[str]
    case: dict[str, list[str]]


class WaitingSuggestion(BaseModel):
    suggestion_id: str
    source_name: str
    metadata: dict[str, object] | None
    chunk_id: str
    code: str
    confidence: float
    status: str
    quote: str
    justification: str
    coder: str
    model: str
    unit: str = "chunk"  # or "turn"
    pages: str | None = None  # a document's passage: "p. 4"


class Waiting(BaseModel):
    """What `qcode queue` lists: the first undecided queued suggestions, lowest confidence first; how
    many there are; how many rejected proposals wait for a person too."""

    total: int
    open_rejections: int
    items: list[WaitingSuggestion]


class OpenRejection(BaseModel):
    id: int
    code: str | None
    quote: str | None
    reason: str
    source_name: str
