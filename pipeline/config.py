"""Project settings: command-line flags over environment over `qcode.toml` over defaults.

`qcode.toml` (in the working directory, or named by QCODE_CONFIG) holds a
`[run]` table with any of: codebook, db, coder, threshold, audit_share, seed,
chunk_size, overlap, batch_size, and for the openai coder model, base_url,
prompt, temperature, samples, max_attempts, concurrency, rpm, tpm, timeout,
max_retries, fewshot; and a
`[prices."MODEL"]` table per model (see pipeline/coders/prices.toml). Secrets never go
in it: the API key comes from OPENAI_API_KEY only.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.chunk import DEFAULT_OVERLAP, DEFAULT_SIZE


class ConfigError(Exception):
    pass


class RunSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codebook: str | None = None
    db: str | None = None
    coder: str = "offline"
    threshold: float = 0.6
    audit_share: float = 0.10
    seed: int = 0
    chunk_size: int = DEFAULT_SIZE
    overlap: int = DEFAULT_OVERLAP
    batch_size: int | None = None
    # the openai coder
    model: str | None = None
    base_url: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    samples: int | None = None
    max_attempts: int | None = None
    concurrency: int | None = None
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    timeout: float | None = None
    max_retries: int | None = None
    fewshot: int | None = None


def config_path() -> Path:
    return Path(os.environ.get("QCODE_CONFIG", "qcode.toml"))


def load_settings(overrides: dict[str, Any] | None = None) -> RunSettings:
    """Settings for `qcode run`: the config file, then QCODE_* variables, then flags."""
    values: dict[str, Any] = {}
    path = config_path()
    if path.is_file():
        try:
            values.update(tomllib.loads(path.read_text(encoding="utf-8")).get("run", {}))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    if os.environ.get("QCODE_DB"):
        values["db"] = os.environ["QCODE_DB"]
    if os.environ.get("QCODE_THRESHOLD"):
        values["threshold"] = os.environ["QCODE_THRESHOLD"]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return RunSettings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path if path.is_file() else 'settings'}: {problems}") from exc
