"""Reviewers' decisions on suggestions, and what a reviewer sees of an item.

A decision settles a suggestion with a compare-and-set on the suggestion's version:
of two reviewers deciding the same item at once, the first decision stands and the
second gets a `Conflict` naming who decided first. The suggestion's proposal (code,
quote, justification, confidence) is never changed; the decision holds the final code
and quote offsets.
"""

from __future__ import annotations

import difflib
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from sqlalchemy import and_, or_, select, update

from pipeline.codebook import Codebook
from pipeline.errors import Conflict, DecisionError
from pipeline.review.reviewers import Reviewer
from pipeline.review.views import (
    ContextTurn,
    DecisionView,
    OtherSuggestion,
    Passage,
    RejectionDetail,
    RejectionView,
    Segment,
    SuggestionDetail,
    SuggestionView,
    speaker_label,
)
from pipeline.store import (
    ChunkRecord,
    CodebookRecord,
    DecisionRecord,
    RejectionRecord,
    Store,
    SuggestionRecord,
    TranscriptRecord,
    TurnRecord,
    now,
)
from pipeline.store.queries import page_span

Verdict = Literal["accept", "reject", "change", "add"]
CONTEXT_TURNS = 2
NOTE_CHARS = 5000  # the longest reason or note a reviewer may write


MAX_OFFSET = 2**31 - 1  # a database integer: no transcript is longer


class DecisionRequest(BaseModel):
    verdict: Verdict
    code: str | None = Field(default=None, max_length=200)
    quote_start: int | None = Field(default=None, ge=0, le=MAX_OFFSET)
    quote_end: int | None = Field(default=None, ge=0, le=MAX_OFFSET)
    reason: str | None = Field(default=None, max_length=NOTE_CHARS)
    note: str | None = Field(default=None, max_length=NOTE_CHARS)

    @model_validator(mode="after")
    def _complete(self) -> DecisionRequest:
        self.reason = (self.reason or "").strip() or None
        self.note = (self.note or "").strip() or None
        self.code = (self.code or "").strip() or None
        if self.verdict == "reject" and not self.reason:
            raise ValueError("a rejection needs a reason")
        if self.verdict in ("change", "add") and not self.code:
            raise ValueError(f"'{self.verdict}' needs a code")
        if (self.quote_start is None) != (self.quote_end is None):
            raise ValueError("a corrected quote needs both its start and its end")
        if self.quote_start is not None and self.quote_end is not None and self.quote_end <= self.quote_start:
            raise ValueError("a quote must end after it starts")
        return self


def codebook_of(store: Store, version: str) -> Codebook | None:
    with store.session() as s:
        record = s.get(CodebookRecord, version)
        return Codebook.model_validate(record.content) if record is not None else None


def passage(store: Store, chunk_id: str) -> Passage:
    """A chunk with its transcript's text around it: the turns before, the chunk, the turns after."""
    with store.session() as s:
        chunk = s.get(ChunkRecord, chunk_id)
        if chunk is None:
            raise DecisionError(f"no passage '{chunk_id}'")
        transcript = s.get_one(TranscriptRecord, chunk.transcript_id)
        turns = list(
            s.scalars(
                select(TurnRecord).where(TurnRecord.transcript_id == chunk.transcript_id).order_by(TurnRecord.index)
            )
        )
    text = transcript.text
    before = [t for t in turns if t.end <= chunk.start][-CONTEXT_TURNS:]
    after = [t for t in turns if t.start >= chunk.end][:CONTEXT_TURNS]

    def turn(t: TurnRecord) -> ContextTurn:
        return ContextTurn(speaker=t.speaker, text=text[t.start : t.end], start=t.start, timestamp=t.timestamp)

    # the labels of the turns that begin in the passage, so it shows `**Ms. Chen:**` as a name too
    # (hidden, not removed: the page counts offsets over the passage's text as written)
    labels = [
        (a, b, kind)
        for t in turns
        if t.speaker and chunk.start <= t.start < chunk.end
        for a, b, kind in speaker_label(text[: chunk.end], t.speaker, t.start) or []
    ]

    return Passage(
        chunk_id=chunk.id,
        transcript_id=transcript.id,
        source_name=transcript.source_name,
        metadata=transcript.case_metadata or {},
        start=chunk.start,
        end=chunk.end,
        text=text[chunk.start : chunk.end],
        speakers=[sp for sp in chunk.speakers if sp],
        before=[turn(t) for t in before],
        after=[turn(t) for t in after],
        pages=None if chunk.page_start is None else page_span(chunk.page_start, chunk.page_end),
        unit=None
        if chunk.unit != "turn"
        else (f"part {chunk.part} of {chunk.parts} of a turn" if chunk.parts else "one turn"),
        unit_speaker=next((sp for sp in chunk.speakers if sp), None) if chunk.unit == "turn" else None,
        context_speakers=sorted({t.get("speaker") or "(no speaker)" for t in chunk.turns if t.get("coded") is False}),
        labels=labels,
    )


