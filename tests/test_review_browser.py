"""The review app end to end in a real browser: Debian's Chromium driven by Playwright (see
fakes/browser.py: no browser is ever downloaded).

One database, one server and one browser serve the whole module. Each test works on
its own transcript(s) and opens items with a `transcript=` filter, so the item that
follows a decision is never one another test needs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fakes import SMALL_CODEBOOK, code_store, write, write_pdf
from fakes.browser import (
    CHROMIUM,
    LAUNCH_ARGS,
    TIMEOUT_MS,
    VIEWPORT,
    fill_sign_in,
    require_chromium,
    serious_violations,
)
from fakes.review_server import ReviewServer, make_review_db, make_reviewers, queueing_coder
from sqlalchemy import select

from pipeline.store import (
    AssignmentRecord,
    ChunkRecord,
    DecisionRecord,
    ReviewerRecord,
    Store,
    SuggestionRecord,
    TranscriptRecord,
)

sync_api = require_chromium()
expect = sync_api.expect

pytestmark = pytest.mark.slow

# a turn a little over half the chunk size, so each one is a chunk of its own
FILLER = " We went through the numbers line by line." * 14
XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '<img src=x onerror="window.__xss=2">'
TRANSCRIPTS = {
    # three passages for the keyboard walk
    "keys.txt": "\n".join(
        f"Teacher: Passage {n} is about the district budget.{FILLER}" for n in ("one", "two", "three")
    ),
    # characters outside the BMP both in the marked quote and just before the words selected
    "emoji.txt": "Teacher: We celebrated 🎉 last spring.\nPrincipal: 🙌 Then the grant money finally arrived.\n",
    "conflict.txt": "Teacher: Two of us opened this passage at the same time.\n",
    "xss.txt": f"Teacher: {XSS_SCRIPT} and {XSS_IMG} were typed into the notes.\n",
    "missed.txt": "Teacher: We trust each other, and the grant paid for substitutes.\n",
    "blind.txt": "Teacher: Our principal found money for release time.\n",
    "last.txt": "Teacher: The last passage waiting with this filter.\n",
}
# cai and dee open nothing before they code blind: a passage seen with the model's codes is never drawn
REVIEWERS = {"ana": "reviewer", "ben": "reviewer", "cai": "reviewer", "dee": "reviewer", "lea": "lead"}


@dataclass
class Site:
    url: str
    db: Path
    store: Store
    run_id: str
    passwords: dict[str, str]
    # transcript name -> its suggestions' ids, in passage order
    items: dict[str, list[str]] = field(default_factory=dict)

    def decisions(self, **where: Any) -> list[DecisionRecord]:
        with self.store.session() as s:
            query = select(DecisionRecord).order_by(DecisionRecord.id)
            for name, value in where.items():
                column = getattr(DecisionRecord, name)
                query = query.where(column.in_(value) if isinstance(value, (list, tuple, set)) else column == value)
            return list(s.scalars(query))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("review-browser")
    codebook = folder / "small.yaml"
    codebook.write_text(SMALL_CODEBOOK, encoding="utf-8")
    db = folder / "review.db"
    run_id = make_review_db(folder, TRANSCRIPTS, codebook, db)
    passwords = make_reviewers(db, REVIEWERS, run_id)
    store = Store(str(db))
    items: dict[str, list[str]] = {}
    with store.session() as s:
        rows = s.execute(
            select(TranscriptRecord.source_name, SuggestionRecord.id)
            .join(TranscriptRecord, TranscriptRecord.id == SuggestionRecord.transcript_id)
            .order_by(SuggestionRecord.quote_start)
        ).all()
    for name, suggestion_id in rows:
        items.setdefault(name, []).append(suggestion_id)
    assert {name: len(ids) for name, ids in items.items()} == {
        "keys.txt": 3,
        "emoji.txt": 1,
        "conflict.txt": 1,
        "xss.txt": 1,
        "missed.txt": 1,
        "blind.txt": 1,
        "last.txt": 1,
    }
    with ReviewServer(db) as server:
        yield Site(server.url, db, store, run_id, passwords, items)
    store.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def signed_in() -> dict[str, Any]:
    """Each reviewer's cookies once signed in, so later pages skip the form."""
    return {}


