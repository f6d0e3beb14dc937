"""Every `qcode` example in README.md and docs/ runs as written, in a folder laid out as a fresh
clone (examples/, codebooks/, evals/), so that a new team's first commands work.

Each example (a bash block) runs in its order, in a folder of its own, against the `qcode.db` the
quick start leaves there (the bundled examples coded offline), in which two reviewers, kim and tom,
have coded 20 passages blind as evals/examples-gold.csv codes them: the people's codes the agreement
and learning examples need. What cannot run here is said and counted, never silently passed over: a
synopsis (`NAME`, `CODEBOOK.yaml`, `[--db URL]`), a command that serves until stopped (`serve`,
`schedule`), one that asks a model endpoint. Two files the examples name stand for the team's own:
`interviews/` (the bundled transcripts) and `study.qdpx` (the bundled transcripts exported as a
REFI-QDA project, as another QDA tool would hand it over).
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from fakes import qcode
from sqlalchemy import select

from pipeline.chunk import Units
from pipeline.codebook import load_codebook
from pipeline.ingest import CsvOptions
from pipeline.ingest.gold import human_rows, read_gold, read_transcripts
from pipeline.review.blind import assignments, create_sample, submit
from pipeline.review.reviewers import Reviewer, add_reviewer, find_reviewer, grant_runs
from pipeline.store import ReviewerRecord, RunRecord, Store

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHIPPED = ("examples", "codebooks", "evals")
SAMPLE = 20  # passages ana and ben code blind: enough to compare and learn from, quick to train on
PLACEHOLDER = re.compile(r"(^|[^a-z0-9_-])[A-Z][A-Z_]{1,}([^a-z]|$)|\.\.\.|^\[")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Example:
    document: str
    line: str  # as the document writes it
    args: tuple[str, ...]  # after `qcode`
    out: str | None  # `> FILE`
    skip: str | None  # why it cannot run here
    may_fail_gate: bool  # --fail-under: 0 or 1, by the figures


def _logical_lines(block: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in block.splitlines():
        current = f"{current} {raw.strip()}".strip() if current else raw.strip()
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        if current:
            lines.append(current)
        current = ""
    return lines


def _why_not(args: list[str], env: list[str]) -> str | None:
    if any("OPENAI" in e for e in env) or ("--coder" in args and "openai" in args and "--dry-run" not in args):
        return "asks a model endpoint"
    if args[0] in ("serve", "schedule"):
        return "serves until stopped"
    if any(PLACEHOLDER.search(a) for a in args):
        return "a synopsis"
    return None


def examples(document: Path) -> list[list[Example]]:
    """The `qcode` commands of each of a document's bash blocks, in order (also inside `a && b`)."""
    blocks: list[list[Example]] = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", document.read_text(encoding="utf-8"), re.S):
        found: list[Example] = []
        for line in _logical_lines(block):
            comment = line.partition(" #")[2]
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                env = [w for w in words if re.match(r"^[A-Z_]+=", w)]
                words = words[len(env) :]
                if not words or words[0] != "qcode":
                    continue
                args = words[1:]
                out = None
                if ">" in args:
                    out = args[args.index(">") + 1]
                    args = args[: args.index(">")]
                gate = "--fail-under" in args or "exit 1" in comment
                found.append(Example(document.name, part.strip(), tuple(args), out, _why_not(args, env), gate))
        if found:
            blocks.append(found)
    return blocks


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as a fresh clone leaves it after the quick start: the shipped folders, the bundled
    examples coded into ./qcode.db, and the two stand-ins for the team's own files."""
    folder = tmp_path_factory.mktemp("clone")
    for name in SHIPPED:
        shutil.copytree(ROOT / name, folder / name)
    shutil.copytree(ROOT / "examples" / "transcripts", folder / "interviews")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        answer = qcode("run", "examples/transcripts", "--codebook", "codebooks/linkages.yaml")
        assert answer.exit_code == 0, answer.stderr
        answer = qcode("export", "--format", "qdpx", "--out", "study.qdpx")
        assert answer.exit_code == 0, answer.stderr
        _people_code_blind(Store("qcode.db"), folder)
    return folder


def _people_code_blind(store: Store, folder: Path) -> None:
    """kim and tom code a sample of the latest run blind, as the gold set codes it."""
    codebook_path = folder / "codebooks" / "linkages.yaml"
    transcripts = read_transcripts("examples", folder / "examples" / "transcripts", CsvOptions())
    gold = read_gold(
        [folder / "evals" / "examples-gold.csv"],
        transcripts,
        folder / "examples" / "transcripts",
        load_codebook(codebook_path),
        codebook_path,
    )
    codes: dict[tuple[str, str], list[str]] = {}
    for row in human_rows(gold, Units()):
        codes.setdefault((row["unit_id"], row["coder"]), []).extend([row["code"]] if row["code"] else [])
    lead = Reviewer(id=0, name="lee", role="lead")
    with store.session() as s:
        run_id = s.scalar(select(RunRecord.id).order_by(RunRecord.started_at.desc()).limit(1))
        known = set(s.scalars(select(ReviewerRecord.name)))
    for name in ("kim", "tom"):
        if name not in known:
            add_reviewer(store, name)
        grant_runs(store, name, [str(run_id)])
    create_sample(store, lead, str(run_id), SAMPLE, ["kim", "tom"], seed=1)
    for name, coder in (("kim", "ana"), ("tom", "ben")):  # as two of the gold set's coders code them
        reviewer = find_reviewer(store, name)
        for item in [a for a in assignments(store, reviewer) if not a.coded]:
            submit(store, reviewer, item.id, codes.get((item.chunk_id, coder), []))
    store.engine.dispose()


def test_the_documents_have_examples_and_most_of_them_run_here() -> None:
    everything = [e for d in DOCUMENTS for block in examples(d) for e in block]
    runnable = [e for e in everything if e.skip is None]
    assert len(everything) >= 60 and len(runnable) >= 45, [e.line for e in everything if e.skip]


@pytest.mark.parametrize("document", DOCUMENTS, ids=[d.name for d in DOCUMENTS])
def test_every_example_runs_as_written(
    document: Path, clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of docs/ is a walk-through: its blocks run one after the other in one folder. The
    README's sections stand alone: each block runs from the quick start's folder."""
    failed = []
    folder = tmp_path / "clone"
    for number, block in enumerate(examples(document)):
        if number == 0 or document.name == "README.md":
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(clone, folder)
            monkeypatch.chdir(folder)
        for example in block:
            if example.skip is not None:
                continue
            answer = qcode(*example.args)
            allowed = (0, 1) if example.may_fail_gate else (0,)
            if answer.exit_code not in allowed:
                failed.append(f"{example.line}\n  exit {answer.exit_code}: {answer.stderr.strip()[-400:]}")
            elif example.out is not None:
                (folder / example.out).write_text(answer.stdout, encoding="utf-8")
            if example.args[:1] == ("run",) and "--name" in example.args and document.name == "review.md":
                # the day the page walks through: two reviewers code the new run blind in the app
                _people_code_blind(Store("qcode.db"), folder)
    assert not failed, f"{document.name}: examples that do not run as written:\n" + "\n".join(failed)
