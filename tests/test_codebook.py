from __future__ import annotations

from pathlib import Path

import pytest
from fakes import CODEBOOKS, SMALL_CODEBOOK, qcode

from pipeline.codebook import CodebookError, check_codebook, load_codebook


@pytest.mark.parametrize("path", sorted(CODEBOOKS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_codebooks_are_valid(path: Path) -> None:
    codebook = load_codebook(path)
    assert codebook.leaves
    for code in codebook.leaves:
        assert code.definition.strip()
        assert code.examples.positive, f"{code.id} has no positive example"


def test_shipped_codebooks_have_the_studies_codes() -> None:
    linkages = load_codebook(CODEBOOKS / "linkages.yaml")
    parents = {c.id for c in linkages.codes if c.parent is None}
    assert {"structural", "relational", "resource", "communication", "ideological", "boundary-spanning"} <= parents
    for leaf in linkages.leaves:
        assert leaf.attributes["valence"] in ("strength", "weakness")
    cbam = load_codebook(CODEBOOKS / "cbam-stages.yaml")
    assert cbam.measurement == "ordinal"
    assert sorted(c.attributes["level"] for c in cbam.leaves) == list(range(7))


def test_version_ignores_formatting_but_not_content(tmp_path: Path) -> None:
    a = tmp_path / "a.yaml"
    a.write_text(SMALL_CODEBOOK)
    b = tmp_path / "b.yaml"
    b.write_text("# a comment\n" + SMALL_CODEBOOK.replace("name: Small test codebook", "name:   'Small test codebook'"))
    c = tmp_path / "c.yaml"
    c.write_text(SMALL_CODEBOOK.replace("Money, budgets", "Money and budgets"))
    assert load_codebook(a).version == load_codebook(b).version
    assert load_codebook(a).version != load_codebook(c).version
    assert len(load_codebook(a).version) == 12


BROKEN = """\
name: Broken
description: Every kind of problem.
codes:
  - id: alpha
    name: Alpha
    definition: The first code.
  - id: beta
    name: Beta
  - id: alpha
    name: Alpha again
    definition: A duplicate.
  - id: gamma
    name: Gamma
    definition: Has a parent that does not exist.
    parent: nowhere
  - id: delta
    name: Delta
    definition: Unknown field.
    colour: red
"""


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    _, problems = check_codebook(path)
    text = [str(p) for p in problems]
    assert f"{path}:7: code 'beta': missing definition" in text
    assert f"{path}:9: duplicate code id 'alpha' (first defined at line 4)" in text
    assert f"{path}:15: code 'gamma': unknown parent 'nowhere'" in text
    assert any(t.startswith(f"{path}:19:") and "colour" in t for t in text)
    assert len(problems) == 4
    with pytest.raises(CodebookError):
        load_codebook(path)


def test_ordinal_codebook_needs_levels(tmp_path: Path) -> None:
    path = tmp_path / "ordinal.yaml"
    path.write_text(SMALL_CODEBOOK.replace("measurement: nominal", "measurement: ordinal"))
    _, problems = check_codebook(path)
    assert len(problems) == 2 and all("attributes.level" in p.message for p in problems)


def test_parent_cycle_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "cycle.yaml"
    path.write_text(
        "name: C\ndescription: d\ncodes:\n"
        "  - {id: a, name: A, definition: x, parent: b}\n"
        "  - {id: b, name: B, definition: y, parent: a}\n"
    )
    _, problems = check_codebook(path)
    assert any("loops" in p.message for p in problems)


def test_not_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    _, problems = check_codebook(path)
    assert len(problems) == 1 and "not valid YAML" in problems[0].message and problems[0].line


def test_validate_command(tmp_path: Path) -> None:
    good = qcode("codebook", "validate", str(CODEBOOKS / "linkages.yaml"))
    assert good.exit_code == 0, good.output
    assert "ok" in good.output
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    bad = qcode("codebook", "validate", str(path))
    assert bad.exit_code == 1
    assert "duplicate code id 'alpha'" in bad.output
    assert "4 problem(s)" in bad.output


def test_codable_decides_which_codes_are_applied(tmp_path: Path) -> None:
    path = tmp_path / "nvivo.yaml"
    path.write_text(
        "name: N\ndescription: d\ncodes:\n"
        "  - {id: parent, name: P, definition: x, attributes: {codable: true}}\n"
        "  - {id: child, name: C, definition: y, parent: parent}\n"
        "  - {id: group, name: G, definition: z}\n"
        "  - {id: member, name: M, definition: w, parent: group}\n"
        "  - {id: memo, name: Memo, definition: v, attributes: {codable: false}}\n"
    )
    assert [c.id for c in load_codebook(path).leaves] == ["parent", "child", "member"]


def test_a_key_given_twice_is_a_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text("name: T\ndescription: d\ncodes:\n  - id: a\n    name: A\n    definition: x\n    name: B\n")
    codebook, problems = check_codebook(path)
    assert [(p.line, p.message) for p in problems] == [
        (7, "'name' is given twice here: YAML would keep the second silently")
    ]


def test_an_unknown_parent_is_said_even_beside_another_problem_and_a_faulty_parent_is_not_unknown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "parents.yaml"
    path.write_text(
        "name: T\ndescription: d\ncodes:\n"
        "  - id: b\n    name: B\n"  # no definition: a problem of its own, but it exists
        "  - id: c\n    name: C\n    definition: y\n    parent: nosuch\n    inclsion: [z]\n"
        "  - id: d\n    name: D\n    definition: w\n    parent: b\n"
    )
    _, problems = check_codebook(path)
    assert [p.message for p in problems] == [
        "code 'b': missing definition",
        "code 'c': unknown field 'inclsion'",
        "code 'c': unknown parent 'nosuch'",
    ]


def test_an_attribute_value_of_no_kind_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "attribute.yaml"
    path.write_text(
        "name: T\ndescription: d\ncodes:\n  - id: a\n    name: A\n    definition: x\n    attributes:\n      x: [1, 2]\n"
    )
    _, problems = check_codebook(path)
    assert [p.message for p in problems] == ["code 'a': attributes.x: must be a text, a number or true/false"]
