"""Prompts: versioned Jinja2 templates in prompts/NAME/{system,user}.jinja (and units.jinja, for
several units per request).

The system template is the stable prefix (instructions, the whole codebook,
the output rules), identical for every chunk so providers' prompt caching
applies; the user template is the variable part (case metadata, context, the
chunk). The prompt version is a hash of the rendered prefix and the variable
part's template: it changes when the instructions, the codebook or the
template change, never with the chunk.

A unit that is one turn, or whose speakers are not all coded, opens with a note
that says so (`unit_note`); its wording is versioned by UNIT_NOTE, which is part
of the coder's configuration whenever a run uses it (`pipeline.coders.provenance`).
So a run of whole chunks of every speaker sends exactly what it always sent.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from pipeline.chunk import Chunk
from pipeline.codebook import Codebook
from pipeline.coders.groups import between
from pipeline.errors import CoderError
from pipeline.files import read_bytes

DEFAULT_PROMPT = "coding-v1"
UNIT_NOTE = "unit-note-1"  # change it with the wording of unit_note


def prompts_dir() -> Path:
    return Path(os.environ.get("QCODE_PROMPTS") or Path(__file__).resolve().parents[2] / "prompts")


class Prompt:
    def __init__(self, name: str = DEFAULT_PROMPT, directory: Path | None = None):
        self.name = name
        self.directory = Path(directory) if directory else prompts_dir() / name
        if not (self.directory / "system.jinja").is_file() or not (self.directory / "user.jinja").is_file():
            raise CoderError(f"prompt '{name}' needs system.jinja and user.jinja in {self.directory}")
        self._env = Environment(
            loader=FileSystemLoader(str(self.directory)),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            autoescape=False,
        )
        self._systems: dict[str, str] = {}

    @cached_property
    def _user_source(self) -> str:
        return _template_text(self.directory / "user.jinja")

    def system(self, codebook: Codebook) -> str:
        if codebook.version not in self._systems:
            try:
                template = self._env.get_template("system.jinja")
            except TemplateNotFound as exc:  # pragma: no cover - checked in __init__
                raise CoderError(str(exc)) from exc
            leaves = codebook.leaves
            categories = [code for code in codebook.codes if code not in leaves]
            self._systems[codebook.version] = template.render(
                codebook=codebook,
                codes=leaves,
                categories=categories,
            ).strip()
        return self._systems[codebook.version]

    def user(self, chunk: Chunk) -> str:
        text = (
            self._env.get_template("user.jinja")
            .render(
                chunk=chunk,
                before=chunk.before,
                after=chunk.after,
                metadata=chunk.metadata,
            )
            .strip()
        )
        note = unit_note(chunk)
        return f"{note}\n\n{text}" if note else text

    def units(self, chunks: Sequence[Chunk], labels: Sequence[str]) -> str:
        """The user message for several consecutive units of one transcript (units.jinja): context
        before the first and after the last, the words between two units, each unit labelled."""
        try:
            template = self._env.get_template("units.jinja")
        except TemplateNotFound as exc:
            raise CoderError(
                f"prompt '{self.name}' has no units.jinja in {self.directory}: several units per request need one"
            ) from exc
        units = [
            {
                "label": label,
                "chunk": chunk,
                "note": unit_note(chunk),
                "between": between(chunks[i - 1], chunk) if i else "",
            }
            for i, (chunk, label) in enumerate(zip(chunks, labels))
        ]
        return template.render(
            units=units, before=chunks[0].before, after=chunks[-1].after, metadata=chunks[0].metadata
        ).strip()

    def version(self, codebook: Codebook, grouped: bool = False) -> str:
        """A hash of the rendered prefix and the variable part's template (and, for several units per
        request, of units.jinja)."""
        material = f"{self.name}\0{self.system(codebook)}\0{self._user_source}"
        if grouped:
            units = self.directory / "units.jinja"
            material += "\0" + (_template_text(units) if units.is_file() else "")
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]


def _template_text(path: Path) -> str:
    """A template's text as Path.read_text(encoding="utf-8") gives it (the same text, so the same
    prompt version), read as every file qcode reads is: looked at first (`regular_file`), so a named
    pipe or a device in a --prompt folder is refused at once instead of waited on, and one put there
    after the look is not waited on either."""
    text = read_bytes(path).decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # the newlines read_text translates


def unit_note(chunk: Chunk) -> str:
    """What the coder is told about the unit before it: that it is one speaker's turn, and whose
    words in it are context only. Empty for a chunk whose every speaker is coded."""
    lines = []
    if chunk.unit == "turn":
        who = f" of {chunk.speakers[0]}" if chunk.speakers and chunk.speakers[0] else ""
        part = f" (part {chunk.part} of {chunk.parts})" if chunk.parts else ""
        lines.append(f"The passage to code is one turn{who}{part}; code what it says.")
    context = chunk.context_speakers
    if context:
        coded = ", ".join(_speaker(s) for s in chunk.coded_speakers)
        lines.append(
            f"Code only the words of {coded}. The words of {', '.join(_speaker(s) for s in context)} "
            "in the passage are context: do not code or quote them."
        )
    return "\n".join(lines)


def _speaker(name: str | None) -> str:
    return name or "the passages with no speaker"
