"""Triangulation: for each code in each case, the source types that show it, counted by hand."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fakes import SMALL_CODEBOOK, code_store, qcode, scripted_coder, write, write_transcripts


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two districts. In A an interview and a district document speak of a grant, observation notes
    of trust; in B one interview speaks of both."""
    folder = tmp_path_factory.mktemp("triangulation")
    scripted_coder(
        "triangulation-coder",
        proposes="phrases",
        phrases={
            "grant": [("funding", 0.9, "a grant")],
            "trust her": [("trust", 0.9, "trust her")],
        },
    )
    transcripts = write_transcripts(
        folder / "study",
        {
            "a_interview.txt": "Interviewer: Money?\nMs. Chen: The district gave us a grant.\n",
            "a_plan.txt": "District plan\n\nEach school receives a grant for release time.\n",
            "a_notes.txt": "The coach sat with the teachers.\n\nThey said they trust her.\n",
            "b_interview.txt": "Interviewer: Money?\nMr. Ortiz: We got a grant, and I trust her.\n",
        },
    )
    write(
        transcripts / "manifest.csv",
        "file,district,source_type\n"
        "a_interview.txt,A,\n"  # inferred: interview
        "a_plan.txt,A,\n"  # inferred: document
        "a_notes.txt,A,observation\n"
        "b_interview.txt,B,interview\n",
    )
    codebook = write(folder / "small.yaml", SMALL_CODEBOOK)
    db = folder / "study.db"
    summary = code_store(transcripts, codebook, db, coder="triangulation-coder", audit_share=0, unit="turn")
    assert summary.accepted == 5 and summary.queued == 0
    return db


def test_each_code_in_each_case_counts_the_source_types_that_show_it(study: Path) -> None:
    answer = qcode("matrix", "--triangulate", "--by", "district", "--db", study)
    assert answer.exit_code == 0, answer.stderr
    table = {(r["code"], r["district"]): r for r in csv.DictReader(io.StringIO(answer.stdout))}
    assert set(table) == {("funding", "A"), ("trust", "A"), ("funding", "B"), ("trust", "B")}
    counts = {
        key: {k.split(":")[0]: int(v) for k, v in row.items() if k.endswith(": passages") and int(v)}
        for key, row in table.items()
    }
    assert counts == {
        ("funding", "A"): {"document": 1, "interview": 1},
        ("trust", "A"): {"observation": 1},
        ("funding", "B"): {"interview": 1},
        ("trust", "B"): {"interview": 1},
    }
    assert {key: row["one_source_type"] for key, row in table.items()} == {
        ("funding", "A"): "",
        ("trust", "A"): "yes",
        ("funding", "B"): "yes",
        ("trust", "B"): "yes",
    }
    assert table[("funding", "A")]["document: exemplar"] == "a grant"
    assert table[("funding", "A")]["document: from"] == "a_plan.txt"
    assert "3 shown by one source type only" in answer.stderr


def test_the_page_marks_codes_of_one_source_type_and_the_json_summary_counts(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "triangulation.html"
    answer = qcode("matrix", "--triangulate", "--by", "district", "--db", study, "--out", out, "--json")
    assert answer.exit_code == 0, answer.stderr
    assert json.loads(answer.stdout) == {
        "out": str(out),
        "format": "html",
        "status": "accepted",
        "by": "district",
        "cases": 2,
        "source_types": ["document", "interview", "observation"],
        "codes_in_cases": 4,
        "one_source_type": 3,
    }
    page = out.read_text(encoding="utf-8")
    assert page.count('class="one-source"') == 3 and "one source type only" in page
    assert "<script" not in page


def test_the_report_has_the_triangulation_section(study: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert qcode("report", "--db", study, "--out", out).exit_code == 0
    page = out.read_text(encoding="utf-8")
    section = page[page.index('id="triangulation"') : page.index('id="methods"')]
    assert "qcode matrix --triangulate --by district" in section
    assert section.count('class="one-source"') == 3
    # a study of one source type says there is nothing to triangulate
    other = tmp_path / "interviews"
    write_transcripts(other, {"x.txt": "Interviewer: Money?\nMs. Chen: The district gave us a grant.\n"})
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    code_store(other, codebook, tmp_path / "one.db", coder="triangulation-coder", audit_share=0)
    assert qcode("report", "--db", tmp_path / "one.db", "--out", tmp_path / "one.html").exit_code == 0
    one = (tmp_path / "one.html").read_text(encoding="utf-8")
    assert "Nothing to triangulate: every transcript in scope is of one source type (interview)." in one


def test_bad_requests(study: Path) -> None:
    answer = qcode("matrix", "--triangulate", "--db", study)
    assert answer.exit_code == 2 and "--triangulate needs --by" in answer.stderr
    answer = qcode("matrix", "--triangulate", "--by", "district", "--cols", "role", "--db", study)
    assert answer.exit_code == 2 and "leave out --rows, --cols" in answer.stderr
    answer = qcode("matrix", "--triangulate", "--by", "district", "--format", "xlsx", "--db", study)
    assert answer.exit_code == 2 and "--triangulate writes html or csv, not xlsx" in answer.stderr
    answer = qcode("matrix", "--by", "district", "--db", study)
    assert answer.exit_code == 2 and "--by goes with --triangulate" in answer.stderr
    answer = qcode("matrix", "--triangulate", "--by", "distrct", "--db", study)
    assert answer.exit_code == 1
    assert "unknown case attribute 'distrct' for --by (the case attributes here: district)" in answer.stderr
    answer = qcode("matrix", "--triangulate", "--by", "source_type", "--db", study)
    assert answer.exit_code == 1 and "--by names a case attribute such as district" in answer.stderr
