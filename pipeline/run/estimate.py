"""Dry runs: what a run would send and cost, worked out offline.

Files are read and chunked exactly as a run would (`pipeline.run.corpus.read_and_chunk`), and the
coder counts what coding the chunks not yet coded under its configuration would send
(`BaseCoder.estimate_usage`: the openai coder renders the prompts and counts their tokens with the
model's own encoding, bundled, nothing downloaded; output tokens cannot be known before the model
answers, so it assumes a length per reply) and prices it (`BaseCoder.cost`, at the full input rate:
the provider's prompt caching, which usually lowers the bill, is not predicted). No Prefect.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from pipeline.chunk import for_coder
from pipeline.codebook import load_codebook
from pipeline.coders import make_coder, provenance
from pipeline.ingest import IngestError, discover
from pipeline.run.corpus import read_and_chunk
from pipeline.run.request import FileFailure, RunRequest
from pipeline.store import Store, StoreError


class Estimate(BaseModel):
    coder: str
    model: str
    transcripts: int
    chunks: int
    pending: int
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    failed: list[FileFailure]


def estimate(request: RunRequest) -> Estimate:
    codebook = load_codebook(request.codebook)
    coder = make_coder(request.coder, **request.coder_options)
    store = _existing_store(request.db)
    if store is not None:
        coder.use_store(store)  # few-shot examples and learned models come from there
    coder.prepare(codebook)
    prov = provenance(coder, codebook, request.units())
    paths: list[str | Path] = list(request.paths)
    sources, errors = discover(paths)
    failed = [FileFailure(path=e.path, error=e.message) for e in errors]
    chunks = []
    transcripts = 0
    for source in sources:
        try:
            for transcript, pieces in read_and_chunk(source, request):
                transcripts += 1
                chunks += [for_coder(c, transcript.text, transcript.metadata) for c in pieces]
        except IngestError as exc:
            failed.append(FileFailure(path=exc.path, error=exc.message))

    # by id: a dry run stores nothing, so units never stored before (another chunking) count as to do
    done = store.coded_chunk_ids([c.id for c in chunks], prov.coder_key) if store else set()
    todo = [c for c in chunks if c.id not in done]
    usage = coder.estimate_usage(todo, codebook)
    return Estimate(
        coder=prov.coder,
        model=prov.model,
        transcripts=transcripts,
        chunks=len(chunks),
        pending=len(todo),
        requests=usage.requests,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=coder.cost(usage, batch=request.batch),
        failed=failed,
    )


def _existing_store(db: str | None) -> Store | None:
    """The store if it exists: a dry run does not create a database."""
    try:
        return Store(db, create=False)
    except StoreError:
        return None
