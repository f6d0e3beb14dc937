"""A reviewer's day in the review app, in a real browser (Debian's Chromium through Playwright), as
docs/review.md tells it: a lead draws a blind sample; a reviewer sees it from the queue, codes it
blind while nothing of the model's on those passages reaches her, then reviews the model's
suggestions from the keyboard and settles a rejected proposal. axe-core checks each page on the way.

The pictures in docs/review/ are taken here: with QCODE_GOLDEN=write they are written there, and
otherwise into a temporary folder (so a change that breaks a page breaks the pictures' test too).
The study is a bundled example, the interview with Ms. Chen (markdown, speaker labels in bold),
coded under the linkages codebook by the scripted coder with the proposals below.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import EXAMPLES, LINKAGES, ROOT, code_store, scripted_coder, write_transcripts
from fakes.browser import (
    CHROMIUM,
    LAUNCH_ARGS,
    TIMEOUT_MS,
    VIEWPORT,
    fill_sign_in,
    require_chromium,
    serious_violations,
)
from fakes.review_server import ReviewServer, make_reviewers
from sqlalchemy import select

from pipeline.store import (
    AssignmentRecord,
    DecisionRecord,
    RejectionRecord,
    ReviewerRecord,
    Store,
    SuggestionRecord,
    TranscriptRecord,
)

sync_api = require_chromium()
expect = sync_api.expect

pytestmark = pytest.mark.slow

INTERVIEW = "harbor_seacliff_teacher_leader.md"
DOCS = ROOT / "docs" / "review.md"
PICTURES = ROOT / "docs" / "review"
# phrase found in a passage -> what the model proposes there: (code, confidence, quote, justification)
PROPOSALS: dict[str, list[tuple[str, float, str, str]]] = {
    "Dr. Ramos asked us to redesign it": [
        (
            "relational.strength",
            0.62,
            "Instead of defending the calendar, Dr. Ramos asked us to redesign it, and she paid for two summer "
            "days to do it.",
            "The district leader answers the teachers' pushback by handing them the redesign and paying for "
            "their time: trust that runs both ways between the council and the district office.",
        ),
        (
            "structural.strength",
            0.93,
            "We draft things, the district staff react, and we take the drafts back to our departments for "
            "feedback before anything is final.",
            "A standing routine through which drafts move between the council, the district staff and the departments.",
        ),
    ],
    "if Dr. Ramos left tomorrow": [
        (
            "structural.weakness",
            0.48,
            "if Dr. Ramos left tomorrow I am not sure the structure alone would keep it collaborative",
            "The collaboration rests on one person rather than on the structure of the council.",
        )
    ],
    "There is a real tension in being in between": [
        (
            "boundary-spanning.weakness",
            0.41,
            "There is a real tension in being in between.",
            "Ms. Chen describes the strain of standing between her department and the district office.",
        ),
        (
            "relational.weakness",
            0.7,
            "some teachers think she has joined the district's side",
            "Colleagues distrust the teacher leader as an agent of the district.",
        ),
    ],
    "What is missing is time": [
        (
            "resource.weakness",
            0.52,
            "What is missing is time. One period is not enough to do peer observations, plan department "
            "meetings, and answer district requests, so a lot of it happens at night.",
            "The release period does not cover the work the role asks for.",
        ),
        (
            "resource",
            0.66,
            "The release period and the stipend, plus a coaching cycle with a district literacy coach",
            "The district gives the teacher leader time, money and coaching.",
        ),
    ],
    "trade lessons regularly": [
        (
            "boundary-spanning.strength",
            0.58,
            "I now trade lessons regularly with the English lead at Port Avenue, and we have done two cross-site "
            "observations.",
            "Teacher leaders of two schools share lessons and observe each other's classes.",
        )
    ],
}
REVIEWERS = {"lena": "lead", "rita": "reviewer", "omar": "reviewer"}


class Pictures:
    """The pictures the walk takes, by name, into docs/review/ (QCODE_GOLDEN=write) or a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.taken: list[str] = []

    def take(self, page: Any, name: str, middle: str | None = None, height: int | None = None) -> None:
        """The window as it is, from the top of the page or with the element `middle` selects in its
        middle; only its first `height` pixels when the rest is empty."""
        page.evaluate(
            "window.getSelection().removeAllRanges(); document.activeElement && document.activeElement.blur();"
            " window.scrollTo(0, 0)"
        )
        if middle:
            page.locator(middle).first.evaluate("e => e.scrollIntoView({block: 'center'})")
        clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height} if height else None
        page.screenshot(path=self.folder / f"{name}.png", clip=clip)
        self.taken.append(f"{name}.png")


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ReviewServer, Store, dict[str, str], str]]:
    folder = tmp_path_factory.mktemp("walk")
    scripted_coder("walk-coder", "scripted-1", "walk-v1", proposes="phrases", phrases=PROPOSALS)
    source = write_transcripts(
        folder / "in", {INTERVIEW: (EXAMPLES / "transcripts" / INTERVIEW).read_text(encoding="utf-8")}
    )
    db = folder / "walk.db"
    run = code_store(source, LINKAGES, db, coder="walk-coder", name="Harbor pilot, week 1", audit_share=0.5, seed=2)
    passwords = make_reviewers(db, REVIEWERS, run.run_id)
    store = Store(str(db))
    with ReviewServer(db) as server:
        yield server, store, passwords, run.run_id
    store.engine.dispose()


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> Pictures:
    if os.environ.get("QCODE_GOLDEN") == "write":
        shutil.rmtree(PICTURES, ignore_errors=True)
        PICTURES.mkdir(parents=True)
        return Pictures(PICTURES)
    return Pictures(tmp_path_factory.mktemp("pictures"))


