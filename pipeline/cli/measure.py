"""`qcode agreement`, `qcode eval`, `qcode report`, `qcode matrix`: how far the coding can be
trusted, and what it shows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from pipeline.cli.options import DbOption, ForceOption, JsonOption, MaxFileMbOption, RunOption
from pipeline.cli.output import bad_argument, emit, err, out, progress_bar, say
from pipeline.cli.runs import chosen_run
from pipeline.codebook import load_codebook
from pipeline.errors import SuiteError
from pipeline.files import file_size_limit
from pipeline.measure.agreement import (
    LEVELS,
    Agreement,
    CodeAgreement,
    CodePairAgreement,
    CoderSummary,
    ModelCodeAgreement,
    PairAgreement,
    codings_from_store,
    measure_agreement,
    read_codings,
)
from pipeline.measure.evals import (
    GATE_METRICS,
    EvalReport,
    HumanAgreement,
    RanConfiguration,
    check_gates,
    load_suite,
    parse_gates,
    run_suite,
)
from pipeline.measure.matrix import CODE, FORMATS, STATUSES, format_of, write_matrix
from pipeline.measure.report import ReportSummary, write_report
from pipeline.measure.statistic import Statistic
from pipeline.measure.triangulation import FORMATS as TRIANGULATION_FORMATS
from pipeline.measure.triangulation import write_triangulation
from pipeline.store import Store

app = typer.Typer()


@app.command("agreement")
def agreement_(
    codings: Annotated[
        Path | None,
        typer.Argument(
            help="The unit_id,coder,code table (CSV, UTF-8), e.g. from `qcode export --format codings`; or read the store with --db."
        ),
    ] = None,
    as_json: JsonOption = False,
    codebook: Annotated[
        Path | None,
        typer.Option(
            "--codebook",
            help="Codebook YAML: its codes (unused ones too) and, for ordinal codebooks, the order of the codes.",
        ),
    ] = None,
    level: Annotated[
        str | None,
        typer.Option(
            "--level",
            help="nominal | ordinal | interval | ratio (default: ordinal for an ordinal codebook, else nominal).",
        ),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap replicates for the 95% intervals (0: no intervals).")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap draws.")] = 0,
    model_coders: Annotated[
        list[str] | None,
        typer.Option(
            "--model-coder",
            help="A coder that is a model; repeatable (default: labels with ':' not starting 'reviewer:').",
        ),
    ] = None,
    db: DbOption = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="With --db: the run whose model codes meet the reviewers' blind codes (its name, its id or the "
            "start of it, or latest).",
        ),
    ] = None,
) -> None:
    """Agreement between coders, per code and overall, with bootstrap 95% intervals (docs/agreement.md)."""
    if (codings is None) == (db is None and run_id is None):
        bad_argument("give either a CODINGS.csv table or --db URL [--run ID], not both")
    if level is not None and level not in LEVELS:
        bad_argument(f"unknown level '{level}' (choose from {', '.join(LEVELS)})")
    loaded = load_codebook(codebook) if codebook is not None else None
    if codings is not None:
        table = read_codings(codings, loaded)
    else:
        store = Store(db, create=False)
        table = codings_from_store(store, chosen_run(store, run_id, strict=False), loaded)
    report = measure_agreement(
        table, level=level, codebook=loaded, model_coders=model_coders, bootstrap=bootstrap, seed=seed
    )

    def show() -> None:
        for rendered in agreement_tables(report):
            out.print(rendered)
        for line in agreement_footnotes(report):
            out.print(escape(line), highlight=False, soft_wrap=True)

    emit(report, as_json, show)


SuiteArgument = Annotated[Path, typer.Argument(help="The suite file (YAML), e.g. evals/examples.yaml.")]
FailUnderOption = Annotated[
    list[str] | None,
    typer.Option(
        "--fail-under",
        metavar="METRIC=VALUE",
        help="Exit 1 when a configuration's statistic against the human consensus is under VALUE (or undefined), "
        f"e.g. krippendorff_alpha=0.6; repeatable. METRIC: {', '.join(GATE_METRICS)}.",
    ),
]


@app.command("eval")
def eval_(
    suite: SuiteArgument,
    as_json: JsonOption = False,
    fail_under: FailUnderOption = None,
    max_file_mb: MaxFileMbOption = None,
) -> None:
    """Code a suite's gold set with each coder configuration and compare them with the human coders.

    Exit status 1: under a --fail-under gate, passages left uncoded, or a bad suite (docs/evals.md)."""
    try:
        gates = parse_gates(fail_under or [])
    except SuiteError as exc:
        bad_argument(str(exc))
    with file_size_limit(max_file_mb):  # the suite's files and its gold transcripts
        loaded = load_suite(suite)
    with progress_bar() as report_progress:
        report = check_gates(run_suite(loaded, report_progress), gates)

    def show() -> None:
        for rendered in eval_tables(report):
            out.print(rendered)

    emit(report, as_json, show)
    for line in eval_lines(report):
        (out if not as_json else err).print(escape(line), highlight=False, soft_wrap=True)
    if not report.passed:
        raise typer.Exit(1)


@app.command("report")
def report_(
    out_path: Annotated[Path, typer.Option("--out", help="The HTML file to write, e.g. report.html.")],
    db: DbOption = None,
    run_id: RunOption = None,
    triangulate_by: Annotated[
        str | None,
        typer.Option(
            "--triangulate-by",
            help="The case attribute whose cases the triangulation compares (default: the first the report tables use).",
        ),
    ] = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Write one self-contained HTML report of agreement, calibration and codes by case.

    Sections: agreement per code, confusion between codes, calibration, a threshold sweep,
    codes by case attribute, triangulation by source type, the learned model's card when runs used
    it, and a methods paragraph with the numbers filled in."""
    store = Store(db, create=False)  # a mistyped --db is an error, not a new empty database
    try:
        run_id = chosen_run(store, run_id, strict=False)
        report = write_report(store, out_path, run_id, force=force, triangulate_by=triangulate_by)
        summary = ReportSummary.of(report, out_path)
    finally:
        store.engine.dispose()
    emit(summary, as_json)
    say(
        f"wrote {out_path} ({summary.bytes // 1024 + 1} KB): {summary.transcripts} transcript(s), "
        f"{summary.suggestions} suggestion(s), {summary.decisions} decision(s), "
        f"{summary.blind_passages} passage(s) coded blind"
    )


