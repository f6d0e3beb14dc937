"""Reads of the store that more than one part of qcode needs.

What counts as a coded passage is decided here and nowhere else: `coded_passages` reads the
suggestions and the reviewers' decisions, for the matrices, the report and the REFI-QDA export; and
the `--status` words mean the same wherever a command takes them (STATUS_TEXT). The long table
`unit_id,coder,code` that agreement statistics read is made here too, from the model's codes
(`coding_rows`), reviewers' blind codes (`blind_rows`) and people's codes imported from other QDA
tools (`human_rows`). Which run a `--run` names is decided here too (`pick_run`): `latest` is the
latest run that coded something, never one that read no transcript.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, case, distinct, func, select

from pipeline.chunk import holds
from pipeline.errors import StoreError
from pipeline.store import Store, in_batches, redact
from pipeline.store.records import (
    AssignmentRecord,
    ChunkCodingRecord,
    ChunkRecord,
    CodebookRecord,
    DecisionRecord,
    HumanCodeRecord,
    RejectionRecord,
    ReviewerRecord,
    RunChunkRecord,
    RunRecord,
    SuggestionRecord,
    TranscriptRecord,
)
from pipeline.suggestion import QUEUED

MISSING = "(missing)"  # a transcript without a value for a case attribute

# What `--status` keeps, in `qcode export` and `qcode matrix` alike. `accepted` and `review` say where
# a suggestion stands now, after any reviewer's decision (`standing`); `audit` and `queued` say where
# routing sent it; `all` is what stands and what still waits. `qcode export` lists suggestions (with no
# --status, every one); `qcode matrix` counts the codes that stand, reviewers' own among them.
STATUSES = ("accepted", "review", "audit", "queued", "all")
STATUS_TEXT = {
    "accepted": "Codes as they stand after review: suggestions accepted without review that no reviewer has "
    "rejected since, suggestions a reviewer accepted, suggestions a reviewer changed (under the new code), "
    "and codes reviewers added. Suggestions still waiting for a reviewer and codes reviewers rejected are "
    "left out.",
    "review": "Suggestions still waiting for a reviewer (routed to review, or drawn for the audit, and not decided "
    "yet), under the code the coder proposed.",
    "audit": "Suggestions drawn for the audit sample, decided or not: what an estimate of the error rate of "
    "suggestions accepted without review is made from.",
    "queued": "Suggestions routing sent to a reviewer (low confidence, or drawn for the audit), decided or not.",
    "all": "The codes that stand after review and the suggestions still waiting for a reviewer, together. Codes "
    "reviewers rejected, and the proposed code of a suggestion a reviewer changed, are left out.",
}


# the statuses that count codes on passages, rather than list suggestions
PASSAGE_STATUSES = ("accepted", "review", "all")


def standing(routing: str, verdict: str | None) -> str:
    """Where a suggestion stands now: `accepted` (routing accepted it and no reviewer has decided
    otherwise, or a reviewer accepted it), `waiting` (for a reviewer), `changed` (a reviewer put another
    code in its place) or `rejected`. The first decision on a suggestion is the one that stands."""
    if verdict is None:
        return "accepted" if routing == "accepted" else "waiting"
    return {"accept": "accepted", "change": "changed", "reject": "rejected"}.get(verdict, "waiting")


# what a suggestion's standing must be to be kept under each status that says where it stands
_KEPT = {"accepted": {"accepted"}, "review": {"waiting"}, "all": {"accepted", "waiting"}}


def check_status(status: str | None, allowed: Sequence[str] = STATUSES) -> None:
    if status is not None and status not in allowed:
        raise StoreError(f"unknown status '{status}' (choose from {', '.join(allowed)})")


# ---------------------------------------------------------------- runs and suggestions


class RunRef(BaseModel):
    """A run as a person picks it out: its id, its name, when it started, and how many units it
    covered (none: it read no transcript, and coded nothing)."""

    id: str
    name: str | None
    started_at: datetime  # UTC, as stored
    units: int


def run_refs(store: Store) -> list[RunRef]:
    """Every run, oldest first."""
    with store.session() as s:
        units = dict(s.execute(select(RunChunkRecord.run_id, func.count()).group_by(RunChunkRecord.run_id)).all())
        rows = s.execute(
            select(RunRecord.id, RunRecord.name, RunRecord.started_at).order_by(RunRecord.started_at, RunRecord.id)
        ).all()
    return [RunRef(id=i, name=name, started_at=started, units=units.get(i, 0)) for i, name, started in rows]


def local_minute(value: datetime) -> str:
    """A time the store holds (UTC) as the clock on this machine showed it: '2026-12-07 21:40'."""
    return value.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M")


def pick_run(runs: Sequence[RunRef], wanted: str) -> RunRef:
    """The run `wanted` names among `runs` (oldest first): 'latest', the latest run that coded
    something (a run that read no transcript never is, whatever its time); else a run's id, its
    name, or the start of its id. A name or a start that fits several runs is an error naming them."""
    if not runs:
        raise StoreError("the database has no runs yet")
    if wanted == "latest":
        coded = [r for r in runs if r.units]
        if not coded:
            raise StoreError(
                f"no run in the database has coded anything yet: its {len(runs)} run(s) read no transcript"
            )
        return coded[-1]
    for found in (
        [r for r in runs if r.id == wanted],
        [r for r in runs if r.name == wanted],
        [r for r in runs if wanted and r.id.startswith(wanted.lower())],
    ):
        if len(found) == 1:
            return found[0]
        if found:
            named = found[0].name == wanted
            how = f"is the name of {len(found)} runs" if named else f"is the start of {len(found)} runs' ids"
            raise StoreError(
                f"'{wanted}' {how}: {'; '.join(_run_label(r) for r in found)}",
                hint="give a run's id, or more of it",
            )
    raise StoreError(f"no run '{wanted}' in the database", hint="qcode runs lists them")


def _run_label(run: RunRef) -> str:
    named = f"'{run.name}' " if run.name else ""
    return f"{named}{run.id} ({local_minute(run.started_at)})"


def resolve_run(store: Store, run_id: str | None) -> str | None:
    """A run's id, from what a person typed for it (`pick_run`): latest, an id, a name, the start of
    an id; None stays None (every run)."""
    if run_id is None:
        return None
    return pick_run(run_refs(store), run_id).id


class RunListing(BaseModel):
    """One line of `qcode runs`: a run, what it coded, and what of it still waits for a reviewer."""

    id: str
    name: str | None
    started_at: datetime
    finished_at: datetime | None
    status: str  # running, finished, failed or interrupted
    coder: str
    model: str
    codebook: str
    codebook_version: str
    unit: str  # chunk or turn
    transcripts: int
    units: int
    suggestions: int  # the suggestions of the run's coder configuration on its units, whenever made
    waiting: int  # of those, how many wait for a reviewer (queued, not yet decided)


def list_runs(store: Store) -> list[RunListing]:
    """Every run, the latest first. A run's suggestions are its coder configuration's on the units it
    covered, as for `qcode export --run`: a re-run that found everything coded already has them too."""
    pending = and_(SuggestionRecord.status.in_(QUEUED), SuggestionRecord.decided_at.is_(None))
    with store.session() as s:
        units = dict(s.execute(select(RunChunkRecord.run_id, func.count()).group_by(RunChunkRecord.run_id)).all())
        transcripts = dict(
            s.execute(
                select(RunChunkRecord.run_id, func.count(distinct(ChunkRecord.transcript_id)))
                .join(ChunkRecord, ChunkRecord.id == RunChunkRecord.chunk_id)
                .group_by(RunChunkRecord.run_id)
            ).all()
        )
        suggested = {
            run_id: (n, waiting or 0)
            for run_id, n, waiting in s.execute(
                select(RunChunkRecord.run_id, func.count(SuggestionRecord.id), func.sum(case((pending, 1), else_=0)))
                .join(RunRecord, RunRecord.id == RunChunkRecord.run_id)
                .join(
                    SuggestionRecord,
                    and_(
                        SuggestionRecord.chunk_id == RunChunkRecord.chunk_id,
                        SuggestionRecord.coder_key == RunRecord.coder_key,
                    ),
                )
                .group_by(RunChunkRecord.run_id)
            )
        }
        runs = list(s.scalars(select(RunRecord).order_by(RunRecord.started_at.desc(), RunRecord.id)))
    return [
        RunListing(
            id=r.id,
            name=r.name,
            started_at=r.started_at.replace(tzinfo=UTC),
            finished_at=r.finished_at.replace(tzinfo=UTC) if r.finished_at else None,
            status=r.status,
            coder=r.coder,
            model=r.model,
            codebook=r.codebook_name,
            codebook_version=r.codebook_version,
            unit=str((r.parameters or {}).get("unit", "chunk")),
            # what the run read (a transcript that gave no unit too), else, while it runs, what it covered
            transcripts=int((r.summary or {}).get("transcripts", transcripts.get(r.id, 0))),
            units=units.get(r.id, 0),
            suggestions=suggested.get(r.id, (0, 0))[0],
            waiting=suggested.get(r.id, (0, 0))[1],
        )
        for r in runs
    ]


def waiting_in_run(
    store: Store, run_id: str, limit: int | None = 50, order: str = "confidence"
) -> tuple[int, int, list[dict[str, Any]]]:
    """What `qcode queue --run` lists: how many suggestions of a run wait for a reviewer, how many of
    its rejected proposals wait for a person, and the first `limit` suggestions, lowest confidence
    first (`uncertainty`: nearest one half first), as the review queue orders them."""
    run = select(RunRecord.coder_key).where(RunRecord.id == run_id).scalar_subquery()
    covered = select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id)
    waiting = and_(
        SuggestionRecord.status.in_(QUEUED),
        SuggestionRecord.decided_at.is_(None),
        SuggestionRecord.chunk_id.in_(covered),
        SuggestionRecord.coder_key == run,
    )
    first = func.abs(SuggestionRecord.confidence - 0.5) if order == "uncertainty" else SuggestionRecord.confidence
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(SuggestionRecord).where(waiting)) or 0
        rejections = (
            s.scalar(
                select(func.count())
                .select_from(RejectionRecord)
                .where(
                    RejectionRecord.status == "open",
                    RejectionRecord.chunk_id.in_(covered),
                    RejectionRecord.coder_key == run,
                )
            )
            or 0
        )
        rows = s.execute(
            select(SuggestionRecord, TranscriptRecord.source_name, TranscriptRecord.case_metadata, ChunkRecord)
            .join(TranscriptRecord, SuggestionRecord.transcript_id == TranscriptRecord.id)
            .join(ChunkRecord, SuggestionRecord.chunk_id == ChunkRecord.id)
            .where(waiting)
            .order_by(first, SuggestionRecord.id)
            .limit(limit)
        ).all()
    items = [
        {
            "suggestion_id": sug.id,
            "source_name": name,
            "metadata": metadata,
            "chunk_id": sug.chunk_id,
            "code": sug.code,
            "confidence": sug.confidence,
            "status": sug.status,
            "quote": sug.quote,
            "justification": sug.justification,
            "coder": sug.coder,
            "model": sug.model,
            "unit": chunk.unit,
            "pages": None if chunk.page_start is None else page_span(chunk.page_start, chunk.page_end),
        }
        for sug, name, metadata, chunk in rows
    ]
    return total, rejections, items


def suggestion_records(store: Store, run_id: str | None = None, status: str | None = None) -> Iterator[dict[str, Any]]:
    """Every suggestion with its transcript, case metadata, chunk and provenance; with `status`, those
    it keeps (STATUS_TEXT, `standing`). A suggestion keeps its proposal whatever a reviewer decides, so
    under `accepted` a suggestion a reviewer changed is left out: its new code is the decision's."""
    check_status(status)
    query = (
        select(SuggestionRecord, TranscriptRecord, ChunkRecord, DecisionRecord.verdict)
        .join(TranscriptRecord, SuggestionRecord.transcript_id == TranscriptRecord.id)
        .join(ChunkRecord, SuggestionRecord.chunk_id == ChunkRecord.id)
        .outerjoin(DecisionRecord, DecisionRecord.suggestion_id == SuggestionRecord.id)
        .order_by(TranscriptRecord.source_name, TranscriptRecord.id, ChunkRecord.index, SuggestionRecord.code)
    )
    if run_id:
        query = query.where(
            SuggestionRecord.chunk_id.in_(select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id)),
            SuggestionRecord.coder_key == select(RunRecord.coder_key).where(RunRecord.id == run_id).scalar_subquery(),
        )
    if status == "queued":
        query = query.where(SuggestionRecord.status.in_(QUEUED))
    elif status == "audit":
        query = query.where(SuggestionRecord.status == "audit")
    kept = _KEPT.get(status or "")
    with store.session() as s:
        names = _code_names(s)
        for suggestion, transcript, chunk, verdict in s.execute(query):
            if kept is not None and standing(suggestion.status, verdict) not in kept:
                continue
            yield {
                "suggestion_id": suggestion.id,
                "run_id": suggestion.run_id,
                "transcript_id": transcript.id,
                "source_path": transcript.source_path,
                "source_name": transcript.source_name,
                "metadata": transcript.case_metadata,
                "chunk_id": chunk.id,
                "chunk_index": chunk.index,
                "chunk_start": chunk.start,
                "chunk_end": chunk.end,
                "speakers": chunk.speakers,
                "unit": chunk.unit,
                "page_start": chunk.page_start,
                "page_end": chunk.page_end,
                "code": suggestion.code,
                "code_name": names.get((suggestion.codebook_version, suggestion.code)),
                "justification": suggestion.justification,
                "quote": suggestion.quote,
                "quote_start": suggestion.quote_start,
                "quote_end": suggestion.quote_end,
                "confidence": suggestion.confidence,
                "status": suggestion.status,
                "flag": suggestion.flag,
                "coder": suggestion.coder,
                "model": suggestion.model,
                "prompt_version": suggestion.prompt_version,
                "codebook_version": suggestion.codebook_version,
                "parameters": suggestion.parameters,
                "input_tokens": suggestion.input_tokens,
                "output_tokens": suggestion.output_tokens,
                "duration_ms": suggestion.duration_ms,
                "created_at": suggestion.created_at.isoformat(),
            }


