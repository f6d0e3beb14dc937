"""The learned coder's card claims no more than held-out data shows: it is scored on the units people
could have coded, folds are grouped as the data is grouped, a share of the groups can be held out, and
a run codes the units the model was trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes import code_store, qcode, write
from sqlalchemy import func, select

from pipeline.errors import FlagError
from pipeline.store import LearnedModelRecord, Store

# Classroom exchanges: a student's turn, then the teacher's. Only the teacher's turns are coded.
CLASSROOM_CODEBOOK = """\
name: Classroom talk
description: What a teacher does in reply to a student.
measurement: nominal
codes:
  - id: praise
    name: Praise
    definition: The teacher praises the student's answer or effort.
    attributes: {speaker: teacher}
  - id: probe
    name: Probe
    definition: The teacher asks the student to say more or explain their thinking.
    attributes: {speaker: teacher}
"""
STUDENT = ["I think it is seven.", "Because the line goes up.", "We added them together.", "Is it the red one?"]
PRAISE = ["Great job, that is exactly right.", "Well done, lovely thinking.", "Excellent answer, well done you."]
PROBE = ["Why do you think that?", "Can you explain how you got it?", "What makes you say so?"]
OTHER = ["Okay, let us move on to the next page.", "Please open your books.", "Put your pencils down now."]


def classroom_study(folder: Path, classrooms: int = 6, exchanges: int = 6) -> tuple[Path, Path]:
    """Exchanges in files of their own, each with its classroom in front matter; two people coded the
    teacher's turns."""
    rows = ["file,coder,code,quote"]
    for room in range(classrooms):
        for n in range(exchanges):
            kind = (room + n) % 3
            teacher = (PRAISE, PROBE, OTHER)[kind][(room * exchanges + n) % 3]
            name = f"room{room}-{n}.txt"
            write(
                folder / "exchanges" / name,
                f"---\nclassroom: R{room}\n---\nStudent: {STUDENT[(room + n) % 4]}\nTeacher: {teacher}\n",
            )
            for person in ("ana", "ben"):
                rows.append(f"{name},{person},{('praise', 'probe', '')[kind]},{teacher if kind < 2 else ''}")
    write(folder / "codes.csv", "\n".join(rows) + "\n")
    return folder / "codes.csv", folder / "exchanges"


def train(folder: Path, *extra: object) -> tuple[int, dict, str]:
    codebook = write(folder / "classroom.yaml", CLASSROOM_CODEBOOK)
    codes, exchanges = classroom_study(folder)
    answer = qcode(
        "train", "--codebook", codebook, "--db", folder / "q.db", "--gold", codes, "--transcripts", exchanges,
        "--unit", "turn", "--learner", "linear", "--json", *extra,
    )  # fmt: skip
    return answer.exit_code, json.loads(answer.stdout) if answer.exit_code == 0 else {}, answer.stderr


@pytest.mark.slow  # loads the embedding model
def test_codes_for_one_speaker_are_scored_on_that_speakers_units_only(tmp_path: Path) -> None:
    status, card, stderr = train(tmp_path)
    assert status == 0, stderr
    # every turn is a unit a run by turns codes; only the teacher's could carry these codes
    assert card["units"] == 6 * 6 * 2
    assert {c["code"]: c["units_scored"] for c in card["codes"]} == {"praise": 36, "probe": 36}
    assert {c["code"]: c["positives"] for c in card["codes"]} == {"praise": 12, "probe": 12}


