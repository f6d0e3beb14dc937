"""Transcripts and their speaker turns: what ingest produces and chunking reads.

`parse_turns` finds the speaker turns in plain text, for every reader of text with speaker labels;
text with no speaker labels at all (observation notes, memos, documents) has one turn per paragraph.
What stands before the first speaker label of a transcript with labels (a title, a date line) is its
header (`Transcript.header`): kept as turns with no speaker, shown as context, never coded.
`SpeakerChoice` says whose turns are coded.
"""

from __future__ import annotations

import bisect
import fnmatch
import hashlib
import re
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, model_validator


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
    # the pages of a PDF the turn lies on (1-based); None for sources without pages
    page_start: int | None = None
    page_end: int | None = None


class SpeakerChoice(BaseModel):
    """Whose words are coded: the turns of `speakers` only (when any are given), less those of
    `skip_speakers`. Names match case-insensitively, with `*` and `?` as wildcards ("P*", "dr. *").
    A turn with no speaker (a heading, a paragraph of a document) is coded unless `speakers` is given."""

    model_config = ConfigDict(frozen=True)

    speakers: tuple[str, ...] = ()
    skip_speakers: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, speakers: str | Iterable[str] | None = None, skip_speakers: str | Iterable[str] | None = None
    ) -> SpeakerChoice:
        """A choice from names as a person writes them: "Interviewer, Q" or a list."""
        return cls(speakers=_names(speakers), skip_speakers=_names(skip_speakers))

    @property
    def chosen(self) -> bool:
        return bool(self.speakers or self.skip_speakers)

    def codes(self, speaker: str | None) -> bool:
        if speaker is None:
            return not self.speakers
        if self.speakers and not _matches(speaker, self.speakers):
            return False
        return not _matches(speaker, self.skip_speakers)

    def unmatched(self, speakers: Iterable[str | None]) -> list[str]:
        """The names of this choice that match none of these speakers."""
        present = [s for s in speakers if s is not None]
        return [n for n in (*self.speakers, *self.skip_speakers) if not any(_matches(s, (n,)) for s in present)]

    def describe(self) -> str:
        """The choice in words, as the run summary and the prompt give it."""
        parts = []
        if self.speakers:
            parts.append("only the words of " + ", ".join(self.speakers))
        if self.skip_speakers:
            parts.append("not the words of " + ", ".join(self.skip_speakers))
        return "; ".join(parts) or "every speaker's words"


def _names(value: str | Iterable[str] | None) -> tuple[str, ...]:
    items = re.split(r"[,;]", value) if isinstance(value, str) else list(value or [])
    names: dict[str, str] = {}
    for item in items:
        name = " ".join(item.split())
        if name:
            names.setdefault(name.casefold(), name)
    return tuple(names.values())


def _matches(speaker: str, patterns: Iterable[str]) -> bool:
    name = " ".join(speaker.split()).casefold()
    return any(fnmatch.fnmatchcase(name, " ".join(p.split()).casefold()) for p in patterns)


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
    # whose words are coded in this file, from its manifest row or front matter (None: the run's choice)
    speaker_choice: SpeakerChoice | None = None
    # metadata["source_type"] was inferred from the file, not given by the team
    source_type_inferred: bool = False
    # a CSV row's response: its id (the --id-column value), or its row number among the responses
    response_id: str | None = None

    @model_validator(mode="after")
    def _turns_inside_text(self) -> Transcript:
        for turn in self.turns:
            if not (0 <= turn.start <= turn.text_start <= turn.end <= len(self.text)):
                raise ValueError(f"turn {turn.index} lies outside the transcript text")
        return self

    def turn_text(self, turn: Turn) -> str:
        return self.text[turn.text_start : turn.end]

    def header(self) -> list[Turn]:
        """The turns before the first speaker label, in a transcript whose turns have labels: its
        title, a date line, who was interviewed (not YAML front matter: that is read off before any
        turn). Nobody says them, so they are no unit and are never coded, whatever the unit and
        speaker choice; they stay turns (their indices, and the units' turn numbers, do not move)
        and are context. Text with no label at all is a document, whose paragraphs are its text: it
        has no header. Nor have captions: a cue with no voice is speech."""
        if self.format in CAPTION_FORMATS:
            return []
        first = next((k for k, turn in enumerate(self.turns) if turn.speaker is not None), 0)
        return self.turns[:first]

    def spoken_turns(self) -> list[Turn]:
        """The turns units are cut from: every turn after the header."""
        return self.turns[len(self.header()) :]

    def given_metadata(self) -> dict[str, str]:
        """The case metadata the team gave: without a source type qcode inferred."""
        inferred = {"source_type"} if self.source_type_inferred else set()
        return {k: v for k, v in self.metadata.items() if k not in inferred}


