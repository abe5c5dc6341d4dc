"""Factories for the rules tests: records with sensible defaults, overridden per row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal

import pytest

from qbo_collector import rules
from qbo_collector.money import Money

D = dt.date


def money(amount: object, currency: str = "USD") -> Money:
    return Money.of(amount, currency)


def company(**overrides: object) -> rules.CompanyContext:
    values: dict[str, object] = dict(realm="r1", time_zone="America/New_York", country="US", currency="USD")
    values.update(overrides)
    return rules.CompanyContext(**values)  # type: ignore[arg-type]


def customer(**overrides: object) -> rules.Customer:
    values: dict[str, object] = dict(id="c1", display_name="Acme Ltd", has_email=True, has_phone=True)
    values.update(overrides)
    return rules.Customer(**values)  # type: ignore[arg-type]


def invoice(**overrides: object) -> rules.Invoice:
    currency = str(overrides.pop("currency", "USD"))
    total = overrides.pop("total", Decimal(1000))
    balance = overrides.pop("balance", total)
    values: dict[str, object] = dict(
        realm="r1", id="i1", customer_id="c1", currency=currency, doc_number=None,
        total=money(total, currency), balance=money(balance, currency),
        txn_date=D(2026, 3, 2), due_date=D(2026, 4, 1),
    )
    values.update(overrides)
    return rules.Invoice(**values)  # type: ignore[arg-type]


def policy(base: str = "friendly", **overrides: object) -> rules.Policy:
    data = rules.PRESETS[base].model_dump(mode="json")
    data.update(overrides)
    return rules.Policy.model_validate(data)


def plan(*, invoices: Sequence[rules.Invoice] | None = None, today: dt.date, history: Iterable[rules.HistoryEntry] = (),
         pauses: Iterable[rules.Pause] = (), pol: rules.Policy | None = None, cust: rules.Customer | None = None,
         co: rules.CompanyContext | None = None, now: dt.datetime | None = None) -> list[rules.Action]:
    return rules.plan(company=co or company(), invoices=invoices if invoices is not None else [invoice()],
                      customer=cust or customer(), policy=pol or policy(), history=tuple(history),
                      pauses=tuple(pauses), today=today, now=now)


def simulate(*, start: dt.date, days: int, invoices: Sequence[rules.Invoice] | None = None,
             pol: rules.Policy | None = None, pauses: Iterable[rules.Pause] = (),
             cust: rules.Customer | None = None, co: rules.CompanyContext | None = None,
             skip: Iterable[dt.date] = ()) -> list[rules.Action]:
    """Run the planner once a day (except on ``skip`` days: the system was off), carrying out everything."""
    history: list[rules.HistoryEntry] = []
    done: list[rules.Action] = []
    off = set(skip)
    for n in range(days):
        day = start + dt.timedelta(days=n)
        if day in off:
            continue
        todays = plan(invoices=invoices, today=day, history=history, pauses=pauses, pol=pol, cust=cust, co=co)
        for action in todays:
            history.extend(rules.record(action))
        done.extend(todays)
    return done


def reminders(actions: Iterable[rules.Action]) -> list[tuple[dt.date, str]]:
    return [(a.on, a.template_key) for a in actions if isinstance(a, rules.SendReminder)]


def email_only(actions: Iterable[rules.Action]) -> list[rules.Action]:
    return [a for a in actions if not isinstance(a, rules.SendReminder) or a.channel == "email"]


@pytest.fixture
def invoice_factory():  # type: ignore[no-untyped-def]
    return invoice
