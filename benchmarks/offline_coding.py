"""Time and memory of coding the bundled examples, and offline coder throughput.

    python benchmarks/offline_coding.py [--repeat N]

Prints one JSON object:
- `run`: a whole run over examples/transcripts (`pipeline.run.corpus.code_corpus`,
  what `qcode run` does without its Prefect flow) in a fresh process and a fresh
  database (wall seconds, peak resident memory of that process), and a second
  run over the same database (everything cached);
- `coder`: chunks per second of the offline coder alone, with the model
  already loaded, over the examples' chunks repeated N times.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path

from plain_run import command

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "transcripts"
CODEBOOK = ROOT / "codebooks" / "linkages.yaml"


def timed_run(db: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    began = time.perf_counter()
    done = subprocess.run(
        command([EXAMPLES], {"codebook": str(CODEBOOK), "db": str(db)}), capture_output=True, text=True, check=True
    )
    seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads(done.stdout)
    return {
        "wall_seconds": round(seconds, 2),
        "peak_rss_mb": round(max(peak, before) / 1024, 1),
        "chunks": summary["chunks"],
        "chunks_coded": summary["chunks_coded_now"],
        "suggestions": summary["suggestions"],
    }


def coder_throughput(repeat: int) -> dict:
    from pipeline.chunk import chunk_transcript
    from pipeline.codebook import load_codebook
    from pipeline.coders import make_coder
    from pipeline.ingest import discover, read_source

    codebook = load_codebook(CODEBOOK)
    sources, _ = discover([EXAMPLES])
    chunks = [c for s in sources for t in read_source(s) for c in chunk_transcript(t)]
    coder = make_coder("offline")
    began = time.perf_counter()
    coder.code(chunks[:2], codebook)  # loads the model and embeds the codebook
    warmup = time.perf_counter() - began
    work = chunks * repeat
    began = time.perf_counter()
    for i in range(0, len(work), 32):
        coder.code(work[i : i + 32], codebook)
    seconds = time.perf_counter() - began
    return {
        "model_load_seconds": round(warmup, 2),
        "chunks": len(work),
        "seconds": round(seconds, 2),
        "chunks_per_second": round(len(work) / seconds, 1),
        "ms_per_chunk": round(1000 * seconds / len(work), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        first = timed_run(db)
        second = timed_run(db)
    result = {"run": {"fresh": first, "rerun": second}, "coder": coder_throughput(args.repeat)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
