"""`qcode matrix`: cross-case matrices of coded passages, and codes that occur together.

One real SQLite database for the module: five transcripts (one of them in two passages) coded by a
real `qcode run` with a scripted coder whose confidences route each suggestion, then settled by a
reviewer (accept, reject, change, add). Every count below is worked out by hand from the script.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fakes import code_store, qcode, scripted_coder
from fakes.review_server import make_reviewers
from golden import check, check_text, plain
from sqlalchemy import select
from test_report import Tables

from pipeline.errors import StoreError
from pipeline.measure.matrix import (
    about,
    cooccurrence,
    cooccurrence_view,
    cross_tab,
    load_study,
    matrix_view,
    shorten,
)
from pipeline.measure.report import write_report
from pipeline.review.decisions import DecisionRequest, add_code, decide
from pipeline.review.reviewers import authenticate
from pipeline.store import RunRecord, Store, SuggestionRecord, TranscriptRecord
from pipeline.store.queries import MISSING, coded_passages, suggestion_records

CODEBOOK = """\
name: Matrix test codebook
description: Three codes for the matrix tests.
codes:
  - id: funding
    name: Funding and resources
    definition: Money, budgets, grants and release time.
  - id: trust
    name: Trust between colleagues
    definition: Trust and respect in working relationships.
  - id: time
    name: Time to meet
    definition: Time for collaboration and meetings.
