"""The one error tree of qbo-collector.

    QboCollectorError              root; the docstring is the default message
    ├── ConfigError                a setting is missing or malformed (names the variable)
    ├── InvalidInput               a person's or a peer's input was refused (form, webhook, CLI)
    ├── ReconnectNeeded            the company's QuickBooks grant is gone; a person must reconnect
    ├── TransientFailure           nothing happened; trying again later may work (429, 5xx, network)
    └── PermanentFailure           trying again will not help (invalid address, opted out, fault 2xxx)

Messages are sentences a person can act on. Lower libraries' errors are translated once,
at the adapter that calls them (``with map_qbo_errors(): ...``), never deeper.
"""

from __future__ import annotations


class QboCollectorError(Exception):
    """Something went wrong in qbo-collector."""

    def __init__(self, message: str | None = None, **context: object) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.context = context
        super().__init__(self.message)


class ConfigError(QboCollectorError):
    """The configuration is incomplete or malformed."""

    def __init__(self, message: str | None = None, *, variable: str | None = None, **context: object) -> None:
        self.variable = variable
        super().__init__(message, variable=variable, **context)


class InvalidInput(QboCollectorError):
    """The input was refused."""

    def __init__(self, message: str | None = None, *, field: str | None = None, **context: object) -> None:
        self.field = field
        super().__init__(message, field=field, **context)


class ReconnectNeeded(QboCollectorError):
    """The QuickBooks connection was revoked or expired: reconnect the company on the settings page."""


class TransientFailure(QboCollectorError):
    """A temporary failure: nothing was done, and trying again later may work."""

    def __init__(self, message: str | None = None, *, retry_after: float | None = None, **context: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, retry_after=retry_after, **context)


class PermanentFailure(QboCollectorError):
    """A permanent failure: trying again will not help."""

    def __init__(self, message: str | None = None, *, code: str | int | None = None, **context: object) -> None:
        self.code = code
        super().__init__(message, code=code, **context)
