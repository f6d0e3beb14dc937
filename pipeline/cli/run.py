"""`qcode run`, `qcode schedule`: code transcripts now, or on a schedule."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pipeline.cli.options import DbOption, JsonOption
from pipeline.cli.output import bad_argument, emit, err, out, progress_bar, say
from pipeline.errors import QcodeError
from pipeline.run.request import RunSummary
from pipeline.run.settings import run_request
from pipeline.store import database_url

if TYPE_CHECKING:  # `qcode --help` need not load Prefect, which the estimate does
    from pipeline.run.estimate import Estimate

app = typer.Typer()


@app.command("run")
def run(
    paths: Annotated[list[Path], typer.Argument(help="Transcript files or folders.")],
    codebook: Annotated[Path | None, typer.Option("--codebook", help="Codebook YAML file.")] = None,
    db: DbOption = None,
    threshold: Annotated[
        float | None,
        typer.Option("--threshold", help="Suggestions under this confidence are queued for review (default 0.6)."),
    ] = None,
    audit_share: Annotated[
        float | None,
        typer.Option("--audit-share", help="Share of confident suggestions also queued, as an audit (default 0.10)."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the audit draw (default 0).")] = None,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", help="Largest chunk in characters (default 1200).")
    ] = None,
    overlap: Annotated[
        int | None,
        typer.Option("--overlap", help="Characters of trailing turns repeated in the next chunk (default 0)."),
    ] = None,
    coder: Annotated[str | None, typer.Option("--coder", help="Which coder proposes codes (default: offline).")] = None,
    similarity_threshold: Annotated[
        float | None,
        typer.Option("--similarity-threshold", help="Offline coder: overrides the codebook's similarity_threshold."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="Chunks coded and stored together (default 32 offline, 128 openai)."),
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="openai coder: the model name.")] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="openai coder: an OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, then OpenAI)."
        ),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", help="openai coder: prompt template folder under prompts/ (default coding-v1)."),
    ] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="openai coder: sampling temperature (default 0).")
    ] = None,
    samples: Annotated[
        int | None,
        typer.Option("--samples", help="openai coder: replies per chunk for self-consistency (default 1)."),
    ] = None,
    max_attempts: Annotated[
        int | None,
        typer.Option("--max-attempts", help="openai coder: tries per chunk when a reply is invalid (default 3)."),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", help="openai coder: requests in flight at once (default 8).")
    ] = None,
    rpm: Annotated[float | None, typer.Option("--rpm", help="openai coder: requests per minute at most.")] = None,
    tpm: Annotated[float | None, typer.Option("--tpm", help="openai coder: tokens per minute at most.")] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="openai coder: seconds to wait for one reply (default 120).")
    ] = None,
    fewshot: Annotated[
        int | None,
        typer.Option(
            "--fewshot",
            help="openai coder: show the model this many adjudicated chunks most like each one (default 0: off).",
        ),
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(
            "--max-retries", help="openai coder: retries after a 429, 5xx or timeout, with backoff (default 4)."
        ),
    ] = None,
    prefect_api: Annotated[
        str | None,
        typer.Option("--prefect-api", help="Record the run on this Prefect server (default: a temporary local one)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Estimate tokens and cost offline; send and store nothing.")
    ] = False,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch", help="openai coder: send first requests through the Batch API (half price, answers within 24 h)."
        ),
    ] = False,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", help="--batch: seconds between checks on a pending batch.")
    ] = 30.0,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="CSV: the column identifying each response.")
    ] = None,
    text_column: Annotated[
        str | None, typer.Option("--text-column", help="CSV: the column holding each response.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Ingest, chunk, code, validate, route and store transcripts."""
    request = run_request(
        paths,
        {
            "codebook": str(codebook) if codebook else None,
            "db": db,
            "coder": coder,
            "threshold": threshold,
            "audit_share": audit_share,
            "seed": seed,
            "chunk_size": chunk_size,
            "overlap": overlap,
            "batch_size": batch_size,
            "model": model,
            "base_url": base_url,
            "prompt": prompt,
            "temperature": temperature,
            "samples": samples,
            "max_attempts": max_attempts,
            "concurrency": concurrency,
            "rpm": rpm,
            "tpm": tpm,
            "timeout": timeout,
            "max_retries": max_retries,
            "fewshot": fewshot,
        },
        similarity_threshold=similarity_threshold,
        id_column=id_column,
        text_column=text_column,
        batch=batch,
        poll_interval=poll_interval,
        ready=not dry_run,
    )
    if dry_run:
        from pipeline.run.estimate import estimate  # Prefect is loaded only for what needs it

        found = estimate(request)
        for failure in found.failed:
            _failed(failure.path, failure.error)
        emit(found, as_json, lambda: _show_estimate(found))
        return

    from pipeline.run.flow import run as run_with_prefect

    with progress_bar() as report:
        try:
            summary = run_with_prefect(request, lambda event, n: report("", event, n), prefect_api)
        except QcodeError:
            raise
        except Exception as exc:  # one clear line (and one JSON object) instead of a traceback
            raise QcodeError(f"{type(exc).__name__}: {exc}") from exc
    for failure in summary.failed:
        _failed(failure.path, failure.error)
    for note in summary.notes:
        say(f"note: {note.path}: {note.note}")
    emit(summary, as_json, lambda: _show_summary(summary))
    if summary.failed or summary.failed_chunks:
        raise typer.Exit(1)


