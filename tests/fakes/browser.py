"""What the browser tests share: Debian's Chromium driven by Playwright, signing in through the form,
and axe-core's verdict on a page.

QCODE_TEST_CHROMIUM names the browser binary (.ci/run sets it to the chromium package's); without
it /usr/bin/chromium is used, and without that the browser tests skip. No browser is ever
downloaded (`playwright install` is never run).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("QCODE_TEST_CHROMIUM") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
TIMEOUT_MS = 15_000
VIEWPORT = {"width": 1280, "height": 900}


def require_chromium() -> Any:
    """Playwright's sync API, or the calling test module skipped when there is no browser to drive
    (and an error when QCODE_TEST_CHROMIUM names a file that is not there)."""
    if not os.environ.get("QCODE_TEST_CHROMIUM") and not Path(CHROMIUM).exists():
        pytest.skip(
            "no browser: install Debian's chromium package or set QCODE_TEST_CHROMIUM to a Chromium binary",
            allow_module_level=True,
        )
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"QCODE_TEST_CHROMIUM={CHROMIUM!r}: no such file")
    return pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def fill_sign_in(page: Any, name: str, password: str) -> None:
    """Sign in through the form the page shows."""
    page.locator("input[name=name]").fill(name)
    page.locator("input[name=password]").fill(password)
    page.locator("input[name=password]").press("Enter")


def serious_violations(page: Any) -> list[tuple[str, str, Any]]:
    """axe-core's serious and critical violations on the page as it is: (rule, impact, first node);
    and its rule that a page has a level-one heading (moderate to axe, but what a screen reader
    jumps to first)."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [
        (v["id"], v["impact"], v["nodes"][0]["target"])
        for v in violations
        if v["impact"] in ("serious", "critical") or v["id"] == "page-has-heading-one"
    ]