"""
SCRIPT_TAG = "<script>alert(1)</script>"
TRANSCRIPTS = {
    # two turns of about 60 characters: two passages at --chunk-size 80
    "n1.txt": "Teacher: The grant paid for our new books and release days.\n"
    "Teacher: The grant also paid for a coach we trust a lot.\n",
    "n2.txt": "Principal: We never have time to meet, and the budget is thin.\n",
    "s1.txt": f"Teacher: {SCRIPT_TAG} I trust the coach & the plan.\n",
    "s2.txt": "Teacher: Release time came from the district budget this year.\n",
    "s3.txt": "Principal: We talked about the weather.\n",
    # s2 has no role; the schools look like spreadsheet formulas
    "manifest.csv": "file,district,role,school\n"
    "n1.txt,North,teacher,Oak\n"
    "n2.txt,North,principal,=1+2\n"
    "s1.txt,South,teacher,Pine\n"
    "s2.txt,South,,Pine\n"
    "s3.txt,South,principal,@SUM(A1)\n",
}
# the coder's proposals for the passage holding each phrase: (code, confidence, quote); under 0.6 goes to review
SCRIPT = {
    "new books": [("funding", 0.8, "The grant paid for our new books"), ("trust", 0.4, "release days")],
    "a coach": [("funding", 0.9, "The grant also paid for a coach"), ("trust", 0.7, "a coach we trust a lot")],
    "time to meet": [("time", 0.3, "We never have time to meet"), ("funding", 0.85, "the budget is thin")],
    "I trust": [("trust", 0.95, f"{SCRIPT_TAG} I trust the coach & the plan")],
    "Release time": [("trust", 0.5, "Release time came from the district budget")],
    "weather": [],
}
COLUMNS = [
    ("North", "principal"),
    ("North", "teacher"),
    ("South", "principal"),
    ("South", "teacher"),
    ("South", MISSING),
]
# After review (--status accepted), by hand: (passages, transcripts) per code and (district, role).
#   funding: n1's two passages (accepted unseen); s2 (a reviewer changed trust to funding); n2's was rejected
#   trust: n1's second passage (accepted unseen), s1; n1's first waits for review, s2's was changed away
#   time: n2 (a reviewer accepted it), s2 (a reviewer added it)
ACCEPTED = {
    ("funding", ("North", "teacher")): (2, 1),
    ("funding", ("South", MISSING)): (1, 1),
    ("trust", ("North", "teacher")): (1, 1),
    ("trust", ("South", "teacher")): (1, 1),
    ("time", ("North", "principal")): (1, 1),
    ("time", ("South", MISSING)): (1, 1),
}


def scripted() -> None:
    """The coders of these tests: one proposes SCRIPT's codes for each passage, by the phrase the
    passage holds; another configuration proposes only what the script says about trust."""
    scripted_coder("matrix-test", proposes="phrases", phrases=SCRIPT)
    scripted_coder("matrix-other", proposes="phrases", phrases=SCRIPT, only=["trust"])


def run(folder: Path, db: Path, codebook: Path, coder: str) -> str:
    summary = code_store(folder, codebook, db, coder=coder, chunk_size=80, audit_share=0)
    assert not summary.failed and not summary.failed_chunks, summary
    return summary.run_id


@dataclass
class Study:
    folder: Path
    db: Path
    codebook: Path
    run_id: str


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    scripted()
    folder = tmp_path_factory.mktemp("matrix")
    source = folder / "transcripts"
    source.mkdir()
    for name, text in TRANSCRIPTS.items():
        (source / name).write_text(text, encoding="utf-8")
    codebook = folder / "codebook.yaml"
    codebook.write_text(CODEBOOK, encoding="utf-8")
    db = folder / "study.db"
    run_id = run(source, db, codebook, "matrix-test")

    store = Store(str(db))
    with store.session() as s:
        rows = s.execute(
            select(
                SuggestionRecord.id,
                TranscriptRecord.source_name,
                SuggestionRecord.code,
                SuggestionRecord.chunk_id,
                SuggestionRecord.status,
            ).join(TranscriptRecord, TranscriptRecord.id == SuggestionRecord.transcript_id)
        ).all()
        s2_text = s.scalar(select(TranscriptRecord.text).where(TranscriptRecord.source_name == "s2.txt"))
        version = s.scalar(select(RunRecord.codebook_version))
    # the script's eight suggestions, routed by confidence: n1's four lie in two passages
    assert sorted(status for *_, status in rows) == ["accepted"] * 5 + ["review"] * 3
    assert len({chunk for _, name, _, chunk, _ in rows if name == "n1.txt"}) == 2
    found = {(name, code): (sid, chunk) for sid, name, code, chunk, _ in rows if name != "n1.txt"}
    password = make_reviewers(db, {"ana": "reviewer"}, run_id)["ana"]
    ana = authenticate(store, "ana", password)
    decide(store, ana, found[("n2.txt", "time")][0], 1, DecisionRequest(verdict="accept"))
    decide(store, ana, found[("n2.txt", "funding")][0], 1, DecisionRequest(verdict="reject", reason="Not about money"))
    decide(store, ana, found[("s2.txt", "trust")][0], 1, DecisionRequest(verdict="change", code="funding"))
    start = s2_text.index("Release time")
    add_code(
        store,
        ana,
        found[("s2.txt", "trust")][1],
        version,
        DecisionRequest(verdict="add", code="time", quote_start=start, quote_end=start + len("Release time")),
    )
    store.engine.dispose()
    return Study(folder, db, codebook, run_id)


def matrix(db: Path, *args: str) -> Any:
    return qcode("matrix", "--db", str(db), *args)


def cells(m: Any) -> dict[tuple[str, tuple[str, ...]], tuple[int, int]]:
    return {(row[0], col): (c.passages, c.transcripts) for (row, col), c in m.cells.items() if c.passages}


def load(db: Path, status: str = "accepted") -> Any:
    store = Store(str(db))
    try:
        return load_study(store, None, status)
    finally:
        store.engine.dispose()


# ---------------------------------------------------------------- what a cell counts


def test_cells_and_totals_by_district_and_role(study: Study) -> None:
    m = cross_tab(load(study.db), ["code"], ["district", "role"])
    assert m.col_keys == COLUMNS  # every combination transcripts have, missing role last; s3's column is empty
    assert m.row_keys == [("funding",), ("trust",), ("time",)]  # the codebook's order
    assert cells(m) == ACCEPTED
    assert m.col_sizes == dict.fromkeys(COLUMNS, 1)
    assert {k[0]: (c.passages, c.transcripts) for k, c in m.row_totals.items()} == {
        "funding": (3, 2),
        "trust": (2, 2),
        "time": (2, 2),
    }
    assert {k: (c.passages, c.transcripts) for k, c in m.col_totals.items()} == {
        ("North", "principal"): (1, 1),
        ("North", "teacher"): (3, 1),
        ("South", "teacher"): (1, 1),
        ("South", MISSING): (2, 1),
    }
    assert (m.total.passages, m.total.transcripts) == (7, 4)
    # without the code among the dimensions a cell counts every code's passages
    by_role = cross_tab(load(study.db), ["district"], ["role"])
    assert (by_role.cell(("North",), ("teacher",)).passages, by_role.cell(("North",), ("teacher",)).transcripts) == (
        3,
        1,
    )


def test_statuses_follow_the_reviewers_decisions(study: Study) -> None:
    # waiting for review: only n1's first trust (0.4); everything a reviewer settled is gone from the queue
    review = cross_tab(load(study.db, "review"), ["code"], ["district", "role"])
    assert cells(review) == {("trust", ("North", "teacher")): (1, 1)}
    # all: what stands and what waits; still not n2's rejected funding, nor s2's trust that became funding
    everything = cross_tab(load(study.db, "all"), ["code"], ["district", "role"])
    assert cells(everything) == {**ACCEPTED, ("trust", ("North", "teacher")): (2, 1)}
    assert everything.cell(("funding",), ("North", "principal")).passages == 0
    assert everything.cell(("trust",), ("South", MISSING)).passages == 0
    with pytest.raises(StoreError, match="unknown status 'pending'"):
        coded_passages([], [], {}, "pending")


def test_exemplars_are_the_most_confident_and_confirmed_quotes(study: Study) -> None:
    m = cross_tab(load(study.db), ["code"], ["district", "role"])
    funding = m.cell(("funding",), ("North", "teacher")).exemplar
    assert funding is not None
    assert funding.quote == "The grant also paid for a coach" and funding.confidence == 0.9  # not 0.8
    assert funding.source == "n1.txt" and not funding.reviewed
    changed = m.cell(("funding",), ("South", MISSING)).exemplar
    assert changed is not None
    assert changed.quote == "Release time came from the district budget" and changed.how == "change"
    added = m.cell(("time",), ("South", MISSING)).exemplar
    assert added is not None
    assert added.quote == "Release time" and added.how == "add" and added.reviewed
    assert shorten("word " * 100, 20) == "word word word word…"


def test_codes_that_occur_together(study: Study) -> None:
    # passages: n1a {funding}, n1b {funding, trust}, n2 {time}, s1 {trust}, s2 {funding, time}
    table = cooccurrence(load(study.db))
    assert table.codes == ["funding", "trust", "time"]
    assert table.counts == [[3, 1, 1], [1, 2, 0], [1, 0, 2]]
    # with the queue: n1a gains trust
    assert cooccurrence(load(study.db, "all")).counts == [[3, 2, 1], [2, 3, 0], [1, 0, 2]]


# ---------------------------------------------------------------- the command and its files


def test_csv_is_long_with_totals_and_never_a_formula(study: Study) -> None:
    result = matrix(study.db, "--cols", "school")
    assert result.exit_code == 0, result.output
    lines = list(csv.reader(io.StringIO(result.stdout)))
    assert lines[0] == ["code", "school", "passages", "transcripts"]
    body = {(code, school): (int(p), int(t)) for code, school, p, t in lines[1:]}
    # the schools read as text in a spreadsheet: '=1+2 and '@SUM(A1), never a formula
    assert {school for _, school in body} == {"Oak", "Pine", "'=1+2", "'@SUM(A1)", "(all)"}
    assert body[("time", "'=1+2")] == (1, 1) and body[("funding", "Pine")] == (1, 1)
    assert body[("funding", "Oak")] == (2, 1) and body[("trust", "Pine")] == (1, 1)
    assert body[("funding", "(all)")] == (3, 2) and body[("(all)", "Pine")] == (3, 2)
    assert body[("(all)", "'@SUM(A1)")] == (0, 0) and body[("(all)", "(all)")] == (7, 4)
    assert len(lines) == 1 + 3 * 4 + 3 + 4 + 1  # cells, row totals, column totals, grand total
    assert "7 coded passage(s) in 4 transcript(s)" in result.output
    assert "1 suggestion(s) still waiting for review left out" in result.output

    result = matrix(study.db, "--cooccurrence")
    assert result.exit_code == 0, result.output
    pairs = {(a, b): int(n) for a, b, n in list(csv.reader(io.StringIO(result.stdout)))[1:]}
    assert pairs[("funding", "funding")] == 3 and pairs[("funding", "time")] == 1 and pairs[("trust", "time")] == 0


def test_xlsx_sheets(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "matrix.xlsx"
    result = matrix(study.db, "--cols", "district,role", "--out", str(out))  # the format from the extension
    assert result.exit_code == 0, result.output
    assert not list(out.parent.glob("*.partial"))
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["passages", "transcripts", "exemplars", "co-occurrence", "about"]
    passages = [list(r) for r in book["passages"].iter_rows(values_only=True)]
    assert passages[0] == ["district", "North", "North", "South", "South", "South", "all"]
    assert passages[1] == ["role", "principal", "teacher", "principal", "teacher", MISSING, "all"]
    assert passages[3] == ["funding", 0, 2, 0, 0, 1, 3]
    assert passages[-1] == ["all", 1, 3, 0, 1, 2, 7]
    transcripts = [list(r) for r in book["transcripts"].iter_rows(values_only=True)]
    assert transcripts[3] == ["funding", 0, 1, 0, 0, 1, 2] and transcripts[-1] == ["all", 1, 1, 0, 1, 1, 4]
    exemplars = [list(r) for r in book["exemplars"].iter_rows(values_only=True)]
    assert exemplars[0][:8] == [
        "code",
        "district",
        "role",
        "code name",
        "passages",
        "transcripts",
        "exemplar quote",
        "from transcript",
    ]
    trust = next(r for r in exemplars if r[:3] == ["trust", "South", "teacher"])
    assert trust[6] == f"{SCRIPT_TAG} I trust the coach & the plan" and trust[7] == "s1.txt"
    assert len(exemplars) == 1 + len(ACCEPTED)
    co = [list(r) for r in book["co-occurrence"].iter_rows(values_only=True)]
    assert co == [["code", "funding", "trust", "time"], ["funding", 3, 1, 1], ["trust", 1, 2, 0], ["time", 1, 0, 2]]

    # text that looks like a formula is stored as text
    out = tmp_path / "school.xlsx"
    assert matrix(study.db, "--cols", "school", "--format", "xlsx", "--out", str(out)).exit_code == 0
    header = next(openpyxl.load_workbook(out)["passages"].iter_rows(min_row=1, max_row=1))
    formulaic = [c for c in header if c.value in ("=1+2", "@SUM(A1)")]
    assert len(formulaic) == 2 and all(c.data_type == "s" for c in formulaic)


def test_html_page_escapes_quotes(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "matrix.html"
    result = matrix(study.db, "--cols", "district,role", "--format", "html", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; I trust the coach &amp; the plan" in page
    assert not re.search(r"""\b(?:src|href)\s*=\s*["'](?!#)""", page)  # nothing to fetch
    tables = Tables(page)
    head = [cells_ for _, cells_ in tables.tables["matrix"][:3]]
    assert head[0] == ["district", "North", "North", "South", "South", "South", "all"]
    assert head[1] == ["role", "principal", "teacher", "principal", "teacher", MISSING, "all"]
    assert head[2][1:6] == ["1 transcript"] * 5
    rows = {attrs.get("data-code"): cells_ for attrs, cells_ in tables.tables["matrix"][3:]}
    assert rows["funding"][2].startswith("2 · 1 The grant also paid for a coach n1.txt")
    assert rows["funding"][5].startswith("1 · 1 Release time came from the district budget s2.txt · reviewed")
    assert rows["funding"][1] == rows["funding"][3] == "–" and rows["funding"][-1] == "3 · 2"
    assert rows["trust"][4].startswith(f"1 · 1 {SCRIPT_TAG} I trust the coach & the plan")
    assert rows[None] == ["all", "1 · 1", "3 · 1", "0 · 0", "1 · 1", "2 · 1", "7 · 4"]
    co = {attrs["data-code"]: cells_[1:] for attrs, cells_ in tables.tables["cooccurrence"][1:]}
    assert co == {"funding": ["3", "1", "1"], "trust": ["1", "2", "0"], "time": ["1", "0", "2"]}
    # html to the terminal by default: the page on standard output
    result = matrix(study.db, "--cols", "role", "--format", "html", "--status", "review")
    assert result.exit_code == 0 and result.stdout.startswith("<!DOCTYPE html>") and "status review" in result.stdout


