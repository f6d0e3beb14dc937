"""Settings for `qcode run` and `qcode schedule`: command-line flags over environment variables over
the `[run]` table of `qcode.toml` over defaults, checked and made into a RunRequest.

`[run]` holds any of: codebook, db, coder, threshold, audit_share, seed, chunk_size, overlap,
batch_size, and for the openai coder model, base_url, prompt, temperature, samples, max_attempts,
concurrency, rpm, tpm, timeout, max_retries, fewshot.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.chunk import DEFAULT_OVERLAP, DEFAULT_SIZE
from pipeline.codebook import load_codebook
from pipeline.coders import make_coder
from pipeline.coders.prices import price_table
from pipeline.config import config_path, config_table
from pipeline.errors import SettingsError, problems
from pipeline.route import RoutingPolicy
from pipeline.run.request import RunRequest
from pipeline.store import has_password, redact


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


def load_settings(overrides: dict[str, Any] | None = None) -> RunSettings:
    """Settings for `qcode run`: the config file, then QCODE_* variables, then flags."""
    values: dict[str, Any] = dict(config_table("run"))
    path = config_path()
    if os.environ.get("QCODE_DB"):
        values["db"] = os.environ["QCODE_DB"]
    if os.environ.get("QCODE_THRESHOLD"):
        values["threshold"] = os.environ["QCODE_THRESHOLD"]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return RunSettings.model_validate(values)
    except ValidationError as exc:
        raise SettingsError(problems(exc), file=path if path.is_file() else None) from None


def run_request(
    paths: list[str | Path],
    overrides: dict[str, Any],
    *,
    similarity_threshold: float | None = None,
    id_column: str | None = None,
    text_column: str | None = None,
    batch: bool = False,
    poll_interval: float = 30.0,
    ready: bool = True,
) -> RunRequest:
    """A checked run request from flags (`overrides`), environment and qcode.toml. Whatever would stop
    the run is found now, before any work: the codebook, the coder's configuration, the price
    table, and with `ready` whether the coder can reach its model."""
    settings = load_settings(overrides)
    if not settings.codebook:
        raise SettingsError("name a codebook with --codebook FILE (or codebook = ... under [run] in qcode.toml)")
    load_codebook(settings.codebook)
    if settings.coder == "offline":
        coder_options: dict[str, Any] = {"similarity_threshold": similarity_threshold}
    else:
        coder_options = {
            name: getattr(settings, name)
            for name in (
                "model",
                "base_url",
                "prompt",
                "temperature",
                "samples",
                "max_attempts",
                "concurrency",
                "rpm",
                "tpm",
                "timeout",
                "max_retries",
                "fewshot",
            )
        }
    coder_options = {k: v for k, v in coder_options.items() if v is not None}
    try:
        request = RunRequest(
            paths=[str(p) for p in paths],
            codebook=settings.codebook,
            db=settings.db,
            coder=settings.coder,
            coder_options=coder_options,
            chunk_size=settings.chunk_size,
            overlap=settings.overlap,
            routing=RoutingPolicy(threshold=settings.threshold, audit_share=settings.audit_share, seed=settings.seed),
            batch_size=settings.batch_size,
            id_column=id_column,
            text_column=text_column,
            batch=batch,
            poll_interval=poll_interval,
        )
    except ValidationError as exc:
        raise SettingsError(problems(exc)) from None
    if request.overlap >= request.chunk_size:
        raise SettingsError("--overlap must be smaller than --chunk-size")
    if batch and request.coder != "openai":
        raise SettingsError("--batch needs --coder openai")
    if request.coder == "openai" and not request.coder_options.get("model"):
        raise SettingsError("the openai coder needs a model: --model NAME (or model = ... under [run] in qcode.toml)")
    price_table()  # a malformed override fails now, not after every call is paid for
    if has_password(request.db):
        # the password stays in this process's environment, never in run records
        os.environ["QCODE_DB"] = request.db or ""
        request.db = redact(request.db or "")
    chosen = make_coder(request.coder, **request.coder_options)  # configuration errors before any work
    if ready and hasattr(chosen, "check_ready"):
        chosen.check_ready()
    return request
