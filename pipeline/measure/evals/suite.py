"""An eval suite: the YAML file (`evals/*.yaml`) that names a gold set, a codebook and the coder
configurations to compare with the people who coded the gold set (docs/evals.md, "The suite file").

`load_suite` reads and checks all of it (the suite, its codebook, its gold transcripts and codes, and
each configuration's coder options against the coder's Options model) before anything is coded,
and raises SuiteError naming the file, and the line where there is one.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import ValidationError

from pipeline.chunk import UNIT_KINDS, Units
from pipeline.codebook import Codebook, load_codebook
from pipeline.coders import make_coder
from pipeline.errors import CodebookError, SuiteError, problems
from pipeline.files import load_yaml, read_text
from pipeline.ingest import CsvOptions
from pipeline.ingest.gold import Gold, check_units, read_gold, read_transcripts
from pipeline.measure.agreement import LEVELS, Level
from pipeline.route import RoutingPolicy
from pipeline.run.request import RunRequest
from pipeline.transcript import SpeakerChoice

DEFAULT_DB = ".qcode-eval.db"
SUITE_KEYS = ("name", "description", "gold", "codebook", "db", "bootstrap", "seed", "level", "configurations")
# how units are cut: in gold, the default of every configuration; in a configuration, its own
UNIT_KEYS = ("unit", "chunk_size", "overlap", "max_unit_chars", "speakers", "skip_speakers")
GOLD_KEYS = ("transcripts", "codes", *UNIT_KEYS, "id_column", "text_column")
# every other key of a configuration is an option of its coder, as its Options model names them
# (model, base_url, prompt, temperature, ... for openai; similarity_threshold, ... for offline)
CONFIGURATION_KEYS = (
    "name",
    "coder",
    "threshold",
    *UNIT_KEYS,
    "batch_size",
    "requires_env",
    "description",
    "training",
)


@dataclass(frozen=True)
class Configuration:
    """A coder configuration of a suite: a coder with its options, a threshold and its units."""

    name: str
    coder: str
    options: dict[str, Any]  # the coder's options as the suite writes them (checked by its Options model)
    threshold: float | None  # None: every valid suggestion counts as a code
    units: Units
    batch_size: int | None
    requires_env: list[str]
    description: str = ""
    # the learned coder's training set: (codes, transcripts), in the format of gold
    training: tuple[Path, Path] | None = None
    # how it is trained: the learner (auto, linear, finetuned) and the case attribute its folds are grouped by
    learner: str = "auto"
    group_by: str | None = None

    @property
    def skipped(self) -> str | None:
        """Why the configuration does not run now (an environment variable it needs is unset), or None."""
        unset = [name for name in self.requires_env if not os.environ.get(name)]
        if unset:
            return f"set {' and '.join(unset)} to run it"
        return None

    @property
    def routing(self) -> RoutingPolicy:
        """The run's routing: at the configuration's threshold, else qcode's default."""
        return RoutingPolicy() if self.threshold is None else RoutingPolicy(threshold=self.threshold)


@dataclass(frozen=True)
class Suite:
    path: Path
    name: str
    description: str
    transcripts: Path  # gold.transcripts: the folder (or file) of the gold transcripts
    codes: list[Path]  # gold.codes
    codebook_path: Path
    codebook: Codebook
    db: str  # a database URL
    bootstrap: int
    seed: int
    level: Level | None  # None: as `qcode agreement` chooses
    configurations: list[Configuration]
    id_column: str | None
    text_column: str | None
    gold: Gold


