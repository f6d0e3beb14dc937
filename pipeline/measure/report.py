"""`qcode report`: one self-contained HTML file with the evidence a methods section cites.

The report reads the store and writes a single file that opens anywhere, offline:
CSS inline, plots as inline SVG (matplotlib, rendered without a display), no script,
no fonts or images fetched. Every piece of text from the store (quotes, code ids,
case attributes, reviewer names) goes through Jinja2's autoescape.

Sections, each saying plainly when it has no data:

- agreement per code, with 95% bootstrap intervals (`pipeline.measure.agreement` over the
  model's codes and the reviewers' blind double codes);
- confusion between codes: the model against the reviewers' consensus on the blind
  sample, and what reviewers made of the model's suggestions in review;
- calibration: stated confidence, in bins, against the share of reviewed suggestions
  reviewers accepted (`pipeline.measure.calibration`: Wilson intervals, counts per bin, Brier score);
- a threshold sweep: for each threshold, the share of suggestions sent to review and
  the estimated error of the rest (`pipeline.measure.calibration.threshold_sweep` documents the estimator);
- codes by case attribute, with an exemplar quote per cell, and the codes that occur together
  (`pipeline.measure.matrix`'s cross-case matrices, as `qcode matrix` writes them);
- a methods paragraph with the numbers filled in.

`build_report` gathers what the page shows as a `Report` (one typed section each, the page's
contract with templates/report.html.jinja); `render_report` renders it.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from pipeline import __version__
from pipeline.codebook import Codebook
from pipeline.coders import describe as describe_coder
from pipeline.errors import AgreementError
from pipeline.files import written_aside
from pipeline.learn.card import ModelCard, card_columns, card_lines, card_rows, card_title
from pipeline.measure.agreement import Agreement, ModelCodeAgreement, codings_from_store, measure_agreement
from pipeline.measure.calibration import (
    ACCEPTED,
    CALIBRATION_BINS,
    SUGGESTION_VERDICTS,
    Calibration,
    RoutedSuggestion,
    SweepRow,
    calibration,
    threshold_sweep,
)
from pipeline.measure.matrix import (
    CODE,
    Configuration,
    CooccurrenceView,
    MatrixView,
    RunInfo,
    Study,
    case_dimension,
    codebook_codes,
    configurations,
    cooccurrence,
    cooccurrence_view,
    cross_tab,
    matrix_view,
    read_runs,
)
from pipeline.measure.statistic import Statistic, StatisticGroup, optional
from pipeline.measure.triangulation import SOURCE_TYPE, TriangulationRow, triangulate, triangulation_rows
from pipeline.store import Store
from pipeline.store.queries import (
    case_text,
    case_value,
    chunk_pages,
    coded_passages,
    covered,
    database_label,
    decisions_in_scope,
    resolve_run,
    suggestion_records,
)
from pipeline.store.records import (
    AssignmentRecord,
    CodebookRecord,
    HumanCodeRecord,
    ImportRecord,
    LearnedModelRecord,
    RejectionRecord,
    ReviewerRecord,
    RunChunkRecord,
)

BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 0
MAX_ATTRIBUTE_VALUES = 6  # an attribute with more values than this makes too many columns
MAX_COLUMNS = 8  # attribute combinations shown side by side at most
TEMPLATE = "report.html.jinja"


# ---------------------------------------------------------------- what the store holds


@dataclass(frozen=True)
class Assignment:
    """A passage drawn for a reviewer to code blind, and whether they have."""

    sample: str
    chunk_id: str
    reviewer: str
    coded: bool


@dataclass(frozen=True)
class Scope:
    """The runs, passages, transcripts, codebooks and blind assignments the report covers."""

    runs: list[RunInfo]
    chunks: dict[str, str]  # chunk id -> transcript id
    transcripts: dict[str, dict[str, Any]]  # id -> source_name, metadata, label
    rejections: int
    codebooks: dict[str, CodebookRecord]  # the runs' codebook versions
    assignments: list[Assignment]
    imported_coders: list[str]  # people whose codes came in with projects from other QDA tools
    imported_projects: list[str]
    pages: dict[str, str]  # a document's chunk -> its pages ("p. 4")

    @property
    def codebook(self) -> Codebook | None:
        """The codebook, when the report covers exactly one version of one."""
        if len(self.codebooks) != 1:
            return None
        return Codebook.model_validate(next(iter(self.codebooks.values())).content)


def read_scope(store: Store, run_id: str | None) -> Scope:
    """What the report covers: one run (an id), or every run."""
    with store.session() as s:
        runs = read_runs(s, run_id)
        run_ids = [r.id for r in runs]
        chunks, transcripts = covered(s, run_ids)
        pages = chunk_pages(s, chunks)
        keys = {r.coder_key for r in runs}
        in_runs = select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id.in_(run_ids))
        rejections = (
            s.scalar(
                select(func.count())
                .select_from(RejectionRecord)
                .where(RejectionRecord.chunk_id.in_(in_runs), RejectionRecord.coder_key.in_(keys))
            )
            if runs
            else 0
        )
        codebooks = {
            c.version: c
            for c in s.scalars(
                select(CodebookRecord).where(CodebookRecord.version.in_({r.codebook_version for r in runs}))
            )
        }
        assignment_query = select(
            AssignmentRecord.sample, AssignmentRecord.chunk_id, ReviewerRecord.name, AssignmentRecord.coded_at
        ).join(ReviewerRecord, ReviewerRecord.id == AssignmentRecord.reviewer_id)
        if run_id:
            assignment_query = assignment_query.where(AssignmentRecord.run_id == run_id)
        assignments = [Assignment(a, c, n, t is not None) for a, c, n, t in s.execute(assignment_query)]
        # people's codes that came in with projects from other QDA tools, on the transcripts in scope
        imported = s.execute(
            select(HumanCodeRecord.coder, ImportRecord.path)
            .distinct()
            .join(ImportRecord, ImportRecord.id == HumanCodeRecord.import_id)
            .where(HumanCodeRecord.transcript_id.in_(list(transcripts)))
        ).all()
    return Scope(
        runs=runs,
        chunks=chunks,
        transcripts=transcripts,
        rejections=rejections or 0,
        codebooks=codebooks,
        assignments=assignments,
        imported_coders=sorted({c for c, _ in imported}),
        imported_projects=sorted({Path(p).name for _, p in imported}),
        pages=pages,
    )


def routed(suggestions: Sequence[dict[str, Any]], decided: dict[str, dict[str, Any]]) -> list[RoutedSuggestion]:
    """The suggestions as the threshold sweep sees them: confidence, routing and the reviewer's verdict."""
    return [
        RoutedSuggestion(
            confidence=s["confidence"],
            queued_for_review=s["status"] == "review",
            verdict=(decided.get(s["suggestion_id"]) or {}).get("verdict"),
        )
        for s in suggestions
    ]