@app.command("matrix")
def matrix_(
    cols: Annotated[
        str | None,
        typer.Option(
            "--cols",
            help="Column dimensions, comma-separated: code, transcript or case attributes, e.g. district,role. Required, except with --cooccurrence.",
        ),
    ] = None,
    rows: Annotated[str, typer.Option("--rows", help="Row dimensions, comma-separated, as --cols.")] = CODE,
    status: Annotated[
        str,
        typer.Option(
            "--status",
            help="accepted: codes as they stand after review; review: suggestions waiting for a reviewer; all: both.",
        ),
    ] = "accepted",
    fmt: Annotated[
        str | None, typer.Option("--format", help="html | csv | xlsx (default: from --out's extension, else csv).")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="The file to write (default: standard output; xlsx needs a file).")
    ] = None,
    db: DbOption = None,
    run_id: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Only this run (its name, its id or the start of it, or latest); default: every run in the database.",
        ),
    ] = None,
    cooccurrence_only: Annotated[
        bool, typer.Option("--cooccurrence", help="csv: write the code co-occurrence table instead of the matrix.")
    ] = False,
    triangulate: Annotated[
        bool,
        typer.Option(
            "--triangulate",
            help="For each code and each case of --by, which source types show it, with an exemplar each "
            "(html or csv; --rows and --cols do not apply).",
        ),
    ] = False,
    by: Annotated[
        str | None,
        typer.Option("--by", help="--triangulate: the case attribute whose cases are compared, e.g. district."),
    ] = None,
    force: ForceOption = False,
    as_json: JsonOption = False,
) -> None:
    """Cross-case matrix: coded passages and distinct transcripts by code and case attribute.

    html and xlsx also show an exemplar quote per cell, and which codes occur together.

    Dimensions: code, transcript, or any case attribute of the transcripts (docs/matrix.md)."""
    try:
        fmt = format_of(fmt, out_path)
    except ValueError as exc:
        bad_argument(f"{exc}; or say which with --format")
    if triangulate or by is not None:
        _triangulation(
            fmt, out_path, db, by, status, run_id, triangulate, cols, rows, cooccurrence_only, force, as_json
        )
        return
    if fmt not in FORMATS:
        bad_argument(f"unknown format '{fmt}' (choose from {', '.join(FORMATS)})")
    if status not in STATUSES:
        bad_argument(f"unknown status '{status}' (choose from {', '.join(STATUSES)})")
    if cooccurrence_only and fmt != "csv":
        bad_argument(f"--cooccurrence chooses the table a csv file holds; {fmt} holds both tables already")
    if fmt == "xlsx" and out_path is None:
        bad_argument("an xlsx workbook cannot go to the terminal: name the file with --out FILE.xlsx")
    if as_json and out_path is None:
        bad_argument("--json needs --out: the matrix and the summary cannot both go to standard output")
    store = Store(db, create=False)  # a mistyped --db is an error, not a new empty database
    try:
        run_id = chosen_run(store, run_id, strict=False)
        destination = out_path if out_path is not None else typer.get_binary_stream("stdout")
        summary = write_matrix(store, fmt, destination, rows, cols, status, run_id, cooccurrence_only, force=force)
    finally:
        store.engine.dispose()
    emit(summary, as_json)
    waiting = summary.waiting_left_out
    left_out = f"; {waiting} suggestion(s) still waiting for review left out" if waiting else ""
    say(
        f"wrote {out_path or 'standard output'} ({fmt}): {summary.passages} coded passage(s) in "
        f"{summary.transcripts} transcript(s), {summary.rows} row(s) × {summary.columns} "
        f"column(s), status {status}{left_out}"
    )


