"""Settings for `qcode run` and `qcode schedule`: command-line flags over environment variables over
the `[run]` table of `qcode.toml` over defaults, checked and made into a RunRequest.

`[run]` holds the run's own settings (the fields of RunSettings: codebook, db, coder, threshold,
audit_share, seed, unit, chunk_size, overlap, max_unit_chars, speakers, skip_speakers, batch_size, name,
max_file_mb;
speakers and skip_speakers as a list of names or one comma-separated string) and the options of the coder, by the names its
Options model gives them (for the openai coder model, base_url, prompt, temperature, samples, ...;
see `qcode run --help`). An option of another coder is ignored, as a flag of another coder is; a
key that is neither a run setting nor an option of any coder is an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from pipeline.chunk import DEFAULT_MAX_UNIT_CHARS, DEFAULT_OVERLAP, DEFAULT_SIZE, UnitKind, Units
from pipeline.codebook import Codebook, load_codebook
from pipeline.coders import BaseCoder, Flag, coder_class, coders, make_coder
from pipeline.coders.prices import price_table
from pipeline.config import config_path, config_table
from pipeline.errors import FlagError, SettingsError, problems
from pipeline.files import DEFAULT_MAX_FILE_MB, file_size_limit
from pipeline.route import RoutingPolicy
from pipeline.run.request import RunRequest
from pipeline.store import has_password, redact
from pipeline.transcript import SpeakerChoice


class RunSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codebook: str | None = None
    db: str | None = None
    coder: str = "offline"
    threshold: float = 0.6
    audit_share: float = 0.10
    seed: int = 0
    unit: UnitKind = "chunk"
    chunk_size: int = DEFAULT_SIZE
    overlap: int = DEFAULT_OVERLAP
    max_unit_chars: int = DEFAULT_MAX_UNIT_CHARS
    speakers: str | list[str] = Field(default_factory=list)
    skip_speakers: str | list[str] = Field(default_factory=list)
    batch_size: int | None = None
    name: str | None = None
    max_file_mb: int = Field(default=DEFAULT_MAX_FILE_MB, ge=1)  # files over it are refused unread
    # the chosen coder's options, as given (make_coder checks them against the coder's Options)
    coder_options: dict[str, Any] = Field(default_factory=dict)


# the run's own settings: a coder option of the same name is never read from flags or [run]
RUN_SETTINGS = frozenset(RunSettings.model_fields) - {"coder_options"}
UNIT_SETTINGS = frozenset({"unit", "chunk_size", "overlap", "max_unit_chars", "speakers", "skip_speakers"})


def load_settings(overrides: dict[str, Any] | None = None) -> RunSettings:
    """Settings for `qcode run`: the config file, then QCODE_* variables, then flags (`overrides`:
    run settings and coder options by name; None is not given)."""
    values: dict[str, Any] = dict(config_table("run"))
    path = config_path()
    where = path if path.is_file() else None
    if os.environ.get("QCODE_DB"):
        values["db"] = os.environ["QCODE_DB"]
    if os.environ.get("QCODE_THRESHOLD"):
        values["threshold"] = os.environ["QCODE_THRESHOLD"]
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    options = {k: v for k, v in values.items() if k not in RUN_SETTINGS}
    known = {name for coder in coders().values() for name in coder.Options.model_fields}
    unknown = [k for k in options if k not in known]
    if unknown:
        raise SettingsError(
            "; ".join(f"unknown field '{k}' (neither a run setting nor an option of a coder)" for k in unknown),
            file=where,
        )
    try:
        settings = RunSettings.model_validate({k: v for k, v in values.items() if k in RUN_SETTINGS})
    except ValidationError as exc:
        raise SettingsError(problems(exc), file=where) from None
    chosen = coder_class(settings.coder).Options
    flags = {flag.name: flag for flag in chosen.flags()}
    settings.coder_options = {k: _as_flag(flags.get(k), v) for k, v in options.items() if k in chosen.model_fields}
    return settings


def _as_flag(flag: Flag | None, value: Any) -> Any:
    """An option's value as its flag would read it, so `temperature = 0` in qcode.toml codes as
    `--temperature 0` does (the coder key hashes 0.0, not 0). A value the flag cannot read is left
    for the coder's Options to refuse."""
    if flag is None:
        return value
    try:
        return TypeAdapter(flag.type).validate_python(value)
    except ValidationError:
        return value


