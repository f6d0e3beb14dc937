"""Reviewers: the people who adjudicate suggestions, their passwords and the runs they may see.

Passwords are argon2id hashes; the plain password is printed once, when the account
is made or reset, and never stored. A lead sees every run and can assign double
coding; a reviewer sees only the runs granted to them.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from sqlalchemy import select, update

from pipeline.errors import ReviewerError
from pipeline.store import GrantRecord, ReviewerRecord, ReviewerSessionRecord, RunRecord, Store, now

ROLES = ("reviewer", "lead")
_hasher = PasswordHasher()
# verifying against this costs as much as a real account, so a wrong name is not faster to find out;
# made at the first sign-in, not when qcode starts
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
    return _DUMMY_HASH


@dataclass(frozen=True)
class Reviewer:
    id: int
    name: str
    role: str

    @property
    def is_lead(self) -> bool:
        return self.role == "lead"


def _reviewer(record: ReviewerRecord) -> Reviewer:
    return Reviewer(record.id, record.name, record.role)


def new_password() -> str:
    return secrets.token_urlsafe(12)


def add_reviewer(store: Store, name: str, role: str = "reviewer") -> str:
    """Create an account; returns its password, shown once."""
    name = name.strip()
    if not name or len(name) > 200:
        raise ReviewerError("a reviewer's name must be 1 to 200 characters")
    if role not in ROLES:
        raise ReviewerError(f"unknown role '{role}' (choose from {', '.join(ROLES)})")
    password = new_password()
    with store.session() as s:
        if s.scalar(select(ReviewerRecord).where(ReviewerRecord.name == name)) is not None:
            raise ReviewerError(
                f"a reviewer named '{name}' already exists (use `qcode reviewer reset` for a new password)"
            )
        s.add(ReviewerRecord(name=name, role=role, password_hash=_hasher.hash(password), created_at=now()))
    return password


def _record(s, name: str) -> ReviewerRecord:  # noqa: ANN001
    record = s.scalar(select(ReviewerRecord).where(ReviewerRecord.name == name))
    if record is None:
        raise ReviewerError(f"no reviewer named '{name}'")
    return record


def reset_password(store: Store, name: str, enable: bool = False) -> str:
    """A new password, shown once; the reviewer's open sessions end. A disabled account stays
    disabled unless `enable` says otherwise: enabling one is never a side effect."""
    password = new_password()
    with store.session() as s:
        record = _record(s, name)
        if record.disabled_at is not None and not enable:
            raise ReviewerError(
                f"'{name}' is disabled: qcode reviewer reset {name} --enable gives a new password and lets them sign in again"
            )
        record.password_hash = _hasher.hash(password)
        record.disabled_at = None
        _end_sessions(s, record.id)
    return password


def disable_reviewer(store: Store, name: str) -> None:
    """The reviewer can no longer sign in, and their open sessions end; their decisions stay."""
    with store.session() as s:
        record = _record(s, name)
        record.disabled_at = now()
        _end_sessions(s, record.id)


def _end_sessions(s, reviewer_id: int) -> None:  # noqa: ANN001
    s.execute(
        update(ReviewerSessionRecord)
        .where(ReviewerSessionRecord.reviewer_id == reviewer_id, ReviewerSessionRecord.ended_at.is_(None))
        .values(ended_at=now())
    )


def start_session(store: Store, reviewer: Reviewer) -> str:
    """A new sign-in's id, for the session cookie."""
    session_id = secrets.token_urlsafe(32)
    with store.session() as s:
        s.add(ReviewerSessionRecord(id=session_id, reviewer_id=reviewer.id, created_at=now()))
    return session_id


def end_session(store: Store, session_id: str) -> None:
    with store.session() as s:
        s.execute(
            update(ReviewerSessionRecord)
            .where(ReviewerSessionRecord.id == session_id, ReviewerSessionRecord.ended_at.is_(None))
            .values(ended_at=now())
        )


