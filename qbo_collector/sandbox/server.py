"""The sandbox: Intuit (OAuth + Accounting API), SendGrid and Twilio stand-ins on one loopback port.

    sb = Sandbox(seed=7, auto_approve=True)
    realm = sb.add_company(CompanySpec(name="Boulangerie Martin", country="FR", currency="EUR",
                                       timezone="Europe/Paris", language="fr", customers=50, seed=1))
    sb.start()
    auth = AuthClient(sb.client_id, sb.client_secret, redirect_uri, sb.discovery_url)
    ...
    qb.api_url_v3 = sb.api_base_url
    sb.stop()

The unmodified ``intuitlib`` and ``quickbooks`` clients reach it by configuration only
(``OAUTHLIB_INSECURE_TRANSPORT=1`` is needed for plain http on loopback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import threading
from typing import Any, Sequence

import flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from qbo_collector.sandbox import common, generator, intuit, oauth, store, webhooks

CompanySpec = generator.CompanySpec
LOOPBACK = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass   # the RequestLog is the record; stderr noise would drown test output


class Sandbox:
    """Every stand-in behind one Flask app; see the module docstring."""

    def __init__(self, seed: int = 0, *, auto_approve: bool = True,
                 client_id: str = "sandbox-client-id", client_secret: str = "sandbox-client-secret",
                 redirect_uris: Sequence[str] | None = None,
                 refresh_grace_seconds: float = 120.0,
                 rate_limit_per_second: int | None = 10, rate_limit_per_minute: int | None = 500,
                 batch_limit_per_minute: int | None = 40,
                 reject_old_minorversion: bool = True,
                 webhook_debounce: float = 0.2, clock: common.Clock | None = None) -> None:
        self.seed = seed
        self.auto_approve = auto_approve
        self.client_id, self.client_secret = client_id, client_secret
        self.redirect_uris = list(redirect_uris) if redirect_uris is not None else None
        self.refresh_grace_seconds = refresh_grace_seconds
        self.rate_limit_per_second = rate_limit_per_second
        self.rate_limit_per_minute = rate_limit_per_minute
        self.batch_limit_per_minute = batch_limit_per_minute
        self.reject_old_minorversion = reject_old_minorversion
        self.next_realm: str | None = None
        # 429 bodies cycle through these shapes, as Intuit's answers vary: decide on the HTTP status.
        self.throttle_bodies: tuple[str, ...] = ("Fault", "fault", "xml")
        self.forced_retry_after_seconds = 1.0
        # invoice ids whose PDF QuickBooks cannot make (500, every time), as for a broken custom form
        self.broken_pdfs: set[str] = set()
        # invoice id → the detail of a 400 ValidationFault QuickBooks answers for its PDF (a refusal)
        self.refused_pdfs: dict[str, str] = {}
        self.cdc_deleted_last = True   # as Intuit documents; False interleaves deletions by time
        self.cdc_cap_per = "entity"    # 1000 objects per entity; "response": 1000 in all, as Intuit's docs word it   # Retry-After on injected 429s (real throttles say when the window frees)
        self.clock = clock or common.Clock()
        self.log = common.RequestLog()
        self.intuit_faults = common.FaultKnobs(seed=seed)
        self.oauth_faults = common.FaultKnobs(seed=seed)
        self.sendgrid_faults = common.FaultKnobs(seed=seed)
        self.twilio_faults = common.FaultKnobs(seed=seed)
        self.webhook_url: str | None = None
        self.webhook_verifier_token = "sandbox-verifier-token"
        self.webhook_format = "legacy"
        self.host, self.port = LOOPBACK, 0
        self.intuit = store.IntuitStore(self.clock, base_url=lambda: self.url)
        self.webhooks = webhooks.WebhookSender(
            lambda: (self.webhook_url, self.webhook_verifier_token, self.webhook_format), debounce=webhook_debounce)
        self.intuit.listeners.append(self.webhooks.notify)
        self.oauth = oauth.OAuthServer(self)
        self.api = intuit.Api(self)
        self.sendgrid: Any = self._stand_in("sendgrid", "SendGridStandIn", self.sendgrid_faults)
        self.twilio: Any = self._stand_in("twilio", "TwilioStandIn", self.twilio_faults)
        self.app = self._make_app()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def _stand_in(self, module: str, cls: str, faults: common.FaultKnobs) -> Any:
        # Written by another team; mounted when present so the Intuit part never waits for them.
        try:
            mod = importlib.import_module(f"qbo_collector.sandbox.{module}")
        except ModuleNotFoundError as err:
            if err.name != f"qbo_collector.sandbox.{module}":
                raise
            return None
        return getattr(mod, cls)(self.clock, faults, self.log)

    def _make_app(self) -> flask.Flask:
        app = flask.Flask("qbo_collector.sandbox")
        app.register_blueprint(self.oauth.blueprint())
        app.register_blueprint(self.api.blueprint())
        if self.sendgrid is not None:
            app.register_blueprint(self.sendgrid.blueprint(), url_prefix="/sendgrid")
        if self.twilio is not None:
            app.register_blueprint(self.twilio.blueprint(), url_prefix="/twilio")

        @app.get("/")
        def index() -> flask.Response:
            rows = "".join(f"<li>{c.name} ({c.country}, {c.currency}) — realm {r}</li>"
                           for r, c in self.intuit.companies.items())
            return flask.Response(f"<!doctype html><title>qbo-collector sandbox</title><h1>Sandbox</h1>"
                                  f"<ul>{rows}</ul><p>Discovery: {self.discovery_url}</p>", mimetype="text/html")
        return app

    # --- companies -------------------------------------------------------------------

    def add_company(self, spec: generator.CompanySpec) -> str:
        """Generate a company (dates relative to the sandbox clock) and return its realm id."""
        company = generator.generate(spec, now=self.clock.now())
        with self.intuit.lock:
            while company.realm in self.intuit.companies:
                company.realm = str(int(company.realm) + 1)
            self.intuit.companies[company.realm] = company
        return company.realm

    def connect(self, realm: str) -> dict[str, Any]:
        """Tokens for ``realm`` without the browser dance (benchmarks): the token response body."""
        return self.oauth.issue_tokens_for(realm)

    # --- serving -----------------------------------------------------------------------

    def start(self, host: str = LOOPBACK, port: int = 0) -> Sandbox:
        if host not in (LOOPBACK, "localhost"):
            raise ValueError("The sandbox binds to loopback only.")
        self._server = make_server(LOOPBACK, port, self.app, threaded=True,
                                   request_handler=_QuietHandler)
        self.host, self.port = LOOPBACK, self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.webhooks.stop()
        for stand_in in (self.sendgrid, self.twilio):
            stop = getattr(stand_in, "stop", None)
            if callable(stop):
                stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Sandbox:
        return self if self._server else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def flush_webhooks(self, timeout: float = 10.0) -> bool:
        """Wait until every pending Intuit webhook has been delivered (or given up on)."""
        return self.webhooks.flush(timeout)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def discovery_url(self) -> str:
        return f"{self.url}{oauth.DISCOVERY_PATH}"

    @property
    def api_base_url(self) -> str:
        return f"{self.url}/v3"

    @property
    def sendgrid_host(self) -> str:
        return f"{self.url}/sendgrid"

    @property
    def twilio_base_url(self) -> str:
        return f"{self.url}/twilio"


def main(argv: Sequence[str] | None = None) -> int:
    """``qbo-collector sandbox``: serve the sandbox in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="qbo-collector sandbox", description=main.__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--invoices", type=int, default=300)
    parser.add_argument("--payments", type=int, default=None, help="default: two thirds of --invoices")
    parser.add_argument("--french", action="store_true", help="also add a French company (EUR)")
    parser.add_argument("--auto-approve", action="store_true", help="skip the consent page")
    parser.add_argument("--no-rate-limit", action="store_true")
    args = parser.parse_args(list(argv) if argv is not None else None)
    limits: dict[str, Any] = ({"rate_limit_per_second": None, "rate_limit_per_minute": None,
                               "batch_limit_per_minute": None} if args.no_rate_limit else {})
    sb = Sandbox(seed=args.seed, auto_approve=args.auto_approve, **limits)
    payments = args.payments if args.payments is not None else args.invoices * 2 // 3
    sb.add_company(CompanySpec(name="Sandbox Company US", customers=args.customers, invoices=args.invoices,
                               payments=payments, seed=args.seed))
    if args.french:
        sb.add_company(CompanySpec(name="Boulangerie Martin", country="FR", currency="EUR", timezone="Europe/Paris",
                                   language="fr", customers=args.customers, invoices=args.invoices,
                                   payments=payments, seed=args.seed + 1))
    sb.start(port=args.port)
    print(f"Sandbox on {sb.url}" + ("" if args.auto_approve else " (consent page: approve in the browser)"))
    print(f"  INTUIT_ENVIRONMENT={sb.discovery_url}")
    print(f"  INTUIT_API_BASE_URL={sb.api_base_url}")
    print(f"  INTUIT_CLIENT_ID={sb.client_id}")
    print(f"  INTUIT_CLIENT_SECRET={sb.client_secret}")
    print(f"  SENDGRID_API_HOST={sb.sendgrid_host}")
    print(f"  TWILIO_API_BASE_URL={sb.twilio_base_url}")
    for realm, company in sb.intuit.companies.items():
        print(f"  company {company.name!r}: realm {realm}")
    print("Press Ctrl-C to stop.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sb.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")
    raise SystemExit(main())
