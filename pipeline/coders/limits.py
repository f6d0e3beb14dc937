"""Client-side rate limits: requests and tokens per minute.

A generic cell-rate limiter (GCRA): each acquisition of `cost` units reserves
`cost * 60 / per_minute` seconds of the schedule, with a burst of `burst`
units allowed ahead of it. It keeps no per-loop state, so one limiter serves
every batch of a run even though each batch runs its own event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time


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
