"""`qbo-collector demo`: the whole program on the embedded sandbox and SQLite, in one command.

Starts the sandbox (Intuit, SendGrid and Twilio stand-ins) with a French and an English demo
company, serves the web app, connects both companies through the real OAuth flow (authorize →
consent → redirect to our own ``/connect/callback``), syncs them, and prints the URL and login.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

from qbo_collector import config, errors
from qbo_collector.db import migrate
from qbo_collector.db.session import Database
from qbo_collector.sandbox import server

log = logging.getLogger(__name__)
DEMO_EMAIL = "demo@example.com"

COMPANIES = (
    server.CompanySpec(name="Boulangerie Martin SARL", country="FR", currency="EUR", timezone="Europe/Paris",
                       language="fr", customers=40, invoices=240, payments=150, seed=101),
    server.CompanySpec(name="Maple Street Plumbing", country="US", currency="USD", timezone="America/Chicago",
                       language="en", customers=40, invoices=240, payments=150, seed=202),
)


@dataclass
class Demo:
    settings: config.Settings
    db: Database
    sandbox: server.Sandbox
    realms: list[str]
    password: str
    url: str
    stop: Callable[[], None]
    ticker: object = None

    def advance_day(self) -> dict[str, int]:
        """Move both clocks a day on, let simulated customers pay and open, then tick at once."""
        return advance_day(self)


def advance_day(demo: "Demo", *, seed: int | None = None) -> dict[str, int]:
    import random
    from datetime import timedelta

    from qbo_collector import clock

    rng = random.Random(seed if seed is not None else int(clock.now().timestamp()) // 86400)
    clock.advance(timedelta(days=1))
    demo.sandbox.clock.advance(timedelta(days=1))
    paid = opened = 0
    for realm in demo.realms:
        today = demo.sandbox.clock.now().date().isoformat()
        for invoice in demo.sandbox.intuit.entities(realm, "Invoice"):
            overdue = (invoice.get("DueDate") or today) < today
            if float(invoice.get("Balance") or 0) > 0 and overdue and rng.random() < 0.06:
                demo.sandbox.intuit.pay_invoice(realm, invoice["Id"])
                paid += 1
    sendgrid = demo.sandbox.sendgrid
    for message in list(sendgrid.messages if sendgrid is not None else [])[-200:]:
        if rng.random() < 0.5:
            sendgrid.open(message["message_id"])
            opened += 1
    report = demo.ticker.tick() if demo.ticker is not None else None
    return {"paid": paid, "opened": opened, "done": len(report.done) if report else 0,
            "failed": len(report.failed) if report else 0}


def _demo_blueprint(get_demo: Callable[[], "Demo | None"]):  # type: ignore[no-untyped-def]
    """``/demo``: today's demo date and the "advance one day" button (login + CSRF like every page).

    Advancing moves the clock of the whole process and runs the scheduler for every company, so
    only a user who may change every company (an admin, or the owner of each) may press it; any
    other user gets 403, like a viewer who posts on a company page, and the refusal is logged.
    """
    from flask import Blueprint, abort, current_app, flash, redirect, render_template_string, url_for
    from flask_login import current_user
    from markupsafe import escape

    from qbo_collector import clock, users

    bp = Blueprint("demo", __name__, url_prefix="/demo")

    def may_advance() -> bool:
        with current_app.config["QBO"].db.reading() as s:
            return users.owns_every_company(s, current_user.id)

    @bp.get("")
    def page():  # type: ignore[no-untyped-def]
        demo = get_demo()
        return render_template_string(_DEMO_PAGE, today=clock.now().date(), may_advance=may_advance(),
                                      sandbox=escape(demo.sandbox.url if demo else ""))

    @bp.post("/advance")
    def advance():  # type: ignore[no-untyped-def]
        if not may_advance():
            log.warning("demo advance refused: user %s is not an owner of every company, and the demo clock "
                        "runs the scheduler for all of them", current_user.id)
            abort(403, description="Only an owner of every company can advance the demo clock: "
                                   "it runs reminders, fees and notes for all of them.")
        demo = get_demo()
        if demo is None:
            return ("The demo is still starting.", 503)
        result = demo.advance_day()
        log.info("demo advanced one day by user %s: now %s", current_user.id, clock.now().date().isoformat())
        flash(f"One day later: {result['paid']} invoice(s) paid by customers, {result['opened']} email(s) opened, "
              f"{result['done']} unit(s) of work done.")
        return redirect(url_for("demo.page"))

    return bp


_DEMO_PAGE = """{% extends "base.html" %}
{% block content %}
<h1>Demo clock</h1>
<p>It is <strong>{{ today.isoformat() }}</strong> in the demo. Advancing a day lets the sandbox's customers pay
some overdue invoices and open some reminders, then runs the scheduler at once: syncs, reminders, fees and notes
happen as they would overnight.</p>
{% if may_advance %}
<form method="post" action="{{ url_for('demo.advance') }}">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
  <button type="submit" class="primary">Advance one day</button>