def test_rows_by_transcript(study: Study) -> None:
    result = matrix(study.db, "--rows", "transcript", "--cols", "code", "--run", "latest")
    assert result.exit_code == 0, result.output
    body = {(t, c): (int(p), int(n)) for t, c, p, n in list(csv.reader(io.StringIO(result.stdout)))[1:]}
    assert body[("n1.txt", "funding")] == (2, 1) and body[("s2.txt", "time")] == (1, 1)
    assert body[("s3.txt", "(all)")] == (0, 0) and body[("(all)", "trust")] == (2, 2)


# ---------------------------------------------------------------- pinned whole

CSV_CASES = {
    "district-role": ["--cols", "district,role"],
    "school": ["--cols", "school"],
    "transcript-code": ["--rows", "transcript", "--cols", "code"],
    "cooccurrence": ["--cooccurrence"],
    "role-review": ["--cols", "role", "--status", "review"],
    "code-role-by-district-all": ["--rows", "code,role", "--cols", "district", "--status", "all"],
}


def unstamped(text: str) -> str:
    """Without the time a file was made and the version of qcode that made it."""
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<time>", text)
    return re.sub(r"qcode \d[^ <\"]*", "qcode <version>", text)


@pytest.mark.parametrize("case", sorted(CSV_CASES))
def test_csv_files_are_pinned(study: Study, case: str) -> None:
    result = matrix(study.db, *CSV_CASES[case])
    assert result.exit_code == 0, result.output
    check_text(f"matrix/{case}.csv", result.stdout)


