"""Make docs/review-item.png, the README's picture of the review app.

    python docs/screenshot.py

Codes two of the example transcripts with the offline coder (a real `qcode run`, about
half a minute), makes a reviewer, serves the app on a loopback port and photographs an
item page in headless Chromium: the passage with the model's quote highlighted, the
suggestion, the actions and the keyboard help. Debian's chromium package is used
(QCODE_TEST_CHROMIUM or /usr/bin/chromium); no browser is downloaded.
"""

from __future__ import annotations

import csv
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

import uvicorn  # noqa: E402
from demo import ARGS, CHROMIUM, EXAMPLES, qcode_run  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from sqlalchemy import select  # noqa: E402

from pipeline.review.app import create_app  # noqa: E402
from pipeline.review.reviewers import add_reviewer, grant_runs  # noqa: E402
from pipeline.store import ChunkRecord, Store, SuggestionRecord  # noqa: E402

FILES = ["harbor_seacliff_principal.txt", "valley_cottonwood_principal.txt"]
OUT = ROOT / "docs" / "review-item.png"
VIEWPORT = {"width": 1280, "height": 900}


def code_examples(folder: Path, db: Path) -> str:
    """The two transcripts, with their rows of the manifest, coded offline; returns the run id."""
    source = folder / "transcripts"
    source.mkdir()
    for name in FILES:
        shutil.copy(EXAMPLES / name, source / name)
    with open(EXAMPLES / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(source / "manifest.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["file"] in FILES)
    return qcode_run(source, db, folder)


def pick_item(store: Store) -> str:
    """A queued suggestion whose quote is a part of a mid-sized passage, so the highlight shows."""
    with store.session() as s:
        rows = s.execute(
            select(SuggestionRecord, ChunkRecord)
            .join(ChunkRecord, ChunkRecord.id == SuggestionRecord.chunk_id)
            .where(SuggestionRecord.status.in_(("review", "audit")), SuggestionRecord.quote_start.is_not(None))
            .order_by(SuggestionRecord.confidence, SuggestionRecord.id)
        ).all()
    fitting = [
        sug
        for sug, chunk in rows
        if 250 <= chunk.end - chunk.start <= 650
        and 40 <= sug.quote_end - sug.quote_start <= 0.6 * (chunk.end - chunk.start)
    ]
    if not fitting and not rows:
        sys.exit("the run queued nothing for review")
    return (fitting or [sug for sug, _ in rows])[0].id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    if not Path(CHROMIUM).exists():
        sys.exit(f"no browser at {CHROMIUM}: install Debian's chromium package or set QCODE_TEST_CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="qcode-screenshot-") as tmp:
        folder = Path(tmp)
        db = folder / "demo.db"
        print("coding the example transcripts...", flush=True)
        run_id = code_examples(folder, db)
        store = Store(str(db))
        password = add_reviewer(store, "maria", "reviewer")
        grant_runs(store, "maria", [run_id])
        item = pick_item(store)

        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(str(db)), host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline:
                sys.exit("the review app did not start")
            time.sleep(0.05)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
                page = browser.new_page(base_url=f"http://127.0.0.1:{port}", viewport=VIEWPORT)
                page.goto(f"/items/{item}")
                page.locator("input[name=name]").fill("maria")
                page.locator("input[name=password]").fill(password)
                page.locator("input[name=password]").press("Enter")
                page.locator("#quote-mark").wait_for()
                page.keyboard.press("?")  # the keyboard help, highlighted
                page.locator("#keys.open").wait_for()
                page.screenshot(path=str(OUT))
                browser.close()
        finally:
            server.should_exit = True
            thread.join(10)
            store.engine.dispose()
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
