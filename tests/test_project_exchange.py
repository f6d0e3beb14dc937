"""REFI-QDA projects in and out: `qcode import PROJECT.qdpx` and `qcode export --format qdpx`.

The sample projects written by NVivo (Windows and Mac), ATLAS.ti and qc are read where they are
kept, beside the repository (QCODE_REFI_SAMPLES names another folder); they are never copied in.
Where a sample has its text, every coding's span is checked against the text its exporter meant,
computed here independently: NVivo's positions as UTF-16 code units of the file, qc's as code points.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from datetime import datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from fakes import qcode
from fakes.review_server import make_review_db
from lxml import etree
from sqlalchemy import func, select

from pipeline.codebook import load_codebook
from pipeline.exchange.codebooks import code_guid, codes_element
from pipeline.exchange.exports import project_passages as coded_passages
from pipeline.exchange.projects import PROJECT_NAMESPACE, read_project
from pipeline.review.decisions import DecisionRequest, add_code, decide
from pipeline.review.reviewers import Reviewer
from pipeline.store import (
    ChunkRecord,
    HumanCodeRecord,
    ImportRecord,
    ReviewerRecord,
    Store,
    SuggestionRecord,
    TranscriptRecord,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = Path(os.environ.get("QCODE_REFI_SAMPLES", ROOT.parent / "shared" / "refi-qda" / "samples"))
SCHEMA = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "refi_qda" / "Project.xsd")))
NS = {"q": PROJECT_NAMESPACE}
LINKAGES = ROOT / "codebooks" / "linkages.yaml"

needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"the REFI-QDA samples are not at {SAMPLES}")


def qde_of(path: Path) -> ElementTree.Element:
    if path.suffix == ".qde":
        return ElementTree.parse(path).getroot()
    with zipfile.ZipFile(path) as archive:
        return ElementTree.fromstring(archive.read("project.qde"))


def expected_codes(path: Path) -> set[tuple[str, int, int, str, str]]:
    """(source name, start, end, coder, code name) of every coding, as the file writes them."""
    root = qde_of(path)
    users = {u.get("guid").lower(): u.get("name") for u in root.iterfind(".//q:User", NS)}
    names = {c.get("guid").lower(): c.get("name") for c in root.iterfind(".//q:Code", NS)}
    found = set()
    for source in root.iterfind(".//q:TextSource", NS):
        label = source.get("name") or source.get("plainTextPath")
        for selection in source.iterfind("q:PlainTextSelection", NS):
            for coding in selection.iterfind("q:Coding", NS):
                user = (coding.get("creatingUser") or selection.get("creatingUser")).lower()
                code = coding.find("q:CodeRef", NS).get("targetGUID").lower()
                found.add(
                    (
                        label,
                        int(selection.get("startPosition")),
                        int(selection.get("endPosition")),
                        users[user],
                        names[code],
                    )
                )
    return found


def stored(db: Path) -> tuple[dict[str, TranscriptRecord], list[HumanCodeRecord]]:
    store = Store(str(db))
    with store.session() as s:
        transcripts = {t.id: t for t in s.scalars(select(TranscriptRecord))}
        codes = list(s.scalars(select(HumanCodeRecord)))
    return transcripts, codes


def span_as_exporter_meant(raw: bytes, start: int, end: int, counting: str) -> str:
    """The selected text, counted as the exporter counts, with line endings made \\n as qcode stores text."""
    text = raw.decode("utf-8-sig")
    if counting == "utf-16":
        units = text.encode("utf-16-le")
        text = units[2 * start : 2 * end].decode("utf-16-le")
    else:
        text = text[start:end]
    return text.replace("\r\n", "\n").replace("\r", "\n")


# ---------------------------------------------------------------- the samples


@needs_samples
@pytest.mark.parametrize(
    "name, counting, coders",
    [
        ("oltas0517.qdpx", "utf-16", ["Gergo"]),
        ("oltas.qdpx", "utf-16", ["floriansipos"]),
        ("demo.qdpx", "code-points", ["cp"]),
    ],
)
def test_every_coding_of_a_sample_lands_on_the_span_its_exporter_meant(
    tmp_path: Path, name: str, counting: str, coders: list[str]
) -> None:
    path = SAMPLES / name
    db = tmp_path / "qcode.db"
    result = qcode("import", path, "--db", db, "--codebook-out", tmp_path / "codebook.yaml", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counting"] == counting
    assert summary["coders"] == coders
    transcripts, codes = stored(db)
    codebook = load_codebook(tmp_path / "codebook.yaml")
    code_names = {c.id: c.name for c in codebook.codes}

    expected = expected_codes(path)
    got = {
        (transcripts[c.transcript_id].source_name, c.original_start, c.original_end, c.coder, code_names[c.code])
        for c in codes
    }
    labels = {label for label, *_ in expected}
    assert got == expected and len(codes) == len(expected) == summary["human_codes"]

    root = qde_of(path)
    with zipfile.ZipFile(path) as archive:
        files = {n.lower(): n for n in archive.namelist()}
        for source in root.iterfind(".//q:TextSource", NS):
            label = source.get("name") or source.get("plainTextPath")
            if label not in labels:
                continue
            entry = source.get("plainTextPath").removeprefix("internal://")
            raw = archive.read(files[f"sources/{entry}".lower()])
            transcript = next(t for t in transcripts.values() if t.source_name == label)
            for c in (c for c in codes if c.transcript_id == transcript.id):
                assert transcript.text[c.start : c.end] == span_as_exporter_meant(
                    raw, c.original_start, c.original_end, counting
                )
    # the positions as NVivo counts them put nearly every selection at the start of a comment
    if name == "oltas0517.qdpx":
        starts = {(c.transcript_id, c.start) for c in codes}
        after_break = sum(1 for t, start in starts if start == 0 or transcripts[t].text[start - 1] == "\n")
        assert after_break / len(starts) > 0.9


@needs_samples
def test_a_codebook_only_nvivo_project_and_a_bare_atlas_project_say_what_they_could_not_import(tmp_path: Path) -> None:
    result = qcode(
        "import",
        SAMPLES / "nvivo_project.qdpx",
        "--db",
        tmp_path / "a.db",
        "--codebook-out",
        tmp_path / "nvivo.yaml",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["transcripts"], summary["codes"], summary["human_codes"]) == (0, 262, 0)
    assert sum("has no text" in w for w in summary["warnings"]) == 2
    assert len(load_codebook(tmp_path / "nvivo.yaml").codes) == 262

    result = qcode(
        "import",
        SAMPLES / "Project.qde",
        "--db",
        tmp_path / "b.db",
        "--codebook-out",
        tmp_path / "atlas.yaml",
        "--json",
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["counting"] == "code-points-lf" and summary["codes"] == 14 and summary["human_codes"] == 0
    warnings = "\n".join(summary["warnings"])
    assert "'Simon.docx'" in warnings and "not imported" in warnings
    assert "PictureSource" in warnings and "VideoSource" in warnings and "PDFSource" in warnings


# ---------------------------------------------------------------- projects made here


def project_zip(path: Path, qde: str | bytes, files: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.qde", qde)
        for name, data in (files or {}).items():
            archive.writestr(name, data)
    return path


def linkages_codes() -> str:
    """The linkages codebook's <Codes>, as qcode writes them into a project."""
    return etree.tostring(codes_element(load_codebook(LINKAGES), PROJECT_NAMESPACE), encoding="unicode")


