"""The review app under load: concurrent reviewers deciding every queued suggestion over loopback.

    python benchmarks/review_load.py [--items 2000] [--reviewers 20] [--db URL] [--think SECONDS]
                                     [--seed N] [--keep]

The target (from the issue): a bounded load test on loopback, with 20 concurrent
reviewers deciding 2,000 items, loses no decision and records no double decision;
the note gives median and 95th-percentile response times.

How it measures
---------------
* The database: a synthetic corpus (throughput.py's files of 8 speaker turns, each
  turn one chunk with --chunk-size 200, every text unique) coded by `qcode run` with
  tests/fakes/review_server.py's queueing coder, which proposes one code per chunk with a
  confidence under the routing threshold: exactly --items suggestions, all queued
  for review (--audit-share 0). The codebook has two codes, `funding` and `trust`.
  --db names another, empty, database (e.g. a PostgreSQL URL); the default is a
  SQLite file in a temporary folder (kept with --keep).
* --reviewers accounts (role reviewer), each granted the run.
* The server is `python -m pipeline.cli serve --db ... --port P` in a process of
  its own (QCODE_SECRET_KEY set; a database URL goes in QCODE_DB instead, off the
  command line), so its CPU is not the clients'; it is ready when GET /login
  answers 200. Its CPU time is read from /proc when it stops.
* Each reviewer is a thread with its own httpx.Client (own cookie jar, keep-alive,
  no automatic redirects). All sign in (GET /login for the CSRF token, POST /login;
  a 429 from the sign-in throttle, which every reviewer on 127.0.0.1 shares, is
  counted in sign_in_429s and retried after a pause), wait at a barrier, then loop,
  like a reviewer clicking through the queue:
    next     GET /next, or the /next?...&after=ID a decision redirects to: 303 to
             /items/ID, or to /queue when nothing is left (the reviewer stops);
    item     GET /items/ID: the version, CSRF token and query are read from the
             page's decide form;
    decide   POST /items/ID/decide: 303 when recorded, 409 when someone else
             decided the item first (counted as a conflict, the reviewer moves on).
  Verdicts are drawn per reviewer with a fixed seed: 80 % accept, 10 % reject with
  a reason, 10 % change to the other code. Every request is timed on the client
  (time.perf_counter around the call, so client-side queuing in this process is
  included); `open` is next + item (clicking "next" until the item shows) and
  `click_to_next_item` is decide + next + item (clicking a verdict until the next
  item shows). 20 client threads share one Python process; its CPU time is reported
  so that client saturation is visible.
* Integrity, from the database afterwards (SQLAlchemy, so SQLite and PostgreSQL alike):
  every suggestion is decided; there is exactly one decision row per suggestion
  (no double decision); the multiset of (suggestion, reviewer, verdict, final code)
  over the 303 answers equals the one over the decision rows (no lost decision, no
  decision nobody was told about); no reviewer answered 409 has a row for that item;
  each suggestion's decided_by names its row's reviewer and its version went 1 -> 2.
* wall_seconds is the deciding phase (after the barrier, sign-in excluded);
  decisions_per_second is the decisions recorded over it.
* By default reviewers do not pause (--think 0), so this is a closed loop at
  saturation: the server is always busy and a response time is mostly time spent
  queued behind the other reviewers' requests (about reviewers / requests per
  second, Little's law). --think S pauses 0.5 S to 1.5 S on each item page, as a
  reader would, for response times below saturation. The machine's load average
  is reported, since other work on it slows the server and the clients alike.
* The exit status is 1 when an integrity check fails, a request errs or a reviewer
  stops before the queue is empty.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
for _path in (ROOT, ROOT / "tests", ROOT / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from throughput import CHUNK_SIZE, CODEBOOK, write_corpus  # noqa: E402

SECRET_KEY = "review-load-secret-key-0123456789abcdef"
CODES = ("funding", "trust")
REJECT_REASON = "Not what the code means here (load test)."


# --- the database ------------------------------------------------------------------------


def build_database(folder: Path, items: int, db: str | None = None) -> tuple[str, str]:
    """A database with exactly `items` suggestions queued for review: returns (db, run id).
    Like tests/fakes/review_server.make_review_db, with one chunk per turn (--chunk-size)."""
    from fakes.review_server import queueing_coder

    from pipeline.run.corpus import code_corpus
    from pipeline.run.settings import run_request

    queueing_coder()
    corpus, codebook = folder / "transcripts", folder / "codebook.yaml"
    write_corpus(corpus, items)
    codebook.write_text(CODEBOOK, encoding="utf-8")
    db = db or str(folder / "review.db")
    # the run without Prefect: the database is what is measured, not how it was coded
    settings = {
        "codebook": str(codebook),
        "db": db,
        "coder": "review-test",
        "audit_share": 0,
        "chunk_size": CHUNK_SIZE,
    }
    summary = code_corpus(run_request([corpus], settings)).model_dump()
    if summary["queued"] != items or summary["suggestions"] != items:
        raise RuntimeError(
            f"expected {items} queued suggestions, the run made {summary['suggestions']} "
            f"({summary['queued']} queued): is the database empty?"
        )
    return db, summary["run_id"]


def make_accounts(db: str, reviewers: int, run_id: str) -> dict[str, str]:
    """Reviewer accounts reviewer-00, reviewer-01, ... granted the run: name -> password."""
    from fakes.review_server import make_reviewers

    return make_reviewers(db, {f"reviewer-{i:02d}": "reviewer" for i in range(reviewers)}, run_id)


def free_port() -> int:
    from fakes.review_server import free_port as port

    return port()


# --- the server --------------------------------------------------------------------------


class ServerProcess:
    """`qcode serve` in a process of its own on 127.0.0.1."""

    def __init__(self, db: str, log: Path, port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in ("QCODE_DB", "QCODE_CONFIG", "QCODE_SECURE_COOKIES")}
        env["QCODE_SECRET_KEY"] = SECRET_KEY
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        if "://" in db:  # a URL may hold a password: not on a command line others can read
            env["QCODE_DB"], where = db, []
        else:
            where = ["--db", db]
        self.log = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "serve", *where, "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log.parent,
        )
        self.cpu_seconds: float | None = None

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the review app exited ({self.process.returncode}):\n{self.output()}")
            try:
                if httpx.get(self.url + "/login", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the review app did not answer within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def _cpu(self) -> float | None:
        """user + system CPU seconds of the server process (Linux /proc), None elsewhere."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def __enter__(self) -> ServerProcess:
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.cpu_seconds = self._cpu()
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


