"""Projects to and from other QDA tools: REFI-QDA `.qdpx` (ATLAS.ti, NVivo, MAXQDA, QualCoder, qc).

A `.qdpx` is a ZIP holding `project.qde` (XML, namespace `urn:QDA-XML:project:1.0`) and a folder
`sources/` of the files it names. Reading takes what qcode can code: text sources become
transcripts, case variables become case metadata, users become human coders and their codings of
text become human codes with their offsets. Everything else (pictures, PDFs, audio, video, codes of
whole documents) is named in the import's warnings, never dropped silently.

Offsets in REFI-QDA are Unicode code points from 0, end exclusive, but exporters count differently:
NVivo counts UTF-16 code units with CR LF as two, ATLAS.ti counts CR LF as one. `COUNTINGS` maps an
exporter to its counting; positions are converted to code points of the text as qcode stores it
(line endings made `\\n`), and the positions as written are kept beside them.

A bad project (not a ZIP, XML that is not well-formed, a coding of a code or source that is not
there, positions outside the text, an entry that escapes its folder or is over the format's 2 GiB
limit) raises ExchangeError naming the file and the problem, and nothing is imported: the import is
one transaction.
"""

from __future__ import annotations

import codecs
import hashlib
import posixpath
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from lxml import etree

from pipeline.errors import FileError
from pipeline.exchange.codebooks import (
    ExchangeError,
    ImportedCodebook,
    codebook_from_codes,
    normal_guid,
    parse_xml,
)
from pipeline.files import MAX_UNPACKED, read_bytes, read_member
from pipeline.suggestion import HumanCode
from pipeline.transcript import Transcript, parse_turns, settle_case, transcript_id

PROJECT_NAMESPACE = "urn:QDA-XML:project:1.0"
MAX_ENTRY = 2**31 - 1  # REFI-QDA's limit on each file inside a project
# What qcode reads of a project: project.qde and each text source. A transcript runs to a few
# hundred kilobytes; far more is a damaged or crafted file (a small ZIP can unpack to gigabytes).
MAX_READ = 256 * 2**20
Counting = Literal["code-points", "utf-16", "code-points-lf"]
COUNTINGS: dict[str, Counting] = {"nvivo": "utf-16", "atlas.ti": "code-points-lf"}


def counting_for(origin: str | None) -> Counting:
    """How the software that wrote a project counts positions: by the start of its `origin`."""
    lowered = (origin or "").strip().lower()
    for prefix, counting in COUNTINGS.items():
        if lowered.startswith(prefix):
            return counting
    return "code-points"


@dataclass
class Project:
    path: Path
    sha256: str
    name: str | None
    origin: str | None
    counting: Counting
    codebook: ImportedCodebook | None
    transcripts: list[Transcript] = field(default_factory=list)
    codes: list[HumanCode] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    reassigned: Counter[tuple[str, str]] = field(default_factory=Counter)  # (selection's user, coding's user)
    tallies: Counter[str] = field(default_factory=Counter)  # what befell how many codings, said once each

    @property
    def coders(self) -> list[str]:
        return sorted({c.coder for c in self.codes})


# ---------------------------------------------------------------- the package


