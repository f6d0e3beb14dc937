"""Tables for people fit an 80-column terminal: ids are shortened to a prefix still unique (8
characters at least), quotes are cut with "…", and code ids are wrapped, never cut, so two codes that
differ only at their ends stay apart. `--json` keeps everything whole."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fakes import LINKAGES, Answer, code_store, scripted_coder, write

from pipeline.cli.output import unique_prefixes

WIDTH = {"COLUMNS": "80"}
LONG = (
    "and then the district gave us a grant for release time on Fridays, so that the teachers could plan "
    "the units together with the coach, which nobody had ever done before in this school"
)
INTERVIEW = (
    "Interviewer: Tell me about the district.\n"
    "Ms. Chen: I carry the district's news to my colleagues every week [boundary-spanning.strength 0.30]\n"
    "Interviewer: And back again?\n"
    "Ms. Chen: Nobody listens when I bring the teachers' worries up [boundary-spanning.weakness 0.31]\n"
    f"Ms. Chen: {LONG} [resource.strength 0.32]\n"
)


def blocks(stdout: str, first: str) -> tuple[str, list[list[str]]]:
    """The table's header line (its last, above the rule), and its rows, each as its lines: a row
    starts where the column headed `first` (one whose cells have one line) has text, and the table
    ends where a line is not as wide as the table."""
    lines = stdout.splitlines()
    rule = next(n for n, line in enumerate(lines) if line.strip() and set(line.strip()) == {"─"})
    header = lines[rule - 1]
    at = header.index(first)
    rows: list[list[str]] = []
    for line in lines[rule + 1 :]:
        if len(line) != len(lines[rule]):
            break
        if line[at : at + len(first)].strip() or not rows:
            rows.append([line])
        else:
            rows[-1].append(line)
    return header, rows


def column(header: str, row: list[str], name: str, following: str | None, joiner: str = "") -> str:
    """A column's text in a row, its lines joined: from where its header starts to where the next
    header starts (figures are right-aligned under theirs, so the next column may start earlier)."""
    start = header.index(name)
    end = header.index(following, start + len(name)) if following else None
    return joiner.join(line[start:end].strip() for line in row if line[start:end].strip())


@pytest.fixture
def coded(tmp_path: Path) -> Path:
    scripted_coder("tables-marks", proposes="marks")
    write(tmp_path / "study" / "chen.txt", INTERVIEW)
    db = tmp_path / "q.db"
    code_store(tmp_path / "study", LINKAGES, db, coder="tables-marks", audit_share=0, name="pilot, week 1")
    return db


def test_the_queue_fits_80_columns_and_keeps_code_ids_whole(qcode: Callable[..., Answer], coded: Path) -> None:
    items = json.loads(qcode("queue", "--db", coded, "--json", env=WIDTH).stdout)["items"]
    assert {i["code"] for i in items} == {
        "boundary-spanning.strength",
        "boundary-spanning.weakness",
        "resource.strength",
    }
    assert any(LONG in i["quote"] for i in items)  # --json: whole ids and quotes
    assert all(len(i["suggestion_id"]) > 8 for i in items)

    answer = qcode("queue", "--db", coded, env=WIDTH)
    assert answer.exit_code == 0
    assert max(len(line) for line in answer.stdout.splitlines()) <= 80
    header, rows = blocks(answer.stdout, "suggestion")
    assert len(rows) == len(items)
    for item, row in zip(items, rows):  # both lowest confidence first
        shown = column(header, row, "suggestion", "transcript")
        assert len(shown) >= 8 and item["suggestion_id"].startswith(shown)
        assert column(header, row, "code", "confidence") == item["code"]  # wrapped, never cut
        quote = column(header, row, "quote", None, joiner=" ")
        whole = " ".join(item["quote"].split())
        assert quote == whole or (quote.endswith("…") and whole.startswith(quote[:-1].rstrip()))
    assert any(column(header, row, "quote", None).endswith("…") for row in rows)  # the long one is cut
    ids = [column(header, row, "suggestion", "transcript") for row in rows]
    assert len(set(ids)) == len(ids)


def test_runs_fit_80_columns(qcode: Callable[..., Answer], coded: Path, tmp_path: Path) -> None:
    code_store(tmp_path / "study", LINKAGES, coded, coder="tables-marks", unit="turn")
    listed = json.loads(qcode("runs", "--db", coded, "--json").stdout)["runs"]
    answer = qcode("runs", "--db", coded, env=WIDTH)
    assert answer.exit_code == 0
    assert max(len(line) for line in answer.stdout.splitlines()) <= 80
    header, rows = blocks(answer.stdout, "transcripts")
    assert len(rows) == len(listed) == 2
    for run, row in zip(listed, rows):
        shown = column(header, row, "run", "started", joiner="\n").splitlines()
        prefix = shown[-1]
        assert len(prefix) >= 8 and run["id"].startswith(prefix) and len(run["id"]) == 36
        assert " ".join(shown[:-1]) == (run["name"] or "")
        # right-aligned under its header: the count, and the kind of unit (on its own line if need be)
        end = header.index("units") + len("units")
        assert row[0][:end].split()[-1] == str(run["units"])
        assert any(line[:end].endswith(f"{run['unit']}s") for line in row)
        # wrapped at spaces and after dashes, up to where the units begin: every character is there
        units = min(end - len(line[:end].rsplit(" ", 1)[-1]) for line in row if line[end - 1] != " ")
        codebook = "".join(line[header.index("codebook") : units].strip() for line in row)
        assert codebook.replace(" ", "") == run["codebook"].replace(" ", "")
        assert row[0].split()[-3:] == [str(run["transcripts"]), str(run["suggestions"]), str(run["waiting"])]


def test_an_id_is_shown_as_long_as_it_takes_to_be_unique() -> None:
    ids = ["3f74056d1a2b", "3f74056d1a9c", "7700aa11", "9"]
    assert unique_prefixes(ids) == {
        "3f74056d1a2b": "3f74056d1a2",
        "3f74056d1a9c": "3f74056d1a9",
        "7700aa11": "7700aa11",
        "9": "9",
    }
    assert unique_prefixes(["abcdefghij", "abcdefghij"]) == {"abcdefghij": "abcdefgh"}


CARD_CODEBOOK = """\
name: Classroom talk
description: What a teacher does in reply to a student.
measurement: nominal
codes:
  - id: feedback-to-students.praise
    name: Praise
    definition: The teacher praises the student's answer or effort.
  - id: feedback-to-students.probe
    name: Probe
    definition: The teacher asks the student to say more or explain their thinking.
