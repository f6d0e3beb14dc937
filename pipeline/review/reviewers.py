"""Reviewers: the people who adjudicate suggestions, their passwords and the runs they may see.

Passwords are argon2id hashes; the plain password is printed once, when the account
is made or reset, and never stored. A lead sees every run and can assign double
coding; a reviewer sees only the runs granted to them.

A name is stored NFKC-normalised, its spaces trimmed and each run of them one space; a name with
an invisible or control character is refused, and so is one that looks like an existing
reviewer's (ignoring case, width and look-alike letters: `resembles`). Every look-up by name
(sign-in, grant, revoke, reset, disable) finds the account however the name is typed in those
respects, and accounts stored before names were checked keep working under their own names.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from sqlalchemy import delete, select, update

from pipeline.errors import ReviewerError
from pipeline.store import (
    AssignmentRecord,
    GrantRecord,
    ReviewerRecord,
    ReviewerSessionRecord,
    RunRecord,
    Store,
    now,
)
from pipeline.store.queries import resolve_run

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


# --- names -----------------------------------------------------------------------------------

NAME_CHARS = 200

# why a character of each general category is refused in a name
_REFUSED = {
    "Cc": "control characters (tabs, line breaks) break the lines and tables a name is shown in",
    "Cf": "invisible formatting characters (zero-width ones, direction overrides) make one name look like another",
    "Zl": "a line separator breaks a name across lines",
    "Zp": "a paragraph separator breaks a name across lines",
    "Cs": "a lone surrogate is not a character",
    "Co": "a private-use character shows differently, or as nothing, from one machine to the next",
    "Cn": f"it is not a character in Unicode {unicodedata.unidata_version}, the version qcode reads",
}
# shown as nothing though not formatting characters: Unicode's other default-ignorable code points
# (the grapheme joiner, Hangul fillers, variation selectors) and the blank braille pattern
_BLANK = (
    (0x034F, 0x034F),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFFA0, 0xFFA0),
    (0xE0100, 0xE01EF),
)
_BLANK_REASON = "it shows as nothing, so a name with it looks like the same name without it"
# the names Unicode gives control characters as aliases (their Name field is empty)
_CONTROL_NAMES = {
    0x00: "NULL",
    0x07: "ALERT",
    0x08: "BACKSPACE",
    0x09: "CHARACTER TABULATION",
    0x0A: "LINE FEED",
    0x0B: "LINE TABULATION",
    0x0C: "FORM FEED",
    0x0D: "CARRIAGE RETURN",
    0x1B: "ESCAPE",
    0x7F: "DELETE",
    0x85: "NEXT LINE",
}
_UNNAMED = {"Cc": "(control)", "Cs": "(surrogate)", "Co": "(private use)", "Cn": "(unassigned)"}


def _refusal(char: str) -> str | None:
    """Why `char` may not be part of a reviewer's name, or None when it may."""
    reason = _REFUSED.get(unicodedata.category(char))
    if reason is None and any(low <= ord(char) <= high for low, high in _BLANK):
        reason = _BLANK_REASON
    return reason


def describe_character(char: str) -> str:
    """'U+202E RIGHT-TO-LEFT OVERRIDE': a character as Unicode names it."""
    name = unicodedata.name(char, "") or _CONTROL_NAMES.get(ord(char)) or _UNNAMED.get(unicodedata.category(char), "")
    return f"U+{ord(char):04X} {name}".rstrip()


def _shown(name: str) -> str:
    """A name fit for a message: every character a name may not hold written as <U+XXXX>."""
    return "".join(f"<U+{ord(c):04X}>" if _refusal(c) else c for c in name)


