"""Helpers of the dispatch tests (no tests here): a synced sandbox company, the web app serving the
provider webhooks on loopback, settings pointing SendGrid and Twilio at the sandbox's stand-ins.
"""

from __future__ import annotations

import datetime as dt
import threading
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from werkzeug.serving import WSGIRequestHandler, make_server

from qbo_collector import config, dispatch, rules
from qbo_collector.db import models
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database
from qbo_collector.sandbox import server
from qbo_collector.sync import run as sync_run
from tests.integration import oauth_helpers
from tests.integration import test_sync_support as support

FAST_SEND = dispatch.SendRetry(attempts=3, initial_wait=0.01, max_wait=0.05)
SMALL = server.CompanySpec(name="Sandbox Company US", country="US", currency="USD", timezone="America/Los_Angeles",
                           language="en", customers=12, invoices=40, payments=15, seed=11)


def every_day_policy(base: str = "firm", **changes: Any) -> dict[str, Any]:
    """A preset whose messages may go out any day (tests must not depend on today's weekday or holidays)."""
    data = rules.PRESETS[base].model_dump(mode="json")
    data["send_window"] = {"hour": 9, "minute": 0, "weekdays": [0, 1, 2, 3, 4, 5, 6], "skip_holidays": False}
    data.update(changes)
    return data


def text_and_email_policy() -> dict[str, Any]:
    """Every step by email and by text (the firm preset's later steps also ask for a letter task)."""
    data = every_day_policy("firm")
    data["steps"] = [{**step, "channels": ["email", "sms"]} for step in data["steps"]]
    return data


class _Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class WebServer:
    """The Flask app on a loopback port, for the stand-ins' webhooks (the port is known before the app exists)."""

    def __init__(self) -> None:
        self.app: Any = None
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_Quiet)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _wsgi(self, environ: Any, start_response: Any) -> Any:
        return self.app(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Env:
    sb: server.Sandbox
    settings: config.Settings
    db: Database
    vault: Vault
    realm: str
    web: WebServer | None

    def now_at(self, hour: int, days: int = 0) -> dt.datetime:
        """``hour``:00 in the company's zone on the sandbox's local today (+ ``days``), in UTC."""
        zone = zoneinfo.ZoneInfo(self.sb.intuit.companies[self.realm].timezone)
        today = self.sb.clock.now().astimezone(zone).date() + dt.timedelta(days=days)
        return dt.datetime(today.year, today.month, today.day, hour, tzinfo=zone).astimezone(dt.timezone.utc)

    def run(self, now: dt.datetime | None = None, **kwargs: Any) -> dispatch.RunSummary:
        return dispatch.run_company(self.settings, self.db, self.vault, self.realm, now=now or self.now_at(12),
                                    retry=FAST_SEND, qbo_policy=support.FAST, limiter=support.UNLIMITED, **kwargs)

    def sync(self) -> None:
        summary = sync_run.sync_company(self.settings, self.db, self.vault, self.realm, policy=support.FAST,
                                        limiter=support.UNLIMITED)
        assert summary.ok, summary.errors

    def rows(self, **where: Any) -> list[models.Outbox]:
        with self.db.session() as s:
            q = select(models.Outbox).order_by(models.Outbox.id)
            for k, v in where.items():
                q = q.where(getattr(models.Outbox, k) == v)
            rows = list(s.scalars(q))
            for r in rows:
                s.expunge(r)
            return rows

    def flush(self) -> None:
        self.sb.sendgrid.flush()
        self.sb.twilio.flush()


def provider_settings(sb: server.Sandbox, public_url: str | None, *, email: bool = True, sms: bool = True) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if public_url:
        values["qbo_collector_public_url"] = public_url
    if email:
        values.update(sendgrid_api_key=sb.sendgrid.api_key, sendgrid_api_host=sb.sendgrid_host,
                      sendgrid_from_email="billing@maple.example",
                      sendgrid_webhook_public_key=sb.sendgrid.public_key_base64)
    if sms:
        values.update(twilio_account_sid=sb.twilio.account_sid, twilio_auth_token=sb.twilio.auth_token,
                      twilio_from_number="+15017122661", twilio_api_base_url=sb.twilio_base_url)
    return values


def quiet_env(sandbox_factory: Any, settings_factory: Any, db: Database) -> Iterator[Env]:
    """A fixture's body: the SMALL company synced, on ``every_day_policy`` with no gap between contacts
    and no late alerts (``env = pytest.fixture(ds.quiet_env, name="env")``)."""
    made = build(sandbox_factory(companies=[SMALL]), settings_factory, db,
                 policy=every_day_policy(min_gap_days=0, alert_owner_when_late=False))
    yield made
    stop([made])


def invoice(env: Env, customer_id: str, due: dt.date, amount: float = 500.0) -> dict[str, Any]:
    """A new QuickBooks invoice of ``amount`` for the customer, dated 30 days before ``due`` and emailed."""
    sb, realm = env.sb, env.realm
    item = next(iter(sb.intuit.entities(realm, "Item")))
    return sb.intuit.create(realm, "Invoice", {
        "CustomerRef": {"value": customer_id}, "TxnDate": (due - dt.timedelta(days=30)).isoformat(),
        "DueDate": due.isoformat(), "EmailStatus": "EmailSent",
        "Line": [{"Amount": amount, "DetailType": "SalesItemLineDetail",
                  "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": amount}}]})


