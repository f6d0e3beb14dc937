"""qcode eval: a suite codes a gold set with each coder configuration through the real pipeline (the run
without Prefect, SQLite store, the offline coder, the openai coder against tests/fakes/openai_server.py) and
compares it with the human coders (docs/evals.md). Human codes are the synthetic gold set of
evals/examples-gold.csv."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes import EXAMPLES, LINKAGES, ROOT, qcode, write
from fakes.openai_server import FakeOpenAI
from golden import check, check_text
from rich.console import Console

import pipeline.cli.measure
from pipeline.errors import QcodeError
from pipeline.measure.evals import EvalReport, find_loosely, human_rows, load_suite

GOLD = ROOT / "evals" / "examples-gold.csv"
SHIPPED = ROOT / "evals" / "examples.yaml"
# two of the example interviews: 5 and 4 chunks of 1,200 characters
STUDY_FILES = ("harbor_seacliff_principal.txt", "valley_cottonwood_teacher_leader_timestamped.txt")
OFFLINE = [{"name": "offline", "coder": "offline"}, {"name": "offline-confident", "coder": "offline", "threshold": 0.6}]


def gold_rows(files: tuple[str, ...]) -> list[dict[str, str]]:
    with GOLD.open(encoding="utf-8") as handle:
        lines = [line for line in handle if not line.startswith("#")]
    return [row for row in csv.DictReader(lines) if row["file"] in files]


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns or list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_suite(path: Path, study: Path, configurations: list[dict], **extra) -> Path:
    suite = {
        "name": "test suite",
        "gold": {"transcripts": str(study / "transcripts"), "codes": str(study / "gold.csv")},
        "codebook": str(LINKAGES),
        "bootstrap": 200,
        "configurations": configurations,
    }
    suite.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def evaluate(suite: Path, *extra: str) -> tuple[int, dict, str]:
    result = qcode("eval", str(suite), *extra)
    report = json.loads(result.stdout) if "--json" in extra and result.stdout.strip() else {}
    return result.exit_code, report, result.output


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two example transcripts and the three human coders' codes for them."""
    folder = tmp_path_factory.mktemp("study")
    for name in STUDY_FILES:
        (folder / "transcripts").mkdir(exist_ok=True)
        shutil.copy(EXAMPLES / "transcripts" / name, folder / "transcripts" / name)
    write_csv(folder / "gold.csv", gold_rows(STUDY_FILES))
    return folder


@pytest.fixture(scope="module")
def evaluated(study: Path) -> tuple[Path, dict]:
    """The study coded once by the offline coder, counted twice (all suggestions, and confident ones)."""
    suite = write_suite(study / "suite.yaml", study, OFFLINE)
    code, report, output = evaluate(suite, "--json")
    assert code == 0, output
    return suite, report


# ---------------------------------------------------------------- the gold format


def test_quotes_are_found_whatever_the_case_spacing_and_typography() -> None:
    text = "Ms. Chen: The district’s  plan\nworked — mostly. Later, the plan worked again."
    [(start, end)] = find_loosely("the district's plan worked - mostly", text)
    assert text[start:end] == "The district’s  plan\nworked — mostly"
    [(start, end)] = find_loosely("THE DISTRICT’S PLAN", text)
    assert text[start:end] == "The district’s  plan"
    start, end = find_loosely("district's ... again.", text)[0]  # an ellipsis leaves words out
    assert text[start:end].startswith("district’s") and text[start:end].endswith("again.")
    assert (
        len(find_loosely("worked again", text)) == 1 and len(find_loosely("plan worked", text)) == 2
    )  # across a line break too
    assert find_loosely("not in the text", text) == []


