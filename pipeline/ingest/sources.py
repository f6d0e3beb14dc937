"""Which files a run reads, and which reader reads each of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import IngestError

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
    files skipped); a file named directly must have a supported suffix.
    """
    sources: list[Source] = []
    errors: list[IngestError] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in _files_in(path) if p.suffix.lower() in SUFFIXES and p.name != MANIFEST)
            for p in found:
                if p.resolve() not in seen:
                    seen.add(p.resolve())
                    sources.append(Source(p, path))
        elif path.is_file():
            if path.suffix.lower() not in SUFFIXES:
                errors.append(
                    IngestError(
                        path, f"unsupported file type '{path.suffix}' (supported: {', '.join(sorted(SUFFIXES))})"
                    )
                )
            elif path.resolve() not in seen:
                seen.add(path.resolve())
                sources.append(Source(path, path.parent))
        else:
            errors.append(IngestError(path, "no such file or folder"))
    return sources, errors


def _files_in(folder: Path) -> list[Path]:
    """The files under a folder a person put there: not hidden ones, nor the lock files Word leaves
    beside an open document (`~$name.docx`)."""
    return [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not p.name.startswith("~$")
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]


def not_read(paths: list[str | Path]) -> list[tuple[str, str]]:
    """(file, why) for the files in the folders given that a run does not read: a .doc or .rtf
    left among the transcripts is said, not passed over in silence."""
    notes = []
    for raw in paths:
        if Path(raw).is_dir():
            for p in sorted(_files_in(Path(raw))):
                if p.suffix.lower() not in SUFFIXES:
                    kind = f"'{p.suffix}' files" if p.suffix else "files without a suffix"
                    notes.append(
                        (str(p), f"not read: {kind} are not transcripts qcode reads (save it as .docx or .txt)")
                    )
    return notes
