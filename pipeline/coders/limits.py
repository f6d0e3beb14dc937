"""Client-side rate limits: requests and tokens per minute, and the server's own (`Backoff`).

A generic cell-rate limiter (GCRA): each acquisition of `cost` units reserves
`cost * 60 / per_minute` seconds of the schedule, with a burst of `burst`
units allowed ahead of it. It keeps no per-loop state, so one limiter serves
every batch of a run even though each batch runs its own event loop.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import threading
import time
from collections.abc import Mapping


class RateLimiter:
    def __init__(self, per_minute: float, burst: float | None = None):
        if per_minute <= 0:
            raise ValueError("a rate limit must be positive")
        self.interval = 60.0 / per_minute
        self.burst = burst if burst is not None else max(1.0, per_minute / 60.0)
        self._theoretical_arrival = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self, cost: float = 1.0) -> float:
        """Reserve `cost` units; return how many seconds to wait before using them."""
        with self._lock:
            now = time.monotonic()
            tat = max(self._theoretical_arrival, now)
            self._theoretical_arrival = tat + cost * self.interval
            return max(0.0, tat - (self.burst - 1) * self.interval - now)

    async def acquire(self, cost: float = 1.0) -> None:
        wait = self.reserve(cost)
        if wait > 0:
            await asyncio.sleep(wait)


class Backoff:
    """What a rate limit says to every request of a run: after a 429, none is sent before the
    server's reset, and then they come back one at a time, `spacing` apart, instead of all at the
    same instant (and straight into the next 429)."""

    def __init__(self, spacing: float = 0.05):
        self.spacing = spacing
        self._until = 0.0
        self._next_slot = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    async def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            if self._until <= now:
                return
            slot = max(self._until, self._next_slot)
            self._next_slot = slot + self.spacing
        await asyncio.sleep(slot - now)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait, from the headers providers send: `retry-after-ms`,
    `retry-after` (seconds or a date), else OpenAI's `x-ratelimit-reset-requests` and
    `-tokens` ("1s", "6m0s", "20ms"): of the limit whose `x-ratelimit-remaining-*` is 0, else the
    sooner of the two."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            try:
                return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                continue
    resets = {}
    for kind in ("requests", "tokens"):
        value = (headers.get(f"x-ratelimit-reset-{kind}") or "").strip()
        parts = _DURATION.findall(value)
        if parts and _DURATION.sub("", value) == "":
            resets[kind] = sum(float(n) * _UNIT[u] for n, u in parts)
    # the limit that ran out is the one to wait for: its remaining count is 0
    spent = [resets[k] for k in resets if (headers.get(f"x-ratelimit-remaining-{k}") or "").strip() == "0"]
    if spent:
        return max(spent)
    return min(resets.values()) if resets else None