def test_passages_follow_each_chunking_and_none_differs_from_missing(tmp_path: Path) -> None:
    turns = [
        "Interviewer: How do teacher leaders hear about decisions?",
        "Ms. Lee: The district sends a clear weekly update, and the director answers our emails the same day.",
        "Interviewer: And the money?",
        "Ms. Lee: We lost our literacy coach in the budget cuts. There is no money for substitutes anymore.",
    ]
    write(tmp_path / "study" / "transcripts" / "lee.txt", "\n".join(turns) + "\n")
    write(tmp_path / "study" / "transcripts" / "kim.txt", "Interviewer: Anything else?\nMr. Kim: Not really.\n")
    rows = [
        {"file": "lee.txt", "coder": "ana", "code": "communication.strength", "quote": "sends a clear weekly update"},
        {
            "file": "lee.txt",
            "coder": "ana",
            "code": "resource.weakness",
            "quote": "We lost our literacy coach ... substitutes anymore.",
        },
        {"file": "lee.txt", "coder": "ben", "code": "resource.weakness", "quote": "no money for substitutes"},
        {"file": "kim.txt", "coder": "ana", "code": "", "quote": ""},  # ana coded kim.txt and found nothing
    ]
    write_csv(tmp_path / "study" / "gold.csv", rows)
    suite = load_suite(
        write_suite(
            tmp_path / "suite.yaml",
            tmp_path / "study",
            [{"name": "whole", "coder": "offline"}, {"name": "small", "coder": "offline", "chunk_size": 110}],
        )
    )
    whole, small = suite.configurations

    codes = {}
    for row in human_rows(suite.gold, whole.units):
        codes.setdefault((row["coder"], row["unit_id"]), set()).add(row["code"])
    # one chunk per transcript: lee's holds every code; ana saw kim's and applied none; ben never coded kim's
    assert sorted(codes.values(), key=sorted) == [
        {""},
        {"communication.strength", "resource.weakness"},
        {"resource.weakness"},
    ]
    units = {row["unit_id"] for row in human_rows(suite.gold, small.units)}
    assert len(units) > 2  # the small chunks split lee's answers apart
    by_unit: dict[str, set] = {}
    for row in human_rows(suite.gold, small.units):
        if row["coder"] == "ana":
            by_unit.setdefault(row["unit_id"], set()).add(row["code"])
    assert sorted(map(sorted, by_unit.values())) == [
        [""],
        [""],
        [""],
        ["communication.strength"],
        ["resource.weakness"],
    ]


def test_the_shipped_gold_set_is_valid() -> None:
    suite = load_suite(SHIPPED)
    assert suite.gold.format == "passages" and suite.gold.coders == ["ana", "ben", "cleo"]
    assert len(suite.gold.spans) == suite.gold.rows > 400  # every quote found, once
    # each coder coded every interview and questionnaire answer; the district plan and the observation
    # notes came to the examples later, and nobody coded them: they are no gold units
    interviews_and_answers = [
        t for t in suite.gold.transcripts if t.metadata["source_type"] in ("interview", "questionnaire")
    ]
    assert len(suite.gold.coverage) == 3 * len(interviews_and_answers) == 3 * 23
    assert suite.db.endswith("/evals/.qcode-eval.db")
    assert [c.name for c in suite.configurations] == ["offline", "offline-confident", "gpt-4o-mini"]
    assert suite.configurations[2].requires_env == ["QCODE_EVAL_OPENAI"]
    assert "SYNTHETIC" in GOLD.read_text(encoding="utf-8").splitlines()[0]


# ---------------------------------------------------------------- running suites


@pytest.mark.slow  # codes with the offline coder: loads the embedding model
def test_configurations_side_by_side_with_the_humans(evaluated) -> None:
    _, report = evaluated
    assert report["gold"]["coders"] == ["ana", "ben", "cleo"] and report["gold"]["format"] == "passages"
    humans = report["humans"][0]
    assert humans["units"] == 8  # every chunk of both transcripts (not their title lines), coded by all three
    assert [p["kind"] for p in humans["pairwise"]] == ["human-human"] * 3
    assert humans["overall"]["krippendorff_alpha"] is not None
    offline, confident = report["configurations"]
    assert offline["status"] == confident["status"] == "ran"
    assert offline["run"]["chunks"] == 8 and offline["run"]["chunks_coded_now"] == 8
    assert confident["run"]["chunks_coded_now"] == 0  # the same coder: the threshold only filters its codes
    assert offline["coding"]["cost_usd"] == 0.0 and offline["run"]["cost_usd"] == 0.0
    for entry in (offline, confident):
        consensus = entry["against_consensus"]
        assert consensus["coders"] == [entry["name"], "consensus"] and consensus["units"] > 0
        assert -1 <= consensus["krippendorff_alpha"] <= 1 and len(consensus["krippendorff_alpha_ci95"]) == 2
        assert [h["human"] for h in entry["against_humans"]] == ["ana", "ben", "cleo"]
        assert len(entry["per_code"]) == 12 and "f1" in entry["per_code"][0]["consensus"]
        assert {"name": entry["name"], "role": "model", "units": 8} in entry["agreement"]["coders"]
    assert report["passed"] is True and report["gates"] == []


