"""The review queue: suggestions a person must look at before they count."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from pipeline.store import RejectionRecord, Store, SuggestionRecord, TranscriptRecord
from pipeline.suggestion import QUEUED


def queued_suggestions(store: Store, limit: int = 50) -> tuple[list[dict[str, Any]], int, int]:
    """(the first `limit` queued suggestions, lowest confidence first; how many are queued; open rejections)."""
    with store.session() as s:
        total = s.scalar(select(func.count()).select_from(SuggestionRecord).where(SuggestionRecord.status.in_(QUEUED)))
        rejections = s.scalar(select(func.count()).select_from(RejectionRecord).where(RejectionRecord.status == "open"))
        rows = s.execute(
            select(SuggestionRecord, TranscriptRecord.source_name, TranscriptRecord.case_metadata)
            .join(TranscriptRecord, SuggestionRecord.transcript_id == TranscriptRecord.id)
            .where(SuggestionRecord.status.in_(QUEUED))
            .order_by(SuggestionRecord.confidence, SuggestionRecord.id)
            .limit(limit)
        )
        items = [
            {
                "suggestion_id": sug.id, "source_name": name, "metadata": metadata, "chunk_id": sug.chunk_id,
                "code": sug.code, "confidence": sug.confidence, "status": sug.status, "quote": sug.quote,
                "justification": sug.justification, "coder": sug.coder, "model": sug.model,
            }
            for sug, name, metadata in rows
        ]
    return items, total or 0, rejections or 0
