"""PDF documents with a text layer: district plans, policies, reports. Each paragraph is a turn with
no speaker, and every turn records the pages it lies on.

pypdf's layout mode keeps the blank line a paragraph gap leaves on the page, which is how paragraphs
are found. The lines of a paragraph are joined by a space (a line break inside a paragraph is the
page's layout, not the author's; a line that ends in a hyphen joins the next without one), so a
sentence reads, and is quoted, whole. Pages are joined by a blank line, so a paragraph that runs
over a page break is two paragraphs. A PDF of scanned pages has no
text to read: it is refused, with what to do, as are encrypted and damaged files.
"""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from pipeline.errors import IngestError
from pipeline.files import read_bytes
from pipeline.ingest.text import new_transcript
from pipeline.transcript import Transcript, paragraphs

_SPACES = re.compile(r"[ \t\u00a0]{2,}")


def read_pdf(path: Path, name: str, metadata: dict[str, str]) -> Transcript:
    # slow to import, and only a run that reads a PDF needs it
    import pypdf
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    # pypdf logs what it repairs on its own ("EOF marker not found"): the run says what matters, once
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    data = read_bytes(path)
    if not data:
        raise IngestError(path, "empty file")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError(path, "the PDF is encrypted with a password: save an unencrypted copy first")
        pages = [_page_text(page) for page in reader.pages]
    except IngestError:
        raise
    except FileNotDecryptedError:
        raise IngestError(path, "the PDF is encrypted with a password: save an unencrypted copy first") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise IngestError(path, f"not a readable PDF (damaged, or not a PDF): {exc}") from None
    except Exception as exc:  # pypdf's errors on broken files come under many names
        raise IngestError(path, f"not a readable PDF: {type(exc).__name__}: {exc}") from None
    if not pages:
        raise IngestError(path, "the PDF has no pages")
    if not any(any(ch.isalnum() for ch in page) for page in pages):
        raise IngestError(path, "no text: scanned pages need OCR first (e.g. ocrmypdf), then read the result")

    text, starts = "", []
    for page in pages:
        if text:
            text += "\n\n"
        starts.append(len(text))
        text += page
    blank = [str(n) for n, page in enumerate(pages, 1) if not page.strip()]
    notes = []
    if blank:
        notes.append(f"no text on page(s) {', '.join(blank)}: scanned pages need OCR first")
    return new_transcript(path, name, "pdf", "utf-8", text, paragraphs(text, starts), metadata, notes=notes)


def _page_text(page: object) -> str:
    """A page's text: a line per paragraph, paragraphs apart by a blank line, runs of spaces made one."""
    raw = page.extract_text(extraction_mode="layout")  # type: ignore[attr-defined]
    lines = [_SPACES.sub(" ", line).strip() for line in raw.replace("\r", "\n").split("\n")]
    paragraphs: list[str] = []
    current = ""
    for line in [*lines, ""]:
        if not line:
            if current:
                paragraphs.append(current)
            current = ""
        elif current and re.search(r"\w-$", current):
            current += line
        else:
            current = f"{current} {line}" if current else line
    return "\n\n".join(paragraphs)
