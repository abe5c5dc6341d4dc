"""Failed logins behind a proxy and across web processes: counted per client address and per
account in the database, on SQLite and PostgreSQL.

The Flask test client's peer is 127.0.0.1: it plays the proxy, and ``X-Forwarded-For`` carries
the address the proxy heard from.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
import requests
import waitress.server
from sqlalchemy import func, select

from qbo_collector import cli, clock, users
from qbo_collector.db import models
from tests.integration.web_helpers import CSRF, make_user
from web import create_app

ATTACKER = "203.0.113.9"
OWNER_ADDRESS = "198.51.100.7"


@pytest.fixture
def app_factory(settings_factory, db):  # type: ignore[no-untyped-def]
    """A web process on the test database; call it twice for two processes sharing that database."""

    def make(trusted_proxy_count: int = 1):  # type: ignore[no-untyped-def]
        app = create_app(settings_factory(qbo_collector_trusted_proxy_count=trusted_proxy_count), db=db)
        app.config["TESTING"] = True  # CSRF stays on
        return app

    return make


@pytest.fixture
def later() -> Iterator[None]:
    """The tests move the program's clock forward (``clock.advance``); put it back after them."""
    yield
    clock.reset()


def _login(client, email: str, password: str, address: str | None = None):  # type: ignore[no-untyped-def]
    headers = {"X-Forwarded-For": address} if address else {}
    token = CSRF.search(client.get("/login", headers=headers).get_data(as_text=True)).group(1)
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token}, headers=headers)


def _fail(client, email: str, address: str | None = None, times: int = 1) -> None:  # type: ignore[no-untyped-def]
    for _ in range(times):
        assert _login(client, email, "wrong password!!", address).status_code == 401


def _rows(db, key: str) -> int:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(models.LoginFailure).where(models.LoginFailure.key == key))


def test_behind_a_trusted_proxy_the_attackers_address_is_throttled_and_the_owner_still_logs_in(app_factory, db):
    make_user(db, "owner@example.com")
    client = app_factory(trusted_proxy_count=1).test_client()
    for n in range(users.MAX_FAILURES):
        _fail(client, f"guess{n}@example.com", ATTACKER)
    refused = _login(client, "guess9@example.com", "wrong password!!", ATTACKER)
    assert refused.status_code == 429 and b"Too many failed attempts" in refused.data
    assert _login(client, "owner@example.com", "correct horse battery", OWNER_ADDRESS).status_code == 302
    assert _rows(db, f"ip:{ATTACKER}") == users.MAX_FAILURES and _rows(db, "ip:127.0.0.1") == 0


def test_without_trusted_proxies_a_forwarded_address_is_ignored(app_factory, db):
    client = app_factory(trusted_proxy_count=0).test_client()
    for n in range(users.MAX_FAILURES):
        _fail(client, f"guess{n}@example.com", f"192.0.2.{n}")  # a new spoofed address each time
    assert _login(client, "guess9@example.com", "wrong password!!", "192.0.2.99").status_code == 429
    assert _rows(db, "ip:127.0.0.1") == users.MAX_FAILURES  # counted against the real peer


def test_two_web_processes_count_the_same_failures(app_factory, db):
    make_user(db, "owner@example.com")
    first, second = app_factory().test_client(), app_factory().test_client()
    _fail(first, "owner@example.com", ATTACKER, times=3)
    _fail(second, "owner@example.com", ATTACKER, times=2)
    for client in (first, second):
        assert _login(client, "owner@example.com", "correct horse battery", ATTACKER).status_code == 429
    # the account is at its limit in both processes: a new address gets one try, in either of them
    _fail(first, "owner@example.com", "192.0.2.60")
    assert _login(second, "owner@example.com", "wrong password!!", "192.0.2.60").status_code == 429


def test_a_stranger_cannot_lock_the_owner_out_and_a_spread_guesser_gets_one_try_per_address(app_factory, db):
    """Six wrong passwords for the owner's email from one address used to lock the owner out from
    everywhere for 15 minutes, again and again. The account's limit now leaves one try to an address
    with no failure in the window: the owner gets in, a guesser's new address gets one guess."""
    make_user(db, "owner@example.com")
    client = app_factory().test_client()
    _fail(client, "owner@example.com", ATTACKER, times=users.MAX_FAILURES)
    assert _login(client, "owner@example.com", "wrong password!!", ATTACKER).status_code == 429
    _fail(client, "owner@example.com", "192.0.2.61")  # a guesser's second address: one guess...
    assert _login(client, "owner@example.com", "correct horse battery", "192.0.2.61").status_code == 429  # ...only
    assert _login(client, "owner@example.com", "correct horse battery", OWNER_ADDRESS).status_code == 302
    assert _rows(db, "email:owner@example.com") == 0  # the good login started the account's count again


