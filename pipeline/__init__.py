"""qcode: LLM-assisted qualitative coding of interview transcripts."""

import importlib
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

# The public names, each from the module that holds it. They are imported when first asked for
# (`from pipeline import Store`), so importing any part of qcode does not import all of it.
_PUBLIC = {
    # the nouns
    "Transcript": "pipeline.transcript",
    "Turn": "pipeline.transcript",
    "parse_turns": "pipeline.transcript",
    "Codebook": "pipeline.codebook",
    "Code": "pipeline.codebook",
    "load_codebook": "pipeline.codebook",
    "Chunk": "pipeline.chunk",
    "chunk_transcript": "pipeline.chunk",
    "Proposal": "pipeline.suggestion",
    "ChunkCoding": "pipeline.suggestion",
    "Suggestion": "pipeline.suggestion",
    "Rejection": "pipeline.suggestion",
    "HumanCode": "pipeline.suggestion",
    "Provenance": "pipeline.suggestion",
    "Usage": "pipeline.suggestion",
    # the steps
    "read_source": "pipeline.ingest",
    "discover": "pipeline.ingest",
    "BaseCoder": "pipeline.coders",
    "CoderOptions": "pipeline.coders",
    "register_coder": "pipeline.coders",
    "make_coder": "pipeline.coders",
    "validate_coding": "pipeline.validate",
    "RoutingPolicy": "pipeline.route",
    # the store and the run
    "Store": "pipeline.store",
    "RunRequest": "pipeline.run.request",
    "RunSummary": "pipeline.run.request",
    "run_request": "pipeline.run.settings",
    "code_corpus": "pipeline.run.corpus",
    # measuring
    "measure_agreement": "pipeline.measure.agreement",
    "read_codings": "pipeline.measure.agreement",
    # errors
    "QcodeError": "pipeline.errors",
    "FileError": "pipeline.errors",
    "SettingsError": "pipeline.errors",
    "IngestError": "pipeline.errors",
    "CodebookError": "pipeline.errors",
    "ExchangeError": "pipeline.errors",
    "StoreError": "pipeline.errors",
    "CoderError": "pipeline.errors",
    "MeasureError": "pipeline.errors",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> object:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'pipeline' has no attribute '{name}'")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
