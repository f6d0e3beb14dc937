"""How every command answers, in one place.

* A result: tables and lines for people, or, under `--json`, one JSON object on standard output
  (`emit`).
* An error: the library raises a QcodeError; the command line prints it as one line on standard
  error and exits with status 1, and under `--json` also prints `{"error": "..."}` on standard
  output. A command line that is itself wrong (an unknown option, a value outside its choices:
  `bad_argument`) exits with status 2, with the same JSON object under `--json`.
* Notes, warnings and progress go to standard error, so standard output holds only the result.
* Tables for people fit the terminal (`fitted_table`): ids shortened to a prefix that is still
  unique (`unique_prefixes`), long text cut with "…" (`cut`), code ids wrapped, never cut (`wrap`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import typer
from pydantic import BaseModel
from rich import box
from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

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


# ---------------------------------------------------------------- tables that fit the terminal

SHORTEST_ID = 8  # an id is never shown shorter than this, however few there are


def unique_prefixes(ids: Iterable[str], at_least: int = SHORTEST_ID) -> dict[str, str]:
    """Each id's shortest prefix, `at_least` characters long, that no other of these ids starts
    with: a neighbour in sorted order shares the longest start with it, so only neighbours are
    compared."""
    ordered = sorted(set(ids))
    prefixes: dict[str, str] = {}
    for n, found in enumerate(ordered):
        shared = max(
            (_common_start(found, ordered[m]) for m in (n - 1, n + 1) if 0 <= m < len(ordered)),
            default=0,
        )
        prefixes[found] = found[: max(at_least, shared + 1)]
    return prefixes


def _common_start(one: str, other: str) -> int:
    n = 0
    for a, b in zip(one, other):
        if a != b:
            break
        n += 1
    return n


def one_line(text: str) -> str:
    """Text with its line breaks and runs of spaces as single spaces: a quote in a table row."""
    return " ".join(text.split())


def cut(text: str, width: int, lines: int = 1) -> str:
    """Text in at most `lines` lines of `width` cells, wrapped at spaces, its end cut with "…" when
    it does not fit."""
    text = one_line(text)
    if width < 1:
        return ""
    if lines <= 1:
        return text if cell_len(text) <= width else set_cell_size(text, width - 1).rstrip() + "…"
    wrapped = wrap(text, width).split("\n")
    if len(wrapped) <= lines:
        return "\n".join(wrapped)
    kept = wrapped[: lines - 1]
    rest = " ".join(wrapped[lines - 1 :])
    return "\n".join([*kept, cut(rest, width)])


# where an id or a name may be wrapped: after a space (which goes), or after a separator or a dash
# (which stays)
_BREAK = re.compile(r"(?<=[ .\-_/:,–—])")


def wrap(text: str, width: int) -> str:
    """Text in lines of at most `width` cells, broken after spaces and after the separators of ids
    (`.`, `-`, `_`, `/`, `:`), a part longer than a line folded: nothing is cut, so two code ids that
    differ only at their ends still differ on screen (boundary-spanning.strength, ...weakness)."""
    if width < 1:
        return text
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for part in _BREAK.split(paragraph):
            if cell_len(line + part.rstrip()) <= width:
                line += part
                continue
            if line.strip():
                lines.append(line.rstrip())
            line = part
            while cell_len(line.rstrip()) > width:  # a part wider than a line: folded
                head = set_cell_size(line, width)
                lines.append(head)
                line = line[len(head) :]
        lines.append(line.rstrip())
    return "\n".join(lines)


@dataclass(frozen=True)
class Column:
    """A column of a table for people, and how it gives way when the terminal is narrow:

    * keep: as wide as its widest cell (ids, numbers, dates, words of one line);
    * wrap: its cells wrapped (`wrap`), never narrower than `least` cells: code ids, names;
    * cut: its cells cut with "…" after `lines` lines (`cut`), never narrower than `least`: quotes.

    A header is wrapped at its spaces where its column is narrower."""

    header: str
    fit: Literal["keep", "wrap", "cut"] = "keep"
    least: int = 10
    lines: int = 1
    justify: Literal["left", "right"] = "left"


def _widest(cells: Iterable[str]) -> int:
    return max((cell_len(line) for cell in cells for line in cell.split("\n")), default=0)


def _bounds(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> tuple[list[int], list[int]]:
    """Each column's narrowest and widest width: a keep column's are both its widest cell; another's
    narrowest is `least` (or its widest cell, when narrower), never narrower than its header's
    longest word."""
    least: list[int] = []
    most: list[int] = []
    for n, column in enumerate(columns):
        word = _widest(column.header.split() or [""])
        full = max(_widest(row[n] for row in rows), word)
        most.append(full)
        least.append(full if column.fit == "keep" else min(full, max(column.least, word)))
    return least, most


FLOOR = 4  # a wrap or cut column is made this narrow, at the least, on a terminal too narrow for the table


def column_widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, gap: int = 2) -> list[int]:
    """Each column's width in a table `width` cells wide with `gap` cells between columns: a keep
    column is as wide as its widest cell; the others start from their narrowest and share what is
    left in proportion to their widest cells (a cell at a time to the one furthest from its own),
    until each shows its widest cell whole. On a terminal too narrow even for that, the widest wrap
    and cut columns give way first: ids and figures are the last to be cut."""
    widths, most = _bounds(columns, rows)
    spare = width - gap * (len(columns) - 1) - sum(widths)
    while spare > 0:
        lacking = [(widths[n] / most[n], n) for n in range(len(columns)) if widths[n] < most[n]]
        if not lacking:
            break
        n = min(lacking)[1]
        widths[n] += 1
        spare -= 1
    while spare < 0:
        giving = [(widths[n], -n) for n, c in enumerate(columns) if c.fit != "keep" and widths[n] > FLOOR]
        if not giving:
            break
        n = -max(giving)[1]
        widths[n] -= 1
        spare += 1
    return widths


def narrowest(columns: Sequence[Column], rows: Sequence[Sequence[str]], gap: int = 2) -> int:
    """How many cells wide the table is at its narrowest, every column at least its `least`: what a
    terminal needs to show it as it is meant to be."""
    return sum(_bounds(columns, rows)[0]) + gap * (len(columns) - 1)


def fitted_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    title: str | None = None,
    width: int | None = None,
    gap: int = 2,
) -> Table:
    """A table of plain text (no markup is read in cells) that fits `width` cells (the terminal's
    by default): columns as wide as `column_widths` makes them, cells wrapped or cut to them."""
    widths = column_widths(columns, rows, out.width if width is None else width, gap)
    table = Table(
        title=Text(title) if title else None,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, gap - 1, 0, 0),
        pad_edge=False,
    )
    for column, w in zip(columns, widths):
        table.add_column(Text(wrap(column.header, w)), justify=column.justify, width=w, no_wrap=True, overflow="fold")
    for row in rows:
        cells = []
        for column, w, cell in zip(columns, widths, row):
            if column.fit == "cut":
                cell = cut(cell, w, column.lines)
            elif column.fit == "wrap":
                cell = wrap(cell, w)
            cells.append(Text(cell))
        table.add_row(*cells)
    return table
