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
  reviewers accepted (Wilson intervals, counts per bin, Brier score);
- a threshold sweep: for each threshold, the share of suggestions sent to review and
  the estimated error of the rest (`threshold_sweep` documents the estimator);
- codes by case attribute, with an exemplar quote per cell, and the codes that occur together
  (`pipeline.measure.matrix`'s cross-case matrices, as `qcode matrix` writes them);
- a methods paragraph with the numbers filled in.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from pipeline import __version__
from pipeline.codebook import Codebook
from pipeline.errors import AgreementError
from pipeline.files import written_aside
from pipeline.measure.agreement import agreement, codings_from_store
from pipeline.measure.matrix import (
    CODE,
    Study,
    case_dimension,
    codebook_codes,
    configurations,
    cooccurrence,
    cooccurrence_view,
    cross_tab,
    matrix_view,
)
from pipeline.store import Store
from pipeline.store.queries import (
    case_text,
    case_value,
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
    RejectionRecord,
    ReviewerRecord,
    RunChunkRecord,
    RunRecord,
)

BOOTSTRAP_REPLICATES = 1000
BOOTSTRAP_SEED = 0
CALIBRATION_BINS = 10
SWEEP_THRESHOLDS = tuple(round(i * 0.05, 2) for i in range(21))
MAX_ATTRIBUTE_VALUES = 6  # an attribute with more values than this makes too many columns
MAX_COLUMNS = 8  # attribute combinations shown side by side at most
Z95 = 1.959963984540054
TEMPLATE = "report.html.jinja"
ACCEPTED = "accept"
SUGGESTION_VERDICTS = ("accept", "reject", "change")


# ---------------------------------------------------------------- small statistics


def wilson_interval(successes: float, n: float) -> tuple[float, float] | None:
    """Wilson (1927) score interval for a proportion, 95%; `n` may be an effective sample size."""
    if n <= 0:
        return None
    p = min(max(successes / n, 0.0), 1.0)
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def confidence_bin(confidence: float, bins: int = CALIBRATION_BINS) -> int:
    """Bins of equal width over [0, 1]; 1.0 falls in the last."""
    return min(bins - 1, max(0, int(math.floor(confidence * bins + 1e-9))))


def calibration(
    decided: Sequence[tuple[float, bool]], confidences: Iterable[float], bins: int = CALIBRATION_BINS
) -> dict[str, Any]:
    """Stated confidence against reviewers' acceptance.

    `decided` holds (confidence, accepted) for every suggestion a reviewer settled: accepted
    is True for an accept, False for a reject or a change of code. `confidences` are those of
    all suggestions, for the counts per bin. Per bin: suggestions, decided, accepted, the
    acceptance rate with its Wilson interval and the mean stated confidence of the decided
    ones. Overall: the Brier score (Brier 1950) of confidence as a forecast of acceptance and
    the expected calibration error (the n-weighted mean gap between mean confidence and
    acceptance rate over bins; Naeini, Cooper and Hauskrecht 2015).
    """
    rows = []
    totals = Counter(confidence_bin(c, bins) for c in confidences)
    by_bin: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for confidence, accepted in decided:
        by_bin[confidence_bin(confidence, bins)].append((confidence, accepted))
    for b in range(bins):
        items = by_bin.get(b, [])
        n = len(items)
        k = sum(1 for _, ok in items if ok)
        rows.append(
            {
                "low": b / bins,
                "high": (b + 1) / bins,
                "suggestions": totals.get(b, 0),
                "decided": n,
                "accepted": k,
                "not_accepted": n - k,
                "rate": k / n if n else None,
                "ci95": wilson_interval(k, n),
                "mean_confidence": sum(c for c, _ in items) / n if n else None,
            }
        )
    n = len(decided)
    brier = sum((c - float(ok)) ** 2 for c, ok in decided) / n if n else None
    ece = sum(r["decided"] * abs(r["rate"] - r["mean_confidence"]) for r in rows if r["decided"]) / n if n else None
    accepted = sum(1 for _, ok in decided if ok)
    return {
        "bins": rows,
        "decided": n,
        "accepted": accepted,
        "rate": accepted / n if n else None,
        "ci95": wilson_interval(accepted, n),
        "brier": brier,
        "ece": ece,
    }


def threshold_sweep(
    items: Sequence[dict[str, Any]],
    audit_share: float | None = None,
    thresholds: Sequence[float] = SWEEP_THRESHOLDS,
    bins: int = CALIBRATION_BINS,
) -> list[dict[str, Any]]:
    """For each threshold t: the share of suggestions that would go to review (confidence < t),
    and the estimated error rate of the rest, the ones that would be accepted without review.

    `items` are all suggestions: {"confidence", "queued_for_review" (routed to review by the
    run's own threshold: status 'review'), "verdict" (accept, reject, change, or None)}.

    The estimator. An error is a reviewer's reject or change of code; an accept is correct.
    Reviewers did not see a random sample of suggestions: every low-confidence one was
    queued, only a random audit share of the confident ones, and the queue is worked from
    the lowest confidence up. So the decided suggestions with confidence >= t are
    post-stratified: strata are (routed to review, or confident) x confidence bins of width
    1/bins. In each stratum h the error rate e_h is that of its decided suggestions with
    confidence >= t, weighted by N_h, the stratum's suggestions with confidence >= t:

        error(t) = sum_h N_h * e_h / sum_h N_h   over the strata with a decision,

    a ratio estimator (Cochran 1977, ch. 5A). `coverage` is the share of the suggestions
    above t that lie in strata with a decision; the others are not represented. The 95%
    interval is Wilson's with Kish's (1965) effective sample size
    n_eff = (sum_h N_h)^2 / sum_h (N_h^2 / n_h), as Korn and Graubard (1998) do with survey
    weights. `decided` and `errors` are the raw counts above t. With one stratum the
    estimate is the plain share of errors among the decided suggestions above t.
    """
    total = len(items)
    rows = []
    for t in thresholds:
        above = [i for i in items if i["confidence"] >= t - 1e-12]
        strata: dict[tuple[bool, int], list[dict[str, Any]]] = defaultdict(list)
        for item in above:
            strata[(bool(item["queued_for_review"]), confidence_bin(item["confidence"], bins))].append(item)
        weighted = covered = 0.0
        squares = 0.0
        decided = errors = 0
        for members in strata.values():
            judged = [i for i in members if i.get("verdict") in SUGGESTION_VERDICTS]
            if not judged:
                continue
            wrong = sum(1 for i in judged if i["verdict"] != ACCEPTED)
            decided += len(judged)
            errors += wrong
            weighted += len(members) * wrong / len(judged)
            covered += len(members)
            squares += len(members) ** 2 / len(judged)
        below = total - len(above)
        share = below / total if total else None
        error = weighted / covered if covered else None
        n_eff = covered**2 / squares if squares else 0.0
        rows.append(
            {
                "threshold": t,
                "to_review": below,
                "share_to_review": share,
                "share_with_audit": (share + audit_share * (1 - share))
                if share is not None and audit_share is not None
                else None,
                "auto_accepted": len(above),
                "decided": decided,
                "errors": errors,
                "error": error,
                "ci95": wilson_interval(error * n_eff, n_eff) if error is not None else None,
                "n_eff": n_eff,
                "coverage": covered / len(above) if above else None,
                "expected_errors": error * len(above) * (1 - (audit_share or 0.0)) if error is not None else None,
            }
        )
    return rows


# ---------------------------------------------------------------- what the store holds


def _scope(store: Store, run_id: str | None) -> dict[str, Any]:
    """The runs, passages, transcripts, codebooks and blind assignments the report covers."""
    with store.session() as s:
        query = select(RunRecord).order_by(RunRecord.started_at)
        if run_id:
            query = query.where(RunRecord.id == run_id)
        runs = list(s.scalars(query))
        run_ids = [r.id for r in runs]
        chunks, transcripts = covered(s, run_ids)
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
        assignments = [
            {"sample": a, "chunk_id": c, "reviewer": n, "coded": t is not None}
            for a, c, n, t in s.execute(assignment_query)
        ]
        # people's codes that came in with projects from other QDA tools, on the transcripts in scope
        imported = s.execute(
            select(HumanCodeRecord.coder, ImportRecord.path)
            .distinct()
            .join(ImportRecord, ImportRecord.id == HumanCodeRecord.import_id)
            .where(HumanCodeRecord.transcript_id.in_(list(transcripts)))
        ).all()
        run_rows = [
            {
                "id": r.id,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "status": r.status,
                "coder": r.coder,
                "model": r.model,
                "coder_key": r.coder_key,
                "prompt_version": r.prompt_version,
                "codebook_name": r.codebook_name,
                "codebook_version": r.codebook_version,
                "parameters": r.parameters or {},
                "summary": r.summary or {},
                "qcode_version": r.qcode_version,
            }
            for r in runs
        ]
    return {
        "runs": run_rows,
        "chunks": chunks,
        "transcripts": transcripts,
        "rejections": rejections or 0,
        "codebooks": codebooks,
        "assignments": assignments,
        "imported": {
            "coders": sorted({c for c, _ in imported}),
            "projects": sorted({Path(p).name for _, p in imported}),
        },
    }


def _codebook(scope: dict[str, Any]) -> Codebook | None:
    """The codebook, when the report covers exactly one version of one."""
    if len(scope["codebooks"]) != 1:
        return None
    return Codebook.model_validate(next(iter(scope["codebooks"].values())).content)


# ---------------------------------------------------------------- sections


def _stat(entry: dict[str, Any] | None, name: str) -> dict[str, Any]:
    """One statistic for the page: its value, interval, and why it is undefined."""
    if not entry:
        return {"value": None, "ci": None, "undefined": None}
    return {"value": entry.get(name), "ci": entry.get(f"{name}_ci95"), "undefined": entry.get(f"{name}_undefined")}


def agreement_section(
    store: Store, run_id: str | None, scope: dict[str, Any], codebook: Codebook | None
) -> dict[str, Any]:
    """pipeline.measure.agreement over the model's codes and the blind double codes, shaped for the page."""
    assignments = scope["assignments"]
    coded = [a for a in assignments if a["coded"]]
    imported = scope["imported"]
    section: dict[str, Any] = {
        "available": False,
        "assigned_passages": len({a["chunk_id"] for a in assignments}),
        "coded_passages": len({a["chunk_id"] for a in coded}),
        "reviewers": sorted({a["reviewer"] for a in coded}),
        "samples": len({a["sample"] for a in assignments}),
        "imported_coders": imported["coders"],
        "imported_projects": imported["projects"],
        # who the human codes come from, in the words the page uses
        "people": "reviewers" if not imported["coders"] else "human coders",
        "coded_by": " or ".join(
            filter(
                None,
                [
                    "reviewers coded blind" if coded else "",
                    f"people coded in another QDA tool ({', '.join(imported['projects'])})"
                    if imported["coders"]
                    else "",
                ],
            )
        ),
    }
    if not scope["runs"]:
        section["reason"] = "No runs yet."
        return section
    if not coded and not imported["coders"]:
        section["reason"] = (
            "No blind double codes yet."
            if not assignments
            else f"A blind sample of {section['assigned_passages']} passage(s) is assigned, but no "
            "reviewer has coded any of it yet."
        )
        return section
    try:
        codings = codings_from_store(store, run_id, codebook)
        result = agreement(codings, codebook=codebook, bootstrap=BOOTSTRAP_REPLICATES, seed=BOOTSTRAP_SEED)
    except AgreementError as exc:
        section["reason"] = str(exc)
        return section
    section["available"] = True
    section["result"] = result
    humans = [c["name"] for c in result["coders"] if c["role"] == "human"]
    models = [c["name"] for c in result["coders"] if c["role"] == "model"]
    section.update(humans=humans, models=models)

    # the series of the per-code plot: reviewers with each other, then each model against their consensus
    series = []
    if any("humans" in e for e in result["per_code"]):
        series.append(
            {
                "label": "reviewers with each other: Krippendorff's α",
                "kind": "humans",
                "stats": [_stat(e.get("humans"), "krippendorff_alpha") for e in result["per_code"]],
            }
        )
    else:
        series.append(
            {
                "label": "all coders: Krippendorff's α",
                "kind": "all",
                "stats": [_stat(e, "krippendorff_alpha") for e in result["per_code"]],
            }
        )
    by_model = {m["coder"]: m for m in result.get("models", [])}
    for name in models:
        if name in by_model:
            rows = by_model[name]["per_code"]
            series.append(
                {
                    "label": f"{name} vs reviewers' consensus: Cohen's κ",
                    "kind": "model",
                    "stats": [_stat(r, "cohen_kappa") for r in rows],
                }
            )
    section["series"] = series

    rows = []
    for k, entry in enumerate(result["per_code"]):
        row = {
            "code": entry["code"],
            "name": entry.get("name"),
            "prevalence": _stat(entry, "prevalence"),
            "alpha_all": _stat(entry, "krippendorff_alpha"),
            "gwet_ac1": _stat(entry, "gwet_ac1"),
            "percent_agreement": _stat(entry, "percent_agreement"),
            "humans": _stat(entry.get("humans"), "krippendorff_alpha"),
            "models": [],
        }
        for name in models:
            if name in by_model:
                m = by_model[name]["per_code"][k]
                row["models"].append(
                    {
                        "coder": name,
                        "support": m["support"],
                        "kappa": _stat(m, "cohen_kappa"),
                        "precision": _stat(m, "precision"),
                        "recall": _stat(m, "recall"),
                        "f1": _stat(m, "f1"),
                    }
                )
        rows.append(row)
    section["rows"] = rows
    section["plotted"] = [
        k for k, e in enumerate(result["per_code"]) if any(s["stats"][k]["value"] is not None for s in series)
    ]
    section["not_plotted"] = [e["code"] for k, e in enumerate(result["per_code"]) if k not in section["plotted"]]

    overall = []
    names = [("krippendorff_alpha", "Krippendorff's α" + ("" if result["single_label"] else " (MASI distance)"))]
    if result["single_label"]:
        names += [("fleiss_kappa", "Fleiss' κ"), ("gwet_ac1", "Gwet's AC1"), ("percent_agreement", "percent agreement")]
    for key, label in names:
        overall.append(
            {"label": label, "all": _stat(result["overall"], key), "humans": _stat(result.get("overall_humans"), key)}
        )
    if not result["single_label"]:
        for key, label in [
            ("krippendorff_alpha", "mean per code: Krippendorff's α"),
            ("fleiss_kappa", "mean per code: Fleiss' κ"),
            ("gwet_ac1", "mean per code: Gwet's AC1"),
            ("percent_agreement", "mean per code: percent agreement"),
        ]:
            overall.append(
                {
                    "label": label,
                    "all": _stat(result["overall"].get("mean_per_code"), key),
                    "humans": _stat((result.get("overall_humans") or {}).get("mean_per_code"), key),
                }
            )
    section["overall"] = overall
    section["pairwise"] = [
        {
            "coders": p["coders"],
            "kind": p["kind"],
            "units": p["units"],
            "percent_agreement": _stat(p, "percent_agreement"),
            "kappa": _stat(p, "cohen_kappa"),
            "alpha": _stat(p, "krippendorff_alpha"),
        }
        for p in result["pairwise"]
    ]
    section["headline"] = _headline(result)
    section["undefined"] = sorted({s["undefined"] for series_ in series for s in series_["stats"] if s["undefined"]})
    return section


def _headline(result: dict[str, Any]) -> dict[str, Any]:
    """The figures a methods paragraph quotes: reviewers' alpha, and each model against their consensus."""
    humans = result.get("overall_humans") or (
        result["overall"] if not any(c["role"] == "model" for c in result["coders"]) else None
    )
    out: dict[str, Any] = {"humans_alpha": _stat(humans, "krippendorff_alpha"), "models": []}
    out["alpha_name"] = (
        "Krippendorff's α"
        + (f" ({result['level']})" if result["level"] != "nominal" else "")
        + ("" if result["single_label"] else " with the MASI distance")
    )
    for p in result["pairwise"]:
        if p["kind"] == "model-consensus":
            out["models"].append(
                {
                    "coder": p["coders"][0],
                    "units": p["units"],
                    "kappa": _stat(p, "cohen_kappa"),
                    "percent_agreement": _stat(p, "percent_agreement"),
                }
            )
    out["kappa_name"] = "Cohen's κ" + ("" if result["single_label"] else " (mean over codes)")
    return out


def confusion_section(agreement: dict[str, Any], decided: dict[str, dict], suggestions: list[dict]) -> dict[str, Any]:
    """The model against the reviewers' consensus on the blind sample, and what reviewers made of
    the model's codes in review (suggested code by final code, or rejected)."""
    section: dict[str, Any] = {"blind": [], "review": None}
    if agreement.get("available"):
        for model in agreement["result"].get("models", []):
            c = model["confusion"]
            used = [
                i for i, label in enumerate(c["labels"]) if any(c["matrix"][i]) or any(row[i] for row in c["matrix"])
            ]
            matrix = [[c["matrix"][i][j] for j in used] for i in used]
            section["blind"].append(
                {
                    "coder": model["coder"],
                    "units": model["units"],
                    "labels": [c["labels"][i] for i in used],
                    "matrix": _shade(matrix),
                    "total": sum(map(sum, matrix)),
                    "diagonal": sum(matrix[i][i] for i in range(len(matrix))),
                }
            )
    by_id = {s["suggestion_id"]: s for s in suggestions}
    counts: Counter = Counter()
    for sid, d in decided.items():
        if d["verdict"] not in SUGGESTION_VERDICTS or sid not in by_id:
            continue
        counts[(by_id[sid]["code"], d["final_code"] if d["verdict"] != "reject" else "(rejected)")] += 1
    if counts:
        rows = sorted({a for a, _ in counts})
        finals = sorted({b for _, b in counts if b != "(rejected)"} | set(rows))
        columns = finals + (["(rejected)"] if any(b == "(rejected)" for _, b in counts) else [])
        matrix = [[counts.get((r, c), 0) for c in columns] for r in rows]
        section["review"] = {
            "rows": rows,
            "columns": columns,
            "matrix": _shade(matrix),
            "total": sum(counts.values()),
            "kept": sum(n for (a, b), n in counts.items() if a == b),
        }
    return section


def _shade(matrix: list[list[int]]) -> list[list[dict[str, Any]]]:
    """Each cell with its share of its row, for the heatmap's colour."""
    out = []
    for row in matrix:
        total = sum(row)
        out.append([{"n": n, "share": n / total if total else 0.0} for n in row])
    return out


def matrices_section(
    scope: dict[str, Any],
    suggestions: list[dict],
    decisions: list[dict],
    decided: dict[str, dict],
    codebook: Codebook | None,
) -> dict[str, Any]:
    """Codes as the study stands by case attribute, with an exemplar quote per cell, and the codes
    that occur together: pipeline.measure.matrix's tables under its status 'accepted', laid out for the page.

    The two case attributes recorded most often are crossed (e.g. district by role) when that makes
    at most MAX_COLUMNS columns; every other attribute gets a table of its own. Codes of several
    coder configurations are not pooled: the section then names them (see `qcode report --run`)."""
    transcripts = scope["transcripts"]
    passages = coded_passages(suggestions, decisions, decided, "accepted")
    attributes = choose_attributes({t: v["metadata"] for t, v in transcripts.items()})
    section: dict[str, Any] = {
        "applied": len({(p["chunk_id"], p["code"]) for p in passages}),
        "pending": len(coded_passages(suggestions, decisions, decided, "review")),
        "attributes": attributes,
        "tables": [],
        "cooccurrence": None,
        "configurations": [],
        "unused": [],
    }
    configs = configurations(scope["runs"])
    if len(configs) > 1:
        section["configurations"] = configs
        return section
    if not passages:
        return section
    codes, names = codebook_codes(codebook)
    study = Study(transcripts=transcripts, passages=passages, codes=codes, names=names)
    used = {p["code"] for p in passages}
    section["unused"] = [c for c in codes if c not in used]

    layouts: list[list[str]] = []
    if attributes:
        first = attributes[0]["name"]
        second = attributes[1]["name"] if len(attributes) > 1 else None
        crossed = {
            (case_value(t["metadata"], first), case_value(t["metadata"], second or "")) for t in transcripts.values()
        }
        if second and len(crossed) <= MAX_COLUMNS:
            layouts.append([first, second])
            rest = attributes[2:]
        else:
            layouts.append([first])
            rest = attributes[1:]
        layouts += [[a["name"]] for a in rest]
    else:
        layouts.append([])
    for keys in layouts:
        section["tables"].append(matrix_view(cross_tab(study, [CODE], [case_dimension(k) for k in keys])))
    section["cooccurrence"] = cooccurrence_view(cooccurrence(study))
    return section


def choose_attributes(metadata: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
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
        chosen.append({"name": key, "transcripts": len(values), "values": distinct, "position": position})
    chosen.sort(key=lambda a: (-a["transcripts"], a["values"], a["position"]))
    return chosen


def methods_section(
    scope: dict[str, Any],
    suggestions: list[dict],
    decisions: list[dict],
    decided: dict[str, dict],
    agreement: dict[str, Any],
    sweep: list[dict],
    calib: dict[str, Any],
    codebook: Codebook | None,
) -> dict[str, Any]:
    """The numbers the methods paragraph fills in."""
    runs = scope["runs"]
    configs: dict[str, dict[str, Any]] = {}
    for r in runs:
        configs.setdefault(
            r["coder_key"],
            {
                "coder": r["coder"],
                "model": r["model"],
                "prompt_version": r["prompt_version"],
                "codebook_name": r["codebook_name"],
                "codebook_version": r["codebook_version"],
                "qcode_version": r["qcode_version"],
                "parameters": r["parameters"].get("coder") or {},
            },
        )
    routing = [r["parameters"].get("routing") or {} for r in runs]
    thresholds = sorted({p.get("threshold") for p in routing if p.get("threshold") is not None})
    audit_shares = sorted({p.get("audit_share") for p in routing if p.get("audit_share") is not None})
    seeds = sorted({p.get("seed") for p in routing if p.get("seed") is not None})
    chunk_sizes = sorted({r["parameters"].get("chunk_size") for r in runs if r["parameters"].get("chunk_size")})
    status = Counter(s["status"] for s in suggestions)
    verdicts = Counter(d["verdict"] for d in decisions)
    reviewers = sorted({d["reviewer"] for d in decisions})
    at_threshold = None
    if len(thresholds) == 1:
        at_threshold = next((row for row in sweep if abs(row["threshold"] - thresholds[0]) < 1e-9), None)
        if at_threshold is None:
            at_threshold = threshold_sweep(
                [
                    {
                        "confidence": s["confidence"],
                        "queued_for_review": s["status"] == "review",
                        "verdict": (decided.get(s["suggestion_id"]) or {}).get("verdict"),
                    }
                    for s in suggestions
                ],
                audit_shares[0] if len(audit_shares) == 1 else None,
                thresholds=thresholds,
            )[0]
    started = [r["started_at"] for r in runs if r["started_at"]]
    return {
        "runs": len(runs),
        "configs": list(configs.values()),
        "transcripts": len(scope["transcripts"]),
        "passages": len(scope["chunks"]),
        "chunk_sizes": chunk_sizes,
        "suggestions": len(suggestions),
        "status": dict(status),
        "rejections": scope["rejections"],
        "codes": len(codebook.leaves) if codebook else None,
        "measurement": codebook.measurement if codebook else None,
        "thresholds": thresholds,
        "audit_shares": audit_shares,
        "seeds": seeds,
        "decisions": len(decisions),
        "verdicts": dict(verdicts),
        "reviewers": len(reviewers),
        "decided_suggestions": len(decided),
        "blind_passages": agreement.get("coded_passages", 0),
        "blind_reviewers": len(agreement.get("reviewers", [])),
        "imported_coders": agreement.get("imported_coders", []),
        "imported_projects": agreement.get("imported_projects", []),
        "people": agreement.get("people", "reviewers"),
        "agreement": agreement.get("headline") if agreement.get("available") else None,
        "units": agreement["result"]["units"] if agreement.get("available") else 0,
        "at_threshold": at_threshold,
        "calibration": calib,
        "first_run": min(started) if started else None,
        "last_run": max(started) if started else None,
    }


# ---------------------------------------------------------------- plots


COLOURS = {"humans": "#2354c9", "all": "#2354c9", "model": "#c9541e", "line": "#1d2433", "muted": "#8b93a3"}


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return figure


def _svg(figure: Any, name: str, title: str) -> Any:
    """The figure as an inline <svg> element: no XML prologue, text drawn as paths (no fonts to
    load), a <title> for screen readers, ids salted by the figure's name so that several plots
    in one page never share one."""
    import matplotlib
    from markupsafe import Markup, escape

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


def _rc() -> dict[str, Any]:
    return {"font.family": "DejaVu Sans", "font.size": 9, "text.parse_math": False, "axes.titlesize": 10}


def agreement_plot(section: dict[str, Any]) -> Any:
    """Per code: each series' point estimate with its 95% interval, codes top to bottom."""
    import matplotlib

    plotted = section["plotted"]
    series = section["series"]
    codes = [section["rows"][k]["code"] for k in plotted]
    with matplotlib.rc_context(_rc()):
        figure = _figure(9.0, 0.40 * len(codes) + 1.3)
        ax = figure.add_subplot()
        step = 0.8 / max(1, len(series))
        low = 0.0
        for i, s in enumerate(series):
            offset = (i - (len(series) - 1) / 2) * step
            colour = COLOURS[s["kind"]] if s["kind"] != "model" or i == 1 else f"C{i + 1}"
            ys, xs, lo, hi, missing = [], [], [], [], []
            for row, k in enumerate(plotted):
                stat = s["stats"][k]
                y = len(codes) - 1 - row + offset
                if stat["value"] is None:
                    missing.append(y)
                    continue
                ci = stat["ci"] or [stat["value"], stat["value"]]
                ys.append(y)
                xs.append(stat["value"])
                lo.append(stat["value"] - ci[0])
                hi.append(ci[1] - stat["value"])
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
                label=s["label"],
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


def calibration_plot(calib: dict[str, Any]) -> Any:
    import matplotlib

    bins = calib["bins"]
    with matplotlib.rc_context(_rc()):
        figure = _figure(6.4, 4.6)
        top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1.3])
        top.plot([0, 1], [0, 1], linestyle="--", color=COLOURS["muted"], linewidth=1, label="perfect calibration")
        xs, ys, lo, hi, ns = [], [], [], [], []
        for b in bins:
            if not b["decided"]:
                continue
            xs.append(b["mean_confidence"])
            ys.append(b["rate"])
            lo.append(b["rate"] - b["ci95"][0])
            hi.append(b["ci95"][1] - b["rate"])
            ns.append(b["decided"])
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
        centres = [(b["low"] + b["high"]) / 2 for b in bins]
        width = bins[0]["high"] - bins[0]["low"]
        bottom.bar(
            centres, [b["suggestions"] for b in bins], width=width * 0.9, color="#d7deea", label="all suggestions"
        )
        bottom.bar(
            centres,
            [b["decided"] for b in bins],
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


def sweep_plot(sweep: list[dict[str, Any]], thresholds: list[float]) -> Any:
    import matplotlib

    with matplotlib.rc_context(_rc()):
        figure = _figure(6.4, 3.4)
        ax = figure.add_subplot()
        ts = [r["threshold"] for r in sweep]
        ax.plot(
            ts,
            [r["share_to_review"] for r in sweep],
            color=COLOURS["line"],
            linewidth=1.6,
            label="share sent to review (confidence < threshold)",
        )
        known = [r for r in sweep if r["error"] is not None]
        if known:
            ax.plot(
                [r["threshold"] for r in known],
                [r["error"] for r in known],
                color=COLOURS["model"],
                linewidth=1.6,
                marker="o",
                markersize=3,
                label="estimated error of the auto-accepted rest",
            )
            ax.fill_between(
                [r["threshold"] for r in known],
                [r["ci95"][0] for r in known],
                [r["ci95"][1] for r in known],
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


def build_report(store: Store, run_id: str | None = None) -> dict[str, Any]:
    """Everything the page shows, as one dict (plots as SVG markup)."""
    run_id = resolve_run(store, run_id)
    scope = _scope(store, run_id)
    codebook = _codebook(scope)
    suggestions = list(suggestion_records(store, run_id)) if scope["runs"] else []
    decisions, decided = decisions_in_scope(
        store,
        {s["suggestion_id"] for s in suggestions},
        set(scope["chunks"]),
        {r["codebook_version"] for r in scope["runs"]},
    )

    agreement = agreement_section(store, run_id, scope, codebook)
    confusion = confusion_section(agreement, decided, suggestions)
    pairs = [
        (s["confidence"], decided[s["suggestion_id"]]["verdict"] == ACCEPTED)
        for s in suggestions
        if s["suggestion_id"] in decided and decided[s["suggestion_id"]]["verdict"] in SUGGESTION_VERDICTS
    ]
    calib = calibration(pairs, [s["confidence"] for s in suggestions])
    routing = [r["parameters"].get("routing") or {} for r in scope["runs"]]
    thresholds = sorted({p["threshold"] for p in routing if p.get("threshold") is not None})
    audit_shares = sorted({p["audit_share"] for p in routing if p.get("audit_share") is not None})
    sweep = threshold_sweep(
        [
            {
                "confidence": s["confidence"],
                "queued_for_review": s["status"] == "review",
                "verdict": (decided.get(s["suggestion_id"]) or {}).get("verdict"),
            }
            for s in suggestions
        ],
        audit_shares[0] if len(audit_shares) == 1 else None,
    )
    matrices = matrices_section(scope, suggestions, decisions, decided, codebook)
    methods = methods_section(scope, suggestions, decisions, decided, agreement, sweep, calib, codebook)

    plots = {}
    if agreement.get("available") and agreement["plotted"]:
        plots["agreement"] = agreement_plot(agreement)
    if calib["decided"]:
        plots["calibration"] = calibration_plot(calib)
    if suggestions:
        plots["sweep"] = sweep_plot(sweep, thresholds)
    return {
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "qcode_version": __version__,
        "database": database_label(store.url),
        "run_id": run_id,
        "runs": scope["runs"],
        "codebook": codebook,
        "suggestions": len(suggestions),
        "agreement": agreement,
        "confusion": confusion,
        "calibration": calib,
        "sweep": sweep,
        "thresholds": thresholds,
        "audit_shares": audit_shares,
        "matrices": matrices,
        "methods": methods,
        "plots": plots,
        "bootstrap": {"replicates": BOOTSTRAP_REPLICATES, "seed": BOOTSTRAP_SEED},
        "bins": CALIBRATION_BINS,
    }


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    # autoescape=True, not select_autoescape: the template's name ends in .jinja. The tables of codes
    # by case are matrix_tables.jinja, the same as `qcode matrix` writes.
    loader = FileSystemLoader(Path(__file__).parent / "templates")
    env = Environment(loader=loader, autoescape=True, undefined=StrictUndefined)
    env.filters.update(num=_num, pct=_pct, ci=_ci, span=_span, plural=_plural)
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


def render_report(report: dict[str, Any]) -> str:
    return _environment().get_template(TEMPLATE).render(**report)


def write_report(store: Store, out: Path, run_id: str | None = None, *, force: bool = False) -> dict[str, Any]:
    """Build the report and write it to `out` (through a temporary file); returns what it shows."""
    report = build_report(store, run_id)
    html = render_report(report)

    with written_aside(out, force=force) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return report