def _unit_fields(settings: RunSettings) -> dict[str, Any]:
    return {
        "unit": settings.unit,
        "chunk_size": settings.chunk_size,
        "overlap": settings.overlap,
        "max_unit_chars": settings.max_unit_chars,
        "speakers": list(SpeakerChoice.of(settings.speakers).speakers),
        "skip_speakers": list(SpeakerChoice.of(skip_speakers=settings.skip_speakers).skip_speakers),
    }


def _request(overrides: dict[str, Any], **fields: Any) -> RunRequest:
    """A RunRequest of these fields; a value given as a flag that cannot be is named as the flag
    (the command line is what is wrong), any other as a setting."""
    try:
        request = RunRequest(**fields)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][-1]) if error["loc"] else ""
        if overrides.get(field) is not None:
            flag = "--" + field.replace("_", "-")
            raise FlagError(f"{flag} {overrides[field]}: {str(error['msg']).removeprefix('Value error, ')}") from None
        raise SettingsError(problems(exc)) from None
    if request.overlap >= request.chunk_size:
        raise SettingsError("--overlap must be smaller than --chunk-size")
    return request


def unit_settings(overrides: dict[str, Any]) -> Units:
    """The units of `qcode run`'s settings (its unit flags, `overrides`, over qcode.toml over the
    defaults), checked as a run checks them: what `qcode train` learns on."""
    settings = load_settings(overrides)
    return _request(overrides, paths=[], codebook="", **_unit_fields(settings)).units()


def _settled(
    coder: BaseCoder, codebook: Codebook, request: RunRequest, settings: RunSettings, overrides: dict[str, Any]
) -> RunRequest:
    """The request with the units its coder codes (the learned coder: those its model was trained
    on, unless told otherwise) and the options the coder pins."""
    given = frozenset(settings.model_fields_set) & UNIT_SETTINGS
    flags = frozenset(k for k, v in overrides.items() if v is not None) & UNIT_SETTINGS
    units, pinned = coder.settle_units(request.db, codebook, request.codebook, request.units(), given, flags)
    return request.model_copy(
        update={
            "unit": units.unit,
            "chunk_size": units.size,
            "overlap": units.overlap,
            "max_unit_chars": units.max_chars,
            "speakers": list(units.speakers.speakers),
            "skip_speakers": list(units.speakers.skip_speakers),
            "coder_options": {**request.coder_options, **pinned},
        }
    )


def run_request(
    paths: Sequence[str | Path],
    overrides: dict[str, Any],
    *,
    id_column: str | None = None,
    text_column: str | None = None,
    batch: bool = False,
    poll_interval: float = 30.0,
    ready: bool = True,
) -> RunRequest:
    """A checked run request from flags (`overrides`), environment and qcode.toml. Whatever would stop
    the run is found now, before any work: the codebook, the coder's options, batch mode, the price
    table, and with `ready` whether the coder can reach its model."""
    settings = load_settings(overrides)
    # every file the request reads (the codebook, a coder's prompt files) is held to the limit too
    with file_size_limit(settings.max_file_mb):
        if not settings.codebook:
            raise SettingsError("name a codebook with --codebook FILE (or codebook = ... under [run] in qcode.toml)")
        codebook = load_codebook(settings.codebook)
        request = _request(
            overrides,
            paths=[str(p) for p in paths],
            name=(settings.name or "").strip() or None,
            codebook=settings.codebook,
            db=settings.db,
            coder=settings.coder,
            coder_options=settings.coder_options,
            **_unit_fields(settings),
            routing=RoutingPolicy(threshold=settings.threshold, audit_share=settings.audit_share, seed=settings.seed),
            batch_size=settings.batch_size,
            max_file_mb=settings.max_file_mb,
            id_column=id_column,
            text_column=text_column,
            batch=batch,
            poll_interval=poll_interval,
        )
        chosen = make_coder(request.coder, **request.coder_options)  # its options are checked before any work
        request = _settled(chosen, codebook, request, settings, overrides)
        if batch:
            chosen.check_batch()
        price_table()  # a malformed override in qcode.toml fails now, not after every call is paid for
        if has_password(request.db):
            # the password stays in this process's environment, never in run records
            os.environ["QCODE_DB"] = request.db or ""
            request.db = redact(request.db or "")
        if ready:
            chosen.check_ready()
        return request
