"""The learned model: a classifier per code trained on the team's own codes, and what it reads.

Features of a unit (`features`):
- its sentence embedding (the packaged all-MiniLM-L6-v2, cached in the store by the text's hash);
- the embedding of the words just before it (the previous turn: a reflection restates it, an
  answer follows a question), and how close the two are;
- whether it asks a question, and its length;
- its word n-grams (1 and 2, TF-IDF, "?" kept as a word).

Two logistic regressions read them, one the dense features and one the n-grams, and their
probabilities are averaged (`MIX`): n-grams and embeddings scale too differently to share one
penalty. Codes that name a speaker in their attributes (`speaker: therapist`) apply to that
speaker's turns only: the model is then trained per speaker on that speaker's codes.

Single-label (the team never gave one unit two codes, or the codebook is ordinal): one multinomial
model over the codes and "no code"; the code proposed is the most probable one. Multi-label: one
binary model per code, trained on the units where people said whether it applies. Either way the
raw probability is calibrated by a Platt scaling fitted on out-of-fold predictions (`Calibration`),
so a stated 0.8 means about 8 in 10.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field
from sqlalchemy import select

from pipeline.chunk import Chunk
from pipeline.codebook import Codebook
from pipeline.coders.base import BaseCoder, CoderOptions
from pipeline.coders.offline import MODEL_NAME, SENTENCE, embed
from pipeline.errors import CoderError
from pipeline.store import EmbeddingRecord, LearnedModelRecord, Store, in_batches
from pipeline.suggestion import ChunkCoding, Proposal

if TYPE_CHECKING:
    from scipy.sparse import spmatrix

NONE = ""  # the class of "no code" in a single-label model
EMBEDDING_SIZE = 384  # all-MiniLM-L6-v2's
MIX = 0.5  # the dense model's share of the averaged probability
DENSE_C = 1.0  # inverse penalties of the two regressions
NGRAM_C = 4.0
TOL = 1e-3  # the regressions' stopping tolerance: tighter changes no code, and doubles training time
_LABEL = re.compile(r"^\s*[^\s:][^:\n]{0,40}:\s*")


def cached_embeddings(store: Store | None, texts: Sequence[str]) -> np.ndarray:
    """The texts' embeddings, those the store has from before and the rest computed (and kept)."""
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    found: dict[str, np.ndarray] = {}
    if store is not None and keys:
        with store.session() as s:
            for part in in_batches(sorted(set(keys))):
                for key, vector in s.execute(
                    select(EmbeddingRecord.text_sha256, EmbeddingRecord.vector).where(
                        EmbeddingRecord.model == MODEL_NAME, EmbeddingRecord.text_sha256.in_(part)
                    )
                ):
                    found[key] = np.frombuffer(vector, dtype="<f4")
    missing = list(dict.fromkeys(k for k in keys if k not in found))
    if missing:
        text_of = dict(zip(keys, texts))
        vectors = embed([text_of[k] for k in missing]).astype("<f4")
        found.update(zip(missing, vectors))
        if store is not None:
            with store.session() as s:
                s.add_all(
                    EmbeddingRecord(model=MODEL_NAME, text_sha256=k, vector=v.tobytes())
                    for k, v in zip(missing, vectors)
                )
    if not keys:
        return np.zeros((0, EMBEDDING_SIZE), dtype="<f4")
    return np.vstack([found[k] for k in keys])


def previous_words(before: str) -> str:
    """The words of the turn just before a unit, from the context a coder is shown: its last line
    that holds more than a speaker's label, without the label."""
    for line in reversed(before.splitlines()):
        words = _LABEL.sub("", line, count=1).strip()
        if words:
            return words
    return ""


@dataclass
class Features:
    """What the model reads of each unit."""

    texts: list[str]
    speakers: list[str]  # lower case; "" when none
    dense: np.ndarray  # embedding, previous turn's embedding, their closeness, question, length


