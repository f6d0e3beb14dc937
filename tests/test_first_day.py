"""A team's first day with qcode (issue 24): what a newcomer met and what it should have been.

- A transcript's header (a title, a date line before the first speaker label) is no unit and is
  never coded, whatever the unit and speaker choice; a file with no speaker label at all is still
  coded paragraph by paragraph.
- The sign-in page of a database without reviewer accounts gives the command that adds one.
- HEAD answers as GET does; every page has an icon; the decision panel keeps to a tenth of the window.
- The item page says whose turn a unit is, and shows timestamped neighbours by name.
- The run summary names the units that failed; the triangulation says what it counted; durations
  are kept to 0.1 ms; a learned run that cannot code leaves no database behind.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import shlex
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from fakes import (
    EXAMPLES,
    LINKAGES,
    SMALL_CODEBOOK,
    ScriptedCoder,
    code_store,
    qcode,
    scripted_coder,
    write,
    write_pdf,
    write_transcripts,
)
from fakes.browser import CHROMIUM, LAUNCH_ARGS, fill_sign_in
from fakes.review_server import ReviewServer, csrf_of, make_reviewers, queueing_coder, signed_in
from rich.console import Console

import pipeline.cli.run
from pipeline.chunk import Chunk, Units, cut
from pipeline.codebook import Codebook, load_codebook
from pipeline.coders import register_coder
from pipeline.coders.learned import LearnedCoder
from pipeline.errors import CoderError
from pipeline.ingest import discover, read_source
from pipeline.review.app import create_app
from pipeline.run.corpus import code_corpus
from pipeline.run.request import RunRequest
from pipeline.suggestion import ChunkCoding
from pipeline.transcript import SpeakerChoice, Transcript

pytestmark = pytest.mark.usefixtures("quick_passwords")

SECRET = "test-secret-key-0123456789abcdef"
TITLE = "Interview with the English instructional coach, Cottonwood High School, April 2024"
TIMESTAMPED = (
    f"{TITLE}\n"
    "Recorded 12 April 2024\n"
    "\n"
    "[00:00:03] Interviewer: What is your role at Cottonwood?\n"
    "[00:00:07] Mr. Ortiz: I am the English coach. The district funded the position when we became a focus school.\n"
    "[00:02:32] Interviewer: And the principal?\n"
    "[00:02:40] Mr. Ortiz: She trusts the coaches with the schedule, and she protects our planning time.\n"
    "[00:03:10] Interviewer: Thank you.\n"
)
MARKDOWN = (
    f"# {TITLE}\n"
    "*Recorded 12 April 2024*\n"
    "\n"
    "**Interviewer:** What is your role at Cottonwood?\n"
    "**Mr. Ortiz:** I am the English coach. The district funded the position.\n"
    "**Interviewer:** And the principal?\n"
    "**Mr. Ortiz:** She trusts the coaches with the schedule.\n"
)
# every choice of unit and speakers a run can make, as `cut` takes it
CHOICES = [
    Units(unit="turn"),
    Units(unit="turn", speakers=SpeakerChoice.of(skip_speakers="interviewer")),
    Units(unit="turn", speakers=SpeakerChoice.of(speakers="Mr. Ortiz")),
    Units(unit="chunk"),
    Units(unit="chunk", size=60),
    Units(unit="chunk", speakers=SpeakerChoice.of(skip_speakers="interviewer")),
    Units(unit="chunk", size=60, overlap=30, speakers=SpeakerChoice.of(speakers="Mr. Ortiz")),
]


def read(path: Path) -> Transcript:
    (source,), errors = discover([path])
    assert not errors
    (found,) = read_source(source)
    return found


def write_docx(path: Path, paragraphs: Sequence[str]) -> Path:
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def first_label(transcript: Transcript) -> int:
    """Where the first speaker's label begins in the transcript's text."""
    return next(t.start for t in transcript.turns if t.speaker is not None)


def coded_characters(units: list[Chunk]) -> set[int]:
    return {k for u in units for t in u.turns if t.coded for k in range(t.start, t.end)}


# ---------------------------------------------------------------- the header is no unit


@pytest.mark.parametrize("units", CHOICES, ids=lambda u: f"{u.unit}-{u.size}-{u.speakers.describe()}")
@pytest.mark.parametrize("kind", ["txt", "md", "docx"])
def test_a_transcripts_header_is_in_no_unit_whatever_the_unit_and_speaker_choice(
    tmp_path: Path, kind: str, units: Units
) -> None:
    if kind == "docx":
        lines = [line for line in TIMESTAMPED.splitlines() if line]
        path = write_docx(tmp_path / "ortiz.docx", lines)
    else:
        path = write(tmp_path / f"ortiz.{kind}", TIMESTAMPED if kind == "txt" else MARKDOWN)
    transcript = read(path)
    header_end = first_label(transcript)
    assert TITLE in transcript.text[:header_end]
    # the header stays turns with no speaker, the first ones: shown as context, their places kept
    header = transcript.header()
    assert header == transcript.turns[: len(header)] and all(t.speaker is None for t in header)
    assert any(TITLE in transcript.text[t.start : t.end] for t in header)

    found = cut(transcript, units)
    assert found
    for unit in found:
        assert unit.text == transcript.text[unit.start : unit.end]
        assert unit.start >= header_end, (unit.start, unit.text[:60])
        assert TITLE not in unit.text and "Recorded 12 April" not in unit.text
    # and every word of the chosen speakers is still coded
    coded = coded_characters(found)
    for turn in transcript.spoken_turns():
        if units.speakers.codes(turn.speaker):
            words = [k for k in range(turn.text_start, turn.end) if not transcript.text[k].isspace()]
            assert words and set(words) <= coded, transcript.turn_text(turn)


@pytest.mark.parametrize("unit", ["turn", "chunk"])
def test_a_file_without_speaker_labels_is_still_coded_paragraph_by_paragraph(tmp_path: Path, unit: str) -> None:
    """A document's first paragraph (a title, often) is its text: nothing is taken for a header,
    in plain text, Word and PDF alike; nor in captions, where a cue with no voice is speech. And in
    the same run the header of a transcript with labels is no unit."""
    paragraphs = ["Observation notes, ninth-grade English PLC", "The coach began with the agenda.", "We trust her."]
    write(tmp_path / "in" / "notes.txt", "\n\n".join(paragraphs) + "\n")
    write_docx(tmp_path / "in" / "notes.docx", paragraphs)
    write_pdf(tmp_path / "in" / "plan.pdf", [paragraphs])
    write(
        tmp_path / "in" / "meeting.vtt",
        "WEBVTT\n\n00:00:01.000 --> 00:00:03.000\nWelcome, everyone, to the PLC.\n\n"
        "00:00:04.000 --> 00:00:06.000\n<v Ms. Chen>The district gave us a grant.\n",
    )
    write(tmp_path / "in" / "ortiz.txt", TIMESTAMPED)
    for path in sorted((tmp_path / "in").iterdir()):
        transcript = read(path)
        units = cut(transcript, Units(unit=unit, speakers=SpeakerChoice.of(skip_speakers="interviewer")))
        coded = " ".join(u.text for u in units)
        if path.name == "ortiz.txt":
            assert TITLE not in coded
            continue
        assert transcript.header() == []
        expected = ["Welcome, everyone, to the PLC.", "The district gave us a grant."]
        for words in expected if path.suffix == ".vtt" else paragraphs:
            assert words in coded, (path.name, words)


def test_the_run_stores_the_header_as_context_and_codes_none_of_it(tmp_path: Path) -> None:
    """The issue's run: `--unit turn --skip-speakers interviewer` over the timestamped example."""
    example = EXAMPLES / "transcripts" / "valley_cottonwood_teacher_leader_timestamped.txt"
    folder = write_transcripts(tmp_path / "in", {example.name: example.read_text(encoding="utf-8")})
    header = read(folder / example.name).header()
    title = example.read_text(encoding="utf-8").splitlines()[1]
    assert title.startswith("Interview with")
    scripted_coder("first-line", proposes="first-code", confidence=0.9)
    db = tmp_path / "run.db"
    summary = code_store(folder, LINKAGES, db, coder="first-line", unit="turn", skip_speakers=["interviewer"])
    assert summary.suggestions == summary.chunks > 0
    assert not [n for n in summary.notes if "speaker label" in n.note]  # a title and a date: nothing to note
    with sqlite3.connect(db) as con:
        units = con.execute('SELECT text, speakers FROM chunks ORDER BY "index"').fetchall()
        quotes = [q for (q,) in con.execute("SELECT quote FROM suggestions")]
        turns = con.execute('SELECT speaker, start, "end" FROM turns ORDER BY "index"').fetchall()
    assert all(title not in text for text, _ in units)
    assert all(json.loads(speakers) == ["Mr. Ortiz"] for _, speakers in units)
    assert all(title not in quote for quote in quotes)
    assert turns[: len(header)] == [(None, t.start, t.end) for t in header]


