"""The gold set: transcripts that people coded by hand, each independently, and the codes they gave.
Eval suites compare coders with it (pipeline/measure/evals); the learned coder trains on codes in
the same format (pipeline/learn).

The human codes come in one of two shapes (docs/evals.md, "The human codes"):

- passages (`file,coder,code` with `quote` and/or `start,end`): what a coder highlighted in which
  transcript. A passage counts for every unit that holds it by `pipeline.chunk.holds`: a chunk
  that holds at least half of it, or at least `MIN_CHARS` characters of it; a turn that holds at
  least half of it or half of whose words it covers. So the same gold set serves any chunk size, and
  turn units: a person's code inside a turn counts for that turn.
  A coder who has a row for a file coded all of that file: its chunks without any of their passages
  are "no code". A REFI-QDA project (`.qdpx`) given as gold codes is read as passages: its users'
  codings, on the project's own text sources. A quote is found by `find_loosely`'s rule.
- units (`unit_id,coder,code`): qcode unit ids, as `qcode export --format blind` writes them. They
  hold for one way of cutting only; `check_units` refuses `Units` whose units do not include them.

`human_rows` lays either shape over one way of cutting (`Units`) as the long table `unit_id,coder,code` that
`pipeline.measure.agreement` compares.
"""

from __future__ import annotations

import csv
import difflib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline.chunk import Chunk, Units, cut, holds
from pipeline.codebook import Codebook
from pipeline.errors import ExchangeError, IngestError, SuiteError
from pipeline.exchange.projects import read_project
from pipeline.files import read_text
from pipeline.ingest import CsvOptions, discover, read_source
from pipeline.suggestion import HumanCode
from pipeline.transcript import Transcript

PASSAGE_COLUMNS = ("file", "coder", "code")
UNIT_COLUMNS = ("unit_id", "coder", "code")

GoldFormat = Literal["passages", "units"]
Folded = tuple[str, list[int]]  # a text folded for matching, and the offset each of its characters came from


@dataclass(frozen=True)
class GoldUnit:
    """A gold code in unit form: a coder's code on a chunk (empty: the coder applied none there)."""

    unit_id: str
    coder: str
    code: str
    where: str  # the file and line it was read from, for messages


@dataclass
class Gold:
    """The gold transcripts as a run reads them (the same ids, text and offsets) and their human codes:
    `spans` and `coverage` for passages, `units` for units."""

    format: GoldFormat
    transcripts: list[Transcript]
    files: list[str] = field(default_factory=list)  # the gold code files, for messages
    coders: list[str] = field(default_factory=list)
    spans: list[HumanCode] = field(default_factory=list)
    coverage: set[tuple[str, str]] = field(default_factory=set)  # (coder, transcript id) coded whole
    units: list[GoldUnit] = field(default_factory=list)
    rows: int = 0
    relocated: int = 0  # passages whose offsets did not match their quote, found by the quote


# ---------------------------------------------------------------- reading


def read_transcripts(where: str, path: Path, options: CsvOptions) -> list[Transcript]:
    """The gold transcripts as a run reads them; `where` (the suite file) starts every message."""
    sources, errors = discover([path])
    if errors:
        raise SuiteError(f"{where}: gold.transcripts: {errors[0].path}: {errors[0].message}")
    found: list[Transcript] = []
    for source in sources:
        try:
            found += read_source(source, options)
        except IngestError as exc:
            raise SuiteError(f"{where}: gold transcript {exc.path}: {exc.message}") from None
    if not found:
        raise SuiteError(f"{where}: gold.transcripts: no transcripts in {path}")
    return found


