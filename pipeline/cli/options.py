"""Command-line options that several `qcode` commands share, declared once; and how every option
reads in `--help` and refuses a value outside its choices (`conventional`)."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Iterable, Sequence
from enum import Enum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, NoReturn, get_args
from uuid import UUID

import typer

# typer carries its own copy of click: its commands, contexts and parameters are the ones built here
from typer._click.core import Command, Context, Parameter
from typer.core import TyperArgument, TyperGroup, TyperOption

from pipeline.chunk import UnitKind
from pipeline.cli.output import bad_argument
from pipeline.coders import ENTRY_POINTS, coders

DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL or SQLite path (default: $QCODE_DB, then ./qcode.db).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]
ForceOption = Annotated[bool, typer.Option("--force", help="Replace the file named by --out if it exists.")]
RunOption = Annotated[
    str | None,
    typer.Option(
        "--run",
        help="Only this run (its name, its id or the start of it, or latest); default: every run in the database.",
    ),
]
OutOption = Annotated[Path | None, typer.Option("--out", help="The file to write (default: standard output).")]

# How transcripts are cut into units: `qcode run` and `qcode train` take them under the same names
# (a model is trained on the units the runs will code).
UnitOption = Annotated[
    UnitKind | None,
    typer.Option(
        "--unit", help="What is coded as one: chunk (whole turns up to --chunk-size) or turn (each speaker turn)."
    ),
]
ChunkSizeOption = Annotated[
    int | None, typer.Option("--chunk-size", help="Largest chunk in characters (default 1200).")
]
OverlapOption = Annotated[
    int | None, typer.Option("--overlap", help="Characters of trailing turns repeated in the next chunk (default 0).")
]
MaxUnitCharsOption = Annotated[
    int | None,
    typer.Option("--max-unit-chars", help="--unit turn: a longer turn is split at sentences (default 8000)."),
]
SpeakersOption = Annotated[
    str | None,
    typer.Option(
        "--speakers",
        help="Code only the words of these speakers: names, comma-separated, case-insensitive, * wildcards.",
    ),
]
SkipSpeakersOption = Annotated[
    str | None,
    typer.Option(
        "--skip-speakers", help="Do not code the words of these speakers (e.g. 'interviewer,Q'); they stay as context."
    ),
]
IdColumnOption = Annotated[str | None, typer.Option("--id-column", help="CSV: the column identifying each response.")]
TextColumnOption = Annotated[str | None, typer.Option("--text-column", help="CSV: the column holding each response.")]
# Every command that reads transcripts refuses a file over this size before it reads it: a 2 GB file
# named .txt, or a document that unpacks to gigabytes, would otherwise hold the run for minutes.
MaxFileMbOption = Annotated[
    int | None,
    typer.Option(
        "--max-file-mb",
        min=1,
        help="Refuse any file larger than this many MB (2^20 bytes) before reading it (default 100).",
    ),
]


# ---------------------------------------------------------------- choices, checked while parsing

_CHOICES = "qcode_choices"  # the attribute of a `one_of` callback that reads its choices


def one_of(names: Callable[[], Iterable[str]], passes: Callable[[], Iterable[str]] = lambda: ()) -> Callable[..., Any]:
    """An option's callback that refuses a value not among `names()` while the command line is
    parsed, before the command touches any file or store. The names are read then, not when the
    option is declared, so a choice added later (a coder registered, or installed as a plugin) is
    one; a value among `passes()` is let through to fail later with an error of its own."""

    def check(ctx: Context, param: Parameter, value: Any) -> Any:
        if value is None or ctx.resilient_parsing:
            return value
        choices = sorted(names())
        if value not in choices and value not in set(passes()):
            refuse(param, value, choices)
        return value

    setattr(check, _CHOICES, names)  # typer copies it onto the callback it wraps `check` in: choices_of reads it
    return check


def choices_of(param: Parameter) -> list[str] | None:
    """The values a parameter takes, when it takes one of a set: its Literal or Enum type's, or its
    `one_of` callback's as they are now; None for any other parameter."""
    names = getattr(param.callback, _CHOICES, None)
    return sorted(names()) if names is not None else _declared_choices(param)


def _declared_choices(param: Parameter) -> list[str] | None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or descriptor.choices is None:
        return None
    return [_choice_text(choice) for choice in descriptor.choices]


def refuse(param: Parameter, value: object, choices: Sequence[str]) -> NoReturn:
    """A value outside the choices: one line naming the option, its choices and the closest one,
    and exit status 2 (output.py)."""
    name = param.opts[0] if isinstance(param, TyperOption) else (param.name or "").upper()
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    bad_argument(f"{name} '{value}' is not one of {', '.join(choices)}{hint}")


def _choice_text(choice: object) -> str:
    return str(choice.value) if isinstance(choice, Enum) else str(choice)


def _known_coders() -> list[str]:
    return list(coders())


