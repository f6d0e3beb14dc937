"""Model calls as qcode keeps them: a reply (`Completion`) read from the chat-completions wire
format, and the cache of every call in the store, addressed by its content, so that no identical
call is paid for twice: not by a re-run, not after a crash, not after a batch."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from pipeline.errors import CoderError
from pipeline.store import ModelCallRecord, Store, in_batches, now
from pipeline.suggestion import Usage


@dataclass
class Completion:
    """A model reply as qcode keeps it: one entry per sample (choice), with token log-probabilities,
    why the server stopped (`finish_reasons`: "stop", "length", "content_filter", ...) and what it
    said instead of an answer (`refusals`: a refusal's text, or the content filter's categories)."""

    contents: list[str]
    logprobs: list[list[tuple[str, float, int]] | None]
    usage: Usage
    duration_ms: float
    cached: bool = False
    finish_reasons: list[str | None] = field(default_factory=list)
    refusals: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        # replies cached before these were kept say nothing of them
        self.finish_reasons = self.finish_reasons or [None] * len(self.contents)
        self.refusals = self.refusals or [None] * len(self.contents)

    def to_json(self) -> dict[str, Any]:
        return {
            "contents": self.contents,
            "logprobs": self.logprobs,
            "usage": self.usage.model_dump(),
            "duration_ms": self.duration_ms,
            "finish_reasons": self.finish_reasons,
            "refusals": self.refusals,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Completion:
        logprobs = [
            [(t[0], t[1], t[2] if len(t) > 2 else len(t[0].encode("utf-8"))) for t in lp] if lp is not None else None
            for lp in data["logprobs"]
        ]
        return cls(
            data["contents"],
            logprobs,
            Usage(**data["usage"]),
            data["duration_ms"],
            finish_reasons=data.get("finish_reasons") or [],
            refusals=data.get("refusals") or [],
        )


class NotACompletion(CoderError):
    """A 200 reply that is not a chat completion: a proxy's HTML page, an error object, a body
    without choices. It fails its own unit; the tokens it reports, if any, are still counted."""

    def __init__(self, message: str, usage: Usage | None = None):
        super().__init__(message)
        self.usage = usage or Usage(requests=1)


class BrokenReply(NotACompletion):
    """A 200 reply whose body is empty or cut short: a dropped connection in all but name, asked again."""


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


def completion_from_json(data: Any, elapsed_ms: float) -> Completion:
    """A chat completion as the wire returns it (live, or a line of a batch's output). Raises
    NotACompletion, naming what came instead, when the body is not one."""
    if not isinstance(data, dict):
        raise NotACompletion(f"the server answered with {_what(data)}, not a chat completion")
    usage = _usage(data.get("usage"))
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            said = f"an error: {str(error['message'])[:300]}"
        elif isinstance(error, str):
            said = f"an error: {error[:300]}"
        elif choices == []:
            said = "no choices"
        elif "choices" in data:
            said = "choices that are not a list of answers"
        else:
            said = f"a JSON object without choices (keys: {', '.join(sorted(map(str, data))[:8]) or 'none'})"
        raise NotACompletion(f"the server's reply is not a chat completion: {said}", usage)
    contents: list[str] = []
    logprobs: list[list[tuple[str, float, int]] | None] = []
    finish_reasons: list[str | None] = []
    refusals: list[str | None] = []
    for choice in choices:
        message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
        finish = choice.get("finish_reason")
        contents.append(_content(message, choice, finish))
        finish_reasons.append(str(finish) if finish is not None else None)
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal.strip():
            refusals.append(refusal.strip())
        elif finish == "content_filter":
            refusals.append(_filtered(choice.get("content_filter_results")))
        else:
            refusals.append(None)
        tokens = (choice.get("logprobs") or {}).get("content") if isinstance(choice.get("logprobs"), dict) else None
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
    return Completion(
        contents=contents,
        logprobs=logprobs,
        usage=usage,
        duration_ms=elapsed_ms,
        finish_reasons=finish_reasons,
        refusals=refusals,
    )


def _content(message: dict[str, Any], choice: dict[str, Any], finish: Any) -> str:
    """The text of an answer, where servers put it: the message's content; the text of its parts
    when the content is a list of parts; the arguments of a tool call when the answer came as one;
    a completion's `text`; else the reasoning, when it is all a finished reply holds (a server whose
    reasoning parser took the whole answer). Whatever it is, validation still reads it."""
    content = message.get("content")
    if isinstance(content, str) and content.strip():
        return content
    if isinstance(content, list):
        text = "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        if text.strip():
            return text
    calls = message.get("tool_calls")
    for call in calls if isinstance(calls, list) else []:
        function = call.get("function") if isinstance(call, dict) else None
        arguments = function.get("arguments") if isinstance(function, dict) else None
        if isinstance(arguments, str) and arguments.strip():
            return arguments
    if isinstance(choice.get("text"), str) and choice["text"].strip():
        return str(choice["text"])
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if finish != "length" and isinstance(reasoning, str) and reasoning.strip():
        return reasoning
    return content if isinstance(content, str) else ""


def reply_body(text: str) -> Any:
    """A reply's JSON body, whatever Content-Type the server gave it (some send JSON as text/plain or
    as an event stream). A body that is empty or cut short raises BrokenReply (asked again); one
    streamed unasked, NotACompletion; text that is no JSON is returned as text, for
    `completion_from_json` to say what it is (a sign-in page, say)."""
    body = text.strip().removeprefix("\ufeff")
    if not body:
        raise BrokenReply("the server answered with an empty body")
    try:
        return json.loads(body)
    except ValueError:
        if body.startswith("data:"):
            raise NotACompletion(
                "the server streamed its reply (server-sent events) though qcode asks for it whole: turn "
                "streaming off in the server or proxy"
            ) from None
        if body[0] in "{[":
            raise BrokenReply(f"the server's reply was cut short: '{' '.join(body[-80:].split())}'") from None
        return body


def _usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage(requests=1)
    details = usage.get("prompt_tokens_details")
    details = details if isinstance(details, dict) else {}
    return Usage(
        input_tokens=_count(usage.get("prompt_tokens")),
        cached_input_tokens=_count(details.get("cached_tokens")),
        output_tokens=_count(usage.get("completion_tokens")),
        requests=1,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


def _filtered(results: Any) -> str:
    """The content filter's categories that stopped a reply, as Azure OpenAI reports them."""
    said = []
    if isinstance(results, dict):
        for category, verdict in results.items():
            if isinstance(verdict, dict) and verdict.get("filtered"):
                severity = verdict.get("severity")
                said.append(f"{category} ({severity})" if severity else str(category))
    return "the provider's content filter stopped the reply" + (f": {', '.join(said)}" if said else "")


def _what(data: Any) -> str:
    """What a body that is not a chat completion looks like, in a few words."""
    if isinstance(data, str):
        text = data.strip()
        if text[:200].lower().lstrip().startswith(("<!doctype html", "<html")) or "<body" in text[:2000].lower():
            title = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            named = f" titled '{' '.join(title.group(1).split())[:80]}'" if title else ""
            return f"an HTML page{named} (is the base URL an OpenAI-compatible API, ending in /v1?)"
        return f"text: '{' '.join(text.split())[:120]}'" if text else "an empty body"
    if data is None:
        return "an empty body"
    return f"a JSON {type(data).__name__}"
