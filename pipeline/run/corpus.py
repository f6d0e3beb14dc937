"""A run: from files to stored, validated, routed suggestions, as a plain function.

`code_corpus(request)` reads and chunks every file, codes every chunk not yet coded under the
coder's configuration, and reports. Its three steps (ingest a file, code a batch of chunks, send
first requests in batch mode) are functions of this module, which the run calls through `Steps`:
here directly, in this process, so tests, benchmarks and evals need no Prefect; in
pipeline/run/flow.py as Prefect tasks, for `qcode run` and `qcode schedule`, around this same
function.

All state lives in qcode's store, which is what makes a re-run free and a killed run resumable: a
chunk already coded under the same coder configuration is never coded again.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from pipeline.chunk import Chunk, cut
from pipeline.codebook import Codebook, load_codebook
from pipeline.coders import BaseCoder, make_coder, provenance
from pipeline.files import file_size_limit
from pipeline.ingest import (
    SUFFIXES,
    CsvOptions,
    IngestError,
    Source,
    discover,
    manifest_notes,
    nearest_manifest,
    not_read,
    read_source,
)
from pipeline.route import RoutingPolicy, instructions_flag, route
from pipeline.run.request import FailureCount, FileFailure, FileNote, RunRequest, RunSummary, SourceTypeCount
from pipeline.store import Store
from pipeline.suggestion import ChunkCoding, Provenance, Usage
from pipeline.transcript import Transcript
from pipeline.validate import validate_coding

__all__ = [
    "IN_FLIGHT_WORKERS",
    "RETRY_DELAYS",
    "FileFailure",
    "FileNote",
    "Ingested",
    "Outcome",
    "Progress",
    "Steps",
    "code_batch",
    "code_corpus",
    "ingest_file",
    "is_transient",
    "nothing_to_read",
    "read_and_chunk",
    "send_batches",
    "speaker_notes",
]

# A batch that fails with a transient error (a timeout, a dropped connection) is coded again
# after each of these delays, in seconds; any other error fails its chunks at once.
RETRY_DELAYS = (1, 5)
IN_FLIGHT_WORKERS = 4  # threads coding batches at once, at most (a coder asks for fewer)

# What a run reports as it goes: ("files", n) and ("chunks", n) once, with how many there are to
# do, then ("file", 1) per file read and ("chunk", n) per batch of n chunks done.
Progress = Callable[[str, int], None]


class Ingested(BaseModel):
    """What reading one file gave: its transcripts and chunks (stored), notes, or why it failed."""

    transcript_ids: list[str] = Field(default_factory=list)
    # each transcript's source type, and whether qcode inferred it
    source_types: dict[str, tuple[str, bool]] = Field(default_factory=dict)
    chunk_ids: list[str] = Field(default_factory=list)
    notes: list[FileNote] = Field(default_factory=list)
    failure: FileFailure | None = None


def nothing_to_read(paths: Sequence[str | Path]) -> list[FileFailure]:
    """Why no file at all can be read from these paths, one failure for each path; none when some
    file can be. Only names, kinds and permissions are looked at, no file is opened: so a run given
    nothing but mistyped paths is refused at once, before a Prefect server is started for it, and
    records no run (`--run latest` would otherwise find it)."""
    given = [Path(p) for p in paths]
    sources, errors = discover(list(given))
    if any(os.access(source.path, os.R_OK) for source in sources):
        return []
    said = {e.path: e.message for e in errors}
    failures = []
    for path in given:
        mine = [s for s in sources if s.path == path or s.root == path]
        if str(path) in said:
            error = said[str(path)]
        elif mine and path.is_dir():
            error = f"cannot be read: permission denied, for its {len(mine)} transcript file(s)"
        elif mine or not os.access(path, os.R_OK | os.X_OK):
            error = "cannot be read: permission denied"
        else:
            error = f"no transcripts found (qcode reads {', '.join(sorted(SUFFIXES))})"
        failures.append(FileFailure(path=str(path), error=error))
    return failures


def read_and_chunk(source: Source, request: RunRequest) -> list[tuple[Transcript, list[Chunk]]]:
    """One file's transcripts, each with its units, as a run stores them."""
    # the request carries the limit, so a run held in another process (a Prefect deployment) keeps it
    with file_size_limit(request.max_file_mb):
        transcripts = read_source(source, CsvOptions(request.id_column, request.text_column))
    units = request.units()
    return [(t, cut(t, units)) for t in transcripts]


