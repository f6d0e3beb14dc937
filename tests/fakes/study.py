"""What a test works on: the repository's examples and codebooks, a small codebook of its own, files
written as a test needs them, the command line, and a store coded by a plain run (no Prefect)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.run.corpus import code_corpus
from pipeline.run.request import RunSummary
from pipeline.run.settings import run_request

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CODEBOOKS = ROOT / "codebooks"
LINKAGES = CODEBOOKS / "linkages.yaml"

SMALL_CODEBOOK = """\
name: Small test codebook
description: Two codes for tests.
measurement: nominal
similarity_threshold: 0.35
codes:
  - id: funding
    name: Funding and resources
    definition: Money, budgets, grants, release time and materials the district provides.
    examples:
      positive:
        - "The district gave us a grant to buy new materials."
      negative:
        - "We talked about the weather."
  - id: trust
    name: Trust between colleagues
    definition: Trust, respect and openness in working relationships.
    examples:
      positive:
        - "I trust my principal completely."
"""


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """A file with this text, its folders made as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


def write_pdf(path: Path, pages: list[list[str]], password: str | None = None) -> Path:
    """A PDF with a text layer: each page's paragraphs, a gap between them."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    if password is not None:
        pdf.set_encryption(owner_password="owner", user_password=password)
    for paragraphs in pages:
        pdf.add_page()
        for paragraph in paragraphs:
            pdf.multi_cell(0, 6, paragraph)
            pdf.ln(5)
        if not paragraphs:
            pdf.rect(20, 20, 50, 50)  # a drawing, no text: a scanned page looks like this
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def write_project(path: Path, text: str, codings: list[tuple[str, str, str]]) -> Path:
    """A REFI-QDA project with one text source and the codings (coder, code, quoted words) of two
    people, as a QDA program writes it."""
    users = {"ana": "11111111-1111-1111-1111-111111111111", "ben": "22222222-2222-2222-2222-222222222222"}
    codes = {"funding": "aaaaaaaa-0000-0000-0000-000000000001", "trust": "aaaaaaaa-0000-0000-0000-000000000002"}
    selections = []
    for n, (coder, code, words) in enumerate(codings, 1):
        start = text.index(words)
        selections.append(
            f'<PlainTextSelection guid="77777777-7777-7777-7777-{n:012d}" startPosition="{start}" '
            f'endPosition="{start + len(words)}"><Coding guid="88888888-8888-8888-8888-{n:012d}" '
            f'creatingUser="{users[coder]}"><CodeRef targetGUID="{codes[code]}"/></Coding></PlainTextSelection>'
        )
    qde = (
        '<Project xmlns="urn:QDA-XML:project:1.0" name="pilot" origin="QualCoder 3.6"><Users>'
        + "".join(f'<User guid="{g}" name="{n}"/>' for n, g in users.items())
        + "</Users><CodeBook><Codes>"
        + "".join(f'<Code guid="{g}" name="{n}" isCodable="true"/>' for n, g in codes.items())
        + '</Codes></CodeBook><Sources><TextSource guid="66666666-6666-6666-6666-666666666666" name="chen.txt" '
        'plainTextPath="internal://66666666-6666-6666-6666-666666666666.txt">'
        + "".join(selections)
        + "</TextSource></Sources></Project>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project.qde", qde)
        archive.writestr("Sources/66666666-6666-6666-6666-666666666666.txt", text.encode("utf-8"))
    return path


def write_transcripts(folder: Path, transcripts: dict[str, str]) -> Path:
    """Transcript files (name -> text) in `folder`; returns the folder."""
    for name, text in transcripts.items():
        write(folder / name, text)
    return folder


@dataclass(frozen=True)
class Answer:
    """What a `qcode` command did: its exit status, standard output and standard error. Unpacks as
    (exit_code, stdout, stderr)."""

    exit_code: int
    stdout: str
    stderr: str
    stdout_bytes: bytes

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __iter__(self) -> Iterator[Any]:
        return iter((self.exit_code, self.stdout, self.stderr))


def qcode(*args: object, env: dict[str, str] | None = None) -> Answer:
    """The `qcode` command line, in this process; an exception qcode does not turn into an exit
    status (a bug) is raised, not hidden in the answer."""
    result = CliRunner().invoke(app, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Answer(result.exit_code, result.stdout, result.stderr, result.stdout_bytes)


def code_store(paths: Path | list[Path], codebook: Path, db: Path | str, **settings: Any) -> RunSummary:
    """Code the transcripts into `db` as `qcode run` would, with these settings (coder, threshold,
    audit_share, chunk_size...), through the plain run: no Prefect server is started."""
    overrides = {"codebook": str(codebook), "db": str(db), **settings}
    request = run_request(paths if isinstance(paths, list) else [paths], overrides)
    return code_corpus(request)
