"""The review queue: suggestions a person must look at before they count.

A suggestion waits when routing sent it to review or to the audit sample and no
reviewer has settled it yet. What a reviewer sees is limited to the runs they may
see: a suggestion belongs to a run when the run covered its chunk with the same
coder configuration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import aliased

from pipeline.errors import DecisionError
from pipeline.review.views import FilterOptions, OpenRejection, QueueItem, Waiting, WaitingSuggestion
from pipeline.store import (
    AssignmentRecord,
    ChunkRecord,
    PassageWordsRecord,
    RejectionRecord,
    RunChunkRecord,
    RunRecord,
    Store,
    SuggestionRecord,
    TranscriptRecord,
)
from pipeline.store.queries import page_span
from pipeline.suggestion import QUEUED

STATUSES = ("pending", "review", "audit", "accepted", "decided", "all")


@dataclass
class QueueFilter:
    """What a reviewer narrows the queue to. `status` is pending (queued, not yet decided),
    review, audit or accepted (undecided ones with that routing), decided, or all."""

    run: str | None = None
    code: str | None = None
    transcript: str | None = None
    case: dict[str, str] = field(default_factory=dict)
    status: str = "pending"
    min_confidence: float | None = None
    max_confidence: float | None = None
    # whose queue: passages they still code blind are left out
    reviewer_id: int | None = None
    order: str = "confidence"  # or "uncertainty": confidence nearest one half first

    def ordering(self) -> tuple[Any, Any]:
        return ordering(self.order)

    def query_string(self) -> dict[str, str]:
        values = {
            "run": self.run,
            "code": self.code,
            "transcript": self.transcript,
            "status": self.status,
            "min_confidence": self.min_confidence,
            "max_confidence": self.max_confidence,
            "order": None if self.order == "confidence" else self.order,
        }
        values.update({f"case.{k}": v for k, v in self.case.items()})
        return {k: str(v) for k, v in values.items() if v not in (None, "")}


QUEUE_ORDERS = ("confidence", "uncertainty")


def ordering(order: str) -> tuple[Any, Any]:
    """How the queue is ordered: lowest confidence first, or (`uncertainty`) the confidence nearest
    one half first, where a reviewer's decision teaches a learned model most."""
    if order not in QUEUE_ORDERS:
        raise DecisionError(f"unknown order '{order}' (choose from {', '.join(QUEUE_ORDERS)})")
    first = func.abs(SuggestionRecord.confidence - 0.5) if order == "uncertainty" else SuggestionRecord.confidence
    return first, SuggestionRecord.id


def in_runs(run_ids: Sequence[str], record: Any = SuggestionRecord) -> Any:
    """The condition that a suggestion (or a rejected proposal: `record`) belongs to one of these runs."""
    return exists(
        select(RunChunkRecord.chunk_id)
        .join(RunRecord, RunRecord.id == RunChunkRecord.run_id)
        .where(
            RunChunkRecord.chunk_id == record.chunk_id,
            RunRecord.coder_key == record.coder_key,
            RunChunkRecord.run_id.in_(list(run_ids)),
        )
    )


def _overlap(one: Any, other: Any) -> Any:
    """Two passages' places (aliases of PassageWordsRecord) hold some of the same words."""
    return and_(other.key == one.key, other.start < one.end, one.start < other.end)


def sharing_words(passages: Any) -> Any:
    """The ids of the passages that share words with any of `passages` (a query of chunk ids), those
    included: copies of them in any transcript (see pipeline/words.py), and other chunkings of the
    same turns."""
    mine, theirs = aliased(PassageWordsRecord), aliased(PassageWordsRecord)
    return select(theirs.chunk_id).join(mine, _overlap(mine, theirs)).where(mine.chunk_id.in_(passages))


def coding_blind(reviewer_id: int, chunk: Any = SuggestionRecord.chunk_id) -> Any:
    """The condition that a reviewer still has to code a passage (`chunk`: a suggestion's, a
    rejection's or a passage's id column, or an id) blind, or a passage that shares words with one
    (a copy of its transcript under any name, another run's chunking of the same turns): until then
    nothing of the model's or of other people's there reaches them."""
    assigned, here = aliased(PassageWordsRecord), aliased(PassageWordsRecord)
    return exists(
        select(AssignmentRecord.id)
        .join(assigned, assigned.chunk_id == AssignmentRecord.chunk_id)
        .join(here, _overlap(assigned, here))
        .where(
            here.chunk_id == chunk,
            AssignmentRecord.reviewer_id == reviewer_id,
            AssignmentRecord.coded_at.is_(None),
        )
    )


