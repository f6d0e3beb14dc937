"""Exports: suggestions with their full provenance, the long coding table, the decisions log.

`jsonl` and `csv` write one record per suggestion; `codings` writes the long
table `unit_id,coder,code` (a unit is a chunk) that agreement statistics read:
one row per applied code, and one row with an empty code for a unit a coder
saw and applied nothing to; the coders are the model, reviewers coding blind
and the people whose codes came in with an imported project. `qdpx` writes a
REFI-QDA project (pipeline.exchange.projects).
"""

from __future__ import annotations

import io
import itertools
import json
import re
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from lxml import etree
from pydantic import BaseModel
from sqlalchemy import select

from pipeline import __version__
from pipeline.codebook import Codebook
from pipeline.errors import ExchangeError
from pipeline.exchange.codebooks import code_guid, codebook_set_element, codes_element
from pipeline.exchange.projects import PROJECT_NAMESPACE, parse_stamp
from pipeline.files import csv_dict_writer, written_aside
from pipeline.store import Store
from pipeline.store.queries import (
    blind_rows,
    coded_passages,
    coding_rows,
    covered,
    decision_log,
    decisions_in_scope,
    human_rows,
    resolve_run,
    suggestion_records,
)
from pipeline.store.records import (
    ChunkRecord,
    CodebookRecord,
    HumanCodeRecord,
    RunChunkRecord,
    RunRecord,
    TranscriptRecord,
)

FORMATS = ("jsonl", "csv", "codings", "decisions", "blind", "qdpx")


def export(
    store: Store,
    fmt: str,
    out: Path | BinaryIO,
    run_id: str | None = None,
    status: str | None = None,
    *,
    force: bool = False,
) -> int:
    """Write an export to a file, or to a stream such as standard output; returns the number of
    records. A file appears whole or not at all: it is written aside and moved into place, and an
    existing file is replaced only with `force`."""
    if fmt not in FORMATS:
        raise ExchangeError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    run_id = resolve_run(store, run_id)
    if fmt == "qdpx":
        if isinstance(out, Path):
            return write_project(store, out, run_id, force=force).codings
        with tempfile.TemporaryDirectory() as folder:  # a ZIP is written whole, then copied out
            written = write_project(store, Path(folder) / "project.qdpx", run_id)
            with open(written.path, "rb") as handle:
                shutil.copyfileobj(handle, out)
        out.flush()
        return written.codings
    if not isinstance(out, Path):
        text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        try:
            return _write(store, fmt, text, run_id, status)
        finally:
            text.flush()
            text.detach()  # the stream stays open: it is the caller's
    with written_aside(out, force=force) as temporary, temporary.open("w", encoding="utf-8", newline="") as handle:
        return _write(store, fmt, handle, run_id, status)


def _write(store: Store, fmt: str, handle: Any, run_id: str | None, status: str | None) -> int:
    count = 0
    if fmt == "jsonl":
        for record in suggestion_records(store, run_id, status):
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    elif fmt == "csv":
        records = [_flatten(r) for r in suggestion_records(store, run_id, status)]
        columns = list(dict.fromkeys(key for record in records for key in record)) or ["suggestion_id"]
        writer = csv_dict_writer(handle, columns)
        writer.writeheader()
        writer.writerows(records)
        count = len(records)
    elif fmt == "decisions":
        records = decision_log(store)
        columns = list(records[0]) if records else DECISION_COLUMNS
        writer = csv_dict_writer(handle, columns)
        writer.writeheader()
        writer.writerows(records)
        count = len(records)
    else:
        writer = csv_dict_writer(handle, ["unit_id", "coder", "code"])
        writer.writeheader()
        rows = blind_rows(store, run_id=run_id)
        if fmt == "codings":
            rows = itertools.chain(coding_rows(store, run_id), rows, human_rows(store, run_id))
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


