"""Coders propose codes for chunks. Every coder is a BaseCoder (pipeline/coders/base.py), so the
pipeline (a run, a dry run, an eval; validation, routing, the store) does not know which one it is
talking to.

Coders are found by name: the two that ship (`offline`, `openai`), those registered in this
process with `register_coder`, and those installed as plugins, which name their BaseCoder
subclass under the entry-point group `qcode.coders` of their package:

    [project.entry-points."qcode.coders"]
    echo = "qcode_echo:EchoCoder"
"""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import entry_points
from typing import Any

from pipeline.chunk import Units
from pipeline.codebook import Codebook
from pipeline.coders.base import (
    NOT_A_FLAG,
    BaseCoder,
    CoderOptions,
    Flag,
    Number,
    checked_coder,
    describe_details,
    read_options,
)
from pipeline.coders.learned import LearnedCoder
from pipeline.coders.offline import EmbeddingCoder
from pipeline.coders.openai_chat import OpenAICoder
from pipeline.coders.prompt import UNIT_NOTE
from pipeline.errors import CoderError
from pipeline.suggestion import Provenance

__all__ = [
    "ENTRY_POINTS",
    "NOT_A_FLAG",
    "BaseCoder",
    "CoderOptions",
    "Flag",
    "Number",
    "coder_class",
    "coders",
    "describe",
    "make_coder",
    "provenance",
    "register_coder",
]

ENTRY_POINTS = "qcode.coders"

_CODERS: dict[str, type[BaseCoder]] = {coder.name: coder for coder in (EmbeddingCoder, OpenAICoder, LearnedCoder)}
_BROKEN: dict[str, str] = {}  # plugins that could not be loaded: name -> why
_plugins_loaded = False


def provenance(coder: BaseCoder, codebook: Codebook, units: Units | None = None) -> Provenance:
    """The coder's identity for caching and provenance: a chunk coded under the
    same key is never coded again. Turn units and a choice of speakers are part of
    it (what the coder is told, and what validation accepts, differ), recorded only
    when used, so the key of a run of whole chunks of every speaker is unchanged."""
    parameters = dict(coder.parameters)
    if units is not None and (units.unit == "turn" or units.speakers.chosen):
        parameters["units"] = {"unit": units.unit, **units.speakers.model_dump(mode="json"), "note": UNIT_NOTE}
    identity = json.dumps(
        [coder.name, coder.model, coder.prompt_version(codebook), codebook.version, parameters],
        sort_keys=True,
        default=str,
    )
    return Provenance(
        coder=coder.name,
        model=coder.model,
        coder_key=hashlib.sha256(identity.encode()).hexdigest()[:16],
        prompt_version=coder.prompt_version(codebook),
        codebook_version=codebook.version,
        parameters=parameters,
    )


def register_coder(name: str, coder: type) -> None:
    """Make a coder available by name (`qcode run --coder NAME`, `coder: NAME` in an eval suite).

    `coder` is a BaseCoder subclass."""
    _CODERS[name] = checked_coder(coder)
    _BROKEN.pop(name, None)


def coders() -> dict[str, type[BaseCoder]]:
    """Every coder by name: the shipped ones, the registered ones, then the plugins."""
    _load_plugins()
    return dict(_CODERS)


def coder_class(name: str) -> type[BaseCoder]:
    _load_plugins()
    if name in _CODERS:
        return _CODERS[name]
    if name in _BROKEN:
        raise CoderError(f"the coder plugin '{name}' cannot be loaded: {_BROKEN[name]}")
    raise CoderError(f"unknown coder '{name}' (available: {', '.join(sorted(_CODERS))})")


def describe(name: str, model: str, parameters: dict[str, Any], prompt_version: str | None) -> str:
    """A coder configuration as a methods section names it, from what a run recorded; a coder no
    longer installed is named plainly."""
    try:
        chosen = coder_class(name)
    except CoderError:
        return f"the {name} coder ({describe_details(model, [], prompt_version)})"
    return chosen.describe(model, parameters, prompt_version)


def make_coder(name: str, **options: Any) -> BaseCoder:
    """The coder `name` with these options, checked against its Options model: an option it does
    not have, or a bad value, is a CoderError naming the coder and the option."""
    chosen = coder_class(name)
    checked = read_options(name, chosen.Options, options)
    return chosen(**checked.model_dump())


def _load_plugins() -> None:
    """Register the coders of the `qcode.coders` entry points, once; a name already taken stays
    with its coder, and a plugin that fails to load is reported when it is asked for."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for point in entry_points(group=ENTRY_POINTS):
        if point.name in _CODERS or point.name in _BROKEN:
            continue
        try:
            _CODERS[point.name] = checked_coder(point.load())
        except Exception as exc:  # a broken plugin must not stop qcode, nor the other coders
            _BROKEN[point.name] = f"{point.value}: {type(exc).__name__}: {exc}"
