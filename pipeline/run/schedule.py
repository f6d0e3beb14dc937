"""Scheduled runs: a Prefect deployment that codes a folder on a cron schedule.

Prefect schedules only with a persistent server. `serve` points at the one
named by --prefect-api or PREFECT_API_URL, or else at a local one on
127.0.0.1:4200, which it starts (`prefect server start`, analytics off) when
none answers there. Runs show in that server's UI. Each scheduled run is an
ordinary qcode run: files that have not changed are not coded again, so a run
over an unchanged folder costs nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pipeline.errors import ScheduleError
from pipeline.run.request import RunRequest

DEFAULT_API = "http://127.0.0.1:4200/api"


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


@contextmanager
def prefect_server(api_url: str | None, wait: float = 120.0) -> Iterator[str]:
    """The API URL of a persistent Prefect server, started here if need be (and stopped after)."""
    url = (api_url or os.environ.get("PREFECT_API_URL") or DEFAULT_API).rstrip("/")
    if healthy(url):
        yield url
        return
    if api_url or os.environ.get("PREFECT_API_URL") or url != DEFAULT_API:
        raise ScheduleError(f"no Prefect server answers at {url}")
    host, port = "127.0.0.1", "4200"
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", port, "--analytics-off"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + wait
        while not healthy(url):
            if process.poll() is not None:
                raise ScheduleError(f"`prefect server start` exited with status {process.returncode}")
            if time.monotonic() > deadline:
                raise ScheduleError(f"the Prefect server did not answer at {url} within {wait:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def serve(flow: Any, request: RunRequest, name: str, cron: str, api_url: str | None = None) -> None:
    """Register `flow` (the run's Prefect flow, pipeline/run/flow.py) as a deployment that runs
    `request` on the `cron` schedule, and serve its flow runs until interrupted."""
    from prefect.settings import PREFECT_API_URL, temporary_settings  # Prefect loads only to serve

    with prefect_server(api_url) as url, temporary_settings(updates={PREFECT_API_URL: url}):
        flow.serve(
            name=name,
            cron=cron,
            parameters={"request": request.model_dump(mode="json")},
            description="qcode: code new or changed transcripts in a folder",
            print_starting_message=True,
        )
