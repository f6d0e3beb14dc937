"""How far a coder's stated confidence can be trusted, from what reviewers decided.

- `calibration`: stated confidence, in bins of equal width, against the share of reviewed
  suggestions reviewers accepted, with Wilson intervals, the Brier score and the expected
  calibration error;
- `threshold_sweep`: for each routing threshold, the share of suggestions sent to review and the
  estimated error rate of the rest, post-stratified because reviewers do not see a random sample;
- `wilson_interval`: the 95% interval of a proportion both use.

The report (`pipeline.measure.report`) shows them; docs/report.md explains them for researchers.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

CALIBRATION_BINS = 10
SWEEP_THRESHOLDS = tuple(round(i * 0.05, 2) for i in range(21))
Z95 = 1.959963984540054
ACCEPTED = "accept"
SUGGESTION_VERDICTS = ("accept", "reject", "change")  # a reviewer's verdicts on a suggestion ("add" is not one)

Interval = tuple[float, float]


def wilson_interval(successes: float, n: float) -> Interval | None:
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


# ---------------------------------------------------------------- calibration


class CalibrationBin(BaseModel):
    """Suggestions whose stated confidence lies in [low, high): how many, how many reviewers decided,
    and the share of those they accepted, with its Wilson interval."""

    model_config = ConfigDict(frozen=True)

    low: float
    high: float
    suggestions: int
    decided: int
    accepted: int
    not_accepted: int
    rate: float | None  # None when nothing in the bin was decided
    ci95: Interval | None
    mean_confidence: float | None


class Calibration(BaseModel):
    """Every bin, and overall: the decided suggestions, the accepted ones and their share, the Brier
    score and the expected calibration error (None when nothing was decided)."""

    model_config = ConfigDict(frozen=True)

    bins: list[CalibrationBin]
    decided: int
    accepted: int
    rate: float | None
    ci95: Interval | None
    brier: float | None
    ece: float | None


def calibration(
    decided: Sequence[tuple[float, bool]], confidences: Iterable[float], bins: int = CALIBRATION_BINS
) -> Calibration:
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
    for confidence, ok in decided:
        by_bin[confidence_bin(confidence, bins)].append((confidence, ok))
    for b in range(bins):
        items = by_bin.get(b, [])
        n = len(items)
        k = sum(1 for _, ok in items if ok)
        rows.append(
            CalibrationBin(
                low=b / bins,
                high=(b + 1) / bins,
                suggestions=totals.get(b, 0),
                decided=n,
                accepted=k,
                not_accepted=n - k,
                rate=k / n if n else None,
                ci95=wilson_interval(k, n),
                mean_confidence=sum(c for c, _ in items) / n if n else None,
            )
        )
    n = len(decided)
    brier = sum((c - float(ok)) ** 2 for c, ok in decided) / n if n else None
    gaps = [
        r.decided * abs(r.rate - r.mean_confidence)
        for r in rows
        if r.rate is not None and r.mean_confidence is not None
    ]
    accepted = sum(1 for _, ok in decided if ok)
    return Calibration(
        bins=rows,
        decided=n,
        accepted=accepted,
        rate=accepted / n if n else None,
        ci95=wilson_interval(accepted, n),
        brier=brier,
        ece=sum(gaps) / n if n else None,
    )


# ---------------------------------------------------------------- the threshold sweep


@dataclass(frozen=True)
class RoutedSuggestion:
    """What the sweep needs of a suggestion: its stated confidence, whether the run's own threshold
    sent it to review (status 'review'), and the reviewer's verdict (accept, reject, change, or None)."""

    confidence: float
    queued_for_review: bool
    verdict: str | None = None


class SweepRow(BaseModel):
    """One threshold t: the suggestions that would go to review (confidence < t) and the estimated
    error of the rest, the ones accepted without review (see `threshold_sweep`)."""

    model_config = ConfigDict(frozen=True)

    threshold: float
    to_review: int
    share_to_review: float | None
    share_with_audit: float | None  # with the runs' audit share of the rest added, when they used one
    auto_accepted: int
    decided: int  # raw counts above the threshold
    errors: int
    error: float | None  # None without a decision above the threshold
    ci95: Interval | None
    n_eff: float
    coverage: float | None
    expected_errors: float | None


def threshold_sweep(
    items: Sequence[RoutedSuggestion],
    audit_share: float | None = None,
    thresholds: Sequence[float] = SWEEP_THRESHOLDS,
    bins: int = CALIBRATION_BINS,
) -> list[SweepRow]:
    """For each threshold t: the share of suggestions that would go to review (confidence < t),
    and the estimated error rate of the rest, the ones that would be accepted without review.

    `items` are all suggestions.

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
        above = [i for i in items if i.confidence >= t - 1e-12]
        strata: dict[tuple[bool, int], list[RoutedSuggestion]] = defaultdict(list)
        for item in above:
            strata[(bool(item.queued_for_review), confidence_bin(item.confidence, bins))].append(item)
        weighted = covered = 0.0
        squares = 0.0
        decided = errors = 0
        for members in strata.values():
            judged = [i for i in members if i.verdict in SUGGESTION_VERDICTS]
            if not judged:
                continue
            wrong = sum(1 for i in judged if i.verdict != ACCEPTED)
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
            SweepRow(
                threshold=t,
                to_review=below,
                share_to_review=share,
                share_with_audit=(share + audit_share * (1 - share))
                if share is not None and audit_share is not None
                else None,
                auto_accepted=len(above),
                decided=decided,
                errors=errors,
                error=error,
                ci95=wilson_interval(error * n_eff, n_eff) if error is not None else None,
                n_eff=n_eff,
                coverage=covered / len(above) if above else None,
                expected_errors=error * len(above) * (1 - (audit_share or 0.0)) if error is not None else None,
            )
        )
    return rows
