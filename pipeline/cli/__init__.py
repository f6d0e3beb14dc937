"""The `qcode` command: a thin layer over the pipeline's functions."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import pipeline  # noqa: F401  (sets the offline and no-telemetry environment first)
from pipeline.cli.options import DbOption, JsonOption
from pipeline.codebook import CodebookError, check_codebook, load_codebook
from pipeline.config import ConfigError, load_settings

if TYPE_CHECKING:  # imported late at run time: `qcode --help` need not load Prefect
    from pipeline.run.flow import RunRequest
    from pipeline.store import Store

app = typer.Typer(
    help="qcode: LLM-assisted qualitative coding of interview transcripts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold transcript text
)
codebook_app = typer.Typer(help="Work with codebooks.", no_args_is_help=True)
app.add_typer(codebook_app, name="codebook")
reviewer_app = typer.Typer(help="Reviewer accounts for the review web app.", no_args_is_help=True)
app.add_typer(reviewer_app, name="reviewer")

out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@codebook_app.command("validate")
def codebook_validate(file: Annotated[Path, typer.Argument(help="Codebook YAML file.")]) -> None:
    """Check a codebook and report every problem with its file and line."""
    codebook, problems = check_codebook(file)
    if problems:
        for problem in problems:
            err.print(escape(str(problem)), highlight=False, soft_wrap=True)
        err.print(f"{len(problems)} problem(s) in {file}", highlight=False)
        raise typer.Exit(1)
    assert codebook is not None
    out.print(
        f"{file}: ok: '{codebook.name}', {len(codebook.codes)} codes "
        f"({len(codebook.leaves)} applicable), {codebook.measurement}, version {codebook.version}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("run")
def run_command(
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
    request = _request(
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
    from pipeline.run.flow import run

    if dry_run:
        _print_estimate(request, as_json)
        return

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        tasks: dict[str, int] = {}

        def progress(event: str, n: int) -> None:
            if event in ("files", "chunks"):
                tasks[event] = bar.add_task("reading files" if event == "files" else "coding chunks", total=n)
            else:
                bar.advance(tasks[event + "s"], n)

        try:
            summary = run(request, progress, prefect_api)
        except Exception as exc:  # one clear line (and one JSON object) instead of a traceback
            message = _explain(exc)
            if as_json:
                print(json.dumps({"error": message}, ensure_ascii=False))
            _fail(message)

    for failure in summary.failed:
        err.print(
            f"[red]failed:[/red] {escape(failure.path)}: {escape(failure.error)}", highlight=False, soft_wrap=True
        )
    for note in summary.notes:
        err.print(escape(f"note: {note.path}: {note.note}"), highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps(summary.model_dump(mode="json"), ensure_ascii=False))
    else:
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
            (
                "tokens",
                f"{summary.input_tokens} in ({summary.cached_input_tokens} cached), {summary.output_tokens} out",
            ),
            ("cost", "unknown (no price for this model)" if summary.cost_usd is None else f"${summary.cost_usd:.4f}"),
            ("time", f"{summary.seconds:.1f} s"),
            ("store", summary.db),
        ]:
            table.add_row(label, str(value))
        out.print(table)
    if summary.failed or summary.failed_chunks:
        raise typer.Exit(1)


def _request(
    paths: list[Path],
    overrides: dict,
    *,
    similarity_threshold: float | None = None,
    id_column: str | None = None,
    text_column: str | None = None,
    batch: bool = False,
    poll_interval: float = 30.0,
    ready: bool = True,
) -> RunRequest:
    """A checked run request from flags, environment and qcode.toml; exits with a clear error otherwise."""
    from pydantic import ValidationError

    from pipeline.coders import make_coder
    from pipeline.route import RoutingPolicy
    from pipeline.run.flow import RunRequest

    try:
        settings = load_settings(overrides)
    except ConfigError as exc:
        _fail(str(exc))
    if not settings.codebook:
        _fail("name a codebook with --codebook FILE (or codebook = ... under [run] in qcode.toml)")
    try:
        load_codebook(settings.codebook)
    except CodebookError as exc:
        for problem in exc.problems:
            err.print(escape(str(problem)), highlight=False, soft_wrap=True)
        _fail(f"the codebook {settings.codebook} has {len(exc.problems)} problem(s); nothing was coded")

    if settings.coder == "offline":
        coder_options = {"similarity_threshold": similarity_threshold}
    else:
        coder_options = {
            name: getattr(settings, name)
            for name in (
                "model",
                "base_url",
                "prompt",
                "temperature",
                "samples",
                "max_attempts",
                "concurrency",
                "rpm",
                "tpm",
                "timeout",
                "max_retries",
                "fewshot",
            )
        }
    coder_options = {k: v for k, v in coder_options.items() if v is not None}
    try:
        request = RunRequest(
            paths=[str(p) for p in paths],
            codebook=settings.codebook,
            db=settings.db,
            coder=settings.coder,
            coder_options=coder_options,
            chunk_size=settings.chunk_size,
            overlap=settings.overlap,
            routing=RoutingPolicy(threshold=settings.threshold, audit_share=settings.audit_share, seed=settings.seed),
            batch_size=settings.batch_size,
            id_column=id_column,
            text_column=text_column,
            batch=batch,
            poll_interval=poll_interval,
        )
    except ValidationError as exc:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()))
    if request.overlap >= request.chunk_size:
        _fail("--overlap must be smaller than --chunk-size")
    if batch and request.coder != "openai":
        _fail("--batch needs --coder openai")
    if request.coder == "openai" and not request.coder_options.get("model"):
        _fail("the openai coder needs a model: --model NAME (or model = ... under [run] in qcode.toml)")
    from pipeline.coders.prices import PriceError, price_table

    try:
        price_table()  # a malformed override fails now, not after every call is paid for
    except PriceError as exc:
        _fail(str(exc))
    from pipeline.store import has_password, redact

    if has_password(request.db):
        # the password stays in this process's environment, never in run records
        os.environ["QCODE_DB"] = request.db
        request.db = redact(request.db)
    try:
        chosen = make_coder(request.coder, **request.coder_options)  # configuration errors before any work
        if ready and hasattr(chosen, "check_ready"):
            chosen.check_ready()
    except Exception as exc:
        _fail(str(exc))
    return request


def _open_store(db: str | None) -> Store:
    """An existing store: a mistyped --db is an error, not a new empty database."""
    from pipeline.store import Store, StoreError

    try:
        return Store(db, create=False)
    except StoreError as exc:
        _fail(str(exc))
    except Exception as exc:
        _fail(_explain(exc))


def _explain(exc: BaseException) -> str:
    """What went wrong, in a line a researcher can act on."""
    from sqlalchemy.exc import OperationalError

    if isinstance(exc, ModuleNotFoundError) and exc.name in ("psycopg", "psycopg2", "pymysql", "MySQLdb"):
        return f"the database driver '{exc.name}' is not installed (for PostgreSQL: pip install 'qcode[postgres]')"
    if isinstance(exc, OperationalError):
        return f"the database cannot be opened: {exc.orig}"
    return f"{type(exc).__name__}: {exc}"


def _print_estimate(request: object, as_json: bool) -> None:
    from pipeline.run.estimate import estimate

    found = estimate(request)
    for failure in found.failed:
        err.print(
            f"[red]failed:[/red] {escape(failure.path)}: {escape(failure.error)}", highlight=False, soft_wrap=True
        )
    if as_json:
        print(json.dumps(found.model_dump(mode="json"), ensure_ascii=False))
        return
    table = Table(title="dry run: nothing was sent or stored", show_header=False)
    cost = "unknown (no price for this model)" if found.cost_usd is None else f"${found.cost_usd:.4f}"
    for label, value in [
        ("coder", f"{found.coder} ({found.model})"),
        ("transcripts", found.transcripts),
        ("chunks", f"{found.chunks} ({found.pending} not yet coded)"),
        ("requests", found.requests),
        ("input tokens", found.input_tokens),
        ("output tokens (estimate)", found.output_tokens),
        ("cost", cost),
    ]:
        table.add_row(label, str(value))
    out.print(table)


@app.command("schedule")
def schedule_command(
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
    from pipeline.run.schedule import ScheduleError, serve

    if not folder.is_dir():
        _fail(f"{folder}: not a folder")
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError as exc:
        _fail(f"--cron '{cron}' is not a cron expression: {exc.errors()[0]['msg'] if hasattr(exc, 'errors') else exc}")
    request = _request(
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
    from pipeline.store import database_url

    if not request.db or "://" not in request.db:
        request.db = database_url(request.db)  # absolute: scheduled runs start in another folder
    request.codebook = str(Path(request.codebook).resolve())
    try:
        serve(request, name or f"qcode-{folder.resolve().name}", cron, prefect_api)
    except ScheduleError as exc:
        _fail(str(exc))


@app.command("queue")
def queue_command(
    db: DbOption = None,
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the suggestions waiting for a reviewer (low confidence or audit sample)."""
    from pipeline.review.queued import queued_suggestions

    items, total, open_rejections = queued_suggestions(_open_store(db), limit)
    if as_json:
        print(json.dumps({"total": total, "open_rejections": open_rejections, "items": items}, ensure_ascii=False))
        return
    table = Table(title=f"{total} suggestion(s) waiting for review")
    for column in ("suggestion", "transcript", "code", "confidence", "status", "quote"):
        table.add_column(column, overflow="fold")
    for item in items:
        quote = item["quote"] if len(item["quote"]) <= 80 else item["quote"][:77] + "..."
        table.add_row(
            item["suggestion_id"],
            escape(item["source_name"]),
            escape(item["code"]),
            f"{item['confidence']:.2f}",
            item["status"],
            escape(quote),
        )
    out.print(table)
    if total > len(items):
        out.print(f"... and {total - len(items)} more (use --limit)")
    if open_rejections:
        out.print(f"{open_rejections} rejected proposal(s) are also waiting for a person.")


