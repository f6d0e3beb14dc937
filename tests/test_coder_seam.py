"""The coder seam: every coder is a BaseCoder that declares its options, and the pipeline asks it,
never its name. A coder registered with `register_coder`, or installed as a plugin (a package
whose `qcode.coders` entry point names it), gets its options from flags, qcode.toml and eval suites,
prices itself, and runs with or without Prefect like the shipped ones.

The coder keys of the shipped coders are pinned: a chunk coded before must not be coded again."""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fakes import ROOT, qcode, write

import pipeline.coders
from pipeline.chunk import chunk_transcript
from pipeline.codebook import Codebook, load_codebook
from pipeline.coders import BaseCoder, make_coder, provenance, register_coder
from pipeline.errors import CoderError, SettingsError
from pipeline.run.corpus import code_corpus
from pipeline.run.estimate import estimate
from pipeline.run.settings import load_settings, run_request
from pipeline.transcript import Transcript, parse_turns, transcript_id

# ---------------------------------------------------------------- coder keys, pinned

PINNED_CODEBOOK = """\
name: Pinned codebook
description: Two codes, for pinning coder keys.
measurement: nominal
similarity_threshold: 0.4
codes:
  - id: funding
    name: Funding and resources
    definition: Money, budgets, grants and materials.
    examples:
      positive:
        - "The district gave us a grant."
  - id: trust
    name: Trust between colleagues
    definition: Trust and openness in working relationships.
"""

OPENAI_DEFAULTS = {
    "endpoint": "https://api.openai.com/v1",
    "model": "gpt-4o-mini",
    "prompt": "coding-v1",
    "temperature": 0.0,
    "top_p": None,
    "samples": 1,
    "max_tokens": 1024,
    "seed": None,
    "logprobs": True,
    "max_attempts": 3,
    "fewshot": 0,
}
# (coder, options as make_coder takes them) -> (coder key, parameters), as qcode computed them before
# coders declared their options: the same settings must give the same key, byte for byte
PINNED = [
    (
        "offline",
        {},
        "a72ee7403bdf1df1",
        {"similarity_threshold": None, "max_codes": 3, "margin": 0.08, "scale": 0.05},
    ),
    (
        "offline",
        {"similarity_threshold": 0.5},
        "6f2e7dcfcf96c38f",
        {"similarity_threshold": 0.5, "max_codes": 3, "margin": 0.08, "scale": 0.05},
    ),
    (
        "offline",
        {"similarity_threshold": 0.2, "max_codes": 12, "margin": 1},
        "7d11abef8bf0c825",
        {"similarity_threshold": 0.2, "max_codes": 12, "margin": 1, "scale": 0.05},
    ),
    ("openai", {"model": "gpt-4o-mini"}, "343c118bef227db5", OPENAI_DEFAULTS),
    (
        "openai",
        {
            "model": "gpt-4o-mini",
            "base_url": "http://127.0.0.1:8000/v1",
            "temperature": 0.0,
            "samples": 3,
            "max_attempts": 2,
            "fewshot": 0,
        },
        "9c48c460dcd28af2",
        {**OPENAI_DEFAULTS, "endpoint": "http://127.0.0.1:8000/v1", "samples": 3, "max_attempts": 2},
    ),
    # an eval suite's `temperature: 0` is the integer it always was
    ("openai", {"model": "gpt-4o-mini", "temperature": 0}, "67940846a6391c89", {**OPENAI_DEFAULTS, "temperature": 0}),
    (
        "openai",
        {
            "model": "m",
            "base_url": "https://gpu.example.org/v1/",
            "temperature": 0.7,
            "top_p": 0.9,
            "samples": 2,
            "max_tokens": 500,
            "seed": 7,
            "logprobs": False,
            "max_attempts": 1,
            "fewshot": 3,
        },
        "868135298dc4d345",
        {
            "endpoint": "https://gpu.example.org/v1",
            "model": "m",
            "prompt": "coding-v1",
            "temperature": 0.7,
            "top_p": 0.9,
            "samples": 2,
            "max_tokens": 500,
            "seed": 7,
            "logprobs": False,
            "max_attempts": 1,
            "fewshot": 3,
        },
    ),
]


@pytest.fixture
def pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    path = tmp_path / "pinned.yaml"
    path.write_text(PINNED_CODEBOOK, encoding="utf-8")
    return path


@pytest.mark.parametrize("coder, options, key, parameters", PINNED)
def test_coder_keys_are_those_of_earlier_versions(
    pinned: Path, coder: str, options: dict, key: str, parameters: dict
) -> None:
    found = provenance(make_coder(coder, **options), load_codebook(pinned))
    # JSON, not ==: 0 == 0.0 in Python, but the key hashes the JSON text
    assert json.dumps(found.parameters) == json.dumps(parameters)
    assert found.coder_key == key


