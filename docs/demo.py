"""What the screenshot scripts share: the browser they drive and a real `qcode run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "transcripts"
CODEBOOK = ROOT / "codebooks" / "linkages.yaml"
CHROMIUM = os.environ.get("QCODE_TEST_CHROMIUM") or "/usr/bin/chromium"
# without the background-networking flags Chromium keeps calling out, which a closed network refuses
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


def qcode_run(source: Path, db: Path, folder: Path) -> str:
    """The offline coder over `source` into `db`, as a user runs it; returns the run id."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "run",
            str(source),
            "--codebook",
            str(CODEBOOK),
            "--db",
            str(db),
            "--json",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        sys.exit(f"qcode run failed:\n{result.stdout}\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])["run_id"]