def _code_names(session: Any) -> dict[tuple[str, str], str]:
    names = {}
    for record in session.scalars(select(CodebookRecord)):
        for code in record.content.get("codes", []):
            names[(record.version, code["id"])] = code["name"]
    return names


def coding_rows(store: Store, run_id: str | None = None) -> Iterator[dict[str, str]]:
    """The long table: unit_id (chunk id), coder, code."""
    with store.session() as s:
        runs = {r.id: r for r in s.scalars(select(RunRecord))}
        query = select(ChunkCodingRecord).where(ChunkCodingRecord.status == "coded")
        if run_id:
            query = query.where(
                ChunkCodingRecord.coder_key == runs[run_id].coder_key,
                ChunkCodingRecord.chunk_id.in_(select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id)),
            )
        codings = list(s.scalars(query.order_by(ChunkCodingRecord.coder_key, ChunkCodingRecord.chunk_id)))
        labels = _coder_labels(runs.values())
        applied: dict[tuple[str, str], list[str]] = {}
        for chunk_id, key, code in s.execute(
            select(SuggestionRecord.chunk_id, SuggestionRecord.coder_key, SuggestionRecord.code)
        ):
            applied.setdefault((chunk_id, key), []).append(code)
    for coding in codings:
        label = labels.get(coding.coder_key, coding.coder_key)
        codes = sorted(applied.get((coding.chunk_id, coding.coder_key), []))
        for code in codes or [""]:
            yield {"unit_id": coding.chunk_id, "coder": label, "code": code}