def _failed(path: str, error: str) -> None:
    err.print(f"[red]failed:[/red] {escape(path)}: {escape(error)}", highlight=False, soft_wrap=True)


def _dollars(value: float | None) -> str:
    return "unknown (no price for this model)" if value is None else f"${value:.4f}"


def _show_summary(summary: RunSummary) -> None:
    table = Table(title=f"run {summary.run_id}", show_header=False)
    for label, value in [
        ("coder", f"{summary.coder} ({summary.model})"),
        ("codebook", f"{summary.codebook} [{summary.codebook_version}]"),
        ("transcripts", summary.transcripts),
        ("chunks", f"{summary.chunks} ({summary.chunks_coded_now} coded now)"),
        ("suggestions", summary.suggestions),
        ("accepted", summary.accepted),
        ("queued for review", f"{summary.queued} ({summary.review} low confidence, {summary.audit} audit)"),
        ("rejected", summary.rejected),
        ("failed files", len(summary.failed)),
        ("failed chunks", summary.failed_chunks),
        (
            "model requests",
            f"{summary.requests} live, {summary.batch_requests} in batches, {summary.cache_hits} answered from the cache",
        ),
        ("tokens", f"{summary.input_tokens} in ({summary.cached_input_tokens} cached), {summary.output_tokens} out"),
        ("cost", _dollars(summary.cost_usd)),
        ("time", f"{summary.seconds:.1f} s"),
        ("store", summary.db),
    ]:
        table.add_row(label, str(value))
    out.print(table)


def _show_estimate(found: Estimate) -> None:
    table = Table(title="dry run: nothing was sent or stored", show_header=False)
    for label, value in [
        ("coder", f"{found.coder} ({found.model})"),
        ("transcripts", found.transcripts),
        ("chunks", f"{found.chunks} ({found.pending} not yet coded)"),
        ("requests", found.requests),
        ("input tokens", found.input_tokens),
        ("output tokens (estimate)", found.output_tokens),
        ("cost", _dollars(found.cost_usd)),
    ]:
        table.add_row(label, str(value))
    out.print(table)


@app.command("schedule")
def schedule(
    folder: Annotated[Path, typer.Argument(help="Folder of transcripts to code on each run.")],
    cron: Annotated[str, typer.Option("--cron", help="When to run, as a cron expression, e.g. '0 2 * * *'.")],
    codebook: Annotated[Path | None, typer.Option("--codebook", help="Codebook YAML file.")] = None,
    db: DbOption = None,
    name: Annotated[str | None, typer.Option("--name", help="Deployment name (default: qcode-FOLDER).")] = None,
    prefect_api: Annotated[
        str | None,
        typer.Option(
            "--prefect-api",
            help="A persistent Prefect server's API URL (default: $PREFECT_API_URL, or one started on 127.0.0.1:4200).",
        ),
    ] = None,
    coder: Annotated[str | None, typer.Option("--coder", help="Which coder proposes codes (default: offline).")] = None,
    model: Annotated[str | None, typer.Option("--model", help="openai coder: the model name.")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="openai coder: an OpenAI-compatible endpoint.")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="Suggestions under this confidence are queued for review.")
    ] = None,
) -> None:
    """Serve a Prefect deployment that codes new or changed transcripts in FOLDER on a schedule."""
    if not folder.is_dir():
        bad_argument(f"{folder}: not a folder")
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError as exc:
        reason = exc.errors()[0]["msg"] if hasattr(exc, "errors") else exc
        bad_argument(f"--cron '{cron}' is not a cron expression: {reason}")
    request = run_request(
        [folder.resolve()],
        {
            "codebook": str(Path(codebook).resolve()) if codebook else None,
            "db": db,
            "coder": coder,
            "model": model,
            "base_url": base_url,
            "threshold": threshold,
        },
    )
    if not request.db or "://" not in request.db:
        request.db = database_url(request.db)  # absolute: scheduled runs start in another folder
    request.codebook = str(Path(request.codebook).resolve())
    from pipeline.run.schedule import serve

    serve(request, name or f"qcode-{folder.resolve().name}", cron, prefect_api)
