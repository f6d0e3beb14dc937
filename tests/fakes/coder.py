"""The tests' one stand-in coder: it proposes what it is told to, and fails when it is told to.

A test that needs coded suggestions it can predict registers a ScriptedCoder under a name of its own,
with the plan it needs (`scripted_coder(...)`), and runs qcode with `--coder NAME` like any coder:

- `proposes="marks"`: every line carrying a mark such as `[trust 0.50]` gets that code at that
  confidence, quoting the line;
- `proposes="first-code"`: the codebook's first applicable code on every chunk, quoting the chunk's
  first line, at `confidence`, and the justification repeats the quote (so markup in a transcript
  reaches every field a page shows);
- `proposes="phrases"`: for a chunk holding one of `phrases`, its (code, confidence, quote) proposals,
  each with a justification of its own as a fourth item if it is given ("Scripted." if not);
- `proposes="made-up"`: a code the codebook lacks, with a quote that is not in the passage.

`only` keeps the proposals of those codes alone. `ScriptedCoder.failures` are raised, one per batch,
before anything is coded; `ScriptedCoder.calls` counts the batches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from pipeline.chunk import Chunk
from pipeline.codebook import Codebook
from pipeline.coders import BaseCoder, register_coder
from pipeline.suggestion import ChunkCoding, Proposal

MARK = re.compile(r"\[([\w.-]+) (\d\.\d+)\]")


class Plan(BaseModel):
    proposes: Literal["marks", "first-code", "phrases", "made-up"] = "marks"
    confidence: float = 0.3
    phrases: dict[str, list[tuple[str, float, str] | tuple[str, float, str, str]]] = Field(default_factory=dict)
    only: list[str] | None = None


class ScriptedCoder(BaseCoder):
    name = "scripted"
    model = "scripted-1"
    prompt: ClassVar[str] = "scripted-v1"
    plan: ClassVar[Plan] = Plan()
    failures: ClassVar[list[BaseException]] = []
    calls: ClassVar[int] = 0

    @property
    def parameters(self) -> dict[str, Any]:
        return self.plan.model_dump(mode="json")

    def prompt_version(self, codebook: Codebook) -> str:
        return self.prompt

    def code(self, chunks: Sequence[Chunk], codebook: Codebook) -> list[ChunkCoding]:
        type(self).calls += 1
        if self.failures:
            raise self.failures.pop(0)
        codings = []
        for chunk in chunks:
            proposals = [
                p for p in self._propose(chunk, codebook) if self.plan.only is None or p.code in self.plan.only
            ]
            codings.append(ChunkCoding(chunk_id=chunk.id, proposals=proposals))
        return codings

    def _propose(self, chunk: Chunk, codebook: Codebook) -> list[Proposal]:
        plan = self.plan
        if plan.proposes == "marks":
            return [
                Proposal(
                    code=m.group(1),
                    justification=f"Marked {m.group(1)}.",
                    quote=line.strip(),
                    confidence=float(m.group(2)),
                )
                for line in chunk.text.split("\n")
                if (m := MARK.search(line))
            ]
        if plan.proposes == "first-code":
            quote = next(line for line in chunk.text.split("\n") if line.strip())
            return [
                Proposal(
                    code=codebook.leaves[0].id,
                    justification=f"The passage says: {quote}",
                    quote=quote,
                    confidence=plan.confidence,
                )
            ]
        if plan.proposes == "phrases":
            return [
                Proposal(code=code, justification=(*why, "Scripted.")[0], quote=quote, confidence=confidence)
                for phrase, proposals in plan.phrases.items()
                if phrase in chunk.text
                for code, confidence, quote, *why in proposals
            ]
        return [Proposal(code="made-up", justification="<b>j</b>", quote="words nobody said", confidence=0.9)]


def scripted_coder(
    name: str, model: str = "scripted-1", prompt: str = "scripted-v1", **plan: Any
) -> type[ScriptedCoder]:
    """A ScriptedCoder registered as `name`, with the names of its model and prompt, and its plan."""
    identifier = re.sub(r"\W", "_", name)
    coder = type(
        f"ScriptedCoder_{identifier}",
        (ScriptedCoder,),
        {"name": name, "model": model, "prompt": prompt, "plan": Plan(**plan), "__module__": __name__},
    )
    register_coder(name, coder)
    return coder
