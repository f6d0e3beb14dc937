"""Ingest: files on disk become Transcripts with speaker turns and case metadata.

Supported: .txt/.md (speaker turns, optional YAML front matter), .docx,
.vtt/.srt captions, .csv of open-ended responses (one transcript per row), and
the text sources of a REFI-QDA project (.qdpx, one transcript per source).
Case metadata comes from a `manifest.csv` beside the files (or in a folder
above them) and from front matter. Any problem with a file raises IngestError
naming the file; the caller records it and goes on with the other files.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer
import pandas as pd
import yaml

from pipeline.transcript import Transcript, Turn, transcript_id

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
SUFFIXES = TEXT_SUFFIXES | {".docx", ".vtt", ".srt", ".csv", ".qdpx"}
MANIFEST = "manifest.csv"


class IngestError(Exception):
    def __init__(self, path: str | Path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class CsvOptions:
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
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix.lower() in SUFFIXES
                and p.name != MANIFEST
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
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


def read_source(source: Source, csv: CsvOptions = CsvOptions()) -> list[Transcript]:
    """Read one file into transcripts (several for a CSV of responses)."""
    path = source.path
    # the name relative to the folder given: files of one name in two folders stay apart
    name = source.path.resolve().relative_to(source.root.resolve()).as_posix()
    metadata = manifest_metadata(source)
    suffix = path.suffix.lower()
    if suffix == ".docx":
        return [_read_docx(path, name, metadata)]
    if suffix == ".qdpx":
        return _read_project(path, metadata)
    data = _read_bytes(path)
    text, encoding = decode(data, path)
    if suffix in TEXT_SUFFIXES:
        return [_read_text(path, name, text, encoding, metadata)]
    if suffix in (".vtt", ".srt"):
        return [_read_captions(path, name, text, encoding, metadata, suffix[1:])]
    if suffix == ".csv":
        return _read_csv(path, name, text, encoding, metadata, csv)
    raise IngestError(path, f"unsupported file type '{path.suffix}'")


# --- decoding ---------------------------------------------------------------

_BOMS = [
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise IngestError(path, f"cannot read: {exc.strerror or exc}") from exc


def decode(data: bytes, path: str | Path) -> tuple[str, str]:
    """Decode a text file, detecting its encoding; reject binary and empty files.

    Line endings are normalised to '\\n' so offsets are the same on every platform.
    """
    if not data.strip():
        raise IngestError(path, "empty file")
    text = encoding = None
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text, encoding = data.decode(name), name
            except UnicodeDecodeError as exc:
                raise IngestError(
                    path, f"starts with a {name} byte-order mark but does not decode: {exc.reason}"
                ) from exc
            break
    if text is None:
        if b"\x00" in data:
            raise IngestError(path, "binary file, not text (contains NUL bytes)")
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = _detect(data, path)
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    # PostgreSQL cannot store U+0000 in text; U+FFFD keeps every offset where it was
    text = text.replace("\x00", "\ufffd")
    controls = len(_CONTROL.findall(text))
    if controls > max(2, len(text) // 200):
        raise IngestError(path, "binary file, not text (too many control characters)")
    if not text.strip():
        raise IngestError(path, "empty file")
    return text, encoding


_CP1252_PUNCTUATION = set("‘’‚“”„–—…•€™†‡‰‹›ˆ˜")


def _detect(data: bytes, path: str | Path) -> tuple[str, str]:
    # Windows-1252 is by far the commonest non-UTF-8 encoding of English and
    # Spanish transcripts, and statistical detection misnames it on short files.
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = None
    if text is not None and _plausible_western(text):
        return text, "cp1252"
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise IngestError(path, "binary file, not text (no text encoding fits)")
    return str(best), best.encoding


def _plausible_western(text: str) -> bool:
    """Non-ASCII characters are accented Latin letters or typographic punctuation,
    and a minority of the letters (text in another script decodes to a majority)."""
    letters = accented = 0
    for ch in text:
        if ch.isascii():
            letters += ch.isalpha()
        elif "\u00c0" <= ch <= "\u00ff" and ch.isalpha():
            letters += 1
            accented += 1
        elif not ("\u00a0" <= ch <= "\u00bf" or ch in _CP1252_PUNCTUATION):
            return False
    return letters > 0 and accented / letters < 0.3


# --- speaker turns in plain text ---------------------------------------------

_NAME = r"[^\W\d_][\w.'’()#&\- ]{0,39}?"
_STAMP = r"\[(?P<ts>\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?)\]\s*"
_BOLD = re.compile(rf"^(?:{_STAMP})?\*\*(?P<name>{_NAME})\s*(?::\*\*|\*\*\s*:)[ \t]*")
_STAMPED = re.compile(rf"^{_STAMP}(?P<name>{_NAME})\s*:[ \t]*")
_PLAIN = re.compile(rf"^(?P<name>{_NAME})[ \t]*:(?:[ \t]+|$)")
_HEADING = re.compile(r"^(#{1,6}\s|---+\s*$|\*\*\*+\s*$)")


def _label(line: str) -> tuple[str, str | None, int, bool] | None:
    """(speaker, timestamp, label length, explicit) if the line opens a turn."""
    for pattern, explicit in ((_BOLD, True), (_STAMPED, True), (_PLAIN, False)):
        m = pattern.match(line)
        if m:
            name = m.group("name").strip()
            if len(name.split()) > 5:
                return None
            return name, m.groupdict().get("ts"), m.end(), explicit
    return None


# Capitalised words that open notes, not speakers' turns.
_NOT_SPEAKERS = {
    "note",
    "notes",
    "nb",
    "ps",
    "p.s",
    "update",
    "edit",
    "example",
    "summary",
    "warning",
    "important",
    "source",
    "tip",
    "caution",
    "disclaimer",
    "subject",
    "date",
    "time",
    "location",
    "title",
    "transcript",
    "duration",
    "recorded",
    "attendees",
    "present",
    "keywords",
    "tags",
}
_ID_LABEL = re.compile(r"^[A-Za-z]{1,3}[-_ ]?\d{1,4}$")  # p1, R12, TL-2


def _looks_like_name(label: str) -> bool:
    words = label.split()
    return 0 < len(words) <= 4 and all(w[0].isupper() or w[0].isdigit() for w in words)


def _is_speaker(label: str, count: int) -> bool:
    if label.lower().rstrip(".") in _NOT_SPEAKERS:
        return False
    return count >= 2 or _looks_like_name(label) or bool(_ID_LABEL.match(label))


def parse_turns(text: str) -> list[Turn]:
    """Split text into speaker turns.

    A line that opens with a label (`Name:`, `**Name:**`, `[00:01:02] Name:`)
    starts a turn; other lines continue the current one. A plain `Name:` label
    counts when the same name labels two or more lines, looks like a name
    (every word capitalised) or an id (P1, r12), and is not a word that opens
    a note ("Note:", "Date:"), so "In short: ..." is not taken for a speaker.
    Text before the first label, and markdown headings, become turns with no speaker.
    """
    lines: list[tuple[int, str]] = []
    pos = 0
    for line in text.split("\n"):
        lines.append((pos, line))
        pos += len(line) + 1

    labels = [_label(line) for _, line in lines]
    plain_counts: dict[str, int] = {}
    for found in labels:
        if found and not found[3]:
            plain_counts[found[0]] = plain_counts.get(found[0], 0) + 1
    accepted = {name for name, n in plain_counts.items() if _is_speaker(name, n)}

    turns: list[Turn] = []
    current: dict | None = None

    def close() -> None:
        if current is not None and current["end"] > current["start"]:
            turns.append(Turn(index=len(turns), **current))

    for (start, line), found in zip(lines, labels):
        if not line.strip():
            continue
        end = start + len(line.rstrip())
        if found and (found[3] or found[0] in accepted):
            close()
            name, stamp, length, _ = found
            text_start = min(start + length, end)
            current = dict(speaker=name, start=start, end=end, text_start=text_start, timestamp=stamp)
        elif _HEADING.match(line) or current is None:
            close()
            lead = len(line) - len(line.lstrip())
            current = dict(speaker=None, start=start + lead, end=end, text_start=start + lead, timestamp=None)
            if _HEADING.match(line):
                close()
                current = None
        else:
            current["end"] = end
    close()
    return turns


def _front_matter(text: str, path: Path) -> tuple[dict[str, str], str]:
    if not text.startswith("---\n"):
        return {}, text
    m = re.search(r"^(?:---|\.\.\.)[ \t]*$", text[4:], flags=re.M)
    if not m:
        raise IngestError(path, "front matter opened with '---' is never closed")
    try:
        data = yaml.safe_load(text[4 : 4 + m.start()]) or {}
    except yaml.YAMLError as exc:
        raise IngestError(path, f"front matter is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise IngestError(path, "front matter must be a YAML mapping of metadata fields")
    body = text[4 + m.end() :].lstrip("\n")
    return {str(k): _metadata_value(v) for k, v in data.items() if v is not None}, body


def _metadata_value(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return str(value)


def _transcript(
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
    )


def _read_text(path: Path, name: str, text: str, encoding: str, metadata: dict[str, str]) -> Transcript:
    front, body = _front_matter(text, path)
    fmt = "markdown" if path.suffix.lower() in (".md", ".markdown") else "text"
    return _transcript(path, name, fmt, encoding, body, parse_turns(body), {**metadata, **front})


def _read_project(path: Path, metadata: dict[str, str]) -> list[Transcript]:
    """A project's text sources, read as `qcode import` reads them (the same transcripts, the same ids)."""
    from pipeline.exchange.codebooks import ExchangeError
    from pipeline.exchange.projects import read_project

    try:
        project = read_project(path)
    except ExchangeError as exc:
        raise IngestError(path, str(exc).removeprefix(f"{path}: ")) from None
    if not project.transcripts:
        raise IngestError(path, "no text sources to code in this project")
    # a manifest beside the project adds to what its cases say
    return [t.model_copy(update={"metadata": {**metadata, **t.metadata}}) for t in project.transcripts]


