"""Send window: local hour in the right UTC instant, weekdays, public holidays, DST, leap day."""

from __future__ import annotations

import datetime as dt

import pytest

from qbo_collector import rules
from qbo_collector.rules import calendar
from tests.unit.rules.conftest import D, company, customer, invoice, plan, policy, simulate

UTC = dt.timezone.utc


def window(hour: int, minute: int = 0) -> rules.policy.SendWindow:
    return rules.policy.SendWindow(hour=hour, minute=minute, weekdays=(0, 1, 2, 3, 4, 5, 6), skip_holidays=False)


@pytest.mark.parametrize(
    ("tz", "day", "hour", "minute", "expected"),
    [
        pytest.param("America/Los_Angeles", D(2026, 3, 6), 17, 0, dt.datetime(2026, 3, 7, 1, tzinfo=UTC),
                     id="17:00 in Los Angeles in winter is 01:00 UTC the next day"),
        pytest.param("America/Los_Angeles", D(2026, 3, 9), 17, 0, dt.datetime(2026, 3, 10, 0, tzinfo=UTC),
                     id="17:00 in Los Angeles after the spring change is 00:00 UTC the next day"),
        pytest.param("Pacific/Auckland", D(2026, 4, 1), 9, 0, dt.datetime(2026, 3, 31, 20, tzinfo=UTC),
                     id="09:00 in Auckland in summer time is 20:00 UTC the day before"),
        pytest.param("Pacific/Auckland", D(2026, 4, 6), 9, 0, dt.datetime(2026, 4, 5, 21, tzinfo=UTC),
                     id="09:00 in Auckland after the April change is 21:00 UTC the day before"),
        pytest.param("Pacific/Auckland", D(2026, 4, 1), 17, 0, dt.datetime(2026, 4, 1, 4, tzinfo=UTC),
                     id="17:00 in Auckland is the same UTC date"),
        pytest.param("America/New_York", D(2026, 10, 30), 9, 0, dt.datetime(2026, 10, 30, 13, tzinfo=UTC),
                     id="09:00 in New York before the autumn change is 13:00 UTC"),
        pytest.param("America/New_York", D(2026, 11, 2), 9, 0, dt.datetime(2026, 11, 2, 14, tzinfo=UTC),
                     id="09:00 in New York after the autumn change is 14:00 UTC"),
        pytest.param("America/Los_Angeles", D(2026, 3, 8), 2, 30, dt.datetime(2026, 3, 8, 10, 30, tzinfo=UTC),
                     id="a send time inside the spring-forward gap moves forward by the gap"),
        pytest.param("America/New_York", D(2026, 11, 1), 1, 30, dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
                     id="an ambiguous send time in the autumn takes its first occurrence"),
        pytest.param("Europe/Paris", D(2026, 3, 30), 9, 0, dt.datetime(2026, 3, 30, 7, tzinfo=UTC),
                     id="09:00 in Paris in summer time is 07:00 UTC"),
        pytest.param("Asia/Tokyo", D(2028, 2, 29), 9, 0, dt.datetime(2028, 2, 29, 0, tzinfo=UTC),
                     id="leap day in Tokyo"),
    ],
)
def test_local_send_time_in_utc(tz: str, day: dt.date, hour: int, minute: int, expected: dt.datetime) -> None:
    assert calendar.local_instant(day, window(hour, minute), tz) == expected


@pytest.mark.parametrize(
    ("tz", "hour", "due", "expected_due_at"),
    [
        pytest.param("America/Los_Angeles", 17, D(2026, 4, 1), dt.datetime(2026, 4, 2, 0, tzinfo=UTC),
                     id="reminder at 17:00 Los Angeles is planned for the next UTC date"),
        pytest.param("Pacific/Auckland", 9, D(2026, 4, 1), dt.datetime(2026, 3, 31, 20, tzinfo=UTC),
                     id="reminder at 09:00 Auckland is planned for the previous UTC date"),
    ],
)
def test_reminder_due_at_uses_the_local_date(tz: str, hour: int, due: dt.date, expected_due_at: dt.datetime) -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"}],
                 send_window={"hour": hour, "weekdays": [0, 1, 2, 3, 4, 5, 6], "skip_holidays": False})
    co = company(time_zone=tz, country="NZ" if "Auckland" in tz else "US")
    [action] = plan(invoices=[invoice(due_date=due)], today=due, pol=pol, co=co, cust=customer(has_phone=False))
    assert action.due_at == expected_due_at and action.on == due


@pytest.mark.parametrize("tz", ["America/Los_Angeles", "Pacific/Auckland", "UTC"])
def test_hourly_runs_across_midnight_utc_send_exactly_once(tz: str) -> None:
    """The Invoice Ninja #8665 trap: the send hour falls on another UTC date than the local one."""
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"}], min_gap_days=0,
                 send_window={"hour": 17, "weekdays": [0, 1, 2, 3, 4, 5, 6], "skip_holidays": False})
    co = company(time_zone=tz, country="US")
    history: list[rules.HistoryEntry] = []
    sent = []
    start = dt.datetime(2026, 3, 30, tzinfo=UTC)
    for h in range(24 * 5):
        now = start + dt.timedelta(hours=h)
        today = now.astimezone(calendar.zone(tz)).date()
        for a in plan(invoices=[invoice()], today=today, now=now, pol=pol, co=co, history=history,
                      cust=customer(has_phone=False)):
            history.extend(rules.record(a))
            sent.append(a)
    assert [(a.on, a.due_at.astimezone(calendar.zone(tz)).hour) for a in sent] == [(D(2026, 4, 1), 17)]


