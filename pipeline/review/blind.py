"""Double coding for reliability: a lead draws a random sample of a run's passages and
assigns each to two or more reviewers, who code it blind (no model suggestions, no
one else's codes). Their codes export as the long table `unit_id,coder,code`."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import func, select, union, update

from pipeline.review.decisions import NOTE_CHARS, Conflict, DecisionError, codebook_of, passage, segments
from pipeline.review.queued import sharing_words
from pipeline.review.reviewers import Reviewer
from pipeline.review.views import Assignment, AssignmentView, Drawing, Progress, Sample
from pipeline.store import (
    AssignmentRecord,
    ChunkRecord,
    DecisionRecord,
    GrantRecord,
    OpeningRecord,
    PassageWordsRecord,
    ReviewerRecord,
    RunChunkRecord,
    RunRecord,
    Store,
    TranscriptRecord,
    in_batches,
    now,
)

# a key for every code of a blind item: digits, then letters the page does not use (d done, o note),
# then the same letters with Shift: 58 codes (a longer codebook's later codes are ticked with Tab and Space)
CODE_KEYS = "1234567890qwertyuipasfghjklzxcvbnm" + "qwertyuipasfghjklzxcvbnm".upper()

MAX_SAMPLE = 10_000  # passages per reviewer in one sample


def create_sample(
    store: Store, lead: Reviewer, run_id: str, size: int, reviewer_names: list[str], seed: int | None = None
) -> Drawing:
    """Assign `size` passages of a run, drawn at random (reproducibly with `seed`), to every
    named reviewer; says how many it drew and how many it left out, and why."""
    if not lead.is_lead:
        raise DecisionError("only a lead can assign double coding")
    names = list(dict.fromkeys(n.strip() for n in reviewer_names if n.strip()))
    if len(names) < 2:
        raise DecisionError("double coding needs at least two reviewers")
    if not 1 <= size <= MAX_SAMPLE:
        raise DecisionError(f"a sample is 1 to {MAX_SAMPLE:,} passages")
    sample = str(uuid.uuid4())
    with store.session() as s:
        if s.get(RunRecord, run_id) is None:
            raise DecisionError(f"no run '{run_id}'")
        reviewers = list(s.scalars(select(ReviewerRecord).where(ReviewerRecord.name.in_(names))))
        missing = set(names) - {r.name for r in reviewers}
        if missing:
            raise DecisionError(f"no reviewer named {', '.join(sorted(missing))}")
        disabled = sorted(r.name for r in reviewers if r.disabled_at is not None)
        if disabled:
            raise DecisionError(f"{', '.join(disabled)} can no longer sign in")
        granted = set(s.scalars(select(GrantRecord.reviewer_id).where(GrantRecord.run_id == run_id)))
        outside = sorted(r.name for r in reviewers if r.role != "lead" and r.id not in granted)
        if outside:
            raise DecisionError(f"{', '.join(outside)} may not see this run (qcode reviewer grant NAME --run {run_id})")
        ids = [r.id for r in reviewers]
        names_in = [r.name for r in reviewers]
        in_run = set(s.scalars(select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id)))
        # not drawn: a passage one of them already codes blind (one code set per coder and unit); one
        # they have reviewed or opened, with the model's suggestions in view (it would not be blind);
        # nor one sharing words with such a passage (a copy of the transcript, another chunking)
        taken = select(AssignmentRecord.chunk_id).where(AssignmentRecord.reviewer_id.in_(ids))
        seen = union(
            select(DecisionRecord.chunk_id).where(DecisionRecord.reviewer.in_(names_in)),
            select(OpeningRecord.chunk_id).where(OpeningRecord.reviewer_id.in_(ids)),
        )
        coded = in_run & set(s.scalars(sharing_words(taken)))
        viewed = (in_run - coded) & set(s.scalars(sharing_words(seen)))
        pool = sorted(in_run - coded - viewed)
        places: dict[str, list[tuple[str, int, int]]] = {}
        for part in in_batches(pool):
            rows = s.execute(
                select(
                    PassageWordsRecord.chunk_id,
                    PassageWordsRecord.key,
                    PassageWordsRecord.start,
                    PassageWordsRecord.end,
                ).where(PassageWordsRecord.chunk_id.in_(part))
            )
            for chunk_id, key, start, end in rows:
                places.setdefault(chunk_id, []).append((key, start, end))
        # every copy of an interview is one interview: of passages sharing words, one stands for all
        distinct: list[str] = []
        taken_places: dict[str, list[tuple[int, int]]] = {}
        for chunk_id in pool:
            own = places.get(chunk_id, [])
            if any(s0 < end and start < e0 for key, start, end in own for s0, e0 in taken_places.get(key, [])):
                continue
            distinct.append(chunk_id)
            for key, start, end in own:
                taken_places.setdefault(key, []).append((start, end))
        drawing = Drawing(
            sample=sample,
            passages=min(size, len(distinct)),
            coding_already=len(coded),
            seen=len(viewed),
            copies=len(pool) - len(distinct),
        )
        if not distinct:
            raise DecisionError(
                f"run '{run_id}' has no passages left that these reviewers have not coded or reviewed already "
                f"({drawing.left_out()})"
            )
        chosen = sorted(random.Random(seed).sample(distinct, drawing.passages))
        stamp = now()
        for chunk_id in chosen:
            for reviewer in reviewers:
                s.add(
                    AssignmentRecord(
                        sample=sample,
                        run_id=run_id,
                        chunk_id=chunk_id,
                        reviewer_id=reviewer.id,
                        assigned_by=lead.name,
                        assigned_at=stamp,
                    )
                )
    return drawing


def assignments(store: Store, reviewer: Reviewer) -> list[Assignment]:
    """A reviewer's blind-coding assignments, those still to code first."""
    with store.session() as s:
        rows = s.execute(
            select(
                AssignmentRecord,
                TranscriptRecord.source_name,
                TranscriptRecord.format,
                ChunkRecord.index,
                ChunkRecord.speakers,
            )
            .join(ChunkRecord, ChunkRecord.id == AssignmentRecord.chunk_id)
            .join(TranscriptRecord, TranscriptRecord.id == ChunkRecord.transcript_id)
            .where(AssignmentRecord.reviewer_id == reviewer.id)
            .order_by(AssignmentRecord.coded_at.is_not(None), TranscriptRecord.source_name, ChunkRecord.index)
        ).all()
        return [
            Assignment(
                id=a.id,
                sample=a.sample,
                chunk_id=a.chunk_id,
                coded=a.coded_at is not None,
                codes=a.codes or [],
                source_name=name,
                position=index + 1,
                respondent=_respondent(form, speakers),
            )
            for a, name, form, index, speakers in rows
        ]


