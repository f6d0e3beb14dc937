"""A coder that fails: transient errors are retried, others leave the chunks
failed with the reason, and the next run picks them up, whether the run goes
through Prefect (`qcode run`) or not (`pipeline.run.corpus.code_corpus`). The
coders here are real implementations of the coder interface, registered like
any plugin."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import write
from typer.testing import CliRunner

from pipeline.chunk import Chunk
from pipeline.cli import app
from pipeline.codebook import Codebook
from pipeline.coders import BaseCoder, register_coder
from pipeline.run.corpus import code_corpus
from pipeline.run.settings import run_request
from pipeline.suggestion import ChunkCoding, Proposal

pytestmark = pytest.mark.slow
runner = CliRunner()


class ScriptedCoder(BaseCoder):
    """Quotes the first sentence of each chunk as 'funding'; fails as scripted."""

    name = "scripted"
    model = "scripted-1"
    failures: list[BaseException] = []
    calls = 0

    @property
    def parameters(self) -> dict[str, Any]:
        return {}

    def prompt_version(self, codebook: Codebook) -> str:
        return "v1"

    def code(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        type(self).calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return [
            ChunkCoding(
                chunk_id=c.id,
                proposals=[
                    Proposal(code="funding", justification="Scripted.", quote=c.text.split("\n")[0], confidence=0.9)
                ],
            )
            for c in chunks
        ]


@pytest.fixture
def scripted() -> type[ScriptedCoder]:
    register_coder("scripted", ScriptedCoder)
    ScriptedCoder.failures = []
    ScriptedCoder.calls = 0
    return ScriptedCoder


def run(folder: Path, codebook: Path, db: Path, prefect: bool = True) -> tuple[int, dict]:
    if not prefect:
        request = run_request([folder], {"codebook": str(codebook), "db": str(db), "coder": "scripted"})
        summary = code_corpus(request)
        return int(bool(summary.failed or summary.failed_chunks)), summary.model_dump(mode="json")
    result = runner.invoke(
        app, ["run", str(folder), "--codebook", str(codebook), "--db", str(db), "--coder", "scripted", "--json"]
    )
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
    tmp_path: Path, small_codebook: Path, scripted
) -> None:
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