DECISION_COLUMNS = [
    "decision_id",
    "decided_at",
    "reviewer",
    "verdict",
    "suggestion_id",
    "rejection_id",
    "chunk_id",
    "transcript_id",
    "source_name",
    "suggested_code",
    "suggested_quote",
    "suggested_quote_start",
    "suggested_quote_end",
    "confidence",
    "routing",
    "final_code",
    "quote_start",
    "quote_end",
    "quote",
    "reason",
    "note",
    "coder",
    "model",
    "prompt_version",
    "codebook_version",
]


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    flat = {k: v for k, v in record.items() if k not in ("metadata", "speakers", "parameters")}
    flat["speakers"] = "; ".join(s or "" for s in record["speakers"])
    flat["parameters"] = json.dumps(record["parameters"], sort_keys=True)
    flat.update({f"case_{k}": v for k, v in record["metadata"].items()})
    return flat


# ---------------------------------------------------------------- qdpx: a REFI-QDA project


_QCODE_GUIDS = uuid.UUID("6f1c3a52-8d0e-4d3b-9a57-3c2f0b9e7d41")


_XSI = "http://www.w3.org/2001/XMLSchema-instance"


# characters XML 1.0 cannot hold (controls, lone surrogates, U+FFFE, U+FFFF) become U+FFFD in names and notes
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _guid(*key: object) -> str:
    """Stable GUIDs, so exporting the same study twice gives files that differ only where the study did."""
    return str(uuid.uuid5(_QCODE_GUIDS, "\0".join(str(k) for k in key)))


def _stamp(value: datetime | None) -> str | None:
    return value.replace(microsecond=0).isoformat() + "Z" if value else None


class ExportSummary(BaseModel):
    path: str
    transcripts: int
    codes: int
    users: list[str]
    codings: int
    warnings: list[str]