def grant_runs(store: Store, name: str, run_ids: list[str]) -> list[str]:
    """Let a reviewer see these runs ('latest' and 'all' allowed); returns the run ids granted."""
    with store.session() as s:
        record = _record(s, name)
        runs = list(s.scalars(select(RunRecord).order_by(RunRecord.started_at)))
        chosen: list[str] = []
        for run_id in run_ids:
            if run_id == "all":
                chosen += [r.id for r in runs]
            elif run_id == "latest":
                if not runs:
                    raise ReviewerError("the database has no runs yet")
                chosen.append(runs[-1].id)
            elif any(r.id == run_id for r in runs):
                chosen.append(run_id)
            else:
                raise ReviewerError(f"no run '{run_id}' in the database")
        have = set(s.scalars(select(GrantRecord.run_id).where(GrantRecord.reviewer_id == record.id)))
        for run_id in dict.fromkeys(chosen):
            if run_id not in have:
                s.add(GrantRecord(reviewer_id=record.id, run_id=run_id, granted_at=now()))
    return list(dict.fromkeys(chosen))


class ReviewerAccount(BaseModel):
    """A reviewer as `qcode reviewer list` shows them: never their password or its hash."""

    name: str
    role: str
    active: bool
    created_at: datetime
    runs: Literal["all"] | list[str]  # a lead sees every run, present and future


class ReviewerList(BaseModel):
    """`qcode reviewer list --json`: every reviewer, by name."""

    reviewers: list[ReviewerAccount]


def list_reviewers(store: Store) -> list[ReviewerAccount]:
    with store.session() as s:
        grants: dict[int, list[str]] = {}
        for reviewer_id, run_id in s.execute(select(GrantRecord.reviewer_id, GrantRecord.run_id)):
            grants.setdefault(reviewer_id, []).append(run_id)
        return [
            ReviewerAccount(
                name=r.name,
                role=r.role,
                active=r.disabled_at is None,
                created_at=r.created_at,
                runs="all" if r.role == "lead" else sorted(grants.get(r.id, [])),
            )
            for r in s.scalars(select(ReviewerRecord).order_by(ReviewerRecord.name))
        ]


def authenticate(store: Store, name: str, password: str) -> Reviewer | None:
    """The reviewer, when the name and password match an active account."""
    with store.session() as s:
        record = s.scalar(select(ReviewerRecord).where(ReviewerRecord.name == name.strip()))
        try:
            _hasher.verify(record.password_hash if record is not None else _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        if record is None or record.disabled_at is not None:
            return None
        return _reviewer(record)


def get_reviewer(store: Store, reviewer_id: int) -> Reviewer | None:
    """An active reviewer by id, or None."""
    with store.session() as s:
        record = s.get(ReviewerRecord, reviewer_id)
        if record is None or record.disabled_at is not None:
            return None
        return _reviewer(record)


def session_reviewer(store: Store, session_id: str, max_age_hours: float) -> Reviewer | None:
    """The active reviewer of an open session younger than `max_age_hours`, or None."""
    from datetime import timedelta

    with store.session() as s:
        row = s.execute(
            select(ReviewerSessionRecord, ReviewerRecord)
            .join(ReviewerRecord, ReviewerRecord.id == ReviewerSessionRecord.reviewer_id)
            .where(ReviewerSessionRecord.id == session_id)
        ).first()
        if row is None:
            return None
        session, record = row
        if (
            session.ended_at is not None
            or record.disabled_at is not None
            or session.created_at < now() - timedelta(hours=max_age_hours)
        ):
            return None
        return _reviewer(record)


def visible_runs(store: Store, reviewer: Reviewer) -> list[RunRecord]:
    """The runs a reviewer may see, newest first."""
    with store.session() as s:
        query = select(RunRecord).order_by(RunRecord.started_at.desc())
        if not reviewer.is_lead:
            query = query.where(
                RunRecord.id.in_(select(GrantRecord.run_id).where(GrantRecord.reviewer_id == reviewer.id))
            )
        return list(s.scalars(query))
