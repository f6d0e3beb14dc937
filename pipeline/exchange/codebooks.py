"""Codebooks to and from other QDA software: REFI-QDA codebook files (.qdc) and spreadsheets.

A REFI-QDA code has a guid, a name, a colour, a description and child codes; a qcode code has more.
On export the definition, criteria and examples are written into the description as plain text a
person can read in NVivo, MAXQDA or ATLAS.ti, followed by one machine-readable line (the "trailer")
holding what the text cannot: the code's id and attributes. On import the trailer, where qcode wrote
it, gives everything back. Codes written by other programs are imported as well as they can be, and
every loss is reported in words. docs/codebooks.md ("Other QDA software") describes the format.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import unicodedata
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from pydantic import ValidationError

import pipeline
from pipeline.codebook import CODE_ID, Code, Codebook, CodebookError, Examples, Problem
from pipeline.errors import ExchangeError, FileError, problems
from pipeline.files import read_bytes, read_text, unpacked, write_bytes

QDC_NAMESPACE = "urn:QDA-XML:codebook:1.0"
PROJECT_NAMESPACE = "urn:QDA-XML:project:1.0"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_SCHEMA_LOCATION = f"{QDC_NAMESPACE} http://schema.qdasoftware.org/versions/Codebook/v1.0/Codebook.xsd"
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_COLOR = re.compile(r"#(?:[0-9A-Fa-f]{3}|[0-9A-Fa-f]{6})")
_GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "qcode:refi-qda")
_TRAILER = "qcode: "
_SHOWN = 5  # names listed in one warning before "and N more"
_BAD_COLOR_ONE = "code {names} has a colour that is not #RGB or #RRGGBB: not kept"
_BAD_COLOR_MANY = "{n} codes have a colour that is not #RGB or #RRGGBB, not kept: {names}"
_RENUMBERED_ONE = "the id made from the name of code {names} was taken by an earlier code: it is numbered"
_RENUMBERED_MANY = "{n} codes have numbered ids, as the ids made from their names were taken by earlier codes: {names}"


@dataclass
class ImportedCodebook:
    codebook: Codebook
    guids: dict[str, str] = field(default_factory=dict)  # REFI guid (lowercase, no braces) -> qcode code id
    warnings: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- description text


_HEADINGS = {
    "inclusion": "Inclusion criteria:",
    "exclusion": "Exclusion criteria:",
    "positive": "Examples:",
    "negative": "Negative examples:",
}
# read back case-insensitively, with or without "criteria", so light edits in another program still parse
_HEADING_ALIASES = {
    "inclusion criteria": "inclusion",
    "inclusion": "inclusion",
    "include": "inclusion",
    "include when": "inclusion",
    "exclusion criteria": "exclusion",
    "exclusion": "exclusion",
    "exclude": "exclusion",
    "exclude when": "exclusion",
    "examples": "positive",
    "example": "positive",
    "positive examples": "positive",
    "negative examples": "negative",
    "counterexamples": "negative",
    "near misses": "negative",
}
_BULLET = re.compile(r"[-*\u2022\u2013]\s+(.*)")


def _normalise(text: str) -> str:
    """Line ends as LF, no trailing spaces on a line, no blank lines around: what other programs keep."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _digest(text: str) -> str:
    return hashlib.sha256(_normalise(text).encode("utf-8")).hexdigest()[:12]


def _code_fields(code: Code) -> dict[str, Any]:
    return {
        "definition": code.definition,
        "inclusion": list(code.inclusion),
        "exclusion": list(code.exclusion),
        "positive": list(code.examples.positive),
        "negative": list(code.examples.negative),
    }


def _render(fields: dict[str, Any]) -> str:
    parts = [fields["definition"]]
    for key, heading in _HEADINGS.items():
        if fields[key]:
            items = "\n".join("- " + item.replace("\n", "\n  ") for item in fields[key])
            parts.append(f"{heading}\n{items}")
    return "\n\n".join(parts)


def _parse(text: str) -> dict[str, Any]:
    """The inverse of _render, lenient about bullets and heading case."""
    definition: list[str] = []
    sections: dict[str, list[str]] = {key: [] for key in _HEADINGS}
    current: str | None = None
    for line in text.split("\n"):
        key = _HEADING_ALIASES.get(line.strip().lower()[:-1]) if line.strip().endswith(":") else None
        if key:
            current = key
            continue
        if current is None:
            definition.append(line)
            continue
        if not line.strip():
            continue
        bullet = _BULLET.fullmatch(line)
        items = sections[current]
        if bullet:
            items.append(bullet.group(1))
        elif items:
            items[-1] += "\n" + line.removeprefix("  ")
        else:
            items.append(line)
    return {
        "definition": "\n".join(definition).strip(),
        **{key: [item.strip() for item in items if item.strip()] for key, items in sections.items()},
    }


def _with_trailer(human: str, data: dict[str, Any]) -> str:
    return f"{human}\n\n{_TRAILER}{json.dumps(data, ensure_ascii=False)}"


def _split_trailer(text: str) -> tuple[str, dict[str, Any] | None, bool]:
    """(human text, trailer data or None, whether a trailer line was there but unreadable)."""
    head, _, last = text.rpartition("\n")
    if not last.startswith(_TRAILER + "{"):
        return text, None, False
    try:
        data = json.loads(last[len(_TRAILER) :])
    except ValueError:
        return head.strip(), None, True
    if not isinstance(data, dict):
        return head.strip(), None, True
    return head.strip(), data, False


def _codebook_text(description: str, source: str | None) -> str:
    return f"{description}\n\nSource: {source}" if source else description


def _parse_codebook_text(text: str) -> tuple[str, str | None]:
    head, sep, tail = text.partition("\n\nSource: ")
    return (head.strip(), tail.strip() or None) if sep else (text.strip(), None)


# ---------------------------------------------------------------- export


