"""`--help` reads as click and typer's documentation show it, for every command; and a value outside
an option's choices, a coder's name included, is refused while the command line is parsed: one line
naming the option, exit status 2, nothing touched."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from fakes import qcode, scripted_coder, write

import pipeline.coders
from pipeline.cli import app
from pipeline.cli.options import choices_of
from pipeline.coders import coders

# the names click gives types, which typer's documentation shows
TYPE_NAMES = {str: "TEXT", int: "INTEGER", float: "FLOAT", Path: "PATH"}


def commands() -> Iterator[tuple[list[str], Any]]:
    """Every command and group of `qcode` with the words that name it (["codebook", "export"]), the
    root first, as `qcode --help` and docs/generate.py find them."""
    root = typer.main.get_command(app)

    def walk(group: Any, path: list[str], ctx: typer.Context) -> Iterator[tuple[list[str], Any]]:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            yield [*path, name], command
            if hasattr(command, "list_commands"):
                yield from walk(command, [*path, name], typer.Context(command, info_name=name, parent=ctx))

    yield [], root
    yield from walk(root, [], typer.Context(root, info_name="qcode"))


def declared_choices(param: Any) -> list[str] | None:
    """The choices a parameter's type declares (a Literal or an Enum: typer's click.Choice)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or descriptor.choices is None:
        return None
    return [str(getattr(choice, "value", choice)) for choice in descriptor.choices]


def usage(path: list[str], command: Any) -> str:
    """The usage line click writes, after the program's name (`root` in the test runner): arguments
    by their names in capitals, `...` after one that takes several values, [brackets] around one
    that may be left out."""
    pieces = [*path, "[OPTIONS]"]
    for param in command.params:
        if param.param_type_name == "argument":
            name = param.metavar or param.name.upper()
            name = name if param.required else f"[{name}]"
            pieces.append(f"{name}..." if param.nargs == -1 else name)
    if hasattr(command, "list_commands"):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def shown_type(param: Any) -> str | None:
    """What the help shows as a parameter's type: click's name for it, [a|b] for choices, nothing
    for a flag; an option's own metavar where it has one (`--fail-under METRIC=VALUE`)."""
    if getattr(param, "is_flag", False):
        return None
    if param.param_type_name == "option" and param.metavar is not None:
        return param.metavar
    choices = declared_choices(param)
    if choices is not None:
        return f"[{'|'.join(choices)}]"
    annotation = param.type_descriptor.annotation
    if getattr(annotation, "__origin__", None) is list:
        (annotation,) = annotation.__args__
    name = TYPE_NAMES[annotation]
    return f"{name} RANGE" if param.min is not None or param.max is not None else name


def visible_params(command: Any, ctx: typer.Context) -> list[Any]:
    return [p for p in command.get_params(ctx) if not getattr(p, "hidden", False)]


def context_of(path: list[str], command: Any) -> typer.Context:
    return typer.Context(command, info_name=path[-1] if path else "qcode")


def running_text(line: str) -> str:
    return " ".join(line.replace("│", " ").split())


@pytest.mark.parametrize("columns", [80, 120])
def test_every_commands_help_shows_its_usage_and_types_as_click_names_them(columns: int) -> None:
    seen = 0
    for path, command in commands():
        answer = qcode(*path, "--help", env={"COLUMNS": str(columns)})
        assert answer.exit_code == 0, answer.output
        text = answer.stdout
        assert re.search(rf"Usage: \S+ {re.escape(usage(path, command))} *\n", text), f"qcode {' '.join(path)}:\n{text}"
        # typer 0.29's own way: `{paths}...`, `<list[Path]>`, `<int range>`, `<bool>` on --help
        assert not re.search(r"\{\w+\}|<(bool|str|int|float|path|list)\b|list\[", text), text
        for param in visible_params(command, context_of(path, command)):
            expected = shown_type(param)
            if param.param_type_name == "argument":
                name = (param.metavar or param.name) + ("..." if param.metavar is None and param.nargs != 1 else "")
            else:
                name = param.opts[0]
            row = re.search(rf"^│\s+(?:\*\s+)?{re.escape(name)}(?:\s+--no-[\w-]+)?\s+(\S+)", text, re.MULTILINE)
            assert row is not None, f"qcode {' '.join(path)}: no row for {name}:\n{text}"
            if expected is None:  # a flag: its help follows its name, with no type between
                first_word = (param.help or "").split()[0]
                assert row.group(1) == first_word, f"qcode {' '.join(path)} {name}: {row.group(0)}"
            else:
                assert row.group(1) == expected.split()[0], f"qcode {' '.join(path)} {name}: {row.group(0)}"
                line = text[row.start() : text.index("\n", row.start())]
                assert expected in line, f"qcode {' '.join(path)} {name}: {line}"
            seen += 1
    assert seen > 150  # every command's options, not a few


def wraps_greedily(lines: list[str], start: int, end: int) -> str | None:
    """The first line of a wrapped block that ends before it had to: the next line's first word would
    have fitted on it. `start` and `end` bound the columns the text may take."""
    for line, following in zip(lines, lines[1:]):
        text, after = line[start:end].rstrip(), following[start:end].strip()
        if text and after and len(text) + 1 + len(after.split()[0]) <= end - start:
            return f"{line}\n{following}"
    return None