def features(store: Store | None, units: Sequence[Chunk]) -> Features:
    texts = [u.text for u in units]
    before = [previous_words(u.before) for u in units]
    vectors = cached_embeddings(store, texts + before)
    own, prior = vectors[: len(texts)], vectors[len(texts) :]
    prior = np.where(np.array([[bool(b)] for b in before]), prior, 0.0) if len(before) else prior
    close = (own * prior).sum(axis=1, keepdims=True) * 3
    shape = np.array([[t.rstrip().endswith("?"), "?" in t, len(t.split()) / 50] for t in texts], dtype=float).reshape(
        len(texts), 3
    )
    return Features(texts=texts, speakers=[speaker_of(u) for u in units], dense=np.hstack([own, prior, close, shape]))


def speaker_of(unit: Chunk) -> str:
    """The unit's speaker as the model groups units: its first coded speaker, in lower case."""
    return (next((s for s in unit.coded_speakers if s), "") or "").strip().lower()


def knows(known: set[str] | None, code: str) -> bool:
    """Whether people said if `code` applies to a unit (`known`: the codes they said, None: all)."""
    return known is None or code in known


def subset(found: Features, rows: Sequence[int] | np.ndarray) -> Features:
    index = np.asarray(rows, dtype=int)
    return Features(
        texts=[found.texts[i] for i in index],
        speakers=[found.speakers[i] for i in index],
        dense=found.dense[index],
    )


@dataclass
class Calibration:
    """Platt scaling of one code's raw probability, fitted on out-of-fold predictions."""

    a: float = 1.0
    b: float = 0.0

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(raw) + self.b)))

    @classmethod
    def fit(cls, raw: np.ndarray, truth: np.ndarray) -> Calibration:
        from sklearn.linear_model import LogisticRegression

        if len(set(truth.tolist())) < 2:
            return cls()
        fitted = LogisticRegression(C=100.0).fit(_logit(raw).reshape(-1, 1), truth.astype(int))
        return cls(a=float(fitted.coef_[0][0]), b=float(fitted.intercept_[0]))


def _logit(p: np.ndarray) -> np.ndarray:
    clipped = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(clipped / (1 - clipped))


@dataclass
class _Pair:
    """The two regressions of one group of units, on dense features and on n-grams."""

    classes: list[str]
    vectorizer: Any
    dense: Any
    ngrams: Any

    @classmethod
    def fit(cls, found: Features, labels: Sequence[str]) -> _Pair:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        def words(min_df: int) -> TfidfVectorizer:
            return TfidfVectorizer(
                ngram_range=(1, 2), min_df=min_df, sublinear_tf=True, token_pattern=r"(?u)\b\w+\b|\?"
            )

        vectorizer = words(2)
        try:
            grams: spmatrix = vectorizer.fit_transform(found.texts)
        except ValueError:  # too few texts for min_df: words seen once
            vectorizer = words(1)
            grams = vectorizer.fit_transform(found.texts)
        y = np.array(labels)
        dense = LogisticRegression(max_iter=3000, C=DENSE_C, tol=TOL).fit(found.dense, y)
        ngrams = LogisticRegression(max_iter=3000, C=NGRAM_C, tol=TOL).fit(grams, y)
        return cls([str(c) for c in dense.classes_], vectorizer, dense, ngrams)

    def probabilities(self, found: Features) -> np.ndarray:
        grams = self.vectorizer.transform(found.texts)
        return MIX * self.dense.predict_proba(found.dense) + (1 - MIX) * self.ngrams.predict_proba(grams)


