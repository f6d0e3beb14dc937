"""The model coder: a language model behind the official `openai` client.

It works with OpenAI and any OpenAI-compatible server (vLLM, Ollama,
llama.cpp server, LM Studio): `base_url` from the option or OPENAI_BASE_URL,
the key from OPENAI_API_KEY (a local server needs none).

For each chunk it renders the prompt (prompts/NAME), asks for a reply in a
strict JSON schema (or JSON mode where the server has no JSON-schema mode),
checks the reply against the codebook and the chunk, and asks again with the
problems listed when it is not valid, up to `max_attempts`. What is still
invalid then goes to validation, which stores it as a rejection for a person.

Confidence combines three signals (documented in README.md, "Confidence"):
    rating      the model's own confidence, averaged over the samples that propose the code
    agreement   the share of the `samples` replies that propose the code
    probability exp(sum of the log-probabilities of the tokens of the code id), when the server returns logprobs
    confidence = agreement * rating                       without logprobs
    confidence = agreement * sqrt(rating * probability)   with logprobs
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import itertools
import json
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, BeforeValidator, Field, field_validator, model_validator

from pipeline.chunk import Chunk
from pipeline.codebook import Codebook
from pipeline.coders.base import NOT_A_FLAG, BaseCoder, CoderOptions, Number, describe_details
from pipeline.coders.batch import prefill_by_batch
from pipeline.coders.calls import BrokenReply, CallCache, Completion, NotACompletion, completion_from_json, reply_body
from pipeline.coders.failures import content_filtered, describe_api_error, hopeless, lacks_json_schema
from pipeline.coders.fewshot import ExamplePicker, adjudicated
from pipeline.coders.groups import group_units, labels_for, parse_per_request, split_reply, units_schema
from pipeline.coders.limits import Backoff, RateLimiter, retry_after
from pipeline.coders.prices import price_table
from pipeline.coders.prompt import DEFAULT_PROMPT, Prompt
from pipeline.coders.replies import codes_in, reply_data
from pipeline.coders.tokens import count_chat_tokens, count_tokens
from pipeline.errors import CoderError
from pipeline.suggestion import ChunkCoding, Proposal, Rejection, Usage, milliseconds
from pipeline.validate import validate_coding

if TYPE_CHECKING:
    import openai

# The `openai` client is imported when an openai coder is made, not with this module: every `qcode`
# command reads this module for the coder's options, and the client takes half a second to load.

__all__ = ["OPENAI_ENDPOINT", "CallCache", "Completion", "OpenAICoder", "completion_from_json"]

OPENAI_ENDPOINT = "https://api.openai.com/v1"
# A dry run cannot know how long replies will be: it assumes this many output tokens per reply
OUTPUT_TOKENS_PER_SAMPLE = 150
RATE_MARGIN = 0.98
# A killed run loses at most the calls of the last second; each flush is a commit
CACHE_FLUSH_SECONDS = 1.0
Mode = Literal["auto", "json_schema", "json_object"]
DEFAULT_MAX_TOKENS = 1024
REASONING_MAX_TOKENS = 8192
# the longest a request waits on a server's rate limit before its chunk fails (coded next run)
MAX_WAIT = 120.0
# a request for several units has the budget of one reply for every this many units
UNITS_PER_BUDGET = 4
# a reply cut off is asked again with twice the room, up to this
MAX_ROOM = 32768
# OpenAI's reasoning models, which refuse max_tokens and sampling parameters: o1, o3-mini, o4-mini,
# gpt-5, gpt-5-mini... (a provider's prefix, "openai/o3", too)
_REASONING_NAME = re.compile(r"^(?:[\w.-]+/)?(?:o\d|gpt-5)", re.IGNORECASE)


def is_reasoning_model(model: str) -> bool:
    return bool(_REASONING_NAME.match(model.strip()))


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def redact_url(url: str) -> str:
    """The URL without any user:password part, for records."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Reply(BaseModel):
    """What the model must answer: the codes it applies to the passage."""

    codes: list[Proposal]


def reply_schema(codebook: Codebook) -> dict[str, Any]:
    """A strict JSON schema for Reply whose code ids are the codebook's applicable codes."""
    return {
        "type": "object",
        "properties": {
            "codes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string", "enum": sorted(codebook.applicable_ids())},
                        "justification": {"type": "string"},
                        "quote": {"type": "string"},
                        "confidence": {"type": "number"},
                    },
                    "required": ["code", "justification", "quote", "confidence"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["codes"],
        "additionalProperties": False,
    }


@dataclass
class _Frame:
    """What every request under one codebook shares, worked out once: the codebook's
    version is a hash of the whole codebook, too dear to recompute for every chunk."""

    codebook: Codebook  # held, so that its id() is not reused while the frame is kept
    system: str
    schema: dict[str, Any]
    picker: Any = None


@dataclass
class _Sample:
    proposals: list[Proposal]
    content: str
    logprobs: list[tuple[str, float, int]] | None
    # where in the content this unit's codes are (a reply for several units): log-probabilities are
    # read there only; (0, 0) when they cannot be told apart, and no probability is read
    start: int = 0
    end: int | None = None