def _read_docx(path: Path, name: str, metadata: dict[str, str]) -> Transcript:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    _read_bytes(path)  # a clear error for unreadable files before python-docx's own
    if path.stat().st_size == 0:
        raise IngestError(path, "empty file")
    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError(path, f"not a readable .docx file (corrupt or not a Word document): {exc}") from exc
    except Exception as exc:  # lxml and zip errors surface under many names
        raise IngestError(path, f"not a readable .docx file: {type(exc).__name__}: {exc}") from exc
    text = "\n".join(_docx_lines(document))
    return _transcript(path, name, "docx", "utf-8", text, parse_turns(text), metadata)


def _docx_lines(document: object) -> list[str]:
    """Paragraphs and table rows in document order; a two-cell row reads as `speaker: words`."""
    from docx.table import Table

    lines = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = []
                for cell in row.cells:
                    value = " ".join(cell.text.split())
                    if value and (not cells or cells[-1] != value):  # merged cells repeat
                        cells.append(value)
                if len(cells) == 2 and len(cells[0]) <= 40 and not cells[0].endswith(":"):
                    lines.append(f"{cells[0]}: {cells[1]}")
                elif cells:
                    lines.append(" ".join(cells))
        else:
            lines.append(block.text)
    return lines


# --- captions ------------------------------------------------------------------

