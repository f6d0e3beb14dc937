"""Throughput of the openai coder against a rate-limited, slow OpenAI-compatible server.

    python benchmarks/throughput.py [--chunks 2000] [--concurrency 8] [--batch-size N]
                                    [--latency 0.2] [--rpm 600] [--quick] [--profile FILE]
    python benchmarks/throughput.py --tpm 200000 [--quick]

The tokens-per-minute scenario (`--tpm N`): the linkages codebook, whose instructions and codes are
most of every request, coded under qcode's --tpm N and --rpm limits at 1, 4 and 8 units per request;
for each, chunks per minute over the coding phase and input tokens per chunk. The target: at 8, at
least three times the chunks per minute of 1, and at most a third of its input tokens per chunk.

The target (from the issue): coding at least 2,000 chunks against a server with
200 ms latency and a 600 requests-per-minute limit reaches at least 0.9 of the
ceiling, min(rpm / 60, concurrency / latency) requests per second, with under
2 ms of qcode's own CPU time per chunk.

How it measures
---------------
* The server is tests/fakes/openai_server.py in a process of its own, so its CPU is
  not counted as qcode's.
* A synthetic corpus in a temporary folder: files of 8 speaker turns, each turn
  one chunk (--chunk-size 200), every chunk's text unique; turns mention funding
  and/or trust (or neither) so the fake model's replies carry codes, which are
  validated, routed and stored like real ones. The codebook has the two codes
  `funding` and `trust`.
* qcode runs as the run of `qcode run ... --coder openai` without its Prefect flow
  (`pipeline.run.corpus.code_corpus`, through benchmarks/plain_run.py) in a fresh
  process without OPENAI_API_KEY, three times over the same database:
    cold     every chunk is coded with a live request (the measured run);
    rerun    the identical command: every chunk is already coded, so this is
             start-up, ingest and chunking only;
    replay   max_attempts 2 changes the coder key but not a single request
             body, so every chunk is coded again with every call answered from
             the call cache: coding, validation and storing without HTTP.
* CPU: user + sys of each qcode process and its children
  (getrusage(RUSAGE_CHILDREN) deltas; the fake server is not
  reaped until the end). cpu_ms_per_chunk_total is the cold run's CPU over the
  chunks; cpu_ms_per_chunk_coding is (cold - rerun) over the chunks, i.e. what
  coding the chunks costs beyond start-up and ingest.
  qcode_cpu_ms_per_chunk_coding is the same difference of the CPU qcode's own
  process reports in its summary (`cpu_seconds`), which is what the target is
  about; cache_replay.cpu_ms_per_chunk is (replay - rerun) over the chunks.
* The client's floor: from qcode's first request on, the bare `openai` client, in
  a process of its own, sends the same request bodies (built by qcode's coder) at
  the same concurrency and pace to a second server with the same latency, side by
  side with the cold run (see Floor). client_floor.cpu_ms_per_request is what any
  program pays that codes through the client at this pace on this machine;
  qcode_cpu_ms_per_chunk_beyond_client is qcode's figure less that floor.
* Throughput: the benchmark polls GET /_control/stats every 0.5 s during the
  cold run and fits the rate of completed requests between 10 % and 90 % of
  completion (least squares): achieved_per_s and ratio = achieved / ceiling.
  coding_phase_per_s is completions over the time from the first request seen
  to the last completion seen (start-up excluded, batch tails included).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import plain_run

ROOT = Path(__file__).resolve().parent.parent
SERVER = ROOT / "tests" / "fakes" / "openai_server.py"
TURNS_PER_FILE = 8
CHUNK_SIZE = 200

CODEBOOK = """\
name: Throughput benchmark codebook
description: Two codes about how a district supports teacher leaders.
codes:
  - id: funding
    name: Funding
    definition: Money, grants, release time or materials the district provides.
    inclusion: [Grants, stipends, paid release time.]
    exclusion: [Praise without resources; use trust.]
    examples:
      positive: ["The district funds our release time."]
      negative: ["We talked about the weather."]
  - id: trust
    name: Trust
    definition: Trust, respect and openness between district leaders and teacher leaders.
    examples:
      positive: ["I trust my principal."]
