"""`qcode run`, `qcode schedule`: code transcripts now, or on a schedule.

Both commands take a flag for every option of every coder (`--model`, `--similarity-threshold`,
...): none is written here. Each coder declares its options (`class Options(CoderOptions)`, see
pipeline/coders/base.py), and the commands' signatures are built from them when the command line
is, so a coder registered later, or installed as a plugin, has its flags too.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table
from typer.models import OptionInfo

from pipeline.cli.options import (
    ChunkSizeOption,
    CoderOption,
    DbOption,
    IdColumnOption,
    JsonOption,
    MaxFileMbOption,
    MaxUnitCharsOption,
    OverlapOption,
    SkipSpeakersOption,
    SpeakersOption,
    TextColumnOption,
    UnitOption,
)
from pipeline.cli.output import bad_argument, emit, err, out, print_json, progress_bar, say, show_error
from pipeline.coders import coders
from pipeline.errors import QcodeError
from pipeline.run.corpus import nothing_to_read
from pipeline.run.estimate import Estimate, estimate
from pipeline.run.request import FileFailure, RunSummary
from pipeline.run.schedule import serve
from pipeline.run.settings import run_request
from pipeline.store import database_url

app = typer.Typer()

# A command's parameter `coder_options: CoderOptionFlags` stands for one flag per coder option
# (see `with_coder_options`); the command receives them as one dict, by option name.
CoderOptionFlags = dict[str, Any] | None


class with_coder_options:
    """A command whose `coder_options` parameter becomes a flag for each option of each coder:
    `--NAME` (dashes for underscores), its help the option's description after the coder's name,
    e.g. "openai coder: the model name.". An option that two coders share is one flag; one named
    like a flag of the command itself (`--seed`, `--threshold`, ...) is not a flag. Typer reads
    the signature whenever it builds the command line, so it holds the coders registered then."""

    def __init__(self, command: Callable[..., None]) -> None:
        functools.update_wrapper(self, command)
        self._command = command

    @functools.cached_property
    def _own(self) -> inspect.Signature:
        return inspect.signature(self._command, eval_str=True)

    @property
    def __signature__(self) -> inspect.Signature:
        parameters: list[inspect.Parameter] = []
        for parameter in self._own.parameters.values():
            parameters += _coder_flags(self._own) if parameter.name == "coder_options" else [parameter]
        return self._own.replace(parameters=parameters)

    def __call__(self, **values: Any) -> None:
        options = {k: values.pop(k) for k in list(values) if k not in self._own.parameters}
        self._command(**values, coder_options={k: v for k, v in options.items() if v is not None})


def _coder_flags(own: inspect.Signature) -> list[inspect.Parameter]:
    taken = {"help"}
    for parameter in own.parameters.values():
        taken.add(parameter.name)
        for info in typing.get_args(parameter.annotation)[1:]:
            if isinstance(info, OptionInfo):
                names = [info.default, *(info.param_decls or ())]
                taken |= {n.split("/")[0].lstrip("-").replace("-", "_") for n in names if isinstance(n, str)}
    found: dict[str, tuple[Any, list[str]]] = {}
    for coder, coder_class in coders().items():
        for flag in coder_class.Options.flags():
            if flag.name in taken:
                continue
            kind, helps = found.setdefault(flag.name, (flag.type, []))
            if kind != flag.type:
                found[flag.name] = (str, helps)  # two coders, two types: each coder reads the text
            helps.append(f"{coder} coder: {flag.description}".strip())
    parameters = []
    for name, (kind, helps) in found.items():
        dashed = name.replace("_", "-")
        declaration = f"--{dashed}/--no-{dashed}" if kind is bool else f"--{dashed}"
        parameters.append(
            inspect.Parameter(
                name,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=None,
                annotation=Annotated[kind | None, typer.Option(declaration, help=" ".join(helps))],
            )
        )
    return parameters


@app.command("run")
@with_coder_options
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
    chunk_size: ChunkSizeOption = None,
    overlap: OverlapOption = None,
    unit: UnitOption = None,
    max_unit_chars: MaxUnitCharsOption = None,
    speakers: SpeakersOption = None,
    skip_speakers: SkipSpeakersOption = None,
    coder: CoderOption = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            "--batch-size", help="Chunks coded and stored together (default: the coder's own, 32 offline, 128 openai)."
        ),
    ] = None,
    coder_options: CoderOptionFlags = None,
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
            "--batch",
            help="Send first requests in the coder's batch mode, where it has one "
            "(openai: the Batch API, half price, answers within 24 h).",
        ),
    ] = False,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", help="--batch: seconds between checks on a pending batch.")
    ] = 30.0,
    id_column: IdColumnOption = None,
    text_column: TextColumnOption = None,
    max_file_mb: MaxFileMbOption = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name", help="What to call the run (e.g. 'pilot, gpt-4o-mini'): shown wherever runs are listed."
        ),
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
            "unit": unit,
            "chunk_size": chunk_size,
            "overlap": overlap,
            "max_unit_chars": max_unit_chars,
            "speakers": speakers,
            "skip_speakers": skip_speakers,
            "batch_size": batch_size,
            "name": name,
            "max_file_mb": max_file_mb,
            **(coder_options or {}),
        },
        id_column=id_column,
        text_column=text_column,
        batch=batch,
        poll_interval=poll_interval,
        ready=not dry_run,
    )
    if dry_run:
        found = estimate(request)
        for failure in found.failed:
            _failed(failure.path, failure.error)
        emit(found, as_json, lambda: _show_estimate(found))
        return
    unreadable = nothing_to_read(request.paths)
    if unreadable:  # said before a Prefect server is started for a run that would code nothing
        _nothing_to_code(unreadable, as_json)

    from pipeline.run.flow import run as run_with_prefect  # Prefect loads only for a run

    with progress_bar() as report:
        try:
            summary = run_with_prefect(request, lambda event, n: report("", event, n), prefect_api)
        except QcodeError:
            raise
        except Exception as exc:  # one clear line (and one JSON object) instead of a traceback
            raise QcodeError(f"{type(exc).__name__}: {exc}") from exc
    if not summary.run_id:  # the files went between the check above and the run
        _nothing_to_code(summary.failed, as_json)
    for failure in summary.failed:
        _failed(failure.path, failure.error)
    for note in summary.notes:
        say(f"note: {note.path}: {note.note}")
    emit(summary, as_json, lambda: _show_summary(summary))
    if summary.stopped:
        err.print(
            f"[red]stopped:[/red] {escape(summary.stopped)} (what was coded is kept; the next run codes the rest)",
            highlight=False,
            soft_wrap=True,
        )
    if summary.failed or summary.failed_chunks or summary.stopped:
        raise typer.Exit(1)


def _nothing_to_code(failures: list[FileFailure], as_json: bool) -> typing.NoReturn:
    """Each path and why nothing can be read from it, then one error; exit status 1."""
    for failure in failures:
        _failed(failure.path, failure.error)
    message = "nothing to code: no transcript can be read from the path(s) given, so no run was recorded"
    if as_json:
        print_json({"error": message, "failed": [f.model_dump() for f in failures]})
    show_error(message, as_json=False)
    raise typer.Exit(1)


def _failed(path: str, error: str) -> None:
    err.print(f"[red]failed:[/red] {escape(path)}: {escape(error)}", highlight=False, soft_wrap=True)


def _dollars(value: float | None) -> str:
    return "unknown (no price for this model)" if value is None else f"${value:.4f}"


def _show_summary(summary: RunSummary) -> None:
    title = f"run {summary.run_id}" + (f" ({summary.name})" if summary.name else "")
    table = Table(title=escape(title), show_header=False)
    for label, value in [
        ("coder", f"{summary.coder} ({summary.model})"),
        ("codebook", f"{summary.codebook} [{summary.codebook_version}]"),
        ("transcripts", summary.transcripts),
        ("source types", _source_types(summary)),
        (
            "chunks" if summary.unit == "chunk" else "turn units",
            f"{summary.chunks} ({summary.chunks_coded_now} coded now)",
        ),
        ("suggestions", summary.suggestions),
        ("accepted", summary.accepted),
        ("queued for review", f"{summary.queued} ({summary.review} low confidence, {summary.audit} audit)"),
        ("rejected", summary.rejected),
        ("failed files", len(summary.failed)),
        ("failed chunks" if summary.unit == "chunk" else "failed turn units", summary.failed_chunks),
        *((f"  {f.reason}", f"{f.chunks}, {f.then}; e.g. {f.example}") for f in summary.failures),
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


def _source_types(summary: RunSummary) -> str:
    return ", ".join(
        f"{t.source_type} {t.transcripts}" + (f" ({t.inferred} inferred)" if t.inferred else "")
        for t in summary.source_types
    )


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
@with_coder_options
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
    coder: CoderOption = None,
    coder_options: CoderOptionFlags = None,
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
            "threshold": threshold,
            **(coder_options or {}),
        },
    )
    if not request.db or "://" not in request.db:
        request.db = database_url(request.db)  # absolute: scheduled runs start in another folder
    request.codebook = str(Path(request.codebook).resolve())
    from pipeline.run.flow import code_corpus  # Prefect loads only to serve

    serve(code_corpus, request, name or f"qcode-{folder.resolve().name}", cron, prefect_api)