def _installed_coders() -> list[str]:
    # a plugin that is installed but cannot be loaded is no mistake of the command line: it fails
    # later, with exit status 1 and the reason it cannot be loaded (pipeline.coders.coder_class)
    return [point.name for point in entry_points(group=ENTRY_POINTS)]


CoderOption = Annotated[
    str | None,
    typer.Option(
        "--coder",
        callback=one_of(_known_coders, passes=_installed_coders),
        help="Which coder proposes codes: offline (the default), openai, learned, or one a plugin adds.",
    ),
]


# ---------------------------------------------------------------- how every option reads and answers

# click's names for types, as typer's documentation shows them (typer 0.29 itself shows `<int>`, `<list[Path]>`)
_TYPE_NAMES: dict[object, str] = {
    str: "TEXT",
    int: "INTEGER",
    float: "FLOAT",
    bool: "BOOLEAN",
    Path: "PATH",
    UUID: "UUID",
}


def _type_name(param: TyperOption | TyperArgument) -> str:
    # a type's choices, not a `one_of`'s: those change with what is installed (coders), and
    # docs/cli.md, made from this, must not
    choices = _declared_choices(param)
    if choices is not None:
        return f"[{'|'.join(choices)}]"
    descriptor = param.type_descriptor
    annotation = descriptor.annotation
    if descriptor.is_list:  # a repeatable option or a variadic argument: the type of one value
        (annotation,) = get_args(annotation)
    name = _TYPE_NAMES.get(annotation) or ("PATH" if descriptor.is_path else None)
    name = name or getattr(annotation, "__name__", str(annotation)).upper()
    return f"{name} RANGE" if descriptor.is_ranged else name


def _check_choices(param: TyperOption | TyperArgument, ctx: Context, value: Any) -> None:
    """Refuse a value outside a Literal or Enum type's choices in qcode's words, before typer's own
    check would (a wrapped panel, "Value error, ...", no suggestion)."""
    descriptor = param.type_descriptor
    choices = _declared_choices(param)
    if value is None or choices is None or ctx.resilient_parsing:
        return

    def fold(text: str) -> str:
        return text if descriptor.case_sensitive else text.casefold()

    allowed = {fold(choice) for choice in choices}
    for one in value if isinstance(value, (list, tuple)) else [value]:
        if fold(_choice_text(one)) not in allowed:
            refuse(param, one, choices)


class _Option(TyperOption):
    """An option as click and typer's documentation show it: TEXT, INTEGER, PATH, [a|b], nothing
    for a flag; `display_type` is also what docs/cli.md shows."""

    def display_type(self, ctx: Context) -> str:
        return _type_name(self)

    def display_type_rich(self, ctx: Context) -> str | None:
        if self.is_flag or self.count:
            return None
        return self.metavar if self.metavar is not None else self.display_type(ctx)

    def process_value(self, ctx: Context, value: Any) -> Any:
        _check_choices(self, ctx, value)
        return super().process_value(ctx, value)


class _Argument(TyperArgument):
    """An argument as click shows it: PATHS... in the usage line, its type beside its name."""

    def display_type(self, ctx: Context) -> str:
        return _type_name(self)

    def display_type_rich(self, ctx: Context) -> str | None:
        return self.display_type(ctx)

    def _usage_display_name(self) -> str:
        name = self.metavar or (self.name or "").upper()
        name = name if self.required else f"[{name}]"
        return f"{name}..." if self.nargs != 1 else name

    def process_value(self, ctx: Context, value: Any) -> Any:
        _check_choices(self, ctx, value)
        return super().process_value(ctx, value)


def _paragraphs(text: str) -> str:
    """Help text as paragraphs, each one line: the terminal wraps them, not the source's line breaks
    (typer keeps those in a group's list of commands and in a command's later paragraphs). As in
    click, a paragraph starting with \\b is kept as it is written, and what follows \\f is no help."""
    paragraphs = inspect.cleandoc(text.partition("\f")[0]).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def conventional(command: Command, ctx: Context) -> None:
    """Make `command` (and every command under it) read and answer as click and typer's
    documentation show, where typer 0.29 shows types as `<int>` and `<list[Path]>`, `<bool>` on
    flags, arguments as `{paths}` in the usage line, and keeps the source's line breaks in help
    text. Its parameters, built by typer, become `_Option`s and `_Argument`s: typer's own, with our
    way of showing them and of refusing a value outside their choices. Doing it twice changes
    nothing, so it is done whenever a command is looked up: the command line is built anew on each
    run, with the flags of the coders registered then."""
    if command.help:
        command.help = _paragraphs(command.help)
    helper = command.get_help_option(ctx)  # made on first use: it is a flag like the others
    for param in [*command.params, *([helper] if helper is not None else [])]:
        if type(param) is TyperOption:
            param.__class__ = _Option
        elif type(param) is TyperArgument:
            param.__class__ = _Argument
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            conventional(sub, ctx)
