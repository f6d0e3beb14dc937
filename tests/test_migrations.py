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
    assert {"transcripts", "turns", "chunks", "runs", "suggestions", "rejections", "decisions", "alembic_version"} <= tables


def test_opening_twice_is_harmless(db_url: str) -> None:
    Store(db_url)
    Store(db_url)
