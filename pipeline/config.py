"""The project's settings file, `qcode.toml`: in the working directory, or named by QCODE_CONFIG.

It holds a `[run]` table (what `qcode run` takes: see pipeline/run/settings.py) and a
`[prices."MODEL"]` table per model (see pipeline/coders/prices.toml). Secrets never go in it: an
API key comes from the environment only.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pipeline.errors import SettingsError
from pipeline.files import read_text


def config_path() -> Path:
    return Path(os.environ.get("QCODE_CONFIG", "qcode.toml"))


def config_table(name: str) -> dict[str, Any]:
    """One table of qcode.toml (`run`, `prices`), empty when there is no file or no such table."""
    path = config_path()
    if not path.is_file():
        return {}
    text, _ = read_text(path)
    try:
        table = tomllib.loads(text).get(name, {})
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"not valid TOML: {exc}", file=path) from None
    if not isinstance(table, dict):
        raise SettingsError(f"[{name}] must be a table", file=path)
    return table