def segments(view: Passage, marks: list[tuple[int, int]]) -> list[Segment]:
    """The passage cut at the marked spans' edges and at its speakers' labels' parts."""
    text, offset = view.text, view.start
    edges = {0, len(text)}
    for start, end in [*marks, *((a, b) for a, b, _ in view.labels)]:
        edges.update(max(0, min(len(text), p - offset)) for p in (start, end))
    points = sorted(edges)
    out = []
    for a, b in zip(points, points[1:]):
        if a == b:
            continue
        marked = any(start - offset <= a and b <= end - offset for start, end in marks)
        kind = next((k for start, end, k in view.labels if start - offset <= a and b <= end - offset), None)
        out.append(Segment(text=text[a:b], start=offset + a, marked=marked, kind=kind))
    return out


def suggestion_view(store: Store, suggestion_id: str) -> SuggestionView:
    """Everything the item page shows about one suggestion."""
    with store.session() as s:
        sug = s.get(SuggestionRecord, suggestion_id)
        if sug is None:
            raise DecisionError(f"no suggestion '{suggestion_id}'")
        # only decisions in this suggestion's own project: the same coder configuration's suggestions
        # (whoever may see this one may see those) and codes added under the same codebook
        decisions = [
            _decision_view(d)
            for d in s.scalars(
                select(DecisionRecord)
                .outerjoin(SuggestionRecord, SuggestionRecord.id == DecisionRecord.suggestion_id)
                .where(
                    DecisionRecord.chunk_id == sug.chunk_id,
                    or_(
                        SuggestionRecord.coder_key == sug.coder_key,
                        and_(
                            DecisionRecord.suggestion_id.is_(None),
                            DecisionRecord.codebook_version == sug.codebook_version,
                        ),
                    ),
                )
                .order_by(DecisionRecord.decided_at, DecisionRecord.id)
            )
        ]
        others = list(
            s.scalars(
                select(SuggestionRecord).where(
                    SuggestionRecord.chunk_id == sug.chunk_id,
                    SuggestionRecord.coder_key == sug.coder_key,
                    SuggestionRecord.id != sug.id,
                )
            )
        )
        suggestion = SuggestionDetail.model_validate(sug, from_attributes=True)
        other_codes = [OtherSuggestion.model_validate(o, from_attributes=True) for o in others]
    view = passage(store, suggestion.chunk_id)
    view.segments = segments(view, [(suggestion.quote_start, suggestion.quote_end)])
    codebook = codebook_of(store, suggestion.codebook_version)
    return SuggestionView(
        suggestion=suggestion,
        passage=view,
        codebook=codebook,
        code=codebook.get(suggestion.code) if codebook is not None else None,
        decisions=decisions,
        other_suggestions=other_codes,
    )


def _decision_view(d: DecisionRecord) -> DecisionView:
    return DecisionView.model_validate(d, from_attributes=True)


def _check_quote(chunk: ChunkRecord, text: str, start: int | None, end: int | None) -> None:
    if start is None or end is None:
        return
    if start < chunk.start or end > chunk.end:
        raise DecisionError(f"the quote ({start}-{end}) lies outside the passage ({chunk.start}-{chunk.end})")
    if not text[start:end].strip():
        raise DecisionError("the quote is empty")


def _check_code(codebook: Codebook | None, code: str | None) -> None:
    if code is None or codebook is None:
        return
    if code not in {c.id for c in codebook.leaves}:
        likely = likely_codes(codebook, code)
        hint = f": did you mean {' or '.join(likely)}?" if likely else ""
        raise DecisionError(f"'{code}' is not an applicable code of the codebook '{codebook.name}'{hint}")