# --- the reviewers -----------------------------------------------------------------------

FORM = re.compile(r'<form[^>]*id="decide"[^>]*>(.*?)</form>', re.S)
HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
SUGGESTED = re.compile(r'<span id="code">([^<]*)</span>')
LOGIN_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class ReviewerLog:
    """What one reviewer's client saw."""

    name: str
    latencies: dict[str, list[float]] = field(default_factory=dict)
    decided: list[dict[str, Any]] = field(default_factory=list)  # 303 answers to decide
    conflicts: list[str] = field(default_factory=list)  # suggestion ids answered 409
    stale: list[str] = field(default_factory=list)  # items already decided when their page came
    errors: list[str] = field(default_factory=list)
    sign_in_refused: int = 0  # 429 answers to a correct password
    finished: bool = False

    def time(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)


def _choose(rng: random.Random, suggested: str, codes: list[str]) -> dict[str, str]:
    draw = rng.random()
    if draw < 0.8:
        return {"verdict": "accept"}
    if draw < 0.9:
        return {"verdict": "reject", "reason": REJECT_REASON}
    other = next(c for c in codes if c != suggested)
    return {"verdict": "change", "code": other}


def _expected_code(wish: dict[str, str], suggested: str) -> str | None:
    return {"accept": suggested, "reject": None, "change": wish.get("code")}[wish["verdict"]]


def sign_in(client: httpx.Client, name: str, password: str, log: ReviewerLog, patience: float = 60.0) -> None:
    """Sign in; a 429 (the sign-in throttle, which all reviewers on one address share) is
    counted and retried after a short pause, whatever Retry-After says, for up to `patience` s."""
    page = client.get("/login")
    page.raise_for_status()
    token = LOGIN_CSRF.search(page.text)
    if token is None:
        raise RuntimeError("no CSRF token on the sign-in page")
    form = {"csrf_token": html.unescape(token.group(1)), "next": "/queue", "name": name, "password": password}
    deadline = time.monotonic() + patience
    began = time.perf_counter()
    while True:
        answer = client.post("/login", data=form)
        if answer.status_code == 303:  # timed from the first try: refusals and pauses included
            log.time("login", time.perf_counter() - began)
            return
        if answer.status_code != 429 or time.monotonic() > deadline:
            raise RuntimeError(f"{name} could not sign in: {answer.status_code}")
        log.sign_in_refused += 1
        time.sleep(random.uniform(0.1, 0.5))


