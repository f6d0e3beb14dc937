from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CODEBOOKS = ROOT / "codebooks"
LINKAGES = CODEBOOKS / "linkages.yaml"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own folder, with no qcode settings from the user."""
    monkeypatch.chdir(tmp_path)
    for name in ("QCODE_DB", "QCODE_CONFIG", "QCODE_THRESHOLD"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'test.db'}"


SMALL_CODEBOOK = """\
name: Small test codebook
description: Two codes for tests.
measurement: nominal
similarity_threshold: 0.35
codes:
  - id: funding
    name: Funding and resources
    definition: Money, budgets, grants, release time and materials the district provides.
    examples:
      positive:
        - "The district gave us a grant to buy new materials."
      negative:
        - "We talked about the weather."
  - id: trust
    name: Trust between colleagues
    definition: Trust, respect and openness in working relationships.
    examples:
      positive:
        - "I trust my principal completely."
"""


@pytest.fixture
def small_codebook(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_CODEBOOK, encoding="utf-8")
    return path


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
