"""Connecting a company through the real intuit-oauth / python-quickbooks clients against the sandbox."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from intuitlib.client import AuthClient
from sqlalchemy import func, select

from qbo_collector import errors, users
from qbo_collector.db import models
from qbo_collector.sandbox import server
from qbo_collector.sync import auth, tokens
from tests.integration import oauth_helpers
from tests.integration.web_helpers import csrf_token, login, make_user

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sb():
    # OAuth is the subject here; throttling has its own tests (sandbox, sync), and these call
    # TokenManager.call without the retrying client, so Intuit's 10/s limit is lifted.
    sandbox = server.Sandbox(seed=11, auto_approve=True, rate_limit_per_second=None, rate_limit_per_minute=None)
    realm_us = sandbox.add_company(server.CompanySpec(name="Acme Plumbing", country="US", currency="USD",
                                                      timezone="America/Chicago", language="en",
                                                      customers=8, invoices=20, payments=5, seed=3))
    realm_fr = sandbox.add_company(server.CompanySpec(name="Boulangerie Martin", country="FR", currency="EUR",
                                                      timezone="Europe/Paris", language="fr",
                                                      customers=6, invoices=12, payments=4, seed=4))
    sandbox.start(host="127.0.0.1", port=0)
    sandbox.realms = {"us": realm_us, "fr": realm_fr}
    yield sandbox
    sandbox.stop()


@pytest.fixture(autouse=True)
def _reset(sb):
    sb.clock.set_offset(timedelta(0))
    sb.intuit_faults.reset()
    sb.auto_approve = True
    sb.next_realm = None
    yield


@pytest.fixture
def settings(settings_factory, sb):
    return oauth_helpers.sandbox_settings(settings_factory, sb)


def _count(db, model) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_connect_stores_the_company_from_companyinfo_and_encrypts_tokens(settings, db, vault, sb):
    company = oauth_helpers.connect(settings, db, vault, realm=sb.realms["fr"], sandbox=sb)
    with db.session() as s:
        row = s.scalar(select(models.Company).where(models.Company.realm_id == sb.realms["fr"]))
        assert (row.name, row.currency, row.country, row.timezone, row.language) == \
            ("Boulangerie Martin", "EUR", "FR", "Europe/Paris", "fr")
        assert row.status == models.CompanyStatus.connected
        token = row.token
        assert "RT1-" not in token.refresh_token  # ciphertext, not the token
        assert vault.decrypt(token.refresh_token).startswith("RT1-")
        assert token.refresh_hard_expires_at is None or token.refresh_hard_expires_at > token.access_expires_at
        kinds = [a.kind for a in s.scalars(select(models.Activity))]
    assert company.realm_id == sb.realms["fr"] and kinds == ["connected"]


def test_a_first_connection_fills_where_alerts_replies_and_calls_go_and_never_overwrites_them(settings, db, vault, sb):
    """Without these an owner who connected and chose a policy heard nothing: alerts and the weekly
    digest had no address, and customers' replies went to the program's sending address. The person
    who connected gets the alerts (the company's own email from the command line), customers reply to
    the address QuickBooks writes to them from, and the messages give the company's phone. A setting
    someone chose — even cleared to nothing — is kept at the next connection."""
    info = sb.intuit.companies[sb.realms["us"]].info
    expected = {"reply_to": info["CustomerCommunicationEmailAddr"]["Address"],
                "company_phone": info["PrimaryPhone"]["FreeFormNumber"]}
    with db.session() as s:
        user = users.add_user(s, "Owner@Acme.example", "a long enough password")
        user_id = user.id
    oauth_helpers.connect(settings, db, vault, realm=sb.realms["us"], sandbox=sb, user_id=user_id)
    oauth_helpers.connect(settings, db, vault, realm=sb.realms["fr"], sandbox=sb)  # the command line: no person
    with db.session() as s:
        us, fr = (s.scalar(select(models.Company).where(models.Company.realm_id == sb.realms[k])) for k in ("us", "fr"))
        assert us.settings == {"owner_email": "owner@acme.example", **expected}
        fr_info = sb.intuit.companies[sb.realms["fr"]].info
        assert fr.settings["owner_email"] == fr_info["Email"]["Address"]
        us.settings = {**us.settings, "owner_email": "", "reply_to": "billing@acme.example"}
    oauth_helpers.connect(settings, db, vault, realm=sb.realms["us"], sandbox=sb, user_id=user_id)  # a reconnect
    with db.session() as s:
        us = s.scalar(select(models.Company).where(models.Company.realm_id == sb.realms["us"]))
        assert us.settings == {"owner_email": "", "reply_to": "billing@acme.example",
                               "company_phone": expected["company_phone"]}


def test_the_time_zone_send_hour_and_language_set_on_the_page_outlive_a_reconnection(settings, db, vault, sb):
    """QuickBooks gives a zone and a language at each connection; once the owner changed them on the
    Channels page, a reconnection keeps the owner's. A zone the owner left alone follows QuickBooks."""
    from web import create_app

    user_id = make_user(db, "owner@acme.example")
    oauth_helpers.connect(settings, db, vault, realm=sb.realms["us"], sandbox=sb, user_id=user_id)
    realm = sb.realms["us"]
    client = create_app(settings, db=db).test_client()
    assert login(client, "owner@acme.example").status_code == 302
    token = csrf_token(client, f"/companies/{realm}/channels")
    saved = client.post(f"/companies/{realm}/channels", data={
        "csrf_token": token, "timezone": "America/Denver", "send_hour": "7", "language": "fr"})
    assert saved.status_code == 302
    oauth_helpers.connect(settings, db, vault, realm=realm, sandbox=sb, user_id=user_id)  # a reconnect
    with db.session() as s:
        us = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
        assert (us.timezone, us.language, us.settings["send_hour"]) == ("America/Denver", "fr", 7)
        us.settings = {k: v for k, v in us.settings.items() if not k.endswith("_set_by_user")}
    oauth_helpers.connect(settings, db, vault, realm=realm, sandbox=sb, user_id=user_id)
    with db.session() as s:
        us = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
        assert (us.timezone, us.language, us.settings["send_hour"]) == ("America/Chicago", "en", 7)


def test_an_address_quickbooks_holds_that_is_not_one_is_left_out():
    info = {"email": "", "reply_to": "", "phone": ""}
    assert auth.contact_defaults(info, None) == {}
    assert auth._address({"Address": "not an address"}) == "" and auth._address(None) == ""
    assert auth._address({"Address": " Books@Example.com "}) == "Books@example.com"


def test_query_update_refresh_and_call_again_with_the_real_clients(settings, db, vault, sb):
    oauth_helpers.connect(settings, db, vault, realm=sb.realms["us"], sandbox=sb)
    manager = tokens.TokenManager(settings, db, vault, sb.realms["us"])
    qb = manager.client()
    customers = manager.call(qb, lambda q: q.query("SELECT * FROM Customer STARTPOSITION 1 MAXRESULTS 1000"))
    first = customers["QueryResponse"]["Customer"][0]
    updated = manager.call(qb, lambda q: q.update_object("Customer", json.dumps(
        {"Id": first["Id"], "SyncToken": first["SyncToken"], "sparse": True, "Notes": "hello"})))
    assert updated["Customer"]["Notes"] == "hello"
    with db.session() as s:
        old_refresh = vault.decrypt(s.scalar(select(models.Token.refresh_token)))

    sb.clock.advance(timedelta(seconds=3601))  # the access token is now expired at Intuit
    again = manager.call(qb, lambda q: q.get_single_object("Customer", first["Id"]))
    assert again["Customer"]["Notes"] == "hello"
    assert manager.refreshes == 1
    with db.session() as s:
        token = s.scalar(select(models.Token))
        assert token.version == 2 and vault.decrypt(token.refresh_token) != old_refresh

    sb.clock.advance(timedelta(seconds=sb.refresh_grace_seconds + 1))
    with pytest.raises(Exception) as rotated:  # the superseded refresh token no longer works after the grace period
        AuthClient(settings.intuit_client_id, settings.intuit_client_secret, settings.redirect_uri,
                   settings.intuit_environment).refresh(refresh_token=old_refresh)
    assert "invalid_grant" in str(getattr(rotated.value, "content", rotated.value))


def test_refresh_happens_before_expiry_without_a_401(settings, db, vault, sb):
    oauth_helpers.connect(settings, db, vault, realm=sb.realms["us"], sandbox=sb)
    late = tokens.TokenManager(settings, db, vault, sb.realms["us"], margin=timedelta(hours=2))
    before = sb.log.count("oauth", "token")
    late.access_token()
    assert late.refreshes == 1 and sb.log.count("oauth", "token") == before + 1


def test_the_refresh_tokens_hard_expiry_is_asked_for_and_kept_at_connect_and_at_each_refresh(settings, db, vault, sb):
    # Intuit tells the 5-year cap only to a token request carrying x-include-refresh-token-hard-expires-in.
    oauth_helpers.connect(settings, db, vault, realm=sb.realms["us"], sandbox=sb)
    five_years = timedelta(days=5 * 365)
    with db.session() as s:
        token = s.scalar(select(models.Token))
        assert token.refresh_hard_expires_at is not None
        assert abs(token.refresh_hard_expires_at - (token.updated_at + five_years)) < timedelta(minutes=5)
        connected_hard = token.refresh_hard_expires_at
    tokens.TokenManager(settings, db, vault, sb.realms["us"], margin=timedelta(hours=2)).access_token()
    with db.session() as s:
        token = s.scalar(select(models.Token))
        assert token.version == 2
        assert token.refresh_hard_expires_at is not None
        assert abs(token.refresh_hard_expires_at - connected_hard) < timedelta(minutes=5)   # the cap does not roll


@pytest.mark.parametrize(
    ("state", "message"),
    [
        pytest.param(None, "without its state", id="missing state"),
        pytest.param("forged-state-value", "unknown, expired or already used", id="forged state"),
    ],
)
def test_bad_state_is_refused_and_nothing_is_written(settings, db, vault, sb, state, message):
    query = oauth_helpers.authorize(settings, db, realm=sb.realms["us"], sandbox=sb)
    with pytest.raises(errors.InvalidInput, match=message):
        auth.complete(settings, db, vault, state=state, code=query["code"], realm_id=query["realmId"])
    assert _count(db, models.Company) == 0 and _count(db, models.Token) == 0


def test_a_state_works_once(settings, db, vault, sb):
    query = oauth_helpers.authorize(settings, db, realm=sb.realms["us"], sandbox=sb)
    auth.complete(settings, db, vault, state=query["state"], code=query["code"], realm_id=query["realmId"])
    with pytest.raises(errors.InvalidInput, match="already used"):
        auth.complete(settings, db, vault, state=query["state"], code=query["code"], realm_id=query["realmId"])


def test_consent_denied_at_intuit_gives_a_clear_message_and_writes_nothing(settings, db, vault, sb):
    sb.auto_approve = False
    url, state = auth.begin(settings, db, origin="cli")
    page = requests.get(url, timeout=10)
    assert page.status_code == 200 and "Cancel" in page.text
    form = dict(_hidden_inputs(page.text), decision="deny")
    denied = requests.post(f"{sb.url}/connect/oauth2/decision", data=form, allow_redirects=False, timeout=10)
    query = dict(p.split("=", 1) for p in denied.headers["Location"].split("?", 1)[1].split("&"))
    assert query["error"] == "access_denied"
    with pytest.raises(errors.InvalidInput, match="cancelled at Intuit; nothing was changed"):
        auth.complete(settings, db, vault, state=query["state"], code=None, realm_id=None, error=query["error"])
    assert _count(db, models.Company) == 0


def _hidden_inputs(html: str) -> dict[str, str]:
    import re

    return {m.group(1): m.group(2) for m in re.finditer(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html)}


def test_revoked_grant_marks_the_company_needs_reconnect(settings, db, vault, sb, caplog):
    oauth_helpers.connect(settings, db, vault, realm=sb.realms["us"], sandbox=sb)
    with db.session() as s:
        refresh = vault.decrypt(s.scalar(select(models.Token.refresh_token)))
    AuthClient(settings.intuit_client_id, settings.intuit_client_secret, settings.redirect_uri,
               settings.intuit_environment).revoke(token=refresh)
    manager = tokens.TokenManager(settings, db, vault, sb.realms["us"])
    qb = manager.client()
    with pytest.raises(errors.ReconnectNeeded):  # 401 → refresh → invalid_grant
        manager.call(qb, lambda q: q.query("SELECT * FROM Term"))
    with db.session() as s:
        company = s.scalar(select(models.Company))
        assert company.status == models.CompanyStatus.needs_reconnect
        assert [a.kind for a in s.scalars(select(models.Activity).order_by(models.Activity.id))] == \
            ["connected", "reconnect_needed"]
    with pytest.raises(errors.ReconnectNeeded, match="reconnect"):
        manager.access_token()


def test_no_token_reaches_the_logs(settings, db, vault, sb, caplog):
    with caplog.at_level(logging.DEBUG):
        oauth_helpers.connect(settings, db, vault, realm=sb.realms["us"], sandbox=sb)
        manager = tokens.TokenManager(settings, db, vault, sb.realms["us"])
        qb = manager.client()
        sb.clock.advance(timedelta(seconds=3601))
        manager.call(qb, lambda q: q.query("SELECT * FROM Term"))
    with db.session() as s:
        token = s.scalar(select(models.Token))
        secrets = [vault.decrypt(token.access_token), vault.decrypt(token.refresh_token), settings.intuit_client_secret]
    assert caplog.records, "debug logging was captured"
    for secret in secrets:
        assert secret not in caplog.text


def test_missing_client_id_is_a_config_error_naming_it(settings_factory, db):
    settings = settings_factory()
    with pytest.raises(errors.ConfigError) as caught:
        auth.begin(settings, db, origin="cli")
    assert caught.value.variable == "INTUIT_CLIENT_ID"
    assert _count(db, models.OAuthState) == 0


def test_unreachable_intuit_is_a_transient_failure(settings_factory, db):
    settings = settings_factory(intuit_client_id="x", intuit_client_secret="y",
                                intuit_environment="http://127.0.0.1:9/.well-known/openid-configuration")
    with pytest.raises(errors.TransientFailure, match="Could not reach Intuit"):
        auth.begin(settings, db, origin="cli")


def test_web_connect_flow_through_the_consent_redirect(settings, sqlite_db, sb):
    from web import create_app

    app = create_app(settings, db=sqlite_db)
    user_id = make_user(sqlite_db, "owner@example.com")
    with sqlite_db.session() as s:
        s.get(models.User, user_id).is_admin = False
    client = app.test_client()
    login(client, "owner@example.com")
    sb.next_realm = sb.realms["us"]
    start = client.post("/connect/start", data={"csrf_token": csrf_token(client, "/companies")})
    assert start.status_code == 303 and start.headers["Location"].startswith(sb.url)
    consent = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    callback = consent.headers["Location"]
    assert callback.startswith(settings.redirect_uri)
    done = client.get(callback.replace("http://127.0.0.1:8765", ""))
    assert done.status_code == 302
    page = client.get("/companies").get_data(as_text=True)
    assert "Acme Plumbing" in page and "Connected" in page
    # the same callback replayed (a reload, or an attacker with the URL) is refused
    again = client.get(callback.replace("http://127.0.0.1:8765", ""))
    assert again.status_code == 400 and b"already used" in again.data


def test_callback_from_another_users_session_is_refused(settings, sqlite_db, sb):
    from web import create_app

    app = create_app(settings, db=sqlite_db)
    make_user(sqlite_db, "a@example.com")
    make_user(sqlite_db, "b@example.com")
    alice, bob = app.test_client(), app.test_client()
    login(alice, "a@example.com")
    login(bob, "b@example.com")
    start = alice.post("/connect/start", data={"csrf_token": csrf_token(alice, "/companies")})
    callback = requests.get(start.headers["Location"], allow_redirects=False, timeout=10).headers["Location"]
    response = bob.get(callback.replace("http://127.0.0.1:8765", ""))
    assert response.status_code == 400 and b"another user" in response.data
    assert _count(sqlite_db, models.Company) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli_env(settings, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTUIT_", "QBO_COLLECTOR_", "SENDGRID_", "TWILIO_"))}
    env.update(QBO_COLLECTOR_HOME=str(home), INTUIT_CLIENT_ID=settings.intuit_client_id,
               INTUIT_CLIENT_SECRET=settings.intuit_client_secret, INTUIT_ENVIRONMENT=settings.intuit_environment,
               INTUIT_API_BASE_URL=settings.intuit_api_base_url, **extra)
    return env


def test_cli_connect_receives_the_redirect_on_a_one_shot_listener(settings, sb, tmp_path):
    port = _free_port()
    env = _cli_env(settings, tmp_path / "cli", INTUIT_REDIRECT_URI=f"http://127.0.0.1:{port}/callback")
    sb.next_realm = sb.realms["fr"]
    proc = subprocess.Popen([sys.executable, "-m", "qbo_collector.cli", "connect", "--no-browser", "--timeout", "60"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    url = None
    for line in proc.stdout:
        if line.strip().startswith("http"):
            url = line.strip()
            break
    assert url and "state=" in url
    for _ in range(50):  # the listener starts right after the address is printed
        try:
            response = requests.get(url, timeout=10)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    assert response.status_code == 200 and "close this window" in response.text
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "connected: Boulangerie Martin" in out
    assert "RT1-" not in out + err


def test_cli_connect_with_a_pasted_error_redirect_exits_2(settings, sb, tmp_path):
    env = _cli_env(settings, tmp_path / "cli", INTUIT_REDIRECT_URI="https://collector.example.com/connect/callback")
    proc = subprocess.run([sys.executable, "-m", "qbo_collector.cli", "connect", "--no-browser", "--redirect-url",
                           "https://collector.example.com/connect/callback?error=access_denied&state=zzz"],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "unknown, expired or already used" in proc.stderr


def test_cli_reports_bad_configuration_with_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTUIT_", "QBO_COLLECTOR_"))}
    env.update(QBO_COLLECTOR_HOME=str(tmp_path), INTUIT_ENVIRONMENT="staging")
    proc = subprocess.run([sys.executable, "-m", "qbo_collector.cli", "connect", "--no-browser"],
                          env=env, capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "INTUIT_ENVIRONMENT" in proc.stderr and "Traceback" not in proc.stderr


RACE = textwrap.dedent("""
    import sys
    from qbo_collector import config, errors
    from qbo_collector.db.secrets import Vault
    from qbo_collector.db.session import Database
    from qbo_collector.sync import tokens
    settings = config.load(env_file=None)
    db = Database(settings.database_url)
    manager = tokens.TokenManager(settings, db, Vault(settings.secret_key()), sys.argv[1])
    for _ in range(int(sys.argv[2])):
        current = manager.access_token()
        manager.refresh(rejected=current)   # as after a 401: both processes race for every rotation
    print(manager.refreshes)
""")


def test_two_processes_racing_to_refresh_never_lose_the_refresh_token(settings, db, vault, sb, tmp_path):
    oauth_helpers.connect(settings, db, vault, realm=sb.realms["us"], sandbox=sb)
    grace = sb.refresh_grace_seconds
    sb.refresh_grace_seconds = 0  # a refresh with a superseded token fails at once: a lost token would show
    try:
        env = _cli_env(settings, settings.home, QBO_COLLECTOR_DATABASE_URL=db.url,
                       INTUIT_REDIRECT_URI=settings.redirect_uri)
        procs = [subprocess.Popen([sys.executable, "-c", RACE, sb.realms["us"], "6"], env=env, cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        results = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, results):
            assert p.returncode == 0, err
        done = sum(int(out.strip()) for out, _ in results)
        assert 1 <= done <= 12
        with db.session() as s:
            token = s.scalar(select(models.Token))
            assert token.version == 1 + done
            assert s.scalar(select(models.Company)).status == models.CompanyStatus.connected
        # the stored refresh token is the live one: one more refresh works
        assert tokens.TokenManager(settings, db, vault, sb.realms["us"]).refresh(rejected="x")
    finally:
        sb.refresh_grace_seconds = grace


def test_the_discovery_document_is_read_once_an_hour_per_process(settings, db, sb, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(auth, "DISCOVERY", auth._DiscoveryCache(lambda: clock[0]))
    seen = sb.log.count("oauth", "discovery")
    clients = [auth.new_auth_client(settings) for _ in range(3)]
    assert sb.log.count("oauth", "discovery") == seen + 1  # three clients, one GET
    assert {c.token_endpoint for c in clients} == {json.loads(requests.get(sb.discovery_url, timeout=5).text)["token_endpoint"]}
    seen = sb.log.count("oauth", "discovery")
    # the cached client is a working one: authorize URL, and a refresh through the real token endpoint
    url, _state = auth.begin(settings, db, origin="cli")
    assert url.startswith(clients[0].auth_endpoint)
    clock[0] += auth.DISCOVERY_TTL - 1
    auth.new_auth_client(settings)
    assert sb.log.count("oauth", "discovery") == seen
    clock[0] += 2  # an hour later: read again
    auth.new_auth_client(settings)
    assert sb.log.count("oauth", "discovery") == seen + 1


def test_a_failed_discovery_read_is_not_kept(settings_factory, sb, monkeypatch):
    monkeypatch.setattr(auth, "DISCOVERY", auth._DiscoveryCache(time.monotonic))
    missing = sb.discovery_url.rsplit("/", 1)[0] + "/no-such-document"
    settings = settings_factory(intuit_client_id=sb.client_id, intuit_client_secret=sb.client_secret,
                                intuit_environment=missing)
    for _ in range(2):
        with pytest.raises(errors.TransientFailure, match="discovery document"):
            auth.new_auth_client(settings)
    assert auth.DISCOVERY.fetches == 2


@pytest.mark.parametrize("swapped", ["other company in the sandbox", "unknown realm"])
def test_a_callback_with_a_swapped_realm_id_stores_nothing(settings, sqlite_db, sb, caplog, swapped):
    """Intuit's tokens open only the realm the person authorised: a callback whose ``realmId`` was
    changed to another company fails on the CompanyInfo read, and nothing is kept."""
    from web import create_app

    app = create_app(settings, db=sqlite_db)
    make_user(sqlite_db, "owner@example.com")
    client = app.test_client()
    login(client, "owner@example.com")
    sb.next_realm = sb.realms["us"]  # the person consents to Acme Plumbing…
    start = client.post("/connect/start", data={"csrf_token": csrf_token(client, "/companies")})
    callback = requests.get(start.headers["Location"], allow_redirects=False, timeout=10).headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlparse(callback).query).items()}
    assert query["realmId"] == sb.realms["us"]
    other = sb.realms["fr"] if swapped == "other company in the sandbox" else "9130000000000000"
    with caplog.at_level(logging.WARNING):  # …and the realmId that comes back names another company
        response = client.get("/connect/callback", query_string={**query, "realmId": other})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "does not give access to company" in page and "nothing was stored" in page
    assert f"realm={other}" in caplog.text and "not the one authorised at Intuit" in caplog.text
    assert any(e.endpoint == "companyinfo" and e.status == 403 and e.realm == other for e in sb.log.entries())
    assert _count(sqlite_db, models.Company) == 0 and _count(sqlite_db, models.Token) == 0
    assert _count(sqlite_db, models.Membership) == 0


def test_a_callback_whose_realm_id_is_not_a_company_id_stores_nothing(settings, db, vault, sb, caplog):
    query = oauth_helpers.authorize(settings, db, realm=sb.realms["us"], sandbox=sb)
    with caplog.at_level(logging.WARNING), pytest.raises(errors.InvalidInput, match="company id that is not one"):
        auth.complete(settings, db, vault, state=query["state"], code=query["code"],
                      realm_id=f"{sb.realms['us']}/../{sb.realms['fr']}")
    assert "realmId is not a QuickBooks company id" in caplog.text
    assert _count(db, models.Company) == 0 and _count(db, models.Token) == 0


def test_disconnect_after_a_secret_key_change_still_forgets_the_tokens(settings, db, vault, sb):
    # The old key is lost: the tokens cannot be read, so Intuit cannot be told, but the company
    # must still be disconnected (nothing else would stop the scheduler from trying it every tick).
    from cryptography.fernet import Fernet

    from qbo_collector.db.secrets import Vault

    oauth_helpers.connect(settings, db, vault, realm=sb.realms["fr"], sandbox=sb)
    auth.disconnect(settings, db, Vault(Fernet.generate_key()), sb.realms["fr"])
    with db.session() as s:
        row = s.scalar(select(models.Company).where(models.Company.realm_id == sb.realms["fr"]))
        assert row.status == models.CompanyStatus.disconnected and row.token is None
        said = s.scalar(select(models.Activity.message).where(models.Activity.kind == "disconnected"))
    assert said == "Disconnected from QuickBooks (Intuit could not be told; the grant expires by itself)."