# ---------------------------------------------------------------- agreement


class AgreementSeries(BaseModel):
    """One series of the per-code plot: the reviewers among themselves (or every coder), or a model
    against their consensus; a statistic per code, in the report's order of codes."""

    label: str
    kind: Literal["humans", "all", "model"]
    stats: list[Statistic]


class ModelCodeRow(BaseModel):
    coder: str
    support: int
    kappa: Statistic
    precision: Statistic
    recall: Statistic
    f1: Statistic


class AgreementRow(BaseModel):
    """A code in the agreement table: prevalence and the reviewers' alpha, then each model's figures."""

    code: str
    name: str | None
    prevalence: Statistic
    alpha_all: Statistic
    gwet_ac1: Statistic
    percent_agreement: Statistic
    humans: Statistic  # the reviewers' Krippendorff's alpha on the code
    models: list[ModelCodeRow]


class OverallRow(BaseModel):
    label: str
    all: Statistic
    humans: Statistic


class PairRow(BaseModel):
    coders: tuple[str, str]
    kind: str
    units: int
    percent_agreement: Statistic
    kappa: Statistic
    alpha: Statistic


class HeadlineModel(BaseModel):
    coder: str
    units: int
    kappa: Statistic
    percent_agreement: Statistic


class Headline(BaseModel):
    """The figures a methods paragraph quotes: the people's alpha, and each model against their consensus."""

    humans_alpha: Statistic
    models: list[HeadlineModel]
    alpha_name: str
    kappa_name: str


class AgreementSection(BaseModel):
    """Section 1. Who coded blind (or in another QDA tool); when `available`, `result` is
    pipeline.measure.agreement's and the rest lays it out for the page, else `reason` says why not."""

    available: bool
    assigned_passages: int
    coded_passages: int
    reviewers: list[str]
    samples: int
    imported_coders: list[str]
    imported_projects: list[str]
    people: str  # who the human codes come from, in the words the page uses
    coded_by: str
    reason: str | None = optional()
    result: Agreement | None = optional()
    humans: list[str] | None = optional()
    models: list[str] | None = optional()
    series: list[AgreementSeries] | None = optional()
    rows: list[AgreementRow] | None = optional()
    plotted: list[int] | None = optional()  # positions of the codes with a statistic to plot
    not_plotted: list[str] | None = optional()
    overall: list[OverallRow] | None = optional()
    pairwise: list[PairRow] | None = optional()
    headline: Headline | None = optional()
    undefined: list[str] | None = optional()  # the reasons of the plotted statistics that are undefined


def _pick(group: StatisticGroup | None, name: str) -> Statistic:
    """A group's statistic by name, or an empty one (no group, or a statistic it does not report)."""
    found = getattr(group, name, None) if group is not None else None
    return found if isinstance(found, Statistic) else Statistic()


