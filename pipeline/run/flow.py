"""The run: a Prefect flow from files to stored, validated, routed suggestions.

Tasks are coarse (one per file, one per batch of chunks) because each Prefect
task run costs milliseconds and memory. Their arguments are passed in `quote`:
Prefect otherwise walks every argument, every chunk and code and turn, twice per
task run looking for futures, which cost more CPU than coding the batch.

Prefect orchestrates; all state lives in qcode's store, which is what makes a
re-run free and a killed run resumable: a chunk already coded under the same
coder configuration is never coded again.
"""

# No `from __future__ import annotations` here: Prefect builds the flow's
# parameter model from real annotations when a served deployment loads this file.
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote
from pydantic import BaseModel, Field

from pipeline.chunk import Chunk, chunk_transcript
from pipeline.codebook import Codebook, load_codebook
from pipeline.coders import Coder, make_coder, provenance
from pipeline.coders.prices import run_cost
from pipeline.ingest import CsvOptions, IngestError, Source, discover, manifest_notes, nearest_manifest, read_source
from pipeline.route import RoutingPolicy, route
from pipeline.run.request import FileFailure, FileNote, RunRequest, RunSummary
from pipeline.store import Store
from pipeline.suggestion import ChunkCoding, Provenance, Usage
from pipeline.transcript import Transcript
from pipeline.validate import validate_coding

# Set by `run` for the CLI's progress bar; a callable cannot be a flow parameter.
_progress: Callable[[str, int], None] | None = None


def _report(event: str, n: int = 1) -> None:
    if _progress is not None:
        _progress(event, n)


class _Ingested(BaseModel):
    transcript_ids: list[str] = Field(default_factory=list)
    chunk_ids: list[str] = Field(default_factory=list)
    notes: list[FileNote] = Field(default_factory=list)
    failure: FileFailure | None = None


def read_and_chunk(source: Source, request: RunRequest) -> list[tuple[Transcript, list[Chunk]]]:
    """One file's transcripts, each with its chunks, as a run stores them."""
    transcripts = read_source(source, CsvOptions(request.id_column, request.text_column))
    return [(t, chunk_transcript(t, request.chunk_size, request.overlap)) for t in transcripts]


@task(name="ingest-file", cache_policy=NO_CACHE)
def ingest_file(store: Store, source: Source, request: RunRequest) -> _Ingested:
    """Read, chunk and store one file, in one transaction."""
    result = _Ingested()
    try:
        prepared = read_and_chunk(source, request)
        transcripts = [t for t, _ in prepared]
    except IngestError as exc:
        result.failure = FileFailure(path=exc.path, error=exc.message)
        return result
    except Exception as exc:  # a reader bug must not stop the other files
        result.failure = FileFailure(path=str(source.path), error=f"{type(exc).__name__}: {exc}")
        return result
    try:
        store.save_transcripts(prepared)
    except Exception as exc:  # the transaction rolled back: nothing of this file is stored
        result.failure = FileFailure(path=str(source.path), error=f"could not be stored: {type(exc).__name__}: {exc}")
        return result
    manifest = nearest_manifest(source)
    if manifest is not None and not any(t.metadata for t in transcripts):
        result.notes.append(FileNote(path=str(source.path), note=f"has no case metadata: {manifest} does not list it"))
    for transcript, chunks in prepared:
        result.transcript_ids.append(transcript.id)
        result.chunk_ids += [c.id for c in chunks]
        result.notes += [
            FileNote(path=str(source.path), note=n) for n in transcript.notes if not n.startswith("CSV row")
        ]
    return result


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (TimeoutError, ConnectionError, OSError))


@task(
    name="code-batch",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[1, 5],
    retry_condition_fn=lambda task, task_run, state: _is_transient(state.result(raise_on_failure=False)),
)
def code_batch(
    store: Store,
    coder: Coder,
    codebook: Codebook,
    prov: Provenance,
    policy: RoutingPolicy,
    run_id: str,
    chunks: list[Chunk],
) -> None:
    """Code, validate, route and store one batch of chunks in one transaction."""
    codings = coder.code(chunks, codebook)
    if len(codings) != len(chunks):
        raise RuntimeError(f"coder returned {len(codings)} codings for {len(chunks)} chunks")
    results = []
    for chunk, coding in zip(chunks, codings):
        suggestions, rejections = validate_coding(coding, chunk, codebook, prov.coder_key)
        for suggestion in suggestions:
            suggestion.status = route(suggestion, policy)
        results.append((coding, suggestions, rejections))
    store.save_codings(run_id, prov, results)


@task(name="batch-api", cache_policy=NO_CACHE)
def send_batches(
    store: Store,
    coder: Coder,
    codebook: Codebook,
    prov: Provenance,
    run_id: str,
    chunks: list[Chunk],
    poll_interval: float,
) -> Usage:
    """First requests through the Batch API; their replies land in the model-call cache."""
    from pipeline.coders.batch import prefill_by_batch

    return prefill_by_batch(store, coder, codebook, prov.coder_key, run_id, chunks, poll_interval)