@pytest.mark.slow  # codes with the offline coder: loads the embedding model
def test_a_rerun_codes_nothing(evaluated) -> None:
    suite, first = evaluated
    code, again, _ = evaluate(suite, "--json")
    assert code == 0
    for before, after in zip(first["configurations"], again["configurations"]):
        assert after["run"]["chunks_coded_now"] == 0 and after["run"]["requests"] == 0
        assert after["against_consensus"] == before["against_consensus"]


@pytest.mark.slow  # codes with the offline coder: loads the embedding model
def test_fail_under_gates_each_configuration_against_the_consensus(evaluated) -> None:
    suite, report = evaluated
    values = [c["against_consensus"]["krippendorff_alpha"] for c in report["configurations"]]
    code, gated, _ = evaluate(suite, "--json", "--fail-under", f"krippendorff_alpha={max(values) + 0.01:.4f}")
    assert code == 1 and gated["passed"] is False
    assert [c["passed"] for c in gated["gates"][0]["configurations"]] == [False, False]
    code, gated, output = evaluate(
        suite, "--fail-under", f"krippendorff_alpha={min(values) - 0.01:.4f}", "--fail-under", "percent_agreement=0"
    )
    assert code == 0, output
    assert "pass: offline krippendorff_alpha against the consensus" in output
    for words in (
        "agreement with the human coders",
        "consensus",
        "Per code",
        "Cost and time",
        "cleo",
        "offline-confident",
    ):  # the tables
        assert words in output


@pytest.mark.slow  # codes with the offline coder: loads the embedding model
def test_units_from_a_blind_export_give_the_same_agreement(study: Path, evaluated, tmp_path: Path) -> None:
    suite_path, report = evaluated
    suite = load_suite(suite_path)
    # as `qcode export --format blind` writes them: chunk ids and reviewer:NAME
    rows = [
        {**row, "coder": f"reviewer:{row['coder']}"} for row in human_rows(suite.gold, suite.configurations[0].units)
    ]
    write_csv(tmp_path / "blind.csv", rows)
    units = write_suite(tmp_path / "units.yaml", study, OFFLINE[:1], db=str(study / ".qcode-eval.db"))
    data = yaml.safe_load(units.read_text())
    data["gold"].update(codes=str(tmp_path / "blind.csv"), chunk_size=1200)
    units.write_text(yaml.safe_dump(data))
    code, found, output = evaluate(units, "--json")
    assert code == 0, output
    assert found["gold"]["format"] == "units" and found["configurations"][0]["run"]["chunks_coded_now"] == 0
    before = report["configurations"][0]["against_consensus"]
    after = found["configurations"][0]["against_consensus"]
    assert after["krippendorff_alpha"] == pytest.approx(before["krippendorff_alpha"])
    # the same unit ids under another chunk size are refused before anything is coded
    data["configurations"][0]["chunk_size"] = 600
    units.write_text(yaml.safe_dump(data))
    code, _, output = evaluate(units)
    assert code == 1 and "blind.csv" in output and "chunks of 600" in output


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


