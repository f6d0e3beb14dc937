"""Every error qcode raises on purpose, under one root.

The library raises them and never prints or exits; the command line turns any of them into one
line and exit status 1 (and `{"error": ...}` under `--json`). An error names the file it is about,
where there is one, and says what to do next, where there is something to do.

    QcodeError                 the root: `file` and `hint` where there are some
    ├── FileError              a file missing, unreadable, not text, or not to be replaced without --force
    ├── SettingsError          qcode.toml, flags and environment that do not make a run
    ├── IngestError            a transcript file that cannot be read as transcripts
    ├── CodebookError          a codebook with problems, each with its line
    ├── ExchangeError          REFI-QDA projects and codebooks, spreadsheets
    ├── StoreError             the database: missing, unreachable, no such run
    │   ├── ReviewerError      reviewer accounts
    │   ├── DecisionError      a decision that cannot be recorded as asked
    │   └── Conflict           someone else settled the item first; their decision stands
    ├── CoderError             a coder that cannot run: no key, no model, a bad prompt or price table
    │   └── BatchError         the Batch API refused or lost a batch
    ├── MeasureError           statistics and what they are computed from
    │   ├── AgreementError     a coding table that cannot be compared
    │   ├── SuiteError         an eval suite, its gold set or its gates
    │   └── MatrixError        dimensions or formats of a cross-case matrix
    └── ScheduleError          no Prefect server to schedule runs on
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError


class QcodeError(Exception):
    """What went wrong, in words a researcher can act on."""

    def __init__(self, message: str, *, file: str | Path | None = None, hint: str | None = None):
        self.message = message
        self.file = str(file) if file is not None else None
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        then = f" ({self.hint})" if self.hint else ""
        return f"{where}{self.message}{then}"


class FileError(QcodeError):
    pass


class SettingsError(QcodeError):
    pass


class FlagError(SettingsError):
    """A value given on the command line that cannot be: the command line is wrong (exit status 2)."""


class IngestError(QcodeError):
    """A file that cannot be read as transcripts; a run records it and goes on with the others."""

    def __init__(self, path: str | Path, message: str, *, hint: str | None = None):
        super().__init__(message, file=path, hint=hint)

    @property
    def path(self) -> str:
        return self.file or ""


class CodebookError(QcodeError):
    """Every problem found in a codebook (`problems`, each with its file and line), then, when there
    are several, how many."""

    def __init__(self, problems: list[Any]):
        self.problems = problems
        where = getattr(problems[0], "file", None) if problems else None
        lines = [str(p) for p in problems]
        if len(problems) != 1:
            lines.append(f"{len(problems)} problem(s) in {where or 'the codebook'}")
        super().__init__("\n".join(lines))


class ExchangeError(QcodeError):
    pass


class StoreError(QcodeError):
    pass


class ReviewerError(StoreError):
    pass


class StoreBusy(StoreError):
    """Another program held the database's write lock longer than this one would wait."""


class DecisionError(StoreError):
    pass


class Conflict(StoreError):
    pass


class CoderError(QcodeError):
    pass


class BatchError(CoderError):
    pass


class MeasureError(QcodeError):
    pass


class AgreementError(MeasureError):
    pass


class SuiteError(MeasureError):
    pass


class MatrixError(MeasureError):
    pass


class ScheduleError(QcodeError):
    pass


def problem(error: Any) -> str:
    """One of pydantic's errors in words: 'missing id', "unknown field 'x'", 'rpm: must be > 0'."""
    where = ".".join(str(part) for part in error["loc"])
    if error["type"] == "missing":
        return f"missing {where}"
    if error["type"] == "extra_forbidden":
        return f"unknown field '{where}'"
    return f"{where}: {error['msg']}" if where else error["msg"]


def problems(exc: ValidationError) -> str:
    """Every error of a failed validation, in words, on one line."""
    return "; ".join(problem(error) for error in exc.errors())