"""
PRAISE = ["Great job, that is exactly right.", "Well done, lovely thinking.", "Excellent answer, well done you."]
PROBE = ["Why do you think that?", "Can you explain how you got it?", "What makes you say so?"]
OTHER = ["Okay, let us move on to the next page.", "Please open your books.", "Put your pencils down now."]


@pytest.mark.slow  # trains on the embedding model
def test_the_model_card_fits_80_columns_with_code_ids_and_figures_whole(
    qcode: Callable[..., Answer], tmp_path: Path
) -> None:
    rows = ["file,coder,code,quote"]
    for room in range(6):
        for n in range(6):
            kind = (room + n) % 3
            teacher = (PRAISE, PROBE, OTHER)[kind][(room * 6 + n) % 3]
            write(tmp_path / "talk" / f"r{room}-{n}.txt", f"---\nclassroom: R{room}\n---\nTeacher: {teacher}\n")
            code = ("feedback-to-students.praise", "feedback-to-students.probe", "")[kind]
            rows += [f"r{room}-{n}.txt,{person},{code},{teacher if code else ''}" for person in ("ana", "ben")]
    write(tmp_path / "codes.csv", "\n".join(rows) + "\n")
    codebook = write(tmp_path / "talk.yaml", CARD_CODEBOOK)
    answer = qcode(
        "train", "--codebook", codebook, "--db", tmp_path / "q.db", "--gold", tmp_path / "codes.csv",
        "--transcripts", tmp_path / "talk", "--unit", "turn", "--learner", "linear", "--group-by", "classroom",
        "--holdout", "0.34", env=WIDTH,
    )  # fmt: skip
    assert answer.exit_code == 0, answer.stderr
    header, shown = blocks(answer.stdout, "coded")
    table = [line for row in shown for line in row]
    assert max(len(line) for line in [header, *table]) <= 80
    assert "…" not in "".join(table)  # no figure is cut
    codes = [column(header, row, "code", "coded") for row in shown if column(header, row, "code", "coded")]
    assert codes == ["feedback-to-students.praise", "feedback-to-students.probe"]
    for row in shown:  # each kappa, with its interval, whole (on lines of its own where room is short)
        kappa = column(header, row, "kappa", "held", joiner=" ")
        assert kappa == "n/a" or kappa.count("[") == kappa.count("]") <= 1
