"""The learned coder's training set: every source of human codes, combined by majority."""

from __future__ import annotations

from pathlib import Path

from fakes import code_store, qcode, scripted_coder, write_project, write_transcripts
from fakes.review_server import make_reviewers
from sqlalchemy import select

from pipeline.chunk import Units
from pipeline.codebook import load_codebook
from pipeline.learn.examples import from_spans, from_store, majority
from pipeline.review.blind import assignments, create_sample, submit
from pipeline.review.decisions import DecisionRequest, add_code, decide
from pipeline.review.reviewers import Reviewer
from pipeline.store import ReviewerRecord, Store, SuggestionRecord
from pipeline.suggestion import HumanCode
from pipeline.transcript import SpeakerChoice, Transcript, parse_turns

INTERVIEW = (
    "Interviewer: How does the district support your planning?\n"
    "Ms. Chen: The district gave us a grant for release time. We plan on Fridays now.\n"
    "Interviewer: And the coach?\n"
    "Ms. Chen: The coach comes every week. I trust her with my hardest class.\n"
)
TURNS = Units(unit="turn", speakers=SpeakerChoice.of(skip_speakers="interviewer"))


def test_a_code_stands_when_at_least_half_of_the_people_gave_it() -> None:
    assert majority({"ana": {"trust"}, "ben": set()}) == {"trust"}  # a tie stands
    assert majority({"ana": {"trust"}, "ben": set(), "cy": set()}) == set()
    assert majority({"ana": {"trust", "funding"}, "ben": {"trust"}, "cy": {"funding"}}) == {"trust", "funding"}
    assert majority({"ana": set()}) == set()


def test_spans_in_whole_transcripts_give_positives_and_negatives() -> None:
    text = INTERVIEW
    transcript = Transcript(
        id="t1",
        source_path="a.txt",
        source_name="a.txt",
        format="text",
        encoding="utf-8",
        text=text,
        turns=parse_turns(text),
    )
    grant = text.index("a grant")
    trust = text.index("I trust her")
    spans = [
        HumanCode(coder="ana", code="funding", transcript_id="t1", start=grant, end=grant + 7),
        HumanCode(coder="ana", code="trust", transcript_id="t1", start=trust, end=trust + 11),
        HumanCode(coder="ben", code="trust", transcript_id="t1", start=trust, end=trust + 11),
        HumanCode(coder="ben", code="made-up", transcript_id="t1", start=trust, end=trust + 11),
        HumanCode(coder="cy", code="funding", transcript_id="t1", start=grant, end=grant + 7),
    ]
    coverage = {("ana", "t1"), ("ben", "t1"), ("cy", "t1")}
    first, second = from_spans([transcript], spans, coverage, TURNS, {"funding", "trust"}, "gold")
    assert first.unit.text.startswith("The district gave us") and first.codes == {"funding"}  # 2 of 3
    assert second.codes == {"trust"} and second.known is None and second.coders == ["ana", "ben", "cy"]
    assert "Interviewer: And the coach?" in second.unit.before  # the coder's context, as when coding
    # a transcript nobody coded gives nothing
    assert from_spans([transcript], spans, set(), TURNS, {"funding", "trust"}, "gold") == []


def reviewer_of(db: Path, name: str) -> Reviewer:
    store = Store(str(db))
    with store.session() as s:
        record = s.scalar(select(ReviewerRecord).where(ReviewerRecord.name == name))
        assert record is not None
        return Reviewer(id=record.id, name=record.name, role=record.role)


def test_the_store_gives_imported_codes_decisions_and_blind_codes(tmp_path: Path) -> None:
    # codes people gave in another QDA tool
    project = write_project(
        tmp_path / "pilot.qdpx",
        INTERVIEW,
        [("ana", "funding", "a grant for release time"), ("ben", "trust", "I trust her")],
    )
    db = tmp_path / "q.db"
    assert qcode("import", project, "--db", db, "--codebook-out", tmp_path / "cb.yaml").exit_code == 0
    codebook = load_codebook(tmp_path / "cb.yaml")

    # a run of the same codebook, and what reviewers made of its suggestions
    scripted_coder("learn-first", proposes="first-code", confidence=0.3)
    folder = write_transcripts(
        tmp_path / "more",
        {
            "b.txt": "Interviewer: Money?\nMr. Ortiz: We got a grant.\nInterviewer: Coach?\nMr. Ortiz: She is kind.\n",
            "c.txt": "Interviewer: Money?\nDr. Patel: Nothing came.\n",
        },
    )
    summary = code_store(folder, tmp_path / "cb.yaml", db, coder="learn-first", unit="turn", audit_share=0)
    passwords = make_reviewers(
        db, {"lea": "lead", "rita": "reviewer", "bob": "reviewer", "otto": "reviewer"}, summary.run_id
    )
    assert passwords
    store = Store(str(db))
    with store.session() as s:
        records = list(s.scalars(select(SuggestionRecord)))
        suggestions = {sug.quote: (sug.id, sug.chunk_id) for sug in records}
        words_of = {sug.chunk_id: sug.quote for sug in records}
    rita = reviewer_of(db, "rita")
    first = codebook.leaves[0].id  # what the scripted coder proposed everywhere: funding
    assert first == "funding"
    grant_id, grant_chunk = suggestions["We got a grant."]
    kind_id, kind_chunk = suggestions["She is kind."]
    nothing_id, _ = suggestions["Nothing came."]
    decide(store, rita, grant_id, 1, DecisionRequest(verdict="accept"))
    decide(store, rita, kind_id, 1, DecisionRequest(verdict="change", code="trust", reason="care, not money"))
    decide(store, rita, nothing_id, 1, DecisionRequest(verdict="reject", reason="no money came"))
    add_code(store, rita, grant_chunk, codebook.version, DecisionRequest(verdict="add", code="trust"))

    # a blind sample of every passage of the run, coded by two reviewers who did not review it
    lea = reviewer_of(db, "lea")
    create_sample(store, lea, summary.run_id, 10, ["otto", "bob"], seed=0)
    for name, codes_of in (("otto", {"We got a grant.": ["funding"]}), ("bob", {"We got a grant.": []})):
        person = reviewer_of(db, name)
        for a in assignments(store, person):
            submit(store, person, a.id, codes_of.get(words_of[a.chunk_id], []))

    found = from_store(store, codebook, TURNS)
    by_origin = {}
    for e in found.examples:
        by_origin.setdefault(e.origin, []).append(
            (e.unit.text, sorted(e.codes), None if e.known is None else sorted(e.known))
        )
    # ana gave funding to the first answer, ben trust to the second: each a tie of two, so each stands
    assert sorted(by_origin["imported"]) == [
        ("The coach comes every week. I trust her with my hardest class.", ["trust"], None),
        ("The district gave us a grant for release time. We plan on Fridays now.", ["funding"], None),
    ]
    assert sorted(by_origin["decisions"]) == [
        ("Nothing came.", [], ["funding"]),
        ("She is kind.", ["trust"], ["funding", "trust"]),
        ("We got a grant.", ["funding", "trust"], ["funding", "trust"]),
    ]
    blind = {text: codes for text, codes, known in by_origin["blind"]}
    assert blind["We got a grant."] == ["funding"]  # otto funding, bob none: a tie stands
    assert blind["She is kind."] == [] and blind["Nothing came."] == []
    store.engine.dispose()
