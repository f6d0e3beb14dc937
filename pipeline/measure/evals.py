"""Evals: code a gold set with each coder configuration and measure its agreement with the human coders.

A suite file (YAML, `evals/*.yaml`) names a gold set (transcripts plus the codes two or more people
gave them), a codebook and one or more coder configurations. `run_suite` codes the gold set with
each configuration through the normal pipeline (`pipeline.run.corpus.code_corpus`, the run without
Prefect, into the suite's database, so
a re-run answers from the store and the model-call cache and pays nothing), maps the human codes
onto that configuration's chunks, and computes agreement with `pipeline.measure.agreement`: each
configuration against the human consensus and each human, beside the humans against each other.
docs/evals.md describes the suite and gold formats for researchers.

The human codes come in one of two shapes:

- passages (`file,coder,code` with `quote` and/or `start,end`): what a coder highlighted in which
  transcript. A passage counts for every chunk that holds at least half of it, or at least
  `MIN_CHARS` characters of it (`pipeline.chunk.holds`), so the same gold set serves any chunk size.
  A coder who has a row for a file coded all of that file: its chunks without any of their passages
  are "no code". A REFI-QDA project (`.qdpx`) given as gold codes is read as passages: its users'
  codings, on the project's own text sources.
- units (`unit_id,coder,code`): qcode chunk ids, as `qcode export --format blind` writes them. They
  hold for one chunking only; a configuration whose chunks do not include them is refused.

The gate (`--fail-under METRIC=VALUE`) reads, for every configuration that ran, its statistic
against the human consensus: the `kind: model-consensus` entry of the agreement report's `pairwise`
list, a point estimate; a configuration fails when it is under VALUE or undefined.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.coders import BaseCoder, make_coder
from pipeline.errors import QcodeError, SuiteError, problems
from pipeline.files import read_text
from pipeline.route import RoutingPolicy
from pipeline.run.corpus import code_corpus
from pipeline.run.request import RunRequest
from pipeline.suggestion import HumanCode, Usage

DEFAULT_DB = ".qcode-eval.db"
GATE_METRICS = (
    "krippendorff_alpha",
    "cohen_kappa",
    "percent_agreement",
    "exact_agreement",
    "cohen_kappa_linear",
    "cohen_kappa_quadratic",
)
SUITE_KEYS = ("name", "description", "gold", "codebook", "db", "bootstrap", "seed", "level", "configurations")
GOLD_KEYS = ("transcripts", "codes", "chunk_size", "overlap", "id_column", "text_column")
# every other key of a configuration is an option of its coder, as its Options model names them
# (model, base_url, prompt, temperature, ... for openai; similarity_threshold, ... for offline)
CONFIGURATION_KEYS = (
    "name",
    "coder",
    "threshold",
    "chunk_size",
    "overlap",
    "batch_size",
    "requires_env",
    "description",
)
PASSAGE_COLUMNS = ("file", "coder", "code")
UNIT_COLUMNS = ("unit_id", "coder", "code")


# ---------------------------------------------------------------- the suite


@dataclass
class Configuration:
    name: str
    coder: str
    options: dict[str, Any]
    threshold: float | None
    chunk_size: int
    overlap: int
    batch_size: int | None
    requires_env: list[str]
    description: str = ""

    @property
    def skipped(self) -> str | None:
        """Why the configuration does not run now (an environment variable it needs is unset), or None."""
        unset = [name for name in self.requires_env if not os.environ.get(name)]
        if unset:
            return f"set {' and '.join(unset)} to run it"
        return None

    @property
    def chunking(self) -> tuple[int, int]:
        return self.chunk_size, self.overlap


def _span(coder: str, code: str, transcript_id: str, offsets: tuple[int, int]) -> HumanCode:
    return HumanCode(coder=coder, code=code, transcript_id=transcript_id, start=offsets[0], end=offsets[1])


@dataclass
class Gold:
    format: str  # "passages" or "units"
    coders: list[str]
    files: list[str]  # the gold files, for messages
    spans: list[HumanCode] = field(default_factory=list)
    coverage: set[tuple[str, str]] = field(default_factory=set)  # (coder, transcript id) coded whole
    units: list[dict[str, str]] = field(default_factory=list)  # unit_id, coder, code; with line and file
    rows: int = 0
    relocated: int = 0  # passages whose offsets did not match their quote, found by the quote


@dataclass
class Suite:
    path: Path
    name: str
    description: str
    transcripts: Path
    codes: list[Path]
    codebook_path: Path
    codebook: Any
    db: str
    bootstrap: int
    seed: int
    level: str | None
    configurations: list[Configuration]
    gold_chunking: tuple[int, int] | None
    id_column: str | None
    text_column: str | None
    gold: Gold | None = None
    transcript_list: list[Any] = field(default_factory=list)  # as qcode reads them
    by_file: dict[str, list[Any]] = field(default_factory=dict)  # the gold codes' file name -> its transcripts
    folded: dict[str, tuple[str, list[int]]] = field(default_factory=dict)  # transcript id -> _normal(text)
    notes: list[str] = field(default_factory=list)


def load_suite(path: str | Path) -> Suite:
    """Read a suite file, its codebook, its gold transcripts and codes; raise SuiteError on any problem."""
    import yaml

    path = Path(path)
    where = str(path)
    text, _ = read_text(path)
    try:
        data = yaml.safe_load(text)
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
    gold_chunking = None
    if gold.get("chunk_size") is not None or gold.get("overlap") is not None:
        gold_chunking = (
            _integer(where, "gold.chunk_size", gold.get("chunk_size", 1200), 50),
            _integer(where, "gold.overlap", gold.get("overlap", 0), 0),
        )

    if not data.get("codebook"):
        raise SuiteError(f"{where}: 'codebook' is missing (a codebook YAML file, relative to the suite)")
    codebook_path = _existing(where, "codebook", folder, data["codebook"])
    from pipeline.codebook import CodebookError, load_codebook

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

    from pipeline.measure.agreement import LEVELS

    level = data.get("level")
    if level is not None and level not in LEVELS:
        raise SuiteError(f"{where}: level '{level}' is not one of {', '.join(LEVELS)}")
    suite = Suite(
        path=path,
        name=str(data.get("name") or path.stem),
        description=str(data.get("description") or "").strip(),
        transcripts=transcripts,
        codes=codes,
        codebook_path=codebook_path,
        codebook=codebook,
        db=db,
        bootstrap=_integer(where, "bootstrap", data.get("bootstrap", 1000), 0),
        seed=_integer(where, "seed", data.get("seed", 0), None),
        level=level,
        configurations=[],
        gold_chunking=gold_chunking,
        id_column=gold.get("id_column"),
        text_column=gold.get("text_column"),
    )
    suite.configurations = _configurations(suite, data.get("configurations"))
    suite.transcript_list = _read_transcripts(suite)
    for transcript in suite.transcript_list:
        suite.by_file.setdefault(_gold_name(suite, transcript), []).append(transcript)
    suite.gold = _read_gold(suite)
    clash = sorted({c.name for c in suite.configurations} & (set(suite.gold.coders) | {"consensus"}))
    if clash:
        raise SuiteError(
            f"{where}: configuration name '{clash[0]}' is also a human coder's name (or 'consensus'); "
            "rename the configuration"
        )
    for configuration in suite.configurations:
        if suite.gold.format == "units":
            _check_units(suite, configuration)
    return suite


def _unknown(where: str, what: str, mapping: dict, allowed: Iterable[str]) -> None:
    unknown = [str(k) for k in mapping if k not in allowed]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], list(allowed), n=1)
        raise SuiteError(
            f"{where}: {what} has unknown key(s) {', '.join(unknown)}"
            + (f" (did you mean '{hint[0]}'?)" if hint else f" (known: {', '.join(allowed)})")
        )


def _existing(where: str, key: str, folder: Path, value: Any) -> Path:
    if not isinstance(value, str):
        raise SuiteError(f"{where}: {key} must be a path (relative to the suite's folder)")
    found = (folder / value).resolve()
    if not found.exists():
        raise SuiteError(f"{where}: {key}: {value} does not exist (looked for {found})")
    return found


def _integer(where: str, key: str, value: Any, minimum: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        bound = f" of at least {minimum}" if minimum is not None else ""
        raise SuiteError(f"{where}: {key} must be a whole number{bound}, not {value!r}")
    return value


def _configurations(suite: Suite, raw: Any) -> list[Configuration]:
    where = str(suite.path)
    if not isinstance(raw, list) or not raw:
        raise SuiteError(f"{where}: 'configurations' must be a list with at least one coder configuration")
    configurations: list[Configuration] = []
    default_size, default_overlap = suite.gold_chunking or (1200, 0)
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
        options = {k: v for k, v in item.items() if k not in CONFIGURATION_KEYS}
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
        configuration = Configuration(
            name=name,
            coder=str(coder),
            options=options,
            threshold=None if threshold is None else float(threshold),
            chunk_size=_integer(what, "chunk_size", item.get("chunk_size", default_size), 50),
            overlap=_integer(what, "overlap", item.get("overlap", default_overlap), 0),
            batch_size=None if batch_size is None else _integer(what, "batch_size", batch_size, 1),
            requires_env=requires,
            description=str(item.get("description") or "").strip(),
        )
        if configuration.overlap >= configuration.chunk_size:
            raise SuiteError(f"{what}: overlap must be smaller than chunk_size")
        try:
            make_coder(configuration.coder, **options)  # its Options name an unknown option or a bad value
        except QcodeError as exc:
            raise SuiteError(f"{what}: {exc}") from None
        except Exception as exc:
            raise SuiteError(f"{what}: {exc}") from None
        try:
            request(suite, configuration)
        except ValidationError as exc:
            raise SuiteError(f"{what}: " + problems(exc)) from None
        configurations.append(configuration)
    return configurations


def request(suite: Suite, configuration: Configuration, db: str | None = None) -> RunRequest:
    """The RunRequest that codes the suite's gold transcripts with one configuration."""
    routing = RoutingPolicy() if configuration.threshold is None else RoutingPolicy(threshold=configuration.threshold)
    return RunRequest(
        paths=[str(suite.transcripts)],
        codebook=str(suite.codebook_path),
        db=db or suite.db,
        coder=configuration.coder,
        coder_options=dict(configuration.options),
        chunk_size=configuration.chunk_size,
        overlap=configuration.overlap,
        routing=routing,
        batch_size=configuration.batch_size,
        id_column=suite.id_column,
        text_column=suite.text_column,
    )