def write_project(store: Store, out: Path, run_id: str | None = None, *, force: bool = False) -> ExportSummary:
    """Write the study as a `.qdpx`: transcripts, codebook, case variables, and the codes that stand.

    The model is a user of its own (named with its model and prompt version); reviewers are users;
    people whose codes were imported are users. A model's code carries its justification and
    confidence as a note. The file is written aside and moved into place, so it appears whole."""
    run_id = resolve_run(store, run_id)
    warnings: list[str] = []
    passages = project_passages(store, run_id)
    with store.session() as s:
        runs = list(s.scalars(select(RunRecord).where(RunRecord.id == run_id) if run_id else select(RunRecord)))
        if run_id:
            transcript_ids = set(covered(s, [run_id])[1])
            versions = {runs[0].codebook_version}
        else:
            transcript_ids = set(s.scalars(select(TranscriptRecord.id)))
            versions = {r.codebook_version for r in runs} | set(
                s.scalars(
                    select(HumanCodeRecord.codebook_version)
                    .distinct()
                    .where(HumanCodeRecord.codebook_version.is_not(None))
                )
            )
        if len(versions) > 1:
            hint = (
                "choose a run with --run"
                if runs
                else "keep projects with different codebooks in databases of their own (qcode import --db)"
            )
            raise ExchangeError(
                f"the store holds codes under {len(versions)} codebook versions "
                f"({', '.join(sorted(versions))}); a project has one codebook: {hint}"
            )
        record = s.get(CodebookRecord, next(iter(versions))) if versions else None
        if record is None:
            raise ExchangeError("the store has no codebook yet: run qcode run or qcode import first")
        codebook = Codebook.model_validate(record.content)
        transcripts = sorted(
            s.scalars(select(TranscriptRecord).where(TranscriptRecord.id.in_(transcript_ids))),
            key=lambda t: (t.source_name, t.id),
        )
        human = list(
            s.scalars(
                select(HumanCodeRecord)
                .where(HumanCodeRecord.transcript_id.in_(transcript_ids))
                .order_by(HumanCodeRecord.id)
            )
        )
    known = {c.id for c in codebook.codes}
    codings = passages + [
        CodedPassage(
            transcript_id=h.transcript_id,
            start=h.start,
            end=h.end,
            code=h.code,
            user=h.coder,
            at=h.coded_at,
            note=h.note,
        )
        for h in human
    ]
    unknown = [c for c in codings if c.code not in known]
    if unknown:
        warnings.append(
            f"{len(unknown)} coding(s) name codes that are not in the codebook '{codebook.name}' "
            f"({', '.join(sorted({c.code for c in unknown})[:5])}); they were left out"
        )
        codings = [c for c in codings if c.code in known]

    ns = PROJECT_NAMESPACE
    # a reviewer who only accepted the model's codes is a user too, named in those codings' notes
    users = sorted({c.user for c in codings} | {p.reviewer for p in passages if p.reviewer})
    user_guid = {name: _guid("user", name) for name in users}
    code_guids = {c.id: code_guid(codebook, c) for c in codebook.codes}
    source_guid = {t.id: _guid("source", t.id) for t in transcripts}
    keys = sorted({k for t in transcripts for k in (t.case_metadata or {})})
    variable_guid = {k: _guid("variable", k) for k in keys}

    def element(parent: Any, tag: str, text: str | None = None, /, **attributes: str | None) -> Any:
        node = etree.SubElement(
            parent, f"{{{ns}}}{tag}", {k: _NOT_XML.sub("\ufffd", v) for k, v in attributes.items() if v is not None}
        )
        if text is not None:
            node.text = _NOT_XML.sub("\ufffd", text)
        return node

    root = etree.Element(f"{{{ns}}}Project", nsmap={None: ns, "xsi": _XSI})
    root.set(f"{{{_XSI}}}schemaLocation", f"{ns} Project.xsd")
    root.set("name", codebook.name)
    root.set("origin", f"qcode {__version__}")
    root.set("creationDateTime", _stamp(datetime.now(UTC).replace(tzinfo=None)) or "")
    if users:
        container = element(root, "Users")
        for name in users:
            element(container, "User", guid=user_guid[name], name=name)
    codebook_node = element(root, "CodeBook")
    codebook_node.append(codes_element(codebook, ns))
    if keys:
        container = element(root, "Variables")
        for key in keys:
            element(container, "Variable", guid=variable_guid[key], name=key, typeOfVariable="Text")
        cases = element(root, "Cases")
        for t in transcripts:
            if t.case_metadata:
                case = element(cases, "Case", guid=_guid("case", t.id), name=t.source_name)
                for key, value in sorted(t.case_metadata.items()):
                    holder = element(case, "VariableValue")
                    element(holder, "VariableRef", targetGUID=variable_guid[key])
                    element(holder, "TextValue", str(value))
                element(case, "SourceRef", targetGUID=source_guid[t.id])
        if not len(cases):
            root.remove(cases)
    notes: list[tuple[str, str, str]] = []
    spans: dict[str, dict[tuple[int, int], list[CodedPassage]]] = {}  # transcript -> span -> its codings
    for c in codings:
        spans.setdefault(c.transcript_id, {}).setdefault((c.start, c.end), []).append(c)
    files: dict[str, str] = {}
    sources = element(root, "Sources")
    for t in transcripts:
        key = source_guid[t.id]
        files[f"sources/{key}.txt"] = t.text
        source = element(
            sources,
            "TextSource",
            guid=key,
            name=t.source_name,
            plainTextPath=f"internal://{key}.txt",
            creationDateTime=_stamp(t.ingested_at),
        )
        element(source, "Description", f'qcode: {{"transcript": "{t.id}"}}')
        for (start, end), found in sorted(spans.get(t.id, {}).items()):
            selection = element(
                source,
                "PlainTextSelection",
                guid=_guid("selection", t.id, start, end),
                name=_label(t.text[start:end]),
                startPosition=str(start),
                endPosition=str(end),
            )
            for c in sorted(found, key=lambda c: (c.user, c.code)):
                coding_guid = _guid("coding", t.id, start, end, c.user, c.code)
                coding = element(
                    selection, "Coding", guid=coding_guid, creatingUser=user_guid[c.user], creationDateTime=_stamp(c.at)
                )
                element(coding, "CodeRef", targetGUID=code_guids[c.code])
                if c.note:
                    note_guid = _guid("note", coding_guid)
                    element(coding, "NoteRef", targetGUID=note_guid)
                    notes.append((note_guid, user_guid[c.user], c.note))
    if notes:
        container = element(root, "Notes")
        for note_guid, author, text in notes:
            note = element(container, "Note", guid=note_guid, name=_label(text), creatingUser=author)
            element(note, "PlainTextContent", text)
    # the codebook's own fields (name, description, measurement) ride in a set of its codes
    element(root, "Sets").append(codebook_set_element(codebook, ns))

    qde = etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=True)
    with (
        written_aside(out, force=force) as temporary,
        zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive,
    ):
        archive.writestr("project.qde", qde)
        for name, text in files.items():
            archive.writestr(name, text.encode("utf-8"))
    return ExportSummary(
        path=str(out),
        transcripts=len(transcripts),
        codes=len(codebook.codes),
        users=users,
        codings=len(codings),
        warnings=warnings,
    )