def agreement_section(store: Store, run_id: str | None, scope: Scope, codebook: Codebook | None) -> AgreementSection:
    """pipeline.measure.agreement over the model's codes and the blind double codes, shaped for the page."""
    assignments = scope.assignments
    coded = [a for a in assignments if a.coded]
    imported = scope.imported_coders
    section = AgreementSection(
        available=False,
        assigned_passages=len({a.chunk_id for a in assignments}),
        coded_passages=len({a.chunk_id for a in coded}),
        reviewers=sorted({a.reviewer for a in coded}),
        samples=len({a.sample for a in assignments}),
        imported_coders=imported,
        imported_projects=scope.imported_projects,
        people="reviewers" if not imported else "human coders",
        coded_by=" or ".join(
            filter(
                None,
                [
                    "reviewers coded blind" if coded else "",
                    f"people coded in another QDA tool ({', '.join(scope.imported_projects)})" if imported else "",
                ],
            )
        ),
    )
    if not scope.runs:
        return section.model_copy(update={"reason": "No runs yet."})
    if not coded and not imported:
        reason = (
            "No blind double codes yet."
            if not assignments
            else f"A blind sample of {section.assigned_passages} passage(s) is assigned, but no "
            "reviewer has coded any of it yet."
        )
        return section.model_copy(update={"reason": reason})
    try:
        codings = codings_from_store(store, run_id, codebook)
        result = measure_agreement(codings, codebook=codebook, bootstrap=BOOTSTRAP_REPLICATES, seed=BOOTSTRAP_SEED)
    except AgreementError as exc:
        return section.model_copy(update={"reason": str(exc)})
    humans = result.names("human")
    models = result.names("model")

    # the series of the per-code plot: reviewers with each other, then each model against their consensus
    series = []
    if any(e.humans is not None for e in result.per_code):
        series.append(
            AgreementSeries(
                label="reviewers with each other: Krippendorff's α",
                kind="humans",
                stats=[_pick(e.humans, "krippendorff_alpha") for e in result.per_code],
            )
        )
    else:
        series.append(
            AgreementSeries(
                label="all coders: Krippendorff's α",
                kind="all",
                stats=[e.krippendorff_alpha for e in result.per_code],
            )
        )
    by_model = {m.coder: m for m in result.models or []}
    for name in models:
        if name in by_model:
            series.append(
                AgreementSeries(
                    label=f"{name} vs reviewers' consensus: Cohen's κ",
                    kind="model",
                    stats=[r.cohen_kappa for r in by_model[name].per_code],
                )
            )

    rows = []
    for k, entry in enumerate(result.per_code):
        rows.append(
            AgreementRow(
                code=entry.code,
                name=entry.name,
                prevalence=entry.prevalence,
                alpha_all=entry.krippendorff_alpha,
                gwet_ac1=entry.gwet_ac1,
                percent_agreement=entry.percent_agreement,
                humans=_pick(entry.humans, "krippendorff_alpha"),
                models=[_model_row(name, by_model[name].per_code[k]) for name in models if name in by_model],
            )
        )
    plotted = [k for k in range(len(result.per_code)) if any(s.stats[k].value is not None for s in series)]

    overall = []
    names = [("krippendorff_alpha", "Krippendorff's α" + ("" if result.single_label else " (MASI distance)"))]
    if result.single_label:
        names += [("fleiss_kappa", "Fleiss' κ"), ("gwet_ac1", "Gwet's AC1"), ("percent_agreement", "percent agreement")]
    for key, label in names:
        overall.append(
            OverallRow(label=label, all=_pick(result.overall, key), humans=_pick(result.overall_humans, key))
        )
    if not result.single_label:
        humans_mean = result.overall_humans.mean_per_code if result.overall_humans else None
        for key, label in [
            ("krippendorff_alpha", "mean per code: Krippendorff's α"),
            ("fleiss_kappa", "mean per code: Fleiss' κ"),
            ("gwet_ac1", "mean per code: Gwet's AC1"),
            ("percent_agreement", "mean per code: percent agreement"),
        ]:
            overall.append(
                OverallRow(label=label, all=_pick(result.overall.mean_per_code, key), humans=_pick(humans_mean, key))
            )
    return section.model_copy(
        update={
            "available": True,
            "result": result,
            "humans": humans,
            "models": models,
            "series": series,
            "rows": rows,
            "plotted": plotted,
            "not_plotted": [e.code for k, e in enumerate(result.per_code) if k not in plotted],
            "overall": overall,
            "pairwise": [
                PairRow(
                    coders=p.coders,
                    kind=p.kind,
                    units=p.units,
                    percent_agreement=p.percent_agreement,
                    kappa=p.cohen_kappa,
                    alpha=p.krippendorff_alpha,
                )
                for p in result.pairwise
            ],
            "headline": _headline(result),
            "undefined": sorted({s.reason for one in series for s in one.stats if s.reason}),
        }
    )


def _model_row(coder: str, row: ModelCodeAgreement) -> ModelCodeRow:
    return ModelCodeRow(
        coder=coder, support=row.support, kappa=row.cohen_kappa, precision=row.precision, recall=row.recall, f1=row.f1
    )


def _headline(result: Agreement) -> Headline:
    """The figures a methods paragraph quotes: reviewers' alpha, and each model against their consensus."""
    humans = result.overall_humans or (result.overall if not result.names("model") else None)
    return Headline(
        humans_alpha=_pick(humans, "krippendorff_alpha"),
        models=[
            HeadlineModel(coder=p.coders[0], units=p.units, kappa=p.cohen_kappa, percent_agreement=p.percent_agreement)
            for p in result.against_consensus()
        ],
        alpha_name="Krippendorff's α"
        + (f" ({result.level})" if result.level != "nominal" else "")
        + ("" if result.single_label else " with the MASI distance"),
        kappa_name="Cohen's κ" + ("" if result.single_label else " (mean over codes)"),
    )


# ---------------------------------------------------------------- confusion


class ShadedCell(BaseModel):
    """A count, with its share of its row for the heatmap's colour."""

    n: int
    share: float


class BlindConfusion(BaseModel):
    """A model against the people's consensus on the blind sample, less the codes neither side applied."""

    coder: str
    units: int
    labels: list[str]
    matrix: list[list[ShadedCell]]
    total: int
    diagonal: int


class ReviewConfusion(BaseModel):
    """The model's code (rows) against the reviewer's final code or (rejected) (columns), over the
    suggestions reviewers settled."""

    rows: list[str]
    columns: list[str]
    matrix: list[list[ShadedCell]]
    total: int
    kept: int


class ConfusionSection(BaseModel):
    blind: list[BlindConfusion]
    review: ReviewConfusion | None