def load_suite(path: str | Path) -> Suite:
    """Read a suite file, its codebook, its gold transcripts and codes; raise SuiteError on any problem."""
    path = Path(path)
    where = str(path)
    text, _ = read_text(path)
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SuiteError(f"{where}: not valid YAML{line}: {problem}") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{where}: a suite is a mapping with gold, codebook and configurations")
    _unknown(where, "the suite", data, SUITE_KEYS)
    folder = path.resolve().parent

    gold = data.get("gold")
    if not isinstance(gold, dict):
        raise SuiteError(f"{where}: 'gold' must be a mapping with transcripts (a folder) and codes (a CSV file)")
    _unknown(where, "gold", gold, GOLD_KEYS)
    for key in ("transcripts", "codes"):
        if not gold.get(key):
            raise SuiteError(f"{where}: gold.{key} is missing")
    transcripts = _existing(where, "gold.transcripts", folder, gold["transcripts"])
    codes_value = gold["codes"] if isinstance(gold["codes"], list) else [gold["codes"]]
    codes = [_existing(where, "gold.codes", folder, value) for value in codes_value]
    units = _units(where, "gold.", gold, Units())

    if not data.get("codebook"):
        raise SuiteError(f"{where}: 'codebook' is missing (a codebook YAML file, relative to the suite)")
    codebook_path = _existing(where, "codebook", folder, data["codebook"])
    try:
        codebook = load_codebook(codebook_path)
    except CodebookError as exc:
        first = exc.problems[0] if exc.problems else "unreadable"
        raise SuiteError(
            f"{where}: the codebook {codebook_path} has {len(exc.problems)} problem(s), e.g. {first}"
        ) from None

    db = data.get("db") or DEFAULT_DB
    if not isinstance(db, str):
        raise SuiteError(f"{where}: 'db' must be a database URL or a SQLite file path")
    if "://" not in db:
        db = f"sqlite:///{(folder / db).resolve()}"

    level = data.get("level")
    if level is not None and level not in LEVELS:
        raise SuiteError(f"{where}: level '{level}' is not one of {', '.join(LEVELS)}")
    name = str(data.get("name") or path.stem)
    description = str(data.get("description") or "").strip()
    bootstrap = _integer(where, "bootstrap", data.get("bootstrap", 1000), 0)
    seed = _integer(where, "seed", data.get("seed", 0), None)
    configurations = _configurations(where, data.get("configurations"), units, folder)

    id_column, text_column = gold.get("id_column"), gold.get("text_column")
    read = read_transcripts(where, transcripts, CsvOptions(id_column, text_column))
    suite = Suite(
        path=path,
        name=name,
        description=description,
        transcripts=transcripts,
        codes=codes,
        codebook_path=codebook_path,
        codebook=codebook,
        db=db,
        bootstrap=bootstrap,
        seed=seed,
        level=cast(Level | None, level),  # one of LEVELS, checked above
        configurations=configurations,
        id_column=id_column,
        text_column=text_column,
        gold=read_gold(codes, read, transcripts, codebook, codebook_path),
    )
    clash = sorted({c.name for c in configurations} & (set(suite.gold.coders) | {"consensus"}))
    if clash:
        raise SuiteError(
            f"{where}: configuration name '{clash[0]}' is also a human coder's name (or 'consensus'); "
            "rename the configuration"
        )
    for configuration in configurations:
        try:
            run_request(suite, configuration)
        except ValidationError as exc:
            raise SuiteError(f"{where}: configuration '{configuration.name}': " + problems(exc)) from None
        if suite.gold.format == "units":
            check_units(suite.gold, configuration.name, configuration.units)
    return suite


def run_request(suite: Suite, configuration: Configuration, db: str | None = None) -> RunRequest:
    """The run that codes the suite's gold transcripts with one configuration (into `db`, or the suite's)."""
    return RunRequest(
        paths=[str(suite.transcripts)],
        codebook=str(suite.codebook_path),
        db=db or suite.db,
        coder=configuration.coder,
        coder_options=dict(configuration.options),
        unit=configuration.units.unit,
        chunk_size=configuration.units.size,
        overlap=configuration.units.overlap,
        max_unit_chars=configuration.units.max_chars,
        speakers=list(configuration.units.speakers.speakers),
        skip_speakers=list(configuration.units.speakers.skip_speakers),
        routing=configuration.routing,
        batch_size=configuration.batch_size,
        id_column=suite.id_column,
        text_column=suite.text_column,
    )


def _unknown(where: str, what: str, mapping: Mapping[object, object], allowed: Sequence[str]) -> None:
    unknown = [str(k) for k in mapping if k not in allowed]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], list(allowed), n=1)
        raise SuiteError(
            f"{where}: {what} has unknown key(s) {', '.join(unknown)}"
            + (f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(allowed)})")
        )


def _existing(where: str, key: str, folder: Path, value: object) -> Path:
    if not isinstance(value, str):
        raise SuiteError(f"{where}: {key} must be a path (relative to the suite's folder)")
    found = (folder / value).resolve()
    if not found.exists():
        raise SuiteError(f"{where}: {key}: {value} does not exist (looked for {found})")
    return found