class _Package:
    """The files of a project: a `.qdpx` ZIP, or a bare `project.qde` with `sources/` beside it."""

    def __init__(self, path: Path):
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.entries: dict[str, Any] = {}
        self.unpacked = 0  # bytes unpacked of the ZIP so far, of all its entries
        if path.suffix.lower() == ".qde":
            self.qde = _read_file(path)
            folder = path.parent
            for sub in folder.iterdir() if folder.is_dir() else []:
                if sub.is_dir() and sub.name.lower() == "sources":
                    self.entries = {
                        f"sources/{p.name}".lower(): p for p in sub.iterdir() if p.is_file() and not p.is_symlink()
                    }
            return
        try:
            self.zip = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            raise ExchangeError(f"{path}: not a QDPX project: the file is not a ZIP archive") from None
        except OSError as exc:
            raise ExchangeError(f"{path}: cannot read: {exc.strerror or exc}") from None
        names: dict[str, zipfile.ZipInfo] = {}
        for info in self.zip.infolist():
            name = info.filename.replace("\\", "/")
            parts = name.split("/")
            if name.startswith("/") or ".." in parts or (parts[0][1:2] == ":"):
                raise ExchangeError(
                    f"{path}: the ZIP entry '{info.filename}' points outside the project folder; "
                    "the file is damaged or crafted"
                )
            if info.file_size > MAX_ENTRY:
                raise ExchangeError(
                    f"{path}: the ZIP entry '{info.filename}' is {info.file_size:,} bytes, over the "
                    f"{MAX_ENTRY:,}-byte limit REFI-QDA sets on each file"
                )
            if not info.is_dir():
                names["/".join(p for p in parts if p not in ("", "."))] = info
        # project.qde at the top, or (as a ZIP made of a project's folder has it) in one folder
        qde = sorted(
            (n for n in names if n.lower().endswith(".qde") and n.count("/") <= 1),
            key=lambda n: (n.count("/"), n.lower().rsplit("/", 1)[-1] != "project.qde", n),
        )
        if not qde or (qde[0].count("/") and len({n.rsplit("/", 1)[0] for n in qde}) > 1):
            listed = ", ".join(sorted(i.filename for i in self.zip.infolist())[:5]) or "none"
            raise ExchangeError(f"{path}: not a QDPX project: the archive has no project.qde (entries: {listed})")
        prefix = qde[0].rsplit("/", 1)[0] + "/" if "/" in qde[0] else ""
        self.entries = {n[len(prefix) :].lower(): info for n, info in names.items() if n.startswith(prefix)}
        self.qde = self._read(names[qde[0]])

    def _read(self, info: zipfile.ZipInfo) -> bytes:
        assert self.zip is not None
        try:
            data = read_member(self.zip, info, self.path, limit=min(MAX_READ, MAX_UNPACKED - self.unpacked))
        except FileError as exc:
            raise ExchangeError(str(exc)) from None
        self.unpacked += len(data)
        return data

    def source(self, name: str) -> bytes | None:
        """A file of the `sources/` folder, whatever the case of the folder or the file name."""
        found = self.entries.get(f"sources/{name}".lower())
        if found is None:
            return None
        return _read_file(found) if isinstance(found, Path) else self._read(found)


def _read_file(path: Path) -> bytes:
    return read_bytes(path, limit=MAX_READ)


# ---------------------------------------------------------------- reading


class _Xml:
    """Element lookups in the project's namespace (or in none, for tolerance)."""

    def __init__(self, namespace: str):
        self.ns = namespace

    def tag(self, name: str) -> str:
        return f"{{{self.ns}}}{name}" if self.ns else name

    def all(self, element: Any, name: str) -> list[Any]:
        return element.findall(self.tag(name))

    def one(self, element: Any, name: str) -> Any:
        return element.find(self.tag(name))

    def text(self, element: Any, name: str) -> str | None:
        found = self.one(element, name)
        return found.text if found is not None and found.text and found.text.strip() else None


def read_project(path: str | Path, counting: Counting | None = None) -> Project:
    """Read a `.qdpx` (or a bare `project.qde`) into transcripts, a codebook and human codes."""
    path = Path(path)
    if not path.is_file():
        read_bytes(path)  # "no such file" or "a folder, not a file", as for every file qcode reads
    package = _Package(path)
    where = f"{path}: project.qde" if path.suffix.lower() != ".qde" else str(path)
    root = parse_xml(package.qde, where)
    namespace = etree.QName(root).namespace or ""
    if etree.QName(root).localname != "Project" or namespace not in ("", PROJECT_NAMESPACE):
        raise ExchangeError(
            f"{where}: not a REFI-QDA project: the root element is {etree.QName(root).text}, not Project in "
            f"namespace {PROJECT_NAMESPACE}"
        )
    xml = _Xml(namespace)
    origin = root.get("origin")
    project = Project(
        path=path,
        sha256=hashlib.sha256(package.qde).hexdigest(),
        name=root.get("name"),
        origin=origin,
        counting=counting or counting_for(origin),
        codebook=None,
    )
    if not namespace:
        project.warnings.append(f"{where}: the Project element has no namespace; read as {PROJECT_NAMESPACE}")

    users = _users(root, xml, project)
    codes = xml.one(xml.one(root, "CodeBook") if xml.one(root, "CodeBook") is not None else root, "Codes")
    if codes is not None and len(xml.all(codes, "Code")):
        description = xml.text(root, "Description") or f"Imported from {path.name}"
        project.codebook = codebook_from_codes(
            codes,
            namespace,
            name=project.name or path.stem,
            description=description,
            source=origin,
            sets=xml.one(root, "Sets"),
        )
        project.warnings += project.codebook.warnings
    notes = {normal_guid(n.get("guid")): _note_text(n, xml) for n in root.iter(xml.tag("Note"))}
    metadata = _case_metadata(root, xml, project)

    sources = xml.one(root, "Sources")
    skipped: Counter[str] = Counter()
    names: Counter[str] = Counter()
    for source in sources if sources is not None else []:
        if not isinstance(source.tag, str):
            continue  # comments and processing instructions
        kind = etree.QName(source).localname
        if kind != "TextSource":
            skipped[kind] += 1
            for inner in source.iter():
                if isinstance(inner.tag, str) and etree.QName(inner).localname.endswith("Selection"):
                    skipped[etree.QName(inner).localname] += 1
            continue
        _text_source(source, xml, package, project, users, notes, metadata, names, where)
    if skipped:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(skipped.items()))
        project.warnings.append(
            f"not imported: {kinds} (qcode codes text; pictures, PDFs, audio and video stay in the other tool)"
        )
    if project.codebook is not None:
        applicable = project.codebook.codebook.applicable_ids()
        off = Counter(c.code for c in project.codes if c.code not in applicable)
        if off:
            project.warnings.append(
                f"{sum(off.values())} coding(s) apply codes that are categories in the codebook "
                f"({', '.join(sorted(off)[:5])}); they are kept, but a coder cannot give them "
                "(mark a code `codable: true` to let coders apply it)"
            )
    project.warnings += [f"{n} {what}" for what, n in project.tallies.items()]
    if project.reassigned:
        pairs = ", ".join(f"{n} made by {a} and coded by {b}" for (a, b), n in sorted(project.reassigned.items()))
        project.warnings.append(
            f"selections whose coding names another user ({pairs}): each code is credited to the user its coding names"
        )
    return project


