"""`qcode report`: one self-contained HTML file with every section and the right numbers.

One real SQLite database for the module: eight one-passage transcripts coded by a real
run (tests/fakes/review_server.py's queueing coder), given confidences from 0.15 to 0.95,
then settled by reviewers (accept, reject, change, add) and coded blind by two of them.
The numbers each section must show are worked out by hand below. The page is opened in
Debian's Chromium through Playwright (QCODE_TEST_CHROMIUM or /usr/bin/chromium); that test
alone skips, saying why, when no browser is installed.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fakes import SMALL_CODEBOOK, qcode
from fakes.browser import CHROMIUM, LAUNCH_ARGS, VIEWPORT, require_chromium
from fakes.review_server import make_review_db, make_reviewers
from golden import check, check_text, plain
from sqlalchemy import select, update

from pipeline.measure.agreement import codings_from_store, measure_agreement
from pipeline.measure.calibration import RoutedSuggestion, calibration, threshold_sweep, wilson_interval
from pipeline.measure.report import (
    BOOTSTRAP_REPLICATES,
    BOOTSTRAP_SEED,
    build_report,
    choose_attributes,
    matrices_section,
    render_report,
)
from pipeline.review.blind import assignments, create_sample, submit
from pipeline.review.decisions import DecisionRequest, add_code, decide
from pipeline.review.reviewers import authenticate
from pipeline.store import DecisionRecord, RunRecord, Store, SuggestionRecord, TranscriptRecord

MARKUP = "<script>window.__xss=1</script> & <b>bold</b>"
TRANSCRIPTS = {
    "t1.txt": "Teacher: We asked about the weather and the parking lot again.\n",
    "t2.txt": "Principal: I trust my teacher leaders, and they trust me.\n",
    "t3.txt": f"Teacher: {MARKUP} the grant paid for new materials.\n",
    "t4.txt": "Principal: The district budget paid for release time.\n",
    "t5.txt": "Teacher: Our coach listens, and we respect each other.\n",
    "t6.txt": "Principal: Money for substitutes came through, and people trust the plan.\n",
    "t7.txt": "Teacher: Nobody told us anything about the schedule.\n",
    "t8.txt": "Principal: The grant bought laptops for every classroom.\n",
    "manifest.csv": "file,district,role,interviewee\n"
    + "".join(
        f"t{n}.txt,{'North' if n <= 4 else 'South'},{'teacher' if n % 2 else 'principal'},Person {n}\n"
        for n in range(1, 9)
    ),
}
# the coder's confidence, routing and code for each transcript's one suggestion
SUGGESTIONS = {
    "t1.txt": (0.15, "review", "funding"),
    "t2.txt": (0.35, "review", "funding"),
    "t3.txt": (0.45, "review", "funding"),
    "t4.txt": (0.55, "review", "funding"),
    "t5.txt": (0.65, "audit", "trust"),
    "t6.txt": (0.75, "accepted", "funding"),
    "t7.txt": (0.85, "audit", "funding"),
    "t8.txt": (0.95, "accepted", "funding"),
}
# (reviewer, request) on each transcript's suggestion; t6 and t8 were accepted without review
DECISIONS = {
    "t1.txt": ("ana", DecisionRequest(verdict="reject", reason="About the weather, not funding")),
    "t2.txt": ("ana", DecisionRequest(verdict="change", code="trust")),
    "t3.txt": ("ben", DecisionRequest(verdict="accept")),
    "t4.txt": ("ben", DecisionRequest(verdict="accept")),
    "t5.txt": ("ana", DecisionRequest(verdict="accept")),
    "t7.txt": ("ben", DecisionRequest(verdict="reject", reason="About a schedule, not funding")),
}
# blind codes of ana and ben on every passage
BLIND = {
    "t1.txt": ([], []),
    "t2.txt": (["trust"], ["trust"]),
    "t3.txt": (["funding"], ["funding"]),
    "t4.txt": (["funding"], ["funding"]),
    "t5.txt": (["trust"], ["trust"]),
    "t6.txt": (["funding", "trust"], ["funding"]),
    "t7.txt": ([], ["trust"]),
    "t8.txt": (["funding"], ["funding"]),
}
SECTIONS = [
    "1. Agreement per code",
    "2. Confusion between codes",
    "3. Calibration: stated confidence against reviewers' acceptance",
    "4. Threshold sweep",
    "5. Codes by case attribute",
    "6. Triangulation: which kinds of source show each code",
    "7. The learned model: how far each code can be trusted",
    "8. Methods",
]


@dataclass
class Study:
    folder: Path
    db: Path
    bare: Path  # the same run before any review
    run_id: str


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    folder = tmp_path_factory.mktemp("report")
    codebook = folder / "small.yaml"
    codebook.write_text(SMALL_CODEBOOK, encoding="utf-8")
    db = folder / "study.db"
    run_id = make_review_db(folder, TRANSCRIPTS, codebook, db)
    passwords = make_reviewers(db, {"ana": "reviewer", "ben": "reviewer", "lea": "lead"}, run_id)
    store = Store(str(db))
    with store.session() as s:
        rows = s.execute(
            select(SuggestionRecord.id, TranscriptRecord.source_name, SuggestionRecord.chunk_id).join(
                TranscriptRecord, TranscriptRecord.id == SuggestionRecord.transcript_id
            )
        ).all()
        for sid, name, _ in rows:
            confidence, status, code = SUGGESTIONS[name]
            s.execute(
                update(SuggestionRecord)
                .where(SuggestionRecord.id == sid)
                .values(confidence=confidence, status=status, code=code)
                .execution_options(synchronize_session=False)
            )
        codebook_version = s.scalar(select(RunRecord.codebook_version))
    assert sorted(name for _, name, _ in rows) == sorted(SUGGESTIONS)
    bare = folder / "bare.db"
    with sqlite3.connect(db) as source, sqlite3.connect(bare) as target:
        source.backup(target)

    people = {name: authenticate(store, name, password) for name, password in passwords.items()}
    ids = {name: (sid, chunk) for sid, name, chunk in rows}
    # blind first, as a study does it: a passage a reviewer has already reviewed is not drawn for them
    assert create_sample(store, people["lea"], run_id, 8, ["ana", "ben"], seed=1).passages == 8
    chunk_names = {chunk: name for name, (_, chunk) in ids.items()}
    for position, reviewer in enumerate(("ana", "ben")):
        for item in assignments(store, people[reviewer]):
            submit(store, people[reviewer], item.id, BLIND[chunk_names[item.chunk_id]][position])
    for name, (reviewer, request) in DECISIONS.items():
        decide(store, people[reviewer], ids[name][0], 1, request)
    add_code(store, people["ana"], ids["t6.txt"][1], codebook_version, DecisionRequest(verdict="add", code="trust"))
    store.engine.dispose()
    return Study(folder, db, bare, run_id)


def run_report(db: Path | str, out: Path, *extra: str) -> Any:
    return qcode("report", "--db", str(db), "--out", str(out), *extra)


@pytest.fixture(scope="module")
def report(study: Study) -> str:
    out = study.folder / "report.html"
    result = run_report(study.db, out)
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


class Tables(HTMLParser):
    """Every table of a page by id: rows of cell texts, each row's attributes."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[tuple[dict[str, str], list[str]]]] = {}
        self._table: str | None = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._depth = 0
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "table":
            self._depth += 1
            if self._depth == 1:
                self._table = attributes.get("id", f"table-{len(self.tables)}")
                self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
            self.tables[self._table].append((attributes, self._row))
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(re.sub(r"\s+", " ", " ".join(self._cell)).strip())
            self._cell = None
        elif tag == "table":
            self._depth -= 1
            if self._depth == 0:
                self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def text_of(page: str) -> str:
    """The page's visible words, roughly: tags, styles and plots removed, entities decoded."""
    page = re.sub(r"<(style|svg)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"</?(?:code|em|strong|span|b|i|kbd)\b[^>]*>", "", page)  # inline: no word break
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def row(tables: Tables, table: str, **attributes: str) -> list[str]:
    found = [cells for attrs, cells in tables.tables[table] if all(attrs.get(k) == v for k, v in attributes.items())]
    assert len(found) == 1, (table, attributes, tables.tables[table])
    return found[0]


# ---------------------------------------------------------------- the page as a whole


def test_the_report_is_one_self_contained_file(report: str) -> None:
    # nothing to fetch: every src and href is an anchor inside the page, no script, no stylesheet link
    references = re.findall(r"""\b(?:src|href|xlink:href|action|poster|srcset)\s*=\s*["']?([^"'\s>]*)""", report, re.I)
    assert references, "the table of contents links its sections"
    assert all(ref.startswith("#") for ref in references), [r for r in references if not r.startswith("#")]
    for forbidden in ("<script", "<link", "<iframe", "<object", "<embed", "<img", "@import", "@font-face"):
        assert forbidden not in report.lower(), forbidden
    assert re.findall(r"url\((?!#)", report) == []  # SVG clip paths point inside the page
    assert not re.search(r"https?://(?!www\.w3\.org/)", report)  # only SVG's namespace names, never fetched
    assert report.count("<svg") == 3  # agreement, calibration, sweep
    # several plots in one page never share an element id
    ids = re.findall(r'\bid="([^"]+)"', report)
    assert len(ids) == len(set(ids)), [i for i in set(ids) if ids.count(i) > 1]


def test_every_section_is_there(report: str) -> None:
    headings = [text_of(h).strip() for h in re.findall(r"<h2\b[^>]*>(.*?)</h2>", report, re.S)]
    assert headings == SECTIONS
    for empty in ("agreement-empty", "calibration-empty", "sweep-empty", "frequencies-empty", "methods-empty"):
        assert f'id="{empty}"' not in report, f"{empty}: the study has data for it"


def test_markup_in_a_transcript_quote_shows_escaped(report: str) -> None:
    assert "<script>window.__xss" not in report and "<b>bold</b>" not in report
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in report
    assert MARKUP in text_of(report)


# ---------------------------------------------------------------- the numbers of each section


def test_calibration_counts_equal_the_decisions(report: str, study: Study) -> None:
    tables = Tables(report)
    # bin: suggestions, decided, accepted, rejected or changed, acceptance rate
    expected = {
        "0.0": ["0", "0", "0", "0", "–"],
        "0.1": ["1", "1", "0", "1", "0%"],
        "0.2": ["0", "0", "0", "0", "–"],
        "0.3": ["1", "1", "0", "1", "0%"],
        "0.4": ["1", "1", "1", "0", "100%"],
        "0.5": ["1", "1", "1", "0", "100%"],
        "0.6": ["1", "1", "1", "0", "100%"],
        "0.7": ["1", "0", "0", "0", "–"],
        "0.8": ["1", "1", "0", "1", "0%"],
        "0.9": ["1", "0", "0", "0", "–"],
    }
    for low, cells in expected.items():
        assert row(tables, "calibration-table", **{"data-bin": low})[1:6] == cells, low
    total = tables.tables["calibration-table"][-1][1]
    assert total[:6] == ["all", "8", "6", "3", "3", "50%"]
    # ... and the decisions are the store's: one per reviewed suggestion, the added code not among them
    store = Store(str(study.db))
    with store.session() as s:
        on_suggestions = s.scalars(select(DecisionRecord).where(DecisionRecord.suggestion_id.is_not(None))).all()
    store.engine.dispose()
    assert len(on_suggestions) == 6
    assert sum(v.verdict == "accept" for v in on_suggestions) == 3
    # 1/8 + 0.35^2 + ... : Brier score of the six decided confidences against acceptance
    brier = (
        (0.15 - 0) ** 2 + (0.35 - 0) ** 2 + (0.45 - 1) ** 2 + (0.55 - 1) ** 2 + (0.65 - 1) ** 2 + (0.85 - 0) ** 2
    ) / 6
    assert f"Brier score {brier:.3f}" in text_of(report)


def test_threshold_sweep_rows(report: str) -> None:
    tables = Tables(report)
    header = tables.tables["sweep-table"][0][1]
    assert header[:3] == ["threshold", "sent to review", "with the audit"]
    # at 0.60: four suggestions below; above it, 0.65 (audit, accepted) and 0.85 (audit, rejected) were
    # decided, 0.75 and 0.95 (accepted unseen) lie in strata nobody reviewed: error 1/2, coverage 2/4
    assert row(tables, "sweep-table", **{"data-threshold": "0.60"}) == [
        "0.60",
        "4 (50%)",
        "50%",
        "4",
        "2",
        "1",
        "50.0% [9.5%, 90.5%]",
        "50%",
        "2.0",
    ]
    # at 0: every decided suggestion, each alone in its stratum: 3 errors in 6, coverage 6/8
    assert row(tables, "sweep-table", **{"data-threshold": "0.00"})[:8] == [
        "0.00",
        "0 (0%)",
        "0%",
        "8",
        "6",
        "3",
        "50.0% [18.8%, 81.2%]",
        "75%",
    ]
    # at 0.90 only the unseen 0.95 is left: no estimate
    assert row(tables, "sweep-table", **{"data-threshold": "0.90"})[:8] == [
        "0.90",
        "7 (88%)",
        "88%",
        "1",
        "0",
        "0",
        "–",
        "0%",
    ]


def test_agreement_figures_are_those_of_pipeline_agreement(report: str, study: Study) -> None:
    store = Store(str(study.db))
    expected = measure_agreement(
        codings_from_store(store, None), bootstrap=BOOTSTRAP_REPLICATES, seed=BOOTSTRAP_SEED
    ).model_dump(mode="json")
    store.engine.dispose()
    humans = expected["overall_humans"]["krippendorff_alpha"]
    lo, hi = expected["overall_humans"]["krippendorff_alpha_ci95"]
    text = text_of(report)
    assert f"Krippendorff's α with the MASI distance was {humans:.2f} (95% CI {lo:.2f} to {hi:.2f})" in text
    model = next(p for p in expected["pairwise"] if p["kind"] == "model-consensus")
    kappa, (klo, khi) = model["cohen_kappa"], model["cohen_kappa_ci95"]
    assert (
        f"on {model['units']} passages at Cohen's κ (mean over codes) = {kappa:.2f} (95% CI {klo:.2f} to {khi:.2f})"
    ) in text
    tables = Tables(report)
    for entry in expected["per_code"]:
        cells = row(tables, "agreement-table", **{"data-code": entry["code"]})
        value = entry["humans"]["krippendorff_alpha"]
        assert cells[2] == (
            "n/a"
            if value is None
            else f"{value:.2f} [{entry['humans']['krippendorff_alpha_ci95'][0]:.2f}, "
            f"{entry['humans']['krippendorff_alpha_ci95'][1]:.2f}]"
        )
    # the confusion table is pipeline.measure.agreement's, less the codes neither side applied
    matrix = expected["models"][0]["confusion"]
    shown = {cells[0]: cells[1:] for _, cells in tables.tables["confusion-blind-1"][1:]}
    labels = tables.tables["confusion-blind-1"][0][1][1:]
    assert labels == [
        label
        for i, label in enumerate(matrix["labels"])
        if any(matrix["matrix"][i]) or any(r[i] for r in matrix["matrix"])
    ]
    for label in labels:
        i = matrix["labels"].index(label)
        assert shown[label] == [str(matrix["matrix"][i][matrix["labels"].index(c)]) for c in labels]
    # t6 (ana funding and trust, ben funding) and t7 (ana none, ben trust) have no consensus
    assert expected["consensus"]["units"] == 6
    assert "A small sample: with 8 passages coded twice the intervals are wide" in text
    assert shown["funding"][labels.index("funding")] == "3"


def test_review_confusion_counts_each_decided_suggestion(report: str) -> None:
    tables = Tables(report)
    head = tables.tables["confusion-review"][0][1]
    assert head == ["model ↓ · reviewer →", "funding", "trust", "(rejected)"]
    rows = {cells[0]: cells[1:] for _, cells in tables.tables["confusion-review"][1:]}
    assert rows == {"funding": ["2", "1", "2"], "trust": ["0", "1", "0"]}


def test_codes_by_district_and_role_with_an_exemplar_quote(report: str) -> None:
    tables = Tables(report)
    freq = tables.tables["frequencies-1"]
    assert freq[0][1] == ["district", "North", "North", "South", "South", "all"]
    assert freq[1][1] == ["role", "principal", "teacher", "principal", "teacher", "all"]
    assert freq[2][1][1:5] == ["2 transcripts"] * 4
    # accepted unseen (t6, t8), accepted by a reviewer (t3, t4); t1 and t7 rejected; t2 changed to trust
    funding = row(tables, "frequencies-1", **{"data-code": "funding"})
    assert funding[-1] == "4 · 4"
    assert funding[1].startswith("1 · 1 ") and "The district budget paid for release time." in funding[1]
    assert funding[2].startswith("1 · 1 ") and MARKUP in funding[2]  # t3's quote, as text
    assert funding[3].startswith("2 · 2 ")
    assert funding[4] == "–"
    trust = row(tables, "frequencies-1", **{"data-code": "trust"})
    assert [cell.split(" ", 3)[:3] for cell in trust[1:5]] == [["1", "·", "1"], ["–"], ["1", "·", "1"], ["1", "·", "1"]]
    assert trust[-1] == "3 · 3"
    # the interviewee's name is one value per transcript: never a column
    assert "Person 1" not in report


def test_methods_paragraph_has_the_numbers(report: str) -> None:
    text = text_of(report)
    paragraph = text[text.index("The 8 transcripts") : text.index("Statistics and their sources")]
    for words in [
        "The 8 transcripts, split into 8 passages of whole speaker turns (at most 1,200 characters)",
        "using the review-test coder (model queueing-1, prompt version queueing-v1)",
        "against the codebook “Small test codebook” (version",
        "2 applicable codes, nominal",
        "(0 such proposals)",
        "Of the 8 suggestions, those with confidence below 0.6 (4) were queued for review, and a seeded random 0% "
        "of the others (2) for an audit; the remaining 2 were accepted without review.",
        "In review, 2 reviewers made 7 decisions: 3 accepted, 2 rejected and 1 changed to another code, "
        "and 1 code added that the coder had missed.",
        "A random sample of 8 passages was coded independently and blind",
        "by 2 reviewers",
        "percentile bootstrap intervals over passages (1,000 replicates, seed 0)",
        "Of the 6 suggestions reviewers settled, they accepted 50.0% (95% CI 18.8% to 81.2%)",
        "At the routing threshold of 0.6, the estimated error rate of the suggestions accepted without review was "
        "50.0% (95% CI 9.5% to 90.5%; 1 error among 2 reviewed suggestions",
    ]:
        assert words in paragraph, words
    for source in (
        "Krippendorff, K. (2011)",
        "Cohen, J. (1960)",
        "Fleiss, J. L. (1971)",
        "Gwet, K. L. (2008)",
        "Wilson, E. B. (1927)",
        "Efron, B., & Tibshirani",
        "Brier, G. W. (1950)",
        "Kish, L. (1965)",
    ):
        assert source in text, source


# ---------------------------------------------------------------- no data, and bad input


def test_an_empty_database_gives_a_report_that_says_so(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    Store(str(db)).engine.dispose()
    out = tmp_path / "empty.html"
    result = run_report(db, out)
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    text = text_of(page)
    for heading in SECTIONS:
        assert heading in text
    for empty in ("agreement-empty", "calibration-empty", "sweep-empty", "frequencies-empty", "methods-empty"):
        assert f'id="{empty}"' in page, empty
    for words in (
        "No runs yet.",
        "No reviewer decisions yet.",
        "No suggestions yet.",
        "No codes applied yet.",
        "No runs yet, so there is nothing to describe.",
    ):
        assert words in text, words
    assert "<svg" not in page and "nan" not in text.lower().split()


def test_a_run_without_review_says_how_to_get_the_missing_evidence(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "bare.html"
    result = run_report(study.bare, out, "--run", "latest")
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    text = text_of(page)
    assert "No blind double codes yet." in text
    assert "Double coding page of the review app (qcode serve)" in text
    assert "No reviewer decisions yet on any of the 8 suggestions." in text
    assert "the error of auto-accepted suggestions cannot be estimated" in text
    assert "No passages have been double-coded blind yet" in text
    # what can be shown still is: the share sent to review, and the codes accepted without review
    assert page.count("<svg") == 1
    tables = Tables(page)
    assert row(tables, "sweep-table", **{"data-threshold": "0.60"})[:3] == ["0.60", "4 (50%)", "50%"]
    assert row(tables, "frequencies-1", **{"data-code": "funding"})[-1] == "2 · 2"
    assert "6 suggestions still waiting for review left out" in text


def test_one_run_and_bad_arguments(study: Study, tmp_path: Path) -> None:
    out = tmp_path / "run.html"
    result = run_report(study.db, out, "--run", study.run_id)
    assert result.exit_code == 0, result.output
    assert f"Run {study.run_id}" in out.read_text(encoding="utf-8")
    assert "8 suggestion(s), 7 decision(s), 8 passage(s) coded blind" in result.output

    result = run_report(study.db, tmp_path / "x.html", "--run", "nope")
    assert result.exit_code == 1 and "no run 'nope'" in result.output
    result = run_report(tmp_path / "missing.db", tmp_path / "x.html")
    assert result.exit_code == 1 and "no database at" in result.output
    assert not (tmp_path / "missing.db").exists() and not (tmp_path / "x.html").exists()
    result = qcode("report", "--db", str(study.db))
    assert result.exit_code == 2 and "--out" in result.output


# ---------------------------------------------------------------- pinned whole


def pinned(store_path: Path, run_id: str | None = None) -> tuple[Any, str]:
    """build_report's data, and the page rendered from it, less what changes from one run of the
    tests to the next: the time, run ids and timestamps, the plots (their own tests check them)."""
    store = Store(str(store_path))
    try:
        report = build_report(store, run_id)
        page = render_report(report)
    finally:
        store.engine.dispose()
    data = plain(report)
    assert set(data["plots"]) <= {"agreement", "calibration", "sweep"}
    runs = [r["id"] for r in data["runs"]]
    del data["plots"], data["generated_at"]
    for r in data["runs"]:
        # what the report reads of a run's parameters; the rest is the run's own business
        r["started_at"] = r["finished_at"] = "<time>"
        r["parameters"] = {k: v for k, v in r["parameters"].items() if k in ("chunk_size", "routing")}
        del r["summary"]
    for key in ("first_run", "last_run"):
        data["methods"][key] = data["methods"][key] and "<time>"
    text = json.dumps(data, ensure_ascii=False)
    text = re.sub(r'"(qcode_version|coder_key)": "[^"]*"', r'"\1": "<\1>"', text)
    for i, run in enumerate(runs):
        text = text.replace(run, f"<run {i}>")
        page = page.replace(run, f"<run {i}>")
    page = re.sub(r"<svg\b.*?</svg>", "<svg/>", page, flags=re.S)
    page = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d( UTC)?", "<time>", page)
    page = re.sub(r"qcode \d[^ <\"]*", "qcode <version>", page)
    return json.loads(text), page


def test_report_data_and_page_are_pinned(study: Study, tmp_path: Path) -> None:
    data, page = pinned(study.db)
    check("report/study", data)
    check_text("report/study.html", page)
    data, page = pinned(study.bare, "latest")
    check("report/bare", data)
    check_text("report/bare.html", page)
    empty = tmp_path / "empty.db"
    Store(str(empty)).engine.dispose()
    data, page = pinned(empty)
    check("report/empty", data)
    check_text("report/empty.html", page)
    result = run_report(study.db, tmp_path / "study.html", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary.pop("out") == str(tmp_path / "study.html")
    assert summary.pop("bytes") == (tmp_path / "study.html").stat().st_size
    check("report/summary", summary)


# ---------------------------------------------------------------- the estimators, by hand


def test_wilson_interval_reproduces_newcombes_worked_examples() -> None:
    # Newcombe, R. G. (1998). Two-sided confidence intervals for the single proportion: comparison of seven
    # methods. Statistics in Medicine, 17, 857-872, Table I, method 3 (score method without continuity correction)
    for (k, n), (lo, hi) in {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }.items():
        got = wilson_interval(k, n)
        assert got is not None and round(got[0], 4) == lo and round(got[1], 4) == hi, (k, n, got)
    assert wilson_interval(0, 0) is None


def test_the_sweep_weights_each_stratum_by_its_size() -> None:
    # 10 suggestions under the routing threshold, 5 of them reviewed with 2 errors; 30 confident ones, of which
    # an audit of 3 found no error. Unweighted the error above 0.5 would be 2/8; each stratum weighed by its
    # size gives (10 * 2/5 + 30 * 0/3) / 40 = 0.1, with n_eff = 40^2 / (10^2/5 + 30^2/3) = 5.
    items = [
        RoutedSuggestion(0.55, True, ("reject", "change", "accept", "accept", "accept")[i] if i < 5 else None)
        for i in range(10)
    ]
    items += [RoutedSuggestion(0.75, False, "accept" if i < 3 else None) for i in range(30)]
    at, above = threshold_sweep(items, audit_share=0.1, thresholds=[0.5, 0.6])
    assert (at.to_review, at.auto_accepted, at.decided, at.errors) == (0, 40, 8, 2)
    assert at.error == pytest.approx(0.1) and at.n_eff == pytest.approx(5.0) and at.coverage == 1.0
    assert at.ci95 == pytest.approx(wilson_interval(0.5, 5))
    assert at.expected_errors == pytest.approx(0.1 * 40 * 0.9)
    assert above.share_to_review == pytest.approx(0.25) and above.share_with_audit == pytest.approx(0.325)
    assert above.error == 0.0 and above.decided == 3
    # one stratum: the plain share of errors among the decided
    (only,) = threshold_sweep(items[:10], thresholds=[0.0])
    assert only.error == pytest.approx(2 / 5) and only.n_eff == pytest.approx(5)
    assert threshold_sweep([], thresholds=[0.5])[0].share_to_review is None


def test_calibration_bins_and_scores() -> None:
    result = calibration([(0.05, False), (0.12, True), (0.18, False), (1.0, True)], [0.05, 0.12, 0.18, 1.0, 0.5])
    bins = result.bins
    assert [b.suggestions for b in bins] == [1, 2, 0, 0, 0, 1, 0, 0, 0, 1]
    assert (bins[1].decided, bins[1].accepted, bins[1].rate) == (2, 1, 0.5)
    assert bins[1].mean_confidence == pytest.approx(0.15)
    assert bins[9].rate == 1.0 and bins[5].rate is None
    assert result.brier == pytest.approx((0.05**2 + 0.88**2 + 0.18**2 + 0) / 4)
    # |0 - 0.05| * 1 + |0.5 - 0.15| * 2 + |1 - 1| * 1, over 4
    assert result.ece == pytest.approx((0.05 + 0.7) / 4)
    assert calibration([], []).brier is None
    # a bin of suggestions stated with confidence 0 counts in the calibration error too
    assert calibration([(0.0, True)], [0.0]).ece == pytest.approx(1.0)


def test_codes_without_case_attributes_get_one_column(tmp_path: Path) -> None:
    transcripts = {
        "a": {"source_name": "a.txt", "metadata": {}, "label": "a.txt"},
        "b": {"source_name": "b.txt", "metadata": {"note": "only here"}, "label": "b.txt"},
    }
    suggestions = [
        {
            "suggestion_id": "s1",
            "chunk_id": "c1",
            "transcript_id": "a",
            "code": "trust",
            "quote": "We trust them.",
            "quote_start": 9,
            "quote_end": 23,
            "confidence": 0.9,
            "status": "accepted",
        },
        {
            "suggestion_id": "s2",
            "chunk_id": "c2",
            "transcript_id": "b",
            "code": "trust",
            "quote": "Trust grew.",
            "quote_start": 9,
            "quote_end": 20,
            "confidence": 0.4,
            "status": "review",
        },
    ]
    section = matrices_section([], transcripts, suggestions, [], {}, None)
    assert section.attributes == [] and section.pending == 1 and section.applied == 1
    (table,) = section.tables
    assert table.by == [] and [c.model_dump() for c in table.columns] == [{"labels": [], "transcripts": 2}]
    assert [c.model_dump() for c in table.rows[0].cells] == [
        {"passages": 1, "transcripts": 1, "quote": "We trust them.", "source": "a.txt", "reviewed": False}
    ]
    assert section.cooccurrence is not None and section.cooccurrence.rows[0].cells[0].n == 1
    # on the page of an empty database, in place of its section
    store = Store(str(tmp_path / "empty.db"))
    try:
        empty = build_report(store)
    finally:
        store.engine.dispose()
    page = render_report(empty.model_copy(update={"matrices": section}))
    assert 'id="frequencies-no-attributes"' in page and "We trust them." in page


def test_attributes_worth_a_column() -> None:
    meta = {
        f"t{i}": {
            "district": "N" if i < 3 else "S",
            "role": ["a", "b", "c"][i % 3],
            "name": f"Person {i}",
            "note": "same everywhere",
            "rare": "x" if i == 0 else "",
            "site": str(i % 2),
        }
        for i in range(6)
    }
    chosen = [a.name for a in choose_attributes(meta)]
    assert chosen == ["district", "site", "role"]


# ---------------------------------------------------------------- in a real browser


def _keep(problems: list[str], wanted: Any, text: str) -> Any:
    """A page event handler that notes the events `wanted` says are problems."""
    return lambda event: problems.append(text.format(event)) if wanted(event) else None


@pytest.mark.slow
def test_the_report_opens_in_chromium(report: str, study: Study, tmp_path: Path) -> None:
    sync_api = require_chromium()
    empty = tmp_path / "empty.db"
    Store(str(empty)).engine.dispose()
    assert run_report(empty, tmp_path / "empty.html").exit_code == 0
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        try:
            for path in (study.folder / "report.html", tmp_path / "empty.html"):
                page = browser.new_page(viewport=VIEWPORT)
                problems: list[str] = []
                page.on(
                    "console", _keep(problems, lambda m: m.type in ("error", "warning"), "console {0.type}: {0.text}")
                )
                page.on("pageerror", _keep(problems, lambda exc: True, "page error: {0}"))
                page.on("request", _keep(problems, lambda r: not r.url.startswith("file:"), "request: {0.url}"))
                page.goto(path.resolve().as_uri())
                for heading in SECTIONS:
                    sync_api.expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
                if path.name == "report.html":
                    for plot in ("agreement-plot", "calibration-plot", "sweep-plot"):
                        box = page.locator(f"#{plot}").bounding_box()
                        assert box and box["width"] > 300 and box["height"] > 150, (plot, box)
                    assert page.evaluate("window.__xss") is None
                    sync_api.expect(page.locator("#frequencies-1 blockquote", has_text="window.__xss=1")).to_have_count(
                        1
                    )
                else:
                    sync_api.expect(page.get_by_text("No reviewer decisions yet.").first).to_be_visible()
                assert problems == [], problems
                page.close()
        finally:
            browser.close()
