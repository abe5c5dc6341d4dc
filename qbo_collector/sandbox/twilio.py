"""Twilio stand-in (skeleton; filled in next)."""

from __future__ import annotations

import flask

from qbo_collector.sandbox import common


class TwilioStandIn:
    def __init__(self, clock: common.Clock, faults: common.FaultKnobs, log: common.RequestLog,
                 *, accounts: dict[str, str] | None = None) -> None:
        self.clock, self.faults, self.log = clock, faults, log
        self.accounts = dict(accounts or {"AC" + "0" * 32: "sandbox-auth-token"})
        self.messages: list[dict] = []
        self.inbound_webhook_url: str | None = None

    def blueprint(self) -> flask.Blueprint:
        return flask.Blueprint("twilio", __name__)

    def flush(self, timeout: float = 10.0) -> None:
        return None
