"""What visitors can make the review app keep is bounded, and a busy store is a 503 that keeps what
was typed (issue 23, points 4 and 5, and the store another program holds): through the app itself
(FastAPI's test client) over a real SQLite store."""

from __future__ import annotations

import re
import sqlite3
import time
import tracemalloc
from pathlib import Path

import pytest
from fakes import SMALL_CODEBOOK, code_store, scripted_coder, write, write_transcripts
from fakes.review_server import csrf_of, signed_in
from fastapi.testclient import TestClient
from sqlalchemy import select

from pipeline.review.app import BUSY_TEXT, OUTCOME_CHARS, LoginThrottle, Outcomes, create_app
from pipeline.review.reviewers import add_reviewer, grant_runs
from pipeline.store import DecisionRecord, Store, SuggestionRecord

pytestmark = pytest.mark.usefixtures("quick_passwords")
PASSAGE = "Ms. Chen: Money came late this year, and the grant was small.\n"


@pytest.fixture
def world(tmp_path: Path) -> dict:
    scripted_coder(
        "bounds-coder", proposes="phrases", phrases={"Money came": [("funding", 0.4, "Money came late this year")]}
    )
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "review.db"
    run = code_store(write_transcripts(tmp_path / "in", {"chen.txt": PASSAGE}), codebook, db, coder="bounds-coder")
    store = Store(str(db))
    password = add_reviewer(store, "rita")
    grant_runs(store, "rita", [run.run_id])
    with store.session() as s:
        suggestion = s.scalar(select(SuggestionRecord))
        assert suggestion is not None
    return {"db": db, "store": store, "password": password, "suggestion": suggestion.id, "chunk": suggestion.chunk_id}


def test_refused_sign_ins_for_names_no_one_has_leave_nothing_behind(world: dict) -> None:
    app = create_app(store=world["store"], secret_key="k" * 32)
    throttle: LoginThrottle = app.state.throttle
    anonymous = TestClient(app, follow_redirects=False)
    token = csrf_of(anonymous.get("/login").text)
    for i in range(300):
        r = anonymous.post("/login", data={"csrf_token": token, "name": f"nobody-{i}", "password": "x"})
        assert r.status_code in (401, 429)
    # the address's limit counts the first 50; the names refused after it are not kept
    assert len(throttle.failures) <= throttle.address_limit + 1


def test_twenty_thousand_refused_sign_ins_from_everywhere_stay_within_a_fixed_table() -> None:
    """As the sign-in page counts them (attempt, then a failed check), from 20,000 addresses for
    20,000 names: the table holds at most `most` keys, a few MB, whatever comes."""
    throttle = LoginThrottle(most=10_000)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(20_000):
        keys = [f"name:nobody-{i}", f"addr:10.{i // 65536}.{i // 256 % 256}.{i % 256}"]
        wait, stamp = throttle.attempt(keys)
        assert wait == 0.0
        throttle.checked(keys, stamp, ok=False)
    grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    tracemalloc.stop()
    assert len(throttle.failures) <= throttle.most and not throttle.checking
    assert grown < 16 * 2**20, f"{grown / 2**20:.1f} MiB"  # the stated bound: 16 MiB for 10,000 keys
    # a name still being guessed keeps its count
    for _ in range(throttle.limit):
        throttle.checked(["name:lena", "addr:1.2.3.4"], throttle.attempt(["name:lena", "addr:1.2.3.4"])[1], ok=False)
    assert throttle.attempt(["name:lena", "addr:1.2.3.5"])[0] > 0
    # once the window has passed, what is left of them goes with the next sign-in that grows the table
    for times in throttle.failures.values():
        for k in range(len(times)):
            times[k] -= throttle.window + 1
    throttle.most = 1
    throttle.checked(["name:x", "addr:y"], throttle.attempt(["name:x", "addr:y"])[1], ok=False)
    assert set(throttle.failures) <= {"name:x", "addr:y"}


def test_failed_forms_keep_a_bounded_amount_and_forget_it(world: dict) -> None:
    app = create_app(store=world["store"], secret_key="k" * 32)
    outcomes: Outcomes = app.state.outcomes
    rita = signed_in(app, "rita", world["password"])
    token = csrf_of(rita.get(f"/items/{world['suggestion']}").text)
    # a code no codebook has, each under another item's name: each post is refused and kept
    for i in range(2_000):
        r = rita.post(
            f"/chunks/{world['chunk']}/add",
            data={"csrf_token": token, "code": "x" * 6_000, "codebook_version": "none", "back": f"{i:016x}"},
        )
        assert r.status_code == 303
    assert len(outcomes.kept) <= outcomes.per_session
    assert outcomes.size() <= outcomes.per_session * (OUTCOME_CHARS + 200)
    # a `back` of a megabyte names no item: nothing is kept under it
    before = outcomes.size()
    r = rita.post(
        f"/chunks/{world['chunk']}/add",
        data={"csrf_token": token, "code": "trust", "codebook_version": "none", "back": "a" * 1_000_000},
    )
    assert r.status_code == 303 and r.headers["location"] == "/queue"
    assert outcomes.size() <= before

    # many sessions: at most `most` outcomes in all; and they expire
    many = Outcomes(seconds=0.2, most=500, per_session=3)
    for i in range(5_000):
        many.keep(f"session-{i}", "item", {"kind": "error", "text": "why", "typed": {"note": "y" * 50_000}})
    assert len(many.kept) == 500 and many.size() <= 500 * (OUTCOME_CHARS + 100)
    time.sleep(0.3)
    many.keep("late", "item", {"kind": "error", "text": "why", "typed": {}})
    assert list(many.kept) == [("late", "item")]


def test_a_store_another_program_holds_is_a_503_that_keeps_what_was_typed(world: dict) -> None:
    store = Store(str(world["db"]), busy_seconds=0.5)
    app = create_app(store=store, secret_key="k" * 32)
    rita = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    token = csrf_of(rita.get("/login").text)
    rita.post("/login", data={"csrf_token": token, "name": "rita", "password": world["password"], "next": "/queue"})
    page = rita.get(f"/items/{world['suggestion']}").text
    token, version = csrf_of(page), re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    holder = sqlite3.connect(world["db"], timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # another program's write, not finished
    try:
        r = rita.post(
            f"/items/{world['suggestion']}/decide",
            data={
                "csrf_token": token,
                "version": version,
                "verdict": "reject",
                "reason": "The grant is not the money meant here.",
                "note": "Asked Lena about this one.",
                "query": "",
            },
        )
        assert r.status_code == 503 and r.headers["retry-after"] == "10"
        assert "try again" in r.text.lower() or "send it again" in r.text
        assert f'href="/items/{world["suggestion"]}' in r.text
    finally:
        holder.rollback()
        holder.close()
    with store.session() as s:
        assert s.scalar(select(DecisionRecord)) is None
    again = rita.get(f"/items/{world['suggestion']}").text
    assert "The grant is not the money meant here." in again and "Asked Lena about this one." in again
    assert BUSY_TEXT.split(":")[0].replace("'", "&#39;") in again
