"""The harness: code a suite's gold set with each configuration, compare it with the humans, and gate it.

`run_suite` codes the gold set with each configuration through the normal pipeline
(`pipeline.run.corpus.code_corpus`, the run without Prefect, into the suite's database, so a re-run
answers from the store and the model-call cache and pays nothing), maps the human codes onto that
configuration's chunks (`human_rows`), and measures agreement (`pipeline.measure.agreement`): each
configuration against the human consensus and each human, beside the humans against each other.

The gate (`--fail-under METRIC=VALUE`, `check_gates`) reads, for every configuration that ran, its
statistic against the human consensus: the `kind: model-consensus` entry of its agreement report's
`pairwise` list, a point estimate; a configuration fails when it is under VALUE or undefined.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import func, select

from pipeline.chunk import Units
from pipeline.coders import BaseCoder, make_coder
from pipeline.errors import AgreementError, QcodeError, SuiteError
from pipeline.ingest import CsvOptions
from pipeline.ingest.gold import human_rows
from pipeline.learn.train import TrainingPlan, train
from pipeline.measure.agreement import Agreement, codings_from_rows, measure_agreement
from pipeline.measure.evals.results import (
    BootstrapSettings,
    CodeAgainstConsensus,
    CodeAgainstHuman,
    CodebookSummary,
    CodingCost,
    ConfigurationCode,
    ConsensusPair,
    EvalReport,
    GateCheck,
    GateResult,
    GoldSummary,
    HumanAgreement,
    HumanPair,
    RanConfiguration,
    RunFigures,
    SkippedConfiguration,
)
from pipeline.measure.evals.suite import Configuration, Suite, run_request
from pipeline.run.corpus import code_corpus
from pipeline.run.request import RunSummary
from pipeline.store import ChunkCodingRecord, RunChunkRecord, RunRecord, Store, SuggestionRecord, has_password, redact
from pipeline.store.queries import coding_rows
from pipeline.suggestion import Usage

GATE_METRICS = (
    "krippendorff_alpha",
    "cohen_kappa",
    "percent_agreement",
    "exact_agreement",
    "cohen_kappa_linear",
    "cohen_kappa_quadratic",
)

Progress = Callable[[str, str, int], None]  # (configuration, event, n), as `qcode run`'s progress bar takes it


# ---------------------------------------------------------------- running


def run_suite(suite: Suite, progress: Progress | None = None) -> EvalReport:
    """Code the gold set with every configuration that is not skipped and compare each with the humans.

    Returns what `qcode eval --json` prints (docs/evals.md), without the gates (`check_gates`)."""
    gold = suite.gold
    db = suite.db
    if has_password(db):
        # as `qcode run` does: the password stays in this process's environment, out of run records
        os.environ["QCODE_DB"] = db
        db = redact(db)
    try:
        store = Store(db)
    except Exception as exc:
        raise SuiteError(f"{suite.path}: the database {redact(suite.db)} cannot be opened: {exc}") from None
    try:
        humans = _humans(suite)
        configurations: list[RanConfiguration | SkippedConfiguration] = []
        for configuration in suite.configurations:
            why = configuration.skipped
            if why:
                configurations.append(_skipped(configuration, why))
            else:
                configurations.append(_run(suite, store, db, configuration, progress))
    finally:
        store.engine.dispose()
    notes = []
    if gold.relocated:
        notes.append(
            f"{gold.relocated} passage(s) had offsets that do not point at their quote; they were found by the quote"
        )
    return EvalReport(
        suite=str(suite.path),
        name=suite.name,
        gold=GoldSummary(
            transcripts=str(suite.transcripts),
            codes=gold.files,
            format=gold.format,
            coders=gold.coders,
            rows=gold.rows,
            transcripts_coded=len({t for _, t in gold.coverage}) if gold.format == "passages" else None,
            passages=len(gold.spans) if gold.format == "passages" else None,
        ),
        codebook=CodebookSummary(
            path=str(suite.codebook_path), name=suite.codebook.name, version=suite.codebook.version
        ),
        db=redact(suite.db),
        bootstrap=BootstrapSettings(replicates=suite.bootstrap, seed=suite.seed),
        humans=humans,
        configurations=configurations,
        notes=notes,
    )


def _compare(suite: Suite, rows: list[dict[str, str]], source: str, models: list[str]) -> Agreement:
    """Agreement over the long table `rows`, with the suite's level and bootstrap; `models` are the configurations."""
    try:
        codings = codings_from_rows(rows, source, suite.codebook)
        return measure_agreement(
            codings,
            level=suite.level,
            codebook=suite.codebook,
            model_coders=models,
            bootstrap=suite.bootstrap,
            seed=suite.seed,
        )
    except AgreementError as exc:
        raise SuiteError(f"{suite.path}: {exc}") from None