@pytest.mark.slow  # loads the embedding model
def test_folds_and_holdout_follow_a_case_attribute(tmp_path: Path) -> None:
    status, card, stderr = train(tmp_path, "--group-by", "classroom", "--holdout", "0.34")
    assert status == 0, stderr
    assert card["group_by"] == "classroom"
    held = card["holdout"]
    assert (
        held["fraction"] == 0.34
        and len(held["groups"]) == 2
        and all(g.startswith("classroom=R") for g in held["groups"])
    )
    assert card["groups"] == 4  # the folds: the classrooms left for training
    assert held["units"] == 2 * 6 * 2 and card["units"] == 4 * 6 * 2
    for code in card["codes"]:
        assert set(code["holdout"]) == {"cohen_kappa", "cohen_kappa_ci95", "f1", "precision", "recall"}
        assert isinstance(code["differs"], bool)
    # the table shows both, side by side
    codebook = tmp_path / "classroom.yaml"
    shown = qcode(
        "train", "--codebook", codebook, "--db", tmp_path / "q.db", "--gold", tmp_path / "codes.csv",
        "--transcripts", tmp_path / "exchanges", "--unit", "turn", "--learner", "linear", "--group-by", "classroom",
        "--holdout", "0.34",
    )  # fmt: skip
    assert shown.exit_code == 0, shown.stderr
    header = next(line for line in shown.stdout.splitlines() if line.startswith("code"))
    assert header.split() == ["code", "coded", "scored", "kappa", "held", "out", "precision", "recall"]
    assert "held out (0.34 of the groups, never trained on): 2 group(s), 24 units" in shown.stdout


@pytest.mark.slow  # loads the embedding model
@pytest.mark.parametrize(
    ("extra", "status", "says"),
    [
        (
            ("--group-by", "school"),
            1,
            "--group-by 'school': no transcript has this case attribute (they have: classroom",
        ),
        (("--holdout", "1.5"), 2, "--holdout 1.5: a share of the groups, more than 0 and less than 1"),
        (("--holdout", "0.01"), 1, "--holdout 0.01 of 36 group(s) leaves none to hold out"),
        (("--learner", "deep"), 2, "--learner 'deep' is not one of auto, linear, finetuned"),
    ],
)
def test_bad_grouping_and_holdout_are_one_line_errors_and_nothing_is_stored(
    tmp_path: Path, extra: tuple[str, ...], status: int, says: str
) -> None:
    found, _, stderr = train(tmp_path, *extra)
    assert found == status and says in stderr, stderr
    assert len([line for line in stderr.splitlines() if line.strip()]) == 1


def test_a_holdout_that_leaves_a_code_with_no_positive_on_one_side_is_refused(tmp_path: Path) -> None:
    codebook = write(tmp_path / "classroom.yaml", CLASSROOM_CODEBOOK)
    rows = ["file,coder,code,quote"]
    for room in range(4):
        for n in range(4):
            name = f"r{room}-{n}.txt"
            words = PRAISE[n % 3] if room == 0 else OTHER[n % 3]  # praise in one classroom only
            write(tmp_path / "x" / name, f"---\nclassroom: R{room}\n---\nStudent: Seven.\nTeacher: {words}\n")
            rows.append(f"{name},ana,{'praise' if room == 0 else ''},{words if room == 0 else ''}")
    write(tmp_path / "codes.csv", "\n".join(rows) + "\n")
    answer = qcode(
        "train", "--codebook", codebook, "--db", tmp_path / "q.db", "--gold", tmp_path / "codes.csv",
        "--transcripts", tmp_path / "x", "--unit", "turn", "--group-by", "classroom", "--holdout", "0.25",
    )  # fmt: skip
    assert answer.exit_code == 1
    assert "--holdout 0.25: the code 'praise' has positive units in one group only (classroom=R0)" in answer.stderr
    with Store(str(tmp_path / "q.db")).session() as s:  # nothing was trained or stored
        assert s.scalar(select(func.count()).select_from(LearnedModelRecord)) == 0


