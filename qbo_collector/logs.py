"""Logging that cannot leak secrets.

Every token or key the program handles is registered with ``secret()``; a log-record
factory replaces registered values (and anything shaped like a bearer header) in every
record of every logger, the vendor libraries' debug logs included, before any handler —
ours, pytest's or a user's — sees it.
"""

from __future__ import annotations

import logging
import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_BEARER = re.compile(r"(?i)(bearer\s+|basic\s+|(?:access|refresh)_token['\"]?\s*[:=]\s*['\"]?)[A-Za-z0-9._~+/=-]{8,}")
_previous_factory = logging.getLogRecordFactory()


def secret(value: str | None) -> str | None:
    """Register ``value`` so that it never appears in a log line; returns it unchanged."""
    global _pattern
    if value and len(value) >= 6:
        with _lock:
            if value not in _secrets:
                _secrets.add(value)
                _pattern = re.compile("|".join(re.escape(s) for s in sorted(_secrets, key=len, reverse=True)))
    return value


def redact(text: str) -> str:
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub("[redacted]", text)
    return _BEARER.sub(lambda m: m.group(1) + "[redacted]", text)


def _factory(*args, **kwargs):  # type: ignore[no-untyped-def]
    record = _previous_factory(*args, **kwargs)
    try:
        message = record.getMessage()
    except Exception:  # a malformed record stays as it is; logging reports it itself
        return record
    cleaned = redact(message)
    if cleaned != message or record.args:
        record.msg, record.args = cleaned, None
    return record


def install() -> None:
    """Idempotent: put the redacting factory in place (called on import of the package's entry points)."""
    if logging.getLogRecordFactory() is not _factory:
        logging.setLogRecordFactory(_factory)


install()
