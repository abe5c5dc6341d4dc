"""Client-side rate limit: keep each realm under Intuit's 500 requests/min and 10 requests/s.

Sliding windows of the send times of the last requests, per realm, shared by every client
of this process (one ``DEFAULT`` limiter). Another process syncing the same realm is not
seen; the server's 429 (retried by the client) is the backstop for that.
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


# A little slack over Intuit's windows: our send time is not the gateway's arrival time.
INTUIT_WINDOWS = (Window(10, 1.05), Window(500, 61.0))


class RateLimiter:
    def __init__(self, windows: tuple[Window, ...] = INTUIT_WINDOWS, *,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.windows = windows
        self.clock, self.sleep = clock, sleep
        self._sent: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()
        self.waited = 0.0  # total seconds spent waiting (benches print it)

    def delay(self, realm: str) -> float:
        """Seconds to wait before the next request of ``realm`` may go; 0 records the request as sent."""
        with self._lock:
            now = self.clock()
            sent = self._sent[realm]
            longest = max(w.seconds for w in self.windows)
            while sent and sent[0] <= now - longest:
                sent.popleft()
            wait = 0.0
            for w in self.windows:
                if len(sent) >= w.limit:
                    # the request w.limit places back must leave the window first
                    wait = max(wait, sent[-w.limit] + w.seconds - now)
            if wait <= 0:
                sent.append(now)
                return 0.0
            return wait

    def acquire(self, realm: str) -> None:
        """Block until a request of ``realm`` may be sent, and count it."""
        while True:
            wait = self.delay(realm)
            if wait <= 0:
                return
            self.waited += wait
            self.sleep(wait)


DEFAULT = RateLimiter()
