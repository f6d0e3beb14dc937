"""`qcode matrix`: cross-case matrices, the core display of a multi-case study.

A matrix crosses dimensions of the coded passages: `code`, `transcript`, or any case attribute
recorded on the transcripts (district, school, role...). A cell counts the coded passages (distinct
applications of a code to a passage, i.e. to a chunk) and the distinct transcripts they come from,
with an exemplar quote; rows and columns have totals. The co-occurrence table counts the passages on
which two codes both stand.

Which codes count is decided in one place, `pipeline.store.queries.coded_passages`, from the
suggestions and the reviewers' decisions (the report's tables of codes by case come from this module
too). The researcher's account, with the file layouts, is docs/matrix.md.
"""

from __future__ import annotations

import difflib
import io
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel, ConfigDict, Field, SkipValidation
from sqlalchemy import select

from pipeline import __version__
from pipeline.codebook import Codebook
from pipeline.errors import MatrixError
from pipeline.files import csv_writer, written_aside
from pipeline.store import Store
from pipeline.store.queries import (
    MISSING,
    PASSAGE_STATUSES,
    STATUS_TEXT,
    case_value,
    chunk_pages,
    coded_passages,
    covered,
    database_label,
    decisions_in_scope,
    resolve_run,
    suggestion_records,
)
from pipeline.store.records import CodebookRecord, RunRecord

if TYPE_CHECKING:
    import pandas as pd

STATUSES = PASSAGE_STATUSES
FORMATS = ("html", "csv", "xlsx")
CODE = "code"
TRANSCRIPT = "transcript"
CASE = "case."  # `case.NAME` names a case attribute even when NAME is `code` or `transcript`
ALL = "(all)"  # the totals' rows and columns in csv
QUOTE_CHARS = 150  # an exemplar quote in an HTML cell
SHEET_QUOTE_CHARS = 1000  # in the exemplars sheet
LONG_QUOTE = 300  # a longer quote is an exemplar only when no shorter one is as good


# ---------------------------------------------------------------- case attributes


def case_dimension(key: str) -> str:
    """The dimension that names a case attribute: `case.KEY` when KEY is a reserved name."""
    return CASE + key if key in (CODE, TRANSCRIPT) or key.startswith(CASE) else key


def shorten(quote: str, limit: int = QUOTE_CHARS) -> str:
    """A quote on one line, cut at a word boundary with an ellipsis when longer than `limit`."""
    quote = re.sub(r"\s+", " ", quote or "").strip()
    if len(quote) <= limit:
        return quote
    cut = quote[:limit].rsplit(" ", 1)[0] if " " in quote[:limit] else quote[:limit]
    return cut.rstrip(",;:.") + "…"


# ---------------------------------------------------------------- what the store holds


def codebook_codes(codebook: Codebook | dict | None) -> tuple[list[str], dict[str, str]]:
    """The codebook's applicable codes in its order, and their names."""
    if codebook is None:
        return [], {}
    if isinstance(codebook, dict):
        codebook = Codebook.model_validate(codebook)
    return [c.id for c in codebook.leaves], {c.id: c.name for c in codebook.leaves}


