"""The learned model: classifiers trained on the team's own codes, what they read, and the coder
that codes with them.

Features of a unit (`features`), from the packaged all-MiniLM-L6-v2 (pipeline/coders/encoder.py;
as shipped, its embeddings cached in the store by the text's hash, or with its top layers
fine-tuned by `qcode train --learner finetuned`):
- its sentence embedding, and those of the turns just before and after it (a reflection restates
  the turn before; change talk is often reflected in the turn after), with how close each is;
- the mean of the encoder's lower layers for it and for the turn before (they keep more of the
  words' form: a question, a negation);
- whether it asks a question, and its length;
- its word n-grams (1 and 2, TF-IDF, "?" kept as a word).

Two logistic regressions read them, one the dense features and one the n-grams, and their
probabilities are averaged (`MIX`): n-grams and embeddings scale too differently to share one
penalty. A code whose attributes name a speaker (`speaker: therapist`) applies to that speaker's
units only: units are grouped by the codes that apply to them, and a unit no code applies to gets
none.

Single-label (the team never gave one unit two codes, or the codebook is ordinal): one multinomial
model per group over its codes and "no code"; the code proposed is the most probable one. Multi-
label: one binary model per code, trained on the units it applies to where people said whether it
does; proposed at its threshold. Either way the raw probability is calibrated by a Platt scaling
fitted on out-of-fold predictions (`Calibration`), so a stated 0.8 means about 8 in 10.
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
from sqlalchemy import delete, select

from pipeline.chunk import Chunk, Units
from pipeline.codebook import Codebook
from pipeline.coders.base import BaseCoder, CoderOptions
from pipeline.coders.encoder import SIZE, TopLayers, embed_layers, lower_mean, lower_states
from pipeline.coders.offline import MODEL_NAME, SENTENCE
from pipeline.errors import CoderError, FlagError, SettingsError, StoreError
from pipeline.store import EmbeddingRecord, LearnedModelRecord, Store, TranscriptRecord, in_batches
from pipeline.suggestion import ChunkCoding, Proposal, milliseconds
from pipeline.transcript import SpeakerChoice

if TYPE_CHECKING:
    from scipy.sparse import spmatrix

NONE = ""  # the class of "no code" in a single-label model
EMBEDDING_SIZE = SIZE  # the unit's own embedding: the first columns of Features.dense
MIX = 0.5  # the dense model's share of the averaged probability
DENSE_C = 1.0  # inverse penalties of the two regressions
NGRAM_C = 4.0
TOL = 1e-3  # the regressions' stopping tolerance: tighter changes no code, and doubles training time
# change with the features or the model's shape: a model stored by an older qcode is trained again
FEATURES_VERSION = "learned-features-3"
_LABEL = re.compile(r"^\s*[^\s:][^:\n]{0,40}:\s*")


MIDDLE_NAME = f"{MODEL_NAME}#lower-mean"  # the cache's name for the mean of the lower states


def cached_embeddings(store: Store | None, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The texts' sentence embeddings and lower-state means (`pipeline.coders.encoder.embed_layers`),
    those the store has from before and the rest computed (and kept)."""
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    found: dict[str, dict[str, np.ndarray]] = {MODEL_NAME: {}, MIDDLE_NAME: {}}
    if store is not None and keys:
        with store.session() as s:
            for part in in_batches(sorted(set(keys))):
                for name, key, vector in s.execute(
                    select(EmbeddingRecord.model, EmbeddingRecord.text_sha256, EmbeddingRecord.vector).where(
                        EmbeddingRecord.model.in_(list(found)), EmbeddingRecord.text_sha256.in_(part)
                    )
                ):
                    found[name][key] = np.frombuffer(vector, dtype="<f4")
    missing = list(dict.fromkeys(k for k in keys if k not in found[MODEL_NAME] or k not in found[MIDDLE_NAME]))
    if missing:
        text_of = dict(zip(keys, texts))
        final, middle = embed_layers([text_of[k] for k in missing])
        found[MODEL_NAME].update(zip(missing, final))
        found[MIDDLE_NAME].update(zip(missing, middle))
        if store is not None:
            with store.session() as s:
                # a vector one of the two names had already is written again, not twice
                s.execute(
                    delete(EmbeddingRecord).where(
                        EmbeddingRecord.model.in_(list(found)), EmbeddingRecord.text_sha256.in_(missing)
                    )
                )
                s.add_all(
                    EmbeddingRecord(model=name, text_sha256=k, vector=v.tobytes())
                    for name, vectors in ((MODEL_NAME, final), (MIDDLE_NAME, middle))
                    for k, v in zip(missing, vectors)
                )
    if not keys:
        return np.zeros((0, SIZE), dtype="<f4"), np.zeros((0, SIZE), dtype="<f4")
    return np.vstack([found[MODEL_NAME][k] for k in keys]), np.vstack([found[MIDDLE_NAME][k] for k in keys])


