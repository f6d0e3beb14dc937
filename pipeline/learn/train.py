"""Training the learned coder, and its model card: how far each code can be trusted.

`train_model` fits `pipeline.coders.learned.LearnedModel` on a training set and measures it the
way a team would: cross-validation grouped by transcript (a transcript is never in its own test
fold), each code's out-of-fold codes compared with the people's (Cohen's kappa with a 95% interval
from a bootstrap over transcripts, F1, precision, recall). The out-of-fold probabilities also
calibrate the final model. A code with fewer than MIN_POSITIVES units where it stands, or with
no unit where it does not, is not proposed: the card lists it with the reason.

The model is stored with a version, a hash of its training data, features and parameters: the
same training set trains the same model, so `qcode train` on codes it has seen returns the stored
card at once and stores nothing new.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from pipeline.chunk import Units
from pipeline.codebook import Codebook
from pipeline.coders.learned import (
    DENSE_C,
    EMBEDDING_SIZE,
    MIX,
    NGRAM_C,
    TOL,
    Calibration,
    Exemplars,
    Features,
    LearnedModel,
    features,
    knows,
    subset,
)
from pipeline.coders.offline import MODEL_NAME
from pipeline.errors import QcodeError, SuiteError
from pipeline.ingest import CsvOptions
from pipeline.ingest.gold import read_gold, read_transcripts
from pipeline.learn.examples import Example, from_spans, from_store
from pipeline.store import LearnedModelRecord, Store, now

MIN_POSITIVES = 10  # units where a code stands, at least, for it to be learned
FOLDS = 5
FOLD_JOBS = 2  # folds fitted at once: the machines qcode runs on have two cores or more
EXEMPLARS = 200  # passages kept per code to point at in justifications
BOOTSTRAP = 1000
SEED = 0
FEATURES_VERSION = "learned-features-2"  # change with the features of pipeline/coders/learned.py


class LearnError(QcodeError):
    """Nothing useful can be learned from the codes given."""


class CrossValidation(BaseModel):
    cohen_kappa: float | None
    cohen_kappa_ci95: list[float] | None
    f1: float | None
    precision: float | None
    recall: float | None


class CodeCard(BaseModel):
    code: str
    positives: int
    cv: CrossValidation


class SkippedCode(BaseModel):
    code: str
    positives: int
    reason: str


class ModelCard(BaseModel):
    """What `qcode train` reports (its --json object)."""

    model: str
    units: int
    transcripts: int
    single_label: bool
    people: list[str]
    sources: dict[str, int]  # units from each source of human codes
    codes: list[CodeCard]
    # single-label: Cohen's kappa over every unit's one code (or none), out of fold
    overall: CrossValidation | None = None
    skipped: list[SkippedCode]
    notes: list[str] = Field(default_factory=list)
    stored: bool = True  # False: the store had this very model already


def speaker_groups(codebook: Codebook, codes: Sequence[str]) -> dict[str, list[str]]:
    """Codes by the speaker they apply to, when codes name one (`attributes.speaker`); {"": codes}
    otherwise. A code naming no speaker applies to every group."""
    named = {c.id: str(c.attributes["speaker"]).strip().lower() for c in codebook.leaves if "speaker" in c.attributes}
    if not any(c in named for c in codes):
        return {"": list(codes)}
    groups: dict[str, list[str]] = defaultdict(list)
    for speaker in dict.fromkeys(named[c] for c in codes if c in named):
        groups[speaker] = [c for c in codes if named.get(c, speaker) == speaker]
    return dict(groups)


def train_model(store: Store, codebook: Codebook, examples: Sequence[Example], notes: Sequence[str] = ()) -> ModelCard:
    """Fit, cross-validate, calibrate and store a learned model; its card."""
    if not examples:
        raise LearnError(
            f"no human codes for the codebook '{codebook.name}' [{codebook.version}]: import a coded project "
            "(qcode import), review suggestions, code blind, or give --gold CODES.csv --transcripts PATH"
        )
    people = sorted({p for e in examples for p in e.coders})
    applicable = [c.id for c in codebook.leaves]
    single = codebook.measurement == "ordinal" or not any(len(e.codes) > 1 for e in examples)
    positives = {c: sum(1 for e in examples if c in e.codes) for c in applicable}
    negatives = {c: sum(1 for e in examples if c not in e.codes and knows(e.known, c)) for c in applicable}
    skipped = []
    for code in applicable:
        if positives[code] < MIN_POSITIVES:
            reason = f"{positives[code]} unit(s) with the code: it takes {MIN_POSITIVES} to learn one"
            skipped.append(SkippedCode(code=code, positives=positives[code], reason=reason))
        elif negatives[code] == 0:
            skipped.append(
                SkippedCode(code=code, positives=positives[code], reason="every unit has it: nothing to tell it from")
            )
    learned = [c for c in applicable if c not in {s.code for s in skipped}]
    if not learned:
        raise LearnError(
            f"no code of '{codebook.name}' has {MIN_POSITIVES} units where people applied it and units where they "
            f"did not ({'; '.join(f'{s.code}: {s.reason}' for s in skipped)}): code more, then train again"
        )
    speaker_codes = speaker_groups(codebook, learned)
    version = _version(examples, learned, single, speaker_codes)
    with store.session() as s:
        known_before = s.get(LearnedModelRecord, version)
        if known_before is not None:  # the same codes trained this model already: nothing to do
            return ModelCard.model_validate({**known_before.card, "stored": False})
    found = features(store, [e.unit for e in examples])
    labels = [e.codes & set(learned) for e in examples]
    known = [e.known for e in examples]
    groups = [e.unit.transcript_id for e in examples]

    def fresh() -> LearnedModel:
        return LearnedModel(codes=learned, single_label=single, speaker_codes=speaker_codes)

    raw = _out_of_fold(fresh, found, labels, known, groups)
    model = fresh().fit(found, labels, known)
    for k, code in enumerate(learned):
        mask = np.array([knows(k_, code) for k_ in known])
        truth = np.array([code in y for y in labels])
        model.calibration[code] = Calibration.fit(raw[mask, k], truth[mask])
        if not single:
            model.thresholds[code] = prevalence_threshold(raw[mask, k], float(truth[mask].mean()))
    decided = model.decide(raw)
    cards = [
        CodeCard(code=code, positives=positives[code], cv=_agreement(code, decided, labels, known, groups))
        for code in learned
    ]
    card = ModelCard(
        model=version,
        units=len(examples),
        transcripts=len(set(groups)),
        single_label=single,
        people=people,
        sources=dict(sorted(Counter(e.origin for e in examples).items())),
        codes=cards,
        overall=_overall(decided, labels, groups, learned) if single else None,
        skipped=skipped,
        notes=list(notes)
        + ([f"one person's codes only ({people[0]}): the card is agreement with them"] if len(people) == 1 else []),
    )
    with store.session() as s:
        s.add(
            LearnedModelRecord(
                version=version,
                codebook_version=codebook.version,
                trained_at=now(),
                parameters=_parameters(single, speaker_codes),
                card=card.model_dump(mode="json"),
                model=pickle.dumps(
                    {"model": model, "exemplars": _exemplars(examples, labels, found, learned)},
                    protocol=pickle.HIGHEST_PROTOCOL,
                ),
            )
        )
    return card


def prevalence_threshold(raw: np.ndarray, rate: float) -> float:
    """The probability above which a code is proposed for about as many units, out of fold, as
    people gave it to: a rare code is not drowned by "no" (at one half it would never be proposed)."""
    if len(raw) == 0 or rate <= 0:
        return 0.5
    # above nothing: a unit the model gives no chance at all (a speaker the code is not for) never gets it
    return float(min(0.5, max(np.quantile(raw, 1 - rate), 1e-6)))


def _exemplars(examples: Sequence[Example], labels: list[set[str]], found: Features, codes: list[str]) -> Exemplars:
    """Up to EXEMPLARS passages per code that people gave it, for the coder's justifications."""
    kept = Exemplars()
    for code in codes:
        rows = [i for i, y in enumerate(labels) if code in y][:EXEMPLARS]
        kept.texts[code] = [examples[i].unit.text for i in rows]
        kept.sources[code] = [f"{examples[i].source}, {', '.join(examples[i].coders)}" for i in rows]
        kept.vectors[code] = found.dense[rows, :EMBEDDING_SIZE].astype("<f4")
    return kept


