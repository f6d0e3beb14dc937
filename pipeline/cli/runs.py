"""`qcode runs`: the runs in the store, and which run a `--run` names.

Every command that takes `--run` resolves it here (`chosen_run`), so each says on standard error
which run it chose, by name, id and time: `latest` is the latest run that coded something, and a
name or the start of an id may stand for a run (see `pipeline.store.queries.pick_run`).
"""

from __future__ import annotations

import shlex

import typer

from pipeline.cli.options import DbOption, JsonOption
from pipeline.cli.output import Column, emit, fitted_table, out, say, unique_prefixes
from pipeline.errors import StoreError
from pipeline.store import Store
from pipeline.store.queries import RunListing, list_runs, local_minute, pick_run, run_refs

app = typer.Typer()


def chosen_run(store: Store, wanted: str | None, strict: bool = True) -> str | None:
    """The id of the run `wanted` names (None: every run, said nothing of), said as a note:
    "note: --run latest is 'pilot, week 1' (3f74056d, 2026-12-07 21:40)". Not `strict`: a run that
    cannot be chosen is passed on as it was typed, for the library function the command calls to
    refuse (it resolves --run itself, by the same rule, `resolve_run`)."""
    if wanted is None:
        return None
    runs = run_refs(store)
    try:
        run = pick_run(runs, wanted)
    except StoreError:
        if strict:
            raise
        return wanted
    prefix = unique_prefixes(r.id for r in runs)[run.id]
    shown = f"'{run.name}' ({prefix}, " if run.name else f"run {prefix} ("
    say(f"note: --run {shlex.quote(wanted)} is {shown}{local_minute(run.started_at)})")
    return run.id


def chosen_runs(store: Store, wanted: list[str]) -> list[str]:
    """`chosen_run` for each of several `--run`s, 'all' kept as it is: every run is named, and
    each checked, before anything is done with any of them."""
    return [w if w == "all" else str(chosen_run(store, w)) for w in wanted]


@app.command("runs")
def runs_(db: DbOption = None, as_json: JsonOption = False) -> None:
    """List the runs, the latest first: what each coded and what of it waits for a reviewer.

    Any of them can be named with --run by its name, its id or the start of it, or as latest (the
    latest run that coded something)."""
    found = list_runs(Store(db, create=False))  # a mistyped --db is an error, not a new empty database
    emit({"runs": [r.model_dump(mode="json") for r in found]}, as_json, lambda: _show(found))


def _show(found: list[RunListing]) -> None:
    prefixes = unique_prefixes(r.id for r in found)
    columns = [
        Column("run", "wrap", least=max((len(p) for p in prefixes.values()), default=8)),
        Column("started", "wrap", least=10),
        Column("coder", "wrap", least=7),
        Column("codebook", "wrap", least=8),
        Column("units", "wrap", least=6, justify="right"),
        Column("transcripts", justify="right"),
        Column("suggestions", justify="right"),
        Column("waiting for review", justify="right"),
    ]
    rows = [
        [
            f"{r.name}\n{prefixes[r.id]}" if r.name else prefixes[r.id],
            local_minute(r.started_at),
            f"{r.coder}\n{r.model.rsplit('/', 1)[-1]}" if r.model and r.model != r.coder else r.coder,
            r.codebook,
            f"{r.units} {r.unit}s",
            str(r.transcripts),
            str(r.suggestions),
            str(r.waiting),
        ]
        for r in found
    ]
    out.print(fitted_table(columns, rows, title=f"{len(found)} run(s), the latest first", gap=1))
    if not found:
        out.print("No runs yet: qcode run FILES... --codebook CODEBOOK.yaml codes some.", highlight=False)
