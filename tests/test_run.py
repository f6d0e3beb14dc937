"""End to end: real files, a real SQLite database, the real flow and CLI."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import EXAMPLES, LINKAGES, Answer, code_store, scripted_coder, write

import pipeline.run.corpus as corpus

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def run_json(qcode: Callable[..., Answer]) -> Callable[..., tuple[int, Any, str]]:
    """`qcode run ... --json`: (exit status, the summary, standard error)."""

    def run(*args: object) -> tuple[int, Any, str]:
        code, stdout, stderr = qcode("run", *args, "--json")
        return code, json.loads(stdout), stderr

    return run


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


@pytest.fixture(scope="module")
def examples_run(tmp_path_factory: pytest.TempPathFactory, run_json: Callable[..., Any]) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("examples")
    db = folder / "qcode.db"
    code, summary, _ = run_json(EXAMPLES / "transcripts", "--codebook", LINKAGES, "--db", db)
    assert code == 0
    return db, summary


def test_examples_are_coded_offline(examples_run) -> None:
    db, summary = examples_run
    assert {"run_id", "transcripts", "chunks", "suggestions", "accepted", "queued", "rejected", "failed"} <= set(
        summary
    )
    assert summary["failed"] == [] and summary["failed_chunks"] == 0
    assert summary["transcripts"] >= 20  # 11 interviews and a questionnaire of 12 responses
    assert summary["chunks"] > summary["transcripts"]
    assert summary["suggestions"] == summary["accepted"] + summary["queued"] > 0
    assert summary["coder"] == "offline"
    coded = rows(db, "select count(*) from chunk_codings where status = 'coded'")[0][0]
    assert coded == summary["chunks"]


def test_every_quote_is_verbatim_in_its_chunk_and_transcript(
    qcode: Callable[..., Answer], examples_run, tmp_path: Path
) -> None:
    db, _ = examples_run
    out = tmp_path / "s.jsonl"
    code, _, stderr = qcode("export", "--db", db, "--format", "jsonl", "--out", out)
    assert code == 0 and "wrote" in stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records
    texts = dict(rows(db, "select id, text from transcripts"))
    for r in records:
        text = texts[r["transcript_id"]]
        assert text[r["quote_start"] : r["quote_end"]] == r["quote"]
        assert r["chunk_start"] <= r["quote_start"] < r["quote_end"] <= r["chunk_end"]
        assert r["coder"] == "offline" and r["model"].endswith("all-MiniLM-L6-v2")
        assert r["codebook_version"] and r["prompt_version"] and r["status"] in ("accepted", "review", "audit")
        assert 0 <= r["confidence"] <= 1 and r["justification"]
    assert any(r["metadata"].get("district") for r in records)


def test_csv_and_codings_exports(qcode: Callable[..., Answer], examples_run, tmp_path: Path) -> None:
    db, summary = examples_run
    qcode("export", "--db", db, "--format", "csv", "--out", tmp_path / "s.csv")
    with open(tmp_path / "s.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == summary["suggestions"]
    assert "case_district" in table[0] and "quote_start" in table[0] and "coder" in table[0]

    qcode("export", "--db", db, "--format", "codings", "--out", tmp_path / "c.csv")
    with open(tmp_path / "c.csv", newline="") as handle:
        codings = list(csv.DictReader(handle))
    assert list(codings[0]) == ["unit_id", "coder", "code"]
    assert {r["unit_id"] for r in codings} == {r[0] for r in rows(db, "select chunk_id from chunk_codings")}
    applied = [r for r in codings if r["code"]]
    assert len(applied) == summary["suggestions"]
    assert {r["coder"] for r in codings} == {"offline:all-MiniLM-L6-v2"}


def test_queue_lists_what_waits_for_review(qcode: Callable[..., Answer], examples_run) -> None:
    db, summary = examples_run
    code, stdout, _ = qcode("queue", "--db", db, "--json", "--limit", "1000")
    assert code == 0
    queue = json.loads(stdout)
    assert queue["total"] == summary["queued"] == len(queue["items"])
    assert all(i["status"] in ("review", "audit") for i in queue["items"])
    code, stdout, _ = qcode("queue", "--db", db)
    assert "waiting for review" in stdout


def test_rerun_codes_nothing_twice(run_json: Callable[..., Any], examples_run) -> None:
    db, first = examples_run
    before = {
        t: rows(db, f"select count(*) from {t}")[0][0]
        for t in ("transcripts", "turns", "chunks", "suggestions", "rejections", "chunk_codings")
    }
    code, second, _ = run_json(EXAMPLES / "transcripts", "--codebook", LINKAGES, "--db", db)
    assert code == 0
    assert second["chunks_coded_now"] == 0
    after = {t: rows(db, f"select count(*) from {t}")[0][0] for t in before}
    assert after == before
    for key in ("transcripts", "chunks", "suggestions", "accepted", "queued", "rejected"):
        assert second[key] == first[key]


def test_threshold_and_audit_routing_through_the_cli(
    run_json: Callable[..., Any], tmp_path: Path, small_codebook: Path
) -> None:
    write(
        tmp_path / "in" / "a.txt",
        "Interviewer: Any support?\nMs. Chen: The district gave us a grant to buy new materials for the lab.\nMs. Chen: I trust my principal completely.\n",
    )
    db = tmp_path / "r.db"
    _, everything, _ = run_json(tmp_path / "in", "--codebook", small_codebook, "--db", db, "--threshold", "1.0")
    assert everything["suggestions"] > 0 and everything["review"] == everything["suggestions"]
    db2 = tmp_path / "r2.db"
    _, audited, _ = run_json(
        tmp_path / "in", "--codebook", small_codebook, "--db", db2, "--threshold", "0", "--audit-share", "1"
    )
    assert audited["audit"] == audited["suggestions"] > 0


def test_bad_files_fail_alone(run_json: Callable[..., Any], tmp_path: Path, small_codebook: Path) -> None:
    folder = tmp_path / "mixed"
    write(folder / "good.txt", "Interviewer: Money?\nMs. Chen: The district gave us a grant to buy new materials.\n")
    write(folder / "empty.txt", "")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (folder / "corrupt.docx").write_bytes(b"PK\x03\x04 broken")
    write(folder / "broken.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:xx.000\n<v A>Hello there.\n")
    write(folder / "numbers.csv", "id,score\n1,4\n2,5\n")
    write(
        folder / "latin.txt",
        "Interviewer: ¿Qué?\nJosé: The district’s grant bought new materials.\n",
        encoding="cp1252",
    )
    db = tmp_path / "m.db"
    code, summary, stderr = run_json(folder, "--codebook", small_codebook, "--db", db)
    assert code == 1
    failed = {Path(f["path"]).name: f["error"] for f in summary["failed"]}
    assert set(failed) == {"empty.txt", "binary.txt", "corrupt.docx", "broken.vtt", "numbers.csv"}
    assert failed["empty.txt"] == "empty file"
    for name in failed:
        assert sum(1 for line in stderr.splitlines() if name in line) == 1  # one clear line each
    names = {r[0] for r in rows(db, "select source_name from transcripts")}
    assert names == {"good.txt", "latin.txt"}
    assert summary["transcripts"] == 2
    assert any("cp1252" in n["note"] for n in summary["notes"])
    # nothing of a failed file is left behind
    assert rows(db, "select count(*) from chunks where transcript_id not in (select id from transcripts)")[0][0] == 0


def test_codebook_with_a_duplicate_id_stops_before_coding(
    qcode: Callable[..., Answer], tmp_path: Path, small_codebook: Path
) -> None:
    bad = tmp_path / "dup.yaml"
    bad.write_text(small_codebook.read_text().replace("id: trust", "id: funding"))
    write(tmp_path / "in" / "a.txt", "A: hello there friend.\n")
    code, stdout, stderr = qcode("run", tmp_path / "in", "--codebook", bad, "--db", tmp_path / "d.db")
    assert code == 1
    assert f"{bad}:" in stderr and "duplicate code id 'funding'" in stderr
    assert not (tmp_path / "d.db").exists()


def test_db_from_environment_and_config_file(
    run_json: Callable[..., Any], tmp_path: Path, small_codebook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "in" / "a.txt", "Interviewer: Money?\nMs. Chen: The district gave us a grant to buy new materials.\n"
    )
    (tmp_path / "qcode.toml").write_text(f'[run]\ncodebook = "{small_codebook}"\nthreshold = 1.0\n')
    monkeypatch.setenv("QCODE_DB", str(tmp_path / "env.db"))
    code, summary, _ = run_json(tmp_path / "in")
    assert code == 0 and summary["review"] == summary["suggestions"] > 0
    assert (tmp_path / "env.db").exists()


def _corpus(folder: Path, n: int) -> None:
    lines = [
        "The district gave us a grant to buy new materials for the science lab.",
        "I trust my principal completely and she listens to us.",
        "We meet with the district office every month in the leadership committee.",
        "Nobody tells us about decisions until after they are made.",
    ]
    for i in range(n):
        turns = [
            f"Interviewer: Question {j} for interview {i}?\nP{i}: {lines[(i + j) % 4]} Case {i}, answer {j}."
            for j in range(12)
        ]
        write(folder / f"interview_{i:02d}.txt", "\n".join(turns) + "\n")


def test_a_killed_run_finishes_on_the_next_run(tmp_path: Path, small_codebook: Path) -> None:
    transcripts = 12  # enough batches to be killed in the middle of: some coded, most not
    folder = tmp_path / "corpus"
    _corpus(folder, transcripts)
    db = tmp_path / "k.db"
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "run",
        str(folder),
        "--codebook",
        str(small_codebook),
        "--db",
        str(db),
        "--chunk-size",
        "120",
        "--batch-size",
        "2",
        "--json",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        coded = 0
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            if db.exists():
                try:
                    coded = rows(db, "select count(*) from chunk_codings")[0][0]
                except sqlite3.OperationalError:
                    continue
                if coded >= 6:
                    break
        assert process.poll() is None, "the run ended before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    first = dict(rows(db, "select chunk_id, run_id from chunk_codings"))
    total_chunks = rows(db, "select count(*) from chunks")[0][0]
    assert 0 < len(first) < total_chunks

    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)
    assert finished.returncode == 0, finished.stderr
    summary = json.loads(finished.stdout)
    assert summary["transcripts"] == transcripts
    assert summary["chunks_coded_now"] == summary["chunks"] - len(first)
    after = dict(rows(db, "select chunk_id, run_id from chunk_codings"))
    assert len(after) == summary["chunks"] == rows(db, "select count(*) from chunks")[0][0]
    assert all(after[c] == r for c, r in first.items())  # what was coded before the kill was not coded again
    duplicates = rows(
        db, "select chunk_id, coder_key, code, count(*) from suggestions group by 1, 2, 3 having count(*) > 1"
    )
    assert duplicates == []
    statuses = [status for (status,) in rows(db, "select status from runs order by started_at")]
    assert statuses == ["interrupted", "finished"]


def test_manifest_mismatches_are_noted(run_json: Callable[..., Any], tmp_path: Path, small_codebook: Path) -> None:
    folder = tmp_path / "study"
    write(folder / "manifest.csv", "file,district\na.txt,Harbor\nmissing.txt,Valley\n")
    write(folder / "a.txt", "Interviewer: Money?\nMs. Chen: The district gave us a grant.\n")
    write(folder / "b.txt", "Interviewer: Trust?\nMr. Ortiz: I trust my principal.\n")
    code, summary, stderr = run_json(folder, "--codebook", small_codebook, "--db", tmp_path / "n.db")
    assert code == 0
    notes = {(Path(n["path"]).name, n["note"].split(":")[0].split(",")[0]) for n in summary["notes"]}
    assert ("manifest.csv", "names 'missing.txt'") in notes
    assert ("b.txt", "has no case metadata") in notes
    assert "missing.txt" in stderr


def test_export_and_queue_refuse_a_database_that_does_not_exist(qcode: Callable[..., Answer], tmp_path: Path) -> None:
    for args in (["queue"], ["export", "--format", "jsonl", "--out", str(tmp_path / "x.jsonl")]):
        code, _, stderr = qcode(*args, "--db", tmp_path / "typo.db")
        assert code == 1 and "no database at" in stderr
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--format", "codings", "--status", "audit"], "--status chooses the suggestions jsonl and csv write"),
        (["--format", "qdpx", "--status", "accepted"], "qdpx writes the codes that stand after review"),
        (["--format", "decisions", "--run", "latest"], "--run does not apply to decisions"),
    ],
)
def test_export_options_a_format_does_not_take_are_refused(
    qcode: Callable[..., Answer], tmp_path: Path, args: list[str], said: str
) -> None:
    code, _, stderr = qcode("export", *args, "--db", tmp_path / "any.db", "--out", tmp_path / "x.out")
    assert code == 2 and said in stderr and not (tmp_path / "x.out").exists()


def test_a_database_that_cannot_be_opened_is_one_line_and_one_json_object(
    qcode: Callable[..., Answer], tmp_path: Path, small_codebook: Path
) -> None:
    write(tmp_path / "in" / "a.txt", "Ms. Chen: We got a grant.\n")
    code, stdout, stderr = qcode(
        "run", tmp_path / "in", "--codebook", small_codebook, "--db", tmp_path / "no" / "such" / "dir.db", "--json"
    )
    assert code == 1
    assert "cannot be opened" in json.loads(stdout)["error"]
    assert "Traceback" not in stderr


def test_export_of_one_run_matches_its_summary_across_chunk_sizes(
    run_json: Callable[..., Any], qcode: Callable[..., Answer], tmp_path: Path, small_codebook: Path
) -> None:
    folder = tmp_path / "in"
    _corpus(folder, 2)
    db = tmp_path / "sizes.db"
    _, small, _ = run_json(folder, "--codebook", small_codebook, "--db", db, "--chunk-size", "150")
    _, large, _ = run_json(folder, "--codebook", small_codebook, "--db", db, "--chunk-size", "2000")
    assert large["chunks"] < small["chunks"]
    for summary in (small, large):
        out = tmp_path / f"{summary['run_id']}.jsonl"
        qcode("export", "--db", db, "--format", "jsonl", "--out", out, "--run", summary["run_id"])
        assert len(out.read_text().splitlines()) == summary["suggestions"]
        codings = tmp_path / f"{summary['run_id']}.csv"
        qcode("export", "--db", db, "--format", "codings", "--out", codings, "--run", summary["run_id"])
        with open(codings, newline="") as handle:
            assert len({r["unit_id"] for r in csv.DictReader(handle)}) == summary["chunks"]
    latest = tmp_path / "latest.jsonl"
    qcode("export", "--db", db, "--format", "jsonl", "--out", latest, "--run", "latest")
    assert len(latest.read_text().splitlines()) == large["suggestions"]


def test_a_password_in_the_database_url_stays_out_of_run_records(
    tmp_path: Path, small_codebook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.store import database_url, redact

    url = "postgresql+psycopg://coder:s3cret@db.example/study"
    assert redact(url) == "postgresql+psycopg://coder:***@db.example/study"
    monkeypatch.setenv("QCODE_DB", url)
    assert database_url(redact(url)) == url
    monkeypatch.setenv("QCODE_DB", "postgresql+psycopg://coder:s3cret@other.example/study")
    with pytest.raises(Exception, match="password is hidden"):
        database_url(redact(url))


def test_a_prefect_server_left_in_the_environment_is_not_used(
    run_json: Callable[..., Any], tmp_path: Path, small_codebook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens there
    write(tmp_path / "in" / "a.txt", "Ms. Chen: The district gave us a grant.\n")
    code, summary, _ = run_json(tmp_path / "in", "--codebook", small_codebook, "--db", tmp_path / "p.db")
    assert code == 0 and summary["transcripts"] == 1


def test_a_manifest_that_cannot_be_read_fails_its_files_by_name_and_the_run_is_closed(
    tmp_path: Path, small_codebook: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_coder("manifest-first", proposes="first-code", confidence=0.9)
    folder = tmp_path / "study"
    write(folder / "broken" / "a.txt", "Ms. Chen: The grant came late.\n")
    write(folder / "broken" / "manifest.csv", "\x00\x01PNG")
    write(folder / "fine" / "b.txt", "Mr. Ortiz: We trust each other.\n")
    db = tmp_path / "m.db"
    summary = code_store(folder, small_codebook, db, coder="manifest-first")
    assert summary.transcripts == 1  # the other folder is coded
    [failure] = summary.failed
    assert failure.path.endswith("a.txt") and "its manifest" in failure.error and "binary file" in failure.error
    # a run that breaks off with an error is closed as failed, not left running
    monkeypatch.setattr(corpus, "manifest_notes", lambda sources: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        code_store(folder, small_codebook, db, coder="manifest-first")
    statuses = [s for (s,) in rows(db, "select status from runs order by started_at")]
    assert statuses == ["failed", "failed"]  # the first: a file failed; the second: broke off
    [(summary_json,)] = rows(db, "select summary from runs where summary like '%ZeroDivisionError%'")
    assert "division by zero" in summary_json


def test_files_a_run_does_not_read_are_said_and_an_empty_folder_is_a_failure(
    tmp_path: Path, small_codebook: Path
) -> None:
    scripted_coder("unread-first", proposes="first-code", confidence=0.9)
    folder = tmp_path / "study"
    write(folder / "a.txt", "Ms. Chen: The grant came late.\n")
    write(folder / "memo.rtf", "{\\rtf1 The grant came late.}")
    write(folder / "old.doc", "\xd0\xcf\x11\xe0")
    write(folder / "~$a.docx", "a lock file Word left")
    summary = code_store(folder, small_codebook, tmp_path / "u.db", coder="unread-first")
    assert summary.transcripts == 1 and summary.failed == []
    said = {Path(n.path).name: n.note for n in summary.notes}
    assert said["memo.rtf"] == "not read: '.rtf' files are not transcripts qcode reads (save it as .docx or .txt)"
    assert "old.doc" in said and "~$a.docx" not in said
    empty = tmp_path / "empty"
    empty.mkdir()
    [failure] = code_store(empty, small_codebook, tmp_path / "e.db", coder="unread-first").failed
    assert failure.error.startswith("no transcripts found (qcode reads .csv, .docx")


def test_a_file_the_manifest_lists_twice_with_different_values_is_noted(tmp_path: Path, small_codebook: Path) -> None:
    scripted_coder("twice-first", proposes="first-code", confidence=0.9)
    folder = tmp_path / "study"
    write(folder / "a.txt", "Ms. Chen: The grant came late.\n")
    write(folder / "manifest.csv", "file,district,role\na.txt,North,teacher\na.txt,South,principal\n")
    summary = code_store(folder, small_codebook, tmp_path / "t.db", coder="twice-first")
    assert [n.note for n in summary.notes] == ["lists 'a.txt' twice, with different values: its last row is used"]
    [(metadata,)] = rows(tmp_path / "t.db", "select metadata from transcripts")
    assert json.loads(metadata)["district"] == "South"