@dataclass
class _Checked:
    """What one reply came to: its valid samples, the proposals to reject, the problems to tell the
    model, and why nothing could be read when nothing could."""

    samples: list[_Sample] = field(default_factory=list)
    invalid: list[Any] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unparsed: str | None = None  # the content (or refusal) kept for a person when nothing parsed
    returned: int = 0  # replies (choices) the server returned
    refused: str | None = None  # a refusal's text, or the content filter's verdict
    cut_off: bool = False  # the reply stopped at its output budget before its answer ended
    budget: int = 0  # that budget

    def unusable_reason(self) -> str:
        if self.refused:
            return self.refused
        if self.cut_off:
            return f"the reply was cut off at {self.budget} tokens before its answer ended (--max-tokens)"
        return "the reply was not valid JSON of the requested form"


@dataclass
class _Outcome:
    usage: Usage = field(default_factory=Usage)
    duration_ms: float = 0.0


class OpenAICoder(BaseCoder):
    """A language model behind the `openai` client, at OpenAI or any OpenAI-compatible server."""

    name = "openai"
    follows_instructions = True

    class Options(CoderOptions):
        model: str | None = Field(default=None, description="the model name.")
        base_url: str | None = Field(
            default=None, description="an OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, then OpenAI)."
        )
        prompt: str = Field(
            default=DEFAULT_PROMPT, description=f"prompt template folder under prompts/ (default {DEFAULT_PROMPT})."
        )
        temperature: Number = Field(default=0.0, description="sampling temperature (default 0).")
        top_p: Number | None = Field(default=None, description="nucleus sampling: the top_p of each request.")
        samples: int = Field(default=1, description="replies per chunk for self-consistency (default 1).")
        max_tokens: int | None = Field(
            default=None,
            description=f"most tokens of one reply (default {DEFAULT_MAX_TOKENS}; {REASONING_MAX_TOKENS} for "
            "reasoning models, whose reasoning counts); a reply cut off is asked again with twice the room.",
        )
        reasoning: Literal["auto", "yes", "no"] = Field(
            default="auto",
            description="a reasoning model (max_completion_tokens, no sampling parameters, no log-probabilities): "
            "auto knows OpenAI's o-series and gpt-5 by name.",
        )
        # not a flag: --seed is the audit draw's seed, and seed under [run] in qcode.toml too
        seed: int | None = Field(default=None, description="the seed of each request.", json_schema_extra=NOT_A_FLAG)
        logprobs: bool = Field(
            default=True,
            description="ask for log-probabilities, a signal of confidence (default yes).",
            json_schema_extra=NOT_A_FLAG,
        )
        mode: Mode = Field(
            default="auto",
            description="json_schema, json_object, or auto: JSON schema unless the server has none.",
            json_schema_extra=NOT_A_FLAG,
        )
        max_attempts: int = Field(default=3, description="tries per chunk when a reply is invalid (default 3).")
        concurrency: int = Field(default=8, description="requests in flight at once (default 8).")
        rpm: Number | None = Field(default=None, gt=0, description="requests per minute at most.")
        tpm: Number | None = Field(default=None, gt=0, description="tokens per minute at most.")
        timeout: Number = Field(default=120.0, description="seconds to wait for one reply (default 120).")
        max_retries: int = Field(
            default=4, description="retries after a 429, 5xx or timeout, with backoff (default 4)."
        )
        fewshot: int = Field(
            default=0,
            description="show the model this many adjudicated chunks most like each one (default 0: off).",
        )
        units_per_request: Annotated[str, BeforeValidator(str)] = Field(
            default="1",
            description="consecutive units of one transcript sent in one request: a number (default 1), or "
            "auto (as many as fit a token budget).",
        )

        @field_validator("units_per_request")
        @classmethod
        def _units_per_request(cls, value: str) -> str:
            parse_per_request(value)
            return value.strip().lower()

        @model_validator(mode="after")
        def _one_at_a_time_examples(self) -> OpenAICoder.Options:
            if self.fewshot > 0 and self.units_per_request != "1":
                raise ValueError(
                    "fewshot shows the model examples one unit at a time: it does not go with units_per_request"
                )
            return self

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        temperature: float = 0.0,
        top_p: float | None = None,
        samples: int = 1,
        max_tokens: int | None = None,
        reasoning: Literal["auto", "yes", "no"] = "auto",
        seed: int | None = None,
        logprobs: bool = True,
        mode: Mode = "auto",
        max_attempts: int = 3,
        concurrency: int = 8,
        rpm: float | None = None,
        tpm: float | None = None,
        timeout: float = 120.0,
        max_retries: int = 4,
        prompt: str = DEFAULT_PROMPT,
        fewshot: int = 0,
        units_per_request: str | int = "1",
        cache: CallCache | None = None,
    ):
        import openai  # noqa: F401 (the client loads with the coder that uses it, not with every command)

        if not model:
            raise CoderError(
                "the openai coder needs a model: --model NAME (or model = ... under [run] in qcode.toml, "
                "or model: ... in an eval suite's configuration)"
            )
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_ENDPOINT).rstrip("/")
        self.endpoint = redact_url(self.base_url)
        self.api_key = os.environ.get("OPENAI_API_KEY") or None
        if samples < 1 or max_attempts < 1 or concurrency < 1:
            raise CoderError("samples, max attempts and concurrency must be at least 1")
        self.reasoning = is_reasoning_model(model) if reasoning == "auto" else reasoning == "yes"
        self.temperature = temperature
        self.top_p = top_p
        self.samples = samples
        self.max_tokens = max_tokens or (REASONING_MAX_TOKENS if self.reasoning else DEFAULT_MAX_TOKENS)
        self.seed = seed
        self.logprobs = logprobs
        self.mode: Mode = mode
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.prompt = Prompt(prompt)
        try:
            self.per_request = parse_per_request(units_per_request)
        except ValueError as exc:
            raise CoderError(str(exc)) from exc
        if self.per_request != 1 and not (self.prompt.directory / "units.jinja").is_file():
            raise CoderError(
                f"prompt '{prompt}' has no units.jinja in {self.prompt.directory}: several units per request need one"
            )
        self.cache = cache
        self.fewshot = fewshot
        self.rpm, self.tpm = rpm, tpm
        self.store: Any = None
        self._frames: dict[int, _Frame] = {}
        self._unsaved: list[tuple[str, str, str, dict[str, Any], Completion]] = []
        self._flushed_at = time.monotonic()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_lock = threading.Lock()
        self._client: openai.AsyncOpenAI | None = None
        self._gate: asyncio.Semaphore | None = None
        # 2% under the stated limit: at exactly the limit, a provider counting over a
        # sliding minute refuses a request whenever one arrives a moment early
        self.requests = RateLimiter(rpm * RATE_MARGIN, burst=1) if rpm else None
        self.tokens = RateLimiter(tpm * RATE_MARGIN) if tpm else None
        self._mode_lock = threading.Lock()
        self.backoff = Backoff()

    def check_ready(self) -> None:
        """Raise when a run could not reach the model; a dry run needs none of this."""
        if not self.api_key and self.base_url == OPENAI_ENDPOINT:
            raise CoderError("OPENAI_API_KEY is not set (a local server given by --base-url needs no key)")
        if self.api_key and self.base_url.startswith("http://") and not is_loopback(self.base_url):
            raise CoderError(
                f"refusing to send OPENAI_API_KEY unencrypted to {self.endpoint}: "
                "use https, or unset the key for a server that needs none"
            )

    def use_store(self, store: Any) -> None:
        """Keep every model call in the store, so no identical call is paid for twice."""
        self.cache = CallCache(store)
        self.store = store

    def estimate_usage(self, chunks: Sequence[Chunk], codebook: Codebook) -> Usage:
        """The prompt tokens of every chunk's first request (few-shot examples included), counted
        with the model's own tokenizer, and OUTPUT_TOKENS_PER_SAMPLE for each reply."""
        groups = self.groups(chunks)
        return Usage(
            input_tokens=sum(
                count_chat_tokens(
                    self.model,
                    self.messages(chunks[g[0]], codebook)
                    if len(g) == 1
                    else self.group_messages([chunks[i] for i in g], codebook),
                )
                for g in groups
            ),
            output_tokens=OUTPUT_TOKENS_PER_SAMPLE * self.samples * len(chunks),
            requests=len(groups),
        )

    def cost(self, usage: Usage, batch: bool = False) -> float | None:
        """From the price table (pipeline/coders/prices.toml and qcode.toml's [prices]): a server
        on this machine costs nothing, and so does a model the table does not list on a server
        other than OpenAI's; a model it does not list at OpenAI has an unknown cost."""
        if is_loopback(self.endpoint):
            return 0.0
        prices, discount = price_table()
        price = prices.get(self.model)
        if price is None:
            return 0.0 if self.endpoint != OPENAI_ENDPOINT else None
        return price.cost(usage, discount if batch else 1.0)

    def check_batch(self) -> None:
        """The Batch API: OpenAI's, or a compatible server's; one unit per request."""
        if self.per_request != 1:
            raise CoderError("--batch sends one unit per request: it does not go with --units-per-request (choose one)")

    def prefill_by_batch(
        self,
        store: Any,
        codebook: Codebook,
        coder_key: str,
        run_id: str,
        chunks: Sequence[Chunk],
        poll_interval: float,
        report: Callable[[str], None] | None = None,
    ) -> Usage:
        """First requests through the Batch API (pipeline/coders/batch.py); their replies land in
        the model-call cache, where coding the chunks finds them."""
        return prefill_by_batch(store, self, codebook, coder_key, run_id, chunks, poll_interval, report)

    @property
    def parameters(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "prompt": self.prompt.name,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "samples": self.samples,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            "logprobs": self.logprobs,
            "max_attempts": self.max_attempts,
            "fewshot": self.fewshot,
            # only when set: the coder key of every other configuration stays what it was
            **({"reasoning": True} if self.reasoning else {}),
            **({"units_per_request": self._per_request_text} if self.per_request != 1 else {}),
        }

    @property
    def limits(self) -> dict[str, Any]:
        """Settings that change speed but not replies: recorded with the run, not in the coder key."""
        return {
            "concurrency": self.concurrency,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "mode": self.mode,
        }

    @classmethod
    def describe(cls, model: str, parameters: dict[str, Any], prompt_version: str | None) -> str:
        settings = []
        if "temperature" in parameters:
            settings.append(f"temperature {parameters['temperature']}")
        if (parameters.get("samples") or 0) > 1:
            settings.append(f"{parameters['samples']} samples per passage")
        return f"the {cls.name} coder ({describe_details(model, settings, prompt_version)})"

    def prompt_version(self, codebook: Codebook) -> str:
        return self.prompt.version(codebook, grouped=self.per_request != 1)

    @property
    def _per_request_text(self) -> str:
        return "auto" if self.per_request is None else str(self.per_request)

    def groups(self, chunks: Sequence[Chunk]) -> list[list[int]]:
        """Which chunks go in one request (positions in `chunks`)."""
        if self.per_request == 1:
            return [[i] for i in range(len(chunks))]
        return group_units(chunks, self.per_request, lambda text: count_tokens(self.model, text))

    def group_messages(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[dict[str, str]]:
        """The messages of one request for several units, labelled u1, u2, ..."""
        return [
            {"role": "system", "content": self._frame(codebook).system},
            {"role": "user", "content": self.prompt.units(chunks, labels_for(len(chunks)))},
        ]

    # --- requests ------------------------------------------------------------

    def messages(self, chunk: Chunk, codebook: Codebook) -> list[dict[str, str]]:
        """The stable prefix first, then any adjudicated examples, then the chunk."""
        messages = [{"role": "system", "content": self._frame(codebook).system}]
        for example in self._examples(chunk, codebook):
            messages.append({"role": "user", "content": self.prompt.user(example.chunk)})
            messages.append({"role": "assistant", "content": example.reply()})
        messages.append({"role": "user", "content": self.prompt.user(chunk)})
        return messages

    def _examples(self, chunk: Chunk, codebook: Codebook) -> list[Any]:
        if self.fewshot <= 0 or self.store is None:
            return []
        frame = self._frame(codebook)
        if frame.picker is None:
            frame.picker = ExamplePicker(adjudicated(self.store, codebook.applicable_ids()), self.fewshot)
        return frame.picker.pick(chunk)

    def _frame(self, codebook: Codebook) -> _Frame:
        frame = self._frames.get(id(codebook))
        if frame is None:
            frame = _Frame(codebook, self.prompt.system(codebook), reply_schema(codebook))
            self._frames[id(codebook)] = frame
        return frame

    def request_body(
        self,
        messages: list[dict[str, str]],
        codebook: Codebook,
        mode: str,
        room: int | None = None,
        labels: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The chat-completion request, without the model call's transport settings. `room`: the
        output budget of a request asked again after a reply was cut off. A reasoning model takes
        its budget as max_completion_tokens, and neither sampling parameters nor log-probabilities."""
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if not self.reasoning:
            body["temperature"] = self.temperature
            if self.top_p is not None:
                body["top_p"] = self.top_p
        if self.samples > 1:
            body["n"] = self.samples
        body["max_completion_tokens" if self.reasoning else "max_tokens"] = room or self.max_tokens
        if self.seed is not None:
            body["seed"] = self.seed
        if self.logprobs and not self.reasoning:
            body["logprobs"] = True
        if self.base_url == OPENAI_ENDPOINT:
            # requests with the same prefix routed together, so OpenAI's prompt cache finds it; other
            # servers are not sent a parameter they may refuse
            body["prompt_cache_key"] = "qcode-" + hashlib.sha256(messages[0]["content"].encode()).hexdigest()[:16]
        if mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "units" if labels else "codes",
                    "strict": True,
                    "schema": units_schema(self._frame(codebook).schema, labels)
                    if labels
                    else self._frame(codebook).schema,
                },
            }
        else:
            body["response_format"] = {"type": "json_object"}
        return body

    def cache_key(self, body: dict[str, Any]) -> str:
        # the prompt-cache key routes a request; it does not change the reply
        shaping = {k: v for k, v in body.items() if k != "prompt_cache_key"}
        material = json.dumps({"endpoint": self.base_url, **shaping}, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    # --- coding --------------------------------------------------------------

    # Several batches may be coded at once (see `batches_in_flight`); they share one
    # event loop, one HTTP client and one concurrency limit for the whole run.
    batches_in_flight = 2
    batch_size = 128

    def code(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        self.check_ready()
        with self._loop_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="qcode-openai", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(self._code_all(chunks, codebook), self._loop).result()

    def close(self) -> None:
        """Cancel what is still coding, keep the calls already paid for, close the client and
        stop the event loop. Batches still waiting in `code()` raise CancelledError."""
        with self._loop_lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            self._client = self._gate = None

    async def _shutdown(self) -> None:
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self._flush()
        if self._client is not None:
            await self._client.close()

    async def _remember(self, entry: tuple[str, str, str, dict[str, Any], Completion]) -> None:
        """Keep a paid call in the cache soon after it returns, so a killed run loses at most a few."""
        self._unsaved.append(entry)
        if time.monotonic() - self._flushed_at >= CACHE_FLUSH_SECONDS:
            await self._flush()

    async def _flush(self) -> None:
        entries, self._unsaved = self._unsaved, []
        self._flushed_at = time.monotonic()
        if entries and self.cache is not None:
            await asyncio.to_thread(self.cache.put, entries)

    async def _code_all(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        if self._client is None:
            import openai

            self._client = openai.AsyncOpenAI(
                # local OpenAI-compatible servers take any key
                api_key=self.api_key or "no-key",
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=0,  # qcode retries itself (`_send`): one pause for the whole run after a 429
                http_client=openai.DefaultAioHttpClient(timeout=self.timeout),
            )
            self._gate = asyncio.Semaphore(self.concurrency)
        client, gate = self._client, self._gate
        assert gate is not None  # made with the client
        groups = self.groups(chunks)
        singles = [g[0] for g in groups if len(g) == 1]
        messages = {i: self.messages(chunks[i], codebook) for i in singles}
        firsts = {i: self.request(messages[i], codebook) for i in singles}
        cached = self.cache.get_many([key for _, key in firsts.values()]) if self.cache is not None else {}
        results: list[ChunkCoding | None] = [None] * len(chunks)

        async def alone(i: int) -> None:
            results[i] = await self._code_chunk(
                client, gate, chunks[i], messages[i], firsts[i], codebook, _Outcome(), cached
            )

        async def together(group: list[int]) -> None:
            for i, coding in zip(group, await self._code_group(client, gate, [chunks[i] for i in group], codebook)):
                results[i] = coding

        try:
            await asyncio.gather(*(alone(g[0]) if len(g) == 1 else together(g) for g in groups))
        finally:
            # calls paid for are kept even when the batch fails, so a re-run does not pay again
            await asyncio.shield(self._flush())
        return [r for r in results if r is not None]

    async def _code_group(
        self, client: openai.AsyncOpenAI, gate: asyncio.Semaphore, chunks: list[Chunk], codebook: Codebook
    ) -> list[ChunkCoding]:
        """Several units in one request. A unit the reply answers well is done; one it leaves out,
        mislabels, or answers with something to point out is asked again alone (its own attempts,
        its own context), and so is every unit of a reply that could not be read."""
        import openai

        labels = labels_for(len(chunks))
        messages = self.group_messages(chunks, codebook)
        outcome = _Outcome()
        answers: dict[str, _Checked] = {}
        # room for the units' answers (the budget of one reply for every UNITS_PER_BUDGET units: a
        # budget counts whole against a tokens-per-minute limit); a reply cut off all the same is asked
        # once more with twice it
        room = min(MAX_ROOM, self.max_tokens * math.ceil(len(chunks) / UNITS_PER_BUDGET))
        try:
            for asked in range(2):
                request = self.request(messages, codebook, room=room, labels=labels)
                try:
                    completion = await self._complete(client, gate, messages, request, codebook, outcome, None, labels)
                except openai.BadRequestError:
                    if asked:
                        break  # more room than the model has: each unit is asked alone
                    raise
                answers = self._check_group(completion, chunks, labels, codebook)
                if answers or "length" not in completion.finish_reasons or room >= MAX_ROOM:
                    break
                room = min(MAX_ROOM, 2 * room)
        except (_NotSent, NotACompletion, openai.APIError) as exc:
            if not (isinstance(exc, openai.APIError) and content_filtered(exc)):
                reason, detail = self._failure(exc)
                share_ms = outcome.duration_ms / len(chunks)
                return [
                    ChunkCoding(chunk_id=c.id, error=detail, reason=reason, usage=part, duration_ms=share_ms)
                    for c, part in zip(chunks, _shares(outcome.usage, len(chunks)))
                ]
            # the provider's filter refused the request without saying for which unit: each is asked
            # alone, so only the one it refuses goes to a person
            answers = {}
        share_ms = outcome.duration_ms / len(chunks)  # the request's time, shared as its tokens are
        codings: list[ChunkCoding | None] = []
        again: list[int] = []
        for k, (chunk, label, part) in enumerate(zip(chunks, labels, _shares(outcome.usage, len(chunks)))):
            checked = answers.get(label)
            if checked is None or checked.problems:
                again.append(k)
                codings.append(ChunkCoding(chunk_id=chunk.id, usage=part))
                continue
            codings.append(
                ChunkCoding(
                    chunk_id=chunk.id,
                    proposals=self._combine(checked.samples, checked.returned),
                    raw=json.dumps([x.content for x in checked.samples], ensure_ascii=False),
                    usage=part,
                    duration_ms=share_ms,
                )
            )

        async def alone(k: int) -> ChunkCoding:
            chunk = chunks[k]
            own = self.messages(chunk, codebook)
            # prefetched None: the call cache is asked, so a re-run does not pay for it again
            coding = await self._code_chunk(
                client, gate, chunk, own, self.request(own, codebook), codebook, _Outcome(), None
            )
            shared = codings[k]
            assert shared is not None
            return coding.model_copy(
                update={
                    "usage": coding.usage + shared.usage,
                    "duration_ms": milliseconds(coding.duration_ms + share_ms),
                }
            )

        for k, coding in zip(again, await asyncio.gather(*(alone(k) for k in again))):
            codings[k] = coding
        return [c for c in codings if c is not None]

    def _check_group(
        self, completion: Completion, chunks: list[Chunk], labels: list[str], codebook: Codebook
    ) -> dict[str, _Checked]:
        """Each unit's answer in a reply for several: only units every returned sample answered."""
        answers = {label: _Checked(returned=len(completion.contents)) for label in labels}
        for content, logprobs, refusal in zip(completion.contents, completion.logprobs, completion.refusals):
            try:
                if refusal is not None:
                    raise ValueError(refusal)
                given = split_reply(reply_data(content), labels)
            except ValueError:
                return {}  # nothing could be read: every unit is asked alone
            for label, chunk in zip(labels, chunks):
                if label not in given:
                    answers.pop(label, None)
                    continue
                checked = answers.get(label)
                if checked is None:
                    continue
                good, rejections = _validated(given[label], chunk, codebook)
                checked.problems += [r.reason for r in rejections]
                checked.samples.append(_Sample(good, content, logprobs, *_item_span(content, label)))
        return answers

    def request(
        self,
        messages: list[dict[str, str]],
        codebook: Codebook,
        mode: str | None = None,
        room: int | None = None,
        labels: Sequence[str] = (),
    ) -> tuple[dict[str, Any], str]:
        """The request body in the mode the server is known to take (or `mode`), and its cache key.
        `labels`: the units of a request for several, whose reply gives codes per label."""
        if mode is None:
            mode = "json_schema" if self.mode in ("auto", "json_schema") else "json_object"
        body = self.request_body(messages, codebook, mode, room, labels)
        return body, self.cache_key(body)

    async def _code_chunk(
        self,
        client: openai.AsyncOpenAI,
        gate: asyncio.Semaphore,
        chunk: Chunk,
        messages: list[dict[str, str]],
        first: tuple[dict[str, Any], str],
        codebook: Codebook,
        outcome: _Outcome,
        cached: dict[str, Completion] | None,
    ) -> ChunkCoding:
        import openai

        checked = _Checked()
        room: int | None = None
        try:
            for attempt in range(1, self.max_attempts + 1):
                # first requests were built, and looked up in the cache, for the whole batch at once
                request = first if attempt == 1 else self.request(messages, codebook, room=room)
                try:
                    completion = await self._complete(
                        client, gate, messages, request, codebook, outcome, cached if attempt == 1 else None
                    )
                except openai.BadRequestError:
                    if room is not None and checked.cut_off:
                        break  # more room than the model has: the reply stays cut off, for a person
                    raise
                checked = self._check(completion, chunk, codebook)
                checked.budget = _budget(request[0])
                if not checked.problems or checked.refused:
                    break  # a refusal, or a content filter, says the same when asked again
                if checked.cut_off:
                    if checked.budget >= MAX_ROOM:
                        break
                    # not a mistake to point out: the same request with room for the whole answer
                    room = min(MAX_ROOM, 2 * checked.budget)
                    continue
                if attempt < self.max_attempts:
                    messages = messages + [
                        {"role": "assistant", "content": completion.contents[0] if completion.contents else ""},
                        {"role": "user", "content": _feedback(checked.problems)},
                    ]
        except (_NotSent, NotACompletion, openai.APIError) as exc:
            if isinstance(exc, openai.APIError) and content_filtered(exc):
                body = getattr(exc, "body", None)
                words = str(body.get("message") if isinstance(body, dict) and body.get("message") else exc.message)
                return ChunkCoding(
                    chunk_id=chunk.id,
                    raw=json.dumps(words, ensure_ascii=False),
                    usage=outcome.usage,
                    duration_ms=outcome.duration_ms,
                    invalid_reply=words,
                    invalid_reason=f"the provider's content filter refused the passage: {words}",
                )
            reason, detail = self._failure(exc)
            return ChunkCoding(
                chunk_id=chunk.id, error=detail, reason=reason, usage=outcome.usage, duration_ms=outcome.duration_ms
            )
        proposals = self._combine(checked.samples, checked.returned) + checked.invalid
        unusable = not checked.samples and checked.unparsed is not None
        return ChunkCoding(
            chunk_id=chunk.id,
            proposals=proposals,
            raw=json.dumps([x.content for x in checked.samples] or checked.unparsed, ensure_ascii=False),
            usage=outcome.usage,
            duration_ms=outcome.duration_ms,
            invalid_reply=checked.unparsed if unusable else None,
            invalid_reason=checked.unusable_reason() if unusable else None,
        )

    async def _complete(
        self,
        client: openai.AsyncOpenAI,
        gate: asyncio.Semaphore,
        messages: list[dict[str, str]],
        request: tuple[dict[str, Any], str],
        codebook: Codebook,
        outcome: _Outcome,
        prefetched: dict[str, Completion] | None,
        labels: Sequence[str] = (),
    ) -> Completion:
        import openai

        body, key = request
        mode = body["response_format"]["type"]
        if prefetched is not None:
            cached = prefetched.get(key)
        else:
            cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            outcome.usage = outcome.usage + Usage(cache_hits=1)
            return cached
        async with gate:
            if mode == "json_schema" and self.mode == "json_object":
                # another request found out meanwhile that the server lacks JSON-schema mode
                mode = "json_object"
                body, key = self.request(messages, codebook, mode, labels=labels)
                cached = self.cache.get(key) if self.cache is not None else None
                if cached is not None:
                    outcome.usage = outcome.usage + Usage(cache_hits=1)
                    return cached
            if self.stop_reason:
                raise _NotSent(self.stop_reason)
            began = time.perf_counter()
            try:
                response = await self._send(client, body)
            except openai.APIStatusError as exc:
                # "json_object" here means another request already found the server lacks it
                if mode == "json_schema" and self.mode != "json_schema" and lacks_json_schema(exc):
                    with self._mode_lock:
                        self.mode = "json_object"  # chosen once: the server has no JSON-schema mode
                    body, key = self.request(messages, codebook, "json_object", labels=labels)
                    cached = self.cache.get(key) if self.cache is not None else None
                    if cached is not None:
                        outcome.usage = outcome.usage + Usage(cache_hits=1)
                        return cached
                    response = await self._send(client, body)
                else:
                    raise
            elapsed = (time.perf_counter() - began) * 1000
        outcome.duration_ms += elapsed
        try:
            completion = completion_from_json(response, elapsed)
        except NotACompletion as exc:
            outcome.usage = outcome.usage + exc.usage  # a reply paid for, read or not
            raise
        outcome.usage = outcome.usage + completion.usage
        await self._remember((key, self.endpoint, self.model, body, completion))
        return completion

    async def _send(self, client: openai.AsyncOpenAI, body: dict[str, Any]) -> Any:
        """POST one request, and again after a rate limit, a server error, a timeout or a dropped
        connection, up to `max_retries` times: after the wait the server asks for (any of the
        headers providers send), else a growing one. A 429 pauses every request of the run, not
        only this one. An error no retry can mend is raised at once."""
        import openai

        for retry in range(self.max_retries + 1):
            await self.backoff.wait()
            # every request sent counts against the limits, retries too
            if self.requests:
                await self.requests.acquire()
            if self.tokens:
                await self.tokens.acquire(_estimate_tokens(body))
            try:
                return await _post_chat(client, body)
            except BrokenReply:
                if retry == self.max_retries:
                    raise
                await asyncio.sleep(min(8.0, 0.5 * 2**retry) * (1 - 0.25 * random.random()))
                continue
            except (openai.APIStatusError, openai.APIConnectionError) as exc:
                status = getattr(exc, "status_code", None)
                transient = status is None or status in (408, 409, 429) or status >= 500
                if isinstance(exc, openai.APIStatusError) and lacks_json_schema(exc):
                    transient = False  # llama.cpp says so with a 500: asked in JSON mode instead, not again
                if retry == self.max_retries or not transient or hopeless(exc, self.model, self.endpoint):
                    raise
                response = getattr(exc, "response", None)
                asked = retry_after(response.headers) if response is not None else None
                if asked is not None and asked > MAX_WAIT:
                    raise  # a daily limit, say: the chunk fails, and the next run codes it
                delay = asked if asked is not None else min(8.0, 0.5 * 2**retry) * (1 - 0.25 * random.random())
                if status == 429:
                    self.backoff.pause(delay)
                    await self.backoff.wait()
                else:
                    await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _failure(self, exc: Exception) -> tuple[str, str]:
        """A unit's failure: its kind and the error in full. An error no request can get past (a
        refused key, an unknown model, no quota, a parameter the model does not take) stops the
        run: chunks not yet sent are not sent."""
        if isinstance(exc, _NotSent):
            return "not sent: the run stopped", f"not sent: the run stopped at {exc}"
        if isinstance(exc, NotACompletion):
            return "not a chat completion", f"{exc} (from {self.endpoint})"
        import openai

        assert isinstance(exc, openai.APIError)
        reason, detail = describe_api_error(exc)
        if reason == "timed out":
            detail += f" (no answer within --timeout {self.timeout:g} s)"
        response = getattr(exc, "response", None)
        asked = retry_after(response.headers) if response is not None else None
        if asked is not None and asked > MAX_WAIT:
            detail += f" (the server asked to wait {asked:,.0f} s: the next run codes this chunk)"
        hint = hopeless(exc, self.model, self.endpoint)
        if hint and not self.stop_reason:
            self.stop_reason = f"{detail}: {hint}"
        return reason, detail

    def _check(self, completion: Completion, chunk: Chunk, codebook: Codebook) -> _Checked:
        """Read and check every sample (choice) of a reply."""
        checked = _Checked(returned=len(completion.contents))
        for content, logprobs, finish, refusal in zip(
            completion.contents, completion.logprobs, completion.finish_reasons, completion.refusals
        ):
            if refusal is not None:
                said = refusal if finish == "content_filter" else f"the model refused: {refusal}"
                checked.refused = checked.refused or said
                checked.problems.append(said)
                checked.unparsed = refusal
                continue
            try:
                data = reply_data(content)
            except ValueError as exc:
                checked.cut_off = checked.cut_off or finish == "length"
                checked.problems.append(f"The reply was not valid JSON ({exc}).")
                checked.unparsed = content
                continue
            items = codes_in(data)
            if items is None:
                checked.cut_off = checked.cut_off or finish == "length"
                checked.problems.append('The reply must be a JSON object with a "codes" list.')
                checked.unparsed = content
                continue
            good, rejections = _validated(items, chunk, codebook)
            for rejection in rejections:
                checked.problems.append(f"{rejection.reason}: {json.dumps(rejection.raw, ensure_ascii=False)[:300]}")
                checked.invalid.append(rejection.raw)
            checked.samples.append(_Sample(good, content, logprobs))
        return checked

    def _combine(self, samples: list[_Sample], returned: int) -> list[Proposal]:
        """One proposal per code across samples, with the combined confidence. Agreement is over
        the replies the server returned, which may be fewer than asked for (Ollama ignores `n`)."""
        if not samples:
            return []
        by_code: dict[str, list[tuple[_Sample, Proposal]]] = {}
        for sample in samples:
            seen = set()
            for proposal in sample.proposals:
                if proposal.code not in seen:
                    seen.add(proposal.code)
                    by_code.setdefault(proposal.code, []).append((sample, proposal))
        combined = []
        for code, found in by_code.items():
            agreement = len(found) / max(returned, len(samples))
            rating = sum(p.confidence for _, p in found) / len(found)
            probabilities = [p for p in (_code_probability(s, code) for s, _ in found) if p is not None]
            if probabilities:
                probability = sum(probabilities) / len(probabilities)
                confidence = agreement * math.sqrt(rating * probability)
            else:
                confidence = agreement * rating
            best = max(found, key=lambda item: item[1].confidence)[1]
            combined.append(best.model_copy(update={"confidence": round(min(1.0, max(0.0, confidence)), 4)}))
        return combined


async def _post_chat(client: openai.AsyncOpenAI, body: dict[str, Any]) -> Any:
    """POST /chat/completions through the client's own request path (retries, Retry-After,
    typed errors), with the body sent and the reply read as plain JSON: the typed
    `chat.completions.create` transforms every message and schema node and builds an
    object per logprob token, which costs more CPU than everything else qcode does per chunk."""
    # the client's own key is a uuid4, one os.urandom call per request, which is slow in sandboxes
    key = f"qcode-{_RUN_TOKEN}-{next(_REQUEST_NUMBERS)}"
    # the body as text, read here: the client's own reading trusts the Content-Type, and fails the
    # whole batch on a body that is empty or cut short
    reply = await client.post("/chat/completions", cast_to=str, body=body, options={"idempotency_key": key})
    return reply_body(reply)


_RUN_TOKEN = os.urandom(8).hex()
_REQUEST_NUMBERS = itertools.count()


def _code_probability(sample: _Sample, code: str) -> float | None:
    """Probability the model gave the tokens of this code's id in this sample."""
    if not sample.logprobs:
        return None
    needle = json.dumps(code)[1:-1].encode("utf-8")
    content = sample.content.encode("utf-8")
    bound = len(content) if sample.end is None else len(sample.content[: sample.end].encode("utf-8"))
    position = content.find(b'"' + needle + b'"', len(sample.content[: sample.start].encode("utf-8")), bound)
    if position < 0:
        return None
    start, end = position + 1, position + 1 + len(needle)
    offset, total, found = 0, 0.0, False
    for _, logprob, size in sample.logprobs:
        token_end = offset + size
        if token_end > start and offset < end:
            total += logprob
            found = True
        offset = token_end
        if offset >= end:
            break
    return math.exp(total) if found else None


def _validated(items: list[Any], chunk: Chunk, codebook: Codebook) -> tuple[list[Proposal], list[Rejection]]:
    """A unit's codes as a reply gives them, put through the pipeline's own validation, so the model
    hears what would be rejected: the proposals that hold, and the rejections to point out (a code
    repeated within one reply is none: the first one stands)."""
    suggestions, rejections = validate_coding(ChunkCoding(chunk_id=chunk.id, proposals=items), chunk, codebook, "")
    good = [
        Proposal(code=x.code, justification=x.justification, quote=x.quote, confidence=x.confidence)
        for x in suggestions
    ]
    return good, [r for r in rejections if not r.reason.endswith("more than once for this chunk")]


def _item_span(content: str, label: str) -> tuple[int, int]:
    """Where one unit's codes stand in a reply for several: from its label to the next label, when
    its codes come after its label (as the schema orders them); (0, 0), none, otherwise."""
    labels = list(re.finditer(r'"unit"\s*:\s*"([^"]*)"', content))
    for k, found in enumerate(labels):
        if found.group(1) == label:
            end = labels[k + 1].start() if k + 1 < len(labels) else len(content)
            if '"codes"' in content[found.end() : end]:
                return found.end(), end
            break
    return 0, 0


def _shares(usage: Usage, parts: int) -> list[Usage]:
    """One request's usage split among the units it coded, so that their sum is the request's."""
    out = []
    for k in range(parts):
        out.append(
            Usage(
                **{
                    name: getattr(usage, name) // parts + (1 if k < getattr(usage, name) % parts else 0)
                    for name in Usage.model_fields
                }
            )
        )
    return out


def _feedback(problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in dict.fromkeys(problems))
    return (
        "Your reply could not be accepted:\n"
        + listed
        + "\nReply again with JSON only, applying only the listed code ids and copying each quote word for word "
        "from between <chunk> and </chunk>."
    )


class _NotSent(Exception):
    """A request not sent because an earlier one stopped the run."""


def _budget(body: dict[str, Any]) -> int:
    """A request's output budget in tokens."""
    return int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)


def _estimate_tokens(body: dict[str, Any]) -> int:
    """What a request counts against a tokens-per-minute limit, as providers count it: its prompt
    and its whole output budget."""
    return count_chat_tokens(body["model"], body["messages"]) + _budget(body)