def previous_words(before: str) -> str:
    """The words of the turn just before a unit, from the context a coder is shown: its last line
    that holds more than a speaker's label, without the label."""
    for line in reversed(before.splitlines()):
        words = _LABEL.sub("", line, count=1).strip()
        if words:
            return words
    return ""


def next_words(after: str) -> str:
    """The words of the turn just after a unit (a reflection of change talk follows change talk)."""
    for line in after.splitlines():
        words = _LABEL.sub("", line, count=1).strip()
        if words:
            return words
    return ""


@dataclass
class Features:
    """What the model reads of each unit."""

    texts: list[str]
    speakers: list[tuple[str | None, ...]]  # each unit's coded speakers: which codes apply to it
    # its embedding (first: EMBEDDING_SIZE), the turns' before and after it and their closeness to it,
    # whether it asks, its length, and the lower states' means of it and of the turn before
    dense: np.ndarray


def context_texts(units: Sequence[Chunk]) -> list[str]:
    """Every text the model reads of these units: each unit's words, the turn before, the turn after."""
    return [u.text for u in units] + [previous_words(u.before) for u in units] + [next_words(u.after) for u in units]


def features(store: Store | None, units: Sequence[Chunk], top: TopLayers | None = None) -> Features:
    """What the model reads of these units: with the encoder as shipped (embeddings cached in the
    store), or with its top layers fine-tuned (`top`)."""
    texts = context_texts(units)
    if top is None:
        final, middle = cached_embeddings(store, texts)
    else:  # a text read for several units (a turn after one unit is the next unit) is computed once
        unique = {t: k for k, t in enumerate(dict.fromkeys(texts))}
        where = [unique[t] for t in texts]
        states = lower_states(list(unique))
        final, middle = top.embed(states)[where], lower_mean(states)[where]
    return assemble(units, texts, final, middle)


def assemble(units: Sequence[Chunk], texts: Sequence[str], final: np.ndarray, middle: np.ndarray) -> Features:
    """The features, from the embeddings of `context_texts(units)`: a missing turn before or after reads as nothing."""
    n = len(units)
    present = np.array([[bool(t)] for t in texts], dtype=bool).reshape(len(texts), 1)
    final = np.where(present, final, 0.0)
    middle = np.where(present, middle, 0.0)
    own, before, after = final[:n], final[n : 2 * n], final[2 * n :]
    close_before = (own * before).sum(axis=1, keepdims=True) * 3
    close_after = (own * after).sum(axis=1, keepdims=True) * 3
    words = [u.text for u in units]
    shape = np.array([[t.rstrip().endswith("?"), "?" in t, len(t.split()) / 50] for t in words], dtype=float).reshape(
        n, 3
    )
    dense = np.hstack([own, before, close_before, after, close_after, shape, middle[:n], middle[n : 2 * n]])
    return Features(texts=words, speakers=[tuple(u.coded_speakers) for u in units], dense=dense)


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


