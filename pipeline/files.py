"""Reading and writing files, once for the whole package.

Reading: `read_bytes` and `read_text` say the same "no such file" and "cannot read" for every
file qcode reads, and `read_text` detects the encoding (a byte-order mark, UTF-8, Windows-1252,
or the best guess of charset-normalizer) and normalises line endings to "\\n", so offsets are the
same on every platform. A file is looked at (stat) before it is opened: what is not a regular file
(a named pipe, a device, a socket) is refused unopened, and so is a file over the size limit
(`file_size_limit`, the command line's --max-file-mb; 100 MB unless set). `unpacked` checks a ZIP
(a .docx) before anything unpacks it, `read_member` reads one member of a ZIP no further than a
limit, and `load_yaml` reads YAML without aliases.

Writing: `written_aside` makes a file appear whole or not at all, and refuses to replace an existing
file, or a link, unless asked to (`force`, the command line's --force). `csv_writer` and
`csv_dict_writer` write every CSV qcode writes, with no cell a spreadsheet would run as a formula.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

import charset_normalizer
import yaml

from pipeline.errors import FileError

# ---------------------------------------------------------------- reading

DEFAULT_MAX_FILE_MB = 100
MB = 2**20
# A context variable, not a global: each command (and each test) sets its own limit for as long as
# it runs, and the threads Prefect runs a run's tasks on are given a copy of it.
_max_file_bytes: ContextVar[int] = ContextVar("max_file_bytes", default=DEFAULT_MAX_FILE_MB * MB)


def max_file_bytes() -> int:
    """The largest file qcode reads now, in bytes (`file_size_limit` sets it)."""
    return _max_file_bytes.get()


@contextmanager
def file_size_limit(megabytes: float | None) -> Iterator[None]:
    """Within the block, files over `megabytes` MB are refused before they are read (None: the default)."""
    if megabytes is None:
        yield
        return
    token = _max_file_bytes.set(max(1, int(megabytes * MB)))
    try:
        yield
    finally:
        _max_file_bytes.reset(token)


_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def not_regular(mode: int) -> str | None:
    """What a file of this mode is when it is not a regular file or a folder ("a named pipe (FIFO)")."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def regular_file(path: str | Path, *, limit: int | None = None) -> os.stat_result:
    """A file's status, looked at without opening it; FileError when it is missing, a folder, not a
    regular file, or over `limit` bytes (default: `max_file_bytes()`)."""
    path = Path(path)
    try:
        status = path.stat()
    except FileNotFoundError:
        raise FileError("no such file", file=path) from None
    except OSError as exc:
        raise FileError(f"cannot read: {exc.strerror or exc}", file=path) from None
    _check(status, path, limit)
    return status


def _check(status: os.stat_result, path: Path, limit: int | None) -> None:
    if stat.S_ISDIR(status.st_mode):
        raise FileError("a folder, not a file", file=path)
    kind = not_regular(status.st_mode)
    if kind is not None:
        raise FileError(f"not a regular file: {kind}; qcode reads only files", file=path)
    if limit is not None and status.st_size > limit:
        raise FileError(f"{status.st_size:,} bytes; qcode reads files of up to {limit:,} bytes", file=path)
    if limit is None and status.st_size > max_file_bytes():
        raise FileError(
            f"{status.st_size:,} bytes, over the limit of {max_file_bytes() / MB:g} MB a file may have "
            "(--max-file-mb sets it)",
            file=path,
        )


def read_bytes(path: str | Path, *, limit: int | None = None) -> bytes:
    """A file's bytes; FileError when it is missing, a folder, not a regular file (a named pipe, a
    device), unreadable or over `limit` bytes (default: `max_file_bytes()`)."""
    path = Path(path)
    regular_file(path, limit=limit)  # a named pipe is never opened: opening one waits for a writer
    try:
        # O_NONBLOCK: should the file become a named pipe after the look, opening it does not wait
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise FileError("no such file", file=path) from None
    except IsADirectoryError:
        raise FileError("a folder, not a file", file=path) from None
    except OSError as exc:
        raise FileError(f"cannot read: {exc.strerror or exc}", file=path) from None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        _check(status, path, limit)  # what was opened is what was looked at
        most = limit if limit is not None else max_file_bytes()
        try:
            data = handle.read(min(status.st_size, most) + 1)
            if status.st_size < len(data) <= most:  # it grew after the look: read on, no further than the limit
                data += handle.read(most + 1 - len(data))
        except OSError as exc:
            raise FileError(f"cannot read: {exc.strerror or exc}", file=path) from None
    if len(data) > most:
        raise FileError(f"grew past {most:,} bytes while it was read", file=path)
    return data


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


# ---------------------------------------------------------------- ZIP archives (.docx)