def morning_text_env(sandbox_factory: Any, settings_factory: Any, db: Database) -> Env:
    """The SMALL company on ``text_and_email_policy`` with no gap and no late alerts, sending at 8:00: a
    run at 8:30 in Los Angeles leaves a text to a Honolulu mobile (6:30 there) waiting for 8:00 there."""
    policy = text_and_email_policy()
    policy.update(min_gap_days=0, alert_owner_when_late=False)
    policy["send_window"]["hour"] = 8
    return build(sandbox_factory(companies=[SMALL]), settings_factory, db, policy=policy)


def customer_page(env: Env, customer_id: str, language: str = "en") -> str:
    """The customer's page as an owner reading ``language`` sees it."""
    from tests.integration.test_pages_support import browser

    reader = browser(env.web.app, env.db, f"owner-{language}@maple.example", realm=env.realm, language=language)
    return reader.get(f"/companies/{env.realm}/customers/{customer_id}").get_data(as_text=True)


def pay_unapplied(env: Env, customer_id: str, amount: Any) -> dict[str, Any]:
    """The customer's money recorded in QuickBooks without applying it to any invoice."""
    payment = env.sb.intuit.create(env.realm, "Payment", {"CustomerRef": {"value": customer_id},
                                                          "TotalAmt": float(amount)})
    assert float(payment["UnappliedAmt"]) == float(amount)
    return payment


def stop(envs: list[Env]) -> None:
    """Stop the web stand-ins of the environments a fixture built, once its test is over."""
    for env in envs:
        if env.web is not None:
            env.web.stop()


def build(sb: server.Sandbox, settings_factory: Any, db: Database, *, web: bool = True, email: bool = True,
          sms: bool = True, company_settings: dict[str, Any] | None = None,
          policy: dict[str, Any] | None = None) -> Env:
    realm = next(iter(sb.intuit.companies))
    server_ = WebServer() if web else None
    settings = oauth_helpers.sandbox_settings(settings_factory, sb, **provider_settings(
        sb, server_.url if server_ else None, email=email, sms=sms))
    vault = Vault(settings.secret_key())
    if server_ is not None:
        from web import create_app

        server_.app = create_app(settings, db=db, test_config={"TESTING": True})
        sb.sendgrid.event_webhook_url = f"{server_.url}/webhooks/sendgrid"
        sb.twilio.inbound_webhook_url = f"{server_.url}/webhooks/twilio/inbound"
    oauth_helpers.connect(settings, db, vault, realm=realm, sandbox=sb)
    env = Env(sb=sb, settings=settings, db=db, vault=vault, realm=realm, web=server_)
    env.sync()
    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
        company.settings = {"owner_email": "owner@maple.example", "sender_name": "Sam Patel",
                            "reply_to": "billing@maple.example", **(company_settings or {})}
        company.policy = policy if policy is not None else every_day_policy()
    return env