@flow(name="qcode-run", task_runner=ThreadPoolTaskRunner(max_workers=4))
def code_corpus(request: RunRequest) -> RunSummary:
    began = time.perf_counter()
    cpu_began = time.process_time()
    store = Store(request.db)
    codebook = load_codebook(request.codebook)
    store.save_codebook(codebook, request.codebook)
    coder = make_coder(request.coder, **request.coder_options)
    batch_size = request.batch_size or getattr(coder, "batch_size", 32)
    if hasattr(coder, "use_store"):
        coder.use_store(store)
    prov = provenance(coder, codebook)
    parameters = {
        "coder": prov.parameters,
        "limits": getattr(coder, "limits", {}),
        "chunk_size": request.chunk_size,
        "overlap": request.overlap,
        "routing": request.routing.model_dump(),
        "batch_size": batch_size,
    }
    run_id = store.start_run(prov, codebook, request.paths, parameters)

    sources, errors = discover(request.paths)
    failed = [FileFailure(path=e.path, error=e.message) for e in errors]
    _report("files", len(sources))
    transcript_ids: list[str] = []
    chunk_ids: list[str] = []
    notes = [FileNote(path=path, note=note) for path, note in manifest_notes(sources)]
    for source in sources:
        ingested = ingest_file(quote(store), quote(source), quote(request))
        if ingested.failure:
            failed.append(ingested.failure)
        transcript_ids += ingested.transcript_ids
        chunk_ids += ingested.chunk_ids
        notes += ingested.notes
        _report("file")

    chunk_ids = list(dict.fromkeys(chunk_ids))
    store.add_run_chunks(run_id, chunk_ids)
    pending = store.pending_chunks(chunk_ids, prov.coder_key)
    batch_usage = Usage()
    if request.batch and pending:
        try:
            batch_usage = send_batches(
                quote(store), quote(coder), quote(codebook), quote(prov), run_id, quote(pending), request.poll_interval
            )
        except Exception as exc:
            notes.append(FileNote(path="(batch)", note=f"{exc}; the chunks are coded live"))
    _report("chunks", len(pending))
    # A coder that waits on a network codes the next batch while one finishes, so
    # the slowest reply of a batch does not hold up the next one.
    in_flight: list[tuple[list[Chunk], Any]] = []

    def settle(batch: list[Chunk], future: Any) -> None:
        try:
            future.result()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            store.save_codings(run_id, prov, [(ChunkCoding(chunk_id=c.id, error=error), [], []) for c in batch])
        _report("chunk", len(batch))

    try:
        for i in range(0, len(pending), batch_size):
            batch = pending[i : i + batch_size]
            in_flight.append(
                (
                    batch,
                    code_batch.submit(
                        quote(store),
                        quote(coder),
                        quote(codebook),
                        quote(prov),
                        quote(request.routing),
                        run_id,
                        quote(batch),
                    ),
                )
            )
            if len(in_flight) >= getattr(coder, "batches_in_flight", 1):
                settle(*in_flight.pop(0))
        while in_flight:
            settle(*in_flight.pop(0))
    finally:
        if hasattr(coder, "close"):
            coder.close()

    counts = store.tally(chunk_ids, prov.coder_key)
    live = store.run_usage(run_id)
    usage = live + batch_usage
    endpoint = prov.parameters.get("endpoint")
    cost = None if request.coder != "offline" else 0.0
    if request.coder != "offline":
        costs = [run_cost(prov.model, endpoint, live), run_cost(prov.model, endpoint, batch_usage, batch=True)]
        cost = None if None in costs else round(sum(costs), 6)
    queued = counts["review"] + counts["audit"]
    summary = RunSummary(
        run_id=run_id,
        coder=prov.coder,
        model=prov.model,
        prompt_version=prov.prompt_version,
        codebook=codebook.name,
        codebook_version=codebook.version,
        db=store.engine.url.render_as_string(hide_password=True),
        transcripts=len(set(transcript_ids)),
        chunks=len(chunk_ids),
        chunks_coded_now=len(pending),
        suggestions=counts["accepted"] + queued,
        accepted=counts["accepted"],
        queued=queued,
        review=counts["review"],
        audit=counts["audit"],
        rejected=counts["rejected"],
        failed=failed,
        failed_chunks=counts["failed_chunks"],
        requests=live.requests,
        batch_requests=batch_usage.requests,
        cache_hits=live.cache_hits,
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        output_tokens=usage.output_tokens,
        cost_usd=cost,
        notes=notes,
        seconds=round(time.perf_counter() - began, 3),
        cpu_seconds=round(time.process_time() - cpu_began, 3),  # this process only, not Prefect's server
    )
    store.finish_run(
        run_id, "failed" if failed or summary.failed_chunks else "finished", summary.model_dump(mode="json")
    )
    return summary


_TEMPORARY_SERVER_IDLE = (
    "CANCELLATION_CLEANUP",
    "DB_VACUUM",
    "EVENT_LOGGER",
    "FOREMAN",
    "LATE_RUNS",
    "SCHEDULER",
    "PAUSE_EXPIRATIONS",
    "REPOSSESSOR",
    "CLEANUP_RECONCILER",
    "TRIGGERS",
    "TASK_RUN_RECORDER",
    "EVENT_PERSISTER",
)


def run(
    request: RunRequest, progress: Callable[[str, int], None] | None = None, prefect_api: str | None = None
) -> RunSummary:
    """Run the pipeline once; `progress` receives ("files"|"file"|"chunks"|"chunk", n).

    The flow runs on a temporary local Prefect server unless `prefect_api` names
    one: a Prefect profile or PREFECT_API_URL left in the environment (perhaps
    pointing at a cloud account) does not receive a run's records unasked.
    """
    from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL, temporary_settings

    global _progress
    _progress = progress
    if not prefect_api:
        # the temporary server only records this run: its background services would
        # spend CPU (theirs counted against qcode's) on schedules and events nobody reads
        for service in _TEMPORARY_SERVER_IDLE:
            os.environ.setdefault(f"PREFECT_SERVER_SERVICES_{service}_ENABLED", "false")
    settings = (
        temporary_settings(updates={PREFECT_API_URL: prefect_api})
        if prefect_api
        else temporary_settings(restore_defaults={PREFECT_API_URL, PREFECT_API_KEY})
    )
    # qcode reports a failed run in one line of its own; Prefect's tracebacks would bury it
    quiet = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        with settings:
            return code_corpus(request)
    finally:
        _progress = None
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
