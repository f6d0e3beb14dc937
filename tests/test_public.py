"""What `pipeline` offers a Python user: pinned, so that a name comes or goes on purpose."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pipeline

PUBLIC = [
    "BaseCoder",
    "Chunk",
    "ChunkCoding",
    "Code",
    "Codebook",
    "CodebookError",
    "CoderError",
    "CoderOptions",
    "ExchangeError",
    "FileError",
    "HumanCode",
    "IngestError",
    "MeasureError",
    "Proposal",
    "Provenance",
    "QcodeError",
    "Rejection",
    "RoutingPolicy",
    "RunRequest",
    "RunSummary",
    "SettingsError",
    "Store",
    "StoreError",
    "Suggestion",
    "Transcript",
    "Turn",
    "Usage",
    "chunk_transcript",
    "code_corpus",
    "discover",
    "load_codebook",
    "make_coder",
    "measure_agreement",
    "parse_turns",
    "read_codings",
    "read_source",
    "register_coder",
    "run_request",
    "validate_coding",
]


def test_the_public_names_are_exactly_these() -> None:
    assert pipeline.__all__ == PUBLIC


def test_every_public_name_is_there_and_is_the_thing_its_module_holds() -> None:
    namespace: dict[str, object] = {}
    exec("from pipeline import *", namespace)
    for name in PUBLIC:
        assert namespace[name] is getattr(pipeline, name)
        module = sys.modules[getattr(pipeline, name).__module__]
        assert getattr(module, name) is getattr(pipeline, name)


@pytest.mark.slow  # starts a Python process
def test_importing_qcode_loads_none_of_it_until_asked() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pipeline, sys; print(sorted(m for m in sys.modules if m.startswith('pipeline.')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert loaded.strip() == "[]"
