"""Dry runs: what a run would send and cost, worked out offline.

Files are read and chunked exactly as a run would, the prompts rendered, and
their tokens counted with the model's own encoding (bundled, nothing is
downloaded). Chunks already coded under the same configuration are not
counted. Output tokens cannot be known before the model answers: the estimate
assumes OUTPUT_TOKENS_PER_SAMPLE per reply. It prices every input token at the
full rate: the provider's prompt caching, which usually lowers the bill, is
not predicted.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from pipeline.chunk import for_coder
from pipeline.codebook import load_codebook
from pipeline.coders import make_coder, provenance
from pipeline.coders.prices import run_cost
from pipeline.coders.tokens import count_chat_tokens
from pipeline.ingest import IngestError, discover
from pipeline.suggestion import Usage

OUTPUT_TOKENS_PER_SAMPLE = 150


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
    failed: list[Any]


def estimate(request: Any) -> Estimate:
    from pipeline.run.flow import read_and_chunk
    from pipeline.run.request import FileFailure

    codebook = load_codebook(request.codebook)
    coder = make_coder(request.coder, **request.coder_options)
    prov = provenance(coder, codebook)
    sources, errors = discover(request.paths)
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

    store = _existing_store(request.db)
    if store is not None and hasattr(coder, "use_store"):
        coder.use_store(store)  # few-shot examples come from reviewers' decisions there
    pending = (
        {c.id for c in store.pending_chunks([c.id for c in chunks], prov.coder_key)}
        if store
        else {c.id for c in chunks}
    )
    todo = [c for c in chunks if c.id in pending]
    model_input = 0
    if hasattr(coder, "messages"):
        model_input = sum(count_chat_tokens(coder.model, coder.messages(c, codebook)) for c in todo)
        samples = getattr(coder, "samples", 1)
        usage = Usage(
            input_tokens=model_input, output_tokens=OUTPUT_TOKENS_PER_SAMPLE * samples * len(todo), requests=len(todo)
        )
        cost = run_cost(coder.model, prov.parameters.get("endpoint"), usage, batch=request.batch)
    else:
        usage, cost = Usage(), 0.0  # the offline coder sends nothing
    return Estimate(
        coder=prov.coder,
        model=prov.model,
        transcripts=transcripts,
        chunks=len(chunks),
        pending=len(todo),
        requests=usage.requests,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=cost,
        failed=failed,
    )


def _existing_store(db: str | None) -> Any:
    """The store if it exists: a dry run does not create a database."""
    from pipeline.store import Store, StoreError

    try:
        return Store(db, create=False)
    except StoreError:
        return None