def signed_in(browser: Any, server: ReviewServer, name: str, password: str, path: str) -> Any:
    context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path)
    fill_sign_in(page, name, password)
    expect(page).to_have_url(server.url + path)
    page.script_errors = errors
    return page


def select_words(page: Any, words: str) -> None:
    """Choose these words of a freshly opened page's passage as the quote, from the keyboard alone:
    "p", the right arrow to the first word, Shift with the right arrow to the last, then "s"."""
    # the passage's words as the page counts them: the markdown around a speaker's name is blank
    text = page.evaluate(
        "Array.from(document.querySelectorAll('#passage .seg')).map(s => s.classList.contains('markup')"
        " ? ' '.repeat(s.textContent.length) : s.textContent).join('')"
    )
    passage, wanted = text.split(), words.split()
    first = next(i for i in range(len(passage)) if passage[i : i + len(wanted)] == wanted)
    page.keyboard.press("p")
    for _ in range(first + 1):
        page.keyboard.press("ArrowRight")
    for _ in range(len(wanted) - 1):
        page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("s")


def quoted(page: Any, store: Store) -> str:
    """The transcript's text between the offsets the item's form would send as the quote."""
    with store.session() as s:
        text = s.scalars(select(TranscriptRecord.text)).one()
    start, end = (int(page.locator(f"#decide input[name={n}]").input_value()) for n in ("quote_start", "quote_end"))
    return text[start:end]


def blind_passages(store: Store, name: str) -> set[str]:
    with store.session() as s:
        return set(
            s.scalars(
                select(AssignmentRecord.chunk_id)
                .join(ReviewerRecord, ReviewerRecord.id == AssignmentRecord.reviewer_id)
                .where(ReviewerRecord.name == name)
            )
        )


