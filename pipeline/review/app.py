"""The review web app: FastAPI, server-rendered Jinja2 pages and one small script.

Safety rules kept throughout:
* every page but the login needs a signed-in reviewer; the session cookie is signed
  (itsdangerous), HttpOnly and SameSite=strict, and ends when the password is reset;
* every POST carries the session's CSRF token (form field or X-CSRF-Token header);
  no GET changes data;
* templates autoescape, and the Content-Security-Policy allows no inline script, so
  transcript text, justifications and quotes always show as text;
* failed logins are rate-limited per name and per client address.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shlex
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy import exists, select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from pipeline.errors import QcodeError, StoreBusy
from pipeline.review import blind, decisions, queued
from pipeline.review.decisions import NOTE_CHARS
from pipeline.review.reviewers import (
    Reviewer,
    authenticate,
    end_session,
    get_reviewer,
    list_reviewers,
    name_key,
    session_reviewer,
    start_session,
    visible_runs,
)
from pipeline.store import (
    RejectionRecord,
    ReviewerRecord,
    RunChunkRecord,
    RunRecord,
    Store,
    SuggestionRecord,
    redact,
)
from pipeline.store.queries import run_refs

HERE = Path(__file__).parent
log = logging.getLogger("qcode.review")
MAX_FILTER_CHARS = 200  # the longest filter value the queue takes
PAGE_SIZE = 100  # rows of the queue's list on one page
_FILTER_KEY = re.compile(r"^[\w .-]{1,64}$")  # a case attribute's name: nothing a JSON path would read
LEASE_SECONDS = 600
SKIPPED_KEPT = 50  # items a reviewer skipped, remembered in the (at most 4 KB) session cookie
SESSION_HOURS = 12
BUSY_SECONDS = 10.0  # how long a page waits for another program's write to the database, then 503
BUSY_TEXT = (
    "Another program is writing to the database, and it stayed busy for too long: nothing was recorded. "
    "What you typed is kept: go back and send it again."
)
BUSY = -1.0  # LoginThrottle.attempt: only attempts still being checked stand in the way
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class LoginThrottle:
    """At most `limit` failed logins per name, and `address_limit` per client address, in `window`
    seconds. The address allows more: colleagues behind one office address or proxy must not be
    locked out by one person mistyping, while guessing many names from one place is still stopped.

    What it remembers is bounded whatever visitors send: a key is kept only while it has failures
    inside the window, and at most `most` keys are kept (when more fail at once, those whose last
    failure is oldest are forgotten first)."""

    def __init__(self, limit: int = 5, window: float = 300.0, address_limit: int = 50, most: int = 10_000):
        self.limit, self.window, self.address_limit, self.most = limit, window, address_limit, most
        self.failures: dict[str, deque[float]] = {}
        self.checking: Counter[str] = Counter()  # attempts per key counted in failures but not checked yet
        self.lock = threading.Lock()

    def limit_of(self, key: str) -> int:
        return self.address_limit if key.startswith("addr:") else self.limit

    def _recent(self, key: str, at: float) -> deque[float]:
        """The key's failures inside the window (a key with none is not kept)."""
        times = self.failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= at - self.window:
            times.popleft()
        if not times and not self.checking[key]:
            del self.failures[key]
        return times

    def _forget(self, at: float) -> None:
        """Keys whose failures have all left the window go; then, if still too many, those whose
        last failure is oldest (never one being checked), down to nine tenths of `most`."""
        for key in [k for k, times in self.failures.items() if not times or times[-1] <= at - self.window]:
            if not self.checking[key]:
                del self.failures[key]
        excess = len(self.failures) - self.most * 9 // 10  # a tenth free: the next sweep is far off
        if excess > 0:
            oldest = sorted((times[-1] if times else 0.0, key) for key, times in self.failures.items())
            for _, key in [(t, k) for t, k in oldest if not self.checking[k]][:excess]:
                del self.failures[key]

    def attempt(self, keys: list[str]) -> tuple[float, float]:
        """Check and count an attempt at once: (seconds to wait: 0 when allowed, BUSY when only
        attempts still being checked are in the way; the attempt's stamp). An allowed attempt
        counts as a failure until `checked`, so guesses sent in parallel cannot all pass the check
        before the first of them has failed; but right passwords sent at once (reviewers behind one
        address) are not refused for failures that have not happened: they wait their turn."""
        at = time.monotonic()
        with self.lock:
            recent = [self._recent(key, at) for key in keys]
            waits = [
                times[0] + self.window - at
                for key, times in zip(keys, recent)
                if len(times) - self.checking[key] >= self.limit_of(key)
            ]
            if waits:
                return max(waits), at
            if any(len(times) >= self.limit_of(key) for key, times in zip(keys, recent)):
                return BUSY, at
            for key, times in zip(keys, recent):
                times.append(at)
                self.failures[key] = times
                self.checking[key] += 1
            if len(self.failures) > self.most:
                self._forget(at)
        return 0.0, at

    def checked(self, keys: list[str], at: float, ok: bool) -> None:
        """An allowed attempt's outcome: a failure stays counted; a success forgives the name's
        failures and takes back this attempt's mark from the other keys."""
        with self.lock:
            for key in keys:
                self.checking[key] -= 1
                if self.checking[key] <= 0:
                    del self.checking[key]
        if ok:
            self.succeeded(keys, at)

    def succeeded(self, keys: list[str], at: float) -> None:
        """The name's failures are forgiven; the other keys lose only this attempt's mark."""
        with self.lock:
            self.failures.pop(keys[0], None)
            for key in keys[1:]:
                times = self.failures.get(key)
                if times is not None and at in times:
                    times.remove(at)
                    if not times and not self.checking[key]:
                        del self.failures[key]


