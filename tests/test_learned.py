"""The learned coder's training set: every source of human codes, combined by majority."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import SMALL_CODEBOOK, Answer, code_store, qcode, scripted_coder, write, write_project, write_transcripts
from fakes.review_server import make_reviewers
from sqlalchemy import select

from pipeline.chunk import Units
from pipeline.codebook import load_codebook
from pipeline.learn.card import ModelCard, card_rows
from pipeline.learn.examples import from_spans, from_store, majority
from pipeline.review.blind import assignments, create_sample, submit
from pipeline.review.decisions import DecisionRequest, add_code, decide
from pipeline.review.reviewers import Reviewer
from pipeline.store import LearnedModelRecord, ReviewerRecord, Store, SuggestionRecord
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


# ---------------------------------------------------------------- training and coding

FUNDING = [
    "The district gave us a grant for release time.",
    "Our budget paid for substitutes this spring.",
    "We got money for new books from the district.",
    "The grant covers stipends for the coaches.",
    "Funding for the tutoring program came through.",
    "The budget cut took away our planning money.",
]
TRUST = [
    "I trust my principal to back us up.",
    "We respect each other and speak openly.",
    "The teachers trust the coach with their classes.",
    "There is real respect between the staff and the office.",
    "I can be honest with her, she listens.",
    "We rely on each other when things go wrong.",
]
OTHER = [
    "We meet in the library after school.",
    "The weather was cold that week.",
    "Most classes start at eight.",
    "I teach ninth grade English.",
    "The parking lot was full again.",
    "Our building has three floors.",
]


def gold_study(folder: Path, transcripts: int = 10, first: int = 0) -> tuple[Path, Path]:
    """Interviews whose participant turns each say one kind of thing, and two people's codes on them."""
    rows = ["file,coder,code,quote"]
    for n in range(first, first + transcripts):
        turns, said = [], []
        for k, (pool, code) in enumerate(((FUNDING, "funding"), (TRUST, "trust"), (OTHER, ""), (FUNDING, "funding"))):
            words = pool[(n + k) % len(pool)]
            turns += [f"Interviewer: Question {k + 1}?", f"P{n}: {words}"]
            said.append((code, words))
        write(folder / "transcripts" / f"t{n}.txt", "\n".join(turns) + "\n")
        for person in ("ana", "ben"):
            rows.append(f"t{n}.txt,{person},,")
            rows += [f"t{n}.txt,{person},{code},{words}" for code, words in said if code]
    write(folder / "gold.csv", "\n".join(rows) + "\n")
    return folder / "gold.csv", folder / "transcripts"


def train_cli(codebook: Path, db: Path, codes: Path, transcripts: Path, *extra: str) -> Answer:
    """`qcode train` on one gold file, by the participants' turns."""
    return qcode(
        "train",
        "--codebook",
        codebook,
        "--db",
        db,
        "--gold",
        codes,
        "--transcripts",
        transcripts,
        "--unit",
        "turn",
        "--skip-speakers",
        "interviewer",
        *extra,
    )


def train_on(folder: Path, codebook: Path, db: Path) -> dict:
    """`qcode train --json` on the gold study written into `folder`."""
    answer = train_cli(codebook, db, *gold_study(folder), "--json")
    assert answer.exit_code == 0, answer.stderr
    return json.loads(answer.stdout)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("learned")
    codebook = write(folder / "small.yaml", SMALL_CODEBOOK)
    db = folder / "q.db"
    return db, codebook, train_on(folder, codebook, db)


@pytest.mark.slow  # loads the embedding model
def test_the_model_card_says_how_far_each_code_can_be_trusted(trained: tuple[Path, Path, dict]) -> None:
    _, _, card = trained
    assert set(card) >= {"model", "units", "codes", "skipped", "unit", "speakers", "group_by", "holdout", "learner"}
    # the units a run with the same options codes: the participants' turns
    assert card["unit"] == "turn" and card["speakers"] == {"speakers": [], "skip_speakers": ["interviewer"]}
    assert card["units"] == 10 * 4 and card["group_by"] == "transcript" and card["groups"] == 10
    assert card["transcripts"] == 10 and card["sources"] == {"gold": 40}
    assert card["single_label"] is True and card["people"] == ["ana", "ben"]
    assert {c["code"]: (c["positives"], c["units_scored"]) for c in card["codes"]} == {
        "funding": (20, 40),
        "trust": (10, 40),
    }
    assert card["skipped"] == [] and card["holdout"] is None
    for code in card["codes"]:
        cv = code["cv"]
        assert set(cv) == {"cohen_kappa", "cohen_kappa_ci95", "f1", "precision", "recall"}
        low, high = cv["cohen_kappa_ci95"]
        assert low <= cv["cohen_kappa"] <= high