def _triangulation(
    fmt: str,
    out_path: Path | None,
    db: str | None,
    by: str | None,
    status: str,
    run_id: str | None,
    triangulate: bool,
    cols: str | None,
    rows: str,
    cooccurrence_only: bool,
    force: bool,
    as_json: bool,
) -> None:
    if not triangulate:
        bad_argument("--by goes with --triangulate")
    if not by:
        bad_argument("--triangulate needs --by, the case attribute whose cases are compared (e.g. --by district)")
    if cols is not None or rows != CODE or cooccurrence_only:
        bad_argument("--triangulate makes its own table: leave out --rows, --cols and --cooccurrence")
    if fmt not in TRIANGULATION_FORMATS:
        bad_argument(f"--triangulate writes {' or '.join(TRIANGULATION_FORMATS)}, not {fmt}")
    if status not in STATUSES:
        bad_argument(f"unknown status '{status}' (choose from {', '.join(STATUSES)})")
    if as_json and out_path is None:
        bad_argument("--json needs --out: the table and the summary cannot both go to standard output")
    store = Store(db, create=False)
    try:
        run_id = chosen_run(store, run_id, strict=False)
        destination = out_path if out_path is not None else typer.get_binary_stream("stdout")
        summary = write_triangulation(store, fmt, destination, by, status, run_id, force=force)
    finally:
        store.engine.dispose()
    emit(summary, as_json)
    say(
        f"wrote {out_path or 'standard output'} ({fmt}): {summary.pairs_said()} in {summary.cases} {by} case(s) "
        f"from {len(summary.source_types)} source type(s) ({', '.join(summary.source_types)}); "
        f"{summary.one_source_type} shown by one source type only, status {status}"
    )


# ---------------------------------------------------------------- tables for people


