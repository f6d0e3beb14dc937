"""Time and memory of the agreement report at scale (issue 5, point 5).

    python benchmarks/agreement_scale.py [--units 100000] [--codes 20] [--replicates 1000] [--kind multi|single]

Writes a synthetic `unit_id,coder,code` table (one model and two reviewers; each
unit has 0 to 3 true codes of unequal prevalence, and every coder misses or adds
codes at random), then reads it and computes the whole report with bootstrap
intervals, in this process. Prints one JSON object: wall seconds to read the
table and to compute the report, and the peak resident memory of the process
(resource.getrusage). The issue's bar: under 60 s and under 2 GB on a 2-core
machine for 100,000 units, 3 coders, 20 codes and 1,000 replicates.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.measure.agreement import measure_agreement, read_codings  # noqa: E402

CODERS = ("offline:all-MiniLM-L6-v2", "reviewer:ana", "reviewer:ben")


def synthetic_table(path: Path, units: int, codes: int, kind: str, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    prevalence = np.geomspace(0.3, 0.005, codes)
    prevalence /= prevalence.sum()
    names = [f"code-{k:02d}" for k in range(codes)]
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["unit_id", "coder", "code"])
        sizes = (
            rng.choice([0, 1, 2, 3], p=[0.3, 0.4, 0.2, 0.1], size=units)
            if kind == "multi"
            else rng.choice([0, 1], p=[0.15, 0.85], size=units)
        )
        for u in range(units):
            truth = set(rng.choice(codes, size=sizes[u], replace=False, p=prevalence).tolist())
            for coder in CODERS:
                if coder != CODERS[0] and rng.random() < 0.02:
                    continue  # a reviewer who skipped the unit: missing, not none
                given = {k for k in truth if rng.random() > 0.15}
                if rng.random() < 0.1:
                    given.add(int(rng.choice(codes, p=prevalence)))
                if kind == "single" and len(given) > 1:
                    given = {min(given)}
                for k in sorted(given) or [None]:
                    writer.writerow([f"unit-{u:06d}", coder, "" if k is None else names[k]])
                    rows += 1
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--codes", type=int, default=20)
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--kind", choices=("multi", "single"), default="multi")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        table = Path(folder) / "codings.csv"
        rows = synthetic_table(table, args.units, args.codes, args.kind)
        began = time.perf_counter()
        codings = read_codings(table)
        read_seconds = time.perf_counter() - began
        began = time.perf_counter()
        report = measure_agreement(codings, bootstrap=args.replicates, seed=0)
        report_seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "units": args.units,
                "coders": len(CODERS),
                "codes": args.codes,
                "rows": rows,
                "kind": args.kind,
                "replicates": args.replicates,
                "read_seconds": round(read_seconds, 2),
                "report_seconds": round(report_seconds, 2),
                "wall_seconds": round(read_seconds + report_seconds, 2),
                "peak_rss_mb": round(peak, 1),
                "krippendorff_alpha": report.overall.krippendorff_alpha.value,
                "krippendorff_alpha_ci95": report.overall.krippendorff_alpha.interval,
            }
        )
    )


if __name__ == "__main__":
    main()