def _conditions(flt: QueueFilter, run_ids: Sequence[str], with_status: bool = True) -> list[Any]:
    ids = [flt.run] if flt.run else list(run_ids)
    if flt.run and flt.run not in run_ids:
        ids = []
    conditions: list[Any] = [in_runs(ids)]
    if flt.reviewer_id is not None:
        conditions.append(~coding_blind(flt.reviewer_id))
    if flt.code:
        conditions.append(SuggestionRecord.code == flt.code)
    if flt.transcript:
        conditions.append(TranscriptRecord.source_name == flt.transcript)
    for key, value in flt.case.items():
        conditions.append(TranscriptRecord.case_metadata[key].as_string() == value)
    if flt.min_confidence is not None:
        conditions.append(SuggestionRecord.confidence >= flt.min_confidence)
    if flt.max_confidence is not None:
        conditions.append(SuggestionRecord.confidence <= flt.max_confidence)
    if with_status:
        conditions.append(status_condition(flt.status))
    return conditions


def status_condition(status: str) -> Any:
    undecided = SuggestionRecord.decided_at.is_(None)
    if status == "pending":
        return and_(SuggestionRecord.status.in_(QUEUED), undecided)
    if status in ("review", "audit", "accepted"):
        return and_(SuggestionRecord.status == status, undecided)
    if status == "decided":
        return SuggestionRecord.decided_at.is_not(None)
    return SuggestionRecord.id.is_not(None)


def _base(*columns: Any) -> Any:
    return (
        select(*columns)
        .select_from(SuggestionRecord)
        .join(TranscriptRecord, SuggestionRecord.transcript_id == TranscriptRecord.id)
    )


def queue_items(
    store: Store, run_ids: Sequence[str], flt: QueueFilter, limit: int = 50, offset: int = 0
) -> list[QueueItem]:
    """Suggestions that match, in the filter's order (lowest confidence first by default)."""
    with store.session() as s:
        rows = s.execute(
            _base(SuggestionRecord, TranscriptRecord.source_name, TranscriptRecord.case_metadata)
            .where(*_conditions(flt, run_ids))
            .order_by(*flt.ordering())
            .limit(limit)
            .offset(offset)
        ).all()
    return [
        QueueItem(
            id=sug.id,
            code=sug.code,
            confidence=sug.confidence,
            status=sug.status,
            decided_by=sug.decided_by,
            quote=sug.quote,
            source_name=name,
            metadata=metadata,
            chunk_id=sug.chunk_id,
        )
        for sug, name, metadata in rows
    ]


def next_item(
    store: Store,
    run_ids: Sequence[str],
    flt: QueueFilter,
    skip: set[str] | frozenset[str] = frozenset(),
    after: str | None = None,
) -> str | None:
    """The id of the first matching suggestion not in `skip` (items others hold open)."""
    with store.session() as s:
        query = _base(SuggestionRecord.id).where(*_conditions(flt, run_ids)).order_by(*flt.ordering())
        if skip:
            query = query.where(SuggestionRecord.id.not_in(list(skip)))
        if after:
            query = query.where(SuggestionRecord.id != after)
        return s.scalar(query.limit(1))


def queue_counts(store: Store, run_ids: Sequence[str], flt: QueueFilter) -> dict[str, int]:
    """How many matching suggestions are pending (waiting for a person), decided, and in each routing
    status among the undecided, so that pending = review + audit and all = pending + decided +
    accepted."""
    with store.session() as s:
        rows = s.execute(
            _base(SuggestionRecord.status, SuggestionRecord.decided_at.is_not(None), func.count())
            .where(*_conditions(flt, run_ids, with_status=False))
            .group_by(SuggestionRecord.status, SuggestionRecord.decided_at.is_not(None))
        ).all()
    counts = {"pending": 0, "decided": 0, "review": 0, "audit": 0, "accepted": 0, "all": 0}
    for status, decided, n in rows:
        counts["all"] += n
        if decided:
            counts["decided"] += n
            continue
        counts[status] = counts.get(status, 0) + n
        if status in QUEUED:
            counts["pending"] += n
    return counts


