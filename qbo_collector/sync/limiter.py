"""Client-side rate limit: keep each realm under Intuit's 500 requests/min and 10 requests/s,
and its batch requests under 40/min (``BATCHES``, a second limiter a batch also passes).

Sliding windows over the last requests, per realm, shared by every client of this process
(one ``DEFAULT`` limiter). A request counts from the moment it is let through until its
answer arrives (``done``): Intuit counts arrivals, and a thread starved of the GIL between
our clock and the socket would otherwise let two requests arrive closer than we measured.
Another process syncing the same realm is not seen; the server's 429 (retried by the client)
is the backstop for that.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    limit: int
    seconds: float


INTUIT_WINDOWS = (Window(10, 1.02), Window(500, 61.0))
INTUIT_BATCH_WINDOWS = (Window(40, 61.0),)


class RateLimiter:
    def __init__(self, windows: tuple[Window, ...] = INTUIT_WINDOWS, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.windows = windows
        self.clock, self.sleep = clock, sleep
        self._sent: dict[str, collections.deque[list[float]]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds spent waiting (benches print it)

    def delay(self, realm: str) -> tuple[float, list[float] | None]:
        """(seconds to wait, None) — or (0, slot) when the request may go; the slot is counted from now."""
        with self._lock:
            now = self.clock()
            sent = self._sent[realm]
            longest = max(w.seconds for w in self.windows)
            while sent and sent[0][0] <= now - longest:
                sent.popleft()
            wait = 0.0
            for w in self.windows:
                if len(sent) >= w.limit:
                    # the request w.limit places back must leave the window first
                    wait = max(wait, sent[-w.limit][0] + w.seconds - now)
            if wait <= 0:
                slot = [now]
                sent.append(slot)
                return 0.0, slot
            return wait, None

    def acquire(self, realm: str) -> list[float]:
        """Block until a request of ``realm`` may be sent; count it. Pass the result to ``done``."""
        while True:
            wait, slot = self.delay(realm)
            if slot is not None:
                return slot
            self.waited += wait
            self.sleep(wait)

    def done(self, slot: list[float]) -> None:
        """The answer arrived: the request is counted from now (later than Intuit saw it arrive)."""
        with self._lock:
            slot[0] = max(slot[0], self.clock())


DEFAULT = RateLimiter()
BATCHES = RateLimiter(INTUIT_BATCH_WINDOWS)
