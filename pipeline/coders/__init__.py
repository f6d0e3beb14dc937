"""Coders propose codes for chunks. Every coder has the same interface, so the
pipeline (validation, routing, store) does not know which one it is talking to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pipeline.chunk import Chunk
from pipeline.codebook import Codebook
from pipeline.suggestion import ChunkCoding, Provenance


class Coder(Protocol):
    """What the pipeline needs of a coder.

    A coder may also have: `batch_size` (chunks per batch it codes best),
    `batches_in_flight` (batches it can code at once, default 1), `use_store(store)`
    (to keep a cache there), `check_ready()` (raise if it cannot run, e.g. no key)
    and `close()` (called when the run is done).
    """

    name: str
    model: str

    @property
    def parameters(self) -> dict[str, Any]:
        """Everything that shapes the coder's output (never a secret)."""
        ...

    def prompt_version(self, codebook: Codebook) -> str | None:
        """A version of the instructions the coder works from, for provenance."""
        ...

    def code(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        """One ChunkCoding per chunk, in order. A chunk the coder could not code
        carries `error`; it is stored as failed and retried by the next run."""
        ...


def provenance(coder: Coder, codebook: Codebook) -> Provenance:
    """The coder's identity for caching and provenance: a chunk coded under the
    same key is never coded again."""
    parameters = dict(coder.parameters)
    identity = json.dumps(
        [coder.name, coder.model, coder.prompt_version(codebook), codebook.version, parameters],
        sort_keys=True,
        default=str,
    )
    return Provenance(
        coder=coder.name,
        model=coder.model,
        coder_key=hashlib.sha256(identity.encode()).hexdigest()[:16],
        prompt_version=coder.prompt_version(codebook),
        codebook_version=codebook.version,
        parameters=parameters,
    )


def _offline(**options: Any) -> Coder:
    from pipeline.coders.offline import EmbeddingCoder

    return EmbeddingCoder(**options)


def _openai(**options: Any) -> Coder:
    from pipeline.coders.openai_chat import OpenAICoder

    return OpenAICoder(**options)


_FACTORIES: dict[str, Callable[..., Coder]] = {"offline": _offline, "openai": _openai}


def register_coder(name: str, factory: Callable[..., Coder]) -> None:
    """Make a coder available by name to `qcode run --coder NAME`."""
    _FACTORIES[name] = factory


def make_coder(name: str, **options: Any) -> Coder:
    if name not in _FACTORIES:
        raise ValueError(f"unknown coder '{name}' (available: {', '.join(sorted(_FACTORIES))})")
    return _FACTORIES[name](**options)
