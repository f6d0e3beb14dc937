"""`qcode agreement` pinned whole: the JSON object (every key, in order, every value) and the tables
people read, for tables of each kind: single-label at the nominal, ordinal and interval levels,
multi-label with the MASI distance, a model against the humans' consensus, and statistics that are
undefined on the data. The golden files are tests/golden/agreement/*; docs/agreement.md documents the
shape they hold."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from fakes import qcode
from golden import GOLDEN, check, check_text
from rich.console import Console

import pipeline.cli.measure
from pipeline.measure.agreement import Agreement

# Krippendorff (2011)'s reliability data, with two more units: one where coder A applied no code
KRIPPENDORFF = {
    "A": ["1", "2", "3", "3", "2", "1", "4", "1", "2", None, None, None, "", "3"],
    "B": ["1", "2", "3", "3", "2", "2", "4", "1", "2", "5", None, "3", "1", "3"],
    "C": [None, "3", "3", "3", "2", "3", "4", "2", "2", "5", "1", None, "1", "3"],
    "D": ["1", "2", "3", "3", "2", "4", "4", "1", "2", "5", "1", None, "1", None],
}
STAGES = """\
name: Stages
description: Ordered stages of a change.
measurement: ordinal
codes:
  - {id: awareness, name: Awareness, definition: Knows of it., attributes: {level: 0}}
  - {id: trial, name: Trial, definition: Tries it., attributes: {level: 1}}
  - {id: routine, name: Routine, definition: Does it every day., attributes: {level: 2}}
  - {id: renewal, name: Renewal, definition: Changes it again., attributes: {level: 3}}
"""
STAGE_CODES = {
    "reviewer:ana": ["awareness", "trial", "trial", "routine", "", "routine", "awareness", "trial"],
    "reviewer:ben": ["awareness", "trial", "routine", "routine", "", "trial", "awareness", None],
    "reviewer:cy": ["trial", "trial", "routine", "routine", "awareness", "routine", None, "trial"],
}
THEMES = """\
name: Themes
description: Themes of the interviews.
codes:
  - {id: funding, name: Funding and resources, definition: Money and time.}
  - {id: trust, name: Trust between colleagues, definition: Trust and respect.}
  - {id: time, name: Time to meet, definition: Time for meetings.}
  - {id: unused, name: A code nobody applies, definition: Nothing here.}
"""
# unit -> coder -> codes; a coder absent from a unit did not code it
SETS = {
    "c1": {"offline:mini": ["funding"], "reviewer:ana": ["funding"], "reviewer:ben": ["funding"], "reviewer:cy": []},
    "c2": {"offline:mini": ["funding", "trust"], "reviewer:ana": ["trust"], "reviewer:ben": ["trust", "funding"]},
    "c3": {"offline:mini": [], "reviewer:ana": ["time"], "reviewer:ben": ["time"], "reviewer:cy": ["time"]},
    "c4": {"offline:mini": ["trust"], "reviewer:ana": ["trust"], "reviewer:ben": ["trust"], "reviewer:cy": ["trust"]},
    "c5": {"offline:mini": ["time"], "reviewer:ana": [], "reviewer:ben": [], "reviewer:cy": ["funding"]},
    "c6": {"offline:mini": ["funding"], "reviewer:ana": ["funding", "time"], "reviewer:cy": ["funding"]},
    "c7": {"offline:mini": ["trust", "time"], "reviewer:ana": ["trust"], "reviewer:ben": ["time", "trust"]},
    "c8": {"offline:mini": [], "reviewer:ana": [], "reviewer:ben": [], "reviewer:cy": []},
    "c9": {"offline:mini": ["funding"], "reviewer:ben": ["funding"], "reviewer:cy": ["funding", "trust"]},
}
SINGLE = {
    "coder:gpt": ["yes", "yes", "no", "no", "yes", "no", "yes", "", "no", "yes"],
    "reviewer:ana": ["yes", "no", "no", "no", "yes", "no", "yes", "", "yes", "yes"],
    "reviewer:ben": ["yes", "no", "no", "yes", "yes", "no", "yes", "", "yes", None],
}
SAME = {"a": ["x"] * 5, "b": ["x"] * 5, "coder:m": ["x", "x", "x", "x", None]}


def write_table(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["unit_id", "coder", "code"])
        writer.writerows(rows)
    return path


def columns(values: dict[str, list[str | None]]) -> list[tuple[str, str, str]]:
    return [(f"u{u:02d}", coder, v) for coder, vs in values.items() for u, v in enumerate(vs) if v is not None]


def code_sets(units: dict[str, dict[str, list[str]]]) -> list[tuple[str, str, str]]:
    return [
        (unit, coder, code)
        for unit, coders in units.items()
        for coder, codes in coders.items()
        for code in codes or [""]
    ]


CASES = {
    "nominal": (columns(KRIPPENDORFF), None, ["--bootstrap", "200", "--seed", "3"]),
    "interval-no-bootstrap": (columns(KRIPPENDORFF), None, ["--level", "interval", "--bootstrap", "0"]),
    "ordinal-codebook": (columns(STAGE_CODES), STAGES, ["--bootstrap", "200"]),
    "multi-label-consensus": (code_sets(SETS), THEMES, ["--bootstrap", "200", "--seed", "1"]),
    "multi-label-humans": (
        [r for r in code_sets(SETS) if r[1] != "offline:mini"],
        None,
        ["--bootstrap", "100"],
    ),
    "single-label-consensus": (columns(SINGLE), None, ["--bootstrap", "200", "--seed", "7"]),
    "undefined": (columns(SAME), None, ["--bootstrap", "50", "--model-coder", "coder:m"]),
}


def invoke(tmp_path: Path, case: str, *extra: str) -> str:
    rows, codebook, options = CASES[case]
    args = ["agreement", str(write_table(tmp_path / f"{case}.csv", rows)), *options, *extra]
    if codebook is not None:
        (tmp_path / "codebook.yaml").write_text(codebook, encoding="utf-8")
        args += ["--codebook", str(tmp_path / "codebook.yaml")]
    done = qcode(*args)
    assert done.exit_code == 0, done.output
    return done.stdout


@pytest.mark.parametrize("case", sorted(CASES))
def test_agreement_json_is_pinned(tmp_path: Path, case: str) -> None:
    text = invoke(tmp_path, case, "--json")
    assert text.count("\n") == 1 and "NaN" not in text and "Infinity" not in text
    report = json.loads(text)
    report["source"] = Path(report["source"]).name  # the table's temporary path
    check(f"agreement/{case}", report)


@pytest.mark.parametrize("case", ["nominal", "ordinal-codebook", "multi-label-consensus", "undefined"])
def test_agreement_tables_are_pinned(tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline.cli.measure, "out", Console(width=160, color_system=None))
    check_text(f"agreement/{case}.txt", invoke(tmp_path, case))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_json_reads_back_as_the_typed_result(case: str) -> None:
    text = (GOLDEN / "agreement" / f"{case}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    result = Agreement.model_validate_json(text)
    assert json.dumps(result.model_dump(mode="json")) == json.dumps(data)  # the same keys, in the same order
    for pair in result.pairwise:
        for name, stat in pair.statistics():
            assert stat.value == data["pairwise"][result.pairwise.index(pair)][name]
            assert (stat.value is None) == (stat.reason is not None)
