"""Logging that cannot leak secrets.

Every token or key the program handles is registered with ``secret()``; a log-record
factory replaces registered values (and anything shaped like a bearer header) in every
record of every logger, the vendor libraries' debug logs included, before any handler —
ours, pytest's or a user's — sees it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone

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
    if record.exc_info and not record.exc_text:
        # Handlers format the traceback themselves and reuse a cached ``exc_text``: cache a clean one,
        # for an exception's message may hold a secret (a library echoing a rejected request).
        record.exc_text = redact(_plain.formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


_plain = logging.Formatter()


_context: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("qbo_log_context", default={})


@contextlib.contextmanager
def context(**fields: object) -> Iterator[None]:
    """Fields (realm, outbox_id, work…) added to every log line inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _context.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        record.context = " ".join(f"{k}={v}" for k, v in _context.get().items())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the context fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        entry.update(_context.get())
        if record.exc_info:
            entry["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


HANDLER_NAME = "qbo-collector"


def configure(level: int = logging.INFO, *, json_lines: bool | None = None) -> None:
    """Log to stderr: readable lines on a terminal, JSON lines otherwise (for log collectors)."""
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s %(context)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def install() -> None:
    """Idempotent: put the redacting factory in place (called on import of the package's entry points)."""
    if logging.getLogRecordFactory() is not _factory:
        logging.setLogRecordFactory(_factory)


install()
