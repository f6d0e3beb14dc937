"""Golden files: results pinned as JSON under tests/golden/, compared key order and all.

`check(name, data)` turns `data` into JSON data (pydantic models dumped as JSON, datetimes and
other objects as text), and compares it with tests/golden/NAME.json: the same keys in the same
order, the same strings, integers, booleans and nulls, and floats equal to 1e-9 (a different
processor may round the last digit of a bootstrap percentile differently). With the environment
variable QCODE_GOLDEN=write it writes the file instead; a golden file changes only when a
documented behaviour is meant to change.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

GOLDEN = Path(__file__).resolve().parent / "golden"
WRITE = os.environ.get("QCODE_GOLDEN") == "write"


def plain(value: Any) -> Any:
    """JSON data, in the order the value holds it."""
    if isinstance(value, BaseModel):
        return plain(value.model_dump(mode="json"))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, str):
            return str(value)  # a str subclass (Markup) as plain text
        return value
    return str(value)


def check(name: str, data: Any) -> None:
    path = GOLDEN / f"{name}.json"
    got = plain(data)
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, ensure_ascii=False, indent=1, allow_nan=False) + "\n", encoding="utf-8")
        return
    assert path.exists(), f"{path}: no golden file (write it with QCODE_GOLDEN=write)"
    expected = json.loads(path.read_text(encoding="utf-8"))
    problems = differences(expected, got, name)
    assert not problems, "\n".join(problems[:20])


def check_text(name: str, text: str) -> None:
    """A text pinned whole (a csv file, a page)."""
    path = GOLDEN / name
    if WRITE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="")
        return
    assert path.exists(), f"{path}: no golden file (write it with QCODE_GOLDEN=write)"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        lines, wanted = text.splitlines(), expected.splitlines()
        first = next((i for i, (a, b) in enumerate(zip(lines, wanted)) if a != b), min(len(lines), len(wanted)))
        got_line = lines[first] if first < len(lines) else "<end>"
        expected_line = wanted[first] if first < len(wanted) else "<end>"
        raise AssertionError(f"{name}, line {first + 1}:\n  expected {expected_line!r}\n  got      {got_line!r}")


def differences(expected: Any, got: Any, where: str) -> list[str]:
    """Where two JSON values differ: types, key order, values (floats to 1e-9)."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{where}: expected an object, got {type(got).__name__}"]
        if list(expected) != list(got):
            return [f"{where}: keys {list(got)}, expected {list(expected)}"]
        return [p for k in expected for p in differences(expected[k], got[k], f"{where}.{k}")]
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            return [f"{where}: expected a list of {len(expected)}, got {got!r:.200}"]
        return [p for i, (a, b) in enumerate(zip(expected, got)) for p in differences(a, b, f"{where}[{i}]")]
    if isinstance(expected, float) and not isinstance(expected, bool):
        if isinstance(got, (int, float)) and not isinstance(got, bool) and type(got) is type(expected):
            if math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-12):
                return []
        return [f"{where}: {got!r}, expected {expected!r}"]
    if type(expected) is not type(got) or expected != got:
        return [f"{where}: {got!r:.200}, expected {expected!r:.200}"]
    return []