def code_speakers(codebook: Codebook, codes: Sequence[str]) -> dict[str, SpeakerChoice]:
    """The codes among `codes` that are for some speakers only, with whose words they are for."""
    found = {}
    for code in codebook.leaves:
        if code.id in codes and code.speakers is not None:
            found[code.id] = code.speakers
    return found


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
    """A fitted model. Units are grouped by the codes that apply to them (a code for some speakers
    only applies to their turns); a unit no learned code applies to gets none.

    Single-label: one multinomial pair per group, over the group's codes and "no code".
    Multi-label: one binary pair per code, on the units it applies to and people said whether it does.
    """

    codes: list[str]  # the codes it proposes
    single_label: bool
    code_speakers: dict[str, SpeakerChoice]  # the codes for some speakers only
    pairs: dict[Any, _Pair] = field(default_factory=dict)  # single: group -> _Pair; multi: code -> _Pair
    constant: dict[tuple[str, ...], str] = field(default_factory=dict)  # group -> its only class, when it had one
    calibration: dict[str, Calibration] = field(default_factory=dict)
    # multi-label: the raw probability at which a code is proposed (default one half)
    thresholds: dict[str, float] = field(default_factory=dict)
    top: TopLayers | None = None  # the encoder's top layers, fine-tuned on the team's codes (learner finetuned)

    def applicable(self, speakers: Sequence[str | None]) -> tuple[str, ...]:
        """The codes that apply to a unit whose coded speakers these are."""
        return tuple(
            c
            for c in self.codes
            if c not in self.code_speakers or any(self.code_speakers[c].codes(s) for s in speakers)
        )

    def _groups(self, found: Features) -> dict[tuple[str, ...], list[int]]:
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, speakers in enumerate(found.speakers):
            group = self.applicable(speakers)
            if group:
                groups.setdefault(group, []).append(i)
        return groups

    def fit(self, found: Features, labels: Sequence[set[str]], known: Sequence[set[str] | None]) -> LearnedModel:
        groups = self._groups(found)
        if self.single_label:
            for group, rows in groups.items():
                ys = [_single(labels[i], group) for i in rows]
                if len(set(ys)) < 2:
                    self.constant[group] = ys[0]
                else:
                    self.pairs[group] = _Pair.fit(subset(found, rows), ys)
            return self
        for code in self.codes:
            rows = [i for group, members in groups.items() if code in group for i in members if knows(known[i], code)]
            ys = ["1" if code in labels[i] else "0" for i in rows]
            if len(set(ys)) == 2:
                self.pairs[code] = _Pair.fit(subset(found, rows), ys)
        return self

    def raw(self, found: Features) -> np.ndarray:
        """Uncalibrated probability of each code (columns: `codes`) for each unit; 0 where it does not apply."""
        out = np.zeros((len(found.texts), len(self.codes)))
        column = {c: k for k, c in enumerate(self.codes)}
        for group, rows in self._groups(found).items():
            if not self.single_label:
                for code in group:
                    pair = self.pairs.get(code)
                    if pair is not None:
                        out[rows, column[code]] = pair.probabilities(subset(found, rows))[:, pair.classes.index("1")]
                continue
            if group in self.constant:
                if self.constant[group] in column:
                    out[rows, column[self.constant[group]]] = 1.0
                continue
            pair = self.pairs.get(group)
            if pair is None:
                continue
            probability = pair.probabilities(subset(found, rows))
            for k, cls in enumerate(pair.classes):
                if cls in column:
                    out[rows, column[cls]] = probability[:, k]
        return out

    def features(self, store: Store | None, units: Sequence[Chunk]) -> Features:
        """What the model reads of these units."""
        return features(store, units, self.top)

    def calibrated_one(self, code: str, raw: float) -> float:
        """One raw probability of a code, calibrated."""
        calibration = self.calibration.get(code)
        return raw if calibration is None else float(calibration(np.array([raw]))[0])

    def calibrated(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of each code, from the raw ones."""
        out = raw.copy()
        for k, code in enumerate(self.codes):
            if code in self.calibration:
                out[:, k] = self.calibration[code](raw[:, k])
        return out

    def phrase_scores(self, speakers: Sequence[str | None], texts: Sequence[str], code: str) -> np.ndarray:
        """How strongly each text (a sentence of a unit) says `code`, by the n-gram model alone:
        cheap enough to read every sentence of every unit coded."""
        pair = self.pairs.get(self.applicable(speakers) if self.single_label else code)
        target = code if self.single_label else "1"
        if pair is None or target not in pair.classes:
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
                chosen.append({c for c, p in zip(self.codes, row) if p > 0 and p >= self.thresholds.get(c, 0.5)})
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
        self.trained_on: set[str] = set()  # hashes of the texts of the transcripts it was trained on
        self.model = "learned"

    def use_store(self, store: Any) -> None:
        self.store = store

    def settle_units(
        self,
        db: str | None,
        codebook: Codebook,
        codebook_path: str,
        units: Units,
        given: frozenset[str],
        flags: frozenset[str],
    ) -> tuple[Units, dict[str, Any]]:
        """The units the model was trained on, where the run's settings say none (a --chunk-size or
        --max-unit-chars given is kept: told otherwise); a --unit or speaker choice that contradicts
        them is refused, naming both. The run codes with the model found, pinned by its version."""
        trained, version = self._trained(db, codebook, codebook_path, units.unit if "unit" in given else None)
        clashes = []
        if "unit" in given and units.unit != trained.unit:
            clashes.append(("unit", f"--unit {units.unit}", f"{trained.unit} units"))
        if given & {"speakers", "skip_speakers"} and _choice(units.speakers) != _choice(trained.speakers):
            clashes.append(("speakers", units.speakers.describe(), trained.speakers.describe()))
        if clashes:
            said = "; ".join(f"the run asks for {asked}, the model was trained on {had}" for _, asked, had in clashes)
            asked = " ".join(
                f"--{name.replace('_', '-')} '{value}'" if name != "unit" else f"--unit {value}"
                for name, value in (
                    ("unit", units.unit),
                    ("speakers", ",".join(units.speakers.speakers)),
                    ("skip_speakers", ",".join(units.speakers.skip_speakers)),
                )
                if value and (name in given)
            )
            problem = (
                f"the learned model {version} cannot code these units: {said}. Leave the choice out to code with "
                f"the model's, or train a model on these units: qcode train --codebook {codebook_path} {asked} "
                "--gold CODES.csv --transcripts FOLDER"
            )
            named = {"unit"} if clashes[0][0] == "unit" else {"speakers", "skip_speakers"}
            raise (FlagError if named & flags else SettingsError)(problem)
        settled = Units(
            unit=trained.unit,
            size=units.size if "chunk_size" in given else trained.size,
            overlap=units.overlap if "overlap" in given else trained.overlap,
            max_chars=units.max_chars if "max_unit_chars" in given else trained.max_chars,
            speakers=trained.speakers,
        )
        return settled, {"learned_model": version}

    def check_store(self, db: str | None, codebook: Codebook, codebook_path: str) -> None:
        self._trained(db, codebook, codebook_path, None)

    def _trained(self, db: str | None, codebook: Codebook, codebook_path: str, unit: str | None) -> tuple[Units, str]:
        """The units and version of the model this coder codes with, read from a database that exists
        (opening one that does not would make it, and leave it behind when the run fails). A model on
        other units than `unit` is found too: the caller refuses the contradiction, naming both."""
        try:
            store = Store(db, create=False)
        except StoreError:
            raise CoderError(_untrained(codebook, codebook_path, unit)) from None
        try:
            with store.session() as s:
                try:
                    record = _find(s, codebook, codebook_path, self.wanted, unit)
                except CoderError:
                    if unit is None or self.wanted:
                        raise
                    # a model on other units: the run's --unit contradicts it, and is refused by the caller
                    record = _find(s, codebook, codebook_path, None, None)
                return Units.model_validate(record.parameters["units"]), record.version
        finally:
            store.engine.dispose()

    def prepare(self, codebook: Codebook) -> None:
        if self.store is None:
            raise CoderError("the learned coder codes with a model kept in a store: name it with --db")
        with self.store.session() as s:
            record = _find(s, codebook, "CODEBOOK.yaml", self.wanted, None)
            stored = pickle.loads(record.model)  # the team's own store: nothing else is unpickled
            self.loaded, self.exemplars = stored["model"], stored["exemplars"]
            self.trained_on = set(stored.get("transcripts", []))
            self.version = record.version
        self.model = f"learned-{self.version}"

    def transcript_notes(self, transcript_ids: Sequence[str]) -> list[str]:
        if self.store is None or not self.trained_on:
            return []
        seen = []
        with self.store.session() as s:
            for part in in_batches(sorted(set(transcript_ids))):
                for name, text in s.execute(
                    select(TranscriptRecord.source_name, TranscriptRecord.text).where(TranscriptRecord.id.in_(part))
                ):
                    if hashlib.sha256(text.encode("utf-8")).hexdigest() in self.trained_on:
                        seen.append(name)
        if not seen:
            return []
        names = ", ".join(sorted(seen)[:5]) + (" ..." if len(seen) > 5 else "")
        return [
            f"{len(seen)} of the run's transcripts were among those the learned model {self.version} was trained "
            f"on ({names}): its codes there agree with the training codes because it learned them, which is no "
            "evidence of how it codes new transcripts"
        ]

    @property
    def parameters(self) -> dict[str, Any]:
        return {"learned_model": self.version}

    def prompt_version(self, codebook: Codebook) -> str | None:
        return None

    def code(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        if self.loaded is None:
            raise CoderError("the learned coder has no model: prepare() was not called")
        began = time.perf_counter()
        found = self.loaded.features(self.store, chunks)
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
            coding.duration_ms = milliseconds(1000 * seconds / max(1, len(codings)))
        return codings

    def _quote(self, chunk: Chunk, code: str) -> str:
        """The sentence of the unit that carries the code most strongly."""
        assert self.loaded is not None
        parts = sentences(chunk.text)
        if len(parts) == 1:
            return parts[0]
        return parts[int(np.argmax(self.loaded.phrase_scores(chunk.coded_speakers, parts, code)))]

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


def _choice(speakers: SpeakerChoice) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A speaker choice as compared: names case-folded, in order."""
    return (
        tuple(sorted(n.casefold() for n in speakers.speakers)),
        tuple(sorted(n.casefold() for n in speakers.skip_speakers)),
    )