SPEAKER_FIELDS = ("speakers", "skip_speakers")  # metadata fields that choose whose words are coded
CAPTION_FORMATS = ("vtt", "srt")  # their turns are cues: each is speech, with a voice or not
HEADER_NOTED = 500  # characters of a header above which a run says it was not coded


def settle_case(transcript: Transcript) -> Transcript:
    """What every transcript read gets, from whatever file: the speaker choice of its manifest row or
    front matter taken out of the case metadata (it is no case attribute), and a source type, as
    given (kept as written) or else inferred from the file."""
    metadata = dict(transcript.metadata)
    fields = {k.lower(): metadata.pop(k) for k in list(metadata) if k.lower() in SPEAKER_FIELDS}
    if fields:
        transcript.speaker_choice = SpeakerChoice.of(fields.get("speakers"), fields.get("skip_speakers"))
    given = "" if transcript.source_type_inferred else metadata.get("source_type", "").strip()
    metadata["source_type"] = given or infer_source_type(transcript)
    transcript.source_type_inferred = not given
    transcript.metadata = metadata
    header = transcript.header()
    if header and header[-1].end - header[0].start > HEADER_NOTED:
        # a title and a date are short: this much before the first label may hold words to code
        first = transcript.turns[len(header)]
        line = transcript.text.count("\n", 0, first.start) + 1
        transcript.notes.append(
            f"the {header[-1].end - header[0].start:,} characters before the first speaker label (line {line}, "
            f"{first.speaker}) are read as the transcript's header (a title, a date) and not coded; give them "
            "a speaker label if they are words to code"
        )
    return transcript


def infer_source_type(transcript: Transcript) -> str:
    """A source type from the file itself: CSV rows are a questionnaire's answers, a PDF or text
    with no speaker labels is a document, one or two speakers an interview, more a focus group."""
    if transcript.format == "csv":
        return "questionnaire"
    speakers = {t.speaker.casefold() for t in transcript.turns if t.speaker}
    if transcript.format == "pdf" or not speakers:
        return "document"
    return "interview" if len(speakers) <= 2 else "focus group"


def transcript_id(source_name: str, text: str, key: str = "") -> str:
    """Identity of a transcript: its file name, its text and (for CSV rows) the row key.

    The same file re-ingested gets the same id, so a re-run codes nothing twice;
    a transcript edited after coding is a new transcript.
    """
    digest = hashlib.sha256(f"{source_name}\0{key}\0{text}".encode()).hexdigest()
    return digest[:16]


# --- speaker turns in plain text ---------------------------------------------

SPEAKER_NAME = r"[^\W\d_][\w.'’()#&\- ]{0,39}?"
TIMESTAMP = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"  # 00:01:02, 1:02, 00:01:02.5 (in square brackets)
_STAMP = rf"\[(?P<ts>{TIMESTAMP})\]\s*"
_BOLD = re.compile(rf"^(?:{_STAMP})?\*\*(?P<name>{SPEAKER_NAME})\s*(?::\*\*|\*\*\s*:)[ \t]*")
_STAMPED = re.compile(rf"^{_STAMP}(?P<name>{SPEAKER_NAME})\s*:[ \t]*")
_PLAIN = re.compile(rf"^(?P<name>{SPEAKER_NAME})[ \t]*:(?:[ \t]+|$)")
_HEADING = re.compile(r"^(#{1,6}\s|---+\s*$|\*\*\*+\s*$)")


def _label(line: str) -> tuple[str, str | None, int, bool] | None:
    """(speaker, timestamp, label length, explicit) if the line opens a turn."""
    for pattern, explicit in ((_BOLD, True), (_STAMPED, True), (_PLAIN, False)):
        m = pattern.match(line)
        if m:
            name = m.group("name").strip()
            if len(name.split()) > 5:
                return None
            return name, m.groupdict().get("ts"), m.end(), explicit
    return None


# Capitalised words that open notes, not speakers' turns.
_NOT_SPEAKERS = {
    "note",
    "notes",
    "nb",
    "ps",
    "p.s",
    "update",
    "edit",
    "example",
    "summary",
    "warning",
    "important",
    "source",
    "tip",
    "caution",
    "disclaimer",
    "subject",
    "date",
    "time",
    "location",
    "title",
    "transcript",
    "duration",
    "recorded",
    "attendees",
    "present",
    "keywords",
    "tags",
}
_ID_LABEL = re.compile(r"^[A-Za-z]{1,3}[-_ ]?\d{1,4}$")  # p1, R12, TL-2