def _out_of_fold(
    fresh: Callable[[], LearnedModel],
    found: Features,
    labels: list[set[str]],
    known: list[set[str] | None],
    groups: list[str],
) -> np.ndarray:
    """Raw probabilities of every unit from a model that never saw its transcript; the folds are
    fitted FOLD_JOBS at a time, in processes of their own."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import GroupKFold

    transcripts = len(set(groups))
    raw = np.zeros((len(labels), len(fresh().codes)))
    if transcripts < 2:
        return raw
    folds = list(GroupKFold(n_splits=min(FOLDS, transcripts)).split(found.dense, groups=groups))
    fitted = Parallel(n_jobs=FOLD_JOBS)(
        delayed(_fold)(
            fresh(), subset(found, train), [labels[i] for i in train], [known[i] for i in train], subset(found, test)
        )
        for train, test in folds
    )
    for (_, test), probabilities in zip(folds, fitted):
        raw[test] = probabilities
    return raw


def _fold(
    model: LearnedModel, train: Features, labels: list[set[str]], known: list[set[str] | None], test: Features
) -> np.ndarray:
    return model.fit(train, labels, known).raw(test)


def _agreement(
    code: str, decided: list[set[str]], labels: list[set[str]], known: list[set[str] | None], groups: list[str]
) -> CrossValidation:
    """Cohen's kappa, F1, precision and recall of one code's out-of-fold codes against the people's,
    on the units where people said whether it applies; the kappa's 95% interval from a bootstrap
    over transcripts."""
    rows = [i for i in range(len(labels)) if knows(known[i], code)]
    # per transcript, the model's yes/no by the people's yes/no: both, the model only, the people only, neither
    tables = _tables(
        [(0 if code in decided[i] else 1, 0 if code in labels[i] else 1) for i in rows], [groups[i] for i in rows], 2
    )
    kappa, interval = _kappa_of(tables, 2)
    tp, fp, fn, _ = tables.sum(axis=0)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return CrossValidation(
        cohen_kappa=kappa,
        cohen_kappa_ci95=interval,
        f1=None if f1 is None else round(float(f1), 4),
        precision=None if precision is None else round(float(precision), 4),
        recall=None if recall is None else round(float(recall), 4),
    )


def _overall(decided: list[set[str]], labels: list[set[str]], groups: list[str], codes: list[str]) -> CrossValidation:
    """Cohen's kappa of the out-of-fold codes against the people's over all the units, each unit's
    one code or none a category; its 95% interval from a bootstrap over transcripts."""
    where = {c: k for k, c in enumerate(["", *codes])}

    def one(found: set[str]) -> int:
        return where[next((c for c in codes if c in found), "")]

    tables = _tables([(one(got), one(truth)) for got, truth in zip(decided, labels)], groups, len(where))
    kappa, interval = _kappa_of(tables, len(where))
    return CrossValidation(cohen_kappa=kappa, cohen_kappa_ci95=interval, f1=None, precision=None, recall=None)


def _tables(pairs: Sequence[tuple[int, int]], groups: Sequence[str], k: int) -> np.ndarray:
    """One k-by-k table (the model's category by the people's, flattened) per transcript."""
    index = {g: n for n, g in enumerate(sorted(set(groups)))}
    tables = np.zeros((len(index), k * k))
    for (model, people), group in zip(pairs, groups):
        tables[index[group], model * k + people] += 1
    return tables


def _kappa_of(tables: np.ndarray, k: int) -> tuple[float | None, list[float] | None]:
    """Cohen's kappa of the transcripts' tables summed, and its 95% interval from BOOTSTRAP draws of
    transcripts with replacement (the replicates are one matrix product)."""
    point = _kappa(tables.sum(axis=0), k)
    if point is None:
        return None, None
    n = len(tables)
    draws = np.random.default_rng(SEED).multinomial(n, np.full(n, 1 / n), size=BOOTSTRAP)
    values = [v for v in (_kappa(t, k) for t in draws @ tables) if v is not None]
    if not values:
        return round(point, 4), None
    return round(point, 4), [round(float(np.percentile(values, 2.5)), 4), round(float(np.percentile(values, 97.5)), 4)]


def _kappa(flat: np.ndarray, k: int) -> float | None:
    table = flat.reshape(k, k)
    n = float(table.sum())
    if n == 0:
        return None
    chance = float((table.sum(axis=0) * table.sum(axis=1)).sum()) / n**2
    return None if chance >= 1 else (float(np.trace(table)) / n - chance) / (1 - chance)


def _parameters(single: bool, speaker_codes: dict[str, list[str]]) -> dict[str, object]:
    return {
        "features": FEATURES_VERSION,
        "embedding_model": MODEL_NAME,
        "mix": MIX,
        "dense_c": DENSE_C,
        "ngram_c": NGRAM_C,
        "tol": TOL,
        "min_positives": MIN_POSITIVES,
        "folds": FOLDS,
        "single_label": single,
        "speaker_codes": speaker_codes,
    }


def _version(examples: Sequence[Example], codes: list[str], single: bool, speaker_codes: dict[str, list[str]]) -> str:
    """A hash of the training data, the features and the parameters."""
    digest = hashlib.sha256()
    digest.update(json.dumps([_parameters(single, speaker_codes), codes], sort_keys=True).encode())
    for e in examples:
        record = [
            e.unit.text,
            e.unit.before,
            sorted(e.codes),
            None if e.known is None else sorted(e.known),
            e.unit.transcript_id,
        ]
        digest.update(json.dumps(record).encode())
    return digest.hexdigest()[:16]


def train(
    store: Store,
    codebook: Codebook,
    units: Units,
    gold: Sequence[tuple[Path, Path]] = (),
    codebook_path: Path | None = None,
) -> ModelCard:
    """`qcode train`: every human code the store holds for the codebook, and the gold files given
    (each a codes file with the transcripts it is on), into a trained, stored model; its card."""
    found = from_store(store, codebook, units)
    for codes, transcripts in gold:
        try:
            read = read_transcripts(str(codes), transcripts, CsvOptions())
            spans = read_gold([codes], read, transcripts, codebook, codebook_path or codes, min_coders=1)
        except SuiteError as exc:
            raise LearnError(str(exc)) from None
        names = {t.id: t.source_name for t in spans.transcripts}
        found.examples += from_spans(
            spans.transcripts, spans.spans, spans.coverage, units, codebook.applicable_ids(), "gold", names
        )
    return train_model(store, codebook, found.examples, found.notes)
