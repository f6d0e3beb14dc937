"""The run as a Prefect flow: `qcode run` and `qcode schedule` run `pipeline.run.corpus.code_corpus`
inside the flow `qcode-run`, its steps as Prefect tasks (one per file, one per batch of chunks, one
for batch mode), so each run and each task shows in Prefect's UI. The run itself, its steps and
their order are in pipeline/run/corpus.py; this module only wraps them.

Tasks are coarse because each Prefect task run costs milliseconds and memory. Their arguments are
passed in `quote`: Prefect otherwise walks every argument, every chunk and code and turn, twice per
task run looking for futures, which cost more CPU than coding the batch.

Prefect orchestrates; all state lives in qcode's store, which is what makes a re-run free and a
killed run resumable: a chunk already coded under the same coder configuration is never coded again.
"""

# No `from __future__ import annotations` here: Prefect builds the flow's
# parameter model from real annotations when a served deployment loads this file.
import logging
import os
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.settings import PREFECT_API_KEY, PREFECT_API_URL, temporary_settings
from prefect.task_runners import ThreadPoolTaskRunner
from prefect.utilities.annotations import quote as prefect_quote

from pipeline.chunk import Chunk
from pipeline.codebook import Codebook
from pipeline.coders import BaseCoder
from pipeline.ingest import Source
from pipeline.route import RoutingPolicy
from pipeline.run import corpus
from pipeline.run.corpus import RETRY_DELAYS, Ingested, Outcome, Progress, is_transient
from pipeline.run.request import RunRequest, RunSummary
from pipeline.store import Store
from pipeline.suggestion import Provenance, Usage


def quote(value: Any) -> Any:
    """`value` wrapped in Prefect's `quote`: the task receives it as it is, unexamined."""
    return prefect_quote(value)


# Set by `run` for the CLI's progress bar; a callable cannot be a flow parameter.
_progress: Progress | None = None

ingest_file = task(name="ingest-file", cache_policy=NO_CACHE)(corpus.ingest_file)
code_batch = task(
    name="code-batch",
    cache_policy=NO_CACHE,
    retries=len(RETRY_DELAYS),
    retry_delay_seconds=list(RETRY_DELAYS),
    retry_condition_fn=lambda task, task_run, state: is_transient(state.result(raise_on_failure=False)),
)(corpus.code_batch)
send_batches = task(name="batch-api", cache_policy=NO_CACHE)(corpus.send_batches)


class PrefectSteps(corpus.Steps):
    """The run's steps as Prefect tasks of the flow that runs it."""

    def ingest(self, store: Store, source: Source, request: RunRequest) -> Ingested:
        return ingest_file(quote(store), quote(source), quote(request))

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
        return send_batches(
            quote(store), quote(coder), quote(codebook), quote(prov), run_id, quote(chunks), poll_interval
        )

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
        return code_batch.submit(
            quote(store), quote(coder), quote(codebook), quote(prov), quote(policy), run_id, quote(chunks)
        )


# Prefect types the runner by the futures it makes, which its own ThreadPoolTaskRunner() leaves unknown
@flow(name="qcode-run", task_runner=ThreadPoolTaskRunner(max_workers=corpus.IN_FLIGHT_WORKERS))  # type: ignore[arg-type]
def code_corpus(request: RunRequest) -> RunSummary:
    return corpus.code_corpus(request, _progress, PrefectSteps())


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


def run(request: RunRequest, progress: Progress | None = None, prefect_api: str | None = None) -> RunSummary:
    """Run the pipeline once as the Prefect flow; `progress` receives ("files"|"file"|"chunks"|"chunk", n).

    The flow runs on a temporary local Prefect server unless `prefect_api` names
    one: a Prefect profile or PREFECT_API_URL left in the environment (perhaps
    pointing at a cloud account) does not receive a run's records unasked.
    """
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
