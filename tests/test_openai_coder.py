"""The openai coder end to end: the real `openai` client against a local server
that speaks the OpenAI wire protocol (tests/fakes/openai_server.py), a real SQLite
database and the real flow. Nothing inside qcode is replaced."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import pytest
from fakes import qcode, write

pytestmark = pytest.mark.slow
CODEBOOK = """\
name: Support codebook
description: Two codes about how a district supports teacher leaders.
codes:
  - id: funding
    name: Funding
    definition: Money, grants, release time or materials the district provides.
    inclusion: [Grants, stipends, paid release time.]
    exclusion: [Praise without resources; use trust.]
    examples:
      positive: ["The district funds our release time."]
      negative: ["We talked about the weather."]
  - id: trust
    name: Trust
    definition: Trust, respect and openness between district leaders and teacher leaders.
    examples:
      positive: ["I trust my principal."]
"""

INTERVIEWS = [
    "Interviewer: How does the district help?\nMs. Chen: Funding for release time came from the district. We meet monthly.",
    "Interviewer: And relationships?\nMr. Ortiz: I trust the district office completely. They listen to us.",
    "Interviewer: Anything else?\nDr. Ramos: Funding is thin this year. Still, we trust each other.",
    "Interviewer: What about the weather?\nMs. Lee: It rained all week. The parking lot flooded.",
]


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "interviews"
    for i, text in enumerate(INTERVIEWS):
        write(folder / f"interview_{i}.txt", text + "\n")
    codebook = tmp_path / "support.yaml"
    codebook.write_text(CODEBOOK)
    return folder, codebook


@pytest.fixture(autouse=True)
def api_key(openai_key: str) -> str:
    return openai_key


def run_arguments(study, db: Path, base_url: str) -> list[str]:
    """`qcode run` of the study with the openai coder at `base_url`, into `db`."""
    folder, codebook = study
    return [
        "run",
        str(folder),
        "--codebook",
        str(codebook),
        "--db",
        str(db),
        "--coder",
        "openai",
        "--model",
        "gpt-4o-mini",
        "--base-url",
        base_url,
    ]


def run(study, server, db: Path, *extra: str, base_url: str | None = None) -> tuple[int, dict]:
    """`qcode run --coder openai --json` against the server (or another address), and its JSON."""
    result = qcode(*run_arguments(study, db, base_url or server.url), "--json", "--max-retries", "3", *extra)
    return result.exit_code, json.loads(result.stdout)


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def test_clean_run_records_provenance_and_never_the_key(study, server, tmp_path: Path, api_key: str) -> None:
    db = tmp_path / "clean.db"
    code, summary = run(study, server, db)
    assert code == 0
    assert summary["coder"] == "openai" and summary["model"] == "gpt-4o-mini"
    assert summary["chunks"] == 4 and summary["failed_chunks"] == 0
    assert summary["suggestions"] == 4  # funding, trust, funding + trust, nothing for the weather
    assert summary["requests"] == server.stats()["chat_completed"] == 4
    assert summary["input_tokens"] == server.stats()["prompt_tokens"]
    assert summary["output_tokens"] == server.stats()["completion_tokens"]
    assert summary["cost_usd"] == 0  # a server on this machine costs nothing
    codes = sorted(rows(db, "select code, quote from suggestions"))
    assert codes == [
        ("funding", "Funding for release time came from the district."),
        ("funding", "Funding is thin this year."),
        ("trust", "I trust the district office completely."),
        ("trust", "Still, we trust each other."),
    ]
    parameters, prompt_version, tokens = rows(
        db, "select parameters, prompt_version, input_tokens > 0 from suggestions"
    )[0]
    parameters = json.loads(parameters)
    assert parameters["endpoint"] == server.url and parameters["temperature"] == 0.0 and parameters["samples"] == 1
    assert len(prompt_version) == 12 and tokens == 1
    run_parameters = json.loads(rows(db, "select parameters from runs")[0][0])
    assert run_parameters["coder"]["endpoint"] == server.url and run_parameters["limits"]["concurrency"] == 8
    assert api_key.encode() not in db.read_bytes()
    # the request: strict JSON schema whose codes are the codebook's, the chunk last
    request = server.requests[0]
    assert request["response_format"]["json_schema"]["strict"] is True
    assert request["response_format"]["json_schema"]["schema"]["properties"]["codes"]["items"]["properties"]["code"][
        "enum"
    ] == ["funding", "trust"]
    assert request["messages"][0]["role"] == "system" and "code: funding" in request["messages"][0]["content"]
    assert "<chunk>" in request["messages"][-1]["content"]


def test_second_run_makes_no_requests(study, server, tmp_path: Path) -> None:
    db = tmp_path / "again.db"
    run(study, server, db)
    before = server.stats()["chat_requests"]
    code, summary = run(study, server, db)
    assert code == 0 and summary["requests"] == 0 and summary["cost_usd"] == 0
    assert server.stats()["chat_requests"] == before


def test_calls_paid_for_are_answered_from_the_cache(study, server, tmp_path: Path) -> None:
    db = tmp_path / "cache.db"
    _, first = run(study, server, db)
    # as if the run had been killed after the calls, before the results were stored
    with sqlite3.connect(db) as connection:
        connection.execute("delete from suggestions")
        connection.execute("delete from chunk_codings")
    before = server.stats()["chat_requests"]
    code, second = run(study, server, db)
    assert code == 0 and second["requests"] == 0 and second["cache_hits"] == 4
    assert second["suggestions"] == first["suggestions"]
    assert server.stats()["chat_requests"] == before


@pytest.mark.parametrize("kind, options", [("429", {"retry_after": 0.2}), ("500", {}), ("slow", {"seconds": 3})])
def test_transient_faults_are_retried_and_nothing_is_lost(
    study, server, tmp_path: Path, kind: str, options: dict
) -> None:
    server.add_fault(kind, times=2, **options)
    code, summary = run(study, server, tmp_path / f"{kind}.db", "--timeout", "1")
    assert code == 0
    assert summary["failed_chunks"] == 0 and summary["suggestions"] == 4
    assert server.stats()["faults_served"][kind] == 2
    assert server.stats()["chat_requests"] == 6


def test_429_honours_retry_after(study, server, tmp_path: Path) -> None:
    server.add_fault("429", times=1, match="weather", retry_after=1.5)
    import time

    began = time.monotonic()
    code, _ = run(study, server, tmp_path / "after.db", "--concurrency", "1")
    assert code == 0 and time.monotonic() - began >= 1.5


def test_a_chunk_that_keeps_failing_is_stored_as_failed_and_coded_next_time(study, server, tmp_path: Path) -> None:
    db = tmp_path / "fail.db"
    server.add_fault("500", times=100, match="weather")
    code, summary = run(study, server, db, "--max-retries", "1")
    assert code == 1 and summary["failed_chunks"] == 1 and summary["suggestions"] == 4
    [(status, error)] = rows(db, "select status, error from chunk_codings where status != 'coded'")
    assert status == "failed" and "500" in error
    server.reset()
    code, summary = run(study, server, db)
    assert code == 0 and summary["failed_chunks"] == 0 and summary["chunks_coded_now"] == 1


@pytest.mark.parametrize("kind", ["malformed", "fabricated_quote", "unknown_code"])
def test_invalid_replies_are_retried_with_the_problems_fed_back(study, server, tmp_path: Path, kind: str) -> None:
    db = tmp_path / f"{kind}.db"
    server.add_fault(kind, times=1, match="Funding for release time")
    code, summary = run(study, server, db)
    assert code == 0 and summary["rejected"] == 0 and summary["suggestions"] == 4
    retry = [r for r in server.requests if len(r["messages"]) == 4]
    assert len(retry) == 1
    assert retry[0]["messages"][2]["role"] == "assistant"
    assert "could not be accepted" in retry[0]["messages"][3]["content"]


def test_replies_still_invalid_after_every_attempt_become_rejections_for_a_person(
    study, server, tmp_path: Path
) -> None:
    db = tmp_path / "reject.db"
    server.add_fault("fabricated_quote", times=3, match="Funding for release time")
    server.add_fault("malformed", times=3, match="I trust the district office")
    code, summary = run(study, server, db)
    assert code == 0
    assert summary["suggestions"] == 2 and summary["rejected"] == 2
    reasons = sorted(r for (r,) in rows(db, "select reason from rejections where status = 'open'"))
    assert reasons == ["quote is not verbatim in the chunk", "the reply was not valid JSON of the requested form"]
    assert rows(db, "select count(*) from chunk_codings where status = 'coded'") == [(4,)]


def test_servers_without_json_schema_fall_back_to_json_mode(study, server, tmp_path: Path) -> None:
    server.add_fault("no_json_schema", times=10**6)
    code, summary = run(study, server, tmp_path / "mode.db", "--concurrency", "1")
    assert code == 0 and summary["suggestions"] == 4
    kinds = [r.get("response_format", {}).get("type") for r in server.requests]
    assert kinds[0] == "json_schema" and kinds[1:] == ["json_object"] * 4


def test_self_consistency_and_logprobs_shape_the_confidence(study, server, tmp_path: Path) -> None:
    db = tmp_path / "samples.db"
    code, _ = run(study, server, db, "--samples", "3", "--temperature", "0.7")
    assert code == 0
    assert server.requests[0]["n"] == 3 and server.requests[0]["logprobs"] is True
    [(confidence,)] = rows(
        db, "select confidence from suggestions where quote = 'Funding for release time came from the district.'"
    )
    # one code in the reply: it is in 2 of the 3 samples; rating 0.9; each token's logprob -0.01
    rating, agreement = 0.9, 2 / 3
    assert agreement * math.sqrt(rating * math.exp(-0.05)) < confidence < agreement * math.sqrt(rating)


def test_dry_run_estimates_tokens_offline_within_ten_percent(study, server, tmp_path: Path) -> None:
    db = tmp_path / "dry.db"
    code, estimate = run(study, server, db, "--dry-run", base_url="http://127.0.0.1:9/v1")  # nothing listens there
    assert code == 0
    assert not db.exists()
    assert estimate["pending"] == 4 and estimate["requests"] == 4
    run(study, server, db)
    counted = server.stats()["prompt_tokens"]
    assert abs(estimate["input_tokens"] - counted) <= 0.1 * counted


def test_batch_mode_end_to_end(study, server, tmp_path: Path) -> None:
    db = tmp_path / "batch.db"
    code, summary = run(study, server, db, "--batch", "--poll-interval", "0.05")
    assert code == 0
    stats = server.stats()
    assert stats["batches"] == 1 and stats["batch_requests"] == 4 and stats["chat_requests"] == 0
    assert summary["batch_requests"] == 4 and summary["requests"] == 0 and summary["cache_hits"] == 4
    assert summary["suggestions"] == 4
    [(status, finished)] = rows(db, "select status, finished_at is not null from batches")
    assert status == "completed" and finished == 1
    import openai

    # the uploaded transcripts, and the replies, were deleted at the provider
    assert list(openai.OpenAI(base_url=server.url, api_key="x").files.list()) == []


def test_no_key_for_openai_itself_is_a_clear_error(study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    folder, codebook = study
    result = qcode("run", str(folder), "--codebook", str(codebook), "--coder", "openai", "--model", "gpt-4o-mini")
    assert result.exit_code == 1 and "OPENAI_API_KEY" in result.stderr


def test_a_pending_batch_survives_the_process_ending(study, server, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    db = tmp_path / "restart.db"
    server.configure(batch_polls_until_done=10**6)
    command = [
        sys.executable,
        "-m",
        "pipeline.cli",
        *run_arguments(study, db, server.url),
        "--batch",
        "--poll-interval",
        "0.1",
        "--json",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            try:
                if db.exists() and rows(db, "select count(*) from batches") == [(1,)]:
                    break
            except sqlite3.OperationalError:
                pass
        assert process.poll() is None, "the run ended before its batch was recorded"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    [(batch_id, status)] = rows(db, "select id, status from batches")
    assert status in ("validating", "in_progress")

    server.configure(batch_polls_until_done=1)
    code, summary = run(study, server, db, "--batch", "--poll-interval", "0.05")
    assert code == 0 and summary["suggestions"] == 4
    stats = server.stats()
    assert stats["batches"] == 1 and stats["chat_requests"] == 0  # picked up, not sent again
    assert rows(db, "select id, status from batches") == [(batch_id, "completed")]


def test_reviewers_decisions_become_few_shot_examples(study, server, tmp_path: Path) -> None:
    from pipeline.store import DecisionRecord, Store, now

    folder, codebook = study
    db = tmp_path / "fewshot.db"
    run(study, server, db)
    [(chunk_id, start, end)] = rows(db, "select id, start, end from chunks where text like '%parking lot%'")
    text = rows(
        db, "select t.text from transcripts t join chunks c on c.transcript_id = t.id where c.id = '" + chunk_id + "'"
    )[0][0]
    quote_start = text.index("It rained all week.")
    store = Store(str(db))
    with store.session() as s:  # a reviewer added a code the model missed
        s.add(
            DecisionRecord(
                suggestion_id=None,
                chunk_id=chunk_id,
                reviewer="ana",
                verdict="add",
                final_code="funding",
                quote_start=quote_start,
                quote_end=quote_start + len("It rained all week."),
                reason="storm repairs came out of the PD budget",
                note=None,
                decided_at=now(),
            )
        )
    server.reset()
    write(folder / "interview_9.txt", "Interviewer: Weather?\nMr. Kim: The roof leaked when it rained all week.\n")
    code, summary = run(study, server, db, "--fewshot", "1")
    assert code == 0
    # the new configuration codes every chunk again, each shown the one adjudicated chunk
    assert summary["chunks_coded_now"] == 5
    for request in server.requests:
        messages = request["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
        assert "parking lot" in messages[1]["content"]
        assert json.loads(messages[2]["content"])["codes"] == [
            {
                "code": "funding",
                "justification": "Adjudicated by a reviewer.",
                "quote": "It rained all week.",
                "confidence": 1.0,
            }
        ]


def test_a_batch_the_provider_lost_is_coded_live(study, server, tmp_path: Path) -> None:
    from pipeline.codebook import load_codebook
    from pipeline.coders import make_coder, provenance
    from pipeline.store import BatchRecord, RunRecord, Store, now

    db = tmp_path / "lost.db"
    codebook = load_codebook(study[1])
    prov = provenance(make_coder("openai", model="gpt-4o-mini", base_url=server.url), codebook)
    store = Store(str(db))
    store.save_codebook(codebook, str(study[1]))
    # a run recorded a batch the provider has since forgotten (expired, or deleted)
    with store.session() as s:
        s.add(
            RunRecord(
                id="old-run",
                started_at=now(),
                finished_at=None,
                status="interrupted",
                coder="openai",
                model="gpt-4o-mini",
                coder_key=prov.coder_key,
                prompt_version=prov.prompt_version,
                codebook_name=codebook.name,
                codebook_version=codebook.version,
                parameters={},
                inputs=[],
                summary=None,
                qcode_version="0",
                host="elsewhere",
                pid=1,
            )
        )
        s.flush()
        s.add(
            BatchRecord(
                id="batch_forgotten",
                run_id="old-run",
                coder_key=prov.coder_key,
                status="in_progress",
                input_file_id="file-gone",
                output_file_id=None,
                requests={},
                usage=None,
                created_at=now(),
                finished_at=None,
            )
        )
    code, summary = run(study, server, db, "--batch", "--poll-interval", "0.05")
    assert code == 0 and summary["suggestions"] == 4
    assert rows(db, "select status from batches where id = 'batch_forgotten'") == [("lost",)]
