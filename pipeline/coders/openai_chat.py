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
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, Field

from pipeline.chunk import Chunk
from pipeline.codebook import Codebook
from pipeline.coders.base import NOT_A_FLAG, BaseCoder, CoderOptions, Number, describe_details
from pipeline.coders.batch import prefill_by_batch
from pipeline.coders.calls import CallCache, Completion, completion_from_json
from pipeline.coders.fewshot import ExamplePicker, adjudicated
from pipeline.coders.limits import RateLimiter
from pipeline.coders.prices import price_table
from pipeline.coders.prompt import DEFAULT_PROMPT, Prompt
from pipeline.coders.tokens import count_chat_tokens
from pipeline.errors import CoderError
from pipeline.suggestion import ChunkCoding, Proposal, Usage
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


@dataclass
class _Outcome:
    usage: Usage = field(default_factory=Usage)
    duration_ms: float = 0.0


class OpenAICoder(BaseCoder):
    """A language model behind the `openai` client, at OpenAI or any OpenAI-compatible server."""

    name = "openai"

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
        max_tokens: int | None = Field(default=1024, description="most tokens of one reply (default 1024).")
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

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        temperature: float = 0.0,
        top_p: float | None = None,
        samples: int = 1,
        max_tokens: int | None = 1024,
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
        self.temperature = temperature
        self.top_p = top_p
        self.samples = samples
        self.max_tokens = max_tokens
        self.seed = seed
        self.logprobs = logprobs
        self.mode: Mode = mode
        self.max_attempts = max_attempts
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.prompt = Prompt(prompt)
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
        return Usage(
            input_tokens=sum(count_chat_tokens(self.model, self.messages(c, codebook)) for c in chunks),
            output_tokens=OUTPUT_TOKENS_PER_SAMPLE * self.samples * len(chunks),
            requests=len(chunks),
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
        """The Batch API: OpenAI's, or a compatible server's."""

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
        return self.prompt.version(codebook)

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

    def request_body(self, messages: list[dict[str, str]], codebook: Codebook, mode: str) -> dict[str, Any]:
        """The chat-completion request, without the model call's transport settings."""
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if self.top_p is not None:
            body["top_p"] = self.top_p
        if self.samples > 1:
            body["n"] = self.samples
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        if self.seed is not None:
            body["seed"] = self.seed
        if self.logprobs:
            body["logprobs"] = True
        if mode == "json_schema":
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "codes", "strict": True, "schema": self._frame(codebook).schema},
            }
        else:
            body["response_format"] = {"type": "json_object"}
        return body

    def cache_key(self, body: dict[str, Any]) -> str:
        material = json.dumps({"endpoint": self.base_url, **body}, sort_keys=True, ensure_ascii=False)
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
                max_retries=self.max_retries,
                http_client=openai.DefaultAioHttpClient(timeout=self.timeout),
            )
            self._gate = asyncio.Semaphore(self.concurrency)
        client, gate = self._client, self._gate
        assert gate is not None  # made with the client
        messages = [self.messages(chunk, codebook) for chunk in chunks]
        firsts = [self.request(m, codebook) for m in messages]
        cached = self.cache.get_many([key for _, key in firsts]) if self.cache is not None else {}
        outcomes: list[_Outcome] = [_Outcome() for _ in chunks]
        try:
            results = await asyncio.gather(
                *(
                    self._code_chunk(client, gate, chunk, m, first, codebook, outcome, cached)
                    for chunk, m, first, outcome in zip(chunks, messages, firsts, outcomes)
                )
            )
        finally:
            # calls paid for are kept even when the batch fails, so a re-run does not pay again
            await asyncio.shield(self._flush())
        return list(results)

    def request(
        self, messages: list[dict[str, str]], codebook: Codebook, mode: str | None = None
    ) -> tuple[dict[str, Any], str]:
        """The request body in the mode the server is known to take (or `mode`), and its cache key."""
        if mode is None:
            mode = "json_schema" if self.mode in ("auto", "json_schema") else "json_object"
        body = self.request_body(messages, codebook, mode)
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
        cached: dict[str, Completion],
    ) -> ChunkCoding:
        import openai

        samples: list[_Sample] = []
        invalid: list[Any] = []
        unparsed: str | None = None
        try:
            for attempt in range(1, self.max_attempts + 1):
                # first requests were built, and looked up in the cache, for the whole batch at once
                request = first if attempt == 1 else self.request(messages, codebook)
                completion = await self._complete(
                    client, gate, messages, request, codebook, outcome, cached if attempt == 1 else None
                )
                samples, invalid, problems, unparsed = self._check(completion, chunk, codebook)
                if not problems:
                    break
                if attempt < self.max_attempts:
                    messages = messages + [
                        {"role": "assistant", "content": completion.contents[0] if completion.contents else ""},
                        {"role": "user", "content": _feedback(problems)},
                    ]
        except openai.APIError as exc:
            return ChunkCoding(
                chunk_id=chunk.id, error=_describe_error(exc), usage=outcome.usage, duration_ms=outcome.duration_ms
            )
        proposals = self._combine(samples, codebook) + invalid
        return ChunkCoding(
            chunk_id=chunk.id,
            proposals=proposals,
            raw=json.dumps([s.content for s in samples] or unparsed, ensure_ascii=False),
            usage=outcome.usage,
            duration_ms=outcome.duration_ms,
            invalid_reply=unparsed if not samples and unparsed is not None else None,
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
                body, key = self.request(messages, codebook, mode)
                cached = self.cache.get(key) if self.cache is not None else None
                if cached is not None:
                    outcome.usage = outcome.usage + Usage(cache_hits=1)
                    return cached
            if self.requests:
                await self.requests.acquire()
            if self.tokens:
                await self.tokens.acquire(_estimate_tokens(body))
            began = time.perf_counter()
            try:
                response = await _post_chat(client, body)
            except openai.BadRequestError as exc:
                # "json_object" here means another request already found the server lacks it
                if mode == "json_schema" and self.mode != "json_schema" and _lacks_json_schema(exc):
                    with self._mode_lock:
                        self.mode = "json_object"  # chosen once: the server has no JSON-schema mode
                    body, key = self.request(messages, codebook, "json_object")
                    cached = self.cache.get(key) if self.cache is not None else None
                    if cached is not None:
                        outcome.usage = outcome.usage + Usage(cache_hits=1)
                        return cached
                    response = await _post_chat(client, body)
                else:
                    raise
            elapsed = (time.perf_counter() - began) * 1000
        completion = completion_from_json(response, elapsed)
        outcome.usage = outcome.usage + completion.usage
        outcome.duration_ms += elapsed
        await self._remember((key, self.endpoint, self.model, body, completion))
        return completion

    def _check(
        self, completion: Completion, chunk: Chunk, codebook: Codebook
    ) -> tuple[list[_Sample], list[Any], list[str], str | None]:
        """Parse and check every sample: (valid samples, invalid items, problems, unparsed content)."""
        samples: list[_Sample] = []
        invalid: list[Any] = []
        problems: list[str] = []
        unparsed = None
        for content, logprobs in zip(completion.contents, completion.logprobs):
            try:
                data = json.loads(content)
            except (json.JSONDecodeError, TypeError) as exc:
                problems.append(f"The reply was not valid JSON ({exc}).")
                unparsed = content
                continue
            items = data.get("codes") if isinstance(data, dict) else None
            if not isinstance(items, list):
                problems.append('The reply must be a JSON object with a "codes" list.')
                unparsed = content
                continue
            # the same checks as the pipeline's validation, so the model hears what would be rejected
            suggestions, rejections = validate_coding(
                ChunkCoding(chunk_id=chunk.id, proposals=items), chunk, codebook, ""
            )
            good = [
                Proposal(code=x.code, justification=x.justification, quote=x.quote, confidence=x.confidence)
                for x in suggestions
            ]
            for rejection in rejections:
                if rejection.reason.endswith("more than once for this chunk"):
                    continue  # a code repeated within one reply: the first one stands
                problems.append(f"{rejection.reason}: {json.dumps(rejection.raw, ensure_ascii=False)[:300]}")
                invalid.append(rejection.raw)
            samples.append(_Sample(good, content, logprobs))
        return samples, invalid, problems, unparsed

    def _combine(self, samples: list[_Sample], codebook: Codebook) -> list[Proposal]:
        """One proposal per code across samples, with the combined confidence."""
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
            agreement = len(found) / self.samples
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


async def _post_chat(client: openai.AsyncOpenAI, body: dict[str, Any]) -> dict[str, Any]:
    """POST /chat/completions through the client's own request path (retries, Retry-After,
    typed errors), with the body sent and the reply read as plain JSON: the typed
    `chat.completions.create` transforms every message and schema node and builds an
    object per logprob token, which costs more CPU than everything else qcode does per chunk."""
    # the client's own key is a uuid4, one os.urandom call per request, which is slow in sandboxes
    key = f"qcode-{_RUN_TOKEN}-{next(_REQUEST_NUMBERS)}"
    reply = await client.post("/chat/completions", cast_to=object, body=body, options={"idempotency_key": key})
    return reply  # type: ignore[return-value]  # cast_to=object: the JSON body as it came


_RUN_TOKEN = os.urandom(8).hex()
_REQUEST_NUMBERS = itertools.count()


def _code_probability(sample: _Sample, code: str) -> float | None:
    """Probability the model gave the tokens of this code's id in this sample."""
    if not sample.logprobs:
        return None
    needle = json.dumps(code)[1:-1].encode("utf-8")
    position = sample.content.encode("utf-8").find(b'"' + needle + b'"')
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


def _feedback(problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in dict.fromkeys(problems))
    return (
        "Your reply could not be accepted:\n"
        + listed
        + "\nReply again with JSON only, applying only the listed code ids and copying each quote word for word "
        "from between <chunk> and </chunk>."
    )


def _lacks_json_schema(exc: openai.BadRequestError) -> bool:
    text = str(exc).lower()
    return "response_format" in text or "json_schema" in text or "json schema" in text


def _describe_error(exc: openai.APIError) -> str:
    status = getattr(exc, "status_code", None)
    kind = type(exc).__name__
    return f"{kind} ({status}): {exc.message}" if status else f"{kind}: {exc.message}"


def _estimate_tokens(body: dict[str, Any]) -> int:
    return count_chat_tokens(body["model"], body["messages"]) + (body.get("max_tokens") or 0) // 4
