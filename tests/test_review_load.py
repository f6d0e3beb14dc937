"""The review app under a bounded load: 20 reviewers at once, each with a session of its own,
decide 200 queued items through `qcode serve` on loopback. No decision is lost, none is
recorded twice, every item is decided once, and every 303 a reviewer got matches one
decision row. How fast is measured by benchmarks/review_load.py (2,000 items), whose
pieces this uses; the item count here keeps the test, database included, well under 45 s."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

import pipeline.review.reviewers
from pipeline.store import DecisionRecord, Store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import review_load  # noqa: E402

ITEMS = 200
REVIEWERS = 20


@pytest.mark.slow
def test_concurrent_reviewers_decide_every_item_exactly_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Accounts with cheap argon2 parameters (verification reads them from the hash), so that
    # 20 accounts and 20 sign-ins cost milliseconds rather than seconds; passwords are not under test.
    monkeypatch.setattr(
        pipeline.review.reviewers, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )
    db, run_id = review_load.build_database(tmp_path, ITEMS)
    accounts = review_load.make_accounts(db, REVIEWERS, run_id)
    assert len(accounts) == REVIEWERS

    with review_load.ServerProcess(db, tmp_path / "server.log") as server:
        logs, _, _ = review_load.run_reviewers(server.url, accounts, seed=1, timeout=30.0)

    assert len(logs) == REVIEWERS
    errors = [error for log in logs for error in log.errors]
    assert not errors, (errors[:5], server.output())
    assert all(log.finished for log in logs), "a reviewer stopped before /next said nothing was left"
    told = [d for log in logs for d in log.decided]
    assert len(told) == ITEMS, "one recorded (303) decision per item, over all reviewers"
    assert len({d["suggestion_id"] for d in told}) == ITEMS
    assert {d["verdict"] for d in told} == {"accept", "reject", "change"}

    checks = review_load.integrity(db, logs, ITEMS)
    assert checks["suggestions"] == ITEMS
    assert checks["undecided"] == 0 and checks["decided_suggestions"] == ITEMS, checks  # every item decided
    assert checks["decision_rows"] == ITEMS and checks["double_decisions"] == 0, checks  # none decided twice
    assert checks["lost_decisions"] == 0, checks  # every 303 has its row
    assert checks["untold_decisions"] == 0, checks  # every row was a 303 to its reviewer
    assert checks["conflicts_with_a_row"] == 0, checks  # a 409 recorded nothing
    assert checks["suggestion_row_mismatches"] == 0, checks  # decided_by and version agree with the row
    assert checks["other_decision_rows"] == 0
    assert checks["ok"], checks

    # the checks see what they are there to see: a second row for an item, a 303 with no row
    store = Store(db, migrate=False)
    with store.session() as s:
        row = s.scalar(select(DecisionRecord).where(DecisionRecord.suggestion_id == told[0]["suggestion_id"]))
        s.add(
            DecisionRecord(
                suggestion_id=row.suggestion_id,
                chunk_id=row.chunk_id,
                reviewer="reviewer-00",
                verdict="accept",
                final_code=row.final_code,
                decided_at=row.decided_at,
            )
        )
    store.engine.dispose()
    logs[0].decided.append({**told[1], "reviewer": "reviewer-00", "verdict": "reject", "final_code": None})
    broken = review_load.integrity(db, logs, ITEMS)
    assert broken["double_decisions"] == 1 and broken["untold_decisions"] == 1 and broken["lost_decisions"] == 1
    assert not broken["one_row_per_item"] and not broken["no_lost_decision"] and not broken["ok"]
