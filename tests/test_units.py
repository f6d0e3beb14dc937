"""Units: speaker turns as units, whose words are coded, documents as paragraphs, source types."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
from fakes import SMALL_CODEBOOK, code_store, qcode, scripted_coder, write, write_pdf, write_project, write_transcripts
from rich.console import Console

import pipeline.cli.review
from pipeline.chunk import Units, chunk_transcript, cut, for_coder, holds, turn_units
from pipeline.codebook import load_codebook
from pipeline.coders.prompt import Prompt, unit_note
from pipeline.ingest import discover, read_source
from pipeline.suggestion import ChunkCoding, Proposal
from pipeline.transcript import SpeakerChoice, Transcript
from pipeline.validate import validate_coding

INTERVIEW = (
    "Interviewer: How does the district support your planning?\n"
    "Ms. Chen: The district gave us a grant for release time. We plan on Fridays now.\n"
    "Interviewer: And the coach?\n"
    "Ms. Chen: The coach comes every week. I trust her with my hardest class.\n"
)


def transcript(tmp_path: Path, text: str, name: str = "a.txt") -> Transcript:
    path = write(tmp_path / name, text)
    (source,), errors = discover([path])
    assert not errors
    (found,) = read_source(source)
    return found


# ---------------------------------------------------------------- turn units


def test_every_turn_is_one_unit_of_its_spoken_words(tmp_path: Path) -> None:
    long_answer = "Ms. Chen: " + "We met and planned the unit together. " * 60  # 2,280 characters
    t = transcript(tmp_path, INTERVIEW + long_answer + "\n")
    units = turn_units(t)
    assert [u.speakers for u in units] == [["Interviewer"], ["Ms. Chen"], ["Interviewer"], ["Ms. Chen"], ["Ms. Chen"]]
    for unit, turn in zip(units, t.turns):
        assert unit.text == t.text[unit.start : unit.end]
        assert (unit.start, unit.end) == (turn.text_start, turn.end)  # the label is not coded text
        assert not unit.text.startswith(turn.speaker or "")
        assert unit.unit == "turn" and unit.first_turn == unit.last_turn == turn.index
        assert unit.part is None and unit.parts is None
    assert len(units[-1].text) > 2000  # longer than a chunk, still one unit
    assert [u.index for u in units] == list(range(5))


def test_a_turn_longer_than_the_largest_unit_is_split_at_sentences_into_numbered_parts(tmp_path: Path) -> None:
    sentences = [f"Sentence number {n} is about planning with the coach." for n in range(40)]
    t = transcript(tmp_path, "Interviewer: Tell me.\nP1: " + " ".join(sentences) + "\n")
    units = turn_units(t, max_chars=500)
    parts = [u for u in units if u.first_turn == 1]
    assert len(parts) >= 4
    assert [(u.part, u.parts) for u in parts] == [(n, len(parts)) for n in range(1, len(parts) + 1)]
    for unit in parts:
        assert unit.text == t.text[unit.start : unit.end] and len(unit.text) <= 500
        assert unit.text.endswith(".")  # cut at a sentence's end
    # the parts cover the whole turn's words, in order, and nothing of the label
    joined = " ".join(u.text for u in parts)
    assert joined == " ".join(sentences)


def test_unit_ids_are_stable_and_differ_from_chunk_ids(tmp_path: Path) -> None:
    first = turn_units(transcript(tmp_path / "1", INTERVIEW))
    again = turn_units(transcript(tmp_path / "2", INTERVIEW))
    assert [u.id for u in first] == [u.id for u in again]
    assert len({u.id for u in first}) == len(first)
    t = transcript(tmp_path / "3", "P1: One short answer.\n")
    (turn,) = turn_units(t)
    (chunk,) = chunk_transcript(t)
    assert turn.id != chunk.id  # a chunk and a turn over one span are coded apart


def test_a_turn_holds_a_code_inside_it_and_not_one_that_grazes_it(tmp_path: Path) -> None:
    t = transcript(tmp_path, INTERVIEW)
    units = turn_units(t)
    answer = units[1]
    inside = t.text.index("a grant")
    assert holds(answer, inside, inside + len("a grant"))
    assert not holds(units[0], inside, inside + len("a grant"))
    # a code over two whole turns counts for each of them
    assert holds(units[2], units[2].start, units[3].end) and holds(units[3], units[2].start, units[3].end)
    # a passage that ends two words into the next turn is the first turn's
    spill = t.text.index("The coach") + len("The coach")
    assert holds(answer, answer.start, spill) and not holds(units[3], answer.start, spill)


# ---------------------------------------------------------------- whose words are coded


def test_speaker_names_match_case_insensitively_with_wildcards() -> None:
    choice = SpeakerChoice.of(skip_speakers="interviewer, Q")
    assert not choice.codes("Interviewer") and not choice.codes("q") and choice.codes("P1") and choice.codes(None)
    only = SpeakerChoice.of("P*, dr. *")
    assert only.codes("p12") and only.codes("Dr.  Ramos") and not only.codes("Interviewer") and not only.codes(None)
    assert SpeakerChoice.of(["Ana", " ", "ana"]).speakers == ("Ana",)
    assert only.unmatched(["P1", "Interviewer"]) == ["dr. *"]


def test_with_turn_units_a_skipped_speaker_is_context_not_a_unit(tmp_path: Path) -> None:
    t = transcript(tmp_path, INTERVIEW)
    units = cut(t, Units(unit="turn", speakers=SpeakerChoice.of(skip_speakers="INTERVIEWER")))
    assert [u.speakers for u in units] == [["Ms. Chen"], ["Ms. Chen"]]
    shown = for_coder(units[1], t.text, t.metadata)
    assert "Interviewer: And the coach?" in shown.before  # the question is shown, not coded
    assert unit_note(shown) == "The passage to code is one turn of Ms. Chen; code what it says."
    assert unit_note(shown) in Prompt().user(shown)


def test_with_chunks_a_skipped_speaker_stays_in_the_chunk_and_a_quote_of_them_is_rejected(tmp_path: Path) -> None:
    t = transcript(tmp_path, INTERVIEW)
    (chunk,) = cut(t, Units(speakers=SpeakerChoice.of(skip_speakers="interviewer")))
    assert chunk.text == t.text.rstrip("\n")
    assert [(turn.speaker, turn.coded) for turn in chunk.turns] == [
        ("Interviewer", False),
        ("Ms. Chen", True),
        ("Interviewer", False),
        ("Ms. Chen", True),
    ]
    assert unit_note(chunk) == (
        "Code only the words of Ms. Chen. The words of Interviewer in the passage are context: "
        "do not code or quote them."
    )
    codebook = load_codebook(write(tmp_path / "small.yaml", SMALL_CODEBOOK))
    coding = ChunkCoding(
        chunk_id=chunk.id,
        proposals=[
            Proposal(code="funding", justification="j", quote="How does the district support", confidence=0.9),
            Proposal(code="trust", justification="j", quote="I trust her", confidence=0.9),
        ],
    )
    suggestions, rejections = validate_coding(coding, chunk, codebook, "k")
    assert [s.code for s in suggestions] == ["trust"]
    assert [(r.code, r.reason) for r in rejections] == [
        ("funding", "quote is the words of Interviewer, whose words are context, not coded")
    ]
    # the same words said by both: the participant's are the evidence
    both = transcript(tmp_path / "both", "Interviewer: We plan together?\nP1: Yes. We plan together.\n")
    (chunk,) = cut(both, Units(speakers=SpeakerChoice.of(skip_speakers="interviewer")))
    coding = ChunkCoding(
        chunk_id=chunk.id,
        proposals=[Proposal(code="trust", justification="j", quote="We plan together", confidence=0.9)],
    )
    (suggestion,), rejections = validate_coding(coding, chunk, codebook, "k")
    assert not rejections and suggestion.quote_start == both.text.index("We plan together.")


def test_a_chunk_of_skipped_turns_only_is_no_unit_and_its_id_says_which_turns_are_coded(tmp_path: Path) -> None:
    t = transcript(tmp_path, INTERVIEW)
    every = chunk_transcript(t, size=80)
    skipping = chunk_transcript(t, size=80, speakers=SpeakerChoice.of(skip_speakers="interviewer"))
    assert len(every) == 4 and len(skipping) == 2
    assert all(any(turn.coded for turn in c.turns) for c in skipping)
    assert {c.id for c in skipping} < {c.id for c in every}  # the same turns, coded alike: the same units
    (whole,) = chunk_transcript(t)
    (marked,) = chunk_transcript(t, speakers=SpeakerChoice.of(skip_speakers="interviewer"))
    assert (whole.start, whole.end) == (marked.start, marked.end) and whole.id != marked.id


# ---------------------------------------------------------------- documents and source types


def test_text_without_speaker_labels_is_read_as_paragraphs(tmp_path: Path) -> None:
    notes = (
        "Observation, Harbor Middle School, 3 May\n\n"
        "The team met in the library. The coach\nbrought the data binder.\n\n"
        "---\n\n"
        "Teachers sorted student work by level.\n"
    )
    t = transcript(tmp_path, notes, "obs.txt")
    assert [t.text[turn.start : turn.end] for turn in t.turns] == [
        "Observation, Harbor Middle School, 3 May",
        "The team met in the library. The coach\nbrought the data binder.",
        "Teachers sorted student work by level.",
    ]
    assert all(turn.speaker is None for turn in t.turns)
    assert [u.text for u in cut(t, Units(unit="turn"))] == [t.text[x.start : x.end] for x in t.turns]
    assert t.metadata["source_type"] == "document" and t.source_type_inferred


def test_source_types_are_given_or_inferred_and_kept_as_written(tmp_path: Path) -> None:
    folder = write_transcripts(
        tmp_path / "study",
        {
            "interview.txt": INTERVIEW,
            "group.txt": "Moderator: Welcome.\nAna: Hi.\nBen: Hello.\nAna: We plan together.\n",
            "notes.txt": "The team met.\n\nThey planned.\n",
            "given.txt": INTERVIEW,
            "odd.txt": INTERVIEW,
            "survey.csv": "id,response\n1,We plan together every week.\n",
        },
    )
    write(
        folder / "manifest.csv", "file,district,source_type\ngiven.txt,Harbor,observation\nodd.txt,Harbor, Intervew \n"
    )
    sources, _ = discover([folder])
    found = {
        t.source_name: (t.metadata["source_type"], t.source_type_inferred) for s in sources for t in read_source(s)
    }
    assert found == {
        "interview.txt": ("interview", True),
        "group.txt": ("focus group", True),
        "notes.txt": ("document", True),
        "given.txt": ("observation", False),
        "odd.txt": ("Intervew", False),
        "survey.csv": ("questionnaire", True),
    }
    # the run summary lists them as written, so an odd spelling is seen
    scripted_coder("first-types", proposes="first-code", confidence=0.9)
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    summary = code_store(folder, codebook, tmp_path / "types.db", coder="first-types")
    assert [(t.source_type, t.transcripts, t.inferred) for t in summary.source_types] == [
        ("Intervew", 1, 0),
        ("document", 1, 1),
        ("focus group", 1, 1),
        ("interview", 1, 1),
        ("observation", 1, 0),
        ("questionnaire", 1, 1),
    ]


# ---------------------------------------------------------------- a run


def rows(db: Path, query: str) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(query).fetchall()


def test_a_run_of_turn_units_codes_each_chosen_turn_once(tmp_path: Path) -> None:
    scripted_coder("first-turns", proposes="first-code", confidence=0.9)
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    folder = write_transcripts(
        tmp_path / "study",
        {
            "a.txt": INTERVIEW,
            "b.txt": "Q: Who plans?\nDr. Ramos: I do, with the coach.\n",
            "c.txt": "Moderator: Welcome.\nAna: We plan on Fridays.\n",
        },
    )
    # b.txt's interviewer is "Q": its manifest row says so, over the run's choice
    write(folder / "manifest.csv", "file,district,skip_speakers\na.txt,Harbor,\nb.txt,Valley,Q\nc.txt,Valley,\n")
    db = tmp_path / "study.db"
    summary = code_store(folder, codebook, db, coder="first-turns", unit="turn", skip_speakers="interviewer")
    assert summary.unit == "turn" and summary.chunks == 5 and summary.chunks_coded_now == 5
    stored = rows(db, "select c.unit, c.text, t.source_name from chunks c join transcripts t on t.id = c.transcript_id")
    assert sorted(stored) == sorted(
        [
            ("turn", "The district gave us a grant for release time. We plan on Fridays now.", "a.txt"),
            ("turn", "The coach comes every week. I trust her with my hardest class.", "a.txt"),
            ("turn", "I do, with the coach.", "b.txt"),
            ("turn", "Welcome.", "c.txt"),  # c.txt's "Moderator" is not the run's interviewer
            ("turn", "We plan on Fridays.", "c.txt"),
        ]
    )
    # the speaker choice is no case attribute
    assert all("skip_speakers" not in json.loads(m) for (m,) in rows(db, "select metadata from transcripts"))
    assert [n.note for n in summary.notes if n.path.endswith("c.txt")] == [
        "speakers named by the run match nobody here: interviewer (its speakers: Moderator, Ana)"
    ]
    (parameters,) = rows(db, "select parameters from runs")
    assert json.loads(parameters[0])["unit"] == "turn"

    again = code_store(folder, codebook, db, coder="first-turns", unit="turn", skip_speakers="interviewer")
    assert again.chunks == 5 and again.chunks_coded_now == 0  # nothing is coded twice
    other = code_store(folder, codebook, db, coder="first-turns", unit="turn", skip_speakers="interviewer, moderator")
    assert other.chunks == 4 and other.chunks_coded_now == 4  # another choice is another configuration


def test_speakers_naming_nobody_leave_a_file_uncoded_and_say_so(tmp_path: Path) -> None:
    scripted_coder("first-nobody", proposes="first-code", confidence=0.9)
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    folder = write_transcripts(tmp_path / "study", {"a.txt": INTERVIEW})
    summary = code_store(folder, codebook, tmp_path / "s.db", coder="first-nobody", unit="turn", speakers="P*")
    assert summary.chunks == 0 and summary.failed == []
    assert [n.note for n in summary.notes] == [
        "speakers named by the run match nobody here: P* (its speakers: Interviewer, Ms. Chen)",
        "nothing is coded here: only the words of P* leaves no turn (its speakers: Interviewer, Ms. Chen)",
    ]


def test_a_dry_run_by_turns_on_a_store_coded_by_chunks_counts_every_turn_to_do(tmp_path: Path) -> None:
    scripted_coder("dry-first", proposes="first-code", confidence=0.9)
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    folder = write_transcripts(tmp_path / "study", {"a.txt": INTERVIEW})
    db = tmp_path / "s.db"
    assert code_store(folder, codebook, db, coder="dry-first").chunks == 1
    base = ["run", folder, "--codebook", codebook, "--db", db, "--coder", "dry-first", "--dry-run", "--json"]
    assert json.loads(qcode(*base).stdout)["pending"] == 0  # the chunk is coded
    turns = json.loads(qcode(*base, "--unit", "turn").stdout)
    assert turns["chunks"] == turns["pending"] == 4  # turns never stored: all still to code


def test_the_unit_flags_and_qcode_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    folder = write_transcripts(tmp_path / "study", {"a.txt": INTERVIEW})
    base = ["run", folder, "--codebook", codebook, "--db", tmp_path / "s.db", "--dry-run", "--json"]
    chunks = json.loads(qcode(*base).stdout)
    turns = json.loads(qcode(*base, "--unit", "turn").stdout)
    chosen = json.loads(qcode(*base, "--unit", "turn", "--skip-speakers", "Interviewer").stdout)
    assert (chunks["chunks"], turns["chunks"], chosen["chunks"]) == (1, 4, 2)
    write(tmp_path / "qcode.toml", '[run]\nunit = "turn"\nskip_speakers = ["interviewer"]\n')
    assert json.loads(qcode(*base).stdout)["chunks"] == 2
    assert json.loads(qcode(*base, "--unit", "chunk").stdout)["chunks"] == 1  # a flag over the file
    bad = qcode(*base, "--unit", "sentence")
    assert bad.exit_code == 2 and "--unit 'sentence' is not one of chunk, turn" in bad.stderr
    bad = qcode(*base, "--chunk-size", "0")  # a flag's value out of range: named as the flag
    assert bad.exit_code == 2 and "--chunk-size 0: Input should be greater than or equal to 50" in bad.stderr
    write(tmp_path / "qcode.toml", '[run]\nunit = "paragraph"\n')
    bad = qcode(*base)
    assert bad.exit_code == 1 and "qcode.toml" in bad.stderr and "unit" in bad.stderr


# ---------------------------------------------------------------- agreement at the turn level


def test_codes_people_gave_inside_turns_map_onto_turn_units_as_single_label_data(tmp_path: Path) -> None:
    """Three people coded spans inside the participant's turns, one code per turn; a scripted coder
    codes the same turns. Each person's code counts for the turn that holds it, the statistics
    treat the codes as single-label, and the interviewer's turns are no units."""
    scripted_coder(
        "turn-coder",
        proposes="phrases",
        phrases={"grant": [("funding", 0.9, "a grant for release time")], "trust her": [("trust", 0.9, "I trust her")]},
    )
    study = tmp_path / "study"
    write(study / "transcripts" / "a.txt", INTERVIEW)
    write(
        study / "gold.csv",
        "file,coder,code,quote\n"
        "a.txt,ana,funding,a grant for release time\n"
        "a.txt,ana,trust,I trust her\n"
        "a.txt,ben,funding,We plan on Fridays now\n"
        "a.txt,ben,trust,I trust her with my hardest class\n"
        "a.txt,cy,funding,The district gave us a grant\n",  # cy gave the second answer no code
    )
    write(study / "small.yaml", SMALL_CODEBOOK)
    suite = write(
        tmp_path / "suite.yaml",
        "name: turns\n"
        f"gold: {{transcripts: {study / 'transcripts'}, codes: {study / 'gold.csv'}, unit: turn,"
        " skip_speakers: Interviewer}\n"
        f"codebook: {study / 'small.yaml'}\n"
        f"db: sqlite:///{tmp_path / 'eval.db'}\n"
        "bootstrap: 0\n"
        "configurations: [{name: scripted, coder: turn-coder}]\n",
    )
    from pipeline.measure.evals import human_rows, load_suite

    loaded = load_suite(suite)
    (configuration,) = loaded.configurations
    assert configuration.units.unit == "turn"  # gold.unit is the configurations' default
    t = loaded.gold.transcripts[0]
    first, second = cut(t, configuration.units)
    assert sorted(
        (r["coder"], r["unit_id"], r["code"]) for r in human_rows(loaded.gold, configuration.units)
    ) == sorted(
        [
            ("ana", first.id, "funding"),
            ("ana", second.id, "trust"),
            ("ben", first.id, "funding"),
            ("ben", second.id, "trust"),
            ("cy", first.id, "funding"),
            ("cy", second.id, ""),
        ]
    )
    answer = qcode("eval", suite, "--json")
    assert answer.exit_code == 0, answer.stderr
    report = json.loads(answer.stdout)
    (humans,) = report["humans"]
    assert humans["unit"] == "turn" and humans["units"] == 2 and humans["single_label"] is True
    assert humans["speakers"] == {"speakers": [], "skip_speakers": ["Interviewer"]}
    (ran,) = report["configurations"]
    assert ran["unit"] == "turn" and ran["run"]["chunks"] == 2
    agreement = ran["agreement"]
    assert agreement["single_label"] is True and agreement["units"] == 2
    # all four agree on the first answer; on the second cy differs from the three others: 3 of 6 pairs
    assert agreement["overall"]["percent_agreement"] == pytest.approx((1 + 3 / 6) / 2)


