"""Codebooks: the codes a passage can be tagged with, read from YAML.

The format is documented in docs/codebooks.md. Loading checks the whole file
and reports every problem with its line, rather than stopping at the first.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CODE_ID = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")

Attribute = str | int | float | bool


class Examples(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    positive: list[str] = Field(default_factory=list)
    negative: list[str] = Field(default_factory=list)


class Code(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str
    name: str
    definition: str
    inclusion: list[str] = Field(default_factory=list)
    exclusion: list[str] = Field(default_factory=list)
    examples: Examples = Field(default_factory=Examples)
    parent: str | None = None
    attributes: dict[str, Attribute] = Field(default_factory=dict)


class Codebook(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str
    description: str
    source: str | None = None
    measurement: Literal["nominal", "ordinal"] = "nominal"
    similarity_threshold: float = Field(default=0.5, gt=0, lt=1)
    codes: list[Code]

    @property
    def version(self) -> str:
        """A content hash: formatting and comments in the YAML do not change it."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]

    def get(self, code_id: str) -> Code | None:
        return self._by_id().get(code_id)

    def _by_id(self) -> dict[str, Code]:
        return {code.id: code for code in self.codes}

    @property
    def leaves(self) -> list[Code]:
        """The codes a coder applies: those without children (a code with children is a category),
        unless `attributes.codable` says otherwise. NVivo and qc let people code with a parent code,
        so a codebook imported from them keeps such a code applicable with `codable: true`."""
        parents = {code.parent for code in self.codes if code.parent}

        def applicable(code: Code) -> bool:
            given = code.attributes.get("codable")
            return given if isinstance(given, bool) else code.id not in parents

        return [code for code in self.codes if applicable(code)]

    def applicable_ids(self) -> set[str]:
        return {code.id for code in self.leaves}


class Problem(BaseModel):
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class CodebookError(Exception):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_codebook(path: str | Path) -> Codebook:
    """Read and check a codebook; raise CodebookError listing every problem."""
    codebook, problems = check_codebook(path)
    if problems or codebook is None:
        raise CodebookError(problems)
    return codebook