def likely_codes(codebook: Codebook, code: str) -> list[str]:
    """The codes someone who typed `code` probably meant: a category's codes, the codes its beginning
    names (`resourc`), else the ids most like it."""
    ids = [c.id for c in codebook.leaves]
    begun = [c for c in ids if len(code) >= 3 and c.lower().startswith(code.lower())][:4]
    return codebook.codes_under(code) or begun or difflib.get_close_matches(code, ids, n=3, cutoff=0.6)


def decide(store: Store, reviewer: Reviewer, suggestion_id: str, version: int, request: DecisionRequest) -> int:
    """Settle a suggestion (accept, reject, change); returns the decision's id.

    Raises Conflict when the suggestion was settled since the reviewer loaded it (version).
    """
    if request.verdict == "add":
        raise DecisionError("adding a code is a decision on the passage, not on a suggestion")
    try:
        return _decide(store, reviewer, suggestion_id, version, request)
    except _Lost:
        raise Conflict(_conflict_message(store, suggestion_id)) from None


class _Lost(Exception):
    """The compare-and-set found the item changed; raised inside the transaction to roll it back."""


def _settle(s: Any, table: Any, row_id: Any, version: int, still_open: Any, **values: Any) -> None:
    """Compare-and-set: only the reviewer who saw the current version settles an open item, and only once."""
    changed = s.execute(
        update(table)
        .where(table.id == row_id, table.version == version, still_open)
        .values(version=version + 1, **values)
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        raise _Lost()


def _decide(store: Store, reviewer: Reviewer, suggestion_id: str, version: int, request: DecisionRequest) -> int:
    with store.session() as s:
        sug = s.get(SuggestionRecord, suggestion_id)
        if sug is None:
            raise DecisionError(f"no suggestion '{suggestion_id}'")
        chunk = s.get_one(ChunkRecord, sug.chunk_id)
        text = s.scalar(select(TranscriptRecord.text).where(TranscriptRecord.id == sug.transcript_id)) or ""
        codebook = _codebook_in(s, sug.codebook_version)
        final_code = {"accept": sug.code, "change": request.code, "reject": None}[request.verdict]
        _check_code(codebook, final_code if request.verdict == "change" else None)
        start, end = request.quote_start, request.quote_end
        _check_quote(chunk, text, start, end)
        if request.verdict != "reject" and start is None:
            start, end = sug.quote_start, sug.quote_end
        decided_at = now()
        _settle(
            s,
            SuggestionRecord,
            suggestion_id,
            version,
            SuggestionRecord.decided_at.is_(None),
            decided_at=decided_at,
            decided_by=reviewer.name,
        )
        record = DecisionRecord(
            suggestion_id=suggestion_id,
            chunk_id=sug.chunk_id,
            reviewer=reviewer.name,
            verdict=request.verdict,
            final_code=final_code,
            quote_start=start if request.verdict != "reject" else None,
            quote_end=end if request.verdict != "reject" else None,
            reason=request.reason,
            note=request.note,
            decided_at=decided_at,
        )
        s.add(record)
        s.flush()
        return record.id


def _codebook_in(s: Any, version: str) -> Codebook | None:
    record = s.get(CodebookRecord, version)
    return Codebook.model_validate(record.content) if record is not None else None


def _conflict_message(store: Store, suggestion_id: str) -> str:
    with store.session() as s:
        sug = s.get(SuggestionRecord, suggestion_id)
        first = s.scalar(
            select(DecisionRecord)
            .where(DecisionRecord.suggestion_id == suggestion_id)
            .order_by(DecisionRecord.decided_at, DecisionRecord.id)
            .limit(1)
        )
    if first is None or sug is None or sug.decided_at is None:
        return "This item changed since you opened it; it has been reloaded."
    when = first.decided_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return (
        f"{first.reviewer} already decided this item ({first.verdict}) at {when}. "
        "Their decision stands; yours was not recorded."
    )


def add_code(store: Store, reviewer: Reviewer, chunk_id: str, codebook_version: str, request: DecisionRequest) -> int:
    """Record a code the model missed on a passage; a code already added there is a Conflict."""
    if request.verdict != "add":
        raise DecisionError("only 'add' decisions are made on a passage")
    with store.session() as s:
        # lock the passage's row first (on SQLite: take the write lock), so that two adds of one
        # code queue up here and the second finds the first
        s.execute(
            update(ChunkRecord)
            .where(ChunkRecord.id == chunk_id)
            .values(id=ChunkRecord.id)
            .execution_options(synchronize_session=False)
        )
        chunk = s.get(ChunkRecord, chunk_id)
        if chunk is None:
            raise DecisionError(f"no passage '{chunk_id}'")
        text = s.scalar(select(TranscriptRecord.text).where(TranscriptRecord.id == chunk.transcript_id)) or ""
        codebook = _codebook_in(s, codebook_version)
        if codebook is None:
            raise DecisionError(f"no codebook version '{codebook_version}' in the database")
        _check_code(codebook, request.code)
        _check_quote(chunk, text, request.quote_start, request.quote_end)
        earlier = s.scalar(
            select(DecisionRecord).where(
                DecisionRecord.chunk_id == chunk_id,
                DecisionRecord.verdict == "add",
                DecisionRecord.final_code == request.code,
                DecisionRecord.codebook_version == codebook_version,
            )
        )
        if earlier is not None:
            raise Conflict(f"{earlier.reviewer} already added '{request.code}' to this passage.")
        record = DecisionRecord(
            suggestion_id=None,
            chunk_id=chunk_id,
            codebook_version=codebook_version,
            reviewer=reviewer.name,
            verdict="add",
            final_code=request.code,
            quote_start=request.quote_start,
            quote_end=request.quote_end,
            reason=request.reason,
            note=request.note,
            decided_at=now(),
        )
        s.add(record)
        s.flush()
        return record.id


def rejection_view(store: Store, rejection_id: int) -> RejectionView:
    """What the page of a rejected proposal shows: the passage, what the model said and why it failed."""
    with store.session() as s:
        rejection = s.get(RejectionRecord, rejection_id)
        if rejection is None:
            raise DecisionError(f"no rejected proposal {rejection_id}")
        item = RejectionDetail.model_validate(rejection, from_attributes=True)
        settled = s.scalar(select(DecisionRecord).where(DecisionRecord.rejection_id == rejection_id))
        decided = _decision_view(settled) if settled is not None else None
    view = passage(store, item.chunk_id)
    view.segments = segments(view, [])
    codebook = codebook_of(store, item.codebook_version)
    code = codebook.get(item.code) if codebook is not None and item.code else None
    return RejectionView(rejection=item, passage=view, codebook=codebook, code=code, settled=decided)


def settle_rejection(
    store: Store, reviewer: Reviewer, rejection_id: int, version: int, request: DecisionRequest
) -> int:
    """A person's answer to a proposal that failed validation: dismiss it (with a reason), or add the
    code it should have been, with a quote from the passage. The first answer stands (Conflict)."""
    if request.verdict not in ("reject", "add"):
        raise DecisionError("a rejected proposal is dismissed or replaced by an added code")
    try:
        return _settle_rejection(store, reviewer, rejection_id, version, request)
    except _Lost:
        with store.session() as s:
            first = s.scalar(select(DecisionRecord).where(DecisionRecord.rejection_id == rejection_id))
        who = f"{first.reviewer} already settled this proposal ({first.verdict})" if first else "This proposal changed"
        raise Conflict(f"{who}. Their answer stands; yours was not recorded.") from None


def _settle_rejection(
    store: Store, reviewer: Reviewer, rejection_id: int, version: int, request: DecisionRequest
) -> int:
    with store.session() as s:
        rejection = s.get(RejectionRecord, rejection_id)
        if rejection is None:
            raise DecisionError(f"no rejected proposal {rejection_id}")
        chunk = s.get_one(ChunkRecord, rejection.chunk_id)
        text = s.scalar(select(TranscriptRecord.text).where(TranscriptRecord.id == chunk.transcript_id)) or ""
        if request.verdict == "add":
            _check_code(_codebook_in(s, rejection.codebook_version), request.code)
            _check_quote(chunk, text, request.quote_start, request.quote_end)
        _settle(s, RejectionRecord, rejection_id, version, RejectionRecord.status == "open", status="resolved")
        record = DecisionRecord(
            suggestion_id=None,
            rejection_id=rejection_id,
            chunk_id=rejection.chunk_id,
            codebook_version=rejection.codebook_version,
            reviewer=reviewer.name,
            verdict="add" if request.verdict == "add" else "dismiss",
            final_code=request.code if request.verdict == "add" else None,
            quote_start=request.quote_start if request.verdict == "add" else None,
            quote_end=request.quote_end if request.verdict == "add" else None,
            reason=request.reason,
            note=request.note,
            decided_at=now(),
        )
        s.add(record)
        s.flush()
        return record.id