def confusion_section(
    agreement: AgreementSection, decided: dict[str, dict[str, Any]], suggestions: list[dict[str, Any]]
) -> ConfusionSection:
    """The model against the reviewers' consensus on the blind sample, and what reviewers made of
    the model's codes in review (suggested code by final code, or rejected)."""
    blind = []
    if agreement.result is not None:
        for model in agreement.result.models or []:
            c = model.confusion
            used = [i for i in range(len(c.labels)) if any(c.matrix[i]) or any(row[i] for row in c.matrix)]
            matrix = [[c.matrix[i][j] for j in used] for i in used]
            blind.append(
                BlindConfusion(
                    coder=model.coder,
                    units=model.units,
                    labels=[c.labels[i] for i in used],
                    matrix=_shade(matrix),
                    total=sum(map(sum, matrix)),
                    diagonal=sum(matrix[i][i] for i in range(len(matrix))),
                )
            )
    by_id = {s["suggestion_id"]: s for s in suggestions}
    counts: Counter[tuple[str, str]] = Counter()
    for sid, d in decided.items():
        if d["verdict"] not in SUGGESTION_VERDICTS or sid not in by_id:
            continue
        counts[(by_id[sid]["code"], d["final_code"] if d["verdict"] != "reject" else "(rejected)")] += 1
    review = None
    if counts:
        rows = sorted({a for a, _ in counts})
        finals = sorted({b for _, b in counts if b != "(rejected)"} | set(rows))
        columns = finals + (["(rejected)"] if any(b == "(rejected)" for _, b in counts) else [])
        table = [[counts.get((r, c), 0) for c in columns] for r in rows]
        review = ReviewConfusion(
            rows=rows,
            columns=columns,
            matrix=_shade(table),
            total=sum(counts.values()),
            kept=sum(n for (a, b), n in counts.items() if a == b),
        )
    return ConfusionSection(blind=blind, review=review)


def _shade(matrix: list[list[int]]) -> list[list[ShadedCell]]:
    """Each cell with its share of its row, for the heatmap's colour."""
    out = []
    for row in matrix:
        total = sum(row)
        out.append([ShadedCell(n=n, share=n / total if total else 0.0) for n in row])
    return out


# ---------------------------------------------------------------- codes by case


class CaseAttribute(BaseModel):
    """A case attribute worth a column: how many transcripts record it, with how many values."""

    name: str
    transcripts: int
    values: int
    position: int  # where it first appears among the transcripts' attributes


class MatricesSection(BaseModel):
    """Section 5: codes by case attribute (pipeline.measure.matrix's tables), the codes that occur
    together, and when runs of several coder configurations are in scope, those instead."""

    applied: int  # coded passages under status accepted
    pending: int  # suggestions still waiting for review
    attributes: list[CaseAttribute]
    tables: list[MatrixView]
    cooccurrence: CooccurrenceView | None
    configurations: list[Configuration]
    unused: list[str]  # codes of the codebook applied nowhere


def matrices_section(
    runs: Sequence[RunInfo],
    transcripts: dict[str, dict[str, Any]],
    suggestions: list[dict[str, Any]],
    decisions: list[dict[str, Any]],
    decided: dict[str, dict[str, Any]],
    codebook: Codebook | None,
    pages: dict[str, str] | None = None,
) -> MatricesSection:
    """Codes as the study stands by case attribute, with an exemplar quote per cell, and the codes
    that occur together: pipeline.measure.matrix's tables under its status 'accepted', laid out for the page.

    The two case attributes recorded most often are crossed (e.g. district by role) when that makes
    at most MAX_COLUMNS columns; every other attribute gets a table of its own. Codes of several
    coder configurations are not pooled: the section then names them (see `qcode report --run`)."""
    passages = coded_passages(suggestions, decisions, decided, "accepted")
    attributes = choose_attributes({t: v["metadata"] for t, v in transcripts.items()})
    section = MatricesSection(
        applied=len({(p["chunk_id"], p["code"]) for p in passages}),
        pending=len(coded_passages(suggestions, decisions, decided, "review")),
        attributes=attributes,
        tables=[],
        cooccurrence=None,
        configurations=[],
        unused=[],
    )
    configs = configurations(runs)
    if len(configs) > 1:
        return section.model_copy(update={"configurations": configs})
    if not passages:
        return section
    codes, names = codebook_codes(codebook)
    study = Study(transcripts=transcripts, passages=passages, codes=codes, names=names, pages=pages or {})
    used = {p["code"] for p in passages}

    layouts: list[list[str]] = []
    if attributes:
        first = attributes[0].name
        second = attributes[1].name if len(attributes) > 1 else None
        crossed = {
            (case_value(t["metadata"], first), case_value(t["metadata"], second or "")) for t in transcripts.values()
        }
        if second and len(crossed) <= MAX_COLUMNS:
            layouts.append([first, second])
            rest = attributes[2:]
        else:
            layouts.append([first])
            rest = attributes[1:]
        layouts += [[a.name] for a in rest]
    else:
        layouts.append([])
    return section.model_copy(
        update={
            "unused": [c for c in codes if c not in used],
            "tables": [matrix_view(cross_tab(study, [CODE], [case_dimension(k) for k in keys])) for keys in layouts],
            "cooccurrence": cooccurrence_view(cooccurrence(study)),
        }
    )