@dataclass
class LearnedModel:
    """A fitted model: per group of speakers (or one group, ""), single- or multi-label."""

    codes: list[str]  # the codes it proposes
    single_label: bool
    speaker_codes: dict[str, list[str]]  # a speaker group -> its codes; {"": codes} without groups
    pairs: dict[str, Any] = field(default_factory=dict)  # group -> _Pair, or group -> code -> _Pair
    constant: dict[str, str] = field(default_factory=dict)  # group -> its only class, when it had one
    calibration: dict[str, Calibration] = field(default_factory=dict)
    # multi-label: the raw probability at which a code is proposed (default one half)
    thresholds: dict[str, float] = field(default_factory=dict)

    def group(self, speaker: str) -> str | None:
        """The speaker group of a unit: its speaker's codes, "" without groups, None when no code
        of the codebook applies to this speaker."""
        if list(self.speaker_codes) == [""]:
            return ""
        return speaker if speaker in self.speaker_codes else None

    def _rows(self, found: Features, group: str) -> list[int]:
        return [i for i, s in enumerate(found.speakers) if self.group(s) == group]

    def fit(self, found: Features, labels: Sequence[set[str]], known: Sequence[set[str] | None]) -> LearnedModel:
        for group, codes in self.speaker_codes.items():
            rows = self._rows(found, group)
            if not rows:
                continue
            part = subset(found, rows)
            if self.single_label:
                ys = [_single(labels[i], codes) for i in rows]
                if len(set(ys)) < 2:
                    self.constant[group] = ys[0]
                    continue
                self.pairs[group] = _Pair.fit(part, ys)
            else:
                per_code = {}
                for code in codes:
                    mine = [k for k, i in enumerate(rows) if knows(known[i], code)]
                    ys = ["1" if code in labels[rows[k]] else "0" for k in mine]
                    if len(set(ys)) == 2:
                        per_code[code] = _Pair.fit(subset(part, mine), ys)
                self.pairs[group] = per_code
        return self

    def raw(self, found: Features) -> np.ndarray:
        """Uncalibrated probability of each code (columns: `codes`) for each unit."""
        out = np.zeros((len(found.texts), len(self.codes)))
        column = {c: k for k, c in enumerate(self.codes)}
        for group in self.speaker_codes:
            rows = self._rows(found, group)
            if not rows:
                continue
            part = subset(found, rows)
            if self.single_label:
                if group in self.constant:
                    if self.constant[group] in column:
                        out[rows, column[self.constant[group]]] = 1.0
                    continue
                pair = self.pairs.get(group)
                if pair is None:
                    continue
                probability = pair.probabilities(part)
                for k, cls in enumerate(pair.classes):
                    if cls in column:
                        out[rows, column[cls]] = probability[:, k]
            else:
                for code, pair in self.pairs.get(group, {}).items():
                    out[rows, column[code]] = pair.probabilities(part)[:, pair.classes.index("1")]
        return out

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of each code, from the raw ones."""
        out = raw.copy()
        for k, code in enumerate(self.codes):
            if code in self.calibration:
                out[:, k] = self.calibration[code](raw[:, k])
        return out

    def phrase_scores(self, speaker: str, texts: Sequence[str], code: str) -> np.ndarray:
        """How strongly each text (a sentence of a unit) says `code`, by the n-gram model alone:
        cheap enough to read every sentence of every unit coded."""
        group = self.group(speaker)
        pair = self.pairs.get(group) if group is not None else None
        if not self.single_label and isinstance(pair, dict):
            pair = pair.get(code)
        if not isinstance(pair, _Pair):
            return np.zeros(len(texts))
        target = code if self.single_label else "1"
        if target not in pair.classes:
            return np.zeros(len(texts))
        return pair.ngrams.predict_proba(pair.vectorizer.transform(list(texts)))[:, pair.classes.index(target)]

    def decide(self, raw: np.ndarray) -> list[set[str]]:
        """The codes a unit gets from its raw probabilities: the most probable one when it beats
        "no code" (single-label), or each at or above its threshold (multi-label)."""
        chosen = []
        for row in raw:
            if self.single_label:
                best = int(np.argmax(row)) if len(row) else -1
                chosen.append({self.codes[best]} if best >= 0 and row[best] > 1 - row.sum() else set())
            else:
                chosen.append({c for c, p in zip(self.codes, row) if p >= self.thresholds.get(c, 0.5)})
        return chosen


def _single(codes: set[str], allowed: Sequence[str]) -> str:
    """A unit's one label: its code (the first in codebook order when people's codes tied), else none."""
    return next((c for c in allowed if c in codes), NONE)


# ---------------------------------------------------------------- the coder


@dataclass
class Exemplars:
    """The training passages a justification can point at: each code's, with their embeddings."""

    texts: dict[str, list[str]] = field(default_factory=dict)  # code -> passages people gave it
    sources: dict[str, list[str]] = field(default_factory=dict)  # "transcript, person" for each
    vectors: dict[str, np.ndarray] = field(default_factory=dict)


def sentences(text: str) -> list[str]:
    """The sentences of a unit, each verbatim (a unit of one sentence is itself)."""
    found = [m.group(0).strip() for m in SENTENCE.finditer(text) if m.group(0).strip()]
    return found or [text.strip()]