def review(
    url: str,
    name: str,
    password: str,
    seed: int,
    start: threading.Barrier | None = None,
    think: float = 0.0,
    timeout: float = 120.0,
    max_errors: int = 50,
    max_steps: int = 100_000,
) -> ReviewerLog:
    """One reviewer: sign in, wait for the others, then decide items until /next has none left,
    pausing `think` seconds on each item page (0: clicking through as fast as pages come)."""
    log = ReviewerLog(name)
    rng = random.Random(seed)
    codes = list(CODES)
    with httpx.Client(base_url=url, follow_redirects=False, timeout=timeout) as client:
        try:
            sign_in(client, name, password, log)
        except Exception as exc:
            log.errors.append(f"sign-in: {exc!r}")
            if start is not None:
                start.abort()
            return log
        if start is not None:
            start.wait()
        target, clicked = "/next", None
        for _ in range(max_steps):
            if len(log.errors) >= max_errors:
                break
            after_decision, clicked = clicked, None
            try:
                began = time.perf_counter()
                answer = client.get(target)
                t_next = time.perf_counter() - began
                log.time("next", t_next)
                location = answer.headers.get("location", "")
                if answer.status_code != 303 or not location:
                    log.errors.append(f"GET {target}: {answer.status_code}")
                    target = "/next"
                    continue
                path = urlsplit(location).path
                if path.startswith("/queue"):  # nothing left
                    log.finished = True
                    break
                if not path.startswith("/items/"):
                    log.errors.append(f"GET {target}: redirected to {location}")
                    target = "/next"
                    continue
                item_id = path.removeprefix("/items/")
                began = time.perf_counter()
                page = client.get(location)
                t_item = time.perf_counter() - began
                log.time("item", t_item)
                log.time("open", t_next + t_item)
                if after_decision is not None:  # the page that follows a recorded decision
                    log.time("click_to_next_item", after_decision + t_next + t_item)
                if page.status_code != 200:
                    log.errors.append(f"GET {location}: {page.status_code}")
                    target = "/next"
                    continue
                form = FORM.search(page.text)
                if form is None:  # decided by someone between /next and the page
                    log.stale.append(item_id)
                    target = f"/next?after={item_id}"
                    continue
                fields = {k: html.unescape(v) for k, v in HIDDEN.findall(form.group(1))}
                suggested = html.unescape(SUGGESTED.search(page.text).group(1))
                wish = _choose(rng, suggested, codes)
                if think > 0:
                    time.sleep(rng.uniform(0.5 * think, 1.5 * think))
                began = time.perf_counter()
                answer = client.post(
                    f"/items/{item_id}/decide",
                    data={
                        "csrf_token": fields["csrf_token"],
                        "version": fields["version"],
                        "query": fields["query"],
                        "quote_start": "",
                        "quote_end": "",
                        "note": "",
                        "reason": wish.get("reason", ""),
                        "code": wish.get("code", ""),
                        "verdict": wish["verdict"],
                    },
                )
                t_decide = time.perf_counter() - began
                log.time("decide", t_decide)
                if answer.status_code == 303:
                    clicked = t_decide
                    log.decided.append(
                        {
                            "suggestion_id": item_id,
                            "reviewer": name,
                            "verdict": wish["verdict"],
                            "final_code": _expected_code(wish, suggested),
                        }
                    )
                    target = answer.headers["location"]
                elif answer.status_code == 409:
                    log.conflicts.append(item_id)
                    target = f"/next?after={item_id}"
                else:
                    log.errors.append(f"POST /items/{item_id}/decide: {answer.status_code}")
                    target = "/next"
            except (httpx.HTTPError, AttributeError, KeyError) as exc:
                log.errors.append(f"{target}: {exc!r}")
                target = "/next"
                time.sleep(0.05)
    return log


