"""The review web app through FastAPI's TestClient, over databases coded by real runs.

One SQLite database is built per module (two runs: run A by `make_review_db`'s queueing coder,
run B by a coder whose confidences and codes are written into the transcripts) with reviewer
accounts; every test works on its own copy of it. The PostgreSQL tests at the end build a
database of their own on the server QCODE_TEST_POSTGRES names, and skip without it.

Passwords are hashed with cheap argon2 parameters here (the module's first fixture): the real
ones take about 0.4 s a hash on a small machine, and these tests sign in a few dozen times.
"""

from __future__ import annotations

import csv
import gc
import html
import io
import json
import re
import shutil
import sqlite3
import threading
from base64 import b64decode, b64encode
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fakes import SMALL_CODEBOOK, Answer, code_store, scripted_coder, write_transcripts
from fakes.review_server import make_review_db, make_reviewers, queueing_coder
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

import pipeline.review.app as review_app
import pipeline.review.decisions as decision_module
from pipeline.codebook import load_codebook
from pipeline.review import blind
from pipeline.review.app import create_app
from pipeline.review.reviewers import add_reviewer, disable_reviewer, get_reviewer, reset_password
from pipeline.store import (
    AssignmentRecord,
    Base,
    ChunkRecord,
    DecisionRecord,
    RejectionRecord,
    ReviewerRecord,
    Store,
    SuggestionRecord,
    TranscriptRecord,
)

SECRET = "test-secret-key-0123456789abcdef"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(2)>"


# --- the transcripts ----------------------------------------------------------------------

_WHITFIELD = [
    "the district paid for two release days for the science department",
    "a state grant bought lab kits that we still use every week",
    "our instructional coach is funded half by the district and half by Title I",
    "the budget for substitutes ran out before spring testing",
    "we asked the board for money for a summer bridge program",
    "teacher leaders get a stipend for running the Friday meetings",
    "the foundation gave us laptops for every ninth grader",
    "there was no money left for field trips after the audit",
    "we pooled the department budgets to buy a shared reading program",
    "release time for peer observation came from a federal grant",
    "the district office reviews every purchase over five hundred dollars",
    "we wrote a proposal for a makerspace and it was funded",
]

HARBOR_PRINCIPAL = "".join(
    f"Interviewer: What happened in year {i + 1}?\nMr. Whitfield: In year {i + 1} {line}.\n"
    for i, line in enumerate(_WHITFIELD)
)

TRANSCRIPTS_A = {
    "manifest.csv": "file,district,school,role\n"
    "harbor_principal.txt,Harbor,Seacliff High,principal\n"
    "harbor_teacher.txt,Harbor,Port Avenue High,teacher\n",
    "harbor_principal.txt": HARBOR_PRINCIPAL,
    "harbor_teacher.txt": "Interviewer: Does the district support you?\n"
    "Ms. Chen: The district gave us a grant for new materials.\n"
    "Interviewer: Anything else?\nMs. Chen: Not really, that was it.\n",
    "valley_teacher.txt": "---\ndistrict: Valley\nschool: Mesa Verde High\nrole: teacher\n---\n"
    "Interviewer: How do you plan lessons?\n"
    "Mr. Soto: We plan together every Tuesday in the library.\n",
    "markup.txt": '---\ndistrict: Valley\nschool: Mesa Verde High\nrole: "<i>counsellor</i>"\n---\n'
    f"Ms. Diaz: {XSS_SCRIPT} and {XSS_IMG} came in a parent's email.\n"
    "Interviewer: What did you do?\nMs. Diaz: We reported it to the district.\n",
}

TRANSCRIPTS_B = {
    "manifest.csv": "file,district,school,role\n"
    "b_harbor_principal.txt,Harbor,Seacliff High,principal\n"
    "b_harbor_teacher.txt,Harbor,Port Avenue High,teacher\n",
    "b_harbor_principal.txt": "Interviewer: How is the budget?\n"
    "Ms. Reyes: [funding 0.15] We had no budget for new materials this year.\n"
    "Interviewer: And your staff?\n"
    "Ms. Reyes: [trust 0.50] I trust my assistant principals with anything.\n",
    "b_harbor_teacher.txt": "Interviewer: Any support?\n"
    "Mr. Okafor: [funding 0.45] The grant paid for one release day.\n",
    "b_valley_teacher.txt": "---\ndistrict: Valley\nschool: Mesa Verde High\nrole: teacher\n---\n"
    "Interviewer: What gets in the way?\n"
    "Ms. Lin: [funding 0.55] Money for coaching ran out in March.\n"
    "Ms. Lin: [trust 0.25] Some colleagues are hard to read.\n",
    "b_valley_principal.txt": "---\ndistrict: Valley\nschool: Mesa Verde High\nrole: principal\n---\n"
    "Interviewer: Resources?\n"
    "Dr. Adeyemi: [funding 0.90] The district funds every request we make.\n",
}


def code_with_marks(folder: Path, transcripts: dict[str, str], codebook: Path, db: Path) -> str:
    """make_review_db with a coder that proposes, for every line carrying a mark like
    `[trust 0.50]`, that code with that confidence: run B gets known codes and confidences."""
    scripted_coder("review-app-marked", "marked-1", "marked-v1", proposes="marks")
    source = write_transcripts(folder / "transcripts", transcripts)
    summary = code_store(source, codebook, db, coder="review-app-marked", audit_share=0)
    assert not summary.failed and not summary.failed_chunks, summary
    return summary.run_id


# --- the module's database --------------------------------------------------------------------


@dataclass
class Item:
    id: str
    run_id: str
    chunk_id: str
    code: str
    source_name: str
    chunk_index: int
    chunk_start: int
    chunk_end: int
    quote_start: int
    quote_end: int
    confidence: float
    status: str
    codebook_version: str
    text: str  # the whole transcript


def items_of(store: Store) -> dict[tuple[str, int, str], Item]:
    """Every suggestion by (transcript, chunk index, code)."""
    with store.session() as s:
        rows = s.execute(
            select(SuggestionRecord, ChunkRecord, TranscriptRecord)
            .join(ChunkRecord, ChunkRecord.id == SuggestionRecord.chunk_id)
            .join(TranscriptRecord, TranscriptRecord.id == SuggestionRecord.transcript_id)
        ).all()
        return {
            (t.source_name, c.index, sug.code): Item(
                sug.id,
                sug.run_id,
                c.id,
                sug.code,
                t.source_name,
                c.index,
                c.start,
                c.end,
                sug.quote_start,
                sug.quote_end,
                sug.confidence,
                sug.status,
                sug.codebook_version,
                t.text,
            )
            for sug, c, t in rows
        }


@dataclass
class World:
    db: Path
    codebook: Path
    run_a: str
    run_b: str
    passwords: dict[str, str]
    items: dict[tuple[str, int, str], Item] = field(default_factory=dict)

    def item(self, source_name: str, chunk_index: int = 0, code: str = "funding") -> Item:
        return self.items[(source_name, chunk_index, code)]

    def of_run(self, run_id: str) -> list[Item]:
        return [i for i in self.items.values() if i.run_id == run_id]


RACERS = [f"r{i}" for i in range(10)]


@pytest.fixture(scope="module", autouse=True)
def quick(quick_passwords: None) -> None:
    """Cheap password hashes for the whole module (conftest's quick_passwords)."""


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, quick_passwords: None) -> World:
    base = tmp_path_factory.mktemp("review_app")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        for name in ("QCODE_DB", "QCODE_CONFIG", "QCODE_THRESHOLD"):
            mp.delenv(name, raising=False)
        codebook = base / "small.yaml"
        codebook.write_text(SMALL_CODEBOOK, encoding="utf-8")
        db = base / "template.db"
        run_a = make_review_db(base / "a", TRANSCRIPTS_A, codebook, db)
        run_b = code_with_marks(base / "b", TRANSCRIPTS_B, codebook, db)
        passwords = make_reviewers(
            db, {"lena": "lead", "rita": "reviewer", "bob": "reviewer", **{name: "reviewer" for name in RACERS}}, run_a
        )
        passwords |= make_reviewers(db, {"otto": "reviewer"}, run_b)
        store = Store(str(db))
        passwords["nora"] = add_reviewer(store, "nora")  # granted no run
        items = items_of(store)
        store.engine.dispose()
    gc.collect()
    with sqlite3.connect(db) as connection:  # everything into the main file, so a copy is whole
        busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0
    world = World(db, codebook, run_a, run_b, passwords, items)
    # what the tests below rely on
    assert len(world.of_run(run_a)) == 5 and {i.code for i in world.of_run(run_a)} == {"funding"}
    assert world.item("harbor_principal.txt", 1).chunk_id != world.item("harbor_principal.txt", 0).chunk_id
    assert {(i.source_name, i.code, i.confidence, i.status) for i in world.of_run(run_b)} == {
        ("b_harbor_principal.txt", "funding", 0.15, "review"),
        ("b_harbor_principal.txt", "trust", 0.5, "review"),
        ("b_harbor_teacher.txt", "funding", 0.45, "review"),
        ("b_valley_teacher.txt", "funding", 0.55, "review"),
        ("b_valley_teacher.txt", "trust", 0.25, "review"),
        ("b_valley_principal.txt", "funding", 0.9, "accepted"),
    }
    return world


@pytest.fixture
def db(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "review.db"
    shutil.copy(world.db, path)
    return path


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    store = Store(str(db))
    yield store
    store.engine.dispose()


@pytest.fixture
def app(store: Store) -> FastAPI:
    return create_app(store=store, secret_key=SECRET)


# --- helpers ----------------------------------------------------------------------------------


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def sign_in(app: FastAPI, name: str, password: str, client: tuple[str, int] = ("testclient", 50000)) -> TestClient:
    c = TestClient(app, follow_redirects=False, client=client)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"csrf_token": token, "name": name, "password": password, "next": "/queue"})
    assert r.status_code == 303 and r.headers["location"] == "/queue", (r.status_code, r.text[:500])
    return c


def token_of(c: TestClient) -> str:
    r = c.get("/blind")
    assert r.status_code == 200
    return csrf_of(r.text)


def open_item(c: TestClient, suggestion_id: str) -> tuple[str, int]:
    """(CSRF token, version) from an item page."""
    r = c.get(f"/items/{suggestion_id}")
    assert r.status_code == 200, r.status_code
    version = re.search(r'name="version" value="(\d+)"', r.text)
    assert version, "the item has no decision form"
    return csrf_of(r.text), int(version.group(1))


