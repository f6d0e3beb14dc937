"""Triangulation: for each code and each case, which kinds of source show it.

In a multi-case study a finding is credible when more than one kind of source shows it: a
linkage's strength in a district seen in the interviews *and* in the district's documents or the
observation notes. `triangulate(study, by)` crosses the coded passages of each code (a code names
its valence: `structural.strength`, `structural.weakness`) in each case (the values of the case
attribute `by`: district, school...) with the transcripts' source types, and gives, for each
source type that shows it, the passages, the transcripts and an exemplar quote. A code shown by
one source type only in a case is marked: it rests on one kind of evidence there.

`qcode matrix --triangulate --by district` writes it as html or csv; the report has it as a
section. The passages and exemplars are the matrix's own (`pipeline.measure.matrix`), so the
counts agree with `qcode matrix --rows code,district --cols source_type`.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

from pydantic import BaseModel, Field

from pipeline import __version__
from pipeline.errors import MatrixError
from pipeline.files import csv_writer, written_aside
from pipeline.measure.matrix import (
    CODE,
    EMPTY,
    QUOTE_CHARS,
    TRANSCRIPT,
    Cell,
    CellView,
    Study,
    case_dimension,
    cell_view,
    cross_tab,
    load_study,
    page_templates,
)
from pipeline.store import Store
from pipeline.store.queries import STATUS_TEXT, database_label

SOURCE_TYPE = "source_type"
FORMATS = ("html", "csv")


class Support(BaseModel):
    """A code in a case, and the source types that show it: each one's passages, transcripts and
    exemplar (the matrix's cell), in the order of the source types."""

    code: str
    name: str | None
    case: str
    passages: int
    sources: dict[str, Cell]

    @property
    def one_source_type(self) -> bool:
        return len(self.sources) == 1


class Triangulation(BaseModel):
    """Every code that stands in some case, with the source types that show it there."""

    by: str
    status: str
    source_types: list[str]  # every source type among the transcripts in scope, in order
    cases: list[str]
    supports: list[Support]  # codebook order, then case order

    @property
    def one_source_type(self) -> list[Support]:
        return [s for s in self.supports if s.one_source_type]


def triangulate(study: Study, by: str) -> Triangulation:
    """The codes of each case of `by`, with the source types that show them."""
    dimensions = study.dimensions()
    if by in (CODE, TRANSCRIPT, SOURCE_TYPE):
        raise MatrixError(f"--by names a case attribute such as district, not '{by}'")
    if case_dimension(by) not in dimensions:
        others = [d for d in dimensions if d not in (CODE, TRANSCRIPT, SOURCE_TYPE)]
        raise MatrixError(
            f"unknown case attribute '{by}' for --by (the case attributes here: {', '.join(others) or 'none'})"
        )
    if SOURCE_TYPE not in dimensions:
        raise MatrixError(
            "the transcripts have no source type: run them again with this version of qcode, which gives "
            "each one (or name it in the manifest's source_type column)"
        )
    matrix = cross_tab(study, [CODE, by], [SOURCE_TYPE])
    source_types = [key[0] for key in matrix.col_keys]
    supports = []
    for code, case in matrix.row_keys:
        found = {t: cell for t in source_types if (cell := matrix.cell((code, case), (t,))).passages}
        if found:
            supports.append(
                Support(
                    code=code,
                    name=study.names.get(code),
                    case=case,
                    passages=matrix.row_totals.get((code, case), EMPTY).passages,
                    sources=found,
                )
            )
    return Triangulation(
        by=by,
        status=study.status,
        source_types=source_types,
        cases=list(dict.fromkeys(key[1] for key in matrix.row_keys)),
        supports=supports,
    )


# ---------------------------------------------------------------- files


class TriangulationRow(BaseModel):
    """A code in a case as the page shows it: a cell per source type, empty where none shows it."""

    code: str
    name: str | None
    case: str
    passages: int
    source_types: int
    one_source_type: bool
    cells: list[CellView]


def triangulation_rows(triangulation: Triangulation, quote_chars: int = QUOTE_CHARS) -> list[TriangulationRow]:
    """The page's rows (matrix_tables.jinja's `triangulation_table` macro)."""
    rows = []
    for support in triangulation.supports:
        cells = [cell_view(support.sources.get(t, EMPTY), quote_chars) for t in triangulation.source_types]
        rows.append(
            TriangulationRow(
                code=support.code,
                name=support.name,
                case=support.case,
                passages=support.passages,
                source_types=len(support.sources),
                one_source_type=support.one_source_type,
                cells=cells,
            )
        )
    return rows


def write_triangulation_csv(triangulation: Triangulation, handle: IO[str]) -> None:
    """One line per code and case: the number of source types, whether it is one, then each source
    type's passages and exemplar quote."""
    writer = csv_writer(handle)
    header = ["code", "name", triangulation.by, "passages", "source_types", "one_source_type"]
    for source_type in triangulation.source_types:
        header += [f"{source_type}: passages", f"{source_type}: exemplar", f"{source_type}: from"]
    writer.writerow(header)
    for support in triangulation.supports:
        line: list[object] = [
            support.code,
            support.name or "",
            support.case,
            support.passages,
            len(support.sources),
            "yes" if support.one_source_type else "",
        ]
        for source_type in triangulation.source_types:
            cell = support.sources.get(source_type, EMPTY)
            example = cell.exemplar
            line += [cell.passages, example.quote if example else "", example.source if example else ""]
        writer.writerow(line)


class TriangulationSummary(BaseModel):
    """What `qcode matrix --triangulate` wrote (its --json object)."""

    out: str | None  # None: standard output
    format: str
    status: str
    by: str
    cases: int
    source_types: list[str]
    codes_in_cases: int  # (code, case) pairs with coded passages
    one_source_type: int  # of those, shown by one source type only
    # the distinct codes of those pairs: said beside them, out of the --json object (as documented)
    codes: int = Field(default=0, exclude=True)

    def pairs_said(self) -> str:
        """The pairs in words, so they are not read as codes: "22 code-by-district pairs of 12 codes"."""
        pairs = "pair" if self.codes_in_cases == 1 else "pairs"
        codes = "code" if self.codes == 1 else "codes"
        return f"{self.codes_in_cases} code-by-{self.by} {pairs} of {self.codes} {codes}"


def write_triangulation(
    store: Store,
    fmt: str,
    out: Path | BinaryIO,
    by: str,
    status: str = "accepted",
    run_id: str | None = None,
    *,
    force: bool = False,
) -> TriangulationSummary:
    """Triangulate the study by `by` and write it as html or csv to `out`, a file or a stream."""
    if fmt not in FORMATS:
        raise MatrixError(f"--triangulate writes {' or '.join(FORMATS)}, not {fmt}")
    study = load_study(store, run_id, status)
    triangulation = triangulate(study, by)
    if fmt == "html":
        text = render_triangulation(store, study, triangulation)
    else:
        buffer = io.StringIO(newline="")
        write_triangulation_csv(triangulation, buffer)
        text = buffer.getvalue()
    if isinstance(out, Path):
        with written_aside(out, force=force) as temporary:
            temporary.write_text(text, encoding="utf-8", newline="")
    else:
        out.write(text.encode("utf-8"))
        out.flush()
    return TriangulationSummary(
        out=str(out) if isinstance(out, Path) else None,
        format=fmt,
        status=status,
        by=by,
        cases=len(triangulation.cases),
        source_types=triangulation.source_types,
        codes_in_cases=len(triangulation.supports),
        one_source_type=len(triangulation.one_source_type),
        codes=len({support.code for support in triangulation.supports}),
    )


def render_triangulation(store: Store, study: Study, triangulation: Triangulation) -> str:
    """The triangulation as one self-contained page."""
    runs = study.runs
    scope = f"run {study.run_id}" if study.run_id else f"{len(runs)} run(s) in the database"
    return (
        page_templates()
        .get_template("triangulation.html.jinja")
        .render(
            t=triangulation,
            rows=triangulation_rows(triangulation),
            title=f"Triangulation by {triangulation.by}",
            status_text=STATUS_TEXT[study.status],
            scope=scope,
            database=database_label(store.url),
            generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            qcode_version=__version__,
        )
    )


__all__ = [
    "SOURCE_TYPE",
    "Support",
    "Triangulation",
    "TriangulationSummary",
    "triangulate",
    "write_triangulation",
]
