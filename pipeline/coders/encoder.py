"""The packaged sentence encoder (all-MiniLM-L6-v2, the offline coder's) read layer by layer, for the
learned coder.

One pass over a text gives what the learned model reads of it: its sentence embedding (the mean of
the last layer's token states, normalised: what SentenceTransformer gives) and the mean of the
states below the top TOP layers (a middle layer keeps more of the words' form: a question, a
negation). A fine-tuned model changes the top layers only, so the lower states are computed once
and every fold of a cross-validation fine-tunes on them (`lower_states`, `TopLayers`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from pipeline.coders.offline import load_model

TOP = 2  # the layers a fine-tuned model changes; the ones below are the encoder's as shipped
SIZE = 384  # all-MiniLM-L6-v2's embedding size
BATCH = 32  # texts of similar length at once: on two cores, larger batches are no faster


@lru_cache(maxsize=1)
def _bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (avx512_bf16 or AMX): then the encoder reads in
    it, 1.7 times as fast on two cores, its embeddings within 1e-4 of single precision (cosine)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            flags = next((line for line in info if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _reading() -> Any:
    """The context the encoder reads texts in: without gradients, and in bfloat16 where the CPU has it."""
    import contextlib

    import torch

    stack = contextlib.ExitStack()
    stack.enter_context(torch.inference_mode())
    if _bfloat16():
        stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
    return stack


def _tokenized(texts: Sequence[str]) -> Any:
    model = load_model()
    return model.tokenizer(
        list(texts), truncation=True, max_length=model.max_seq_length, padding=True, return_tensors="pt"
    )


def _mean(states: Any, mask: Any) -> Any:
    import torch

    states = states.float()
    weights = mask.unsqueeze(-1).float()
    pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def _by_length(texts: Sequence[str]) -> list[list[int]]:
    """Batches of similar length, so little is padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[k : k + BATCH] for k in range(0, len(order), BATCH)]


def embed_layers(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each text's sentence embedding and its lower states' mean (both normalised), in one pass."""

    final = np.zeros((len(texts), SIZE), dtype="<f4")
    middle = np.zeros((len(texts), SIZE), dtype="<f4")
    encoder = load_model()[0].auto_model
    cut = encoder.config.num_hidden_layers - TOP
    with _reading():
        for rows in _by_length(texts):
            batch = _tokenized([texts[i] for i in rows])
            hidden = encoder(**batch, output_hidden_states=True).hidden_states
            final[rows] = _mean(hidden[-1], batch["attention_mask"]).numpy()
            middle[rows] = _mean(hidden[cut], batch["attention_mask"]).numpy()
    return final, middle


@lru_cache(maxsize=1)
def _lower_encoder() -> Any:
    """The encoder without its top layers (sharing nothing with it: a run may code while it is used)."""
    import copy

    encoder = load_model()[0].auto_model
    config = copy.deepcopy(encoder.config)
    config.num_hidden_layers -= TOP
    lower = type(encoder)(config)
    missing = lower.load_state_dict(encoder.state_dict(), strict=False).missing_keys
    if missing:
        raise RuntimeError(f"the encoder's lower layers lack weights: {missing[:3]}")
    return lower.eval()


def lower_states(texts: Sequence[str]) -> list[Any]:
    """Each text's token states below the top layers (half precision, without padding): what the top
    layers read, kept so that fine-tuning them never runs the lower layers again."""
    import torch

    lower = _lower_encoder()
    found: list[Any] = [None] * len(texts)
    with _reading():
        for rows in _by_length(texts):
            batch = _tokenized([texts[i] for i in rows])
            states = lower(**batch).last_hidden_state
            lengths = batch["attention_mask"].sum(1).tolist()
            for row, i in enumerate(rows):
                found[i] = states[row, : lengths[row]].to(torch.float16).clone()
    return found


def lower_mean(states: Sequence[Any]) -> np.ndarray:
    """The mean of each text's lower states, normalised (as `embed_layers` gives it)."""
    import torch

    if not states:
        return np.zeros((0, SIZE), dtype="<f4")
    return np.vstack([torch.nn.functional.normalize(s.float().mean(0), dim=-1).numpy() for s in states]).astype("<f4")


class TopLayers:
    """The encoder's top TOP layers, as shipped or fine-tuned, and the sentence embedding they make
    of lower states. Pickled as their weights."""

    def __init__(self, weights: bytes | None = None):
        import copy

        import torch

        encoder = load_model()[0].auto_model
        self.layers = copy.deepcopy(encoder.encoder.layer[-TOP:])
        if weights is not None:
            stored = torch.load(io.BytesIO(weights), weights_only=True)
            self.layers.load_state_dict({k: v.float() for k, v in stored.items()})
        self.layers.eval()

    def weights(self) -> bytes:
        import torch

        buffer = io.BytesIO()  # half precision: half the size in the store, and no code changes with it
        torch.save({k: v.half() for k, v in self.layers.state_dict().items()}, buffer)
        return buffer.getvalue()

    def __getstate__(self) -> dict[str, Any]:
        return {"weights": self.weights()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["weights"])  # type: ignore[misc]

    def pooled(self, states: Sequence[Any]) -> Any:
        """The sentence embeddings of a batch of texts' lower states (a tensor, with gradients when training)."""
        import torch

        longest = max(s.shape[0] for s in states)
        hidden = torch.zeros(len(states), longest, SIZE)
        mask = torch.zeros(len(states), longest)
        for row, s in enumerate(states):
            hidden[row, : s.shape[0]] = s.float()
            mask[row, : s.shape[0]] = 1
        # the additive mask attention reads: padding is never attended to
        additive = (1.0 - mask[:, None, None, :]) * torch.finfo(torch.float32).min
        for layer in self.layers:
            hidden = layer(hidden, attention_mask=additive)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        return _mean(hidden, mask)

    def embed(self, states: Sequence[Any]) -> np.ndarray:
        """The sentence embeddings of texts' lower states."""

        found = np.zeros((len(states), SIZE), dtype="<f4")
        lengths = [s.shape[0] for s in states]
        self.layers.eval()
        with _reading():
            for rows in _by_length(["x" * n for n in lengths]):
                found[rows] = self.pooled([states[i] for i in rows]).numpy()
        return found
