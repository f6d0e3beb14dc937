from __future__ import annotations

import json
import zipfile
from pathlib import Path

import openpyxl
import pytest
from fakes import CODEBOOKS, ROOT, qcode
from lxml import etree

from pipeline.codebook import Code, Codebook, CodebookError, Examples, dump_yaml, load_codebook
from pipeline.errors import FileError
from pipeline.exchange.codebooks import (
    PROJECT_NAMESPACE,
    QDC_NAMESPACE,
    ExchangeError,
    code_guid,
    codebook_from_codes,
    codebook_set_element,
    codes_element,
    qdc_bytes,
    read_qdc,
    read_spreadsheet,
    write_qdc,
)

SCHEMA = etree.XMLSchema(etree.parse(str(ROOT / "tests" / "refi_qda" / "Codebook.xsd")))
SAMPLES = Path("/work/shared/refi-qda/samples")
SHIPPED = sorted(CODEBOOKS.glob("*.yaml"))
Q = f"{{{QDC_NAMESPACE}}}"


def assert_valid(data: bytes) -> None:
    document = etree.fromstring(data)
    assert SCHEMA.validate(document), SCHEMA.error_log


def yaml_round_trip(codebook: Codebook, tmp_path: Path) -> Codebook:
    path = tmp_path / "back.yaml"
    path.write_text(dump_yaml(codebook), encoding="utf-8")
    return load_codebook(path)


# ---------------------------------------------------------------- export and round trip


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_codebooks_export_valid_qdc_and_come_back_equal(path: Path, tmp_path: Path) -> None:
    codebook = load_codebook(path)
    out = tmp_path / "out.qdc"
    write_qdc(codebook, out)
    data = out.read_bytes()
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<CodeBook xmlns=\"urn:QDA-XML:codebook:1.0\"")
    assert b'origin="qcode ' in data
    assert_valid(data)
    assert list(tmp_path.iterdir()) == [out]  # nothing left aside

    imported = read_qdc(out)
    assert imported.codebook == codebook
    assert imported.warnings == []
    assert imported.guids == {code_guid(codebook, code): code.id for code in codebook.codes}
    assert yaml_round_trip(codebook, tmp_path) == codebook
    if codebook.measurement == "ordinal":
        assert [c.attributes["level"] for c in imported.codebook.leaves] == list(range(7))


def test_export_nests_codes_folds_the_description_and_is_stable() -> None:
    codebook = load_codebook(CODEBOOKS / "linkages.yaml")
    data = qdc_bytes(codebook)
    assert data == qdc_bytes(codebook)  # the same GUIDs every time
    root = etree.fromstring(data)
    top = root.findall(f"{Q}Codes/{Q}Code")
    assert [c.get("name") for c in top][:2] == ["Structural linkage", "Relational linkage"]
    assert {c.get("isCodable") for c in top} == {"false"}
    leaf = top[0].find(f"{Q}Code")
    assert leaf.get("isCodable") == "true"
    text = leaf.findtext(f"{Q}Description")
    structural = codebook.get("structural.strength")
    assert text.startswith(structural.definition + "\n\nInclusion criteria:\n- " + structural.inclusion[0])
    assert (
        "\n\nExclusion criteria:\n- " in text and "\n\nExamples:\n- " in text and "\n\nNegative examples:\n- " in text
    )
    assert text.splitlines()[-1].startswith(
        'qcode: {"id": "structural.strength", "attributes": {"valence": "strength"}'
    )
    members = root.findall(f"{Q}Sets/{Q}Set/{Q}MemberCode")
    assert len(members) == len(codebook.codes)


