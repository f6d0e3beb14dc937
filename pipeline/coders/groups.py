"""Several units in one request (`--units-per-request N` or `auto`).

Most of a request is the same prefix (instructions and codebook), so sending consecutive units of
one transcript together cuts the input tokens per unit, and the requests a tokens-per-minute limit
allows go further. The units of a request are labelled u1, u2, ... in the order they stand in the
transcript; the units around one are its context, so context is sent once, before the first and
after the last (and the words between two units that are no unit, such as an interviewer's turn
when only participants are coded). The reply gives codes per label; each unit's codes are checked
against that unit alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pipeline.chunk import Chunk

# `auto`: consecutive units of one transcript while their words stay under this many tokens
AUTO_TOKENS = 2400
MAX_UNITS = 16


def parse_per_request(value: str | int) -> int | None:
    """A units-per-request setting: a number of units (1 or more), or None for `auto`."""
    text = str(value).strip().lower()
    if text == "auto":
        return None
    if not text.isdigit() or not 1 <= int(text) <= 64:
        raise ValueError(f"units per request must be a number from 1 to 64, or auto (not '{value}')")
    return int(text)


def group_units(chunks: Sequence[Chunk], per_request: int | None, tokens: Callable[[str], int]) -> list[list[int]]:
    """Which chunks go in one request, as lists of positions: consecutive units of one transcript,
    `per_request` at most, or under `auto` as many as keep their words under AUTO_TOKENS (and
    MAX_UNITS)."""
    groups: list[list[int]] = []
    size = 0
    for i, chunk in enumerate(chunks):
        cost = tokens(chunk.text) if per_request is None else 0
        current = groups[-1] if groups else None
        fits = (
            current is not None
            and chunks[current[-1]].transcript_id == chunk.transcript_id
            and chunks[current[-1]].index < chunk.index
            and (
                len(current) < per_request
                if per_request is not None
                else len(current) < MAX_UNITS and size + cost <= AUTO_TOKENS
            )
        )
        if fits and current is not None:
            current.append(i)
            size += cost
        else:
            groups.append([i])
            size = cost
    return groups


def labels_for(count: int) -> list[str]:
    return [f"u{i + 1}" for i in range(count)]


def between(previous: Chunk, unit: Chunk) -> str:
    """The words between two units of a request that belong to neither: the end of `unit`'s context
    after `previous`'s last words (all its context when `previous` lies beyond it)."""
    if unit.start <= previous.end:
        return ""
    tail = previous.text.strip()[-60:]
    at = unit.before.rfind(tail) if tail else -1
    return unit.before[at + len(tail) :].strip() if at >= 0 else unit.before


def units_schema(codes_schema: dict[str, Any], labels: Sequence[str]) -> dict[str, Any]:
    """The strict JSON schema of a reply for several units: per label, the single reply's codes."""
    return {
        "type": "object",
        "properties": {
            "units": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "unit": {"type": "string", "enum": list(labels)},
                        "codes": codes_schema["properties"]["codes"],
                    },
                    "required": ["unit", "codes"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["units"],
        "additionalProperties": False,
    }


def split_reply(data: Any, labels: Sequence[str]) -> dict[str, list[Any]]:
    """Each label's codes in a reply for several units. A label the reply leaves out, gives twice,
    or gives without a list of codes is missing from the answer; a label it makes up is ignored."""
    items = data.get("units") if isinstance(data, dict) else None
    found: dict[str, list[Any]] = {}
    twice: set[str] = set()
    for item in items if isinstance(items, list) else []:
        label = item.get("unit") if isinstance(item, dict) else None
        codes = item.get("codes") if isinstance(item, dict) else None
        if not isinstance(label, str) or label not in labels or not isinstance(codes, list):
            continue
        if label in found:
            twice.add(label)
        found[label] = codes
    return {label: codes for label, codes in found.items() if label not in twice}
