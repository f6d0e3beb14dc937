"""Ingest: files on disk become Transcripts with speaker turns and case metadata.

Supported: .txt/.md (speaker turns, optional YAML front matter), .docx,
.vtt/.srt captions, .csv of open-ended responses (one transcript per row), .pdf
documents with a text layer (a turn per paragraph, with its pages), and the text
sources of a REFI-QDA project (.qdpx, one transcript per source). Text with no
speaker labels (observation notes, memos) is read as paragraphs.
Case metadata comes from a `manifest.csv` beside the files (or in a folder
above them) and from front matter. Two of its fields are not case attributes but
say whose words are coded in that file: `speakers` and `skip_speakers` (names,
comma-separated). Every transcript has a `source_type` (interview, focus group,
questionnaire, observation, document, or any value the team writes): as given,
otherwise inferred from the file (`pipeline.transcript.settle_case`). Any problem with a file
raises IngestError naming the file; the caller records it and goes on with the
other files.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.errors import FileError, IngestError
from pipeline.files import read_text, regular_file
from pipeline.ingest.captions import read_captions
from pipeline.ingest.manifest import manifest_metadata, manifest_notes, nearest_manifest, read_manifest
from pipeline.ingest.pdf import read_pdf
from pipeline.ingest.qdpx import read_project_sources
from pipeline.ingest.responses import read_responses
from pipeline.ingest.sources import MANIFEST, SUFFIXES, TEXT_SUFFIXES, CsvOptions, Source, discover, not_read
from pipeline.ingest.text import read_plain_text
from pipeline.ingest.word import read_word
from pipeline.transcript import Transcript, settle_case

__all__ = [
    "MANIFEST",
    "SUFFIXES",
    "CsvOptions",
    "IngestError",
    "Source",
    "discover",
    "manifest_metadata",
    "manifest_notes",
    "not_read",
    "nearest_manifest",
    "read_manifest",
    "read_source",
]


def read_source(source: Source, csv: CsvOptions | None = None) -> list[Transcript]:
    """Read one file into transcripts (several for a CSV of responses, or a project's sources).

    A file over the size limit (`pipeline.files.file_size_limit`, --max-file-mb) or that is not a
    regular file is refused before it is opened; one that still exhausts memory fails alone, by name."""
    try:
        return [settle_case(t) for t in _read(source, csv)]
    except MemoryError:
        # the reader's objects are gone with its frames: the run goes on with the other files
        raise IngestError(source.path, f"ran out of memory reading it ({_size(source.path)} on disk)") from None


def _size(path: Path) -> str:
    try:
        return f"{path.stat().st_size:,} bytes"
    except OSError:
        return "unknown size"


def _read(source: Source, csv: CsvOptions | None) -> list[Transcript]:
    path = source.path
    # the name relative to the folder given: files of one name in two folders stay apart
    name = source.path.resolve().relative_to(source.root.resolve()).as_posix()
    suffix = path.suffix.lower()
    try:
        regular_file(path)  # every kind, .qdpx and .docx as well as text, is looked at before it is read
        metadata = manifest_metadata(source)
        if suffix == ".docx":
            return [read_word(path, name, metadata)]
        if suffix == ".qdpx":
            return read_project_sources(path, metadata)
        if suffix == ".pdf":
            return [read_pdf(path, name, metadata)]
        text, encoding = read_text(path)
        if suffix in TEXT_SUFFIXES:
            return [read_plain_text(path, name, text, encoding, metadata)]
        if suffix in (".vtt", ".srt"):
            return [read_captions(path, name, text, encoding, metadata, suffix[1:])]
        if suffix == ".csv":
            return read_responses(path, name, text, encoding, metadata, csv or CsvOptions())
    except FileError as exc:
        raise IngestError(exc.file or path, exc.message) from None
    raise IngestError(path, f"unsupported file type '{path.suffix}'")