def test_model_call_cache_keys_are_those_of_earlier_versions(pinned: Path) -> None:
    codebook = load_codebook(pinned)
    text = "Interviewer: Money?\nMs. Chen: The district gave us a grant to buy new materials.\n"
    transcript = Transcript(
        id=transcript_id("t", text),
        source_path="t",
        source_name="t",
        format="text",
        encoding="utf-8",
        text=text,
        turns=parse_turns(text),
    )
    chunk = chunk_transcript(transcript, 1200, 0)[0]
    for options, key in [
        ({}, "429e7b673f805c025ca20908ff00632c19fb2f778e996f456df399377dab2437"),
        ({"temperature": 0}, "47428028dd7c880a5d74ec58409c06e535a5a25391fee7ecb68fe39e25c86ee9"),
    ]:
        coder = make_coder("openai", model="gpt-4o-mini", base_url="http://127.0.0.1:8000/v1", **options)
        assert coder.request(coder.messages(chunk, codebook), codebook)[1] == key


def test_settings_from_qcode_toml_and_flags_keep_their_keys(pinned: Path, tmp_path: Path) -> None:
    (tmp_path / "qcode.toml").write_text(
        f'[run]\ncodebook = "{pinned}"\ncoder = "openai"\nmodel = "gpt-4o-mini"\n'
        "temperature = 0\nsamples = 2\nrpm = 500\n"
    )
    request = run_request([tmp_path], {}, ready=False)
    # a whole number in qcode.toml is read as its flag reads it: temperature = 0 codes as --temperature 0
    assert request.coder_options == {"model": "gpt-4o-mini", "temperature": 0.0, "samples": 2, "rpm": 500.0}
    coder = make_coder(request.coder, **request.coder_options)
    assert provenance(coder, load_codebook(pinned)).coder_key == "c865c48017912931"
    (tmp_path / "qcode.toml").unlink()
    request = run_request([tmp_path], {"codebook": str(pinned), "similarity_threshold": 0.5}, ready=False)
    coder = make_coder(request.coder, **request.coder_options)
    assert provenance(coder, load_codebook(pinned)).coder_key == "6f2e7dcfcf96c38f"


# ---------------------------------------------------------------- options


def test_each_options_default_is_its_constructors() -> None:
    """make_coder hands a coder every option; constructing it directly gives the same coder."""
    for name, coder in pipeline.coders.coders().items():
        if name not in ("offline", "openai"):
            continue
        accepted = inspect.signature(coder.__init__).parameters
        for option, field in coder.Options.model_fields.items():
            assert accepted[option].default == field.default, (name, option)


def test_options_are_checked_by_the_coders_model() -> None:
    with pytest.raises(CoderError, match="the offline coder has no option 'model'"):
        make_coder("offline", model="gpt-4o")
    with pytest.raises(CoderError, match="the openai coder's option 'rpm'"):
        make_coder("openai", model="m", rpm=0)
    with pytest.raises(CoderError, match="the openai coder's option 'samples'"):
        make_coder("openai", model="m", samples="many")
    with pytest.raises(CoderError, match="unknown coder 'telepathy' \\(available: .*offline, openai"):
        make_coder("telepathy")
    with pytest.raises(CoderError, match="needs a model"):
        make_coder("openai")


def help_of(command: str) -> str:
    """`qcode COMMAND --help` as running text: the table's borders out, wrapped lines joined."""
    return " ".join(qcode(command, "--help").output.replace("│", " ").split())


def test_qcode_run_and_schedule_have_a_flag_for_each_coder_option() -> None:
    run = help_of("run")
    flags = (
        "--similarity-threshold --max-codes --margin --model --base-url --prompt --temperature --top-p --samples "
        "--max-tokens --max-attempts --concurrency --rpm --tpm --timeout --fewshot --max-retries"
    ).split()
    for flag in flags + ["--seed", "--threshold", "--batch", "--dry-run", "--prefect-api"]:
        assert flag in run, flag
    assert "openai coder: the model name." in run
    assert "offline coder: overrides the codebook's similarity_threshold." in run
    assert run.count("--seed ") == 1  # the audit draw's: the openai coder's seed is no flag
    schedule = help_of("schedule")
    for flag in flags + ["--cron", "--threshold", "--coder"]:
        assert flag in schedule, flag