</form>
{% else %}
<p>Only an owner of every company can advance the demo clock: it runs reminders, fees and notes for all of them.</p>
{% endif %}
<p><small>Sandbox (QuickBooks, SendGrid and Twilio stand-ins): {{ sandbox }}</small></p>
{% endblock %}"""


def _password(home: Path) -> str:
    path = home / "demo-password"
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def start(home: Path, *, port: int = 8000, host: str = "127.0.0.1", sync: bool = True, schedule: bool = True) -> Demo:
    """Bring the demo up in background threads and return its handles (tests drive it this way)."""
    import waitress.server

    from qbo_collector import users
    from web import create_app

    home.mkdir(parents=True, exist_ok=True)
    for stale in home.glob("demo.db*"):  # a demo starts from a fresh mirror; the key and password stay
        stale.unlink()
    sandbox = server.Sandbox(seed=2026, auto_approve=True)
    realms = [sandbox.add_company(spec) for spec in COMPANIES]
    _add_billed_jobs(sandbox, realms[1])
    sandbox.start(host="127.0.0.1", port=0)

    http = waitress.server.create_server(lambda environ, start_response: app(environ, start_response),
                                         host=host, port=port, threads=8, ident="qbo-collector")
    url = f"http://{host}:{http.effective_port}"
    settings = config.load(
        env_file=None, qbo_collector_home=home, qbo_collector_database_url=f"sqlite:///{(home / 'demo.db').resolve()}",
        qbo_collector_public_url=url, intuit_client_id=sandbox.client_id, intuit_client_secret=sandbox.client_secret,
        intuit_environment=sandbox.discovery_url, intuit_api_base_url=sandbox.api_base_url,
        intuit_redirect_uri=f"{url}/connect/callback", intuit_webhook_verifier_token=sandbox.webhook_verifier_token,
        sendgrid_api_key=getattr(sandbox.sendgrid, "api_key", None) or "SG.demo-key",
        sendgrid_webhook_public_key=getattr(sandbox.sendgrid, "public_key_base64", None), sendgrid_api_host=sandbox.sendgrid_host, sendgrid_from_email="reminders@example.com",
        twilio_account_sid=_twilio_sid(sandbox), twilio_auth_token=_twilio_token(sandbox),
        twilio_from_number="+15005550006", twilio_api_base_url=sandbox.twilio_base_url)
    db = Database(settings.database_url)
    migrate.upgrade(db)
    app = create_app(settings, db=db)
    holder: dict[str, Demo] = {}
    app.register_blueprint(_demo_blueprint(lambda: holder.get("demo")))
    thread = threading.Thread(target=http.run, name="demo-web", daemon=True)
    thread.start()
    sandbox.webhook_url = f"{url}/webhooks/intuit"
    if sandbox.sendgrid is not None:
        sandbox.sendgrid.event_webhook_url = f"{url}/webhooks/sendgrid"
    if sandbox.twilio is not None:
        sandbox.twilio.inbound_webhook_url = f"{url}/webhooks/twilio/inbound"
        # a reply answers the number that texted it
        sandbox.twilio.phone_number = settings.twilio_from_number or sandbox.twilio.phone_number

    password = _password(home)
    with db.session() as s:
        if s.query(users.models.User).filter_by(email=DEMO_EMAIL).one_or_none() is None:
            users.add_user(s, DEMO_EMAIL, password, admin=True)

    for realm in realms:
        _connect_through_oauth(settings, db, sandbox, realm)
    if sync:
        _sync_all(settings, db, realms)

    from qbo_collector import scheduler
    from qbo_collector.db.secrets import Vault

    ticker = scheduler.Ticker(settings, db, Vault(settings.secret_key()))
    background = scheduler.start_background(ticker) if schedule else None
    if background is not None:
        app.config["QBO"].extras["scheduler"] = background

    def stop() -> None:
        if background is not None:
            ticker.stopping.set()
            background.shutdown(wait=True)
            ticker.shutdown()
        http.close()
        sandbox.stop()
        db.dispose()

    demo = Demo(settings=settings, db=db, sandbox=sandbox, realms=realms, password=password, url=url, stop=stop,
                ticker=ticker)
    holder["demo"] = demo
    return demo


FAMILY = ("Hartley Property Management", ("12 Elm Street", "48 Oak Avenue"))


def _add_billed_jobs(sandbox: server.Sandbox, realm: str) -> None:
    """A property manager with two jobs billed with it (QuickBooks' ``BillWithParent``), each owing a late
    invoice, and the manager's payment for the older one recorded on the manager, not applied: the demo
    shows the jobs reminded at the manager's address, and the invoice that money pays left alone."""
    from datetime import timedelta

    parent_name, jobs = FAMILY
    today = sandbox.clock.now().date()
    item = next(iter(sandbox.intuit.entities(realm, "Item")))
    parent = sandbox.intuit.create(realm, "Customer", {
        "DisplayName": parent_name, "CompanyName": parent_name, "BillAddr": {"Country": "US"},
        "PrimaryEmailAddr": {"Address": "ap@hartley-pm.example"}})
    owed = []
    for n, name in enumerate(jobs):
        job = sandbox.intuit.create(realm, "Customer", {
            "DisplayName": name, "Job": True, "BillWithParent": True, "ParentRef": {"value": parent["Id"]},
            "BillAddr": {"Country": "US"}})
        due = today - timedelta(days=20 - 12 * n)  # 20 and 8 days late
        amount = 1250.0 - 400 * n
        owed.append(sandbox.intuit.create(realm, "Invoice", {
            "CustomerRef": {"value": job["Id"]}, "TxnDate": (due - timedelta(days=30)).isoformat(),
            "DueDate": due.isoformat(), "EmailStatus": "EmailSent",
            "Line": [{"Amount": amount, "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": 1, "UnitPrice": amount}}]}))
    sandbox.intuit.create(realm, "Payment", {"CustomerRef": {"value": parent["Id"]}, "TotalAmt": owed[0]["Balance"]})