def _users(root: Any, xml: _Xml, project: Project) -> dict[str, str]:
    users: dict[str, str] = {}
    names: Counter[str] = Counter()
    container = xml.one(root, "Users")
    for user in xml.all(container, "User") if container is not None else []:
        key = normal_guid(user.get("guid"))
        name = (user.get("name") or user.get("id") or key).strip()
        names[name] += 1
        users[key] = name if names[name] == 1 else f"{name} ({key[:8]})"
    return users


def _note_text(note: Any, xml: _Xml) -> str | None:
    text = xml.text(note, "PlainTextContent")
    return text.strip() if text else note.get("name")


def _case_metadata(root: Any, xml: _Xml, project: Project) -> dict[str, dict[str, str]]:
    """Each source's case metadata: the variables of the cases it belongs to, and its own."""
    variables = {}
    container = xml.one(root, "Variables")
    for variable in xml.all(container, "Variable") if container is not None else []:
        key = normal_guid(variable.get("guid"))
        variables[key] = variable.get("name") or key
    per_source: dict[str, dict[str, str]] = {}
    cases = xml.one(root, "Cases")
    source_guids = {normal_guid(s.get("guid")) for s in root.iter(xml.tag("TextSource"))}
    for case in xml.all(cases, "Case") if cases is not None else []:
        values = _variable_values(case, xml, variables, project, f"case '{case.get('name') or case.get('guid')}'")
        for ref in xml.all(case, "SourceRef"):
            target = normal_guid(ref.get("targetGUID"))
            if target not in source_guids:
                project.warnings.append(
                    f"case '{case.get('name') or case.get('guid')}' names a source that is not "
                    f"in the project ({ref.get('targetGUID')}); that reference was not imported"
                )
                continue
            merged = per_source.setdefault(target, {})
            for key, value in values.items():
                if key in merged and merged[key] != value:
                    project.warnings.append(
                        f"source {target}: cases give '{key}' two values ('{merged[key]}', "
                        f"'{value}'); both are kept, joined by '; '"
                    )
                    value = f"{merged[key]}; {value}"
                merged[key] = value
    for source in root.iter(xml.tag("TextSource")):
        own = _variable_values(source, xml, variables, project, f"source '{source.get('name')}'")
        if own:
            per_source.setdefault(normal_guid(source.get("guid")), {}).update(own)
    return per_source


def _variable_values(
    element: Any, xml: _Xml, variables: dict[str, str], project: Project, where: str
) -> dict[str, str]:
    values = {}
    for value in xml.all(element, "VariableValue"):
        ref = xml.one(value, "VariableRef")
        key = normal_guid(ref.get("targetGUID")) if ref is not None else ""
        if key not in variables:
            project.warnings.append(f"{where}: a variable value names no variable of the project; not imported")
            continue
        found = [child for child in value if isinstance(child.tag, str) and child is not ref]
        if found and found[0].text is not None and found[0].text.strip():
            values[variables[key]] = found[0].text.strip()
    return values


