"""`qcode train`: a coder learned from the team's own codes, and its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

import typer
from rich.markup import escape

from pipeline.cli.options import (
    ChunkSizeOption,
    DbOption,
    IdColumnOption,
    JsonOption,
    MaxFileMbOption,
    MaxUnitCharsOption,
    OverlapOption,
    SkipSpeakersOption,
    SpeakersOption,
    TextColumnOption,
    UnitOption,
)
from pipeline.cli.output import Column, bad_argument, emit, fitted_table, narrowest, out, say
from pipeline.codebook import load_codebook
from pipeline.files import file_size_limit
from pipeline.ingest import CsvOptions
from pipeline.learn.card import ModelCard, card_columns, card_lines, card_rows, card_title
from pipeline.learn.train import LearnerName, TrainingPlan, train
from pipeline.run.settings import unit_settings
from pipeline.store import Store

app = typer.Typer()
LEARNER_NAMES: tuple[str, ...] = get_args(LearnerName)


@app.command("train")
def train_(
    codebook: Annotated[Path, typer.Option("--codebook", help="The codebook the team coded with.")],
    db: DbOption = None,
    gold: Annotated[
        list[Path] | None,
        typer.Option(
            "--gold",
            help="Human codes as passages (file,coder,code,quote or start,end); repeatable, each with a --transcripts.",
        ),
    ] = None,
    transcripts: Annotated[
        list[Path] | None,
        typer.Option("--transcripts", help="The transcripts of the --gold file given at the same place."),
    ] = None,
    unit: UnitOption = None,
    chunk_size: ChunkSizeOption = None,
    overlap: OverlapOption = None,
    max_unit_chars: MaxUnitCharsOption = None,
    speakers: SpeakersOption = None,
    skip_speakers: SkipSpeakersOption = None,
    id_column: IdColumnOption = None,
    text_column: TextColumnOption = None,
    max_file_mb: MaxFileMbOption = None,
    group_by: Annotated[
        str | None,
        typer.Option(
            "--group-by",
            help="Group the cross-validation folds by this case attribute (classroom, site, participant) instead of "
            "by transcript: units of one group are never in their own test fold.",
        ),
    ] = None,
    holdout: Annotated[
        float | None,
        typer.Option(
            "--holdout",
            help="Keep this share of the groups (0 to 1) out of training, and score the model on them beside "
            "the cross-validated figures.",
        ),
    ] = None,
    learner: Annotated[
        str,
        typer.Option(
            "--learner",
            help="auto (the higher grouped cross-validated kappa), linear (the sentence encoder as it is, and "
            "word n-grams) or finetuned (the encoder fine-tuned on the team's codes).",
        ),
    ] = "auto",
    as_json: JsonOption = False,
) -> None:
    """Train the learned coder on every human code the store holds for a codebook (imported projects,
    reviewers' decisions, blind double codes) and on --gold files, on the units the runs will code, and
    print its model card."""
    if learner not in LEARNER_NAMES:
        bad_argument(f"--learner '{learner}' is not one of {', '.join(LEARNER_NAMES)}")
    if holdout is not None and not 0 < holdout < 1:
        bad_argument(f"--holdout {holdout:g}: a share of the groups, more than 0 and less than 1")
    if group_by is not None and not group_by.strip():
        bad_argument("--group-by names a case attribute (a manifest column or front matter field)")
    pairs = list(zip(gold or [], transcripts or []))
    if len(gold or []) != len(transcripts or []):
        bad_argument("give each --gold with its --transcripts, in the same order")
    units = unit_settings(
        {
            "unit": unit,
            "chunk_size": chunk_size,
            "overlap": overlap,
            "max_unit_chars": max_unit_chars,
            "speakers": speakers,
            "skip_speakers": skip_speakers,
        }
    )
    plan = TrainingPlan(
        units=units,
        group_by=group_by.strip() if group_by else None,
        holdout=holdout,
        learner=learner,  # type: ignore[arg-type]  # checked against LEARNER_NAMES above
    )
    with file_size_limit(max_file_mb):  # the codebook, the --gold files and their transcripts
        book = load_codebook(codebook)
        store = Store(db)
        try:
            card = train(store, book, plan, pairs, codebook, CsvOptions(id_column, text_column))
        finally:
            store.engine.dispose()
    emit(card, as_json, lambda: _show(card))
    for note in card.notes:
        say(f"note: {note}")
    if not card.stored:
        say(f"the store had this model already ({card.model}): nothing new was trained from")


def _show(card: ModelCard) -> None:
    # one space between columns; a code id is wrapped, never cut, and a figure never broken: where
    # the figures on one line leave too little room (a narrow terminal, a held-out column), each
    # interval and "(differs)" goes under its kappa
    columns = [
        Column(name, "wrap", least=12) if name == "code" else Column(name, justify="right")
        for name in card_columns(card)
    ]
    rows = card_rows(card)
    if narrowest(columns, rows, gap=1) > out.width:
        rows = [[row[0], *(_stacked(cell) for cell in row[1:])] for row in rows]
    out.print(fitted_table(columns, rows, title=card_title(card), gap=1))
    for line in card_lines(card):
        out.print(escape(line), highlight=False, soft_wrap=True)


def _stacked(figure: str) -> str:
    """'0.67 [0.64, 0.71] (differs)' as three lines, the kappa first."""
    return figure.replace(" [", "\n[").replace(" (", "\n(")