def statistic_cell(stat: Statistic | None, digits: int = 3) -> str:
    """A statistic with its interval as a table shows it: 'n/a' when undefined, '' when not reported."""
    if stat is None or stat.value is None:
        return "n/a" if stat is not None and stat.reason is not None else ""
    if stat.interval is None:
        return f"{stat.value:.{digits}f}"
    low, high = stat.interval
    return f"{stat.value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def agreement_tables(report: Agreement) -> list[Table]:
    """Agreement as rich tables: overall, pairwise, per code, and the models against the consensus."""

    out = []
    kind = "single-label" if report.single_label else "multi-label"
    overall = Table(
        title=f"Agreement: {report.units} units ({report.pairable_units} coded by two or more "
        f"coders), {len(report.coders)} coders, {kind}, level {report.level}; 95% bootstrap "
        f"intervals over {report.bootstrap.replicates} replicates, seed "
        f"{report.bootstrap.seed}",
        title_justify="left",
    )
    overall.add_column("statistic")
    overall.add_column("all coders")
    humans = report.overall_humans
    if humans:
        overall.add_column("humans only")
    groups = [report.overall] + ([humans] if humans else [])
    overall.add_row(
        "Krippendorff's alpha" + ("" if report.single_label else " (MASI)"),
        *(statistic_cell(g.krippendorff_alpha) for g in groups),
    )
    if report.single_label:
        for label, pick in [
            ("Fleiss' kappa", lambda g: g.fleiss_kappa),
            ("Gwet's AC1", lambda g: g.gwet_ac1),
            ("percent agreement", lambda g: g.percent_agreement),
        ]:
            overall.add_row(label, *(statistic_cell(pick(g)) for g in groups))
    else:
        means = [g.mean_per_code for g in groups]
        for label, name in [
            ("mean per code: Krippendorff's alpha", "krippendorff_alpha"),
            ("mean per code: Fleiss' kappa", "fleiss_kappa"),
            ("mean per code: Gwet's AC1", "gwet_ac1"),
            ("mean per code: percent agreement", "percent_agreement"),
        ]:
            overall.add_row(label, *(statistic_cell(getattr(m, name) if m else None) for m in means))
    out.append(overall)

    pairwise = Table(title="Pairs of coders", title_justify="left")
    columns = [("percent agreement", "percent_agreement"), ("Cohen's kappa", "cohen_kappa")]
    if report.single_label and report.level != "nominal":
        columns += [("kappa, linear", "cohen_kappa_linear"), ("kappa, quadratic", "cohen_kappa_quadratic")]
    columns.append(("Krippendorff's alpha", "krippendorff_alpha"))
    if not report.single_label:
        columns.append(("identical sets", "exact_agreement"))
        columns[1] = ("Cohen's kappa (mean per code)", "cohen_kappa")
        columns[0] = ("percent agreement (mean per code)", "percent_agreement")
    for header in ["coders", "kind", "units"] + [c[0] for c in columns]:
        pairwise.add_column(header, overflow="fold")
    for pair in report.pairwise:
        pairwise.add_row(
            escape(" vs ".join(pair.coders)),
            pair.kind,
            str(pair.units),
            *(statistic_cell(getattr(pair, name)) for _, name in columns),
        )
    out.append(pairwise)

    per_code = Table(title="Per code (presence against absence, all coders)", title_justify="left")
    headers = ["code", "prevalence", "percent agreement", "Fleiss' kappa", "Krippendorff's alpha", "Gwet's AC1"]
    for header in headers:
        per_code.add_column(header, overflow="fold")
    for code in report.per_code:
        stats = (code.prevalence, code.percent_agreement, code.fleiss_kappa, code.krippendorff_alpha, code.gwet_ac1)
        per_code.add_row(escape(code.code), *(statistic_cell(s) for s in stats))
    out.append(per_code)

    if report.pairwise:
        kappas = Table(title="Per code, Cohen's kappa of each pair", title_justify="left")
        kappas.add_column("code", overflow="fold")
        for pair in report.pairwise:
            kappas.add_column(escape(" vs ".join(pair.coders)), overflow="fold")
        for code in report.per_code:
            kappas.add_row(escape(code.code), *(statistic_cell(cell.cohen_kappa) for cell in code.pairwise))
        out.append(kappas)

    for model in report.models or []:
        prf = Table(
            title=f"{escape(model.coder)} against the human consensus ({model.units} units)", title_justify="left"
        )
        for header in ("code", "support", "precision", "recall", "F1", "Cohen's kappa"):
            prf.add_column(header, overflow="fold")
        for row in model.per_code:
            prf.add_row(
                escape(row.code),
                str(row.support),
                statistic_cell(row.precision),
                statistic_cell(row.recall),
                statistic_cell(row.f1),
                statistic_cell(row.cohen_kappa),
            )
        out.append(prf)
        confusion = model.confusion
        matrix = Table(title=f"Confusion: rows the consensus, columns {escape(model.coder)}", title_justify="left")
        matrix.add_column("")
        for label in confusion.labels:
            matrix.add_column(escape(label), justify="right")
        for label, counts in zip(confusion.labels, confusion.matrix):
            matrix.add_row(escape(label), *(str(v) for v in counts))
        out.append(matrix)
    return out


