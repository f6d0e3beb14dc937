"""Model calls as qcode keeps them: a reply (`Completion`) read from the chat-completions wire
format, and the cache of every call in the store, addressed by its content, so that no identical
call is paid for twice: not by a re-run, not after a crash, not after a batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from pipeline.store import ModelCallRecord, Store, in_batches, now
from pipeline.suggestion import Usage


@dataclass
class Completion:
    """A model reply as qcode keeps it: one entry per sample, with token log-probabilities."""

    contents: list[str]
    logprobs: list[list[tuple[str, float, int]] | None]
    usage: Usage
    duration_ms: float
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "contents": self.contents,
            "logprobs": self.logprobs,
            "usage": self.usage.model_dump(),
            "duration_ms": self.duration_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Completion:
        logprobs = [
            [(t[0], t[1], t[2] if len(t) > 2 else len(t[0].encode("utf-8"))) for t in lp] if lp is not None else None
            for lp in data["logprobs"]
        ]
        return cls(data["contents"], logprobs, Usage(**data["usage"]), data["duration_ms"])


class CallCache:
    """Model calls addressed by content, in the store. Thread-safe; writes are batched per call of `put`."""

    def __init__(self, store: Store):
        self.store = store

    def get(self, key: str) -> Completion | None:
        return self.get_many([key]).get(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        with self.store.session() as s:
            for part in in_batches(keys):
                for key, response in s.execute(
                    select(ModelCallRecord.key, ModelCallRecord.response).where(ModelCallRecord.key.in_(part))
                ):
                    found[key] = Completion.from_json(response)
        return found

    def put(self, entries: Sequence[tuple[str, str, str, dict[str, Any], Completion]]) -> None:
        if not entries:
            return
        rows: dict[str, dict[str, Any]] = {}
        for key, endpoint, model, request, completion in entries:
            rows.setdefault(
                key,
                dict(
                    key=key,
                    endpoint=endpoint,
                    model=model,
                    request=request,
                    response=completion.to_json(),
                    input_tokens=completion.usage.input_tokens,
                    cached_input_tokens=completion.usage.cached_input_tokens,
                    output_tokens=completion.usage.output_tokens,
                    duration_ms=completion.duration_ms,
                    created_at=now(),
                ),
            )
        with self.store.session() as s:
            # another run may have cached the same call meanwhile: the first answer stays
            # in key order: two runs inserting the same keys in different orders deadlock on PostgreSQL
            s.execute(self.store.insert(ModelCallRecord).on_conflict_do_nothing(), [rows[k] for k in sorted(rows)])


def completion_from_json(data: dict[str, Any], elapsed_ms: float) -> Completion:
    """A chat completion as the wire returns it (live, or a line of a batch's output)."""
    contents, logprobs = [], []
    for choice in data.get("choices") or []:
        contents.append((choice.get("message") or {}).get("content") or "")
        tokens = (choice.get("logprobs") or {}).get("content")
        # byte lengths, not characters: a token may hold part of a multi-byte character
        logprobs.append(
            [
                (
                    t["token"],
                    t["logprob"],
                    len(t["bytes"]) if t.get("bytes") is not None else len(t["token"].encode("utf-8")),
                )
                for t in tokens
            ]
            if tokens
            else None
        )
    usage = data.get("usage") or {}
    details = usage.get("prompt_tokens_details") or {}
    return Completion(
        contents=contents,
        logprobs=logprobs,
        usage=Usage(
            input_tokens=usage.get("prompt_tokens") or 0,
            cached_input_tokens=details.get("cached_tokens") or 0,
            output_tokens=usage.get("completion_tokens") or 0,
            requests=1,
        ),
        duration_ms=elapsed_ms,
    )