"""

# Sentences for the turns; {f} and {t} make every chunk's text unique.
TURNS = [
    "Interviewer: In file {f}, turn {t}: how does the district help your team of teacher leaders this year, "
    "and what changed since last spring?",
    "Ms. Chen: Funding for release time came from the district office in term {t}. We meet every month in "
    "room {f} to plan the next unit together.",
    "Mr. Ortiz: I trust the district office completely, at least since meeting {f}-{t}. They listen to us "
    "and they answer our emails within a day.",
    "Dr. Ramos: Funding is thin this year, item {f}.{t} on the list. Still, we trust each other and keep "
    "going with the coaching cycles we started.",
    "Ms. Lee: It rained all week, {t} days out of seven in block {f}. The parking lot flooded again and the "
    "buses were late every single morning.",
    "Mr. Diaz: The new schedule, version {f}.{t}, gives us an hour on Fridays. Nobody complained about it, "
    "which surprised the principal a little.",
    "Ms. Park: Grants and stipends arrived late, batch {f}/{t}. The funding office apologised to everyone "
    "and promised an earlier date next year.",
    "Dr. Kim: We trust our coaches because of conversation {f}:{t}. Openness grew over the whole year, one "
    "honest meeting after another.",
]


def write_corpus(folder: Path, chunks: int) -> int:
    """Files of TURNS_PER_FILE turns, one chunk each; returns the number of files."""
    folder.mkdir(parents=True)
    files = math.ceil(chunks / TURNS_PER_FILE)
    left = chunks
    for f in range(files):
        n = min(TURNS_PER_FILE, left)
        left -= n
        lines = [TURNS[(f + t) % len(TURNS)].format(f=f, t=t) for t in range(n)]
        (folder / f"interview_{f:04d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return files


class Server:
    """tests/fakes/openai_server.py in a separate process."""

    def __init__(self, latency: float, rpm: int):
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), "--port", "0", "--latency", str(latency), "--rpm-limit", str(rpm)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        line = self.process.stdout.readline().strip()
        if not line.startswith("http"):
            self.stop()
            raise RuntimeError(f"the fake server did not start: {line!r}")
        self.url = line  # http://127.0.0.1:PORT/v1
        self.root = line.rsplit("/v1", 1)[0]

    def stats(self) -> dict:
        with urllib.request.urlopen(self.root + "/_control/stats", timeout=5) as response:
            return json.load(response)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Poller(threading.Thread):
    """Samples (seconds since start, chat_requests, chat_completed) every `interval` seconds."""

    def __init__(self, server: Server, interval: float = 0.5):
        super().__init__(daemon=True)
        self.server, self.interval = server, interval
        self.samples: list[tuple[float, int, int]] = []
        self.began = time.perf_counter()
        self.done = threading.Event()
        self.requests_seen = threading.Event()

    def sample(self) -> None:
        stats = self.server.stats()
        self.samples.append((time.perf_counter() - self.began, stats["chat_requests"], stats["chat_completed"]))
        if self.samples[-1][1] > self.samples[0][1]:
            self.requests_seen.set()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.sample()
            except OSError:
                pass
            self.done.wait(self.interval)

    def stop(self) -> None:
        self.done.set()
        self.join()
        self.sample()


def steady_rate(samples: list[tuple[float, int, int]], low: float = 0.1, high: float = 0.9) -> dict:
    """Completions per second: least-squares slope between `low` and `high` of the run's completions,
    and completions over [first request seen, last completion seen]."""
    base_requests, base_completed = samples[0][1], samples[0][2]
    points = [(t, r - base_requests, c - base_completed) for t, r, c in samples]
    total = points[-1][2]
    if total <= 0:
        return {"steady_per_s": 0.0, "coding_phase_per_s": 0.0, "coding_phase_seconds": 0.0}
    window = [(t, c) for t, _, c in points if low * total <= c <= high * total]
    if len(window) >= 3:
        mean_t = sum(t for t, _ in window) / len(window)
        mean_c = sum(c for _, c in window) / len(window)
        slope = sum((t - mean_t) * (c - mean_c) for t, c in window) / sum((t - mean_t) ** 2 for t, _ in window)
    else:  # too few polls in the window: the rate between the crossings

        def crossing(level: float) -> float:
            for (t0, _, c0), (t1, _, c1) in zip(points, points[1:]):
                if c0 < level <= c1:
                    return t0 + (t1 - t0) * (level - c0) / (c1 - c0)
            return points[-1][0]

        slope = (high - low) * total / max(1e-9, crossing(high * total) - crossing(low * total))
    first = next(t for t, r, _ in points if r > 0)
    last = next(t for t, _, c in points if c >= total)
    phase = max(1e-9, last - first)
    return {"steady_per_s": slope, "coding_phase_per_s": total / phase, "coding_phase_seconds": phase}


FLOOR_SCRIPT = """
import asyncio, json, sys, time
import openai