def read_gold(
    codes: list[Path],
    transcripts: list[Transcript],
    root: Path,
    codebook: Codebook,
    codebook_path: Path,
    min_coders: int = 2,
) -> Gold:
    """The human codes of the files `codes` (CSV tables or REFI-QDA projects) on `transcripts`, read
    from `root` (the suite's gold.transcripts), checked against the codebook's applicable codes. A
    gold set to compare coders with needs two people (`min_coders`); codes to learn from, one."""
    reader = _Reader(transcripts, root, codebook, codebook_path)
    gold: Gold | None = None
    for path in codes:
        if path.suffix.lower() == ".qdpx":
            if gold is None:
                gold = Gold(format="passages", transcripts=transcripts)
            elif gold.format != "passages":
                raise SuiteError(
                    f"{path}: gold code files mix passages (a project) and units (unit_id,...); use one shape"
                )
            gold.files.append(str(path))
            reader.project(gold, path)
            continue
        header, rows = _read_table(path)
        shape: GoldFormat
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
            gold = Gold(format=shape, transcripts=transcripts)
        elif gold.format != shape:
            raise SuiteError(f"{path}: gold code files mix passages (file,...) and units (unit_id,...); use one shape")
        gold.files.append(str(path))
        for line, row in rows:
            gold.rows += 1
            where = f"{path}: line {line}"
            if not row.get("coder"):
                raise SuiteError(f"{where}: the coder is empty")
            code = row.get("code", "")
            reader.check_code(where, code)
            if shape == "units":
                if not row.get("unit_id"):
                    raise SuiteError(f"{where}: the unit_id is empty")
                gold.units.append(GoldUnit(unit_id=row["unit_id"], coder=row["coder"], code=code, where=where))
            else:
                reader.passage(gold, where, row, code)
        if not rows:
            raise SuiteError(f"{path}: the file has a header but no codes")
    if gold is None:
        raise SuiteError("gold.codes names no file")
    gold.coders = sorted({unit.coder for unit in gold.units} | {coder for coder, _ in gold.coverage})
    if len(gold.coders) < min_coders:
        raise SuiteError(
            f"{', '.join(gold.files)}: only one human coder ({', '.join(gold.coders)}); a gold set is "
            "coded independently by two or more people"
        )
    if gold.format == "units":
        seen: dict[tuple[str, str], str] = {}
        for unit in gold.units:
            kind = "none" if not unit.code else "code"
            if seen.setdefault((unit.unit_id, unit.coder), kind) != kind:
                raise SuiteError(
                    f"{unit.where}: coder '{unit.coder}' both applied no code and applied codes to "
                    f"unit '{unit.unit_id}'; keep one or the other"
                )
    return gold


