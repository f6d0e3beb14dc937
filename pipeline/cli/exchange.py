"""`qcode export`, `qcode import`: the store's contents out to files and other QDA tools, and projects
coded in other QDA tools in."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.markup import escape

from pipeline.cli.options import DbOption, ForceOption, JsonOption, OutOption
from pipeline.cli.output import bad_argument, emit, out, say, warn
from pipeline.cli.runs import chosen_run
from pipeline.codebook import dump_yaml
from pipeline.errors import QcodeError
from pipeline.exchange.exports import FORMATS, export
from pipeline.exchange.imports import import_project
from pipeline.exchange.projects import Counting, read_project
from pipeline.files import read_text, refuse_to_replace, written_aside
from pipeline.store import Store
from pipeline.store.queries import STATUSES

app = typer.Typer()


# what a format other than jsonl and csv writes, said when --status is given with it
WRITES = {
    "codings": "every code (the model's that stand, the reviewers' and the imported)",
    "blind": "every blind code",
    "decisions": "every decision",
    "qdpx": "the codes that stand after review",
}


@app.command("export")
def export_(
    fmt: Annotated[str, typer.Option("--format", help=f"What to write: {' | '.join(FORMATS)}.")],
    out_path: OutOption = None,
    db: DbOption = None,
    run_id: Annotated[
        str | None,
        typer.Option("--run", help="Only this run's suggestions: its name, its id or the start of it, or latest."),
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Only the suggestions that stand after review (accepted), still wait for a reviewer (review), "
            "either of these (all), were drawn for the audit (audit) or were sent to a reviewer (queued); "
            "default: every suggestion.",
        ),
    ] = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Write suggestions (jsonl, csv), codes as unit_id,coder,code (codings, blind) or the decisions log.

    codings: the model's codes, the reviewers' blind double codes and imported human codes; blind: the
    blind codes alone; decisions: every reviewer decision (the audit log); qdpx: a REFI-QDA project for
    ATLAS.ti, NVivo, MAXQDA or QualCoder, with the codes that stand after review."""
    if fmt not in FORMATS:
        bad_argument(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    if status is not None and status not in STATUSES:
        bad_argument(f"unknown status '{status}' (choose from {', '.join(STATUSES)})")
    if status is not None and fmt not in ("jsonl", "csv"):
        bad_argument(
            f"--status chooses the suggestions jsonl and csv write; {fmt} writes {WRITES[fmt]}, whatever their status"
        )
    if run_id is not None and fmt == "decisions":
        bad_argument("--run does not apply to decisions: the log holds every decision, of every run")
    if as_json and out_path is None:
        bad_argument("--json needs --out: the records and the summary cannot both go to standard output")
    if fmt == "qdpx" and out_path is None and sys.stdout.isatty():
        bad_argument("a qdpx project is a ZIP file: name it with --out, or redirect standard output to a file")
    if out_path is not None:
        refuse_to_replace(out_path, force)
    store = Store(db, create=False)
    run_id = chosen_run(store, run_id, strict=False)
    destination = out_path if out_path is not None else typer.get_binary_stream("stdout")
    count = export(store, fmt, destination, run_id, status, force=force)
    emit({"format": fmt, "out": str(out_path) if out_path else None, "records": count}, as_json)
    say(f"wrote {count} record(s) to {out_path or 'standard output'}")


@app.command("import")
def import_(
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
    force: Annotated[
        bool, typer.Option("--force", help="Replace the codebook file if it exists with another codebook.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Bring in a project coded in another QDA tool: its transcripts, case variables, codebook and its
    people's codes (the human codes qcode agreement and qcode eval compare the model with)."""
    if offsets not in ("auto", *get_args(Counting)):
        bad_argument(f"unknown --offsets '{offsets}' (choose from auto, {', '.join(get_args(Counting))})")
    target = codebook_out or Path(f"{path.stem}.codebook.yaml")
    try:
        # the whole project is read and checked, and the codebook's file written aside, before the
        # store is opened (or created); the file is moved into place once the import is in: an
        # import happens whole or not at all
        project = read_project(path, None if offsets == "auto" else offsets)  # type: ignore[arg-type]
        text = dump_yaml(project.codebook.codebook) if project.codebook is not None else None
        unchanged = text is not None and target.is_file() and read_text(target)[0] == text
        if text is None or unchanged:
            summary = import_project(Store(db), project, chunk_size=chunk_size, overlap=overlap)
        else:
            with written_aside(target, force=force) as aside:
                aside.write_text(text, encoding="utf-8")
                summary = import_project(Store(db), project, chunk_size=chunk_size, overlap=overlap)
    except QcodeError as exc:
        exc.hint = f"{exc.hint}; nothing was imported" if exc.hint else "nothing was imported"
        raise
    written = str(target) if text is not None else None

    def show() -> None:
        origin = f" ({escape(summary.origin)})" if summary.origin else ""
        out.print(f"Imported {escape(str(path))}{origin}", highlight=False)
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

    emit({**summary.model_dump(), "codebook_file": written}, as_json, show)
    if not as_json:
        for warning in summary.warnings:
            warn(warning)