def post_decision(
    c: TestClient, suggestion_id: str, verdict: str, loaded: tuple[str, int] | None = None, **fields: Any
) -> Response:
    token, version = loaded or open_item(c, suggestion_id)
    data = {
        "csrf_token": token,
        "version": str(version),
        "verdict": verdict,
        "query": "",
        **{k: str(v) for k, v in fields.items()},
    }
    return c.post(f"/items/{suggestion_id}/decide", data=data)


def refused(c: TestClient, r: Response, suggestion_id: str) -> str:
    """A decision not recorded: back to the item with a redirect (a reload sends nothing again), and
    the item's page, which says why."""
    location = r.headers.get("location", "")
    assert r.status_code == 303 and location.startswith(f"/items/{suggestion_id}?"), (r.status_code, location)
    return c.get(location).text


def message(page: str, kind: str) -> str:
    found = re.search(rf'<p class="flash {kind}"[^>]*>(.*?)</p>', page, flags=re.S)
    assert found, f"no {kind} message on the page"
    return html.unescape(found.group(1))


def flashes(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r'<p class="flash \w+" role="status">(.*?)</p>', page, flags=re.S)]


def queue_ids(c: TestClient, **params: Any) -> list[str]:
    r = c.get("/queue", params=params)
    assert r.status_code == 200
    return re.findall(r'<td><a href="/items/([0-9a-f]{16})\?', r.text)


def queue_counts(c: TestClient, **params: Any) -> tuple[int, int]:
    r = c.get("/queue", params=params)
    found = re.search(r"<strong>(\d+)</strong> waiting \([^)]*\) ·\s*<strong>(\d+)</strong> decided", r.text)
    assert found
    return int(found.group(1)), int(found.group(2))


def signed_in(c: TestClient) -> bool:
    r = c.get("/queue")
    assert r.status_code in (200, 303)
    return r.status_code == 200


TABLES = ("decisions", "suggestions", "assignments", "reviewers", "reviewer_runs")


def snapshot(store: Store) -> dict[str, list[tuple]]:
    with store.engine.connect() as c:
        return {
            name: sorted((tuple(row) for row in c.execute(select(Base.metadata.tables[name]))), key=repr)
            for name in TABLES
        }


def decisions(store: Store, **where: Any) -> list[DecisionRecord]:
    with store.session() as s:
        query = select(DecisionRecord).order_by(DecisionRecord.id)
        for key, value in where.items():
            query = query.where(getattr(DecisionRecord, key) == value)
        return list(s.scalars(query))


def suggestion(store: Store, suggestion_id: str) -> SuggestionRecord:
    with store.session() as s:
        return s.get(SuggestionRecord, suggestion_id)