def choose_attributes(metadata: dict[str, dict[str, Any]]) -> list[CaseAttribute]:
    """Case attributes worth a column: recorded for at least half the transcripts, with 2 to
    MAX_ATTRIBUTE_VALUES short values, and not one value per transcript (an identifier, a name).
    Most often recorded first, then fewest values."""

    n = len(metadata)
    seen: dict[str, list[str]] = {}
    for meta in metadata.values():
        for key, value in meta.items():
            text = case_text(value)
            if text:
                seen.setdefault(str(key), []).append(text)
    chosen = []
    for position, (key, values) in enumerate(seen.items()):
        distinct = len(set(values))
        if len(values) * 2 < n or not 2 <= distinct <= MAX_ATTRIBUTE_VALUES or max(map(len, values)) > 80:
            continue
        if distinct == len(values) and len(values) >= 4:
            continue
        chosen.append(CaseAttribute(name=key, transcripts=len(values), values=distinct, position=position))
    chosen.sort(key=lambda a: (-a.transcripts, a.values, a.position))
    return chosen


class TriangulationSection(BaseModel):
    """Section 6: for each code in each case of one case attribute, the source types that show it
    (pipeline.measure.triangulation), or why there is nothing to triangulate."""

    by: str | None
    source_types: list[str]
    rows: list[TriangulationRow]
    one_source_type: int
    reason: str | None  # why the section has no table


def triangulation_section(
    transcripts: dict[str, dict[str, Any]],
    passages: list[dict[str, Any]],
    codebook: Codebook | None,
    pages: dict[str, str],
    several_configurations: bool,
    by: str | None = None,
) -> TriangulationSection:
    """The codes of each case by the source types that show them. The cases are those of `by`, else
    of the first case attribute `choose_attributes` picks that is not the source type itself."""
    empty = TriangulationSection(by=by, source_types=[], rows=[], one_source_type=0, reason=None)
    if several_configurations:
        return empty.model_copy(update={"reason": "the runs are of several coder configurations (see section 5)"})
    kinds = sorted({case_value(t["metadata"], SOURCE_TYPE) for t in transcripts.values()})
    if len(kinds) < 2:
        one = kinds[0] if kinds else "none"
        return empty.model_copy(
            update={"source_types": kinds, "reason": f"every transcript in scope is of one source type ({one})"}
        )
    if by is None:
        chosen = [a.name for a in choose_attributes({t: v["metadata"] for t, v in transcripts.items()})]
        by = next((name for name in chosen if name != SOURCE_TYPE), None)
    if by is None:
        return empty.model_copy(update={"source_types": kinds, "reason": "the transcripts have no case attribute"})
    if not passages:
        return empty.model_copy(update={"by": by, "source_types": kinds, "reason": "no codes are applied yet"})
    codes, names = codebook_codes(codebook)
    study = Study(transcripts=transcripts, passages=passages, codes=codes, names=names, pages=pages)
    found = triangulate(study, by)
    return TriangulationSection(
        by=by,
        source_types=found.source_types,
        rows=triangulation_rows(found),
        one_source_type=len(found.one_source_type),
        reason=None,
    )


class LearnedSection(BaseModel):
    """Section 7: the model cards of the learned models the runs coded with (pipeline/learn)."""

    models: list[ModelCard]
    trained_at: dict[str, str]  # version -> when it was trained


def learned_section(store: Store, runs: Sequence[RunInfo]) -> LearnedSection:
    """The cards of the learned models the runs in scope coded with, newest run first."""
    versions = list(
        dict.fromkeys(
            r.parameters.get("coder", {}).get("learned_model") for r in reversed(runs) if r.coder == "learned"
        )
    )
    found = []
    when = {}
    with store.session() as s:
        for version in versions:
            record = s.get(LearnedModelRecord, version) if version else None
            if record is not None:
                found.append(ModelCard.model_validate(record.card))
                when[record.version] = record.trained_at.strftime("%Y-%m-%d %H:%M UTC")
    return LearnedSection(models=found, trained_at=when)


# ---------------------------------------------------------------- methods


class RunConfig(BaseModel):
    """A coder configuration as the methods paragraph names it."""

    coder: str
    model: str
    prompt_version: str | None
    codebook_name: str
    codebook_version: str
    qcode_version: str
    parameters: dict[str, Any]  # the coder's
    description: str  # the coder's own words for this configuration


class Methods(BaseModel):
    """Section 6: the numbers the methods paragraph fills in (and the key figures atop the page)."""

    runs: int
    configs: list[RunConfig]
    transcripts: int
    passages: int
    chunk_sizes: list[int]
    suggestions: int
    status: dict[str, int]  # suggestions by routing status
    flagged: int  # sent to review as "possible instructions in the data" (pipeline.route)
    rejections: int
    codes: int | None
    measurement: str | None
    thresholds: list[float]
    audit_shares: list[float]
    seeds: list[int]
    decisions: int
    verdicts: dict[str, int]
    reviewers: int
    decided_suggestions: int
    blind_passages: int
    blind_reviewers: int
    imported_coders: list[str]
    imported_projects: list[str]
    people: str
    agreement: Headline | None
    units: int
    at_threshold: SweepRow | None  # the sweep at the runs' one routing threshold
    calibration: Calibration
    first_run: datetime | None
    last_run: datetime | None