async def main(url, bodies_path, concurrency, per_second):
    bodies = [json.loads(line) for line in open(bodies_path, encoding="utf-8")]
    client = openai.AsyncOpenAI(api_key="no-key", base_url=url, http_client=openai.DefaultAioHttpClient())
    gate = asyncio.Semaphore(concurrency)
    due = [time.monotonic()]

    async def one(body):
        async with gate:
            if per_second:  # evenly spaced, as qcode's limiter spaces them
                slot = max(due[0], time.monotonic())
                due[0] = slot + 1 / per_second
                await asyncio.sleep(slot - time.monotonic())
            await client.post("/chat/completions", body=body, cast_to=object)

    await asyncio.gather(*(one(b) for b in bodies[:concurrency]))  # warm up the connections
    began = time.process_time()
    await asyncio.gather(*(one(b) for b in bodies[concurrency:]))
    print(json.dumps({"requests": len(bodies) - concurrency, "cpu_seconds": time.process_time() - began}))
    await client.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
"""


def request_bodies(corpus: Path, codebook: Path, count: int) -> list[dict]:
    """The first request body of each chunk, built by qcode's own coder as a run builds them."""
    sys.path.insert(0, str(ROOT))
    from pipeline.chunk import chunk_transcript
    from pipeline.codebook import load_codebook
    from pipeline.coders.openai_chat import OpenAICoder
    from pipeline.ingest import CsvOptions, discover, read_source

    book = load_codebook(str(codebook))
    coder = OpenAICoder("gpt-4o-mini", base_url="http://127.0.0.1:1/v1")
    sources, _ = discover([str(corpus)])
    bodies = []
    for source in sources:
        for transcript in read_source(source, CsvOptions(None, None)):
            for chunk in chunk_transcript(transcript, CHUNK_SIZE, 0):
                bodies.append(coder.request(coder.messages(chunk, book), book)[0])
    return [bodies[i % len(bodies)] for i in range(count)]