def _respondent(form: str, speakers: list[str | None] | None) -> str | None:
    """A CSV row's respondent (its one turn's speaker); None for a passage of any other transcript."""
    return str(speakers[0]) if form == "csv" and speakers and speakers[0] else None


def waiting(store: Store, reviewer: Reviewer) -> int:
    """How many passages the reviewer still has to code blind."""
    with store.session() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(AssignmentRecord)
                .where(AssignmentRecord.reviewer_id == reviewer.id, AssignmentRecord.coded_at.is_(None))
            )
            or 0
        )


def assignment_view(store: Store, reviewer: Reviewer, assignment_id: int) -> AssignmentView:
    """The passage and the codebook, and nothing the model or other reviewers said."""
    with store.session() as s:
        a = s.get(AssignmentRecord, assignment_id)
        if a is None or a.reviewer_id != reviewer.id:
            raise DecisionError("no such assignment")
        run = s.get_one(RunRecord, a.run_id)
        chunk = s.get_one(ChunkRecord, a.chunk_id)
        form = s.scalar(select(TranscriptRecord.format).where(TranscriptRecord.id == chunk.transcript_id))
        item = Assignment(
            id=a.id,
            sample=a.sample,
            chunk_id=a.chunk_id,
            codes=a.codes or [],
            note=a.note,
            coded=a.coded_at is not None,
            codebook_version=run.codebook_version,
            position=chunk.index + 1,
            respondent=_respondent(str(form), chunk.speakers),
        )
    view = passage(store, item.chunk_id)
    item.source_name = view.source_name
    view.segments = segments(view, [])
    return AssignmentView(assignment=item, passage=view, codebook=codebook_of(store, run.codebook_version))


def submit(store: Store, reviewer: Reviewer, assignment_id: int, codes: list[str], note: str | None = None) -> None:
    """Record a reviewer's blind codes ([] when none applies); a second submission is a Conflict."""
    with store.session() as s:
        a = s.get(AssignmentRecord, assignment_id)
        if a is None or a.reviewer_id != reviewer.id:
            raise DecisionError("no such assignment")
        codebook = codebook_of(store, s.get_one(RunRecord, a.run_id).codebook_version)
    if len(note or "") > NOTE_CHARS:
        raise DecisionError(f"the note is {len(note or ''):,} characters long: keep it to {NOTE_CHARS:,}")
    allowed = {c.id for c in codebook.leaves} if codebook else set(codes)
    unknown = [c for c in codes if c not in allowed]
    if unknown:
        raise DecisionError(f"not an applicable code: {', '.join(unknown)}")
    with store.session() as s:
        changed = s.execute(  # type: ignore[attr-defined]  # an UPDATE's result has a rowcount
            update(AssignmentRecord)
            .where(AssignmentRecord.id == assignment_id, AssignmentRecord.coded_at.is_(None))
            .values(codes=sorted(set(codes)), note=(note or "").strip() or None, coded_at=now())
            .execution_options(synchronize_session=False)
        ).rowcount
    if changed != 1:
        raise Conflict("You already coded this passage; your first codes stand.")


def samples(store: Store) -> list[Sample]:
    """Every sample with its reviewers and progress."""
    with store.session() as s:
        rows = s.execute(
            select(
                AssignmentRecord.sample,
                AssignmentRecord.run_id,
                RunRecord.name,
                ReviewerRecord.name,
                func.count(),
                func.count(AssignmentRecord.coded_at),
                func.min(AssignmentRecord.assigned_at),
            )
            .join(ReviewerRecord, ReviewerRecord.id == AssignmentRecord.reviewer_id)
            .join(RunRecord, RunRecord.id == AssignmentRecord.run_id)
            .group_by(AssignmentRecord.sample, AssignmentRecord.run_id, RunRecord.name, ReviewerRecord.name)
        ).all()
    out: dict[str, Sample] = {}
    for sample, run_id, run_name, name, total, coded, assigned_at in rows:
        entry = out.setdefault(
            sample, Sample(sample=sample, run_id=run_id, run_name=run_name, assigned_at=assigned_at, reviewers={})
        )
        entry.reviewers[name] = Progress(coded=coded, total=total)
    return sorted(out.values(), key=lambda e: e.assigned_at, reverse=True)


def opened(store: Store, reviewer: Reviewer, chunk_id: str) -> None:
    """Remember that a reviewer saw a passage with the model's suggestions in view: it is never
    drawn for them to code blind."""
    with store.session() as s:
        if s.get(OpeningRecord, (reviewer.id, chunk_id)) is None:  # two tabs opening it at once: one row
            row = {"reviewer_id": reviewer.id, "chunk_id": chunk_id, "opened_at": now()}
            s.execute(store.insert(OpeningRecord).on_conflict_do_nothing(), [row])
