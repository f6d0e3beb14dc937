"""Reading and writing files, once for the whole package.

Reading: `read_bytes` and `read_text` say the same "no such file" and "cannot read" for every
file qcode reads, and `read_text` detects the encoding (a byte-order mark, UTF-8, Windows-1252,
or the best guess of charset-normalizer) and normalises line endings to "\\n", so offsets are the
same on every platform.

Writing: `written_aside` makes a file appear whole or not at all, and refuses to replace an existing
file unless asked to (`force`, the command line's --force).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import charset_normalizer

from pipeline.errors import FileError


def read_bytes(path: str | Path, *, limit: int | None = None) -> bytes:
    """A file's bytes; FileError when it is missing, a folder, unreadable or over `limit` bytes."""
    path = Path(path)
    try:
        if limit is not None and path.stat().st_size > limit:
            raise FileError(f"{path.stat().st_size:,} bytes; qcode reads files of up to {limit:,} bytes", file=path)
        return path.read_bytes()
    except FileNotFoundError:
        raise FileError("no such file", file=path) from None
    except IsADirectoryError:
        raise FileError("a folder, not a file", file=path) from None
    except OSError as exc:
        raise FileError(f"cannot read: {exc.strerror or exc}", file=path) from None


def read_text(path: str | Path) -> tuple[str, str]:
    """A text file's text and the encoding it was decoded from."""
    return decode(read_bytes(path), path)


_BOMS = [
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
]
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def decode(data: bytes, path: str | Path) -> tuple[str, str]:
    """Decode a text file, detecting its encoding; reject binary and empty files.

    Line endings are normalised to '\\n' so offsets are the same on every platform.
    """
    if not data.strip():
        raise FileError("empty file", file=path)
    text: str | None = None
    encoding = ""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                text, encoding = data.decode(name), name
            except UnicodeDecodeError as exc:
                raise FileError(
                    f"starts with a {name} byte-order mark but does not decode: {exc.reason}", file=path
                ) from exc
            break
    if text is None:
        if b"\x00" in data:
            raise FileError("binary file, not text (contains NUL bytes)", file=path)
        try:
            text, encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = _detect(data, path)
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    # PostgreSQL cannot store U+0000 in text; U+FFFD keeps every offset where it was
    text = text.replace("\x00", "\ufffd")
    controls = len(_CONTROL.findall(text))
    if controls > max(2, len(text) // 200):
        raise FileError("binary file, not text (too many control characters)", file=path)
    if not text.strip():
        raise FileError("empty file", file=path)
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
        raise FileError("binary file, not text (no text encoding fits)", file=path)
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


def refuse_to_replace(path: str | Path, force: bool = False) -> None:
    """FileError when `path` exists and `force` is not given: qcode replaces no file unasked."""
    if not force and Path(path).exists():
        raise FileError("exists; add --force to replace it", file=path)


@contextmanager
def written_aside(path: str | Path, *, force: bool = False) -> Iterator[Path]:
    """A file appears whole or not at all: the caller writes the path yielded, beside `path`, and it
    is moved into place when the block ends without an error (and removed when it does not). An
    existing file is replaced only with `force`."""
    path = Path(path)
    refuse_to_replace(path, force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileError(f"cannot write: {exc.strerror or exc}", file=path) from None
    temporary = path.with_name(path.name + ".partial")
    try:
        yield temporary
        temporary.replace(path)
    except OSError as exc:
        raise FileError(f"cannot write: {exc.strerror or exc}", file=path) from None
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: str | Path, text: str, *, force: bool = False) -> None:
    with written_aside(path, force=force) as temporary:
        temporary.write_text(text, encoding="utf-8", newline="")


def write_bytes(path: str | Path, data: bytes, *, force: bool = False) -> None:
    with written_aside(path, force=force) as temporary:
        temporary.write_bytes(data)


def formula_safe(value: Any) -> Any:
    """Reviewers' free text as a spreadsheet shows it, never as a formula it runs (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