# ---------------------------------------------------------------- the gold set


def _read_transcripts(suite: Suite) -> list[Any]:
    """The gold transcripts as a run reads them (the same ids, text and offsets)."""
    from pipeline.ingest import CsvOptions, IngestError, discover, read_source

    sources, errors = discover([suite.transcripts])
    if errors:
        raise SuiteError(f"{suite.path}: gold.transcripts: {errors[0].path}: {errors[0].message}")
    found = []
    for source in sources:
        try:
            found += read_source(source, CsvOptions(suite.id_column, suite.text_column))
        except IngestError as exc:
            raise SuiteError(f"{suite.path}: gold transcript {exc.path}: {exc.message}") from None
    if not found:
        raise SuiteError(f"{suite.path}: gold.transcripts: no transcripts in {suite.transcripts}")
    return found


def _gold_name(suite: Suite, transcript: Any) -> str:
    """A transcript's file as the gold codes name it: its path relative to gold.transcripts."""
    path = Path(transcript.source_path).resolve()
    root = suite.transcripts if suite.transcripts.is_dir() else suite.transcripts.parent
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    text, _ = read_text(path)
    # lines starting with # before the header are comments (a file's provenance note)
    lines = text.splitlines(keepends=True)
    skipped = 0
    while skipped < len(lines) and (lines[skipped].startswith("#") or not lines[skipped].strip()):
        skipped += 1
    reader = csv.DictReader(io.StringIO("".join(lines[skipped:])))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise SuiteError(f"{path}: the file has no header; expected file,coder,code,quote or unit_id,coder,code")
    reader.fieldnames = header
    rows = []
    for row in reader:
        line = skipped + reader.line_num
        rows.append((line, {k: (v or "").strip() for k, v in row.items() if k is not None}))
    return header, rows