def test_html_xlsx_views_and_summary_are_pinned(study: Study, tmp_path: Path) -> None:
    page = tmp_path / "matrix.html"
    result = matrix(study.db, "--cols", "district,role", "--format", "html", "--out", str(page), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary.pop("out") == str(page)
    check("matrix/summary", summary)
    check_text("matrix/district-role.html", unstamped(page.read_text(encoding="utf-8")))

    book = tmp_path / "matrix.xlsx"
    assert matrix(study.db, "--rows", "code,district", "--cols", "role", "--out", str(book)).exit_code == 0
    sheets = {
        sheet.title: [
            [unstamped(v) if isinstance(v, str) else v for v in row] for row in sheet.iter_rows(values_only=True)
        ]
        for sheet in openpyxl.load_workbook(book)
    }
    check("matrix/code-district-by-role.xlsx", sheets)

    store = Store(str(study.db))
    try:
        loaded = load_study(store, None, "accepted")
        m = cross_tab(loaded, ["code"], ["district", "role"])
        info = plain(about(store, loaded, m))
    finally:
        store.engine.dispose()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", info["generated_at"])
    check(
        "matrix/views",
        {
            "matrix": matrix_view(m),
            "by_transcript": matrix_view(cross_tab(loaded, ["transcript"], ["code"]), quote_chars=20),
            "cooccurrence": cooccurrence_view(cooccurrence(loaded)),
            "about": {k: v for k, v in info.items() if k not in ("generated_at", "qcode_version")},
        },
    )


# ---------------------------------------------------------------- bad requests


def test_unknown_dimension_names_the_ones_there_are(study: Study) -> None:
    result = matrix(study.db, "--cols", "distrct")
    assert result.exit_code == 1
    assert (
        "unknown dimension 'distrct': the dimensions here are code, transcript, district, role, school, source_type; "
        "did you mean 'district'?"
    ) in result.output
    result = matrix(study.db, "--rows", "district", "--cols", "district")
    assert result.exit_code == 1 and "named twice" in result.output
    result = matrix(study.db, "--rows", "code")
    assert result.exit_code == 1 and "name the column dimensions with --cols" in result.output
    assert "the dimensions here: code, transcript, district, role, school" in result.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cols", "role", "--format", "xlsx"], "name the file with --out FILE.xlsx"),
        (["--cols", "role", "--format", "pdf"], "unknown format 'pdf' (choose from html, csv, xlsx)"),
        (["--cols", "role", "--status", "pending"], "unknown status 'pending' (choose from accepted, review, all)"),
        (["--cols", "role", "--format", "html", "--cooccurrence"], "--cooccurrence chooses the table a csv file holds"),
        (["--cols", "role", "--out", "m.pdf"], "'.pdf' is not a format the matrix is written in (.csv, .html, .xlsx)"),
    ],
)
def test_bad_arguments_exit_2(study: Study, args: list[str], message: str) -> None:
    result = matrix(study.db, *args)
    assert result.exit_code == 2 and message in result.output, result.output


