from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.coders import make_coder
from pipeline.coders.openai_chat import (
    OPENAI_ENDPOINT,
    OpenAICoder,
    _code_probability,
    _Sample,
    completion_from_json,
    redact_url,
)
from pipeline.errors import CoderError, SettingsError
from pipeline.suggestion import Usage

USAGE = Usage(input_tokens=1_000_000, cached_input_tokens=400_000, output_tokens=100_000, requests=10)


def cost(model: str, endpoint: str, usage: Usage, batch: bool = False) -> float | None:
    return OpenAICoder(model=model, base_url=endpoint).cost(usage, batch=batch)


def test_cost_from_the_price_table_with_cached_tokens_and_batch_discount() -> None:
    # gpt-4o-mini: $0.15 in, $0.075 cached in, $0.60 out per million
    assert cost("gpt-4o-mini", OPENAI_ENDPOINT, USAGE) == pytest.approx(0.09 + 0.03 + 0.06)
    assert cost("gpt-4o-mini", OPENAI_ENDPOINT, USAGE, batch=True) == pytest.approx(0.09)
    assert cost("gpt-4o-mini", OPENAI_ENDPOINT + "/", USAGE) == pytest.approx(0.09 + 0.03 + 0.06)
    assert cost("no-such-model", OPENAI_ENDPOINT, USAGE) is None
    assert cost("gpt-4o-mini", "http://127.0.0.1:8000/v1", USAGE) == 0.0
    assert cost("llama3.1", "https://gpu.example.org/v1", USAGE) == 0.0


def test_the_offline_coder_costs_nothing() -> None:
    assert make_coder("offline").cost(USAGE) == make_coder("offline").cost(USAGE, batch=True) == 0.0


def test_prices_can_be_overridden_and_a_bad_override_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "qcode.toml").write_text('[prices."my-model"]\ninput = 1.0\noutput = 2.0\n')
    assert cost("my-model", "https://gpu.example.org/v1", Usage(input_tokens=1_000_000, output_tokens=1_000_000)) == 3.0
    (tmp_path / "qcode.toml").write_text('[prices."my-model"]\ninput = 1.0\n')
    with pytest.raises(SettingsError, match="output"):
        cost("my-model", "https://gpu.example.org/v1", USAGE)


def test_the_key_is_never_sent_unencrypted_off_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(CoderError, match="unencrypted"):
        OpenAICoder(model="m", base_url="http://gpu.example.org/v1").check_ready()
    OpenAICoder(model="m", base_url="http://127.0.0.1:8000/v1").check_ready()
    OpenAICoder(model="m", base_url="https://gpu.example.org/v1").check_ready()
    coder = OpenAICoder(model="m", base_url="https://ana:pw@gpu.example.org:8443/v1")
    assert coder.parameters["endpoint"] == redact_url(coder.base_url) == "https://gpu.example.org:8443/v1"


def test_code_probability_follows_token_bytes_through_multibyte_text() -> None:
    content = '{"codes": [{"quote": "教育 😀", "code": "trust"}]}'
    tokens = []
    for ch in content:  # one token per character, as bytes; 'trust' tokens get -0.1 each
        tokens.append({"token": ch, "logprob": -0.1 if ch in "trust" else -0.001, "bytes": list(ch.encode())})
    completion = completion_from_json(
        {"choices": [{"message": {"content": content}, "logprobs": {"content": tokens}}]}, 0
    )
    probability = _code_probability(_Sample([], content, completion.logprobs[0]), "trust")
    assert probability == pytest.approx(2.718281828**-0.5, rel=1e-6)
