"""`python -m pipeline.cli`: the `qcode` command, for when its script is not on the PATH."""

from pipeline.cli import app

app(prog_name="qcode")
