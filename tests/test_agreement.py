"""Agreement statistics: published worked examples, the reference libraries, properties and bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from fakes import qcode, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.codebook import load_codebook
from pipeline.errors import FileError
from pipeline.measure.agreement import (
    AgreementError,
    codings_from_rows,
    masi_distance,
    measure_agreement,
    read_codings,
)
from pipeline.measure.statistic import Statistic


def table(path: Path, rows: list[tuple]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["unit_id", "coder", "code"])
        writer.writerows(rows)
    return path


def wide(columns: dict[str, list]) -> list[dict[str, str]]:
    """Single-label data coder -> value per unit (None: missing, '': applied none) as long rows."""
    rows = []
    for coder, values in columns.items():
        for u, value in enumerate(values):
            if value is not None:
                rows.append({"unit_id": f"u{u:03d}", "coder": coder, "code": str(value)})
    return rows


def run(rows: list[dict], **options) -> dict:
    options.setdefault("bootstrap", 0)
    return measure_agreement(codings_from_rows(rows, "test"), **options).model_dump(mode="json")


# ------------------------------------------------------------ published worked examples

# Krippendorff, K. (2011). Computing Krippendorff's Alpha-Reliability. Annenberg School for Communication,
# University of Pennsylvania, section "C. Nominal data, any number of observers, missing data", and the
# same reliability data at the other levels (also the `krippendorff` package's documented example).
# 4 observers, 12 units, values 1-5, "." missing.
KRIPPENDORFF_2011 = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


@pytest.mark.parametrize(
    "level, expected", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_krippendorff_2011_worked_example(level, expected):
    # Krippendorff (2011): nominal alpha = .743, ordinal .815, interval .849, ratio .797
    report = run(wide(KRIPPENDORFF_2011), level=level)
    assert round(report["overall"]["krippendorff_alpha"], 3) == expected


def test_gwet_2014_worked_example_with_missing_ratings():
    # Gwet, K. L. (2014). Handbook of Inter-Rater Reliability, 4th ed., the 4 raters x 12 subjects example
    # (the same data as Krippendorff 2011; dataset cac.raw4raters of Gwet's irrCAC package, whose documentation
    # prints AC1 = 0.77544 with pa = 0.81818, and Fleiss' generalized kappa = 0.76117 with pe = 0.239).
    overall = run(wide(KRIPPENDORFF_2011))["overall"]
    assert round(overall["gwet_ac1"], 5) == 0.77544
    assert round(overall["fleiss_kappa"], 5) == 0.76117
    assert round(overall["percent_agreement"], 5) == 0.81818


# Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters. Psychological Bulletin 76(5),
# 378-382; the worked example of Wikipedia's "Fleiss' kappa" article: 10 subjects, 14 raters, 5 categories,
# P-bar = 0.378, P-bar_e = 0.213, kappa = 0.210.
FLEISS_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_fleiss_1971_worked_example():
    rows = []
    for u, counts in enumerate(FLEISS_TABLE):
        ratings = [f"cat{k + 1}" for k, n in enumerate(counts) for _ in range(n)]
        rows += [{"unit_id": f"s{u}", "coder": f"rater{r:02d}", "code": code} for r, code in enumerate(ratings)]
    overall = run(rows)["overall"]
    assert round(overall["fleiss_kappa"], 3) == 0.210
    assert round(overall["percent_agreement"], 3) == 0.378


def test_cohen_kappa_worked_example():
    # Wikipedia, "Cohen's kappa", first worked example: 50 grant proposals read by A and B; both yes 20,
    # both no 15, A yes B no 5, A no B yes 10: p_o = 0.7, p_e = 0.5, kappa = 0.4.
    pairs = [("yes", "yes")] * 20 + [("no", "no")] * 15 + [("yes", "no")] * 5 + [("no", "yes")] * 10
    rows = [
        {"unit_id": f"p{i}", "coder": coder, "code": value}
        for i, pair in enumerate(pairs)
        for coder, value in zip("AB", pair)
    ]
    report = run(rows)
    (pair,) = report["pairwise"]
    assert pair["percent_agreement"] == pytest.approx(0.7, abs=1e-12)
    assert pair["cohen_kappa"] == pytest.approx(0.4, abs=1e-12)
    # the same as presence/absence of the code "yes"
    yes = next(c for c in report["per_code"] if c["code"] == "yes")
    assert yes["pairwise"][0]["cohen_kappa"] == pytest.approx(0.4, abs=1e-12)


def test_masi_distance_passonneau_2006():
    # Passonneau, R. (2006). Measuring agreement on set-valued items (MASI) for semantic and pragmatic
    # annotation. LREC. MASI = J * M, M = 1 (identical), 2/3 (subsumption), 1/3 (overlap), 0 (disjoint);
    # the distance is 1 - MASI. NLTK documents masi_distance({1,2}, {1,2,3,4}) = 0.665 with M rounded to 0.67;
    # with the paper's 2/3 it is 1 - (2/4)(2/3) = 2/3.
    assert masi_distance({"a", "b"}, {"a", "b"}) == 0.0
    assert masi_distance({1, 2}, {1, 2, 3, 4}) == pytest.approx(1 - 0.5 * 2 / 3)
    assert masi_distance({"a", "b"}, {"b", "c"}) == pytest.approx(1 - (1 / 3) * (1 / 3))
    assert masi_distance({"a"}, {"b"}) == 1.0
    assert masi_distance(set(), set()) == 0.0
    assert masi_distance(set(), {"a"}) == 1.0


# ------------------------------------------------------------ against the reference libraries (to 1e-9)


def random_rows(
    rng: np.random.Generator,
    units: int,
    coders: list[str],
    codes: int,
    missing: float,
    multi: bool,
    none: float = 0.15,
    agree: float = 0.6,
) -> list[dict]:
    rows = []
    for u in range(units):
        truth = {k for k in range(codes) if rng.random() < 0.3} if multi else {int(rng.integers(codes))}
        for c in coders:
            if rng.random() < missing:
                continue
            if multi:
                given = {k for k in range(codes) if (k in truth) == (rng.random() < agree + (1 - agree) / 2)}
            elif rng.random() < none:
                given = set()
            else:
                given = truth if rng.random() < agree else {int(rng.integers(codes))}
            for k in sorted(given) or [None]:
                rows.append({"unit_id": f"u{u:04d}", "coder": c, "code": "" if k is None else str(k + 1)})
    return rows


def matrices(rows: list[dict]):
    """Wide arrays from long rows: coders, units, presence and code sets."""
    coders = sorted({r["coder"] for r in rows})
    units = sorted({r["unit_id"] for r in rows})
    sets = {(r["unit_id"], r["coder"]): set() for r in rows}
    for r in rows:
        if r["code"]:
            sets[(r["unit_id"], r["coder"])].add(r["code"])
    return coders, units, sets


def close(ours, theirs):
    if theirs is None or (isinstance(theirs, float) and math.isnan(theirs)):
        return ours is None
    return ours is not None and abs(ours - theirs) <= 1e-9


@pytest.mark.parametrize("seed", range(4))
def test_per_code_statistics_match_the_libraries(seed):
    import krippendorff
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    rng = np.random.default_rng(seed)
    missing = 0.0 if seed % 2 == 0 else 0.2
    rows = random_rows(rng, 60, ["a", "b", "c"], 5, missing, multi=True)
    report = run(rows)
    coders, units, sets = matrices(rows)
    for entry in report["per_code"]:
        code = entry["code"]
        data = np.array([[float(code in sets[(u, c)]) if (u, c) in sets else np.nan for u in units] for c in coders])
        try:
            expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
        except ValueError:  # the package refuses data with one value: alpha is undefined
            expected = None
        assert close(entry["krippendorff_alpha"], expected), code
        if missing == 0:
            counts, _ = aggregate_raters(data.T.astype(int), n_cat=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                assert close(entry["fleiss_kappa"], float(fleiss_kappa(counts))), code
        for cell in entry["pairwise"]:
            a, b = cell["coders"]
            i, j = coders.index(a), coders.index(b)
            both = ~np.isnan(data[i]) & ~np.isnan(data[j])
            x, y = data[i][both], data[j][both]
            expected = None if len(set(x) | set(y)) < 2 else cohen_kappa_score(x, y)
            assert close(cell["cohen_kappa"], expected), (code, a, b)


@pytest.mark.parametrize("seed", range(3))
def test_single_label_statistics_match_the_libraries(seed):
    import krippendorff
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    rng = np.random.default_rng(100 + seed)
    missing = 0.0 if seed == 0 else 0.25
    rows = random_rows(rng, 80, ["a", "b", "c", "d"], 5, missing, multi=False)
    coders, units, sets = matrices(rows)
    # none is its own category at the nominal level (value 0 here) and missing at the others
    nominal = np.array(
        [[float(next(iter(sets[(u, c)]), 0)) if (u, c) in sets else np.nan for u in units] for c in coders]
    )
    scaled = np.where(nominal == 0, np.nan, nominal)
    for level in ("nominal", "ordinal", "interval", "ratio"):
        report = run(rows, level=level)
        data = nominal if level == "nominal" else scaled
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        assert close(report["overall"]["krippendorff_alpha"], expected), level
        for pair in report["pairwise"]:
            i, j = (coders.index(c) for c in pair["coders"])
            both = ~np.isnan(nominal[i]) & ~np.isnan(nominal[j])
            assert close(pair["cohen_kappa"], cohen_kappa_score(nominal[i][both], nominal[j][both]))
            pair_data = data[[i, j]]
            assert close(
                pair["krippendorff_alpha"], krippendorff.alpha(reliability_data=pair_data, level_of_measurement=level)
            )
            if level != "nominal":
                both = ~np.isnan(scaled[i]) & ~np.isnan(scaled[j])
                for weights in ("linear", "quadratic"):
                    expected = cohen_kappa_score(
                        scaled[i][both], scaled[j][both], weights=weights, labels=[1.0, 2.0, 3.0, 4.0, 5.0]
                    )
                    assert close(pair[f"cohen_kappa_{weights}"], expected), (pair["coders"], weights)
    if missing == 0:
        counts, _ = aggregate_raters(nominal.T)
        assert close(run(rows)["overall"]["fleiss_kappa"], fleiss_kappa(counts))


@pytest.mark.parametrize("seed", range(3))
def test_masi_alpha_matches_krippendorff_with_a_custom_distance(seed):
    import krippendorff

    rng = np.random.default_rng(200 + seed)
    rows = random_rows(rng, 50, ["a", "b", "c"], 4, 0.15, multi=True)
    report = run(rows)
    coders, units, sets = matrices(rows)
    distinct = sorted({frozenset(s) for s in sets.values()}, key=sorted)
    index = {s: i for i, s in enumerate(distinct)}
    distance = np.array([[masi_distance(s, t) for t in distinct] for s in distinct])
    data = np.array(
        [[float(index[frozenset(sets[(u, c)])]) if (u, c) in sets else np.nan for u in units] for c in coders]
    )

    def masi(v1, v2, i1, i2, n_v, dtype=np.float64):
        return distance[i1, i2].astype(dtype)

    domain = np.arange(len(distinct), dtype=float)
    expected = krippendorff.alpha(reliability_data=data, value_domain=domain, level_of_measurement=masi)
    assert close(report["overall"]["krippendorff_alpha"], expected)
    for pair in report["pairwise"]:
        i, j = (coders.index(c) for c in pair["coders"])
        expected = krippendorff.alpha(reliability_data=data[[i, j]], value_domain=domain, level_of_measurement=masi)
        assert close(pair["krippendorff_alpha"], expected)


def test_model_against_consensus_matches_scikit_learn():
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    rng = np.random.default_rng(7)
    coders = ["offline:mini", "reviewer:ana", "reviewer:ben", "reviewer:cy"]
    rows = random_rows(rng, 120, coders, 4, 0.0, multi=True)
    report = run(rows)
    assert [c["role"] for c in report["coders"]] == ["model", "human", "human", "human"]
    _, units, sets = matrices(rows)
    codes = report["codes"]
    truth = np.array([[sum(code in sets[(u, h)] for h in coders[1:]) >= 2 for code in codes] for u in units])
    guess = np.array([[code in sets[(u, coders[0])] for code in codes] for u in units])
    precision, recall, f1, support = precision_recall_fscore_support(truth, guess, average=None, zero_division=np.nan)
    (model,) = report["models"]
    assert model["units"] == len(units) and report["consensus"]["undecided_units"] == 0
    for k, row in enumerate(model["per_code"]):
        assert close(row["precision"], precision[k]) and close(row["recall"], recall[k])
        assert close(row["f1"], f1[k]) and row["support"] == support[k]
    kinds = {tuple(p["coders"]): p["kind"] for p in report["pairwise"]}
    assert kinds[("offline:mini", "consensus")] == "model-consensus"
    assert kinds[("reviewer:ana", "reviewer:ben")] == "human-human"
    assert kinds[("offline:mini", "reviewer:ana")] == "model-human"

    single = random_rows(rng, 150, coders, 4, 0.1, multi=False)
    report = run(single)
    _, units, sets = matrices(single)
    labels = report["models"][0]["confusion"]["labels"]
    value = {(u, c): (next(iter(s)) if s else "(none)") for (u, c), s in sets.items()}
    y_true, y_pred = [], []
    for u in units:
        votes = [value[(u, h)] for h in coders[1:] if (u, h) in value]
        top = max(set(votes), key=votes.count) if votes else None
        if len(votes) >= 2 and 2 * votes.count(top) > len(votes) and (u, coders[0]) in value:
            y_true.append(top)
            y_pred.append(value[(u, coders[0])])
    expected = confusion_matrix(y_true, y_pred, labels=labels)
    assert report["models"][0]["confusion"]["matrix"] == expected.tolist()
    assert report["models"][0]["units"] == len(y_true)


# ------------------------------------------------------------ properties


single_label_tables = st.builds(
    lambda seed, units, coders, codes, missing: random_rows(
        np.random.default_rng(seed), units, [f"c{i}" for i in range(coders)], codes, missing, False
    ),
    st.integers(0, 10**6),
    st.integers(20, 60),
    st.integers(2, 4),
    st.integers(2, 5),
    st.sampled_from([0.0, 0.2]),
)
multi_label_tables = st.builds(
    lambda seed, units, coders, codes: random_rows(
        np.random.default_rng(seed), units, [f"c{i}" for i in range(coders)], codes, 0.1, True
    ),
    st.integers(0, 10**6),
    st.integers(20, 50),
    st.integers(2, 4),
    st.integers(2, 4),
)
PROPERTY = settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(
    values=st.lists(st.sampled_from(["1", "2", "3", ""]), min_size=4, max_size=40).filter(lambda v: len(set(v)) > 1),
    coders=st.integers(2, 4),
)
def test_perfect_agreement_gives_one(values, coders):
    rows = [{"unit_id": f"u{u}", "coder": f"c{c}", "code": v} for u, v in enumerate(values) for c in range(coders)]
    report = run(rows, bootstrap=50)
    overall = report["overall"]
    for name in ("krippendorff_alpha", "fleiss_kappa", "gwet_ac1", "percent_agreement"):
        assert overall[name] == pytest.approx(1.0, abs=1e-12), name
        assert overall[f"{name}_ci95"] == pytest.approx([1.0, 1.0], abs=1e-12)
    for pair in report["pairwise"]:
        assert pair["cohen_kappa"] == pytest.approx(1.0, abs=1e-12)
    for entry in report["per_code"]:
        assert entry["percent_agreement"] == 1.0 and entry["gwet_ac1"] == pytest.approx(1.0, abs=1e-12)


def _relabelled(rows: list[dict]) -> tuple[list[dict], dict[str, str]]:
    codes = sorted({r["code"] for r in rows if r["code"]})
    mapping = dict(zip(codes, [f"z-{c}" for c in reversed(codes)]))  # new names in another order
    return [{**r, "code": mapping.get(r["code"], "")} for r in rows], mapping


def _numbers(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numbers(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numbers(value, path + (i,))
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        yield path, node


@PROPERTY
@given(rows=st.one_of(single_label_tables, multi_label_tables))
def test_relabelling_codes_changes_nothing(rows):
    report = run(rows, bootstrap=40, seed=3)
    renamed, mapping = _relabelled(rows)
    other = run(renamed, bootstrap=40, seed=3)
    for key in ("overall", "pairwise"):
        assert dict(_numbers(report[key])) == pytest.approx(dict(_numbers(other[key])), abs=1e-9)
    by_code = {entry["code"]: entry for entry in other["per_code"]}
    for entry in report["per_code"]:
        twin = by_code[mapping[entry["code"]]]
        assert dict(_numbers({k: v for k, v in entry.items() if k != "code"})) == pytest.approx(
            dict(_numbers({k: v for k, v in twin.items() if k != "code"})), abs=1e-9
        )


def _intervals(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_ci95") and value is not None:
                yield key[: -len("_ci95")], node[key[: -len("_ci95")]], value
            else:
                yield from _intervals(value)
    elif isinstance(node, list):
        for value in node:
            yield from _intervals(value)


@PROPERTY
@given(rows=st.one_of(single_label_tables, multi_label_tables))
def test_intervals_contain_the_point_estimate(rows):
    report = run(rows, bootstrap=200, seed=1)
    checked = 0
    for name, value, (low, high) in _intervals(report):
        assert low <= high
        if name in ("krippendorff_alpha", "fleiss_kappa", "gwet_ac1", "percent_agreement", "cohen_kappa", "prevalence"):
            assert low - 1e-9 <= value <= high + 1e-9, (name, value, low, high)
            checked += 1
    assert checked


def test_bootstrap_is_reproducible_with_its_seed():
    rows = random_rows(np.random.default_rng(5), 40, ["a", "b", "c"], 3, 0.1, multi=True)
    first, again, other = (run(rows, bootstrap=100, seed=s) for s in (11, 11, 12))
    assert json.dumps(first) == json.dumps(again)
    assert first["overall"]["krippendorff_alpha_ci95"] != other["overall"]["krippendorff_alpha_ci95"]
    assert first["overall"]["krippendorff_alpha"] == other["overall"]["krippendorff_alpha"]


# ------------------------------------------------------------ missing, none, undefined


def test_missing_is_not_none():
    # b did not code u1 (no row): u1 is missing for b, so b and a agree on every unit both coded
    rows = [("u0", "a", "x"), ("u0", "b", "x"), ("u1", "a", "x"), ("u2", "a", ""), ("u2", "b", "")]
    rows = [dict(zip(("unit_id", "coder", "code"), r)) for r in rows]
    report = run(rows)
    assert report["pairwise"][0]["units"] == 2
    assert report["pairwise"][0]["percent_agreement"] == 1.0
    # with an empty-code row for b on u1, b saw it and applied none: now they disagree there
    report = run(rows + [{"unit_id": "u1", "coder": "b", "code": ""}])
    assert report["pairwise"][0]["units"] == 3
    assert report["pairwise"][0]["percent_agreement"] == pytest.approx(2 / 3)


def test_a_code_that_never_occurs_is_defined_and_explained(tmp_path, small_codebook):
    rows = [{"unit_id": f"u{u}", "coder": c, "code": "funding" if u % 2 else ""} for u in range(6) for c in "ab"]
    report = measure_agreement(
        codings_from_rows(rows, "test", load_codebook(small_codebook)),
        codebook=load_codebook(small_codebook),
        bootstrap=30,
    ).model_dump(mode="json")
    trust = next(c for c in report["per_code"] if c["code"] == "trust")
    assert trust["name"] == "Trust between colleagues"
    assert trust["prevalence"] == 0.0
    assert trust["fleiss_kappa"] is None and trust["fleiss_kappa_ci95"] is None
    assert "never applied" in trust["fleiss_kappa_undefined"]
    assert trust["krippendorff_alpha"] is None and "never applied" in trust["krippendorff_alpha_undefined"]
    assert trust["gwet_ac1"] == 1.0 and trust["percent_agreement"] == 1.0  # the kappa paradox's other face
    assert trust["pairwise"][0]["cohen_kappa"] is None
    json.dumps(report, allow_nan=False)


def test_all_coders_identical_on_one_value_is_undefined_not_nan():
    rows = [{"unit_id": f"u{u}", "coder": c, "code": "x"} for u in range(5) for c in "abc"]
    report = run(rows, bootstrap=20)
    overall = report["overall"]
    assert overall["percent_agreement"] == 1.0
    for name in ("krippendorff_alpha", "fleiss_kappa"):
        assert overall[name] is None and overall[f"{name}_ci95"] is None
        assert "same" in overall[f"{name}_undefined"]
    assert overall["gwet_ac1"] is None and "one category" in overall["gwet_ac1_undefined"]
    assert all(p["cohen_kappa"] is None and p["cohen_kappa_undefined"] for p in report["pairwise"])
    text = json.dumps(report, allow_nan=False)
    assert "NaN" not in text


# Maple's EssayTools[QuadraticWeightedKappa] help page, examples 1 and 2: two graders' essay scores,
# quadratic weights over the score range 1-10 (the whole scale, unobserved scores included): 0.758620689655172
# and 0.438095238095238. A codebook gives qcode the whole scale; without one the scale is the scores seen.
ESSAYS = [9, 7, 8, 7, 6, 8, 3, 5, 10]
ESSAY_GRADERS = {0.758620689655172: [8, 8, 6, 6, 7, 6, 1, 4, 8], 0.438095238095238: [3, 5, 6, 6, 7, 6, 1, 4, 8]}


@pytest.mark.parametrize("expected", sorted(ESSAY_GRADERS))
def test_quadratic_weighted_kappa_maple_essay_example(tmp_path, expected):
    codes = "\n".join(
        f"  - {{id: '{i}', name: Score {i}, definition: Score {i}., attributes: {{level: {i}}}}}" for i in range(1, 11)
    )
    path = tmp_path / "scores.yaml"
    write(path, f"name: Scores\ndescription: Essay scores.\nmeasurement: ordinal\ncodes:\n{codes}\n")
    scores = load_codebook(path)
    rows = wide({"grader:1": ESSAYS, "grader:2": ESSAY_GRADERS[expected]})
    report = measure_agreement(codings_from_rows(rows, "t", scores), codebook=scores, bootstrap=0).model_dump(
        mode="json"
    )
    (pair,) = report["pairwise"]
    assert pair["cohen_kappa_quadratic"] == pytest.approx(expected, abs=1e-12)
    # the scale's unobserved scores change the weights of kappa, not Krippendorff's ordinal alpha
    seen_only = run(rows, level="ordinal")["pairwise"][0]
    assert seen_only["krippendorff_alpha"] == pytest.approx(pair["krippendorff_alpha"], abs=1e-12)


def test_ordinal_order_comes_from_the_codebook(tmp_path):
    codebook = (
        write(
            tmp_path / "stages.yaml",
            """\