def _coder_labels(runs: Any) -> dict[str, str]:
    """A readable name per coder configuration, e.g. 'offline:all-MiniLM-L6-v2'."""
    by_key: dict[str, str] = {}
    for run in runs:
        by_key[run.coder_key] = f"{run.coder}:{run.model.rsplit('/', 1)[-1]}"
    counts: dict[str, int] = {}
    for label in by_key.values():
        counts[label] = counts.get(label, 0) + 1
    return {key: label if counts[label] == 1 else f"{label}#{key[:6]}" for key, label in by_key.items()}


# ---------------------------------------------------------------- people's codes


def blind_rows(store: Store, sample: str | None = None, run_id: str | None = None) -> Iterator[dict[str, str]]:
    """The long table of blind codes: one row per code, an empty code when a reviewer applied none.
    Passages a reviewer has not coded yet have no row (missing, not 'none')."""
    with store.session() as s:
        query = (
            select(AssignmentRecord, ReviewerRecord.name)
            .join(ReviewerRecord, ReviewerRecord.id == AssignmentRecord.reviewer_id)
            .where(AssignmentRecord.coded_at.is_not(None))
            .order_by(AssignmentRecord.chunk_id, ReviewerRecord.name)
        )
        if sample:
            query = query.where(AssignmentRecord.sample == sample)
        if run_id:
            query = query.where(AssignmentRecord.run_id == run_id)
        rows = s.execute(query).all()
    for a, name in rows:
        for code in a.codes or [""]:
            yield {"unit_id": a.chunk_id, "coder": f"reviewer:{name}", "code": code}