def test_colour_guid_order_and_awkward_text_survive(tmp_path: Path) -> None:
    codebook = Codebook(
        name="Awkward",
        description="Line one.\n\nSource: not a source line",
        source="Someone (2020).",
        measurement="ordinal",
        similarity_threshold=0.42,
        codes=[
            Code(
                id="child",
                name="Child & <co>",
                definition="Has a parent listed after it.",
                inclusion=["two\nlines", "  indented\n    more"],
                parent="top",
                attributes={"level": 2, "color": "#1f77b4", "note": "x"},
            ),
            Code(
                id="top",
                name="Top",
                definition="A definition.\n\nExamples:\n- not a real section",
                attributes={"refi_guid": "{0983E32E-6866-431A-BD94-DAC9BB963825}", "level": 1.5},
            ),
            Code(
                id="other",
                name="Other",
                definition="Uncodable leaf, bad colour.",
                examples=Examples(negative=["- starts with a dash"]),
                attributes={"codable": False, "color": "red", "level": 0},
            ),
        ],
    )
    out = tmp_path / "awkward.qdc"
    write_qdc(codebook, out)
    assert_valid(out.read_bytes())
    root = etree.parse(str(out)).getroot()
    codes = {c.get("name"): c for c in root.iter(f"{Q}Code")}
    assert codes["Top"].get("guid") == "0983e32e-6866-431a-bd94-dac9bb963825"
    assert codes["Child & <co>"].get("color") == "#1f77b4"
    assert codes["Other"].get("color") is None and codes["Other"].get("isCodable") == "false"
    assert read_qdc(out).codebook == codebook
    assert yaml_round_trip(codebook, tmp_path) == codebook


def test_codes_element_in_the_project_namespace() -> None:
    codebook = load_codebook(CODEBOOKS / "linkages.yaml")
    element = codes_element(codebook, PROJECT_NAMESPACE)
    assert element.tag == f"{{{PROJECT_NAMESPACE}}}Codes"
    assert len(list(element.iter(f"{{{PROJECT_NAMESPACE}}}Code"))) == len(codebook.codes)
    again = codebook_from_codes(
        element, PROJECT_NAMESPACE, name=codebook.name, description=codebook.description, source=codebook.source
    )
    assert again.codebook == codebook.model_copy(update={"similarity_threshold": 0.5})


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_a_project_carries_the_whole_codebook_in_its_codes_and_a_set(path: Path) -> None:
    codebook = load_codebook(path)
    p = f"{{{PROJECT_NAMESPACE}}}"
    project = etree.Element(f"{p}Project", nsmap={None: PROJECT_NAMESPACE}, name="Pilot project")
    etree.SubElement(project, f"{p}CodeBook").append(codes_element(codebook, PROJECT_NAMESPACE))
    etree.SubElement(project, f"{p}Sets").append(codebook_set_element(codebook, PROJECT_NAMESPACE))
    project = etree.fromstring(etree.tostring(project))
    schema = etree.XMLSchema(etree.parse(str(ROOT / "tests" / "refi_qda" / "Project.xsd")))
    assert schema.validate(project), schema.error_log
    imported = codebook_from_codes(
        project.find(f"{p}CodeBook/{p}Codes"),
        PROJECT_NAMESPACE,
        name="Pilot project",
        description="Imported from pilot.qdpx",
        sets=project.find(f"{p}Sets"),
    )
    assert imported.codebook == codebook and imported.warnings == []


def test_a_codebook_whose_parents_loop_is_not_exported() -> None:
    codebook = Codebook(
        name="Loop",
        description="d",
        codes=[Code(id="a", name="A", definition="a", parent="b"), Code(id="b", name="B", definition="b", parent="a")],
    )
    with pytest.raises(ExchangeError, match="loop"):
        qdc_bytes(codebook)


# ---------------------------------------------------------------- import of files from other programs

FOREIGN = (
    '<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin="OtherQDA 3.1">\r\n'
    "  <Codes>\r\n"
    '    <Code guid="{6F9619FF-8B86-D011-B42D-00C04FC964FF}" name="Emotions" isCodable="false" color="#FF0000">\r\n'
    "      <Description>Feelings the speaker names.</Description>\r\n"
    '      <Code guid="{6F9619FF-8B86-D011-B42D-00C04FC96500}" name="Joy" isCodable="true" color="#0f0"/>\r\n'
    '      <Code guid="6f9619ff-8b86-d011-b42d-00c04fc96501" name="Anger" isCodable="true">\r\n'
    "        <Description></Description>\r\n"
    "      </Code>\r\n"
    "    </Code>\r\n"
    '    <Code guid="6f9619ff-8b86-d011-b42d-00c04fc96502" name="Memo only" isCodable="false">\r\n'
    "      <Description>Line one\r\nline two</Description>\r\n"
    "    </Code>\r\n"
    '    <Code guid="6f9619ff-8b86-d011-b42d-00c04fc96503" name="Joy" isCodable="true"/>\r\n'
    "  </Codes>\r\n"
    '  <Sets><Set guid="6f9619ff-8b86-d011-b42d-00c04fc96504" name="Favourites">'
    '<MemberCode guid="6f9619ff-8b86-d011-b42d-00c04fc96503"/></Set></Sets>\r\n'
    "</CodeBook>\r\n"
)


