"""Reviewer names no one can mistake for another's, and access to a run taken back (issue 23,
point 13): `qcode reviewer add` refuses invisible and control characters (naming the character)
and names that look like an existing reviewer's; names are stored NFKC-normalised and found
however they are typed; `qcode reviewer revoke NAME --run RUN` is the inverse of `grant`, and a
reviewer signed in already loses the run from their next page. Through the command line and the
app itself (FastAPI's test client), over a database coded by two real runs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes import SMALL_CODEBOOK, Answer, write
from fakes.review_server import csrf_of, make_review_db
from fastapi.testclient import TestClient
from sqlalchemy import select

from pipeline.review.app import create_app
from pipeline.store import AssignmentRecord, GrantRecord, ReviewerRecord, RunChunkRecord, Store, now

pytestmark = pytest.mark.usefixtures("quick_passwords")
SECRET = "test-secret-key-0123456789abcdef"


@dataclass
class World:
    db: Path
    store: Store
    run_a: str  # the older run
    run_b: str  # the latest


@pytest.fixture
def world(tmp_path: Path) -> World:
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "review.db"
    run_a = make_review_db(
        tmp_path / "a", {"chen.txt": "Ms. Chen: The district gave us a grant for new materials.\n"}, codebook, db
    )
    run_b = make_review_db(
        tmp_path / "b",
        {"soto.txt": "Mr. Soto: We plan together every Tuesday in the library.\n"},
        codebook,
        db,
        confidence=0.2,  # another coder configuration: another run
    )
    return World(db, Store(str(db)), run_a, run_b)


def add(qcode: Callable[..., Answer], world: World, name: str, *args: str) -> Answer:
    return qcode("reviewer", "add", name, *args, "--db", world.db)


def password_of(answer: Answer) -> str:
    assert answer.exit_code == 0, answer.output
    return answer.stdout.strip().splitlines()[-1]


def stored_names(world: World) -> list[str]:
    with world.store.session() as s:
        return sorted(s.scalars(select(ReviewerRecord.name)))


def signing_in(world: World, name: str, password: str) -> tuple[int, TestClient]:
    c = TestClient(create_app(store=world.store, secret_key=SECRET), follow_redirects=False)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"csrf_token": token, "name": name, "password": password, "next": "/queue"})
    return r.status_code, c


def items_of_run(world: World, run_id: str) -> list[str]:
    from pipeline.store import SuggestionRecord

    with world.store.session() as s:
        chunks = select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id)
        return list(s.scalars(select(SuggestionRecord.id).where(SuggestionRecord.chunk_id.in_(chunks))))


def queue_ids(c: TestClient) -> list[str]:
    r = c.get("/queue")
    assert r.status_code == 200
    return re.findall(r'<td><a href="/items/([0-9a-f]{16})\?', r.text)


# --- names that are refused, and why ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("le\u200bna", "U+200B ZERO WIDTH SPACE (character 3): invisible formatting characters"),
        ("\u2060lena", "U+2060 WORD JOINER (character 1)"),
        ("\u202eanel", "U+202E RIGHT-TO-LEFT OVERRIDE (character 1): invisible formatting characters"),
        ("lena\u2066x", "U+2066 LEFT-TO-RIGHT ISOLATE"),
        ("le\nna", "U+000A LINE FEED (character 3): control characters"),
        ("lena\n", "U+000A LINE FEED (character 5)"),
        ("le\tna", "U+0009 CHARACTER TABULATION"),
        ("le\x1bna", "U+001B ESCAPE"),
        ("lena\u2028", "U+2028 LINE SEPARATOR (character 5): a line separator"),
        ("lena\u2029", "U+2029 PARAGRAPH SEPARATOR"),
        ("lena\ue000", "U+E000 (private use)"),
        ("le\u3164na", "U+3164 HANGUL FILLER (character 3): it shows as nothing"),
        ("lena\ufe0f", "U+FE0F VARIATION SELECTOR-16"),
        ("le\u00adna", "U+00AD SOFT HYPHEN"),
    ],
)
def test_an_invisible_or_control_character_is_refused_by_name(
    qcode: Callable[..., Answer], world: World, name: str, said: str
) -> None:
    answer = add(qcode, world, name)
    assert answer.exit_code == 1, answer.output
    error = answer.stderr.strip()
    assert said in error and "a reviewer's name cannot contain" in error, error
    assert len(error.splitlines()) == 1 and name not in error  # one line, and the raw name is not echoed
    assert stored_names(world) == []

    answer = add(qcode, world, name, "--json")
    assert answer.exit_code == 1 and said in json.loads(answer.stdout)["error"]


def test_a_look_alike_of_an_existing_name_is_refused_naming_it(qcode: Callable[..., Answer], world: World) -> None:
    lena = add(qcode, world, "lena", "--role", "lead")
    assert lena.exit_code == 0, lena.output
    for alike in (
        "l\u0435na",  # Cyrillic е
        "Lena",  # case
        "LENA",
        "\uff2c\uff45\uff4e\uff41",  # fullwidth "Lena": normalised, then like 'lena'
        "1ena",  # digit one for l
        "\u0406ena",  # Cyrillic І
    ):
        answer = add(qcode, world, alike)
        assert answer.exit_code == 1, (alike, answer.output)
        assert "looks like the existing reviewer 'lena'" in answer.stderr, (alike, answer.stderr)
        assert len(answer.stderr.strip().splitlines()) == 1
    # fullwidth "lena", and "lena" with a roman numeral fifty, are "lena" itself once normalised
    for same in ("\uff4c\uff45\uff4e\uff41", "\u217cena"):
        answer = add(qcode, world, same)
        assert answer.exit_code == 1
        assert f"a reviewer named 'lena' already exists ('{same}' reads as 'lena')" in answer.stderr
    answer = add(qcode, world, "l\u0435na", "--json")
    assert answer.exit_code == 1 and "looks like the existing reviewer 'lena'" in json.loads(answer.stdout)["error"]

    # "rn" reads as "m"; a name unlike the others is taken
    assert add(qcode, world, "omar").exit_code == 0
    assert "looks like the existing reviewer 'omar'" in add(qcode, world, "ornar").stderr
    assert add(qcode, world, "nora").exit_code == 0
    assert stored_names(world) == ["lena", "nora", "omar"]


def test_names_are_stored_normalised_and_spaces_trimmed_and_collapsed(
    qcode: Callable[..., Answer], world: World
) -> None:
    answer = add(qcode, world, "\uff32\uff49\uff54\uff41", "--json")  # fullwidth "Rita"
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout)["name"] == "Rita"
    assert "stored as 'Rita'" in answer.stderr
    answer = add(qcode, world, "  Ana \u00a0  Mar\u00eda\u3000")
    assert answer.exit_code == 0, answer.output
    assert "Ana María (reviewer) created" in answer.stdout
    assert stored_names(world) == ["Ana María", "Rita"]
    # so is a name typed with a decomposed accent: one account, not two
    answer = add(qcode, world, "Ana Mari\u0301a")
    assert answer.exit_code == 1 and "a reviewer named 'Ana María' already exists" in answer.stderr
    for empty in ("", "   ", "\u3000"):
        answer = add(qcode, world, empty)
        assert answer.exit_code == 1 and "must be 1 to 200 characters" in answer.stderr


# --- finding an account however its name is typed ---------------------------------------------------


def test_sign_in_and_the_commands_find_the_account_in_any_width_or_case(
    qcode: Callable[..., Answer], world: World
) -> None:
    password = password_of(add(qcode, world, "rita", "--run", world.run_a))
    for typed in ("rita", "\uff52\uff49\uff54\uff41", "RITA", " Rita "):
        status, c = signing_in(world, typed, password)
        assert status == 303, typed
        assert sorted(queue_ids(c)) == sorted(items_of_run(world, world.run_a))
    assert signing_in(world, "rita", "wrong")[0] == 401

    answer = qcode("reviewer", "grant", "\uff52\uff49\uff54\uff41", "--run", world.run_b, "--db", world.db, "--json")
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout) == {"name": "rita", "runs": [world.run_b]}
    answer = qcode("reviewer", "revoke", "RITA", "--run", world.run_b, "--db", world.db, "--json")
    assert answer.exit_code == 0 and json.loads(answer.stdout)["name"] == "rita"
    answer = qcode("reviewer", "disable", "\uff32ita", "--db", world.db)
    assert answer.exit_code == 0 and "rita can no longer sign in" in answer.stdout
    answer = qcode("reviewer", "reset", "Rita", "--enable", "--db", world.db)
    assert answer.exit_code == 0 and "rita was disabled and is enabled again" in answer.stdout
    assert signing_in(world, "\uff52\uff49\uff54\uff41", password_of(answer))[0] == 303
    answer = qcode("reviewer", "reset", "r\u200bita", "--db", world.db)  # invisible characters are no part of a name
    assert answer.exit_code == 0, answer.output
    answer = qcode("reviewer", "grant", "ghost\u202e", "--run", "latest", "--db", world.db)
    assert answer.exit_code == 1 and "no reviewer named 'ghost<U+202E>'" in answer.stderr


def test_accounts_stored_before_names_were_checked_keep_working(qcode: Callable[..., Answer], world: World) -> None:
    password = password_of(add(qcode, world, "lena"))
    # a store made before this check: look-alikes, a zero-width space and a newline already in it
    legacy = {"l\u0435na": "", "Lena": "", "le\u200bna": "", "bob\nsmith": ""}
    for number, name in enumerate(legacy):
        legacy[name] = password_of(add(qcode, world, f"placeholder {number}"))
        with world.store.session() as s:
            record = s.scalar(select(ReviewerRecord).order_by(ReviewerRecord.id.desc()))
            assert record is not None
            record.name = name
    for name, secret in {"lena": password, **legacy}.items():
        assert signing_in(world, name, secret)[0] == 303, name
    # each is found under its own name, so the commands still reach it
    answer = qcode("reviewer", "grant", "l\u0435na", "--run", "latest", "--db", world.db, "--json")
    assert answer.exit_code == 0 and json.loads(answer.stdout)["name"] == "l\u0435na"
    answer = qcode("reviewer", "reset", "le\u200bna", "--db", world.db, "--json")
    assert answer.exit_code == 0 and json.loads(answer.stdout)["name"] == "le\u200bna"
    listed = json.loads(qcode("reviewer", "list", "--db", world.db, "--json").stdout)
    assert {r["name"] for r in listed["reviewers"]} == {"lena", *legacy}
    # a new account like any of them is refused; a message never carries their invisible characters
    answer = add(qcode, world, "bob smith")
    assert answer.exit_code == 1 and "looks like the existing reviewer 'bob<U+000A>smith'" in answer.stderr
    assert "\n" not in answer.stderr.strip()


# --- revoking a run ----------------------------------------------------------------------------------


def test_revoke_takes_a_run_back_from_a_reviewer_signed_in_already(qcode: Callable[..., Answer], world: World) -> None:
    password = password_of(add(qcode, world, "rita", "--run", "all"))
    _, rita = signing_in(world, "rita", password)
    item_a, item_b = items_of_run(world, world.run_a)[0], items_of_run(world, world.run_b)[0]
    assert rita.get(f"/items/{item_a}").status_code == 200
    assert set(queue_ids(rita)) == {item_a, item_b}
    # a blind passage of run A still to code, and one coded already
    with world.store.session() as s:
        rita_id = s.scalar(select(ReviewerRecord.id).where(ReviewerRecord.name == "rita"))
        chunk_a = s.scalar(select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == world.run_a))
        assert rita_id is not None and chunk_a is not None
        for sample, coded in (("s-waiting", None), ("s-coded", now())):
            s.add(
                AssignmentRecord(
                    sample=sample,
                    run_id=world.run_a,
                    chunk_id=chunk_a,
                    reviewer_id=rita_id,
                    assigned_by="lena",
                    assigned_at=now(),
                    codes=["funding"] if coded else None,
                    coded_at=coded,
                )
            )
        s.flush()
        waiting = s.scalar(select(AssignmentRecord.id).where(AssignmentRecord.sample == "s-waiting"))
    assert rita.get(f"/blind/{waiting}").status_code == 200

    answer = qcode("reviewer", "revoke", "rita", "--run", world.run_a, "--db", world.db)
    assert answer.exit_code == 0, answer.output
    assert f"rita may no longer see 1 run(s): {world.run_a}" in answer.stdout
    assert "1 blind passage(s) not coded yet withdrawn" in answer.stdout

    # the same session, its next requests: run A is gone, run B stays
    assert queue_ids(rita) == [item_b]
    assert rita.get(f"/items/{item_a}").status_code == 404
    assert rita.get(f"/items/{item_b}").status_code == 200
    assert rita.get(f"/blind/{waiting}").status_code == 404
    with world.store.session() as s:
        assert list(s.scalars(select(GrantRecord.run_id))) == [world.run_b]
        assert list(s.scalars(select(AssignmentRecord.sample))) == ["s-coded"]  # codes given stay

    # revoking again changes nothing and says so; 'latest' and --json answer like grant does
    answer = qcode("reviewer", "revoke", "rita", "--run", world.run_a, "--db", world.db, "--json")
    assert answer.exit_code == 0, answer.output
    assert json.loads(answer.stdout) == {
        "name": "rita",
        "runs": [],
        "not_granted": [world.run_a],
        "assignments_withdrawn": 0,
    }
    assert f"rita had no grant for {world.run_a}: nothing to revoke there" in answer.stderr
    answer = qcode("reviewer", "revoke", "rita", "--run", "latest", "--db", world.db, "--json")
    assert answer.exit_code == 0 and json.loads(answer.stdout)["runs"] == [world.run_b]
    assert queue_ids(rita) == []
    assert rita.get(f"/items/{item_b}").status_code == 404
    answer = qcode("reviewer", "revoke", "rita", "--run", "all", "--db", world.db)
    assert answer.exit_code == 0 and "may no longer see 0 run(s)" in answer.stdout
    assert "rita had no run granted: nothing to revoke" in answer.stderr

    # granted again, seen again
    assert qcode("reviewer", "grant", "rita", "--run", "all", "--db", world.db).exit_code == 0
    assert set(queue_ids(rita)) == {item_a, item_b}
    answer = qcode("reviewer", "revoke", "rita", "--run", "all", "--db", world.db, "--json")
    assert answer.exit_code == 0 and sorted(json.loads(answer.stdout)["runs"]) == sorted([world.run_a, world.run_b])
    assert queue_ids(rita) == []


def test_revoke_refuses_a_lead_an_unknown_run_and_an_unknown_reviewer(
    qcode: Callable[..., Answer], world: World
) -> None:
    assert add(qcode, world, "lena", "--role", "lead").exit_code == 0
    assert add(qcode, world, "rita", "--run", world.run_a).exit_code == 0
    answer = qcode("reviewer", "revoke", "lena", "--run", world.run_a, "--db", world.db)
    assert answer.exit_code == 1 and "'lena' is a lead, and a lead sees every run" in answer.stderr
    answer = qcode("reviewer", "revoke", "lena", "--run", "all", "--db", world.db, "--json")
    assert answer.exit_code == 1 and "is a lead" in json.loads(answer.stdout)["error"]
    # an unknown run anywhere on the line: nothing is revoked
    answer = qcode("reviewer", "revoke", "rita", "--run", world.run_a, "--run", "no-such-run", "--db", world.db)
    assert answer.exit_code == 1 and "no run 'no-such-run'" in answer.stderr
    answer = qcode("reviewer", "revoke", "ghost", "--run", "latest", "--db", world.db)
    assert answer.exit_code == 1 and "no reviewer named 'ghost'" in answer.stderr
    answer = qcode("reviewer", "revoke", "rita", "--db", world.db)
    assert answer.exit_code == 2  # --run is required, as for grant
    with world.store.session() as s:
        assert list(s.scalars(select(GrantRecord.run_id))) == [world.run_a]