def _text_source(
    source: Any,
    xml: _Xml,
    package: _Package,
    project: Project,
    users: dict[str, str],
    notes: dict[str, str | None],
    metadata: dict[str, dict[str, str]],
    names: Counter[str],
    where: str,
) -> None:
    key = normal_guid(source.get("guid"))
    path = source.get("plainTextPath")
    label = source.get("name") or (posixpath.basename(path) if path else None) or key
    selections = xml.all(source, "PlainTextSelection")
    inline = xml.one(source, "PlainTextContent")
    if inline is not None:
        data = (inline.text or "").encode("utf-8")
    elif path:
        data = _source_bytes(package, path, label, project, len(selections))
        if data is None:
            return
    else:
        project.warnings.append(
            f"source '{label}' has no plain text (no plainTextPath or PlainTextContent); "
            f"it and its {len(selections)} selection(s) were not imported"
        )
        return
    whole = len(xml.all(source, "Coding"))
    if whole:
        project.warnings.append(
            f"source '{label}': {whole} coding(s) of the whole document were not imported "
            "(qcode compares codes of passages)"
        )
    positions = _Positions(data, project.counting, f"source '{label}'", project)
    if not positions.text.strip():
        project.warnings.append(
            f"source '{label}' has no text; it and its {len(selections)} selection(s) were not imported"
        )
        return
    text = positions.text
    known = _written_id(xml.text(source, "Description"))
    if known in {t.id for t in project.transcripts}:
        known = None  # a second copy of one source: a transcript of its own
    names[label] += 1
    name = label if names[label] == 1 or known else f"{label} ({names[label]})"
    transcript = Transcript(
        id=known or transcript_id(name, text),
        source_path=str(project.path / name),
        source_name=name,
        format="qdpx",
        encoding="utf-8",
        text=text,
        turns=parse_turns(text),
        metadata=metadata.get(key, {}),
        notes=[f"imported from {project.path.name}" + (f" ({project.origin})" if project.origin else "")],
    )
    if not transcript.turns:
        project.warnings.append(f"source '{label}' has no text; not imported")
        return
    project.transcripts.append(settle_case(transcript))
    codes = project.codebook.guids if project.codebook else {}
    for selection in selections:
        sel = f"source '{label}', selection {selection.get('guid')}"
        start, end = (_position(selection, attr, sel) for attr in ("startPosition", "endPosition"))
        if start > end:
            raise ExchangeError(f"{where}: {sel}: startPosition {start} is after endPosition {end}")
        mapped = positions.convert(start, end, sel, where)
        codings = xml.all(selection, "Coding")
        if mapped[0] == mapped[1]:
            project.tallies["coding(s) of selections of no text, not imported"] += len(codings)
            continue
        description = xml.text(selection, "Description")
        for coding in codings:
            ref = xml.one(coding, "CodeRef")
            target = normal_guid(ref.get("targetGUID")) if ref is not None else ""
            if target not in codes:
                named = ref.get("targetGUID") if ref is not None else "(none)"
                raise ExchangeError(
                    f"{where}: {sel}: a coding names code {named}, which is not in the project's codebook"
                )
            user = normal_guid(coding.get("creatingUser") or selection.get("creatingUser") or "")
            coder = users.get(user) or user or "unknown coder"
            selector = normal_guid(selection.get("creatingUser"))
            if selector and selector != user:
                project.reassigned[(users.get(selector, selector), coder)] += 1
            if user and user not in users:
                project.tallies[
                    f"coding(s) by user {user}, who is not among the project's users: the GUID stands "
                    "as the coder's name"
                ] += 1
            if not user:
                project.tallies["coding(s) that name no user, kept as 'unknown coder'"] += 1
            refs = xml.all(coding, "NoteRef")
            texts = [description] + [notes.get(normal_guid(r.get("targetGUID"))) for r in refs]
            project.codes.append(
                HumanCode(
                    coder=coder,
                    code=codes[target],
                    transcript_id=transcript.id,
                    start=mapped[0],
                    end=mapped[1],
                    original_start=start,
                    original_end=end,
                    note="\n\n".join(t for t in texts if t) or None,
                    coded_at=parse_stamp(coding.get("creationDateTime")),
                )
            )


_WRITTEN_ID = re.compile(r'^qcode: \{"transcript": "([0-9a-f]{16})"\}$', re.M)


