"""The training set of the learned coder: units of transcripts with the codes people gave them,
from every place a team keeps human codes.

- gold files (`file,coder,code,quote` or `start,end`, the passage format `qcode eval` reads) over
  their transcripts;
- codes imported with a REFI-QDA project (`qcode import`), on the transcripts they came with;
- blind double codes of the review app, on the passages drawn for them;
- reviewers' decisions on suggestions: accepted, changed, added and rejected.

Gold files and imported codes are spans: the transcripts are cut into units as the run will cut them
(`Units`), and a person's code counts for each unit that holds it (`pipeline.chunk.holds`). A person
who coded anything in a transcript coded all of it, so a unit they gave no code is a negative for
every code. Blind codes are whole too: a passage coded blind without a code is a negative.

Several people on one unit are combined by **majority**: a code stands when at least half of the
people who coded the unit applied it (a tie stands). A decision says something of one code only: an
acceptance or an added code makes that code stand on the passage, a rejection makes it absent, a
change does both; the other codes stay unknown for that passage (`Example.known`).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from pipeline.chunk import Chunk, Units, cut, for_coder, holds
from pipeline.codebook import Codebook
from pipeline.store import (
    AssignmentRecord,
    ChunkRecord,
    DecisionRecord,
    HumanCodeRecord,
    ReviewerRecord,
    RunRecord,
    Store,
    SuggestionRecord,
    TranscriptRecord,
    chunk_of,
    in_batches,
    transcripts_of,
)
from pipeline.suggestion import HumanCode
from pipeline.transcript import Transcript


@dataclass
class Example:
    """A unit and what people said of it: the codes that stand, and which codes that covers."""

    unit: Chunk  # with its context filled in, as a coder is shown it
    source: str  # the transcript, as a justification names it
    codes: set[str]  # the codes that stand on the unit
    known: set[str] | None  # the codes whose presence or absence is known; None: all of them
    coders: list[str]  # the people behind it
    origin: str  # "gold", "imported", "blind" or "decisions"
    text_sha256: str = ""  # of the transcript's text: a run over it again (another file name, too) is known


@dataclass
class TrainingSet:
    examples: list[Example] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, origin: str) -> int:
        return sum(1 for e in self.examples if e.origin == origin)


def majority(votes: dict[str, set[str]]) -> set[str]:
    """The codes at least half of the people applied (a tie stands)."""
    counted: dict[str, int] = defaultdict(int)
    for codes in votes.values():
        for code in codes:
            counted[code] += 1
    return {code for code, n in counted.items() if 2 * n >= len(votes)}


def from_spans(
    transcripts: Sequence[Transcript],
    spans: Iterable[HumanCode],
    coverage: Iterable[tuple[str, str]],
    units: Units,
    applicable: set[str],
    origin: str,
    labels: dict[str, str] | None = None,
) -> list[Example]:
    """Examples from spans people coded in whole transcripts: `coverage` holds (coder, transcript id)
    for every transcript a person coded. Codes outside `applicable` are left out (the caller says
    so); `labels` names transcripts for justifications (default: their file names)."""
    by_transcript: dict[str, list[HumanCode]] = defaultdict(list)
    for span in spans:
        if span.code in applicable:
            by_transcript[span.transcript_id].append(span)
    coders_of: dict[str, list[str]] = defaultdict(list)
    for coder, transcript_id in coverage:
        coders_of[transcript_id].append(coder)
    examples = []
    for transcript in transcripts:
        coders = sorted(coders_of.get(transcript.id, []))
        if not coders:
            continue
        mine = by_transcript.get(transcript.id, [])
        for unit in cut(transcript, units):
            votes = {c: {s.code for s in mine if s.coder == c and holds(unit, s.start, s.end)} for c in coders}
            examples.append(
                Example(
                    unit=for_coder(unit, transcript.text, transcript.metadata),
                    source=(labels or {}).get(transcript.id, transcript.source_name),
                    codes=majority(votes),
                    known=None,
                    coders=coders,
                    origin=origin,
                    text_sha256=text_hash(transcript.text),
                )
            )
    return examples


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def from_store(store: Store, codebook: Codebook, units: Units) -> TrainingSet:
    """Every human code the store holds for this codebook: imported, blind and decided."""
    found = TrainingSet()
    applicable = codebook.applicable_ids()
    with store.session() as s:
        imported = list(s.scalars(select(HumanCodeRecord).where(HumanCodeRecord.codebook_version == codebook.version)))
        transcripts = transcripts_of(s, {c.transcript_id for c in imported})
        unknown = sorted({c.code for c in imported} - applicable)
        if unknown:
            found.notes.append(f"imported codes not in the codebook, left out: {', '.join(unknown)}")
        spans = [
            HumanCode(transcript_id=c.transcript_id, coder=c.coder, code=c.code, start=c.start, end=c.end)
            for c in imported
        ]
        coverage = {(c.coder, c.transcript_id) for c in imported}
        found.examples += from_spans(transcripts, spans, coverage, units, applicable, "imported")
        found.examples += _blind(s, codebook.version, applicable)
        found.examples += _decided(s, codebook.version, applicable)
    return found


def _stored_units(session: Session, chunk_ids: Iterable[str]) -> dict[str, tuple[Chunk, str, str]]:
    """Stored passages with their context, their transcript's name and the hash of its text."""
    s = session
    out: dict[str, tuple[Chunk, str, str]] = {}
    for part in in_batches(sorted(set(chunk_ids))):
        rows = s.execute(
            select(ChunkRecord, TranscriptRecord.text, TranscriptRecord.case_metadata, TranscriptRecord.source_name)
            .join(TranscriptRecord, TranscriptRecord.id == ChunkRecord.transcript_id)
            .where(ChunkRecord.id.in_(part))
        )
        for record, text, metadata, name in rows:
            out[record.id] = (for_coder(chunk_of(record), text, metadata or {}), name, text_hash(text))
    return out


