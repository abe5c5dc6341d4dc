"""`make demo`'s promise: the page serves, with both demo companies connected through the real OAuth flow."""

from __future__ import annotations

import datetime as dt
import re

import logging

import requests

from qbo_collector import clock, demo
from tests.integration.web_helpers import CSRF, make_user


def _login(running, email: str, password: str = "correct horse battery") -> requests.Session:  # type: ignore[no-untyped-def]
    session = requests.Session()
    token = CSRF.search(session.get(f"{running.url}/login", timeout=10).text).group(1)
    response = session.post(f"{running.url}/login", timeout=10,
                            data={"email": email, "password": password, "csrf_token": token})
    assert response.status_code == 200 and response.url.endswith("/companies")
    return session


def _advance(session: requests.Session, running) -> requests.Response:  # type: ignore[no-untyped-def]
    token = CSRF.search(session.get(f"{running.url}/demo", timeout=10).text).group(1)
    return session.post(f"{running.url}/demo/advance", data={"csrf_token": token}, timeout=180)  # the day runs every company: slow on a loaded machine


def test_demo_serves_a_page_with_companies_connected_through_oauth(tmp_path):
    running = demo.start(tmp_path / "demo", port=0, sync=False, schedule=False)
    try:
        session = requests.Session()
        login_page = session.get(f"{running.url}/login", timeout=10)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page.text).group(1)
        response = session.post(f"{running.url}/login", timeout=10,
                                data={"email": demo.DEMO_EMAIL, "password": running.password, "csrf_token": token})
        assert response.status_code == 200 and response.url.endswith("/companies")
        assert "Boulangerie Martin SARL" in response.text and "Maple Street Plumbing" in response.text
        assert response.text.count("Connected") >= 2
        assert running.sandbox.log.count("oauth", "token") == 2  # two real authorization-code exchanges
    finally:
        running.stop()


def test_the_demo_has_a_property_manager_whose_money_pays_a_job_billed_with_it(tmp_path):
    """The demo's jobs billed with their parent: both listed on the manager's page, the older invoice
    left alone because the manager's unapplied payment pays it, the other one owed."""
    running = demo.start(tmp_path / "demo", port=0, sync=True, schedule=False)
    try:
        from sqlalchemy import select

        from qbo_collector.db import models

        with running.db.session() as s:
            rows = {c.display_name: c for c in s.scalars(select(models.Customer).where(
                models.Customer.display_name.in_([demo.FAMILY[0], *demo.FAMILY[1]])))}
        parent = rows[demo.FAMILY[0]]
        assert all(rows[name].parent_qbo_id == parent.qbo_id and rows[name].bill_with_parent for name in demo.FAMILY[1])
        session = _login(running, demo.DEMO_EMAIL, running.password)
        page = session.get(f"{running.url}/companies/{running.realms[1]}/customers/{parent.qbo_id}", timeout=10).text
        assert "Jobs and sub-customers billed with it" in page and "12 Elm Street" in page and "48 Oak Avenue" in page
        assert "$1,250.00 of it pays invoices of 12 Elm Street, billed with this customer." in page
        job = session.get(f"{running.url}/companies/{running.realms[1]}/customers/{rows['12 Elm Street'].qbo_id}",
                          timeout=10).text
        assert "settled by unused credit, counting that of Hartley Property Management ($1,250.00)" in job
    finally:
        running.stop()


def _working_afternoon(after: dt.datetime) -> dt.datetime:
    """15:30 UTC (afternoon in Paris, morning in Chicago) on the first Tuesday or Wednesday after
    ``after`` that, with the day after, is a working day in France and in the US: both demo companies
    send that day and the next, whatever the day and hour the suite runs at."""
    import holidays

    off = holidays.country_holidays("FR", years=range(after.year, after.year + 2)) | holidays.country_holidays(
        "US", years=range(after.year, after.year + 2))
    day = after.date() + dt.timedelta(days=1)
    while day.weekday() not in (1, 2) or day in off or day + dt.timedelta(days=1) in off:
        day += dt.timedelta(days=1)
    return dt.datetime(day.year, day.month, day.day, 15, 30, tzinfo=dt.timezone.utc)


def test_advancing_the_demo_a_day_keeps_opens_and_stamps_sends_with_the_demo_date(tmp_path):
    """"Advance one day" moves the program's clock and the sandbox's together: what is sent that day
    is stamped with the demo's date, and the email events the sandbox signs at its time are accepted."""
    from sqlalchemy import select

    from qbo_collector.db import models

    running = demo.start(tmp_path / "demo", port=0, sync=True, schedule=False)
    try:
        # a working afternoon for both companies (on a Sunday, or at night, the first day sends nothing)
        ahead = _working_afternoon(clock.now()) - clock.now()
        clock.advance(ahead)
        running.sandbox.clock.advance(ahead)
        running.ticker.tick()
        running.sandbox.sendgrid.flush()  # the first day's events are in before the click, as for a person
        result = demo.advance_day(running, seed=1)
        running.sandbox.sendgrid.flush()
        day = clock.now().date()
        assert result["opened"] > 0
        with running.db.reading() as s:
            def days(kind: str) -> list[dt.date]:
                return sorted(at.date() for at in s.scalars(select(models.Activity.at).where(models.Activity.kind == kind)))

            opens, runs = days("email.open"), days("dispatch.run")
        assert opens and set(opens) == {day}  # signed at the demo's time, accepted, stamped then
        assert runs[-1] == day and runs[0] == day - dt.timedelta(days=1)  # the timeline follows the demo's clock
    finally:
        clock.reset()
        running.stop()


def test_only_an_owner_of_every_company_may_advance_the_demo_clock(tmp_path, caplog):
    """The demo clock runs the scheduler for every company: a viewer, or the owner of only one of
    them, is refused with 403 and a log line, and neither clock moves."""
    running = demo.start(tmp_path / "demo", port=0, sync=False, schedule=False)
    try:
        first, second = running.realms
        make_user(running.db, "viewer@example.com", companies={first: "viewer", second: "viewer"})
        make_user(running.db, "half@example.com", companies={first: "owner", second: "viewer"})
        before, sandbox_before = clock.now(), running.sandbox.clock.now()
        for email in ("viewer@example.com", "half@example.com"):
            session = _login(running, email)
            assert "Advance one day" not in session.get(f"{running.url}/demo", timeout=10).text
            with caplog.at_level(logging.WARNING, logger="qbo_collector.demo"):
                response = _advance(session, running)
            assert response.status_code == 403, email
            assert "Only an owner of every company can advance the demo clock" in response.text
            assert "demo advance refused" in caplog.text
        assert clock.offset() == dt.timedelta(0)
        assert clock.now() - before < dt.timedelta(hours=1)
        assert running.sandbox.clock.now() - sandbox_before < dt.timedelta(hours=1)
    finally:
        clock.reset()
        running.stop()


def test_an_owner_of_every_company_advances_the_demo_clock_a_day(tmp_path):
    running = demo.start(tmp_path / "demo", port=0, sync=False, schedule=False)
    try:
        make_user(running.db, "owner@example.com", companies={realm: "owner" for realm in running.realms})
        session = _login(running, "owner@example.com")
        response = _advance(session, running)
        assert response.status_code == 200 and response.url.endswith("/demo")
        assert "One day later" in response.text
        assert clock.offset() == dt.timedelta(days=1)
    finally:
        clock.reset()
        running.stop()