def agreement_footnotes(report: Agreement) -> list[str]:
    """Why each undefined statistic is undefined (once per reason, with where), and the report's notes."""
    reasons: dict[str, list[str]] = {}

    def walk(node: BaseModel, where: str) -> None:
        if isinstance(node, (CodeAgreement, ModelCodeAgreement)):
            label = f"code {node.code}"
        elif isinstance(node, (PairAgreement, CodePairAgreement)):
            label = " vs ".join(node.coders)
        else:
            label = ""
        here = f"{where} {label}".strip()
        for name, value in node:
            if isinstance(value, Statistic):
                if value.value is None and value.reason is not None:
                    reasons.setdefault(value.reason, []).append(f"{name} ({here or 'overall'})")
            elif isinstance(value, BaseModel):
                walk(value, name if name in ("overall", "overall_humans") else here)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, BaseModel) and not isinstance(item, CoderSummary):
                        walk(item, here)

    walk(report, "")
    lines = [
        f"n/a: {reason}: {', '.join(where[:4])}" + (f" and {len(where) - 4} more" if len(where) > 4 else "")
        for reason, where in reasons.items()
    ]
    return lines + [f"note: {note}" for note in report.notes]


def _undefined(node: object) -> bool:
    """Whether a result holds a statistic that is undefined on its data."""
    if isinstance(node, Statistic):
        return node.value is None and node.reason is not None
    if isinstance(node, BaseModel):
        return any(_undefined(value) for _, value in node)
    if isinstance(node, list):
        return any(_undefined(item) for item in node)
    return False


