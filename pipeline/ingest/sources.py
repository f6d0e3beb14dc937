"""Which files a run reads, and which reader reads each of them."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import IngestError
from pipeline.files import not_regular

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
SUFFIXES = TEXT_SUFFIXES | {".docx", ".vtt", ".srt", ".csv", ".qdpx", ".pdf"}
MANIFEST = "manifest.csv"


@dataclass(frozen=True)
class CsvOptions:
    """Which columns of a CSV of responses hold each response and its id (detected when None)."""

    id_column: str | None = None
    text_column: str | None = None


@dataclass(frozen=True)
class Source:
    """A file to ingest and the folder its manifest lookup stops at."""

    path: Path
    root: Path


def discover(paths: list[str | Path]) -> tuple[list[Source], list[IngestError]]:
    """Files to ingest under the given paths, in a stable order.

    Folders are searched recursively for supported files (manifests and hidden
    files skipped); a file named directly must have a supported suffix, and be a regular file.
    """
    sources: list[Source] = []
    errors: list[IngestError] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        try:
            mode = path.stat().st_mode  # looked at, never opened: opening a named pipe waits for a writer
        except OSError:
            errors.append(IngestError(path, "no such file or folder"))
            continue
        kind = not_regular(mode)
        if stat.S_ISDIR(mode):
            found = sorted(
                p
                for p, other in _entries_in(path)
                if other is None and p.suffix.lower() in SUFFIXES and p.name != MANIFEST
            )
            for p in found:
                if p.resolve() not in seen:
                    seen.add(p.resolve())
                    sources.append(Source(p, path))
        elif kind is not None:
            errors.append(IngestError(path, f"not a regular file: {kind}; qcode reads only files"))
        elif path.suffix.lower() not in SUFFIXES:
            errors.append(
                IngestError(path, f"unsupported file type '{path.suffix}' (supported: {', '.join(sorted(SUFFIXES))})")
            )
        elif path.resolve() not in seen:
            seen.add(path.resolve())
            sources.append(Source(path, path.parent))
    return sources, errors


def _entries_in(folder: Path) -> list[tuple[Path, str | None]]:
    """The files under a folder a person put there, each with what it is when it is not a regular
    file (a named pipe, a device, a link to nothing): not hidden ones, nor the lock files Word leaves
    beside an open document (`~$name.docx`), nor folders."""
    found: list[tuple[Path, str | None]] = []
    for p in folder.rglob("*"):
        if p.name.startswith("~$") or any(part.startswith(".") for part in p.relative_to(folder).parts):
            continue
        try:
            mode = p.stat().st_mode
        except OSError:
            found.append((p, "a link to nothing"))
            continue
        if not stat.S_ISDIR(mode):
            found.append((p, not_regular(mode)))
    return found


def not_read(paths: list[str | Path]) -> list[tuple[str, str]]:
    """(file, why) for the files in the folders given that a run does not read: a .doc or .rtf
    left among the transcripts is said, not passed over in silence, and so is a named pipe or a
    device, which is never opened."""
    notes = []
    for raw in paths:
        if Path(raw).is_dir():
            for p, other in sorted(_entries_in(Path(raw))):
                if other is not None:
                    notes.append((str(p), f"not read: not a regular file: {other}"))
                elif p.suffix.lower() not in SUFFIXES:
                    kind = f"'{p.suffix}' files" if p.suffix else "files without a suffix"
                    notes.append(
                        (str(p), f"not read: {kind} are not transcripts qcode reads (save it as .docx or .txt)")
                    )
    return notes
