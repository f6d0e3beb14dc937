"""The store on a real PostgreSQL server: migrations, a whole run and its export, the call cache.

QCODE_TEST_POSTGRES names the server: a SQLAlchemy URL such as
postgresql+psycopg://qcode:PASSWORD@127.0.0.1:PORT/qcode_test, of a role that may create
databases. .ci/run starts a throwaway server and sets it; by hand:

    out=$(.ci/postgres-start) && eval "$out"
    pytest tests/test_postgres.py
    .ci/postgres-stop

Without it these tests skip. Each test gets a database of its own, dropped after it.
"""

from __future__ import annotations

import csv
import json
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from fakes import EXAMPLES, LINKAGES, Answer, write
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from pipeline.chunk import chunk_transcript
from pipeline.codebook import load_codebook
from pipeline.coders.calls import CallCache, Completion
from pipeline.ingest import discover, read_source
from pipeline.store import Base, Store
from pipeline.store.migrations import config as alembic_config
from pipeline.suggestion import ChunkCoding, Provenance, Rejection, Usage


def test_migrations_create_exactly_the_models_schema(pg_db: str) -> None:
    store = Store(pg_db)
    try:
        assert store.engine.dialect.name == "postgresql"
        with store.engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            version = connection.execute(text("select version_num from alembic_version")).scalar_one()
        assert diff == []
        assert set(inspect(store.engine).get_table_names()) == set(Base.metadata.tables) | {"alembic_version"}
        assert version == ScriptDirectory.from_config(alembic_config(store.engine)).get_current_head()
        Store(pg_db).engine.dispose()  # opening again is harmless
    finally:
        store.engine.dispose()


SLICE = (
    "harbor_seacliff_principal.txt",
    "harbor_district_administrator.vtt",
    "valley_mesa_verde_teacher_leader_cp1252.txt",
)
TABLES = ("transcripts", "turns", "chunks", "codebooks", "suggestions", "rejections", "chunk_codings", "run_chunks")


