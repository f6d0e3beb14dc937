"""Time to read a long PDF, and how many units the examples make in each mode (issue 13).

    python benchmarks/units.py [--pages 100] [--repeat 3]

Writes a `--pages` page PDF with a text layer (fpdf2, a test dependency: five paragraphs of about
450 characters a page), and times reading it into a transcript (pypdf's layout extraction, the
paragraphs and their pages) and cutting it into turn units, best of `--repeat`. Then cuts the
bundled examples (examples/transcripts) as `qcode run` would: chunks of 1,200 characters, turns,
and turns without the interviewer's. Prints one JSON object: seconds in all and per page, peak
resident memory of the process (resource.getrusage), and the units of the examples in each mode.
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

from pipeline.chunk import Units, cut  # noqa: E402
from pipeline.ingest import discover, read_source  # noqa: E402
from pipeline.transcript import SpeakerChoice  # noqa: E402

PARAGRAPH = (
    "The district will fund release time for teacher leaders to plan together every week, and the "
    "literacy coach will visit each school twice a month to work with the professional learning "
    "communities on the writing benchmark. Principals report progress to the district office each "
    "quarter, and the Teacher Leader Council reviews the plan in January. "
)


def write_pdf(path: Path, pages: int) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=11)
    for page in range(pages):
        pdf.add_page()
        for paragraph in range(5):
            pdf.multi_cell(0, 6, f"Section {page + 1}.{paragraph + 1}. {PARAGRAPH}")
            pdf.ln(4)
    pdf.output(str(path))


def read_pdf_seconds(path: Path, repeat: int) -> tuple[float, int, int]:
    best, units, characters = float("inf"), 0, 0
    for _ in range(repeat):
        began = time.perf_counter()
        (source,), _ = discover([path])
        (document,) = read_source(source)
        units = len(cut(document, Units(unit="turn")))
        best = min(best, time.perf_counter() - began)
        characters = len(document.text)
    return best, units, characters


def example_units() -> dict[str, int]:
    sources, _ = discover([ROOT / "examples" / "transcripts"])
    transcripts = [t for s in sources for t in read_source(s)]
    modes = {
        "chunks_1200": Units(),
        "turns": Units(unit="turn"),
        "turns_without_interviewer": Units(unit="turn", speakers=SpeakerChoice.of(skip_speakers="interviewer")),
    }
    return {name: sum(len(cut(t, units)) for t in transcripts) for name, units in modes.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "long.pdf"
        write_pdf(path, args.pages)
        seconds, units, characters = read_pdf_seconds(path, args.repeat)
        size = path.stat().st_size
    print(
        json.dumps(
            {
                "pdf": {
                    "pages": args.pages,
                    "bytes": size,
                    "characters": characters,
                    "turn_units": units,
                    "seconds": round(seconds, 3),
                    "ms_per_page": round(1000 * seconds / args.pages, 2),
                },
                "examples": example_units(),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