def methods_section(
    scope: Scope,
    suggestions: list[dict[str, Any]],
    decisions: list[dict[str, Any]],
    decided: dict[str, dict[str, Any]],
    agreement: AgreementSection,
    sweep: list[SweepRow],
    calib: Calibration,
    codebook: Codebook | None,
) -> Methods:
    """The numbers the methods paragraph fills in."""
    runs = scope.runs
    configs: dict[str, RunConfig] = {}
    for r in runs:
        configs.setdefault(
            r.coder_key,
            RunConfig(
                coder=r.coder,
                model=r.model,
                prompt_version=r.prompt_version,
                codebook_name=r.codebook_name,
                codebook_version=r.codebook_version,
                qcode_version=r.qcode_version,
                parameters=r.parameters.get("coder") or {},
                description=describe_coder(r.coder, r.model, r.parameters.get("coder") or {}, r.prompt_version),
            ),
        )
    routing = [r.parameters.get("routing") or {} for r in runs]
    thresholds = sorted({p["threshold"] for p in routing if p.get("threshold") is not None})
    audit_shares = sorted({p["audit_share"] for p in routing if p.get("audit_share") is not None})
    seeds = sorted({p["seed"] for p in routing if p.get("seed") is not None})
    chunk_sizes = sorted({r.parameters["chunk_size"] for r in runs if r.parameters.get("chunk_size")})
    at_threshold = None
    if len(thresholds) == 1:
        at_threshold = next((row for row in sweep if abs(row.threshold - thresholds[0]) < 1e-9), None)
        if at_threshold is None:
            at_threshold = threshold_sweep(
                routed(suggestions, decided),
                audit_shares[0] if len(audit_shares) == 1 else None,
                thresholds=thresholds,
            )[0]
    started = [r.started_at for r in runs if r.started_at]
    return Methods(
        runs=len(runs),
        configs=list(configs.values()),
        transcripts=len(scope.transcripts),
        passages=len(scope.chunks),
        chunk_sizes=chunk_sizes,
        suggestions=len(suggestions),
        status=dict(Counter(s["status"] for s in suggestions)),
        flagged=sum(1 for s in suggestions if s.get("flag")),
        rejections=scope.rejections,
        codes=len(codebook.leaves) if codebook else None,
        measurement=codebook.measurement if codebook else None,
        thresholds=thresholds,
        audit_shares=audit_shares,
        seeds=seeds,
        decisions=len(decisions),
        verdicts=dict(Counter(d["verdict"] for d in decisions)),
        reviewers=len({d["reviewer"] for d in decisions}),
        decided_suggestions=len(decided),
        blind_passages=agreement.coded_passages,
        blind_reviewers=len(agreement.reviewers),
        imported_coders=agreement.imported_coders,
        imported_projects=agreement.imported_projects,
        people=agreement.people,
        agreement=agreement.headline if agreement.available else None,
        units=agreement.result.units if agreement.result is not None else 0,
        at_threshold=at_threshold,
        calibration=calib,
        first_run=min(started) if started else None,
        last_run=max(started) if started else None,
    )


# ---------------------------------------------------------------- plots


COLOURS = {"humans": "#2354c9", "all": "#2354c9", "model": "#c9541e", "line": "#1d2433", "muted": "#8b93a3"}


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure  # matplotlib: slow to import, and only for a report

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return figure


def _svg(figure: Any, name: str, title: str) -> Markup:
    """The figure as an inline <svg> element: no XML prologue, text drawn as paths (no fonts to
    load), a <title> for screen readers, ids salted by the figure's name so that several plots
    in one page never share one."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": f"qcode-{name}"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)  # RDF namespaces, not needed inline
    # matplotlib numbers its ids per figure (figure_1, glyph ids per font): prefix them, and what refers to them
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{name}-{m.group(1)}"', svg)
    svg = re.sub(r'\bhref="#([^"]+)"', lambda m: f'href="#{name}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{name}-{m.group(1)})", svg)
    svg = re.sub(
        r"<svg\b", f'<svg role="img" aria-labelledby="{name}-title" class="plot" id="{name}-plot"', svg, count=1
    )
    svg = re.sub(
        r"(<svg\b[^>]*>)", lambda m: m.group(1) + f'<title id="{name}-title">{escape(title)}</title>', svg, count=1
    )
    return Markup(svg)


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=9)
    ax.grid(True, color="#e3e6ec", linewidth=0.6)
    ax.set_axisbelow(True)


def _rc() -> dict[Any, Any]:
    return {"font.family": "DejaVu Sans", "font.size": 9, "text.parse_math": False, "axes.titlesize": 10}


def agreement_plot(section: AgreementSection) -> Markup:
    """Per code: each series' point estimate with its 95% interval, codes top to bottom."""
    import matplotlib

    plotted = section.plotted or []
    series = section.series or []
    rows = section.rows or []
    codes = [rows[k].code for k in plotted]
    with matplotlib.rc_context(_rc()):
        figure = _figure(9.0, 0.40 * len(codes) + 1.3)
        ax = figure.add_subplot()
        step = 0.8 / max(1, len(series))
        low = 0.0
        for i, s in enumerate(series):
            offset = (i - (len(series) - 1) / 2) * step
            colour = COLOURS[s.kind] if s.kind != "model" or i == 1 else f"C{i + 1}"
            ys, xs, lo, hi, missing = [], [], [], [], []
            for row, k in enumerate(plotted):
                stat = s.stats[k]
                y = len(codes) - 1 - row + offset
                if stat.value is None:
                    missing.append(y)
                    continue
                ci = stat.interval or (stat.value, stat.value)
                ys.append(y)
                xs.append(stat.value)
                lo.append(stat.value - ci[0])
                hi.append(ci[1] - stat.value)
                low = min(low, ci[0])
            ax.errorbar(
                xs,
                ys,
                xerr=[lo, hi],
                fmt="o",
                color=colour,
                ecolor=colour,
                elinewidth=1.4,
                capsize=2.5,
                markersize=5,
                label=s.label,
            )
            for y in missing:
                ax.text(-0.02, y, "n/a", color=colour, fontsize=7.5, va="center", ha="right")
        ax.axvline(0, color=COLOURS["muted"], linewidth=0.8)
        ax.set_yticks(range(len(codes)), list(reversed(codes)))
        ax.set_xlim(min(-0.25, low - 0.05), 1.05)
        ax.set_ylim(-0.7, len(codes) - 0.3)
        ax.set_xlabel("agreement (1 perfect, 0 chance); bars: 95% bootstrap intervals")
        _style(ax)
        ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8, frameon=False, ncols=1)
    return _svg(figure, "agreement", "Agreement per code with 95% bootstrap intervals")


