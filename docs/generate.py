"""The parts of qcode's docs that are made from the code, so that they cannot drift from it:

- docs/cli.md, every command with its arguments and options, from the command line itself;
- README.md's table of the store (between its `store-table` markers), from the tables' record
  classes in pipeline/store/records.py, each described by its docstring's first paragraph.

    python docs/generate.py           # write them
    python docs/generate.py --check   # exit 1, naming the file, when one differs from what the code makes

The tests run the check.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import typer  # noqa: E402

from pipeline.cli import app  # noqa: E402
from pipeline.store.records import Base  # noqa: E402

CLI_DOC = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"
START, END = "<!-- store-table: made by docs/generate.py -->", "<!-- /store-table -->"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _default(param: Any) -> str:
    value = param.default
    if value is None or value is False or value == ():
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _usage(path: list[str], command: Any) -> str:
    pieces = ["qcode", *path]
    if any(not getattr(p, "hidden", False) and p.param_type_name == "option" for p in command.params):
        pieces.append("[OPTIONS]")
    for param in command.params:
        if param.param_type_name == "argument":
            name = (param.metavar or param.name).upper()
            name += "..." if param.nargs == -1 else ""
            pieces.append(name if param.required else f"[{name}]")
    return " ".join(pieces)


def _command(path: list[str], command: Any, ctx: Any) -> list[str]:
    lines = [f"## `qcode {' '.join(path)}`", "", "```", _usage(path, command), "```", ""]
    help_text = inspect.cleandoc(command.help or "")
    if help_text:
        lines += [help_text, ""]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    options = [p for p in command.params if p.param_type_name == "option" and not getattr(p, "hidden", False)]
    if arguments:
        lines += ["| Argument | Description |", "|---|---|"]
        for param in arguments:
            name = (param.metavar or param.name).upper()
            lines.append(f"| `{name}` | {_cell(getattr(param, 'help', '') or '')} |")
        lines.append("")
    if options:
        lines += ["| Option | Takes | Default | Description |", "|---|---|---|---|"]
        for param in options:
            names = " ".join(f"`{o}`" for o in [*param.opts, *param.secondary_opts])
            takes = "" if param.is_flag else _cell(param.metavar or param.display_type(ctx).strip("<>"))
            default = "" if param.is_flag or param.required else _default(param)
            described = _sentence(_cell(getattr(param, "help", "") or ""))
            if param.required:
                described = f"{described} Required.".strip()
            if param.multiple and "repeatable" not in described.lower():
                described = f"{described} Repeatable.".strip()
            lines.append(f"| {names} | {takes} | {_cell(default)} | {described} |")
        lines.append("")
    return lines


def _sentence(text: str) -> str:
    """Help text ending in a full stop, so a note appended after it reads as a sentence."""
    text = text.rstrip()
    return text if not text or text.endswith((".", "?", "!", ")")) else f"{text}."


def cli_reference() -> str:
    """docs/cli.md: every `qcode` command, in the order `qcode --help` lists them."""
    root = typer.main.get_command(app)
    context = typer.Context(root, info_name="qcode")
    lines = [
        "# The `qcode` command",
        "",
        "Made from the command line itself by `python docs/generate.py`; edit the commands' help, not this",
        "file. Every command that prints a result takes `--json` and prints one JSON object; an error is",
        'one line on standard error and exit status 1 (with `{"error": "..."}` under `--json`); a',
        "command line that is itself wrong exits with status 2. A command that writes a file refuses to",
        "replace one that exists unless given `--force`.",
        "",
    ]

    def walk(group: Any, path: list[str], ctx: Any) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None or getattr(command, "hidden", False):
                continue
            if hasattr(command, "list_commands"):
                walk(command, [*path, name], typer.Context(command, info_name=name, parent=ctx))
            else:
                lines.extend(_command([*path, name], command, typer.Context(command, info_name=name, parent=ctx)))

    walk(root, [], context)
    return "\n".join(lines).rstrip() + "\n"


def store_table() -> str:
    """README.md's table of the store: one row per table, from its record's docstring."""
    rows = ["| Table | Holds |", "|---|---|"]
    for mapper in sorted(Base.registry.mappers, key=lambda m: m.class_.__table__.name):
        record = mapper.class_
        first_paragraph = inspect.cleandoc(record.__doc__ or "").split("\n\n")[0]
        rows.append(f"| `{record.__table__.name}` | {_cell(first_paragraph)} |")
    return "\n".join(rows) + "\n"


def readme_with_store_table(readme: str) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"{README}: the markers {START} and {END} are missing")
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return f"{before}{START}\n{store_table()}{END}{after}"


def outputs() -> dict[Path, str]:
    return {CLI_DOC: cli_reference(), README: readme_with_store_table(README.read_text(encoding="utf-8"))}


def main(argv: list[str]) -> int:
    stale = []
    for path, text in outputs().items():
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        if "--check" in argv:
            stale.append(path)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    for path in stale:
        print(f"{path.relative_to(ROOT)} differs from what the code makes: run python docs/generate.py")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