def assignment_rows(store: Store) -> list[tuple[int, str, str, Any]]:
    """(assignment id, chunk id, reviewer name, codes or None when uncoded)."""
    with store.session() as s:
        return [
            (a.id, a.chunk_id, name, a.codes if a.coded_at else None)
            for a, name in s.execute(
                select(AssignmentRecord, ReviewerRecord.name)
                .join(ReviewerRecord, ReviewerRecord.id == AssignmentRecord.reviewer_id)
                .order_by(AssignmentRecord.id)
            )
        ]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def at_once(n: int, work: Callable[[int], Any]) -> list[Any]:
    """work(0..n-1) in n threads released together."""
    barrier = threading.Barrier(n)

    def run(i: int) -> Any:
        barrier.wait(timeout=30)
        return work(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


# --- signing in ---------------------------------------------------------------------------------


def test_every_page_but_the_login_sends_an_anonymous_visitor_to_sign_in(app: FastAPI, world: World) -> None:
    item = world.item("harbor_teacher.txt")
    c = TestClient(app, follow_redirects=False)
    for path in [
        "/queue",
        "/queue?status=all&code=funding",
        "/next",
        "/next?status=review",
        f"/items/{item.id}",
        "/items/0000000000000000",
        "/blind",
        "/blind/1",
        "/lead",
        "/rejections",
        "/rejections/1",
    ]:
        r = c.get(path)
        assert r.status_code == 303, path
        location = urlsplit(r.headers["location"])
        assert location.path == "/login" and parse_qs(location.query)["next"] == [path], path
        landed = c.get(path, follow_redirects=True)
        assert landed.status_code == 200 and landed.url.path == "/login" and "Sign in" in landed.text
        assert "Whitfield" not in landed.text and "Ms. Chen" not in landed.text and "Justification" not in landed.text
    home = c.get("/", follow_redirects=True)
    assert home.url.path == "/login"
    assert c.get("/login").status_code == 200
    static = c.get("/static/review.js")
    assert static.status_code == 200 and "keydown" in static.text
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert c.get(path).status_code == 404

    # a valid anonymous CSRF token does not make an anonymous POST count
    token = csrf_of(c.get("/login").text)
    before = snapshot(app.state.store)
    r = c.post(f"/items/{item.id}/decide", data={"csrf_token": token, "version": "1", "verdict": "accept"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert snapshot(app.state.store) == before


def test_signing_in_sets_a_signed_httponly_strict_cookie(app: FastAPI, store: Store, world: World) -> None:
    c = TestClient(app, follow_redirects=False)
    anonymous_token = csrf_of(c.get("/login").text)
    wrong = c.post("/login", data={"csrf_token": anonymous_token, "name": "rita", "password": "not-it"})
    assert wrong.status_code == 401 and "Unknown name or wrong password" in wrong.text
    unknown = c.post("/login", data={"csrf_token": anonymous_token, "name": "nobody", "password": "x"})
    assert unknown.status_code == 401
    assert not signed_in(c)

    r = c.post(
        "/login",
        data={"csrf_token": anonymous_token, "name": "rita", "password": world.passwords["rita"], "next": "/blind"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/blind"
    (cookie,) = r.headers.get_list("set-cookie")
    attributes = [a.strip().lower() for a in cookie.split(";")]
    assert attributes[0].startswith("qcode_session=")
    assert "httponly" in attributes and "samesite=strict" in attributes and "path=/" in attributes
    assert "secure" not in attributes  # not asked for: secure_cookies=False
    assert signed_in(c)
    # a new CSRF token for the signed-in session (the anonymous one is not carried over)
    assert csrf_of(c.get("/queue").text) != anonymous_token
    secure = create_app(store=store, secret_key=SECRET, secure_cookies=True)
    secure_client = TestClient(secure, follow_redirects=False, base_url="https://testserver")
    token = csrf_of(secure_client.get("/login").text)
    r = secure_client.post("/login", data={"csrf_token": token, "name": "rita", "password": world.passwords["rita"]})
    assert "secure" in [a.strip().lower() for a in r.headers["set-cookie"].split(";")]

    # only a path on this site is a place to go next, and it is shown as text
    page = TestClient(app).get("/login", params={"next": '/"><script>alert(3)</script>'}).text
    assert "<script>alert(3)" not in page and 'value="/&#34;&gt;&lt;script&gt;alert(3)&lt;/script&gt;"' in page
    for target, expected in [
        ("//evil.example/x", "/queue"),
        ("https://evil.example/", "/queue"),
        ("/\\evil.example", "/queue"),
        ("/items/abc?status=all", "/items/abc?status=all"),
    ]:
        other = TestClient(app, follow_redirects=False)
        token = csrf_of(other.get("/login").text)
        r = other.post(
            "/login", data={"csrf_token": token, "name": "bob", "password": world.passwords["bob"], "next": target}
        )
        assert r.status_code == 303 and r.headers["location"] == expected, target

    # the cookie is signed: a changed payload, or one signed with another key, is no session
    value = c.cookies["qcode_session"]
    payload, stamp, signature = value.split(".")
    data = json.loads(b64decode(payload))
    assert isinstance(data["sid"], str) and "rid" not in data
    fresh = TestClient(app, follow_redirects=False)
    assert fresh.get("/queue", headers={"Cookie": f"qcode_session={value}"}).status_code == 200
    for change in ({"csrf": "chosen-by-the-attacker"}, {"sid": "a-session-id-the-attacker-guessed"}):
        forged = b64encode(json.dumps({**data, **change}).encode()).decode()
        r = TestClient(app, follow_redirects=False).get(
            "/queue", headers={"Cookie": f"qcode_session={forged}.{stamp}.{signature}"}
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    flipped = f"{payload}.{stamp}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    assert (
        TestClient(app, follow_redirects=False)
        .get("/queue", headers={"Cookie": f"qcode_session={flipped}"})
        .status_code
        == 303
    )
    elsewhere = sign_in(create_app(store=store, secret_key="another-key-" + SECRET), "rita", world.passwords["rita"])
    r = TestClient(app, follow_redirects=False).get(
        "/queue", headers={"Cookie": f"qcode_session={elsewhere.cookies['qcode_session']}"}
    )
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def get_reviewer_id(store: Store, name: str) -> int:
    with store.session() as s:
        return s.scalar(select(ReviewerRecord.id).where(ReviewerRecord.name == name))


def test_signing_out_takes_a_post_with_the_token_and_ends_the_session(app: FastAPI, world: World) -> None:
    c = sign_in(app, "rita", world.passwords["rita"])
    token = token_of(c)
    assert c.get("/logout").status_code == 405
    assert c.post("/logout").status_code == 403
    assert c.post("/logout", data={"csrf_token": "x" * len(token)}).status_code == 403
    assert c.post("/logout", headers={"X-CSRF-Token": "wrong"}, data={"csrf_token": token}).status_code == 403
    assert signed_in(c)
    r = c.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert not signed_in(c)
    # through the header as well
    c = sign_in(app, "rita", world.passwords["rita"])
    r = c.post("/logout", headers={"X-CSRF-Token": token_of(c)})
    assert r.status_code == 303 and not signed_in(c)


def test_a_cookie_copied_before_signing_out_no_longer_works(app: FastAPI, world: World) -> None:
    c = sign_in(app, "rita", world.passwords["rita"])
    copied = c.cookies["qcode_session"]
    assert c.post("/logout", data={"csrf_token": token_of(c)}).status_code == 303
    r = TestClient(app, follow_redirects=False).get("/queue", headers={"Cookie": f"qcode_session={copied}"})
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


# --- the login rate limit -------------------------------------------------------------------


def attempt(app: FastAPI, name: str, password: str, client: tuple[str, int] = ("testclient", 50000)) -> Response:
    c = TestClient(app, follow_redirects=False, client=client)
    return c.post("/login", data={"csrf_token": csrf_of(c.get("/login").text), "name": name, "password": password})


def test_failed_sign_ins_are_limited_per_name_and_per_address(app: FastAPI, world: World) -> None:
    pw = world.passwords
    # five failures for a name from one address: the sixth try waits, even with the right password
    for i in range(5):
        assert attempt(app, "otto", f"guess-{i}").status_code == 401
    c = TestClient(app, follow_redirects=False)
    r = c.post("/login", data={"csrf_token": csrf_of(c.get("/login").text), "name": "otto", "password": pw["otto"]})
    assert r.status_code == 429 and "Too many failed sign-ins" in r.text
    assert 1 <= int(r.headers["Retry-After"]) <= 301
    assert not signed_in(c)
    # a colleague at the same address is not locked out by otto's mistakes
    assert attempt(app, "nora", pw["nora"]).status_code == 303
    # from elsewhere the limited name is still limited
    assert attempt(app, "otto", pw["otto"], ("10.0.0.9", 1)).status_code == 429

    # a name guessed from five addresses is limited everywhere
    for i in range(5):
        assert attempt(app, "rita", f"guess-{i}", (f"10.0.1.{i}", 1)).status_code == 401
    assert attempt(app, "rita", pw["rita"], ("10.0.1.99", 1)).status_code == 429
    assert attempt(app, "bob", pw["bob"], ("10.0.1.99", 1)).status_code == 303
    # an address trying many names is limited for every name, at its own, higher limit
    limit = app.state.throttle.address_limit
    for i in range(limit):
        assert attempt(app, f"ghost{i}", "guess", ("10.0.2.1", 1)).status_code == 401
    assert attempt(app, "bob", pw["bob"], ("10.0.2.1", 1)).status_code == 429
    assert attempt(app, "bob", pw["bob"], ("10.0.2.2", 1)).status_code == 303

    # once the window has passed, the right password works again
    throttle = app.state.throttle
    for times in throttle.failures.values():
        for k in range(len(times)):
            times[k] -= throttle.window + 1
    assert attempt(app, "otto", pw["otto"]).status_code == 303


def checked_together(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Password checks wait for each other in groups of n, so that n sign-ins are checked at once."""
    real, gate = review_app.authenticate, threading.Barrier(n)

    def together(*args: Any) -> Any:
        try:  # those the limit stops never come: the others go on after a second
            gate.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass
        return real(*args)

    monkeypatch.setattr(review_app, "authenticate", together)


def test_failed_sign_ins_sent_at_once_are_limited_too(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 10
    checked_together(monkeypatch, n)  # every guess that gets this far is in flight before any has failed
    clients = [TestClient(app, follow_redirects=False) for _ in range(n)]
    tokens = [csrf_of(c.get("/login").text) for c in clients]
    codes = at_once(
        n,
        lambda i: (
            clients[i]
            .post("/login", data={"csrf_token": tokens[i], "name": "rita", "password": f"guess-{i}"})
            .status_code
        ),
    )
    assert sorted(codes) == [401] * 5 + [429] * 5


# --- CSRF, and no GET changes anything ----------------------------------------------------------


def test_every_post_needs_the_sessions_csrf_token(app: FastAPI, store: Store, world: World) -> None:
    lead = sign_in(app, "lena", world.passwords["lena"])
    other = sign_in(app, "bob", world.passwords["bob"])
    lena = get_reviewer(store, get_reviewer_id(store, "lena"))
    blind.create_sample(store, lena, world.run_a, 1, ["lena", "bob"], seed=1)
    (assignment,) = [a for a, _, name, _ in assignment_rows(store) if name == "lena"]
    item = world.item("harbor_teacher.txt")
    token, version = open_item(lead, item.id)
    before = snapshot(store)
    posts = {
        f"/items/{item.id}/decide": {"version": str(version), "verdict": "accept", "query": ""},
        f"/chunks/{item.chunk_id}/add": {"code": "trust", "codebook_version": item.codebook_version, "back": item.id},
        f"/blind/{assignment}": {"code": "funding"},
        "/lead/samples": {"run": world.run_a, "size": "2", "reviewer": ["rita", "bob"], "seed": "1"},
        "/rejections/1/settle": {"version": "1", "verdict": "reject", "reason": "none"},
        "/logout": {},
    }
    bobs_token = token_of(other)
    for path, data in posts.items():
        for bad in ({}, {"csrf_token": ""}, {"csrf_token": "x" * len(token)}, {"csrf_token": bobs_token}):
            r = lead.post(path, data={**data, **bad})
            assert r.status_code == 403, (path, bad)
        for header in ("", "wrong", bobs_token):
            r = lead.post(path, data=data, headers={"X-CSRF-Token": header} if header else {})
            assert r.status_code == 403, (path, header)
    anonymous = TestClient(app, follow_redirects=False)
    anonymous.get("/login")
    for bad in ({}, {"csrf_token": "x" * 43}, {"csrf_token": token}):
        r = anonymous.post("/login", data={"name": "rita", "password": world.passwords["rita"], **bad})
        assert r.status_code == 403
    assert not signed_in(anonymous)
    assert snapshot(store) == before
    assert signed_in(lead)

    # the token in the X-CSRF-Token header, with no form field, works
    r = lead.post(
        f"/items/{item.id}/decide",
        headers={"X-CSRF-Token": token},
        data={"version": str(version), "verdict": "accept", "query": ""},
    )
    assert r.status_code == 303
    assert [(d.reviewer, d.verdict) for d in decisions(store, suggestion_id=item.id)] == [("lena", "accept")]
    r = lead.post(
        "/lead/samples",
        headers={"X-CSRF-Token": token},
        data={"run": world.run_a, "size": "2", "reviewer": ["rita", "bob"], "seed": "1"},
    )
    assert r.status_code == 303 and len(assignment_rows(store)) == 2 + 4


def test_a_token_that_is_not_ascii_is_refused_not_a_server_error(app: FastAPI, world: World) -> None:
    anonymous = TestClient(app, follow_redirects=False, raise_server_exceptions=False)
    anonymous.get("/login")
    r = anonymous.post(
        "/login", data={"csrf_token": "\u00e9t\u00e9", "name": "rita", "password": world.passwords["rita"]}
    )
    assert r.status_code == 403 and not signed_in(anonymous)
    lead = sign_in(app, "lena", world.passwords["lena"])
    lead = TestClient(app, follow_redirects=False, raise_server_exceptions=False, cookies=lead.cookies)
    assert lead.post("/logout", data={"csrf_token": "\u00e9"}).status_code == 403


def test_no_get_changes_the_database(app: FastAPI, store: Store, world: World) -> None:
    lead = sign_in(app, "lena", world.passwords["lena"])
    rita = sign_in(app, "rita", world.passwords["rita"])
    decided = world.item("harbor_teacher.txt")
    assert post_decision(rita, decided.id, "accept").status_code == 303
    lena = get_reviewer(store, get_reviewer_id(store, "lena"))
    blind.create_sample(store, lena, world.run_a, 2, ["lena", "rita"], seed=2)
    assignments = [a for a, *_ in assignment_rows(store)]
    before = snapshot(store)
    assert before["decisions"] and before["assignments"]

    item = world.item("valley_teacher.txt")
    gets = [
        "/",
        "/login",
        "/login?next=/lead",
        "/queue",
        "/queue?status=all",
        "/queue?status=decided",
        f"/queue?run={world.run_b}&code=trust&transcript=b_valley_teacher.txt&case.district=Valley"
        "&status=review&min_confidence=0.1&max_confidence=0.9",
        "/next",
        "/next?status=audit&case.role=teacher",
        f"/next?after={item.id}",
        "/blind",
        "/lead",
        *(f"/items/{i.id}" for i in world.items.values()),
        f"/items/{item.id}?status=all&code=funding",
        *(f"/blind/{a}" for a in assignments),
        # GETs on the POST routes, with what a form would send
        f"/items/{item.id}/decide?verdict=accept&version=1&csrf_token=x",
        f"/chunks/{item.chunk_id}/add?code=trust&codebook_version={item.codebook_version}",
        f"/lead/samples?run={world.run_a}&size=3&reviewer=rita&reviewer=bob",
        "/logout",
    ]
    for c in (lead, rita):
        for path in gets:
            r = c.get(path)
            assert r.status_code in (200, 303, 403, 404, 405), (path, r.status_code)
    for path in gets[-4:]:
        assert lead.get(path).status_code == 405
    assert snapshot(store) == before
    assert signed_in(lead) and signed_in(rita)


# --- who sees what ---------------------------------------------------------------------------


def test_reviewers_see_only_the_runs_granted_to_them(app: FastAPI, store: Store, world: World) -> None:
    pw = world.passwords
    a_item, b_item = world.item("harbor_teacher.txt"), world.item("b_harbor_teacher.txt")
    pending_a = {i.id for i in world.of_run(world.run_a)}
    pending_b = {i.id for i in world.of_run(world.run_b) if i.status == "review"}

    nora = sign_in(app, "nora", pw["nora"])
    r = nora.get("/queue")
    assert "Nothing matches these filters." in r.text and queue_ids(nora) == []
    assert queue_counts(nora, status="all") == (0, 0)
    assert nora.get(f"/items/{a_item.id}").status_code == 404
    r = nora.get("/next")
    assert r.status_code == 303 and r.headers["location"].startswith("/queue")
    assert "Nothing left to review" in " ".join(flashes(nora.get(r.headers["location"]).text))

    rita = sign_in(app, "rita", pw["rita"])
    assert set(queue_ids(rita)) == pending_a
    assert queue_ids(rita, run=world.run_b) == []
    for path in (f"/items/{b_item.id}", "/items/0000000000000000", "/items/..%2F..%2Fetc"):
        assert rita.get(path).status_code == 404
    before = snapshot(store)
    token = token_of(rita)
    r = rita.post(f"/items/{b_item.id}/decide", data={"csrf_token": token, "version": "1", "verdict": "accept"})
    assert r.status_code == 404
    r = rita.post(
        f"/chunks/{b_item.chunk_id}/add",
        data={"csrf_token": token, "code": "trust", "codebook_version": b_item.codebook_version},
    )
    assert r.status_code == 404
    assert rita.get("/lead").status_code == 403
    r = rita.post(
        "/lead/samples", data={"csrf_token": token, "run": world.run_a, "size": "2", "reviewer": ["rita", "bob"]}
    )
    assert r.status_code == 403
    assert "Double coding</a>" not in rita.get("/queue").text
    assert snapshot(store) == before

    otto = sign_in(app, "otto", pw["otto"])
    assert set(queue_ids(otto)) == pending_b
    assert otto.get(f"/items/{a_item.id}").status_code == 404 and otto.get(f"/items/{b_item.id}").status_code == 200

    lena = sign_in(app, "lena", pw["lena"])
    assert set(queue_ids(lena)) == pending_a | pending_b
    assert len(queue_ids(lena, status="all")) == len(world.items)
    for item in world.items.values():
        assert lena.get(f"/items/{item.id}").status_code == 200
    assert lena.get("/lead").status_code == 200
    assert "Double coding</a>" in lena.get("/queue").text


def test_next_hands_two_reviewers_different_items(app: FastAPI, world: World) -> None:
    """An item open in one reviewer's browser is not what `next` gives another."""
    rita, bob = (sign_in(app, name, world.passwords[name]) for name in ("rita", "bob"))
    first = rita.get("/next").headers["location"]
    assert urlsplit(first).path.startswith("/items/") and rita.get(first).status_code == 200
    second = bob.get("/next").headers["location"]
    assert urlsplit(second).path.startswith("/items/") and urlsplit(first).path != urlsplit(second).path
    assert rita.get("/next").headers["location"] == first  # her own open item is still hers


def test_a_disabled_reviewer_is_signed_out_and_cannot_sign_in(app: FastAPI, store: Store, world: World) -> None:
    bob = sign_in(app, "bob", world.passwords["bob"])
    assert signed_in(bob)
    disable_reviewer(store, "bob")
    r = bob.get("/queue")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert bob.get(f"/items/{world.item('harbor_teacher.txt').id}").status_code == 303
    assert attempt(app, "bob", world.passwords["bob"], ("10.1.0.1", 1)).status_code == 401


def test_a_new_password_ends_the_sessions_of_the_old_one(app: FastAPI, store: Store, world: World) -> None:
    rita = sign_in(app, "rita", world.passwords["rita"])
    elsewhere = sign_in(app, "rita", world.passwords["rita"])
    bob = sign_in(app, "bob", world.passwords["bob"])
    new = reset_password(store, "rita")
    assert not signed_in(rita) and not signed_in(elsewhere)
    assert signed_in(bob)
    assert attempt(app, "rita", world.passwords["rita"], ("10.1.0.2", 1)).status_code == 401
    assert signed_in(sign_in(app, "rita", new, ("10.1.0.3", 1)))


# --- the queue ---------------------------------------------------------------------------------


def test_the_queue_filters_by_code_transcript_case_status_and_confidence(
    app: FastAPI, store: Store, world: World
) -> None:
    by = {(i.source_name, i.code): i.id for i in world.of_run(world.run_b)}
    otto = sign_in(app, "otto", world.passwords["otto"])

    def shown(**params: Any) -> set[tuple[str, str]]:
        names = {v: k for k, v in by.items()}
        ids = queue_ids(otto, **params)
        assert len(ids) == len(set(ids))
        return {names[i] for i in ids}

    pending = {
        ("b_harbor_principal.txt", "funding"),
        ("b_harbor_principal.txt", "trust"),
        ("b_harbor_teacher.txt", "funding"),
        ("b_valley_teacher.txt", "funding"),
        ("b_valley_teacher.txt", "trust"),
    }
    assert shown() == shown(status="pending") == pending
    assert shown(status="all") == pending | {("b_valley_principal.txt", "funding")}
    assert shown(status="accepted") == {("b_valley_principal.txt", "funding")}
    assert shown(status="audit") == set() and shown(status="decided") == set()
    assert shown(status="no-such-status") == pending
    assert shown(code="trust") == {("b_harbor_principal.txt", "trust"), ("b_valley_teacher.txt", "trust")}
    assert shown(transcript="b_harbor_teacher.txt") == {("b_harbor_teacher.txt", "funding")}
    assert shown(**{"case.district": "Valley"}) == {
        ("b_valley_teacher.txt", "funding"),
        ("b_valley_teacher.txt", "trust"),
    }
    assert shown(**{"case.district": "Valley", "status": "all"}) == {
        ("b_valley_teacher.txt", "funding"),
        ("b_valley_teacher.txt", "trust"),
        ("b_valley_principal.txt", "funding"),
    }
    assert shown(**{"case.district": "Harbor", "case.role": "teacher"}) == {("b_harbor_teacher.txt", "funding")}
    assert shown(**{"case.school": "Mesa Verde High", "code": "funding", "status": "all"}) == {
        ("b_valley_teacher.txt", "funding"),
        ("b_valley_principal.txt", "funding"),
    }
    assert shown(**{"case.district": "Nowhere"}) == set()
    assert shown(**{"case.no_such_key": "x"}) == set()
    assert shown(**{"case.district": ""}) == pending  # an empty choice is no filter
    assert shown(min_confidence="0.2", max_confidence="0.5") == {
        ("b_harbor_principal.txt", "trust"),
        ("b_harbor_teacher.txt", "funding"),
        ("b_valley_teacher.txt", "trust"),
    }
    assert shown(min_confidence="0.5", status="all") == {
        ("b_harbor_principal.txt", "trust"),
        ("b_valley_teacher.txt", "funding"),
        ("b_valley_principal.txt", "funding"),
    }
    assert shown(max_confidence="0.15") == {("b_harbor_principal.txt", "funding")}
    assert shown(min_confidence="not a number") == pending
    # lowest confidence first
    confidence = {i.id: i.confidence for i in world.of_run(world.run_b)}
    order = [confidence[i] for i in queue_ids(otto, status="all")]
    assert order == sorted(confidence.values())
    # the filter form offers the case attributes present
    page = otto.get("/queue").text
    assert 'name="case.district"' in page and re.search(r"<option\s*>Valley</option>", page)

    assert queue_counts(otto) == (5, 0)
    lowest = by[("b_harbor_principal.txt", "funding")]
    assert post_decision(otto, lowest, "accept").status_code == 303
    r = post_decision(otto, by[("b_valley_teacher.txt", "trust")], "reject", reason="not about trust")
    assert r.status_code == 303
    # one the routing accepted can be decided too
    assert post_decision(otto, by[("b_valley_principal.txt", "funding")], "accept").status_code == 303
    assert queue_counts(otto) == (3, 3)
    assert queue_counts(otto, **{"case.district": "Valley"}) == (1, 2)
    assert queue_counts(otto, code="trust") == (1, 1)
    assert shown() == pending - {("b_harbor_principal.txt", "funding"), ("b_valley_teacher.txt", "trust")}
    assert shown(status="decided") == {
        ("b_harbor_principal.txt", "funding"),
        ("b_valley_teacher.txt", "trust"),
        ("b_valley_principal.txt", "funding"),
    }
    assert shown(status="accepted") == set()
    assert "decided by otto" in otto.get("/queue", params={"status": "decided"}).text


def test_the_case_filter_on_run_a(app: FastAPI, world: World) -> None:
    check_case_filter(sign_in(app, "lena", world.passwords["lena"]), world.items, world.run_a)


def check_case_filter(lead: TestClient, items: dict[tuple[str, int, str], Item], run_id: str) -> None:
    """Run A's transcripts carry metadata from a manifest (harbor_*) and from front matter (the rest)."""
    names = {i.id: i.source_name for i in items.values()}

    def shown(**params: Any) -> list[str]:
        return sorted(names[i] for i in queue_ids(lead, run=run_id, **params))

    assert shown(**{"case.district": "Valley"}) == ["markup.txt", "valley_teacher.txt"]
    assert shown(**{"case.district": "Harbor"}) == [
        "harbor_principal.txt",
        "harbor_principal.txt",
        "harbor_teacher.txt",
    ]
    assert shown(**{"case.district": "Harbor", "case.role": "teacher"}) == ["harbor_teacher.txt"]
    assert shown(**{"case.school": "Mesa Verde High", "case.role": "teacher"}) == ["valley_teacher.txt"]
    assert shown(**{"case.role": "<i>counsellor</i>"}) == ["markup.txt"]
    assert shown(**{"case.district": "valley"}) == []  # exact values
    assert queue_counts(lead, run=run_id, **{"case.district": "Harbor"}) == (3, 0)


# --- decisions -------------------------------------------------------------------------------

PROPOSAL_COLUMNS = (
    "code",
    "quote",
    "quote_start",
    "quote_end",
    "justification",
    "confidence",
    "status",
    "chunk_id",
    "coder",
    "model",
    "codebook_version",
)


def proposals(store: Store) -> dict[str, tuple]:
    with store.session() as s:
        return {sug.id: tuple(getattr(sug, c) for c in PROPOSAL_COLUMNS) for sug in s.scalars(select(SuggestionRecord))}


def test_accepting_rejecting_and_changing_record_a_decision_and_keep_the_proposal(
    app: FastAPI, store: Store, world: World
) -> None:
    rita = sign_in(app, "rita", world.passwords["rita"])
    kept = proposals(store)

    # accept: the suggested code and quote
    item = world.item("harbor_teacher.txt")
    r = post_decision(rita, item.id, "accept", note="clear case")
    assert r.status_code == 303 and r.headers["location"].startswith("/next?")
    assert parse_qs(urlsplit(r.headers["location"]).query)["after"] == [item.id]
    (d,) = decisions(store, suggestion_id=item.id)
    assert (d.reviewer, d.verdict, d.final_code, d.quote_start, d.quote_end, d.reason, d.note, d.chunk_id) == (
        "rita",
        "accept",
        "funding",
        item.quote_start,
        item.quote_end,
        None,
        "clear case",
        item.chunk_id,
    )
    sug = suggestion(store, item.id)
    assert (sug.decided_by, sug.version) == ("rita", 2) and sug.decided_at is not None
    following = rita.get(r.headers["location"], follow_redirects=True)
    assert "Recorded: accept." in flashes(following.text)
    assert following.url.path.startswith("/items/") and following.url.path != f"/items/{item.id}"
    page = rita.get(f"/items/{item.id}").text
    assert "Decided by rita" in page and 'id="decide"' not in page

    # accept with a corrected quote
    item = world.item("harbor_principal.txt", 1)
    phrase = "a makerspace"
    start = item.text.index(phrase, item.chunk_start)
    assert item.chunk_start <= start < item.chunk_end
    for bad_start, bad_end, problem in [
        (item.chunk_start - 5, item.chunk_start + 10, "outside the passage"),
        (item.chunk_end - 5, item.chunk_end + 5, "outside the passage"),
        (start + 10, start, "end after it starts"),
        (start, "", "both its start and its end"),
        (-1, 5, "The quote's start is not a place in the transcript"),
        ("x", 5, "not a number"),
    ]:
        r = post_decision(rita, item.id, "accept", quote_start=bad_start, quote_end=bad_end)
        assert problem in message(refused(rita, r, item.id), "error"), (bad_start, bad_end)
    assert decisions(store, suggestion_id=item.id) == [] and suggestion(store, item.id).version == 1
    r = post_decision(rita, item.id, "accept", quote_start=start, quote_end=start + len(phrase))
    assert r.status_code == 303
    (d,) = decisions(store, suggestion_id=item.id)
    assert (d.verdict, d.final_code, d.quote_start, d.quote_end) == ("accept", "funding", start, start + len(phrase))

    # reject: a reason is required, and nothing is coded
    item = world.item("valley_teacher.txt")
    for reason in ("", "   "):
        r = post_decision(rita, item.id, "reject", reason=reason)
        assert "a rejection needs a reason" in message(refused(rita, r, item.id), "error")
    assert decisions(store, suggestion_id=item.id) == [] and suggestion(store, item.id).decided_at is None
    r = post_decision(rita, item.id, "reject", reason="  planning, not money  ")
    assert r.status_code == 303
    (d,) = decisions(store, suggestion_id=item.id)
    assert (d.verdict, d.final_code, d.quote_start, d.quote_end, d.reason) == (
        "reject",
        None,
        None,
        None,
        "planning, not money",
    )

    # change: only to a code of the codebook
    item = world.item("harbor_principal.txt", 0)
    for code, problem in [("made-up", "not an applicable code"), ("", "'change' needs a code")]:
        r = post_decision(rita, item.id, "change", code=code)
        assert problem in message(refused(rita, r, item.id), "error")
    refused(rita, post_decision(rita, item.id, "maybe"), item.id)
    assert decisions(store, suggestion_id=item.id) == []
    r = post_decision(rita, item.id, "change", code="trust")
    assert r.status_code == 303
    (d,) = decisions(store, suggestion_id=item.id)
    assert (d.verdict, d.final_code, d.quote_start, d.quote_end) == (
        "change",
        "trust",
        item.quote_start,
        item.quote_end,
    )

    # the model's proposals are as they were; only the decision bookkeeping moved
    assert proposals(store) == kept
    assert queue_counts(rita) == (1, 4)


def test_adding_a_missed_code(app: FastAPI, store: Store, world: World) -> None:
    rita, bob = (sign_in(app, name, world.passwords[name]) for name in ("rita", "bob"))
    item = world.item("harbor_teacher.txt")
    kept = proposals(store)

    def add(c: TestClient, **fields: Any) -> Response:
        token, _ = open_item(c, item.id)
        return c.post(
            f"/chunks/{item.chunk_id}/add",
            data={
                "csrf_token": token,
                "back": item.id,
                "query": "status=all",
                "codebook_version": item.codebook_version,
                **{k: str(v) for k, v in fields.items()},
            },
            follow_redirects=True,
        )

    phrase = "Not really, that was it."
    start = item.text.index(phrase)
    r = add(rita, code="trust", quote_start=start, quote_end=start + len(phrase), note="tone")
    assert r.status_code == 200 and r.url.path == f"/items/{item.id}" and r.url.query == b"status=all"
    assert "Added 'trust' to this passage." in flashes(r.text)
    (d,) = decisions(store, chunk_id=item.chunk_id)
    assert (d.suggestion_id, d.verdict, d.final_code, d.reviewer, d.quote_start, d.quote_end, d.note) == (
        None,
        "add",
        "trust",
        "rita",
        start,
        start + len(phrase),
        "tone",
    )
    assert "rita · add · trust" in r.text

    r = add(bob, code="trust")
    assert "rita already added 'trust' to this passage." in message(r.text, "conflict")
    r = add(bob, code="made-up")
    assert "not an applicable code" in message(r.text, "error")
    r = add(bob, code="")
    assert "'add' needs a code" in message(r.text, "error")
    r = add(bob, code="funding", quote_start=item.chunk_end, quote_end=item.chunk_end + 10)
    assert "outside the passage" in message(r.text, "error")
    assert len(decisions(store, chunk_id=item.chunk_id)) == 1
    # the suggestion itself is still waiting
    assert suggestion(store, item.id).decided_at is None and proposals(store) == kept


OTHER_CODEBOOK = """\
name: Another project's codebook
description: One code that the codebook of run A does not have.
measurement: nominal
codes:
  - id: weather
    name: Weather
    definition: Talk about the weather.
"""


def add_with_codebook(c: TestClient, item: Item, version: str, code: str) -> Response:
    token, _ = open_item(c, item.id)
    return c.post(
        f"/chunks/{item.chunk_id}/add",
        follow_redirects=True,
        data={"csrf_token": token, "back": item.id, "codebook_version": version, "code": code},
    )


def test_an_added_code_needs_a_codebook_the_database_knows(app: FastAPI, store: Store, world: World) -> None:
    rita = sign_in(app, "rita", world.passwords["rita"])
    item = world.item("harbor_teacher.txt")
    for version in ("0000000000000000", ""):
        r = add_with_codebook(rita, item, version, "made-up")
        assert f"no codebook version '{version}' in the database" in message(r.text, "error")
    assert decisions(store, chunk_id=item.chunk_id) == []


def test_an_added_code_is_checked_against_the_runs_codebook_whatever_the_form_says(
    app: FastAPI, store: Store, world: World, tmp_path: Path
) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(OTHER_CODEBOOK, encoding="utf-8")
    codebook = load_codebook(other)
    store.save_codebook(codebook, str(other))
    assert codebook.version != world.item("harbor_teacher.txt").codebook_version
    rita = sign_in(app, "rita", world.passwords["rita"])
    item = world.item("harbor_teacher.txt")
    add_with_codebook(rita, item, codebook.version, "weather")
    assert [d.final_code for d in decisions(store, chunk_id=item.chunk_id)] == []


def test_two_reviewers_adding_the_same_code_at_once_record_it_once(
    app: FastAPI, store: Store, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = world.item("harbor_teacher.txt")
    clients = [sign_in(app, name, world.passwords[name]) for name in ("rita", "bob")]
    tokens = [open_item(c, item.id)[0] for c in clients]
    gate = threading.Barrier(2)
    real_now = decision_module.now

    def now_together() -> Any:  # both have looked for an earlier add before either records theirs
        try:  # with the passage's row locked, the second never comes: the first goes on after a second
            gate.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass
        return real_now()

    monkeypatch.setattr(decision_module, "now", now_together)
    at_once(
        2,
        lambda i: clients[i].post(
            f"/chunks/{item.chunk_id}/add",
            data={"csrf_token": tokens[i], "back": item.id, "codebook_version": item.codebook_version, "code": "trust"},
        ),
    )
    assert len(decisions(store, chunk_id=item.chunk_id, verdict="add")) == 1


def test_deciding_the_last_item_says_nothing_is_left(app: FastAPI, world: World) -> None:
    """Two flashes in a row (the decision's, then next's) both reach the page."""
    rita = sign_in(app, "rita", world.passwords["rita"])
    item = world.item("harbor_teacher.txt")
    token, version = open_item(rita, item.id)
    r = rita.post(
        f"/items/{item.id}/decide",
        follow_redirects=True,
        data={
            "csrf_token": token,
            "version": str(version),
            "verdict": "accept",
            "query": "transcript=harbor_teacher.txt",
        },
    )
    assert r.url.path == "/queue"
    shown = " ".join(flashes(r.text))
    assert "Recorded: accept." in shown and "Nothing left to review with these filters." in shown


def check_conflict(app: FastAPI, store: Store, passwords: dict[str, str], item_id: str) -> None:
    """Two reviewers open the same item; the first decision stands, the second is a 409 naming the first."""
    rita, bob = (sign_in(app, name, passwords[name]) for name in ("rita", "bob"))
    rita_loaded, bob_loaded = open_item(rita, item_id), open_item(bob, item_id)
    assert rita_loaded[1] == bob_loaded[1] == 1
    assert post_decision(rita, item_id, "accept", rita_loaded).status_code == 303
    page = refused(bob, post_decision(bob, item_id, "reject", bob_loaded, reason="I disagree"), item_id)
    text = message(page, "conflict")
    assert text.startswith("rita already decided this item (accept) at ") and "yours was not recorded" in text
    assert "Decided by rita" in page  # the page shows the item as it is now
    # the same reviewer sending the form twice is a conflict too
    page = refused(rita, post_decision(rita, item_id, "change", rita_loaded, code="trust"), item_id)
    assert "already decided this item" in message(page, "conflict")
    (d,) = decisions(store, suggestion_id=item_id)
    assert (d.reviewer, d.verdict, d.final_code) == ("rita", "accept", "funding")
    sug = suggestion(store, item_id)
    assert (sug.decided_by, sug.version) == ("rita", 2)


def check_race(app: FastAPI, store: Store, passwords: dict[str, str], item_id: str) -> None:
    """Ten reviewers, each in a session of their own, decide the same item at the same moment."""
    clients = [sign_in(app, name, passwords[name]) for name in RACERS]
    loaded = [open_item(c, item_id) for c in clients]
    responses = at_once(len(clients), lambda i: post_decision(clients[i], item_id, "accept", loaded[i]))
    won = [r.status_code == 303 and r.headers["location"].startswith("/next?") for r in responses]
    assert sum(won) == 1, [(r.status_code, r.headers.get("location")) for r in responses]
    winner = RACERS[won.index(True)]
    for c, r, first in zip(clients, responses, won):
        if not first:
            page = refused(c, r, item_id)
            assert message(page, "conflict").startswith(f"{winner} already decided this item (accept)")
    assert [d.reviewer for d in decisions(store, suggestion_id=item_id)] == [winner]
    sug = suggestion(store, item_id)
    assert (sug.decided_by, sug.version) == (winner, 2)


def test_of_two_reviewers_deciding_one_item_the_first_decision_stands(app: FastAPI, store: Store, world: World) -> None:
    check_conflict(app, store, world.passwords, world.item("harbor_teacher.txt").id)


def test_ten_reviewers_deciding_one_item_at_once_make_one_decision(app: FastAPI, store: Store, world: World) -> None:
    check_race(app, store, world.passwords, world.item("valley_teacher.txt").id)


# --- markup in transcripts ----------------------------------------------------------------------


def test_markup_in_a_transcript_shows_as_text(app: FastAPI, store: Store, world: World) -> None:
    lead = sign_in(app, "lena", world.passwords["lena"])
    item = world.item("markup.txt")
    r = lead.get(f"/items/{item.id}")
    assert r.status_code == 200
    page = r.text
    assert XSS_SCRIPT not in page and XSS_IMG not in page and "<img" not in page and "<i>" not in page
    # in the passage, the justification, the quote and the quote preview
    assert page.count(html.escape(XSS_SCRIPT, quote=False)) >= 4 and page.count(html.escape(XSS_IMG, quote=False)) >= 4
    assert "&lt;i&gt;counsellor&lt;/i&gt;" in page  # case metadata
    assert re.findall(r"<script\b[^>]*>", page) == ['<script src="/static/review.js" defer>']
    assert not re.search(r"\son[a-z]+\s*=", page.replace(html.escape(XSS_IMG, quote=False), ""))

    csp = {d.split()[0]: d.split()[1:] for d in r.headers["content-security-policy"].split(";") if d.strip()}
    assert csp["script-src"] == ["'self'"] and csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in r.headers["content-security-policy"]
    assert "'unsafe-eval'" not in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"

    queue = lead.get("/queue", params={"transcript": "markup.txt"})
    assert XSS_SCRIPT not in queue.text and html.escape(XSS_SCRIPT, quote=False) in queue.text
    assert "content-security-policy" in queue.headers and "content-security-policy" in lead.get("/login").headers

    # and in the blind coding page (of reviewers who have not seen the model's codes there, as lena has)
    lena = get_reviewer(store, get_reviewer_id(store, "lena"))
    all_chunks = len({i.chunk_id for i in world.of_run(world.run_a)})
    blind.create_sample(store, lena, world.run_a, all_chunks, ["rita", "bob"], seed=0)
    (assignment,) = [a for a, chunk, name, _ in assignment_rows(store) if name == "rita" and chunk == item.chunk_id]
    page = sign_in(app, "rita", world.passwords["rita"]).get(f"/blind/{assignment}").text
    assert XSS_SCRIPT not in page and html.escape(XSS_SCRIPT, quote=False) in page


# --- blind double coding ------------------------------------------------------------------------


def test_blind_double_coding_and_its_export(
    qcode: Callable[..., Answer], app: FastAPI, store: Store, db: Path, world: World, tmp_path: Path
) -> None:
    pw = world.passwords
    lead, rita, bob = (sign_in(app, name, pw[name]) for name in ("lena", "rita", "bob"))

    # fewer than two reviewers is refused, and so is a reviewer's request
    token = csrf_of(lead.get("/lead").text)
    for names in (["rita"], ["rita", "rita"], ["rita", " "], []):
        r = lead.post(
            "/lead/samples",
            data={"csrf_token": token, "run": world.run_a, "size": "2", "reviewer": names},
            follow_redirects=True,
        )
        assert "double coding needs at least two reviewers" in message(r.text, "error")
    for data, problem in [
        ({"size": "0", "reviewer": ["rita", "bob"]}, "a sample is 1 to 10,000 passages"),
        ({"size": "1" * 30, "reviewer": ["rita", "bob"]}, "a sample is 1 to 10,000 passages"),
        ({"size": "two", "reviewer": ["rita", "bob"]}, "whole numbers"),
        ({"size": "2", "reviewer": ["rita", "ghost"]}, "no reviewer named ghost"),
        ({"size": "2", "reviewer": ["rita", "bob"], "run": "no-such-run"}, "no run 'no-such-run'"),
    ]:
        r = lead.post("/lead/samples", data={"csrf_token": token, "run": world.run_a, **data}, follow_redirects=True)
        assert problem in message(r.text, "error")
    assert assignment_rows(store) == []

    r = lead.post(
        "/lead/samples",
        data={"csrf_token": token, "run": world.run_a, "size": "2", "reviewer": ["rita", "bob"], "seed": "7"},
    )
    assert r.status_code == 303 and r.headers["location"] == f"/lead?run={world.run_a}"  # the run chosen
    page = lead.get("/lead").text
    assert re.search(
        r"Sample [0-9a-f]{8}: 2 passage\(s\) assigned to each reviewer; none left out\.", " ".join(flashes(page))
    )
    assert "bob: 0/2" in page and "rita: 0/2" in page
    rows = assignment_rows(store)
    assert len(rows) == 4 and {name for *_, name, _ in rows} == {"rita", "bob"}
    chunks = sorted({chunk for _, chunk, _, _ in rows})
    assert len(chunks) == 2 and set(chunks) <= {i.chunk_id for i in world.of_run(world.run_a)}
    mine = {name: {chunk: a for a, chunk, n, _ in rows if n == name} for name in ("rita", "bob")}
    c1, c2 = chunks

    # bob codes the first passage, with a note
    token = csrf_of(bob.get(f"/blind/{mine['bob'][c1]}").text)
    r = bob.post(
        f"/blind/{mine['bob'][c1]}", data={"csrf_token": token, "code": ["funding"], "note": "bob-private-note"}
    )
    assert r.status_code == 303 and r.headers["location"] == f"/blind/{mine['bob'][c2]}"
    assert "Codes recorded." in flashes(bob.get(r.headers["location"]).text)
    r = bob.post(f"/blind/{mine['bob'][c2]}", data={"csrf_token": token, "code": ["made-up"]}, follow_redirects=True)
    assert "not an applicable code: made-up" in message(r.text, "error")

    # what rita sees: the passage and the codebook, not the model's proposal nor bob's codes
    listing = rita.get("/blind").text
    assert listing.count("· to code") == 2 and "bob" not in listing
    assert "<strong>2</strong> to code · 0 done" in listing
    assert re.search(r'<a href="/blind/\d+">[\w.]+\.txt, passage \d+</a>', listing)  # names, not ids
    # and every other page says there is blind work waiting
    assert "You have 2 passages to code blind" in rita.get("/queue").text
    r = rita.get(f"/blind/{mine['rita'][c1]}")
    assert r.status_code == 200
    page = r.text
    with store.session() as s:
        chunk = s.get(ChunkRecord, c1)
        text = s.get(TranscriptRecord, chunk.transcript_id).text[chunk.start : chunk.end]
        model = s.scalar(select(SuggestionRecord).where(SuggestionRecord.chunk_id == c1))
    assert html.escape(text.split("\n")[1], quote=False) in re.sub(r"<[^>]+>", "", page)
    for hidden in (
        "The passage says",
        model.justification,
        'id="justification"',
        'id="quote"',
        "quote-mark",
        "Suggested code",
        "Confidence",
        "0.30",
        "bob",
        "bob-private-note",
        "queueing-1",
    ):
        assert html.escape(hidden) not in page, hidden
    assert 'value="funding"' in page and 'value="trust"' in page  # the codebook's codes to choose from

    # rita may not see, nor code, bob's assignments
    assert rita.get(f"/blind/{mine['bob'][c2]}").status_code == 404
    assert rita.get("/blind/999999").status_code == 404
    before = assignment_rows(store)
    token = csrf_of(page)
    r = rita.post(f"/blind/{mine['bob'][c2]}", data={"csrf_token": token, "code": ["trust"]})
    assert r.status_code == 303 and assignment_rows(store) == before
    assert rita.get(r.headers["location"]).status_code == 404
    rita.get("/blind")  # where a browser goes next; it shows the flash

    # rita codes both: two codes, then none
    r = rita.post(f"/blind/{mine['rita'][c1]}", data={"csrf_token": token, "code": ["trust", "funding"]})
    assert r.status_code == 303 and r.headers["location"] == f"/blind/{mine['rita'][c2]}"
    assert "Codes recorded." in flashes(rita.get(r.headers["location"]).text)
    r = rita.post(f"/blind/{mine['rita'][c2]}", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/blind"
    assert "Codes recorded." in flashes(rita.get("/blind").text)
    # a second submission changes nothing
    r = rita.post(f"/blind/{mine['rita'][c1]}", data={"csrf_token": token, "code": ["trust"]}, follow_redirects=True)
    assert "You already coded this passage; your first codes stand." in message(r.text, "conflict")
    assert "You coded this passage: funding, trust." in r.text and 'id="blind"' not in r.text
    assert rita.get(f"/blind/{mine['rita'][c2]}").text.count("You coded this passage: none of the codes.") == 1
    codes = {(chunk, name): got for _, chunk, name, got in assignment_rows(store)}
    assert codes == {(c1, "rita"): ["funding", "trust"], (c2, "rita"): [], (c1, "bob"): ["funding"], (c2, "bob"): None}
    page = lead.get("/lead").text
    assert "bob: 1/2" in page and "rita: 2/2" in page

    # the exports: one row per code, an empty code for none, nothing for what is not coded yet
    expected = [
        (c1, "reviewer:bob", "funding"),
        (c1, "reviewer:rita", "funding"),
        (c1, "reviewer:rita", "trust"),
        (c2, "reviewer:rita", ""),
    ]
    out = tmp_path / "blind.csv"
    result = qcode("export", "--db", db, "--format", "blind", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").splitlines()[0] == "unit_id,coder,code"
    assert sorted((r["unit_id"], r["coder"], r["code"]) for r in read_csv(out)) == expected
    out = tmp_path / "codings.csv"
    result = qcode("export", "--db", db, "--format", "codings", "--run", world.run_a, "--out", out)
    assert result.exit_code == 0, result.output
    table = [(r["unit_id"], r["coder"], r["code"]) for r in read_csv(out)]
    model_rows = [row for row in table if not row[1].startswith("reviewer:")]
    assert sorted(model_rows) == sorted(
        (i.chunk_id, "review-test:queueing-1", "funding") for i in world.of_run(world.run_a)
    )
    assert sorted(row for row in table if row[1].startswith("reviewer:")) == expected
    result = qcode("export", "--db", db, "--format", "blind", "--run", world.run_b, "--out", out, "--force")
    assert result.exit_code == 0 and read_csv(out) == []


# --- the audit log --------------------------------------------------------------------------------


def test_the_decisions_export_is_the_audit_log(
    qcode: Callable[..., Answer], app: FastAPI, store: Store, db: Path, world: World, tmp_path: Path
) -> None:
    rita, bob = (sign_in(app, name, world.passwords[name]) for name in ("rita", "bob"))
    out = tmp_path / "decisions.csv"
    result = qcode("export", "--db", db, "--format", "decisions", "--out", out)
    assert result.exit_code == 0 and read_csv(out) == []
    assert out.read_text(encoding="utf-8").startswith("decision_id,decided_at,reviewer,verdict,")

    accepted, corrected = world.item("harbor_teacher.txt"), world.item("harbor_principal.txt", 1)
    rejected, changed = world.item("valley_teacher.txt"), world.item("harbor_principal.txt", 0)
    phrase = "a federal grant"
    start = corrected.text.index(phrase, corrected.chunk_start)
    assert post_decision(rita, accepted.id, "accept").status_code == 303
    assert (
        post_decision(
            rita, corrected.id, "accept", quote_start=start, quote_end=start + len(phrase), note="narrower"
        ).status_code
        == 303
    )
    assert post_decision(bob, rejected.id, "reject", reason="about planning, not money").status_code == 303
    assert post_decision(bob, changed.id, "change", code="trust", reason="it is about trust").status_code == 303
    bob.post(
        f"/chunks/{accepted.chunk_id}/add",
        data={
            "csrf_token": token_of(bob),
            "code": "trust",
            "back": accepted.id,
            "codebook_version": accepted.codebook_version,
        },
    )

    result = qcode("export", "--db", db, "--format", "decisions", "--out", out)
    assert result.exit_code == 1 and "decisions.csv: exists; add --force to replace it" in result.output
    result = qcode("export", "--db", db, "--format", "decisions", "--out", out, "--force")
    assert result.exit_code == 0, result.output
    assert "wrote 5 record(s)" in result.stderr
    log = read_csv(out)
    fields = (
        "reviewer",
        "verdict",
        "suggestion_id",
        "chunk_id",
        "source_name",
        "suggested_code",
        "final_code",
        "quote_start",
        "quote_end",
        "quote",
        "reason",
        "note",
    )
    got = [tuple(row[f] for f in fields) for row in log]

    def quote(item: Item, a: int, b: int) -> tuple[str, str, str]:
        return str(a), str(b), item.text[a:b]

    assert got == [
        (
            "rita",
            "accept",
            accepted.id,
            accepted.chunk_id,
            "harbor_teacher.txt",
            "funding",
            "funding",
            *quote(accepted, accepted.quote_start, accepted.quote_end),
            "",
            "",
        ),
        (
            "rita",
            "accept",
            corrected.id,
            corrected.chunk_id,
            "harbor_principal.txt",
            "funding",
            "funding",
            *quote(corrected, start, start + len(phrase)),
            "",
            "narrower",
        ),
        (
            "bob",
            "reject",
            rejected.id,
            rejected.chunk_id,
            "valley_teacher.txt",
            "funding",
            "",
            "",
            "",
            "",
            "about planning, not money",
            "",
        ),
        (
            "bob",
            "change",
            changed.id,
            changed.chunk_id,
            "harbor_principal.txt",
            "funding",
            "trust",
            *quote(changed, changed.quote_start, changed.quote_end),
            "it is about trust",
            "",
        ),
        ("bob", "add", "", accepted.chunk_id, "harbor_teacher.txt", "", "trust", "", "", "", "", ""),
    ]
    assert log[1]["suggested_quote_start"] == str(corrected.quote_start)
    assert log[0]["confidence"] == "0.3" and log[0]["coder"] == "review-test" and log[0]["routing"] == "review"
    assert all(row["decided_at"].endswith("Z") for row in log)
    assert [int(row["decision_id"]) for row in log] == sorted(int(row["decision_id"]) for row in log)


# --- the reviewer commands ---------------------------------------------------------------------


def test_the_reviewer_commands(qcode: Callable[..., Answer], app: FastAPI, db: Path, world: World) -> None:
    result = qcode("reviewer", "add", "carol", "--role", "lead", "--db", db)
    assert result.exit_code == 0, result.output
    assert "carol (lead) created" in result.stdout
    password = result.stdout.strip().splitlines()[-1]
    assert len(password) >= 16 and " " not in password
    carol = sign_in(app, "carol", password)
    assert carol.get("/lead").status_code == 200

    result = qcode("reviewer", "add", "carol", "--db", db)
    assert result.exit_code == 1
    assert "a reviewer named 'carol' already exists" in result.stderr and "qcode reviewer reset" in result.stderr
    result = qcode("reviewer", "add", "eve", "--role", "boss", "--db", db)
    assert result.exit_code == 2 and "unknown role 'boss'" in result.stderr
    result = qcode("reviewer", "add", "someone", "--db", Path("no-such.db"))
    assert result.exit_code == 1 and not Path("no-such.db").exists()

    result = qcode("reviewer", "add", "dave", "--db", db)
    assert result.exit_code == 0 and "sees no runs yet" in result.stderr
    dave_password = result.stdout.strip().splitlines()[-1]
    dave = sign_in(app, "dave", dave_password)
    assert queue_ids(dave) == []
    result = qcode("reviewer", "grant", "dave", "--run", "no-such-run", "--db", db)
    assert result.exit_code == 1 and "no run 'no-such-run'" in result.stderr
    result = qcode("reviewer", "grant", "dave", "--run", "latest", "--db", db)
    assert result.exit_code == 0, result.output
    assert f"dave may see 1 run(s): {world.run_b}" in result.stdout
    assert set(queue_ids(dave)) == {i.id for i in world.of_run(world.run_b) if i.status == "review"}
    result = qcode("reviewer", "grant", "ghost", "--run", "latest", "--db", db)
    assert result.exit_code == 1 and "no reviewer named 'ghost'" in result.stderr

    result = qcode("reviewer", "list", "--json", "--db", db)
    assert result.exit_code == 0, result.output
    listed = {r["name"]: r for r in json.loads(result.stdout)["reviewers"]}
    assert set(listed) == {"carol", "dave", "lena", "rita", "bob", "otto", "nora", *RACERS}
    assert (listed["carol"]["role"], listed["carol"]["runs"], listed["carol"]["active"]) == ("lead", "all", True)
    assert (listed["dave"]["role"], listed["dave"]["runs"]) == ("reviewer", [world.run_b])
    assert listed["rita"]["runs"] == [world.run_a] and listed["nora"]["runs"] == []
    assert "password" not in result.stdout and password not in result.stdout

    result = qcode("reviewer", "disable", "dave", "--db", db)
    assert result.exit_code == 0 and not signed_in(dave)
    result = qcode("reviewer", "list", "--json", "--db", db)
    assert {r["name"]: r["active"] for r in json.loads(result.stdout)["reviewers"]}["dave"] is False
    result = qcode("reviewer", "reset", "carol", "--db", db)
    assert result.exit_code == 0 and not signed_in(carol)
    assert signed_in(sign_in(app, "carol", result.stdout.strip().splitlines()[-1]))


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture
def pg_world(pg_db: str, tmp_path: Path, quick_passwords: None) -> Iterator[tuple[str, str, dict[str, str]]]:
    """A new PostgreSQL database with run A and the reviewers: (its URL, the run, the passwords)."""
    codebook = tmp_path / "small.yaml"
    codebook.write_text(SMALL_CODEBOOK, encoding="utf-8")
    run_id = make_review_db(tmp_path / "pg", TRANSCRIPTS_A, codebook, pg_db)  # type: ignore[arg-type]
    accounts = {"lena": "lead", "rita": "reviewer", "bob": "reviewer", **{r: "reviewer" for r in RACERS}}
    passwords = make_reviewers(pg_db, accounts, run_id)  # type: ignore[arg-type]
    gc.collect()
    yield pg_db, run_id, passwords
    gc.collect()  # the stores' connections closed before pg_db drops the database


def test_postgres_decisions_conflicts_and_races(pg_world: tuple[str, str, dict[str, str]]) -> None:
    url, run_id, passwords = pg_world
    store = Store(url)
    try:
        assert store.engine.dialect.name == "postgresql"
        app = create_app(store=store, secret_key=SECRET)
        items = items_of(store)
        check_conflict(app, store, passwords, items[("harbor_teacher.txt", 0, "funding")].id)
        check_race(app, store, passwords, items[("valley_teacher.txt", 0, "funding")].id)
        # a missed code, once
        item = items[("markup.txt", 0, "funding")]
        rita, bob = (sign_in(app, name, passwords[name]) for name in ("rita", "bob"))
        for c in (rita, bob):
            token, _ = open_item(c, item.id)
            r = c.post(
                f"/chunks/{item.chunk_id}/add",
                follow_redirects=True,
                data={"csrf_token": token, "code": "trust", "back": item.id, "codebook_version": item.codebook_version},
            )
        assert "rita already added 'trust' to this passage." in message(r.text, "conflict")
        assert [(d.reviewer, d.suggestion_id) for d in decisions(store, chunk_id=item.chunk_id)] == [("rita", None)]
        assert queue_counts(rita) == (3, 2)
    finally:
        store.engine.dispose()


def test_postgres_case_metadata_filter(pg_world: tuple[str, str, dict[str, str]]) -> None:
    url, run_id, passwords = pg_world
    store = Store(url)
    try:
        app = create_app(store=store, secret_key=SECRET)
        check_case_filter(sign_in(app, "lena", passwords["lena"]), items_of(store), run_id)
    finally:
        store.engine.dispose()


def test_a_passage_coded_blind_hides_the_models_suggestion_until_it_is_coded(
    app: FastAPI, store: Store, world: World
) -> None:
    pw = world.passwords
    lead, rita = sign_in(app, "lena", pw["lena"]), sign_in(app, "rita", pw["rita"])
    token = csrf_of(lead.get("/lead").text)
    size = len({i.chunk_id for i in world.of_run(world.run_a)})
    r = lead.post(
        "/lead/samples",
        data={"csrf_token": token, "run": world.run_a, "size": str(size), "reviewer": ["rita", "bob"], "seed": "1"},
    )
    assert r.status_code == 303
    rows = assignment_rows(store)
    assert len({chunk for _, chunk, _, _ in rows}) == size  # every passage of the run, once per reviewer
    blind_chunk = rows[0][1]
    hidden = next(i for i in world.of_run(world.run_a) if i.chunk_id == blind_chunk)

    # neither the queue nor the item's address shows rita the model's proposal there
    assert hidden.id not in queue_ids(rita, status="all")
    assert rita.get(f"/items/{hidden.id}").status_code == 404
    assert hidden.id in queue_ids(lead, status="all")

    # every passage is taken for these two: a second sample draws none of them again
    r = lead.post(
        "/lead/samples",
        data={"csrf_token": token, "run": world.run_a, "size": "1", "reviewer": ["rita", "bob"]},
        follow_redirects=True,
    )
    assert "no passages left that these reviewers have not coded or reviewed already" in message(r.text, "error")
    assert len(assignment_rows(store)) == len(rows)

    # once rita has coded it, the suggestion is hers to see
    mine = next(a for a, chunk, name, _ in rows if chunk == blind_chunk and name == "rita")
    r = rita.post(f"/blind/{mine}", data={"csrf_token": token_of(rita), "code": ["trust"]})
    assert r.status_code == 303
    assert rita.get(f"/items/{hidden.id}").status_code == 200


def test_a_disabled_reviewer_gets_no_blind_sample(app: FastAPI, store: Store, world: World) -> None:
    disable_reviewer(store, "bob")
    lead = sign_in(app, "lena", world.passwords["lena"])
    r = lead.post(
        "/lead/samples",
        data={
            "csrf_token": csrf_of(lead.get("/lead").text),
            "run": world.run_a,
            "size": "1",
            "reviewer": ["rita", "bob"],
        },
        follow_redirects=True,
    )
    assert "bob can no longer sign in" in message(r.text, "error")
    assert assignment_rows(store) == []


# --- proposed with the lease and sign-in patches (benchmarks/review_load.py found both) -------------


def test_reviewers_asking_for_the_next_item_at_once_are_sent_to_different_items(
    app: FastAPI, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["rita", "bob", *RACERS][:4]  # reviewers who see the same run
    clients = [sign_in(app, name, world.passwords[name]) for name in names]
    real, gate, lock, first = review_app.queued.next_item, threading.Barrier(len(names)), threading.Lock(), []

    def together(*args: Any, **kwargs: Any) -> Any:  # every first choice is made before any is leased
        found = real(*args, **kwargs)
        with lock:
            waits = len(first) < len(names)
            first.append(found)
        if waits:
            try:
                gate.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass
        return found

    monkeypatch.setattr(review_app.queued, "next_item", together)
    paths = at_once(len(names), lambda i: urlsplit(clients[i].get("/next").headers["location"]).path)
    assert len(set(first[: len(names)])) == 1  # all chose the same first item
    assert all(p.startswith("/items/") for p in paths) and len(set(paths)) == len(names), paths


def test_right_passwords_sent_at_once_from_one_address_all_sign_in(
    app: FastAPI, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ["lena", "rita", "bob", "otto", "nora"] * 2  # more at once than the throttle's limit of 5
    checked_together(monkeypatch, 5)  # five sign-ins are being checked at the same time
    clients = [TestClient(app, follow_redirects=False) for _ in names]
    tokens = [csrf_of(c.get("/login").text) for c in clients]
    codes = at_once(
        len(names),
        lambda i: (
            clients[i]
            .post("/login", data={"csrf_token": tokens[i], "name": names[i], "password": world.passwords[names[i]]})
            .status_code
        ),
    )
    assert codes == [303] * len(names)


def test_decisions_and_samples_of_runs_a_reviewer_may_not_see_stay_out_of_reach(tmp_path: Path) -> None:
    """Two coder configurations over the same transcript share its passages: what reviewers decide
    on one project's suggestions does not show on the other project's pages."""
    codebook = tmp_path / "small.yaml"
    codebook.write_text(SMALL_CODEBOOK, encoding="utf-8")
    db = tmp_path / "two.db"
    transcripts = {"shared.txt": "Ms. Chen: The grant paid for our release time.\nMr. Ortiz: I trust her.\n"}
    first = make_review_db(tmp_path / "a", transcripts, codebook, db)
    # another configuration: another coder key, another project
    second = make_review_db(tmp_path / "b", transcripts, codebook, db, confidence=0.31)
    queueing_coder()
    store = Store(str(db))
    passwords = make_reviewers(db, {"ana": "reviewer"}, first)
    passwords.update({"lee": add_reviewer(store, "lee", "lead")})
    with store.session() as s:
        mine, theirs = (
            s.scalar(select(SuggestionRecord.id).where(SuggestionRecord.run_id == run)) for run in (first, second)
        )
    app = create_app(store=store, secret_key=SECRET)
    lead = sign_in(app, "lee", passwords["lee"])
    assert post_decision(lead, theirs, "reject", reason="SECRET-REASON", note="SECRET-NOTE").status_code == 303
    ana = sign_in(app, "ana", passwords["ana"])
    page = ana.get(f"/items/{mine}").text
    assert "SECRET" not in page
    assert ana.get(f"/items/{theirs}").status_code == 404
    assert "SECRET-REASON" in lead.get(f"/items/{theirs}").text  # where it belongs

    # nor can a lead hand ana passages of the other run to code blind
    r = lead.post(
        "/lead/samples",
        data={"csrf_token": csrf_of(lead.get("/lead").text), "run": second, "size": "1", "reviewer": ["ana", "lee"]},
        follow_redirects=True,
    )
    assert "ana may not see this run" in message(r.text, "error")


def test_skipping_moves_on_instead_of_bouncing_between_two_items(app: FastAPI, world: World) -> None:
    c = sign_in(app, "rita", world.passwords["rita"])
    waiting = queue_ids(c)
    assert len(waiting) >= 3
    seen = []
    location = c.get("/next").headers["location"]
    for _ in range(len(waiting)):
        current = location.split("/")[2].split("?")[0]
        seen.append(current)
        location = c.get(f"/next?after={current}&skip=1").headers["location"]
    assert sorted(seen) == sorted(waiting)  # every waiting item once before any comes round again


def test_a_reviewer_holds_only_the_item_in_front_of_them(app: FastAPI, world: World) -> None:
    rita, bob = (sign_in(app, name, world.passwords[name]) for name in ("rita", "bob"))
    first = rita.get("/next").headers["location"].split("/")[2].split("?")[0]
    second = rita.get(f"/next?after={first}&skip=1").headers["location"].split("/")[2].split("?")[0]
    assert second != first
    # what she skipped went back: the next reviewer may have it; what she has open, not
    assert bob.get(f"/items/{first}").text.count("has this item open") == 0
    assert "rita has this item open" in bob.get(f"/items/{second}").text
    assert re.search(r"until \d\d:\d\d UTC", bob.get(f"/items/{second}").text)
    assert bob.get("/next").headers["location"].split("/")[2].split("?")[0] == first


def test_adding_a_reviewer_with_a_mistyped_run_creates_no_account(qcode: Callable[..., Answer], db: Path) -> None:
    result = qcode("reviewer", "add", "zoe", "--run", "no-such-run", "--db", db)
    assert result.exit_code == 1 and "no run 'no-such-run'" in result.output
    assert qcode("reviewer", "add", "zoe", "--run", "latest", "--db", db).exit_code == 0


def test_the_decisions_log_goes_to_standard_output_and_runs_no_formula(
    qcode: Callable[..., Answer], app: FastAPI, db: Path, world: World
) -> None:
    c = sign_in(app, "rita", world.passwords["rita"])
    target = queue_ids(c)[0]
    assert post_decision(c, target, "reject", reason='=HYPERLINK("http://x")', note="+1").status_code == 303
    result = qcode("export", "--format", "decisions", "--db", db)
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["reviewer"], r["verdict"], r["reason"], r["note"]) for r in rows] == [
        ("rita", "reject", '\'=HYPERLINK("http://x")', "'+1")
    ]


def test_a_person_settles_each_rejected_proposal_once(tmp_path: Path) -> None:
    scripted_coder("inventing", "inventing-1", "inventing-v1", proposes="made-up")
    codebook = tmp_path / "small.yaml"
    codebook.write_text(SMALL_CODEBOOK, encoding="utf-8")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("Ms. Chen: The grant paid for our <i>release</i> time.\n", encoding="utf-8")
    db = tmp_path / "r.db"
    run_id = code_store(tmp_path / "in", codebook, db, coder="inventing").run_id
    store = Store(str(db))
    passwords = make_reviewers(db, {"ana": "reviewer", "ben": "reviewer"}, run_id)
    passwords["zed"] = add_reviewer(store, "zed", "reviewer")  # granted nothing
    with store.session() as s:
        rejection = s.scalar(select(RejectionRecord))
        text = s.scalar(select(TranscriptRecord.text))
    app = create_app(store=store, secret_key=SECRET)
    ana, ben, zed = (sign_in(app, n, passwords[n]) for n in ("ana", "ben", "zed"))

    listing = ana.get("/rejections").text
    assert 'id="rejections-total">1<' in listing and "made-up" in listing
    assert 'id="rejections-total">0<' in zed.get("/rejections").text
    assert zed.get(f"/rejections/{rejection.id}").status_code == 404
    page = ana.get(f"/rejections/{rejection.id}").text
    assert "&lt;i&gt;release&lt;/i&gt;" in page and "<i>release" not in page
    token = csrf_of(page)
    ben_token = csrf_of(ben.get(f"/rejections/{rejection.id}").text)

    # an unknown code is refused and nothing is settled
    r = ana.post(
        f"/rejections/{rejection.id}/settle",
        data={"csrf_token": token, "version": "1", "verdict": "add", "code": "made-up"},
        follow_redirects=True,
    )
    assert "not an applicable code" in message(r.text, "error")
    # ana adds the right code with a quote; ben, answering the same version, is told she was first
    start = text.index("grant paid")
    r = ana.post(
        f"/rejections/{rejection.id}/settle",
        data={
            "csrf_token": token,
            "version": "1",
            "verdict": "add",
            "code": "funding",
            "quote_start": str(start),
            "quote_end": str(start + len("grant paid")),
        },
    )
    assert r.status_code == 303 and r.headers["location"] == "/rejections"
    r = ben.post(
        f"/rejections/{rejection.id}/settle",
        data={"csrf_token": ben_token, "version": "1", "verdict": "reject", "reason": "nothing here"},
        follow_redirects=True,
    )
    assert "ana already settled this proposal (add)" in message(r.text, "conflict")
    with store.session() as s:
        settled = s.get(RejectionRecord, rejection.id)
        rows = list(s.scalars(select(DecisionRecord).where(DecisionRecord.rejection_id == rejection.id)))
    assert settled.status == "resolved" and settled.code == "made-up"  # the proposal itself is kept as it was
    assert [(d.reviewer, d.verdict, d.final_code, text[d.quote_start : d.quote_end]) for d in rows] == [
        ("ana", "add", "funding", "grant paid")
    ]
    assert 'id="rejections-total">0<' in ana.get("/rejections").text