def test_an_openai_configuration_runs_when_enabled_and_is_free_the_second_time(
    study: Path, tmp_path: Path, server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-stored")
    monkeypatch.delenv("QCODE_TEST_EVAL_OPENAI", raising=False)
    suite = write_suite(
        tmp_path / "model.yaml",
        study,
        [
            {
                "name": "model",
                "coder": "openai",
                "model": "gpt-4o-mini",
                "base_url": server.url,
                "requires_env": "QCODE_TEST_EVAL_OPENAI",
            }
        ],
    )
    code, report, _ = evaluate(suite, "--json")
    assert code == 0 and report["configurations"][0]["status"] == "skipped"
    assert "QCODE_TEST_EVAL_OPENAI" in report["configurations"][0]["skipped"]
    assert server.stats()["chat_requests"] == 0

    monkeypatch.setenv("QCODE_TEST_EVAL_OPENAI", "1")
    code, report, output = evaluate(suite, "--json")
    assert code == 0, output
    first = report["configurations"][0]
    assert first["status"] == "ran" and first["run"]["requests"] == server.stats()["chat_completed"] >= 8
    assert first["prompt_version"] and first["coding"]["cost_usd"] == 0  # a server on this machine
    assert first["coding"]["input_tokens"] == server.stats()["prompt_tokens"]
    before = server.stats()["chat_requests"]
    code, report, _ = evaluate(suite, "--json")
    again = report["configurations"][0]
    assert code == 0 and again["run"]["requests"] == 0 and again["run"]["chunks_coded_now"] == 0
    assert server.stats()["chat_requests"] == before
    assert again["coding"]["input_tokens"] == first["coding"]["input_tokens"]  # what coding it cost, still known
    assert again["against_consensus"] == first["against_consensus"]


# ---------------------------------------------------------------- the output, pinned whole
#
# tests/golden/eval/NAME.json: `qcode eval --json`, every key in its order, every value, with what
# varies between runs masked (paths, run ids, times); NAME.txt: the tables and lines people read, on
# a second run (which codes nothing), with times masked and column padding collapsed.

VARIES = ("run_id", "seconds", "eval_seconds", "coder_seconds")


def masked(value: Any, roots: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: "<varies>" if k in VARIES else masked(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, roots) for v in value]
    if isinstance(value, str):
        for root, label in roots.items():
            value = value.replace(root, label)
    return value


def readable(text: str, roots: dict[str, str]) -> str:
    for root, label in roots.items():
        text = text.replace(root, label)
    text = re.sub(r"\b\d+\.\d s\b", "<t> s", text)
    lines = [re.sub(r" +", " ", re.sub(r"([─━═])\1+", r"\1", line)).rstrip() for line in text.splitlines()]
    return "\n".join(lines) + "\n"


def pin(name: str, suite: Path, monkeypatch: pytest.MonkeyPatch, *extra: str, exit_code: int = 0) -> dict:
    """The suite evaluated twice: its JSON (the first run) and its tables (the second) pinned."""
    roots = {str(suite.parent.resolve()): "<suite folder>", str(ROOT): "<qcode>"}
    code, report, output = evaluate(suite, "--json", *extra)
    assert code == exit_code, output
    check(f"eval/{name}", masked(report, roots))
    typed = EvalReport.model_validate_json(json.dumps(report))  # the JSON reads back as the typed result
    assert json.dumps(typed.model_dump(mode="json")) == json.dumps(report)
    monkeypatch.setattr(pipeline.cli.measure, "out", Console(width=300, color_system=None))
    result = qcode("eval", str(suite), *extra)
    assert result.exit_code == exit_code, result.output
    check_text(f"eval/{name}.txt", readable(result.stdout, roots))
    return report


def golden_study(folder: Path, rows: list[dict[str, str]] | None = None, columns: list[str] | None = None) -> Path:
    """The two study transcripts and their gold codes, in a folder of the test's own."""
    for name in STUDY_FILES:
        (folder / "transcripts").mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLES / "transcripts" / name, folder / "transcripts" / name)
    write_csv(folder / "gold.csv", rows or gold_rows(STUDY_FILES), columns)
    return folder


@pytest.mark.slow  # codes with the offline coder: loads the embedding model
def test_units_of_single_codes_are_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Gold codes as units (a blind export: chunk ids, reviewer:NAME), one code per unit and coder, and a
    configuration that proposes one code per chunk: single-label data, gated on Cohen's kappa."""
    study = golden_study(tmp_path / "study")
    passages = load_suite(write_suite(tmp_path / "passages.yaml", study, OFFLINE[:1]))
    first: dict[tuple[str, str], dict[str, str]] = {}
    for row in human_rows(passages.gold, passages.configurations[0].units):
        first.setdefault((row["unit_id"], row["coder"]), {**row, "coder": f"reviewer:{row['coder']}"})
    write_csv(study / "blind.csv", list(first.values()))
    suite = write_suite(tmp_path / "units.yaml", study, [{"name": "offline-one", "coder": "offline", "max_codes": 1}])
    data = yaml.safe_load(suite.read_text())
    data["gold"].update(codes=str(study / "blind.csv"), chunk_size=1200)
    suite.write_text(yaml.safe_dump(data, sort_keys=False))
    report = pin("units-single-label", suite, monkeypatch, "--fail-under", "cohen_kappa=-1")
    assert report["gold"]["format"] == "units" and report["humans"][0]["single_label"] is True
    assert report["configurations"][0]["agreement"]["single_label"] is True and report["passed"] is True


