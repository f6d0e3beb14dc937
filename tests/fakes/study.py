"""What a test works on: the repository's examples and codebooks, a small codebook of its own, files
written as a test needs them, the command line, and a store coded by a plain run (no Prefect)."""

from __future__ import annotations

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