# ---------------------------------------------------------------- PDF documents


PLAN = [
    ["District Literacy Plan", "The district will fund release time for teacher leaders to plan together."],
    ["The literacy coach visits each school twice a month.", "Principals report progress every quarter."],
    [],
    ["The budget for substitutes was cut by a third this year, " * 6],
]


def test_a_pdf_is_read_as_paragraphs_with_their_pages(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "plan.pdf", PLAN)
    (source,), _ = discover([path])
    (doc,) = read_source(source)
    assert doc.format == "pdf" and doc.metadata["source_type"] == "document"
    found = [(doc.text[t.start : t.end], t.page_start, t.page_end) for t in doc.turns]
    assert found[:4] == [
        ("District Literacy Plan", 1, 1),
        ("The district will fund release time for teacher leaders to plan together.", 1, 1),
        ("The literacy coach visits each school twice a month.", 2, 2),
        ("Principals report progress every quarter.", 2, 2),
    ]
    # a paragraph's lines on the page are one line of text: a sentence is quoted whole
    assert found[4] == (PLAN[3][0].strip(), 4, 4) and len(found) == 5
    assert doc.notes == ["no text on page(s) 3: scanned pages need OCR first"]
    units = cut(doc, Units(unit="turn"))
    assert [(u.page_start, u.page_end) for u in units] == [(1, 1), (1, 1), (2, 2), (2, 2), (4, 4)]
    assert all(u.text == doc.text[u.start : u.end] for u in units)
    (chunk,) = cut(doc, Units(size=2000))
    assert (chunk.page_start, chunk.page_end) == (1, 4)