def test_a_long_header_is_noted_in_the_run_summary(tmp_path: Path) -> None:
    preamble = " ".join(["The interview began late because the room was double-booked."] * 10)
    text = f"{TITLE}\n\n{preamble}\n\nInterviewer: Your role?\nMr. Ortiz: I coach English.\n"
    folder = write_transcripts(tmp_path / "in", {"long.txt": text})
    scripted_coder("first-line", proposes="first-code", confidence=0.9)
    summary = code_store(folder, LINKAGES, tmp_path / "long.db", coder="first-line", unit="turn")
    [note] = [n for n in summary.notes if n.path.endswith("long.txt")]
    header = read(folder / "long.txt").header()
    assert f"the {header[-1].end - header[0].start:,} characters before the first speaker label" in note.note
    line = text.count("\n", 0, text.index("Interviewer:")) + 1
    assert f"(line {line}, Interviewer)" in note.note and "not coded" in note.note


# ---------------------------------------------------------------- the review app


def review_db(tmp_path: Path, unit: str = "turn", **settings: Any) -> tuple[Path, str]:
    queueing_coder()
    folder = write_transcripts(tmp_path / "in", {"ortiz.txt": TIMESTAMPED})
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "review.db"
    run = code_store(folder, codebook, db, coder="review-test", unit=unit, audit_share=0, **settings)
    assert run.suggestions > 0
    return db, run.run_id


