"""`qcode schedule` against a real, persistent Prefect server started here."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import write

from pipeline.run.schedule import healthy

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_schedule_serves_a_cron_deployment_whose_runs_code_the_folder(tmp_path: Path, small_codebook: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--analytics-off",
            "--no-ui",
        ],
        env={k: v for k, v in env.items() if k != "PREFECT_API_URL"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    served = None
    try:
        wait_for(lambda: healthy(api), 120, "the Prefect server")
        folder = tmp_path / "incoming"
        write(folder / "a.txt", "Interviewer: Money?\nMs. Chen: The district gave us a grant to buy new materials.\n")
        db = tmp_path / "scheduled.db"
        served = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline.cli",
                "schedule",
                str(folder),
                "--cron",
                "0 3 * * *",
                "--codebook",
                str(small_codebook),
                "--db",
                str(db),
                "--name",
                "nightly",
                "--prefect-api",
                api,
                "--similarity-threshold",  # a coder option: every coder's options are flags here too
                "0.35",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        from prefect.client.orchestration import get_client
        from prefect.deployments import run_deployment
        from prefect.settings import PREFECT_API_URL, temporary_settings

        async def deployment():
            async with get_client() as client:
                try:
                    return await client.read_deployment_by_name("qcode-run/nightly")
                except Exception:
                    return None

        with temporary_settings(updates={PREFECT_API_URL: api}):
            wait_for(lambda: asyncio.run(deployment()) is not None, 120, "the deployment")
            found = asyncio.run(deployment())
            assert [s.schedule.cron for s in found.schedules] == ["0 3 * * *"]
            assert found.parameters["request"]["db"].endswith("scheduled.db")
            assert found.parameters["request"]["coder_options"] == {"similarity_threshold": 0.35}

            first = run_deployment("qcode-run/nightly", timeout=240)
            assert first.state.is_completed(), first.state
            write(folder / "b.txt", "Interviewer: And trust?\nMr. Ortiz: I trust my principal completely.\n")
            second = run_deployment("qcode-run/nightly", timeout=240)
            assert second.state.is_completed(), second.state

        with sqlite3.connect(db) as connection:
            summaries = [json.loads(s) for (s,) in connection.execute("select summary from runs order by started_at")]
        assert [s["transcripts"] for s in summaries] == [1, 2]
        assert summaries[0]["chunks_coded_now"] == 1
        assert summaries[1]["chunks_coded_now"] == 1  # only the new file
    finally:
        if served is not None:
            stop(served)
        stop(server)