def test_an_unknown_run_exits_1(study: Study) -> None:
    result = matrix(study.db, "--cols", "role", "--run", "nope")
    assert result.exit_code == 1 and "no run 'nope'" in result.output, result.output


def test_a_missing_database_is_not_created(tmp_path: Path) -> None:
    result = matrix(tmp_path / "missing.db", "--cols", "role")
    assert result.exit_code == 1 and "no database at" in result.output
    assert not (tmp_path / "missing.db").exists()
    empty = tmp_path / "empty.db"
    Store(str(empty)).engine.dispose()
    result = matrix(empty, "--cols", "role")
    assert result.exit_code == 1 and "the database has no runs yet" in result.output


def test_several_coder_configurations_are_not_pooled(study: Study, tmp_path: Path) -> None:
    db = tmp_path / "two.db"
    with sqlite3.connect(study.db) as source, sqlite3.connect(db) as target:
        source.backup(target)  # the study's last writes may still be in its write-ahead log
    other = run(study.folder / "transcripts", db, study.codebook, "matrix-other")
    result = matrix(db, "--cols", "role")
    assert result.exit_code == 1
    assert "holds runs of 2 coder configurations" in result.output and f"latest {other}" in result.output
    assert "--run ID" in result.output
    # one run: the other configuration's codes (trust only, none reviewed), and the code a reviewer added to a
    # passage under the same codebook, whichever coder proposed what
    result = matrix(db, "--cols", "role", "--run", "latest")
    assert result.exit_code == 0, result.output
    body = {(c, r): int(p) for c, r, p, _ in list(csv.reader(io.StringIO(result.stdout)))[1:]}
    assert body[("trust", "teacher")] == 2 and body[("funding", "(all)")] == 0 and body[("time", MISSING)] == 1
    assert body[("(all)", "(all)")] == 3
    result = matrix(db, "--cols", "role", "--run", study.run_id)
    assert result.exit_code == 0 and "7 coded passage(s) in 4 transcript(s)" in result.output
    # the report of every run says so in its codes by case, and names the runs to choose from
    out = tmp_path / "report.html"
    store = Store(str(db))
    try:
        write_report(store, out)
    finally:
        store.engine.dispose()
    page = out.read_text(encoding="utf-8")
    assert 'id="frequencies-configurations"' in page and other in page and 'id="frequencies-1"' not in page