# What qcode unpacks of one archive, in all. A transcript's document.xml runs to a few megabytes;
# far more is a damaged or crafted file (a ZIP of a few megabytes can unpack to gigabytes).
MAX_UNPACKED = 256 * MB
# Text and XML pack 3 to 20 times; a ZIP bomb packs a thousand times. A member of up to a megabyte
# may pack as tightly as it likes (repeated markup does): a megabyte harms nobody.
MAX_RATIO = 100
RATIO_GRACE = MB
# Deflate is what Word and QDA tools write; bzip2 and LZMA are refused because Python unpacks their
# members in pieces of unbounded size, so no read could be capped.
_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}
_PIECE = 64 * 1024


def unpacked(archive: zipfile.ZipFile, path: str | Path, *, limit: int = MAX_UNPACKED) -> int:
    """Check every member of a ZIP before anything unpacks it (a .docx, which python-docx unpacks
    whole): each as `read_member` does, and `limit` bytes in all, declared and actual. Returns the
    bytes it unpacks to; FileError naming the file and the member otherwise."""
    members = [info for info in archive.infolist() if not info.is_dir()]
    for info in members:
        _declared(info, path, limit)
    if sum(info.file_size for info in members) > limit:
        raise FileError(f"unpacks to more than {limit:,} bytes; qcode unpacks at most that of one file", file=path)
    total = 0
    for info in members:
        for piece in _pieces(archive, info, path, limit):
            total += len(piece)
            if total > limit:
                raise FileError(
                    f"unpacks to more than {limit:,} bytes; qcode unpacks at most that of one file", file=path
                )
    return total


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str | Path, *, limit: int) -> bytes:
    """One member of a ZIP, checked before it is unpacked by its declared size, its compression
    method and ratio, and unpacked in pieces, never past `limit` bytes whatever its header says."""
    _declared(info, path, limit)
    return b"".join(_pieces(archive, info, path, limit))


def _declared(info: zipfile.ZipInfo, path: str | Path, limit: int) -> None:
    if info.compress_type not in _METHODS:
        raise FileError(
            f"'{info.filename}' inside is packed with ZIP method {info.compress_type}, which qcode does not "
            "unpack (Word and QDA tools use deflate)",
            file=path,
        )
    if info.file_size > limit:
        raise FileError(
            f"'{info.filename}' inside unpacks to {info.file_size:,} bytes; qcode unpacks at most {limit:,}", file=path
        )
    if info.file_size > RATIO_GRACE and info.file_size > MAX_RATIO * max(1, info.compress_size):
        raise FileError(
            f"'{info.filename}' inside unpacks to {info.file_size:,} bytes, "
            f"{info.file_size // max(1, info.compress_size):,} times its packed size: a ZIP bomb, not a "
            f"document (qcode unpacks at most {MAX_RATIO} times)",
            file=path,
        )


def _pieces(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str | Path, limit: int) -> Iterator[bytes]:
    """A member as it actually unpacks, in pieces: the header may lie, what counts is what comes out."""
    packed = max(1, info.compress_size)
    size = 0
    try:
        with archive.open(info) as member:
            while piece := member.read(_PIECE):
                size += len(piece)
                if size > limit:
                    raise FileError(
                        f"unpacks to more than {limit:,} bytes; qcode unpacks at most that of one file", file=path
                    )
                if size > RATIO_GRACE and size > MAX_RATIO * packed:
                    raise FileError(
                        f"'{info.filename}' inside unpacks to more than {MAX_RATIO} times its packed size: "
                        "a ZIP bomb, not a document",
                        file=path,
                    )
                yield piece
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise FileError(f"'{info.filename}' inside cannot be unpacked (damaged or crafted): {exc}", file=path) from None
    if size != info.file_size:
        raise FileError(
            f"'{info.filename}' inside unpacks to {size:,} bytes, not the {info.file_size:,} its header says: "
            "the file is damaged or crafted",
            file=path,
        )


# ---------------------------------------------------------------- YAML

MAX_YAML_DEPTH = 64