@app.command("export")
def export_command(
    fmt: Annotated[str, typer.Option("--format", help="jsonl | csv | codings | decisions | blind | qdpx")],
    out_path: Annotated[Path | None, typer.Option("--out", help="File to write (default: standard output).")] = None,
    db: DbOption = None,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run's suggestions.")] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only accepted, review, audit or queued suggestions.")
    ] = None,
) -> None:
    """Write suggestions (jsonl, csv), codes as unit_id,coder,code (codings, blind) or the decisions log.

    codings: the model's codes, the reviewers' blind double codes and imported human codes; blind: the
    blind codes alone; decisions: every reviewer decision (the audit log); qdpx: a REFI-QDA project for
    ATLAS.ti, NVivo, MAXQDA or QualCoder, with the codes that stand after review."""
    from pipeline.exchange.exports import FORMATS, export

    if fmt not in FORMATS:
        _fail(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    if status not in (None, "accepted", "review", "audit", "queued"):
        _fail(f"unknown status '{status}' (choose from accepted, review, audit, queued)")
    from pipeline.exchange.codebooks import ExchangeError
    from pipeline.store import StoreError

    if fmt == "qdpx" and out_path is None and sys.stdout.isatty():
        _fail("a qdpx project is a ZIP file: name it with --out, or redirect standard output to a file")
    try:
        count = export(_open_store(db), fmt, out_path, run_id, status)
    except (StoreError, ExchangeError) as exc:
        _fail(str(exc))
    err.print(f"wrote {count} record(s) to {out_path or 'standard output'}", highlight=False)


@app.command("import")
def import_command(
    path: Annotated[
        Path, typer.Argument(metavar="PROJECT", help="A REFI-QDA project: PROJECT.qdpx (or a bare project.qde).")
    ],
    db: DbOption = None,
    codebook_out: Annotated[
        Path | None,
        typer.Option(
            "--codebook-out",
            help="Write the project's codebook here as YAML (default: PROJECT.codebook.yaml in the current folder).",
        ),
    ] = None,
    offsets: Annotated[
        str,
        typer.Option(
            "--offsets",
            help="How the project counts positions: auto (by the software that wrote it), code-points, utf-16 (NVivo) or code-points-lf (CR LF as one, ATLAS.ti).",
        ),
    ] = "auto",
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=50, help="Characters per chunk, as for qcode run.")
    ] = 1200,
    overlap: Annotated[int, typer.Option("--overlap", min=0, help="Characters chunks share, as for qcode run.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Bring in a project coded in another QDA tool: its transcripts, case variables, codebook and its
    people's codes (the human codes qcode agreement and qcode eval compare the model with)."""
    from pipeline.exchange.codebooks import ExchangeError, dump_yaml
    from pipeline.exchange.projects import import_project, read_project
    from pipeline.store import Store, StoreError

    if offsets not in ("auto", "code-points", "utf-16", "code-points-lf"):
        _fail(f"unknown --offsets '{offsets}' (choose from auto, code-points, utf-16, code-points-lf)")
    target = codebook_out or Path(f"{path.stem}.codebook.yaml")
    try:
        # the whole project is read and checked before the store is opened (or created)
        project = read_project(path, None if offsets == "auto" else offsets)  # type: ignore[arg-type]
        store = Store(db)
        summary = import_project(store, project, chunk_size=chunk_size, overlap=overlap)
    except (ExchangeError, StoreError) as exc:
        if as_json:
            print(json.dumps({"error": str(exc)}, ensure_ascii=False))
        _fail(f"{exc}\nNothing was imported.")
    except Exception as exc:
        _fail(f"{_explain(exc)}\nNothing was imported.")
    written = None
    if project.codebook is not None:
        from pipeline.exchange.exports import written_aside

        text = dump_yaml(project.codebook.codebook)
        if target.exists() and target.read_text(encoding="utf-8") != text and codebook_out is None:
            summary.warnings.append(
                f"{target} exists and differs; the codebook was not written there (name a file with --codebook-out)"
            )
        else:
            with written_aside(target) as temporary:
                temporary.write_text(text, encoding="utf-8")
            written = str(target)
    if as_json:
        print(json.dumps({**summary.model_dump(), "codebook_file": written}, ensure_ascii=False))
        return
    out.print(
        f"Imported {escape(str(path))}" + (f" ({escape(summary.origin)})" if summary.origin else ""), highlight=False
    )
    out.print(
        f"  {summary.transcripts} transcript(s), {summary.chunks} chunk(s); {summary.codes} code(s) in the "
        f"codebook" + (f", written to {escape(written)}" if written else ""),
        highlight=False,
    )
    merged = f" ({summary.merged} repeated or already imported)" if summary.merged else ""
    out.print(
        f"  {summary.human_codes} human code(s) by {len(summary.coders)} coder(s): "
        f"{escape(', '.join(summary.coders)) or 'none'}{merged}",
        highlight=False,
    )
    out.print(f"  positions read as {summary.counting}", highlight=False)
    for warning in summary.warnings:
        err.print(f"warning: {escape(warning)}", highlight=False, soft_wrap=True)


@app.command("serve")
def serve_command(
    db: DbOption = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
) -> None:
    """Start the review web app.

    Sessions are signed with $QCODE_SECRET_KEY (set it, or every restart signs everyone out);
    set QCODE_SECURE_COOKIES=1 behind HTTPS."""
    from pipeline.review.app import serve

    store = _open_store(db)
    if not os.environ.get("QCODE_SECRET_KEY"):
        err.print("note: QCODE_SECRET_KEY is not set; sessions end when the server stops", highlight=False)
    from pipeline.store import redact

    err.print(f"qcode review on http://{host}:{port} (database {redact(store.url)})", highlight=False)
    serve(store.url, host, port)


def _reviewer_call(fn: Any, *args: Any) -> Any:
    from pipeline.store import StoreError

    try:
        return fn(*args)
    except StoreError as exc:
        _fail(str(exc))


@reviewer_app.command("add")
def reviewer_add(
    name: Annotated[str, typer.Argument(help="The reviewer's sign-in name.")],
    role: Annotated[
        str, typer.Option("--role", help="reviewer | lead (a lead sees every run and assigns double coding).")
    ] = "reviewer",
    runs: Annotated[
        list[str] | None,
        typer.Option("--run", help="A run this reviewer may see (an id, latest or all); repeatable."),
    ] = None,
    db: DbOption = None,
) -> None:
    """Create an account and print its password, once."""
    from pipeline.review.reviewers import add_reviewer, grant_runs

    store = _open_store(db)
    if runs:  # a mistyped run must not leave an account whose password was never shown
        from pipeline.exchange.exports import resolve_run

        for run in runs:
            if run != "all":
                _reviewer_call(resolve_run, store, run)
    password = _reviewer_call(add_reviewer, store, name, role)
    granted = _reviewer_call(grant_runs, store, name, runs) if runs else []
    out.print(f"{escape(name)} ({role}) created. One-time display of the password:", highlight=False)
    print(password)
    if role != "lead" and not granted:
        err.print(
            f"note: {name} sees no runs yet; give some with `qcode reviewer grant {name} --run latest`", highlight=False
        )


@reviewer_app.command("grant")
def reviewer_grant(
    name: Annotated[str, typer.Argument(help="The reviewer.")],
    runs: Annotated[list[str], typer.Option("--run", help="A run id, latest or all; repeatable.")],
    db: DbOption = None,
) -> None:
    """Let a reviewer see the suggestions of these runs."""
    from pipeline.review.reviewers import grant_runs

    granted = _reviewer_call(grant_runs, _open_store(db), name, runs)
    out.print(f"{escape(name)} may see {len(granted)} run(s): {', '.join(granted)}", highlight=False)


@reviewer_app.command("reset")
def reviewer_reset(name: Annotated[str, typer.Argument(help="The reviewer.")], db: DbOption = None) -> None:
    """Give a reviewer a new password (printed once); their open sessions end."""
    from pipeline.review.reviewers import reset_password

    password = _reviewer_call(reset_password, _open_store(db), name)
    out.print(f"New password for {escape(name)}, shown once:", highlight=False)
    print(password)


@reviewer_app.command("disable")
def reviewer_disable(name: Annotated[str, typer.Argument(help="The reviewer.")], db: DbOption = None) -> None:
    """Stop a reviewer from signing in; their decisions stay."""
    from pipeline.review.reviewers import disable_reviewer

    _reviewer_call(disable_reviewer, _open_store(db), name)
    out.print(f"{escape(name)} can no longer sign in.", highlight=False)


@reviewer_app.command("list")
def reviewer_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every reviewer, their role and the runs they may see."""
    from pipeline.review.reviewers import list_reviewers

    reviewers = list_reviewers(_open_store(db))
    if as_json:
        print(json.dumps(reviewers, ensure_ascii=False))
        return
    table = Table(title=f"{len(reviewers)} reviewer(s)")
    for column in ("name", "role", "active", "runs"):
        table.add_column(column, overflow="fold")
    for r in reviewers:
        runs = r["runs"] if isinstance(r["runs"], str) else ", ".join(r["runs"]) or "none"
        table.add_row(escape(str(r["name"])), str(r["role"]), "yes" if r["active"] else "no", runs)
    out.print(table)


@app.command("agreement")
def agreement_command(
    codings: Annotated[
        Path | None,
        typer.Argument(
            help="The unit_id,coder,code table (CSV, UTF-8), e.g. from `qcode export --format codings`; or read the store with --db."
        ),
    ] = None,
    as_json: JsonOption = False,
    codebook: Annotated[
        Path | None,
        typer.Option(
            "--codebook",
            help="Codebook YAML: its codes (unused ones too) and, for ordinal codebooks, the order of the codes.",
        ),
    ] = None,
    level: Annotated[
        str | None,
        typer.Option(
            "--level",
            help="nominal | ordinal | interval | ratio (default: ordinal for an ordinal codebook, else nominal).",
        ),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap replicates for the 95% intervals (0: no intervals).")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap draws.")] = 0,
    model_coders: Annotated[
        list[str] | None,
        typer.Option(
            "--model-coder",
            help="A coder that is a model; repeatable (default: labels with ':' not starting 'reviewer:').",
        ),
    ] = None,
    db: DbOption = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run", help="With --db: the run whose model codes meet the reviewers' blind codes (an id or latest)."
        ),
    ] = None,
) -> None:
    """Agreement between coders, per code and overall, with bootstrap 95% intervals (docs/agreement.md)."""
    from pipeline.measure.agreement import (
        AgreementError,
        agreement,
        codings_from_store,
        footnotes,
        read_codings,
        tables,
    )

    def fail(message: str) -> None:
        if as_json:
            print(json.dumps({"error": message}, ensure_ascii=False))
        _fail(message)

    if (codings is None) == (db is None and run_id is None):
        fail("give either a CODINGS.csv table or --db URL [--run ID], not both")
    loaded = None
    if codebook is not None:
        try:
            loaded = load_codebook(codebook)
        except CodebookError as exc:
            fail(f"the codebook {codebook} has problems: {exc}")
    try:
        if codings is not None:
            table = read_codings(codings, loaded)
        else:
            from pipeline.store import StoreError

            try:
                table = codings_from_store(_open_store(db), run_id, loaded)
            except StoreError as exc:
                fail(str(exc))
        report = agreement(
            table, level=level, codebook=loaded, model_coders=model_coders, bootstrap=bootstrap, seed=seed
        )
    except AgreementError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(report, ensure_ascii=False, allow_nan=False))
        return
    for table_ in tables(report):
        out.print(table_)
    for line in footnotes(report):
        out.print(escape(line), highlight=False, soft_wrap=True)


# Commands that live beside what they do; their modules import little until they run.
from pipeline.exchange.codebooks import codebook_export_command, codebook_import_command  # noqa: E402
from pipeline.measure.evals import eval_command  # noqa: E402
from pipeline.measure.matrix import matrix_command  # noqa: E402
from pipeline.measure.report import report_command  # noqa: E402

codebook_app.command("import")(codebook_import_command)
codebook_app.command("export")(codebook_export_command)
app.command("eval")(eval_command)
app.command("matrix")(matrix_command)
app.command("report")(report_command)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