@pytest.fixture
def new_page(browser: Any, site: Site) -> Iterator[Callable[..., Any]]:
    """Pages in fresh browser contexts (cookies of their own, or `storage_state`'s).
    Script errors on any page fail the test."""
    contexts, errors = [], []

    def make(storage_state: Any = None) -> Any:
        context = browser.new_context(base_url=site.url, viewport=VIEWPORT, storage_state=storage_state)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"script errors in the page: {errors}"


@pytest.fixture
def sign_in(new_page: Callable[..., Any], site: Site, signed_in: dict[str, Any]) -> Callable[..., Any]:
    """A page signed in as `name` (through the login form the first time), left at `path`."""

    def go(name: str, path: str = "/queue") -> Any:
        page = new_page(signed_in.get(name))
        page.goto(path)
        if name not in signed_in:
            expect(page).to_have_url(re.compile(r"/login\?next="))
            fill_sign_in(page, name, site.passwords[name])
        expect(page.locator(".who")).to_have_text(f"{name} ({REVIEWERS[name]})")
        expect(page).to_have_url(site.url + path)
        signed_in.setdefault(name, page.context.storage_state())
        return page

    return go


def item_path(site: Site, transcript: str, index: int = 0) -> str:
    return f"/items/{site.items[transcript][index]}?transcript={transcript}"


