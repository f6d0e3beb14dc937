"""Training the learned coder, and measuring it the way a team would use it.

`train_model` fits a `pipeline.coders.learned.LearnedModel` on the units a run would code
(`TrainingPlan.units`: the unit options of `qcode run`) and measures it on what people could have
coded only: a code for some speakers (`attributes.speaker`) is scored on their units alone, and a
unit no learned code applies to is not scored at all. The card comes from cross-validation grouped
by transcript or by a case attribute (`group_by`: a classroom, a site), so units of one group are
never in their own test fold; with `holdout`, a share of the groups is kept out of training
altogether and the stored model is scored on them too, beside the cross-validated figure.

Each learner (pipeline/learn/learners.py) is cross-validated; `auto` keeps the one with the higher
grouped cross-validated kappa. The out-of-fold probabilities calibrate the final model, and set a
multi-label code's threshold; where a figure depends on such a choice, the choice for a fold is
made from the other folds (cross-fitted), so no figure is scored on what chose it. A code with fewer
than MIN_POSITIVES units where it stands, or with no unit where it does not, is not proposed: the card
lists it with the reason.

The model is stored with a version, a hash of its training data, plan, features and parameters: the
same codes train the same model, so `qcode train` on codes it has seen returns the stored card at
once and stores nothing new.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.chunk import Chunk, Units
from pipeline.codebook import Codebook
from pipeline.coders.learned import (
    DENSE_C,
    EMBEDDING_SIZE,
    FEATURES_VERSION,
    MIX,
    NGRAM_C,
    TOL,
    Calibration,
    Exemplars,
    Features,
    LearnedModel,
    code_speakers,
    knows,
)
from pipeline.coders.offline import MODEL_NAME
from pipeline.errors import QcodeError, SuiteError
from pipeline.ingest import CsvOptions
from pipeline.ingest.gold import read_gold, read_transcripts
from pipeline.learn.card import (
    Agreement,
    CodeCard,
    Holdout,
    LearnerFigure,
    ModelCard,
    SkippedCode,
    apart,
    binary_agreement,
    category_agreement,
)
from pipeline.learn.examples import Example, from_spans, from_store
from pipeline.learn.finetune import FineTuned
from pipeline.learn.learners import Learner, Linear
from pipeline.store import LearnedModelRecord, Store, now

MIN_POSITIVES = 4  # units where a code stands, at least, for it to be learned
FOLDS = 5
EXEMPLARS = 200  # passages kept per code to point at in justifications
SEED = 0
HOLDOUT_DRAWS = 50  # draws of held-out groups tried for one that leaves every code positives on both sides

LearnerName = Literal["auto", "linear", "finetuned"]
LEARNERS: dict[str, type[Learner]] = {learner.name: learner for learner in (Linear, FineTuned)}


class LearnError(QcodeError):
    """Nothing useful can be learned from the codes given."""


class TrainingPlan(BaseModel):
    """How `qcode train` trains and measures: the units the runs will code, how units are grouped
    into folds, the share of groups held out, and the learner."""

    model_config = ConfigDict(frozen=True)

    units: Units = Field(default_factory=Units)
    group_by: str | None = None  # a case attribute; None: the transcript
    holdout: float | None = Field(default=None, gt=0, lt=1)
    learner: LearnerName = "auto"


def train_model(
    store: Store,
    codebook: Codebook,
    examples: Sequence[Example],
    plan: TrainingPlan | None = None,
    notes: Sequence[str] = (),
) -> ModelCard:
    """Fit, cross-validate, calibrate and store a learned model; its card."""
    plan = plan or TrainingPlan()
    if not examples:
        raise LearnError(
            f"no human codes for the codebook '{codebook.name}' [{codebook.version}]: import a coded project "
            "(qcode import), review suggestions, code blind, or give --gold CODES.csv --transcripts PATH"
        )
    notes = list(notes)
    applicable = [c.id for c in codebook.leaves]
    for_speakers = code_speakers(codebook, applicable)
    template = LearnedModel(codes=applicable, single_label=False, code_speakers=for_speakers)
    applies = np.array([[c in template.applicable(e.unit.coded_speakers) for c in applicable] for e in examples])
    misplaced = sum(1 for e, row in zip(examples, applies) for c in e.codes if not row[applicable.index(c)])
    if misplaced:
        notes.append(
            f"{misplaced} code(s) people gave to units of a speaker the code is not for (attributes.speaker) are "
            "left out"
        )
    groups, group_notes = fold_groups(examples, plan.group_by)
    notes += group_notes
    held = _held_out(examples, groups, applies, applicable, plan) if plan.holdout else set()
    training = [i for i, g in enumerate(groups) if g not in held]

    single = codebook.measurement == "ordinal" or not any(len(e.codes) > 1 for e in examples)
    positives = {
        c: sum(1 for i in training if c in examples[i].codes and applies[i, k]) for k, c in enumerate(applicable)
    }
    negatives = {
        c: sum(1 for i in training if c not in examples[i].codes and applies[i, k] and knows(examples[i].known, c))
        for k, c in enumerate(applicable)
    }
    spoken = sorted({str(s) for e in examples for s in e.unit.coded_speakers if s})
    unspoken = {c for k, c in enumerate(applicable) if c in for_speakers and not applies[:, k].any()}
    skipped = _skipped(codebook, applicable, positives, negatives, spoken, unspoken)
    learned = [c for c in applicable if c not in {s.code for s in skipped}]
    if not learned:
        raise LearnError(
            f"no code of '{codebook.name}' has {MIN_POSITIVES} units where people applied it and units where they "
            f"did not ({'; '.join(f'{s.code}: {s.reason}' for s in skipped)}): code more, then train again"
        )
    version = _version(examples, groups, learned, single, plan)
    with store.session() as s:
        known_before = s.get(LearnedModelRecord, version)
        if known_before is not None:  # the same codes trained this model already: nothing to do
            return ModelCard.model_validate({**known_before.card, "stored": False})

    def fresh() -> LearnedModel:
        return LearnedModel(codes=learned, single_label=single, code_speakers=code_speakers(codebook, learned))

    kept = [examples[i] for i in training]
    units = [e.unit for e in kept]
    labels = [e.codes & set(learned) for e in kept]
    known = [e.known for e in kept]
    kept_groups = [groups[i] for i in training]
    scored = applies[training][:, [applicable.index(c) for c in learned]] & np.array(
        [[knows(k, c) for c in learned] for k in known]
    )
    folds = _folds(kept_groups)
    if not folds:
        notes.append(f"one group only ({kept_groups[0]}): nothing to cross-validate on, so the card has no figures")
    learner, raw, tried = _choose_learner(plan, store, units, labels, known, scored, kept_groups, fresh, folds)
    model = learner.fit(store, units, labels, known, fresh)
    decided = _calibrate(model, raw, labels, scored, folds)
    cards = [
        CodeCard(
            code=code,
            positives=positives[code],
            units_scored=int(scored[:, k].sum()),
            threshold=_stated_threshold(model, code),
            cv=_code_agreement(code, decided, labels, scored[:, k], kept_groups),
        )
        for k, code in enumerate(learned)
    ]
    overall = _overall(decided, labels, scored, kept_groups, learned, known) if single else None
    holdout = None
    if held:
        holdout = _score_held_out(
            store,
            learner,
            model,
            [examples[i] for i in range(len(examples)) if groups[i] in held],
            held,
            plan,
            cards,
            overall,
        )
        if holdout.differs or any(c.differs for c in cards):
            which = [c.code for c in cards if c.differs] + (["all units"] if holdout.differs else [])
            notes.append(
                f"held-out and cross-validated kappas differ by more than their intervals allow ({', '.join(which)}): "
                "the held-out groups are not like the others, or the folds do not separate what they should "
                "(group by the attribute that units of one source share: --group-by)"
            )
    people = sorted({p for e in examples for p in e.coders})
    if len(people) == 1:
        notes.append(f"one person's codes only ({people[0]}): the card is agreement with them")
    card = ModelCard(
        model=version,
        learner=learner.name,
        learners=tried,
        unit=plan.units.unit,
        chunk_size=plan.units.size,
        overlap=plan.units.overlap,
        max_unit_chars=plan.units.max_chars,
        speakers={k: list(v) for k, v in plan.units.speakers.model_dump().items()},
        group_by=plan.group_by or "transcript",
        groups=len(set(kept_groups)),
        units=len(kept),
        transcripts=len({e.unit.transcript_id for e in kept}),
        single_label=single,
        people=people,
        sources=dict(sorted(Counter(e.origin for e in kept).items())),
        codes=cards,
        overall=overall,
        holdout=holdout,
        skipped=skipped,
        notes=notes,
    )
    with store.session() as s:
        s.add(
            LearnedModelRecord(
                version=version,
                codebook_version=codebook.version,
                trained_at=now(),
                parameters=_parameters(single, learner.name, plan),
                card=card.model_dump(mode="json"),
                model=pickle.dumps(
                    {
                        "model": model,
                        "exemplars": _exemplars(kept, labels, learner.features_of(store, units), learned),
                        "transcripts": sorted({e.text_sha256 for e in kept if e.text_sha256}),
                    },
                    protocol=pickle.HIGHEST_PROTOCOL,
                ),
            )
        )
    return card


def _choose_learner(
    plan: TrainingPlan,
    store: Store,
    units: Sequence[Chunk],
    labels: list[set[str]],
    known: list[set[str] | None],
    scored: np.ndarray,
    groups: Sequence[str],
    fresh: Callable[[], LearnedModel],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> tuple[Learner, np.ndarray, list[LearnerFigure]]:
    """The plan's learner, or under `auto` each learner cross-validated in the same folds and the one
    with the higher kappa (a tie: the first, the simpler); its out-of-fold probabilities; every
    learner's figure."""
    tried: list[tuple[Learner, np.ndarray, LearnerFigure]] = []
    for name in LEARNERS if plan.learner == "auto" else (plan.learner,):
        learner = LEARNERS[name]()
        began = time.perf_counter()
        raw = learner.out_of_fold(store, units, labels, known, fresh, folds) if folds else np.zeros(scored.shape)
        figure = _summary(fresh(), raw, labels, known, scored, groups, folds)
        seconds = round(time.perf_counter() - began, 1)
        tried.append((learner, raw, figure.model_copy(update={"learner": name, "seconds": seconds})))
    learner, raw, _ = max(tried, key=lambda t: -1.0 if t[2].cohen_kappa is None else t[2].cohen_kappa)
    return learner, raw, [figure for _, _, figure in tried]


