"""The `qcode` command: a thin layer over the pipeline's functions.

Each module here holds one group of commands and parses, calls the library and prints; the library
never prints or exits. This package is the only place that imports typer or rich. How every command
answers (results, `--json`, errors and exit statuses) is decided once, in `output.py`.
"""

from __future__ import annotations

import typer

# typer carries its own copy of click: its commands, contexts and parameters are the ones built here
from typer._click.core import Command, Context, Parameter

import pipeline  # noqa: F401  (sets the offline and no-telemetry environment first)
from pipeline.cli import codebook, exchange, learn, measure, review, run, runs
from pipeline.cli.options import conventional
from pipeline.cli.output import Commands


class Qcode(Commands):
    """The `qcode` command group, whose every command reads as click and typer's documentation show
    (`Usage: qcode run [OPTIONS] PATHS...`, TEXT, INTEGER, no type on a flag) and refuses a value
    outside its choices in one line, with exit status 2: each command is made so (`conventional`) as
    it is looked up, which is when it is parsed, shown in help, completed or documented."""

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            conventional(command, ctx)
        return command

    def get_params(self, ctx: Context) -> list[Parameter]:
        conventional(self, ctx)  # typer adds --install-completion and --show-completion after building
        return super().get_params(ctx)


app = typer.Typer(
    cls=Qcode,
    help="qcode: LLM-assisted qualitative coding of interview transcripts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold transcript text
)
app.add_typer(run.app)
app.add_typer(review.app)
app.add_typer(runs.app)
app.add_typer(exchange.app)
app.add_typer(measure.app)
app.add_typer(learn.app)
app.add_typer(codebook.app, name="codebook")
app.add_typer(review.reviewers, name="reviewer")

__all__ = ["app"]
