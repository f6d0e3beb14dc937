"""Evals: code a gold set with each coder configuration and measure its agreement with the human coders.

A suite file (YAML, `evals/*.yaml`) names a gold set (transcripts plus the codes two or more people
gave them), a codebook and one or more coder configurations; docs/evals.md describes the suite and
gold formats for researchers. The package follows an eval from the file to the verdict:

    suite.py     the suite file and its configurations: `load_suite`, `Suite`, `Configuration`
    gold         the gold set (pipeline/ingest/gold.py, as the learned coder reads training codes too):
                 gold codes as passages or units, from CSV tables or a REFI-QDA project;
                 `find_loosely`, the rule a quote is found by; `human_rows`, the codes on units
    harness.py   `run_suite`: each configuration coded and compared with the humans; the gates
    results.py   `EvalReport`: what `qcode eval --json` prints, typed
"""

from pipeline.ingest.gold import Gold, GoldUnit, find_loosely, human_rows
from pipeline.measure.evals.harness import GATE_METRICS, Gate, check_gates, parse_gates, run_suite
from pipeline.measure.evals.results import (
    ConsensusPair,
    EvalReport,
    GateResult,
    HumanAgreement,
    RanConfiguration,
    SkippedConfiguration,
)
from pipeline.measure.evals.suite import Configuration, Suite, load_suite

__all__ = [
    "GATE_METRICS",
    "Configuration",
    "ConsensusPair",
    "EvalReport",
    "Gate",
    "GateResult",
    "Gold",
    "GoldUnit",
    "HumanAgreement",
    "RanConfiguration",
    "SkippedConfiguration",
    "Suite",
    "check_gates",
    "find_loosely",
    "human_rows",
    "load_suite",
    "parse_gates",
    "run_suite",
]