class RunInfo(BaseModel):
    """A run as the matrices and the report describe it (`pipeline.store.records.RunRecord`'s columns)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str | None = None
    started_at: datetime
    finished_at: datetime | None
    status: str
    coder: str
    model: str
    coder_key: str
    prompt_version: str | None
    codebook_name: str
    codebook_version: str
    parameters: dict[str, Any]
    summary: dict[str, Any]
    qcode_version: str

    @classmethod
    def of(cls, record: RunRecord) -> RunInfo:
        return cls(
            id=record.id,
            name=record.name,
            started_at=record.started_at,
            finished_at=record.finished_at,
            status=record.status,
            coder=record.coder,
            model=record.model,
            coder_key=record.coder_key,
            prompt_version=record.prompt_version,
            codebook_name=record.codebook_name,
            codebook_version=record.codebook_version,
            parameters=record.parameters or {},
            summary=record.summary or {},
            qcode_version=record.qcode_version,
        )


def read_runs(session: Any, run_id: str | None) -> list[RunInfo]:
    """One run (an id), or every run, oldest first."""
    query = select(RunRecord).order_by(RunRecord.started_at)
    if run_id:
        query = query.where(RunRecord.id == run_id)
    return [RunInfo.of(r) for r in session.scalars(query)]


class Configuration(BaseModel):
    """A coder configuration (coder, model and codebook version: a run's coder_key), with its runs'
    count and latest run."""

    coder: str
    model: str
    codebook_name: str
    codebook_version: str
    runs: int
    latest_run: str


def configurations(runs: Sequence[RunInfo]) -> list[Configuration]:
    """The coder configurations of some runs (oldest first), each with its runs' count and latest run."""
    found: dict[str, Configuration] = {}
    for r in sorted(runs, key=lambda r: r.started_at):
        seen = found.get(r.coder_key)
        if seen is None:
            found[r.coder_key] = Configuration(
                coder=r.coder,
                model=r.model,
                codebook_name=r.codebook_name,
                codebook_version=r.codebook_version,
                runs=1,
                latest_run=r.id,
            )
        else:
            found[r.coder_key] = seen.model_copy(update={"runs": seen.runs + 1, "latest_run": r.id})
    return list(found.values())


def several_configurations(configs: Sequence[Configuration]) -> str:
    """Why codes of several coder configurations are not pooled, and what to do."""
    listed = "; ".join(
        f"{c.coder} {c.model} with the codebook '{c.codebook_name}' "
        f"[{c.codebook_version}] ({c.runs} run{'s' if c.runs != 1 else ''}, latest "
        f"{c.latest_run})"
        for c in configs
    )
    return (
        f"the database holds runs of {len(configs)} coder configurations, whose codes are not pooled: "
        f"{listed}. Choose one with --run ID (or --run latest); a run covers every file it was given, "
        "so re-running the configuration over all the files gives one run for all of them, coding nothing again"
    )


class Study(BaseModel):
    """What matrices are computed from: the transcripts in scope and their coded passages."""

    # as pipeline.store.queries gives them: id -> source_name, metadata, label; coded_passages(...)
    transcripts: SkipValidation[dict[str, dict[str, Any]]]
    passages: SkipValidation[list[dict[str, Any]]]
    codes: list[str] = Field(default_factory=list)  # the codebook's applicable codes, in its order
    names: dict[str, str] = Field(default_factory=dict)
    status: str = "accepted"
    run_id: str | None = None
    runs: list[RunInfo] = Field(default_factory=list)
    waiting: int = 0  # suggestions still waiting for a reviewer
    pages: dict[str, str] = Field(default_factory=dict)  # a document's chunk -> its pages ("p. 4")

    def dimensions(self) -> list[str]:
        """Every dimension a matrix can use here: code, transcript, then the case attributes
        recorded on the transcripts, in the order they first appear."""
        keys: dict[str, None] = {}
        for t in sorted(self.transcripts.values(), key=lambda t: t["label"]):
            keys.update(dict.fromkeys(str(k) for k in t["metadata"]))
        return [CODE, TRANSCRIPT] + [case_dimension(k) for k in keys]


def load_study(store: Store, run_id: str | None = None, status: str = "accepted") -> Study:
    """The transcripts and coded passages of one run (an id, or latest), or of every run.

    Runs of several coder configurations are not pooled: without a run, that is a MatrixError."""
    if status not in STATUSES:
        raise MatrixError(f"unknown status '{status}' (choose from {', '.join(STATUSES)})")
    run_id = resolve_run(store, run_id)
    with store.session() as s:
        runs = read_runs(s, run_id)
        if not runs:
            raise MatrixError(
                "the database has no runs yet: code transcripts first (qcode run FOLDER --codebook CODEBOOK.yaml)"
            )
        configs = configurations(runs)
        if len(configs) > 1:
            raise MatrixError(several_configurations(configs))
        chunks, transcripts = covered(s, [r.id for r in runs])
        pages = chunk_pages(s, chunks)
        record = s.get(CodebookRecord, runs[-1].codebook_version)
        codebook = record.content if record is not None else None
    suggestions = list(suggestion_records(store, run_id))
    decisions, settled = decisions_in_scope(
        store, {x["suggestion_id"] for x in suggestions}, set(chunks), {r.codebook_version for r in runs}
    )
    codes, names = codebook_codes(codebook)
    return Study(
        transcripts=transcripts,
        passages=coded_passages(suggestions, decisions, settled, status),
        codes=codes,
        names=names,
        status=status,
        run_id=run_id,
        runs=runs,
        waiting=len(coded_passages(suggestions, decisions, settled, "review")),
        pages=pages,
    )


# ---------------------------------------------------------------- the tables


Key = tuple[str, ...]  # the values of a row's (or a column's) dimensions


class Exemplar(BaseModel):
    """The quote that shows what a cell holds: one a reviewer confirmed if any, else the most confident."""

    model_config = ConfigDict(frozen=True)

    quote: str  # whole; pages shorten it
    source: str  # the transcript's label
    transcript_id: str
    chunk_id: str
    code: str
    reviewed: bool
    how: str  # auto, accept, change, add or queued: how the code stands (HOW)
    confidence: float | None


class Cell(BaseModel):
    """Coded passages (a code on a passage counts once), the distinct transcripts they come from, and an exemplar."""

    model_config = ConfigDict(frozen=True)

    passages: int = 0
    transcripts: int = 0
    exemplar: Exemplar | None = None


EMPTY = Cell()


class Matrix(BaseModel):
    """Coded passages by the row dimensions and the column dimensions, with totals."""

    rows: list[str]  # the row dimensions
    cols: list[str]  # the column dimensions
    row_keys: list[Key]
    col_keys: list[Key]
    cells: dict[tuple[Key, Key], Cell]
    row_totals: dict[Key, Cell]
    col_totals: dict[Key, Cell]
    total: Cell
    row_sizes: dict[Key, int]  # transcripts in scope that a row's case values select
    col_sizes: dict[Key, int]
    names: dict[str, str] = Field(default_factory=dict)  # code -> name

    def cell(self, row: Key, col: Key) -> Cell:
        return self.cells.get((row, col), EMPTY)


class Cooccurrence(BaseModel):
    """Code by code: passages where both stand."""

    codes: list[str]
    counts: list[list[int]]  # counts[i][j]: passages where codes i and j both stand; [i][i]: passages with i
    names: dict[str, str] = Field(default_factory=dict)


def parse_dimensions(spec: str | Sequence[str] | None) -> list[str]:
    """'district, role' -> ['district', 'role']."""
    if spec is None:
        return []
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    return [p.strip() for p in parts if p and p.strip()]


def check_dimensions(study: Study, rows: Sequence[str], cols: Sequence[str]) -> None:
    """A MatrixError naming the problem and the dimensions available."""
    available = study.dimensions()
    if not rows:
        raise MatrixError(f"name at least one row dimension, e.g. --rows code (available: {', '.join(available)})")
    seen: set[str] = set()
    for dim in [*rows, *cols]:
        column = _column(study, dim)
        if column is None:
            close = difflib.get_close_matches(dim, available, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise MatrixError(f"unknown dimension '{dim}': the dimensions here are {', '.join(available)}{hint}")
        if column in seen:
            raise MatrixError(f"the dimension '{dim}' is named twice in --rows and --cols")
        seen.add(column)


def _column(study: Study, dim: str) -> str | None:
    """The dimension's column in the passages' frame: '@code', '@transcript' or '@case:KEY'."""
    if dim in (CODE, TRANSCRIPT):
        return "@" + dim
    keys = {str(k) for t in study.transcripts.values() for k in t["metadata"]}
    if dim in keys:
        return "@case:" + dim
    if dim.startswith(CASE) and dim[len(CASE) :] in keys:
        return "@case:" + dim[len(CASE) :]
    return None


def _columns(study: Study, dims: Sequence[str]) -> list[str]:
    """The columns of dimensions `check_dimensions` accepted."""
    columns = [_column(study, d) for d in dims]
    return [c for c in columns if c is not None]


def _values(study: Study, dims: Sequence[str]) -> dict[str, Key]:
    """Each transcript's values for the dimensions other than code."""
    columns = _columns(study, [d for d in dims if d != CODE])
    out = {}
    for tid, t in study.transcripts.items():
        out[tid] = tuple(
            t["label"] if c == "@transcript" else case_value(t["metadata"], c[len("@case:") :]) for c in columns
        )
    return out


def passage_frame(study: Study, dims: Sequence[str] = ()) -> pd.DataFrame:
    """One row per coded passage (a code on a chunk, counted once), best exemplar first, with a
    column per dimension. A code on a chunk twice (the coder's and a reviewer's) keeps its best row.

    The exemplar order: a code a reviewer confirmed (accepted, changed to or added) ranks as
    certain; then the higher stated confidence; then a quote of at most LONG_QUOTE characters;
    then the transcript's label, the quote's position, the chunk and the code, so ties always
    break the same way. Rows without a quote come last (they count, but have nothing to show)."""
    import pandas as pd

    columns = ["chunk_id", "transcript_id", "code", "quote", "quote_start", "confidence", "reviewed", "how"]
    frame = pd.DataFrame([p for p in study.passages if p["transcript_id"] in study.transcripts], columns=columns)
    labels = {tid: t["label"] for tid, t in study.transcripts.items()}
    # an exemplar names its transcript, and where a document has pages, the pages its passage lies on
    frame["source"] = frame["transcript_id"].map(labels).astype(object)
    on_pages = frame["chunk_id"].map(study.pages)
    frame["source"] = frame["source"].where(on_pages.isna(), frame["source"] + ", " + on_pages)
    frame["quote"] = frame["quote"].fillna("").astype(str).str.replace(r"\s+", " ", regex=True).str.strip()
    reviewed = frame["reviewed"].astype(bool)
    frame = frame.assign(
        _no_quote=frame["quote"] == "",
        _certainty=frame["confidence"].astype(float).where(~reviewed, 1.0).fillna(0.0),
        _confidence=frame["confidence"].astype(float).fillna(1.0),
        _long=frame["quote"].str.len() > LONG_QUOTE,
        _order=frame["source"].fillna("").str.casefold(),
        _start=frame["quote_start"].astype(float).fillna(-1.0),
    )
    frame = frame.sort_values(
        ["_no_quote", "_certainty", "_confidence", "_long", "_order", "_start", "chunk_id", "code"],
        ascending=[True, False, False, True, True, True, True, True],
        kind="stable",
    )
    frame = frame.drop_duplicates(["chunk_id", "code"]).reset_index(drop=True)
    values = _values(study, dims)
    others = [d for d in dims if d != CODE]
    for i, column in enumerate(_columns(study, others)):
        frame[column] = frame["transcript_id"].map({t: v[i] for t, v in values.items()}).astype(object)
    frame["@code"] = frame["code"]
    return frame


def _sort_key(study: Study, dims: Sequence[str], codes: Sequence[str]) -> Callable[[Key], tuple]:
    position = {c: i for i, c in enumerate(codes)}

    def key(values: Key) -> tuple:
        out: list[tuple[Any, ...]] = []
        for dim, value in zip(dims, values):
            if dim == CODE:
                out.append((position.get(value, len(position)), value))
            else:
                out.append((value == MISSING, value.casefold(), value))
        return tuple(out)

    return key


def _keys(study: Study, dims: Sequence[str], codes: Sequence[str]) -> tuple[list[Key], dict[Key, int]]:
    """Every combination of values the dimensions take (the case values that transcripts in scope
    have, crossed with every code), in order; and the transcripts each selects."""
    combos = Counter(_values(study, dims).values())
    keys: list[Key] = []
    sizes: dict[Key, int] = {}
    where = dims.index(CODE) if CODE in dims else None
    for combo, n in combos.items():
        for code in codes if where is not None else [""]:
            key = combo if where is None else combo[:where] + (code,) + combo[where:]
            keys.append(key)
            sizes[key] = n
    keys.sort(key=_sort_key(study, dims, codes))
    return keys, sizes


def _aggregate(frame: pd.DataFrame, columns: Sequence[str]) -> dict[Key, Cell]:
    """Passages, distinct transcripts and the exemplar per combination of the columns' values."""
    if frame.empty:
        return {}
    columns = list(columns)
    by = columns or ["_all"]
    keyed = frame.assign(_all="")
    counts = keyed.groupby(by, sort=False).agg(passages=("chunk_id", "size"), transcripts=("transcript_id", "nunique"))
    # the frame is in exemplar order: the first quoted row of a group is its exemplar
    exemplars = {
        tuple(r[c] for c in columns): _exemplar(r)
        for r in keyed[~keyed["_no_quote"]].drop_duplicates(by).to_dict("records")
    }
    out = {}
    for r in counts.reset_index().to_dict("records"):
        key = tuple(r[c] for c in columns)
        out[key] = Cell(passages=int(r["passages"]), transcripts=int(r["transcripts"]), exemplar=exemplars.get(key))
    return out


def _exemplar(row: dict[str, Any]) -> Exemplar:
    confidence = row["confidence"]
    return Exemplar(
        quote=row["quote"],
        source=row["source"],
        transcript_id=row["transcript_id"],
        chunk_id=row["chunk_id"],
        code=row["code"],
        reviewed=bool(row["reviewed"]),
        how=row["how"],
        confidence=None if confidence is None or math.isnan(confidence) else float(confidence),
    )


def cross_tab(study: Study, rows: Sequence[str], cols: Sequence[str]) -> Matrix:
    """The matrix of coded passages by the row and column dimensions, with totals.

    Rows and columns are every combination of values the transcripts in scope have (a transcript
    without a case attribute falls under MISSING), crossed with every code when `code` is a
    dimension: a district where nothing was coded is a column of zeros, an unused code a row of
    zeros. Without `code` among the dimensions a cell counts applications of every code."""
    rows, cols = list(rows), list(cols)
    check_dimensions(study, rows, cols)
    frame = passage_frame(study, rows + cols)
    codes = list(study.codes) + sorted(set(frame["code"]) - set(study.codes))
    row_keys, row_sizes = _keys(study, rows, codes)
    col_keys, col_sizes = _keys(study, cols, codes)
    row_columns = _columns(study, rows)
    col_columns = _columns(study, cols)
    cells = {
        (key[: len(rows)], key[len(rows) :]): cell for key, cell in _aggregate(frame, row_columns + col_columns).items()
    }
    return Matrix(
        rows=rows,
        cols=cols,
        row_keys=row_keys,
        col_keys=col_keys,
        cells=cells,
        row_totals=_aggregate(frame, row_columns),
        col_totals=_aggregate(frame, col_columns),
        total=_aggregate(frame, []).get((), EMPTY),
        row_sizes=row_sizes,
        col_sizes=col_sizes,
        names=study.names,
    )


def cooccurrence(study: Study) -> Cooccurrence:
    """Code by code: the passages (chunks) on which both codes stand; on the diagonal, the
    passages with the code. Only codes that stand somewhere, in the codebook's order."""
    import pandas as pd

    frame = passage_frame(study)
    present = set(frame["code"])
    codes = [c for c in study.codes if c in present] + sorted(present - set(study.codes))
    if not codes:
        return Cooccurrence(codes=[], counts=[], names=study.names)
    indicator = pd.crosstab(frame["chunk_id"], frame["code"]).reindex(columns=codes, fill_value=0).clip(upper=1)
    counts = indicator.T.dot(indicator)
    return Cooccurrence(codes=codes, counts=[[int(counts.loc[a, b]) for b in codes] for a in codes], names=study.names)


# ---------------------------------------------------------------- for the pages


class CellView(BaseModel):
    """A cell as a page shows it: the counts, and the exemplar's quote (shortened) and transcript."""

    passages: int
    transcripts: int
    quote: str | None = None
    source: str | None = None
    reviewed: bool = False


class ColumnView(BaseModel):
    labels: list[str]  # one per column dimension
    transcripts: int  # the transcripts in scope with these values


class RowView(BaseModel):
    labels: list[str]  # one per row dimension
    code: str | None  # the row's code, when code is a row dimension
    name: str | None  # and the code's name
    cells: list[CellView]
    total: CellView


class TotalsView(BaseModel):
    cells: list[CellView]  # per column
    total: CellView


class MatrixView(BaseModel):
    """The matrix as the HTML table shows it (matrix_tables.jinja's `matrix_table` macro)."""

    rows_by: list[str]
    by: list[str]
    code_at: int | None  # the position of code among the row dimensions
    columns: list[ColumnView]
    rows: list[RowView]
    totals: TotalsView


def cell_view(c: Cell, quote_chars: int = QUOTE_CHARS) -> CellView:
    """A cell as a page shows it: its counts, and its exemplar shortened."""
    if c.exemplar is None:
        return CellView(passages=c.passages, transcripts=c.transcripts)
    return CellView(
        passages=c.passages,
        transcripts=c.transcripts,
        quote=shorten(c.exemplar.quote, quote_chars),
        source=c.exemplar.source,
        reviewed=c.exemplar.reviewed,
    )


def matrix_view(matrix: Matrix, quote_chars: int = QUOTE_CHARS) -> MatrixView:
    """The matrix as the HTML table shows it (the `matrix_table` macro)."""
    code_at = matrix.rows.index(CODE) if CODE in matrix.rows else None

    def cell(c: Cell) -> CellView:
        return cell_view(c, quote_chars)

    rows = []
    for key in matrix.row_keys:
        code = key[code_at] if code_at is not None else None
        rows.append(
            RowView(
                labels=list(key),
                code=code,
                name=matrix.names.get(code) if code else None,
                cells=[cell(matrix.cell(key, col)) for col in matrix.col_keys],
                total=cell(matrix.row_totals.get(key, EMPTY)),
            )
        )
    return MatrixView(
        rows_by=list(matrix.rows),
        by=list(matrix.cols),
        code_at=code_at,
        columns=[ColumnView(labels=list(k), transcripts=matrix.col_sizes.get(k, 0)) for k in matrix.col_keys],
        rows=rows,
        totals=TotalsView(
            cells=[cell(matrix.col_totals.get(k, EMPTY)) for k in matrix.col_keys],
            total=cell(matrix.total),
        ),
    )


class CooccurrenceCell(BaseModel):
    n: int  # passages with both codes
    other: str  # the column's code
    diagonal: bool
    share: float  # of the row code's passages


class CooccurrenceRow(BaseModel):
    code: str
    name: str | None
    n: int  # passages with the code
    cells: list[CooccurrenceCell]


class CooccurrenceView(BaseModel):
    """The co-occurrence table as the HTML shows it (the `cooccurrence_table` macro)."""

    codes: list[str]
    rows: list[CooccurrenceRow]


def cooccurrence_view(table: Cooccurrence) -> CooccurrenceView:
    """The co-occurrence table as the HTML shows it: each cell with its share of the row code's passages."""
    rows = []
    for i, code in enumerate(table.codes):
        n = table.counts[i][i]
        rows.append(
            CooccurrenceRow(
                code=code,
                name=table.names.get(code),
                n=n,
                cells=[
                    CooccurrenceCell(
                        n=table.counts[i][j], other=other, diagonal=i == j, share=table.counts[i][j] / n if n else 0.0
                    )
                    for j, other in enumerate(table.codes)
                ],
            )
        )
    return CooccurrenceView(codes=list(table.codes), rows=rows)


TEMPLATES = Path(__file__).parent / "templates"  # matrix.html.jinja and its tables, which the report uses too


def page_templates() -> Environment:
    """The templates of the pages qcode writes (matrix, triangulation), autoescaped."""
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)


class About(BaseModel):
    """What a file says of itself: the table, the status, the scope and where it came from."""

    title: str
    status: str
    status_text: str
    scope: str
    database: str
    coder: str
    codebook: str
    generated_at: str
    qcode_version: str
    waiting: int  # suggestions still waiting for a reviewer
    missing: str  # what marks a transcript without a value for a case attribute
    transcripts: int


def about(store: Store, study: Study, matrix: Matrix) -> About:
    """What a file says of itself: the table, the status, the scope and where it came from."""
    runs = study.runs
    last = runs[-1] if runs else None
    if study.run_id:
        scope = f"run {study.run_id}"
    else:
        scope = "the one run in the database" if len(runs) == 1 else f"all {len(runs)} runs in the database"
    title = "Coded passages by " + " × ".join(matrix.rows) + (" and " + " × ".join(matrix.cols) if matrix.cols else "")
    return About(
        title=title,
        status=study.status,
        status_text=STATUS_TEXT[study.status],
        scope=scope,
        database=database_label(store.url),
        coder=f"{last.coder} ({last.model})" if last else " ()",
        codebook=f"{last.codebook_name} [{last.codebook_version}]" if last else " []",
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        qcode_version=__version__,
        waiting=study.waiting,
        missing=MISSING,
        transcripts=len(study.transcripts),
    )


def render_html(matrix: Matrix, table: Cooccurrence, info: About) -> str:
    """The matrix and the co-occurrence table as one self-contained page."""
    return (
        page_templates()
        .get_template("matrix.html.jinja")
        .render(matrix=matrix_view(matrix), cooccurrence=cooccurrence_view(table), about=info)
    )


# ---------------------------------------------------------------- csv and xlsx


def write_csv(matrix: Matrix, handle: IO[str]) -> None:
    """The long layout: one line per cell (row values, column values, passages, transcripts), then
    the row totals, the column totals and the grand total, with ALL in the dimensions summed over."""

    writer = csv_writer(handle)
    writer.writerow([*matrix.rows, *matrix.cols, "passages", "transcripts"])

    def line(values: tuple[str, ...], cell: Cell) -> None:
        writer.writerow([*values, cell.passages, cell.transcripts])

    for row in matrix.row_keys:
        for col in matrix.col_keys:
            line(row + col, matrix.cell(row, col))
    if matrix.cols:
        for row in matrix.row_keys:
            line(row + (ALL,) * len(matrix.cols), matrix.row_totals.get(row, EMPTY))
    for col in matrix.col_keys if matrix.cols else []:
        line((ALL,) * len(matrix.rows) + col, matrix.col_totals.get(col, EMPTY))
    line((ALL,) * (len(matrix.rows) + len(matrix.cols)), matrix.total)


def write_cooccurrence_csv(table: Cooccurrence, handle: IO[str]) -> None:
    """One line per pair of codes (code, with_code, passages), the diagonal included."""

    writer = csv_writer(handle)
    writer.writerow(["code", "with_code", "passages"])
    for i, code in enumerate(table.codes):
        for j, other in enumerate(table.codes):
            writer.writerow([code, other, table.counts[i][j]])


HOW = {
    "auto": "accepted without review",
    "accept": "accepted by a reviewer",
    "change": "changed to this code by a reviewer",
    "add": "added by a reviewer",
    "queued": "waiting for a reviewer",
}


def write_xlsx(path: Path, matrix: Matrix, table: Cooccurrence, info: About) -> None:
    """Sheets: passages and transcripts (the matrix of each count, with totals), exemplars (one
    line per non-empty cell with its quote), co-occurrence, and about."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "passages"
    _matrix_sheet(sheet, matrix, "passages")
    _matrix_sheet(book.create_sheet("transcripts"), matrix, "transcripts")
    _exemplar_sheet(book.create_sheet("exemplars"), matrix)
    _cooccurrence_sheet(book.create_sheet("co-occurrence"), table)
    _about_sheet(book.create_sheet("about"), info, matrix)
    book.save(path)


def _put(sheet: Any, row: int, column: int, value: Any, bold: bool = False, wrap: bool = False) -> Any:
    """One cell; text is stored as text, never as a formula, whatever it starts with."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font

    cell = sheet.cell(row=row, column=column)
    if isinstance(value, str):
        cell.value = ILLEGAL_CHARACTERS_RE.sub("", value)
        cell.data_type = "s"
    else:
        cell.value = value
    if bold:
        cell.font = Font(bold=True)
    if wrap:
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    return cell


def _matrix_sheet(sheet: Any, matrix: Matrix, what: str) -> None:
    from openpyxl.utils import get_column_letter

    lead = len(matrix.rows)
    last = lead + len(matrix.col_keys) + 1
    r = 1
    for level, dim in enumerate(matrix.cols):
        _put(sheet, r, lead, dim, bold=True)
        for j, key in enumerate(matrix.col_keys):
            _put(sheet, r, lead + 1 + j, key[level], bold=True)
        _put(sheet, r, last, "all", bold=True)
        r += 1
    for i, dim in enumerate(matrix.rows):
        _put(sheet, r, 1 + i, dim, bold=True)
    for j, key in enumerate(matrix.col_keys):
        n = matrix.col_sizes.get(key, 0)
        _put(sheet, r, lead + 1 + j, f"{n} transcript{'s' if n != 1 else ''}")
    _put(sheet, r, last, f"{what}: all", bold=True)
    sheet.freeze_panes = sheet.cell(row=r + 1, column=lead + 1)
    for key in matrix.row_keys:
        r += 1
        for i, value in enumerate(key):
            _put(sheet, r, 1 + i, value, bold=True)
        for j, col in enumerate(matrix.col_keys):
            _put(sheet, r, lead + 1 + j, getattr(matrix.cell(key, col), what))
        _put(sheet, r, last, getattr(matrix.row_totals.get(key, EMPTY), what), bold=True)
    r += 1
    _put(sheet, r, 1, "all", bold=True)
    for j, col in enumerate(matrix.col_keys):
        _put(sheet, r, lead + 1 + j, getattr(matrix.col_totals.get(col, EMPTY), what), bold=True)
    _put(sheet, r, last, getattr(matrix.total, what), bold=True)
    for column in range(1, last + 1):
        sheet.column_dimensions[get_column_letter(column)].width = 26 if column <= lead else 16


def _exemplar_sheet(sheet: Any, matrix: Matrix) -> None:
    from openpyxl.utils import get_column_letter

    named = CODE in matrix.rows or CODE in matrix.cols
    header = [
        *matrix.rows,
        *matrix.cols,
        *(["code name"] if named else []),
        "passages",
        "transcripts",
        "exemplar quote",
        "from transcript",
        "confidence",
        "how the code stands",
    ]
    for j, name in enumerate(header):
        _put(sheet, 1, 1 + j, name, bold=True)
    dims = [*matrix.rows, *matrix.cols]
    r = 1
    for row in matrix.row_keys:
        for col in matrix.col_keys:
            cell = matrix.cell(row, col)
            if not cell.passages:
                continue
            r += 1
            example = cell.exemplar
            values: list[Any] = [*row, *col]
            if named:
                values.append(matrix.names.get((row + col)[dims.index(CODE)], ""))
            values += [
                cell.passages,
                cell.transcripts,
                shorten(example.quote if example else "", SHEET_QUOTE_CHARS),
                example.source if example else "",
                example.confidence if example else None,
                HOW.get(example.how, "") if example else "",
            ]
            for j, value in enumerate(values):
                _put(sheet, r, 1 + j, value, wrap=header[j] == "exemplar quote")
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{r}"
    for j, name in enumerate(header):
        sheet.column_dimensions[get_column_letter(1 + j)].width = {
            "exemplar quote": 80,
            "from transcript": 30,
            "how the code stands": 26,
        }.get(name, 16)


def _cooccurrence_sheet(sheet: Any, table: Cooccurrence) -> None:
    from openpyxl.utils import get_column_letter

    _put(sheet, 1, 1, "code", bold=True)
    if not table.codes:
        _put(sheet, 2, 1, "no coded passages under this status")
        return
    for j, code in enumerate(table.codes):
        _put(sheet, 1, 2 + j, code, bold=True)
    for i, code in enumerate(table.codes):
        _put(sheet, 2 + i, 1, code, bold=True)
        for j in range(len(table.codes)):
            _put(sheet, 2 + i, 2 + j, table.counts[i][j], bold=i == j)
    sheet.freeze_panes = "B2"
    sheet.column_dimensions["A"].width = 26
    for j in range(len(table.codes)):
        sheet.column_dimensions[get_column_letter(2 + j)].width = 14


def _about_sheet(sheet: Any, info: About, matrix: Matrix) -> None:
    lines: list[tuple[str, Any]] = [
        ("table", info.title),
        (
            "a cell",
            (
                "coded passages (a code on a passage counts once) in the 'passages' sheet; the distinct "
                "transcripts they come from in the 'transcripts' sheet; 'all' rows and columns are totals"
            ),
        ),
        ("status", info.status),
        ("what counts", info.status_text),
        ("waiting for review", info.waiting),
        (MISSING, "transcripts without a value for the case attribute"),
        (
            "exemplar",
            (
                "a quote a reviewer confirmed if any, else the most confident; ties go to the first "
                "transcript by name and the first passage in it"
            ),
        ),
        ("co-occurrence", "passages on which both codes stand; on the diagonal, the passages with the code"),
        ("scope", info.scope),
        ("transcripts in scope", info.transcripts),
        ("coder", info.coder),
        ("codebook", info.codebook),
        ("database", info.database),
        ("generated", f"{info.generated_at} by qcode {info.qcode_version}"),
    ]
    for i, (key, value) in enumerate(lines):
        _put(sheet, 1 + i, 1, key, bold=True)
        _put(sheet, 1 + i, 2, value, wrap=True)
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 100


# ---------------------------------------------------------------- writing a file


def format_of(fmt: str | None, out: Path | None) -> str:
    """The format asked for, else the one --out's extension names, else csv. An extension that is
    none of these names no format: a file called m.pdf would hold a csv table (ValueError)."""
    if fmt is not None:
        return fmt
    suffix = out.suffix.lower() if out is not None else ""
    named = {".html": "html", ".htm": "html", ".xlsx": "xlsx", ".csv": "csv", "": "csv"}
    if suffix not in named:
        raise ValueError(f"--out {out}: '{suffix}' is not a format the matrix is written in (.csv, .html, .xlsx)")
    return named[suffix]


class MatrixSummary(BaseModel):
    """What `qcode matrix` wrote (its --json object): the file, and what the matrix holds."""

    out: str | None  # None: standard output
    format: str
    status: str
    passages: int
    transcripts: int
    rows: int
    columns: int
    waiting_left_out: int  # suggestions still waiting for review, which --status accepted leaves out

    @classmethod
    def of(cls, out: Path | None, fmt: str, study: Study, matrix: Matrix) -> MatrixSummary:
        return cls(
            out=str(out) if out else None,
            format=fmt,
            status=study.status,
            passages=matrix.total.passages,
            transcripts=matrix.total.transcripts,
            rows=len(matrix.row_keys),
            columns=len(matrix.col_keys),
            waiting_left_out=study.waiting if study.status == "accepted" else 0,
        )


def write_matrix(
    store: Store,
    fmt: str,
    out: Path | BinaryIO,
    rows: str | Sequence[str] = CODE,
    cols: str | Sequence[str] | None = None,
    status: str = "accepted",
    run_id: str | None = None,
    cooccurrence_only: bool = False,
    *,
    force: bool = False,
) -> MatrixSummary:
    """Compute the matrix and the co-occurrence table and write them as html, csv or xlsx to `out`,
    a file or a stream such as standard output (xlsx needs a file). csv holds the matrix, or with
    `cooccurrence_only` the co-occurrence table (then `cols` may be left out); html and xlsx hold both."""
    if fmt not in FORMATS:
        raise MatrixError(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    if status not in STATUSES:
        raise MatrixError(f"unknown status '{status}' (choose from {', '.join(STATUSES)})")
    if fmt == "xlsx" and not isinstance(out, Path):
        raise MatrixError("an xlsx workbook cannot go to the terminal: name the file with --out FILE.xlsx")
    if cooccurrence_only and fmt != "csv":
        raise MatrixError(f"--cooccurrence chooses the table a csv file holds; {fmt} holds both tables already")

    study = load_study(store, run_id, status)
    if not parse_dimensions(cols) and not cooccurrence_only:
        raise MatrixError(
            "name the column dimensions with --cols, e.g. --cols district,role (the dimensions here: "
            f"{', '.join(study.dimensions())})"
        )
    matrix = cross_tab(study, parse_dimensions(rows), parse_dimensions(cols))
    table = cooccurrence(study)
    if fmt == "xlsx":
        assert isinstance(out, Path)
        info = about(store, study, matrix)
        with written_aside(out, force=force) as temporary:
            write_xlsx(temporary, matrix, table, info)
        return MatrixSummary.of(out, fmt, study, matrix)
    if fmt == "html":
        text = render_html(matrix, table, about(store, study, matrix))
    else:
        buffer = io.StringIO(newline="")
        if cooccurrence_only:
            write_cooccurrence_csv(table, buffer)
        else:
            write_csv(matrix, buffer)
        text = buffer.getvalue()
    if isinstance(out, Path):
        with written_aside(out, force=force) as temporary:
            temporary.write_text(text, encoding="utf-8", newline="")
        return MatrixSummary.of(out, fmt, study, matrix)
    out.write(text.encode("utf-8"))
    out.flush()
    return MatrixSummary.of(None, fmt, study, matrix)
