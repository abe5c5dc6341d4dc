"""Headless Chromium (Debian's, never a downloaded one) driving the real app over HTTP, against the sandbox.

The app is served by waitress on a loopback port; QuickBooks, SendGrid and Twilio are the
sandbox stand-ins. Screenshots go to ``test-artifacts/screenshots/`` (git-ignored).
Without /usr/bin/chromium the tests are skipped with that reason, except under CI=true,
where a missing browser is a failure (``.ci/browser-setup`` installs it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from qbo_collector import config, users
from qbo_collector.db import migrate
from qbo_collector.db.session import Database
from qbo_collector.sandbox import server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots"
EMAIL, PASSWORD = "owner@example.com", "correct horse battery"

pytestmark = pytest.mark.browser


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("CI is set but /usr/bin/chromium is missing: run .ci/browser-setup first.")
    pytest.skip("Debian's Chromium is not installed (/usr/bin/chromium); `sudo .ci/browser-setup` installs it.")


@dataclass
class Site:
    url: str
    settings: config.Settings
    db: Database
    sandbox: server.Sandbox
    realms: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _require_chromium()
    import waitress.server

    from web import create_app

    home = tmp_path_factory.mktemp("browser-home")
    sandbox = server.Sandbox(seed=2026, auto_approve=False, rate_limit_per_second=None, rate_limit_per_minute=None,
                             batch_limit_per_minute=None)
    realms = {
        "fr": sandbox.add_company(server.CompanySpec(name="Boulangerie Martin SARL", country="FR", currency="EUR",
                                                     timezone="Europe/Paris", language="fr", customers=12,
                                                     invoices=60, payments=30, seed=101)),
        "us": sandbox.add_company(server.CompanySpec(name="Maple Street Plumbing", country="US", currency="USD",
                                                     timezone="America/Chicago", language="en", customers=12,
                                                     invoices=60, payments=30, seed=202)),
    }
    sandbox.start(host="127.0.0.1", port=0)
    app_holder: dict[str, object] = {}
    http = waitress.server.create_server(lambda environ, start: app_holder["app"](environ, start),  # type: ignore[operator]
                                         host="127.0.0.1", port=0, threads=4, ident="qbo-collector-test")
    url = f"http://127.0.0.1:{http.effective_port}"
    settings = config.load(
        env_file=None, qbo_collector_home=home, qbo_collector_database_url=f"sqlite:///{home / 'app.db'}",
        qbo_collector_public_url=url, intuit_client_id=sandbox.client_id, intuit_client_secret=sandbox.client_secret,
        intuit_environment=sandbox.discovery_url, intuit_api_base_url=sandbox.api_base_url,
        intuit_redirect_uri=f"{url}/connect/callback", intuit_webhook_verifier_token=sandbox.webhook_verifier_token,
        sendgrid_api_key=sandbox.sendgrid.api_key, sendgrid_api_host=sandbox.sendgrid_host,
        sendgrid_from_email="reminders@example.com")
    db = Database(settings.database_url)
    migrate.upgrade(db)
    app_holder["app"] = create_app(settings, db=db)
    thread = threading.Thread(target=http.run, name="browser-test-web", daemon=True)
    thread.start()
    with db.session() as s:
        users.add_user(s, EMAIL, PASSWORD, admin=True)
    try:
        yield Site(url=url, settings=settings, db=db, sandbox=sandbox, realms=realms)
    finally:
        http.close()
        sandbox.stop()
        db.dispose()


@pytest.fixture(scope="module")
def browser(site: Site):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser, site: Site):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def shot(page, name: str) -> Path:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