class Leases:
    """Items 'next' handed a reviewer, so it hands different items to different reviewers (opening an
    item from the queue holds nothing). Only a courtesy: the version check on deciding is what keeps
    decisions single."""

    def __init__(self, seconds: float = LEASE_SECONDS):
        self.seconds = seconds
        self.held: dict[str, tuple[int, float]] = {}
        self.lock = threading.Lock()

    def claim(self, item: str, reviewer_id: int) -> bool:
        """Take the item unless another reviewer holds it: checked and taken under one lock, so
        reviewers asking for the next item at the same moment are not all sent to the same one."""
        at = time.monotonic()
        with self.lock:
            holder = self.held.get(item)
            if holder is not None and holder[0] != reviewer_id and holder[1] > at:
                return False
            # a reviewer holds the item in front of them only: the one they skipped or left goes back
            for other in [i for i, (who, _) in self.held.items() if who == reviewer_id and i != item]:
                del self.held[other]
            self.held[item] = (reviewer_id, at + self.seconds)
            return True

    def holder(self, item: str) -> tuple[int, str] | None:
        """Who holds an item, and until when ("HH:MM UTC", as every time the app shows), while they do."""
        at = time.monotonic()
        with self.lock:
            held = self.held.get(item)
        if held is None or held[1] <= at:
            return None
        until = datetime.now(UTC) + timedelta(seconds=held[1] - at)
        return held[0], until.strftime("%H:%M UTC")

    def release(self, item: str) -> None:
        with self.lock:
            self.held.pop(item, None)

    def held_by_others(self, reviewer_id: int) -> set[str]:
        at = time.monotonic()
        with self.lock:
            for item in [i for i, (_, until) in self.held.items() if until <= at]:
                del self.held[item]
            return {i for i, (who, _) in self.held.items() if who != reviewer_id}


class Outcomes:
    """Why a decision was not recorded, and what the reviewer had typed, kept on the server (a
    session cookie holds 4 KB, a reason 5,000 characters) until the item's page shows it once.

    Bounded whatever a visitor posts: an outcome expires after `seconds`; a session keeps its
    `per_session` latest; all sessions together keep at most `most`, and an outcome is at most
    `OUTCOME_CHARS` characters of what was typed (longer fields are cut)."""

    def __init__(self, seconds: float = 600.0, most: int = 2_000, per_session: int = 20):
        self.seconds, self.most, self.per_session = seconds, most, per_session
        self.kept: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self.lock = threading.Lock()

    def keep(self, session_id: Any, item: str, outcome: dict[str, Any]) -> None:
        if not isinstance(session_id, str) or len(item) > MAX_ITEM_KEY:
            return
        at = time.monotonic()
        outcome = _bounded(outcome)
        with self.lock:
            for key in [k for k, (until, _) in self.kept.items() if until <= at]:
                del self.kept[key]
            self.kept.pop((session_id, item), None)
            own = [k for k in self.kept if k[0] == session_id]
            for key in own[: max(0, len(own) - self.per_session + 1)]:  # insertion order: oldest first
                del self.kept[key]
            while len(self.kept) >= self.most:  # all are kept equally long: the oldest goes
                del self.kept[next(iter(self.kept))]
            self.kept[(session_id, item)] = (at + self.seconds, outcome)

    def take(self, session_id: Any, item: str) -> dict[str, Any] | None:
        if not isinstance(session_id, str):
            return None
        with self.lock:
            found = self.kept.pop((session_id, item), None)
        return found[1] if found is not None and found[0] > time.monotonic() else None

    def size(self) -> int:
        """The characters kept, all outcomes together (what the bound is stated in)."""
        with self.lock:
            return sum(len(k[0]) + len(k[1]) + _chars(v) for k, (_, v) in self.kept.items())


MAX_ITEM_KEY = 64  # an item's id, "rejection:N", "lead": never what a visitor typed at length
OUTCOME_CHARS = 3 * NOTE_CHARS  # a note, a reason and a code, as the forms take them


