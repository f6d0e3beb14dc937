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
        # a named pipe or a device is a manifest that cannot be read, not one that is not there
        if manifest.exists() and not manifest.is_dir():
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
            rows = manifest_rows(manifest)
        except IngestError:
            continue
        for name in sorted({name for name, _ in rows} - names):
            notes.append((str(manifest), f"names '{name}', which is not among the files read"))
        for name in listed_twice(rows):
            notes.append((str(manifest), f"lists '{name}' twice, with different values: its last row is used"))
    return notes


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    """Each file a manifest lists and its case metadata (a file listed twice: its last row)."""
    return dict(manifest_rows(path))


def manifest_rows(path: Path) -> list[tuple[str, dict[str, str]]]:
    """Each row's file name and its case metadata, in the manifest's order."""
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
    rows = []
    for row in frame.to_dict(orient="records"):
        name = str(row[key]).strip().replace("\\", "/")
        if name:
            rows.append((name, {str(c): str(v).strip() for c, v in row.items() if c != key and str(v).strip()}))
    return rows


def listed_twice(rows: list[tuple[str, dict[str, str]]]) -> list[str]:
    """The files a manifest lists more than once with different metadata (the last row is used)."""
    seen: dict[str, dict[str, str]] = {}
    twice = []
    for name, values in rows:
        if name in seen and seen[name] != values and name not in twice:
            twice.append(name)
        seen[name] = values
    return twice
