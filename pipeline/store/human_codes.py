"""Human codes brought in from other QDA tools, as the long table agreement statistics read.

A person's code is a span of a transcript; a unit is a chunk. The code counts for every chunk that
holds a real part of the span (`pipeline.chunk.holds`, the rule the eval gold sets follow). A person
who coded anything in a transcript coded all of it: its chunks without any of their codes are
"no code" (a row with an empty code), as in `qcode export --format codings`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import select

from pipeline.chunk import holds
from pipeline.store import ChunkRecord, HumanCodeRecord, RunChunkRecord


def human_rows(store: Any, run_id: str | None = None) -> Iterator[dict[str, str]]:
    """unit_id, coder, code for every imported human code, over a run's chunks (or every chunk stored)."""
    with store.session() as s:
        codes = list(s.scalars(select(HumanCodeRecord)))
        if not codes:
            return
        transcripts = sorted({c.transcript_id for c in codes})
        # offsets are all a chunk needs here: not its text
        query = select(ChunkRecord.id, ChunkRecord.transcript_id, ChunkRecord.start, ChunkRecord.end).where(
            ChunkRecord.transcript_id.in_(transcripts)
        )
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