@pytest.mark.slow
def test_a_run_is_stored_not_repeated_and_exported(
    qcode: Callable[..., Answer], pg_db: str, tmp_path: Path, small_codebook: Path
) -> None:
    folder = tmp_path / "slice"
    folder.mkdir()
    for name in SLICE:
        shutil.copy(EXAMPLES / "transcripts" / name, folder / name)
    manifest = (EXAMPLES / "transcripts" / "manifest.csv").read_text(encoding="utf-8").splitlines()
    (folder / "manifest.csv").write_text(
        "\n".join([manifest[0], *(line for line in manifest[1:] if line.split(",")[0] in SLICE)]) + "\n",
        encoding="utf-8",
    )

    code, stdout, stderr = qcode("run", folder, "--codebook", small_codebook, "--db", pg_db, "--json")
    assert code == 0, stderr
    first = json.loads(stdout)
    assert first["transcripts"] == len(SLICE) and first["failed"] == [] and first["failed_chunks"] == 0
    assert first["chunks_coded_now"] == first["chunks"] > len(SLICE)
    assert first["suggestions"] == first["accepted"] + first["queued"] > 0
    assert any("cp1252" in note["note"] for note in first["notes"])

    engine = create_engine(pg_db)
    try:
        with engine.connect() as c:
            before = {t: c.execute(text(f"select count(*) from {t}")).scalar_one() for t in TABLES}
            assert before["chunk_codings"] == before["chunks"] == first["chunks"]
            assert before["suggestions"] == first["suggestions"]
            assert {m["district"] for (m,) in c.execute(text("select metadata from transcripts"))} == {
                "Harbor Union High School District",
                "Valley Union High School District",
            }
            for quote, start, end, transcript in c.execute(
                text(
                    "select s.quote, s.quote_start, s.quote_end, t.text from suggestions s "
                    "join transcripts t on t.id = s.transcript_id"
                )
            ):
                assert transcript[start:end] == quote  # offsets survive the round trip through PostgreSQL
            # the run records name the database without its password
            password = make_url(pg_db).password
            records = c.execute(text("select r::text from runs r")).scalars().all()
            assert records and not any(password in record for record in records)

        code, stdout, stderr = qcode("run", folder, "--codebook", small_codebook, "--db", pg_db, "--json")
        assert code == 0, stderr
        second = json.loads(stdout)
        assert second["chunks_coded_now"] == 0
        for key in ("transcripts", "chunks", "suggestions", "accepted", "queued", "rejected"):
            assert second[key] == first[key]
        with engine.connect() as c:
            assert {t: c.execute(text(f"select count(*) from {t}")).scalar_one() for t in TABLES} == {
                **before,
                "run_chunks": 2 * before["run_chunks"],
            }
            assert c.execute(text("select status from runs")).scalars().all() == ["finished", "finished"]
    finally:
        engine.dispose()

    out = tmp_path / "suggestions.csv"
    code, _, stderr = qcode("export", "--db", pg_db, "--format", "csv", "--out", out)
    assert code == 0 and "wrote" in stderr
    with open(out, newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == first["suggestions"]
    assert {"case_district", "quote", "quote_start", "coder", "codebook_version"} <= set(table[0])
    assert {row["coder"] for row in table} == {"offline"}

    code, stdout, _ = qcode("queue", "--db", pg_db, "--json", "--limit", "1000")
    assert code == 0 and json.loads(stdout)["total"] == first["queued"]


def _completion(content: str) -> Completion:
    return Completion(
        contents=[content],
        logprobs=[[["funding", -0.05, 7]]],
        usage=Usage(input_tokens=120, cached_input_tokens=64, output_tokens=30, requests=1),
        duration_ms=12.5,
    )


def _entry(key: str, content: str) -> tuple:
    request = {"model": "test-model", "messages": [{"role": "user", "content": f"chunk {key}"}]}
    return key, "http://127.0.0.1:8765/v1", "test-model", request, _completion(content)


def test_the_call_cache_keeps_the_first_reply_once(pg_db: str) -> None:
    store = Store(pg_db)
    try:
        cache = CallCache(store)
        key = uuid.uuid4().hex * 2
        cache.put([_entry(key, '{"codes": []}')])
        cache.put([_entry(key, '{"codes": []}')])  # the same call again
        cache.put([_entry(key, "a later reply"), _entry(key, "and another"), _entry("b" * 64, "new")])
        with store.engine.connect() as c:
            assert c.execute(text("select count(*) from model_calls where key = :k"), {"k": key}).scalar_one() == 1
            assert c.execute(text("select count(*) from model_calls")).scalar_one() == 2
        cached = cache.get(key)
        assert cached is not None and cached.contents == ['{"codes": []}'] and cached.usage.cached_input_tokens == 64

        # runs caching the same calls at once: no conflict error, one row per call
        keys = [f"{i:064x}" for i in range(40)]
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda n: cache.put([_entry(k, f"writer {n}") for k in keys]), range(6)))
        with store.engine.connect() as c:
            assert c.execute(text("select count(*) from model_calls")).scalar_one() == 2 + len(keys)
        assert set(cache.get_many(keys)) == set(keys)
    finally:
        store.engine.dispose()


def test_a_made_up_code_longer_than_its_column_is_stored(pg_db: str, tmp_path: Path) -> None:
    """PostgreSQL enforces VARCHAR lengths (SQLite does not): a model's long made-up code must not
    sink the transaction of its whole batch."""

    write(tmp_path / "in" / "a.txt", "Interviewer: Any support?\nMs. Chen: The district gave us a grant.\n")
    store = Store(pg_db)
    try:
        (source,), _ = discover([tmp_path / "in"])
        prepared = [(t, chunk_transcript(t)) for t in read_source(source)]
        store.save_transcripts(prepared)
        chunk = prepared[0][1][0]
        codebook = load_codebook(LINKAGES)
        store.save_codebook(codebook, str(LINKAGES))
        prov = Provenance(
            coder="openai",
            model="test-model",
            coder_key="c" * 16,
            prompt_version="p",
            codebook_version=codebook.version,
            parameters={},
        )
        run_id = store.start_run(prov, codebook, [], {})
        made_up = "the district's structural support for teacher leaders " * 6
        rejection = Rejection(
            chunk_id=chunk.id,
            code=made_up,
            quote="a grant",
            reason=f"code '{made_up}' is not in the codebook",
            raw={"code": made_up},
        )
        store.save_codings(run_id, prov, [(ChunkCoding(chunk_id=chunk.id), [], [rejection])])
        with store.engine.connect() as c:
            code, raw = c.execute(text("select code, raw from rejections")).one()
            status = c.execute(text("select status from chunk_codings")).scalar_one()
        assert len(made_up) > 200 and len(code) == 200 and made_up.startswith(code[:-1])
        assert raw["code"] == made_up and status == "coded"
    finally:
        store.engine.dispose()