def eval_tables(report: EvalReport) -> list[Table]:
    """An eval as rich tables: overall side by side, per code, cost and time."""

    ran = report.ran()
    replicates = report.bootstrap.replicates
    intervals = f"95% bootstrap intervals over {replicates} replicates" if replicates else "no intervals"
    several = len(report.humans) > 1

    def chunking(entry: HumanAgreement | RanConfiguration) -> str:
        if entry.unit == "turn":
            return " (turns)"
        return f" (chunks of {entry.chunk_size}" + (f", overlap {entry.overlap})" if entry.overlap else ")")

    out = []
    overall = Table(title=f"{escape(report.name)}: agreement with the human coders ({intervals})", title_justify="left")
    multi = not all(h.single_label for h in report.humans)
    columns = [
        ("Krippendorff's alpha" + (" (MASI)" if multi else ""), "krippendorff_alpha"),
        ("Cohen's kappa" + (" (mean per code)" if multi else ""), "cohen_kappa"),
        ("percent agreement" + (" (mean per code)" if multi else ""), "percent_agreement"),
    ]
    if multi:
        columns.append(("identical code sets", "exact_agreement"))
    for header in ["coder", "against", "units"] + [c[0] for c in columns]:
        overall.add_column(header, overflow="fold")
    for humans in report.humans:
        group = humans.overall
        label = "humans" + (chunking(humans) if several else "")
        means = group.mean_per_code
        agreeing = group.percent_agreement if humans.single_label else means.percent_agreement if means else None
        overall.add_row(
            escape(label),
            "each other (all)",
            str(humans.pairable_units),
            statistic_cell(group.krippendorff_alpha, 2),
            "",
            statistic_cell(agreeing, 2),
            *([""] if multi else []),
        )
        for pair in humans.pairwise:
            overall.add_row(
                escape(pair.coders[0]),
                escape(pair.coders[1]),
                str(pair.units),
                *(statistic_cell(getattr(pair, name), 2) for _, name in columns),
            )
    for entry in ran:
        label = entry.name + (chunking(entry) if several else "")
        consensus = entry.against_consensus
        if consensus is not None:
            overall.add_row(
                escape(label),
                "consensus",
                str(consensus.units),
                *(statistic_cell(getattr(consensus, name), 2) for _, name in columns),
                style="bold",
            )
        for versus in entry.against_humans:
            overall.add_row(
                escape(label),
                escape(versus.human),
                str(versus.units),
                *(statistic_cell(getattr(versus, name), 2) for _, name in columns),
            )
    out.append(overall)

    per_code = Table(
        title="Per code: the humans' Krippendorff's alpha among themselves; each configuration's "
        "Cohen's kappa and F1 against the human consensus",
        title_justify="left",
    )
    per_code.add_column("code", overflow="fold")
    for humans in report.humans:
        per_code.add_column("prevalence" + (chunking(humans) if several else ""), overflow="fold")
        per_code.add_column("humans: alpha" + (chunking(humans) if several else ""), overflow="fold")
    for entry in ran:
        per_code.add_column(f"{escape(entry.name)}: kappa", overflow="fold")
        per_code.add_column(f"{escape(entry.name)}: F1", overflow="fold")
    codes = [c.code for c in report.humans[0].per_code] if report.humans else []
    for k, code in enumerate(codes):
        cells = []
        for humans in report.humans:
            stats = humans.per_code[k]
            prevalence = stats.prevalence.value
            cells += [
                f"{prevalence:.2f}" if prevalence is not None else "",
                statistic_cell(stats.krippendorff_alpha, 2),
            ]
        for entry in ran:
            row = entry.per_code[k].consensus
            cells += [statistic_cell(row.cohen_kappa if row else None, 2), statistic_cell(row.f1 if row else None, 2)]
        per_code.add_row(escape(code), *cells)
    out.append(per_code)

    cost = Table(
        title="Cost and time. Now: this run, which the store and the call cache may answer. Gold set: "
        "coding it from scratch, from the stored token counts and coder times.",
        title_justify="left",
    )
    cost.add_column("")
    for each in report.configurations:
        cost.add_column(escape(each.name), overflow="fold")
    rows: list[tuple[str, Callable[[RanConfiguration], str]]] = [
        ("coder", lambda e: f"{e.coder} ({e.model.rsplit('/', 1)[-1]})"),
        ("prompt version", lambda e: e.prompt_version or ""),
        ("threshold", lambda e: "none: every suggestion" if e.threshold is None else f"{e.threshold:g}"),
        ("chunks (coded now)", lambda e: f"{e.run.chunks} ({e.run.chunks_coded_now})"),
        ("requests (from the cache)", lambda e: f"{e.run.requests} ({e.run.cache_hits})"),
        ("cost now", lambda e: _dollars(e.run.cost_usd)),
        ("time now", lambda e: f"{e.run.seconds:.1f} s"),
        ("gold set: cost", lambda e: _dollars(e.coding.cost_usd)),
        ("gold set: coder time", lambda e: f"{e.coding.coder_seconds:.1f} s"),
    ]
    for label, show in rows:
        cells = []
        for each in report.configurations:
            if isinstance(each, RanConfiguration):
                cells.append(escape(show(each)))
            else:
                cells.append(escape(f"skipped: {each.skipped}") if label == "coder" else "")
        cost.add_row(label, *cells)
    out.append(cost)
    return out


def _dollars(value: float | None) -> str:
    return "unknown (no price for this model)" if value is None else f"${value:.4f}"


def eval_lines(report: EvalReport) -> list[str]:
    """The gates' verdicts and the notes, a line each."""
    result = []
    for gate in report.gates or []:
        for item in gate.configurations:
            value = "undefined" if item.value is None else f"{item.value:.3f}"
            verdict = "pass" if item.passed else "FAIL"
            why = f" ({item.undefined})" if item.undefined else ""
            result.append(
                f"{verdict}: {item.configuration} {gate.metric} against the consensus {value}, "
                f"at least {gate.minimum:g} required{why}"
            )
    for entry in report.configurations:
        for note in entry.notes:
            result.append(f"note: {entry.name}: {note}")
    for humans in report.humans:
        for note in humans.notes:
            result.append(f"note: humans: {note}")
    result += [f"note: {note}" for note in report.notes]
    if _undefined(report.humans) or _undefined(report.configurations):
        result.append(
            "n/a: undefined on these data (e.g. a code nobody applied: no variation, so chance agreement "
            "is 1); --json gives each reason beside the statistic, as NAME_undefined"
        )
    return result