def normal_guid(value: str | None) -> str:
    """A GUID as REFI-QDA allows it written (either case, with or without braces), in one form."""
    return (value or "").strip().strip("{}").lower()


def _is_guid(guid: str) -> bool:
    guid = guid.strip()
    if guid.startswith("{") and guid.endswith("}"):
        guid = guid[1:-1]
    return bool(_GUID.fullmatch(guid))


def _derived_guid(codebook_name: str, code_id: str) -> str:
    return str(uuid.uuid5(_GUID_NAMESPACE, f"{codebook_name}\n{code_id}"))


def code_guid(codebook: Codebook, code: Code) -> str:
    """A stable GUID: the one the code was imported with (attributes.refi_guid), else uuid5 of codebook name and id.

    Renaming the codebook changes the derived GUIDs; ids stay the key qcode goes by."""
    given = code.attributes.get("refi_guid")
    if isinstance(given, str) and _is_guid(given):
        return normal_guid(given)
    return _derived_guid(codebook.name, code.id)


def _codable(code: Code, has_children: bool) -> bool:
    given = code.attributes.get("codable")
    return given if isinstance(given, bool) else not has_children


def _q(namespace: str, tag: str) -> str:
    return f"{{{namespace}}}{tag}" if namespace else tag


def _tree(codebook: Codebook) -> tuple[dict[str | None, list[Code]], list[Code]]:
    """Children by parent id, and the codes in depth-first order; ExchangeError if the parents do not form a tree."""
    ids = Counter(code.id for code in codebook.codes)
    duplicates = sorted(code_id for code_id, n in ids.items() if n > 1)
    if duplicates:
        raise ExchangeError(f"codebook '{codebook.name}': duplicate code ids: {', '.join(duplicates)}")
    children: dict[str | None, list[Code]] = {}
    for code in codebook.codes:
        if code.parent is not None and code.parent not in ids:
            raise ExchangeError(f"codebook '{codebook.name}': code '{code.id}' has an unknown parent '{code.parent}'")
        children.setdefault(code.parent, []).append(code)
    ordered: list[Code] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        code = stack.pop()
        ordered.append(code)
        stack.extend(reversed(children.get(code.id, [])))
    if len(ordered) != len(codebook.codes):
        looped = sorted({code.id for code in codebook.codes} - {code.id for code in ordered})
        raise ExchangeError(f"codebook '{codebook.name}': the parents of {', '.join(looped)} loop")
    return children, ordered


def _text_element(parent: etree._Element, tag: str, text: str, what: str) -> None:
    element = etree.SubElement(parent, tag)
    try:
        element.text = text
    except ValueError as exc:  # control characters XML 1.0 cannot hold
        raise ExchangeError(f"{what}: {exc}") from exc


def codes_element(codebook: Codebook, namespace: str) -> etree._Element:
    """<Codes> in `namespace` (QDC or project), the codes nested by parent, each with its folded description."""
    children, ordered = _tree(codebook)
    in_order = [code.id for code in ordered] == [code.id for code in codebook.codes]
    position = {code.id: i for i, code in enumerate(codebook.codes)}
    guids: dict[str, str] = {}
    for code in ordered:
        guid = code_guid(codebook, code)
        if guid in guids:
            raise ExchangeError(
                f"codes '{guids[guid]}' and '{code.id}' have the same REFI guid {guid}: "
                "remove attributes.refi_guid from one of them"
            )
        guids[guid] = code.id

    root = etree.Element(_q(namespace, "Codes"), nsmap={None: namespace} if namespace else None)

    def add(parent: etree._Element, code: Code) -> None:
        kids = children.get(code.id, [])
        try:
            element = etree.SubElement(
                parent,
                _q(namespace, "Code"),
                guid=code_guid(codebook, code),
                name=code.name,
                isCodable="true" if _codable(code, bool(kids)) else "false",
            )
        except ValueError as exc:
            raise ExchangeError(f"code '{code.id}': its name: {exc}") from exc
        color = code.attributes.get("color")
        written_color = isinstance(color, str) and bool(_COLOR.fullmatch(color))
        if written_color:
            element.set("color", str(color))
        fields = _code_fields(code)
        human = _render(fields)
        data: dict[str, Any] = {"id": code.id}
        guid = element.get("guid")
        attributes = {
            k: v
            for k, v in code.attributes.items()
            if not (k == "refi_guid" and v == guid) and not (k == "color" and written_color)
        }
        if attributes:
            data["attributes"] = attributes
        if _parse(_normalise(human)) != fields:  # the text would not read back exactly: carry the fields themselves
            data["fields"] = fields
        if not in_order:
            data["order"] = position[code.id]
        data["text"] = _digest(human)
        _text_element(element, _q(namespace, "Description"), _with_trailer(human, data), f"code '{code.id}'")
        for kid in kids:
            add(element, kid)

    for code in children.get(None, []):
        add(root, code)
    return root


def codebook_set_element(codebook: Codebook, namespace: str) -> etree._Element:
    """A <Set> named after the codebook, with every code as a member, that carries the codebook-level fields.

    In a .qdc it goes in <Sets>; in a project in the project's <Sets> (members there are targetGUID refs)."""
    _, ordered = _tree(codebook)
    element = etree.Element(
        _q(namespace, "Set"),
        nsmap={None: namespace} if namespace else None,
        guid=str(uuid.uuid5(_GUID_NAMESPACE, f"codebook\n{codebook.name}")),
        name=codebook.name,
    )
    human = _codebook_text(codebook.description, codebook.source)
    data: dict[str, Any] = {
        "codebook": {"measurement": codebook.measurement, "similarity_threshold": codebook.similarity_threshold},
    }
    if _parse_codebook_text(_normalise(human)) != (codebook.description, codebook.source):
        data["fields"] = {"description": codebook.description, "source": codebook.source}
    data["text"] = _digest(human)
    _text_element(element, _q(namespace, "Description"), _with_trailer(human, data), f"codebook '{codebook.name}'")
    member = "guid" if namespace != PROJECT_NAMESPACE else "targetGUID"
    for code in ordered:
        etree.SubElement(element, _q(namespace, "MemberCode"), {member: code_guid(codebook, code)})
    return element


