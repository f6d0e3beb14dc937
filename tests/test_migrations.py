from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from pipeline.store import Base, Store


def test_migrations_create_exactly_the_models_schema(db_url: str) -> None:
    store = Store(db_url)
    with store.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "transcripts",
        "turns",
        "chunks",
        "runs",
        "suggestions",
        "rejections",
        "decisions",
        "alembic_version",
    } <= tables


def test_opening_twice_is_harmless(db_url: str) -> None:
    Store(db_url)
    Store(db_url)


def test_a_database_from_before_the_review_app_upgrades_in_place(db_url: str) -> None:
    """A store made by an older qcode (schema 0001, with suggestions and rejections in it)
    gains the review tables; its rows stay, undecided, at version 1."""
    from datetime import datetime

    from sqlalchemy import create_engine, text

    from pipeline.store.migrations import upgrade

    engine = create_engine(db_url)
    upgrade(engine, "0001")
    stamp = datetime(2026, 1, 1)
    with engine.begin() as c:
        c.execute(text("INSERT INTO codebooks VALUES ('cb1', 'Book', 'b.yaml', '{}', :t)"), {"t": stamp})
        c.execute(
            text(
                "INSERT INTO runs (id, started_at, status, coder, model, coder_key, codebook_name, codebook_version,"
                " parameters, inputs, qcode_version, host, pid) VALUES ('r1', :t, 'done', 'offline', 'm', 'k1', 'Book',"
                " 'cb1', '{}', '[]', '0', 'h', 1)"
            ),
            {"t": stamp},
        )
        c.execute(
            text(
                "INSERT INTO transcripts VALUES ('t1', 'a.txt', 'a.txt', 'txt', 'utf-8', 'Ms. Chen: A grant.',"
                " '{}', '[]', :t)"
            ),
            {"t": stamp},
        )
        c.execute(text("INSERT INTO chunks VALUES ('c1', 't1', 0, 0, 18, 'Ms. Chen: A grant.', '[]', 0, 0, '[]')"))
        c.execute(
            text(
                "INSERT INTO suggestions (id, run_id, chunk_id, transcript_id, coder_key, code, justification, quote,"
                " quote_start, quote_end, confidence, status, coder, model, codebook_version, parameters, input_tokens,"
                " output_tokens, duration_ms, created_at, version) VALUES ('s1', 'r1', 'c1', 't1', 'k1', 'funding', 'j',"
                " 'A grant', 10, 17, 0.4, 'review', 'offline', 'm', 'cb1', '{}', 0, 0, 0, :t, 1)"
            ),
            {"t": stamp},
        )
        c.execute(
            text(
                "INSERT INTO rejections (run_id, chunk_id, coder_key, code, quote, reason, coder, model, codebook_version,"
                " status, created_at) VALUES ('r1', 'c1', 'k1', 'x', 'q', 'unknown code', 'offline', 'm', 'cb1', 'open', :t)"
            ),
            {"t": stamp},
        )
    store = Store(db_url)
    with store.engine.connect() as c:
        assert c.execute(text("SELECT version, decided_at, decided_by FROM suggestions")).one() == (1, None, None)
        assert c.execute(text("SELECT version, status FROM rejections")).one() == (1, "open")
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0008"
        # a passage stored before knows where its words lie in the transcript's normalised text
        rows = c.execute(text("SELECT chunk_id, key LIKE 't%', start, \"end\" FROM passage_words")).all()
        assert rows == [("c1", True, 0, 18)]
        # a chunk stored before turn units is a chunk, with no pages
        assert c.execute(text("SELECT unit, part, page_start FROM chunks")).one() == ("chunk", None, None)
    assert {"reviewers", "reviewer_runs", "assignments", "imports", "human_codes"} <= set(
        inspect(store.engine).get_table_names()
    )