def guid_of(code_id: str) -> str:
    codebook = load_codebook(LINKAGES)
    return code_guid(codebook, codebook.get(code_id))


TEXT = (
    "Interviewer: How do teacher leaders hear from the district?\r\n"
    "Ms. Chen: We meet with the district coaches every month, and they bring the plans. 😀\r\n"
    "Interviewer: And does it work?\r\n"
    "Ms. Chen: Honestly the meetings get cancelled a lot, so the plans never reach us.\r\n"
)


def handmade(
    path: Path,
    selections: str,
    *,
    folder: str = "Sources",
    text: str = TEXT,
    header: str = "",
    namespace: bool = True,
    encoding: str = "utf-8",
) -> Path:
    """A project as a foreign tool might write it: capital `Sources/`, no schemaLocation, a BOM and CR LF in
    the text, a case with variables."""
    xmlns = f' xmlns="{PROJECT_NAMESPACE}"'
    codes = linkages_codes() if namespace else linkages_codes().replace(xmlns, "")
    xmlns = xmlns if namespace else ""
    qde = f"""{header}<Project{xmlns} name="Linkages pilot" origin="QualCoder 3.6">
<Users><User guid="{{11111111-1111-1111-1111-111111111111}}" name="ana"/>
<User guid="22222222-2222-2222-2222-222222222222" name="ben"/></Users>
<CodeBook>{codes}</CodeBook>
<Variables><Variable guid="33333333-3333-3333-3333-333333333333" name="role" typeOfVariable="Text"/>
<Variable guid="44444444-4444-4444-4444-444444444444" name="district" typeOfVariable="Text"/></Variables>
<Cases><Case guid="55555555-5555-5555-5555-555555555555" name="Chen">
<VariableValue><VariableRef targetGUID="33333333-3333-3333-3333-333333333333"/><TextValue>teacher leader</TextValue></VariableValue>
<VariableValue><VariableRef targetGUID="44444444-4444-4444-4444-444444444444"/><TextValue>Valley</TextValue></VariableValue>
<SourceRef targetGUID="66666666-6666-6666-6666-666666666666"/></Case></Cases>
<Sources><TextSource guid="66666666-6666-6666-6666-666666666666" name="chen.txt" plainTextPath="internal://66666666-6666-6666-6666-666666666666.txt">
{selections}</TextSource></Sources></Project>"""
    data = text.encode(encoding) if encoding == "utf-16" else b"\xef\xbb\xbf" + text.encode(encoding)
    return project_zip(path, qde.replace("\n", "\r\n"), {f"{folder}/66666666-6666-6666-6666-666666666666.txt": data})