def _code_agreement(
    code: str, decided: list[set[str]], labels: list[set[str]], scored: np.ndarray, groups: Sequence[str]
) -> Agreement:
    """One code's out-of-fold agreement on the units it is scored on."""
    rows = np.flatnonzero(scored).tolist()
    return binary_agreement(
        [code in decided[i] for i in rows], [code in labels[i] for i in rows], [groups[i] for i in rows]
    )


def fold_groups(examples: Sequence[Example], attribute: str | None) -> tuple[list[str], list[str]]:
    """Each unit's group for the folds (its transcript, or its transcript's value of a case
    attribute), and notes. A transcript without the attribute is a group of its own."""
    if attribute is None:
        # a transcript by its file's name, where that names one (a CSV's rows share theirs)
        ids_of: dict[str, set[str]] = {}
        for e in examples:
            ids_of.setdefault(e.source, set()).add(e.unit.transcript_id)
        return [
            e.source if len(ids_of[e.source]) == 1 else f"{e.source} [{e.unit.transcript_id}]" for e in examples
        ], []

    def value(e: Example) -> str | None:
        found = e.unit.metadata.get(attribute)
        if found is None:
            found = next((v for k, v in e.unit.metadata.items() if k.casefold() == attribute.casefold()), None)
        return found.strip() if found and found.strip() else None

    values = [value(e) for e in examples]
    if not any(values):
        present = sorted({k for e in examples for k in e.unit.metadata})
        raise LearnError(
            f"--group-by '{attribute}': no transcript has this case attribute (they have: "
            f"{', '.join(present) or 'none'}); give it in a manifest column or front matter"
        )
    missing = sorted({e.source for e, v in zip(examples, values) if v is None})
    notes = []
    if missing:
        notes.append(
            f"{len(missing)} transcript(s) have no '{attribute}', each a group of its own: {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "")
        )
    return [
        f"{attribute}={v}" if v is not None else f"transcript:{e.unit.transcript_id}" for e, v in zip(examples, values)
    ], notes


