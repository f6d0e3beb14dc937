"""Blind coding keyed on words, not files (issue 23, points 1 to 3): the same interview stored again
under another name or folder is one interview for blind coding, samples and the queue; a passage a
reviewer only opened is never drawn for them blind; stores from before learn their passages' words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fakes import SMALL_CODEBOOK, code_store, scripted_coder, write, write_transcripts
from fakes.review_server import csrf_of, signed_in
from sqlalchemy import select, text

from pipeline.errors import DecisionError
from pipeline.review.app import create_app
from pipeline.review.blind import create_sample
from pipeline.review.reviewers import Reviewer, add_reviewer, grant_runs
from pipeline.store import AssignmentRecord, PassageWordsRecord, ReviewerRecord, Store, SuggestionRecord
from pipeline.words import TranscriptWords

pytestmark = pytest.mark.usefixtures("quick_passwords")

INTERVIEW = (
    "Interviewer: How did the money for release time reach your school this year?\n"
    "Ms. Chen: Money came late this year, and the grant was small, so we cut the release time.\n"
    "Interviewer: Who decided that?\n"
    "Ms. Chen: The principal, after talking with the district office about the budget.\n"
)
# the same interview as another file wraps it: other line breaks, other spaces
REWRAPPED = INTERVIEW.replace(", and the grant", ",\n  and the grant").replace("after talking", "after  talking")


@pytest.fixture
def study(tmp_path: Path) -> dict:
    scripted_coder(
        "copies-coder",
        proposes="phrases",
        phrases={"Money came": [("funding", 0.4, "Money came late this year")]},
    )
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "review.db"
    original = code_store(
        write_transcripts(tmp_path / "week1", {"chen.txt": INTERVIEW}), codebook, db, coder="copies-coder"
    )
    copy = code_store(
        write_transcripts(tmp_path / "week2" / "interviews", {"chen-again.txt": REWRAPPED}),
        codebook,
        db,
        coder="copies-coder",
    )
    store = Store(str(db))
    passwords = {
        name: add_reviewer(store, name, role)
        for name, role in [("lena", "lead"), ("rita", "reviewer"), ("bob", "reviewer")]
    }
    for name in ("rita", "bob"):
        grant_runs(store, name, [original.run_id, copy.run_id])
    return {
        "tmp": tmp_path,
        "codebook": codebook,
        "db": db,
        "store": store,
        "original": original.run_id,
        "copy": copy.run_id,
        "passwords": passwords,
        "app": create_app(str(db), secret_key="k" * 32),
    }


def reviewer(store: Store, name: str) -> Reviewer:
    with store.session() as s:
        record = s.scalar(select(ReviewerRecord).where(ReviewerRecord.name == name))
        assert record is not None
        return Reviewer(id=record.id, name=record.name, role=record.role)


def suggestion_of(store: Store, run_source: str) -> SuggestionRecord:
    from pipeline.store import TranscriptRecord

    with store.session() as s:
        found = s.scalar(
            select(SuggestionRecord)
            .join(TranscriptRecord, TranscriptRecord.id == SuggestionRecord.transcript_id)
            .where(TranscriptRecord.source_name == run_source)
        )
        assert found is not None
        return found


def test_a_copy_under_another_name_shows_nothing_of_the_models_to_a_reviewer_coding_the_original_blind(
    study: dict,
) -> None:
    store, app = study["store"], study["app"]
    drawing = create_sample(store, reviewer(store, "lena"), study["original"], 1, ["rita", "bob"], seed=1)
    assert drawing.passages == 1
    copy = suggestion_of(store, "chen-again.txt")
    rita = signed_in(app, "rita", study["passwords"]["rita"])
    queue = rita.get("/queue", params={"status": "all"}).text
    assert copy.id not in queue and "Nothing matches these filters." in queue
    assert rita.get(f"/items/{copy.id}").status_code == 404
    r = rita.get("/next")
    assert r.headers["location"].startswith("/queue")  # next hands her nothing
    token = csrf_of(rita.get("/blind").text)
    decide = rita.post(
        f"/items/{copy.id}/decide", data={"csrf_token": token, "version": "1", "verdict": "accept", "query": ""}
    )
    assert decide.status_code == 404
    with store.session() as s:
        assert s.scalar(select(SuggestionRecord.decided_at).where(SuggestionRecord.id == copy.id)) is None
    # bob still sees the copy once he has coded his blind passage; rita too, after hers
    with store.session() as s:
        mine = s.scalar(select(AssignmentRecord.id).where(AssignmentRecord.reviewer_id == reviewer(store, "rita").id))
    assert rita.post(f"/blind/{mine}", data={"csrf_token": token, "code": ["funding"]}).status_code == 303
    assert rita.get(f"/items/{copy.id}").status_code == 200


def test_what_she_decided_in_a_copy_is_not_drawn_for_her_blind(study: dict) -> None:
    store, app = study["store"], study["app"]
    copy = suggestion_of(store, "chen-again.txt")
    rita = signed_in(app, "rita", study["passwords"]["rita"])
    token = csrf_of(rita.get(f"/items/{copy.id}").text)
    r = rita.post(f"/items/{copy.id}/decide", data={"csrf_token": token, "version": "1", "verdict": "accept"})
    assert r.status_code == 303
    with pytest.raises(DecisionError, match=r"no passages left.*seen by one of them"):
        create_sample(store, reviewer(store, "lena"), study["original"], 5, ["rita", "bob"], seed=1)


def test_a_passage_she_only_opened_is_not_drawn_for_her_blind_and_the_lead_is_told(study: dict) -> None:
    store, app = study["store"], study["app"]
    copy = suggestion_of(store, "chen-again.txt")
    bob = signed_in(app, "bob", study["passwords"]["bob"])
    assert bob.get(f"/items/{copy.id}").status_code == 200  # opened, nothing decided
    with pytest.raises(DecisionError, match=r"1 seen by one of them with the model's suggestions"):
        create_sample(store, reviewer(store, "lena"), study["original"], 5, ["rita", "bob"], seed=1)
    lead = signed_in(app, "lena", study["passwords"]["lena"])
    token = csrf_of(lead.get("/lead", params={"run": study["original"]}).text)
    r = lead.post(
        "/lead/samples",
        data={"csrf_token": token, "run": study["original"], "size": "3", "reviewer": ["rita", "bob"], "seed": "2"},
    )
    assert r.status_code == 303
    said = lead.get(r.headers["location"]).text
    assert re.search(r"left out 1 seen by one of them with the model(&#39;|')s suggestions", said)
    # rita has seen nothing: with another reviewer the passage is drawn
    add_reviewer(store, "sam")
    grant_runs(store, "sam", [study["original"]])
    assert create_sample(store, reviewer(store, "lena"), study["original"], 5, ["rita", "sam"], seed=1).passages == 1


def test_copies_in_one_run_are_one_passage_in_a_sample(study: dict, tmp_path: Path) -> None:
    store = study["store"]
    both = code_store([tmp_path / "week1", tmp_path / "week2"], study["codebook"], study["db"], coder="copies-coder")
    grant_runs(store, "rita", [both.run_id])
    grant_runs(store, "bob", [both.run_id])
    drawing = create_sample(store, reviewer(store, "lena"), both.run_id, 10, ["rita", "bob"], seed=3)
    assert (drawing.passages, drawing.copies) == (1, 1)
    assert "1 the same words as another passage of the run" in drawing.left_out()


def test_a_question_asked_in_every_interview_does_not_make_the_interviews_one(tmp_path: Path) -> None:
    question = "Interviewer: How did the money for release time reach your school this year?\n"
    interviews = {
        "a.txt": question + "Ms. Chen: It came late, and the grant was small, so we cut the release time.\n",
        "b.txt": question + "Mr. Ruiz: On time, through the district's professional development office.\n",
    }
    scripted_coder("protocol-coder", proposes="phrases", phrases={})
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "protocol.db"
    run = code_store(write_transcripts(tmp_path / "in", interviews), codebook, db, coder="protocol-coder", unit="turn")
    store = Store(str(db))
    add_reviewer(store, "lena", "lead")
    for name in ("rita", "bob"):
        add_reviewer(store, name)
        grant_runs(store, name, [run.run_id])
    drawing = create_sample(store, reviewer(store, "lena"), run.run_id, 10, ["rita", "bob"], seed=1)
    # the same question, answered otherwise: four passages, none a copy of another
    assert (drawing.passages, drawing.copies) == (4, 0)


def test_a_copy_whose_speakers_were_renamed_shares_the_words_of_its_turns() -> None:
    renamed = INTERVIEW.replace("Ms. Chen", "P1").replace("Interviewer", "I")

    def places(transcript: str) -> dict[str, tuple[int, int]]:
        spans = [m.span(2) for m in re.finditer(r"^([^:\n]+): (.*)$", transcript, re.M)]
        words = TranscriptWords(transcript, spans)
        start, end = spans[1]  # Ms. Chen's first answer, as a turn unit
        return {key: (s, e) for key, s, e in words.passage(start, end, 1, 1)}

    one, other = places(INTERVIEW), places(renamed)
    shared = set(one) & set(other)
    assert len(shared) == 1 and next(iter(shared)).startswith("w")  # the turn's words, not the whole text
    (key,) = shared
    assert (
        one[key]
        == other[key]
        == (0, len("Money came late this year, and the grant was small, so we cut the release time."))
    )


def test_the_parts_of_one_long_turn_do_not_share_words(tmp_path: Path) -> None:
    sentence = "The district sent the money for release time late again this spring. "
    long_turn = "Ms. Chen: " + sentence * 40 + "\n"
    scripted_coder("parts-coder", proposes="phrases", phrases={})
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "parts.db"
    run = code_store(
        write_transcripts(tmp_path / "in", {"long.txt": long_turn}), codebook, db, coder="parts-coder", chunk_size=800
    )
    store = Store(str(db))
    add_reviewer(store, "lena", "lead")
    for name in ("rita", "bob"):
        add_reviewer(store, name)
        grant_runs(store, name, [run.run_id])
    with store.session() as s:
        passages = len(set(s.scalars(select(PassageWordsRecord.chunk_id))))
    assert passages > 2
    drawing = create_sample(store, reviewer(store, "lena"), run.run_id, 100, ["rita", "bob"], seed=1)
    assert (drawing.passages, drawing.copies) == (passages, 0)


def test_a_store_from_before_learns_where_its_passages_words_lie(study: dict) -> None:
    store = study["store"]
    with store.session() as s:
        before = sorted(tuple(r) for r in s.execute(select(PassageWordsRecord.__table__)))
    assert before
    store.engine.dispose()
    with Store(str(study["db"])).engine.begin() as c:  # back to the schema of the qcode before
        c.execute(text("DROP TABLE passage_words"))
        c.execute(text("DROP TABLE openings"))
        c.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    upgraded = Store(str(study["db"]))
    with upgraded.session() as s:
        after = sorted(tuple(r) for r in s.execute(select(PassageWordsRecord.__table__)))
    assert after == before
    # the copy's passage is the original's words, assigned to them already
    create_sample(upgraded, reviewer(upgraded, "lena"), study["original"], 1, ["rita", "bob"], seed=1)
    with pytest.raises(DecisionError, match="no passages left.*already coded blind by one of them"):
        create_sample(upgraded, reviewer(upgraded, "lena"), study["copy"], 1, ["rita", "bob"], seed=1)