@pytest.mark.slow  # codes with the offline coder: loads the embedding model
def test_two_chunkings_and_a_skipped_configuration_are_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QCODE_TEST_EVAL_GOLDEN", raising=False)
    study = golden_study(tmp_path / "study")
    configurations = [
        {"name": "offline", "coder": "offline", "description": "Every suggestion."},
        {"name": "offline-small", "coder": "offline", "chunk_size": 600, "overlap": 100},
        {
            "name": "model",
            "coder": "openai",
            "model": "gpt-4o-mini",
            "temperature": 0,
            "requires_env": ["QCODE_TEST_EVAL_GOLDEN"],
        },
    ]
    suite = write_suite(tmp_path / "suite.yaml", study, configurations, bootstrap=100)
    report = pin("chunkings-skipped", suite, monkeypatch)
    assert [h["chunk_size"] for h in report["humans"]] == [1200, 600]
    assert [c["status"] for c in report["configurations"]] == ["ran", "ran", "skipped"]


@pytest.mark.slow  # codes with the offline coder: loads the embedding model
def test_a_failing_gate_is_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two gates, one failed; a threshold that leaves suggestions out; offsets that miss their quote."""
    rows = [{**row, "start": "", "end": ""} for row in gold_rows(STUDY_FILES)]
    rows[0].update(start="0", end="12")  # not where the quote is: found by the quote, and noted
    study = golden_study(tmp_path / "study", rows)
    configurations = [{"name": "offline", "coder": "offline"}, {"name": "strict", "coder": "offline", "threshold": 0.9}]
    suite = write_suite(tmp_path / "suite.yaml", study, configurations, seed=5)
    gates = ("--fail-under", "krippendorff_alpha=0.5", "--fail-under", "percent_agreement=0.5")
    report = pin("gate-fails", suite, monkeypatch, *gates, exit_code=1)
    assert report["passed"] is False and [g["metric"] for g in report["gates"]] == [
        "krippendorff_alpha",
        "percent_agreement",
    ]


def test_a_gate_with_nothing_to_check_is_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QCODE_TEST_EVAL_GOLDEN", raising=False)
    study = golden_study(tmp_path / "study")
    configurations = [{"name": "later", "coder": "offline", "requires_env": "QCODE_TEST_EVAL_GOLDEN"}]
    suite = write_suite(tmp_path / "suite.yaml", study, configurations, bootstrap=0)
    report = pin("nothing-ran", suite, monkeypatch, "--fail-under", "krippendorff_alpha=0.6")
    assert report["configurations"][0]["status"] == "skipped" and report["gates"][0]["configurations"] == []


# ---------------------------------------------------------------- bad suites


def test_bad_fail_under_is_refused_before_anything_runs(study: Path) -> None:
    suite = write_suite(study / "gates.yaml", study, OFFLINE)
    code, _, output = evaluate(suite, "--fail-under", "fleiss_kappa=0.5")
    assert code == 2 and "krippendorff_alpha" in output and "fleiss_kappa" in output
    code, _, output = evaluate(suite, "--fail-under", "krippendorff_alpha=high")
    assert code == 2 and "not a number" in output


def _bad(tmp_path: Path, study: Path, problem: str) -> tuple[Path, str]:
    """A suite with one problem, and the file the message must name."""
    suite = tmp_path / "bad.yaml"
    gold = tmp_path / "gold.csv"
    rows = gold_rows(STUDY_FILES)
    configurations = [{"name": "offline", "coder": "offline"}]
    named = gold
    if problem == "missing suite":
        return tmp_path / "nowhere.yaml", "nowhere.yaml"
    if problem == "missing gold file":
        write_suite(suite, study, configurations)
        data = yaml.safe_load(suite.read_text())
        data["gold"]["codes"] = "no-such-codes.csv"
        suite.write_text(yaml.safe_dump(data))
        return suite, "no-such-codes.csv"
    if problem == "unknown coder":
        configurations = [{"name": "magic", "coder": "telepathy"}]
        named = suite
    elif problem == "unknown option":
        configurations = [{"name": "offline", "coder": "offline", "model": "gpt-4o"}]
        named = suite
    elif problem == "code not in codebook":
        rows[3]["code"] = "trust.strength"
    elif problem == "missing columns":
        write_csv(gold, [{k: v for k, v in row.items() if k != "code"} for row in rows])
    elif problem == "quote not in transcript":
        rows[5]["quote"] = "words nobody said in this interview"
    elif problem == "one coder":
        rows = [row for row in rows if row["coder"] == "ana"]
    elif problem == "unknown file":
        rows[2]["file"] = "harbor_seacliff_principle.txt"
    elif problem == "invalid yaml":
        suite.write_text("name: x\ngold: [unclosed\n", encoding="utf-8")
        return suite, str(suite)
    elif problem == "typo in a key":
        write_suite(suite, study, configurations)
        suite.write_text(suite.read_text().replace("configurations:", "configuration:"))
        return suite, str(suite)
    elif problem == "name of a human":
        configurations = [{"name": "ana", "coder": "offline"}]
        named = suite
    if problem != "missing columns":
        write_csv(gold, rows)
    data = yaml.safe_load(write_suite(suite, study, configurations).read_text())
    data["gold"]["codes"] = str(gold)
    suite.write_text(yaml.safe_dump(data))
    return suite, str(named)


@pytest.mark.parametrize(
    "problem, says",
    [
        ("missing suite", "no such file"),
        ("missing gold file", "does not exist"),
        ("unknown coder", "unknown coder 'telepathy'"),
        ("unknown option", "no option 'model'"),
        ("code not in codebook", "code 'trust.strength' is not an applicable code"),
        ("missing columns", "missing column(s) code"),
        ("quote not in transcript", "the quote is not in harbor_seacliff_principal.txt"),
        ("one coder", "only one human coder"),
        ("unknown file", "did you mean 'harbor_seacliff_principal.txt'"),
        ("invalid yaml", "not valid YAML"),
        ("typo in a key", "did you mean 'configurations'"),
        ("name of a human", "also a human coder's name"),
    ],
)
def test_bad_suites_exit_1_naming_the_file(tmp_path: Path, study: Path, problem: str, says: str) -> None:
    suite, named = _bad(tmp_path, study, problem)
    result = qcode("eval", str(suite), "--json")
    assert result.exit_code == 1, result.output
    message = json.loads(result.stdout)["error"]
    assert named in message and says in message
    if problem in ("code not in codebook", "quote not in transcript"):
        assert ": line " in message  # the gold file's line
    with pytest.raises(QcodeError):
        load_suite(suite)


# ---------------------------------------------------------------- the shipped suite


@pytest.mark.slow
def test_the_shipped_examples_suite_runs_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its JSON and tables pinned whole (tests/golden/eval/examples.*)."""
    monkeypatch.delenv("QCODE_EVAL_OPENAI", raising=False)
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    # the same suite, with its store in tmp_path instead of evals/ (paths made absolute)
    data["gold"]["transcripts"] = str((SHIPPED.parent / data["gold"]["transcripts"]).resolve())
    data["gold"]["codes"] = str((SHIPPED.parent / data["gold"]["codes"]).resolve())
    data["codebook"] = str((SHIPPED.parent / data["codebook"]).resolve())
    suite = tmp_path / "examples.yaml"
    suite.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    report = pin("examples", suite, monkeypatch)
    assert (tmp_path / ".qcode-eval.db").exists()
    humans = report["humans"][0]
    assert humans["units"] == 60 and report["gold"]["transcripts_coded"] == 23
    offline, confident, model = report["configurations"]
    assert offline["status"] == confident["status"] == "ran" and model["status"] == "skipped"
    # the run codes every file of the folder: the 60 units people coded, and 3 of the plan and the notes
    assert offline["run"]["chunks_coded_now"] == 63 and confident["run"]["chunks_coded_now"] == 0
    # the humans agree with each other better than the embedding baseline agrees with them
    assert humans["overall"]["krippendorff_alpha"] > offline["against_consensus"]["krippendorff_alpha"]
    assert all(p["cohen_kappa"] > offline["against_consensus"]["cohen_kappa"] for p in humans["pairwise"])