def qdc_bytes(codebook: Codebook) -> bytes:
    """The codebook as a REFI-QDA codebook file (.qdc), UTF-8 with an XML declaration."""
    root = etree.Element(_q(QDC_NAMESPACE, "CodeBook"), nsmap={None: QDC_NAMESPACE, "xsi": _XSI})
    root.set("origin", f"qcode {pipeline.__version__}")
    root.set(f"{{{_XSI}}}schemaLocation", _SCHEMA_LOCATION)
    root.append(codes_element(codebook, QDC_NAMESPACE))
    sets = etree.SubElement(root, _q(QDC_NAMESPACE, "Sets"))
    sets.append(codebook_set_element(codebook, QDC_NAMESPACE))
    etree.cleanup_namespaces(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def write_qdc(codebook: Codebook, path: Path, *, force: bool = False) -> None:
    """Write a .qdc file: built in full first, written aside, then moved into place."""
    write_bytes(path, qdc_bytes(codebook), force=force)


# ---------------------------------------------------------------- import: REFI-QDA


def _counted(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}" if n else f"no {many}"


def _several(names: list[str], one: str, many: str, *, quote: bool = True) -> str:
    """One warning for a list of codes: `one` and `many` are formats with {names} (and {n} in `many`)."""
    quoted = [f"'{name}'" if quote else name for name in names[:_SHOWN]]
    if len(names) > _SHOWN:
        quoted.append(f"and {len(names) - _SHOWN} more")
    return (one if len(names) == 1 else many).format(n=len(names), names=", ".join(quoted))


@dataclass(eq=False)
class _Node:
    name: str
    guid: str | None  # lowercase, no braces
    guid_ok: bool
    codable: bool
    color: str | None
    text: str  # the description, normalised, without the trailer
    data: dict[str, Any] | None  # the qcode trailer
    line: int | None
    children: list[_Node] = field(default_factory=list)
    created: bool = False


def _read_nodes(codes: etree._Element, namespace: str, warnings: list[str]) -> list[_Node]:
    stray: Counter[str] = Counter()
    outside: set[str] = set()
    bad_codable: list[str] = []
    bad_color: list[str] = []
    bad_guid: list[str] = []
    bad_trailer: list[str] = []
    notes = 0

    def local(element: etree._Element) -> str | None:
        if not isinstance(element.tag, str):
            return None  # a comment or processing instruction
        qname = etree.QName(element)
        if (qname.namespace or "") != namespace:
            outside.add(qname.namespace or "no namespace")
        return qname.localname

    def read(element: etree._Element) -> _Node:
        nonlocal notes
        guid, name = element.get("guid"), element.get("name")
        if guid is None or not guid.strip():
            raise ExchangeError(f"line {element.sourceline}: a <Code> has no guid")
        if name is None or not name.strip():
            raise ExchangeError(f"line {element.sourceline}: the <Code> with guid {guid} has no name")
        codable_text = (element.get("isCodable") or "true").strip().lower()
        if codable_text not in ("true", "false", "1", "0"):
            bad_codable.append(name)
        color = element.get("color")
        if color is not None and not _COLOR.fullmatch(color.strip()):
            bad_color.append(f"'{name}' ({color!r})")
            color = None
        if not _is_guid(guid):
            bad_guid.append(name)
        texts, kids = [], []
        for child in element:
            tag = local(child)
            if tag == "Description":
                texts.append("".join(child.itertext()))
            elif tag == "Code":
                kids.append(read(child))
            elif tag == "NoteRef":
                notes += 1
            elif tag is not None:
                stray[tag] += 1
        text, data, unreadable = _split_trailer(_normalise("\n\n".join(texts)))
        if unreadable:
            bad_trailer.append(name)
        return _Node(
            name=name.strip(),
            guid=normal_guid(guid),
            guid_ok=_is_guid(guid),
            codable=codable_text not in ("false", "0"),
            color=color.strip() if color else None,
            text=text,
            data=data,
            line=element.sourceline,
            children=kids,
        )

    roots = []
    for child in codes:
        tag = local(child)
        if tag == "Code":
            roots.append(read(child))
        elif tag is not None:
            stray[tag] += 1
    if outside:
        warnings.append(
            f"elements in {', '.join(sorted(outside))} where {namespace or 'no namespace'} was expected "
            "were read by their names"
        )
    if bad_guid:
        warnings.append(
            _several(
                bad_guid,
                "code {names} has a guid that is not a GUID: a new one is written on export",
                "{n} codes have a guid that is not a GUID ({names}): new ones are written on export",
            )
        )
    if bad_codable:
        warnings.append(
            _several(
                bad_codable,
                "code {names}: isCodable is not true or false; read as true",
                "{n} codes have an isCodable that is not true or false ({names}); read as true",
            )
        )
    if bad_color:
        warnings.append(_several(bad_color, _BAD_COLOR_ONE, _BAD_COLOR_MANY, quote=False))
    if bad_trailer:
        warnings.append(
            _several(
                bad_trailer,
                "code {names}: the 'qcode:' line of its description could not be read; "
                "the code was imported like one from another program",
                "{n} codes have a 'qcode:' line that could not be read ({names}); they were "
                "imported like codes from another program",
            )
        )
    if notes:
        warnings.append(f"{notes} note(s) linked to codes (NoteRef) not imported: a qcode codebook has no memos")
    for tag, n in sorted(stray.items()):
        warnings.append(f"{n} <{tag}> element(s) among the codes not imported")
    return roots


def _split_colon_names(siblings: list[_Node], warnings: list[str]) -> None:
    """Nest ATLAS.ti-style flat names ('Coke::diet Coke') under the code named by the prefix, at every level."""
    split: list[str] = []
    created: list[str] = []

    def find_or_make(container: list[_Node], name: str, at: int, prefix: str) -> _Node:
        for node in container:
            if node.name == name:
                return node
        node = _Node(
            name=name,
            guid=None,
            guid_ok=False,
            codable=False,
            color=None,
            text=f"The codes named '{prefix}::…' in the imported file.",
            data=None,
            line=None,
            created=True,
        )
        container.insert(min(at, len(container)), node)
        created.append(prefix)
        return node

    def walk(container: list[_Node]) -> None:
        flat = [n for n in container if n.data is None and not n.created and "::" in n.name]
        for node in sorted(flat, key=lambda n: n.name.count("::")):
            parts = [part.strip() for part in node.name.split("::")]
            if not all(parts):
                continue
            at = container.index(node)
            container.remove(node)
            holder = container
            for depth, part in enumerate(parts[:-1]):
                holder = find_or_make(
                    holder, part, at if holder is container else len(holder), "::".join(parts[: depth + 1])
                ).children
            split.append(node.name)
            node.name = parts[-1]
            holder.append(node)
        for node in container:
            walk(node.children)

    walk(siblings)
    if split:
        warnings.append(
            _several(
                split,
                "code {names} was nested under the code its name starts with and named after "
                "its last part (ATLAS.ti writes hierarchies as 'Parent::Child')",
                "{n} codes named 'Parent::Child' (ATLAS.ti style) were nested under their parent "
                "code and named after their last part: {names}",
            )
        )
    if created:
        warnings.append(
            _several(
                created,
                "category {names} was added for the codes whose names start with it",
                "{n} categories were added for codes whose names start with them: {names}",
            )
        )


def _slug(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9_]+", "-", text).strip("-_")
    if len(text) > 60:
        text = text[:60].rsplit("-", 1)[0].strip("-_")
    return text or "code"


def _unique(base: str, taken: set[str]) -> str:
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    taken.add(candidate)
    return candidate


def _trailer_fields(data: dict[str, Any]) -> dict[str, Any] | None:
    fields = data.get("fields")
    if not isinstance(fields, dict) or not isinstance(fields.get("definition"), str):
        return None
    lists = {key: fields.get(key, []) for key in _HEADINGS}
    if not all(isinstance(v, list) and all(isinstance(i, str) for i in v) for v in lists.values()):
        return None
    return {"definition": fields["definition"], **lists}


def _attribute_value(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (isinstance(value, float) and math.isnan(value))


def codebook_from_codes(
    codes: etree._Element,
    namespace: str,
    *,
    name: str,
    description: str,
    source: str | None = None,
    measurement: str = "nominal",
    similarity_threshold: float = 0.5,
    sets: etree._Element | None = None,
) -> ImportedCodebook:
    """A qcode codebook from a REFI-QDA <Codes> element (codebook or project namespace).

    Codes qcode wrote come back exactly (from the 'qcode:' line of their description); codes from
    other programs get their description as definition and ids made from their names. The keyword
    fields are the codebook's, unless `sets` (a <Sets> element) holds the set codebook_set_element
    wrote: then its name, description, source, measurement and threshold win. Other sets are ignored
    here. ExchangeError (with the line) for a Code without guid or name; other losses are warnings."""
    warnings: list[str] = []
    for member in sets if sets is not None else []:
        found, set_warnings = read_codebook_set(member) if isinstance(member.tag, str) else (None, [])
        if found is not None:
            name = found["name"] or name
            description, source = found["description"] or description, found["source"]
            measurement = found.get("measurement", measurement)
            similarity_threshold = found.get("similarity_threshold", similarity_threshold)
            warnings.extend(set_warnings)
            break
    roots = _read_nodes(codes, namespace, warnings)
    if not roots:
        raise ExchangeError("no <Code> in <Codes>")
    _split_colon_names(roots, warnings)

    flat: list[tuple[_Node, _Node | None]] = []
    stack: list[tuple[_Node, _Node | None]] = [(node, None) for node in reversed(roots)]
    while stack:
        node, parent = stack.pop()
        flat.append((node, parent))
        stack.extend((kid, node) for kid in reversed(node.children))

    ids: dict[int, str] = {}
    taken: set[str] = set()
    bad_ids: list[str] = []
    for node, _ in flat:
        wanted = node.data.get("id") if node.data else None
        if isinstance(wanted, str) and CODE_ID.match(wanted) and wanted not in taken:
            ids[id(node)] = wanted
            taken.add(wanted)
        elif node.data is not None:
            bad_ids.append(node.name)
    renumbered: list[str] = []
    for node, _ in flat:
        if id(node) not in ids:
            base = _slug(node.name)
            ids[id(node)] = _unique(base, taken)
            if ids[id(node)] != base:
                renumbered.append(f"'{node.name}' ({ids[id(node)]})")
    if bad_ids:
        warnings.append(
            _several(
                bad_ids,
                "code {names}: its qcode id was missing, not valid or taken; made from its name",
                "{n} codes had a qcode id that was missing, not valid or taken ({names}); made from their names",
            )
        )
    if renumbered:
        warnings.append(_several(renumbered, _RENUMBERED_ONE, _RENUMBERED_MANY, quote=False))

    guids: dict[str, str] = {}
    duplicate_guids: list[str] = []
    edited: list[str] = []
    no_description: list[str] = []
    codable_categories: list[str] = []
    uncodable_leaves: list[str] = []
    bad_attributes: list[str] = []
    built: list[tuple[int | None, Code]] = []
    for node, parent in flat:
        code_id = ids[id(node)]
        first_guid = False
        if node.guid:
            if node.guid in guids:
                duplicate_guids.append(node.name)
            else:
                guids[node.guid] = code_id
                first_guid = True

        fields = None
        if node.data is not None:
            unchanged = node.data.get("text") == _digest(node.text)
            fields = _trailer_fields(node.data) if unchanged else None
            if fields is None:
                fields = _parse(node.text)
            if not unchanged:
                edited.append(node.name)
        else:
            fields = {"definition": node.text, **{key: [] for key in _HEADINGS}}
        if not fields["definition"]:
            fields["definition"] = node.name
            if not node.created:
                no_description.append(node.name)

        attributes: dict[str, Any] = {}
        raw = node.data.get("attributes", {}) if node.data else {}
        for key, value in raw.items() if isinstance(raw, dict) else []:
            if isinstance(key, str) and _attribute_value(value):
                attributes[key] = value
            else:
                bad_attributes.append(f"{node.name}.{key}")
        if node.color:
            attributes["color"] = node.color
        else:
            color = attributes.get("color")
            if isinstance(color, str) and _COLOR.fullmatch(color):
                del attributes["color"]  # qcode wrote it as the colour, and the colour is gone now
        kept = attributes.get("refi_guid")
        if (
            first_guid
            and node.guid_ok
            and node.guid != _derived_guid(name, code_id)
            and not (isinstance(kept, str) and normal_guid(kept) == node.guid)
        ):
            attributes["refi_guid"] = node.guid
        has_children = bool(node.children)
        given = attributes.get("codable")
        expected = given if isinstance(given, bool) else not has_children
        if not node.created and node.codable != expected:
            if node.codable == (not has_children):
                attributes.pop("codable", None)
            else:
                attributes["codable"] = node.codable
                (codable_categories if has_children else uncodable_leaves).append(node.name)

        order = node.data.get("order") if node.data else None
        try:
            code = Code(
                id=code_id,
                name=node.name,
                definition=fields["definition"],
                inclusion=fields["inclusion"],
                exclusion=fields["exclusion"],
                examples=Examples(positive=fields["positive"], negative=fields["negative"]),
                parent=ids[id(parent)] if parent is not None else None,
                attributes=attributes,
            )
        except ValidationError as exc:
            raise ExchangeError(f"line {node.line}: code '{node.name}': {exc}") from exc
        built.append((order if isinstance(order, int) and not isinstance(order, bool) else None, code))

    if duplicate_guids:
        warnings.append(
            _several(
                duplicate_guids,
                "code {names} has the guid of an earlier code: it gets a new one on export",
                "{n} codes have the guid of an earlier code ({names}): they get new ones on export",
            )
        )
    if edited:
        warnings.append(
            _several(
                edited,
                "the description of code {names} was changed after qcode wrote it: "
                "definition, criteria and examples were read back from its text",
                "the descriptions of {n} codes were changed after qcode wrote them ({names}): "
                "definition, criteria and examples were read back from their text",
            )
        )
    if no_description:
        warnings.append(
            _several(
                no_description,
                "code {names} has no description: its name stands as its definition",
                "{n} codes have no description: their names stand as their definitions ({names})",
            )
        )
    if codable_categories:
        warnings.append(
            _several(
                codable_categories,
                "code {names} has child codes and is codable in the file: qcode applies it as well "
                "as its children (attributes.codable: true)",
                "{n} codes have child codes and are codable in the file ({names}): qcode applies them "
                "as well as their children (attributes.codable: true)",
            )
        )
    if uncodable_leaves:
        warnings.append(
            _several(
                uncodable_leaves,
                'code {names} is not codable in the file (isCodable="false") but has no child codes: '
                "qcode will not apply it either (attributes.codable: false)",
                '{n} codes are not codable in the file (isCodable="false") but have no child codes '
                "({names}): qcode will not apply them either (attributes.codable: false)",
            )
        )
    if bad_attributes:
        warnings.append(
            _several(
                bad_attributes,
                "attribute {names} is not a string, number or true/false: not kept",
                "{n} attributes are not a string, number or true/false: not kept ({names})",
            )
        )

    if all(order is not None for order, _ in built):
        built.sort(key=lambda pair: pair[0] or 0)
    try:  # what another program wrote is checked like any codebook file
        codebook = Codebook.model_validate(
            {
                "name": name,
                "description": description,
                "source": source,
                "measurement": measurement,
                "similarity_threshold": similarity_threshold,
                "codes": [code for _, code in built],
            }
        )
    except ValidationError as exc:
        raise ExchangeError(f"not a valid codebook: {problems(exc)}") from exc
    if codebook.measurement == "ordinal":
        missing = [
            code.id
            for code in codebook.leaves
            if isinstance(code.attributes.get("level"), bool)
            or not isinstance(code.attributes.get("level"), (int, float))
        ]
        if missing:
            warnings.append(
                _several(
                    missing,
                    "the codebook is ordinal but code {names} has no numeric attributes.level: "
                    "add one before using the codebook",
                    "the codebook is ordinal but {n} codes have no numeric attributes.level "
                    "({names}): add them before using the codebook",
                )
            )
    return ImportedCodebook(codebook=codebook, guids=guids, warnings=warnings)


def read_codebook_set(element: etree._Element) -> tuple[dict[str, Any] | None, list[str]]:
    """The codebook-level fields from a <Set> qcode wrote (codebook_set_element), or None for any other set."""
    texts = [
        ("".join(child.itertext()))
        for child in element
        if isinstance(child.tag, str) and etree.QName(child).localname == "Description"
    ]
    text, data, _ = _split_trailer(_normalise("\n\n".join(texts)))
    if data is None or not isinstance(data.get("codebook"), dict):
        return None, []
    warnings: list[str] = []
    fields: dict[str, Any] = {"name": (element.get("name") or "").strip()}
    unchanged = data.get("text") == _digest(text)
    kept = data.get("fields")
    if (
        unchanged
        and isinstance(kept, dict)
        and isinstance(kept.get("description"), str)
        and isinstance(kept.get("source"), (str, type(None)))
    ):
        fields["description"], fields["source"] = kept["description"], kept["source"]
    else:
        fields["description"], fields["source"] = _parse_codebook_text(text)
        if not unchanged:
            warnings.append("the codebook's description was changed after qcode wrote it: read back from its text")
    settings = data["codebook"]
    if settings.get("measurement") in ("nominal", "ordinal"):
        fields["measurement"] = settings["measurement"]
    threshold = settings.get("similarity_threshold")
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and 0 < threshold < 1:
        fields["similarity_threshold"] = float(threshold)
    return fields, warnings


def parse_xml(data: bytes, path: Path | str) -> etree._Element:
    """XML from an untrusted file: no DTDs, no entities, no network. ExchangeError names `path`."""
    # REFI files never need a DTD; one can only expand entities (billion laughs) or reach for other files
    if b"<!DOCTYPE" in data.replace(b"\x00", b"") or b"<!ENTITY" in data.replace(b"\x00", b""):
        raise ExchangeError(f"{path}: has a DOCTYPE or ENTITY declaration, which qcode does not read")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        if data.startswith(b"PK"):
            raise ExchangeError(f"{path}: a ZIP archive (a .qdpx project?), not a .qdc codebook") from exc
        raise ExchangeError(f"{path}: not well-formed XML: {exc}") from exc
    if root.getroottree().docinfo.doctype:
        raise ExchangeError(f"{path}: has a DOCTYPE declaration, which qcode does not read")
    return root


def read_qdc(path: Path, *, name: str | None = None) -> ImportedCodebook:
    """Read a REFI-QDA codebook file; tolerant of BOM, CRLF, a missing declaration or schemaLocation.

    `name` replaces the codebook's name (default: the one qcode wrote, else the file's stem)."""
    path = Path(path)
    root = parse_xml(read_bytes(path), path)
    qname = etree.QName(root)
    warnings: list[str] = []
    if qname.localname != "CodeBook":
        hint = " (a REFI-QDA project, not a codebook)" if qname.localname == "Project" else ""
        raise ExchangeError(f"{path}: the root element is <{qname.localname}>{hint}; a .qdc file has <CodeBook>")
    namespace = qname.namespace or ""
    if namespace == PROJECT_NAMESPACE:
        warnings.append(
            f"<CodeBook> is in the project namespace {PROJECT_NAMESPACE}, not {QDC_NAMESPACE}; read as a codebook"
        )
    elif not namespace:
        warnings.append(f"<CodeBook> has no namespace (expected {QDC_NAMESPACE}); read as a codebook")
    elif namespace != QDC_NAMESPACE:
        raise ExchangeError(f"{path}: <CodeBook> is in namespace '{namespace}', not {QDC_NAMESPACE}")

    codes = None
    settings: dict[str, Any] | None = None
    other_sets: list[str] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        if local == "Codes" and codes is None:
            codes = child
        elif local == "Sets":
            for member in child:
                if not isinstance(member.tag, str):
                    continue
                found, set_warnings = read_codebook_set(member) if settings is None else (None, [])
                if found is not None:
                    settings = found
                    warnings.extend(set_warnings)
                else:
                    other_sets.append(member.get("name") or "(no name)")
        else:
            warnings.append(f"<{local}> in <CodeBook> not imported")
    if codes is None:
        raise ExchangeError(f"{path}: <CodeBook> has no <Codes>")
    if other_sets:
        warnings.append(
            _several(
                other_sets,
                "code set {names} not imported: a qcode codebook has no code sets",
                "{n} code sets not imported ({names}): a qcode codebook has no code sets",
            )
        )
    settings = settings or {}
    try:
        imported = codebook_from_codes(
            codes,
            namespace,
            name=name or settings.get("name") or path.stem,
            description=settings.get("description") or f"Imported from {path.name}",
            source=settings.get("source"),
            measurement=settings.get("measurement", "nominal"),
            similarity_threshold=settings.get("similarity_threshold", 0.5),
        )
    except ExchangeError as exc:
        raise ExchangeError(f"{path}: {exc}") from exc
    imported.warnings[:0] = warnings
    return imported


# ---------------------------------------------------------------- import: spreadsheets


_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "code id", "key", "code key", "short name", "abbreviation"),
    "name": ("name", "label", "code name", "code label", "title"),
    "definition": ("definition", "description", "meaning", "code definition", "code description"),
    "inclusion": (
        "inclusion",
        "inclusions",
        "include",
        "inclusion criteria",
        "inclusion criterion",
        "when to use",
        "apply when",
    ),
    "exclusion": (
        "exclusion",
        "exclusions",
        "exclude",
        "exclusion criteria",
        "exclusion criterion",
        "when not to use",
        "do not apply when",
    ),
    "positive": (
        "examples",
        "example",
        "positive examples",
        "positive example",
        "typical examples",
        "typical example",
        "exemplars",
        "exemplar",
    ),
    "negative": (
        "negative examples",
        "negative example",
        "counterexamples",
        "counterexample",
        "counter examples",
        "counter example",
        "near misses",
        "near miss",
        "non examples",
        "non example",
    ),
    "parent": ("parent", "parent id", "parent code", "parent name"),
    "category": ("category", "parent category", "group", "code group", "theme"),
    "color": ("color", "colour"),
}
_SYNONYMS = {synonym: key for key, synonyms in _COLUMNS.items() for synonym in synonyms}
_LISTS = ("inclusion", "exclusion", "positive", "negative")
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+)")