def _label(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass
class CodedPassage:
    """A code that stands on a span of a transcript, with who stands behind it."""

    transcript_id: str
    start: int
    end: int
    code: str
    user: str
    at: datetime | None
    note: str | None
    reviewer: str | None = None  # who accepted, changed or added it; None when it stood without review


def project_passages(store: Store, run_id: str | None = None) -> list[CodedPassage]:
    """The codes that stand after review (`pipeline.measure.matrix.coded_passages`), each credited to whoever
    stands behind it: the model (named with its model and prompt version) for its codes accepted
    without review or by a reviewer, the reviewer for a code they changed or added."""
    suggestions = list(suggestion_records(store, run_id))
    with store.session() as s:
        query = select(ChunkRecord.id, ChunkRecord.start, ChunkRecord.end)
        versions = None
        if run_id:
            query = query.where(
                ChunkRecord.id.in_(select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id))
            )
            versions = {s.get_one(RunRecord, run_id).codebook_version}
        spans = {chunk_id: (start, end) for chunk_id, start, end in s.execute(query)}
    decisions, settled = decisions_in_scope(store, {x["suggestion_id"] for x in suggestions}, set(spans), versions)
    found = []
    for row in coded_passages(suggestions, decisions, settled, "accepted"):
        sug, d = row["suggestion"], row["decision"]
        start, end = row["quote_start"], row["quote_end"]
        if start is None or end is None:  # a code added to the whole passage
            start, end = spans[row["chunk_id"]]
        said = f"{model_user(sug)}: {sug['justification']}\nconfidence {sug['confidence']:.2f}" if sug else ""
        why = "".join(f" ({x})" for x in (d["reason"], d["note"]) if x) if d else ""
        reviewer = d["reviewer"] if d else None
        if d is None:
            user, at, note = model_user(sug), sug["created_at"], said + "\naccepted without review"
        elif row["how"] == "accept":
            user, at = model_user(sug), sug["created_at"]
            note = f"{said}\naccepted by {reviewer} on {d['decided_at']}{why}"
        elif row["how"] == "change":
            user, at = d["reviewer"], d["decided_at"]
            note = f"{reviewer} changed the code from {sug['code']}{why}.\nThe model had said: {said}"
        else:
            user, at = d["reviewer"], d["decided_at"]
            note = f"added by {reviewer}{why}"
        found.append(
            CodedPassage(
                transcript_id=row["transcript_id"],
                start=start,
                end=end,
                code=row["code"],
                user=user,
                at=parse_stamp(at),
                note=note,
                reviewer=reviewer,
            )
        )
    return found


def model_user(suggestion: dict[str, Any]) -> str:
    """The model as a coder of its own: coder, model and prompt version."""
    model = suggestion["model"].rsplit("/", 1)[-1]
    version = suggestion["prompt_version"] or ""
    if re.fullmatch(r"[0-9a-f]{13,}", version):
        version = version[:12]  # a hash: its first 12 characters name it
    prompt = f" prompt {version}" if version else ""
    return f"{suggestion['coder']}:{model}{prompt}"
