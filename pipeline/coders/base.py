"""What a coder is: `BaseCoder`, with the defaults the pipeline relies on, and `CoderOptions`, the
options a coder declares.

A coder proposes codes for chunks. The pipeline (a run, a dry run, an eval) talks to every coder
through BaseCoder and never asks which coder it is: a coder says how many chunks it codes at once,
keeps what it needs in the store, checks it can reach its model, counts what it would send, prices
what it used and, if it has one, offers a batch mode. A coder overrides what differs from the
defaults below.

Its options are a pydantic model, `class Options(CoderOptions)` on the coder class, one field per
option with a `description`. The same model is read by `qcode run` and `qcode schedule` (each
field is a flag, `--NAME`, its help the description), by the `[run]` table of qcode.toml and by
the configurations of eval suites. `make_coder` checks options against it and hands the coder
every option as a keyword argument, so a coder's constructor takes them by the same names.
"""

from __future__ import annotations

import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, ValidationError

from pipeline.chunk import Chunk, Units
from pipeline.codebook import Codebook
from pipeline.errors import CoderError
from pipeline.suggestion import ChunkCoding, Usage

# A number option keeps the type it was given in: `temperature: 0` in an eval suite stays the
# integer 0, as it always has, because the coder key and the model-call cache key hash the
# option's JSON ("0" is not "0.0"). A flag, and qcode.toml's [run] table, read it as a float.
Number = int | float

# Field(json_schema_extra=NOT_A_FLAG): an option that eval suites and qcode.toml may set, but that
# `qcode run` and `qcode schedule` do not offer as a flag.
NOT_A_FLAG: dict[str, Any] = {"flag": False}


@dataclass(frozen=True)
class Flag:
    """A coder option as a command-line flag (and as a value of qcode.toml's [run] table)."""

    name: str  # the option's name; the flag is --name with dashes for underscores
    type: Any  # str, int, float, bool, Path or a Literal
    description: str