def press_and_wait(page: Any, key: str) -> None:
    """Press a key that submits a form or follows a link, and wait for the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press(key)


def test_sign_in_through_the_form_and_a_wrong_password_is_refused(new_page: Callable[[], Any], site: Site) -> None:
    page = new_page()
    page.goto("/queue")
    # not signed in: the queue sends the browser to the form, remembering where it was going
    expect(page).to_have_url(site.url + "/login?next=%2Fqueue")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    page.locator("input[name=name]").fill("ana")
    page.locator("input[name=password]").fill(site.passwords["ana"] + "-wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Unknown name or wrong password.")
    expect(page.locator("input[name=name]")).to_have_value("ana")
    expect(page.locator(".who")).to_have_count(0)
    page.goto("/queue")
    expect(page).to_have_url(re.compile(r"/login\?next="))

    page.locator("input[name=name]").fill("ana")
    page.locator("input[name=password]").fill(site.passwords["ana"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(site.url + "/queue")
    expect(page.locator(".who")).to_have_text("ana (reviewer)")
    expect(page.get_by_role("heading", name="Review queue")).to_be_visible()
    expect(page.locator("#next")).to_be_visible()


def test_review_three_items_with_the_keyboard_only(sign_in: Callable[..., Any], site: Site) -> None:
    page = sign_in("ana", "/queue?transcript=keys.txt")
    expect(page.locator("#counts strong").first).to_have_text("3")
    seen: list[str] = []

    def current_item() -> str:
        expect(page).to_have_url(re.compile(r"/items/[0-9a-f]{16}\?"))
        match = re.search(r"/items/([0-9a-f]{16})\?", page.url)
        assert match
        seen.append(match.group(1))
        expect(page.locator("#accept")).to_be_visible()
        return match.group(1)

    # n: the next item in the queue
    press_and_wait(page, "n")
    first = current_item()

    # a: accept; the next item loads
    press_and_wait(page, "a")
    second = current_item()
    assert second != first
    expect(page.locator(".flash").first).to_have_text("Recorded: accept.")

    # r focuses the reason (the r itself is not typed into it); Enter rejects
    page.keyboard.press("r")
    expect(page.locator("#reason")).to_be_focused()
    page.keyboard.type("Talks about a budget, not about funding")
    expect(page.locator("#reason")).to_have_value("Talks about a budget, not about funding")
    press_and_wait(page, "Enter")
    third = current_item()
    assert third not in (first, second)
    expect(page.locator(".flash").first).to_have_text("Recorded: reject.")

    # c focuses the code field; a code outside the codebook is refused and nothing is stored
    page.keyboard.press("c")
    expect(page.locator("#change-code")).to_be_focused()
    page.keyboard.type("nonsense")
    press_and_wait(page, "Enter")
    expect(page.locator("#error")).to_contain_text("'nonsense' is not an applicable code")
    assert site.decisions(suggestion_id=third) == []
    # what was typed is kept, for the reviewer to correct; then a real one
    page.keyboard.press("c")
    expect(page.locator("#change-code")).to_be_focused()
    expect(page.locator("#change-code")).to_have_value("nonsense")
    page.keyboard.press("Control+A")
    page.keyboard.type("trust")
    press_and_wait(page, "Enter")
    # nothing is left in this transcript: back to the queue
    expect(page).to_have_url(re.compile(r"/queue\?"))
    expect(page.locator(".flash").first).to_have_text("Recorded: change.")
    expect(page.locator("#counts strong").first).to_have_text("0")

    assert sorted(seen[:3]) == sorted(site.items["keys.txt"])
    stored = site.decisions(suggestion_id=site.items["keys.txt"])
    assert [(d.suggestion_id, d.reviewer, d.verdict, d.final_code, d.reason) for d in stored] == [
        (first, "ana", "accept", "funding", None),
        (second, "ana", "reject", None, "Talks about a budget, not about funding"),
        (third, "ana", "change", "trust", None),
    ]
    with site.store.session() as s:
        suggestions = {
            sug.id: sug
            for sug in s.scalars(select(SuggestionRecord).where(SuggestionRecord.id.in_(site.items["keys.txt"])))
        }
    # accept and change keep the model's quote; a rejection records none
    for d in stored:
        sug = suggestions[d.suggestion_id]
        assert sug.decided_by == "ana" and sug.version == 2
        expected = (None, None) if d.verdict == "reject" else (sug.quote_start, sug.quote_end)
        assert (d.quote_start, d.quote_end) == expected


def test_correct_the_quote_by_selecting_words_with_the_mouse(sign_in: Callable[..., Any], site: Site) -> None:
    page = sign_in("ana", item_path(site, "emoji.txt"))
    words = "grant money"
    # the model's quote (the first line) is marked; the words to select come after it
    expect(page.locator("#passage mark")).to_have_text("Teacher: We celebrated 🎉 last spring.")
    expect(page.locator("#passage")).to_contain_text(words)
    with site.store.session() as s:
        text = s.scalar(select(TranscriptRecord.text).where(TranscriptRecord.source_name == "emoji.txt"))
    quote_inputs = page.locator("#decide input[name=quote_start], #decide input[name=quote_end]")

    # a triple click on the last line selects past the passage's end, and takes the line break
    # along: s keeps the part inside the passage, without white space at its edges
    last_line = "Principal: 🙌 Then the grant money finally arrived."
    page.locator("#passage .seg").last.click(click_count=3)
    page.keyboard.press("s")
    expect(page.locator("#quote-preview")).to_have_text(last_line)
    start = text.index(last_line)
    assert [quote_inputs.nth(i).input_value() for i in (0, 1)] == [str(start), str(start + len(last_line))]
    # a selection outside the passage is refused, and changes nothing
    page.locator("#justification").click(click_count=3)
    page.keyboard.press("s")
    expect(page.locator("#js-flash")).to_have_text("The quote must lie inside the passage.")
    expect(page.locator("#quote-preview")).to_have_text(last_line)

    # drag the mouse from inside the first letter to inside the last one
    box = page.evaluate(
        """(words) => {
        for (const seg of document.querySelectorAll("#passage .seg")) {
            const node = seg.firstChild, at = node.data.indexOf(words);
            if (at < 0) continue;
            const range = document.createRange();
            range.setStart(node, at); range.setEnd(node, at + 1);
            const first = range.getBoundingClientRect();
            range.setStart(node, at + words.length - 1); range.setEnd(node, at + words.length);
            const last = range.getBoundingClientRect();
            return {x1: first.left + first.width * 0.2, y1: first.top + first.height / 2,
                    x2: last.right - last.width * 0.2, y2: last.top + last.height / 2};
        }
        return null;
    }""",
        words,
    )
    assert box is not None
    page.mouse.move(box["x1"], box["y1"])
    page.mouse.down()
    page.mouse.move(box["x2"], box["y2"], steps=8)
    page.mouse.up()
    assert page.evaluate("window.getSelection().toString()") == words

    # s takes the selection as the quote, a accepts with it
    page.keyboard.press("s")
    expect(page.locator("#quote-preview")).to_have_text(words)
    expect(page.locator("#js-flash")).to_have_count(0)
    expect(page.locator("#quote-preview")).to_have_class(re.compile(r"\bcorrected\b"))
    press_and_wait(page, "a")
    expect(page.locator(".flash").first).to_have_text("Recorded: accept.")

    [decision] = site.decisions(suggestion_id=site.items["emoji.txt"])
    assert (decision.reviewer, decision.verdict, decision.final_code) == ("ana", "accept", "funding")
    # offsets in code points, as Python counts: two emoji come before the words
    assert text[decision.quote_start : decision.quote_end] == words
    assert decision.quote_start == text.index(words)
    assert len(text[: decision.quote_start].encode("utf-16-le")) // 2 == decision.quote_start + 2


def test_after_the_last_decision_the_queue_says_so(sign_in: Callable[..., Any], site: Site) -> None:
    page = sign_in("ben", item_path(site, "last.txt"))
    press_and_wait(page, "a")
    expect(page).to_have_url(re.compile(r"/queue\?"))
    expect(page.locator(".flash").first).to_have_text("Recorded: accept.")
    # both messages: the decision recorded, and nothing left with these filters
    expect(page.locator(".flash")).to_have_text(
        ["Recorded: accept.", "Nothing left to review with these filters."], timeout=1000
    )


def test_a_second_reviewer_deciding_the_same_item_sees_the_conflict(sign_in: Callable[..., Any], site: Site) -> None:
    path = item_path(site, "conflict.txt")
    ana, ben = sign_in("ana", path), sign_in("ben", path)
    for page in (ana, ben):
        expect(page.locator("#accept")).to_be_visible()

    press_and_wait(ana, "a")
    expect(ana.locator(".flash").first).to_have_text("Recorded: accept.")

    press_and_wait(ben, "a")
    expect(ben.locator("#conflict")).to_contain_text("ana already decided this item (accept)")
    expect(ben.locator("#conflict")).to_contain_text("yours was not recorded")
    expect(ben.locator("#decided")).to_contain_text("Decided by ana")
    expect(ben.locator("#accept")).to_have_count(0)

    stored = site.decisions(suggestion_id=site.items["conflict.txt"])
    assert [(d.reviewer, d.verdict) for d in stored] == [("ana", "accept")]
    with site.store.session() as s:
        sug = s.get(SuggestionRecord, site.items["conflict.txt"][0])
        assert (sug.decided_by, sug.version) == ("ana", 2)


def test_markup_in_a_transcript_shows_as_text(sign_in: Callable[..., Any], site: Site) -> None:
    page = sign_in("ben", "/queue?transcript=xss.txt")
    # the queue shows the quote too
    expect(page.locator("td.quote")).to_contain_text(XSS_SCRIPT)
    assert page.locator("table.items img, table.items td script").count() == 0

    page.goto(item_path(site, "xss.txt"))
    for selector in ("#passage", "#quote", "#justification"):
        expect(page.locator(selector)).to_contain_text(XSS_SCRIPT)
        expect(page.locator(selector)).to_contain_text(XSS_IMG)
        assert page.locator(f"{selector} img, {selector} script").count() == 0, selector
    expect(page.locator("#justification")).to_contain_text("The passage says: Teacher: <script>")
    # the only script on the page is the app's own
    assert page.evaluate("[...document.scripts].map(s => new URL(s.src).pathname)") == ["/static/review.js"]
    assert page.locator("img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_add_a_code_the_model_missed(sign_in: Callable[..., Any], site: Site) -> None:
    path = item_path(site, "missed.txt")
    page = sign_in("ben", path)
    expect(page.locator("#decisions")).to_have_count(0)
    page.keyboard.press("m")
    expect(page.locator("#add-code")).to_be_focused()
    page.keyboard.type("trust")
    press_and_wait(page, "Enter")
    # back on the same item, with the added code listed under the passage's decisions
    expect(page).to_have_url(re.compile(re.escape(site.url + path) + "(&|$)"))
    expect(page.locator(".flash").first).to_have_text("Added 'trust' to this passage.")
    expect(page.locator("#decisions li")).to_have_count(1)
    expect(page.locator("#decisions li")).to_contain_text("· ben · add · trust")
    # the suggestion itself is still open
    expect(page.locator("#accept")).to_be_visible()

    with site.store.session() as s:
        sug = s.get(SuggestionRecord, site.items["missed.txt"][0])
        assert sug.decided_at is None
        chunk_id = sug.chunk_id
    stored = site.decisions(chunk_id=chunk_id)
    assert [(d.suggestion_id, d.reviewer, d.verdict, d.final_code) for d in stored] == [(None, "ben", "add", "trust")]


def test_blind_double_coding_with_the_keyboard(sign_in: Callable[..., Any], site: Site) -> None:
    lead = sign_in("lea", "/lead")
    lead.locator("input[name=size]").fill("2")
    lead.locator("input[name=seed]").fill("7")
    for name in ("cai", "dee"):
        lead.locator(f"input[name=reviewer][value={name}]").check()
    with lead.expect_navigation():
        lead.get_by_role("button", name="Assign").click()
    expect(lead.locator(".flash").first).to_contain_text("2 passage(s) assigned to each reviewer")
    expect(lead.locator("tbody tr").first).to_contain_text("cai: 0/2")

    page = sign_in("cai", "/blind")
    expect(page.locator("#assignments li")).to_have_count(2)
    with page.expect_navigation():
        page.locator("#assignments a").first.click()

    codes = page.locator("input[name=code]")
    expect(codes).to_have_count(2)
    # nothing of the model's: no suggested code, confidence, justification or quote
    assert page.locator("#code, #confidence, #justification, #quote, #quote-mark, mark").count() == 0
    assert "The passage says" not in page.content()
    # 1 and 2 tick the first two codes, d is done
    page.keyboard.press("1")
    page.keyboard.press("2")
    expect(codes.nth(0)).to_be_checked()
    expect(codes.nth(1)).to_be_checked()
    page.keyboard.press("2")
    expect(codes.nth(1)).not_to_be_checked()
    press_and_wait(page, "d")
    expect(page.locator(".flash").first).to_have_text("Codes recorded.")
    # the second passage: none of the codes applies
    expect(page.locator("#blind-submit")).to_be_visible()
    assert page.locator("#justification, #quote, mark").count() == 0
    press_and_wait(page, "d")
    expect(page).to_have_url(site.url + "/blind")
    expect(page.locator("#assignments li")).to_have_text([re.compile("coded: funding$"), re.compile("coded: none$")])

    with site.store.session() as s:
        cai_id = s.scalar(select(ReviewerRecord.id).where(ReviewerRecord.name == "cai"))
        rows = list(
            s.scalars(
                select(AssignmentRecord).where(AssignmentRecord.reviewer_id == cai_id).order_by(AssignmentRecord.id)
            )
        )
    # (which passage got which is what the list above shows, in its order)
    assert sorted((a.codes, a.coded_at is not None) for a in rows) == [([], True), (["funding"], True)]
    lead.reload()
    expect(lead.locator("tbody tr").first).to_contain_text("cai: 2/2")


def test_a_documents_passage_shows_its_page_and_that_it_is_one_turn(browser: Any, tmp_path: Path) -> None:
    """A PDF coded by turns: the item page says which page the paragraph is on."""
    write_pdf(
        tmp_path / "docs" / "plan.pdf",
        [["The district plan begins here."], ["The grant pays for release time, on the second page."]],
    )
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    queueing_coder()
    db = tmp_path / "docs.db"
    summary = code_store(tmp_path / "docs", codebook, db, coder="review-test", audit_share=0, unit="turn")
    passwords = make_reviewers(db, {"ana": "reviewer"}, summary.run_id)
    store = Store(str(db))
    with store.session() as s:
        (item,) = s.scalars(
            select(SuggestionRecord.id)
            .join(ChunkRecord, ChunkRecord.id == SuggestionRecord.chunk_id)
            .where(ChunkRecord.page_start == 2)
        ).all()
    store.engine.dispose()
    with ReviewServer(db) as server:
        context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.goto(f"/items/{item}")
        fill_sign_in(page, "ana", passwords["ana"])
        expect(page).to_have_url(server.url + f"/items/{item}")
        expect(page.locator(".passage-wrap h2")).to_have_text("plan.pdf p. 2")
        expect(page.locator(".passage-wrap .pages")).to_have_text("p. 2")
        expect(page.locator(".passage-wrap .unit")).to_have_text("one turn")
        expect(page.locator("#passage")).to_have_text("The grant pays for release time, on the second page.")
        context.close()


def test_every_page_has_no_serious_accessibility_violation(
    sign_in: Callable[..., Any], site: Site, new_page: Callable[..., Any]
) -> None:
    signed_out = new_page()
    signed_out.goto("/login")
    found = {"/login": serious_violations(signed_out)}
    lead = sign_in("lea", "/queue")
    for path in ["/queue", item_path(site, "missed.txt"), "/rejections", "/blind", "/lead", "/no-such-page"]:
        lead.goto(path)
        found[path] = serious_violations(lead)
    assert not any(found.values()), found


def test_the_decision_stays_in_view_beside_a_50_kb_neighbouring_turn(browser: Any, tmp_path: Path) -> None:
    queueing_coder()
    long_turn = " ".join(f"We went through line {n} of the budget." for n in range(1700))  # about 55 KB
    assert len(long_turn) > 50_000
    folder = tmp_path / "in"
    write(folder / "long.txt", f"Teacher: {long_turn}\nPrincipal: The grant finally arrived in May.\n")
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "long.db"
    run = code_store(folder, codebook, db, coder="review-test", unit="turn", speakers=["Principal"], audit_share=0)
    assert run.suggestions == 1
    passwords = make_reviewers(db, {"ana": "reviewer"}, run.run_id)
    with ReviewServer(db) as server:
        context = browser.new_context(base_url=server.url, viewport=VIEWPORT)
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.goto("/next")
        fill_sign_in(page, "ana", passwords["ana"])
        expect(page).to_have_url(re.compile(r"/items/[0-9a-f]{16}"))
        # the long turn shows its first lines, and the rest on demand
        neighbour = page.locator("details.context")
        expect(neighbour).to_have_count(1)
        expect(neighbour.locator("summary")).to_contain_text("show more (")
        expect(page.locator("#accept")).to_be_in_viewport()
        neighbour.locator("summary").click()
        expect(neighbour.locator("p.context")).to_contain_text("line 1699 of the budget")
        # opened in full, 55 KB of text: the decision is still in view, at the foot of the window
        expect(page.locator("#accept")).to_be_in_viewport()
        page.mouse.wheel(0, 20_000)
        expect(page.locator("#accept")).to_be_in_viewport()
        page.keyboard.press("a")
        expect(page).to_have_url(re.compile(r"/queue"))
        context.close()


def test_correct_the_quote_from_the_keyboard_only(sign_in: Callable[..., Any], site: Site) -> None:
    suggestion_id = site.items["missed.txt"][0]
    page = sign_in("ben", item_path(site, "missed.txt"))
    # "Teacher: We trust each other, and the grant paid for substitutes."
    page.keyboard.press("p")
    expect(page.locator("#passage")).to_be_focused()
    for _ in range(7):  # Teacher: · We · trust · each · other, · and · the
        page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowRight")  # ... grant
    page.keyboard.press("Shift+ArrowRight")  # ... paid
    page.keyboard.press("s")
    expect(page.locator("#quote-preview")).to_have_text("the grant paid")
    expect(page.locator("#quote-preview")).to_have_class(re.compile("corrected"))
    # shown in the passage at once
    assert page.evaluate("CSS.highlights.has('corrected-quote') && CSS.highlights.get('corrected-quote').size") == 1
    press_and_wait(page, "a")
    [decision] = site.decisions(suggestion_id=suggestion_id)
    with site.store.session() as s:
        suggestion = s.get(SuggestionRecord, suggestion_id)
        assert suggestion is not None
        text = s.get(TranscriptRecord, suggestion.transcript_id).text
    assert text[decision.quote_start : decision.quote_end] == "the grant paid"