@pytest.mark.slow  # loads the embedding model
def test_the_learned_coder_codes_new_interviews_with_the_newest_model(
    trained: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    db, codebook, card = trained
    folder = write_transcripts(
        tmp_path / "new",
        {
            "n1.txt": "Interviewer: Money?\nDr. Lee: The district gave us a grant for new books.\n"
            "Interviewer: And people?\nDr. Lee: I trust the coach and we respect each other.\n",
            "n2.txt": "Interviewer: Anything else?\nMs. Kim: The parking lot was full again.\n",
        },
    )
    summary = code_store(folder, codebook, db, coder="learned", unit="turn", skip_speakers="interviewer", audit_share=0)
    assert summary.model == f"learned-{card['model']}" and summary.failed_chunks == 0
    with Store(str(db)).session() as s:
        found = {
            (r.quote, r.code): (r.confidence, r.justification, r.parameters)
            for r in s.scalars(select(SuggestionRecord).where(SuggestionRecord.coder == "learned"))
        }
    assert ("The district gave us a grant for new books.", "funding") in found
    assert ("I trust the coach and we respect each other.", "trust") in found
    assert not any(quote == "The parking lot was full again." for quote, _ in found)
    for (_, code), (confidence, justification, parameters) in found.items():
        assert 0 < confidence <= 1
        assert justification.startswith(f"Like 3 passages coded {code} by the team, e.g. '")
        assert parameters["learned_model"] == card["model"]
    # the report shows the card of the model the run coded with
    page_path = tmp_path / "report.html"
    assert qcode("report", "--db", db, "--run", "latest", "--out", page_path).exit_code == 0
    page = page_path.read_text(encoding="utf-8")
    section = page[page.index('id="learned"') : page.index('id="methods"')]
    assert card["model"] in section and 'data-code="funding"' in section and 'data-code="trust"' in section
    # the same figures as `qcode train` shows
    for row in card_rows(ModelCard.model_validate(card)):
        assert all(f">{cell}<" in section for cell in row), row


@pytest.mark.slow  # loads the embedding model
def test_training_again_on_the_same_codes_stores_nothing_new(trained: tuple[Path, Path, dict], tmp_path: Path) -> None:
    db, codebook, card = trained
    again = train_on(tmp_path / "again", codebook, db)
    assert again["model"] == card["model"] and again["stored"] is False
    shown = train_cli(codebook, db, *gold_study(tmp_path / "again"))
    assert shown.exit_code == 0 and "funding" in shown.stdout and "trust" in shown.stdout
    assert "all units scored, one code or none each: Cohen's kappa" in shown.stdout
    assert f"the store had this model already ({card['model']})" in shown.stderr


def test_without_a_model_or_without_codes_the_messages_say_what_to_do(tmp_path: Path) -> None:
    from pipeline.errors import CoderError

    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    folder = write_transcripts(tmp_path / "t", {"a.txt": INTERVIEW})
    with pytest.raises(CoderError, match=r"no learned model for the codebook .* train one from the team's codes"):
        code_store(folder, codebook, tmp_path / "empty.db", coder="learned")
    assert not (tmp_path / "empty.db").exists()  # looking for a model makes no store
    answer = qcode(
        "run", folder, "--codebook", codebook, "--db", tmp_path / "empty.db", "--coder", "learned", "--unit", "turn"
    )
    assert answer.exit_code == 1
    assert (
        f"on turn units in this store: train one from the team's codes with `qcode train --codebook {codebook} --unit turn --gold CODES.csv --transcripts FOLDER`"
        in answer.stderr
    )
    answer = qcode("train", "--codebook", codebook, "--db", tmp_path / "empty.db")
    assert answer.exit_code == 1 and "no human codes for the codebook" in answer.stderr
    answer = qcode("train", "--codebook", codebook, "--db", tmp_path / "empty.db", "--gold", codebook)
    assert answer.exit_code == 2 and "give each --gold with its --transcripts" in answer.stderr


@pytest.mark.slow  # loads the embedding model
def test_a_stated_confidence_matches_how_often_people_agree_on_held_out_interviews(tmp_path: Path) -> None:
    """People gave 'funding' to 70% of the money sentences (and to nothing else): on interviews the
    model never saw, its confidence on the money sentences is about 0.7, within the interval of
    the share people actually coded."""
    import random

    from pipeline.coders.learned import LearnedCoder
    from pipeline.learn.train import train_model

    rng = random.Random(7)

    def study(prefix: str, n: int) -> tuple[list[Transcript], list[HumanCode]]:
        transcripts, spans = [], []
        for t in range(n):
            lines, coded = [], []
            for k in range(6):
                money = k % 2 == 0
                words = (FUNDING if money else OTHER)[(t + k) % 6]
                lines.append(f"P{t}: {words}")
                coded.append(money and rng.random() < 0.7)
            text = "\n".join(lines) + "\n"
            transcript = Transcript(
                id=f"{prefix}{t}",
                source_path=f"{prefix}{t}.txt",
                source_name=f"{prefix}{t}.txt",
                format="text",
                encoding="utf-8",
                text=text,
                turns=parse_turns(text),
            )
            transcripts.append(transcript)
            for line, code in zip(lines, coded):
                if code:
                    start = text.index(line) + line.index(": ") + 2
                    spans.append(
                        HumanCode(
                            coder="ana",
                            code="funding",
                            transcript_id=transcript.id,
                            start=start,
                            end=start + len(line) - line.index(": ") - 2,
                        )
                    )
        return transcripts, spans

    codebook = load_codebook(write(tmp_path / "small.yaml", SMALL_CODEBOOK))
    train_t, train_s = study("train", 40)
    test_t, test_s = study("test", 40)
    units = Units(unit="turn")
    examples = from_spans(train_t, train_s, {("ana", t.id) for t in train_t}, units, {"funding", "trust"}, "gold")
    store = Store(str(tmp_path / "cal.db"))
    card = train_model(store, codebook, examples)
    assert [c.code for c in card.codes] == ["funding"] and card.skipped[0].code == "trust"
    held = from_spans(test_t, test_s, {("ana", t.id) for t in test_t}, units, {"funding", "trust"}, "gold")
    coder = LearnedCoder()
    coder.use_store(store)
    coder.prepare(codebook)
    stated, observed = [], []
    for example, coding in zip(held, coder.code([e.unit for e in held], codebook)):
        for proposal in coding.proposals:
            stated.append(proposal.confidence)
            observed.append("funding" in example.codes)
    assert len(stated) >= 100  # the money sentences
    share = sum(observed) / len(observed)
    margin = 1.96 * (share * (1 - share) / len(observed)) ** 0.5
    assert abs(sum(stated) / len(stated) - share) <= margin + 0.05, (sum(stated) / len(stated), share, margin)
    store.engine.dispose()


def test_the_queue_can_put_first_what_the_model_is_least_sure_of(tmp_path: Path) -> None:
    scripted_coder("marks-for-order", proposes="marks")
    folder = write_transcripts(
        tmp_path / "t",
        {
            "a.txt": "P1: Money came [funding 0.10]\nP2: We trust her [trust 0.45]\n",
            "b.txt": "P3: A grant [funding 0.55]\nP4: Respect [trust 0.30]\n",
        },
    )
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "q.db"
    code_store(folder, codebook, db, coder="marks-for-order", unit="turn", audit_share=0)

    def order(*flags: str) -> list[float]:
        answer = qcode("queue", "--db", db, "--json", *flags)
        assert answer.exit_code == 0, answer.stderr
        return [item["confidence"] for item in json.loads(answer.stdout)["items"]]

    assert order() == [0.10, 0.30, 0.45, 0.55]
    found = order("--order", "uncertainty")
    assert sorted(found[:2]) == [0.45, 0.55] and found[2:] == [0.30, 0.10]
    bad = qcode("queue", "--db", db, "--order", "random")
    assert bad.exit_code == 2 and "unknown order 'random' (choose from confidence, uncertainty)" in bad.stderr


@pytest.mark.slow  # loads the embedding model
def test_an_eval_configuration_trains_the_learned_coder_and_a_second_eval_is_free(tmp_path: Path) -> None:
    training_codes, training_transcripts = gold_study(tmp_path / "training")
    gold_codes, gold_transcripts = gold_study(tmp_path / "gold", transcripts=6, first=20)
    write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    suite = write(
        tmp_path / "suite.yaml",
        "name: learned\n"
        f"gold: {{transcripts: {gold_transcripts}, codes: {gold_codes}, unit: turn}}\n"
        "codebook: small.yaml\nbootstrap: 0\n"
        "configurations:\n"
        "  - name: learned\n    coder: learned\n"
        f"    training: {{transcripts: {training_transcripts}, codes: {training_codes}, learner: linear}}\n",
    )
    answer = qcode("eval", suite, "--json")
    assert answer.exit_code == 0, answer.stderr
    report = json.loads(answer.stdout)
    (ran,) = report["configurations"]
    assert ran["status"] == "ran" and ran["model"].startswith("learned-") and ran["unit"] == "turn"
    assert ran["run"]["chunks_coded_now"] == 6 * 8
    assert {c["code"] for c in ran["per_code"]} == {"funding", "trust"}
    again = json.loads(qcode("eval", suite, "--json").stdout)
    assert again["configurations"][0]["run"]["chunks_coded_now"] == 0  # the same model, nothing coded again
    assert again["configurations"][0]["model"] == ran["model"]


def test_the_review_apps_next_item_can_be_the_one_the_model_is_least_sure_of(tmp_path: Path) -> None:
    import re

    from fastapi.testclient import TestClient

    from pipeline.review.app import create_app

    scripted_coder("marks-for-next", proposes="marks")
    folder = write_transcripts(
        tmp_path / "t", {"a.txt": "P1: Money came [funding 0.10]\nP2: We trust her [trust 0.45]\n"}
    )
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "q.db"
    summary = code_store(folder, codebook, db, coder="marks-for-next", unit="turn", audit_share=0)
    password = make_reviewers(db, {"rita": "reviewer"}, summary.run_id)["rita"]
    store = Store(str(db))
    with store.session() as s:
        confidence = {sug.id: sug.confidence for sug in s.scalars(select(SuggestionRecord))}
    client = TestClient(create_app(store=store, secret_key="k" * 32), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    signed = client.post("/login", data={"csrf_token": token, "name": "rita", "password": password, "next": "/queue"})
    assert signed.status_code == 303

    def next_confidence(query: str) -> float:
        answer = client.get(f"/next{query}")
        assert answer.status_code == 303, answer.text[:300]
        return confidence[answer.headers["location"].split("/items/")[1].split("?")[0]]

    assert next_confidence("") == 0.10
    assert next_confidence("?order=uncertainty") == 0.45
    page = client.get("/queue?order=uncertainty").text
    assert '<option value="uncertainty" selected>' in page and page.index("0.45") < page.index("0.10")
    store.engine.dispose()


def test_codes_the_codebook_lacks_or_quotes_not_in_their_transcript_are_refused_by_name(tmp_path: Path) -> None:
    codes, transcripts = gold_study(tmp_path / "s", transcripts=2)
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "q.db"
    base = ["train", "--codebook", codebook, "--db", db, "--transcripts", transcripts, "--gold"]
    unknown = write(tmp_path / "unknown.csv", "file,coder,code,quote\nt0.txt,ana,morale,We meet in the library\n")
    answer = qcode(*base, unknown)
    assert answer.exit_code == 1 and "unknown.csv" in answer.stderr and "morale" in answer.stderr
    missing = write(tmp_path / "missing.csv", "file,coder,code,quote\nt0.txt,ana,funding,words nobody said\n")
    answer = qcode(*base, missing)
    assert answer.exit_code == 1 and "missing.csv" in answer.stderr and "words nobody said" in answer.stderr
    nothing = write(tmp_path / "nothing.csv", "file,coder,code,quote\nt0.txt,ana,,\nt1.txt,ana,,\n")
    answer = qcode(*base, nothing)
    assert answer.exit_code == 1
    assert "no code of 'Small test codebook' has 4 units where people applied it" in answer.stderr
    assert "funding: 0 unit(s) with the code: it takes 4 to learn one" in answer.stderr


@pytest.mark.slow  # loads the embedding model
def test_a_code_with_three_examples_is_not_learned_and_one_persons_codes_are_said_to_be_so(tmp_path: Path) -> None:
    codes, transcripts = gold_study(tmp_path / "s")
    rows = codes.read_text(encoding="utf-8").splitlines()
    trust = [r for r in rows if ",ana,trust," in r]
    kept = [r for r in rows if ",ben," not in r and (",trust," not in r or r in trust[:3])]
    write(codes, "\n".join(kept) + "\n")
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    answer = train_cli(codebook, tmp_path / "q.db", codes, transcripts, "--json")
    assert answer.exit_code == 0, answer.stderr
    card = json.loads(answer.stdout)
    assert [c["code"] for c in card["codes"]] == ["funding"]
    assert card["skipped"] == [
        {"code": "trust", "positives": 3, "reason": "3 unit(s) with the code: it takes 4 to learn one"}
    ]
    assert card["people"] == ["ana"]
    assert card["notes"] == ["one person's codes only (ana): the card is agreement with them"]


def test_a_codes_threshold_is_where_it_agreed_best_with_the_people() -> None:
    import numpy as np

    from pipeline.learn.train import best_threshold

    raw = np.array([0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.1, 0.15])
    truth = np.array([False, False, False, True, False, True, False, False])
    assert best_threshold(raw, truth) == 0.3  # 0.4 and 0.3, of which 0.35 is no code: kappa 0.71
    # a rare code whose best agreement lies below one half is proposed there
    assert best_threshold(np.array([0.2, 0.25, 0.01, 0.02]), np.array([True, True, False, False])) == 0.2
    assert best_threshold(raw, np.zeros(8, dtype=bool)) == 0.5 and best_threshold(np.array([]), truth[:0]) == 0.5
    assert best_threshold(np.array([0.0, 0.0, 0.6]), np.array([True, False, False])) == 0.6  # zero never reaches it


@pytest.mark.slow  # loads the embedding model and fine-tunes it
def test_the_fine_tuned_learner_codes_and_the_same_codes_train_the_same_model(tmp_path: Path) -> None:
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    codes, transcripts = gold_study(tmp_path / "s", transcripts=6)
    cards = []
    for name in ("a", "b"):  # two stores: nothing is shared but the codes
        answer = train_cli(codebook, tmp_path / f"{name}.db", codes, transcripts, "--learner", "finetuned", "--json")
        assert answer.exit_code == 0, answer.stderr
        card = json.loads(answer.stdout)
        for figure in card["learners"]:
            figure.pop("seconds")
        cards.append(card)
    assert cards[0] == cards[1]  # seeded: the same version and the same figures
    assert cards[0]["learner"] == "finetuned" and [f["learner"] for f in cards[0]["learners"]] == ["finetuned"]
    with Store(str(tmp_path / "a.db")).session() as s:
        record = s.get(LearnedModelRecord, cards[0]["model"])
        assert record is not None and record.parameters["learner"] == "finetuned"
        assert 5_000_000 < len(record.model) < 12_000_000  # the two fine-tuned layers, in half precision
    folder = write_transcripts(
        tmp_path / "new",
        {"n.txt": "Interviewer: Money?\nDr. Lee: The district gave us a grant for new books.\n"},
    )
    summary = code_store(folder, codebook, tmp_path / "a.db", coder="learned", audit_share=0)
    assert summary.model == f"learned-{cards[0]['model']}" and summary.unit == "turn" and summary.failed_chunks == 0
    with Store(str(tmp_path / "a.db")).session() as s:
        coded = {(r.code, r.quote) for r in s.scalars(select(SuggestionRecord))}
    assert ("funding", "The district gave us a grant for new books.") in coded


@pytest.mark.slow  # loads the embedding model and fine-tunes it
def test_auto_keeps_the_learner_with_the_higher_cross_validated_kappa_and_names_both(
    trained: tuple[Path, Path, dict],
) -> None:
    _, _, card = trained
    figures = {f["learner"]: f["cohen_kappa"] for f in card["learners"]}
    assert set(figures) == {"linear", "finetuned"}
    best = max(figures.values())
    assert figures[card["learner"]] == best and (card["learner"] == "linear" or figures["linear"] < best)
    assert card["overall"]["cohen_kappa"] == figures[card["learner"]]
