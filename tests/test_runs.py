"""Runs as people pick them out: `qcode runs` lists them, `--run` takes a name, an id, the start of
an id or `latest` (the latest run that coded something), every command says which run it chose, and
a run given nothing it can read is refused before it starts and records nothing."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakes import LINKAGES, Answer, code_store, scripted_coder, write

from pipeline.review.decisions import DecisionRequest, decide
from pipeline.review.reviewers import add_reviewer, find_reviewer
from pipeline.run.request import RunSummary
from pipeline.store import Store

# Lines a scripted coder codes as marked: [code confidence]
INTERVIEW = (
    "Interviewer: Tell me about the district.\n"
    "Ms. Chen: I carry the district's news to my colleagues every week [boundary-spanning.strength 0.30]\n"
    "Interviewer: And back again?\n"
    "Ms. Chen: Nobody listens when I bring the teachers' worries up [boundary-spanning.weakness 0.40]\n"
    "Ms. Chen: The district gave us a grant for release time on Fridays [resource.strength 0.95]\n"
)
OTHER = "Mr. Ortiz: We meet the district office every month [structural.strength 0.20]\n"

NOTE = re.compile(r"^note: --run (.+) is (?:'(.*)' \(|run )([0-9a-f-]+)(?:, | \()(\d{4}-\d\d-\d\d \d\d:\d\d)\)$")


def rows(db: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, args).fetchall()


def local_minute(db: Path, run_id: str) -> str:
    """When the run started, as this machine's clock showed it: read from the store, not from qcode."""
    [(started,)] = rows(db, "select started_at from runs where id = ?", run_id)
    return datetime.fromisoformat(started).replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M")


def notes(stderr: str) -> list[re.Match[str]]:
    return [m for line in stderr.splitlines() if (m := NOTE.match(line))]


@pytest.fixture
def study(tmp_path: Path) -> Path:
    scripted_coder("runs-marks", proposes="marks")
    write(tmp_path / "study" / "chen.txt", INTERVIEW)
    write(tmp_path / "more" / "ortiz.txt", OTHER)
    return tmp_path / "study"


def coded(study: Path, db: Path, **settings: object) -> RunSummary:
    return code_store(study, LINKAGES, db, coder="runs-marks", audit_share=0, **settings)


# ---------------------------------------------------------------- a run that can read nothing


def test_a_run_given_nothing_it_can_read_says_each_path_and_records_no_run(
    qcode: Callable[..., Answer], study: Path, tmp_path: Path
) -> None:
    db = tmp_path / "q.db"
    first = coded(study, db, name="pilot, week 1")
    empty = tmp_path / "empty"
    empty.mkdir()
    memo = write(tmp_path / "memo.rtf", "{\\rtf1 notes}")
    typo = tmp_path / "examples" / "transcript"
    # through the real `qcode run`: refused before a Prefect server is started for it
    code, stdout, stderr = qcode("run", typo, empty, memo, "--codebook", LINKAGES, "--db", db, "--coder", "runs-marks")
    assert code == 1 and stdout == ""
    failed = [line for line in stderr.splitlines() if line.startswith("failed: ")]
    assert failed == [
        f"failed: {typo}: no such file or folder",
        f"failed: {empty}: no transcripts found (qcode reads .csv, .docx, .markdown, .md, .pdf, .qdpx, .srt, .txt, .vtt)",
        f"failed: {memo}: unsupported file type '.rtf' (supported: .csv, .docx, .markdown, .md, .pdf, .qdpx, .srt, "
        ".txt, .vtt)",
    ]
    assert "error: nothing to code" in stderr and "no run was recorded" in stderr
    assert rows(db, "select id from runs") == [(first.run_id,)]

    answer = qcode("run", typo, "--codebook", LINKAGES, "--db", db, "--coder", "runs-marks", "--json")
    said = json.loads(answer.stdout)
    assert answer.exit_code == 1 and "no run was recorded" in said["error"]
    assert said["failed"] == [{"path": str(typo), "error": "no such file or folder"}]
    assert rows(db, "select id from runs") == [(first.run_id,)]
    # and the run that coded something is still the latest
    assert notes(qcode("queue", "--db", db, "--run", "latest").stderr)[0][3] == first.run_id[:8]