def calibration_plot(calib: Calibration) -> Markup:
    import matplotlib

    bins = calib.bins
    with matplotlib.rc_context(_rc()):
        figure = _figure(6.4, 4.6)
        top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
        top.plot([0, 1], [0, 1], linestyle="--", color=COLOURS["muted"], linewidth=1, label="perfect calibration")
        xs, ys, lo, hi, ns = [], [], [], [], []
        for b in bins:
            if b.rate is None or b.mean_confidence is None or b.ci95 is None:  # nothing decided in the bin
                continue
            xs.append(b.mean_confidence)
            ys.append(b.rate)
            lo.append(b.rate - b.ci95[0])
            hi.append(b.ci95[1] - b.rate)
            ns.append(b.decided)
        top.errorbar(
            xs,
            ys,
            yerr=[lo, hi],
            fmt="o-",
            color=COLOURS["humans"],
            capsize=2.5,
            markersize=5,
            linewidth=1.2,
            label="reviewers' acceptance rate (95% Wilson interval)",
        )
        for x, y, n in zip(xs, ys, ns):
            top.annotate(
                f"n={n}", (x, y), textcoords="offset points", xytext=(5, -11), fontsize=7.5, color=COLOURS["line"]
            )
        top.set_ylim(-0.03, 1.03)
        top.set_ylabel("accepted by reviewers")
        top.legend(loc="upper left", fontsize=8, frameon=False)
        _style(top)
        centres = [(b.low + b.high) / 2 for b in bins]
        width = bins[0].high - bins[0].low
        bottom.bar(centres, [b.suggestions for b in bins], width=width * 0.9, color="#d7deea", label="all suggestions")
        bottom.bar(
            centres,
            [b.decided for b in bins],
            width=width * 0.9,
            color=COLOURS["humans"],
            label="decided by reviewers",
        )
        bottom.set_xlim(0, 1)
        bottom.set_xlabel("stated confidence")
        bottom.set_ylabel("suggestions")
        bottom.legend(loc="upper left", fontsize=7.5, frameon=False, ncols=2)
        _style(bottom)
    return _svg(figure, "calibration", "Stated confidence against reviewers' acceptance rate, with counts per bin")