def _header_key(header: str) -> str:
    text = unicodedata.normalize("NFKC", header).lower()
    text = re.sub(r"\(.*?\)", " ", text)
    text = re.sub(r"[_\-\s]+", " ", text).strip().rstrip(":").strip()
    numbered = re.sub(r"\s*\d+$", "", text)  # "Example 2" is one more example column
    return numbered if text not in _SYNONYMS and numbered in _SYNONYMS else text


def _cell_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    return str(value).replace("\r\n", "\n").replace("\r", "\n").strip()


def _cell_value(value: Any) -> str | int | float | bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and not (isinstance(value, float) and math.isnan(value)):
        return int(value) if isinstance(value, float) and value.is_integer() else value
    text = _cell_text(value)
    if not text:
        return None
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _cell_list(value: Any) -> list[str]:
    items = []
    for line in _cell_text(value).split("\n"):
        bullet = _BULLET.fullmatch(line.strip())
        item = (bullet.group(1) if bullet else line).strip()
        if item:
            items.append(item)
    return items


def _csv_rows(path: Path) -> list[tuple[int, list[Any]]]:
    text, _ = read_text(path)
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max((",", ";", "\t"), key=first.count) if first and any(d in first for d in ",;\t") else ","
    try:
        return [(n, row) for n, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 1)]
    except csv.Error as exc:
        raise ExchangeError(f"{path}: not a readable CSV file: {exc}") from exc