@pytest.mark.slow  # loads the embedding model
def test_a_run_codes_the_units_the_model_was_trained_on_and_refuses_others(tmp_path: Path) -> None:
    status, card, stderr = train(tmp_path)
    assert status == 0, stderr
    codebook, db = tmp_path / "classroom.yaml", tmp_path / "q.db"
    new = write(tmp_path / "new" / "lesson.txt", "Student: It is nine.\nTeacher: Excellent answer, well done.\n")
    summary = code_store(new.parent, codebook, db, coder="learned", audit_share=0)
    assert summary.unit == "turn" and summary.model == f"learned-{card['model']}"
    with pytest.raises(FlagError, match=r"the run asks for --unit chunk, the model was trained on turn units"):
        code_store(new.parent, codebook, db, coder="learned", unit="chunk")
    answer = qcode(
        "run", new.parent, "--codebook", codebook, "--db", db, "--coder", "learned", "--skip-speakers", "student"
    )
    assert answer.exit_code == 2
    assert "the run asks for not the words of student, the model was trained on every speaker's words" in answer.stderr
    # a run over a transcript it was trained on, under another name, says so
    copy = write(tmp_path / "copy" / "renamed.txt", (tmp_path / "exchanges" / "room0-0.txt").read_text())
    summary = code_store(copy.parent, codebook, db, coder="learned", audit_share=0)
    notes = [n.note for n in summary.notes]
    assert any(
        "1 of the run's transcripts were among those the learned model" in n and "renamed.txt" in n for n in notes
    )


@pytest.mark.slow  # loads the embedding model
def test_gold_codes_on_a_questionnaire_name_each_response_by_its_id(tmp_path: Path) -> None:
    codebook = write(
        tmp_path / "survey.yaml",
        "name: Survey\ndescription: Comments.\nmeasurement: nominal\ncodes:\n"
        "  - {id: praise, name: Praise, definition: The comment praises the course.}\n"
        "  - {id: workload, name: Workload, definition: The comment is about how much work there is.}\n",
    )
    lines, rows = ["pid,comment"], ["file,id,coder,code,quote"]
    comments = ["Brilliant", "Brilliant", "Far too much homework", "Too much marking", "Great course"] * 4
    for n, comment in enumerate(comments):
        lines.append(f"p{n},{comment}")
        code = "praise" if comment in ("Brilliant", "Great course") else "workload"
        rows.append(f"survey.csv,p{n},ana,{code},{comment}")
    write(tmp_path / "s" / "survey.csv", "\n".join(lines) + "\n")
    write(tmp_path / "codes.csv", "\n".join(rows) + "\n")
    base = ["train", "--codebook", codebook, "--db", tmp_path / "q.db", "--gold", tmp_path / "codes.csv"]
    answer = qcode(*base, "--transcripts", tmp_path / "s", "--id-column", "pid", "--learner", "linear", "--json")
    assert answer.exit_code == 0, answer.stderr
    card = json.loads(answer.stdout)
    assert {c["code"]: c["positives"] for c in card["codes"]} == {"praise": 12, "workload": 8}
    # without the id column (pid is not a name qcode knows) the ids are row numbers: p0 names no response
    answer = qcode(*base, "--transcripts", tmp_path / "s")
    assert answer.exit_code == 1 and "codes.csv: line 2: no response with the id 'p0' in survey.csv" in answer.stderr


def test_a_code_for_a_speaker_no_unit_has_says_which_speakers_there_are(tmp_path: Path) -> None:
    codebook = write(tmp_path / "classroom.yaml", CLASSROOM_CODEBOOK)
    rows = ["file,coder,code,quote"]
    for n in range(6):
        write(tmp_path / "x" / f"e{n}.txt", f"Pupil: Seven.\nMs. Diaz: {PRAISE[n % 3]}\n")
        rows.append(f"e{n}.txt,ana,praise,{PRAISE[n % 3]}")
    write(tmp_path / "codes.csv", "\n".join(rows) + "\n")
    answer = qcode(
        "train", "--codebook", codebook, "--db", tmp_path / "q.db", "--gold", tmp_path / "codes.csv",
        "--transcripts", tmp_path / "x", "--unit", "turn",
    )  # fmt: skip
    assert answer.exit_code == 1
    assert (
        "praise: it is for the words of teacher (attributes.speaker), and no unit is theirs (the units' speakers: "
        "Ms. Diaz, Pupil)" in answer.stderr
    )
