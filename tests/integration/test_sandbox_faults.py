"""Throttling and injected faults, as the real python-quickbooks client experiences them."""

from __future__ import annotations

import time

import pytest
import requests
from quickbooks import exceptions

from tests.integration.conftest_sandbox import connect


def _statuses(conn) -> list[int]:
    seen: list[int] = []
    conn.qb.session.hooks["response"].append(lambda r, *a, **k: seen.append(r.status_code))
    return seen


def test_more_than_10_requests_a_second_get_429_with_retry_after(sandbox_factory):
    sb = sandbox_factory(rate_limit_per_second=10, rate_limit_per_minute=500)
    conn = connect(sb)
    statuses = _statuses(conn)
    for _ in range(15):
        try:
            conn.qb.query("SELECT * FROM Term")
        except exceptions.QuickbooksException:
            pass
    assert statuses.count(200) == 10 and statuses.count(429) == 5
    raw = requests.post(f"{sb.api_base_url}/company/{conn.realm}/query?minorversion=75", data="SELECT * FROM Term",
                        headers={"Authorization": f"Bearer {conn.auth_client.access_token}"}, timeout=10)
    assert raw.status_code == 429 and raw.headers["Retry-After"] == "1"
    time.sleep(1.05)
    assert "Term" in conn.qb.query("SELECT * FROM Term")["QueryResponse"]


def test_per_minute_limit(sandbox_factory):
    sb = sandbox_factory(rate_limit_per_second=None, rate_limit_per_minute=20)
    conn = connect(sb)
    statuses = _statuses(conn)
    for _ in range(22):
        try:
            conn.qb.query("SELECT * FROM Term")
        except exceptions.QuickbooksException:
            pass
    assert statuses.count(429) == 2


def test_throttle_body_is_a_3001_fault_that_the_client_maps_to_validation(fresh_sandbox):
    conn = connect(fresh_sandbox)
    fresh_sandbox.intuit_faults.force_429 = 1
    statuses = _statuses(conn)
    with pytest.raises(exceptions.ValidationException) as err:
        conn.qb.query("SELECT * FROM Term")
    assert err.value.error_code == 3001 and statuses == [429]


def test_forced_500_timeout_and_malformed(fresh_sandbox):
    sb = fresh_sandbox
    conn = connect(sb)
    sb.intuit_faults.force_500 = 1
    with pytest.raises(exceptions.SevereException):
        conn.qb.query("SELECT * FROM Term")

    sb.intuit_faults.timeout_seconds = 0.6
    sb.intuit_faults.force_timeout = 1
    started = time.monotonic()
    assert "Term" in conn.qb.query("SELECT * FROM Term")["QueryResponse"]
    assert time.monotonic() - started >= 0.6
    sb.intuit_faults.force_timeout = 1
    with pytest.raises(requests.exceptions.ReadTimeout):
        conn.qb.session.request("POST", f"{sb.api_base_url}/company/{conn.realm}/query", data="SELECT * FROM Term",
                                params={"minorversion": 75}, timeout=0.2)

    sb.intuit_faults.force_malformed = 1
    with pytest.raises(exceptions.QuickbooksException) as bad:
        conn.qb.query("SELECT * FROM Term")
    assert bad.value.error_code == 10000 and "Error reading json" in bad.value.message
    assert "Term" in conn.qb.query("SELECT * FROM Term")["QueryResponse"]
    logged = [e.status for e in sb.log.entries() if e.service == "intuit"]
    assert logged[0] == 500 and logged.count(200) >= 3


def test_error_rate_is_reproducible_with_a_seed(fresh_sandbox):
    from qbo_collector.sandbox import common
    knobs_a, knobs_b = common.FaultKnobs(seed=3, error_rate=0.3), common.FaultKnobs(seed=3, error_rate=0.3)
    assert [knobs_a.draw() for _ in range(50)] == [knobs_b.draw() for _ in range(50)]
    fresh_sandbox.intuit_faults.error_rate = 1.0
    conn = connect(fresh_sandbox)
    with pytest.raises(exceptions.SevereException):
        conn.qb.query("SELECT * FROM Term")


def test_token_endpoint_faults(fresh_sandbox):
    from intuitlib.exceptions import AuthClientError
    conn = connect(fresh_sandbox)
    fresh_sandbox.oauth_faults.force_500 = 1
    with pytest.raises(AuthClientError) as err:
        conn.auth_client.refresh()
    assert err.value.status_code == 500
    conn.auth_client.refresh()


def test_throttle_bodies_vary_but_the_status_is_always_429(fresh_sandbox):
    conn = connect(fresh_sandbox)
    fresh_sandbox.intuit_faults.force_429 = 3
    url = f"{fresh_sandbox.api_base_url}/company/{conn.realm}/query?minorversion=75"
    headers = {"Authorization": f"Bearer {conn.auth_client.access_token}"}
    answers = [requests.post(url, data="SELECT * FROM Term", headers=headers, timeout=10) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 429]
    assert all(a.headers["Retry-After"] == "1" for a in answers)
    assert answers[0].json()["Fault"]["Error"][0]["code"] == "3001"
    assert answers[1].json()["fault"]["error"][0]["code"] == "3001"
    assert answers[2].text.startswith("<?xml") and 'code="3001"' in answers[2].text
