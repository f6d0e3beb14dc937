"""Time and memory of REFI-QDA import and export (issue 6).

    python benchmarks/exchange.py [--sources 50] [--chars 60000] [--codings 400]

Writes a synthetic project as NVivo would (UTF-8 text with a byte-order mark and CR LF line ends,
emoji outside the Basic Multilingual Plane, positions in UTF-16 code units): `--sources` text
sources of about `--chars` characters, each with `--codings` codings by two coders from a
40-code codebook. Then, in this process, into a fresh SQLite store: `qcode import` (read, check,
chunk, store in one transaction) and `qcode export --format qdpx` of what came in. Prints one JSON
object: seconds for each step, per coding and per million characters, and the peak resident
memory of the process (resource.getrusage).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.exchange.exports import write_project  # noqa: E402
from pipeline.exchange.imports import import_project  # noqa: E402
from pipeline.exchange.projects import PROJECT_NAMESPACE, read_project  # noqa: E402
from pipeline.store import Store  # noqa: E402

WORDS = "district teacher leaders coaches plan meeting grant trust principal budget 😀 release time".split()


def synthetic_project(path: Path, sources: int, chars: int, codings: int, seed: int = 0) -> tuple[int, int]:
    rng = random.Random(seed)
    codes = [(str(uuid.UUID(int=rng.getrandbits(128))), f"code {k}") for k in range(40)]
    users = [(str(uuid.UUID(int=rng.getrandbits(128))), name) for name in ("ana", "ben")]
    parts = [f'<Project xmlns="{PROJECT_NAMESPACE}" name="bench" origin="NVivo for Windows 12.6"><Users>']
    parts += [f'<User guid="{g}" name="{n}"/>' for g, n in users]
    parts.append("</Users><CodeBook><Codes>")
    parts += [f'<Code guid="{g}" name="{n}" isCodable="true"/>' for g, n in codes]
    parts.append("</Codes></CodeBook><Sources>")
    files: dict[str, bytes] = {}
    total_chars = 0
    for s in range(sources):
        lines, size = [], 0
        while size < chars:
            line = f"Speaker {rng.randint(1, 3)}: " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 30)))
            lines.append(line)
            size += len(line) + 2
        text = "\r\n".join(lines) + "\r\n"
        total_chars += len(text)
        units = len(text.encode("utf-16-le")) // 2
        key = str(uuid.UUID(int=rng.getrandbits(128)))
        files[f"Sources/{key}.txt"] = b"\xef\xbb\xbf" + text.encode("utf-8")
        parts.append(f'<TextSource guid="{key}" name="source {s}" plainTextPath="internal://{key}.txt">')
        for c in range(codings):
            start = rng.randrange(0, units - 400)
            end = start + rng.randint(20, 400)
            guid = uuid.UUID(int=rng.getrandbits(128))
            parts.append(
                f'<PlainTextSelection guid="{guid}" startPosition="{start}" endPosition="{end}">'
                f'<Coding guid="{uuid.UUID(int=rng.getrandbits(128))}" creatingUser="{users[c % 2][0]}">'
                f'<CodeRef targetGUID="{rng.choice(codes)[0]}"/></Coding></PlainTextSelection>'
            )
        parts.append("</TextSource>")
    parts.append("</Sources></Project>")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.qde", "".join(parts))
        for name, data in files.items():
            archive.writestr(name, data)
    return sources * codings, total_chars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=50)
    parser.add_argument("--chars", type=int, default=60_000)
    parser.add_argument("--codings", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        project = folder / "bench.qdpx"
        codings, chars = synthetic_project(project, args.sources, args.chars, args.codings)
        store = Store(str(folder / "bench.db"))

        started = time.perf_counter()
        read = read_project(project)
        read_seconds = time.perf_counter() - started
        summary = import_project(store, read)
        import_seconds = time.perf_counter() - started

        started = time.perf_counter()
        exported = write_project(store, folder / "out.qdpx")
        export_seconds = time.perf_counter() - started
    result = {
        "sources": args.sources,
        "characters": chars,
        "codings": codings,
        "human_codes_stored": summary.human_codes,
        "chunks": summary.chunks,
        "codings_exported": exported.codings,
        "read_seconds": round(read_seconds, 2),
        "import_seconds": round(import_seconds, 2),
        "import_ms_per_coding": round(1000 * import_seconds / codings, 3),
        "import_seconds_per_million_characters": round(import_seconds / (chars / 1e6), 2),
        "export_seconds": round(export_seconds, 2),
        "export_ms_per_coding": round(1000 * export_seconds / max(exported.codings, 1), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