def test_run_settings_read_the_chosen_coders_options(tmp_path: Path) -> None:
    (tmp_path / "qcode.toml").write_text('[run]\nmodel = "gpt-4o-mini"\nsimilarity_threshold = 0.45\nseed = 3\n')
    offline = load_settings()
    assert offline.coder_options == {"similarity_threshold": 0.45} and offline.seed == 3  # model: openai's
    openai = load_settings({"coder": "openai", "temperature": 0.5})
    assert openai.coder_options == {"model": "gpt-4o-mini", "temperature": 0.5}
    (tmp_path / "qcode.toml").write_text("[run]\nmodle = 'gpt-4o-mini'\n")
    with pytest.raises(SettingsError, match="qcode.toml: unknown field 'modle'"):
        load_settings()


def test_batch_mode_is_something_a_coder_offers(small_codebook: Path, tmp_path: Path) -> None:
    make_coder("openai", model="m").check_batch()
    with pytest.raises(CoderError, match="the offline coder has no batch mode"):
        run_request([tmp_path], {"codebook": str(small_codebook)}, batch=True)


# ---------------------------------------------------------------- coders from elsewhere

# A coder as a plugin writes it: in a package of its own, with nothing of qcode's but the seam.
PLUGIN = '''
"""Proposes the codebook's first code for each chunk, quoting its first line; one request each."""

from pydantic import Field

from pipeline.coders import BaseCoder, CoderOptions, Number
from pipeline.suggestion import ChunkCoding, Proposal, Usage


class EchoCoder(BaseCoder):
    name = "echo"
    batch_size = 1
    batches_in_flight = 2

    class Options(CoderOptions):
        word: str = Field(default="echo", description="the word every justification repeats.")
        price: Number = Field(default=0.01, ge=0, description="dollars per request.")
        model: str = Field(default="echo-1", description="the model it names.")
        seed: int = Field(default=0, description="named like the run's --seed, so no flag.")

    def __init__(self, word: str, price: float, model: str, seed: int):
        self.word, self.price, self.model, self.seed = word, price, model, seed

    @property
    def parameters(self):
        return {"word": self.word, "seed": self.seed}

    @property
    def limits(self):
        return {"price": self.price}

    def prompt_version(self, codebook):
        return "echo-v1"

    def code(self, chunks, codebook):
        code = codebook.leaves[0].id
        return [
            ChunkCoding(
                chunk_id=c.id,
                proposals=[Proposal(code=code, justification=self.word, quote=_first_line(c), confidence=0.9)],
                usage=Usage(requests=1, input_tokens=10, output_tokens=5),
            )
            for c in chunks
        ]

    def estimate_usage(self, chunks, codebook):
        return Usage(requests=len(chunks), input_tokens=10 * len(chunks), output_tokens=5 * len(chunks))

    def cost(self, usage, batch=False):
        return round(usage.requests * self.price, 6)


def _first_line(chunk):
    return next(line for line in chunk.text.split("\\n") if line.strip())
'''

TRANSCRIPTS = {
    "a.txt": "Ms. Chen: The district gave us a grant to buy new materials.\n",
    "b.txt": "Mr. Ortiz: I trust my principal completely.\n",
}


