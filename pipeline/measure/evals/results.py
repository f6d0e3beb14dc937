"""What an eval reports: the JSON object of `qcode eval --json` (docs/evals.md, "The JSON object"),
field for field.

    EvalReport
    ├── gold, codebook, bootstrap      what was compared: GoldSummary, CodebookSummary, BootstrapSettings
    ├── humans                         HumanAgreement: the people among themselves, once per way of cutting units
    ├── configurations                 RanConfiguration or SkippedConfiguration (by `status`)
    │     ├── run, coding              RunFigures: this run; CodingCost: coding the gold set from scratch
    │     ├── against_consensus        ConsensusPair, against_humans: HumanPair
    │     ├── per_code                 ConfigurationCode: CodeAgainstConsensus, CodeAgainstHuman
    │     └── agreement                the whole `Agreement` of pipeline.measure.agreement
    └── gates, passed                  GateResult with a GateCheck per configuration (after check_gates)

Statistics are the agreement report's own (`Statistic`, in `StatisticGroup`s), written as flat
`NAME`, `NAME_ci95` and `NAME_undefined` keys; a field declared `optional()` is no key at all when
None, any other None is written as null. The JSON reads back: `EvalReport.model_validate_json(text)`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pipeline.chunk import UnitKind
from pipeline.ingest.gold import GoldFormat
from pipeline.measure.agreement import (
    Agreement,
    CodeAgreement,
    ConfusionTable,
    Consensus,
    Level,
    OverallAgreement,
    PairAgreement,
)
from pipeline.measure.statistic import Statistic, StatisticGroup, optional
from pipeline.run.request import FileFailure
from pipeline.transcript import SpeakerChoice


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class GoldSummary(_Frozen):
    """The gold set: where it is, its shape and size. `transcripts_coded` and `passages` count
    passages only (null for units)."""

    transcripts: str
    codes: list[str]
    format: GoldFormat
    coders: list[str]
    rows: int
    transcripts_coded: int | None
    passages: int | None


class CodebookSummary(_Frozen):
    path: str
    name: str
    version: str


class BootstrapSettings(_Frozen):
    replicates: int
    seed: int


class HumanAgreement(_Frozen):
    """The human coders among themselves on the units of one way of cutting (that of
    `configurations`): the human part of their agreement report."""

    unit: UnitKind
    chunk_size: int
    overlap: int
    speakers: SpeakerChoice
    configurations: list[str]
    units: int
    pairable_units: int
    single_label: bool
    level: Level
    overall: OverallAgreement
    pairwise: list[PairAgreement]
    per_code: list[CodeAgreement]
    notes: list[str]


class RunFigures(_Frozen):
    """This run of the configuration, from its summary: what it coded now and what that cost (nothing
    when the store and the call cache answered), and how long the run and the whole comparison took."""

    run_id: str
    chunks: int
    chunks_coded_now: int
    failed_chunks: int
    failed_files: list[FileFailure]
    requests: int
    batch_requests: int
    cache_hits: int
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    cost_usd: float | None
    seconds: float
    eval_seconds: float
    file_notes: list[str]


class CodingCost(_Frozen):
    """What coding the gold set from scratch costs under the configuration: the token counts stored
    with every chunk, priced by the coder (None: no price for its model), and the coder time."""

    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    requests: int
    cost_usd: float | None
    coder_seconds: float


class ConsensusPair(StatisticGroup):
    """A configuration against the human consensus: its `model-consensus` pair, without the kind."""

    coders: tuple[str, str]
    units: int
    percent_agreement: Statistic
    cohen_kappa: Statistic
    cohen_kappa_linear: Statistic | None = optional()
    cohen_kappa_quadratic: Statistic | None = optional()
    krippendorff_alpha: Statistic
    exact_agreement: Statistic | None = optional()

    @classmethod
    def of(cls, pair: PairAgreement) -> ConsensusPair:
        """The `model-consensus` pair of an agreement report, as an eval reports it."""
        return cls.model_validate({field: value for field, value in pair if field != "kind"})

    def statistic(self, name: str) -> Statistic | None:
        """The statistic called `name`, or None when the pair does not report it."""
        return dict(self.statistics()).get(name)


class HumanPair(StatisticGroup):
    """A configuration against one human coder: its `model-human` pair."""

    human: str
    units: int
    percent_agreement: Statistic
    cohen_kappa: Statistic
    cohen_kappa_linear: Statistic | None = optional()
    cohen_kappa_quadratic: Statistic | None = optional()
    krippendorff_alpha: Statistic
    exact_agreement: Statistic | None = optional()

    @classmethod
    def of(cls, pair: PairAgreement, human: str) -> HumanPair:
        """A `model-human` pair of an agreement report, as an eval reports it: `human` is the other coder."""
        return cls.model_validate({"human": human, **{f: v for f, v in pair if f not in ("coders", "kind")}})


class CodeAgainstConsensus(StatisticGroup):
    """A configuration against the consensus on one code: presence against absence, and as a
    classifier of the code (`support`: units where the consensus has it)."""

    percent_agreement: Statistic
    cohen_kappa: Statistic
    support: int
    precision: Statistic
    recall: Statistic
    f1: Statistic


class CodeAgainstHuman(StatisticGroup):
    human: str
    percent_agreement: Statistic
    cohen_kappa: Statistic


class ConfigurationCode(_Frozen):
    """A configuration on one code; `consensus` only when there is a human consensus."""

    code: str
    name: str | None = optional()  # from the codebook
    consensus: CodeAgainstConsensus | None = optional()
    humans: list[CodeAgainstHuman]


class ConfigurationResult(_Frozen):
    """A configuration as the suite states it, and its notes (codes left out under its threshold,
    passages it failed to code)."""

    name: str
    description: str
    coder: str
    options: dict[str, Any]  # as the suite writes them
    threshold: float | None
    unit: UnitKind
    chunk_size: int
    overlap: int
    speakers: SpeakerChoice
    notes: list[str]


class SkippedConfiguration(ConfigurationResult):
    status: Literal["skipped"] = "skipped"
    skipped: str  # why: the environment variable it needs


class RanConfiguration(ConfigurationResult):
    """A configuration that ran, and its agreement with the humans. Without a human consensus (fewer
    than two human coders on its units) `consensus`, `against_consensus` and `confusion` are null."""

    status: Literal["ran"] = "ran"
    model: str
    prompt_version: str | None
    run: RunFigures
    coding: CodingCost
    units: int
    consensus: Consensus | None
    against_consensus: ConsensusPair | None
    against_humans: list[HumanPair]
    per_code: list[ConfigurationCode]
    confusion: ConfusionTable | None
    agreement: Agreement


class GateCheck(_Frozen):
    """One configuration under one gate; `undefined` says why there is no value to compare."""

    configuration: str
    value: float | None
    passed: bool
    undefined: str | None = optional()


class GateResult(_Frozen):
    metric: str
    minimum: float
    against: Literal["consensus"] = "consensus"
    configurations: list[GateCheck]


class EvalReport(_Frozen):
    """Everything `qcode eval` reports. `gates` and `passed` come with `check_gates`."""

    suite: str
    name: str
    gold: GoldSummary
    codebook: CodebookSummary
    db: str  # its password shown as ***
    bootstrap: BootstrapSettings
    humans: list[HumanAgreement]
    configurations: list[Annotated[RanConfiguration | SkippedConfiguration, Field(discriminator="status")]]
    notes: list[str]
    gates: list[GateResult] | None = optional()
    passed: bool | None = optional()

    def ran(self) -> list[RanConfiguration]:
        """The configurations that ran, in the suite's order."""
        return [c for c in self.configurations if isinstance(c, RanConfiguration)]
