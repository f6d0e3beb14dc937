"""Make docs/report.png, the picture of `qcode report`, from a demo study.

    python docs/report_screenshot.py [--keep FOLDER]

Codes every example transcript with the offline coder (a real `qcode run`, about a
minute), then plays a small review: three reviewers settle the queued suggestions and
add two codes the coder missed, and two of them code a random sample of twelve passages
blind. Their choices are made by a plain rule, not by people: a keyword list per linkage
says which linkages a sentence talks about, and words such as "not", "never" or
"missing" make it a weakness; the second blind coder reads a little differently (seeded).
Then it writes the report and photographs the top of the page in headless Chromium
(Debian's chromium package: QCODE_TEST_CHROMIUM or /usr/bin/chromium; nothing is
downloaded). `--keep FOLDER` keeps the demo database and report.html there.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.browser import CHROMIUM, LAUNCH_ARGS  # noqa: E402  (the browser the tests drive)
from sqlalchemy import select  # noqa: E402

from pipeline.measure.report import write_report  # noqa: E402
from pipeline.review.blind import assignments, create_sample, submit  # noqa: E402
from pipeline.review.decisions import DecisionRequest, add_code, decide  # noqa: E402
from pipeline.review.reviewers import add_reviewer, authenticate, grant_runs  # noqa: E402
from pipeline.store import ChunkRecord, RunRecord, Store, SuggestionRecord  # noqa: E402

EXAMPLES = ROOT / "examples" / "transcripts"
CODEBOOK = ROOT / "codebooks" / "linkages.yaml"
OUT = ROOT / "docs" / "report.png"
VIEWPORT = {"width": 1280, "height": 1180}
SEED = 7

# what a sentence talks about, by linkage; the demo reviewers' whole codebook knowledge
TOPICS = {
    "structural": [
        "council",
        "position",
        "structure",
        "meeting",
        "academy",
        "schedule",
        "committee",
        "cohort",
        "role",
        "period",
        "team",
    ],
    "relational": ["trust", "relationship", "respect", "partner", "isolat", "listen", "support", "colleague"],
    "resource": ["stipend", "money", "budget", "grant", "resource", "funding", "coach", "release", "materials", "time"],
    "communication": [
        "hear",
        "news",
        "note",
        "email",
        "message",
        "communicat",
        "texts",
        "brief",
        "tell",
        "told",
        "explain",
        "updates",
        "announce",
    ],
    "ideological": [
        "vision",
        "believe",
        "goal",
        "values",
        "mission",
        "priorit",
        "mandate",
        "fit",
        "expect",
        "initiative",
    ],
    "boundary-spanning": [
        "bring",
        "back to",
        "departments",
        "between",
        "teachers at large",
        "broker",
        "translate",
        "carry",
        "both sides",
        "go-between",
    ],
}
NEGATIVE = re.compile(
    r"\b(not|never|no|nobody|missing|lack\w*|hard|isolat\w*|undermin\w*|burn\w*|wait things out|"
    r"without|problem\w*|fail\w*|confus\w*|frustrat\w*|too many|varies|underestimat\w*)\b",
    re.IGNORECASE,
)


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


def judge(text: str, skip: frozenset[str] = frozenset()) -> list[str]:
    """The codes the demo reviewers see in a text: at most two linkages, strongest first."""
    hits: dict[str, tuple[int, int]] = {}
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        lower = sentence.lower()
        negative = bool(NEGATIVE.search(sentence))
        for topic, words in TOPICS.items():
            if topic in skip:
                continue
            n = sum(lower.count(w) for w in words)
            if n:
                count, bad = hits.get(topic, (0, 0))
                hits[topic] = (count + n, bad + (n if negative else -n))
    ranked = sorted(hits, key=lambda t: -hits[t][0])[:2]
    return [f"{t}.{'weakness' if hits[t][1] > 0 else 'strength'}" for t in ranked]


def spoken(text: str) -> str:
    """A passage without the interviewer's turns."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().lower().startswith("interviewer"))


def code_examples(folder: Path, db: Path) -> str:
    """`qcode run` over the example transcripts into `db`; returns the run id."""
    source = folder / "transcripts"
    shutil.copytree(EXAMPLES, source)
    return qcode_run(source, db, folder)