def _read_table(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """A CSV file's header and its rows, each with its line number; comment lines before the header skipped."""
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


def _gold_name(root: Path, transcript: Transcript) -> str:
    """A transcript's file as the gold codes name it: its path relative to gold.transcripts."""
    path = Path(transcript.source_path).resolve()
    folder = root if root.is_dir() else root.parent
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return path.name


class _Reader:
    """What reading passages needs: the transcripts by the file name the gold codes give, and the codebook."""

    def __init__(self, transcripts: list[Transcript], root: Path, codebook: Codebook, codebook_path: Path):
        self.transcripts = transcripts
        self.root = root
        self.codebook = codebook
        self.codebook_path = codebook_path
        self.leaves = {c.id for c in codebook.leaves}
        self.by_file: dict[str, list[Transcript]] = {}
        for transcript in transcripts:
            self.by_file.setdefault(_gold_name(root, transcript), []).append(transcript)
        self.folded: dict[str, Folded] = {}  # transcript id -> its text folded, once

    def check_code(self, where: str, code: str) -> None:
        if code and code not in self.leaves:
            hint = difflib.get_close_matches(code, sorted(self.leaves), n=1)
            raise SuiteError(
                f"{where}: code '{code}' is not an applicable code of the codebook "
                f"'{self.codebook.name}' ({self.codebook_path.name})" + (f"; did you mean '{hint[0]}'?" if hint else "")
            )

    def project(self, gold: Gold, path: Path) -> None:
        """The codings of a REFI-QDA project's users, on its text sources (which gold.transcripts must hold)."""
        try:
            project = read_project(path)
        except ExchangeError as exc:
            raise SuiteError(str(exc)) from None
        known = {t.id for t in self.transcripts}
        names = {t.id: t.source_name for t in project.transcripts}
        for code in project.codes:
            gold.rows += 1
            where = f"{path}: {code.coder}'s coding of {names[code.transcript_id]} at {code.original_start}"
            if code.transcript_id not in known:
                raise SuiteError(
                    f"{where}: the source is not among the gold transcripts; name the project in gold.transcripts too"
                )
            if code.code not in self.leaves:
                raise SuiteError(
                    f"{where}: code '{code.code}' is not an applicable code of the codebook "
                    f"'{self.codebook.name}' ({self.codebook_path.name})"
                )
            gold.coverage.add((code.coder, code.transcript_id))
            gold.spans.append(code.model_copy(update={"original_start": None, "original_end": None}))
        if not project.codes:
            raise SuiteError(f"{path}: the project has no codings of text to use as gold codes")

    def passage(self, gold: Gold, where: str, row: dict[str, str], code: str) -> None:
        """One row of a passages table: the file its coder coded whole and, with a code, the passage.
        In a CSV of responses the row's `id` names the response; without it the quote must say which.
        A passage that fits several places is an error naming them: nothing is assigned by guess."""
        name = row.get("file", "").replace("\\", "/")
        while name.startswith("./"):
            name = name[2:]
        if not name:
            raise SuiteError(f"{where}: the file is empty")
        transcripts = self.by_file.get(name, [])
        if not transcripts:
            hint = difflib.get_close_matches(name, sorted(self.by_file), n=1)
            raise SuiteError(
                f"{where}: no transcript '{name}' in {self.root}" + (f"; did you mean '{hint[0]}'?" if hint else "")
            )
        coder = row["coder"]
        for transcript in transcripts:  # a coder with a row for a file coded all of it
            gold.coverage.add((coder, transcript.id))
        candidates = self._response(where, name, transcripts, row.get("id", ""))
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
            if len(candidates) > 1:
                raise SuiteError(
                    f"{where}: {name} holds {len(candidates)} responses (one per CSV row); name the response "
                    "the offsets belong to in an id column"
                )
            text = candidates[0].text
            if not 0 <= offsets[0] < offsets[1] <= len(text):
                raise SuiteError(
                    f"{where}: offsets {offsets[0]}:{offsets[1]} are outside {_named(name, candidates[0])} "
                    f"({len(text)} characters as qcode reads it)"
                )
            gold.spans.append(_span(coder, code, candidates[0].id, offsets))
            return
        if offsets:
            fits = [
                t
                for t in candidates
                if 0 <= offsets[0] < offsets[1] <= len(t.text)
                and _normal(t.text[offsets[0] : offsets[1]])[0].strip() == _normal(quote)[0].strip()
            ]
            if len(fits) > 1:
                raise SuiteError(
                    f"{where}: the quote at offsets {offsets[0]}:{offsets[1]} fits {_places(name, fits)}; "
                    "name the response in an id column"
                )
            if fits:
                gold.spans.append(_span(coder, code, fits[0].id, offsets))
                return
            gold.relocated += 1
        for transcript in candidates:
            if transcript.id not in self.folded:
                self.folded[transcript.id] = _normal(transcript.text)
        found = [(t, s, e) for t in candidates for s, e in _find(self.folded[t.id], quote)]
        if not found:
            where_not = _named(name, candidates[0]) if len(candidates) == 1 else name
            raise SuiteError(
                f"{where}: the quote is not in {where_not}: '{_short(quote)}' (compared ignoring case, spacing "
                "and the style of quotes and dashes)"
            )
        holding = list({t.id: t for t, _, _ in found}.values())
        if len(holding) > 1:
            raise SuiteError(
                f"{where}: the quote '{_short(quote)}' occurs in {_places(name, holding)}; name the response "
                "in an id column"
            )
        if len(found) > 1:
            if not offsets:
                raise SuiteError(
                    f"{where}: the quote occurs {len(found)} times in {_named(name, holding[0])}: "
                    f"'{_short(quote)}'; quote more of the passage, or give start and end"
                )
            found.sort(key=lambda f: abs(f[1] - offsets[0]))  # the occurrence nearest the offsets given
        transcript, s, e = found[0]
        gold.spans.append(_span(coder, code, transcript.id, (s, e)))

    def _response(self, where: str, name: str, transcripts: list[Transcript], response: str) -> list[Transcript]:
        """The transcripts a row's passage may lie in: the response its `id` names, or every one of the file."""
        if not response:
            return transcripts
        if transcripts[0].format != "csv":
            raise SuiteError(f"{where}: the id '{response}' names a response of a CSV file, and {name} is not one")
        named = [t for t in transcripts if t.response_id == response]
        if not named:
            ids = [t.response_id or "" for t in transcripts]
            hint = difflib.get_close_matches(response, ids, n=1)
            raise SuiteError(
                f"{where}: no response with the id '{response}' in {name} ({len(ids)} responses"
                + (f"; did you mean '{hint[0]}'?" if hint else "")
                + ")"
            )
        return named  # one: a CSV whose ids repeat is not read


def _named(name: str, transcript: Transcript) -> str:
    """A transcript as a message names it: its file, and its response id for a CSV row."""
    return f"{name} (response {transcript.response_id})" if transcript.response_id else name


def _places(name: str, transcripts: list[Transcript]) -> str:
    """Several transcripts of one file in a message: 'responses 3, 7 and 12 of train.csv'."""
    ids = [t.response_id or t.id for t in transcripts]
    shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return f"responses {shown} of {name}"


def _span(coder: str, code: str, transcript_id: str, offsets: tuple[int, int]) -> HumanCode:
    return HumanCode(coder=coder, code=code, transcript_id=transcript_id, start=offsets[0], end=offsets[1])


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


# ---------------------------------------------------------------- finding a quote

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


def _normal(text: str) -> Folded:
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


def _find(folded: Folded, quote: str) -> list[tuple[int, int]]:
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


# ---------------------------------------------------------------- the human codes on units


def _chunks(gold: Gold, units: Units) -> dict[str, list[Chunk]]:
    """Each gold transcript's units, as a run makes them."""
    return {t.id: cut(t, units) for t in gold.transcripts}


def check_units(gold: Gold, configuration: str, units: Units) -> None:
    """Gold unit ids are unit ids: every one must be a unit of the gold transcripts cut this way."""
    ids = {c.id for per in _chunks(gold, units).values() for c in per}
    missing = [unit for unit in gold.units if unit.unit_id not in ids]
    if missing:
        raise SuiteError(
            f"{missing[0].where}: unit '{missing[0].unit_id}' is not a unit of the gold transcripts under "
            f"configuration '{configuration}' ({units.describe()}); {len(missing)} of {len(gold.units)} rows do "
            "not match. Unit ids hold only for the transcripts and units they came from (set gold.chunk_size or "
            "gold.unit), or give passages instead"
        )


def human_rows(gold: Gold, units: Units) -> list[dict[str, str]]:
    """The human codes as the long table (unit_id, coder, code) over the units cut this way."""
    if gold.format == "units":
        found = {(unit.unit_id, unit.coder, unit.code) for unit in gold.units}
        return [{"unit_id": u, "coder": c, "code": k} for u, c, k in sorted(found)]
    chunks = _chunks(gold, units)
    spans: dict[tuple[str, str], list[HumanCode]] = {}
    for span in gold.spans:
        spans.setdefault((span.coder, span.transcript_id), []).append(span)
    rows = []
    for coder, transcript_id in sorted(gold.coverage):
        for chunk in chunks[transcript_id]:
            codes = sorted({s.code for s in spans.get((coder, transcript_id), []) if holds(chunk, s.start, s.end)})
            rows += [{"unit_id": chunk.id, "coder": coder, "code": code} for code in codes or [""]]
    return rows