def _read_gold(suite: Suite) -> Gold:
    leaves = {c.id for c in suite.codebook.leaves}
    gold: Gold | None = None
    for path in suite.codes:
        if path.suffix.lower() == ".qdpx":
            if gold is None:
                gold = Gold(format="passages", coders=[], files=[])
            elif gold.format != "passages":
                raise SuiteError(
                    f"{path}: gold code files mix passages (a project) and units (unit_id,...); use one shape"
                )
            gold.files.append(str(path))
            _project_passages(suite, gold, path, leaves)
            continue
        header, rows = _read_table(path)
        if all(c in header for c in UNIT_COLUMNS):
            shape = "units"
        elif all(c in header for c in PASSAGE_COLUMNS):
            shape = "passages"
            if "quote" not in header and not ("start" in header and "end" in header):
                raise SuiteError(
                    f"{path}: missing column quote (or start and end): each passage needs a quote of "
                    "the coded text or its character offsets"
                )
        else:
            missing = [c for c in PASSAGE_COLUMNS if c not in header]
            raise SuiteError(
                f"{path}: missing column(s) {', '.join(missing)} (found: {', '.join(header)}); "
                "gold codes need file,coder,code with quote (or start,end), or unit_id,coder,code"
            )
        if gold is None:
            gold = Gold(format=shape, coders=[], files=[])
        elif gold.format != shape:
            raise SuiteError(f"{path}: gold code files mix passages (file,...) and units (unit_id,...); use one shape")
        gold.files.append(str(path))
        for line, row in rows:
            gold.rows += 1
            where = f"{path}: line {line}"
            if not row.get("coder"):
                raise SuiteError(f"{where}: the coder is empty")
            code = row.get("code", "")
            if code and code not in leaves:
                hint = difflib.get_close_matches(code, sorted(leaves), n=1)
                raise SuiteError(
                    f"{where}: code '{code}' is not an applicable code of the codebook "
                    f"'{suite.codebook.name}' ({suite.codebook_path.name})"
                    + (f"; did you mean '{hint[0]}'?" if hint else "")
                )
            if shape == "units":
                if not row.get("unit_id"):
                    raise SuiteError(f"{where}: the unit_id is empty")
                gold.units.append({"unit_id": row["unit_id"], "coder": row["coder"], "code": code, "where": where})
            else:
                _passage(suite, gold, where, row, code)
        if not rows:
            raise SuiteError(f"{path}: the file has a header but no codes")
    assert gold is not None
    coders = {row["coder"] for row in gold.units} | {coder for coder, _ in gold.coverage}
    gold.coders = sorted(coders)
    if len(gold.coders) < 2:
        raise SuiteError(
            f"{', '.join(gold.files)}: only one human coder ({', '.join(gold.coders)}); a gold set is "
            "coded independently by two or more people"
        )
    if gold.format == "units":
        seen: dict[tuple[str, str], str] = {}
        for row in gold.units:
            key = (row["unit_id"], row["coder"])
            kind = "none" if not row["code"] else "code"
            if seen.setdefault(key, kind) != kind:
                raise SuiteError(
                    f"{row['where']}: coder '{row['coder']}' both applied no code and applied codes to "
                    f"unit '{row['unit_id']}'; keep one or the other"
                )
    return gold