def _folds(groups: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Folds grouped by `groups`: a group is never in its own test fold."""
    from sklearn.model_selection import GroupKFold

    count = len(set(groups))
    if count < 2:
        return []
    rows = np.zeros(len(groups))
    return list(GroupKFold(n_splits=min(FOLDS, count)).split(rows, groups=groups))


def _held_out(
    examples: Sequence[Example], groups: Sequence[str], applies: np.ndarray, codes: list[str], plan: TrainingPlan
) -> set[str]:
    """The groups kept out of training: a seeded draw of `plan.holdout` of them that leaves every code
    with positive units on both sides, where some draw does."""
    names = sorted(set(groups))
    count = round((plan.holdout or 0) * len(names))
    if count < 1 or len(names) - count < 2:
        raise LearnError(
            f"--holdout {plan.holdout:g} of {len(names)} group(s) leaves "
            + ("none to hold out" if count < 1 else "fewer than 2 to train and cross-validate on")
            + ": give more groups (transcripts, or --group-by values) or another share"
        )
    positive_groups = {
        c: {groups[i] for i, e in enumerate(examples) if c in e.codes and applies[i, k]} for k, c in enumerate(codes)
    }
    positives = {
        c: sum(1 for i, e in enumerate(examples) if c in e.codes and applies[i, k]) for k, c in enumerate(codes)
    }
    wanted = [c for c in codes if positives[c] >= MIN_POSITIVES]  # the codes that would be learned
    for code in wanted:
        if len(positive_groups[code]) < 2:
            raise LearnError(
                f"--holdout {plan.holdout:g}: the code '{code}' has positive units in one group only "
                f"({next(iter(positive_groups[code]))}): held out or trained on, one side would have none; code "
                "more of it, or train without --holdout"
            )
    rng = np.random.default_rng(SEED)
    for _ in range(HOLDOUT_DRAWS):
        held = set(rng.permutation(names)[:count].tolist())
        if all(positive_groups[c] & held and positive_groups[c] - held for c in wanted):
            return held
    raise LearnError(
        f"--holdout {plan.holdout:g}: no draw of {count} of the {len(names)} groups leaves every code with positive "
        "units both in training and held out; hold out another share, or code more"
    )


def _skipped(
    codebook: Codebook,
    codes: list[str],
    positives: dict[str, int],
    negatives: dict[str, int],
    speakers: Sequence[str],
    unspoken: set[str],
) -> list[SkippedCode]:
    """The codes that cannot be learned, each with the reason (`unspoken`: codes for a speaker no unit has)."""
    skipped = []
    for code in codes:
        if code in unspoken:
            found = codebook.get(code)
            speaker = found.attributes.get("speaker") if found else None
            reason = (
                f"it is for the words of {speaker} (attributes.speaker), and no unit is theirs (the units' "
                f"speakers: {', '.join(speakers[:8]) or 'none'})"
            )
            skipped.append(SkippedCode(code=code, positives=0, reason=reason))
        elif positives[code] < MIN_POSITIVES:
            reason = f"{positives[code]} unit(s) with the code: it takes {MIN_POSITIVES} to learn one"
            skipped.append(SkippedCode(code=code, positives=positives[code], reason=reason))
        elif negatives[code] == 0:
            skipped.append(
                SkippedCode(code=code, positives=positives[code], reason="every unit has it: nothing to tell it from")
            )
    return skipped


def _summary(
    model: LearnedModel,
    raw: np.ndarray,
    labels: list[set[str]],
    known: Sequence[set[str] | None],
    scored: np.ndarray,
    groups: Sequence[str],
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> LearnerFigure:
    """One figure to choose a learner by: the single-label kappa over all units scored, or the mean of
    the codes' kappas (multi-label), out of fold."""
    decided = _cross_fitted(model, raw, labels, scored, folds)
    if model.single_label:
        found = _overall(decided, labels, scored, groups, model.codes, known)
        return LearnerFigure(learner="", cohen_kappa=found.cohen_kappa, cohen_kappa_ci95=found.cohen_kappa_ci95)
    each = [_code_agreement(code, decided, labels, scored[:, k], groups) for k, code in enumerate(model.codes)]
    kappas = [found.cohen_kappa for found in each if found.cohen_kappa is not None]
    return LearnerFigure(learner="", cohen_kappa=round(float(np.mean(kappas)), 4) if kappas else None)


def _cross_fitted(
    model: LearnedModel,
    raw: np.ndarray,
    labels: list[set[str]],
    scored: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> list[set[str]]:
    """The out-of-fold codes: each fold's units decided with thresholds set on the other folds."""
    if model.single_label:
        return model.decide(raw)
    decided: list[set[str]] = [set() for _ in labels]
    for _, test in folds:
        others = np.ones(len(labels), dtype=bool)
        others[test] = False
        judge = LearnedModel(codes=model.codes, single_label=False, code_speakers=model.code_speakers)
        judge.thresholds = _thresholds(model.codes, raw, labels, scored, others)
        for i, codes in zip(test, judge.decide(raw[test])):
            decided[i] = codes
    return decided


def _thresholds(
    codes: list[str], raw: np.ndarray, labels: list[set[str]], scored: np.ndarray, rows: np.ndarray
) -> dict[str, float]:
    thresholds = {}
    for k, code in enumerate(codes):
        mask = scored[:, k] & rows
        truth = np.array([code in labels[i] for i in np.flatnonzero(mask)], dtype=bool)
        thresholds[code] = best_threshold(raw[mask, k], truth)
    return thresholds


def _calibrate(
    model: LearnedModel,
    raw: np.ndarray,
    labels: list[set[str]],
    scored: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
) -> list[set[str]]:
    """Fit the final model's calibration and thresholds on the out-of-fold probabilities; the out-of-fold
    codes, cross-fitted."""
    for k, code in enumerate(model.codes):
        mask = scored[:, k]
        truth = np.array([code in labels[i] for i in np.flatnonzero(mask)])
        model.calibration[code] = Calibration.fit(raw[mask, k], truth)
    if not model.single_label:
        model.thresholds = _thresholds(model.codes, raw, labels, scored, np.ones(len(labels), dtype=bool))
    return _cross_fitted(model, raw, labels, scored, folds)


def best_threshold(raw: np.ndarray, truth: np.ndarray) -> float:
    """The probability at or above which proposing a code agreed best with the people (Cohen's
    kappa) on these units, out of fold: a rare code is proposed below one half where that agrees
    better. Among equal kappas the highest such probability (fewer proposals); one half when people
    never gave it, or gave it everywhere."""
    if len(raw) == 0 or not truth.any() or truth.all():
        return 0.5
    order = np.argsort(-raw, kind="stable")
    ranked, hits = raw[order], truth[order].astype(float)
    n, positives = float(len(raw)), float(truth.sum())
    # proposing the top j units, for each j where the next unit's probability is lower
    last = np.flatnonzero(np.append(ranked[1:] < ranked[:-1], True))
    proposed = last + 1.0
    tp = np.cumsum(hits)[last]
    agreed = (tp + (n - proposed - (positives - tp))) / n
    chance = (proposed * positives + (n - proposed) * (n - positives)) / n**2
    kappa = np.where(chance < 1, (agreed - chance) / np.maximum(1 - chance, 1e-12), 0.0)
    kappa[ranked[last] <= 0] = -np.inf  # a unit the model gives no chance at all never gets it
    best = int(np.argmax(kappa))
    return float(ranked[last][best]) if np.isfinite(kappa[best]) else 0.5


def _stated_threshold(model: LearnedModel, code: str) -> float | None:
    """A multi-label code's threshold as a confidence (calibrated), as reviewers see it."""
    if model.single_label or code not in model.thresholds:
        return None
    return round(float(model.calibrated_one(code, model.thresholds[code])), 4)


def _overall(
    decided: list[set[str]],
    labels: list[set[str]],
    scored: np.ndarray,
    groups: Sequence[str],
    codes: list[str],
    known: Sequence[set[str] | None],
) -> Agreement:
    """Cohen's kappa of the codes against the people's over the units scored (some code applies, and
    people said all of them), each unit's one code or none a category."""
    where = {c: k for k, c in enumerate(["", *codes])}

    def one(found: set[str]) -> int:
        return where[next((c for c in codes if c in found), "")]

    rows = [i for i in range(len(labels)) if scored[i].any() and known[i] is None]
    return category_agreement(
        [one(decided[i]) for i in rows], [one(labels[i]) for i in rows], [groups[i] for i in rows], len(where)
    )


def _score_held_out(
    store: Store,
    learner: Learner,
    model: LearnedModel,
    examples: Sequence[Example],
    held: set[str],
    plan: TrainingPlan,
    cards: list[CodeCard],
    overall: Agreement | None,
) -> Holdout:
    """The stored model on the held-out groups: each code's agreement beside its cross-validated one."""
    units = [e.unit for e in examples]
    found = model.features(store, units)
    decided = model.decide(model.raw(found))
    labels = [e.codes & set(model.codes) for e in examples]
    names = fold_groups(examples, plan.group_by)[0]
    scored = np.array(
        [
            [c in model.applicable(u.coded_speakers) and knows(e.known, c) for c in model.codes]
            for e, u in zip(examples, units)
        ]
    )
    for k, card in enumerate(cards):
        card.holdout = _code_agreement(card.code, decided, labels, scored[:, k], names)
        card.differs = apart(card.cv, card.holdout)
    held_overall = (
        _overall(decided, labels, scored, names, model.codes, [e.known for e in examples])
        if model.single_label
        else None
    )
    return Holdout(
        fraction=plan.holdout or 0.0,
        groups=sorted(held),
        units=len(examples),
        overall=held_overall,
        differs=apart(overall, held_overall),
    )


def _exemplars(examples: Sequence[Example], labels: list[set[str]], found: Features, codes: list[str]) -> Exemplars:
    """Up to EXEMPLARS passages per code that people gave it, for the coder's justifications."""
    kept = Exemplars()
    for code in codes:
        rows = [i for i, y in enumerate(labels) if code in y][:EXEMPLARS]
        kept.texts[code] = [examples[i].unit.text for i in rows]
        kept.sources[code] = [f"{examples[i].source}, {', '.join(examples[i].coders)}" for i in rows]
        kept.vectors[code] = found.dense[rows, :EMBEDDING_SIZE].astype("<f4")
    return kept


def _parameters(single: bool, learner: str, plan: TrainingPlan) -> dict[str, object]:
    return {
        "features": FEATURES_VERSION,
        "embedding_model": MODEL_NAME,
        "learner": learner,
        "mix": MIX,
        "dense_c": DENSE_C,
        "ngram_c": NGRAM_C,
        "tol": TOL,
        "min_positives": MIN_POSITIVES,
        "folds": FOLDS,
        "single_label": single,
        "units": plan.units.model_dump(mode="json"),
        "group_by": plan.group_by,
        "holdout": plan.holdout,
    }


def _version(
    examples: Sequence[Example], groups: Sequence[str], codes: list[str], single: bool, plan: TrainingPlan
) -> str:
    """A hash of the training data, its groups, the plan, the features and the parameters."""
    digest = hashlib.sha256()
    digest.update(json.dumps([_parameters(single, plan.learner, plan), codes], sort_keys=True).encode())
    for e, group in zip(examples, groups):
        record = [
            e.unit.text,
            e.unit.before,
            sorted(e.codes),
            None if e.known is None else sorted(e.known),
            e.unit.transcript_id,
            e.unit.coded_speakers,
            group,
        ]
        digest.update(json.dumps(record).encode())
    return digest.hexdigest()[:16]


def train(
    store: Store,
    codebook: Codebook,
    plan: TrainingPlan | None = None,
    gold: Sequence[tuple[Path, Path]] = (),
    codebook_path: Path | None = None,
    csv: CsvOptions | None = None,
) -> ModelCard:
    """`qcode train`: every human code the store holds for the codebook, and the gold files given
    (each a codes file with the transcripts it is on), into a trained, stored model; its card."""
    plan = plan or TrainingPlan()
    found = from_store(store, codebook, plan.units)
    for codes, transcripts in gold:
        try:
            read = read_transcripts(str(codes), transcripts, csv or CsvOptions())
            spans = read_gold([codes], read, transcripts, codebook, codebook_path or codes, min_coders=1)
        except SuiteError as exc:
            raise LearnError(str(exc)) from None
        names = {t.id: t.source_name for t in spans.transcripts}
        found.examples += from_spans(
            spans.transcripts, spans.spans, spans.coverage, plan.units, codebook.applicable_ids(), "gold", names
        )
    return train_model(store, codebook, found.examples, plan, found.notes)