def human_rows(store: Any, run_id: str | None = None) -> Iterator[dict[str, str]]:
    """unit_id, coder, code for every imported human code, over a run's chunks (or every chunk stored)."""
    with store.session() as s:
        codes = list(s.scalars(select(HumanCodeRecord)))
        if not codes:
            return
        transcripts = sorted({c.transcript_id for c in codes})
        # offsets and the kind of unit are all a chunk needs here: not its text
        query = select(
            ChunkRecord.id, ChunkRecord.transcript_id, ChunkRecord.start, ChunkRecord.end, ChunkRecord.unit
        ).where(ChunkRecord.transcript_id.in_(transcripts))
        if run_id:
            in_run = select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id)
            query = query.where(ChunkRecord.id.in_(in_run))
        chunks: dict[str, list[Any]] = {}
        for chunk in s.execute(query.order_by(ChunkRecord.transcript_id, ChunkRecord.index)):
            chunks.setdefault(chunk.transcript_id, []).append(chunk)
    by_coder: dict[tuple[str, str], list[HumanCodeRecord]] = {}
    for code in codes:
        by_coder.setdefault((code.transcript_id, code.coder), []).append(code)
    for (transcript_id, coder), found in sorted(by_coder.items()):
        for chunk in chunks.get(transcript_id, []):
            applied = sorted({c.code for c in found if holds(chunk, c.start, c.end)})
            for code in applied or [""]:
                yield {"unit_id": chunk.id, "coder": coder, "code": code}


