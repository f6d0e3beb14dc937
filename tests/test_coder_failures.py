"""A coder that fails: transient errors are retried, others leave the chunks
failed with the reason, and the next run picks them up, whether the run goes
through Prefect (`qcode run`) or not (`pipeline.run.corpus.code_corpus`). The
coder here is a real implementation of the coder interface, registered like
any plugin."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from fakes import ScriptedCoder, code_store, qcode, scripted_coder, write

import pipeline.run.corpus

pytestmark = pytest.mark.slow


@pytest.fixture
def scripted() -> type[ScriptedCoder]:
    """A coder that quotes each chunk's first line as 'funding', and fails as scripted."""
    coder = scripted_coder("scripted", proposes="first-code", confidence=0.9)
    coder.failures = []
    coder.calls = 0
    return coder


def run(folder: Path, codebook: Path, db: Path, prefect: bool = True) -> tuple[int, dict]:
    if not prefect:
        summary = code_store(folder, codebook, db, coder="scripted")
        return int(bool(summary.failed or summary.failed_chunks)), summary.model_dump(mode="json")
    result = qcode("run", folder, "--codebook", codebook, "--db", db, "--coder", "scripted", "--json")
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.parametrize("prefect", [True, False], ids=["prefect", "plain"])
def test_transient_error_is_retried(tmp_path: Path, small_codebook: Path, scripted, prefect: bool) -> None:
    write(tmp_path / "in" / "a.txt", "Ms. Chen: We got a grant.\n")
    scripted.failures = [ConnectionError("connection reset")]
    code, summary = run(tmp_path / "in", small_codebook, tmp_path / "t.db", prefect)
    assert code == 0
    assert scripted.calls == 2
    assert summary["failed_chunks"] == 0 and summary["suggestions"] == 1


def test_a_transient_error_that_lasts_fails_the_batch_after_the_retries(
    tmp_path: Path, small_codebook: Path, scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline.run.corpus, "RETRY_DELAYS", (0.01, 0.01))  # as many retries, without the wait
    write(tmp_path / "in" / "a.txt", "Ms. Chen: We got a grant.\n")
    scripted.failures = [TimeoutError("slow")] * 3
    code, summary = run(tmp_path / "in", small_codebook, tmp_path / "t.db", prefect=False)
    assert code == 1 and scripted.calls == 3  # the first try and RETRY_DELAYS' two retries
    assert summary["failed_chunks"] == 1


@pytest.mark.parametrize("prefect", [True, False], ids=["prefect", "plain"])
def test_failed_chunks_are_kept_with_the_reason_and_coded_next_time(
    tmp_path: Path, small_codebook: Path, scripted, prefect: bool
) -> None:
    write(tmp_path / "in" / "a.txt", "Ms. Chen: We got a grant.\n")
    write(tmp_path / "in" / "b.txt", "Mr. Ortiz: We trust each other.\n")
    db = tmp_path / "f.db"
    scripted.failures = [ValueError("the coder broke")]
    code, summary = run(tmp_path / "in", small_codebook, db, prefect)
    assert code == 1
    assert scripted.calls == 1  # not a transient error: no retry
    assert summary["failed_chunks"] == 2 and summary["suggestions"] == 0
    with sqlite3.connect(db) as connection:
        errors = connection.execute("select status, error from chunk_codings").fetchall()
    assert errors == [("failed", "ValueError: the coder broke")] * 2

    code, summary = run(tmp_path / "in", small_codebook, db, prefect)
    assert code == 0
    assert summary["chunks_coded_now"] == 2 and summary["failed_chunks"] == 0 and summary["suggestions"] == 2
    with sqlite3.connect(db) as connection:
        assert connection.execute("select count(*) from chunk_codings where status = 'coded'").fetchone() == (2,)
