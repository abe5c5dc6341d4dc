"""SendGrid stand-in (skeleton; filled in next)."""

from __future__ import annotations

import flask

from qbo_collector.sandbox import common


class SendGridStandIn:
    def __init__(self, clock: common.Clock, faults: common.FaultKnobs, log: common.RequestLog,
                 *, api_keys: set[str] | None = None) -> None:
        self.clock, self.faults, self.log = clock, faults, log
        self.api_keys = set(api_keys or {"SG.sandbox-key"})
        self.messages: list[dict] = []
        self.event_webhook_url: str | None = None

    def blueprint(self) -> flask.Blueprint:
        return flask.Blueprint("sendgrid", __name__)

    def flush(self, timeout: float = 10.0) -> None:
        return None