@pytest.mark.parametrize("columns", [80, 120])
def test_help_text_breaks_only_where_the_terminal_ends(columns: int) -> None:
    for path, command in commands():
        text = qcode(*path, "--help", env={"COLUMNS": str(columns)}).stdout
        lines = text.splitlines()
        # the command's help, between the usage line and the first panel, one paragraph at a time
        body = lines[3 : next(i for i, line in enumerate(lines) if line.startswith("╭"))]
        paragraph: list[str] = []
        for line in [*body, ""]:
            if line.strip():
                paragraph.append(line)
                continue
            early = wraps_greedily(paragraph, 1, columns - 1)
            assert early is None, f"qcode {' '.join(path)} --help breaks a line early:\n{early}"
            paragraph = []
        # a group's commands, each described in a cell of the Commands panel
        if hasattr(command, "list_commands"):
            panel = lines[lines.index(next(line for line in lines if "Commands" in line and line.startswith("╭"))) :]
            rows = [line for line in panel[1:] if line.startswith("│")]
            start = re.match(r"│ \S+\s+", rows[0]).end()  # type: ignore[union-attr]
            cell: list[str] = []
            for row in [*rows, "│ end"]:
                if row[1:start].strip() and cell:  # a new command: the last one's cell is whole
                    early = wraps_greedily(cell, start, columns - 2)
                    assert early is None, f"qcode {' '.join(path)} --help breaks a description early:\n{early}"
                    cell = []
                cell.append(row)


def test_help_text_is_rewrapped_as_paragraphs_not_with_the_sources_line_breaks() -> None:
    """On a terminal wide enough, every paragraph of every help text is one line."""
    for path, command in commands():
        text = qcode(*path, "--help", env={"COLUMNS": "1000"}).stdout
        lines = [running_text(line) for line in text.splitlines()]
        helps = inspect.cleandoc(command.help or "").split("\n\n")
        for param in visible_params(command, context_of(path, command)):
            helps.append(param.help or "")
        if hasattr(command, "list_commands"):
            helps += [inspect.cleandoc(sub.help or "").split("\n\n")[0] for sub in command.commands.values()]
        for help_text in helps:
            paragraph = " ".join(help_text.split())
            assert any(paragraph in line for line in lines), f"qcode {' '.join(path)} --help: {paragraph!r}:\n{text}"


def choice_parameters() -> list[tuple[list[str], Any, list[str]]]:
    """Every parameter of every command that takes one of a set of values: a choice its type
    declares, the coder option, and any other whose choices qcode reads when it parses."""
    found = []
    for path, command in commands():
        if hasattr(command, "list_commands"):
            continue
        for param in command.params:
            if "--coder" in getattr(param, "opts", []):
                choices: list[str] | None = sorted(coders())
            else:
                choices = declared_choices(param) or choices_of(param)
            if choices is not None:
                found.append((path, param, choices))
    return found


def param_command(path: list[str]) -> Any:
    return next(command for found, command in commands() if found == path)


def test_a_value_outside_its_choices_exits_2_with_one_line_naming_the_option(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    env = {"QCODE_DB": str(store)}
    found = choice_parameters()
    named = {(" ".join(path), param.opts[0]) for path, param, _ in found}
    for expected in [
        ("run", "--coder"),
        ("schedule", "--coder"),
        ("run", "--unit"),
        ("train", "--unit"),
        ("run", "--reasoning"),
        ("codebook export", "--format"),
    ]:
        assert expected in named, f"{expected} is not found as a choice: {sorted(named)}"
    for path, param, choices in found:
        given = [param.opts[0], "zzz-none"] if param.param_type_name == "option" else ["zzz-none"]
        what = f"qcode {' '.join(path)} {' '.join(given)}"
        answer = qcode(*path, *given, env=env)
        assert answer.exit_code == 2, f"{what}: {answer.exit_code}\n{answer.output}"
        lines = answer.stderr.strip().splitlines()
        assert len(lines) == 1, f"{what}:\n{answer.stderr}"
        assert f"{given[0] if len(given) == 2 else param.name.upper()} 'zzz-none'" in lines[0], lines[0]
        assert all(choice in lines[0] for choice in choices), lines[0]
        assert answer.stdout == ""
        if any("--json" in getattr(p, "opts", []) for p in param_command(path).params):
            as_json = qcode(*path, *given, "--json", env=env)
            assert as_json.exit_code == 2 and "'zzz-none' is not one of" in json.loads(as_json.stdout)["error"]
    assert not store.exists() and list(tmp_path.iterdir()) == []  # no store opened, no file written


def test_a_coder_is_checked_against_the_coders_registered_when_the_command_line_is_parsed(
    tmp_path: Path, small_codebook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline.coders, "_CODERS", dict(pipeline.coders._CODERS))  # gone after the test
    typo = qcode("run", "--coder", "opneai")
    assert typo.exit_code == 2
    assert "error: --coder 'opneai' is not one of " in typo.stderr and "did you mean 'openai'?" in typo.stderr

    # a coder registered after qcode's command line was imported is one of the choices
    scripted_coder("transcriber", proposes="first-code")
    assert "did you mean 'transcriber'?" in qcode("run", "--coder", "transcribr").stderr
    folder = write(tmp_path / "in" / "a.txt", "Ana: We got a grant.\nBen: The coach helped.\n").parent
    ran = qcode("run", folder, "--codebook", small_codebook, "--coder", "transcriber", "--dry-run", "--json")
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout)["coder"] == "transcriber"