def reviewer_name(name: str) -> str:
    """A name as it is stored: NFKC-normalised, spaces trimmed and each run of spaces one space.
    A ReviewerError, naming the character and why, for a control, format (zero-width, bidi),
    separator, surrogate, private-use, unassigned or blank character anywhere in it."""
    for text in (name, unicodedata.normalize("NFKC", name)):
        for position, char in enumerate(text, 1):
            reason = _refusal(char)
            if reason is not None:
                raise ReviewerError(
                    f"a reviewer's name cannot contain {describe_character(char)} (character {position}): {reason}"
                )
    clean = " ".join(unicodedata.normalize("NFKC", name).split())
    if not clean or len(clean) > NAME_CHARS:
        raise ReviewerError(f"a reviewer's name must be 1 to {NAME_CHARS} characters")
    return clean


def name_key(name: str) -> str:
    """What two names that are typed differently but mean one account share: NFKC, case folded,
    without invisible characters (a line break or tab as a space), spaces as in a stored name."""
    visible = "".join(
        c if _refusal(c) is None else " " if c.isspace() else "" for c in unicodedata.normalize("NFKC", name)
    )
    return " ".join(unicodedata.normalize("NFKC", visible.casefold()).split())


def resembles(name: str, other: str) -> bool:
    """Whether two names could be taken for each other: the same once case, width and invisible
    characters are set aside (`name_key`), or letter by letter look-alikes under Unicode's
    confusables (Cyrillic а for Latin a, rn for m, 1 for l), as the `confusables` package reads them."""
    from confusables import is_confusable  # its table is read at import: only when a name is added

    a, b = name_key(name), name_key(other)
    return a == b or bool(is_confusable(a, b)) or bool(is_confusable(b, a))


def add_reviewer(store: Store, name: str, role: str = "reviewer") -> str:
    """Create an account (under `reviewer_name(name)`); returns its password, shown once."""
    typed = name
    name = reviewer_name(name)
    if role not in ROLES:
        raise ReviewerError(f"unknown role '{role}' (choose from {', '.join(ROLES)})")
    password = new_password()
    with store.session() as s:
        existing = list(s.scalars(select(ReviewerRecord.name).order_by(ReviewerRecord.id)))
        if name in existing:
            read_as = f" ('{_shown(typed.strip())}' reads as '{name}')" if typed.strip() != name else ""
            raise ReviewerError(
                f"a reviewer named '{name}' already exists{read_as} (use `qcode reviewer reset` for a new password)"
            )
        alike = next((other for other in existing if resembles(name, other)), None)
        if alike is not None:
            raise ReviewerError(
                f"'{name}' looks like the existing reviewer '{_shown(alike)}' (names are compared ignoring case, "
                "width and look-alike letters): choose a name no one could take for theirs"
            )
        s.add(ReviewerRecord(name=name, role=role, password_hash=_hasher.hash(password), created_at=now()))
    return password


def _find(s, name: str) -> ReviewerRecord | None:  # noqa: ANN001
    """The account a typed name means: stored under exactly that name (an account made before names
    were checked keeps its own), else under its normalised form, else the one account with its
    `name_key`; None when there is none, or more than one such account."""
    typed = name.strip()
    for candidate in dict.fromkeys([typed, " ".join(unicodedata.normalize("NFKC", typed).split())]):
        record = s.scalar(select(ReviewerRecord).where(ReviewerRecord.name == candidate))
        if record is not None:
            return record
    key = name_key(typed)
    if not key:
        return None
    same = [r for r in s.scalars(select(ReviewerRecord)) if name_key(r.name) == key]
    return same[0] if len(same) == 1 else None


def _record(s, name: str) -> ReviewerRecord:  # noqa: ANN001
    record = _find(s, name)
    if record is None:
        raise ReviewerError(f"no reviewer named '{_shown(name.strip())}'")
    return record


def find_reviewer(store: Store, name: str) -> Reviewer:
    """The account a typed name means, enabled or not (see `_find`); a ReviewerError when none."""
    with store.session() as s:
        return _reviewer(_record(s, name))


