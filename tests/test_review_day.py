"""A reviewer's day in the review app (issue 16, points 8 to 14): counts that add up and a list
that says how long it is and pages through it."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from fakes import SMALL_CODEBOOK, code_store, qcode, scripted_coder, write, write_transcripts
from fastapi.testclient import TestClient

from pipeline.review.app import PAGE_SIZE, create_app
from pipeline.review.blind import create_sample
from pipeline.review.reviewers import add_reviewer, authenticate, grant_runs, reset_password
from pipeline.store import Store

pytestmark = pytest.mark.usefixtures("quick_passwords")
TURNS = 130


def signed_in(db: Path, name: str, password: str) -> TestClient:
    """The review app over `db`, signed in through its form."""
    client = TestClient(create_app(str(db), secret_key="k" * 32), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    r = client.post("/login", data={"csrf_token": token.group(1), "name": name, "password": password})
    assert r.status_code == 303
    return client


@pytest.fixture
def long_queue(tmp_path: Path) -> tuple[TestClient, int]:
    """A run of TURNS turns, each with one suggestion (some confident enough to be accepted), and a
    reviewer signed in."""
    scripted_coder("day-coder", proposes="marks")
    lines = [f"Ms. Chen: Money came late in week {n}. [funding {0.3 if n % 5 else 0.95}]" for n in range(TURNS)]
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "day.db"
    run = code_store(
        write_transcripts(tmp_path / "in", {"chen.txt": "\n".join(lines) + "\n"}),
        codebook,
        db,
        coder="day-coder",
        unit="turn",
        audit_share=0.2,
        seed=3,
        name="pilot, week 1",
    )
    assert run.name == "pilot, week 1"
    store = Store(str(db))
    password = add_reviewer(store, "rita")
    grant_runs(store, "rita", [run.run_id])
    client = signed_in(db, "rita", password)
    return client, run.suggestions


def counts(page: str) -> dict[str, int]:
    found = re.search(
        r"<strong>(\d+)</strong> waiting \((\d+) low confidence, (\d+) audit sample\) ·\s*"
        r"<strong>(\d+)</strong> decided ·\s*(\d+) accepted automatically",
        page,
    )
    assert found, page[:2000]
    return dict(zip(("waiting", "review", "audit", "decided", "accepted"), map(int, found.groups())))


def test_the_counts_add_up_and_the_list_pages_with_its_total(long_queue: tuple[TestClient, int]) -> None:
    client, suggestions = long_queue
    first = client.get("/queue").text
    seen = counts(first)
    assert seen["waiting"] == seen["review"] + seen["audit"]
    assert seen["waiting"] + seen["decided"] + seen["accepted"] == suggestions == TURNS
    assert seen["waiting"] > PAGE_SIZE  # more than one page
    rows = re.findall(r'<td><a href="/items/([0-9a-f]{16})\?', first)
    assert len(rows) == PAGE_SIZE
    assert f"Rows 1–{PAGE_SIZE} of {seen['waiting']}" in first and 'rel="next"' in first
    second = client.get("/queue", params={"page": 2}).text
    more = re.findall(r'<td><a href="/items/([0-9a-f]{16})\?', second)
    assert len(more) == seen["waiting"] - PAGE_SIZE and not set(more) & set(rows)
    assert f"Rows {PAGE_SIZE + 1}–{seen['waiting']} of {seen['waiting']}" in second and 'rel="prev"' in second
    # a page beyond the last is the last; an odd one the first
    assert client.get("/queue", params={"page": 99}).text.count("<td><a href") == len(more)
    assert client.get("/queue", params={"page": "x"}).text.count("<td><a href") == PAGE_SIZE


def test_runs_are_listed_by_the_name_the_researcher_gave_them(
    long_queue: tuple[TestClient, int], tmp_path: Path
) -> None:
    client, _ = long_queue
    page = client.get("/queue").text
    assert re.search(
        r"<option value=\"[0-9a-f-]{36}\" >pilot, week 1 · Small test codebook · day-coder · \d{4}-\d\d-\d\d \d\d:\d\d</option>",
        page,
    )
    # and on the command line
    db = tmp_path / "day.db"
    granted = qcode("reviewer", "grant", "rita", "--run", "latest", "--db", db)
    assert re.fullmatch(r"rita may see 1 run\(s\): pilot, week 1 \([0-9a-f]{8}\)\n", granted.stdout), granted.stdout
    listed = qcode("reviewer", "list", "--db", db)
    assert "pilot, week 1" in listed.stdout


def test_a_code_that_cannot_be_applied_says_which_was_meant_and_keeps_what_was_typed(
    long_queue: tuple[TestClient, int],
) -> None:
    from fakes import LINKAGES

    from pipeline.codebook import load_codebook
    from pipeline.review.decisions import likely_codes

    linkages = load_codebook(LINKAGES)
    assert likely_codes(linkages, "relational") == ["relational.strength", "relational.weakness"]
    assert likely_codes(linkages, "relational.strenght")[0] == "relational.strength"
    client, _ = long_queue
    item = re.search(r'<td><a href="/items/([0-9a-f]{16})\?', client.get("/queue").text)
    assert item
    page = client.get(f"/items/{item.group(1)}").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    version = re.search(r'name="version" value="(\d+)"', page)
    assert token and version
    typed = {"code": "fundng", "note": "late money, weeks 3 to 9", "reason": ""}
    r = client.post(
        f"/items/{item.group(1)}/decide",
        data={"csrf_token": token.group(1), "version": version.group(1), "verdict": "change", **typed},
    )
    assert r.status_code == 303 and r.headers["location"].startswith(
        f"/items/{item.group(1)}?"
    )  # a reload sends nothing
    page = client.get(r.headers["location"]).text
    assert "did you mean funding?" in page
    assert 'value="fundng"' in page and 'value="late money, weeks 3 to 9"' in page
    assert 'value="fundng"' not in client.get(r.headers["location"]).text  # said once
    assert likely_codes(linkages, "resourc") == ["resource.strength", "resource.weakness"]  # a beginning


def test_every_form_keeps_what_was_typed_and_names_the_field_that_is_wrong(
    long_queue: tuple[TestClient, int], tmp_path: Path
) -> None:
    client, _ = long_queue
    item = re.search(r'<td><a href="/items/([0-9a-f]{16})\?', client.get("/queue").text)
    assert item
    page = client.get(f"/items/{item.group(1)}").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    chunk = re.search(r'action="/chunks/([0-9a-f]+)/add"', page)
    assert token and chunk
    csrf = token.group(1)

    def after(r: httpx.Response) -> str:
        assert r.status_code == 303, r.text[:300]
        return client.get(r.headers["location"]).text

    decide = f"/items/{item.group(1)}/decide"
    # a version no item has: said, not a server error
    page = after(client.post(decide, data={"csrf_token": csrf, "version": "9" * 30, "verdict": "accept"}))
    assert "reload the page" in page
    # an over-long note, and a quote past any transcript: the field is named
    page = after(
        client.post(decide, data={"csrf_token": csrf, "version": "1", "verdict": "accept", "note": "n" * 5001})
    )
    assert "The note is too long: at most 5,000 characters." in page and 'value="nnnn' in page
    data = {"csrf_token": csrf, "version": "1", "verdict": "accept", "quote_start": "1", "quote_end": str(2**40)}
    assert "The quote&#39;s end is not a place in the transcript" in after(client.post(decide, data=data))
    # adding a code the codebook lacks: the item says why and keeps the code typed
    add = {"csrf_token": csrf, "code": "fundng", "back": item.group(1), "codebook_version": "x", "query": ""}
    page = after(client.post(f"/chunks/{chunk.group(1)}/add", data=add))
    assert (
        "no codebook version" in page
        and 'id="add-code" list="codes" data-key="m" autocomplete="off" value="fundng"' in page
    )
    # a form sent once the session has ended comes back to its page after signing in, not to the action
    reset_password(Store(str(tmp_path / "day.db")), "rita")  # ends her sessions
    r = client.post(decide, data={"csrf_token": csrf, "version": "1", "verdict": "accept"})
    assert r.status_code == 303 and r.headers["location"] == "/login?" + urlencode({"next": f"/items/{item.group(1)}"})


def test_rejected_proposals_markdown_labels_and_the_double_coding_page(tmp_path: Path) -> None:
    scripted_coder(
        "day-phrases",
        proposes="phrases",
        phrases={"grant": [("funding", 0.4, "The grant came in May."), ("trust", 0.9, "words nobody said")]},
    )
    text = "**Interviewer:** How does the district help?\n**Ms. Chen:** The grant came in May.\n"
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "md.db"
    run = code_store(
        write_transcripts(tmp_path / "in", {"chen.md": text}), codebook, db, coder="day-phrases", unit="turn"
    )
    store = Store(str(db))
    passwords = {name: add_reviewer(store, name, role) for name, role in [("lena", "lead"), ("rita", "reviewer")]}
    add_reviewer(store, "zoe")  # may not see the run
    grant_runs(store, "rita", [run.run_id])
    client = signed_in(db, "lena", passwords["lena"])
    # a neighbouring turn's markdown label shows as the speaker's name
    item = re.search(r'<td><a href="/items/([0-9a-f]{16})\?', client.get("/queue").text)
    assert item
    page = client.get(f"/items/{item.group(1)}").text
    assert '<strong class="speaker">Interviewer:</strong> How does the district help?' in page
    assert "**Interviewer:**" not in page.split('id="passage"')[0]
    # ... and in a passage too, where the markdown stays in the page, hidden (the quote's offsets count it)
    chunks = code_store(
        write_transcripts(tmp_path / "chunks", {"chen.md": text}), codebook, db, coder="day-phrases", unit="chunk"
    )
    item = re.search(r'<td><a href="/items/([0-9a-f]{16})\?', client.get("/queue", params={"run": chunks.run_id}).text)
    assert item
    passage = client.get(f"/items/{item.group(1)}").text.split('id="passage"')[1].split("</div>")[0]
    assert re.sub(r"<[^>]+>", "", passage.split(">", 1)[1]) == text.rstrip("\n")
    assert (
        '<span class="seg markup" data-start="0" aria-hidden="true">**</span>'
        '<span class="seg speaker" data-start="2">Interviewer</span>'
        '<span class="seg speaker" data-start="13">:</span>'
        '<span class="seg markup" data-start="14" aria-hidden="true">**</span>'
    ) in passage
    # a rejected proposal: the keys, the proposed code's definition, the decision panel kept in view
    rejection = re.search(r'href="/rejections/(\d+)"', client.get("/rejections").text)
    assert rejection
    page = client.get(f"/rejections/{rejection.group(1)}").text
    assert 'id="keys"' in page and "Definition of trust" in page and 'class="actions decision"' in page
    assert 'tabindex="0" data-key="p"' in page  # the quote can be chosen from the keyboard
    # the double-coding page offers only reviewers who may see the run, and says what the seed does
    page = client.get("/lead", params={"run": run.run_id}).text
    assert 'value="rita"' in page and 'value="lena"' in page and 'value="zoe"' not in page
    assert "the same seed on the same run draws the same passages" in page
    # a form that cannot be done keeps what was typed: the rejected proposal's...
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    r = client.post(
        f"/rejections/{rejection.group(1)}/settle",
        data={"csrf_token": csrf.group(1), "version": "1", "verdict": "add", "code": "fundng", "note": "see May"},
    )
    assert r.status_code == 303
    page = client.get(r.headers["location"]).text
    assert 'id="error">' in page and "did you mean funding?" in page
    assert 'value="fundng"' in page and 'value="see May"' in page
    # ... and the double-coding page's (a sample needs two reviewers), on the run chosen
    r = client.post(
        "/lead/samples",
        data={"csrf_token": csrf.group(1), "run": run.run_id, "size": "3", "seed": "41", "reviewer": ["rita"]},
    )
    assert r.status_code == 303 and r.headers["location"] == f"/lead?run={run.run_id}"
    page = client.get(r.headers["location"]).text
    assert 'id="error">' in page and 'value="3"' in page and 'value="41"' in page
    assert '<input type="checkbox" name="reviewer" value="rita" checked>' in page


def test_a_response_of_a_csv_file_is_named_by_its_respondent(tmp_path: Path) -> None:
    scripted_coder("day-csv", proposes="first-code")
    survey = "id,response\nR7,The grant paid for our release time.\nR9,Nobody told us about the change.\n"
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "csv.db"
    run = code_store(write_transcripts(tmp_path / "in", {"survey.csv": survey}), codebook, db, coder="day-csv")
    store = Store(str(db))
    passwords = {name: add_reviewer(store, name, role) for name, role in [("lena", "lead"), ("rita", "reviewer")]}
    grant_runs(store, "rita", [run.run_id])
    lead = authenticate(store, "lena", passwords["lena"])
    assert lead is not None
    create_sample(store, lead, run.run_id, 2, ["lena", "rita"], seed=1)
    client = signed_in(db, "rita", passwords["rita"])
    listed = re.findall(r'<a href="/blind/\d+">([^<]+)</a>', client.get("/blind").text)
    assert sorted(listed) == ["survey.csv, response R7", "survey.csv, response R9"]


def test_a_blind_passage_gives_a_key_to_each_of_58_codes_and_says_how_to_reach_the_rest(tmp_path: Path) -> None:
    codes = "".join(
        f"  - id: c{n:02d}\n    name: Code {n}\n    definition: Passages about topic {n}.\n" for n in range(60)
    )
    codebook = write(
        tmp_path / "big.yaml", f"name: Big\ndescription: Sixty codes.\nmeasurement: nominal\ncodes:\n{codes}"
    )
    scripted_coder("day-first", proposes="first-code")
    db = tmp_path / "big.db"
    run = code_store(
        write_transcripts(tmp_path / "in", {"a.txt": "Ms. Chen: One passage.\n"}), codebook, db, coder="day-first"
    )
    store = Store(str(db))
    passwords = {name: add_reviewer(store, name, role) for name, role in [("lena", "lead"), ("rita", "reviewer")]}
    grant_runs(store, "rita", [run.run_id])
    lead = authenticate(store, "lena", passwords["lena"])
    assert lead is not None
    create_sample(store, lead, run.run_id, 1, ["lena", "rita"], seed=1)
    client = signed_in(db, "rita", passwords["rita"])
    assignment = re.search(r'href="/blind/(\d+)"', client.get("/blind").text)
    assert assignment
    page = client.get(f"/blind/{assignment.group(1)}").text
    keys = re.findall(r'data-key="([^"]+)" data-toggle="1"', page)
    assert len(keys) == 58 == len(set(keys)) and {"d", "o"}.isdisjoint(keys) and keys[-1] == "M"
    assert page.count('name="code"') == 60 and "The codes after the 58th have no key" in page
