"""Sandbox fixtures (a pytest plugin module, loaded from ``tests/conftest.py``).

- ``sandbox``: one server for the whole session, companies ``sandbox_realms["en"]`` (US, USD)
  and ``sandbox_realms["fr"]`` (FR, EUR); rate limits off. Do not move its clock or leave
  faults set: use ``fresh_sandbox`` for that.
- ``fresh_sandbox``: a new server per test with the same two (smaller) companies.
- ``sandbox_factory(**Sandbox kwargs, companies=[CompanySpec...])``: build your own; stopped after the test.
- ``qbo_connect(sb, realm=None)``: the real OAuth dance (auto-approve) with the unmodified
  clients; returns a ``Connection`` holding the ``AuthClient`` and the ``QuickBooks`` client.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from qbo_collector.sandbox import server

REDIRECT_URI = "http://127.0.0.1:9/qbo/callback"   # never contacted: tests read the redirect themselves
EN_SPEC = server.CompanySpec(name="Sandbox Company US", country="US", currency="USD",
                             timezone="America/Los_Angeles", language="en",
                             customers=40, invoices=250, payments=150, seed=11)
FR_SPEC = server.CompanySpec(name="Boulangerie Martin", country="FR", currency="EUR", timezone="Europe/Paris",
                             language="fr", customers=30, invoices=150, payments=90, seed=12)
NO_LIMITS = {"rate_limit_per_second": None, "rate_limit_per_minute": None, "batch_limit_per_minute": None}


@dataclass
class Connection:
    auth_client: Any      # intuitlib.client.AuthClient
    qb: Any               # quickbooks.QuickBooks
    realm: str


def insecure_loopback_transport() -> None:
    """requests-oauthlib refuses http:// otherwise; every sandbox URL is 127.0.0.1.

    Set only by ``connect()`` (not by the server fixtures), so tests of product code that
    must set it for loopback URLs itself are not masked until a test here has connected.
    """
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


def connect(sb: server.Sandbox, realm: str | None = None, *, redirect_uri: str = REDIRECT_URI,
            minorversion: int = 75) -> Connection:
    """Authorize through the sandbox's auto-approve redirect and build the QuickBooks client."""
    from intuitlib.client import AuthClient
    from intuitlib.enums import Scopes
    from quickbooks import QuickBooks

    insecure_loopback_transport()
    previous, sb.next_realm = sb.next_realm, realm
    try:
        auth = AuthClient(sb.client_id, sb.client_secret, redirect_uri, sb.discovery_url)
        answer = requests.get(auth.get_authorization_url([Scopes.ACCOUNTING], "state-1"), allow_redirects=False,
                              timeout=10)
        params = parse_qs(urlsplit(answer.headers["Location"]).query)
    finally:
        sb.next_realm = previous
    auth.get_bearer_token(params["code"][0], realm_id=params["realmId"][0])
    qb = QuickBooks(auth_client=auth, refresh_token=auth.refresh_token, company_id=params["realmId"][0],
                    minorversion=minorversion)
    qb.api_url_v3 = sb.api_base_url
    return Connection(auth_client=auth, qb=qb, realm=params["realmId"][0])


@pytest.fixture(scope="session")
def sandbox() -> Iterator[server.Sandbox]:
    sb = server.Sandbox(seed=7, auto_approve=True, **NO_LIMITS)
    sb.add_company(EN_SPEC)
    sb.add_company(FR_SPEC)
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture(scope="session")
def sandbox_realms(sandbox: server.Sandbox) -> dict[str, str]:
    realms = list(sandbox.intuit.companies)
    return {"en": realms[0], "fr": realms[1]}


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., server.Sandbox]]:
    made: list[server.Sandbox] = []

    def build(*, companies: list[server.CompanySpec] | None = None, **kwargs: Any) -> server.Sandbox:
        options = {"seed": 7, "auto_approve": True, **NO_LIMITS, **kwargs}
        sb = server.Sandbox(**options)
        for spec in companies if companies is not None else [EN_SPEC, FR_SPEC]:
            sb.add_company(spec)
        made.append(sb.start())
        return sb

    yield build
    for sb in made:
        sb.stop()


@pytest.fixture
def fresh_sandbox(sandbox_factory: Callable[..., server.Sandbox]) -> server.Sandbox:
    small_en = dataclasses.replace(EN_SPEC, customers=15, invoices=60, payments=30)
    small_fr = dataclasses.replace(FR_SPEC, customers=10, invoices=40, payments=20)
    return sandbox_factory(companies=[small_en, small_fr])


@pytest.fixture
def qbo_connect() -> Callable[..., Connection]:
    return connect
