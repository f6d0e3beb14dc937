"""Word documents (.docx): paragraphs and table rows read as lines with speaker labels."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from pipeline.errors import FileError, IngestError
from pipeline.files import read_bytes, unpacked
from pipeline.ingest.text import new_transcript
from pipeline.transcript import Transcript, parse_turns


def read_word(path: Path, name: str, metadata: dict[str, str]) -> Transcript:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    data = read_bytes(path)  # a clear error for unreadable files before python-docx's own
    if not data:
        raise IngestError(path, "empty file")
    try:
        # python-docx unpacks every part of the package into memory: a ZIP bomb is refused first
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked(archive, path)
    except FileError as exc:
        raise IngestError(path, exc.message) from None
    except Exception as exc:  # zipfile's errors surface under several names
        raise IngestError(path, f"not a readable .docx file (corrupt or not a Word document): {exc}") from None
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError(path, f"not a readable .docx file (corrupt or not a Word document): {exc}") from exc
    except Exception as exc:  # lxml and zip errors surface under many names
        raise IngestError(path, f"not a readable .docx file: {type(exc).__name__}: {exc}") from exc
    text = "\n".join(_docx_lines(document))
    # each of a Word document's paragraphs is a line: without speakers, each is a turn
    return new_transcript(path, name, "docx", "utf-8", text, parse_turns(text, line_paragraphs=True), metadata)


def _docx_lines(document: Any) -> list[str]:
    """Paragraphs and table rows in document order; a two-cell row reads as `speaker: words`."""
    from docx.table import Table

    lines = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells: list[str] = []
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