def test_the_plain_run_records_no_run_for_nothing_read_either(study: Path, tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    nothing = code_store(tmp_path / "nowhere", LINKAGES, db, coder="runs-marks")
    assert nothing.run_id == "" and [f.error for f in nothing.failed] == ["no such file or folder"]
    assert rows(db, "select count(*) from runs") == [(0,)]
    # one path that can be read is enough: the run goes ahead and says the other
    mixed = code_store([study, tmp_path / "nowhere"], LINKAGES, db, coder="runs-marks")
    assert mixed.run_id and mixed.transcripts == 1
    assert [(Path(f.path).name, f.error) for f in mixed.failed] == [("nowhere", "no such file or folder")]


# ---------------------------------------------------------------- which run --run names


def test_latest_is_the_latest_run_that_coded_something(
    qcode: Callable[..., Answer], study: Path, tmp_path: Path
) -> None:
    db = tmp_path / "q.db"
    pilot = coded(study, db, name="pilot, week 1")
    # a later run whose only file is broken: it is recorded, failed, and coded nothing
    broken = code_store(
        write(tmp_path / "broken" / "a.docx", "not a Word file"), LINKAGES, db, coder="runs-marks", name="broken"
    )
    assert broken.run_id and broken.transcripts == 0
    assert rows(db, "select count(*) from run_chunks where run_id = ?", broken.run_id) == [(0,)]

    code, _, stderr = qcode("export", "--db", db, "--run", "latest", "--format", "jsonl", "--out", "s.jsonl")
    assert code == 0
    exported = [json.loads(line) for line in Path("s.jsonl").read_text().splitlines()]
    assert len(exported) == pilot.suggestions and {r["run_id"] for r in exported} == {pilot.run_id}
    [note] = notes(stderr)
    assert note.group(1, 2, 4) == ("latest", "pilot, week 1", local_minute(db, pilot.run_id))
    assert pilot.run_id.startswith(note[3]) and len(note[3]) >= 8
    # the broken run is still named by its name
    [note] = notes(qcode("export", "--db", db, "--run", "broken", "--format", "csv", "--out", "b.csv").stderr)
    assert broken.run_id.startswith(note[3])


def test_a_store_whose_runs_read_nothing_has_no_latest(qcode: Callable[..., Answer], tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    scripted_coder("runs-marks", proposes="marks")
    code_store(write(tmp_path / "broken" / "a.docx", "not a Word file"), LINKAGES, db, coder="runs-marks")
    answer = qcode("queue", "--db", db, "--run", "latest")
    assert answer.exit_code == 1
    assert "error: no run in the database has coded anything yet: its 1 run(s) read no transcript" in answer.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["queue"],
        ["export", "--format", "csv", "--out", "s.csv", "--force"],
        ["report", "--out", "r.html", "--force"],
        ["matrix", "--cols", "transcript"],
        ["matrix", "--triangulate", "--by", "transcript", "--format", "csv"],
        ["agreement"],
        ["reviewer", "add", "ana"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_every_command_that_takes_run_says_which_run_it_chose(
    qcode: Callable[..., Answer], study: Path, tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "q.db"
    pilot = coded(study, db, name="pilot, week 1")
    later = coded(study.parent / "more", db)  # unnamed, and the latest
    for wanted, run in (("latest", later), ("pilot, week 1", pilot), (pilot.run_id[:8], pilot)):
        answer = qcode(*command, "--db", db, "--run", wanted)
        [note] = notes(answer.stderr)  # once, whatever the command did next (agreement: no human codes)
        assert note[1] == (wanted if " " not in wanted else f"'{wanted}'")
        assert note[2] == (run.name if run.name else None)
        assert run.run_id.startswith(note[3]) and note[4] == local_minute(db, run.run_id)
        if command[0] == "reviewer":
            command = [*command[:-1], command[-1] + "x"]  # a new account each time


def test_a_run_is_named_by_id_name_or_the_start_of_its_id_and_a_name_for_several_is_an_error(
    qcode: Callable[..., Answer], study: Path, tmp_path: Path
) -> None:
    db = tmp_path / "q.db"
    # re-runs of the same files, enough of them that two ids must start alike (16 hex digits)
    runs = [coded(study, db, name="pilot").run_id for _ in range(17)]
    for wanted in runs[0], runs[0][:8]:
        [note] = notes(qcode("queue", "--db", db, "--run", wanted).stderr)
        assert runs[0].startswith(note[3])
    answer = qcode("queue", "--db", db, "--run", "pilot")
    assert answer.exit_code == 1
    assert "'pilot' is the name of 17 runs: " in answer.stderr and all(r in answer.stderr for r in runs)
    first = next(r[0] for r in runs if sum(o.startswith(r[0]) for o in runs) > 1)
    alike = [r for r in runs if r.startswith(first)]
    answer = qcode("reviewer", "grant", "ana", "--run", first, "--db", db, "--json")
    assert answer.exit_code == 1  # no reviewer ana: said first
    add_reviewer(Store(str(db)), "ana")
    answer = qcode("reviewer", "grant", "ana", "--run", first, "--db", db, "--json")
    error = json.loads(answer.stdout)["error"]
    assert answer.exit_code == 1 and f"'{first}' is the start of {len(alike)} runs' ids" in error
    assert all(r in error for r in alike) and not any(r in error for r in runs if r not in alike)
    assert rows(db, "select count(*) from reviewer_runs") == [(0,)]
    answer = qcode("queue", "--db", db, "--run", "nope")
    assert answer.exit_code == 1 and "no run 'nope' in the database (qcode runs lists them)" in answer.stderr


# ---------------------------------------------------------------- qcode runs and qcode queue --run


def test_runs_lists_every_run_with_what_it_coded_and_what_waits(
    qcode: Callable[..., Answer], study: Path, tmp_path: Path
) -> None:
    db = tmp_path / "q.db"
    pilot = coded(study, db, name="pilot, week 1")
    turns = coded(study.parent / "more", db, unit="turn")
    # a reviewer settles one of the pilot's suggestions: one fewer waits
    store = Store(str(db))
    add_reviewer(store, "lena", "lead")
    [(first_waiting, version)] = rows(
        db,
        "select id, version from suggestions where status = 'review' and coder_key = ? limit 1",
        coder_key(db, pilot),
    )
    decide(store, find_reviewer(store, "lena"), first_waiting, version, DecisionRequest(verdict="accept"))

    answer = qcode("runs", "--db", db, "--json")
    assert answer.exit_code == 0 and answer.stderr == ""
    listed = json.loads(answer.stdout)["runs"]
    assert [r["id"] for r in listed] == [turns.run_id, pilot.run_id]  # the latest first, full ids
    by_id = {r["id"]: r for r in listed}
    for summary, waiting in ((pilot, pilot.queued - 1), (turns, turns.queued)):
        run = by_id[summary.run_id]
        assert run["name"] == summary.name and run["coder"] == "runs-marks" and run["model"] == summary.model
        assert run["codebook"] == summary.codebook and run["codebook_version"] == summary.codebook_version
        assert (run["unit"], run["transcripts"], run["units"]) == (summary.unit, summary.transcripts, summary.chunks)
        assert (run["suggestions"], run["waiting"]) == (summary.suggestions, waiting)
        assert run["status"] == "finished" and run["started_at"].endswith("Z")

    empty = tmp_path / "empty.db"
    Store(str(empty)).engine.dispose()
    answer = qcode("runs", "--db", empty)
    assert answer.exit_code == 0 and "0 run(s)" in answer.stdout and "No runs yet" in answer.stdout
    assert qcode("runs", "--db", tmp_path / "missing.db").exit_code == 1 and not (tmp_path / "missing.db").exists()


def coder_key(db: Path, summary: RunSummary) -> str:
    [(key,)] = rows(db, "select coder_key from runs where id = ?", summary.run_id)
    return key


def test_queue_narrows_to_one_run(qcode: Callable[..., Answer], study: Path, tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    pilot = coded(study, db, name="pilot")
    other = coded(study.parent / "more", db, name="other")
    scripted_coder("runs-made-up", proposes="made-up")
    invented = code_store(study, LINKAGES, db, coder="runs-made-up", name="invented")
    everything = json.loads(qcode("queue", "--db", db, "--json").stdout)
    assert everything["total"] == pilot.queued + other.queued
    assert everything["open_rejections"] == invented.rejected > 0

    for summary, source in (pilot, "chen.txt"), (other, "ortiz.txt"):
        answer = qcode("queue", "--db", db, "--run", summary.name, "--json")
        waiting = json.loads(answer.stdout)
        assert answer.exit_code == 0 and waiting["total"] == summary.queued == len(waiting["items"])
        assert waiting["open_rejections"] == 0
        assert set(waiting["items"][0]) == set(everything["items"][0])  # the same fields as the whole queue
        # each run coded one file: its suggestions are those of the whole queue on that file
        assert waiting["items"] == [i for i in everything["items"] if i["source_name"] == source]
        confidences = [i["confidence"] for i in waiting["items"]]
        assert confidences == sorted(confidences)
    limited = json.loads(qcode("queue", "--db", db, "--run", "pilot", "--limit", "1", "--json").stdout)
    assert limited["total"] == pilot.queued and len(limited["items"]) == 1
    rejected = json.loads(qcode("queue", "--db", db, "--run", "invented", "--json").stdout)
    assert rejected == {"total": 0, "open_rejections": invented.rejected, "items": []}


# ---------------------------------------------------------------- qcode serve with nobody to sign in


def test_serve_on_a_store_without_reviewers_says_how_to_add_one(
    qcode: Callable[..., Answer], study: Path, tmp_path: Path
) -> None:
    db = tmp_path / "q.db"
    coded(study, db)
    with socket.socket() as taken:  # the server cannot listen here, so it stops once it has started
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        answer = qcode("serve", "--db", db, "--port", port)
        [said] = [line for line in answer.stderr.splitlines() if "reviewer account" in line]
        command = re.search(r"`qcode (reviewer add NAME --role lead[^`]*)`", said)
        assert command and said.startswith("note: ") and f"--db {db}" in said
        # the command it gives works as it is written
        added = qcode(*command[1].replace("NAME", "lena").split())
        assert added.exit_code == 0 and "lena (lead) created" in added.stdout
        answer = qcode("serve", "--db", db, "--port", port)
        assert "reviewer account" not in answer.stderr and "qcode review on" in answer.stderr