def test_import_of_a_foreign_qdc(tmp_path: Path) -> None:
    path = tmp_path / "foreign.qdc"
    path.write_bytes(b"\xef\xbb\xbf" + FOREIGN.encode("utf-8"))
    assert_valid(FOREIGN.encode())  # the test file itself is valid QDC
    imported = read_qdc(path)
    codebook = imported.codebook
    assert codebook.name == "foreign"
    assert codebook.description == "Imported from foreign.qdc"
    assert codebook.measurement == "nominal"
    assert [(c.id, c.parent) for c in codebook.codes] == [
        ("emotions", None),
        ("joy", "emotions"),
        ("anger", "emotions"),
        ("memo-only", None),
        ("joy-2", None),
    ]
    emotions, joy, anger, memo, _ = codebook.codes
    assert emotions.definition == "Feelings the speaker names."
    assert emotions.attributes == {"color": "#FF0000", "refi_guid": "6f9619ff-8b86-d011-b42d-00c04fc964ff"}
    assert joy.attributes["color"] == "#0f0"
    assert anger.definition == "Anger"
    assert memo.definition == "Line one\nline two"
    assert memo.attributes["codable"] is False
    assert imported.guids["6f9619ff-8b86-d011-b42d-00c04fc96500"] == "joy"
    assert len(imported.guids) == 5
    warnings = "\n".join(imported.warnings)
    assert "code set 'Favourites' not imported" in warnings
    assert "3 codes have no description: their names stand as their definitions ('Joy', 'Anger', 'Joy')" in warnings
    assert "code 'Memo only' is not codable in the file" in warnings
    assert "'Joy' (joy-2)" in warnings
    assert yaml_round_trip(codebook, tmp_path) == codebook

    # and once in qcode, the foreign codes keep their GUIDs and everything else through another trip
    again = tmp_path / "again.qdc"
    write_qdc(codebook, again)
    root = etree.parse(str(again)).getroot()
    assert root.find(f"{Q}Codes/{Q}Code").get("guid") == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert root.findall(f"{Q}Codes/{Q}Code")[1].get("isCodable") == "false"
    assert read_qdc(again).codebook == codebook


def test_a_description_edited_in_another_program_is_read_back(tmp_path: Path) -> None:
    codebook = load_codebook(CODEBOOKS / "linkages.yaml")
    data = qdc_bytes(codebook).decode()
    original = codebook.get("relational.weakness")
    edited = data.replace(original.definition, "Rewritten in NVivo.").replace("\n", "\r\n")
    path = tmp_path / "edited.qdc"
    path.write_text(edited, encoding="utf-8", newline="")
    imported = read_qdc(path)
    code = imported.codebook.get("relational.weakness")
    assert code.definition == "Rewritten in NVivo."
    assert (code.inclusion, code.exclusion, code.examples) == (
        original.inclusion,
        original.exclusion,
        original.examples,
    )
    assert imported.codebook.codes[0] == codebook.codes[0]
    assert imported.warnings == [
        (
            "the description of code 'Relational linkage - weakness' was changed after qcode "
            "wrote it: definition, criteria and examples were read back from its text"
        )
    ]


