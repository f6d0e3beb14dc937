"""How every command answers, in one place.

* A result: tables and lines for people, or, under `--json`, one JSON object on standard output
  (`emit`).
* An error: the library raises a QcodeError; the command line prints it as one line on standard
  error and exits with status 1, and under `--json` also prints `{"error": "..."}` on standard
  output. A command line that is itself wrong (an unknown option, a value outside its choices:
  `bad_argument`) exits with status 2, with the same JSON object under `--json`.
* Notes, warnings and progress go to standard error, so standard output holds only the result.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

# typer carries its own copy of click: its exceptions and contexts are the ones raised and passed here
from typer._click.core import Context
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from pipeline.errors import FlagError, QcodeError

out = Console()
err = Console(stderr=True)

_JSON = "qcode.json"  # ctx.meta: the command line asked for --json


def jsonable(result: Any) -> Any:
    """A result as JSON data: pydantic models dumped, everything else as it is."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    return result


def print_json(result: Any) -> None:
    """One JSON object, one line, on standard output."""
    text = json.dumps(jsonable(result), ensure_ascii=False, allow_nan=False, default=str)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def emit(result: Any, as_json: bool, show: Callable[[], None] | None = None) -> None:
    """A command's result: one JSON object under --json, else what `show` prints for people."""
    if as_json:
        print_json(result)
    elif show is not None:
        show()


def say(message: str) -> None:
    """A line for the person at the terminal, on standard error: never part of a result."""
    err.print(escape(message), highlight=False, soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def show_error(message: str, as_json: bool) -> None:
    if as_json:
        print_json({"error": message})
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)


class BadArgument(Exception):
    """The command line itself is wrong: said in one line, exit status 2."""


def bad_argument(message: str) -> NoReturn:
    raise BadArgument(message)


class Commands(TyperGroup):
    """The `qcode` command group: where a QcodeError raised anywhere below becomes one line and exit
    status 1, and an argument error under --json also becomes a JSON object."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        # the raw arguments, before any of them is parsed: an error in parsing them must still
        # answer in JSON when --json was among them
        ctx.meta.setdefault(_JSON, "--json" in args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except FlagError as exc:
            show_error(str(exc), bool(ctx.meta.get(_JSON)))
            raise typer.Exit(2) from None
        except QcodeError as exc:
            show_error(str(exc), bool(ctx.meta.get(_JSON)))
            raise typer.Exit(1) from None
        except BadArgument as exc:
            show_error(str(exc), bool(ctx.meta.get(_JSON)))
            raise typer.Exit(2) from None
        except UsageError as exc:  # typer's own: an unknown option, a missing argument
            if ctx.meta.get(_JSON):
                print_json({"error": exc.format_message()})
            raise


@contextmanager
def progress_bar() -> Iterator[Callable[[str, str, int], None]]:
    """A progress bar on standard error (when it is a terminal), fed by `report(label, event, n)`:
    event "files" or "chunks" starts a bar of n steps, "file" or "chunk" advances it by n."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def report(label: str, event: str, n: int) -> None:
            if event in ("files", "chunks"):
                what = "reading files" if event == "files" else "coding chunks"
                tasks[event] = bar.add_task(f"{label}: {what}" if label else what, total=n)
            elif event + "s" in tasks:
                bar.advance(tasks[event + "s"], n)

        yield report
