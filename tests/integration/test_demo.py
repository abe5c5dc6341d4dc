"""`make demo`'s promise: the page serves, with both demo companies connected through the real OAuth flow."""

from __future__ import annotations

import datetime as dt
import re

import requests

from qbo_collector import demo


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


def test_advancing_the_demo_a_day_keeps_opens_and_stamps_sends_with_the_demo_date(tmp_path):
    """"Advance one day" moves the program's clock and the sandbox's together: what is sent that day
    is stamped with the demo's date, and the email events the sandbox signs at its time are accepted."""
    from sqlalchemy import select

    from qbo_collector import clock
    from qbo_collector.db import models

    running = demo.start(tmp_path / "demo", port=0, sync=True, schedule=False)
    try:
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