def decision_log(store: Store) -> list[dict[str, Any]]:
    """Every decision with what it settled, oldest first: the audit log."""
    with store.session() as s:
        rows = s.execute(
            select(DecisionRecord, SuggestionRecord, ChunkRecord.transcript_id, TranscriptRecord.source_name)
            .join(ChunkRecord, ChunkRecord.id == DecisionRecord.chunk_id)
            .join(TranscriptRecord, TranscriptRecord.id == ChunkRecord.transcript_id)
            .outerjoin(SuggestionRecord, SuggestionRecord.id == DecisionRecord.suggestion_id)
            .order_by(DecisionRecord.decided_at, DecisionRecord.id)
        ).all()
        texts: dict[str, str] = {}  # each transcript's text read once, however many decisions it has
        out = []
        for d, sug, transcript_id, source_name in rows:
            if transcript_id not in texts:
                texts[transcript_id] = (
                    s.scalar(select(TranscriptRecord.text).where(TranscriptRecord.id == transcript_id)) or ""
                )
            text = texts[transcript_id]
            quote = text[d.quote_start : d.quote_end] if d.quote_start is not None and d.quote_end is not None else ""
            out.append(
                {
                    "decision_id": d.id,
                    "decided_at": _iso(d.decided_at),
                    "reviewer": d.reviewer,
                    "verdict": d.verdict,
                    "suggestion_id": d.suggestion_id or "",
                    "rejection_id": d.rejection_id or "",
                    "chunk_id": d.chunk_id,
                    "transcript_id": transcript_id,
                    "source_name": source_name,
                    "suggested_code": sug.code if sug else "",
                    "suggested_quote": sug.quote if sug else "",
                    "suggested_quote_start": sug.quote_start if sug else "",
                    "suggested_quote_end": sug.quote_end if sug else "",
                    "confidence": sug.confidence if sug else "",
                    "routing": sug.status if sug else "",
                    "final_code": d.final_code or "",
                    "quote_start": "" if d.quote_start is None else d.quote_start,
                    "quote_end": "" if d.quote_end is None else d.quote_end,
                    "quote": quote,
                    "reason": d.reason or "",
                    "note": d.note or "",
                    "coder": sug.coder if sug else "",
                    "model": sug.model if sug else "",
                    "prompt_version": (sug.prompt_version or "") if sug else "",
                    "codebook_version": sug.codebook_version if sug else (d.codebook_version or ""),
                }
            )
    return out