def _integer(where: str, key: str, value: object, minimum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        bound = f" of at least {minimum}" if minimum is not None else ""
        raise SuiteError(f"{where}: {key} must be a whole number{bound}, not {value!r}")
    return value


def _units(where: str, prefix: str, mapping: Mapping[str, Any], default: Units) -> Units:
    """How a suite's gold, or one configuration, cuts units: its keys over `default`."""
    unit = mapping.get("unit", default.unit)
    if unit not in UNIT_KINDS:
        raise SuiteError(f"{where}: {prefix}unit must be one of {', '.join(UNIT_KINDS)}, not {unit!r}")
    names: dict[str, tuple[str, ...]] = {}
    for key in ("speakers", "skip_speakers"):
        value = mapping.get(key, getattr(default.speakers, key))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise SuiteError(f"{where}: {prefix}{key} must be a name or a list of names, not {value!r}")
        names[key] = SpeakerChoice.of(",".join(value)).speakers
    units = Units(
        unit=unit,
        size=_integer(where, f"{prefix}chunk_size", mapping.get("chunk_size", default.size), 50),
        overlap=_integer(where, f"{prefix}overlap", mapping.get("overlap", default.overlap), 0),
        max_chars=_integer(where, f"{prefix}max_unit_chars", mapping.get("max_unit_chars", default.max_chars), 50),
        speakers=SpeakerChoice(speakers=names["speakers"], skip_speakers=names["skip_speakers"]),
    )
    if units.overlap >= units.size:
        raise SuiteError(f"{where}: {prefix}overlap must be smaller than {prefix}chunk_size")
    return units


def _configurations(where: str, raw: object, default: Units, folder: Path) -> list[Configuration]:
    """The suite's configurations; `default` is their units (the gold codes', else qcode's)."""
    if not isinstance(raw, list) or not raw:
        raise SuiteError(f"{where}: 'configurations' must be a list with at least one coder configuration")
    configurations: list[Configuration] = []
    for position, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise SuiteError(f"{where}: configuration {position} must be a mapping (name, coder, options)")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise SuiteError(f"{where}: configuration {position} needs a name")
        name = name.strip()
        what = f"{where}: configuration '{name}'"
        if any(c.name == name for c in configurations):
            raise SuiteError(f"{what}: the name is used twice; each configuration needs its own")
        coder = item.get("coder", "offline")
        options = {str(k): v for k, v in item.items() if k not in CONFIGURATION_KEYS}
        threshold = item.get("threshold")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1
        ):
            raise SuiteError(f"{what}: threshold must be a number from 0 to 1, not {threshold!r}")
        requires = item.get("requires_env") or []
        requires = [requires] if isinstance(requires, str) else requires
        if not isinstance(requires, list) or not all(isinstance(r, str) and r for r in requires):
            raise SuiteError(f"{what}: requires_env must be an environment variable's name or a list of them")
        batch_size = item.get("batch_size")
        training = item.get("training")
        learner, group_by = "auto", None
        if training is not None:
            if not isinstance(training, dict) or not {"transcripts", "codes"} <= set(training):
                raise SuiteError(
                    f"{what}: training must be a mapping of transcripts (a folder) and codes (a CSV file), and "
                    "optionally learner and group_by"
                )
            _unknown(what, "training", training, ["transcripts", "codes", "learner", "group_by"])
            learner = str(training.get("learner") or "auto")
            if learner not in ("auto", "linear", "finetuned"):
                raise SuiteError(f"{what}: training.learner must be auto, linear or finetuned, not {learner!r}")
            group_by = str(training["group_by"]).strip() if training.get("group_by") else None
            training = (
                _existing(what, "training.codes", folder, training["codes"]),
                _existing(what, "training.transcripts", folder, training["transcripts"]),
            )
        configuration = Configuration(
            name=name,
            coder=str(coder),
            options=options,
            threshold=None if threshold is None else float(threshold),
            units=_units(what, "", item, default),
            batch_size=None if batch_size is None else _integer(what, "batch_size", batch_size, 1),
            requires_env=requires,
            description=str(item.get("description") or "").strip(),
            training=training,
            learner=learner,
            group_by=group_by,
        )
        try:
            make_coder(configuration.coder, **options)  # its Options name an unknown option or a bad value
        except Exception as exc:  # QcodeError, or whatever a plugin's coder raises on its options
            raise SuiteError(f"{what}: {exc}") from None
        configurations.append(configuration)
    return configurations