def review(store: Store, run_id: str) -> dict[str, int]:
    """Reviewers settle the queue, add two missed codes, and two of them code a sample blind."""
    people = {"ana": "reviewer", "ben": "reviewer", "chris": "reviewer", "lea": "lead"}
    reviewers = {}
    for name, role in people.items():
        password = add_reviewer(store, name, role)
        grant_runs(store, name, [run_id])
        reviewers[name] = authenticate(store, name, password)
    rng = random.Random(SEED)
    with store.session() as s:
        codebook_version = s.get(RunRecord, run_id).codebook_version
        queued = [
            (sug.id, sug.version, sug.code, sug.quote, sug.chunk_id, sug.confidence)
            for sug in s.scalars(
                select(SuggestionRecord)
                .where(SuggestionRecord.status.in_(("review", "audit")))
                .order_by(SuggestionRecord.confidence, SuggestionRecord.id)
            )
        ]
        chunks = {c.id: c.text for c in s.scalars(select(ChunkRecord))}
    counts = {"decisions": 0, "blind": 0}
    # the queue, lowest confidence first, shared out between three reviewers
    for i, (sid, version, code, quote, _chunk_id, confidence) in enumerate(queued):
        seen = judge(quote)
        topic, valence = code.split(".")
        sibling = f"{topic}.{'strength' if valence == 'weakness' else 'weakness'}"
        # the rule agrees, or the reviewer gives a confident coder the benefit of the doubt
        if code in seen or rng.random() < confidence:
            request = DecisionRequest(verdict="accept")
        elif sibling in seen:
            request = DecisionRequest(verdict="change", code=sibling, note="The speaker presents this as the opposite.")
        elif seen:
            request = DecisionRequest(verdict="change", code=seen[0], note="Another linkage fits better.")
        else:
            request = DecisionRequest(verdict="reject", reason="The quote does not talk about this linkage.")
        decide(store, reviewers[("ana", "ben", "chris")[i % 3]], sid, version, request)
        counts["decisions"] += 1
    # two codes the coder missed
    coded = {q[4] for q in queued}
    for chunk_id in sorted(coded)[:2]:
        text = chunks[chunk_id]
        extra = [c for c in judge(spoken(text)) if c not in {q[2] for q in queued if q[4] == chunk_id}]
        if extra:
            add_code(
                store,
                reviewers["ben"],
                chunk_id,
                codebook_version,
                DecisionRequest(verdict="add", code=extra[0], note="Missed by the coder."),
            )
            counts["decisions"] += 1
    # a blind sample of twelve passages for ana and ben; ben reads communication a little differently
    create_sample(store, reviewers["lea"], run_id, 12, ["ana", "ben"], seed=SEED)
    for name in ("ana", "ben"):
        for item in assignments(store, reviewers[name]):
            text = spoken(chunks[item.chunk_id])
            skip = frozenset({"communication"}) if name == "ben" and rng.random() < 0.3 else frozenset()
            codes = judge(text, skip)
            if name == "ben" and codes and rng.random() < 0.15:
                codes = codes[:1]
            submit(store, reviewers[name], item.id, codes)
            counts["blind"] += 1
    return counts


def photograph(html: Path, png: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(html.resolve().as_uri())
        page.get_by_role("heading", name="1. Agreement per code").wait_for()
        page.screenshot(path=str(png), type="png")
        browser.close()
    if errors:
        sys.exit(f"the report logged errors in the browser: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="keep the demo database and report.html in this folder")
    options = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"no browser at {CHROMIUM}: install Debian's chromium package or set QCODE_TEST_CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="qcode-report-") as tmp:
        folder = Path(tmp)
        db = folder / "demo.db"
        print("coding the example transcripts...", flush=True)
        run_id = code_examples(folder, db)
        store = Store(str(db))
        counts = review(store, run_id)
        html = folder / "report.html"
        write_report(store, html)
        store.engine.dispose()
        print(
            f"{counts['decisions']} decisions, {counts['blind']} blind codings; report {html.stat().st_size // 1024} KB"
        )
        photograph(html, OUT)
        if options.keep:
            options.keep.mkdir(parents=True, exist_ok=True)
            for name in ("demo.db", "report.html"):
                shutil.copy(folder / name, options.keep / name)
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
