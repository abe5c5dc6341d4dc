"""The program's idea of now: UTC wall time, plus an offset only the demo moves ("advance one day").

Pure code never calls this — it takes ``now``/``today`` as arguments (invariant 6). The
scheduler, the dispatcher's entry points and the demo read it here, once, and pass it down.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

_lock = threading.Lock()
_offset = timedelta(0)


def now() -> datetime:
    with _lock:
        return datetime.now(timezone.utc) + _offset


def offset() -> timedelta:
    with _lock:
        return _offset


def advance(delta: timedelta) -> None:
    """Move this process's clock forward (the demo's "advance one day"; tests). Never backwards."""
    global _offset
    if delta < timedelta(0):
        raise ValueError("the clock only moves forward")
    with _lock:
        _offset += delta


def reset() -> None:
    global _offset
    with _lock:
        _offset = timedelta(0)