def test_now_before_the_send_hour_holds_the_action_back() -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"}])
    early = dt.datetime(2026, 4, 1, 12, tzinfo=UTC)  # 08:00 in New York, window 09:00
    assert plan(today=D(2026, 4, 1), now=early, pol=pol, cust=customer(has_phone=False)) == []
    assert len(plan(today=D(2026, 4, 1), now=early + dt.timedelta(hours=1), pol=pol, cust=customer(has_phone=False))) == 1


@pytest.mark.parametrize(
    ("country", "tz", "due", "sent_on"),
    [
        pytest.param("US", "America/New_York", D(2026, 7, 3), D(2026, 7, 6),
                     id="due on the observed Independence Day goes out the next business day"),
        pytest.param("FR", "Europe/Paris", D(2026, 5, 1), D(2026, 5, 4),
                     id="due on 1 May in France goes out on Monday 4 May"),
        pytest.param("FR", "Europe/Paris", D(2026, 5, 14), D(2026, 5, 15),
                     id="due on Ascension Thursday goes out on Friday"),
        pytest.param("US", "America/New_York", D(2026, 5, 1), D(2026, 5, 1),
                     id="1 May is an ordinary day in the US"),
        pytest.param("US", "America/New_York", D(2026, 4, 4), D(2026, 4, 6), id="due on a Saturday goes out Monday"),
        pytest.param("NZ", "Pacific/Auckland", D(2026, 4, 27), D(2026, 4, 28),
                     id="ANZAC Day observed Monday in New Zealand"),
    ],
)
def test_holiday_on_the_due_date(country: str, tz: str, due: dt.date, sent_on: dt.date) -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"}])
    sent = simulate(start=due - dt.timedelta(days=3), days=10, invoices=[invoice(due_date=due)], pol=pol,
                    co=company(country=country, time_zone=tz), cust=customer(has_phone=False))
    assert [a.on for a in sent] == [sent_on]


@pytest.mark.parametrize(
    ("due", "offset", "template", "sent"),
    [
        pytest.param(D(2026, 4, 1), 0, "reminder_due_today", (D(2026, 4, 1), "reminder_due_today"),
                     id="due today on a Wednesday: due today"),
        pytest.param(D(2026, 4, 4), 0, "reminder_due_today", (D(2026, 4, 6), "reminder_overdue_gentle"),
                     id="due on a Saturday: Monday's message says when it was due, not that it is due today"),
        pytest.param(D(2026, 4, 4), 0, "reminder_before_due", (D(2026, 4, 6), "reminder_overdue_gentle"),
                     id="a before-due step on the due date, a Saturday: Monday's message says when it was due"),
        pytest.param(D(2026, 4, 6), -2, "reminder_before_due", (D(2026, 4, 6), "reminder_before_due"),
                     id="a before-due step moved onto the due date (Saturday 4 to Monday 6) keeps its words"),
    ],
)
def test_a_step_of_the_due_date_that_goes_out_after_it_is_sent_in_overdue_words(
        due: dt.date, offset: int, template: str, sent: tuple[dt.date, str]) -> None:
    """Found in an audit: a due-today step moved off a weekend told the customer on Monday that the
    invoice "is due today". It goes out in the words of the first overdue reminder (due on …, still unpaid)."""
    pol = policy(steps=[{"offset_days": offset, "template": template}], min_gap_days=0)
    got = simulate(start=due - dt.timedelta(days=3), days=10, invoices=[invoice(due_date=due)], pol=pol,
                   cust=customer(has_phone=False))
    assert [(a.on, a.template_key, a.step) for a in got] == [(*sent, 0)]  # type: ignore[attr-defined]


def test_skip_holidays_off_sends_on_the_holiday() -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"}],
                 send_window={"hour": 9, "skip_holidays": False})
    sent = simulate(start=D(2026, 7, 1), days=5, invoices=[invoice(due_date=D(2026, 7, 3))], pol=pol,
                    cust=customer(has_phone=False))
    assert [a.on for a in sent] == [D(2026, 7, 3)]


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        pytest.param(D(2028, 2, 29), 12, D(2029, 2, 28), id="leap day plus a year is 28 February"),
        pytest.param(D(2028, 1, 31), 1, D(2028, 2, 29), id="31 January plus a month in a leap year is 29 February"),
        pytest.param(D(2026, 1, 31), 1, D(2026, 2, 28), id="31 January plus a month is 28 February"),
        pytest.param(D(2026, 1, 31), 2, D(2026, 3, 31), id="months count from the start, no drift"),
    ],
)
def test_add_months(day: dt.date, months: int, expected: dt.date) -> None:
    assert calendar.add_months(day, months) == expected


def test_step_on_a_leap_day() -> None:
    pol = policy(steps=[{"offset_days": 0, "template": "reminder_due_today"},
                        {"offset_days": 1, "template": "reminder_overdue_gentle"}], min_gap_days=0)
    sent = simulate(start=D(2028, 2, 25), days=10, invoices=[invoice(txn_date=D(2028, 1, 30), due_date=D(2028, 2, 29))],
                    pol=pol, cust=customer(has_phone=False))
    assert [a.on for a in sent] == [D(2028, 2, 29), D(2028, 3, 1)]


def test_customer_time_zone_sets_the_message_hour_but_not_the_fee_hour() -> None:
    pol = policy(steps=[{"offset_days": 1, "template": "reminder_overdue_gentle"}],
                 late_fees={"rules": [{"kind": "flat", "amount": {"USD": "10"}}]})
    actions = plan(today=D(2026, 4, 2), pol=pol, cust=customer(has_phone=False, time_zone="Europe/Paris"))
    by_kind = {a.kind: a.due_at for a in actions}
    assert by_kind == {"send_reminder": dt.datetime(2026, 4, 2, 7, tzinfo=UTC),
                       "charge_fee": dt.datetime(2026, 4, 2, 13, tzinfo=UTC)}
