"""What went wrong with a request to a model server: the kind of failure (failures are counted by
it), the error in full, and whether any request at all could get past it (a refused key, an unknown
model, no quota: the run stops rather than send every chunk into the same wall)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openai


def lacks_json_schema(exc: openai.APIStatusError) -> bool:
    text = f"{exc.message} {exc.body}".lower()
    return "response_format" in text or "json_schema" in text or "json schema" in text


def describe_api_error(exc: openai.APIError) -> tuple[str, str]:
    """(what kind of failure, for counting; the error in full, for the record)."""
    import openai

    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    code = body.get("code") if isinstance(body, dict) else None
    message = " ".join(str(exc.message).split())
    if isinstance(exc, openai.APIConnectionError):
        # the aiohttp transport reports a reset connection as a connect timeout: the root cause says
        cause = _root_cause(exc)
        if isinstance(exc, openai.APITimeoutError) and not isinstance(cause, ConnectionError):
            return "timed out", f"no reply in time: {message}"
        said = f": {type(cause).__name__}: {cause}" if cause is not exc else ""
        return "connection failed", f"the connection to the server failed{said}"
    if status == 429:
        if code == "insufficient_quota" or "quota" in message.lower():
            return "no quota left (429)", f"429 {message}"
        return "rate limited (429)", f"429 {message}"
    if status is not None and status >= 500:
        return f"server error ({status})", f"{status} {message}"
    if status is not None:
        names = {400: "request refused", 401: "key refused", 403: "access denied", 404: "not found"}
        return f"{names.get(status, 'HTTP error')} ({status})", f"{status} {message}"
    return type(exc).__name__, message


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while (following := exc.__cause__ or exc.__context__) is not None and id(following) not in seen:
        seen.add(id(following))
        exc = following
    return exc


def hopeless(exc: openai.APIError, model: str, endpoint: str) -> str | None:
    """What to do about an error that every request would meet, or None when others may pass."""
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    code = str(body.get("code") or "") if isinstance(body, dict) else ""
    text = f"{getattr(exc, 'message', '')} {code}".lower()
    if status == 401:
        return f"the key was refused by {endpoint}: check OPENAI_API_KEY"
    if status == 403:
        return f"the key may not use {model} at {endpoint}"
    if status == 404:
        return f"{endpoint} has no model '{model}' (check --model), or the base URL is wrong (check --base-url)"
    if status == 429 and (code == "insufficient_quota" or "quota" in text):
        return "no quota left at the provider: add credit or raise the limit, then run again (what was coded is kept)"
    if status == 400 and (
        code in ("unsupported_parameter", "unsupported_value")
        or "max_completion_tokens" in text
        or "unsupported parameter" in text
    ):
        return (
            f'{model} does not take a parameter qcode sent; if it is a reasoning model, set reasoning = "yes" '
            "under [run] in qcode.toml (or --reasoning yes)"
        )
    return None
