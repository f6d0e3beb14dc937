"""Agreement between coders, with bootstrap confidence intervals.

Input is the long table `unit_id,coder,code` (`qcode export --format codings`):
one row per code a coder applied to a unit, one row with an empty code when the
coder saw the unit and applied none. No row for a unit and a coder means that
coder did not code the unit: missing, not "none". docs/agreement.md explains
every statistic for researchers.

Output (`measure_agreement()`, an `Agreement`; `qcode agreement --json`) is one JSON object:

    {"units": 120, "pairable_units": 118, "coders": [{"name", "role", "units"}], "codes": [...],
     "single_label": true, "level": "nominal", "bootstrap": {"replicates", "seed", "method"},
     "overall": {...}, "overall_humans": {...}, "pairwise": [...], "per_code": [...],
     "consensus": {...}, "models": [...], "notes": [...]}

Every statistic sits under its plain name with its interval in a sibling key:

    "krippendorff_alpha": 0.71, "krippendorff_alpha_ci95": [0.60, 0.80]

A statistic that is undefined on the data (kappa when there is no variation,
precision of a code the model never applied) is null, its interval is null and
a third sibling says why: `"fleiss_kappa": null, "fleiss_kappa_ci95": null,
"fleiss_kappa_undefined": "never applied: ..."`. The output never holds NaN.
An interval is null also when no bootstrap replicate defined the statistic, or
with `bootstrap=0`.

How it is computed. Each statistic is a function of sums over units of
per-unit contributions (coincidence counts, agreement shares, 2x2 cells), so a
bootstrap replicate (units drawn with replacement) is the same function of
weighted sums, with weights = how often each unit was drawn; the replicates are
one matrix product. The point estimate is the replicate with every weight 1.
tests/test_agreement.py checks these against `krippendorff`, `statsmodels`
and `scikit-learn` (to 1e-9) and against published worked examples.

Definitions, with their sources:
- percent agreement: the share of agreeing coder pairs within a unit, averaged
  over units coded by two or more coders (Fleiss 1971's P-bar; for two coders,
  the share of units they agree on);
- Fleiss' kappa and Gwet's AC1 with missing codings follow Gwet (2014),
  Handbook of Inter-Rater Reliability, 4th ed., ch. 2 and 4: observed agreement
  over units coded at least twice, category shares over units coded at least
  once; with complete data this is Fleiss (1971) exactly;
- Krippendorff's alpha: Krippendorff (2011), "Computing Krippendorff's
  Alpha-Reliability", from the coincidence matrix, at the nominal, ordinal,
  interval or ratio level; over code sets with the MASI distance (Passonneau
  2006) for multi-label data;
- Cohen's kappa: Cohen (1960); weighted: Cohen (1968) with linear |i-j| or
  quadratic (i-j)^2 disagreement weights, i and j positions on the ordered
  scale: an ordinal codebook's whole scale (unobserved levels included), else
  the values seen; as scikit-learn's `cohen_kappa_score` given those labels.
"""

from __future__ import annotations

import io
import itertools
import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from pipeline.codebook import Codebook
from pipeline.errors import AgreementError
from pipeline.files import read_text
from pipeline.measure.statistic import Statistic, StatisticGroup, optional
from pipeline.store import Store
from pipeline.store.queries import blind_rows, coding_rows, human_rows, resolve_run
from pipeline.store.records import AssignmentRecord

LEVELS = ("nominal", "ordinal", "interval", "ratio")
NONE_LABEL = "(none)"
COLUMNS = ("unit_id", "coder", "code")
_EPS = 1e-12
_MASI_CACHE_LIMIT = 4096  # distinct code sets whose distance matrix is kept whole (128 MB)
_MASI_LIMIT = 20_000  # beyond this many distinct code sets, MASI alpha is not computed (its cost is quadratic)


# ---------------------------------------------------------------- the table


@dataclass
class Codings:
    """The long table as arrays: who coded which unit, and with which codes."""

    source: str
    units: list[str]
    coders: list[str]
    codes: list[str]
    present: np.ndarray  # (coders, units) bool: the coder coded the unit
    applied: np.ndarray  # (coders, units, codes) bool
    names: dict[str, str] = field(default_factory=dict)  # code id -> name, from a codebook

    @property
    def single_label(self) -> bool:
        return bool((self.applied.sum(axis=2) <= 1).all())