def _humans(suite: Suite) -> list[HumanAgreement]:
    """The humans among themselves, once for each way the configurations cut units."""
    named: dict[Units, list[str]] = {}
    found: dict[Units, Agreement] = {}
    for configuration in suite.configurations:
        units = configuration.units
        named.setdefault(units, []).append(configuration.name)
        if units not in found:
            rows = human_rows(suite.gold, units)
            found[units] = _compare(suite, rows, f"{suite.path}: gold codes, {units.describe()}", [])
    return [
        HumanAgreement(
            unit=units.unit,
            chunk_size=units.size,
            overlap=units.overlap,
            speakers=units.speakers,
            configurations=named[units],
            units=human.units,
            pairable_units=human.pairable_units,
            single_label=human.single_label,
            level=human.level,
            overall=human.overall,
            pairwise=human.pairwise,
            per_code=human.per_code,
            notes=human.notes,
        )
        for units, human in found.items()
    ]


def _skipped(configuration: Configuration, why: str) -> SkippedConfiguration:
    return SkippedConfiguration(
        name=configuration.name,
        description=configuration.description,
        coder=configuration.coder,
        options=configuration.options,
        threshold=configuration.threshold,
        unit=configuration.units.unit,
        chunk_size=configuration.units.size,
        overlap=configuration.units.overlap,
        speakers=configuration.units.speakers,
        notes=[],
        skipped=why,
    )


def _run(
    suite: Suite, store: Store, db: str, configuration: Configuration, progress: Progress | None
) -> RanConfiguration:
    """Code the gold set with one configuration and compare its codes with the humans'."""
    name = configuration.name
    try:
        coder = make_coder(configuration.coder, **configuration.options)
        coder.check_ready()
    except Exception as exc:
        raise SuiteError(f"{suite.path}: configuration '{name}': {exc}") from None

    def report(event: str, n: int) -> None:
        if progress is not None:
            progress(name, event, n)

    report("start", 0)
    began = time.perf_counter()
    request = run_request(suite, configuration, db)
    if configuration.training is not None:
        # the learned coder learns from the training set first; the same set trains the same model
        try:
            plan = TrainingPlan(
                units=configuration.units,
                learner=configuration.learner,  # type: ignore[arg-type]  # checked when the suite was read
                group_by=configuration.group_by,
            )
            csv = CsvOptions(suite.id_column, suite.text_column)
            card = train(store, suite.codebook, plan, [configuration.training], suite.codebook_path, csv)
        except QcodeError as exc:
            raise SuiteError(f"{suite.path}: configuration '{name}': training: {exc}") from None
        request.coder_options = {**request.coder_options, "learned_model": card.model}
    try:
        summary = code_corpus(request, report if progress is not None else None)
    except Exception as exc:
        raise SuiteError(f"{suite.path}: configuration '{name}' could not run: {type(exc).__name__}: {exc}") from None
    coding = _coding_cost(store, summary, coder)
    model_rows, dropped = _model_rows(store, summary, configuration)
    humans = human_rows(suite.gold, configuration.units)
    units = {row["unit_id"] for row in humans}
    lost = units - _run_units(store, summary.run_id)
    if lost:
        raise SuiteError(
            f"{suite.path}: configuration '{name}': {len(lost)} gold passage(s) are "
            "not among the run's chunks; the gold transcripts changed while the eval ran?"
        )
    model_rows = [row for row in model_rows if row["unit_id"] in units]
    coded = {row["unit_id"] for row in model_rows}
    notes = []
    if len(coded) < len(units):
        notes.append(
            f"{len(units) - len(coded)} of {len(units)} gold passage(s) were not coded (failed chunks): they are "
            "missing for this configuration, not 'no code'"
        )
    if dropped:
        notes.append(f"{dropped} suggestion(s) under the threshold {configuration.threshold} are not counted as codes")
    found = _compare(suite, humans + model_rows, f"{suite.path}: {name}", [name])
    eval_seconds = round(time.perf_counter() - began, 3)
    pairs = [p for p in found.pairwise if name in p.coders]
    consensus = next((p for p in pairs if p.kind == "model-consensus"), None)
    model = next((m for m in found.models or [] if m.coder == name), None)
    return RanConfiguration(
        name=name,
        description=configuration.description,
        coder=configuration.coder,
        options=configuration.options,
        threshold=configuration.threshold,
        unit=configuration.units.unit,
        chunk_size=configuration.units.size,
        overlap=configuration.units.overlap,
        speakers=configuration.units.speakers,
        notes=notes,
        model=summary.model,
        prompt_version=summary.prompt_version,
        run=_figures(summary, eval_seconds),
        coding=coding,
        units=found.units,
        consensus=found.consensus,
        against_consensus=None if consensus is None else ConsensusPair.of(consensus),
        against_humans=[HumanPair.of(p, _other(p.coders, name)) for p in pairs if p.kind == "model-human"],
        per_code=_per_code(found, name),
        confusion=None if model is None else model.confusion,
        agreement=found,
    )