def echo_class(folder: Path) -> type[BaseCoder]:
    path = write(folder / "qcode_echo_inprocess.py", PLUGIN)
    spec = importlib.util.spec_from_file_location("qcode_echo_inprocess", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.EchoCoder


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Coders registered by a test are gone after it, so no other test sees their flags."""
    monkeypatch.setattr(pipeline.coders, "_CODERS", dict(pipeline.coders._CODERS))


@pytest.fixture
def study(tmp_path: Path, small_codebook: Path) -> tuple[Path, Path]:
    for name, text in TRANSCRIPTS.items():
        write(tmp_path / "in" / name, text)
    return tmp_path / "in", small_codebook


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def test_a_registered_coder_gets_its_options_from_flags_qcode_toml_and_eval_suites_and_prices_itself(
    registry, study, tmp_path: Path
) -> None:
    folder, codebook = study
    register_coder("echo", echo_class(tmp_path))
    # flags: the command line is built from the coders registered when it runs
    result = qcode(
        "run",
        str(folder),
        "--codebook",
        str(codebook),
        "--coder",
        "echo",
        "--price",
        "0.5",
        "--dry-run",
        "--json",
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["requests"] == 2 and found["cost_usd"] == 1.0 and found["model"] == "echo-1"
    help_text = help_of("run")
    assert "echo coder: the word every justification repeats." in help_text
    assert "openai coder: the model name. echo coder: the model it names." in help_text  # one --model, two coders

    # qcode.toml, and a run without Prefect: the run asks the coder its batch size, limits and cost
    (tmp_path / "qcode.toml").write_text('[run]\ncoder = "echo"\nword = "toml"\nprice = 0.25\nseed = 7\n')
    db = tmp_path / "echo.db"
    summary = code_corpus(run_request([folder], {"codebook": str(codebook), "db": str(db), "model": "echo-2"}))
    assert summary.coder == "echo" and summary.model == "echo-2" and summary.suggestions == 2
    assert summary.requests == 2 and summary.cost_usd == 0.5
    assert {j for (j,) in rows(db, "select justification from suggestions")} == {"toml"}
    parameters = json.loads(rows(db, "select parameters from runs")[0][0])
    assert parameters["coder"] == {"word": "toml", "seed": 0}  # seed = 7 is the audit draw's
    assert parameters["batch_size"] == 1 and parameters["limits"] == {"price": 0.25}
    assert parameters["routing"]["seed"] == 7

    # an eval suite's configuration
    write(
        tmp_path / "gold.csv", "file,coder,code,quote\na.txt,ana,funding,a grant\na.txt,ben,funding,gave us a grant\n"
    )
    suite = {
        "name": "registered",
        "gold": {"transcripts": str(folder), "codes": str(tmp_path / "gold.csv")},
        "codebook": str(codebook),
        "bootstrap": 0,
        "configurations": [{"name": "echo-suite", "coder": "echo", "word": "suite", "price": 2}],
    }
    write(tmp_path / "suite.yaml", yaml.safe_dump(suite))
    result = qcode("eval", str(tmp_path / "suite.yaml"), "--json")
    assert result.exit_code == 0, result.output
    [configuration] = json.loads(result.stdout)["configurations"]
    assert configuration["options"] == {"word": "suite", "price": 2} and configuration["coding"]["cost_usd"] == 4
    assert {j for (j,) in rows(tmp_path / ".qcode-eval.db", "select justification from suggestions")} == {"suite"}

    with pytest.raises(CoderError, match="the echo coder has no batch mode"):
        run_request([folder], {"codebook": str(codebook)}, batch=True)
    with pytest.raises(CoderError, match="the echo coder's option 'price'"):
        run_request([folder], {"codebook": str(codebook), "price": -1})


def test_a_coder_with_only_what_it_must_have_gets_the_defaults_and_anything_else_is_refused(registry, study) -> None:
    class Minimal(BaseCoder):
        name = "minimal"
        model = "minimal-1"
        parameters: dict[str, Any] = {}

        def prompt_version(self, codebook: Codebook) -> str:
            return "v1"

        def code(self, chunks: Any, codebook: Codebook) -> list:
            return []

    register_coder("minimal", Minimal)
    coder = make_coder("minimal")
    assert coder.batch_size == 32 and coder.batches_in_flight == 1 and coder.limits == {}
    folder, codebook = study
    found = estimate(run_request([folder], {"codebook": str(codebook), "coder": "minimal"}))
    assert found.requests == 0 and found.cost_usd == 0.0

    class NotACoder:
        name = "not-a-coder"

    with pytest.raises(CoderError, match="a coder is a subclass of pipeline.coders.BaseCoder"):
        register_coder("not-a-coder", NotACoder)
    with pytest.raises(CoderError, match="a coder is a subclass"):
        register_coder("not-a-class", lambda: Minimal())


@pytest.fixture
def plugin(tmp_path: Path) -> dict[str, str]:
    """The echo coder installed as a package would install it: a module and its dist-info, whose
    entry points name it in the group qcode.coders (and a second, broken, entry point)."""
    site = tmp_path / "site"
    write(site / "qcode_echo.py", PLUGIN)
    info = site / "qcode_echo-0.1.dist-info"
    write(info / "METADATA", "Metadata-Version: 2.1\nName: qcode-echo\nVersion: 0.1\n")
    write(info / "entry_points.txt", "[qcode.coders]\necho = qcode_echo:EchoCoder\nbroken = qcode_echo:Missing\n")
    environment = {k: v for k, v in os.environ.items() if k not in ("QCODE_DB", "QCODE_CONFIG", "QCODE_THRESHOLD")}
    environment["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    return environment


def qcode_process(environment: dict[str, str], cwd: Path, *args: str) -> tuple[int, dict, str]:
    """`qcode ARGS --json` in a new process, where only the installed plugin registers its coders."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args, "--json"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=cwd,
        timeout=300,
    )
    lines = done.stdout.strip().splitlines()
    return done.returncode, json.loads(lines[-1]) if lines else {}, done.stderr


