"""Plain text and markdown transcripts: speaker turns, and case metadata in YAML front matter.

`new_transcript` is how every reader makes a Transcript, so ids and encoding notes are alike.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pipeline.errors import IngestError
from pipeline.files import load_yaml
from pipeline.transcript import Transcript, Turn, parse_turns, transcript_id


def _front_matter(text: str, path: Path) -> tuple[dict[str, str], str]:
    if not text.startswith("---\n"):
        return {}, text
    m = re.search(r"^(?:---|\.\.\.)[ \t]*$", text[4:], flags=re.M)
    if not m:
        raise IngestError(path, "front matter opened with '---' is never closed")
    try:
        data = load_yaml(text[4 : 4 + m.start()]) or {}
    except yaml.YAMLError as exc:
        # one line, as every error is: the problem and where (PyYAML says it over several)
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""  # counted from the file's first line
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise IngestError(path, f"front matter is not valid YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise IngestError(path, "front matter must be a YAML mapping of metadata fields")
    body = text[4 + m.end() :].lstrip("\n")
    return {str(k): _metadata_value(v) for k, v in data.items() if v is not None}, body


def _metadata_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return str(value)


def new_transcript(
    path: Path,
    name: str,
    fmt: str,
    encoding: str,
    text: str,
    turns: list[Turn],
    metadata: dict[str, str],
    key: str = "",
    notes: list[str] | None = None,
) -> Transcript:
    if not text.strip() or not turns:
        raise IngestError(path, "no text to code")
    notes = list(notes or [])
    if encoding not in ("utf-8", "utf-8-sig", "ascii"):
        notes.append(f"decoded from {encoding}")
    return Transcript(
        id=transcript_id(name, text, key),
        source_path=str(path),
        source_name=name,
        format=fmt,
        encoding=encoding,
        text=text,
        turns=turns,
        metadata=metadata,
        notes=notes,
        response_id=key or None,
    )


def read_plain_text(path: Path, name: str, text: str, encoding: str, metadata: dict[str, str]) -> Transcript:
    front, body = _front_matter(text, path)
    fmt = "markdown" if path.suffix.lower() in (".md", ".markdown") else "text"
    return new_transcript(path, name, fmt, encoding, body, parse_turns(body), {**metadata, **front})
