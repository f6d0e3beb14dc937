"""The review app served by uvicorn on a loopback port, and what its tests review: a database of
suggestions queued for review, coded by a plain run, and reviewer accounts."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi.testclient import TestClient

from fakes.coder import ScriptedCoder, scripted_coder
from fakes.study import code_store, write_transcripts
from pipeline.review.app import create_app, server_config
from pipeline.review.reviewers import add_reviewer, grant_runs
from pipeline.store import Store


def csrf_of(page: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def signed_in(app: Any, name: str, password: str, **client: Any) -> TestClient:
    """A test client of the app, signed in through the login form."""
    c = TestClient(app, follow_redirects=False, **client)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"csrf_token": token, "name": name, "password": password, "next": "/queue"})
    assert r.status_code == 303, r.text[:300]
    return c


def queueing_coder(confidence: float = 0.3) -> type[ScriptedCoder]:
    """The coder of the review app's tests: the codebook's first code on every chunk, quoting its
    first line, with a confidence low enough that routing sends every suggestion to review."""
    return scripted_coder("review-test", "queueing-1", "queueing-v1", proposes="first-code", confidence=confidence)


def make_review_db(folder: Path, transcripts: dict[str, str], codebook: Path, db: Path, confidence: float = 0.3) -> str:
    """Code the transcripts (name -> text) into `db` with the queueing coder; returns the run id.
    Another `confidence` is another coder configuration."""
    queueing_coder(confidence)
    source = write_transcripts(folder / "transcripts", transcripts)
    summary = code_store(source, codebook, db, coder="review-test", audit_share=0)
    assert not summary.failed and not summary.failed_chunks, summary
    return summary.run_id


def make_reviewers(db: Path, names: dict[str, str], run_id: str) -> dict[str, str]:
    """Accounts (name -> role) that may see the run; returns name -> password."""
    store = Store(str(db))
    passwords = {}
    for name, role in names.items():
        passwords[name] = add_reviewer(store, name, role)
        grant_runs(store, name, [run_id])
    return passwords


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReviewServer:
    """`qcode serve` in a thread: uvicorn on 127.0.0.1 and a free port."""

    def __init__(
        self,
        db: Path | str,
        secret_key: str = "test-secret-key-0123456789abcdef",
        trusted_proxies: tuple[str, ...] = (),
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(str(db), secret_key=secret_key)
        self.server = uvicorn.Server(server_config(app, "127.0.0.1", self.port, trusted_proxies))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ReviewServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the review app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
