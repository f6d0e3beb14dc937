"""What every test gets: its own folder and no qcode settings from the user; and, for the tests that
ask, the `qcode` command line, a small codebook, the OpenAI-protocol server and a key for it, and a
PostgreSQL database."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fakes import SMALL_CODEBOOK, Answer
from fakes import qcode as run_qcode
from fakes.openai_server import FakeOpenAI
from sqlalchemy.engine import URL, make_url

import pipeline.review.reviewers as reviewer_module


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own folder, with no qcode settings from the user."""
    monkeypatch.chdir(tmp_path)
    for name in ("QCODE_DB", "QCODE_CONFIG", "QCODE_THRESHOLD"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


@pytest.fixture(scope="session")
def qcode() -> Callable[..., Answer]:
    """The `qcode` command line, in this process: qcode("export", "--format", "csv", ...)."""
    return run_qcode


@pytest.fixture
def small_codebook(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_CODEBOOK, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def quick_passwords() -> Iterator[None]:
    """Cheap password hashes (argon2 at its lowest cost) for tests that sign in many times: the
    real parameters are tested where hashing is."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reviewer_module, "_hasher", cheap)
        mp.setattr(reviewer_module, "_DUMMY_HASH", cheap.hash("not a password"))
        yield


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    """The OpenAI-protocol server of tests/fakes/openai_server.py, on a loopback port."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A key in the environment, as a user sets it, and no base URL from the user's own."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-stored")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return "sk-test-never-stored"


os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
# The tests run in two processes (pytest-xdist, pyproject.toml): each starts Prefect's temporary
# server, and each gets a Prefect home of its own, so the two servers never share one database file.
# And one thread each for torch's arithmetic: two processes of two threads on two cores wait on each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix=f"qcode-prefect-{os.environ['PYTEST_XDIST_WORKER']}-")
    for threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(threads, "1")


# --- PostgreSQL: QCODE_TEST_POSTGRES names a server (.ci/run starts one); without it these tests skip

POSTGRES_ENV = "QCODE_TEST_POSTGRES"


def _connect(url: URL, database: str | None = None):
    import psycopg  # in the test extra: pip install -e '.[test]'

    return psycopg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        dbname=database or url.database or "postgres",
        autocommit=True,
        connect_timeout=10,
    )


@pytest.fixture(scope="module")
def postgres_url() -> URL:
    """The server from QCODE_TEST_POSTGRES; the module skips without it."""
    value = os.environ.get(POSTGRES_ENV)
    if not value:
        pytest.skip(
            f"{POSTGRES_ENV} is not set: these tests need a PostgreSQL server "
            '(.ci/run starts one; by hand: out=$(.ci/postgres-start) && eval "$out")'
        )
    url = make_url(value)
    assert url.get_backend_name() == "postgresql", (
        f"{POSTGRES_ENV} must be a postgresql+psycopg:// URL, not {url.drivername}"
    )
    with _connect(url):  # set but unreachable is a failure, not a skip
        pass
    return url


@pytest.fixture
def pg_db(postgres_url: URL) -> Iterator[str]:
    """A new, empty database for one test, as a URL with the password; dropped afterwards."""
    name = f"qcode_test_{uuid.uuid4().hex[:12]}"
    with _connect(postgres_url) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres_url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        if os.environ.get("QCODE_DB") == url:
            del os.environ["QCODE_DB"]  # `qcode run` keeps a URL's password there, out of run records
        with _connect(postgres_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
