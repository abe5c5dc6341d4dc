"""Which rows not carried out yet will go out as one message (``dispatch.run.messages_ahead``, the
Upcoming page's "one message with"): those of one address that one run carries out, as the
dispatcher merges them, not those of one day. Pure: rows, customers and a company in memory."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from qbo_collector.db import models
from qbo_collector.dispatch.run import messages_ahead

DAY = dt.date(2026, 12, 8)
LOS_ANGELES = "America/Los_Angeles"
HARTLEY = "ap@h.example"
HARTLEY_MOBILE = "+14155550199"  # a San Francisco mobile


def _at(hour: int, minute: int = 0, *, days: int = 0, zone: str = LOS_ANGELES) -> dt.datetime:
    day = DAY + dt.timedelta(days=days)
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zoneinfo.ZoneInfo(zone)).astimezone(dt.UTC)


def _row(customer: str, due_at: dt.datetime, *, channel: str = "email", dry_run: bool = False) -> models.Outbox:
    return models.Outbox(kind="reminder", channel=channel, customer_qbo_id=customer, template_key="statement",
                         due_at=due_at, dry_run=dry_run)


def _customers() -> dict[str, models.Customer]:
    """H, the parent; E and O, jobs billed with it, reached at H's address."""
    parent = models.Customer(qbo_id="H", display_name="Hartley")
    return {"H": parent, "E": parent, "O": parent}


@pytest.mark.parametrize(("zone", "now", "rows", "messages"), [
    pytest.param(LOS_ANGELES, _at(8), [("H", _at(9), "email"), ("E", _at(14), "email")], [["H"], ["E"]],
                 id="due at 9:00 and at 14:00 the same day: two runs, two messages"),
    pytest.param(LOS_ANGELES, _at(6), [("E", _at(7), "email"), ("H", _at(8, 30), "email")], [["H", "E"]],
                 id="due at 7:00 and 8:30: both wait for the day's run at the 9:00 send hour"),
    pytest.param(LOS_ANGELES, _at(8), [("H", _at(9, days=-1), "email"), ("E", _at(9), "email")], [["H", "E"]],
                 id="one left from yesterday and one due today: the day's run carries both"),
    pytest.param(LOS_ANGELES, _at(15), [("H", _at(9), "email"), ("E", _at(14), "email")], [["H", "E"]],
                 id="both already due when read: the next run carries both"),
    pytest.param(LOS_ANGELES, _at(8), [("H", _at(9), "email"), ("E", _at(9), "sms"), ("O", _at(9), "email")],
                 [["H", "O"], ["E"]], id="one run, two channels: two messages"),
    pytest.param(LOS_ANGELES, _at(8), [("H", _at(9, days=1), "email"), ("E", _at(9), "email")], [["E"], ["H"]],
                 id="the next day's: its own run"),
    pytest.param("America/New_York", _at(8, zone="America/New_York"),
                 [("H", _at(9, zone="America/New_York"), "sms"), ("E", _at(10, 30, zone="America/New_York"), "sms")],
                 [["H", "E"]], id="texts due at 9:00 and 10:30 in New York both wait for 8:00 at a San Francisco mobile"),
])
def test_the_rows_of_one_run_to_one_address_are_one_message(zone: str, now: dt.datetime, rows, messages) -> None:  # type: ignore[no-untyped-def]
    company = models.Company(realm_id="1", timezone=zone, country="US", settings={})
    go = [(_row(c, due, channel=channel), HARTLEY if channel == "email" else HARTLEY_MOBILE) for c, due, channel in rows]
    got = messages_ahead(company, go, _customers(), now=now)
    assert [[r.customer_qbo_id for r, _ in m] for m in got] == messages


def test_a_dry_run_row_never_goes_with_a_real_one() -> None:
    company = models.Company(realm_id="1", timezone=LOS_ANGELES, country="US", settings={})
    go = [(_row("H", _at(9)), HARTLEY), (_row("E", _at(9), dry_run=True), HARTLEY)]
    assert [[r.customer_qbo_id for r, _ in m] for m in messages_ahead(company, go, _customers(), now=_at(8))] == [
        ["H"], ["E"]]


def test_a_later_send_hour_gathers_what_is_due_before_it() -> None:
    """The owner's send hour 15:00: rows due at 9:00 and 14:00 wait for the day's run and go as one."""
    company = models.Company(realm_id="1", timezone=LOS_ANGELES, country="US", settings={"send_hour": 15})
    go = [(_row("H", _at(9)), HARTLEY), (_row("E", _at(14)), HARTLEY)]
    assert [[r.customer_qbo_id for r, _ in m] for m in messages_ahead(company, go, _customers(), now=_at(8))] == [
        ["H", "E"]]