class CoderOptions(BaseModel):
    """A coder's options; a coder with options declares `class Options(CoderOptions)`."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def flags(cls) -> list[Flag]:
        """The options that are flags: every field of a simple type (text, a number, a yes/no, a
        choice), unless it is marked NOT_A_FLAG."""
        found = []
        for name, field in cls.model_fields.items():
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            kind = _flag_type(field.annotation)
            if kind is not None and extra.get("flag", True):
                found.append(Flag(name, kind, field.description or ""))
        return found


def _flag_type(annotation: Any) -> Any:
    """The type a flag parses for an option of this type; None when it cannot be a flag."""
    if typing.get_origin(annotation) is Annotated:
        return _flag_type(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if set(members) == {int, float}:
            return float  # Number
        return _flag_type(members[0]) if len(members) == 1 else None
    if annotation in (str, int, float, bool, Path) or typing.get_origin(annotation) is Literal:
        return annotation
    return None


class BaseCoder(ABC):
    """A coder. Subclasses set `name` and `model`, declare `Options`, and implement `parameters`,
    `prompt_version` and `code`; every other member has a default that fits a coder working in
    this process at no cost."""

    name: ClassVar[str]
    model: str
    Options: ClassVar[type[CoderOptions]] = CoderOptions

    batch_size: int = 32  # chunks per batch it codes best: a run codes and stores them together
    batches_in_flight: int = 1  # batches it can code at once (a coder waiting on a network: more)
    # set by a coder that met an error no request can get past (a refused key, an unknown model, no
    # quota): the run sends nothing more, keeps what was coded, and says this
    stop_reason: str | None = None
    # a coder that reads its instructions in words (a language model) can be steered by words in the
    # data: its units are checked for instructions (pipeline.route.instructions_flag)
    follows_instructions: bool = False

    @property
    @abstractmethod
    def parameters(self) -> dict[str, Any]:
        """Everything that shapes the coder's output (never a secret): part of the coder key, so
        a chunk coded under the same parameters is never coded again."""

    @abstractmethod
    def prompt_version(self, codebook: Codebook) -> str | None:
        """A version of the instructions the coder works from, for provenance."""

    @abstractmethod
    def code(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        """One ChunkCoding per chunk, in order. A chunk the coder could not code carries
        `error`; it is stored as failed and coded again by the next run. An exception fails the
        whole batch the same way (a TimeoutError, ConnectionError or OSError is retried first)."""

    @property
    def limits(self) -> dict[str, Any]:
        """Settings that change speed but not output: recorded with the run, not in the coder key."""
        return {}

    def use_store(self, store: Any) -> None:
        """The run's store, before any coding: for a cache, or examples kept there."""
        return None

    def prepare(self, codebook: Codebook) -> None:
        """The codebook the run codes with, after `use_store` and before the coder's identity
        (`parameters`, `model`) is read: for a coder whose configuration depends on it (the learned
        coder takes the newest model trained for it). Raise a CoderError when it cannot code with it."""
        return None

    def settle_units(
        self,
        db: str | None,
        codebook: Codebook,
        codebook_path: str,
        units: Units,
        given: frozenset[str],
        flags: frozenset[str],
    ) -> tuple[Units, dict[str, Any]]:
        """The units this coder codes, from those the run's settings make, and options it pins for the
        run (`codebook_path`: the codebook's file, as messages name it). `given` names the unit settings a person gave (unit, chunk_size, overlap, max_unit_chars,
        speakers, skip_speakers), `flags` those given on the command line. A coder trained on units of
        its own (the learned coder) takes them where none were given, and refuses a contradiction: a
        FlagError when a flag contradicts them, a SettingsError when qcode.toml does."""
        return units, {}

    def check_store(self, db: str | None, codebook: Codebook, codebook_path: str) -> None:
        """Raise a CoderError when the coder cannot code with what the database `db` holds, before a
        run opens it: opening makes a database that does not exist, and a run that then fails would
        leave an empty one behind. The learned coder codes with a model trained into the store."""
        return None

    def transcript_notes(self, transcript_ids: Sequence[str]) -> list[str]:
        """What the coder has to say of the transcripts a run covers, after `use_store` and `prepare`
        (the learned coder: those it was trained on)."""
        return []

    def check_ready(self) -> None:
        """Raise a CoderError when a run could not work (no key, no server); a dry run skips this."""
        return None

    def close(self) -> None:
        """Called once when the run is done, also when it failed."""
        return None

    def estimate_usage(self, chunks: Sequence[Chunk], codebook: Codebook) -> Usage:
        """What coding these chunks would send, for a dry run: nothing, unless the coder says."""
        return Usage()

    @classmethod
    def describe(cls, model: str, parameters: dict[str, Any], prompt_version: str | None) -> str:
        """The coder as a methods section names it, from what a run recorded: 'the X coder (model M,
        prompt version P)'. A coder says more (its sampling settings) by overriding this."""
        return f"the {cls.name} coder ({describe_details(model, [], prompt_version)})"

    def cost(self, usage: Usage, batch: bool = False) -> float | None:
        """Dollars for this usage (`batch`: sent in batch mode); None when the coder cannot tell.
        Usage of nothing costs nothing; a coder that sends requests or tokens prices them itself."""
        if usage.requests == usage.input_tokens == usage.output_tokens == 0:
            return 0.0
        return None

    def check_batch(self) -> None:
        """Raise a CoderError unless the coder can send first requests in batch mode (`--batch`)."""
        raise CoderError(f"the {self.name} coder has no batch mode (--batch)")

    def prefill_by_batch(
        self,
        store: Any,
        codebook: Codebook,
        coder_key: str,
        run_id: str,
        chunks: Sequence[Chunk],
        poll_interval: float,
        report: Callable[[str], None] | None = None,
    ) -> Usage:
        """Batch mode: answer the chunks' first requests in advance (slower, cheaper), so that
        coding them finds the answers ready. Returns the usage billed in batch mode."""
        self.check_batch()
        return Usage()


def checked_coder(coder_class: Any) -> type[BaseCoder]:
    """`coder_class` when it is a BaseCoder subclass; a CoderError saying so otherwise."""
    if not (isinstance(coder_class, type) and issubclass(coder_class, BaseCoder)):
        raise CoderError(f"a coder is a subclass of pipeline.coders.BaseCoder, not {coder_class!r}")
    return coder_class


def read_options(name: str, options_class: type[CoderOptions], values: dict[str, Any]) -> CoderOptions:
    """The options of the coder `name`, checked: a CoderError names each option that is unknown
    or has a bad value."""
    try:
        return options_class.model_validate(values)
    except ValidationError as exc:
        raise CoderError("; ".join(_option_problem(name, error) for error in exc.errors())) from None


def _option_problem(name: str, error: Any) -> str:
    option = str(error["loc"][0]) if error["loc"] else ""
    if error["type"] == "extra_forbidden":
        return f"the {name} coder has no option '{option}'"
    if error["type"] == "missing":
        return f"the {name} coder needs the option '{option}'"
    return f"the {name} coder's option '{option}': {error['msg']}"


def describe_details(model: str, settings: list[str], prompt_version: str | None) -> str:
    """'model M, SETTING..., prompt version P', for a coder's description."""
    version = [f"prompt version {prompt_version}"] if prompt_version else []
    return ", ".join([f"model {model}", *settings, *version])