_CUE_TIME = re.compile(r"^\s*(?:\d+:)?\d{1,2}:\d{2}[.,]\d{3}\s+-->\s+(?:\d+:)?\d{1,2}:\d{2}[.,]\d{3}(?:\s.*)?$")
_CAPTION_LABEL = re.compile(rf"^-?\s*(?P<name>{_NAME})\s*:\s+")


def _read_captions(path: Path, name: str, text: str, encoding: str, metadata: dict[str, str], fmt: str) -> Transcript:
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    for number, line in enumerate(text.split("\n"), start=1):
        if "-->" in line and not _CUE_TIME.match(line):
            raise IngestError(path, f"line {number}: broken cue timestamp '{line.strip()}'")
    try:
        captions = webvtt.from_buffer(io.StringIO(text), format=fmt, strict=(fmt == "vtt"))
    except (MalformedCaptionError, MalformedFileError) as exc:
        raise IngestError(path, f"not a valid .{fmt} file: {exc}") from exc
    if not len(captions):
        raise IngestError(path, f"no captions found in .{fmt} file")

    merged: list[dict] = []
    for caption in captions:
        body = " ".join(part.strip() for part in caption.text.split("\n") if part.strip())
        speaker = caption.voice.strip() if caption.voice else None
        if speaker is None:
            m = _CAPTION_LABEL.match(body)
            if m:
                speaker, body = m.group("name").strip(), body[m.end() :]
        if not body:
            continue
        if merged and merged[-1]["speaker"] == speaker:
            merged[-1]["words"].append(body)
        else:
            merged.append({"speaker": speaker, "timestamp": caption.start, "words": [body]})

    parts: list[str] = []
    turns: list[Turn] = []
    pos = 0
    for item in merged:
        label = f"{item['speaker']}: " if item["speaker"] else ""
        line = label + " ".join(item["words"])
        turns.append(
            Turn(
                index=len(turns),
                speaker=item["speaker"],
                start=pos,
                end=pos + len(line),
                text_start=pos + len(label),
                timestamp=item["timestamp"],
            )
        )
        parts.append(line)
        pos += len(line) + 1
    return _transcript(path, name, fmt, encoding, "\n".join(parts), turns, metadata)


