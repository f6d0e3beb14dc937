"""Prompts: versioned Jinja2 templates in prompts/NAME/{system,user}.jinja.

The system template is the stable prefix (instructions, the whole codebook,
the output rules), identical for every chunk so providers' prompt caching
applies; the user template is the variable part (case metadata, context, the
chunk). The prompt version is a hash of the rendered prefix and the variable
part's template: it changes when the instructions, the codebook or the
template change, never with the chunk.
"""

from __future__ import annotations

import hashlib
import os
from functools import cached_property
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound

from pipeline.chunk import Chunk
from pipeline.codebook import Codebook
from pipeline.errors import CoderError

DEFAULT_PROMPT = "coding-v1"


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
        return (self.directory / "user.jinja").read_text(encoding="utf-8")

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
        return (
            self._env.get_template("user.jinja")
            .render(
                chunk=chunk,
                before=chunk.before,
                after=chunk.after,
                metadata=chunk.metadata,
            )
            .strip()
        )

    def version(self, codebook: Codebook) -> str:
        material = f"{self.name}\0{self.system(codebook)}\0{self._user_source}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()[:12]
