"""The review app kept safe (issue 16, points 1 to 7): blind coding that stays blind, the sign-in
limit that a forged header cannot get round, redirects that stay on the site, odd input that is a
400 and not a 500, an opened item that holds nothing, and limits on what a form may carry. Through
the app itself (FastAPI's test client) and, for the forwarded address, through uvicorn as
`qcode serve` runs it."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fakes import SMALL_CODEBOOK, code_store, qcode, scripted_coder, write, write_transcripts
from fakes.review_server import ReviewServer
from fastapi.testclient import TestClient
from sqlalchemy import select

import pipeline.review.app as app_module
from pipeline.errors import DecisionError
from pipeline.review.app import create_app
from pipeline.review.blind import create_sample
from pipeline.review.reviewers import Reviewer, add_reviewer, disable_reviewer, grant_runs
from pipeline.store import AssignmentRecord, RejectionRecord, Store, SuggestionRecord

pytestmark = pytest.mark.usefixtures("quick_passwords")
PASSAGE = "Ms. Chen: Money came late this year, and the grant was small.\n"


@pytest.fixture
def world(tmp_path: Path) -> dict:
    """One passage with a suggestion and a rejected proposal; a lead and two reviewers."""
    scripted_coder(
        "safety-coder",
        proposes="phrases",
        phrases={"Money came": [("funding", 0.4, "Money came late this year"), ("nonsense", 0.9, "the grant")]},
    )
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "review.db"
    run = code_store(write_transcripts(tmp_path / "in", {"chen.txt": PASSAGE}), codebook, db, coder="safety-coder")
    store = Store(str(db))
    passwords = {
        name: add_reviewer(store, name, role)
        for name, role in [("lena", "lead"), ("rita", "reviewer"), ("bob", "reviewer")]
    }
    for name in ("rita", "bob"):
        grant_runs(store, name, [run.run_id])
    with store.session() as s:
        suggestion = s.scalar(select(SuggestionRecord))
        rejection = s.scalar(select(RejectionRecord))
        assert suggestion is not None and rejection is not None
        ids = {"suggestion": suggestion.id, "chunk": suggestion.chunk_id, "rejection": rejection.id}
    return {"db": db, "store": store, "run": run.run_id, "passwords": passwords, **ids}


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found
    return found.group(1)


def sign_in(app, name: str, password: str) -> TestClient:
    c = TestClient(app, follow_redirects=False)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"csrf_token": token, "name": name, "password": password, "next": "/queue"})
    assert r.status_code == 303, r.text[:300]
    return c


def reviewer(store: Store, name: str) -> Reviewer:
    from pipeline.store import ReviewerRecord

    with store.session() as s:
        record = s.scalar(select(ReviewerRecord).where(ReviewerRecord.name == name))
        assert record is not None
        return Reviewer(id=record.id, name=record.name, role=record.role)


def test_nothing_of_the_models_or_of_others_reaches_a_reviewer_coding_a_passage_blind(world: dict) -> None:
    store = world["store"]
    create_sample(store, reviewer(store, "lena"), world["run"], 1, ["rita", "bob"], seed=1)
    app = create_app(str(world["db"]), secret_key="k" * 32)
    rita = sign_in(app, "rita", world["passwords"]["rita"])
    # the model's rejected proposal: not listed, not reachable, not settleable
    assert "the grant" not in rita.get("/rejections").text
    assert rita.get(f"/rejections/{world['rejection']}").status_code == 404
    token = csrf_of(rita.get("/blind").text)
    settle = rita.post(
        f"/rejections/{world['rejection']}/settle", data={"csrf_token": token, "verdict": "reject", "reason": "x"}
    )
    assert settle.status_code == 404
    # the model's suggestion: not in the queue, not reachable
    assert world["suggestion"] not in rita.get("/queue").text
    assert rita.get(f"/items/{world['suggestion']}").status_code == 404
    # a decision of her own there is refused until her blind codes are in
    add = rita.post(
        f"/chunks/{world['chunk']}/add", data={"csrf_token": token, "code": "trust", "codebook_version": "x"}
    )
    assert add.status_code == 409 and "coding this passage blind" in add.text
    # once in, she sees what there is
    with store.session() as s:
        mine = s.scalar(select(AssignmentRecord.id).where(AssignmentRecord.reviewer_id == reviewer(store, "rita").id))
    assert rita.post(f"/blind/{mine}", data={"csrf_token": token, "code": ["funding"]}).status_code == 303
    assert rita.get(f"/rejections/{world['rejection']}").status_code == 200
    assert rita.get(f"/items/{world['suggestion']}").status_code == 200


def test_another_runs_passage_on_the_same_words_is_blind_too_and_the_filters_say_nothing(
    world: dict, tmp_path: Path
) -> None:
    store = world["store"]
    create_sample(store, reviewer(store, "lena"), world["run"], 1, ["rita", "bob"], seed=1)
    # the same transcript coded again by turns: the turn's words without the label, another passage
    again = code_store(tmp_path / "in", tmp_path / "small.yaml", world["db"], coder="safety-coder", unit="turn")
    grant_runs(store, "rita", [again.run_id])
    with store.session() as s:
        other = s.scalar(select(SuggestionRecord).where(SuggestionRecord.chunk_id != world["chunk"]))
        assert other is not None and other.code == "funding"
    app = create_app(str(world["db"]), secret_key="k" * 32)
    rita = sign_in(app, "rita", world["passwords"]["rita"])
    queue = rita.get("/queue", params={"status": "all"}).text
    assert other.id not in queue and "Nothing matches these filters." in queue
    assert not re.search(r"<option[^>]*>(funding|chen\.txt)</option>", queue)  # no code or transcript to filter by
    assert rita.get(f"/items/{other.id}").status_code == 404
    assert "the grant" not in rita.get("/rejections").text
    token = csrf_of(rita.get("/blind").text)
    add = rita.post(
        f"/chunks/{other.chunk_id}/add", data={"csrf_token": token, "code": "trust", "codebook_version": "x"}
    )
    assert add.status_code == 409
    with store.session() as s:
        mine = s.scalar(select(AssignmentRecord.id).where(AssignmentRecord.reviewer_id == reviewer(store, "rita").id))
    assert rita.post(f"/blind/{mine}", data={"csrf_token": token, "code": ["funding"]}).status_code == 303
    assert rita.get(f"/items/{other.id}").status_code == 200
    assert re.search(r"<option[^>]*>funding</option>", rita.get("/queue").text)
    # and the words they coded blind once are not drawn again through the other run's passage
    grant_runs(store, "lena", [again.run_id])
    with pytest.raises(DecisionError, match="no passages left"):
        create_sample(store, reviewer(store, "lena"), again.run_id, 1, ["rita", "lena"], seed=1)


@pytest.mark.slow  # serves the app with uvicorn, twice
def test_a_forged_forwarded_address_does_not_lift_the_sign_in_limit(world: dict) -> None:
    def attempts(server: ReviewServer, forged: bool) -> list[int]:
        server.server.config.app.state.throttle.address_limit = 3
        codes = []
        with httpx.Client(base_url=server.url) as c:
            token = csrf_of(c.get("/login").text)
            for i in range(5):
                headers = {"X-Forwarded-For": f"203.0.113.{i}"} if forged else {}
                data = {"csrf_token": token, "name": f"nobody{i}", "password": "wrong"}
                codes.append(c.post("/login", data=data, headers=headers).status_code)
        return codes

    with ReviewServer(world["db"]) as server:  # no proxy named: the header is the client's word
        assert attempts(server, forged=True) == [401, 401, 401, 429, 429]
    with ReviewServer(world["db"], trusted_proxies=("127.0.0.1",)) as server:  # a proxy named: believed
        assert attempts(server, forged=True) == [401] * 5


def test_redirects_stay_on_the_site_whatever_the_host_header(world: dict) -> None:
    app = create_app(str(world["db"]), secret_key="k" * 32)
    c = TestClient(app, follow_redirects=False)
    for path in ("/", "/queue", "/items/0123456789abcdef"):
        r = c.get(path, headers={"Host": "evil.example"})
        assert r.status_code == 303 and r.headers["location"].startswith("/"), (path, r.headers["location"])
    assert c.get("/queue/", headers={"Host": "evil.example"}).status_code == 404  # no slash redirect


def test_odd_input_is_a_400_or_nothing_and_every_answer_has_the_same_headers(
    world: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(str(world["db"]), secret_key="k" * 32)
    rita = sign_in(app, "rita", world["passwords"]["rita"])
    r = rita.get('/queue?case.district%22=x&case.a"b=1')
    assert r.status_code == 400 and "No case attribute is called “district&#34;”" in r.text  # not a name
    assert rita.get("/queue", params={"case.nosuchkey": "x"}).text.count("Nothing matches these filters.") == 1
    assert rita.get("/queue", params={"code": "x" * 1000}).status_code == 400
    # unknown addresses: the app's own page, with its headers
    r = rita.get("/no/such/page")
    assert r.status_code == 404 and "text/html" in r.headers["content-type"] and "There is no such page" in r.text
    assert r.headers["content-security-policy"] == app_module.CSP
    # an id that is no number, signed out: sent to sign in before the id is looked at
    anonymous = TestClient(app, follow_redirects=False)
    assert anonymous.get("/rejections/not-a-number").status_code == 303
    assert rita.get("/rejections/not-a-number").status_code == 404
    # a bug: the app's page and the same headers, not a bare 500
    monkeypatch.setattr(app_module.queued, "queue_items", lambda *a, **k: 1 / 0)
    r = TestClient(app, follow_redirects=False, raise_server_exceptions=False, cookies=rita.cookies).get("/queue")
    assert r.status_code == 500 and "Something went wrong" in r.text
    assert r.headers["content-security-policy"] == app_module.CSP and r.headers["x-frame-options"] == "DENY"


def test_opening_an_item_holds_nothing_and_a_held_item_says_who_holds_it(world: dict) -> None:
    app = create_app(str(world["db"]), secret_key="k" * 32)
    rita = sign_in(app, "rita", world["passwords"]["rita"])
    bob = sign_in(app, "bob", world["passwords"]["bob"])
    assert rita.get(f"/items/{world['suggestion']}").status_code == 200  # opened, from the queue
    r = bob.get("/next")
    assert r.headers["location"].startswith(f"/items/{world['suggestion']}")  # still bob's next
    page = rita.get(f"/items/{world['suggestion']}").text
    assert re.search(r"bob has this item open \(from “next”\) until \d\d:\d\d", page)


def test_a_disabled_account_is_enabled_only_when_asked_and_forms_have_limits(world: dict) -> None:
    db = str(world["db"])
    disable_reviewer(world["store"], "bob")
    refused = qcode("reviewer", "reset", "bob", "--db", db)
    assert refused.exit_code != 0 and "'bob' is disabled" in refused.output and "--enable" in refused.output
    enabled = qcode("reviewer", "reset", "bob", "--db", db, "--enable")
    assert enabled.exit_code == 0 and "bob was disabled and is enabled again" in enabled.stdout
    # a note too long, a name too long: said, nothing stored
    store = world["store"]
    create_sample(store, reviewer(store, "lena"), world["run"], 1, ["rita", "bob"], seed=1)
    app = create_app(db, secret_key="k" * 32)
    rita = sign_in(app, "rita", world["passwords"]["rita"])
    with store.session() as s:
        mine = s.scalar(select(AssignmentRecord.id).where(AssignmentRecord.reviewer_id == reviewer(store, "rita").id))
    token = csrf_of(rita.get("/blind").text)
    r = rita.post(
        f"/blind/{mine}", data={"csrf_token": token, "code": ["funding"], "note": "n" * 5001}, follow_redirects=True
    )
    assert "keep it to 5,000" in r.text
    with store.session() as s:
        assert s.scalar(select(AssignmentRecord.coded_at).where(AssignmentRecord.id == mine)) is None
    c = TestClient(app, follow_redirects=False)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"csrf_token": token, "name": "x" * 201, "password": "p"})
    assert r.status_code == 400 and "too long" in r.text