def sweep_plot(sweep: list[SweepRow], thresholds: list[float]) -> Markup:
    import matplotlib

    with matplotlib.rc_context(_rc()):
        figure = _figure(6.4, 3.4)
        ax = figure.add_subplot()
        ts = [r.threshold for r in sweep]
        ax.plot(
            ts,
            [r.share_to_review for r in sweep],
            color=COLOURS["line"],
            linewidth=1.6,
            label="share sent to review (confidence < threshold)",
        )
        known = [(r.threshold, r.error, r.ci95) for r in sweep if r.error is not None and r.ci95 is not None]
        if known:
            ax.plot(
                [t for t, _, _ in known],
                [e for _, e, _ in known],
                color=COLOURS["model"],
                linewidth=1.6,
                marker="o",
                markersize=3,
                label="estimated error of the auto-accepted rest",
            )
            ax.fill_between(
                [t for t, _, _ in known],
                [ci[0] for _, _, ci in known],
                [ci[1] for _, _, ci in known],
                color=COLOURS["model"],
                alpha=0.18,
                linewidth=0,
                label="95% interval",
            )
        for t in thresholds:
            ax.axvline(t, color=COLOURS["muted"], linestyle="--", linewidth=1)
            ax.annotate(
                f"routing threshold {t:g}",
                (t, 1.0),
                textcoords="offset points",
                xytext=(4, -10),
                fontsize=7.5,
                color=COLOURS["muted"],
            )
        ax.set_xlim(0, 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("threshold")
        ax.set_ylabel("share")
        ax.legend(loc="center left", fontsize=8, frameon=False)
        _style(ax)
    return _svg(figure, "sweep", "Threshold sweep: share sent to review and estimated error of the rest")


# ---------------------------------------------------------------- the report


class BootstrapSettings(BaseModel):
    replicates: int
    seed: int


class Report(BaseModel):
    """Everything the page shows (templates/report.html.jinja reads these fields by name)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    generated_at: str
    qcode_version: str
    database: str
    run_id: str | None
    runs: list[RunInfo]
    codebook: Codebook | None  # when the report covers one version of one codebook
    suggestions: int
    agreement: AgreementSection
    confusion: ConfusionSection
    calibration: Calibration
    sweep: list[SweepRow]
    thresholds: list[float]  # the runs' routing thresholds
    audit_shares: list[float]
    matrices: MatricesSection
    triangulation: TriangulationSection
    learned: LearnedSection
    methods: Methods
    plots: dict[str, Markup]  # inline SVG by section: agreement, calibration, sweep
    bootstrap: BootstrapSettings
    bins: int


def build_report(store: Store, run_id: str | None = None, triangulate_by: str | None = None) -> Report:
    """Everything the page shows (plots as SVG markup); the triangulation compares the cases of
    `triangulate_by` (else of the case attribute the report picks)."""
    run_id = resolve_run(store, run_id)
    scope = read_scope(store, run_id)
    codebook = scope.codebook
    suggestions = list(suggestion_records(store, run_id)) if scope.runs else []
    decisions, decided = decisions_in_scope(
        store,
        {s["suggestion_id"] for s in suggestions},
        set(scope.chunks),
        {r.codebook_version for r in scope.runs},
    )

    agreement = agreement_section(store, run_id, scope, codebook)
    confusion = confusion_section(agreement, decided, suggestions)
    pairs = [
        (s["confidence"], decided[s["suggestion_id"]]["verdict"] == ACCEPTED)
        for s in suggestions
        if s["suggestion_id"] in decided and decided[s["suggestion_id"]]["verdict"] in SUGGESTION_VERDICTS
    ]
    calib = calibration(pairs, [s["confidence"] for s in suggestions])
    routing = [r.parameters.get("routing") or {} for r in scope.runs]
    thresholds = sorted({p["threshold"] for p in routing if p.get("threshold") is not None})
    audit_shares = sorted({p["audit_share"] for p in routing if p.get("audit_share") is not None})
    sweep = threshold_sweep(routed(suggestions, decided), audit_shares[0] if len(audit_shares) == 1 else None)
    matrices = matrices_section(scope.runs, scope.transcripts, suggestions, decisions, decided, codebook, scope.pages)
    triangulation = triangulation_section(
        scope.transcripts,
        coded_passages(suggestions, decisions, decided, "accepted"),
        codebook,
        scope.pages,
        bool(matrices.configurations),
        triangulate_by,
    )
    methods = methods_section(scope, suggestions, decisions, decided, agreement, sweep, calib, codebook)

    plots = {}
    if agreement.available and agreement.plotted:
        plots["agreement"] = agreement_plot(agreement)
    if calib.decided:
        plots["calibration"] = calibration_plot(calib)
    if suggestions:
        plots["sweep"] = sweep_plot(sweep, thresholds)
    return Report(
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        qcode_version=__version__,
        database=database_label(store.url),
        run_id=run_id,
        runs=scope.runs,
        codebook=codebook,
        suggestions=len(suggestions),
        agreement=agreement,
        confusion=confusion,
        calibration=calib,
        sweep=sweep,
        thresholds=thresholds,
        audit_shares=audit_shares,
        matrices=matrices,
        triangulation=triangulation,
        learned=learned_section(store, scope.runs),
        methods=methods,
        plots=plots,
        bootstrap=BootstrapSettings(replicates=BOOTSTRAP_REPLICATES, seed=BOOTSTRAP_SEED),
        bins=CALIBRATION_BINS,
    )


def _environment() -> Environment:
    # autoescape=True, not select_autoescape: the template's name ends in .jinja. The tables of codes
    # by case are matrix_tables.jinja, the same as `qcode matrix` writes.
    loader = FileSystemLoader(Path(__file__).parent / "templates")
    env = Environment(loader=loader, autoescape=True, undefined=StrictUndefined)
    env.filters.update(num=_num, pct=_pct, ci=_ci, span=_span, plural=_plural)
    # the learned model's card, shown as `qcode train` shows it
    env.globals.update(card_title=card_title, card_columns=card_columns, card_rows=card_rows, card_lines=card_lines)
    return env


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _ci(ci: Sequence[float] | None, digits: int = 2, percent: bool = False) -> str:
    if not ci:
        return ""
    if percent:
        return f"[{100 * ci[0]:.{digits}f}%, {100 * ci[1]:.{digits}f}%]"
    return f"[{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _span(ci: Sequence[float] | None, digits: int = 2, percent: bool = False) -> str:
    """An interval as words, for running text: '0.66 to 1.00'."""
    if not ci:
        return ""
    if percent:
        return f"{100 * ci[0]:.{digits}f}% to {100 * ci[1]:.{digits}f}%"
    return f"{ci[0]:.{digits}f} to {ci[1]:.{digits}f}"


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (plural or word + 's')}"


def render_report(report: Report) -> str:
    return _environment().get_template(TEMPLATE).render(**dict(report))


def write_report(
    store: Store, out: Path, run_id: str | None = None, *, force: bool = False, triangulate_by: str | None = None
) -> Report:
    """Build the report and write it to `out` (through a temporary file); returns what it shows."""
    report = build_report(store, run_id, triangulate_by)
    html = render_report(report)

    with written_aside(out, force=force) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return report


class ReportSummary(BaseModel):
    """What `qcode report` wrote (its --json object): the file, and the figures of its scope."""

    out: str
    bytes: int
    transcripts: int
    suggestions: int
    decisions: int
    blind_passages: int

    @classmethod
    def of(cls, report: Report, out: Path) -> ReportSummary:
        m = report.methods
        return cls(
            out=str(out),
            bytes=out.stat().st_size,
            transcripts=m.transcripts,
            suggestions=m.suggestions,
            decisions=m.decisions,
            blind_passages=m.blind_passages,
        )
