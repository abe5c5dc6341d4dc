"""Login, CSRF, roles and tenant isolation on every route of the app."""

from __future__ import annotations

from datetime import timedelta

import pytest

from qbo_collector import users
from qbo_collector.db import models
from tests.integration.web_helpers import csrf_token, login, make_user
from web import PUBLIC_ENDPOINTS, PUBLIC_PREFIXES, create_app


@pytest.fixture
def app(settings_factory, sqlite_db):
    app = create_app(settings_factory(intuit_client_id="id", intuit_client_secret="secret"), db=sqlite_db)
    app.config["TESTING"] = True  # exceptions propagate; CSRF stays ON (WTF_CSRF_ENABLED untouched)
    with sqlite_db.session() as s:
        for realm, name in (("111", "Company A"), ("222", "Company B")):
            s.add(models.Company(realm_id=realm, name=name, currency="USD", settings={}))
    yield app


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS or rule.endpoint.startswith(PUBLIC_PREFIXES):
            continue
        path = rule.build({arg: "111" for arg in rule.arguments}, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, path


def test_every_private_route_needs_a_login(app):
    client = app.test_client()
    seen = 0
    for endpoint, method, path in _routes(app):
        response = client.open(path, method=method)
        seen += 1
        if method == "GET":
            assert response.status_code == 302 and "/login" in response.headers["Location"], (endpoint, path)
        else:
            assert response.status_code in (400, 401), (endpoint, path, response.status_code)  # 400: CSRF first
    assert seen >= 5


def test_every_post_without_csrf_is_refused(app, sqlite_db):
    make_user(sqlite_db, "owner@example.com", admin=True)
    client = app.test_client()
    assert login(client, "owner@example.com").status_code == 302
    for endpoint, method, path in _routes(app):
        if method == "POST":
            response = client.post(path, data={})
            assert response.status_code == 400, (endpoint, response.status_code)
            assert b"CSRF" in response.data


def test_login_with_the_right_password_opens_the_company_list(app, sqlite_db):
    make_user(sqlite_db, "owner@example.com", companies={"111": "owner"})
    client = app.test_client()
    response = login(client, "Owner@Example.com ")
    assert response.status_code == 302 and response.headers["Location"].endswith("/companies")
    page = client.get("/companies").get_data(as_text=True)
    assert "Company A" in page and "Company B" not in page


def test_wrong_password_is_refused_and_repeated_failures_are_throttled(app, sqlite_db, caplog):
    make_user(sqlite_db, "owner@example.com")
    client = app.test_client()
    for _ in range(users.MAX_FAILURES):
        response = login(client, "owner@example.com", "wrong password!!")
        assert response.status_code == 401 and b"Wrong email or password" in response.data
    response = login(client, "owner@example.com", "correct horse battery")
    assert response.status_code == 429 and b"Too many failed attempts" in response.data
    assert "login throttled" in caplog.text
    assert "wrong password!!" not in caplog.text


def test_login_does_not_redirect_off_site(app, sqlite_db):
    make_user(sqlite_db, "owner@example.com")
    client = app.test_client()
    token = csrf_token(client)
    response = client.post("/login?next=//evil.example.com/x",
                           data={"email": "owner@example.com", "password": "correct horse battery", "csrf_token": token})
    assert response.headers["Location"].endswith("/companies")


def test_a_user_of_company_a_gets_404_for_company_b(app, sqlite_db):
    make_user(sqlite_db, "a@example.com", companies={"111": "owner"})
    client = app.test_client()
    login(client, "a@example.com")
    token = csrf_token(client, "/companies")
    assert client.post("/companies/222/sync", data={"csrf_token": token}).status_code == 404
    assert client.post("/companies/999/disconnect", data={"csrf_token": token}).status_code == 404


def test_a_viewer_cannot_change_anything(app, sqlite_db):
    make_user(sqlite_db, "viewer@example.com", companies={"111": "viewer"})
    client = app.test_client()
    login(client, "viewer@example.com")
    page = client.get("/companies").get_data(as_text=True)
    assert "Company A" in page and "Disconnect" not in page
    token = csrf_token(client, "/companies")
    assert client.post("/companies/111/disconnect", data={"csrf_token": token}).status_code == 403
    with sqlite_db.session() as s:
        assert s.query(models.Company).filter_by(realm_id="111").one().status == models.CompanyStatus.connected


def test_logout_needs_csrf_and_ends_the_session(app, sqlite_db):
    make_user(sqlite_db, "owner@example.com")
    client = app.test_client()
    login(client, "owner@example.com")
    assert client.post("/logout").status_code == 400
    token = csrf_token(client, "/companies")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/companies").status_code == 302


def test_a_copy_of_the_session_cookie_stops_working_at_logout(app, sqlite_db):
    """The session is a signed cookie: logout raises the user's session epoch, so a copy taken before
    (another device, a stolen cookie) can neither read nor act — and other users stay logged in."""
    make_user(sqlite_db, "owner@example.com", companies={"111": "owner"})
    make_user(sqlite_db, "other@example.com", companies={"111": "owner"})
    client, bystander = app.test_client(), app.test_client()
    login(client, "owner@example.com")
    login(bystander, "other@example.com")
    copied = client.get_cookie("session").value
    token = csrf_token(client, "/companies")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("session", copied)
    assert thief.get("/companies/111/customers").status_code == 302  # to the login page
    assert thief.post("/companies/111/disconnect", data={"csrf_token": token}).status_code == 401
    with sqlite_db.session() as s:
        assert s.query(models.Company).filter_by(realm_id="111").one().status == models.CompanyStatus.connected
    assert bystander.get("/companies").status_code == 200
    login(client, "owner@example.com")  # logging in again works, with the new epoch
    assert client.get("/companies").status_code == 200


def test_a_session_id_in_any_other_form_loads_no_one(app, sqlite_db):
    from web import auth

    user_id = make_user(sqlite_db, "owner@example.com")
    with sqlite_db.session() as s:
        assert auth.load(s, f"{user_id}.0") is not None
        for bad in (str(user_id), f"{user_id}.1", f"{user_id}.", ".0", "x.0", f"{user_id}.\u00b2", f"{user_id}.0.0"):
            assert auth.load(s, bad) is None, bad


def test_session_cookie_is_httponly_and_samesite(app, sqlite_db):
    make_user(sqlite_db, "owner@example.com")
    client = app.test_client()
    response = login(client, "owner@example.com")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_healthz_is_public(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 503  # reachable without a login; no scheduler has ticked yet
    assert response.get_json()["database"] == "ok" and response.get_json()["scheduler"] == "not seen"


def test_healthz_reports_the_scheduler_heartbeat_and_last_runs(app, sqlite_db):
    from qbo_collector import clock

    now = clock.now()
    with sqlite_db.session() as s:
        s.add(models.Worker(name="host:1", started_at=now, seen_at=now))
        company_id = s.query(models.Company).filter_by(realm_id="111").one().id
        s.add(models.WorkLease(company_id=company_id, kind="run", done_at=now))
        s.add(models.WorkLease(company_id=s.query(models.Company).filter_by(realm_id="222").one().id, kind="run",
                               done_at=now - timedelta(days=1), last_error="QuickBooks unavailable"))
    client = app.test_client()
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["scheduler"] == "alive"
    # public: counts only, no realm id and no company name
    assert body["runs"] == {"companies": 2, "failed": 1, "oldest_at": (now - timedelta(days=1)).isoformat()}
    assert "last_run" not in body and "111" not in str(body) and "222" not in str(body)
    make_user(sqlite_db, "owner@example.com")
    login(client, "owner@example.com")  # not an admin: still counts only
    assert "last_run" not in client.get("/healthz").get_json()
    make_user(sqlite_db, "ops@example.com", admin=True)
    admin = app.test_client()
    login(admin, "ops@example.com")
    body = admin.get("/healthz").get_json()
    assert body["last_run"]["111"] == {"at": now.isoformat(), "error": False}
    assert body["last_run"]["222"]["error"] is True and "Company A" not in str(body)