def test_failures_older_than_the_window_no_longer_count_and_are_pruned(app_factory, db, later):
    make_user(db, "owner@example.com")
    client = app_factory().test_client()
    _fail(client, "owner@example.com", ATTACKER, times=users.MAX_FAILURES)
    clock.advance(timedelta(minutes=10))
    assert _login(client, "owner@example.com", "correct horse battery", ATTACKER).status_code == 429
    assert _rows(db, f"ip:{ATTACKER}") == users.MAX_FAILURES  # a refused attempt is no failure: waiting is enough
    clock.advance(users.FAILURE_WINDOW - timedelta(minutes=10) + timedelta(seconds=1))
    _fail(client, "someone@example.com", OWNER_ADDRESS)  # the next failure prunes the ones out of the window
    assert _rows(db, f"ip:{ATTACKER}") == 0 and _rows(db, "email:owner@example.com") == 0
    assert _login(client, "owner@example.com", "correct horse battery", ATTACKER).status_code == 302


def test_a_good_login_clears_the_accounts_failures_but_not_the_addresss(app_factory, db):
    make_user(db, "owner@example.com")
    make_user(db, "mallory@example.com")
    client = app_factory().test_client()
    # the owner mistypes from home, then gets it right from the office: the account starts again
    _fail(client, "owner@example.com", OWNER_ADDRESS, times=users.MAX_FAILURES - 1)
    assert _login(client, "owner@example.com", "correct horse battery", "192.0.2.50").status_code == 302
    assert _rows(db, "email:owner@example.com") == 0
    # mallory guesses the owner's password and logs into her own account between guesses: her
    # address keeps its failures, so she still gets no more than five guesses
    _fail(client, "owner@example.com", ATTACKER, times=users.MAX_FAILURES - 1)
    assert _login(client, "mallory@example.com", "correct horse battery", ATTACKER).status_code == 302
    _fail(client, "owner@example.com", ATTACKER)
    assert _login(client, "owner@example.com", "correct horse battery", ATTACKER).status_code == 429


def test_attempts_in_flight_at_once_count_each_other(db):
    """Each attempt is a failure until its password proves otherwise, so attempts checked at the
    same moment in several processes cannot all slip under the limit."""
    keys = users.login_keys("owner@example.com", ATTACKER)
    now = clock.now()
    with db.session() as s:
        for _ in range(users.MAX_FAILURES - 2):
            users.begin_login(s, keys, now=now)
    with db.session() as s:
        in_flight = [users.begin_login(s, keys, now=now) for _ in range(3)]
    with db.session() as s:
        assert all(users.too_many_failures(s, attempt.keys, now=now) for attempt in in_flight)
        for attempt in in_flight:
            users.withdraw_login(s, attempt)
    with db.session() as s:
        assert not users.too_many_failures(s, keys, now=now)  # the refused ones took their rows back


@pytest.mark.parametrize(("trusted_proxy_count", "second_address_refused"), [
    pytest.param(1, False, id="one trusted proxy: the forwarded addresses are told apart"),
    pytest.param(0, True, id="no trusted proxy: waitress drops the header, every request is the peer's"),
])
def test_serve_hands_the_forwarded_address_to_the_app(settings_factory, db, trusted_proxy_count,
                                                      second_address_refused):
    """Through waitress as ``qbo-collector serve`` configures it, not only through the test client."""
    settings = settings_factory(qbo_collector_trusted_proxy_count=trusted_proxy_count)
    make_user(db, "owner@example.com")
    server = waitress.server.create_server(create_app(settings, db=db), host="127.0.0.1", port=0, threads=2,
                                           **cli.waitress_options(settings))

    def run() -> None:
        try:
            server.run()
        except OSError:  # close() below takes the socket from under its select(), as SIGTERM does in serve
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.effective_port}/login"
    try:
        def attempt(password: str, address: str) -> int:
            with requests.Session() as browser:
                page = browser.get(url, headers={"X-Forwarded-For": address}, timeout=10).text
                data = {"email": "owner@example.com", "password": password, "csrf_token": CSRF.search(page).group(1)}
                return browser.post(url, data=data, headers={"X-Forwarded-For": address},
                                    allow_redirects=False, timeout=10).status_code

        for _ in range(users.MAX_FAILURES):
            assert attempt("wrong password!!", ATTACKER) == 401
        with db.session() as s:  # the account's failures are not the subject here
            s.execute(models.LoginFailure.__table__.delete().where(models.LoginFailure.key.like("email:%")))
        assert attempt("correct horse battery", ATTACKER) == 429
        assert attempt("correct horse battery", OWNER_ADDRESS) == (429 if second_address_refused else 302)
    finally:
        server.close()
        thread.join(timeout=10)