def test_the_sign_in_page_of_a_database_without_accounts_gives_the_command_that_adds_one(tmp_path: Path) -> None:
    db, _ = review_db(tmp_path)
    client = signed_out(db)
    page = client.get("/login").text
    found = re.search(r'<pre class="command" id="first-account"><code>(.*?)</code></pre>', page)
    assert found, page
    command = shlex.split(html.unescape(found.group(1)))
    assert command[:3] == ["qcode", "reviewer", "add"] and command[command.index("--db") + 1] == str(db)
    # the command as the page gives it works: it adds a lead to this database, who signs in here
    answer = qcode(*[("lena" if word == "NAME" else word) for word in command[1:]], "--json")
    assert answer.exit_code == 0, answer.stderr
    added = json.loads(answer.stdout)
    assert added["role"] == "lead"
    token = csrf_of(page)
    signed = client.post("/login", data={"csrf_token": token, "name": "lena", "password": added["password"]})
    assert signed.status_code == 303 and client.get("/queue").status_code == 200
    # once there is an account, the page says no more than where accounts come from
    assert 'id="first-account"' not in signed_out(db).get("/login").text


def signed_out(db: Path) -> Any:
    from fastapi.testclient import TestClient

    return TestClient(create_app(str(db), secret_key=SECRET), follow_redirects=False)