def test_a_reviewers_day(study: tuple[ReviewServer, Store, dict[str, str], str], pictures: Pictures) -> None:
    server, store, passwords, run_id = study
    with store.session() as s:
        rejections = {r.id: r.chunk_id for r in s.scalars(select(RejectionRecord))}
        on_passage = {sug.id: sug.chunk_id for sug in s.scalars(select(SuggestionRecord))}
    assert len(rejections) == 2  # a quote nobody said, and a category where a code belongs

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        found: dict[str, Any] = {}

        # the lead draws three passages for rita and omar to code blind
        lead = signed_in(browser, server, "lena", passwords["lena"], "/lead")
        lead.locator("input[name=size]").fill("3")
        lead.locator("input[name=seed]").fill("7")
        for name in ("rita", "omar"):
            lead.locator(f"input[name=reviewer][value={name}]").check()
        with lead.expect_navigation():
            lead.get_by_role("button", name="Assign").click()
        expect(lead.locator(".flash").first).to_contain_text("3 passage(s) assigned to each reviewer")
        expect(lead.locator("tbody tr").first).to_contain_text("Harbor pilot, week 1")
        found["lead"] = serious_violations(lead)
        pictures.take(lead, "lead")

        blind = blind_passages(store, "rita")
        hidden = [r for r, chunk in rejections.items() if chunk in blind]
        assert hidden, "the seed must draw a passage with a rejected proposal"

        # rita's queue says what she has to code blind
        rita = signed_in(browser, server, "rita", passwords["rita"], "/queue")
        expect(rita.locator("#blind-waiting")).to_have_text("You have 3 passages to code blind: code them.")
        expect(rita.locator("#filters select[name=run] option").nth(1)).to_contain_text(
            "Harbor pilot, week 1 · District–teacher leader linkages · walk-coder"
        )
        found["queue"] = serious_violations(rita)
        pictures.take(rita, "queue")
        # nothing of the model's on her blind passages: not in the queue, not among the rejected proposals,
        # not at their addresses; and no decision of her own there
        listed = set(re.findall(r"/items/([0-9a-f]{16})", rita.content()))
        assert listed and not {on_passage[s] for s in listed} & blind
        rita.goto("/rejections")
        links = set(map(int, re.findall(r'href="/rejections/(\d+)"', rita.content())))
        assert links == set(rejections) - set(hidden)
        for rejection in hidden:
            assert rita.goto(f"/rejections/{rejection}").status == 404
        for suggestion, chunk in on_passage.items():
            if chunk in blind:
                assert rita.goto(f"/items/{suggestion}").status == 404
        rita.goto("/queue")
        token = rita.locator("input[name=csrf_token]").first.get_attribute("value")
        added = rita.request.post(
            f"/chunks/{next(iter(blind))}/add",
            form={"csrf_token": token, "code": "relational.strength", "codebook_version": "x"},
            max_redirects=0,
        )
        assert added.status == 409 and "code it under Blind coding first" in added.text()

        # she codes her three passages blind: the codes' criteria on the page, a key for every code
        with rita.expect_navigation():
            rita.locator("#blind-waiting a").click()
        expect(rita.locator("#blind-counts")).to_have_text("3 to code · 0 done")
        expect(rita.locator("#assignments li a").first).to_contain_text(f"{INTERVIEW}, passage ")
        found["blind list"] = serious_violations(rita)
        pictures.take(rita, "blind-list", height=340)
        with rita.expect_navigation():
            rita.locator("#assignments a").first.click()
        codes = rita.locator("input[name=code]")
        expect(codes).to_have_count(12)
        assert rita.locator(".code-choice .criteria").count() >= 12
        assert rita.locator("#justification, #quote, #quote-mark, #confidence").count() == 0
        expect(rita.locator("#passage .seg.speaker").first).to_be_visible()
        rita.keyboard.press("3")
        expect(codes.nth(2)).to_be_checked()
        found["blind item"] = serious_violations(rita)
        pictures.take(rita, "blind-item", middle="fieldset legend")
        for _ in range(3):
            with rita.expect_navigation():
                rita.keyboard.press("d")
        expect(rita).to_have_url(server.url + "/blind")
        expect(rita.locator("#blind-counts")).to_have_text("0 to code · 3 done")
        expect(rita.locator("#blind-waiting")).to_have_count(0)

        # coded: the model's proposals on those passages are hers to see now
        rita.goto("/rejections")
        assert set(map(int, re.findall(r'href="/rejections/(\d+)"', rita.content()))) == set(rejections)
        found["rejections"] = serious_violations(rita)

        # the queue, item by item: the passage with its speakers' names, the model's quote marked
        rita.goto("/queue")
        with rita.expect_navigation():
            rita.keyboard.press("n")
        expect(rita).to_have_url(re.compile(r"/items/[0-9a-f]{16}"))
        passage = rita.locator("#passage")
        assert "**" not in passage.inner_text()
        expect(passage.locator(".seg.speaker").first).to_have_css("font-weight", "600")
        found["item"] = serious_violations(rita)
        # the quote corrected from the keyboard: "p" for the passage, the arrows for words, then "s";
        # across a label the quote is the transcript's text, shown as the passage shows it
        select_words(rita, "Ms. Chen: There")
        expect(rita.locator("#quote-preview")).to_have_text("Ms. Chen: There")
        assert quoted(rita, store) == "Ms. Chen:** There"
        rita.reload()
        corrected = "There is a real tension in being in between. Teachers want to know that I am still one of them,"
        select_words(rita, corrected)
        expect(rita.locator("#quote-preview")).to_have_text(corrected)
        assert quoted(rita, store) == corrected
        pictures.take(rita, "item")
        with rita.expect_navigation():
            rita.keyboard.press("a")
        expect(rita.locator(".flash").first).to_have_text("Recorded: accept.")

        # a rejected proposal: the model's code and quote, why it failed, and the right code added
        rita.goto("/rejections")
        with rita.expect_navigation():
            rita.locator("a[href^='/rejections/']").first.click()
        expect(rita.locator("#rejected-reason")).not_to_be_empty()
        found["rejection"] = serious_violations(rita)
        pictures.take(rita, "rejection")
        select_words(rita, "a few people assume I am there to check up on them.")
        rita.keyboard.press("c")
        rita.keyboard.type("relational.weakness")
        with rita.expect_navigation():
            rita.keyboard.press("Enter")
        expect(rita.locator(".flash").first).to_have_text("Recorded: added 'relational.weakness'.")

        errors = lead.script_errors + rita.script_errors
        browser.close()

    assert not any(found.values()), found
    assert not errors, errors
    # what rita decided, with the quotes she chose from the keyboard
    with store.session() as s:
        text = s.scalars(select(TranscriptRecord.text)).one()
        decided = s.execute(
            select(
                DecisionRecord.verdict, DecisionRecord.final_code, DecisionRecord.quote_start, DecisionRecord.quote_end
            )
            .where(DecisionRecord.reviewer == "rita")
            .order_by(DecisionRecord.id)
        ).all()
    assert [(verdict, code, text[start:end]) for verdict, code, start, end in decided] == [
        ("accept", "boundary-spanning.weakness", corrected),
        ("add", "relational.weakness", "a few people assume I am there to check up on them."),
    ]
    # docs/review.md shows every picture the walk takes, and only those
    shown = re.findall(r"\]\(review/([\w-]+\.png)\)", DOCS.read_text(encoding="utf-8"))
    assert sorted(shown) == sorted(pictures.taken)
    assert all((PICTURES / name).is_file() for name in shown)


def test_the_queue_pages_through_a_long_list(tmp_path: Path) -> None:
    scripted_coder("walk-marks", proposes="marks")
    lines = [f"Ms. Chen: Money came late in week {n}. [resource.weakness 0.3]" for n in range(130)]
    db = tmp_path / "long.db"
    run = code_store(
        write_transcripts(tmp_path / "in", {"weeks.txt": "\n".join(lines) + "\n"}),
        LINKAGES,
        db,
        coder="walk-marks",
        unit="turn",
        audit_share=0,
    )
    passwords = make_reviewers(db, {"rita": "reviewer"}, run.run_id)
    with ReviewServer(db) as server, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = signed_in(browser, server, "rita", passwords["rita"], "/queue")
        expect(page.locator("#counts")).to_contain_text("130 waiting")
        expect(page.locator("table.items tbody tr")).to_have_count(100)
        expect(page.locator("#pages")).to_contain_text("Rows 1–100 of 130")
        with page.expect_navigation():
            page.get_by_role("link", name="next 100").click()
        expect(page.locator("table.items tbody tr")).to_have_count(30)
        expect(page.locator("#pages")).to_contain_text("Rows 101–130 of 130")
        expect(page.get_by_role("link", name="previous 100")).to_be_visible()
        browser.close()