def _figures(summary: RunSummary, eval_seconds: float) -> RunFigures:
    """The part of a run's summary an eval reports."""
    return RunFigures(
        run_id=summary.run_id,
        chunks=summary.chunks,
        chunks_coded_now=summary.chunks_coded_now,
        failed_chunks=summary.failed_chunks,
        failed_files=summary.failed,
        requests=summary.requests,
        batch_requests=summary.batch_requests,
        cache_hits=summary.cache_hits,
        input_tokens=summary.input_tokens,
        cached_input_tokens=summary.cached_input_tokens,
        output_tokens=summary.output_tokens,
        cost_usd=summary.cost_usd,
        seconds=summary.seconds,
        eval_seconds=eval_seconds,
        file_notes=[f"{note.path}: {note.note}" for note in summary.notes],
    )


def _run_units(store: Store, run_id: str) -> set[str]:
    with store.session() as s:
        return set(s.scalars(select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id)))


def _model_rows(store: Store, summary: RunSummary, configuration: Configuration) -> tuple[list[dict[str, str]], int]:
    """The configuration's codes as the long table, labelled with its name; under `threshold`, dropped."""
    rows = list(coding_rows(store, summary.run_id))
    low: set[tuple[str, str]] = set()
    if configuration.threshold is not None:
        with store.session() as s:
            key = s.scalar(select(RunRecord.coder_key).where(RunRecord.id == summary.run_id))
            low = {
                (chunk, code)
                for chunk, code in s.execute(
                    select(SuggestionRecord.chunk_id, SuggestionRecord.code).where(
                        SuggestionRecord.coder_key == key, SuggestionRecord.confidence < configuration.threshold
                    )
                )
            }
    by_unit: dict[str, list[str]] = {}
    dropped = 0
    for row in rows:
        codes = by_unit.setdefault(row["unit_id"], [])
        if row["code"] and (row["unit_id"], row["code"]) in low:
            dropped += 1
        elif row["code"]:
            codes.append(row["code"])
    out = [
        {"unit_id": unit, "coder": configuration.name, "code": code}
        for unit, codes in by_unit.items()
        for code in (codes or [""])
    ]
    return out, dropped


def _coding_cost(store: Store, summary: RunSummary, coder: BaseCoder) -> CodingCost:
    """What coding the gold set under this configuration costs, from the stored token counts of every chunk
    (the cost of this run is 0 when the store or the call cache answered), priced by the coder."""
    with store.session() as s:
        key = s.scalar(select(RunRecord.coder_key).where(RunRecord.id == summary.run_id))
        chunks = select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == summary.run_id)
        tokens, cached, output, requests, milliseconds = s.execute(
            select(
                func.coalesce(func.sum(ChunkCodingRecord.input_tokens), 0),
                func.coalesce(func.sum(ChunkCodingRecord.cached_input_tokens), 0),
                func.coalesce(func.sum(ChunkCodingRecord.output_tokens), 0),
                func.coalesce(func.sum(ChunkCodingRecord.requests), 0),
                func.coalesce(func.sum(ChunkCodingRecord.duration_ms), 0),
            ).where(ChunkCodingRecord.coder_key == key, ChunkCodingRecord.chunk_id.in_(chunks))
        ).one()
    usage = Usage(input_tokens=tokens, cached_input_tokens=cached, output_tokens=output, requests=requests)
    cost = coder.cost(usage)
    return CodingCost(
        input_tokens=usage.input_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        output_tokens=usage.output_tokens,
        requests=usage.requests,
        cost_usd=None if cost is None else round(cost, 6),
        coder_seconds=round(milliseconds / 1000, 3),
    )


