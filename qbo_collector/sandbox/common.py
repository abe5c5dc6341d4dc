"""What every stand-in shares: a movable clock, fault knobs and a request log.

Tests and benchmarks read ``RequestLog`` ("the full sync made 8 query calls") and turn
``FaultKnobs`` to make a vendor fail the way it fails in production.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone


class Clock:
    """Wall-clock UTC time plus an offset that tests (and the demo's "advance one day") move."""

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(timezone.utc) + self._offset

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._offset += delta

    def set_offset(self, delta: timedelta) -> None:
        with self._lock:
            self._offset = delta


@dataclass
class FaultKnobs:
    """Per-service fault injection. Rates are probabilities in [0, 1]; ``force_*`` counts are consumed one per request."""

    error_rate: float = 0.0          # chance of a 500 on any API request
    throttle_rate: float = 0.0       # chance of a 429 on any API request
    timeout_rate: float = 0.0        # chance the server sleeps ``timeout_seconds`` before answering
    latency_seconds: float = 0.0     # added to every request
    timeout_seconds: float = 5.0
    force_429: int = 0
    force_500: int = 0
    force_timeout: int = 0
    force_malformed: int = 0         # next N responses are cut-off JSON
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.seed is not None:   # reproducible fault sequences for chaos tests
            self._rng.seed(self.seed)

    def reset(self) -> None:
        with self._lock:
            self.error_rate = self.throttle_rate = self.timeout_rate = 0.0
            self.latency_seconds = 0.0
            self.force_429 = self.force_500 = self.force_timeout = self.force_malformed = 0

    def draw(self) -> str | None:
        """Decide this request's fate: None, "429", "500", "timeout" or "malformed"."""
        latency = self.latency_seconds
        if latency:
            time.sleep(latency)   # outside the lock: concurrent requests are each delayed, not serialized
        with self._lock:
            for name in ("force_429", "force_500", "force_timeout", "force_malformed"):
                if getattr(self, name) > 0:
                    setattr(self, name, getattr(self, name) - 1)
                    return name.removeprefix("force_")
            r = self._rng.random()
            if r < self.throttle_rate:
                return "429"
            r -= self.throttle_rate
            if r < self.error_rate:
                return "500"
            r -= self.error_rate
            if r < self.timeout_rate:
                return "timeout"
            return None


@dataclass(frozen=True)
class LoggedRequest:
    service: str      # "intuit", "oauth", "sendgrid", "twilio"
    endpoint: str     # "query", "cdc", "batch", "create:invoice", "mail/send", "messages" ...
    method: str
    path: str
    status: int
    realm: str | None
    at: datetime


class RequestLog:
    """Thread-safe log of every request the stand-ins answered."""

    def __init__(self, keep: int = 200_000) -> None:
        self._entries: collections.deque[LoggedRequest] = collections.deque(maxlen=keep)
        self._counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._entries.append(entry)
            self._counts[(entry.service, entry.endpoint)] += 1

    def count(self, service: str | None = None, endpoint: str | None = None, *, realm: str | None = None) -> int:
        with self._lock:
            if realm is None:
                return sum(n for (s, e), n in self._counts.items()
                           if (service is None or s == service) and (endpoint is None or e == endpoint))
            return sum(1 for r in self._entries
                       if r.realm == realm and (service is None or r.service == service)
                       and (endpoint is None or r.endpoint == endpoint))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {f"{s}:{e}": n for (s, e), n in sorted(self._counts.items())}

    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._counts.clear()
