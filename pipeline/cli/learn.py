"""`qcode train`: a coder learned from the team's own codes, and its model card."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.chunk import DEFAULT_SIZE, UNIT_KINDS, Units
from pipeline.cli.options import DbOption, JsonOption
from pipeline.cli.output import bad_argument, emit, out, say
from pipeline.codebook import load_codebook
from pipeline.learn.train import CrossValidation, ModelCard, train
from pipeline.store import Store

app = typer.Typer()


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
    unit: Annotated[
        str, typer.Option("--unit", help="chunk or turn: the units to learn on, as the runs will code them.")
    ] = "chunk",
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=50, help="--unit chunk: the largest chunk.")
    ] = DEFAULT_SIZE,
    as_json: JsonOption = False,
) -> None:
    """Train the learned coder on every human code the store holds for a codebook (imported projects,
    reviewers' decisions, blind double codes) and on --gold files, and print its model card."""
    if unit not in UNIT_KINDS:
        bad_argument(f"--unit '{unit}' is not one of {', '.join(UNIT_KINDS)}")
    pairs = list(zip(gold or [], transcripts or []))
    if len(gold or []) != len(transcripts or []):
        bad_argument("give each --gold with its --transcripts, in the same order")
    book = load_codebook(codebook)
    store = Store(db)
    try:
        card = train(store, book, Units(unit="turn" if unit == "turn" else "chunk", size=chunk_size), pairs, codebook)
    finally:
        store.engine.dispose()
    emit(card, as_json, lambda: _show(card))
    if not card.stored:
        say(f"the store had this model already ({card.model}): nothing new was trained from")


def _show(card: ModelCard) -> None:
    table = Table(
        title=f"learned model {card.model}: {card.units} units of {card.transcripts} transcripts, "
        f"{'single' if card.single_label else 'multi'}-label; agreement with the people in cross-validation by transcript"
    )
    for column in ("code", "positives", "Cohen's kappa [95% CI]", "F1", "precision", "recall"):
        table.add_column(column)

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    def kappa(cv: CrossValidation) -> str:
        interval = cv.cohen_kappa_ci95
        return number(cv.cohen_kappa) + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")

    for code in card.codes:
        cv = code.cv
        table.add_row(
            code.code,
            str(code.positives),
            kappa(cv),
            number(cv.f1),
            number(cv.precision),
            number(cv.recall),
        )
    out.print(table)
    if card.overall is not None and card.overall.cohen_kappa is not None:
        out.print(f"all units, one code or none each: Cohen's kappa {kappa(card.overall)}")
    for skipped in card.skipped:
        out.print(f"not learned: {skipped.code} ({skipped.reason})")
    for note in card.notes:
        say(f"note: {note}")