def _other(coders: tuple[str, str], name: str) -> str:
    """The coder of a pair that is not the configuration `name`."""
    return next(c for c in coders if c != name)


def _per_code(found: Agreement, name: str) -> list[ConfigurationCode]:
    """A configuration on each code: against the consensus (presence against absence, and as a
    classifier of the code) and against each human."""
    model = next((m for m in found.models or [] if m.coder == name), None)
    per_code = []
    for k, entry in enumerate(found.per_code):
        cells = [c for c in entry.pairwise if name in c.coders]
        cell = next((c for c in cells if c.kind == "model-consensus"), None)
        against = None
        if cell is not None and model is not None:
            classified = model.per_code[k]
            against = CodeAgainstConsensus(
                percent_agreement=cell.percent_agreement,
                cohen_kappa=classified.cohen_kappa,
                support=classified.support,
                precision=classified.precision,
                recall=classified.recall,
                f1=classified.f1,
            )
        humans = [
            CodeAgainstHuman(
                human=_other(c.coders, name), percent_agreement=c.percent_agreement, cohen_kappa=c.cohen_kappa
            )
            for c in cells
            if c.kind == "model-human"
        ]
        per_code.append(ConfigurationCode(code=entry.code, name=entry.name, consensus=against, humans=humans))
    return per_code


# ---------------------------------------------------------------- the gate


@dataclass(frozen=True)
class Gate:
    metric: str
    minimum: float

    @property
    def text(self) -> str:
        return f"{self.metric}={self.minimum:g}"


def parse_gates(values: Iterable[str]) -> list[Gate]:
    """`METRIC=VALUE` strings; raise SuiteError (exit 2) on an unknown metric or a value that is not a number."""
    gates = []
    for value in values:
        metric, sep, number = value.partition("=")
        metric = metric.strip()
        if not sep or not metric:
            raise SuiteError(f"--fail-under '{value}': write METRIC=VALUE, e.g. krippendorff_alpha=0.6")
        if metric not in GATE_METRICS:
            raise SuiteError(
                f"--fail-under: '{metric}' is not a statistic of a configuration against the human "
                f"consensus (choose from {', '.join(GATE_METRICS)})"
            )
        try:
            minimum = float(number)
        except ValueError:
            raise SuiteError(f"--fail-under {metric}: '{number}' is not a number") from None
        if not math.isfinite(minimum):
            raise SuiteError(f"--fail-under {metric}: '{number}' is not a finite number")
        gates.append(Gate(metric, minimum))
    return gates


def check_gates(report: EvalReport, gates: list[Gate]) -> EvalReport:
    """The report with its `gates`, each configuration's statistic against the human consensus (its
    `kind: model-consensus` pair) checked against the minimum (an undefined statistic fails), and
    `passed`: whether every gate passed and every configuration coded every passage."""
    results = []
    passed = True
    ran = report.ran()
    for gate in gates:
        checked = []
        for entry in ran:
            pair = entry.against_consensus
            stat = None if pair is None else pair.statistic(gate.metric)
            if pair is not None and stat is None:
                kind = "single-label" if entry.agreement.single_label else "multi-label"
                raise SuiteError(
                    f"--fail-under {gate.metric}: not reported for {kind} data at the "
                    f"{entry.agreement.level} level (configuration '{entry.name}')"
                )
            value = None if stat is None else stat.value
            ok = value is not None and value >= gate.minimum
            why = None
            if stat is None:
                why = "no human consensus to compare with"
            elif value is None:
                why = "undefined" if stat.reason is None else stat.reason
            checked.append(GateCheck(configuration=entry.name, value=value, passed=ok, undefined=why or None))
            passed &= ok
        results.append(GateResult(metric=gate.metric, minimum=gate.minimum, configurations=checked))
    notes = list(report.notes)
    failed = [e.name for e in ran if e.run.failed_chunks or e.run.failed_files]
    if failed:
        notes.append(
            f"configuration(s) {', '.join(failed)} did not code every passage (see failed_chunks); "
            "the eval is incomplete"
        )
    if gates and not ran:
        notes.append("no configuration ran, so no gate was checked")
    return report.model_copy(update={"gates": results, "notes": notes, "passed": passed and not failed})