def read_codings(path: str | Path, codebook: Codebook | None = None) -> Codings:
    """Read and check a `unit_id,coder,code` CSV file."""
    import pandas as pd

    path = Path(path)
    name = str(path)
    text, _ = read_text(path)
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except Exception as exc:  # pandas' parser errors name the line
        raise AgreementError(f"{name}: not a readable CSV table: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        found = ", ".join(frame.columns) or "none"
        raise AgreementError(
            f"{name}: missing column(s) {', '.join(missing)} (found: {found}); the table needs unit_id,coder,code"
        )
    columns = {c: np.array([s.strip() for s in frame[c].tolist()], dtype=object) for c in COLUMNS}
    lines = np.arange(len(frame)) + 2  # the header is line 1
    return _build(name, columns["unit_id"], columns["coder"], columns["code"], lines, codebook)


def codings_from_rows(rows: Iterable[dict[str, Any]], source: str, codebook: Codebook | None = None) -> Codings:
    """The same table from dicts with unit_id, coder and code (e.g. the store's exports)."""
    units, coders, codes = [], [], []
    for row in rows:
        units.append(str(row["unit_id"]).strip())
        coders.append(str(row["coder"]).strip())
        codes.append(str(row.get("code") or "").strip())
    lines = np.arange(len(units)) + 1
    return _build(
        source,
        np.array(units, dtype=object),
        np.array(coders, dtype=object),
        np.array(codes, dtype=object),
        lines,
        codebook,
        row_word="row",
    )


def _build(
    name: str,
    units: np.ndarray,
    coders: np.ndarray,
    codes: np.ndarray,
    lines: np.ndarray,
    codebook: Codebook | None,
    row_word: str = "line",
) -> Codings:
    if len(units) == 0:
        raise AgreementError(f"{name}: the table has no rows")
    for column, values in (("unit_id", units), ("coder", coders)):
        empty = np.flatnonzero(values == "")
        if len(empty):
            raise AgreementError(f"{name}: {row_word} {lines[empty[0]]} has an empty {column}")

    key = np.char.add(
        np.char.add(units.astype(str), "\x1f"), np.char.add(np.char.add(coders.astype(str), "\x1f"), codes.astype(str))
    )
    _, first, inverse, counts = np.unique(key, return_index=True, return_inverse=True, return_counts=True)
    repeated = np.flatnonzero(counts[inverse] > 1)
    repeated = repeated[repeated != first[inverse[repeated]]]
    if len(repeated):
        i = repeated[0]
        j = first[inverse[i]]
        what = f"code '{codes[i]}'" if codes[i] else "no code (an empty code)"
        raise AgreementError(
            f"{name}: {row_word} {lines[i]} repeats {row_word} {lines[j]}: unit '{units[i]}', coder '{coders[i]}', "
            f"{what} ({len(repeated)} repeated row(s) in all); each coder applies a code to a unit once"
        )

    unit_ids, unit_index = np.unique(units, return_inverse=True)
    coder_ids, coder_index = np.unique(coders, return_inverse=True)
    if len(coder_ids) < 2:
        raise AgreementError(
            f"{name}: only one coder ('{coder_ids[0]}'); agreement needs at least two coders of the same units"
        )
    applied_rows = codes != ""
    seen = sorted(set(codes[applied_rows].tolist()))
    names: dict[str, str] = {}
    if codebook is not None:
        leaves = [c.id for c in codebook.leaves]
        unknown = [c for c in seen if c not in set(leaves)]
        if unknown:
            i = np.flatnonzero(codes == unknown[0])[0]
            raise AgreementError(
                f"{name}: {row_word} {lines[i]}: code '{unknown[0]}' is not an applicable code of the codebook "
                f"'{codebook.name}'" + (f" ({len(unknown)} unknown codes in all)" if len(unknown) > 1 else "")
            )
        code_ids = leaves
        names = {c.id: c.name for c in codebook.leaves}
    else:
        code_ids = seen
    code_position = {c: k for k, c in enumerate(code_ids)}

    n_units, n_coders, n_codes = len(unit_ids), len(coder_ids), len(code_ids)
    present = np.zeros((n_coders, n_units), dtype=bool)
    present[coder_index, unit_index] = True
    applied = np.zeros((n_coders, n_units, n_codes), dtype=bool)
    if applied_rows.any():
        code_index = np.array([code_position[c] for c in codes[applied_rows]], dtype=np.int64)
        applied[coder_index[applied_rows], unit_index[applied_rows], code_index] = True

    empty_rows = np.flatnonzero(~applied_rows)
    if len(empty_rows):
        clash = applied[coder_index[empty_rows], unit_index[empty_rows]].any(axis=1)
        if clash.any():
            i = empty_rows[np.flatnonzero(clash)[0]]
            raise AgreementError(
                f"{name}: {row_word} {lines[i]} says coder '{coders[i]}' applied no code to unit '{units[i]}', "
                "but other rows give that coder codes for that unit; keep one or the other"
            )
    return Codings(
        source=name,
        units=unit_ids.tolist(),
        coders=coder_ids.tolist(),
        codes=list(code_ids),
        present=present,
        applied=applied,
        names=names,
    )


def default_models(coders: list[str]) -> list[str]:
    """Coders that look like models: qcode labels them 'coder:model' and reviewers 'reviewer:NAME'."""
    return [c for c in coders if ":" in c and not c.startswith("reviewer:")]


# ---------------------------------------------------------------- the result

Level = Literal["nominal", "ordinal", "interval", "ratio"]
Role = Literal["model", "human"]
PairKind = Literal["human-human", "model-human", "model-model", "model-consensus"]


class CoderSummary(BaseModel):
    """A coder of the table: a model or a person, and how many units they coded."""

    model_config = ConfigDict(frozen=True)

    name: str
    role: Role
    units: int


class Bootstrap(BaseModel):
    model_config = ConfigDict(frozen=True)

    replicates: int
    seed: int
    method: str = "percentile, units resampled"


class MeanPerCode(StatisticGroup):
    """Multi-label data: the mean over codes of the per-code statistics (codes where one is undefined left out)."""

    krippendorff_alpha: Statistic
    fleiss_kappa: Statistic
    gwet_ac1: Statistic
    percent_agreement: Statistic


class OverallAgreement(StatisticGroup):
    """Every coder of a group (all, or the humans) over every unit. Single-label: alpha at the level,
    Fleiss' kappa, AC1, percent agreement and `categories`; multi-label: the MASI alpha over code sets
    (`distance: masi`) and `mean_per_code`."""

    krippendorff_alpha: Statistic
    fleiss_kappa: Statistic | None = optional()
    gwet_ac1: Statistic | None = optional()
    percent_agreement: Statistic | None = optional()
    categories: int | None = optional()
    distance: Literal["masi"] | None = optional()
    mean_per_code: MeanPerCode | None = optional()


class PairAgreement(StatisticGroup):
    """Two coders (or a model and the consensus) over the units both coded. The weighted kappas come
    with single-label data above the nominal level, `exact_agreement` (identical code sets) with multi-label."""

    coders: tuple[str, str]
    kind: PairKind
    units: int
    percent_agreement: Statistic
    cohen_kappa: Statistic
    cohen_kappa_linear: Statistic | None = optional()
    cohen_kappa_quadratic: Statistic | None = optional()
    krippendorff_alpha: Statistic
    exact_agreement: Statistic | None = optional()


class CodePairAgreement(StatisticGroup):
    """Two coders on one code: presence against absence."""

    coders: tuple[str, str]
    kind: PairKind
    percent_agreement: Statistic
    cohen_kappa: Statistic


class GroupCodeAgreement(StatisticGroup):
    """The coders of a group on one code (presence against absence)."""

    prevalence: Statistic
    percent_agreement: Statistic
    fleiss_kappa: Statistic
    krippendorff_alpha: Statistic
    gwet_ac1: Statistic


class CodeAgreement(StatisticGroup):
    """One code, presence against absence: every coder, the humans alone (with a model and two humans
    or more), and each pair."""

    code: str
    name: str | None = optional()  # from a codebook
    prevalence: Statistic
    percent_agreement: Statistic
    fleiss_kappa: Statistic
    krippendorff_alpha: Statistic
    gwet_ac1: Statistic
    humans: GroupCodeAgreement | None = optional()
    pairwise: list[CodePairAgreement]


class Consensus(BaseModel):
    """The humans' majority, a pseudo-coder the models are compared with."""

    model_config = ConfigDict(frozen=True)

    humans: list[str]
    units: int
    undecided_units: int
    rule: str


class ModelCodeAgreement(StatisticGroup):
    """A model against the consensus on one code; `support`: units where the consensus has the code."""

    code: str
    support: int
    precision: Statistic
    recall: Statistic
    f1: Statistic
    cohen_kappa: Statistic


class ConfusionTable(BaseModel):
    """Rows: the consensus; columns: the model; `matrix[i][j]` counts units (multi-label: once per
    (consensus code, model code) pair a unit holds, (none) standing for an empty set)."""

    model_config = ConfigDict(frozen=True)

    rows: Literal["consensus"] = "consensus"
    columns: Literal["model"] = "model"
    labels: list[str]
    matrix: list[list[int]]


class ModelAgreement(StatisticGroup):
    coder: str
    against: Literal["consensus"] = "consensus"
    units: int
    per_code: list[ModelCodeAgreement]
    confusion: ConfusionTable


class Agreement(StatisticGroup):
    """Everything `qcode agreement` reports: the JSON object of docs/agreement.md, field for field.
    `overall_humans`, `consensus` and `models` are None (and no key) unless there is a model and at
    least two humans."""

    source: str
    units: int
    pairable_units: int
    coders: list[CoderSummary]
    codes: list[str]
    single_label: bool
    level: Level
    bootstrap: Bootstrap
    overall: OverallAgreement
    overall_humans: OverallAgreement | None = optional()
    pairwise: list[PairAgreement]
    per_code: list[CodeAgreement]
    consensus: Consensus | None = optional()
    models: list[ModelAgreement] | None = optional()
    notes: list[str]

    def names(self, role: Role) -> list[str]:
        """The coders of one role, in the table's order."""
        return [c.name for c in self.coders if c.role == role]

    def against_consensus(self) -> list[PairAgreement]:
        """Each model against the humans' consensus (the pairs of kind model-consensus)."""
        return [p for p in self.pairwise if p.kind == "model-consensus"]


# ---------------------------------------------------------------- per-unit sums


_Totals = tuple[np.ndarray, np.ndarray]  # per-unit sums over units, dense and sparse rows (_Sums.totals)


class _Ref:
    __slots__ = ("kind", "start", "stop")

    def __init__(self, kind: int, start: int, stop: int):
        self.kind, self.start, self.stop = kind, start, stop

    def of(self, totals: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return totals[self.kind][:, self.start : self.stop]


class _Sums:
    """Per-unit contributions (rows x units); totals(weights) sums them for each weight vector."""

    def __init__(self, n_units: int):
        self.n = n_units
        self._dense: list[np.ndarray] = []
        self._nd = 0
        self._coo: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._ns = 0

    def add(self, rows: np.ndarray) -> _Ref:
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        if np.count_nonzero(rows) < 0.25 * rows.size:
            r, c = np.nonzero(rows)
            return self.add_coo(rows.shape[0], r, c, rows[r, c])
        ref = _Ref(0, self._nd, self._nd + rows.shape[0])
        self._dense.append(rows)
        self._nd += rows.shape[0]
        return ref

    def add_coo(self, n_rows: int, rows: np.ndarray, units: np.ndarray, values: np.ndarray | float) -> _Ref:
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), np.shape(rows))
        ref = _Ref(1, self._ns, self._ns + n_rows)
        self._coo.append(
            (np.asarray(rows, dtype=np.int64) + self._ns, np.asarray(units, dtype=np.int64), np.array(values))
        )
        self._ns += n_rows
        return ref

    def freeze(self) -> None:
        self.dense = np.ascontiguousarray(np.vstack(self._dense)) if self._dense else np.zeros((0, self.n))
        if self._coo:
            rows, cols, vals = (np.concatenate(part) for part in zip(*self._coo))
        else:
            rows = cols = np.zeros(0, dtype=np.int64)
            vals = np.zeros(0)
        from scipy import sparse  # slow to import, and only computing agreement needs it

        self.sparse = sparse.csr_matrix((vals, (rows, cols)), shape=(self._ns, self.n))
        self.sparse.sum_duplicates()
        self._dense, self._coo = [], []

    def totals(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted sums over units: weights is (replicates, units)."""
        wt = np.atleast_2d(weights).T
        return (self.dense @ wt).T, np.asarray(self.sparse @ wt).T


# ---------------------------------------------------------------- formulas


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den > _EPS)
    return out


def _chance_corrected(observed: np.ndarray, chance: np.ndarray) -> np.ndarray:
    """(p_o - p_e) / (1 - p_e): kappa, Fleiss' kappa and AC1; undefined when p_e = 1."""
    return _ratio(observed - chance, 1.0 - chance)


def _alpha(disagreement: np.ndarray, expected: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Krippendorff (2011): alpha = 1 - D_o / D_e = 1 - (n - 1) * sum(o * delta) / sum(n_c * n_k * delta)."""
    return 1.0 - _ratio((n - 1.0) * disagreement, expected)


def _ordinal_delta(n_v: np.ndarray) -> np.ndarray:
    """Krippendorff (2011) ordinal metric: (sum of n_g for g from c to k - (n_c + n_k) / 2)^2, per replicate."""
    cum = np.cumsum(n_v, axis=-1)
    lo_c, hi_k = cum[:, :, None], cum[:, None, :]
    n_c, n_k = n_v[:, :, None], n_v[:, None, :]
    index = np.arange(n_v.shape[-1])
    upper = index[:, None] <= index[None, :]
    between = np.where(upper, hi_k - lo_c + n_c, lo_c - hi_k + n_k)
    return (between - (n_c + n_k) / 2.0) ** 2


def _alpha_from_coincidences(o: np.ndarray, delta: np.ndarray | None) -> np.ndarray:
    """Alpha from coincidence matrices o (replicates, V, V); delta None means the ordinal metric."""
    n_v = o.sum(axis=1)
    n = n_v.sum(axis=1)
    d = _ordinal_delta(n_v) if delta is None else delta[None, :, :]
    observed = (o * d).sum(axis=(1, 2))
    expected = (n_v[:, :, None] * n_v[:, None, :] * d).sum(axis=(1, 2))
    return _alpha(observed, expected, n)


def _level_delta(level: str, values: np.ndarray) -> np.ndarray | None:
    """Krippendorff's (2011) difference functions over the ordered values; None for ordinal (it needs counts)."""
    a, b = values[:, None], values[None, :]
    if level == "nominal":
        return (a != b).astype(np.float64)
    if level == "interval":
        return (a - b) ** 2
    if level == "ratio":
        return np.square(_ratio(a - b, a + b), where=(a + b) != 0, out=np.zeros(np.broadcast(a, b).shape))
    return None


def masi_distance(a: Iterable[str], b: Iterable[str]) -> float:
    """MASI distance between two code sets (Passonneau 2006): 1 - Jaccard * M, with M = 1 for equal sets,
    2/3 when one contains the other, 1/3 when they overlap otherwise, 0 when disjoint. Two empty sets are equal."""
    a, b = set(a), set(b)
    inter = len(a & b)
    return float(_masi(np.array(inter), np.array(len(a)), np.array(len(b))))


def _masi(inter: np.ndarray, size_a: np.ndarray, size_b: np.ndarray) -> np.ndarray:
    union = size_a + size_b - inter
    equal = (inter == size_a) & (inter == size_b)
    jaccard = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    monotonicity = np.select([equal, inter == np.minimum(size_a, size_b), inter > 0], [1.0, 2.0 / 3.0, 1.0 / 3.0], 0.0)
    return 1.0 - jaccard * monotonicity


class _SetDistances:
    """MASI distances between the distinct code sets of the table, and quadratic forms n' D n over them."""

    def __init__(self, members: np.ndarray):
        self.members = members.astype(np.float64)  # (sets, codes)
        self.sizes = members.sum(axis=1)
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def block(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        inter = self.members[rows] @ self.members[cols].T
        return _masi(inter, self.sizes[rows][:, None], self.sizes[cols][None, :])

    def quadratic(self, counts: np.ndarray, support: np.ndarray) -> np.ndarray:
        """sum over set pairs of n_s * n_t * d(s, t), for each row of counts (replicates, len(support))."""
        if len(support) <= _MASI_CACHE_LIMIT:
            key = (id(support),)
            matrix = self._cache.get(key)
            if matrix is None:
                matrix = self._cache[key] = self.block(support, support)
            return ((counts @ matrix) * counts).sum(axis=1)
        total = np.zeros(counts.shape[0])
        step = max(1, 16_000_000 // len(support))
        for start in range(0, len(support), step):
            rows = slice(start, start + step)
            total += ((counts @ self.block(support[rows], support).T) * counts[:, rows]).sum(axis=1)
        return total


# ---------------------------------------------------------------- the computation


@dataclass
class _Stat:
    key: tuple
    compute: Callable[[_Totals], np.ndarray]
    reason: Callable[[_Totals, int | None], str] | str  # why it is undefined: fixed, or from the totals and the code


class _Plan:
    def __init__(self, n_patterns: int, multiplicity: np.ndarray, pattern_of: np.ndarray):
        self.sums = _Sums(n_patterns)
        self.multiplicity = multiplicity  # units per pattern
        self.pattern_of = pattern_of  # each unit's pattern
        self.stats: list[_Stat] = []

    def stat(
        self,
        key: tuple,
        compute: Callable[[_Totals], np.ndarray],
        reason: Callable[[_Totals, int | None], str] | str = "undefined on these data",
    ) -> None:
        self.stats.append(_Stat(key, compute, reason))


def measure_agreement(
    codings: Codings,
    *,
    level: str | None = None,
    codebook: Codebook | None = None,
    model_coders: list[str] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> Agreement:
    """Every statistic of the report; its JSON is the object the module docstring describes."""
    if bootstrap < 0:
        raise AgreementError("--bootstrap must be 0 (no intervals) or more replicates")
    single = codings.single_label
    notes: list[str] = []
    if level is None:
        level = "ordinal" if (codebook is not None and codebook.measurement == "ordinal" and single) else "nominal"
        explicit = False
    else:
        explicit = True
    if level not in LEVELS:
        raise AgreementError(f"unknown level '{level}' (choose from {', '.join(LEVELS)})")
    if not single and level != "nominal":
        if explicit:
            several = int((codings.applied.sum(axis=2) > 1).any(axis=0).sum())
            raise AgreementError(
                f"{codings.source}: --level {level} needs single-label data (each coder at most one code per unit), "
                f"but {several} unit(s) have several codes from one coder; multi-label data is compared with the "
                "MASI distance over code sets at the nominal level"
            )
        level = "nominal"

    coders = codings.coders
    if model_coders is None:
        models = default_models(coders)
    else:
        unknown = [m for m in model_coders if m not in coders]
        if unknown:
            raise AgreementError(
                f"{codings.source}: no coder named {', '.join(repr(u) for u in unknown)} (coders: {', '.join(coders)})"
            )
        models = list(dict.fromkeys(model_coders))
    humans = [c for c in coders if c not in models]

    present, applied = codings.present, codings.applied
    coded = present.sum(axis=0)
    if not (coded >= 2).any():
        raise AgreementError(f"{codings.source}: no unit was coded by two or more coders; there is nothing to compare")
    n_codes = applied.shape[2]

    # categories of single-label data: the codes, then (none) when some coder applied none
    none_used = bool((present & ~applied.any(axis=2)).any())
    categories = list(codings.codes) + ([NONE_LABEL] if none_used else [])
    values = _values(codings, categories) if single else None
    level_values, level_of = _level_values(codings, categories, level, codebook) if single else (None, None)

    # consensus of the humans: a pseudo-coder appended after the real ones
    consensus = None
    if models and len(humans) >= 2:
        consensus = _consensus(codings, [coders.index(h) for h in humans], values, len(categories))
        present = np.concatenate([present, consensus.present[None]], axis=0)
        applied = np.concatenate([applied, consensus.applied[None]], axis=0)
        if values is not None and consensus.values is not None:
            values = np.concatenate([values, consensus.values[None]], axis=0)
    sets, set_distances = (None, None) if single else _code_sets(present, applied)
    names = coders + (["consensus"] if consensus is not None else [])
    confusions = {}
    if consensus is not None:
        for m in models:
            confusions[m] = _confusion(codings, coders.index(m), len(coders), present, applied, values, categories)

    # Units coded alike (the same codes from the same coders) contribute alike: the sums run over these
    # patterns, each weighted by how many units have it (in a bootstrap replicate, how often they were drawn).
    by_unit = values if values is not None else sets
    assert by_unit is not None
    key = by_unit[: len(coders)].T
    _, representative, pattern_of, multiplicity = np.unique(
        key, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    pattern_of = pattern_of.ravel()
    present, applied = present[:, representative], applied[:, representative]
    per_code = (
        None if consensus is None else (consensus.code_present[representative], consensus.code_applied[representative])
    )
    if values is not None:
        values = values[:, representative]
    if sets is not None:
        sets = sets[:, representative]
    plan = _Plan(len(representative), multiplicity.astype(np.float64), pattern_of)
    sums = plan.sums

    groups = {"all": list(range(len(coders)))}
    if models and len(humans) >= 2:
        groups["humans"] = [coders.index(h) for h in humans]
    for group, members in groups.items():
        _plan_group(plan, group, members, present, applied, n_codes)
        if values is not None:
            assert level_values is not None and level_of is not None
            _plan_group_single(plan, group, members, present, values, categories, level_values, level_of, level)
        else:
            assert sets is not None and set_distances is not None
            _plan_group_sets(plan, group, members, present, sets, set_distances)

    def kind_of(a: int, b: int) -> PairKind:
        roles = {coders[a] in models, coders[b] in models}
        return "model-human" if len(roles) == 2 else "model-model" if True in roles else "human-human"

    pairs: list[tuple[int, int, PairKind]] = [
        (a, b, kind_of(a, b)) for a, b in itertools.combinations(range(len(coders)), 2)
    ]
    if consensus is not None:
        pairs += [(coders.index(m), len(coders), "model-consensus") for m in models]
    for p, (a, b, _) in enumerate(pairs):
        _plan_pair(
            plan,
            p,
            a,
            b,
            present,
            applied,
            n_codes,
            consensus_pair=(b == len(coders)),
            per_code=per_code if b == len(coders) else None,
        )
        if values is not None:
            assert level_values is not None and level_of is not None
            _plan_pair_single(plan, p, a, b, present, values, len(categories), level_of, level_values, level)
        else:
            assert sets is not None and set_distances is not None
            _plan_pair_sets(plan, p, a, b, present, sets, set_distances)

    sums.freeze()
    point_totals = sums.totals(plan.multiplicity)
    points = {s.key: s.compute(point_totals)[0] for s in plan.stats}
    intervals = _bootstrap(plan, bootstrap, seed, points)

    def stat(key: tuple, index: int | None = None) -> Statistic:
        value = points[key] if index is None else points[key][index]
        ci = intervals.get(key)
        if ci is not None and index is not None:
            ci = ci[index]
        reason = None
        if value is None or not math.isfinite(value):
            found = next(s for s in plan.stats if s.key == key)
            reason = found.reason if isinstance(found.reason, str) else found.reason(point_totals, index)
        return Statistic.estimate(value, ci, reason)

    def overall_of(group: str) -> OverallAgreement:
        if single:
            return OverallAgreement(
                krippendorff_alpha=stat((group, "overall", "krippendorff_alpha")),
                fleiss_kappa=stat((group, "overall", "fleiss_kappa")),
                gwet_ac1=stat((group, "overall", "gwet_ac1")),
                percent_agreement=stat((group, "overall", "percent_agreement")),
                categories=len(categories),
            )
        return OverallAgreement(
            krippendorff_alpha=stat((group, "overall", "krippendorff_alpha")),
            distance="masi",
            mean_per_code=MeanPerCode(
                **{name: stat((group, "mean", name)) for name in MeanPerCode.model_fields},
            ),
        )

    def pair_of(p: int, a: int, b: int, kind: PairKind) -> PairAgreement:
        weighted = single and level != "nominal"
        return PairAgreement(
            coders=(names[a], names[b]),
            kind=kind,
            units=int(points[(p, "units")]),
            percent_agreement=stat((p, "percent_agreement")),
            cohen_kappa=stat((p, "cohen_kappa")),
            cohen_kappa_linear=stat((p, "cohen_kappa_linear")) if weighted else None,
            cohen_kappa_quadratic=stat((p, "cohen_kappa_quadratic")) if weighted else None,
            krippendorff_alpha=stat((p, "krippendorff_alpha")),
            exact_agreement=None if single else stat((p, "exact_agreement")),
        )

    def code_group(group: str, k: int) -> GroupCodeAgreement:
        return GroupCodeAgreement(**{name: stat((group, "code", name), k) for name in GroupCodeAgreement.model_fields})

    def code_of(k: int, code: str) -> CodeAgreement:
        every = code_group("all", k)
        return CodeAgreement(
            code=code,
            name=codings.names.get(code),
            **dict(every),
            humans=code_group("humans", k) if "humans" in groups else None,
            pairwise=[
                CodePairAgreement(
                    coders=(names[a], names[b]),
                    kind=kind,
                    percent_agreement=stat((p, "code", "percent_agreement"), k),
                    cohen_kappa=stat((p, "code", "cohen_kappa"), k),
                )
                for p, (a, b, kind) in enumerate(pairs)
            ],
        )

    def model_of(p: int, a: int) -> ModelAgreement:
        return ModelAgreement(
            coder=names[a],
            units=int(points[(p, "units")]),
            per_code=[
                ModelCodeAgreement(
                    code=code,
                    support=int(points[(p, "code", "support")][k]),
                    precision=stat((p, "code", "precision"), k),
                    recall=stat((p, "code", "recall"), k),
                    f1=stat((p, "code", "f1"), k),
                    cohen_kappa=stat((p, "code", "cohen_kappa"), k),
                )
                for k, code in enumerate(codings.codes)
            ],
            confusion=confusions[names[a]],
        )

    if consensus is None and models and len(humans) < 2:
        notes.append("no human consensus: it needs at least two human coders besides the model(s)")
    if single and level != "nominal" and none_used:
        notes.append(
            f"'{NONE_LABEL}' has no place on the {level} scale: Krippendorff's alpha at that level and the "
            "weighted kappas leave those codings out; the nominal statistics count it as a category"
        )
    return Agreement(
        source=codings.source,
        units=len(codings.units),
        pairable_units=int((coded >= 2).sum()),
        coders=[
            CoderSummary(name=c, role="model" if c in models else "human", units=int(codings.present[i].sum()))
            for i, c in enumerate(coders)
        ],
        codes=list(codings.codes),
        single_label=single,
        level=cast(Level, level),  # one of LEVELS, checked above
        bootstrap=Bootstrap(replicates=bootstrap, seed=seed),
        overall=overall_of("all"),
        overall_humans=overall_of("humans") if "humans" in groups else None,
        pairwise=[pair_of(p, a, b, kind) for p, (a, b, kind) in enumerate(pairs)],
        per_code=[code_of(k, code) for k, code in enumerate(codings.codes)],
        consensus=None
        if consensus is None
        else Consensus(
            humans=humans,
            units=int(consensus.present.sum()),
            undecided_units=consensus.undecided,
            rule=consensus.rule,
        ),
        models=None
        if consensus is None
        else [model_of(p, a) for p, (a, _, kind) in enumerate(pairs) if kind == "model-consensus"],
        notes=notes,
    )


def _bootstrap(plan: _Plan, replicates: int, seed: int, points: dict) -> dict[tuple, np.ndarray]:
    """Percentile intervals: units drawn with replacement, `replicates` times, from one seeded generator."""
    if replicates == 0:
        return {}
    n = len(plan.pattern_of)  # units
    patterns = plan.sums.n
    rng = np.random.default_rng(seed)
    draws = {s.key: np.empty((replicates,) + np.shape(points[s.key])) for s in plan.stats}
    chunk = max(1, min(replicates, 4_000_000 // max(n, 1)))
    offsets = None
    for start in range(0, replicates, chunk):
        size = min(chunk, replicates - start)
        picks = plan.pattern_of[rng.integers(0, n, size=(size, n))]  # units drawn, as their patterns
        if offsets is None or len(offsets) != size:
            offsets = (np.arange(size) * patterns)[:, None]
        picks += offsets
        weights = np.bincount(picks.ravel(), minlength=size * patterns).reshape(size, patterns).astype(np.float64)
        del picks
        totals = plan.sums.totals(weights)
        for s in plan.stats:
            draws[s.key][start : start + size] = s.compute(totals)
    intervals = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-undefined columns give NaN, reported as null
        for key, values in draws.items():
            if np.ndim(points[key]) == 0 and not np.isfinite(values).any():
                continue
            low, high = np.nanpercentile(values, [2.5, 97.5], axis=0)
            intervals[key] = np.stack([low, high], axis=-1) if np.ndim(low) else np.array([low, high])
    return intervals


# ---------------------------------------------------------------- what each statistic sums


def _plan_group(
    plan: _Plan, group: str, members: list[int], present: np.ndarray, applied: np.ndarray, n_codes: int
) -> None:
    """Per code, presence against absence, among the coders of a group (Gwet 2014 with missing codings)."""
    sums = plan.sums
    m = present[members].sum(axis=0).astype(np.float64)
    once, twice = m >= 1, m >= 2
    r = applied[members].sum(axis=0).T.astype(np.float64)  # (codes, units)
    safe_m = np.where(once, m, 1.0)
    safe_pairs = np.where(twice, m * (m - 1.0), 1.0)
    units_once = sums.add(once)
    units_twice = sums.add(twice)
    values = sums.add(np.where(twice, m, 0.0))
    share = sums.add(np.where(once, r / safe_m, 0.0))
    disagree = sums.add(np.where(twice, 2.0 * r * (m - r) / safe_pairs, 0.0))
    o01 = sums.add(np.where(twice, r * (m - r) / np.where(twice, m - 1.0, 1.0), 0.0))
    ones = sums.add(np.where(twice, r, 0.0))

    def pa(t):
        return 1.0 - _ratio(disagree.of(t), units_twice.of(t))

    def pi(t):
        return _ratio(share.of(t), units_once.of(t))

    def alpha(t):
        n = values.of(t)
        n1 = ones.of(t)
        return _alpha(2.0 * o01.of(t), 2.0 * n1 * (n - n1), n)

    def reason(t, k):
        if units_twice.of(t)[0, 0] == 0:
            return "no unit was coded by two coders of this group"
        p = pi(t)[0, k]
        if p == 0:
            return "never applied: chance agreement is 1, so the statistic is undefined"
        if p == 1:
            return "applied by every coder to every unit: chance agreement is 1, so the statistic is undefined"
        return "no variation among the pairable codings"

    plan.stat((group, "code", "prevalence"), pi, "no unit in this group")
    plan.stat((group, "code", "percent_agreement"), pa, reason)
    plan.stat(
        (group, "code", "fleiss_kappa"), lambda t: _chance_corrected(pa(t), pi(t) ** 2 + (1 - pi(t)) ** 2), reason
    )
    # Gwet (2008), eq. for AC1 with q = 2 categories: p_e = sum_k pi_k (1 - pi_k) / (q - 1) = 2 pi (1 - pi)
    plan.stat((group, "code", "gwet_ac1"), lambda t: _chance_corrected(pa(t), 2.0 * pi(t) * (1 - pi(t))), reason)
    plan.stat((group, "code", "krippendorff_alpha"), alpha, reason)

    def mean_of(stat):
        compute = next(s.compute for s in plan.stats if s.key == (group, "code", stat))

        def mean(t):
            values = compute(t)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return np.nanmean(values, axis=1) if values.shape[1] else np.full(values.shape[0], np.nan)

        return mean

    for stat in ("krippendorff_alpha", "fleiss_kappa", "gwet_ac1", "percent_agreement"):
        plan.stat((group, "mean", stat), mean_of(stat), "undefined for every code")


def _plan_group_single(
    plan: _Plan,
    group: str,
    members: list[int],
    present: np.ndarray,
    values: np.ndarray,
    categories: list[str],
    level_values: np.ndarray,
    level_of: np.ndarray,
    level: str,
) -> None:
    """Single-label data: one category per coder and unit (a code or none)."""
    sums = plan.sums
    n_units = present.shape[1]
    n_cat = len(categories)
    m = present[members].sum(axis=0).astype(np.float64)
    once, twice = m >= 1, m >= 2
    counts = np.zeros((n_cat, n_units))
    for c in members:
        ok = values[c] >= 0
        np.add.at(counts, (values[c][ok], np.flatnonzero(ok)), 1.0)
    units_once = sums.add(once)
    units_twice = sums.add(twice)
    share = sums.add(np.where(once, counts / np.where(once, m, 1.0), 0.0))
    agree = sums.add(np.where(twice, (counts * (counts - 1.0)).sum(axis=0) / np.where(twice, m * (m - 1.0), 1.0), 0.0))
    q = n_cat  # categories of the scale: the codebook's codes (or those used) and (none) when used

    def pa(t):
        return _ratio(agree.of(t)[:, 0], units_twice.of(t)[:, 0])

    def pi(t):
        return _ratio(share.of(t), units_once.of(t))

    no_variation = "every coder gave every unit the same value: chance agreement is 1, so it is undefined"
    plan.stat((group, "overall", "percent_agreement"), pa)
    plan.stat(
        (group, "overall", "fleiss_kappa"), lambda t: _chance_corrected(pa(t), (pi(t) ** 2).sum(axis=1)), no_variation
    )
    if q >= 2:
        # Gwet (2008), AC1: p_e = sum_k pi_k (1 - pi_k) / (q - 1)
        plan.stat(
            (group, "overall", "gwet_ac1"),
            lambda t: _chance_corrected(pa(t), (pi(t) * (1 - pi(t))).sum(axis=1) / (q - 1)),
            no_variation,
        )
    else:
        plan.stat(
            (group, "overall", "gwet_ac1"),
            lambda t: np.full(t[0].shape[0], np.nan),
            "only one category exists, so chance agreement is undefined",
        )

    # Krippendorff's alpha at the level, from coincidences of the values on its scale
    n_lv = len(level_values)
    lv = np.where(values[members] >= 0, level_of[np.maximum(values[members], 0)], -1)
    m_lv = (lv >= 0).sum(axis=0)
    rows, cols, vals = [], [], []
    for i, j in itertools.permutations(range(len(members)), 2):
        ok = (lv[i] >= 0) & (lv[j] >= 0) & (m_lv >= 2)
        units = np.flatnonzero(ok)
        rows.append(lv[i][units] * n_lv + lv[j][units])
        cols.append(units)
        vals.append(1.0 / (m_lv[units] - 1.0))
    o_ref = sums.add_coo(n_lv * n_lv, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals))
    delta = _level_delta(level, level_values)
    plan.stat(
        (group, "overall", "krippendorff_alpha"),
        lambda t: _alpha_from_coincidences(o_ref.of(t).reshape(-1, n_lv, n_lv), delta),
        f"every coder gave every unit the same value on the {level} scale (no variation), or fewer than two "
        "values could be paired: chance disagreement is 0, so it is undefined",
    )


def _plan_group_sets(
    plan: _Plan,
    group: str,
    members: list[int],
    present: np.ndarray,
    sets: np.ndarray,
    distances: _SetDistances,
) -> None:
    """Multi-label data: Krippendorff's alpha over code sets with the MASI distance."""
    sums = plan.sums
    m = present[members].sum(axis=0).astype(np.float64)
    twice = m >= 2
    disagreement = np.zeros(present.shape[1])
    for a, b in itertools.combinations(members, 2):
        both = present[a] & present[b] & twice
        d = distances_between(distances, sets[a], sets[b])
        disagreement += np.where(both, 2.0 * d / np.where(twice, m - 1.0, 1.0), 0.0)
    observed = sums.add(disagreement)
    rows, cols = [], []
    for c in members:
        units = np.flatnonzero(present[c] & twice)
        rows.append(sets[c][units])
        cols.append(units)
    rows_all = np.concatenate(rows)
    support, local = np.unique(rows_all, return_inverse=True)
    counts = sums.add_coo(len(support), local, np.concatenate(cols), 1.0)

    plan.stat(
        (group, "overall", "krippendorff_alpha"),
        _masi_alpha(observed, counts, support, distances),
        _masi_reason(support, "every coder gave every unit the same code set"),
    )


def _masi_alpha(observed: _Ref, counts: _Ref, support: np.ndarray, distances: _SetDistances) -> Callable:
    """Alpha over code sets. The expected disagreement costs (distinct sets)^2 per replicate: past
    _MASI_CACHE_LIMIT sets the replicates keep the point estimate's expected disagreement per pair of values,
    as Hayes and Krippendorff's (2007) bootstrap does, and past _MASI_LIMIT alpha is not computed."""
    fixed: dict[str, float] = {}

    def alpha(t):
        n_v = counts.of(t)
        n = n_v.sum(axis=1)
        if len(support) > _MASI_LIMIT:
            return np.full(n.shape, np.nan)
        if len(support) <= _MASI_CACHE_LIMIT:
            return _alpha(observed.of(t)[:, 0], distances.quadratic(n_v, support), n)
        if "per_pair" not in fixed:  # the first call is the point estimate
            fixed["per_pair"] = float(_ratio(distances.quadratic(n_v, support), n * (n - 1.0))[0])
        return 1.0 - _ratio(observed.of(t)[:, 0] / np.maximum(n, 1.0), np.full(n.shape, fixed["per_pair"]))

    return alpha


def _masi_reason(support: np.ndarray, same: str) -> str:
    if len(support) > _MASI_LIMIT:
        return (
            f"{len(support)} distinct code sets: more than {_MASI_LIMIT:,}, too many for the MASI distance "
            "matrix; see the mean of the per-code statistics"
        )
    return f"{same}: no variation, so it is undefined"


def distances_between(distances: _SetDistances, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MASI distance between the sets a[i] and b[i] (indices into distances.members; -1 = missing gives 0)."""
    ok = (a >= 0) & (b >= 0)
    ia, ib = np.where(ok, a, 0), np.where(ok, b, 0)
    members = distances.members
    inter = (members[ia] * members[ib]).sum(axis=1)
    return np.where(ok, _masi(inter, distances.sizes[ia], distances.sizes[ib]), 0.0)


def _plan_pair(
    plan: _Plan,
    p: int,
    a: int,
    b: int,
    present: np.ndarray,
    applied: np.ndarray,
    n_codes: int,
    consensus_pair: bool,
    per_code: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """Two coders, per code: the 2x2 table over the units both coded. `per_code` gives coder b
    (the consensus) as (decided, applied) per unit and code, when a unit can be decided for some
    codes and not others."""
    sums = plan.sums
    if per_code is None:
        both = present[a] & present[b]
        mask = np.broadcast_to(both[:, None], (len(both), n_codes))
        b_applied = applied[b]
    else:
        decided, b_applied = per_code
        mask = present[a][:, None] & decided
        both = mask.any(axis=1)
    units = sums.add(both)
    coded = units if per_code is None else sums.add(mask.T.astype(np.float64))
    xa = (applied[a] & mask).T.astype(np.float64)
    xb = (b_applied & mask).T.astype(np.float64)
    n11 = sums.add(xa * xb)
    na = sums.add(xa)
    nb = sums.add(xb)

    def po(t):
        n = coded.of(t)
        return _ratio(n - na.of(t) - nb.of(t) + 2.0 * n11.of(t), n)

    def kappa(t):
        n = coded.of(t)
        a1, b1 = na.of(t), nb.of(t)
        chance = _ratio(a1 * b1 + (n - a1) * (n - b1), n * n)
        return _chance_corrected(po(t), chance)

    def reason(t, k):
        if units.of(t)[0, 0] == 0:
            return "the two coders share no unit"
        return "both coders gave every shared unit the same value for this code: chance agreement is 1"

    plan.stat((p, "units"), lambda t: units.of(t)[:, 0])
    plan.stat((p, "code", "percent_agreement"), po, reason)
    plan.stat((p, "code", "cohen_kappa"), kappa, reason)
    if consensus_pair:
        plan.stat((p, "code", "support"), lambda t: nb.of(t))
        plan.stat(
            (p, "code", "precision"),
            lambda t: _ratio(n11.of(t), na.of(t)),
            "the model never applied this code on these units",
        )
        plan.stat(
            (p, "code", "recall"),
            lambda t: _ratio(n11.of(t), nb.of(t)),
            "the consensus never has this code on these units",
        )
        plan.stat(
            (p, "code", "f1"),
            lambda t: _ratio(2.0 * n11.of(t), na.of(t) + nb.of(t)),
            "neither the model nor the consensus applied this code",
        )


def _plan_pair_single(
    plan: _Plan,
    p: int,
    a: int,
    b: int,
    present: np.ndarray,
    values: np.ndarray,
    n_cat: int,
    level_of: np.ndarray,
    level_values: np.ndarray,
    level: str,
) -> None:
    sums = plan.sums
    both = np.flatnonzero(present[a] & present[b] & (values[a] >= 0) & (values[b] >= 0))
    table = sums.add_coo(n_cat * n_cat, values[a][both] * n_cat + values[b][both], both, 1.0)
    n_lv = len(level_values)
    la, lb = level_of[values[a][both]], level_of[values[b][both]]
    ok = (la >= 0) & (lb >= 0)
    lv_table = sums.add_coo(n_lv * n_lv, la[ok] * n_lv + lb[ok], both[ok], 1.0)
    no_variation = "both coders gave every shared unit the same value: chance agreement is 1"

    def confusion(t):
        return table.of(t).reshape(-1, n_cat, n_cat)

    def po(t):
        c = confusion(t)
        return _ratio(np.trace(c, axis1=1, axis2=2), c.sum(axis=(1, 2)))

    def kappa(t, weights=None):
        # Cohen (1960, 1968) as scikit-learn: 1 - sum(w * observed) / sum(w * expected)
        c = lv_table.of(t).reshape(-1, n_lv, n_lv) if weights is not None else confusion(t)
        size = c.shape[1]
        idx = np.arange(size)
        w = (
            (1.0 - np.eye(size))
            if weights is None
            else (np.abs(idx[:, None] - idx[None, :]) if weights == "linear" else (idx[:, None] - idx[None, :]) ** 2.0)
        )
        n = c.sum(axis=(1, 2))
        expected = c.sum(axis=2)[:, :, None] * c.sum(axis=1)[:, None, :]
        return 1.0 - _ratio((w * c).sum(axis=(1, 2)), _ratio((w * expected).sum(axis=(1, 2)), n))

    plan.stat((p, "percent_agreement"), po, "the two coders share no unit")
    plan.stat((p, "cohen_kappa"), kappa, no_variation)
    plan.stat((p, "cohen_kappa_linear"), lambda t: kappa(t, "linear"), no_variation)
    plan.stat((p, "cohen_kappa_quadratic"), lambda t: kappa(t, "quadratic"), no_variation)
    delta = _level_delta(level, level_values)

    def alpha(t):
        c = lv_table.of(t).reshape(-1, n_lv, n_lv)
        return _alpha_from_coincidences(c + c.transpose(0, 2, 1), delta)

    plan.stat((p, "krippendorff_alpha"), alpha, no_variation)


def _plan_pair_sets(
    plan: _Plan, p: int, a: int, b: int, present: np.ndarray, sets: np.ndarray, distances: _SetDistances
) -> None:
    sums = plan.sums
    both = present[a] & present[b]
    d = distances_between(distances, np.where(both, sets[a], -1), np.where(both, sets[b], -1))
    observed = sums.add(2.0 * d)
    exact = sums.add(both & (sets[a] == sets[b]))
    units = np.flatnonzero(both)
    support, local = np.unique(np.concatenate([sets[a][units], sets[b][units]]), return_inverse=True)
    counts = sums.add_coo(len(support), local, np.concatenate([units, units]), 1.0)
    pair_units = next(s.compute for s in plan.stats if s.key == (p, "units"))
    per_code_po = next(s.compute for s in plan.stats if s.key == (p, "code", "percent_agreement"))
    per_code_kappa = next(s.compute for s in plan.stats if s.key == (p, "code", "cohen_kappa"))

    alpha = _masi_alpha(observed, counts, support, distances)

    def mean(compute):
        def run(t):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                v = compute(t)
                return np.nanmean(v, axis=1) if v.shape[1] else np.full(v.shape[0], np.nan)

        return run

    plan.stat((p, "percent_agreement"), mean(per_code_po), "the two coders share no unit")
    plan.stat((p, "cohen_kappa"), mean(per_code_kappa), "Cohen's kappa is undefined for every code")
    plan.stat(
        (p, "krippendorff_alpha"), alpha, _masi_reason(support, "both coders gave every shared unit the same code set")
    )
    plan.stat(
        (p, "exact_agreement"), lambda t: _ratio(exact.of(t)[:, 0], pair_units(t)), "the two coders share no unit"
    )


# ---------------------------------------------------------------- values, sets, consensus


def _values(codings: Codings, categories: list[str]) -> np.ndarray:
    """Single-label data as one category index per coder and unit; -1 = missing."""
    none = len(codings.codes)  # (none) follows the codes
    has = codings.applied.any(axis=2)
    code = codings.applied.argmax(axis=2)
    return np.where(codings.present, np.where(has, code, none), -1).astype(np.int64)


def _level_values(
    codings: Codings, categories: list[str], level: str, codebook: Codebook | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ordered values of the level's scale, and each category's position on it (-1 for (none))."""
    if level == "nominal":
        return np.arange(len(categories), dtype=np.float64), np.arange(len(categories))
    levels: dict[str, float] = {}
    if codebook is not None:
        for leaf in codebook.leaves:
            value = leaf.attributes.get("level")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                levels[leaf.id] = float(value)
    numbers: dict[str, float] = {}
    for code in codings.codes:
        try:
            number = float(code)
        except ValueError:
            continue
        if math.isfinite(number):
            numbers[code] = number
    first, second = (levels, numbers) if level == "ordinal" else (numbers, levels)
    found = {c: first.get(c, second.get(c)) for c in codings.codes}
    value_of = {c: v for c, v in found.items() if v is not None}
    lacking = [c for c in codings.codes if c not in value_of]
    if lacking:
        how = (
            "an ordinal codebook (--codebook FILE with attributes.level on every code) or numeric codes"
            if level == "ordinal"
            else "numeric codes (or a codebook giving each code a numeric attributes.level)"
        )
        raise AgreementError(
            f"{codings.source}: the {level} level needs {how}; no value for code(s) "
            f"{', '.join(repr(c) for c in lacking[:5])}" + (" ..." if len(lacking) > 5 else "")
        )
    # The scale is the codebook's whole scale where there is one: weighted kappa's weights are
    # distances between positions on the scale (Cohen 1968), unobserved levels included.
    # Krippendorff's ordinal and interval alphas do not change: an unobserved value has no pairs.
    on_scale = set(value_of.values()) | (set(levels.values()) if level == "ordinal" else set())
    scale = np.array(sorted(on_scale), dtype=np.float64)
    position = {v: i for i, v in enumerate(scale.tolist())}
    level_of = np.array([position[value_of[c]] for c in codings.codes] + [-1] * (len(categories) - len(codings.codes)))
    return scale, level_of


def _code_sets(present: np.ndarray, applied: np.ndarray) -> tuple[np.ndarray, _SetDistances]:
    """Each coder's code set per unit as an index into the distinct sets (-1 = missing)."""
    n_coders, n_units, n_codes = applied.shape
    flat = applied.reshape(-1, n_codes)
    packed = np.packbits(flat, axis=1) if n_codes else np.zeros((flat.shape[0], 1), dtype=np.uint8)
    keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    members = flat[first]
    sets = np.where(present.ravel(), inverse.ravel(), -1).reshape(n_coders, n_units)
    return sets.astype(np.int64), _SetDistances(members)


@dataclass(frozen=True)
class _HumanConsensus:
    """The humans' majority per unit, as a pseudo-coder's rows (see `_consensus`)."""

    rule: str
    present: np.ndarray  # (units,) bool: the unit has a consensus (over its whole code set)
    applied: np.ndarray  # (units, codes) bool
    undecided: int  # units coded by two humans or more without a consensus
    code_present: np.ndarray  # (units, codes) bool: decided for this code
    code_applied: np.ndarray  # (units, codes) bool
    values: np.ndarray | None = None  # single-label: the category per unit, -1 without consensus


def _consensus(codings: Codings, humans: list[int], values: np.ndarray | None, n_cat: int) -> _HumanConsensus:
    """The humans' majority per unit, among the humans who coded it (at least two).

    Single-label: the value (a code or none) chosen by more than half of them; otherwise no consensus.
    Multi-label: the codes applied by more than half of them; a unit where some code was applied by
    exactly half (a tie) has no consensus. Units without consensus are left out of comparisons with it.
    """
    present = codings.present[humans]
    m = present.sum(axis=0)
    if values is not None:
        counts = np.zeros((n_cat, present.shape[1]), dtype=np.int64)
        for h in humans:
            ok = values[h] >= 0
            np.add.at(counts, (values[h][ok], np.flatnonzero(ok)), 1)
        best = counts.argmax(axis=0)
        decided = (m >= 2) & (2 * counts.max(axis=0) > m)
        none = len(codings.codes)
        applied = np.zeros((present.shape[1], len(codings.codes)), dtype=bool)
        has_code = decided & (best != none)
        applied[np.flatnonzero(has_code), best[has_code]] = True
        return _HumanConsensus(
            rule="the value (a code or none) chosen by more than "
            "half of the humans who coded the unit (at least two); otherwise the unit has no consensus",
            present=decided,
            applied=applied,
            undecided=int(((m >= 2) & ~decided).sum()),
            code_present=decided[:, None] & np.ones(len(codings.codes), dtype=bool),
            code_applied=applied,
            values=np.where(decided, best, -1),
        )
    r = codings.applied[humans].sum(axis=0)
    # per code, a tie (exactly half) leaves only that code undecided on the unit; over whole code
    # sets (MASI, identical sets, the confusion table) a tie on any code leaves the unit out
    code_present = (m >= 2)[:, None] & (2 * r != m[:, None])
    code_applied = 2 * r > m[:, None]
    decided = code_present.all(axis=1) & (m >= 2)
    return _HumanConsensus(
        rule="the codes applied by more than half of the humans who coded the unit (at least two); "
        "a code applied by exactly half of them is undecided there: left out of that code's "
        "comparisons, and the unit out of comparisons of whole code sets",
        present=decided,
        applied=code_applied & decided[:, None],
        undecided=int(((m >= 2) & ~decided).sum()),
        code_present=code_present,
        code_applied=code_applied,
    )


def _confusion(
    codings: Codings,
    model: int,
    consensus: int,
    present: np.ndarray,
    applied: np.ndarray,
    values: np.ndarray | None,
    categories: list[str],
) -> ConfusionTable:
    """Rows: the consensus; columns: the model. Multi-label: units counted once per (consensus code, model code)
    pair they hold, with (none) standing for an empty set."""
    from sklearn.metrics import confusion_matrix

    both = present[model] & present[consensus]
    if values is not None:
        labels = categories
        matrix = confusion_matrix(values[consensus][both], values[model][both], labels=list(range(len(labels))))
    else:
        labels = list(codings.codes) + [NONE_LABEL]
        truth, guess = applied[consensus][both], applied[model][both]
        truth = np.concatenate([truth, ~truth.any(axis=1, keepdims=True)], axis=1).astype(np.int64)
        guess = np.concatenate([guess, ~guess.any(axis=1, keepdims=True)], axis=1).astype(np.int64)
        matrix = truth.T @ guess
    return ConfusionTable(labels=labels, matrix=matrix.astype(int).tolist())


# ---------------------------------------------------------------- reading from the store


def codings_from_store(store: Store, run_id: str | None, codebook: Codebook | None = None) -> Codings:
    """The model's codes beside people's: reviewers' blind codes and imported projects' human codes.

    Passages of the run that no person has coded yet are left out: they say nothing about agreement,
    and kept in they would weigh the model's own code shares in Fleiss' kappa and AC1."""
    run_id = resolve_run(store, run_id)
    if run_id is None:
        # the model of the run the reviewers' samples came from, not every model in the database
        with store.session() as s:
            sampled_runs = sorted(
                set(s.scalars(select(AssignmentRecord.run_id).where(AssignmentRecord.coded_at.is_not(None))))
            )
        if len(sampled_runs) > 1:
            raise AgreementError(
                f"reviewers coded samples of {len(sampled_runs)} runs blind "
                f"({', '.join(sampled_runs)}): choose one with --run"
            )
        run_id = sampled_runs[0] if sampled_runs else None
    humans = list(blind_rows(store, run_id=run_id)) + list(human_rows(store, run_id))
    where = f"run '{run_id}'" if run_id else "the database"
    if not humans:
        raise AgreementError(
            f"{where} has no human codes yet: a lead assigns a sample for double coding in "
            "the review app and reviewers code it blind, or qcode import brings in a project "
            "coded by people in another QDA tool"
        )
    sampled = {row["unit_id"] for row in humans}
    rows = [row for row in coding_rows(store, run_id) if row["unit_id"] in sampled] + humans
    return codings_from_rows(rows, where, codebook)