def _project_passages(suite: Suite, gold: Gold, path: Path, leaves: set[str]) -> None:
    """The codings of a REFI-QDA project's users, on its text sources (which gold.transcripts must hold)."""
    from pipeline.exchange.codebooks import ExchangeError
    from pipeline.exchange.projects import read_project

    try:
        project = read_project(path)
    except ExchangeError as exc:
        raise SuiteError(str(exc)) from None
    known = {t.id for t in suite.transcript_list}
    names = {t.id: t.source_name for t in project.transcripts}
    for code in project.codes:
        gold.rows += 1
        where = f"{path}: {code.coder}'s coding of {names[code.transcript_id]} at {code.original_start}"
        if code.transcript_id not in known:
            raise SuiteError(
                f"{where}: the source is not among the gold transcripts; name the project in gold.transcripts too"
            )
        if code.code not in leaves:
            raise SuiteError(
                f"{where}: code '{code.code}' is not an applicable code of the codebook "
                f"'{suite.codebook.name}' ({suite.codebook_path.name})"
            )
        gold.coverage.add((code.coder, code.transcript_id))
        gold.spans.append(code.model_copy(update={"original_start": None, "original_end": None}))
    if not project.codes:
        raise SuiteError(f"{path}: the project has no codings of text to use as gold codes")


def _passage(suite: Suite, gold: Gold, where: str, row: dict[str, str], code: str) -> None:
    name = row.get("file", "").replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    if not name:
        raise SuiteError(f"{where}: the file is empty")
    transcripts = suite.by_file.get(name, [])
    if not transcripts:
        hint = difflib.get_close_matches(name, sorted(suite.by_file), n=1)
        raise SuiteError(
            f"{where}: no transcript '{name}' in {suite.transcripts}" + (f"; did you mean '{hint[0]}'?" if hint else "")
        )
    coder = row["coder"]
    for transcript in transcripts:  # a coder with a row for a file coded all of it
        gold.coverage.add((coder, transcript.id))
    quote, start, end = row.get("quote", ""), row.get("start", ""), row.get("end", "")
    if not code:
        return  # the coder coded this file; a passage with no code adds nothing
    if not quote and not (start and end):
        raise SuiteError(f"{where}: code '{code}' needs the passage: a quote, or start and end")
    offsets = None
    if start or end:
        try:
            offsets = (int(start), int(end))
        except ValueError:
            raise SuiteError(
                f"{where}: start and end must be whole numbers (character offsets), not '{start}', '{end}'"
            ) from None
    if offsets and not quote:
        if len(transcripts) > 1:
            raise SuiteError(
                f"{where}: {name} holds {len(transcripts)} transcripts (one per CSV row); give a quote "
                "to say which the offsets belong to"
            )
        text = transcripts[0].text
        if not 0 <= offsets[0] < offsets[1] <= len(text):
            raise SuiteError(
                f"{where}: offsets {offsets[0]}:{offsets[1]} are outside {name} "
                f"({len(text)} characters as qcode reads it)"
            )
        gold.spans.append(_span(coder, code, transcripts[0].id, offsets))
        return
    if offsets:
        for transcript in transcripts:
            if (
                0 <= offsets[0] < offsets[1] <= len(transcript.text)
                and _normal(transcript.text[offsets[0] : offsets[1]])[0].strip() == _normal(quote)[0].strip()
            ):
                gold.spans.append(_span(coder, code, transcript.id, offsets))
                return
        gold.relocated += 1
    for transcript in transcripts:
        if transcript.id not in suite.folded:
            suite.folded[transcript.id] = _normal(transcript.text)
    found = [(t, s, e) for t in transcripts for s, e in _find(suite.folded[t.id], quote)]
    if not found:
        raise SuiteError(
            f"{where}: the quote is not in {name}: '{_short(quote)}' (compared ignoring case, spacing "
            "and the style of quotes and dashes)"
        )
    if len(found) > 1:
        if offsets:  # the occurrence nearest the offsets given
            found.sort(key=lambda f: abs(f[1] - offsets[0]))
        else:
            raise SuiteError(
                f"{where}: the quote occurs {len(found)} times in {name}: '{_short(quote)}'; quote more "
                "of the passage, or give start and end"
            )
    transcript, s, e = found[0]
    gold.spans.append(_span(coder, code, transcript.id, (s, e)))


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