def test_bad_pdfs_are_refused_by_name_and_the_others_are_coded(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    write_pdf(folder / "plan.pdf", PLAN)
    write_pdf(folder / "scanned.pdf", [[], []])
    write_pdf(folder / "locked.pdf", PLAN, password="secret")
    (folder / "damaged.pdf").write_bytes(write_pdf(tmp_path / "whole.pdf", PLAN).read_bytes()[:300])
    write(folder / "not-a-pdf.pdf", "Interviewer: this is text, named .pdf\n")
    scripted_coder("first-in-pdfs", proposes="first-code", confidence=0.9)
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    summary = code_store(folder, codebook, tmp_path / "docs.db", coder="first-in-pdfs", unit="turn")
    failed = {Path(f.path).name: f.error for f in summary.failed}
    assert failed["scanned.pdf"] == "no text: scanned pages need OCR first (e.g. ocrmypdf), then read the result"
    assert failed["locked.pdf"] == "the PDF is encrypted with a password: save an unencrypted copy first"
    assert failed["damaged.pdf"].startswith("not a readable PDF")
    assert failed["not-a-pdf.pdf"].startswith("not a readable PDF")
    assert summary.transcripts == 1 and summary.chunks == 5
    pages = rows(tmp_path / "docs.db", "select page_start, page_end from chunks order by page_start")
    assert pages == [(1, 1), (1, 1), (2, 2), (2, 2), (4, 4)]


def test_a_word_memo_without_speakers_has_a_turn_per_paragraph(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    for paragraph in ["Memo to principals", "Release time starts in March.", "", "Coaches visit twice a month."]:
        document.add_paragraph(paragraph)
    document.save(str(tmp_path / "memo.docx"))
    (source,), _ = discover([tmp_path / "memo.docx"])
    (memo,) = read_source(source)
    assert [memo.text[t.start : t.end] for t in memo.turns] == [
        "Memo to principals",
        "Release time starts in March.",
        "Coaches visit twice a month.",
    ]
    assert memo.metadata["source_type"] == "document"


def test_turn_units_and_pages_reach_the_queue_the_exports_and_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PDF and an interview coded by turns: the queue and the csv export give each suggestion its
    unit and pages, and a REFI-QDA export keeps each coding on the words it was made on."""
    from pipeline.exchange.projects import read_project

    scripted_coder("first-waits", proposes="first-code", confidence=0.3)  # every suggestion waits for review
    folder = tmp_path / "study"
    write_pdf(folder / "plan.pdf", PLAN)
    write(folder / "a.txt", INTERVIEW)
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "study.db"
    summary = code_store(
        folder, codebook, db, coder="first-waits", unit="turn", skip_speakers="interviewer", audit_share=0
    )
    assert summary.chunks == 7 and summary.queued == 7

    waiting = json.loads(qcode("queue", "--db", db, "--json").stdout)
    assert sorted((i["source_name"], i["unit"], i["pages"]) for i in waiting["items"]) == sorted(
        [("a.txt", "turn", None)] * 2 + [("plan.pdf", "turn", p) for p in ("p. 1", "p. 1", "p. 2", "p. 2", "p. 4")]
    )
    monkeypatch.setattr(pipeline.cli.review, "out", Console(width=300, color_system=None))
    lines = qcode("queue", "--db", db).stdout.splitlines()  # at 80 columns the page may go under the name
    assert any("plan.pdf," in line and "p. 4" in f"{line} {after}" for line, after in zip(lines, lines[1:]))

    # a document's exemplar quotes name their page, in the matrices too
    page = tmp_path / "matrix.html"
    assert qcode("matrix", "--db", db, "--cols", "source_type", "--status", "all", "--out", page).exit_code == 0
    assert "plan.pdf, p. " in page.read_text(encoding="utf-8")

    out = tmp_path / "suggestions.csv"
    assert qcode("export", "--db", db, "--format", "csv", "--out", out).exit_code == 0
    records = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {(r["source_name"], r["unit"], r["page_start"], r["page_end"]) for r in records} == {
        ("a.txt", "turn", "", ""),
        ("plan.pdf", "turn", "1", "1"),
        ("plan.pdf", "turn", "2", "2"),
        ("plan.pdf", "turn", "4", "4"),
    }

    # coded again with confidence: the codes stand, and a REFI-QDA project carries them
    scripted_coder("first-stands", proposes="first-code", confidence=0.9)
    code_store(folder, codebook, db, coder="first-stands", unit="turn", skip_speakers="interviewer", audit_share=0)
    latest = tmp_path / "latest.csv"
    assert qcode("export", "--db", db, "--run", "latest", "--format", "csv", "--out", latest).exit_code == 0
    quotes = sorted((r["source_name"], r["quote"]) for r in csv.DictReader(latest.open(encoding="utf-8")))
    project = tmp_path / "study.qdpx"
    answer = qcode("export", "--db", db, "--run", "latest", "--format", "qdpx", "--out", project)
    assert answer.exit_code == 0, answer.stderr
    back = read_project(project)
    names = {t.id: t.source_name.rsplit("/", 1)[-1] for t in back.transcripts}
    texts = {t.id: t.text for t in back.transcripts}
    coded = sorted((names[c.transcript_id], texts[c.transcript_id][c.start : c.end]) for c in back.codes)
    assert len(coded) == 7 and coded == quotes


def test_a_reviewer_sees_whose_words_in_a_chunk_are_not_coded(tmp_path: Path) -> None:
    from pipeline.review.decisions import passage
    from pipeline.store import Store

    scripted_coder("trust-phrase", proposes="phrases", phrases={"trust her": [("trust", 0.3, "I trust her")]})
    folder = write_transcripts(tmp_path / "study", {"a.txt": INTERVIEW})
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    db = tmp_path / "s.db"
    code_store(folder, codebook, db, coder="trust-phrase", skip_speakers="interviewer", audit_share=0)
    (chunk_id,) = rows(db, "select chunk_id from suggestions")[0]
    shown = passage(Store(str(db)), chunk_id)
    assert shown.context_speakers == ["Interviewer"] and shown.unit is None and shown.pages is None
    assert shown.speakers == ["Interviewer", "Ms. Chen"]


def test_people_s_codes_from_another_qda_tool_count_for_the_turns_that_hold_them(tmp_path: Path) -> None:
    """`qcode agreement --db` over a run of turn units: each imported code counts for its turn."""
    scripted_coder(
        "turn-phrases",
        proposes="phrases",
        phrases={"grant": [("funding", 0.9, "a grant for release time")], "trust her": [("trust", 0.9, "I trust her")]},
    )
    project = write_project(
        tmp_path / "pilot.qdpx",
        INTERVIEW,
        [
            ("ana", "funding", "a grant for release time"),
            ("ana", "trust", "I trust her with my hardest class"),
            ("ben", "funding", "The district gave us a grant"),
        ],
    )
    db = tmp_path / "q.db"
    assert qcode("import", project, "--db", db, "--codebook-out", tmp_path / "cb.yaml").exit_code == 0
    summary = code_store(
        [project], tmp_path / "cb.yaml", db, coder="turn-phrases", unit="turn", skip_speakers="interviewer"
    )
    assert summary.chunks == 2
    answer = qcode("agreement", "--db", db, "--run", "latest", "--json", "--bootstrap", "0")
    assert answer.exit_code == 0, answer.stderr
    report = json.loads(answer.stdout)
    assert report["units"] == 2 and report["single_label"] is True
    assert {c["name"]: c["units"] for c in report["coders"]} == {"ana": 2, "ben": 2, "turn-phrases:scripted-1": 2}
    codings = tmp_path / "codings.csv"
    assert qcode("export", "--db", db, "--run", "latest", "--format", "codings", "--out", codings).exit_code == 0
    # the participant's two answers: the run's units
    first, second = (i for (i,) in rows(db, "select id from chunks where unit = 'turn' order by start"))
    rows_ = {(r["unit_id"], r["coder"], r["code"]) for r in csv.DictReader(codings.open(encoding="utf-8"))}
    assert {(u, c, k) for u, c, k in rows_ if c in ("ana", "ben")} == {
        (first, "ana", "funding"),
        (second, "ana", "trust"),
        (first, "ben", "funding"),
        (second, "ben", ""),
    }


def test_front_matter_names_whose_words_are_coded_in_its_file(tmp_path: Path) -> None:
    t = transcript(
        tmp_path,
        "---\ndistrict: Harbor\nskip_speakers: [Q, Dr. *]\n---\nQ: Who plans?\nDr. Ramos: I do.\nP1: We all do.\n",
        "a.md",
    )
    assert t.speaker_choice == SpeakerChoice(skip_speakers=("Q", "Dr. *"))
    assert t.metadata == {"district": "Harbor", "source_type": "focus group"}
    units = cut(t, Units(unit="turn", speakers=SpeakerChoice.of(skip_speakers="interviewer")))
    assert [u.text for u in units] == ["We all do."]  # the file's choice stands over the run's


def test_skip_names_meant_for_other_files_are_no_news_while_one_matches(tmp_path: Path) -> None:
    scripted_coder("skip-first", proposes="first-code", confidence=0.9)
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    other = "Q: What helps?\nMr. Ortiz: The grant does.\n"
    folder = write_transcripts(
        tmp_path / "study", {"a.txt": INTERVIEW, "b.txt": other, "c.txt": "Host: Hi?\nAna: Hello.\n"}
    )
    summary = code_store(
        folder, codebook, tmp_path / "s.db", coder="skip-first", unit="turn", skip_speakers=["Interviewer", "Q"]
    )
    # a.txt has Interviewer, b.txt has Q: nothing to say; c.txt has neither: its label differs
    assert [(Path(n.path).name, n.note) for n in summary.notes] == [
        ("c.txt", "speakers named by the run match nobody here: Interviewer, Q (its speakers: Host, Ana)")
    ]