def speaker_notes(transcript: Transcript, request: RunRequest) -> list[str]:
    """What to tell a person whose choice of speakers does not fit a file: names that match nobody
    among the speakers it labels (the interviewer's label differs between files), and a file left
    with nothing to code."""
    choice = transcript.speaker_choice or request.units().speakers
    if not choice.chosen:
        return []
    present = list(dict.fromkeys(t.speaker for t in transcript.turns if t.speaker is not None))
    has = ", ".join(present) if present else "none: it has no speaker labels"
    where = "its front matter or manifest row" if transcript.speaker_choice else "the run"
    notes = []
    # a questionnaire's rows and a document have no speakers to match: no interviewer is expected there
    unmatched = choice.unmatched(present) if present and transcript.format != "csv" else []
    # names listed for other files ("Interviewer", "Q") are no news while one of them matches here
    if unmatched and len(unmatched) == len([*choice.speakers, *choice.skip_speakers]):
        notes.append(f"speakers named by {where} match nobody here: {', '.join(unmatched)} (its speakers: {has})")
    if not any(choice.codes(t.speaker) for t in transcript.turns):
        notes.append(f"nothing is coded here: {choice.describe()} leaves no turn (its speakers: {has})")
    return notes


def ingest_file(store: Store, source: Source, request: RunRequest) -> Ingested:
    """Read, chunk and store one file, in one transaction."""
    result = Ingested()
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
    if manifest is not None and not any(t.given_metadata() for t in transcripts):
        result.notes.append(FileNote(path=str(source.path), note=f"has no case metadata: {manifest} does not list it"))
    for transcript, chunks in prepared:
        result.transcript_ids.append(transcript.id)
        result.source_types[transcript.id] = (
            transcript.metadata.get("source_type", ""),
            transcript.source_type_inferred,
        )
        result.chunk_ids += [c.id for c in chunks]
        result.notes += [
            FileNote(path=str(source.path), note=n) for n in transcript.notes if not n.startswith("CSV row")
        ]
        result.notes += [FileNote(path=str(source.path), note=n) for n in speaker_notes(transcript, request)]
    return result


def count_source_types(found: Iterable[tuple[str, bool]]) -> list[SourceTypeCount]:
    """Transcripts by source type, as written (an odd spelling stands on a line of its own, where a
    person sees it), most first."""
    found = list(found)
    total = Counter(source_type for source_type, _ in found)
    inferred = Counter(source_type for source_type, guessed in found if guessed)
    return [
        SourceTypeCount(source_type=k, transcripts=n, inferred=inferred[k])
        for k, n in sorted(total.items(), key=lambda item: (-item[1], item[0]))
    ]


def is_transient(exc: BaseException | None) -> bool:
    """Whether a failed batch is worth coding again: a timeout or a dropped connection."""
    return isinstance(exc, (TimeoutError, ConnectionError, OSError))