def test_head_answers_as_get_does_and_every_page_names_its_icon(tmp_path: Path) -> None:
    db, run_id = review_db(tmp_path)
    passwords = make_reviewers(db, {"ana": "reviewer"}, run_id)
    client = signed_out(db)
    page = client.get("/login")
    head = client.head("/login")
    assert head.status_code == 200 == page.status_code
    assert head.headers["content-type"] == page.headers["content-type"]
    assert head.headers["content-security-policy"] == page.headers["content-security-policy"]
    # a page that needs a reviewer sends HEAD to the sign-in as it sends GET, back to where it was
    assert client.head("/queue").headers["location"] == client.get("/queue").headers["location"]
    # the icon every page names is there, served from this site (the policy's img-src 'self')
    ana = signed_in(create_app(str(db), secret_key=SECRET), "ana", passwords["ana"])
    for response in (page, ana.get("/queue"), ana.get("/no-such-page")):
        icon = re.search(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', response.text)
        assert icon, response.text[:400]
        assert icon.group(1).startswith("/") and "img-src 'self'" in response.headers["content-security-policy"]
        served = client.get(icon.group(1))
        assert served.status_code == 200 and served.headers["content-type"].startswith("image/svg+xml")
        assert served.text.startswith("<svg") and client.head(icon.group(1)).status_code == 200
    # and for whatever asks at the address browsers try by themselves
    assert client.get("/favicon.ico").headers["content-type"].startswith("image/svg+xml")


def item_pages(db: Path, run_id: str) -> dict[str, str]:
    """Each queued item's page, by the unit's text."""
    passwords = make_reviewers(db, {"ana": "reviewer"}, run_id)
    client = signed_in(create_app(str(db), secret_key=SECRET), "ana", passwords["ana"])
    with sqlite3.connect(db) as con:
        items = con.execute("SELECT s.id, c.text FROM suggestions s JOIN chunks c ON c.id = s.chunk_id").fetchall()
    return {text: client.get(f"/items/{item}").text for item, text in items}


def shown(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def test_the_item_page_says_whose_turn_a_unit_is(tmp_path: Path) -> None:
    db, run_id = review_db(tmp_path, skip_speakers=["interviewer"], max_unit_chars=80)
    with sqlite3.connect(db) as con:
        units = con.execute('SELECT text, speakers, part, parts FROM chunks ORDER BY "index"').fetchall()
    pages = item_pages(db, run_id)
    assert any(parts for *_, parts in units) and any(not parts for *_, parts in units)
    for text, speakers, part, parts in units:
        [speaker] = json.loads(speakers)
        line = re.search(r'<p class="unit-line" id="unit">(.*?)</p>', pages[text])
        assert line, pages[text][:400]
        what = f"part {part} of {parts} of a turn" if parts else "one turn"
        assert shown(line.group(1)) == f"A unit of {what}: {speaker}’s"


def test_timestamped_neighbouring_turns_show_the_speakers_name_and_the_time(tmp_path: Path) -> None:
    db, run_id = review_db(tmp_path, skip_speakers=["interviewer"])
    labelled = re.compile(r"^\[(?P<time>[\d:]+)\] (?P<name>[^:]+): (?P<words>.*)$")
    lines = [m for line in TIMESTAMPED.splitlines() if (m := labelled.match(line))]
    pages = item_pages(db, run_id)
    assert len(pages) == 2
    seen = set()
    for page in pages.values():
        for context in re.findall(r'<p class="context">(.*?)</p>', page, re.S):
            said = shown(context)
            if said.startswith(TITLE):  # the header, shown as it is written before the first unit
                continue
            assert not said.startswith("["), said  # not "[00:02:32] Interviewer: ..." as written
            match = next((m for m in lines if said == f"{m['time']} {m['name']}: {m['words']}"), None)
            assert match, said
            assert f'<strong class="speaker">{match["name"]}:</strong>' in context
            seen.add(match["time"])
    assert len(seen) >= 3


def test_a_chunks_timestamped_labels_show_the_name_and_keep_the_text_as_written(tmp_path: Path) -> None:
    db, run_id = review_db(tmp_path, unit="chunk", chunk_size=150)
    for text, page in item_pages(db, run_id).items():
        passage = re.search(r'<div id="passage"[^>]*>(.*?)</div>', page, re.S)
        assert passage and shown(passage.group(1)) == " ".join(text.split())  # every character kept
        stamps = re.findall(r'<span class="seg stamp" data-start="\d+">\[([\d:]+)\]</span>', passage.group(1))
        assert stamps == re.findall(r"^\[([\d:]+)\]", text, re.M)
        assert len(re.findall(r'<span class="seg speaker"', passage.group(1))) >= 2 * len(stamps)


# ---------------------------------------------------------------- in a browser


def browser_or_skip() -> Any:
    if not Path(CHROMIUM).exists():
        pytest.skip("no browser: install Debian's chromium package or set QCODE_TEST_CHROMIUM")
    return pytest.importorskip("playwright.sync_api")


def test_the_decision_keeps_to_a_tenth_of_the_window_and_no_page_logs_an_error(tmp_path: Path) -> None:
    sync_api = browser_or_skip()
    long_turn = " ".join(f"We went through line {n} of the budget." for n in range(300))
    queueing_coder()
    folder = write_transcripts(tmp_path / "in", {"long.txt": f"Teacher: {long_turn}\nPrincipal: The grant came.\n"})
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "long.db"
    run = code_store(folder, codebook, db, coder="review-test", unit="turn", audit_share=0)
    passwords = make_reviewers(db, {"ana": "reviewer"}, run.run_id)
    with ReviewServer(db) as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        measured = {}
        for height in (1000, 600):
            context = browser.new_context(base_url=server.url, viewport={"width": 1280, "height": height})
            page = context.new_page()
            errors: list[str] = []
            page.on(
                "console",
                lambda message, errors=errors: errors.append(message.text) if message.type == "error" else None,
            )
            page.goto("/next")
            page.wait_for_load_state("load")
            fill_sign_in(page, "ana", passwords["ana"])
            page.wait_for_url(re.compile(r"/items/[0-9a-f]{16}"))
            page.wait_for_load_state("load")
            page.mouse.wheel(0, 20_000)
            page.wait_for_timeout(200)
            box = page.locator("#decision").bounding_box()
            assert box is not None
            measured[height] = (
                box["y"],
                box["height"],
                page.locator("#decision").evaluate("e => getComputedStyle(e).position"),
            )
            assert not errors, errors  # no icon missing, nothing refused by the page's policy
            context.close()
        browser.close()
    top, tall, position = measured[1000]
    assert position == "sticky" and tall <= 0.15 * 1000 and top + tall <= 1000  # in view, at the foot
    assert measured[600][2] == "static"  # a short window is not held under it


# ---------------------------------------------------------------- the command line's words


def test_the_run_summary_names_turn_units_that_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    coder = scripted_coder("failing", proposes="first-code")
    coder.failures = [RuntimeError("the model is down")]
    folder = write_transcripts(tmp_path / "in", {"a.txt": "Ms. Chen: We got a grant.\nMr. Ortiz: We did.\n"})
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    summary = code_store(folder, codebook, tmp_path / "t.db", coder="failing", unit="turn", batch_size=8)
    assert summary.failed_chunks == summary.chunks == 2
    screen = Console(width=200, color_system=None, record=True)
    monkeypatch.setattr(pipeline.cli.run, "out", screen)
    pipeline.cli.run._show_summary(summary)
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in screen.export_text().splitlines()
        if line.count("│") == 3
    }
    assert rows["turn units"].startswith(f"{summary.chunks} ") and rows["failed turn units"] == str(
        summary.failed_chunks
    )
    assert "failed chunks" not in rows


def test_the_triangulation_says_it_counts_pairs_of_codes_and_cases(tmp_path: Path) -> None:
    scripted_coder(
        "two-codes",
        proposes="phrases",
        phrases={"grant": [("funding", 0.9, "a grant")], "trust her": [("trust", 0.9, "trust her")]},
    )
    folder = write_transcripts(
        tmp_path / "study",
        {
            "a.txt": "Interviewer: Money?\nMs. Chen: We got a grant, and I trust her.\n",
            "b.txt": "Interviewer: Money?\nMr. Ortiz: We got a grant, and I trust her.\n",
            "c.txt": "Interviewer: Money?\nDr. Okafor: We got a grant.\n",
        },
    )
    write(folder / "manifest.csv", "file,district\na.txt,A\nb.txt,B\nc.txt,C\n")
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    code_store(folder, codebook, tmp_path / "s.db", coder="two-codes", audit_share=0, unit="turn")
    out = tmp_path / "t.csv"
    answer = qcode("matrix", "--triangulate", "--by", "district", "--db", tmp_path / "s.db", "--out", out)
    assert answer.exit_code == 0, answer.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    pairs, codes = len(rows), len({r["code"] for r in rows})
    assert pairs > codes
    assert f"{pairs} code-by-district pairs of {codes} codes in 3 district case(s)" in " ".join(answer.stderr.split())


CLOCK_MS = 531.1698754062509  # a duration as a clock gives it


class TimedCoder(ScriptedCoder):
    def code(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        return [
            ChunkCoding(chunk_id=c.chunk_id, proposals=c.proposals, duration_ms=CLOCK_MS)
            for c in super().code(chunks, codebook)
        ]


def test_durations_are_kept_and_exported_to_a_tenth_of_a_millisecond(tmp_path: Path) -> None:
    plan = scripted_coder("timed", proposes="first-code", confidence=0.9).plan
    register_coder("timed", type("Timed", (TimedCoder,), {"name": "timed", "plan": plan, "__module__": __name__}))
    folder = write_transcripts(tmp_path / "in", {"a.txt": "Ms. Chen: We got a grant.\n"})
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "t.db"
    code_store(folder, codebook, db, coder="timed")
    with sqlite3.connect(db) as con:
        stored = [
            d
            for (d,) in con.execute(
                "SELECT duration_ms FROM chunk_codings UNION ALL SELECT duration_ms FROM suggestions"
            )
        ]
    assert stored and set(stored) == {round(CLOCK_MS, 1)}
    out = tmp_path / "s.jsonl"
    assert qcode("export", "--format", "jsonl", "--db", db, "--out", out).exit_code == 0
    exported = [json.loads(line)["duration_ms"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert exported and set(exported) == {round(CLOCK_MS, 1)}


# ---------------------------------------------------------------- a learned run that cannot code


def test_a_learned_run_that_cannot_code_leaves_no_database(tmp_path: Path) -> None:
    folder = write_transcripts(tmp_path / "in", {"a.txt": "Ms. Chen: We got a grant.\n"})
    db = tmp_path / "new.db"
    answer = qcode("run", folder, "--codebook", LINKAGES, "--coder", "learned", "--db", db)
    assert answer.exit_code == 1 and "no learned model" in answer.stderr
    # the coder says so before a run opens (and so makes) the database
    with pytest.raises(CoderError, match=r"no learned model .*`qcode train --codebook"):
        LearnedCoder().check_store(str(db), load_codebook(LINKAGES), str(LINKAGES))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_the_run_as_a_function_leaves_no_database_when_the_learned_coder_cannot_code(tmp_path: Path) -> None:
    folder = write_transcripts(tmp_path / "in", {"a.txt": "Ms. Chen: We got a grant.\n"})
    db = tmp_path / "new.db"
    request = RunRequest(paths=[str(folder)], codebook=str(LINKAGES), coder="learned", db=str(db))
    with pytest.raises(CoderError, match="no learned model"):
        code_corpus(request)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