def _chars(value: Any) -> int:
    if isinstance(value, dict):
        return sum(len(str(k)) + _chars(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_chars(v) for v in value)
    return len(str(value))


def _bounded(outcome: dict[str, Any]) -> dict[str, Any]:
    """The outcome with what was typed cut to OUTCOME_CHARS characters in all, fields in order."""
    left = OUTCOME_CHARS

    def cut(value: Any) -> Any:
        nonlocal left
        if isinstance(value, dict):
            return {str(k)[:MAX_ITEM_KEY]: cut(v) for k, v in list(value.items())[:20]}
        if isinstance(value, (list, tuple)):
            return [cut(v) for v in list(value)[:100]]
        if not isinstance(value, str):
            return value
        text = value[: max(left, 0)]
        left -= len(text)
        return text

    return cut(outcome)


class NotSignedIn(Exception):
    pass


def create_app(
    db: str | None = None, secret_key: str | None = None, secure_cookies: bool = False, store: Store | None = None
) -> FastAPI:
    """The app over one database. `secret_key` signs sessions (QCODE_SECRET_KEY); without
    one a random key is made, and sessions end when the server stops."""
    store = store or Store(db, busy_seconds=BUSY_SECONDS)
    app = FastAPI(title="qcode review", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key or secrets.token_urlsafe(32),
        session_cookie="qcode_session",
        max_age=SESSION_HOURS * 3600,
        same_site="strict",
        https_only=secure_cookies,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    throttle = LoginThrottle()
    leases = Leases()
    outcomes = Outcomes()
    app.state.store, app.state.throttle, app.state.leases, app.state.outcomes = store, throttle, leases, outcomes

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        try:
            response = await call_next(request)
        except StoreBusy:  # another program holds the write lock: nothing was changed, and it passes
            response = busy_page(request, "/queue")
        except Exception:  # a bug: the app's own page, with the same headers as every other
            log.exception("the review app failed on %s %s", request.method, request.url.path)
            response = message_page(request, "Something went wrong", "The server could not answer; try again.", 500)
        # redirects stay on the address the reviewer used: a Location built from the request's Host
        # header would send them wherever a forged header says
        location = response.headers.get("location")
        if location and "://" in location:
            parts = urlsplit(location)
            response.headers["location"] = urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(NotSignedIn)
    async def to_login(request: Request, _exc: NotSignedIn) -> Response:
        if request.method in ("GET", "HEAD"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        else:  # a form sent once the session had ended: back to the page it was sent from
            target = _page_of_form(request.url.path)
        return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)

    # --- helpers -----------------------------------------------------------------

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return token

    async def form_checked(request: Request) -> Any:
        form = await request.form()
        sent = request.headers.get("x-csrf-token") or form.get("csrf_token") or ""
        expected = request.session.get("csrf") or ""
        if not expected or not secrets.compare_digest(str(sent).encode(), expected.encode()):
            raise HTTPException(403, "The form expired or did not come from this site; reload the page and try again.")
        return form

    def current(request: Request) -> Reviewer:
        session_id = request.session.get("sid")
        reviewer = session_reviewer(store, session_id, SESSION_HOURS) if isinstance(session_id, str) else None
        if reviewer is None:
            request.session.pop("sid", None)
            raise NotSignedIn()
        return reviewer

    def run_ids(reviewer: Reviewer) -> list[str]:
        return [r.id for r in visible_runs(store, reviewer)]

    def message_page(
        request: Request, title: str, message: str, status_code: int, back: str = "/queue"
    ) -> HTMLResponse:
        return templates.TemplateResponse(
            request,
            "message.html",
            {
                "csrf": csrf_token(request),
                "flashes": [],
                "title": title,
                "message": message,
                "reviewer": None,
                "back": back,
            },
            status_code=status_code,
        )

    def busy_page(request: Request, back: str, kept: tuple[str, dict[str, Any]] | None = None) -> HTMLResponse:
        """503: the store stayed busy longer than the app waits. What the reviewer typed (`kept`:
        the key of the page it belongs to, and the outcome) is shown there again."""
        if kept is not None:
            outcomes.keep(request.session.get("sid"), kept[0], {"kind": "error", "text": BUSY_TEXT, **kept[1]})
        response = message_page(request, "The database is busy", BUSY_TEXT, 503, back=back)
        response.headers["retry-after"] = "10"
        return response

    def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        flashes = request.session.pop("flash", [])
        if isinstance(context.get("reviewer"), Reviewer) and "blind_waiting" not in context:
            context["blind_waiting"] = blind.waiting(store, context["reviewer"])
        return templates.TemplateResponse(
            request,
            template,
            {"csrf": csrf_token(request), "flashes": flashes, "reviewer": None, **context},
            status_code=status_code,
        )

    def flash(request: Request, message: str, kind: str = "info") -> None:
        # a new list, not an append: the session saves only what is assigned to it
        request.session["flash"] = [*request.session.get("flash", []), {"kind": kind, "text": message}]

    def flash_failure(request: Request, exc: Exception) -> None:
        flash(request, _first_error(exc), "conflict" if isinstance(exc, decisions.Conflict) else "error")

    def parse_filter(params: Any, reviewer: Reviewer) -> queued.QueueFilter:
        def number(name: str) -> float | None:
            try:
                return float(params.get(name)) if params.get(name) not in (None, "") else None
            except ValueError:
                return None

        if any(len(str(v)) > MAX_FILTER_CHARS for v in params.values()):
            raise HTTPException(400, f"A filter value is longer than {MAX_FILTER_CHARS} characters.")
        odd = next((k for k in params if k.startswith("case.") and not _FILTER_KEY.match(k[5:])), None)
        if odd is not None:
            raise HTTPException(400, f"No case attribute is called “{odd[5:][:64]}”: choose one from the filters.")
        status = params.get("status") or "pending"
        return queued.QueueFilter(
            run=params.get("run") or None,
            code=params.get("code") or None,
            transcript=params.get("transcript") or None,
            case={k[5:]: v for k, v in params.items() if k.startswith("case.") and v},
            status=status if status in queued.STATUSES else "pending",
            min_confidence=number("min_confidence"),
            max_confidence=number("max_confidence"),
            reviewer_id=reviewer.id,
            order="uncertainty" if params.get("order") == "uncertainty" else "confidence",
        )

    def visible_suggestion(reviewer: Reviewer, suggestion_id: str) -> bool:
        with store.session() as s:
            return bool(
                s.scalar(
                    select(
                        exists().where(
                            SuggestionRecord.id == suggestion_id,
                            queued.in_runs(run_ids(reviewer)),
                            ~queued.coding_blind(reviewer.id),
                        )
                    )
                )
            )

    def chunk_codebooks(reviewer: Reviewer, chunk_id: str) -> set[str]:
        """The codebook versions of the visible runs that covered a passage."""
        with store.session() as s:
            return set(
                s.scalars(
                    select(RunRecord.codebook_version)
                    .join(RunChunkRecord, RunChunkRecord.run_id == RunRecord.id)
                    .where(RunChunkRecord.chunk_id == chunk_id, RunChunkRecord.run_id.in_(run_ids(reviewer)))
                )
            )

    def visible_chunk(reviewer: Reviewer, chunk_id: str) -> bool:
        with store.session() as s:
            return bool(
                s.scalar(
                    select(
                        exists().where(
                            RunChunkRecord.chunk_id == chunk_id, RunChunkRecord.run_id.in_(run_ids(reviewer))
                        )
                    )
                )
            )

    def blind_for(reviewer: Reviewer, chunk_id: str) -> bool:
        """Whether the reviewer still has to code this passage blind."""
        with store.session() as s:
            return bool(s.scalar(select(queued.coding_blind(reviewer.id, chunk_id))))

    # --- signing in ----------------------------------------------------------------

    def login_form(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
        """The sign-in page; on a database with no reviewer account yet it says how to add the first."""
        with store.session() as s:
            accounts = s.scalar(select(ReviewerRecord.id).limit(1)) is not None
        first = None if accounts else first_account_command(store.url)
        return page(request, "login.html", status_code=status_code, first_account=first, **context)

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/queue") -> HTMLResponse:
        return login_form(request, next=_safe_next(next))

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await form_checked(request)
        name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
        if len(name) > 200 or len(password) > 1000:
            return login_form(request, status_code=400, next="/queue", error="That name or password is too long.")
        client = request.client.host if request.client else "unknown"
        keys = [f"name:{name_key(name)}", f"addr:{client}"]  # one account's name however it is typed
        deadline = time.monotonic() + 10
        while (answer := throttle.attempt(keys))[0] == BUSY and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # other sign-ins from this address or for this name are being checked
        wait, stamp = answer
        if wait == BUSY:
            wait = 1.0
        if wait > 0:
            response = login_form(
                request,
                status_code=429,
                next=_safe_next(str(form.get("next", ""))),
                error=f"Too many failed sign-ins. Try again in {int(wait) + 1} seconds.",
            )
            response.headers["Retry-After"] = str(int(wait) + 1)
            return response
        reviewer = None
        try:
            reviewer = await run_in_threadpool(authenticate, store, name, password)
        finally:
            throttle.checked(keys, stamp, ok=reviewer is not None)
        if reviewer is None:  # counted already, by throttle.attempt
            return login_form(
                request,
                status_code=401,
                next=_safe_next(str(form.get("next", ""))),
                error="Unknown name or wrong password.",
                name=name,
            )
        request.session.clear()
        session_id = await run_in_threadpool(start_session, store, reviewer)
        request.session.update({"sid": session_id, "csrf": secrets.token_urlsafe(32)})
        return RedirectResponse(_safe_next(str(form.get("next", ""))), status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        await form_checked(request)
        session_id = request.session.get("sid")
        if isinstance(session_id, str):
            await run_in_threadpool(end_session, store, session_id)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # --- the queue -------------------------------------------------------------------

    @app.get("/")
    def home() -> Response:
        return RedirectResponse("/queue", status_code=303)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        # every page names its icon; a browser or tool that asks here anyway gets the same one
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.get("/queue", response_class=HTMLResponse)
    def queue_page(request: Request) -> HTMLResponse:
        reviewer = current(request)
        runs = visible_runs(store, reviewer)
        ids = [r.id for r in runs]
        flt = parse_filter(request.query_params, reviewer)
        counts = queued.queue_counts(store, ids, flt)
        total = counts.get(flt.status, 0)
        page_number = _page_number(request.query_params.get("page"), total)
        return page(
            request,
            "queue.html",
            reviewer=reviewer,
            runs=runs,
            flt=flt,
            items=queued.queue_items(store, ids, flt, limit=PAGE_SIZE, offset=(page_number - 1) * PAGE_SIZE),
            total=total,
            page_number=page_number,
            page_size=PAGE_SIZE,
            first_row=(page_number - 1) * PAGE_SIZE + 1,
            counts=counts,
            options=queued.filter_options(store, ids, reviewer.id),
            query=urlencode(flt.query_string()),
            statuses=queued.STATUSES,
        )

    @app.get("/next")
    def next_page(request: Request) -> Response:
        reviewer = current(request)
        flt = parse_filter(request.query_params, reviewer)
        ids = run_ids(reviewer)
        # items skipped with 'j' stay behind until nothing else is left (then they come round again)
        skipped = [i for i in request.session.get("skipped", []) if isinstance(i, str)]
        after = request.query_params.get("after")
        if after and request.query_params.get("skip") and after not in skipped:
            skipped = (skipped + [after])[-SKIPPED_KEPT:]
        request.session["skipped"] = skipped
        found = None
        for passed_over in (set(skipped), set()):
            skip = leases.held_by_others(reviewer.id) | passed_over
            while True:  # the first item nobody holds, leased before the answer leaves
                found = queued.next_item(store, ids, flt, skip=skip, after=after)
                if found is None or leases.claim(found, reviewer.id):
                    break
                skip = leases.held_by_others(reviewer.id) | passed_over | {found}  # and what was taken meanwhile
            if found is not None:
                break
        if found is None:
            request.session["skipped"] = []
        query = urlencode(flt.query_string())
        if found is None:
            flash(request, "Nothing left to review with these filters.")
            return RedirectResponse(f"/queue?{query}", status_code=303)
        return RedirectResponse(f"/items/{found}?{query}", status_code=303)

    @app.get("/items/{suggestion_id}", response_class=HTMLResponse)
    def item_page(request: Request, suggestion_id: str) -> HTMLResponse:
        reviewer = current(request)
        if not visible_suggestion(reviewer, suggestion_id):
            raise HTTPException(404, "No such item in the runs you can see.")
        flt = parse_filter(request.query_params, reviewer)
        kept = outcomes.take(request.session.get("sid"), suggestion_id)
        if kept is None:
            return item_response(request, reviewer, suggestion_id, flt)
        return item_response(
            request,
            reviewer,
            suggestion_id,
            flt,
            error=kept["text"] if kept["kind"] == "error" else None,
            conflict=kept["text"] if kept["kind"] == "conflict" else None,
            typed=kept["typed"],
        )

    def item_response(
        request: Request,
        reviewer: Reviewer,
        suggestion_id: str,
        flt: queued.QueueFilter,
        status_code: int = 200,
        error: str | None = None,
        conflict: str | None = None,
        typed: dict[str, str] | None = None,
    ) -> HTMLResponse:
        view = decisions.suggestion_view(store, suggestion_id)
        blind.opened(store, reviewer, view.passage.chunk_id)
        counts = queued.queue_counts(store, run_ids(reviewer), flt)
        holder = leases.holder(suggestion_id)
        held = None
        if holder is not None and holder[0] != reviewer.id:
            other = get_reviewer(store, holder[0])
            held = {"by": other.name if other else "another reviewer", "until": holder[1]}
        return page(
            request,
            "item.html",
            status_code=status_code,
            reviewer=reviewer,
            held=held,
            flt=flt,
            query=urlencode(flt.query_string()),
            counts=counts,
            error=error,
            conflict=conflict,
            typed=typed or {},
            **dict(view),
        )

    @app.post("/items/{suggestion_id}/decide")
    async def decide(request: Request, suggestion_id: str) -> Response:
        form = await form_checked(request)
        reviewer = await run_in_threadpool(current, request)
        if not await run_in_threadpool(visible_suggestion, reviewer, suggestion_id):
            raise HTTPException(404, "No such item in the runs you can see.")
        flt = parse_filter(_query_from(form.get("query", "")), reviewer)
        # what the reviewer typed stays in the form when the decision cannot be recorded
        typed = _typed(form, "note", "reason", "code")

        def back(kind: str, text: str) -> Response:
            """To the item again (a reload asks for nothing to be sent twice), saying why."""
            outcomes.keep(request.session.get("sid"), suggestion_id, {"kind": kind, "text": text, "typed": typed})
            return RedirectResponse(f"/items/{suggestion_id}?{urlencode(flt.query_string())}", status_code=303)

        try:
            version = _version(form)
            wish = _wish(form)
        except (ValueError, ValidationError) as exc:
            return back("error", _first_error(exc))
        try:
            await run_in_threadpool(decisions.decide, store, reviewer, suggestion_id, version, wish)
        except StoreBusy:
            back_to = f"/items/{suggestion_id}?{urlencode(flt.query_string())}"
            return busy_page(request, back_to, (suggestion_id, {"typed": typed}))
        except decisions.Conflict as exc:
            leases.release(suggestion_id)
            return back("conflict", str(exc))
        except decisions.DecisionError as exc:
            return back("error", str(exc))
        leases.release(suggestion_id)
        flash(request, f"Recorded: {wish.verdict}.")
        query = urlencode({**flt.query_string(), "after": suggestion_id})
        return RedirectResponse(f"/next?{query}", status_code=303)

    @app.post("/chunks/{chunk_id}/add")
    async def add(request: Request, chunk_id: str) -> Response:
        form = await form_checked(request)
        reviewer = await run_in_threadpool(current, request)
        if not await run_in_threadpool(visible_chunk, reviewer, chunk_id):
            raise HTTPException(404, "No such passage in the runs you can see.")
        if await run_in_threadpool(blind_for, reviewer, chunk_id):
            raise HTTPException(
                409, "You are coding this passage blind: code it under Blind coding first, then decide here."
            )
        back = str(form.get("back", ""))
        flt = parse_filter(_query_from(form.get("query", "")), reviewer)
        back = back if back.isalnum() and len(back) <= MAX_ITEM_KEY else ""  # a suggestion's id, or nothing
        target = f"/items/{back}?{urlencode(flt.query_string())}" if back else "/queue"
        try:
            wish = _wish(form, verdict="add")
            version = str(form.get("codebook_version", ""))
            if version not in await run_in_threadpool(chunk_codebooks, reviewer, chunk_id):
                raise decisions.DecisionError(f"no codebook version '{version}' in the database for this passage")
            await run_in_threadpool(decisions.add_code, store, reviewer, chunk_id, version, wish)
        except StoreBusy:
            typed = {"add_code": _typed(form, "code")["code"]}
            return busy_page(request, target, (back, {"typed": typed}) if back else None)
        except (ValueError, ValidationError, decisions.DecisionError, decisions.Conflict) as exc:
            if back:  # the item's page says why, with the code typed still in its field
                kind = "conflict" if isinstance(exc, decisions.Conflict) else "error"
                typed = {"add_code": _typed(form, "code")["code"]}
                outcomes.keep(
                    request.session.get("sid"), back, {"kind": kind, "text": _first_error(exc), "typed": typed}
                )
            else:
                flash_failure(request, exc)
        else:
            flash(request, f"Added '{wish.code}' to this passage.")
        return RedirectResponse(target, status_code=303)

    # --- rejected proposals --------------------------------------------------------------

    def visible_rejection(reviewer: Reviewer, rejection_id: int) -> bool:
        with store.session() as s:
            return bool(
                s.scalar(
                    select(
                        exists().where(
                            RejectionRecord.id == rejection_id,
                            queued.in_runs(run_ids(reviewer), RejectionRecord),
                            ~queued.coding_blind(reviewer.id, RejectionRecord.chunk_id),
                        )
                    )
                )
            )

    @app.get("/rejections", response_class=HTMLResponse)
    def rejections_page(request: Request) -> HTMLResponse:
        reviewer = current(request)
        items, total = queued.open_rejections(store, run_ids(reviewer), reviewer.id)
        return page(request, "rejections.html", reviewer=reviewer, items=items, total=total)

    @app.get("/rejections/{rejection_key}", response_class=HTMLResponse)
    def rejection_page(request: Request, rejection_key: str) -> HTMLResponse:
        reviewer = current(request)
        rejection_id = _number_or_404(rejection_key)  # after the sign-in: no one learns what an id looks like
        if not visible_rejection(reviewer, rejection_id):
            raise HTTPException(404, "No such rejected proposal in the runs you can see.")
        kept = outcomes.take(request.session.get("sid"), f"rejection:{rejection_id}") or {}
        view = decisions.rejection_view(store, rejection_id)
        blind.opened(store, reviewer, view.passage.chunk_id)
        return page(
            request,
            "rejection.html",
            reviewer=reviewer,
            error=kept.get("text"),
            typed=kept.get("typed", {}),
            **dict(view),
        )

    @app.post("/rejections/{rejection_key}/settle")
    async def settle(request: Request, rejection_key: str) -> Response:
        form = await form_checked(request)
        reviewer = await run_in_threadpool(current, request)
        rejection_id = _number_or_404(rejection_key)  # after the sign-in: no one learns what an id looks like
        if not await run_in_threadpool(visible_rejection, reviewer, rejection_id):
            raise HTTPException(404, "No such rejected proposal in the runs you can see.")
        try:
            version = _version(form)
            wish = _wish(form)
            await run_in_threadpool(decisions.settle_rejection, store, reviewer, rejection_id, version, wish)
        except StoreBusy:
            typed = {"typed": _typed(form, "note", "reason", "code")}
            return busy_page(request, f"/rejections/{rejection_id}", (f"rejection:{rejection_id}", typed))
        except decisions.Conflict as exc:
            flash_failure(request, exc)
        except (ValueError, ValidationError, decisions.DecisionError) as exc:
            # the page says why once, and keeps what was typed (kept here: a reason outgrows a cookie)
            kept = {"text": _first_error(exc), "typed": _typed(form, "note", "reason", "code")}
            outcomes.keep(request.session.get("sid"), f"rejection:{rejection_id}", kept)
        else:
            flash(request, "Recorded: " + ("dismissed." if wish.verdict == "reject" else f"added '{wish.code}'."))
            return RedirectResponse("/rejections", status_code=303)
        return RedirectResponse(f"/rejections/{rejection_id}", status_code=303)

    # --- blind double coding ---------------------------------------------------------

    @app.get("/blind", response_class=HTMLResponse)
    def blind_list(request: Request) -> HTMLResponse:
        reviewer = current(request)
        items = blind.assignments(store, reviewer)
        done = sum(1 for a in items if a.coded)
        return page(request, "blind_list.html", reviewer=reviewer, items=items, done=done, left=len(items) - done)

    @app.get("/blind/{assignment_key}", response_class=HTMLResponse)
    def blind_item(request: Request, assignment_key: str) -> HTMLResponse:
        reviewer = current(request)
        assignment_id = _number_or_404(assignment_key)  # after the sign-in: no one learns what an id looks like
        try:
            view = blind.assignment_view(store, reviewer, assignment_id)
        except decisions.DecisionError:
            raise HTTPException(404, "No such assignment.") from None
        return page(request, "blind_item.html", reviewer=reviewer, keys=blind.CODE_KEYS, **dict(view))

    @app.post("/blind/{assignment_key}")
    async def blind_submit(request: Request, assignment_key: str) -> Response:
        form = await form_checked(request)
        reviewer = await run_in_threadpool(current, request)
        assignment_id = _number_or_404(assignment_key)  # after the sign-in: no one learns what an id looks like
        codes = [str(c) for c in form.getlist("code")]
        try:
            await run_in_threadpool(blind.submit, store, reviewer, assignment_id, codes, str(form.get("note", "")))
        except decisions.Conflict as exc:
            flash(request, str(exc), "conflict")
            return RedirectResponse(f"/blind/{assignment_id}", status_code=303)
        except decisions.DecisionError as exc:
            flash(request, str(exc), "error")
            return RedirectResponse(f"/blind/{assignment_id}", status_code=303)
        flash(request, "Codes recorded.")
        mine = await run_in_threadpool(blind.assignments, store, reviewer)
        following = next((a for a in mine if not a.coded), None)
        return RedirectResponse(f"/blind/{following.id}" if following else "/blind", status_code=303)

    # --- leads --------------------------------------------------------------------------

    @app.get("/lead", response_class=HTMLResponse)
    def lead_page(request: Request) -> HTMLResponse:
        reviewer = current(request)
        if not reviewer.is_lead:
            raise HTTPException(403, "Only a lead can assign double coding.")
        runs = visible_runs(store, reviewer)
        coded = {r.id for r in run_refs(store) if r.units}  # a run that read nothing is never the default
        latest = next((r for r in runs if r.id in coded), runs[0] if runs else None)
        chosen = next((r for r in runs if r.id == request.query_params.get("run")), latest)
        # only the reviewers who may see the chosen run: the others could not be assigned its passages
        offered = [r for r in list_reviewers(store) if r.active and chosen and (r.runs == "all" or chosen.id in r.runs)]
        kept = outcomes.take(request.session.get("sid"), "lead") or {}
        return page(
            request,
            "lead.html",
            reviewer=reviewer,
            runs=runs,
            chosen=chosen,
            reviewers=offered,
            samples=blind.samples(store),
            error=kept.get("text"),
            typed=kept.get("typed", {}),
        )

    @app.post("/lead/samples")
    async def lead_sample(request: Request) -> Response:
        form = await form_checked(request)
        reviewer = await run_in_threadpool(current, request)
        if not reviewer.is_lead:
            raise HTTPException(403, "Only a lead can assign double coding.")
        run = str(form.get("run", ""))
        chosen = [str(r) for r in form.getlist("reviewer")]
        try:
            size = int(form.get("size", "0"))
            seed = _int_or_none(form.get("seed"))
            drawing = await run_in_threadpool(blind.create_sample, store, reviewer, run, size, chosen, seed)
        except StoreBusy:
            typed = {
                "size": str(form.get("size", ""))[:40],
                "seed": str(form.get("seed") or "")[:40],
                "reviewers": chosen,
            }
            back_to = f"/lead?{urlencode({'run': run[:100]})}" if run else "/lead"
            return busy_page(request, back_to, ("lead", {"typed": typed}))
        except (ValueError, decisions.DecisionError) as exc:
            text = (
                str(exc)
                if isinstance(exc, decisions.DecisionError)
                else "The sample size and seed must be whole numbers."
            )
            typed = {
                "size": str(form.get("size", ""))[:40],
                "seed": str(form.get("seed") or "")[:40],
                "reviewers": chosen,
            }
            outcomes.keep(request.session.get("sid"), "lead", {"text": text, "typed": typed})
        else:
            flash(
                request,
                f"Sample {drawing.sample[:8]}: {drawing.passages} passage(s) assigned to each reviewer; "
                f"{drawing.left_out()}.",
            )
        return RedirectResponse(f"/lead?{urlencode({'run': run[:100]})}" if run else "/lead", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and exc.detail == "Not Found":
            return message_page(request, "Not found", "There is no such page.", 404)
        return message_page(request, "Not possible", str(exc.detail), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, _exc: RequestValidationError) -> Response:
        return message_page(request, "Not possible", "The address or the form had a value that is not right.", 400)

    # HEAD asks what GET would answer, without the body (uptime checks, link checkers, curl -I): a
    # FastAPI route answers only the methods it names, and 405 says the page is not there to watch
    for route in app.routes:
        if isinstance(route, APIRoute) and route.methods and "GET" in route.methods:
            route.methods.add("HEAD")

    return app


def first_account_command(url: str) -> str:
    """The command that adds a first reviewer account to this database: a lead, who sees every run
    and assigns double coding. It names the database the app serves, so the account is not added to
    another (qcode.db in whatever folder the command is typed in); a password in the URL is hidden."""
    plain = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else redact(url)
    return f"qcode reviewer add NAME --role lead --db {shlex.quote(plain)}"


def _page_of_form(action: str) -> str:
    """The page whose form posts to `action` (where a reviewer signed out meanwhile comes back to)."""
    found = re.fullmatch(r"(/items/[0-9a-f]{1,64}|/rejections/\d{1,18})/(decide|settle)", action)
    if found:
        return found.group(1)
    if re.fullmatch(r"/blind/\d{1,18}", action):
        return action
    return "/lead" if action == "/lead/samples" else "/queue"


def _page_number(value: Any, total: int) -> int:
    """A page of the queue's list, from 1 to the last (an odd value: the first)."""
    last = max(1, -(-total // PAGE_SIZE))
    text = str(value or "")
    return min(int(text), last) if text.isdigit() and 0 < len(text) < 7 and int(text) > 0 else 1


def _number_or_404(value: str) -> int:
    if not value.isdigit() or len(value) > 18:
        raise HTTPException(404, "No such page.")
    return int(value)


def _safe_next(target: str) -> str:
    """Only a path on this site: never an address elsewhere (an open redirect)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/queue"
    return target


def _query_from(value: Any) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(str(value or "")))


def _wish(form: Any, verdict: str | None = None) -> decisions.DecisionRequest:
    """A decision as a form asks for it (ValueError or ValidationError when it cannot be one)."""
    return decisions.DecisionRequest.model_validate(
        {
            "verdict": verdict or form.get("verdict"),
            "code": form.get("code") or None,
            "quote_start": _int_or_none(form.get("quote_start")),
            "quote_end": _int_or_none(form.get("quote_end")),
            "reason": form.get("reason"),
            "note": form.get("note"),
        }
    )


def _int_or_none(value: Any) -> int | None:
    if value in (None, ""):
        return None
    return int(str(value))


class FormError(ValueError):
    """A form's value that cannot be right, said as the reviewer should read it."""


def _version(form: Any) -> int:
    """The version of the item the form was sent from (a database integer: the app sent it)."""
    text = str(form.get("version", ""))
    if not text.isdigit() or len(text) > 9:
        raise FormError("The form did not come from this item's page as the app sent it: reload the page.")
    return int(text)


# the fields a decision's form sends, as its messages name them
FIELDS = {
    "reason": "The reason",
    "note": "The note",
    "code": "The code",
    "quote_start": "The quote's start",
    "quote_end": "The quote's end",
}


def _typed(form: Any, *fields: str) -> dict[str, str]:
    """What a reviewer typed into these fields, to show again in the form (as long as a note may be)."""
    return {k: str(form.get(k) or "")[:NOTE_CHARS] for k in fields}


def _first_error(exc: Exception) -> str:
    """What is wrong with a form, naming the field (a decision refused says so in its own words)."""
    if isinstance(exc, (FormError, QcodeError)):
        return str(exc)
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        where = error.get("loc") or ()
        field = FIELDS.get(str(where[0])) if where else None
        if field is None:
            return str(error.get("msg", "invalid input")).removeprefix("Value error, ")
        if error.get("type") == "string_too_long":
            return f"{field} is too long: at most {error.get('ctx', {}).get('max_length', 0):,} characters."
        if error.get("type") in ("greater_than_equal", "less_than_equal", "int_parsing"):
            return f"{field} is not a place in the transcript: select the quote again."
        return f"{field}: {str(error.get('msg', 'invalid input')).removeprefix('Value error, ')}."
    return "The form had a value that is not a number."


def server_config(app: FastAPI, host: str, port: int, trusted_proxies: Sequence[str] = ()) -> Any:
    """uvicorn's configuration for the app. X-Forwarded-For and X-Forwarded-Proto are read only from
    the proxies named (by default from none, not even this machine): from anyone else they are
    what the client says, and the sign-in limit per address would count whatever address it made up."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        server_header=False,
        proxy_headers=bool(trusted_proxies),
        forwarded_allow_ips=list(trusted_proxies) or None,
    )


def trusted_proxies(given: Sequence[str] = ()) -> list[str]:
    """The proxies named with --trusted-proxy, else in QCODE_TRUSTED_PROXIES (comma-separated)."""
    named = list(given) or (os.environ.get("QCODE_TRUSTED_PROXIES") or "").split(",")
    return [p.strip() for p in named if p.strip()]


def serve(db: str | None, host: str, port: int, proxies: Sequence[str] = ()) -> None:
    """Run the app with uvicorn until interrupted."""
    import uvicorn

    secret = os.environ.get("QCODE_SECRET_KEY")
    app = create_app(db, secret_key=secret, secure_cookies=os.environ.get("QCODE_SECURE_COOKIES") == "1")
    uvicorn.Server(server_config(app, host, port, proxies)).run()
