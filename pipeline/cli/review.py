"""`qcode queue`, `qcode serve`, `qcode reviewer ...`: people reviewing what the coder proposed."""

from __future__ import annotations

import os
import shlex
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from pipeline.cli.options import DbOption, JsonOption
from pipeline.cli.output import Column, bad_argument, cut, emit, fitted_table, one_line, out, say, unique_prefixes
from pipeline.cli.runs import chosen_run, chosen_runs
from pipeline.review.queued import QUEUE_ORDERS, queued_suggestions
from pipeline.review.reviewers import (
    ROLES,
    ReviewerList,
    add_reviewer,
    disable_reviewer,
    find_reviewer,
    grant_runs,
    list_reviewers,
    reset_password,
    reviewer_name,
    revoke_runs,
)
from pipeline.review.views import Waiting, WaitingSuggestion
from pipeline.store import RunRecord, Store, has_password, redact
from pipeline.store.queries import waiting_in_run

app = typer.Typer()
reviewers = typer.Typer(help="Reviewer accounts for the review web app.", no_args_is_help=True)

QUOTE_CHARS = 160  # the most of a quote `qcode queue` shows, however wide the terminal

NameArgument = Annotated[
    str, typer.Argument(help="The reviewer (found whatever the case or width it is typed in).", show_default=False)
]


@app.command("queue")
def queue(
    db: DbOption = None,
    limit: Annotated[int, typer.Option("--limit", help="Show at most this many.")] = 50,
    order: Annotated[
        str,
        typer.Option(
            "--order",
            help="confidence: lowest first; uncertainty: nearest 0.5 first (what review teaches a learned model most).",
        ),
    ] = "confidence",
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Only this run's suggestions: its name, its id or the start of it, or latest (default: every run).",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the suggestions waiting for a reviewer (low confidence or audit sample)."""
    if order not in QUEUE_ORDERS:
        bad_argument(f"unknown order '{order}' (choose from {', '.join(QUEUE_ORDERS)})")
    store = Store(db, create=False)
    run_id = chosen_run(store, run)
    if run_id is None:
        waiting = queued_suggestions(store, limit, order)
    else:
        total, rejections, items = waiting_in_run(store, run_id, limit, order)
        waiting = Waiting(total=total, open_rejections=rejections, items=[WaitingSuggestion(**item) for item in items])

    def show() -> None:
        ids = unique_prefixes(item.suggestion_id for item in waiting.items)
        columns = [
            Column("suggestion"),
            Column("transcript", "wrap", least=10),
            Column("code", "wrap", least=18),  # wrapped, never cut: codes that differ at the end stay apart
            Column("confidence", justify="right"),
            Column("status"),
            Column("quote", "cut", least=16, lines=3),
        ]
        rows = [
            [
                ids[item.suggestion_id],
                item.source_name + (f", {item.pages}" if item.pages else ""),
                item.code,
                f"{item.confidence:.2f}",
                item.status,
                cut(one_line(item.quote), QUOTE_CHARS),
            ]
            for item in waiting.items
        ]
        out.print(fitted_table(columns, rows, title=f"{waiting.total} suggestion(s) waiting for review"))
        if waiting.total > len(waiting.items):
            out.print(f"... and {waiting.total - len(waiting.items)} more (use --limit)")
        if waiting.open_rejections:
            out.print(f"{waiting.open_rejections} rejected proposal(s) are also waiting for a person.")

    emit(waiting, as_json, show)


@app.command("serve")
def serve(
    db: DbOption = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            help="A proxy (address) whose X-Forwarded-For is believed; repeat for several "
            "(default: $QCODE_TRUSTED_PROXIES, comma-separated, else none).",
        ),
    ] = None,
) -> None:
    """Start the review web app.

    Sessions are signed with $QCODE_SECRET_KEY (set it, or every restart signs everyone out);
    set QCODE_SECURE_COOKIES=1 behind HTTPS. Behind nginx or Caddy, name the proxy with
    --trusted-proxy (docs/review.md)."""
    from pipeline.review.app import serve as serve_app  # FastAPI and uvicorn only for the server
    from pipeline.review.app import trusted_proxies

    store = Store(db, create=False)
    if not any(r.active for r in list_reviewers(store)):
        # nobody could sign in: say how to make the first account, for this very database
        where = f" --db {shlex.quote(db)}" if db and not has_password(db) else ""
        say(
            "note: the database has no reviewer account anyone can sign in with; add a lead (who sees every "
            f"run) with `qcode reviewer add NAME --role lead{where}`, which prints the password once"
        )
    if not os.environ.get("QCODE_SECRET_KEY"):
        say("note: QCODE_SECRET_KEY is not set; sessions end when the server stops")
    say(f"qcode review on http://{host}:{port} (database {redact(store.url)})")
    proxies = trusted_proxies(trusted_proxy or [])
    if proxies:
        say(f"forwarded addresses believed from: {', '.join(proxies)}")
    serve_app(store.url, host, port, proxies)