def _written_id(description: str | None) -> str | None:
    """The transcript id qcode wrote on a source it exported. A transcript's id is a hash of its
    name, its text and (for a row of a CSV file) the row's key; the key is not in the project, so
    the id travels in the source's description, and a study comes back with the ids it had."""
    found = _WRITTEN_ID.search(description or "")
    return found.group(1) if found else None


def _source_bytes(package: _Package, path: str, label: str, project: Project, selections: int) -> bytes | None:
    lowered = path.lower()
    if lowered.startswith("internal://"):
        name = path[len("internal://") :]
    elif "://" in path:
        project.warnings.append(
            f"source '{label}' is a file outside the project ({path}); it and its {selections} "
            "selection(s) were not imported"
        )
        return None
    else:
        name = path  # a bare file name in sources/, as qc writes it
    name = name.replace("\\", "/").lstrip("/")
    if ".." in name.split("/"):
        raise ExchangeError(f"{project.path}: source '{label}' points outside the project folder ({path})")
    data = package.source(name)
    if data is None:
        if package.zip is None and not package.entries:
            project.warnings.append(
                f"source '{label}': {path} is not beside {project.path.name} (no sources/ "
                f"folder); it and its {selections} selection(s) were not imported"
            )
            return None
        raise ExchangeError(f"{project.path}: source '{label}' names {path}, which is not in the project's sources")
    return data


def _position(selection: Any, attribute: str, where: str) -> int:
    value = selection.get(attribute)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ExchangeError(f"{where}: {attribute} must be a whole number, not '{value}'") from None


def parse_stamp(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    # the store keeps UTC without a zone, as pipeline.store.now() writes it
    return parsed if parsed.tzinfo is None else parsed.astimezone(UTC).replace(tzinfo=None)


class _Positions:
    """A source's text as qcode stores it, and its exporter's positions turned into qcode's.

    qcode's text is the file's text without a byte-order mark, with CR LF and CR made `\\n` (as
    ingest does for every text file) and U+0000 made U+FFFD. Each character of the file's text has a
    width in the exporter's counting and in qcode's; their running sums map one onto the other."""

    def __init__(self, data: bytes, counting: Counting, where: str, project: Project):
        # REFI-QDA says UTF-8; a UTF-16 file says so with its byte-order mark, and is read too
        encoding = "utf-16" if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8-sig"
        try:
            raw = data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ExchangeError(
                f"{project.path}: {where}: the plain text is not {encoding.removesuffix('-sig')} (byte "
                f"0x{data[exc.start]:02x} at {exc.start}); REFI-QDA text sources are UTF-8"
            ) from None
        points = np.frombuffer(raw.encode("utf-32-le"), dtype="<u4")
        carriage = points == 13
        before_line_feed = np.zeros(len(points), dtype=bool)
        before_line_feed[:-1] = points[1:] == 10
        joined = carriage & before_line_feed  # the CR of a CR LF: qcode keeps only the LF
        mark = np.zeros(len(points), dtype=bool)
        leading = len(raw) - len(raw.lstrip("\ufeff"))
        mark[:leading] = True
        # widths and running sums in int32: a text is at most MAX_READ bytes, so no sum overflows
        ours = (~joined & ~mark).astype(np.int32)
        if counting == "utf-16":
            theirs = 1 + (points > 0xFFFF).astype(np.int32)
        elif counting == "code-points-lf":
            theirs = (~joined).astype(np.int32)
        else:
            theirs = np.ones(len(points), dtype=np.int32)
        del points, carriage, before_line_feed, joined, mark
        self.theirs = np.concatenate(([0], np.cumsum(theirs, dtype=np.int32)))
        self.ours = np.concatenate(([0], np.cumsum(ours, dtype=np.int32)))
        self.text = raw.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")
        self.counting = counting
        self.where = where

    def convert(self, start: int, end: int, selection: str, where: str) -> tuple[int, int]:
        total = int(self.theirs[-1])
        if start < 0 or end > total:
            raise ExchangeError(
                f"{where}: {selection}: positions {start}–{end} are outside the text, which is "
                f"{total:,} long counted as {self.counting}"
            )
        # a position inside a character (half of a surrogate pair) widens the selection to whole characters
        first = int(np.searchsorted(self.theirs, start, side="right")) - 1
        last = int(np.searchsorted(self.theirs, end, side="left"))
        return int(self.ours[first]), int(self.ours[last])