_FOLD = {
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‛": "'",
    "′": "'",
    "“": '"',
    "”": '"',
    "„": '"',
    "‟": '"',
    "″": '"',
    "–": "-",
    "—": "-",
    "‒": "-",
    "―": "-",
    "−": "-",
    "…": "...",
    "\u00a0": " ",
}


def _normal(text: str) -> tuple[str, list[int]]:
    """Text folded for matching (lower case, one space for any run of spaces, plain quotes and dashes),
    and for each of its characters the offset it came from."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text):
        if ch.isspace() or ch == "\u00a0":
            if out and out[-1] != " ":
                out.append(" ")
                where.append(i)
            continue
        for piece in _FOLD.get(ch, ch).lower():
            out.append(piece)
            where.append(i)
    return "".join(out), where


def find_loosely(quote: str, text: str) -> list[tuple[int, int]]:
    """Every place a person's quote occurs in a text, as (start, end) offsets of the text: the rule a
    gold set's quotes meet, copied by hand from a transcript.

    Case, runs of white space and curly or straight quotes and dashes are ignored. An ellipsis
    ("..." or "…") in the quote stands for words left out: the passage runs from the first part to
    the nearest following occurrence of each next part."""
    return _find(_normal(text), quote)


def _find(folded: tuple[str, list[int]], quote: str) -> list[tuple[int, int]]:
    haystack, where = folded
    parts = [p.strip() for p in _normal(quote)[0].split("...")]
    parts = [p for p in parts if p]
    if not parts:
        return []
    found = []
    at = haystack.find(parts[0])
    while at >= 0:
        end = at + len(parts[0])
        for part in parts[1:]:
            nxt = haystack.find(part, end)
            if nxt < 0:
                end = -1
                break
            end = nxt + len(part)
        if end < 0:
            break
        found.append((where[at], where[end - 1] + 1))
        at = haystack.find(parts[0], at + 1)
    return found


def _check_units(suite: Suite, configuration: Configuration) -> None:
    """Gold unit ids are chunk ids: every one must be a chunk of this configuration's chunking."""
    chunks = chunks_of(suite, configuration)
    ids = {c.id for per in chunks.values() for c in per}
    missing = [row for row in suite.gold.units if row["unit_id"] not in ids]
    if missing:
        raise SuiteError(
            f"{missing[0]['where']}: unit '{missing[0]['unit_id']}' is not a chunk of the gold transcripts under "
            f"configuration '{configuration.name}' (chunk_size {configuration.chunk_size}, overlap "
            f"{configuration.overlap}); {len(missing)} of {len(suite.gold.units)} rows do not match. Unit ids are "
            "chunk ids: they hold only for the transcripts and chunk size they came from (set gold.chunk_size), or "
            "give passages instead"
        )


def chunks_of(suite: Suite, configuration: Configuration) -> dict[str, list[Any]]:
    """Each gold transcript's chunks under a configuration's chunking, as a run makes them."""
    from pipeline.chunk import chunk_transcript

    return {t.id: chunk_transcript(t, configuration.chunk_size, configuration.overlap) for t in suite.transcript_list}


def human_rows(suite: Suite, configuration: Configuration) -> list[dict[str, str]]:
    """The human codes as the long table over this configuration's chunks."""
    gold = suite.gold
    if gold.format == "units":
        rows = {(r["unit_id"], r["coder"], r["code"]) for r in gold.units}
        return [{"unit_id": u, "coder": c, "code": k} for u, c, k in sorted(rows)]
    from pipeline.chunk import holds

    chunks = chunks_of(suite, configuration)
    spans: dict[tuple[str, str], list[HumanCode]] = {}
    for span in gold.spans:
        spans.setdefault((span.coder, span.transcript_id), []).append(span)
    rows = []
    for coder, transcript_id in sorted(gold.coverage):
        for chunk in chunks[transcript_id]:
            codes = sorted({s.code for s in spans.get((coder, transcript_id), []) if holds(chunk, s.start, s.end)})
            rows += [{"unit_id": chunk.id, "coder": coder, "code": code} for code in codes or [""]]
    return rows


