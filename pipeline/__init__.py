"""qcode: LLM-assisted qualitative coding of interview transcripts."""

import os

# Transcripts are sensitive research data: qcode fetches no model from a hub and
# sends no telemetry or traces, whatever the user's environment says. These
# must be set before huggingface_hub, prefect or langchain is imported.
_PRIVATE = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "LANGSMITH_TRACING": "false",
    "LANGCHAIN_TRACING_V2": "false",
}
os.environ.update(_PRIVATE)
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
# qcode shows its own progress and summary; Prefect's per-task lines are noise to a researcher.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

__version__ = "0.1.0"