# --- CSV of open-ended responses ---------------------------------------------

_ID_NAMES = (
    "id",
    "respondent_id",
    "respondent",
    "participant_id",
    "participant",
    "response_id",
    "record_id",
    "case_id",
)
_TEXT_NAMES = ("response", "text", "answer", "comment", "comments", "open_response", "open_ended", "feedback")


def _read_csv(
    path: Path, name: str, text: str, encoding: str, metadata: dict[str, str], options: CsvOptions
) -> list[Transcript]:
    frame = _read_table(path, text, "not a readable CSV")
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if frame.empty:
        raise IngestError(path, "CSV has a header but no rows")
    text_column = _pick_text_column(path, frame, options)
    id_column = _pick_id_column(path, frame, options, text_column)

    transcripts = []
    for row_number, row in enumerate(frame.to_dict(orient="records"), start=2):
        response = str(row[text_column]).strip()
        if not response:
            continue
        key = str(row[id_column]).strip() if id_column else str(row_number - 1)
        row_metadata = {c: str(v) for c, v in row.items() if c not in (text_column, id_column) and str(v).strip()}
        if id_column:
            row_metadata[id_column] = key
        turn = Turn(index=0, speaker=key, start=0, end=len(response), text_start=0)
        transcripts.append(
            _transcript(
                path,
                name,
                "csv",
                encoding,
                response,
                [turn],
                {**metadata, **row_metadata},
                key=key,
                notes=[f"CSV row {row_number}"],
            )
        )
    if not transcripts:
        raise IngestError(path, f"column '{text_column}' has no responses")
    return transcripts


def _read_table(path: Path, text: str, problem: str) -> pd.DataFrame:
    """A CSV with its delimiter (comma, semicolon, tab or bar) detected from the header."""
    header = text.split("\n", 1)[0]
    try:
        delimiter = csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=delimiter)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise IngestError(path, f"{problem}: {exc}") from exc


def _pick_text_column(path: Path, frame: pd.DataFrame, options: CsvOptions) -> str:
    columns = list(frame.columns)
    if options.text_column:
        if options.text_column not in columns:
            raise IngestError(path, f"no column '{options.text_column}' (columns: {', '.join(columns)})")
        return options.text_column
    lowered = {c.lower().strip(): c for c in columns}
    for name in _TEXT_NAMES:
        if name in lowered:
            return lowered[name]
    for c in columns:
        if any(word in c.lower() for word in ("response", "comment", "answer")):
            return c
    best, best_length = None, 0.0
    for c in columns:
        values = [v for v in frame[c] if v.strip()]
        if not values:
            continue
        prose = sum(1 for v in values if len(v.split()) >= 4) / len(values)
        mean = sum(len(v) for v in values) / len(values)
        if prose >= 0.5 and mean >= 30 and mean > best_length:
            best, best_length = c, mean
    if best is None:
        raise IngestError(
            path,
            f"no text column found (columns: {', '.join(columns)}); name one with --text-column",
        )
    return best


def _pick_id_column(path: Path, frame: pd.DataFrame, options: CsvOptions, text_column: str) -> str | None:
    if options.id_column:
        if options.id_column not in frame.columns:
            raise IngestError(path, f"no column '{options.id_column}' (columns: {', '.join(frame.columns)})")
        column = options.id_column
    else:
        lowered = {c.lower().strip(): c for c in frame.columns if c != text_column}
        column = next((lowered[n] for n in _ID_NAMES if n in lowered), None)
        if column is None:
            return None
    values = [v.strip() for v in frame[column]]
    duplicates = sorted({v for v in values if values.count(v) > 1})
    if duplicates:
        raise IngestError(path, f"id column '{column}' repeats values: {', '.join(duplicates[:5])}")
    return column


# --- case metadata ---------------------------------------------------------------

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
    """Metadata for a file from the nearest manifest.csv that lists it, between its folder and the root."""
    for manifest, relative in _manifests(source):
        entries = read_manifest(manifest)
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
    text, _ = decode(_read_bytes(path), path)
    frame = _read_table(path, text, "manifest is not a readable CSV")
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