def filter_options(store: Store, run_ids: Sequence[str], reviewer_id: int | None = None) -> FilterOptions:
    """The codes, transcripts and case attribute values present, for the queue's filters: only of
    suggestions the reviewer may see (none on passages they still code blind)."""
    visible = in_runs(run_ids) if reviewer_id is None else and_(in_runs(run_ids), ~coding_blind(reviewer_id))
    with store.session() as s:
        codes = sorted(s.scalars(select(SuggestionRecord.code).where(visible).distinct()))
        transcript_ids = select(SuggestionRecord.transcript_id).where(visible).distinct()
        # metadata is JSON, which PostgreSQL cannot compare for DISTINCT: one row per transcript instead
        rows = s.execute(
            select(TranscriptRecord.source_name, TranscriptRecord.case_metadata).where(
                TranscriptRecord.id.in_(transcript_ids)
            )
        ).all()
    transcripts: set[str] = set()
    case: dict[str, set[str]] = {}
    for name, metadata in rows:
        transcripts.add(name)
        for key, value in (metadata or {}).items():
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                case.setdefault(key, set()).add(str(value))
    return FilterOptions(
        codes=codes, transcripts=sorted(transcripts), case={k: sorted(v) for k, v in sorted(case.items())}
    )


def queued_suggestions(store: Store, limit: int = 50, order: str = "confidence") -> Waiting:
    """The first `limit` undecided queued suggestions, lowest confidence first (or, by
    `uncertainty`, those whose confidence is nearest one half first: what a review teaches a
    learned model most); how many there are; how many rejected proposals are open."""
    first = ordering(order)
    waiting = status_condition("pending")
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(SuggestionRecord).where(waiting))
        rejections = s.scalar(select(func.count()).select_from(RejectionRecord).where(RejectionRecord.status == "open"))
        rows = s.execute(
            select(
                SuggestionRecord,
                TranscriptRecord.source_name,
                TranscriptRecord.case_metadata,
                ChunkRecord.unit,
                ChunkRecord.page_start,
                ChunkRecord.page_end,
            )
            .join(TranscriptRecord, SuggestionRecord.transcript_id == TranscriptRecord.id)
            .join(ChunkRecord, SuggestionRecord.chunk_id == ChunkRecord.id)
            .where(waiting)
            .order_by(*first)
            .limit(limit)
        )
        items = [
            WaitingSuggestion(
                suggestion_id=sug.id,
                source_name=name,
                metadata=metadata,
                chunk_id=sug.chunk_id,
                code=sug.code,
                confidence=sug.confidence,
                status=sug.status,
                quote=sug.quote,
                justification=sug.justification,
                coder=sug.coder,
                model=sug.model,
                unit=unit,
                pages=None if page_start is None else page_span(page_start, page_end),
            )
            for sug, name, metadata, unit, page_start, page_end in rows
        ]
    return Waiting(total=total or 0, open_rejections=rejections or 0, items=items)


def open_rejections(
    store: Store, run_ids: Sequence[str], reviewer_id: int, limit: int = 200
) -> tuple[list[OpenRejection], int]:
    """Proposals that failed validation and wait for a person, oldest first; and how many there are.
    Not on passages the reviewer still codes blind."""
    waiting = (
        RejectionRecord.status == "open",
        in_runs(run_ids, RejectionRecord),
        ~coding_blind(reviewer_id, RejectionRecord.chunk_id),
    )
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(RejectionRecord).where(*waiting)) or 0
        rows = s.execute(
            select(RejectionRecord, TranscriptRecord.source_name)
            .join(ChunkRecord, ChunkRecord.id == RejectionRecord.chunk_id)
            .join(TranscriptRecord, TranscriptRecord.id == ChunkRecord.transcript_id)
            .where(*waiting)
            .order_by(RejectionRecord.id)
            .limit(limit)
        ).all()
    return [
        OpenRejection(id=r.id, code=r.code, quote=r.quote, reason=r.reason, source_name=name) for r, name in rows
    ], total
