"""Several units per request (issue 15): consecutive units of one transcript in one request, each
labelled, the reply read per unit, and whatever the reply gets wrong about a unit asked again for
that unit alone. The real `openai` client against the project's OpenAI-protocol server."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fakes import SMALL_CODEBOOK, code_store, qcode, write

from pipeline.coders.openai_chat import OpenAICoder
from pipeline.run.request import RunSummary

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("openai_key")]

TURNS = [
    "Interviewer: How does the district help?",
    "Ms. Chen: Funding for release time came from the district.",
    "Interviewer: And the principal?",
    "Ms. Chen: I trust her. She listens.",
    "Interviewer: Anything else?",
    "Ms. Chen: The weather was fine. Funding is thin this year.",
    "Interviewer: Thank you.",
    "Ms. Chen: Trust takes time, and so does funding.",
]


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "interviews"
    write(folder / "chen.txt", "\n".join(TURNS) + "\n")
    write(folder / "ortiz.txt", "Interviewer: And you?\nMr. Ortiz: Funding arrived late.\n")
    codebook = write(tmp_path / "small.yaml", SMALL_CODEBOOK)
    return folder, codebook


def code(study, server, db: Path, **settings: Any) -> RunSummary:
    folder, codebook = study
    settings = {
        "coder": "openai",
        "model": "gpt-4o-mini",
        "base_url": server.url,
        "unit": "turn",
        "audit_share": 0,
        **settings,
    }
    return code_store(folder, codebook, db, **settings)


def coded(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return sorted(connection.execute("select chunk_id, code, quote, quote_start from suggestions").fetchall())


def test_units_of_one_transcript_go_together_and_code_as_they_would_alone(study, server, tmp_path: Path) -> None:
    alone = code(study, server, tmp_path / "one.db")
    requests_alone = len(server.requests)
    server.reset()
    together = code(study, server, tmp_path / "four.db", units_per_request="4")
    # 8 turns of one interview and 2 of another: 4 + 4, then 2 (never two transcripts in one request)
    assert requests_alone == 10 and len(server.requests) == 3 == together.requests
    assert coded(tmp_path / "four.db") == coded(tmp_path / "one.db")  # same codes, quotes and offsets
    assert together.input_tokens < alone.input_tokens / 2
    # the request of the interview's first four turns (the three are sent at once: in any order)
    [request] = [
        r for r in server.requests if '<chunk id="u1">\nHow does the district help?' in r["messages"][-1]["content"]
    ]
    first = request["messages"][-1]["content"]
    assert [f'<chunk id="u{i}">' in first for i in range(1, 6)] == [True] * 4 + [False]
    assert first.count("How does the district help?") == 1  # each unit once: no context twice
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["units"]["items"]["properties"]["unit"]["enum"] == ["u1", "u2", "u3", "u4"]
    with sqlite3.connect(tmp_path / "four.db") as connection:
        [(parameters, prompt)] = connection.execute("select distinct parameters, prompt_version from suggestions")
    assert json.loads(parameters)["units_per_request"] == "4"
    assert prompt != coded_prompt(tmp_path / "one.db")


def coded_prompt(db: Path) -> str:
    with sqlite3.connect(db) as connection:
        [(prompt,)] = connection.execute("select distinct prompt_version from suggestions")
    return prompt


@pytest.mark.parametrize(
    ("fault", "options"),
    [("drop_unit", {}), ("mislabel_unit", {}), ("borrow_quote", {"unit": "u2"})],
    ids=["left-out", "mislabelled", "quote-of-another-unit"],
)
def test_a_unit_the_reply_gets_wrong_is_asked_again_alone(
    study, server, tmp_path: Path, fault: str, options: dict
) -> None:
    code(study, server, tmp_path / "one.db")
    server.reset()
    server.add_fault(fault, match="How does the district help?", **options)
    summary = code(study, server, tmp_path / "four.db", units_per_request="4")
    assert summary.failed_chunks == 0 and summary.rejected == 0
    assert summary.requests == 4  # three requests for the groups, and one for the unit alone
    [alone] = [r for r in server.requests if '<chunk id="' not in r["messages"][-1]["content"]]
    assert "<chunk>" in alone["messages"][-1]["content"]
    assert coded(tmp_path / "four.db") == coded(tmp_path / "one.db")


def test_a_request_the_providers_filter_refuses_is_asked_unit_by_unit(study, server, tmp_path: Path) -> None:
    message = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."
    # the unit itself, not the context of the units around it (the filter of this test reads no further)
    unit = "I trust her. She listens.\n</chunk>"
    server.add_fault("status", times=10, match=unit, status=400, code="content_filter", message=message)
    summary = code(study, server, tmp_path / "four.db", units_per_request="4")
    # the group holding the unit is refused; its four units asked alone: only that one is refused
    assert summary.failed_chunks == 0 and summary.stopped is None
    assert summary.rejected == 1 and len(server.requests) == 3 + 4
    with sqlite3.connect(tmp_path / "four.db") as connection:
        [(reason, quote)] = connection.execute(
            "select r.reason, c.text from rejections r join chunks c on c.id = r.chunk_id"
        ).fetchall()
    assert reason == f"the provider's content filter refused the passage: {message}" and "I trust her" in quote


def test_auto_fills_requests_to_a_budget_and_json_mode_works_too(study, server, tmp_path: Path) -> None:
    server.add_fault("no_json_schema", times=10**6)
    summary = code(study, server, tmp_path / "auto.db", units_per_request="auto", concurrency=1)
    assert summary.failed_chunks == 0 and summary.suggestions == 6
    grouped = [r for r in server.requests if r["response_format"]["type"] == "json_object"]
    assert len(grouped) == 2  # one request per transcript: their turns fit the budget
    assert '"units"' in grouped[0]["messages"][-1]["content"]  # the form, said in words without a schema


def test_the_dry_run_counts_requests_with_it_and_bad_settings_are_refused(study, server, tmp_path: Path) -> None:
    folder, codebook = study
    base = ["run", folder, "--codebook", codebook, "--db", tmp_path / "d.db", "--coder", "openai",
            "--model", "gpt-4o-mini", "--base-url", server.url, "--unit", "turn", "--dry-run", "--json"]  # fmt: skip
    one = json.loads(qcode(*base).stdout)
    eight = json.loads(qcode(*base, "--units-per-request", "8").stdout)
    assert (one["requests"], eight["requests"]) == (10, 2)
    assert eight["input_tokens"] < one["input_tokens"] / 2
    bad = qcode(*base, "--units-per-request", "many")
    assert (
        bad.exit_code == 1
        and "option 'units_per_request': Value error, units per request must be a number from 1 to 64, or auto"
        in bad.stderr
    )
    clash = qcode(*base, "--units-per-request", "4", "--fewshot", "2")
    assert clash.exit_code == 1 and "it does not go with units_per_request" in clash.stderr


def test_openai_gets_a_prompt_cache_key_that_does_not_change_what_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.codebook import Codebook

    codebook = Codebook.model_validate(
        {"name": "c", "description": "d", "codes": [{"id": "funding", "name": "Funding", "definition": "Money."}]}
    )
    messages = [{"role": "system", "content": "the prefix"}, {"role": "user", "content": "<chunk>\nx\n</chunk>"}]
    at_openai = OpenAICoder(model="gpt-4o-mini")
    body, key = at_openai.request(messages, codebook)
    assert body["prompt_cache_key"].startswith("qcode-")
    assert key == at_openai.cache_key({k: v for k, v in body.items() if k != "prompt_cache_key"})
    local = OpenAICoder(model="llama3.1", base_url="http://127.0.0.1:11434/v1")
    assert "prompt_cache_key" not in local.request(messages, codebook)[0]


def test_a_reply_for_several_cut_off_is_asked_again_with_room_not_unit_by_unit(study, server, tmp_path: Path) -> None:
    # 8 units have the budget of two replies; the reasoning uses it up: asked again at twice it, all fits
    server.add_fault("think", match="How does the district help?", budget=400)
    summary = code(study, server, tmp_path / "room.db", units_per_request="8", max_tokens=200)
    first = '<chunk id="u1">\nHow does the district help?'
    mine = [r for r in server.requests if first in r["messages"][-1]["content"]]
    assert [r["max_tokens"] for r in mine] == [400, 800]
    assert summary.requests == 3 and summary.failed_chunks == 0 and summary.suggestions == 6


def test_batch_mode_sends_one_unit_per_request_and_says_so(study, server, tmp_path: Path) -> None:
    folder, codebook = study
    answer = qcode(
        "run", folder, "--codebook", codebook, "--db", tmp_path / "b.db", "--coder", "openai", "--model",
        "gpt-4o-mini", "--base-url", server.url, "--units-per-request", "4", "--batch", "--json",
    )  # fmt: skip
    assert answer.exit_code != 0 and "--batch sends one unit per request" in answer.output
    assert server.requests == []


def test_a_units_log_probabilities_are_read_from_its_own_codes_only() -> None:
    from pipeline.coders.openai_chat import _code_probability, _item_span, _Sample

    content = (
        '{"units": [{"unit": "u1", "codes": [{"code": "funding"}]}, {"unit": "u2", "codes": [{"code": "trust"}]}]}'
    )
    # one token per character: "funding" at -1 each, everything else at 0
    at = content.index('"funding"') + 1
    logprobs = [(ch, -1.0 if at <= i < at + len("funding") else 0.0, 1) for i, ch in enumerate(content)]
    u1, u2 = (_Sample([], content, logprobs, *_item_span(content, label)) for label in ("u1", "u2"))
    assert _code_probability(u1, "funding") == pytest.approx(2.718281828**-7)
    assert _code_probability(u2, "funding") is None  # not u1's tokens
    assert _code_probability(u2, "trust") == 1.0
    # codes before their label (JSON mode may order keys so): no probability rather than a wrong one
    assert _item_span('{"units": [{"codes": [{"code": "trust"}], "unit": "u1"}]}', "u1") == (0, 0)