def test_namespace_less_codebook_is_read_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "plain.qdc"
    path.write_text(
        '<?xml version="1.0"?><CodeBook><Codes><Code guid="6f9619ff-8b86-d011-b42d-00c04fc96502" '
        'name="Only" isCodable="true"><Description>d</Description></Code></Codes></CodeBook>'
    )
    imported = read_qdc(path, name="Renamed")
    assert imported.codebook.name == "Renamed"
    assert [c.id for c in imported.codebook.codes] == ["only"]
    assert "no namespace" in imported.warnings[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not xml", "not well-formed XML"),
        (b"", "not well-formed XML"),
        (b'<Project xmlns="urn:QDA-XML:project:1.0" name="p"/>', "a REFI-QDA project, not a codebook"),
        (b'<CodeBook xmlns="urn:example:other"><Codes/></CodeBook>', "namespace 'urn:example:other'"),
        (b'<CodeBook xmlns="urn:QDA-XML:codebook:1.0"/>', "has no <Codes>"),
        (b'<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes/></CodeBook>', "no <Code>"),
        (
            (
                b'<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes>\n<Code guid="6f9619ff-8b86-d011-b42d-00c04fc96502" '
                b'isCodable="true"/></Codes></CodeBook>'
            ),
            "line 2: the <Code> with guid 6f9619ff-8b86-d011-b42d-00c04fc96502 has no name",
        ),
        (
            b'<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes><Code name="x" isCodable="true"/></Codes></CodeBook>',
            "line 1: a <Code> has no guid",
        ),
        (
            (
                b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">'
                b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]><CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes>'
                b'<Code guid="6f9619ff-8b86-d011-b42d-00c04fc96502" name="&lol3;" isCodable="true"/></Codes></CodeBook>'
            ),
            "DOCTYPE or ENTITY",
        ),
        (
            (
                b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><CodeBook '
                b'xmlns="urn:QDA-XML:codebook:1.0"><Codes><Code guid="6f9619ff-8b86-d011-b42d-00c04fc96502" name="&xxe;" '
                b'isCodable="true"/></Codes></CodeBook>'
            ),
            "DOCTYPE or ENTITY",
        ),
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><CodeBook/>'.encode("utf-16"),
            "DOCTYPE or ENTITY",
        ),
    ],
)
def test_bad_qdc_files_are_refused_with_the_file_named(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.qdc"
    path.write_bytes(content)
    with pytest.raises(ExchangeError) as caught:
        read_qdc(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_a_missing_file_is_said_as_for_every_file(tmp_path: Path) -> None:
    with pytest.raises(FileError, match="missing.qdc: no such file"):
        read_qdc(tmp_path / "missing.qdc")
    with pytest.raises(FileError, match="missing.xlsx: no such file"):
        read_spreadsheet(tmp_path / "missing.xlsx")


# ---------------------------------------------------------------- the Codes of real projects

PROJECTS = [("demo.qdpx", 262), ("nvivo_project.qdpx", 262), ("oltas0517.qdpx", 152), ("Project.qde", 14)]


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="the REFI-QDA samples are not on this machine")
@pytest.mark.parametrize(("sample", "count"), PROJECTS, ids=[p for p, _ in PROJECTS])
def test_codes_of_sample_projects(sample: str, count: int, tmp_path: Path) -> None:
    path = SAMPLES / sample
    data = zipfile.ZipFile(path).read("project.qde") if path.suffix == ".qdpx" else path.read_bytes()
    root = etree.fromstring(data)
    p = f"{{{PROJECT_NAMESPACE}}}"
    codes = root.find(f"{p}CodeBook/{p}Codes")
    imported = codebook_from_codes(codes, PROJECT_NAMESPACE, name=path.stem, description=f"Imported from {path.name}")
    codebook = imported.codebook
    assert len(codebook.codes) == count
    assert len(imported.guids) == count
    assert set(imported.guids.values()) == {c.id for c in codebook.codes}
    assert yaml_round_trip(codebook, tmp_path) == codebook  # a valid codebook, by check_codebook's rules
    data = qdc_bytes(codebook)
    assert_valid(data)
    out = tmp_path / "again.qdc"
    out.write_bytes(data)
    again = read_qdc(out)
    assert again.codebook == codebook and again.warnings == []
    assert again.guids == imported.guids  # foreign GUIDs survive, so codings can still point at them
    if sample == "Project.qde":  # ATLAS.ti names its hierarchy "Coke::diet Coke"
        assert codebook.get("diet-coke").parent == "coke"
        assert codebook.get("diet-coke").name == "diet Coke"
        assert codebook.get("coke").attributes["codable"] is True
        assert codebook.get("coke").attributes["color"] == "#966450"


# ---------------------------------------------------------------- spreadsheets


def write_xlsx(path: Path, rows: list[list[object]], extra_sheet: bool = False) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Codebook"
    for row in rows:
        sheet.append(row)
    if extra_sheet:
        workbook.create_sheet("Notes").append(["some notes"])
    workbook.save(path)


def test_spreadsheet_import_from_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "My codes.xlsx"
    write_xlsx(
        path,
        [
            [
                "Category",
                "Code",
                "Definition",
                "Inclusion criteria",
                "Exclusion",
                "Example 1",
                "Example 2",
                "Counterexamples",
                "Colour",
                "Valence",
                "Level",
            ],
            [
                "Structural",
                "Roles and meetings",
                "Formal roles and meetings.",
                "- a committee\n- a schedule",
                "Stipends; use resource.",
                "We meet monthly.",
                "The council has a seat for us.",
                "We get paid.",
                "#1F77B4",
                "strength",
                2,
            ],
            [None, None, None, None, None, None, None, None, None, None, None],
            ["Structural", "No structure", None, None, None, None, None, None, "blue", "weakness", 2.5],
            [None, "Trust", "Teachers trust the district.", None, None, None, None, None, None, None, None],
        ],
        extra_sheet=True,
    )
    imported = read_spreadsheet(path)
    codebook = imported.codebook
    assert codebook.name == "My codes" and codebook.description == "Imported from My codes.xlsx"
    assert [(c.id, c.parent) for c in codebook.codes] == [
        ("structural", None),
        ("roles-and-meetings", "structural"),
        ("no-structure", "structural"),
        ("trust", None),
    ]
    roles = codebook.get("roles-and-meetings")
    assert roles.inclusion == ["a committee", "a schedule"]
    assert roles.exclusion == ["Stipends; use resource."]  # not split on ';'
    assert roles.examples.positive == ["We meet monthly.", "The council has a seat for us."]
    assert roles.examples.negative == ["We get paid."]
    assert roles.attributes == {"valence": "strength", "level": 2, "color": "#1F77B4"}
    assert codebook.get("no-structure").definition == "No structure"
    assert codebook.get("no-structure").attributes == {"valence": "weakness", "level": 2.5}
    warnings = "\n".join(imported.warnings)
    assert "only the first sheet 'Codebook' was read; sheet 'Notes' was not" in warnings
    assert "code 'No structure' has no definition" in warnings
    assert "code 'No structure' ('blue') has a colour that is not #RGB or #RRGGBB" in warnings
    assert "category 'Structural' has no row of its own" in warnings
    assert "2 codes share their names" not in warnings
    assert yaml_round_trip(codebook, tmp_path) == codebook


def test_spreadsheet_import_from_csv_with_ids_and_parents(tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    path.write_bytes(
        "\ufeffID;Name;Description;Parent;Positive examples;Level\r\n"
        "soc;Stages;All stages;;;\r\n"
        'SOC-0;Unconcerned;Not on my radar;Stages;"Not a priority.\r\nOther things first.";0\r\n'
        "soc-1;Informational;Wants to know more;soc;;1\r\n".encode("utf-8")
    )
    codebook = read_spreadsheet(path, name="CBAM").codebook
    assert codebook.name == "CBAM"
    assert [(c.id, c.parent, c.attributes) for c in codebook.codes] == [
        ("soc", None, {}),
        ("soc-0", "soc", {"level": 0}),
        ("soc-1", "soc", {"level": 1}),
    ]
    assert codebook.get("soc-0").examples.positive == ["Not a priority.", "Other things first."]


def test_spreadsheet_category_rows_and_repeated_columns(tmp_path: Path) -> None:
    path = tmp_path / "themes.csv"
    path.write_text("Theme,Code,Notes,Notes\nTrust,Trust,a,b\nTrust,Respect,,c\n,Respect,,\n", encoding="utf-8")
    imported = read_spreadsheet(path)
    assert [(c.id, c.parent, c.attributes) for c in imported.codebook.codes] == [
        ("trust", None, {"notes": "a", "notes-2": "b"}),
        ("respect", "trust", {"notes-2": "c"}),
        ("respect-2", None, {}),
    ]
    assert imported.warnings[-1] == (
        "the id made from the name of code 'Respect' (respect-2) was taken by an earlier code: it is numbered"
    )


def test_spreadsheet_problems_name_every_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "id,name,definition,parent\n"
        "a,Alpha,First,\n"
        "Not An Id,Beta,Second,\n"
        "c,Gamma,Third,zeta\n"
        "a,Delta,Fourth,\n"
        ",,Just a definition,\n"
        "e,Epsilon,Fifth,f\n"
        "f,Phi,Sixth,e\n",
        encoding="utf-8",
    )
    with pytest.raises(CodebookError) as caught:
        read_spreadsheet(path)
    found = [(p.line, p.message) for p in caught.value.problems]
    assert [line for line, _ in found] == [3, 4, 5, 6, 7, 8]
    assert all(p.file == str(path) for p in caught.value.problems)
    messages = "\n".join(m for _, m in found)
    assert "id 'not an id' must be lowercase letters" in messages
    assert "unknown parent 'zeta'" in messages
    assert "duplicate code id 'a' (first in row 2)" in messages
    assert "no name or id for this code" in messages
    assert "parent chain loops back" in messages


def test_spreadsheet_without_a_name_column(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("Definition,Notes\nSomething,x\n", encoding="utf-8")
    with pytest.raises(CodebookError, match="no column for the code's name"):
        read_spreadsheet(path)


def test_spreadsheet_in_windows_1252_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("name,definition\nÉmotion,Ce que l'on ressent\n".encode("cp1252"))
    assert [c.name for c in read_spreadsheet(path).codebook.codes] == ["Émotion"]


# ---------------------------------------------------------------- the commands


def test_import_command_writes_yaml_and_reports(tmp_path: Path) -> None:
    source = tmp_path / "foreign.qdc"
    source.write_text(FOREIGN, encoding="utf-8", newline="")
    out = tmp_path / "codebook.yaml"
    result = qcode("codebook", "import", str(source), "--out", str(out), "--name", "Feelings")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "warning: code set 'Favourites' not imported" in result.stderr
    assert "5 codes (2 categories, 3 applicable) imported to" in result.stderr
    codebook = load_codebook(out)
    assert codebook.name == "Feelings" and len(codebook.codes) == 5
    assert out.read_text(encoding="utf-8").startswith("# Imported from foreign.qdc by qcode")

    refused = qcode("codebook", "import", str(source), "--out", str(out))
    assert refused.exit_code == 1 and "exists; add --force to replace it" in refused.stderr
    forced = qcode("codebook", "import", str(source), "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output

    to_stdout = qcode("codebook", "import", str(source))
    assert to_stdout.exit_code == 0
    (tmp_path / "stdout.yaml").write_text(to_stdout.stdout, encoding="utf-8")
    assert load_codebook(tmp_path / "stdout.yaml") == load_codebook(out).model_copy(update={"name": "foreign"})


def test_import_command_errors(tmp_path: Path) -> None:
    odd = tmp_path / "codes.txt"
    odd.write_text("x")
    result = qcode("codebook", "import", str(odd))
    assert result.exit_code == 1 and f"{odd}: cannot import a '.txt' file" in result.stderr
    bad = tmp_path / "bad.qdc"
    bad.write_text("<CodeBook")
    result = qcode("codebook", "import", str(bad))
    assert result.exit_code == 1 and f"{bad}: not well-formed XML" in result.stderr
    rows = tmp_path / "rows.csv"
    rows.write_text("id,name\na,A\na,B\n")
    result = qcode("codebook", "import", str(rows), "--out", str(tmp_path / "x.yaml"))
    assert result.exit_code == 1
    assert f"{rows}:3: duplicate code id 'a'" in result.stderr
    assert not (tmp_path / "x.yaml").exists()


def test_export_command(tmp_path: Path) -> None:
    path = CODEBOOKS / "cbam-stages.yaml"
    result = qcode("codebook", "export", str(path), "--format", "qdc")
    assert result.exit_code == 0, result.output
    assert_valid(result.stdout_bytes)
    assert "7 codes (no categories) exported" in result.stderr

    out = tmp_path / "cbam.qdc"
    assert qcode("codebook", "export", str(path), "--format", "QDC", "--out", str(out)).exit_code == 0
    assert read_qdc(out).codebook == load_codebook(path)
    refused = qcode("codebook", "export", str(path), "--format", "qdc", "--out", str(out))
    assert refused.exit_code == 1 and "exists; add --force to replace it" in refused.stderr

    other = qcode("codebook", "export", str(path), "--format", "csv")
    assert other.exit_code == 2 and "--format 'csv' is not one of qdc" in other.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\ndescription: y\ncodes:\n  - id: A B\n    name: n\n")
    result = qcode("codebook", "export", str(broken), "--format", "qdc")
    assert result.exit_code == 1
    assert f"{broken}:4: code 'A B': missing definition" in result.stderr
    as_json = qcode("codebook", "export", str(broken), "--format", "qdc", "--json")
    assert as_json.exit_code == 2 and "--json needs --out" in json.loads(as_json.stdout)["error"]
