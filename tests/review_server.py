"""Shared pieces for the review app's tests: a database with queued suggestions made by a
real `qcode run`, reviewer accounts, and the app served by uvicorn on a loopback port."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from typer.testing import CliRunner

from pipeline.chunk import Chunk
from pipeline.cli import app as cli
from pipeline.codebook import Codebook
from pipeline.coders import register_coder
from pipeline.review.app import create_app
from pipeline.review.reviewers import add_reviewer, grant_runs
from pipeline.store import Store
from pipeline.suggestion import ChunkCoding, Proposal


class QueueingCoder:
    """Proposes the codebook's first applicable code for every chunk, quoting the chunk's first
    line, with a confidence low enough that routing sends every suggestion to review. The
    justification repeats the quote, so markup in a transcript reaches every field a page shows."""

    name = "review-test"
    model = "queueing-1"
    confidence = 0.3

    @property
    def parameters(self) -> dict[str, Any]:
        return {"confidence": self.confidence}

    def prompt_version(self, codebook: Codebook) -> str:
        return "queueing-v1"

    def code(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        code = codebook.leaves[0].id
        codings = []
        for chunk in chunks:
            quote = next(line for line in chunk.text.split("\n") if line.strip())
            codings.append(
                ChunkCoding(
                    chunk_id=chunk.id,
                    proposals=[
                        Proposal(
                            code=code,
                            justification=f"The passage says: {quote}",
                            quote=quote,
                            confidence=self.confidence,
                        )
                    ],
                )
            )
        return codings


def make_review_db(folder: Path, transcripts: dict[str, str], codebook: Path, db: Path) -> str:
    """Code the transcripts (name -> text) with QueueingCoder into `db`; returns the run id."""
    register_coder("review-test", QueueingCoder)
    source = folder / "transcripts"
    source.mkdir(parents=True, exist_ok=True)
    for name, text in transcripts.items():
        (source / name).write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        cli,
        [
            "run",
            str(source),
            "--codebook",
            str(codebook),
            "--db",
            str(db),
            "--coder",
            "review-test",
            "--audit-share",
            "0",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])["run_id"]


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

    def __init__(self, db: Path | str, secret_key: str = "test-secret-key-0123456789abcdef"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(str(db), secret_key=secret_key)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
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