def _untrained(codebook: Codebook, codebook_path: str, unit: str | None) -> str:
    on = f" on {unit} units" if unit else ""
    command = f"qcode train --codebook {codebook_path}" + (f" --unit {unit}" if unit else "")
    return (
        f"no learned model for the codebook '{codebook.name}' [{codebook.version}]{on} in this store: train one "
        f"from the team's codes with `{command} --gold CODES.csv --transcripts FOLDER` (or from the codes the "
        "store holds: imported projects, decisions, blind codes)"
    )


def _find(
    session: Any, codebook: Codebook, codebook_path: str, wanted: str | None, unit: str | None
) -> LearnedModelRecord:
    """The model a run codes with: the one named, else the newest trained for the codebook (and the
    unit, when the run names one) by this qcode."""
    if wanted:
        record = session.get(LearnedModelRecord, wanted)
        if record is None:
            raise CoderError(f"no learned model '{wanted}' in this store (qcode train prints the version it stores)")
        if record.codebook_version != codebook.version:
            raise CoderError(
                f"the learned model '{record.version}' was trained for codebook version "
                f"{record.codebook_version}, not {codebook.version}: train one for this codebook"
            )
        candidates = [record]
    else:
        candidates = list(
            session.scalars(
                select(LearnedModelRecord)
                .where(LearnedModelRecord.codebook_version == codebook.version)
                .order_by(LearnedModelRecord.trained_at.desc())
            )
        )
        if unit is not None:
            candidates = [r for r in candidates if (r.parameters.get("units") or {}).get("unit") == unit]
        if not candidates:
            raise CoderError(_untrained(codebook, codebook_path, unit))
    current = [r for r in candidates if r.parameters.get("features") == FEATURES_VERSION]
    if not current:
        raise CoderError(
            f"the learned model {candidates[0].version} was trained by an earlier qcode; train it again "
            f"(qcode train --codebook {codebook_path} ...)"
        )
    return current[0]