def _looks_like_name(label: str) -> bool:
    words = label.split()
    return 0 < len(words) <= 4 and all(w[0].isupper() or w[0].isdigit() for w in words)


def _is_speaker(label: str, count: int) -> bool:
    if label.lower().rstrip(".") in _NOT_SPEAKERS:
        return False
    return count >= 2 or _looks_like_name(label) or bool(_ID_LABEL.match(label))


def parse_turns(text: str, line_paragraphs: bool = False) -> list[Turn]:
    """Split text into speaker turns.

    A line that opens with a label (`Name:`, `**Name:**`, `[00:01:02] Name:`)
    starts a turn; other lines continue the current one. A plain `Name:` label
    counts when the same name labels two or more lines, looks like a name
    (every word capitalised) or an id (P1, r12), and is not a word that opens
    a note ("Note:", "Date:"), so "In short: ..." is not taken for a speaker.
    Text before the first label (the header: a title, a date line), and markdown headings,
    become turns with no speaker. Text with no label at all is a document: each paragraph (lines
    up to a blank line; each line, with `line_paragraphs`, as a Word document's text has them) is a
    turn with no speaker.
    """
    lines: list[tuple[int, str]] = []
    pos = 0
    for line in text.split("\n"):
        lines.append((pos, line))
        pos += len(line) + 1

    labels = [_label(line) for _, line in lines]
    plain_counts: dict[str, int] = {}
    for found in labels:
        if found and not found[3]:
            plain_counts[found[0]] = plain_counts.get(found[0], 0) + 1
    accepted = {name for name, n in plain_counts.items() if _is_speaker(name, n)}

    if not any(found and (found[3] or found[0] in accepted) for found in labels):
        return paragraphs(text, line_paragraphs=line_paragraphs)
    turns: list[Turn] = []
    current: dict | None = None

    def close() -> None:
        if current is not None and current["end"] > current["start"]:
            turns.append(Turn(index=len(turns), **current))

    for (start, line), found in zip(lines, labels):
        if not line.strip():
            continue
        end = start + len(line.rstrip())
        if found and (found[3] or found[0] in accepted):
            close()
            name, stamp, length, _ = found
            text_start = min(start + length, end)
            current = dict(speaker=name, start=start, end=end, text_start=text_start, timestamp=stamp)
        elif _HEADING.match(line) or current is None:
            close()
            lead = len(line) - len(line.lstrip())
            current = dict(speaker=None, start=start + lead, end=end, text_start=start + lead, timestamp=None)
            if _HEADING.match(line):
                close()
                current = None
        else:
            current["end"] = end
    close()
    return turns


def paragraphs(text: str, page_starts: list[int] | None = None, line_paragraphs: bool = False) -> list[Turn]:
    """One turn with no speaker per paragraph: lines up to a blank line (or a markdown heading,
    which is a paragraph of its own), or each line with `line_paragraphs`. `page_starts`, the
    offset where each page of the text begins, gives each turn its page span."""
    turns: list[Turn] = []
    pattern = r"\S(?:.*\S)?" if line_paragraphs else r"\S(?:.*\S)?(?:\n[ \t]*\S.*)*"
    for match in re.finditer(pattern, text):
        for s, e in _split_headings(text, match.start(), match.end()):
            e = s + len(text[s:e].rstrip())
            if not any(ch.isalnum() for ch in text[s:e]):
                continue  # a rule or a stray mark: nothing to code
            turn = Turn(index=len(turns), speaker=None, start=s, end=e, text_start=s)
            if page_starts:
                turn.page_start, turn.page_end = page_of(page_starts, s), page_of(page_starts, e - 1)
            turns.append(turn)
    return turns


def _split_headings(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A paragraph's lines, with each markdown heading line a paragraph of its own."""
    spans: list[tuple[int, int]] = []
    pos = start
    for line in text[start:end].split("\n"):
        line_start, line_end = pos, pos + len(line)
        pos = line_end + 1
        lead = len(line) - len(line.lstrip())
        if _HEADING.match(line.lstrip()):
            spans.append((line_start + lead, line_end))
        elif spans and not _HEADING.match(text[spans[-1][0] : spans[-1][1]]):
            spans[-1] = (spans[-1][0], line_end)
        else:
            spans.append((line_start + lead, line_end))
    return spans


def page_of(page_starts: list[int], offset: int) -> int:
    """The page (1-based) that holds a character, given where each page begins."""
    return max(1, bisect.bisect_right(page_starts, offset))
