"""Reviewers' decisions as few-shot examples for the model coder.

An adjudicated chunk is one a reviewer has decided on: its final codes are
those accepted, changed to or added, with the quotes the reviewer kept. For
each chunk to code, the most similar adjudicated chunks (cosine similarity of
the offline embedding model) are shown to the model before it, as earlier
passages with their correct answers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from pipeline.chunk import Chunk
from pipeline.coders.offline import embed
from pipeline.store import ChunkRecord, DecisionRecord, Store, SuggestionRecord, TranscriptRecord, chunk_of

KEEPS = ("accept", "change", "add")


@dataclass
class Example:
    chunk: Chunk
    codes: list[dict[str, str]]

    def reply(self) -> str:
        return json.dumps(
            {
                "codes": [
                    {
                        "code": c["code"],
                        "justification": "Adjudicated by a reviewer.",
                        "quote": c["quote"],
                        "confidence": 1.0,
                    }
                    for c in self.codes
                ]
            },
            ensure_ascii=False,
        )


def adjudicated(store: Store, codes: set[str]) -> list[Example]:
    """Every chunk with reviewers' decisions, with its final codes (latest decision per code wins)."""
    with store.session() as s:
        decisions = s.execute(
            select(DecisionRecord, SuggestionRecord.code)
            .outerjoin(SuggestionRecord, DecisionRecord.suggestion_id == SuggestionRecord.id)
            .order_by(DecisionRecord.decided_at, DecisionRecord.id)
        ).all()
        final: dict[str, dict[str, tuple[int | None, int | None] | None]] = {}
        for decision, suggested in decisions:
            per_chunk = final.setdefault(decision.chunk_id, {})
            if decision.verdict == "reject" and suggested:
                per_chunk[suggested] = None
            elif decision.verdict in KEEPS and decision.final_code:
                if decision.verdict == "change" and suggested:
                    per_chunk[suggested] = None
                per_chunk[decision.final_code] = (decision.quote_start, decision.quote_end)
        records = {r.id: r for r in s.scalars(select(ChunkRecord).where(ChunkRecord.id.in_(list(final))))}
        texts = dict(
            s.execute(
                select(TranscriptRecord.id, TranscriptRecord.text).where(
                    TranscriptRecord.id.in_({r.transcript_id for r in records.values()})
                )
            ).all()
        )
    examples = []
    for chunk_id, per_code in final.items():
        record = records.get(chunk_id)
        if record is None:
            continue
        text = texts[record.transcript_id]
        kept = []
        for code, span in sorted(per_code.items()):
            if span is None or code not in codes:
                continue
            start, end = span
            quote = text[start:end] if start is not None and end is not None else ""
            kept.append({"code": code, "quote": quote or record.text[:200]})
        examples.append(Example(chunk_of(record), kept))
    return examples


class ExamplePicker:
    """The k adjudicated chunks most similar to a chunk."""

    def __init__(self, examples: list[Example], k: int):
        self.examples = examples
        self.k = k
        self.vectors = embed([e.chunk.text for e in examples]) if examples else None

    def pick(self, chunk: Chunk) -> list[Example]:
        if not self.examples or self.k <= 0:
            return []
        similarity = self.vectors @ embed([chunk.text])[0]
        order = [i for i in np.argsort(-similarity) if self.examples[i].chunk.id != chunk.id]
        return [self.examples[i] for i in order[: self.k]]