name: Stages
description: Ordered stages.
measurement: ordinal
codes:
  - {id: low, name: Low, definition: Low stage., attributes: {level: 0}}
  - {id: mid, name: Mid, definition: Middle stage., attributes: {level: 1}}
  - {id: high, name: High, definition: High stage., attributes: {level: 2}}
""",
        )
        or tmp_path / "stages.yaml"
    )
    loaded = load_codebook(codebook)
    letters = {1: "low", 2: "mid", 3: "high", 4: "high", 5: "high"}
    numeric = {c: [None if v is None else min(v, 3) for v in values] for c, values in KRIPPENDORFF_2011.items()}
    named = {c: [None if v is None else letters[v] for v in values] for c, values in numeric.items()}
    by_number = run(wide(numeric), level="ordinal")
    by_codebook = measure_agreement(
        codings_from_rows(wide(named), "t", loaded), codebook=loaded, bootstrap=0
    ).model_dump(mode="json")
    assert by_codebook["level"] == "ordinal"  # the default for an ordinal codebook
    assert by_codebook["overall"]["krippendorff_alpha"] == pytest.approx(by_number["overall"]["krippendorff_alpha"])
    with pytest.raises(AgreementError, match="ordinal level needs"):
        run(wide(named), level="ordinal")


# ------------------------------------------------------------ bad input


def test_bad_tables_get_clear_messages(tmp_path):
    with pytest.raises(AgreementError, match=r"cols\.csv: missing column\(s\) code"):
        read_codings(write(tmp_path / "cols.csv", "unit_id,coder\nu1,a\n") or tmp_path / "cols.csv")
    dup = table(tmp_path / "dup.csv", [("u1", "a", "x"), ("u1", "b", "x"), ("u1", "a", "x")])
    with pytest.raises(AgreementError, match=r"dup\.csv: line 4 repeats line 2: unit 'u1', coder 'a', code 'x'"):
        read_codings(dup)
    one = table(tmp_path / "one.csv", [("u1", "a", "x"), ("u2", "a", "")])
    with pytest.raises(AgreementError, match=r"one\.csv: only one coder \('a'\)"):
        read_codings(one)
    path = tmp_path / "latin.csv"
    path.write_bytes("unit_id,coder,code\nu1,a,caf\xe9\nu1,b,x\n".encode("cp1252"))
    assert "café" in read_codings(path).codes  # Windows-1252, detected as every file qcode reads is
    clash = table(tmp_path / "clash.csv", [("u1", "a", "x"), ("u1", "a", ""), ("u1", "b", "x")])
    with pytest.raises(AgreementError, match="applied no code"):
        read_codings(clash)
    apart = table(tmp_path / "apart.csv", [("u1", "a", "x"), ("u2", "b", "x")])
    with pytest.raises(AgreementError, match="no unit was coded by two or more coders"):
        measure_agreement(read_codings(apart))
    with pytest.raises(FileError, match="nowhere.csv: no such file"):
        read_codings(tmp_path / "nowhere.csv")


def test_level_and_model_coder_mistakes(tmp_path):
    multi = [{"unit_id": "u1", "coder": c, "code": k} for c in "ab" for k in ("1", "2")]
    multi += [{"unit_id": "u2", "coder": c, "code": "1"} for c in "ab"]
    with pytest.raises(AgreementError, match="--level interval needs single-label data"):
        run(multi, level="interval")
    with pytest.raises(AgreementError, match="no coder named 'gpt'"):
        run(multi, model_coders=["gpt"])
    assert run(multi, model_coders=["a"])["coders"][0]["role"] == "model"


# ------------------------------------------------------------ the command


def test_cli_json_and_tables(tmp_path):
    path = table(tmp_path / "k.csv", [(r["unit_id"], r["coder"], r["code"]) for r in wide(KRIPPENDORFF_2011)])
    done = qcode("agreement", str(path), "--json", "--level", "interval", "--bootstrap", "100", "--seed", "4")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert set(report) >= {"units", "coders", "single_label", "overall", "pairwise", "per_code"}
    assert round(report["overall"]["krippendorff_alpha"], 3) == 0.849
    low, high = report["overall"]["krippendorff_alpha_ci95"]
    assert low <= 0.849 <= high
    assert report["bootstrap"] == {"replicates": 100, "seed": 4, "method": "percentile, units resampled"}
    done = qcode("agreement", str(path), env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    assert "Krippendorff's alpha" in done.stdout and "0.743 [" in done.stdout and "Per code" in done.stdout


def test_cli_bad_input_exits_1_and_bad_arguments_2(tmp_path):
    bad = write(tmp_path / "bad.csv", "unit,coder,code\n") or tmp_path / "bad.csv"
    done = qcode("agreement", str(bad))
    assert done.exit_code == 1 and "missing column(s) unit_id" in done.output
    done = qcode("agreement", str(bad), "--json")
    assert done.exit_code == 1 and "missing column" in json.loads(done.stdout.splitlines()[0])["error"]
    done = qcode("agreement", str(bad), "--db", "x.db", "--json")
    assert done.exit_code == 2 and "not both" in json.loads(done.stdout.splitlines()[0])["error"]
    done = qcode("agreement")
    assert done.exit_code == 2 and "either a CODINGS.csv" in done.output
    good = table(tmp_path / "g.csv", [("u1", "a", "x"), ("u1", "b", "y")])
    done = qcode("agreement", str(good), "--level", "fuzzy")
    assert done.exit_code == 2 and "unknown level 'fuzzy'" in done.output


def test_cli_reads_model_and_blind_codes_from_the_store(tmp_path, db_url, monkeypatch):
    import pipeline.exchange.exports
    import pipeline.measure.agreement
    from pipeline.store import Store

    Store(db_url)  # an existing, empty store for --db
    model = [
        {"unit_id": f"chunk{i}", "coder": "offline:all-MiniLM-L6-v2", "code": "x" if i % 2 else ""} for i in range(10)
    ]
    blind = [
        {"unit_id": f"chunk{i}", "coder": f"reviewer:{name}", "code": "x" if i % 2 else ""}
        for i in range(4)
        for name in ("ana", "ben")
    ]
    monkeypatch.setattr(pipeline.measure.agreement, "resolve_run", lambda store, run_id: run_id)
    monkeypatch.setattr(pipeline.measure.agreement, "coding_rows", lambda store, run_id=None: iter(model))
    monkeypatch.setattr(pipeline.measure.agreement, "blind_rows", lambda store, sample=None, run_id=None: iter(blind))
    done = qcode("agreement", "--db", db_url, "--run", "r1", "--json", "--bootstrap", "0")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["units"] == 4  # only the passages reviewers coded blind
    assert report["models"][0]["coder"] == "offline:all-MiniLM-L6-v2"
    assert report["overall"]["percent_agreement"] == 1.0
    monkeypatch.setattr(pipeline.measure.agreement, "blind_rows", lambda store, sample=None, run_id=None: iter([]))
    done = qcode("agreement", "--db", db_url, "--run", "r1")
    assert done.exit_code == 1 and "no human codes yet" in done.output


def test_a_tie_on_one_code_leaves_only_that_code_undecided():
    """Two reviewers who agree on code a but split on code b in u1: u1 still counts for a, not for b.
    By hand: a's consensus is present in u1 and u2 (support 2) and the model has a only in u2
    (recall 1/2, precision 1, agreement on 3 of 4 units); b's consensus is decided in u2, u3, u4 only
    (support 1), where the model agrees."""
    rows = []
    for unit, codes in {
        "u1": (["a", "b"], ["a"], ["b"]),
        "u2": (["a"], ["a"], ["a"]),
        "u3": ([], [], []),
        "u4": (["b"], ["b"], ["b"]),
    }.items():
        for coder, applied in zip(("reviewer:ana", "reviewer:ben", "offline:m"), codes):
            rows += [{"unit_id": unit, "coder": coder, "code": c} for c in applied or [""]]
    report = run(rows)
    (model,) = report["models"]
    a, b = model["per_code"]
    assert (a["code"], a["support"], a["recall"], a["precision"]) == ("a", 2, 0.5, 1.0)
    assert (b["code"], b["support"], b["recall"], b["precision"]) == ("b", 1, 1.0, 1.0)
    pair = next(p for p in report["per_code"][0]["pairwise"] if p["kind"] == "model-consensus")
    assert pair["percent_agreement"] == pytest.approx(0.75)
    # whole code sets still need every code decided: u1 is left out of those
    assert report["consensus"]["units"] == 3 and report["consensus"]["undecided_units"] == 1


# ------------------------------------------------------------ the typed result


def test_a_statistic_is_a_number_or_undefined_with_a_reason():
    defined = Statistic.estimate(np.float64(0.5), np.array([0.25, np.nan]), "unused")
    assert (defined.value, defined.interval, defined.reason) == (0.5, None, None)  # a NaN bound: no interval
    undefined = Statistic.estimate(np.nan, np.array([0.1, 0.2]), "never applied")
    assert (undefined.value, undefined.interval, undefined.reason) == (None, None, "never applied")
    assert undefined.flat("kappa") == {"kappa": None, "kappa_ci95": None, "kappa_undefined": "never applied"}
    assert Statistic.estimate(0.7, (0.6, 0.8)).flat("f1") == {"f1": 0.7, "f1_ci95": [0.6, 0.8]}
    assert Statistic(value=0.5).model_dump() == {"value": 0.5, "ci": None, "undefined": None}  # as the report's page
    for bad in ({"value": math.inf}, {"value": None, "interval": (0.1, 0.2)}, {"value": 0.2, "reason": "why"}):
        with pytest.raises(ValueError):
            Statistic(**bad)


def test_the_typed_result_reads_as_the_json_says():
    rows = [{"unit_id": f"u{u}", "coder": c, "code": "funding" if u % 2 else ""} for u in range(6) for c in "ab"]
    rows += [{"unit_id": f"u{u}", "coder": "coder:m", "code": "funding" if u < 3 else ""} for u in range(6)]
    result = measure_agreement(codings_from_rows(rows, "t"), bootstrap=20)
    assert result.names("model") == ["coder:m"] and result.names("human") == ["a", "b"]
    assert result.overall_humans is not None and result.consensus is not None and result.models is not None
    (consensus,) = result.against_consensus()
    assert consensus.coders == ("coder:m", "consensus") and consensus.cohen_kappa.interval is not None
    assert consensus.cohen_kappa_linear is None  # not reported at the nominal level: no key at all
    data = result.model_dump(mode="json")
    assert data == measure_agreement(codings_from_rows(rows, "t"), bootstrap=20).model_dump(mode="json")
    pair = data["pairwise"][-1]
    assert "cohen_kappa_linear" not in pair and pair["cohen_kappa_ci95"] == list(consensus.cohen_kappa.interval)
    # without a model: no consensus, no models, no humans' own figures, and no keys for them
    humans_only = measure_agreement(codings_from_rows(rows[:12], "t"), bootstrap=0)
    assert humans_only.overall_humans is None and humans_only.consensus is None and humans_only.models is None
    assert not {"overall_humans", "consensus", "models"} & set(humans_only.model_dump(mode="json"))
