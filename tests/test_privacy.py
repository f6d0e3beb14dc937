from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow  # starts a Python process
def test_importing_qcode_turns_off_hub_access_telemetry_and_tracing() -> None:
    env = {**os.environ, "LANGSMITH_TRACING": "true", "HF_HUB_OFFLINE": "0", "DO_NOT_TRACK": ""}
    code = (
        "import json, os, pipeline.cli, prefect.settings as s, huggingface_hub.constants as h;"
        "print(json.dumps({'env': {k: os.environ.get(k) for k in ('LANGSMITH_TRACING', 'DO_NOT_TRACK')},"
        "'hub_offline': h.HF_HUB_OFFLINE, 'analytics': s.get_current_settings().server.analytics_enabled}))"
    )
    found = json.loads(
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    )
    assert found == {
        "env": {"LANGSMITH_TRACING": "false", "DO_NOT_TRACK": "1"},
        "hub_offline": True,
        "analytics": False,
    }
