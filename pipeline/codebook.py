"""Codebooks: the codes a passage can be tagged with, read from YAML.

The format is documented in docs/codebooks.md. Loading checks the whole file
and reports every problem with its line, rather than stopping at the first.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import CodebookError, FileError, problem
from pipeline.files import compose_yaml, construct_yaml, read_text
from pipeline.transcript import SpeakerChoice

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

    @property
    def speakers(self) -> SpeakerChoice | None:
        """Whose words the code is for (`attributes.speaker`: names, comma-separated, `*` wildcards,
        as --speakers takes them); None: anyone's. A person cannot give it to another speaker's turn."""
        given = self.attributes.get("speaker")
        if given is None or not str(given).strip():
            return None
        return SpeakerChoice.of(speakers=str(given))


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

    def codes_under(self, category: str) -> list[str]:
        """The applicable codes a category holds (its children, or ids that extend its own)."""
        return [c.id for c in self.leaves if c.parent == category or c.id.startswith(category + ".")]


class Problem(BaseModel):
    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


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
        text, _ = read_text(path)
    except FileError as exc:
        return None, [Problem(file=name, line=None, message=exc.message)]
    try:
        # one tree gives the values and their lines; aliases are refused (pipeline.files.load_yaml)
        root = compose_yaml(text)
        data = construct_yaml(root)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        return None, [Problem(file=name, line=line, message=f"not valid YAML: {getattr(exc, 'problem', exc)}")]
    if not isinstance(data, dict) or root is None:
        return None, [
            Problem(file=name, line=1, message="a codebook is a YAML mapping with 'name', 'description' and 'codes'")
        ]

    lines = _LineIndex(root)
    problems: list[Problem] = [
        Problem(file=name, line=line, message=f"'{key}' is given twice here: YAML would keep the second silently")
        for key, line in _keys_twice(root)
    ]

    header = {k: v for k, v in data.items() if k != "codes"}
    try:
        Codebook.model_validate({**header, "codes": []})
    except ValidationError as exc:
        for err in exc.errors():
            key = str(err["loc"][0]) if err["loc"] else ""
            problems.append(Problem(file=name, line=lines.key(key), message=problem(err)))

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
            said: set[str] = set()
            for err in exc.errors():
                if err["type"] == "missing" and err["loc"][0] in ("id", "name", "definition"):
                    continue  # reported above, in plainer words
                key = str(err["loc"][0]) if err["loc"] else ""
                message = problem(err)
                if key == "attributes" and len(err["loc"]) == 3:
                    # one value that is none of an attribute's kinds: said once, not once per kind
                    message = f"attributes.{err['loc'][1]}: must be a text, a number or true/false"
                if message not in said:
                    said.add(message)
                    problems.append(
                        Problem(file=name, line=lines.code_key(i, key) or line, message=f"{label}: {message}")
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

    # parents are checked against every code written, valid or not, and for every code that names
    # one: a code with another problem may name an unknown parent too, and a parent with problems
    # of its own is not unknown
    index = {raw["id"]: i for i, raw in enumerate(raw_codes) if isinstance(raw, dict) and raw.get("id")}
    for raw in raw_codes:
        parent = raw.get("parent") if isinstance(raw, dict) else None
        if isinstance(parent, str) and parent and parent not in index:
            problems.append(
                Problem(
                    file=name,
                    line=lines.code_key(index.get(raw.get("id"), -1), "parent"),
                    message=f"code '{raw.get('id')}': unknown parent '{parent}'",
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


# --- writing YAML ---------------------------------------------------------------


class _Inline(dict):
    pass


class _Folded(str):
    pass


def _keys_twice(root: yaml.Node) -> list[tuple[str, int]]:
    """Every key given twice in one mapping, anywhere in the document, with the line of its second.

    Each node is visited once: a tree with aliases is a graph whose paths multiply (a "billion
    laughs"), and walking every path took minutes."""
    found: list[tuple[str, int, int]] = []
    seen_nodes: set[int] = set()
    todo: list[yaml.Node] = [root]
    while todo:
        node = todo.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in keys:
                        found.append((str(key.value), key.start_mark.line + 1, key.start_mark.column))
                    keys.add(key.value)
                todo.append(value)
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)
    return [(key, line) for key, line, _ in sorted(found, key=lambda x: x[1:])]


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:  # PyYAML names it flow
        return super().increase_indent(flow, False)  # lists indented under their key, as in docs/codebooks.md


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    if "\n" in text:
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
    return dumper.represent_str(text)


def _folded(dumper: yaml.SafeDumper, text: _Folded) -> yaml.Node:
    if "\n" not in text and len(text) > 60:  # definitions and descriptions, as docs/codebooks.md writes them
        return dumper.represent_scalar("tag:yaml.org,2002:str", str(text), style=">")
    return _str(dumper, str(text))


def _inline(dumper: yaml.SafeDumper, data: _Inline) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)


def _yaml_document(codebook: Codebook, inline: type[dict] = _Inline, folded: type[str] = _Folded) -> dict[str, Any]:
    document: dict[str, Any] = {"name": codebook.name, "description": folded(codebook.description)}
    if codebook.source is not None:
        document["source"] = folded(codebook.source)
    document["measurement"] = codebook.measurement
    document["similarity_threshold"] = codebook.similarity_threshold
    codes = []
    for code in codebook.codes:
        entry: dict[str, Any] = {"id": code.id, "name": code.name, "definition": folded(code.definition)}
        if code.inclusion:
            entry["inclusion"] = list(code.inclusion)
        if code.exclusion:
            entry["exclusion"] = list(code.exclusion)
        examples = {
            k: list(v) for k, v in (("positive", code.examples.positive), ("negative", code.examples.negative)) if v
        }
        if examples:
            entry["examples"] = examples
        if code.parent is not None:
            entry["parent"] = code.parent
        if code.attributes:
            entry["attributes"] = inline(code.attributes)
        codes.append(entry)
    document["codes"] = codes
    return document


def dump_yaml(codebook: Codebook) -> str:
    """The codebook as YAML in the format of docs/codebooks.md; load_codebook reads it back to an equal codebook."""
    text = yaml.dump(_yaml_document(codebook), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=88)
    text = re.sub(r"\n(  - id: )", r"\n\n\1", text)  # a blank line between codes
    if _reads_back(text, codebook):
        return text
    # a string the block styles could not carry exactly: let PyYAML quote as it sees fit
    return yaml.safe_dump(_yaml_document(codebook, dict, str), sort_keys=False, allow_unicode=True, width=88)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(_Inline, _inline)
_Dumper.add_representer(_Folded, _folded)


def _reads_back(text: str, codebook: Codebook) -> bool:
    try:
        return Codebook.model_validate(yaml.safe_load(text)) == codebook
    except (yaml.YAMLError, ValidationError, TypeError):
        return False
