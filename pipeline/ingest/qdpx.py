"""The text sources of a REFI-QDA project (.qdpx) as transcripts, read as `qcode import` reads them."""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import ExchangeError, IngestError
from pipeline.exchange.projects import read_project
from pipeline.transcript import Transcript


def read_project_sources(path: Path, metadata: dict[str, str]) -> list[Transcript]:
    """A project's text sources, read as `qcode import` reads them (the same transcripts, the same ids)."""
    try:
        project = read_project(path)
    except ExchangeError as exc:
        raise IngestError(path, str(exc).removeprefix(f"{path}: ")) from None
    if not project.transcripts:
        raise IngestError(path, "no text sources to code in this project")
    # a manifest beside the project adds to what its cases say, and gives a source type over one inferred
    return [
        t.model_copy(update={"metadata": {**metadata, **t.given_metadata()}, "source_type_inferred": False})
        for t in project.transcripts
    ]