class Floor:
    """The bare openai client in a process of its own (same transport, concurrency and pace),
    sending qcode's request bodies to a server of its own with the same latency, while
    qcode's cold run codes: both see the same machine at the same moment, which matters on
    a machine whose speed drifts by a third from one minute to the next. The pace matters
    too: a request every 100 ms costs more CPU than the same request in a crowd, since each
    one wakes the event loop, and finds the processor's caches cold, on its own."""

    def __init__(self, bodies: list[dict], folder: Path, latency: float, concurrency: int, rpm: int):
        self.path = folder / "floor-bodies.jsonl"
        self.path.write_text("".join(json.dumps(b, ensure_ascii=False) + "\n" for b in bodies), encoding="utf-8")
        self.concurrency, self.rpm = concurrency, rpm
        self.server = Server(latency, 0)
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        per_second = self.rpm * 0.98 / 60 if self.rpm else 0  # 2 % under the limit, as qcode paces itself
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                FLOOR_SCRIPT,
                self.server.url,
                str(self.path),
                str(self.concurrency),
                str(per_second),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.path.parent,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.server.stop()

    def result(self) -> dict:
        try:
            out, err = self.process.communicate()
        finally:
            self.server.stop()
        if self.process.returncode != 0:
            raise SystemExit(f"the client floor measurement failed:\n{err[-2000:]}")
        measured = json.loads(out.strip().splitlines()[-1])
        return {
            "requests": measured["requests"],
            "requests_per_minute": self.rpm,
            "measured": "alongside qcode's cold run",
            "cpu_ms_per_request": round(1000 * measured["cpu_seconds"] / max(1, measured["requests"]), 3),
        }