def code_batch(
    store: Store,
    coder: BaseCoder,
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
    applicable = len(codebook.applicable_ids())
    for chunk, coding in zip(chunks, codings):
        suggestions, rejections = validate_coding(coding, chunk, codebook, prov.coder_key)
        flag = None
        if coder.follows_instructions:
            # the codes the reply applied, as validation read them, held or not
            proposed = {s.code for s in suggestions} | {r.code for r in rejections if r.code}
            flag = instructions_flag(chunk.text, len(proposed), applicable)
        for suggestion in suggestions:
            suggestion.flag = flag
            suggestion.status = route(suggestion, policy)
        results.append((coding, suggestions, rejections))
    store.save_codings(run_id, prov, results)


def send_batches(
    store: Store,
    coder: BaseCoder,
    codebook: Codebook,
    prov: Provenance,
    run_id: str,
    chunks: list[Chunk],
    poll_interval: float,
) -> Usage:
    """Batch mode: the chunks' first requests answered in advance by the coder's batch API."""
    return coder.prefill_by_batch(store, codebook, prov.coder_key, run_id, chunks, poll_interval)


class Outcome(Protocol):
    """A batch being coded: `result()` waits for it, and raises what failed it."""

    def result(self) -> Any: ...


class Steps:
    """How a run calls its steps: here directly, batches on a few threads of this process, a batch
    that failed with a transient error coded again after RETRY_DELAYS. The Prefect flow
    (pipeline/run/flow.py) calls the same steps as Prefect tasks."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None

    def ingest(self, store: Store, source: Source, request: RunRequest) -> Ingested:
        return ingest_file(store, source, request)

    def send_batches(
        self,
        store: Store,
        coder: BaseCoder,
        codebook: Codebook,
        prov: Provenance,
        run_id: str,
        chunks: list[Chunk],
        poll_interval: float,
    ) -> Usage:
        return send_batches(store, coder, codebook, prov, run_id, chunks, poll_interval)

    def code(
        self,
        store: Store,
        coder: BaseCoder,
        codebook: Codebook,
        prov: Provenance,
        policy: RoutingPolicy,
        run_id: str,
        chunks: list[Chunk],
    ) -> Outcome:
        """Start coding a batch; the run waits for it when it has `batches_in_flight` going."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=IN_FLIGHT_WORKERS, thread_name_prefix="qcode-batch")
        future: Future[None] = self._pool.submit(
            _retried, code_batch, store, coder, codebook, prov, policy, run_id, chunks
        )
        return future

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _retried(step: Callable[..., None], *args: Any) -> None:
    for delay in (*RETRY_DELAYS, None):
        try:
            return step(*args)
        except Exception as exc:
            if delay is None or not is_transient(exc):
                raise
            time.sleep(delay)


@contextmanager
def _closed_if_broken(store: Store, run_id: str) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        with suppress(Exception):
            store.finish_run(run_id, status, {"error": f"{type(exc).__name__}: {exc}"})
        raise


# what a run that read nothing counted: nothing
_COUNTS = (
    "chunks",
    "chunks_coded_now",
    "suggestions",
    "accepted",
    "queued",
    "review",
    "audit",
    "rejected",
    "failed_chunks",
    "requests",
    "batch_requests",
    "cache_hits",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
)


def code_corpus(request: RunRequest, progress: Progress | None = None, steps: Steps | None = None) -> RunSummary:
    """Run the pipeline once over the request's files: what `qcode run` does, without Prefect."""
    began = time.perf_counter()
    cpu_began = time.process_time()
    steps = steps if steps is not None else Steps()

    def report(event: str, n: int = 1) -> None:
        if progress is not None:
            progress(event, n)

    codebook = load_codebook(request.codebook)
    coder = make_coder(request.coder, **request.coder_options)
    coder.check_store(request.db, codebook, request.codebook)  # before opening the store makes one
    store = Store(request.db)
    store.save_codebook(codebook, request.codebook)
    batch_size = request.batch_size or coder.batch_size
    coder.use_store(store)
    coder.prepare(codebook)
    units = request.units()
    prov = provenance(coder, codebook, units)
    parameters = {
        "coder": prov.parameters,
        "limits": coder.limits,
        "unit": request.unit,
        "chunk_size": request.chunk_size,
        "overlap": request.overlap,
        "max_unit_chars": request.max_unit_chars,
        "speakers": units.speakers.model_dump(mode="json"),
        "routing": request.routing.model_dump(),
        "batch_size": batch_size,
    }
    unreadable = nothing_to_read(request.paths)
    if unreadable:  # nothing to code: no run is recorded, for `--run latest` or anyone to find
        coder.close()
        return RunSummary.model_validate(
            {
                "run_id": "",
                "name": request.name,
                "coder": prov.coder,
                "model": prov.model,
                "prompt_version": prov.prompt_version,
                "codebook": codebook.name,
                "codebook_version": codebook.version,
                "db": store.engine.url.render_as_string(hide_password=True),
                "transcripts": 0,
                "unit": request.unit,
                **dict.fromkeys(_COUNTS, 0),
                "failed": unreadable,
                "cost_usd": 0.0,
                "notes": [],
                "seconds": round(time.perf_counter() - began, 3),
                "cpu_seconds": round(time.process_time() - cpu_began, 3),
            }
        )
    run_id = store.start_run(prov, codebook, request.paths, parameters, name=request.name)
    # a run that ends in an error is closed as failed, not left "running" for `--run latest` to find
    with _closed_if_broken(store, run_id):
        paths: list[str | Path] = list(request.paths)
        sources, errors = discover(paths)
        failed = [FileFailure(path=e.path, error=e.message) for e in errors]
        report("files", len(sources))
        transcript_ids: list[str] = []
        source_types: dict[str, tuple[str, bool]] = {}
        chunk_ids: list[str] = []
        notes = [FileNote(path=path, note=note) for path, note in [*not_read(paths), *manifest_notes(sources)]]
        for source in sources:
            ingested = steps.ingest(store, source, request)
            if ingested.failure:
                failed.append(ingested.failure)
            transcript_ids += ingested.transcript_ids
            source_types.update(ingested.source_types)
            chunk_ids += ingested.chunk_ids
            notes += ingested.notes
            report("file")

        notes += [FileNote(path=prov.model, note=note) for note in coder.transcript_notes(transcript_ids)]
        chunk_ids = list(dict.fromkeys(chunk_ids))
        store.add_run_chunks(run_id, chunk_ids)
        pending = store.pending_chunks(chunk_ids, prov.coder_key)
        batch_usage = Usage()
        if request.batch and pending:
            try:
                batch_usage = steps.send_batches(store, coder, codebook, prov, run_id, pending, request.poll_interval)
            except Exception as exc:
                notes.append(FileNote(path="(batch)", note=f"{exc}; the chunks are coded live"))
        report("chunks", len(pending))
        # A coder that waits on a network codes the next batch while one finishes, so
        # the slowest reply of a batch does not hold up the next one.
        in_flight: list[tuple[Sequence[Chunk], Outcome]] = []

        def settle(batch: Sequence[Chunk], outcome: Outcome) -> None:
            try:
                outcome.result()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                store.save_codings(run_id, prov, [(ChunkCoding(chunk_id=c.id, error=error), [], []) for c in batch])
            report("chunk", len(batch))

        try:
            for i in range(0, len(pending), batch_size):
                if coder.stop_reason:
                    break  # what is left is not sent: the next run codes it
                batch = pending[i : i + batch_size]
                in_flight.append((batch, steps.code(store, coder, codebook, prov, request.routing, run_id, batch)))
                if len(in_flight) >= coder.batches_in_flight:
                    settle(*in_flight.pop(0))
            while in_flight:
                settle(*in_flight.pop(0))
        finally:
            try:
                coder.close()
            finally:
                steps.close()

        counts = store.tally(chunk_ids, prov.coder_key)
        live = store.run_usage(run_id)
        usage = live + batch_usage
        costs = [coder.cost(live), coder.cost(batch_usage, batch=True)]
        queued = counts["review"] + counts["audit"]
        summary = RunSummary(
            run_id=run_id,
            name=request.name,
            coder=prov.coder,
            model=prov.model,
            prompt_version=prov.prompt_version,
            codebook=codebook.name,
            codebook_version=codebook.version,
            db=store.engine.url.render_as_string(hide_password=True),
            transcripts=len(set(transcript_ids)),
            source_types=count_source_types(source_types.values()),
            unit=request.unit,
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
            failures=[FailureCount(**f) for f in store.failures(chunk_ids, prov.coder_key)],
            stopped=coder.stop_reason,
            requests=live.requests,
            batch_requests=batch_usage.requests,
            cache_hits=live.cache_hits,
            input_tokens=usage.input_tokens,
            cached_input_tokens=usage.cached_input_tokens,
            output_tokens=usage.output_tokens,
            cost_usd=None if None in costs else round(sum(c or 0.0 for c in costs), 6),
            notes=notes,
            seconds=round(time.perf_counter() - began, 3),
            cpu_seconds=round(time.process_time() - cpu_began, 3),  # this process only, not Prefect's server
        )
        store.finish_run(
            run_id,
            "failed" if failed or summary.failed_chunks or summary.stopped else "finished",
            summary.model_dump(mode="json"),
        )
        return summary