def _blind(session: Session, codebook_version: str, applicable: set[str]) -> list[Example]:
    """Passages reviewers coded blind, each reviewer's codes whole, combined by majority."""
    s = session
    rows = s.execute(
        select(AssignmentRecord.chunk_id, AssignmentRecord.codes, ReviewerRecord.name)
        .join(ReviewerRecord, ReviewerRecord.id == AssignmentRecord.reviewer_id)
        .join(RunRecord, RunRecord.id == AssignmentRecord.run_id)
        .where(AssignmentRecord.coded_at.is_not(None), RunRecord.codebook_version == codebook_version)
    ).all()
    votes: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for chunk_id, codes, reviewer in rows:
        votes[chunk_id][f"reviewer:{reviewer}"] = {c for c in codes or [] if c in applicable}
    stored = _stored_units(s, votes)
    return [
        Example(
            unit=stored[chunk_id][0],
            source=stored[chunk_id][1],
            codes=majority(people),
            known=None,
            coders=sorted(people),
            origin="blind",
            text_sha256=stored[chunk_id][2],
        )
        for chunk_id, people in votes.items()
        if chunk_id in stored
    ]


def _decided(session: Session, codebook_version: str, applicable: set[str]) -> list[Example]:
    """What reviewers' decisions on this codebook's suggestions say, one code at a time."""
    s = session
    rows = s.execute(
        select(DecisionRecord, SuggestionRecord.code, SuggestionRecord.codebook_version)
        .outerjoin(SuggestionRecord, SuggestionRecord.id == DecisionRecord.suggestion_id)
        .order_by(DecisionRecord.id)
    ).all()
    said: dict[str, dict[str, bool]] = defaultdict(dict)  # chunk -> code -> stands
    who: dict[str, set[str]] = defaultdict(set)
    for decision, proposed, version in rows:
        if (version or decision.codebook_version) != codebook_version:
            continue
        verdicts: dict[str, list[tuple[str | None, bool]]] = {
            "accept": [(proposed, True)],
            "reject": [(proposed, False)],
            "change": [(proposed, False), (decision.final_code, True)],
            "add": [(decision.final_code, True)],
        }
        for code, stands in verdicts.get(decision.verdict, []):
            if code in applicable:
                said[decision.chunk_id].setdefault(code, stands)  # the first decision on a code stands
                who[decision.chunk_id].add(f"reviewer:{decision.reviewer}")
    stored = _stored_units(s, said)
    return [
        Example(
            unit=stored[chunk_id][0],
            source=stored[chunk_id][1],
            codes={code for code, stands in codes.items() if stands},
            known=set(codes),
            coders=sorted(who[chunk_id]),
            origin="decisions",
            text_sha256=stored[chunk_id][2],
        )
        for chunk_id, codes in said.items()
        if chunk_id in stored
    ]