# ---------------------------------------------------------------- running


def run_suite(suite: Suite, progress: Callable[[str, str, int], None] | None = None) -> dict[str, Any]:
    """Code the gold set with every configuration that is not skipped and compare each with the humans.

    Returns the JSON object `qcode eval --json` prints (docs/evals.md)."""
    from pipeline.measure.agreement import AgreementError, agreement, codings_from_rows
    from pipeline.store import Store, has_password, redact

    gold = suite.gold
    db = suite.db
    if has_password(db):
        # as `qcode run` does: the password stays in this process's environment, out of run records
        os.environ["QCODE_DB"] = db
        db = redact(db)
    try:
        store = Store(db)
    except Exception as exc:
        raise SuiteError(f"{suite.path}: the database {redact(suite.db)} cannot be opened: {exc}") from None
    report: dict[str, Any] = {
        "suite": str(suite.path),
        "name": suite.name,
        "gold": {
            "transcripts": str(suite.transcripts),
            "codes": gold.files,
            "format": gold.format,
            "coders": gold.coders,
            "rows": gold.rows,
            "transcripts_coded": len({t for _, t in gold.coverage}) if gold.format == "passages" else None,
            "passages": len(gold.spans) if gold.format == "passages" else None,
        },
        "codebook": {"path": str(suite.codebook_path), "name": suite.codebook.name, "version": suite.codebook.version},
        "db": redact(suite.db),
        "bootstrap": {"replicates": suite.bootstrap, "seed": suite.seed},
        "humans": [],
        "configurations": [],
        "notes": list(suite.notes),
    }
    if gold.relocated:
        report["notes"].append(
            f"{gold.relocated} passage(s) had offsets that do not point at their quote; they were found by the quote"
        )

    def compare(rows: list[dict[str, str]], source: str, models: list[str]) -> dict[str, Any]:
        try:
            codings = codings_from_rows(rows, source, suite.codebook)
            return agreement(
                codings,
                level=suite.level,
                codebook=suite.codebook,
                model_coders=models,
                bootstrap=suite.bootstrap,
                seed=suite.seed,
            )
        except AgreementError as exc:
            raise SuiteError(f"{suite.path}: {exc}") from None

    humans_by_chunking: dict[tuple[int, int], dict[str, Any]] = {}
    for configuration in suite.configurations:
        if configuration.chunking in humans_by_chunking:
            humans_by_chunking[configuration.chunking]["configurations"].append(configuration.name)
            continue
        rows = human_rows(suite, configuration)
        human = compare(rows, f"{suite.path}: gold codes, chunks of {configuration.chunk_size}", [])
        humans_by_chunking[configuration.chunking] = {
            "chunk_size": configuration.chunk_size,
            "overlap": configuration.overlap,
            "configurations": [configuration.name],
            "units": human["units"],
            "pairable_units": human["pairable_units"],
            "single_label": human["single_label"],
            "level": human["level"],
            "overall": human["overall"],
            "pairwise": human["pairwise"],
            "per_code": human["per_code"],
            "notes": human["notes"],
        }
    report["humans"] = list(humans_by_chunking.values())

    for configuration in suite.configurations:
        entry: dict[str, Any] = {
            "name": configuration.name,
            "description": configuration.description,
            "coder": configuration.coder,
            "options": configuration.options,
            "threshold": configuration.threshold,
            "chunk_size": configuration.chunk_size,
            "overlap": configuration.overlap,
            "notes": [],
        }
        report["configurations"].append(entry)
        if configuration.skipped:
            entry["status"] = "skipped"
            entry["skipped"] = configuration.skipped
            continue
        try:
            coder = make_coder(configuration.coder, **configuration.options)
            coder.check_ready()
        except Exception as exc:
            raise SuiteError(f"{suite.path}: configuration '{configuration.name}': {exc}") from None
        if progress is not None:
            progress(configuration.name, "start", 0)
        began = time.perf_counter()
        try:
            summary = code_corpus(
                request(suite, configuration, db),
                (lambda event, n, name=configuration.name: progress(name, event, n)) if progress else None,
            )
        except Exception as exc:
            raise SuiteError(
                f"{suite.path}: configuration '{configuration.name}' could not run: {type(exc).__name__}: {exc}"
            ) from None
        entry["status"] = "ran"
        entry["model"] = summary.model
        entry["prompt_version"] = summary.prompt_version
        entry["run"] = {
            "run_id": summary.run_id,
            "chunks": summary.chunks,
            "chunks_coded_now": summary.chunks_coded_now,
            "failed_chunks": summary.failed_chunks,
            "failed_files": [f.model_dump() for f in summary.failed],
            "requests": summary.requests,
            "batch_requests": summary.batch_requests,
            "cache_hits": summary.cache_hits,
            "input_tokens": summary.input_tokens,
            "cached_input_tokens": summary.cached_input_tokens,
            "output_tokens": summary.output_tokens,
            "cost_usd": summary.cost_usd,
            "seconds": summary.seconds,
            "eval_seconds": None,
            "file_notes": [f"{note.path}: {note.note}" for note in summary.notes],
        }
        entry["coding"] = _coding_cost(store, summary, coder)
        model_rows, dropped = _model_rows(store, summary, configuration)
        humans = human_rows(suite, configuration)
        units = {row["unit_id"] for row in humans}
        run_units = _run_units(store, summary.run_id)
        lost = units - run_units
        if lost:
            raise SuiteError(
                f"{suite.path}: configuration '{configuration.name}': {len(lost)} gold passage(s) are "
                "not among the run's chunks; the gold transcripts changed while the eval ran?"
            )
        model_rows = [row for row in model_rows if row["unit_id"] in units]
        coded = {row["unit_id"] for row in model_rows}
        if len(coded) < len(units):
            entry["notes"].append(
                f"{len(units) - len(coded)} of {len(units)} gold passage(s) were not coded (failed chunks): they are "
                "missing for this configuration, not 'no code'"
            )
        if dropped:
            entry["notes"].append(
                f"{dropped} suggestion(s) under the threshold {configuration.threshold} are not counted as codes"
            )
        found = compare(humans + model_rows, f"{suite.path}: {configuration.name}", [configuration.name])
        entry["run"]["eval_seconds"] = round(time.perf_counter() - began, 3)
        entry.update(_summary(found, configuration.name))
        entry["agreement"] = found
    return report