@pytest.mark.slow
def test_a_plugin_coder_works_with_no_special_case(plugin, study, tmp_path: Path) -> None:
    folder, codebook = study
    work = tmp_path / "work"
    work.mkdir()
    db = work / "qcode.db"
    args = [str(folder), "--codebook", str(codebook), "--db", str(db)]

    # flags, through `qcode run` and its Prefect flow
    code, summary, stderr = qcode_process(
        plugin, work, "run", *args, "--coder", "echo", "--word", "flag", "--price", "0.1"
    )
    assert code == 0, stderr
    assert summary["coder"] == "echo" and summary["suggestions"] == 2 and summary["cost_usd"] == 0.2
    assert {j for (j,) in rows(db, "select justification from suggestions")} == {"flag"}
    assert json.loads(rows(db, "select parameters from runs")[0][0])["batch_size"] == 1

    # the same, through the run without Prefect, which it never loads: the same summary and suggestions
    plain_db = work / "plain.db"
    script = (
        "import json, sys\n"
        "from pipeline.run.corpus import code_corpus\n"
        "from pipeline.run.estimate import estimate\n"
        "from pipeline.run.settings import run_request\n"
        "options = {'codebook': sys.argv[2], 'db': sys.argv[3], 'coder': 'echo', 'word': 'flag', 'price': 0.1}\n"
        "request = run_request([sys.argv[1]], options)\n"
        "estimate(request)\n"
        "summary = code_corpus(request)\n"
        "print(json.dumps({'summary': summary.model_dump(mode='json'), 'prefect': 'prefect' in sys.modules}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), str(codebook), str(plain_db)],
        capture_output=True,
        text=True,
        env=plugin,
        cwd=work,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    plain = json.loads(done.stdout.strip().splitlines()[-1])
    assert plain["prefect"] is False
    different = {"run_id", "db", "seconds", "cpu_seconds"}
    assert {k: v for k, v in plain["summary"].items() if k not in different} == {
        k: v for k, v in summary.items() if k not in different
    }
    query = "select chunk_id, coder_key, code, quote, status from suggestions order by chunk_id"
    assert rows(plain_db, query) == rows(db, query)

    # qcode.toml, through a dry run
    (work / "qcode.toml").write_text('[run]\ncoder = "echo"\nword = "toml"\nprice = 1.5\n')
    code, found, stderr = qcode_process(plugin, work, "run", *args, "--dry-run")
    assert code == 0, stderr
    assert found["pending"] == 2 and found["cost_usd"] == 3.0  # another word: another configuration
    (work / "qcode.toml").unlink()

    # an eval suite, coded by the run without Prefect
    write(work / "gold.csv", "file,coder,code,quote\na.txt,ana,funding,a grant\na.txt,ben,funding,gave us a grant\n")
    suite = {
        "name": "plugin",
        "gold": {"transcripts": str(folder), "codes": str(work / "gold.csv")},
        "codebook": str(codebook),
        "db": str(work / "eval.db"),
        "bootstrap": 0,
        "configurations": [{"name": "echo-suite", "coder": "echo", "word": "suite", "price": 0.25}],
    }
    write(work / "suite.yaml", yaml.safe_dump(suite))
    code, report, stderr = qcode_process(plugin, work, "eval", str(work / "suite.yaml"))
    assert code == 0, stderr
    [configuration] = report["configurations"]
    assert configuration["status"] == "ran" and configuration["run"]["chunks_coded_now"] == 2
    assert configuration["run"]["cost_usd"] == configuration["coding"]["cost_usd"] == 0.5
    assert {j for (j,) in rows(work / "eval.db", "select justification from suggestions")} == {"suite"}
    suite["configurations"][0]["colour"] = "blue"
    write(work / "suite.yaml", yaml.safe_dump(suite))
    code, report, _ = qcode_process(plugin, work, "eval", str(work / "suite.yaml"))
    assert code == 1 and "the echo coder has no option 'colour'" in report["error"]

    # a plugin that cannot be loaded says so, and stops nothing else
    code, report, _ = qcode_process(plugin, work, "run", *args, "--coder", "broken", "--dry-run")
    assert code == 1 and "the coder plugin 'broken' cannot be loaded" in report["error"]


@pytest.mark.slow
def test_the_shipped_coders_are_named_once() -> None:
    """No module or template outside pipeline/coders/ names a coder to decide what to do."""
    for path in (ROOT / "pipeline").rglob("*"):
        if path.suffix not in (".py", ".jinja", ".html") or path.parent.name == "coders":
            continue
        text = path.read_text(encoding="utf-8")
        for probe in ('== "openai"', '!= "openai"', '== "offline"', '!= "offline"', "hasattr(coder", "getattr(coder"):
            assert probe not in text, f"{path}: {probe}"
