"""The learned coder's model card: how far each code can be trusted, measured only on units people
could have coded, with intervals, and how the card is shown (`qcode train`'s table and the report's
learned-model section read the same rows, `card_rows`).

Agreement is Cohen's kappa of the model's codes against the people's with a 95% interval from a
bootstrap over groups (transcripts, or the case attribute the folds were grouped by), and precision,
recall and F1 of the code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, Field

BOOTSTRAP = 1000
SEED = 0


class Agreement(BaseModel):
    """The model's codes against the people's, on the units scored."""

    cohen_kappa: float | None
    cohen_kappa_ci95: list[float] | None
    f1: float | None = None
    precision: float | None = None
    recall: float | None = None


class CodeCard(BaseModel):
    code: str
    positives: int  # units where people's codes make it stand, in training
    # the units it was scored on: those whose speaker the code is for, where people said whether it applies
    units_scored: int | None = None
    # multi-label: the confidence at which it is proposed (None: single-label, the most probable code)
    threshold: float | None = None
    cv: Agreement
    holdout: Agreement | None = None
    # the held-out and cross-validated kappas differ by more than their intervals allow
    differs: bool = False


class SkippedCode(BaseModel):
    code: str
    positives: int
    reason: str


class LearnerFigure(BaseModel):
    """A learner `qcode train` tried, and its grouped cross-validated kappa (what `auto` chose by)."""

    learner: str
    cohen_kappa: float | None
    cohen_kappa_ci95: list[float] | None = None
    seconds: float | None = None


class Holdout(BaseModel):
    """Groups kept out of training, and the stored model's agreement on them."""

    fraction: float
    groups: list[str]
    units: int
    overall: Agreement | None = None  # single-label: every held-out unit's one code or none
    differs: bool = False


class ModelCard(BaseModel):
    """What `qcode train` reports (its --json object)."""

    model: str
    learner: str = "linear"
    learners: list[LearnerFigure] = Field(default_factory=list)
    unit: str = "chunk"
    chunk_size: int | None = None
    overlap: int | None = None
    max_unit_chars: int | None = None
    speakers: dict[str, list[str]] = Field(default_factory=dict)  # SpeakerChoice: speakers, skip_speakers
    group_by: str = "transcript"
    groups: int | None = None
    units: int
    transcripts: int
    single_label: bool
    people: list[str]
    sources: dict[str, int]  # units from each source of human codes
    codes: list[CodeCard]
    # single-label: Cohen's kappa over every scored unit's one code (or none), out of fold
    overall: Agreement | None = None
    holdout: Holdout | None = None
    skipped: list[SkippedCode]
    notes: list[str] = Field(default_factory=list)
    stored: bool = True  # False: the store had this very model already


# ---------------------------------------------------------------- statistics


def binary_agreement(model: Sequence[bool], people: Sequence[bool], groups: Sequence[str]) -> Agreement:
    """One code's agreement: Cohen's kappa with its interval by groups, precision, recall and F1."""
    # per group, the model's yes/no by the people's yes/no: both, the model only, the people only, neither
    tables = group_tables([(0 if m else 1, 0 if p else 1) for m, p in zip(model, people)], groups, 2)
    kappa, interval = kappa_with_interval(tables, 2)
    tp, fp, fn, _ = tables.sum(axis=0) if len(tables) else np.zeros(4)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return Agreement(
        cohen_kappa=kappa,
        cohen_kappa_ci95=interval,
        f1=_rounded(f1),
        precision=_rounded(precision),
        recall=_rounded(recall),
    )


def category_agreement(model: Sequence[int], people: Sequence[int], groups: Sequence[str], k: int) -> Agreement:
    """Cohen's kappa over units each given one of k categories (a code or none), with its interval."""
    tables = group_tables(list(zip(model, people)), groups, k)
    kappa, interval = kappa_with_interval(tables, k)
    return Agreement(cohen_kappa=kappa, cohen_kappa_ci95=interval)


def group_tables(pairs: Sequence[tuple[int, int]], groups: Sequence[str], k: int) -> np.ndarray:
    """One k-by-k table (the model's category by the people's, flattened) per group."""
    index = {g: n for n, g in enumerate(sorted(set(groups)))}
    tables = np.zeros((len(index), k * k))
    for (model, people), group in zip(pairs, groups):
        tables[index[group], model * k + people] += 1
    return tables


def kappa_with_interval(tables: np.ndarray, k: int) -> tuple[float | None, list[float] | None]:
    """Cohen's kappa of the groups' tables summed, and its 95% interval from BOOTSTRAP draws of
    groups with replacement (the replicates are one matrix product)."""
    if not len(tables):
        return None, None
    point = _kappa(tables.sum(axis=0), k)
    if point is None:
        return None, None
    n = len(tables)
    draws = np.random.default_rng(SEED).multinomial(n, np.full(n, 1 / n), size=BOOTSTRAP)
    values = [v for v in (_kappa(t, k) for t in draws @ tables) if v is not None]
    if n < 2 or not values:
        return round(point, 4), None
    return round(point, 4), [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]