def _iso(value: datetime) -> str:
    return value.isoformat() + "Z"


# ---------------------------------------------------------------- what stands after review


def case_text(value: Any) -> str:
    """A case attribute's value as text: lists joined, None and blanks empty."""
    if isinstance(value, (list, tuple)):
        return ", ".join(case_text(v) for v in value)
    return "" if value is None else str(value).strip()


def case_value(metadata: dict[str, Any] | None, key: str) -> str:
    """A transcript's value for a case attribute, MISSING when it has none."""
    return case_text((metadata or {}).get(key)) or MISSING


def transcript_labels(transcripts: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Transcript id -> a label: its file name, and for the transcripts that share one (the rows of
    a CSV file, a changed file stored as a new transcript) what tells them apart: an identifier
    attribute (`id`, `respondent_id`...), else the CSV row, else the start of the id."""
    groups: dict[str, list[str]] = {}
    for tid, t in transcripts.items():
        groups.setdefault(t["source_name"], []).append(tid)
    labels = {}
    for name, ids in groups.items():
        if len(ids) == 1:
            labels[ids[0]] = name
            continue
        keys = [
            k
            for k in dict.fromkeys(k for tid in ids for k in transcripts[tid]["metadata"])
            if re.fullmatch(r"(?i)(?:.*[_\s.-])?(?:id|identifier)", str(k))
        ]
        for key in keys:
            values = [case_text(transcripts[tid]["metadata"].get(key)) for tid in ids]
            if all(values) and len(set(values)) == len(values):
                labels.update({tid: f"{name} {value}" for tid, value in zip(ids, values)})
                break
        else:
            rows = [
                next(
                    (
                        n.removeprefix("CSV ")
                        for n in transcripts[tid].get("notes") or []
                        if str(n).startswith("CSV row ")
                    ),
                    None,
                )
                for tid in ids
            ]
            if all(rows) and len(set(rows)) == len(rows):
                labels.update({tid: f"{name} {row}" for tid, row in zip(ids, rows)})
            else:
                labels.update({tid: f"{name} #{tid[:6]}" for tid in ids})
    return labels


def covered(session: Any, run_ids: Sequence[str]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """The chunks the runs covered (chunk id -> transcript id), and their transcripts
    (id -> source_name, metadata, label)."""
    chunks_covered = select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id.in_(list(run_ids)))
    chunks = dict(
        session.execute(
            select(ChunkRecord.id, ChunkRecord.transcript_id).where(ChunkRecord.id.in_(chunks_covered))
        ).all()
    )
    transcripts = {
        tid: {"source_name": name, "metadata": meta or {}, "notes": notes or []}
        for tid, name, meta, notes in session.execute(
            select(
                TranscriptRecord.id,
                TranscriptRecord.source_name,
                TranscriptRecord.case_metadata,
                TranscriptRecord.notes,
            ).where(
                TranscriptRecord.id.in_(select(ChunkRecord.transcript_id).where(ChunkRecord.id.in_(chunks_covered)))
            )
        )
    }
    for tid, label in transcript_labels(transcripts).items():
        transcripts[tid]["label"] = label
    return chunks, transcripts


def chunk_pages(session: Any, chunk_ids: Iterable[str]) -> dict[str, str]:
    """The pages of those chunks that lie on a document's pages, as a reader cites them ("p. 4")."""
    pages: dict[str, str] = {}
    for part in in_batches(chunk_ids):
        for chunk_id, start, end in session.execute(
            select(ChunkRecord.id, ChunkRecord.page_start, ChunkRecord.page_end).where(
                ChunkRecord.id.in_(part), ChunkRecord.page_start.is_not(None)
            )
        ):
            pages[chunk_id] = page_span(start, end)
    return pages


def page_span(start: int, end: int | None) -> str:
    """A page span as a reader cites it: "p. 4", "pp. 4–5"."""
    return f"p. {start}" if end in (None, start) else f"pp. {start}–{end}"


def decisions_in_scope(
    store: Store, suggestion_ids: set[str], chunk_ids: set[str], codebook_versions: set[str] | None = None
) -> tuple[list[dict], dict[str, dict]]:
    """The decisions in scope (oldest first), and the decision that settled each suggestion.

    A decision on a suggestion is in scope with its suggestion; one on a passage (an added code,
    a dismissed proposal) when the passage is, and, for a decision that names its codebook, when
    that codebook version is one of `codebook_versions`."""
    kept: list[dict[str, Any]] = []
    settled: dict[str, dict[str, Any]] = {}
    for row in decision_log(store):
        if row["suggestion_id"]:
            if row["suggestion_id"] not in suggestion_ids:
                continue
            settled.setdefault(row["suggestion_id"], row)
        elif row["chunk_id"] not in chunk_ids or (
            codebook_versions is not None
            and row["codebook_version"]
            and row["codebook_version"] not in codebook_versions
        ):
            continue
        kept.append(row)
    return kept, settled


def coded_passages(
    suggestions: Iterable[dict], decisions: Iterable[dict], settled: dict[str, dict], status: str = "accepted"
) -> list[dict[str, Any]]:
    """The codes applied to passages, under a status (STATUS_TEXT says what each keeps).

    `suggestions` are `suggestion_records`, `decisions` and `settled` what
    `decisions_in_scope` returns. A suggestion's proposal is never changed by review: a reviewer's
    decision carries the final code and quote, and the first decision on a suggestion is the one
    that stands. One row per application, with `how`: auto (accepted without review), accept,
    change, add (by a reviewer) or queued; a code applied twice to one passage (by the coder and
    by a reviewer) gives two rows, which the matrices count once."""
    check_status(status, PASSAGE_STATUSES)
    stand: list[dict[str, Any]] = []
    waiting: list[dict[str, Any]] = []
    for s in suggestions:
        d = settled.get(s["suggestion_id"])
        now = standing(s["status"], d["verdict"] if d else None)
        if d is None and now in ("accepted", "waiting"):
            how = "auto" if now == "accepted" else "queued"
            (stand if how == "auto" else waiting).append(
                _passage(s, s["code"], s["quote"], s["quote_start"], s["quote_end"], s["confidence"], how, s, None)
            )
        elif d is not None and now in ("accepted", "changed"):
            stand.append(
                _passage(
                    s,
                    d["final_code"],
                    d["quote"] or s["quote"],
                    _offset(d["quote_start"], s["quote_start"]),
                    _offset(d["quote_end"], s["quote_end"]),
                    s["confidence"],
                    d["verdict"],
                    s,
                    d,
                )
            )
    for d in decisions:
        if d["verdict"] == "add" and d["final_code"]:
            stand.append(
                _passage(
                    d,
                    d["final_code"],
                    d["quote"],
                    _offset(d["quote_start"]),
                    _offset(d["quote_end"]),
                    None,
                    "add",
                    None,
                    d,
                )
            )
    return {"accepted": stand, "review": waiting, "all": stand + waiting}[status]


def _offset(*values: Any) -> int | None:
    return next((int(v) for v in values if v not in (None, "")), None)


def _passage(
    row: dict,
    code: str,
    quote: str | None,
    start: int | None,
    end: int | None,
    confidence: float | None,
    how: str,
    suggestion: dict | None,
    decision: dict | None,
) -> dict[str, Any]:
    """One application; `suggestion` and `decision` are the rows behind it, for exports that name who and why."""
    return {
        "chunk_id": row["chunk_id"],
        "transcript_id": row["transcript_id"],
        "code": code,
        "quote": quote or "",
        "quote_start": start,
        "quote_end": end,
        "confidence": confidence,
        "reviewed": how in ("accept", "change", "add"),
        "how": how,
        "suggestion": suggestion,
        "decision": decision,
    }


def database_label(url: str) -> str:
    """A SQLite file by its name (a report travels; the folders it sat in need not), others as URLs
    without their password."""
    if url.startswith("sqlite:///"):
        return Path(url.removeprefix("sqlite:///")).name
    return redact(url)