def reset_password(store: Store, name: str, enable: bool = False) -> str:
    """A new password, shown once; the reviewer's open sessions end. A disabled account stays
    disabled unless `enable` says otherwise: enabling one is never a side effect."""
    password = new_password()
    with store.session() as s:
        record = _record(s, name)
        if record.disabled_at is not None and not enable:
            raise ReviewerError(
                f"'{_shown(record.name)}' is disabled: qcode reviewer reset {_shown(record.name)} --enable "
                "gives a new password and lets them sign in again"
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


def _chosen_runs(s, run_ids: list[str]) -> list[str]:  # noqa: ANN001
    """Run ids, 'latest' and 'all' as the ids they mean, oldest first and each once; an unknown id
    is an error."""
    runs = list(s.scalars(select(RunRecord.id).order_by(RunRecord.started_at)))
    chosen: list[str] = []
    for run_id in run_ids:
        if run_id == "all":
            chosen += runs
        elif run_id == "latest":
            if not runs:
                raise ReviewerError("the database has no runs yet")
            chosen.append(runs[-1])
        elif run_id in runs:
            chosen.append(run_id)
        else:
            raise ReviewerError(f"no run '{run_id}' in the database")
    return list(dict.fromkeys(chosen))


def grant_runs(store: Store, name: str, run_ids: list[str]) -> list[str]:
    """Let a reviewer see these runs ('latest' and 'all' allowed); returns the run ids granted."""
    run_ids = [r if r == "all" else str(resolve_run(store, r)) for r in run_ids]  # latest: one that coded
    with store.session() as s:
        record = _record(s, name)
        chosen = _chosen_runs(s, run_ids)
        have = set(s.scalars(select(GrantRecord.run_id).where(GrantRecord.reviewer_id == record.id)))
        for run_id in chosen:
            if run_id not in have:
                s.add(GrantRecord(reviewer_id=record.id, run_id=run_id, granted_at=now()))
    return chosen


class Revocation(BaseModel):
    """`qcode reviewer revoke --json`: what a reviewer may no longer see."""

    name: str
    runs: list[str]  # the runs whose grant was removed
    not_granted: list[str]  # runs named (by id or latest) that the reviewer had no grant for
    assignments_withdrawn: int  # blind passages of those runs they had not coded yet


def revoke_runs(store: Store, name: str, run_ids: list[str]) -> Revocation:
    """The inverse of `grant_runs`: the reviewer no longer sees these runs ('latest' allowed; 'all',
    every run granted to them), from their next request on, sessions open or not. Their blind
    passages of those runs not coded yet are withdrawn; codes given and decisions made stay. A run
    they had no grant for is listed in `not_granted`, not an error; a lead, who sees every run, is."""
    run_ids = [r if r == "all" else str(resolve_run(store, r)) for r in run_ids]
    with store.session() as s:
        record = _record(s, name)
        if record.role == "lead":
            raise ReviewerError(
                f"'{_shown(record.name)}' is a lead, and a lead sees every run: there is no grant to revoke "
                f"(qcode reviewer disable {_shown(record.name)} stops them signing in)"
            )
        have = set(s.scalars(select(GrantRecord.run_id).where(GrantRecord.reviewer_id == record.id)))
        chosen = _chosen_runs(s, run_ids)
        revoked = [r for r in chosen if r in have]
        named = _chosen_runs(s, [r for r in run_ids if r != "all"])  # 'all' names no run in particular
        s.execute(delete(GrantRecord).where(GrantRecord.reviewer_id == record.id, GrantRecord.run_id.in_(revoked)))
        withdrawn = s.execute(  # type: ignore[attr-defined]  # a DELETE's result has a rowcount
            delete(AssignmentRecord)
            .where(
                AssignmentRecord.reviewer_id == record.id,
                AssignmentRecord.run_id.in_(revoked),
                AssignmentRecord.coded_at.is_(None),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        return Revocation(
            name=record.name,
            runs=revoked,
            not_granted=[r for r in named if r not in have],
            assignments_withdrawn=withdrawn or 0,
        )


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
        record = _find(s, name)
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