def test_a_status_keeps_the_same_suggestions_in_export_and_matrix(study: Study, tmp_path: Path) -> None:
    """`--status` is one rule: what export lists under a status is what the matrix counts of the
    coder's suggestions under it; the matrix adds only the codes reviewers put in (changed, added)."""
    store = Store(str(study.db))
    for status in ("accepted", "review", "all"):
        exported = {r["suggestion_id"] for r in suggestion_records(store, status=status)}
        counted = load_study(store, None, status).passages
        proposals = {p["suggestion"]["suggestion_id"] for p in counted if p["how"] in ("auto", "accept", "queued")}
        assert exported == proposals, status
        assert {p["how"] for p in counted} - {"auto", "accept", "queued"} <= {"change", "add"}
    out = tmp_path / "accepted.jsonl"
    assert qcode("export", "--db", study.db, "--format", "jsonl", "--status", "accepted", "--out", out).exit_code == 0
    listed = {json.loads(line)["suggestion_id"] for line in out.read_text(encoding="utf-8").splitlines()}
    assert listed == {r["suggestion_id"] for r in suggestion_records(store, status="accepted")}
    rejected = {r["suggestion_id"] for r in suggestion_records(store)} - {
        r["suggestion_id"] for r in suggestion_records(store, status="all")
    }
    assert len(rejected) == 2  # the one a reviewer rejected and the one a reviewer changed
    store.engine.dispose()