class _Loader(yaml.SafeLoader):
    """YAML without aliases: a 400-byte file of anchors and aliases (a "billion laughs") stands for
    billions of values, and whatever walks it (a check, a str()) takes minutes and gigabytes. No
    codebook, suite or front matter needs them; nesting is bounded for the same reason."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed here: write the value out", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_YAML_DEPTH} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def compose_yaml(text: str) -> yaml.Node | None:
    """The node tree of one YAML document (None when it is empty); yaml.YAMLError, with its line,
    when it is not YAML or holds an alias."""
    loader = _Loader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def construct_yaml(node: yaml.Node | None) -> Any:
    """The Python values of a tree from `compose_yaml`, as yaml.safe_load gives them."""
    if node is None:
        return None
    loader = _Loader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_yaml(text: str) -> Any:
    """yaml.safe_load without aliases: every YAML qcode reads (codebooks, suites, front matter)."""
    return construct_yaml(compose_yaml(text))


# ---------------------------------------------------------------- writing


def refuse_to_replace(path: str | Path, force: bool = False) -> None:
    """FileError when something is at `path` and `force` is not given: qcode replaces no file, and
    no link, unasked; and never a folder, a named pipe or a device, even asked."""
    path = Path(path)
    try:
        status = path.lstat()  # a link is looked at itself, not followed
    except FileNotFoundError:
        return
    except OSError as exc:
        raise FileError(f"cannot write: {exc.strerror or exc}", file=path) from None
    if stat.S_ISDIR(status.st_mode):
        raise FileError("a folder, not a file: name the file to write", file=path)
    if stat.S_ISLNK(status.st_mode):
        if not force:
            raise FileError(
                "is a symbolic link; add --force to replace the link itself (what it points to is left alone)",
                file=path,
            )
        return
    kind = not_regular(status.st_mode)
    if kind is not None:
        raise FileError(f"not a regular file: {kind}; qcode writes only files", file=path)
    if not force:
        raise FileError("exists; add --force to replace it", file=path)


def _umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere the only way to read it is to set it
    os.umask(mask)
    return mask


@contextmanager
def written_aside(path: str | Path, *, force: bool = False) -> Iterator[Path]:
    """A file appears whole or not at all: the caller writes the path yielded, a new file of an
    unpredictable name beside `path`, and it is moved into place when the block ends without an
    error (and removed when it does not). An existing file or link is replaced only with `force`,
    and a link is replaced itself, never followed."""
    path = Path(path)
    refuse_to_replace(path, force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file with O_EXCL under a random name: nobody can have put a link there
        descriptor, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    except OSError as exc:
        raise FileError(f"cannot write: {exc.strerror or exc}", file=path) from None
    temporary = Path(name)
    try:
        if hasattr(os, "fchmod"):  # mkstemp's 0600 would hide a report from the rest of the team
            os.fchmod(descriptor, 0o666 & ~_umask())
        made = os.fstat(descriptor)
        yield temporary
        now = temporary.lstat()
        if (now.st_dev, now.st_ino) != (made.st_dev, made.st_ino):
            raise FileError(f"{temporary.name} was replaced while it was written; nothing was written", file=path)
        _move(temporary, path, force)
    except OSError as exc:
        raise FileError(f"cannot write: {exc.strerror or exc}", file=path) from None
    finally:
        os.close(descriptor)
        temporary.unlink(missing_ok=True)


def _move(temporary: Path, path: Path, force: bool) -> None:
    if force:
        os.replace(temporary, path)  # a rename replaces a link at `path` itself, never what it points to
        return
    try:
        # a hard link is made only where nothing is, atomically: no file that appeared since the
        # check is replaced unasked
        os.link(temporary, path)
    except FileExistsError:
        refuse_to_replace(path, force)
        raise
    except OSError:  # a file system without hard links
        refuse_to_replace(path, force)
        os.replace(temporary, path)
    else:
        temporary.unlink()


def write_text(path: str | Path, text: str, *, force: bool = False) -> None:
    with written_aside(path, force=force) as temporary:
        temporary.write_text(text, encoding="utf-8", newline="")


def write_bytes(path: str | Path, data: bytes, *, force: bool = False) -> None:
    with written_aside(path, force=force) as temporary:
        temporary.write_bytes(data)


# ---------------------------------------------------------------- CSV


def formula_safe(value: Any) -> Any:
    """A text cell as a spreadsheet shows it, never as a formula it runs (CSV injection): text that
    starts with = + - @ a tab or a carriage return gets a leading ' (OWASP's rule). Text that reads
    as a number ("-3", "+1") is quoted too: it is what a person typed, and a spreadsheet would show
    "+1" as 1. Numbers (int, float) are written as they are."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class SafeCsvWriter:
    """csv.writer whose text cells are `formula_safe`; numbers and None are written as they are."""

    def __init__(self, handle: IO[str]) -> None:
        self._writer = csv.writer(handle)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([formula_safe(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter(csv.DictWriter):
    """csv.DictWriter whose text cells, header included, are `formula_safe`."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: formula_safe(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for rowdict in rowdicts:
            self.writerow(rowdict)


def csv_writer(handle: IO[str]) -> SafeCsvWriter:
    """The writer of every CSV qcode writes by rows."""
    return SafeCsvWriter(handle)


def csv_dict_writer(handle: IO[str], columns: Sequence[str]) -> SafeDictWriter:
    """The writer of every CSV qcode writes by records."""
    return SafeDictWriter(handle, fieldnames=columns)
