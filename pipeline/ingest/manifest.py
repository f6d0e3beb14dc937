"""Case metadata from `manifest.csv`: a `file` column naming each transcript, then any columns
(district, school, role...). The nearest manifest between a file's folder and the folder given wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pipeline.errors import FileError, IngestError
from pipeline.files import read_text
from pipeline.ingest.responses import read_table
from pipeline.ingest.sources import MANIFEST, Source

_FILE_COLUMNS = ("file", "path", "filename", "transcript", "source")


def _manifests(source: Source) -> Iterator[tuple[Path, str]]:
    """(manifest, this file's name relative to it) from the file's folder up to the root."""
    folder = source.path.parent
    root = source.root.resolve()
    while True:
        manifest = folder / MANIFEST
        if manifest.is_file():
            yield manifest, source.path.resolve().relative_to(folder.resolve()).as_posix()
        if folder.resolve() == root or folder.resolve() == folder.resolve().parent:
            return
        folder = folder.parent


def manifest_metadata(source: Source) -> dict[str, str]:
    """Metadata for a file from the nearest manifest.csv that lists it, between its folder and the
    root. A manifest that cannot be read fails the file, named, rather than code it without its case
    (the next run, the manifest mended, codes it with them)."""
    for manifest, relative in _manifests(source):
        try:
            entries = read_manifest(manifest)
        except IngestError as exc:
            raise IngestError(source.path, f"its manifest {manifest} cannot be read: {exc.message}") from None
        if relative in entries:
            return entries[relative]
    return {}


def nearest_manifest(source: Source) -> Path | None:
    return next((manifest for manifest, _ in _manifests(source)), None)


def manifest_notes(sources: list[Source]) -> list[tuple[str, str]]:
    """Manifest rows that name none of the files read (a typo leaves a file without metadata)."""
    notes: list[tuple[str, str]] = []
    listed: dict[Path, set[str]] = {}
    for source in sources:
        for manifest, relative in _manifests(source):
            listed.setdefault(manifest, set()).add(relative)
    for manifest, names in listed.items():
        try:
            entries = read_manifest(manifest)
        except IngestError:
            continue
        for name in sorted(set(entries) - names):
            notes.append((str(manifest), f"names '{name}', which is not among the files read"))
    return notes


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    try:
        text, _ = read_text(path)
    except FileError as exc:  # empty, binary, unreadable
        raise IngestError(path, exc.message) from None
    frame = read_table(path, text, "manifest is not a readable CSV")
    lowered = {str(c).lower().strip(): str(c) for c in frame.columns}
    key = next((lowered[n] for n in _FILE_COLUMNS if n in lowered), None)
    if key is None:
        raise IngestError(
            path,
            f"manifest needs a 'file' column naming each transcript (columns: {', '.join(map(str, frame.columns))})",
        )
    entries = {}
    for row in frame.to_dict(orient="records"):
        name = str(row[key]).strip().replace("\\", "/")
        if name:
            entries[name] = {str(c): str(v).strip() for c, v in row.items() if c != key and str(v).strip()}
    return entries