def check_codebook(path: str | Path) -> tuple[Codebook | None, list[Problem]]:
    """Return the codebook (when it parses) and every problem found, with lines."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None, [Problem(file=name, line=None, message="file not found")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(file=name, line=None, message=f"cannot read: {exc}")]
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        return None, [Problem(file=name, line=line, message=f"not valid YAML: {getattr(exc, 'problem', exc)}")]
    if not isinstance(data, dict) or root is None:
        return None, [
            Problem(file=name, line=1, message="a codebook is a YAML mapping with 'name', 'description' and 'codes'")
        ]

    lines = _LineIndex(root)
    problems: list[Problem] = []

    header = {k: v for k, v in data.items() if k != "codes"}
    try:
        Codebook.model_validate({**header, "codes": []})
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            problems.append(Problem(file=name, line=lines.key(key), message=_describe(err)))

    raw_codes = data.get("codes")
    if not isinstance(raw_codes, list) or not raw_codes:
        problems.append(Problem(file=name, line=lines.key("codes"), message="'codes' must be a non-empty list"))
        raw_codes = []

    codes: list[Code] = []
    seen: dict[str, int | None] = {}
    for i, raw in enumerate(raw_codes):
        line = lines.code(i)
        label = f"code #{i + 1}"
        if isinstance(raw, dict) and raw.get("id"):
            label = f"code '{raw['id']}'"
        if not isinstance(raw, dict):
            problems.append(Problem(file=name, line=line, message=f"{label}: must be a mapping"))
            continue
        for field in ("id", "name", "definition"):
            value = raw.get(field)
            if value is None or (isinstance(value, str) and not value.strip()):
                problems.append(Problem(file=name, line=line, message=f"{label}: missing {field}"))
        try:
            code = Code.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                if err["type"] == "missing" and err["loc"][0] in ("id", "name", "definition"):
                    continue  # reported above, in plainer words
                key = str(err["loc"][0]) if err["loc"] else ""
                problems.append(
                    Problem(file=name, line=lines.code_key(i, key) or line, message=f"{label}: {_describe(err)}")
                )
            continue
        if not CODE_ID.match(code.id):
            problems.append(
                Problem(
                    file=name,
                    line=lines.code_key(i, "id") or line,
                    message=f"{label}: id must be lowercase letters, digits, '.', '-' or '_'",
                )
            )
        if code.id in seen:
            first = seen[code.id]
            problems.append(
                Problem(
                    file=name,
                    line=line,
                    message=f"duplicate code id '{code.id}' (first defined at line {first})",
                )
            )
        else:
            seen[code.id] = line
        codes.append(code)

    ids = {code.id for code in codes}
    index = {raw["id"]: i for i, raw in enumerate(raw_codes) if isinstance(raw, dict) and raw.get("id")}
    for code in codes:
        if code.parent is not None and code.parent not in ids:
            problems.append(
                Problem(
                    file=name,
                    line=lines.code_key(index.get(code.id, -1), "parent"),
                    message=f"code '{code.id}': unknown parent '{code.parent}'",
                )
            )
    problems.extend(_parent_cycles(codes, name, lines, index))

    if problems:
        return None, problems
    codebook = Codebook.model_validate({**header, "codes": [c.model_dump() for c in codes]})
    if codebook.measurement == "ordinal":
        for code in codebook.leaves:
            level = code.attributes.get("level")
            if isinstance(level, bool) or not isinstance(level, (int, float)):
                problems.append(
                    Problem(
                        file=name,
                        line=lines.code(index.get(code.id, -1)),
                        message=f"code '{code.id}': an ordinal codebook needs a numeric attributes.level on every applicable code",
                    )
                )
    return (None, problems) if problems else (codebook, [])


def _parent_cycles(codes: list[Code], name: str, lines: _LineIndex, index: dict[str, int]) -> list[Problem]:
    parent = {code.id: code.parent for code in codes}
    problems = []
    for code in codes:
        seen = {code.id}
        current = parent.get(code.id)
        while current is not None and current in parent:
            if current in seen:
                problems.append(
                    Problem(
                        file=name,
                        line=lines.code_key(index.get(code.id, -1), "parent"),
                        message=f"code '{code.id}': parent chain loops back through '{current}'",
                    )
                )
                break
            seen.add(current)
            current = parent[current]
    return problems


def _describe(err: dict) -> str:
    loc = ".".join(str(part) for part in err["loc"])
    if err["type"] == "missing":
        return f"missing {loc}"
    if err["type"] == "extra_forbidden":
        return f"unknown field '{loc}'"
    return f"{loc}: {err['msg']}" if loc else err["msg"]


class _LineIndex:
    """Line numbers (1-based) of keys and list items in the composed YAML."""

    def __init__(self, root: yaml.Node):
        self.root = root

    @staticmethod
    def _lookup(node: yaml.Node | None, key: str) -> yaml.Node | None:
        if isinstance(node, yaml.MappingNode):
            for k, _ in node.value:
                if getattr(k, "value", None) == key:
                    return k
        return None

    def key(self, key: str) -> int | None:
        found = self._lookup(self.root, key)
        return found.start_mark.line + 1 if found else None

    def _code_node(self, i: int) -> yaml.Node | None:
        codes_key = self._lookup(self.root, "codes")
        if codes_key is None or i < 0:
            return None
        codes = dict((k.value, v) for k, v in self.root.value if hasattr(k, "value")).get("codes")
        if isinstance(codes, yaml.SequenceNode) and i < len(codes.value):
            return codes.value[i]
        return None

    def code(self, i: int) -> int | None:
        node = self._code_node(i)
        return node.start_mark.line + 1 if node else None

    def code_key(self, i: int, key: str) -> int | None:
        found = self._lookup(self._code_node(i), key)
        return found.start_mark.line + 1 if found else None