def _twilio_sid(sandbox: server.Sandbox) -> str | None:
    accounts = getattr(sandbox.twilio, "accounts", None) or {}
    return next(iter(accounts), None)


def _twilio_token(sandbox: server.Sandbox) -> str | None:
    accounts = getattr(sandbox.twilio, "accounts", None) or {}
    return next(iter(accounts.values()), None)


def _connect_through_oauth(settings: config.Settings, db: Database, sandbox: server.Sandbox, realm: str) -> None:
    """The real flow: our authorization URL → the sandbox's consent (auto-approved) → our callback."""
    from qbo_collector.sync import auth

    sandbox.next_realm = realm
    url, _state = auth.begin(settings, db, origin="cli")
    response = requests.get(url, timeout=30)  # follows the redirect into /connect/callback
    if response.status_code != 200 or "is connected" not in response.text:
        raise errors.TransientFailure(f"The demo could not connect realm {realm} (HTTP {response.status_code}).")


def _sync_all(settings: config.Settings, db: Database, realms: list[str]) -> None:
    try:
        from qbo_collector.sync import run as sync_run
    except ImportError:
        log.warning("sync engine not available: the demo companies are connected but not mirrored")
        return
    from qbo_collector.db.secrets import Vault

    vault = Vault(settings.secret_key())
    for realm in realms:
        summary = sync_run.sync_company(settings, db, vault, realm, full=True)
        print(f"  synced {summary.line()}", flush=True)


def main(home: Path, *, port: int, host: str) -> int:
    print("Starting the qbo-collector demo (sandbox Intuit, SendGrid and Twilio on loopback)…", flush=True)
    demo = start(home, port=port, host=host)
    print(f"""
qbo-collector demo is running.

  Open:      {demo.url}
  Log in:    {DEMO_EMAIL}
  Password:  {demo.password}   (kept in {home / 'demo-password'})
  Sandbox:   {demo.sandbox.url}  (QuickBooks, SendGrid and Twilio stand-ins)
  Clock:     {demo.url}/demo  ("Advance one day": customers pay and open emails, reminders and fees follow)

Two sandbox companies were connected through the OAuth flow: {', '.join(demo.realms)}.
Press Ctrl-C to stop.
""", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopping…")
    finally:
        demo.stop()
    return 0