@reviewers.command("add")
def reviewer_add(
    name: Annotated[
        str,
        typer.Argument(
            help="The reviewer's sign-in name: stored NFKC-normalised, spaces trimmed and runs of them one space; "
            "invisible and control characters, and a name that looks like an existing reviewer's, are refused."
        ),
    ],
    role: Annotated[
        str, typer.Option("--role", help="reviewer | lead (a lead sees every run and assigns double coding).")
    ] = "reviewer",
    runs: Annotated[
        list[str] | None,
        typer.Option(
            "--run", help="A run this reviewer may see (a name, an id or its start, latest or all); repeatable."
        ),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create an account and print its password, once."""
    if role not in ROLES:
        bad_argument(f"unknown role '{role}' (choose from {', '.join(ROLES)})")
    typed, name = name, reviewer_name(name)
    store = Store(db, create=False)
    # a mistyped run must not leave an account whose password was never shown
    chosen = chosen_runs(store, runs or [])
    password = add_reviewer(store, typed, role)
    granted = grant_runs(store, name, chosen) if chosen else []

    def show() -> None:
        out.print(f"{escape(name)} ({role}) created. One-time display of the password:", highlight=False)
        print(password)

    emit({"name": name, "role": role, "password": password, "runs": granted}, as_json, show)
    if name != typed.strip():
        say(f"note: the name is stored as '{name}' (NFKC-normalised, runs of spaces made one)")
    if role != "lead" and not granted:
        say(f"note: {name} sees no runs yet; give some with `qcode reviewer grant {name} --run latest`")


@reviewers.command("grant")
def reviewer_grant(
    name: NameArgument,
    runs: Annotated[
        list[str], typer.Option("--run", help="A run (a name, an id or its start, latest or all); repeatable.")
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let a reviewer see the suggestions of these runs."""
    store = Store(db, create=False)
    name = find_reviewer(store, name).name
    granted = grant_runs(store, name, chosen_runs(store, runs))
    emit(
        {"name": name, "runs": granted},
        as_json,
        lambda: out.print(
            f"{escape(name)} may see {len(granted)} run(s): {escape(run_labels(store, granted))}", highlight=False
        ),
    )


@reviewers.command("revoke")
def reviewer_revoke(
    name: NameArgument,
    runs: Annotated[
        list[str],
        typer.Option("--run", help="A run (a name, an id or its start, latest or all: every run granted); repeatable."),
    ],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop a reviewer seeing these runs, from their next page on; their decisions and blind codes stay.

    Their blind passages of these runs not coded yet are withdrawn. A run they had no grant for is
    noted and changes nothing; a lead sees every run, so revoking from a lead is an error."""
    store = Store(db, create=False)
    find_reviewer(store, name)  # an unknown reviewer is said before the runs are
    revocation = revoke_runs(store, name, chosen_runs(store, runs))
    name = revocation.name

    def show() -> None:
        out.print(
            f"{escape(name)} may no longer see {len(revocation.runs)} run(s): "
            f"{escape(run_labels(store, revocation.runs))}",
            highlight=False,
        )
        if revocation.assignments_withdrawn:
            out.print(
                f"{revocation.assignments_withdrawn} blind passage(s) not coded yet withdrawn from {escape(name)}.",
                highlight=False,
            )

    emit(revocation, as_json, show)
    if revocation.not_granted:
        say(f"note: {name} had no grant for {run_labels(store, revocation.not_granted)}: nothing to revoke there")
    elif not revocation.runs:
        say(f"note: {name} had no run granted: nothing to revoke")


def run_labels(store: Store, run_ids: list[str], names: dict[str, str | None] | None = None) -> str:
    """Runs as people know them: by the name given with `qcode run --name`, with the id's start.
    `names`: the runs' names read already (a listing reads them once for every row)."""
    names = names if names is not None else run_names(store, run_ids)
    return ", ".join(f"{names[r]} ({r[:8]})" if names.get(r) else r for r in run_ids) or "none"


def run_names(store: Store, run_ids: list[str]) -> dict[str, str | None]:
    with store.session() as s:
        return dict(s.execute(select(RunRecord.id, RunRecord.name).where(RunRecord.id.in_(run_ids))).all())


@reviewers.command("reset")
def reviewer_reset(
    name: NameArgument,
    db: DbOption = None,
    enable: Annotated[
        bool, typer.Option("--enable", help="Also enable a disabled account (without it, a disabled one is refused).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Give a reviewer a new password (printed once); their open sessions end."""
    store = Store(db, create=False)
    name = find_reviewer(store, name).name
    was_disabled = not next((r.active for r in list_reviewers(store) if r.name == name), True)
    password = reset_password(store, name, enable=enable)

    def show() -> None:
        if was_disabled:
            out.print(f"{escape(name)} was disabled and is enabled again.", highlight=False)
        out.print(f"New password for {escape(name)}, shown once:", highlight=False)
        print(password)

    emit({"name": name, "password": password, "enabled_again": was_disabled}, as_json, show)


@reviewers.command("disable")
def reviewer_disable(name: NameArgument, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Stop a reviewer from signing in; their decisions stay."""
    store = Store(db, create=False)
    name = find_reviewer(store, name).name
    disable_reviewer(store, name)
    emit(
        {"name": name, "active": False},
        as_json,
        lambda: out.print(f"{escape(name)} can no longer sign in.", highlight=False),
    )


@reviewers.command("list")
def reviewer_list(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Every reviewer, their role and the runs they may see."""
    store = Store(db, create=False)
    found = ReviewerList(reviewers=list_reviewers(store))

    def show() -> None:
        table = Table(title=f"{len(found.reviewers)} reviewer(s)")
        for column in ("name", "role", "active", "runs"):
            table.add_column(column, overflow="fold")
        names = run_names(
            store, sorted({run for r in found.reviewers if not isinstance(r.runs, str) for run in r.runs})
        )
        for r in found.reviewers:
            runs = r.runs if isinstance(r.runs, str) else run_labels(store, r.runs, names)
            table.add_row(escape(r.name), r.role, "yes" if r.active else "no", escape(runs))
        out.print(table)

    emit(found, as_json, show)
