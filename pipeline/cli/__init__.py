"""The `qcode` command: a thin layer over the pipeline's functions.

Each module here holds one group of commands and parses, calls the library and prints; the library
never prints or exits. This package is the only place that imports typer or rich. How every command
answers (results, `--json`, errors and exit statuses) is decided once, in `output.py`.
"""

from __future__ import annotations

import typer

import pipeline  # noqa: F401  (sets the offline and no-telemetry environment first)
from pipeline.cli import codebook, exchange, learn, measure, review, run
from pipeline.cli.output import Commands

app = typer.Typer(
    cls=Commands,
    help="qcode: LLM-assisted qualitative coding of interview transcripts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals hold transcript text
)
app.add_typer(run.app)
app.add_typer(review.app)
app.add_typer(exchange.app)
app.add_typer(measure.app)
app.add_typer(learn.app)
app.add_typer(codebook.app, name="codebook")
app.add_typer(review.reviewers, name="reviewer")

__all__ = ["app"]
