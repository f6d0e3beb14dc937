"""A model's reply read the way real servers write it.

Reasoning models put their reasoning before the answer (`<think>…</think>` from qwen3 and
deepseek-r1 on Ollama or llama.cpp), and local models often wrap JSON in a markdown fence with a
sentence before it. The answer is the JSON after the reasoning: in a fence when there is one, else
the first JSON object of the text. What a reply holds besides that is never read as codes.
"""

from __future__ import annotations

import json
import re
from typing import Any

_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.IGNORECASE | re.DOTALL)
_OPEN_THINK = re.compile(r"^\s*<(think|thinking|reasoning)>", re.IGNORECASE)
_CLOSE_THINK = re.compile(r"</(think|thinking|reasoning)>", re.IGNORECASE)
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n(.*?)\n[ \t]*```", re.DOTALL)


def answer_text(content: str) -> str:
    """The reply without its reasoning: empty when the reasoning never ended (the reply was cut
    off inside it). A closing tag alone (the chat template opened the block) ends it too."""
    text = _THINK.sub("", content)
    if _OPEN_THINK.match(text):
        return ""
    closes = list(_CLOSE_THINK.finditer(text))
    if closes:
        text = text[closes[-1].end() :]
    return text.strip()


def reply_data(content: str) -> Any:
    """The JSON value a reply answers with. Raises ValueError saying why there is none."""
    text = answer_text(content)
    if not text:
        raise ValueError("the reply holds no answer" + (" after its reasoning" if content.strip() else ""))
    first_error: json.JSONDecodeError | None = None
    for candidate in _candidates(text):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            first_error = first_error or exc
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start >= 0:  # prose around the answer: the first object that parses and answers
        try:
            found = decoder.raw_decode(text, start)[0]
        except json.JSONDecodeError:
            found = None
        # an object inside a reply cut off (one of its codes) is no answer
        if isinstance(found, dict) and ("codes" in found or "units" in found):
            return found
        start = text.find("{", start + 1)
    raise ValueError(str(first_error) if first_error else "no JSON in the reply")


def _candidates(text: str) -> list[str]:
    fenced = [m.group(1).strip() for m in _FENCE.finditer(text)]
    return [text, *fenced]


def codes_in(data: Any) -> list[Any] | None:
    """A one-unit reply's list of codes: its "codes", also when a server wrapped the object in
    another ({"response": {"codes": [...]}}) or answered with the list alone; None when none is
    there. Each code is still validated whatever shape it came in."""
    if isinstance(data, list) and data and all(isinstance(item, dict) and "code" in item for item in data):
        return data
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("codes"), list):
        return list(data["codes"])
    inner = [v for v in data.values() if isinstance(v, dict) and isinstance(v.get("codes"), list)]
    return list(inner[0]["codes"]) if len(inner) == 1 else None