class LearnedCoder(BaseCoder):
    """Codes with a model trained on the team's own codes (`qcode train`), locally and for free."""

    name = "learned"
    batch_size = 64

    class Options(CoderOptions):
        learned_model: str | None = Field(
            default=None,
            description="the version of the trained model to code with (default: the newest trained for the codebook).",
        )

    def __init__(self, learned_model: str | None = None):
        self.wanted = learned_model
        self.store: Store | None = None
        self.version: str | None = None
        self.loaded: LearnedModel | None = None
        self.exemplars = Exemplars()
        self.model = "learned"

    def use_store(self, store: Any) -> None:
        self.store = store

    def prepare(self, codebook: Codebook) -> None:
        if self.store is None:
            raise CoderError("the learned coder codes with a model kept in a store: name it with --db")
        with self.store.session() as s:
            which = (
                LearnedModelRecord.version == self.wanted
                if self.wanted
                else LearnedModelRecord.codebook_version == codebook.version
            )
            record = s.scalars(
                select(LearnedModelRecord).where(which).order_by(LearnedModelRecord.trained_at.desc())
            ).first()
            if record is None:
                if self.wanted:
                    raise CoderError(
                        f"no learned model '{self.wanted}' in this store (qcode train lists what it stores)"
                    )
                raise CoderError(
                    f"no learned model for the codebook '{codebook.name}' [{codebook.version}] in this store: "
                    "train one first (qcode train --codebook FILE), from the team's codes"
                )
            if record.codebook_version != codebook.version:
                raise CoderError(
                    f"the learned model '{record.version}' was trained for codebook version "
                    f"{record.codebook_version}, not {codebook.version}: train one for this codebook"
                )
            stored = pickle.loads(record.model)  # the team's own store: nothing else is unpickled
            self.loaded, self.exemplars = stored["model"], stored["exemplars"]
            self.version = record.version
        self.model = f"learned-{self.version}"

    @property
    def parameters(self) -> dict[str, Any]:
        return {"learned_model": self.version}

    def prompt_version(self, codebook: Codebook) -> str | None:
        return None

    def code(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        if self.loaded is None:
            raise CoderError("the learned coder has no model: prepare() was not called")
        began = time.perf_counter()
        found = features(self.store, chunks)
        raw = self.loaded.raw(found)
        calibrated = self.loaded.calibrated(raw)
        chosen = self.loaded.decide(raw)
        codings = []
        for k, (chunk, codes) in enumerate(zip(chunks, chosen)):
            proposals = []
            for code in codes:
                column = self.loaded.codes.index(code)
                proposals.append(
                    Proposal(
                        code=code,
                        justification=self._justify(code, found.dense[k, :EMBEDDING_SIZE]),
                        quote=self._quote(chunk, code),
                        confidence=round(float(calibrated[k, column]), 4),
                    )
                )
            codings.append(ChunkCoding(chunk_id=chunk.id, proposals=proposals))
        seconds = time.perf_counter() - began
        for coding in codings:
            coding.duration_ms = int(1000 * seconds / max(1, len(codings)))
        return codings

    def _quote(self, chunk: Chunk, code: str) -> str:
        """The sentence of the unit that carries the code most strongly."""
        assert self.loaded is not None
        parts = sentences(chunk.text)
        if len(parts) == 1:
            return parts[0]
        return parts[int(np.argmax(self.loaded.phrase_scores(speaker_of(chunk), parts, code)))]

    def _justify(self, code: str, vector: np.ndarray) -> str:
        """The nearest passages the team gave this code."""
        texts = self.exemplars.texts.get(code, [])
        if not texts:
            return f"Coded {code} by the learned model {self.version}."
        similarity = self.exemplars.vectors[code] @ vector
        nearest = np.argsort(-similarity)[:3]
        first = int(nearest[0])
        example = texts[first] if len(texts[first]) <= 90 else texts[first][:89].rsplit(" ", 1)[0] + "…"
        return (
            f"Like {len(nearest)} passage{'s' if len(nearest) != 1 else ''} coded {code} by the team, "
            f"e.g. '{example}' ({self.exemplars.sources[code][first]})."
        )
