"""Training and coding with the learned coder on the shared AnnoMI set (issue 14).

    python benchmarks/learned.py [--data ../shared/data/annomi-train]

Reads the 126 human-coded counselling transcripts and their codes (`codes.csv`, passages), cut into
speaker turns. In a fresh SQLite store it trains cold (every embedding computed), then trains again
warm on all but one transcript (a new model, its embeddings from the store), then codes every turn with the model (embeddings cached, as after
a first run). Prints one JSON object: seconds for each, turns coded per second, the peak resident
memory of the process (resource.getrusage), and the model card: each code's cross-validated
agreement with the annotator (grouped by transcript), and the single-label kappa over all turns.
Without the data folder it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.chunk import Units  # noqa: E402
from pipeline.codebook import Codebook, load_codebook  # noqa: E402
from pipeline.coders.learned import LearnedCoder  # noqa: E402
from pipeline.ingest import CsvOptions  # noqa: E402
from pipeline.ingest.gold import Gold, read_gold, read_transcripts  # noqa: E402
from pipeline.learn.examples import from_spans  # noqa: E402
from pipeline.learn.train import train_model  # noqa: E402
from pipeline.store import Store  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "annomi-train"


def read_shared(data: Path, script: str) -> tuple[Path, Codebook, Gold] | None:
    """The shared set's codebook (its path too) and codes over its transcripts; None, said, when absent."""
    if not (data / "codes.csv").is_file():
        print(f"{script}: no data at {data} (codes.csv, codebook.yaml, transcripts/): skipped")
        return None
    codebook_path = data / "codebook.yaml"
    codebook = load_codebook(codebook_path)
    transcripts = read_transcripts(str(data), data / "transcripts", CsvOptions())
    return (
        codebook_path,
        codebook,
        read_gold([data / "codes.csv"], transcripts, data / "transcripts", codebook, codebook_path),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    shared = read_shared(args.data, "benchmarks/learned.py")
    if shared is None:
        return
    codebook_path, codebook, gold = shared
    examples = from_spans(
        gold.transcripts, gold.spans, gold.coverage, Units(unit="turn"), codebook.applicable_ids(), "gold"
    )
    with tempfile.TemporaryDirectory() as folder:
        store = Store(str(Path(folder) / "bench.db"))
        began = time.perf_counter()
        card = train_model(store, codebook, examples)
        cold = time.perf_counter() - began
        # warm: one transcript fewer (new codes, a new model), every embedding in the store
        began = time.perf_counter()
        last = examples[-1].unit.transcript_id
        train_model(store, codebook, [e for e in examples if e.unit.transcript_id != last])
        warm = time.perf_counter() - began
        coder = LearnedCoder()
        coder.use_store(store)
        coder.prepare(codebook)
        units = [e.unit for e in examples]
        began = time.perf_counter()
        for at in range(0, len(units), coder.batch_size):
            coder.code(units[at : at + coder.batch_size], codebook)
        coding = time.perf_counter() - began
        store.engine.dispose()
    print(
        json.dumps(
            {
                "turns": len(examples),
                "transcripts": card.transcripts,
                "train_cold_seconds": round(cold, 1),
                "train_warm_seconds": round(warm, 1),
                "coding_seconds": round(coding, 1),
                "turns_coded_per_second": round(len(examples) / coding, 1),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "overall": card.overall.model_dump() if card.overall else None,
                "codes": {c.code: {"positives": c.positives, **c.cv.model_dump()} for c in card.codes},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