def selection(start: int, end: int, code: str, user: str = "11111111-1111-1111-1111-111111111111", n: int = 1) -> str:
    return (
        f'<PlainTextSelection guid="77777777-7777-7777-7777-{n:012d}" startPosition="{start}" endPosition="{end}">'
        f'<Coding guid="88888888-8888-8888-8888-{n:012d}" creatingUser="{user}"><CodeRef targetGUID="{code}"/>'
        "</Coding></PlainTextSelection>"
    )


def positions(needle: str) -> tuple[int, int]:
    start = TEXT.index(needle)
    return start, start + len(needle)


def test_a_foreign_project_with_cases_crlf_and_a_bom_lands_where_it_was_coded(tmp_path: Path) -> None:
    meet = positions("We meet with the district coaches every month, and they bring the plans. 😀")
    cancelled = positions("the meetings get cancelled a lot, so the plans never reach us.")
    selections = (
        selection(*meet, guid_of("structural.strength"), n=1)
        + selection(*cancelled, guid_of("communication.weakness"), n=2)
        + selection(*cancelled, guid_of("communication.weakness"), "22222222-2222-2222-2222-222222222222", n=3)
        + selection(*cancelled, guid_of("communication.weakness"), n=4)
    )  # ana twice: kept once
    path = handmade(tmp_path / "pilot.qdpx", selections, header='\ufeff<?xml version="1.0" encoding="utf-8"?>\n')
    db = tmp_path / "qcode.db"
    result = qcode("import", path, "--db", db, "--codebook-out", tmp_path / "cb.yaml", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["coders"] == ["ana", "ben"] and summary["human_codes"] == 3 and summary["merged"] == 1
    transcripts, codes = stored(db)
    (transcript,) = transcripts.values()
    assert transcript.case_metadata == {"role": "teacher leader", "district": "Valley", "source_type": "interview"}
    assert "\r" not in transcript.text and transcript.source_name == "chen.txt"
    spans = {(c.coder, c.code, transcript.text[c.start : c.end]) for c in codes}
    assert spans == {
        ("ana", "structural.strength", "We meet with the district coaches every month, and they bring the plans. 😀"),
        ("ana", "communication.weakness", "the meetings get cancelled a lot, so the plans never reach us."),
        ("ben", "communication.weakness", "the meetings get cancelled a lot, so the plans never reach us."),
    }
    # the codes came back as qcode wrote them; the codebook is named after the project
    linkages = load_codebook(LINKAGES)
    assert load_codebook(tmp_path / "cb.yaml").codes == [
        c.model_copy(update={"attributes": {**c.attributes, "refi_guid": code_guid(linkages, c)}})
        for c in linkages.codes
    ]

    # importing it again changes nothing
    again = json.loads(qcode("import", path, "--db", db, "--codebook-out", tmp_path / "cb.yaml", "--json").stdout)
    assert again["human_codes"] == 0 and again["merged"] == 4
    assert len(stored(db)[1]) == 3


def test_a_codebook_file_that_differs_is_kept_and_nothing_is_imported_without_force(tmp_path: Path) -> None:
    path = handmade(tmp_path / "pilot.qdpx", selection(*positions("Honestly"), guid_of("communication.weakness")))
    db, kept = tmp_path / "qcode.db", tmp_path / "cb.yaml"
    kept.write_text("# the team's own codebook\n", encoding="utf-8")
    result = qcode("import", path, "--db", db, "--codebook-out", kept)
    assert result.exit_code == 1
    assert f"{kept}" in result.stderr and "--force" in result.stderr and "nothing was imported" in result.stderr
    assert kept.read_text(encoding="utf-8") == "# the team's own codebook\n"
    assert not db.exists()
    result = qcode("import", path, "--db", db, "--codebook-out", kept, "--force")
    assert result.exit_code == 0, result.output
    assert load_codebook(kept).codes and len(stored(db)[1]) == 1


def test_lower_case_sources_no_namespace_and_utf16_text_are_read_too(tmp_path: Path) -> None:
    honestly = selection(*positions("Honestly"), guid_of("communication.weakness"))
    path = handmade(tmp_path / "p.qdpx", honestly, folder="sources", namespace=False)
    project = read_project(path)
    assert [c.coder for c in project.codes] == ["ana"]
    assert any("no namespace" in w for w in project.warnings)
    utf16 = handmade(tmp_path / "u.qdpx", honestly, encoding="utf-16")
    (code,) = read_project(utf16).codes
    (transcript,) = read_project(utf16).transcripts
    assert transcript.text[code.start : code.end] == "Honestly"


# ---------------------------------------------------------------- bad projects


def bad_projects(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = selection(*positions("Honestly"), guid_of("communication.weakness"))
    not_zip = tmp_path / "notes.qdpx"
    not_zip.write_text("just some notes", encoding="utf-8")
    no_qde = tmp_path / "empty.qdpx"
    with zipfile.ZipFile(no_qde, "w") as archive:
        archive.writestr("sources/a.txt", "text")
    escape = handmade(tmp_path / "escape.qdpx", good)
    with zipfile.ZipFile(escape, "a") as archive:
        archive.writestr("../../outside.txt", "x")
    return {
        "not a zip": (not_zip, "not a ZIP archive"),
        "no project.qde": (no_qde, "no project.qde"),
        "malformed": (
            project_zip(tmp_path / "malformed.qdpx", "<Project name='x'><Users></Project>"),
            "not well-formed XML",
        ),
        "missing code": (
            handmade(tmp_path / "code.qdpx", selection(0, 5, "99999999-9999-9999-9999-999999999999")),
            "which is not in the project's codebook",
        ),
        "outside the text": (
            handmade(tmp_path / "range.qdpx", selection(10, len(TEXT) + 40, guid_of("communication.weakness"))),
            "outside the text",
        ),
        "missing source": (
            project_zip(
                tmp_path / "source.qdpx", zipfile.ZipFile(handmade(tmp_path / "s.qdpx", good)).read("project.qde")
            ),
            "not in the project's sources",
        ),
        "escape": (escape, "points outside the project folder"),
        "entities": (
            project_zip(
                tmp_path / "laughs.qdpx",
                '<?xml version="1.0"?><!DOCTYPE Project [<!ENTITY a "ha">'
                '<!ENTITY b "&a;&a;&a;&a;">]><Project xmlns="urn:QDA-XML:project:1.0" name="&b;"/>',
            ),
            "DOCTYPE or ENTITY declaration",
        ),
    }


def test_a_project_zipped_with_its_folder_or_with_dot_slash_names_is_read(tmp_path: Path) -> None:
    flat = handmade(tmp_path / "flat.qdpx", selection(*positions("Honestly"), guid_of("communication.weakness")))
    for label, prefix in (("folder", "Pilot study/"), ("dots", "./")):
        wrapped = tmp_path / f"{label}.qdpx"
        with zipfile.ZipFile(flat) as source, zipfile.ZipFile(wrapped, "w") as archive:
            for name in source.namelist():
                archive.writestr(prefix + name, source.read(name))
        (code,) = read_project(wrapped).codes
        assert (code.coder, code.code) == ("ana", "communication.weakness")


def test_each_bad_project_is_refused_whole_with_a_message_naming_it(tmp_path: Path) -> None:
    db = tmp_path / "qcode.db"
    for label, (path, message) in bad_projects(tmp_path).items():
        result = qcode("import", path, "--db", db, "--codebook-out", tmp_path / f"{label}.yaml")
        assert result.exit_code == 1, (label, result.output)
        assert message in result.output and str(path) in result.output.replace("\n", ""), (label, result.output)
        assert "(nothing was imported)" in result.output
        assert not (tmp_path / f"{label}.yaml").exists()
    store = Store(str(db))
    with store.session() as s:
        for table in (TranscriptRecord, HumanCodeRecord, ImportRecord, ChunkRecord):
            assert s.scalar(select(func.count()).select_from(table)) == 0


def test_an_entry_that_unpacks_to_more_than_qcode_reads_is_refused(tmp_path: Path, monkeypatch) -> None:
    import pipeline.exchange.projects

    monkeypatch.setattr(pipeline.exchange.projects, "MAX_READ", 100)
    result = qcode("import", handmade(tmp_path / "p.qdpx", ""), "--db", tmp_path / "q.db")
    assert result.exit_code == 1 and "unpacks to" in result.output and "(nothing was imported)" in result.output
    assert not (tmp_path / "q.db").exists()


def test_an_entry_over_two_gigabytes_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    path = handmade(tmp_path / "big.qdpx", "")
    data = bytearray(path.read_bytes())
    # set the text file's uncompressed size to 2 GiB in its central directory record
    name = b"Sources/66666666-6666-6666-6666-666666666666.txt"
    at = data.rindex(b"PK\x01\x02", 0, data.rindex(name))
    struct.pack_into("<I", data, at + 24, 2**31)
    path.write_bytes(bytes(data))
    result = qcode("import", path, "--db", tmp_path / "q.db")
    assert result.exit_code == 1
    assert "2,147,483,648 bytes" in result.output and "limit" in result.output


# ---------------------------------------------------------------- writing, and the round trip


def validate(path: Path) -> etree._Element:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        root = etree.fromstring(archive.read("project.qde"))
        texts = {n: archive.read(n) for n in names if n.startswith("sources/")}
    SCHEMA.assertValid(root)
    for source in root.iterfind(".//q:TextSource", NS):
        entry = "sources/" + source.get("plainTextPath").removeprefix("internal://")
        assert entry in texts and not texts[entry].startswith(b"\xef\xbb\xbf")
    return root


def reviewer(db: Path, name: str) -> Reviewer:
    store = Store(str(db))
    with store.session() as s:
        s.add(ReviewerRecord(name=name, role="lead", password_hash="x", created_at=datetime.now()))
    with store.session() as s:
        record = s.scalar(select(ReviewerRecord).where(ReviewerRecord.name == name))
        return Reviewer(id=record.id, name=record.name, role=record.role)


def test_a_reviewed_run_exports_valid_and_comes_back_the_same(tmp_path: Path) -> None:
    transcripts = {
        "chen.md": "---\ndistrict: Valley\nrole: teacher leader\n---\n" + TEXT.replace("\r\n", "\n"),
        "ortiz.txt": "Mr. Ortiz: The coaches visit 😀 our school\uffff twice a year.\nInterviewer: Why?\n"
        "Mr. Ortiz: They trust us to run the professional development ourselves.\n",
        "diaz.txt": "Ms. Diaz: Nobody from the district has asked us anything this year.\n",
        # rows of a CSV file: their ids hold the row's key, which must survive the trip
        "answers.csv": "respondent_id,role,answer\nr1,teacher,Our coach listens.\nr2,teacher,Our coach listens.\n",
    }
    db = tmp_path / "one.db"
    run_id = make_review_db(tmp_path, transcripts, LINKAGES, db)
    store = Store(str(db))
    lead = reviewer(db, "dana")
    with store.session() as s:
        by_name = {
            t.source_name: sug
            for sug, t in s.execute(
                select(SuggestionRecord, TranscriptRecord).join(
                    TranscriptRecord, TranscriptRecord.id == SuggestionRecord.transcript_id
                )
            )
        }
        first, second, third = by_name["ortiz.txt"], by_name["chen.md"], by_name["diaz.txt"]
        chunk = s.get(ChunkRecord, first.chunk_id)
        text = s.get(TranscriptRecord, chunk.transcript_id).text
    decide(store, lead, first.id, first.version, DecisionRequest(verdict="accept"))
    decide(
        store,
        lead,
        second.id,
        second.version,
        DecisionRequest(verdict="change", code="resource.weakness", reason="about time, not structure"),
    )
    decide(store, lead, third.id, third.version, DecisionRequest(verdict="reject", reason="not a linkage"))
    start = text.index("coaches")
    add_code(
        store,
        lead,
        chunk.id,
        first.codebook_version,
        DecisionRequest(verdict="add", code="relational.strength", quote_start=start, quote_end=start + len("coaches")),
    )

    out = tmp_path / "study.qdpx"
    result = qcode("export", "--format", "qdpx", "--db", db, "--run", run_id)  # to standard output, redirected
    assert result.exit_code == 0, result.output
    out.write_bytes(result.stdout_bytes)
    root = validate(out)
    users = {u.get("name") for u in root.iterfind(".//q:User", NS)}
    assert users == {"review-test:queueing-1 prompt queueing-v1", "dana"}
    notes = [n.findtext("q:PlainTextContent", namespaces=NS) for n in root.iterfind(".//q:Note", NS)]
    assert any("The passage says" in n and "confidence 0.30" in n and "accepted by dana" in n for n in notes)
    assert any("changed the code from" in n and "about time, not structure" in n for n in notes)

    again = tmp_path / "two.db"
    result = qcode("import", out, "--db", again, "--codebook-out", tmp_path / "back.yaml", "--json")
    assert result.exit_code == 0, result.output
    assert load_codebook(tmp_path / "back.yaml") == load_codebook(LINKAGES)
    before, _ = stored(db)
    after, codes = stored(again)
    assert {(t.source_name, t.text, json.dumps(t.case_metadata, sort_keys=True)) for t in before.values()} == {
        (t.source_name, t.text, json.dumps(t.case_metadata, sort_keys=True)) for t in after.values()
    }
    assert set(before) == set(after)  # the same transcripts, down to their ids

    standing = {(p.transcript_id, p.start, p.end, p.code, p.user) for p in coded_passages(store, run_id)}
    assert {(c.transcript_id, c.start, c.end, c.code, c.coder) for c in codes} == standing
    assert ("dana", "relational.strength") in {(c.coder, c.code) for c in codes}
    # the rejected suggestion stays out
    assert (third.transcript_id, third.quote_start, third.quote_end, third.code) not in {
        (c.transcript_id, c.start, c.end, c.code) for c in codes
    }


@needs_samples
def test_an_imported_project_exports_valid_and_round_trips(tmp_path: Path) -> None:
    db, back = tmp_path / "one.db", tmp_path / "two.db"
    assert qcode("import", SAMPLES / "demo.qdpx", "--db", db, "--codebook-out", tmp_path / "a.yaml").exit_code == 0
    out = tmp_path / "demo-again.qdpx"
    result = qcode("export", "--format", "qdpx", "--db", db, "--out", out)
    assert result.exit_code == 0, result.output
    validate(out)
    assert qcode("import", out, "--db", back, "--codebook-out", tmp_path / "b.yaml").exit_code == 0
    assert load_codebook(tmp_path / "a.yaml") == load_codebook(tmp_path / "b.yaml")
    (one, first), (two, second) = stored(db), stored(back)
    assert {(t.source_name, t.text) for t in one.values()} == {(t.source_name, t.text) for t in two.values()}
    assert {(c.transcript_id, c.coder, c.code, c.start, c.end) for c in first} == {
        (c.transcript_id, c.coder, c.code, c.start, c.end) for c in second
    }


# ---------------------------------------------------------------- human codes feed agreement and eval


@pytest.mark.slow
def test_imported_human_codes_feed_agreement_and_eval(tmp_path: Path) -> None:
    meet = positions("We meet with the district coaches every month, and they bring the plans. 😀")
    cancelled = positions("the meetings get cancelled a lot, so the plans never reach us.")
    ben = "22222222-2222-2222-2222-222222222222"
    selections = (
        selection(*meet, guid_of("structural.strength"), n=1)
        + selection(*meet, guid_of("communication.strength"), ben, n=2)
        + selection(*cancelled, guid_of("communication.weakness"), n=3)
        + selection(*cancelled, guid_of("communication.weakness"), ben, n=4)
    )
    path = handmade(tmp_path / "pilot.qdpx", selections)
    db = tmp_path / "qcode.db"
    assert (
        qcode("import", path, "--db", db, "--codebook-out", tmp_path / "cb.yaml", "--chunk-size", "100").exit_code == 0
    )
    result = qcode("run", path, "--codebook", tmp_path / "cb.yaml", "--db", db, "--chunk-size", "100", "--json")
    assert result.exit_code == 0, result.output

    from_db = qcode("agreement", "--db", db, "--run", "latest", "--json", "--bootstrap", "0")
    assert from_db.exit_code == 0, from_db.output
    report = json.loads(from_db.stdout)
    codings = tmp_path / "codings.csv"
    assert qcode("export", "--format", "codings", "--db", db, "--run", "latest", "--out", codings).exit_code == 0
    from_file = json.loads(qcode("agreement", codings, "--json", "--bootstrap", "0").stdout)
    assert {**from_file, "source": None} == {**report, "source": None}
    assert {"ana", "ben"} <= {c["name"] for c in report["coders"] if c["role"] == "human"}

    # the report measures the model against the imported coders too
    report = tmp_path / "report.html"
    assert qcode("report", "--db", db, "--run", "latest", "--out", report).exit_code == 0
    page = report.read_text(encoding="utf-8")
    assert "people coded in another QDA tool (pilot.qdpx)" in page and "No blind double codes yet" not in page
    assert "2 people (ana, ben) coded the transcripts in another QDA tool" in page

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: pilot\ngold:\n  transcripts: pilot.qdpx\n  codes: pilot.qdpx\n  chunk_size: 100\n"
        "codebook: cb.yaml\nbootstrap: 0\nconfigurations:\n  - name: offline\n    coder: offline\n"
        "    chunk_size: 100\n",
        encoding="utf-8",
    )
    result = qcode("eval", suite, "--json")
    assert result.exit_code == 0, result.output
    evaluated = json.loads(result.stdout)
    assert evaluated["gold"]["coders"] == ["ana", "ben"]