def run_qcode(
    corpus: Path,
    codebook: Path,
    db: Path,
    workdir: Path,
    url: str,
    args: argparse.Namespace,
    profile: str | None = None,
    **extra: object,
) -> dict:
    """One run in a fresh process, as `qcode run` codes without Prefect: its summary, wall seconds
    and CPU seconds."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "QCODE_DB", "QCODE_CONFIG", "QCODE_THRESHOLD")
    }
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    settings = {
        "codebook": str(codebook),
        "db": str(db),
        "coder": "openai",
        "model": "gpt-4o-mini",
        "base_url": url,
        "rpm": args.rpm,
        "concurrency": args.concurrency,
        "batch_size": args.batch_size,
        "chunk_size": CHUNK_SIZE,
        "units_per_request": getattr(args, "units_per_request", "1"),
        **extra,
    }
    command = plain_run.command([corpus], settings)
    if profile:
        command[1:1] = ["-m", "cProfile", "-o", profile]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir, env=env)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        summary = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(
            f"qcode failed (exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
        ) from None
    if "error" in summary:
        raise SystemExit(f"qcode failed: {summary['error']}\n{done.stderr[-4000:]}")
    return {"summary": summary, "wall": wall, "cpu": cpu, "exit": done.returncode}


# the tokens-per-minute scenario: chunks for each units-per-request setting, so each run lasts about
# a minute at 200,000 TPM with the linkages codebook
TPM_CHUNKS = {1: 48, 4: 144, 8: 256}


def tpm_scenario(args: argparse.Namespace) -> dict:
    """Chunks per minute and input tokens per chunk under a tokens-per-minute limit (the linkages
    codebook, whose prefix is most of each request), at 1, 4 and 8 units per request."""
    rows = {}
    with tempfile.TemporaryDirectory(prefix="qcode-tpm-") as tmp:
        folder = Path(tmp)
        codebook = ROOT / "codebooks" / "linkages.yaml"
        server = Server(args.latency, args.rpm)
        try:
            for per, chunks in TPM_CHUNKS.items():
                if args.quick:
                    chunks //= 4
                corpus = folder / f"corpus-{per}"
                write_corpus(corpus, chunks)
                poller = Poller(server)
                poller.start()
                ran = run_qcode(
                    corpus,
                    codebook,
                    folder / f"tpm-{per}.db",
                    folder,
                    server.url,
                    args,
                    tpm=args.tpm,
                    units_per_request=str(per),
                )
                poller.stop()
                summary = ran["summary"]
                phase = steady_rate(poller.samples)["coding_phase_seconds"]
                rows[per] = {
                    "chunks": summary["chunks_coded_now"],
                    "requests": summary["requests"],
                    "failed_chunks": summary["failed_chunks"],
                    "coding_seconds": round(phase, 1),
                    "chunks_per_minute": round(60 * summary["chunks_coded_now"] / max(phase, 1e-9), 1),
                    "input_tokens_per_chunk": round(summary["input_tokens"] / max(1, summary["chunks_coded_now"])),
                    "qcode_cpu_ms_per_chunk": round(
                        1000 * summary["cpu_seconds"] / max(1, summary["chunks_coded_now"]), 2
                    ),
                }
        finally:
            server.stop()
    one, eight = rows[1], rows[8]
    return {
        "scenario": f"{args.tpm:,} tokens per minute, {args.rpm} requests per minute, {args.latency} s latency, "
        "the linkages codebook; qcode's --tpm and --rpm at those limits",
        "units_per_request": rows,
        "speed_up_at_8": round(eight["chunks_per_minute"] / max(one["chunks_per_minute"], 1e-9), 2),
        "input_tokens_at_8_over_1": round(eight["input_tokens_per_chunk"] / max(one["input_tokens_per_chunk"], 1), 3),
        "target_met": eight["chunks_per_minute"] >= 3 * one["chunks_per_minute"]
        and eight["input_tokens_per_chunk"] <= one["input_tokens_per_chunk"] / 3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=None, help="default: qcode's own for the coder")
    parser.add_argument("--latency", type=float, default=0.2, help="server seconds per answer")
    parser.add_argument("--rpm", type=int, default=600, help="server rate limit, and qcode's --rpm")
    parser.add_argument("--quick", action="store_true", help="300 chunks, for trying things")
    parser.add_argument("--no-replay", action="store_true", help="skip the cache-replay run")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="run the cold run under cProfile, writing FILE (its CPU numbers are then inflated)",
    )
    parser.add_argument(
        "--units-per-request", default="1", help="qcode's --units-per-request for the main scenario (default 1)"
    )
    parser.add_argument(
        "--tpm",
        type=int,
        default=None,
        metavar="N",
        help="instead: the tokens-per-minute scenario at N tokens a minute (e.g. 200000), at 1, 4 and 8 units per request",
    )
    args = parser.parse_args()
    if args.tpm:
        print(json.dumps(tpm_scenario(args), indent=2))
        return
    if args.quick:
        args.chunks = 300

    ceiling = min(args.rpm / 60.0, args.concurrency / args.latency)
    with tempfile.TemporaryDirectory(prefix="qcode-throughput-") as tmp:
        folder = Path(tmp)
        corpus, codebook, db = folder / "corpus", folder / "codebook.yaml", folder / "bench.db"
        files = write_corpus(corpus, args.chunks)
        codebook.write_text(CODEBOOK, encoding="utf-8")
        # as many requests as qcode sends, plus the floor's warm-up
        floor = Floor(
            request_bodies(corpus, codebook, args.chunks + args.concurrency),
            folder,
            args.latency,
            args.concurrency,
            args.rpm,
        )
        server = Server(args.latency, args.rpm)
        try:
            start = server.stats()
            poller = Poller(server)
            poller.start()
            outcome: dict = {}
            coding = threading.Thread(
                target=lambda: outcome.update(
                    cold=run_qcode(
                        corpus,
                        codebook,
                        db,
                        folder,
                        server.url,
                        args,
                        profile=str(Path(args.profile).resolve()) if args.profile else None,
                    )
                )
            )
            coding.start()
            while not poller.requests_seen.wait(0.5) and coding.is_alive():
                pass
            floor.start()  # when qcode's first request arrives: its start-up is not matched
            coding.join()
            if "cold" not in outcome:
                raise SystemExit("qcode's cold run failed")
            cold = outcome["cold"]
            poller.stop()
            after_cold = server.stats()
            rerun = run_qcode(corpus, codebook, db, folder, server.url, args)
            replay = (
                None if args.no_replay else run_qcode(corpus, codebook, db, folder, server.url, args, max_attempts=2)
            )
            end = server.stats()
        except BaseException:
            floor.stop()
            raise
        finally:
            server.stop()
        floor_figures = floor.result()

    summary = cold["summary"]
    chunks = summary["chunks_coded_now"]
    if summary["chunks"] != args.chunks or chunks != args.chunks:
        print(f"warning: {summary['chunks']} chunks ingested, {chunks} coded; expected {args.chunks}", file=sys.stderr)
    rates = steady_rate(poller.samples)
    coding_cpu = cold["cpu"] - rerun["cpu"]
    # qcode's own process only, as its summary reports it
    own_coding_cpu = summary["cpu_seconds"] - rerun["summary"]["cpu_seconds"]
    result = {
        "chunks": chunks,
        "files": files,
        "concurrency": args.concurrency,
        "batch_size": args.batch_size,
        "latency": args.latency,
        "rpm_limit": args.rpm,
        "ceiling_per_s": round(ceiling, 3),
        "achieved_per_s": round(rates["steady_per_s"], 3),
        "ratio": round(rates["steady_per_s"] / ceiling, 3),
        "coding_phase_per_s": round(rates["coding_phase_per_s"], 3),
        "coding_phase_ratio": round(rates["coding_phase_per_s"] / ceiling, 3),
        "coding_phase_seconds": round(rates["coding_phase_seconds"], 2),
        "wall_seconds": round(cold["wall"], 2),
        "qcode_summary_seconds": summary["seconds"],
        "cpu_seconds_total": round(cold["cpu"], 3),
        "cpu_ms_per_chunk_total": round(1000 * cold["cpu"] / max(1, chunks), 3),
        "cpu_ms_per_chunk_coding": round(1000 * coding_cpu / max(1, chunks), 3),
        "cpu_coding_estimate": "(CPU of the cold run - CPU of an identical rerun that codes nothing: start-up, "
        "ingest) / chunks",
        "qcode_cpu_ms_per_chunk_coding": round(1000 * own_coding_cpu / max(1, chunks), 3),
        "qcode_cpu_estimate": "the same difference, of the CPU qcode's own process reports (time.process_time in "
        "the run summary)",
        "client_floor": floor_figures,
        "qcode_cpu_ms_per_chunk_beyond_client": round(
            1000 * own_coding_cpu / max(1, chunks) - floor_figures["cpu_ms_per_request"], 3
        ),
        "baseline_rerun": {
            "wall_seconds": round(rerun["wall"], 2),
            "cpu_seconds": round(rerun["cpu"], 3),
            "chunks_coded": rerun["summary"]["chunks_coded_now"],
        },
        "requests": summary["requests"],
        "cache_hits": summary["cache_hits"],
        "failed_chunks": summary["failed_chunks"],
        "suggestions": summary["suggestions"],
        "server": {
            "chat_requests": after_cold["chat_requests"] - start["chat_requests"],
            "chat_completed": after_cold["chat_completed"] - start["chat_completed"],
            "rate_limited": after_cold["rate_limited"] - start["rate_limited"],
            "max_in_flight": after_cold.get("max_in_flight"),
            "requests_after_cold_run": end["chat_requests"] - after_cold["chat_requests"],
        },
        "target_met": rates["steady_per_s"] / ceiling >= 0.9 and 1000 * own_coding_cpu / max(1, chunks) < 2.0,
    }
    if replay is not None:
        result["cache_replay"] = {
            "wall_seconds": round(replay["wall"], 2),
            "cpu_seconds": round(replay["cpu"], 3),
            "chunks_coded": replay["summary"]["chunks_coded_now"],
            "cache_hits": replay["summary"]["cache_hits"],
            "requests": replay["summary"]["requests"],
            "cpu_ms_per_chunk": round(1000 * (replay["cpu"] - rerun["cpu"]) / max(1, chunks), 3),
        }
    if args.profile:
        result["note"] = f"cold run profiled into {args.profile}: its CPU numbers include cProfile's overhead"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
