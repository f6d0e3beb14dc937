"""The learners `qcode train` chooses from: each turns units and the people's codes into a fitted
`LearnedModel`, and into out-of-fold probabilities that measure it honestly.

- `linear`: the packaged sentence encoder as it is (embeddings cached in the store) and word
  n-grams, read by logistic regressions (pipeline/coders/learned.py);
- `finetuned` (pipeline/learn/finetune.py): the same, with the encoder's top layers fine-tuned on
  the team's codes first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np

from pipeline.chunk import Chunk
from pipeline.coders.learned import Features, LearnedModel, features, subset
from pipeline.store import Store

FOLD_JOBS = 2  # folds fitted at once: the machines qcode runs on have two cores or more

Fresh = Callable[[], LearnedModel]  # an unfitted model, with the codes and the way it decides
Folds = Sequence[tuple[np.ndarray, np.ndarray]]  # (training rows, test rows) of each fold


class Learner:
    """Fits models on units and their codes; `name` is how `qcode train --learner` and the card call it."""

    name: ClassVar[str]

    def out_of_fold(
        self,
        store: Store,
        units: Sequence[Chunk],
        labels: list[set[str]],
        known: list[set[str] | None],
        fresh: Fresh,
        folds: Folds,
    ) -> np.ndarray:
        """Raw probabilities of every unit in a test fold, from a model fitted without its fold."""
        raise NotImplementedError

    def fit(
        self, store: Store, units: Sequence[Chunk], labels: list[set[str]], known: list[set[str] | None], fresh: Fresh
    ) -> LearnedModel:
        """A model fitted on all these units."""
        raise NotImplementedError

    def features_of(self, store: Store, units: Sequence[Chunk]) -> Features:
        """What the fitted model reads of these units (for its exemplars)."""
        raise NotImplementedError


class Linear(Learner):
    name = "linear"

    def __init__(self) -> None:
        self._found: tuple[tuple[str, ...], Features] | None = None

    def features_of(self, store: Store, units: Sequence[Chunk]) -> Features:
        key = tuple(u.id for u in units)
        if self._found is None or self._found[0] != key:
            self._found = (key, features(store, units))
        return self._found[1]

    def out_of_fold(
        self,
        store: Store,
        units: Sequence[Chunk],
        labels: list[set[str]],
        known: list[set[str] | None],
        fresh: Fresh,
        folds: Folds,
    ) -> np.ndarray:
        from joblib import Parallel, delayed

        found = self.features_of(store, units)
        raw = np.zeros((len(units), len(fresh().codes)))
        fitted = Parallel(n_jobs=FOLD_JOBS)(
            delayed(_fold)(
                fresh(),
                subset(found, train),
                [labels[i] for i in train],
                [known[i] for i in train],
                subset(found, test),
            )
            for train, test in folds
        )
        for (_, test), probabilities in zip(folds, fitted):
            raw[test] = probabilities
        return raw

    def fit(
        self, store: Store, units: Sequence[Chunk], labels: list[set[str]], known: list[set[str] | None], fresh: Fresh
    ) -> LearnedModel:
        return fresh().fit(self.features_of(store, units), labels, known)


def _fold(
    model: LearnedModel, train: Features, labels: list[set[str]], known: list[set[str] | None], test: Features
) -> np.ndarray:
    return model.fit(train, labels, known).raw(test)