def _run_units(store: Any, run_id: str) -> set[str]:
    from sqlalchemy import select

    from pipeline.store import RunChunkRecord

    with store.session() as s:
        return set(s.scalars(select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == run_id)))


def _model_rows(store: Any, summary: Any, configuration: Configuration) -> tuple[list[dict[str, str]], int]:
    """The configuration's codes as the long table, labelled with its name; under `threshold`, dropped."""
    from sqlalchemy import select

    from pipeline.exchange.exports import coding_rows
    from pipeline.store import RunRecord, SuggestionRecord

    rows = list(coding_rows(store, summary.run_id))
    low: set[tuple[str, str]] = set()
    if configuration.threshold is not None:
        with store.session() as s:
            key = s.scalar(select(RunRecord.coder_key).where(RunRecord.id == summary.run_id))
            low = {
                (chunk, code)
                for chunk, code in s.execute(
                    select(SuggestionRecord.chunk_id, SuggestionRecord.code).where(
                        SuggestionRecord.coder_key == key, SuggestionRecord.confidence < configuration.threshold
                    )
                )
            }
    by_unit: dict[str, list[str]] = {}
    dropped = 0
    for row in rows:
        codes = by_unit.setdefault(row["unit_id"], [])
        if row["code"] and (row["unit_id"], row["code"]) in low:
            dropped += 1
        elif row["code"]:
            codes.append(row["code"])
    out = [
        {"unit_id": unit, "coder": configuration.name, "code": code}
        for unit, codes in by_unit.items()
        for code in (codes or [""])
    ]
    return out, dropped


def _coding_cost(store: Any, summary: Any, coder: BaseCoder) -> dict[str, Any]:
    """What coding the gold set under this configuration costs, from the stored token counts of every chunk
    (the cost of this run is 0 when the store or the call cache answered), priced by the coder."""
    from sqlalchemy import func, select

    from pipeline.store import ChunkCodingRecord, RunChunkRecord, RunRecord

    with store.session() as s:
        run = s.get(RunRecord, summary.run_id)
        chunks = select(RunChunkRecord.chunk_id).where(RunChunkRecord.run_id == summary.run_id)
        columns = (
            ChunkCodingRecord.input_tokens,
            ChunkCodingRecord.cached_input_tokens,
            ChunkCodingRecord.output_tokens,
            ChunkCodingRecord.requests,
            ChunkCodingRecord.duration_ms,
        )
        row = s.execute(
            select(*(func.coalesce(func.sum(c), 0) for c in columns)).where(
                ChunkCodingRecord.coder_key == run.coder_key, ChunkCodingRecord.chunk_id.in_(chunks)
            )
        ).one()
    usage = Usage(input_tokens=row[0], cached_input_tokens=row[1], output_tokens=row[2], requests=row[3])
    cost = coder.cost(usage)
    return {
        "input_tokens": usage.input_tokens,
        "cached_input_tokens": usage.cached_input_tokens,
        "output_tokens": usage.output_tokens,
        "requests": usage.requests,
        "cost_usd": None if cost is None else round(cost, 6),
        "coder_seconds": round(row[4] / 1000, 3),
    }


