"""The `finetuned` learner: the packaged sentence encoder's top layers fine-tuned on the team's codes,
then read by the same regressions as the `linear` learner.

The encoder's lower layers are kept as shipped, so each text goes through them once
(`pipeline.coders.encoder.lower_states`), and every fold of the cross-validation fine-tunes the top
TOP layers on those states: ten times cheaper than fine-tuning the whole encoder, on two CPU cores.
A linear head is first fitted on the encoder as it is (a linear probe), then the head and the top
layers are trained together on the codes: one softmax over a unit's applicable codes and "no code"
(single-label), or one yes/no per applicable code where people said whether it applies
(multi-label). The fine-tuned sentence embeddings of a unit, the turn before and the turn after
then replace the shipped ones in the linear learner's features.

Training sees about PASSES units in all (more epochs for a small pilot, one for a large corpus,
never more than MAX_EPOCHS), in batches of similar length; every draw is seeded, so the same codes
train the same model.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.chunk import Chunk
from pipeline.coders.encoder import SIZE, TopLayers, lower_mean, lower_states
from pipeline.coders.learned import NONE, Features, LearnedModel, assemble, context_texts, knows, subset
from pipeline.learn.learners import Folds, Fresh, Learner
from pipeline.store import Store

PASSES = 800  # units seen in training, about: epochs = PASSES / units, from 1 to MAX_EPOCHS
MAX_EPOCHS = 5
BATCH = 16
LEARNING_RATE = 5e-5  # the top layers'
HEAD_RATE = 1e-3
PROBE_STEPS = 200
SCALE = 20.0  # the head reads normalised embeddings times this: logits of a usable size
SEED = 0


class FineTuned(Learner):
    name = "finetuned"

    def __init__(self) -> None:
        self._texts: list[str] = []
        self._unique: list[str] = []  # each text the model reads once
        self._states: list[Any] = []  # the lower states of each of them
        self._top: TopLayers | None = None

    def _lower(self, units: Sequence[Chunk]) -> tuple[list[int], list[Any]]:
        """The lower states of every text the model reads of these units (a unit's words, the turns
        before and after it), each text computed once."""
        texts = context_texts(units)
        if texts != self._texts:
            self._texts, self._unique = texts, list(dict.fromkeys(texts))
            self._states = lower_states(self._unique)
        where = {text: k for k, text in enumerate(self._unique)}
        return [where[t] for t in texts], self._states

    def _features(self, units: Sequence[Chunk], top: TopLayers) -> Features:
        index, states = self._lower(units)
        final, middle = top.embed(states), lower_mean(states)
        return assemble(units, self._texts, final[index], middle[index])

    def out_of_fold(
        self,
        store: Store,
        units: Sequence[Chunk],
        labels: list[set[str]],
        known: list[set[str] | None],
        fresh: Fresh,
        folds: Folds,
    ) -> np.ndarray:
        raw = np.zeros((len(units), len(fresh().codes)))
        for train, test in folds:
            top = self._tune(units, labels, known, fresh(), train)
            found = self._features(units, top)
            model = fresh().fit(subset(found, train), [labels[i] for i in train], [known[i] for i in train])
            raw[test] = model.raw(subset(found, test))
        return raw

    def fit(
        self, store: Store, units: Sequence[Chunk], labels: list[set[str]], known: list[set[str] | None], fresh: Fresh
    ) -> LearnedModel:
        top = self._tune(units, labels, known, fresh(), np.arange(len(units)))
        self._top = top
        model = fresh().fit(self._features(units, top), labels, known)
        model.top = top
        return model

    def features_of(self, store: Store, units: Sequence[Chunk]) -> Features:
        if self._top is None:
            raise RuntimeError("features_of before fit")
        return self._features(units, self._top)

    def _tune(
        self,
        units: Sequence[Chunk],
        labels: list[set[str]],
        known: list[set[str] | None],
        model: LearnedModel,
        rows: np.ndarray,
    ) -> TopLayers:
        """The top layers fine-tuned on the codes of the units `rows`."""
        import torch

        torch.manual_seed(SEED)
        index, unique = self._lower(units)
        states = [unique[k] for k in index[: len(units)]]  # each unit's own words
        top = TopLayers()
        classes = ([NONE] if model.single_label else []) + model.codes
        allowed, targets = self._targets(units, labels, known, model, rows, classes)
        kept = [i for i in rows.tolist() if allowed[i].any()]  # units no code applies to teach nothing
        if not kept:
            return top
        allowed_t = torch.tensor(allowed, dtype=torch.bool)
        targets_t = torch.tensor(targets)
        head = torch.nn.Linear(SIZE, len(classes))

        def loss(embedded: Any, batch: list[int]) -> Any:
            logits = head(embedded * SCALE)
            mask = allowed_t[batch]
            if model.single_label:  # the unit's applicable codes and "no code" compete
                logits = logits.masked_fill(~mask, torch.finfo(logits.dtype).min)
                return torch.nn.functional.cross_entropy(logits, targets_t[batch].argmax(1))
            each = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets_t[batch], reduction="none")
            return (each * mask).sum() / mask.sum().clamp(min=1)

        # a linear probe first, on the encoder as it is: fine-tuning starts from a head that reads it
        shipped = torch.tensor(top.embed([states[i] for i in kept]))
        probe = torch.optim.Adam(head.parameters(), lr=1e-2)
        for _ in range(PROBE_STEPS):
            loss(shipped, kept).backward()
            probe.step()
            probe.zero_grad()
        epochs = int(min(MAX_EPOCHS, max(1, round(PASSES / len(kept)))))
        by_length = sorted(kept, key=lambda i: states[i].shape[0])
        batches = [by_length[k : k + BATCH] for k in range(0, len(by_length), BATCH)]
        steps = epochs * len(batches)
        optimizer = torch.optim.AdamW(
            [{"params": top.layers.parameters(), "lr": LEARNING_RATE}, {"params": head.parameters(), "lr": HEAD_RATE}],
            weight_decay=0.01,
        )
        warmup = max(1, steps // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (steps - step) / steps)
        )
        order = random.Random(SEED)
        top.layers.train()
        for _ in range(epochs):
            order.shuffle(batches)
            for batch in batches:
                loss(top.pooled([states[i] for i in batch]), batch).backward()
                torch.nn.utils.clip_grad_norm_([*top.layers.parameters(), *head.parameters()], 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
        top.layers.eval()
        # the weights as the store keeps them (half precision): what is measured is what codes
        return TopLayers(top.weights())

    @staticmethod
    def _targets(
        units: Sequence[Chunk],
        labels: list[set[str]],
        known: list[set[str] | None],
        model: LearnedModel,
        rows: np.ndarray,
        classes: list[str],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per unit, which outputs of the head it teaches (its applicable codes, and "no code" in a
        single-label model; a multi-label code only where people said whether it applies), and their targets."""
        allowed = np.zeros((len(units), len(classes)), dtype=bool)
        targets = np.zeros((len(units), len(classes)), dtype=np.float32)
        for i in rows.tolist():
            applicable = model.applicable(units[i].coded_speakers)
            if not applicable:
                continue
            if model.single_label:
                allowed[i, 0] = True
                allowed[i, [classes.index(c) for c in applicable]] = True
                label = next((c for c in applicable if c in labels[i]), NONE)
                targets[i, classes.index(label)] = 1.0
            else:
                for code in applicable:
                    if knows(known[i], code):
                        allowed[i, classes.index(code)] = True
                        targets[i, classes.index(code)] = float(code in labels[i])
        return allowed, targets