def _xlsx_rows(path: Path, warnings: list[str]) -> list[tuple[int, list[Any]]]:
    import pandas as pd  # only here: pandas is slow to import

    try:
        sheets = pd.read_excel(path, sheet_name=None, header=None, dtype=object, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign file
        raise ExchangeError(f"{path}: cannot read as an Excel workbook: {exc}") from exc
    if not sheets:
        return []
    (first, frame), *others = sheets.items()
    ignored = [sheet for sheet, other in others if not other.dropna(how="all").empty]
    if ignored:
        warnings.append(
            _several(
                ignored,
                f"only the first sheet '{first}' was read; sheet {{names}} was not",
                f"only the first sheet '{first}' was read; {{n}} other sheets were not: {{names}}",
            )
        )
    return [(int(index) + 1, list(row)) for index, row in zip(frame.index, frame.itertuples(index=False, name=None))]


def _check_zip(path: Path) -> None:
    """An .xlsx is a ZIP that openpyxl unpacks whole: a ZIP bomb is refused before it is opened."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked(archive, path)
    except FileError as exc:
        raise ExchangeError(str(exc)) from None
    except zipfile.BadZipFile:
        raise ExchangeError(f"{path}: cannot read as an Excel workbook: the file is not a ZIP archive") from None
    except OSError as exc:
        raise ExchangeError(f"{path}: cannot read: {exc.strerror or exc}") from None


def read_spreadsheet(path: Path, *, name: str | None = None) -> ImportedCodebook:
    """A codebook from a spreadsheet with one row per code (.xlsx or .csv); see docs/codebooks.md for the columns.

    Raises CodebookError listing every problem with its row (as Problem.line), ExchangeError for an unreadable file."""
    path = Path(path)
    read_bytes(path)  # the same "no such file" and "cannot read" as every other file
    warnings: list[str] = []
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows = _csv_rows(path)
    elif suffix in (".xlsx", ".xlsm"):
        _check_zip(path)
        rows = _xlsx_rows(path, warnings)
    else:
        raise ExchangeError(f"{path}: not a spreadsheet qcode reads: save it as .xlsx or .csv")
    file = str(path)
    rows = [(n, cells) for n, cells in rows if any(_cell_text(c) for c in cells)]
    if not rows:
        raise CodebookError(
            [Problem(file=file, line=None, message="the sheet is empty: expected a header row and one row per code")]
        )
    header_row, header = rows[0]
    problems: list[Problem] = []

    columns: dict[str, list[int]] = {}
    attribute_columns: dict[int, str] = {}
    headers = [_cell_text(h) for h in header]
    keys = [_header_key(h) for h in headers]
    has_name = any(_SYNONYMS.get(k) == "name" for k in keys)
    for i, key in enumerate(keys):
        kind = _SYNONYMS.get(key) or ({"code": "id" if has_name else "name"}.get(key))
        if kind is None:
            if key:
                attribute = re.sub(r"\W+", "_", key).strip("_") or f"column_{i + 1}"
                attribute_columns[i] = _unique(attribute, set(attribute_columns.values()) | {"color"})
            continue
        columns.setdefault(kind, []).append(i)
    if "parent" in columns and "category" in columns:
        problems.append(
            Problem(
                file=file,
                line=header_row,
                message=f"columns '{headers[columns['parent'][0]]}' and "
                f"'{headers[columns['category'][0]]}' both name the parent code: keep one",
            )
        )
    for kind in ("id", "name", "definition", "parent", "category", "color"):
        if len(columns.get(kind, [])) > 1:
            names = "', '".join(headers[i] for i in columns[kind])
            problems.append(
                Problem(file=file, line=header_row, message=f"columns '{names}' all give the {kind}: keep one")
            )
    if "name" not in columns and "id" not in columns:
        expected = ", ".join(sorted(_COLUMNS["name"] + ("code",)))
        problems.append(
            Problem(file=file, line=header_row, message=f"no column for the code's name (one of: {expected})")
        )
    if problems:
        raise CodebookError(problems)
    headerless = sorted(
        {i for _, cells in rows[1:] for i, c in enumerate(cells) if _cell_text(c) and (i >= len(keys) or not keys[i])}
    )
    if headerless:
        warnings.append(f"column(s) {', '.join(str(i + 1) for i in headerless)} have no header: not imported")
    if "name" not in columns:
        warnings.append("no name column: the ids stand as the names")

    def cell(cells: list[Any], kind: str) -> Any:
        found = columns.get(kind)
        return cells[found[0]] if found and found[0] < len(cells) else None

    parent_kind = "category" if "category" in columns else "parent"
    entries: list[dict[str, Any]] = []
    taken: set[str] = set()
    first_row: dict[str, int] = {}
    for n, cells in rows[1:]:
        raw_id = _cell_text(cell(cells, "id")).lower()
        if raw_id:
            if not CODE_ID.match(raw_id):
                problems.append(
                    Problem(
                        file=file,
                        line=n,
                        message=f"id '{raw_id}' must be lowercase letters, digits, "
                        "'.', '-' or '_', starting with a letter or digit",
                    )
                )
            elif raw_id in first_row:
                problems.append(
                    Problem(
                        file=file, line=n, message=f"duplicate code id '{raw_id}' (first in row {first_row[raw_id]})"
                    )
                )
            else:
                first_row[raw_id] = n
                taken.add(raw_id)
    no_definition: list[str] = []
    bad_colors: list[str] = []
    renumbered: list[str] = []
    for n, cells in rows[1:]:
        raw_id = _cell_text(cell(cells, "id")).lower()
        label = _cell_text(cell(cells, "name")) or raw_id
        if not label:
            problems.append(Problem(file=file, line=n, message="no name or id for this code"))
            continue
        definition = _cell_text(cell(cells, "definition"))
        if not definition:
            definition = label
            no_definition.append(label)
        lists = {
            kind: [item for i in columns.get(kind, []) if i < len(cells) for item in _cell_list(cells[i])]
            for kind in _LISTS
        }
        attributes: dict[str, Any] = {}
        for i, key in attribute_columns.items():
            value = _cell_value(cells[i]) if i < len(cells) else None
            if value is not None:
                attributes[key] = value
        color = _cell_text(cell(cells, "color"))
        if color and _COLOR.fullmatch(color):
            attributes["color"] = color
        elif color:
            bad_colors.append(f"'{label}' ({color!r})")
        code_id = raw_id or _unique(_slug(label), taken)
        if not raw_id and code_id != _slug(label):
            renumbered.append(f"'{label}' ({code_id})")
        entries.append(
            {
                "row": n,
                "id": code_id,
                "name": label,
                "definition": definition,
                "lists": lists,
                "parent": _cell_text(cell(cells, parent_kind)),
                "attributes": attributes,
            }
        )
    if no_definition:
        warnings.append(
            _several(
                no_definition,
                "code {names} has no definition: its name stands as its definition",
                "{n} codes have no definition: their names stand as their definitions ({names})",
            )
        )
    if bad_colors:
        warnings.append(_several(bad_colors, _BAD_COLOR_ONE, _BAD_COLOR_MANY, quote=False))
    if renumbered:
        warnings.append(_several(renumbered, _RENUMBERED_ONE, _RENUMBERED_MANY, quote=False))

    by_id = {entry["id"]: entry for entry in entries}
    by_name: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        by_name.setdefault(entry["name"].casefold(), []).append(entry)
    added: dict[str, dict[str, Any]] = {}  # categories named in a category column that have no row of their own
    for entry in entries:
        wanted = entry["parent"]
        if not wanted or (parent_kind == "category" and wanted.casefold() == entry["name"].casefold()):
            entry["parent"] = None  # a category row may name itself in the category column
            continue
        if wanted.lower() in by_id:
            entry["parent"] = wanted.lower()
        elif len(by_name.get(wanted.casefold(), [])) == 1:
            entry["parent"] = by_name[wanted.casefold()][0]["id"]
        elif len(by_name.get(wanted.casefold(), [])) > 1:
            rows_named = ", ".join(str(e["row"]) for e in by_name[wanted.casefold()])
            problems.append(
                Problem(
                    file=file,
                    line=entry["row"],
                    message=f"parent '{wanted}' names several codes (rows {rows_named}): give its id instead",
                )
            )
        elif parent_kind == "category":
            if wanted.casefold() not in added:
                added[wanted.casefold()] = {
                    "row": None,
                    "id": _unique(_slug(wanted), taken),
                    "name": wanted,
                    "definition": wanted,
                    "lists": {kind: [] for kind in _LISTS},
                    "parent": None,
                    "attributes": {},
                    "before": entry["row"],
                }
            entry["parent"] = added[wanted.casefold()]["id"]
        else:
            problems.append(
                Problem(file=file, line=entry["row"], message=f"unknown parent '{wanted}': no code has that id or name")
            )
        if entry["parent"] == entry["id"]:
            problems.append(Problem(file=file, line=entry["row"], message=f"code '{entry['id']}' is its own parent"))
    if added:
        category_names = [category["name"] for category in added.values()]
        warnings.append(
            _several(
                category_names,
                "category {names} has no row of its own: added, with its name as its definition",
                "{n} categories have no row of their own: added, with their names as their definitions ({names})",
            )
        )
    parent_of = {entry["id"]: entry["parent"] for entry in entries}
    for entry in entries:
        seen, current = {entry["id"]}, parent_of.get(entry["id"])
        while current in parent_of:
            if current in seen:
                problems.append(
                    Problem(
                        file=file,
                        line=entry["row"],
                        message=f"code '{entry['id']}': parent chain loops back through '{current}'",
                    )
                )
                break
            seen.add(current)
            current = parent_of[current]
    if problems:
        raise CodebookError(sorted(problems, key=lambda p: p.line or 0))

    ordered: list[dict[str, Any]] = []
    for entry in entries:
        ordered.extend(c for c in added.values() if c["before"] == entry["row"])
        ordered.append(entry)
    codes = [
        Code(
            id=e["id"],
            name=e["name"],
            definition=e["definition"],
            inclusion=e["lists"]["inclusion"],
            exclusion=e["lists"]["exclusion"],
            examples=Examples(positive=e["lists"]["positive"], negative=e["lists"]["negative"]),
            parent=e["parent"],
            attributes=e["attributes"],
        )
        for e in ordered
    ]
    codebook = Codebook(name=name or path.stem, description=f"Imported from {path.name}", codes=codes)
    return ImportedCodebook(codebook=codebook, guids={}, warnings=warnings)


def import_codebook(path: Path, *, name: str | None = None) -> ImportedCodebook:
    """Read a .qdc, .xlsx or .csv file, by its suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".qdc":
        return read_qdc(path, name=name)
    if suffix in (".xlsx", ".xlsm", ".csv"):
        return read_spreadsheet(path, name=name)
    raise ExchangeError(
        f"{path}: cannot import a '{suffix or 'suffix-less'}' file: "
        "expected a REFI-QDA codebook (.qdc) or a spreadsheet (.xlsx, .csv)"
    )