def _summary(found: dict[str, Any], name: str) -> dict[str, Any]:
    """A configuration's agreement, against the consensus and each human, overall and per code."""
    pairs = [p for p in found["pairwise"] if name in p["coders"]]
    consensus = next((p for p in pairs if p["kind"] == "model-consensus"), None)
    humans = [p for p in pairs if p["kind"] == "model-human"]
    model = next((m for m in found.get("models", []) if m["coder"] == name), None)
    per_code = []
    for k, entry in enumerate(found["per_code"]):
        row: dict[str, Any] = {"code": entry["code"]}
        if "name" in entry:
            row["name"] = entry["name"]
        cells = [c for c in entry["pairwise"] if name in c["coders"]]
        cell = next((c for c in cells if c["kind"] == "model-consensus"), None)
        if cell is not None:
            row["consensus"] = {k2: v for k2, v in cell.items() if k2 not in ("coders", "kind")}
            if model is not None:
                row["consensus"].update({k2: v for k2, v in model["per_code"][k].items() if k2 != "code"})
        row["humans"] = [
            {
                "human": next(c2 for c2 in c["coders"] if c2 != name),
                **{k2: v for k2, v in c.items() if k2 not in ("coders", "kind")},
            }
            for c in cells
            if c["kind"] == "model-human"
        ]
        per_code.append(row)
    return {
        "units": found["units"],
        "consensus": found.get("consensus"),
        "against_consensus": None if consensus is None else {k: v for k, v in consensus.items() if k != "kind"},
        "against_humans": [
            {
                "human": next(c for c in p["coders"] if c != name),
                **{k: v for k, v in p.items() if k not in ("coders", "kind")},
            }
            for p in humans
        ],
        "per_code": per_code,
        "confusion": None if model is None else model["confusion"],
    }


# ---------------------------------------------------------------- the gate


@dataclass
class Gate:
    metric: str
    minimum: float

    @property
    def text(self) -> str:
        return f"{self.metric}={self.minimum:g}"


def parse_gates(values: Iterable[str]) -> list[Gate]:
    """`METRIC=VALUE` strings; raise SuiteError (exit 2) on an unknown metric or a value that is not a number."""
    gates = []
    for value in values:
        metric, sep, number = value.partition("=")
        metric = metric.strip()
        if not sep or not metric:
            raise SuiteError(f"--fail-under '{value}': write METRIC=VALUE, e.g. krippendorff_alpha=0.6")
        if metric not in GATE_METRICS:
            raise SuiteError(
                f"--fail-under: '{metric}' is not a statistic of a configuration against the human "
                f"consensus (choose from {', '.join(GATE_METRICS)})"
            )
        try:
            minimum = float(number)
        except ValueError:
            raise SuiteError(f"--fail-under {metric}: '{number}' is not a number") from None
        if not math.isfinite(minimum):
            raise SuiteError(f"--fail-under {metric}: '{number}' is not a finite number")
        gates.append(Gate(metric, minimum))
    return gates


def check_gates(report: dict[str, Any], gates: list[Gate]) -> bool:
    """Adds `gates` to the report: each configuration's statistic against the human consensus (its
    `kind: model-consensus` pair) must be at least the minimum. An undefined statistic fails.
    Returns whether every gate passed."""
    results = []
    passed = True
    for gate in gates:
        checked = []
        for entry in report["configurations"]:
            if entry.get("status") != "ran":
                continue
            pair = entry.get("against_consensus")
            if pair is not None and gate.metric not in pair:
                kind = "single-label" if entry["agreement"]["single_label"] else "multi-label"
                raise SuiteError(
                    f"--fail-under {gate.metric}: not reported for {kind} data at the "
                    f"{entry['agreement']['level']} level (configuration '{entry['name']}')"
                )
            value = None if pair is None else pair.get(gate.metric)
            ok = value is not None and value >= gate.minimum
            why = None
            if pair is None:
                why = "no human consensus to compare with"
            elif value is None:
                why = pair.get(f"{gate.metric}_undefined", "undefined")
            checked.append(
                {"configuration": entry["name"], "value": value, "passed": ok, **({"undefined": why} if why else {})}
            )
            passed &= ok
        results.append(
            {"metric": gate.metric, "minimum": gate.minimum, "against": "consensus", "configurations": checked}
        )
    report["gates"] = results
    ran = [e for e in report["configurations"] if e.get("status") == "ran"]
    failed = [e["name"] for e in ran if e["run"]["failed_chunks"] or e["run"]["failed_files"]]
    if failed:
        report["notes"].append(
            f"configuration(s) {', '.join(failed)} did not code every passage (see failed_chunks); "
            "the eval is incomplete"
        )
    if gates and not ran:
        report["notes"].append("no configuration ran, so no gate was checked")
    report["passed"] = passed and not failed
    return report["passed"]