def run_reviewers(
    url: str, accounts: dict[str, str], seed: int = 0, think: float = 0.0, timeout: float = 120.0
) -> tuple[list[ReviewerLog], float, float]:
    """All reviewers at once, each in a thread: (their logs, seconds of the deciding phase, client CPU seconds)."""
    logs: list[ReviewerLog | None] = [None] * len(accounts)
    clock: dict[str, float] = {}

    def started() -> None:
        clock["began"] = time.perf_counter()
        clock["cpu"] = time.process_time()

    barrier = threading.Barrier(len(accounts), action=started)

    def one(i: int, name: str, password: str) -> None:
        try:
            logs[i] = review(url, name, password, seed * 1000 + i, barrier, think=think, timeout=timeout)
        except threading.BrokenBarrierError:
            logs[i] = ReviewerLog(name, errors=["the start barrier broke: another reviewer could not sign in"])

    threads = [
        threading.Thread(target=one, args=(i, name, password), name=name, daemon=True)
        for i, (name, password) in enumerate(accounts.items())
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - clock.get("began", time.perf_counter())
    cpu = time.process_time() - clock.get("cpu", time.process_time())
    return [log for log in logs if log is not None], wall, cpu


# --- checks and figures ------------------------------------------------------------------


def integrity(db: str, logs: list[ReviewerLog], items: int) -> dict[str, Any]:
    """What the database says against what the reviewers were told."""
    from sqlalchemy import func, select

    from pipeline.store import DecisionRecord, Store, SuggestionRecord

    store = Store(db, migrate=False)
    try:
        with store.session() as s:
            suggestions = s.execute(
                select(
                    SuggestionRecord.id,
                    SuggestionRecord.decided_at,
                    SuggestionRecord.decided_by,
                    SuggestionRecord.version,
                )
            ).all()
            rows = s.execute(
                select(
                    DecisionRecord.suggestion_id,
                    DecisionRecord.reviewer,
                    DecisionRecord.verdict,
                    DecisionRecord.final_code,
                )
            ).all()
            other_rows = s.scalar(
                select(func.count()).select_from(DecisionRecord).where(DecisionRecord.suggestion_id.is_(None))
            )
    finally:
        store.engine.dispose()
    per_suggestion = Counter(r.suggestion_id for r in rows if r.suggestion_id is not None)
    doubles = sorted(sid for sid, n in per_suggestion.items() if n > 1)
    undecided = sorted(sug.id for sug in suggestions if sug.decided_at is None)
    by_row = {r.suggestion_id: r for r in rows}
    told = Counter(
        (d["suggestion_id"], d["reviewer"], d["verdict"], d["final_code"]) for log in logs for d in log.decided
    )
    recorded = Counter((r.suggestion_id, r.reviewer, r.verdict, r.final_code) for r in rows if r.suggestion_id)
    lost = told - recorded  # a 303 with no row to show for it
    untold = recorded - told  # a row no reviewer was told about
    conflicted_with_row = sorted(
        f"{log.name}:{sid}"
        for log in logs
        for sid in log.conflicts
        if by_row.get(sid) is not None and by_row[sid].reviewer == log.name
    )
    mismatched = sorted(
        sug.id
        for sug in suggestions
        if sug.decided_at is not None
        and (sug.id not in by_row or by_row[sug.id].reviewer != sug.decided_by or sug.version != 2)
    )
    checks = {
        "suggestions": len(suggestions),
        "decided_suggestions": len(suggestions) - len(undecided),
        "decision_rows": sum(per_suggestion.values()),
        "other_decision_rows": other_rows,
        "recorded_responses": sum(told.values()),
        "double_decisions": len(doubles),
        "undecided": len(undecided),
        "lost_decisions": sum(lost.values()),
        "untold_decisions": sum(untold.values()),
        "conflicts_with_a_row": len(conflicted_with_row),
        "suggestion_row_mismatches": len(mismatched),
    }
    checks.update(
        {
            "every_item_decided": checks["decided_suggestions"] == items == checks["suggestions"] and not undecided,
            "one_row_per_item": checks["decision_rows"] == items and not doubles and len(per_suggestion) == items,
            "no_lost_decision": not lost and checks["recorded_responses"] == items,
            "responses_match_rows": not lost and not untold and not conflicted_with_row and not mismatched,
        }
    )
    checks["ok"] = (
        all(checks[k] for k in ("every_item_decided", "one_row_per_item", "no_lost_decision", "responses_match_rows"))
        and other_rows == 0
    )
    examples = {
        "double": doubles[:5],
        "undecided": undecided[:5],
        "lost": [list(k) for k in list(lost)[:5]],
        "untold": [list(k) for k in list(untold)[:5]],
        "conflicted_with_row": conflicted_with_row[:5],
        "mismatched": mismatched[:5],
    }
    if any(examples.values()):
        checks["examples"] = {k: v for k, v in examples.items() if v}
    return checks


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return sorted_values[max(0, math.ceil(share * len(sorted_values)) - 1)]


def latency_summary(logs: list[ReviewerLog]) -> dict[str, dict[str, float]]:
    """Per request kind: count, median, p95, p99 and max in milliseconds."""
    kinds: dict[str, list[float]] = {}
    for log in logs:
        for kind, values in log.latencies.items():
            kinds.setdefault(kind, []).extend(values)
    out = {}
    for kind in ("login", "next", "item", "open", "decide", "click_to_next_item"):
        values = sorted(kinds.get(kind, []))
        if values:
            out[kind] = {
                "count": len(values),
                "median_ms": round(1000 * percentile(values, 0.5), 1),
                "p95_ms": round(1000 * percentile(values, 0.95), 1),
                "p99_ms": round(1000 * percentile(values, 0.99), 1),
                "max_ms": round(1000 * values[-1], 1),
            }
    return out


def _commit() -> str | None:
    """The checkout measured: its commit, with '+dirty' when pipeline/ has changes not committed."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "pipeline"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def _load_average() -> float | None:
    """The machine's 1-minute load average: other work on it slows the server and the clients."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def load_test(
    folder: Path, items: int, reviewers: int, db: str | None = None, seed: int = 0, think: float = 0.0
) -> dict[str, Any]:
    """Build the database, serve it, let the reviewers decide everything, check: the result."""
    began = time.perf_counter()
    load_before = _load_average()
    db, run_id = build_database(folder, items, db)
    accounts = make_accounts(db, reviewers, run_id)
    build = time.perf_counter() - began
    with ServerProcess(db, folder / "server.log") as server:
        logs, wall, client_cpu = run_reviewers(server.url, accounts, seed, think)
    checks = integrity(db, logs, items)
    decisions = sum(len(log.decided) for log in logs)
    errors = [e for log in logs for e in log.errors]
    return {
        "items": items,
        "reviewers": reviewers,
        "commit": _commit(),
        "think_seconds": think,
        "database": db.split(":", 1)[0] if "://" in db else "sqlite",
        "setup_seconds": round(build, 2),
        "wall_seconds": round(wall, 2),
        "decisions": decisions,
        "decisions_per_second": round(decisions / wall, 1) if wall > 0 else None,
        "latency_ms": latency_summary(logs),
        "conflicts": sum(len(log.conflicts) for log in logs),
        "stale_opens": sum(len(log.stale) for log in logs),
        "sign_in_429s": sum(log.sign_in_refused for log in logs),
        "errors": len(errors),
        "error_examples": errors[:5],
        "reviewers_finished": sum(log.finished for log in logs),
        "decisions_per_reviewer": {
            "min": min((len(log.decided) for log in logs), default=0),
            "max": max((len(log.decided) for log in logs), default=0),
        },
        "server_cpu_seconds": None if server.cpu_seconds is None else round(server.cpu_seconds, 2),
        "client_cpu_seconds": round(client_cpu, 2),
        "cpus": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": _load_average()},
        "integrity": checks,
        "target_met": checks["ok"] and not errors and all(log.finished for log in logs),
        "server_log": server.output().strip()[-2000:] or None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000, help="suggestions queued for review")
    parser.add_argument("--reviewers", type=int, default=20, help="reviewers deciding at once")
    parser.add_argument(
        "--db", help="an empty database to use (e.g. a PostgreSQL URL); default: a SQLite file in a temporary folder"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the reviewers' verdicts")
    parser.add_argument(
        "--think",
        type=float,
        default=0.0,
        help="seconds each reviewer spends on an item page before deciding (drawn from 0.5x to "
        "1.5x); default 0: the server is saturated and response times include its queue",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (database, server log)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="qcode-review-load-"))
    try:
        result = load_test(folder, args.items, args.reviewers, args.db, args.seed, args.think)
        if args.keep:
            result["kept"] = str(folder)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps(result, indent=2))
    if not result["target_met"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
