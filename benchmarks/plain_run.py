"""One run, without Prefect, in a process of its own: what `qcode run` does, minus its Prefect flow.

    python benchmarks/plain_run.py '{"paths": ["corpus/"], "settings": {"codebook": "c.yaml", "db": "b.db"}}'

`settings` are what `qcode run` takes as flags, by name (run settings and coder options: "coder",
"model", "rpm", ...). Prints the run's summary as one JSON object, as `qcode run --json` does. The
benchmarks time it in a fresh process, so start-up and the model's loading count as they would.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()


def command(paths: list[str | Path], settings: dict[str, Any]) -> list[str]:
    """The command line that runs this script over `paths` with `settings`."""
    return [sys.executable, str(SCRIPT), json.dumps({"paths": [str(p) for p in paths], "settings": settings})]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from pipeline.run.corpus import code_corpus
    from pipeline.run.settings import run_request

    given = json.loads(sys.argv[1])
    summary = code_corpus(run_request(given["paths"], given["settings"]))
    print(summary.model_dump_json())


if __name__ == "__main__":
    main()
