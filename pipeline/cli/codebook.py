"""`qcode codebook validate | import | export`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from pipeline import __version__
from pipeline.cli.options import ForceOption, JsonOption, OutOption
from pipeline.cli.output import bad_argument, emit, out, say, warn
from pipeline.codebook import Codebook, check_codebook, dump_yaml, load_codebook
from pipeline.errors import CodebookError
from pipeline.exchange.codebooks import import_codebook, qdc_bytes
from pipeline.files import refuse_to_replace, write_bytes, write_text

app = typer.Typer(help="Work with codebooks.", no_args_is_help=True)

CodebookArgument = Annotated[Path, typer.Argument(help="Codebook YAML file.")]


def _summary(file: Path, codebook: Codebook) -> dict[str, object]:
    return {
        "file": str(file),
        "name": codebook.name,
        "codes": len(codebook.codes),
        "applicable": len(codebook.leaves),
        # every code not applied: a code with children, or one marked codable: false
        "categories": len(codebook.codes) - len(codebook.leaves),
        "measurement": codebook.measurement,
        "version": codebook.version,
    }


def _categories(n: int) -> str:
    return f"{n} {'category' if n == 1 else 'categories'}" if n else "no categories"


@app.command("validate")
def validate(file: CodebookArgument, as_json: JsonOption = False) -> None:
    """Check a codebook and report every problem with its file and line."""
    codebook, problems = check_codebook(file)
    if problems or codebook is None:
        raise CodebookError(problems)
    summary = _summary(file, codebook)
    emit(
        {**summary, "ok": True},
        as_json,
        lambda: out.print(
            f"{file}: ok: '{codebook.name}', {len(codebook.codes)} codes ({len(codebook.leaves)} applicable), "
            f"{codebook.measurement}, version {codebook.version}",
            highlight=False,
            soft_wrap=True,
        ),
    )


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="A REFI-QDA codebook (.qdc) or a spreadsheet (.xlsx, .csv) with one row per code.")
    ],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="The codebook YAML to write (default: standard output).")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="The codebook's name (default: the one in the file, else the file name)."),
    ] = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Import a codebook from other QDA software (.qdc) or a spreadsheet, as codebook YAML.

    What could not be imported as it was is listed on standard error."""
    if as_json and out_path is None:
        bad_argument("--json needs --out: the codebook and the summary cannot both go to standard output")
    if out_path is not None:
        refuse_to_replace(out_path, force)
    imported = import_codebook(file, name=name)
    codebook = imported.codebook
    text = f"# Imported from {file.name} by qcode {__version__}\n" + dump_yaml(codebook)
    if out_path is None:
        typer.echo(text, nl=False)
    else:
        write_text(out_path, text, force=force)
    for warning in imported.warnings:
        warn(warning)
    summary = {**_summary(file, codebook), "out": str(out_path) if out_path else None, "warnings": imported.warnings}
    emit(summary, as_json)
    say(
        f"{file}: {len(codebook.codes)} codes ({_categories(summary['categories'])}, {len(codebook.leaves)} "  # type: ignore[arg-type]
        f"applicable) imported{f' to {out_path}' if out_path else ''}, {len(imported.warnings)} warning(s)"
    )


@app.command("export")
def export(
    codebook: CodebookArgument,
    fmt: Annotated[
        Literal["qdc"],
        typer.Option(
            "--format",
            case_sensitive=False,
            help="The file format: qdc (REFI-QDA codebook, for NVivo, MAXQDA, ATLAS.ti and others).",
        ),
    ],
    out_path: OutOption = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Export a codebook for other QDA software.

    Definitions, criteria and examples go into each code's description; qcode reads them back exactly."""
    if as_json and out_path is None:
        bad_argument("--json needs --out: the codebook and the summary cannot both go to standard output")
    if out_path is not None:
        refuse_to_replace(out_path, force)
    loaded = load_codebook(codebook)
    data = qdc_bytes(loaded)
    if out_path is None:
        stream = typer.get_binary_stream("stdout")
        stream.write(data)
        stream.flush()
    else:
        write_bytes(out_path, data, force=force)
    emit({**_summary(codebook, loaded), "format": "qdc", "out": str(out_path) if out_path else None}, as_json)
    say(
        f"{codebook}: {len(loaded.codes)} codes ({_categories(len(loaded.codes) - len(loaded.leaves))}) exported as "
        f"REFI-QDA codebook{f' to {out_path}' if out_path else ''}"
    )