def _kappa(flat: np.ndarray, k: int) -> float | None:
    table = flat.reshape(k, k)
    n = float(table.sum())
    if n == 0:
        return None
    chance = float((table.sum(axis=0) * table.sum(axis=1)).sum()) / n**2
    return None if chance >= 1 else (float(np.trace(table)) / n - chance) / (1 - chance)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def apart(one: Agreement | None, other: Agreement | None) -> bool:
    """Whether two kappas differ by more than their intervals allow: the intervals do not overlap."""
    if one is None or other is None or not one.cohen_kappa_ci95 or not other.cohen_kappa_ci95:
        return False
    low, high = one.cohen_kappa_ci95
    other_low, other_high = other.cohen_kappa_ci95
    return high < other_low or other_high < low


# ---------------------------------------------------------------- showing the card


def number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def kappa_text(agreement: Agreement | None) -> str:
    """'0.67 [0.64, 0.71]', or 'n/a'."""
    if agreement is None:
        return "n/a"
    interval = agreement.cohen_kappa_ci95
    return number(agreement.cohen_kappa) + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def card_columns(card: ModelCard) -> list[str]:
    """The columns of the card's table, as `qcode train` and the report show it: the units where
    people gave the code (coded) and those it was scored on (scored), its kappa out of fold (and on
    the held-out groups), its precision and recall, and the confidence it is proposed at."""
    held = ["held out"] if card.holdout else []
    threshold = [] if card.single_label else ["threshold"]
    return ["code", "coded", "scored", "kappa", *held, "precision", "recall", *threshold]


def card_rows(card: ModelCard) -> list[list[str]]:
    """One row per learned code, in the order of `card_columns`."""
    rows = []
    for code in card.codes:
        held = [kappa_text(code.holdout) + (" (differs)" if code.differs else "")] if card.holdout else []
        threshold = [] if card.single_label else [number(code.threshold)]
        scored = "n/a" if code.units_scored is None else str(code.units_scored)
        rows.append(
            [
                code.code,
                str(code.positives),
                scored,
                kappa_text(code.cv),
                *held,
                number(code.cv.precision),
                number(code.cv.recall),
                *threshold,
            ]
        )
    return rows


def card_title(card: ModelCard) -> str:
    """What the card measured, in one line."""
    grouped = f"cross-validation grouped by {card.group_by}" + (f" ({card.groups} groups)" if card.groups else "")
    return (
        f"learned model {card.model} ({card.learner}): {card.units} units of {card.transcripts} transcripts, "
        f"{'single' if card.single_label else 'multi'}-label; agreement with the people in {grouped}: "
        "Cohen's kappa [95% interval]"
    )


def card_lines(card: ModelCard) -> list[str]:
    """What the table does not hold: the overall kappa, how codes are decided, the held-out groups,
    the learners compared, and the codes not learned."""
    lines = []
    if card.overall is not None and card.overall.cohen_kappa is not None:
        lines.append(f"all units scored, one code or none each: Cohen's kappa {kappa_text(card.overall)}")
    lines.append(decision_rule(card))
    if card.holdout is not None:
        held = card.holdout
        overall = f": Cohen's kappa {kappa_text(held.overall)}" if held.overall is not None else ""
        lines.append(
            f"held out ({held.fraction:g} of the groups, never trained on): {len(held.groups)} group(s), "
            f"{held.units} units{overall}"
        )
    if len(card.learners) > 1:
        figures = ", ".join(f"{f.learner} {kappa_text(Agreement(**f.model_dump()))}" for f in card.learners)
        tie = len({f.cohen_kappa for f in card.learners}) == 1
        lines.append(
            f"learner: {card.learner}, by grouped cross-validated kappa ({figures})"
            + ("; a tie goes to the first" if tie else "")
        )
    for skipped in card.skipped:
        lines.append(f"not learned: {skipped.code} ({skipped.reason})")
    return lines


def decision_rule(card: ModelCard) -> str:
    """How the model decides which codes a unit gets, in one line."""
    if card.single_label:
        return (
            "a unit gets its most probable code when that is more probable than no code (single-label); "
            "precision and recall are of that code against the people's"
        )
    rule = (
        "a code is proposed where its confidence reaches its threshold: the one at which, out of fold, the "
        "model agreed best with the people (Cohen's kappa), chosen on the other folds for each fold's figures"
    )
    equal = [c.code for c in card.codes if c.cv.precision is not None and c.cv.precision == c.cv.recall]
    if equal:
        rule += (
            f"; precision equals recall where the model proposed a code exactly as often as people gave it "
            f"({', '.join(equal)})"
        )
    return rule
