"""What went wrong with a request to a model server: the kind of failure (failures are counted by
it), the error in full, and whether any request at all could get past it (a refused key, an unknown
model, no quota: the run stops rather than send every chunk into the same wall)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openai


def lacks_json_schema(exc: openai.APIStatusError) -> bool:
    """The server refuses JSON-schema mode itself: a 400 or 422 (OpenAI's wording, Ollama's,
    vLLM's), a 500 (llama.cpp: "response_format type must be one of..."), or the `strict` flag an
    older Azure API version does not know."""
    if exc.status_code not in (400, 422) and exc.status_code < 500:
        return False
    text = f"{exc.message} {exc.body}".lower()
    return (
        "response_format" in text
        or "json_schema" in text
        or "json schema" in text
        or "argument supplied: strict" in text
    )


def _said(exc: openai.APIError) -> tuple[int | None, str, str]:
    """An error's status, its code (OpenAI's `code`, else `type`), and its message in lower case."""
    body = getattr(exc, "body", None)
    code = str((body.get("code") or body.get("type") or "") if isinstance(body, dict) else "")
    return getattr(exc, "status_code", None), code, " ".join(str(exc.message).split()).lower()


def content_filtered(exc: openai.APIError) -> bool:
    """The provider's content filter refused the prompt itself (Azure OpenAI: a 400 with code
    content_filter): a person reads the passage, asking again would only be refused again."""
    status, code, _ = _said(exc)
    return status == 400 and code == "content_filter"


def describe_api_error(exc: openai.APIError) -> tuple[str, str]:
    """(what kind of failure, for counting; the error in full, for the record)."""
    import openai

    status, code, _ = _said(exc)
    message = " ".join(str(exc.message).split())
    body = getattr(exc, "body", None)
    if isinstance(body, str) and body.strip() and " ".join(body.split())[:60] not in message:
        message += f": {' '.join(body.split())[:200]}"  # what a server that answers in plain text said
    if isinstance(exc, openai.APIConnectionError):
        # the aiohttp transport reports a reset connection as a connect timeout: the root cause says
        cause = _root_cause(exc)
        if isinstance(exc, openai.APITimeoutError) and not _dropped(cause):
            return "timed out", f"no reply in time: {message}"
        said = f": {type(cause).__name__}: {cause}" if cause is not exc else ""
        return "connection failed", f"the connection to the server failed{said}"
    if status == 429:
        if code == "insufficient_quota":
            return "no quota left (429)", f"429 {message}"
        return "rate limited (429)", f"429 {message}"
    if status is not None and status >= 500:
        return f"server error ({status})", f"{status} {message}"
    if status is not None:
        names = {400: "request refused", 401: "key refused", 403: "access denied", 404: "not found"}
        return f"{names.get(status, 'HTTP error')} ({status})", f"{status} {message}"
    return type(exc).__name__, message


def _dropped(cause: BaseException) -> bool:
    """The server closed the connection (a crash, a proxy giving up), rather than let the time run out."""
    if isinstance(cause, TimeoutError):
        return False
    if isinstance(cause, ConnectionError):
        return True
    # aiohttp's own (the client's transport), told by name: importing aiohttp here costs a start-up
    return any(
        k.__module__.startswith("aiohttp") and k.__name__ in ("ClientConnectionError", "ClientPayloadError")
        for k in type(cause).__mro__
    )


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while (following := exc.__cause__ or exc.__context__) is not None and id(following) not in seen:
        seen.add(id(following))
        exc = following
    return exc


# parameters a model may refuse whatever the passage: a refusal of one of them is a refusal of all
_SETTINGS = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "logprobs", "n", "seed")


def hopeless(exc: openai.APIError, model: str, endpoint: str) -> str | None:
    """What to do about an error that every request would meet, or None when others may pass. Read
    from the error's status and code, not its wording, where servers give one: a rate limit that
    mentions a quota, a prompt too long for the model, or a moderation refusal of one passage
    stop nothing."""
    status, code, text = _said(exc)
    body = getattr(exc, "body", None)
    param = str(body.get("param") or "") if isinstance(body, dict) else ""
    if status == 401:
        return f"the key was refused by {endpoint}: check OPENAI_API_KEY"
    if status == 403 and not any(word in text for word in ("moderation", "flagged", "content")):
        return f"the key may not use {model} at {endpoint}"
    if status == 404:
        return f"{endpoint} has no model '{model}' (check --model), or the base URL is wrong (check --base-url)"
    if status == 429 and code == "insufficient_quota":
        return "no quota left at the provider: add credit or raise the limit, then run again (what was coded is kept)"
    if status == 400 and code in ("unsupported_parameter", "unsupported_value") and (not param or param in _SETTINGS):
        return (
            f"{model} does not take a parameter qcode sent ({param or 'see the message'}); if it is a reasoning "
            'model, set reasoning = "yes" under [run] in qcode.toml (or --reasoning yes)'
        )
    return None
