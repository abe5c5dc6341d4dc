"""Properties over random scenarios: run often or once a day, the same sends and fees; never twice; caps hold."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings, strategies as st

from qbo_collector import rules
from qbo_collector.rules import calendar, model
from tests.unit.rules.conftest import company, customer, invoice, money, policy

START = dt.date(2026, 3, 1)  # spans the March DST changes (US, EU) and April's (NZ)
DAYS = 60
UTC = dt.timezone.utc
ZONES = {"America/Los_Angeles": "US", "Pacific/Auckland": "NZ", "Europe/Paris": "FR", "UTC": "GB"}


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    tz = draw(st.sampled_from(sorted(ZONES)))
    base = draw(st.sampled_from(sorted(rules.PRESETS)))
    fee_rules = list(rules.PRESETS[base].model_dump(mode="json")["late_fees"]["rules"])
    if draw(st.booleans()):
        fee_rules = [r for r in fee_rules if r["kind"] != "flat"]
        fee_rules.append({"kind": "flat", "amount": {"USD": "7", "EUR": "7", "JPY": "700"},
                          "frequency": "every_n_days", "every_days": draw(st.integers(1, 10))})
    late_fees = {
        "rules": fee_rules, "grace_days": draw(st.integers(0, 5)),
        "max_count": draw(st.one_of(st.none(), st.integers(1, 4))),
        "max_amount": draw(st.sampled_from([{}, {"USD": "30", "EUR": "30", "JPY": "3000"}])),
        "max_percent_of_principal": draw(st.sampled_from([None, "2", "5"])),
        # the day the policy let more invoices bear fees, and the day each kind's periods last moved
        "fees_from": draw(st.one_of(st.none(), st.integers(-30, DAYS).map(lambda d: START + dt.timedelta(days=d)))),
        "started": {r["kind"]: START + dt.timedelta(days=draw(st.integers(-30, DAYS)))
                    for r in fee_rules if draw(st.booleans())},
    }
    pol = policy(base, late_fees=late_fees, group_by_customer=draw(st.booleans()),
                 min_gap_days=draw(st.integers(0, 5)), alert_owner_when_late=draw(st.booleans()),
                 skip_unsent_invoices=draw(st.booleans()))
    currency = draw(st.sampled_from(["USD", "EUR", "JPY"]))
    invoices = []
    for n in range(draw(st.integers(1, 3))):
        due = START + dt.timedelta(days=draw(st.integers(-60, 40)))
        status = draw(st.sampled_from(["open", "open", "open", "paid", "voided"]))
        total = draw(st.sampled_from([Decimal("50"), Decimal("1000"), Decimal("12345.67")]))
        balance = total if status == "open" and draw(st.booleans()) else (
            Decimal(0) if status != "open" else draw(st.sampled_from([Decimal(0), total / 3])))
        no_due = draw(st.booleans()) and n == 0
        # the money applied to it, with its day: a paid invoice may owe the interest up to that day
        paid = total - balance if status != "voided" else Decimal(0)
        payments = (rules.Payment(on=START + dt.timedelta(days=draw(st.integers(-20, DAYS))), amount=money(paid, currency)),
                    ) if paid and draw(st.booleans()) else ()
        invoices.append(invoice(id=f"i{n}", currency=currency, total=total, balance=balance, status=status,
                                payments=payments,
                                txn_date=due - dt.timedelta(days=30), due_date=None if no_due else due,
                                term_due_days=30 if no_due and draw(st.booleans()) else None,
                                sent=draw(st.sampled_from([True, True, False])),
                                sent_on=draw(st.one_of(st.none(), st.integers(-40, 40).map(
                                    lambda d: START + dt.timedelta(days=d))))))
    pauses: list[rules.Pause] = []
    for n in range(draw(st.integers(0, 2))):
        held = draw(st.integers(0, len(invoices) - 1))
        ids = frozenset({f"i{held}"})
        due = rules.effective_due_date(invoices[held])[0] or START
        if draw(st.booleans()):  # a few days before the invoice's due date, often ending after it
            start = max(START, due - dt.timedelta(days=draw(st.integers(1, 10))))
        else:
            start = START + dt.timedelta(days=draw(st.integers(0, DAYS)))
        length = dt.timedelta(days=draw(st.integers(1, 20)))
        kind = draw(st.sampled_from(["promise", "dispute", "dispute_open", "manual", "plan"]))
        if kind == "promise":
            pauses.append(rules.Promise(made_on=start, until=start + length, amount=money(10, currency), invoice_ids=ids))
        elif kind == "dispute":
            pauses.append(rules.Dispute(opened_on=start, resolved_on=start + length, invoice_ids=ids))
        elif kind == "dispute_open":
            pauses.append(rules.Dispute(opened_on=start, invoice_ids=ids))
        elif kind == "plan":
            pauses.append(rules.PaymentPlan(id=f"p{n}", agreed_on=start, invoice_ids=ids, instalments=(
                rules.Instalment(due_on=start + length, amount=money(invoices[held].balance.amount, currency)),)))
        else:
            pauses.append(rules.ManualPause(start=start, resume_on=start + length, invoice_ids=ids))
    credit = draw(st.sampled_from([None, None, Decimal(50), Decimal(1000), Decimal("13345.67")]))
    cust = customer(has_email=draw(st.booleans()), has_phone=draw(st.booleans()),
                    credits=(money(credit, currency),) if credit is not None else (),
                    # the day it was given this policy, taken back from exclusion or had its waiver lifted
                    fees_from=draw(st.one_of(st.none(), st.integers(-30, DAYS).map(
                        lambda d: START + dt.timedelta(days=d)))))
    return dict(company=company(time_zone=tz, country=ZONES[tz]), customer=cust, policy=pol,
                invoices=invoices, pauses=pauses)


def run_daily(sc: dict[str, object], check_next_action: bool = False) -> list[rules.Action]:
    history: list[rules.HistoryEntry] = []
    out: list[rules.Action] = []
    stored: dict[str, dt.date | None] = {}
    invoices: list[rules.Invoice] = sc["invoices"]  # type: ignore[assignment]

    def nad(inv: rules.Invoice, today: dt.date) -> dt.date | None:
        return rules.next_action_date(company=sc["company"], invoice=inv, customer=sc["customer"], policy=sc["policy"],  # type: ignore[arg-type]
                                      history=history, pauses=sc["pauses"], today=today, invoices=invoices)  # type: ignore[arg-type]

    if check_next_action:
        stored = {i.id: nad(i, START) for i in invoices}
    for n in range(DAYS):
        day = START + dt.timedelta(days=n)
        todays = rules.plan(today=day, history=history, **sc)  # type: ignore[arg-type]
        for a in todays:
            history.extend(rules.record(a))
            if check_next_action:
                for inv_id in _acted_on(a):
                    assert stored[inv_id] is not None and stored[inv_id] <= day, (a, stored[inv_id])  # type: ignore[operator]
                if isinstance(a, rules.AlertOwner) and a.topic == "credit":
                    assert any(stored[i] is not None and stored[i] <= day for i in a.invoices), (a, stored)  # type: ignore[operator]
        if check_next_action:
            touched = {i for a in todays for i in a.invoice_ids}
            for inv in invoices:
                if inv.id in touched:
                    stored[inv.id] = nad(inv, day + dt.timedelta(days=1))
        out.extend(todays)
    return out


def _acted_on(a: rules.Action) -> set[str]:
    """The invoices whose own schedule produced the action (a statement also lists the others)."""
    steps = getattr(a, "steps", ())
    if steps or isinstance(a, rules.SendReminder):
        return {r.invoice_id for r in steps}
    if isinstance(a, rules.AlertOwner) and a.topic == "promise_broken":
        return set()  # judged per customer; the invoices' next dates include the promise's end
    if isinstance(a, rules.AlertOwner) and a.topic == "credit":
        return set()  # judged per customer: it names every invoice the credit settles once the first is late
    return set(a.invoice_ids)


def run_hourly(sc: dict[str, object], with_now: bool) -> list[rules.Action]:
    """Every hour: plan for the company-local date; either claim everything planned (outbox) or only what is due now."""
    history: list[rules.HistoryEntry] = []
    out: list[rules.Action] = []
    tz = calendar.zone(sc["company"].time_zone)  # type: ignore[attr-defined]
    first = dt.datetime.combine(START, dt.time(0), tzinfo=tz).astimezone(UTC)
    last = dt.datetime.combine(START + dt.timedelta(days=DAYS), dt.time(0), tzinfo=tz).astimezone(UTC)
    now = first
    while now < last:
        todays = rules.plan(today=now.astimezone(tz).date(), now=now if with_now else None, history=history, **sc)  # type: ignore[arg-type]
        for a in todays:
            history.extend(rules.record(a))
        out.extend(todays)
        now += dt.timedelta(hours=1)
    return out


def summary(actions: list[rules.Action]) -> list[tuple[str, dt.date, dt.datetime]]:
    return sorted((a.dedupe_key, a.on, a.due_at) for a in actions)


SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenarios(), st.booleans())
def test_hourly_runs_send_and_charge_exactly_what_a_daily_run_does(sc: dict[str, object], with_now: bool) -> None:
    assert summary(run_hourly(sc, with_now)) == summary(run_daily(sc))


@settings(max_examples=40, deadline=None)
@given(scenarios())
def test_invariants_of_a_daily_run(sc: dict[str, object]) -> None:
    actions = run_daily(sc, check_next_action=True)
    keys = [a.dedupe_key for a in actions]
    assert len(keys) == len(set(keys)), "a dedupe key was planned twice"
    invoices = {i.id: i for i in sc["invoices"]}  # type: ignore[attr-defined]
    pol: rules.Policy = sc["policy"]  # type: ignore[assignment]
    for a in actions:
        for inv_id in a.invoice_ids:
            inv = invoices[inv_id]
            # paid late: only the interest up to the day it was paid, marked so
            assert inv.is_open or (isinstance(a, rules.ChargeFee) and a.fee_kind == "interest"
                                   and a.paid_on is not None and a.paid_on == rules.paid_on(inv)
                                   and a.on >= a.paid_on), f"action for a {inv.status} invoice with balance {inv.balance}: {a}"
            if not (isinstance(a, rules.AlertOwner) and a.topic == "promise_broken"):
                covering = [p for p in sc["pauses"] if model.covers(p, inv_id)]  # type: ignore[attr-defined]
                # a payment plan's own reminders and alerts go out while it holds
                holding = [p for p in covering if ":plan:" not in a.dedupe_key or not isinstance(p, rules.PaymentPlan)]
                assert rules.planner._paused_on(holding, pol, a.on) is None, f"action on a paused day: {a}"
                if pol.skip_unsent_invoices and not inv.sent and inv_id in _acted_on(a):
                    # only a promise, dispute or plan says the customer knows an invoice never sent
                    assert any(not isinstance(p, rules.ManualPause) for p in covering), f"action on an unsent invoice: {a}"
            if not (isinstance(a, rules.AlertOwner) and a.topic in ("credit", "promise_broken")):
                # the customer's unused credit settles this one: nothing goes to them about it
                settled = rules.credit_covered(sc["invoices"], sc["customer"], sc["pauses"], today=a.on)  # type: ignore[arg-type]
                assert inv_id not in settled or inv_id not in _acted_on(a), f"action on an invoice credit settles: {a}"
            if isinstance(a, rules.ChargeFee) and pol.skip_unsent_invoices and inv.sent_on is not None:
                assert a.on >= inv.sent_on, f"fee before the invoice was sent: {a}"
            if isinstance(a, rules.SendReminder) and a.step is not None and a.template_key in (
                    "reminder_before_due", "reminder_due_today"):  # a step's message: not a payment plan's
                due = rules.effective_due_date(inv)[0]
                assert due is not None and a.on <= due, f"a message saying the invoice is not yet late, after {due}: {a}"
            starts = [d for d in (sc["customer"].fees_from, pol.late_fees.fees_from,  # type: ignore[attr-defined]
                                  pol.late_fees.started.get(a.fee_kind) if isinstance(a, rules.ChargeFee) else None)
                      if d is not None]
            if isinstance(a, rules.ChargeFee) and starts:  # no period before the rules it bears began to apply
                assert a.on >= max(starts), f"fee before the fee rules applied: {a}"
                if a.period != "once" and a.fee_kind != "interest":
                    assert dt.date.fromisoformat(a.period) >= max(starts), f"back-charged period: {a}"
    fees: dict[str, list[rules.ChargeFee]] = {}
    for a in actions:
        if isinstance(a, rules.ChargeFee):
            fees.setdefault(a.invoice_id, []).append(a)
            assert a.amount.amount > 0 and a.amount == a.amount.rounded()
    caps = pol.late_fees
    for inv_id, charged in fees.items():
        inv = invoices[inv_id]
        total = sum((f.amount.amount for f in charged), Decimal(0))
        assert not inv.is_late_fee
        if caps.max_count is not None:
            assert len(charged) <= caps.max_count
        if inv.currency in caps.max_amount:
            assert total <= caps.max_amount[inv.currency]
        if caps.max_percent_of_principal is not None:
            assert total <= inv.total.amount * caps.max_percent_of_principal / 100


@settings(max_examples=20, deadline=None)
@given(scenarios(), st.integers(0, DAYS))
def test_same_inputs_same_actions(sc: dict[str, object], offset: int) -> None:
    day = START + dt.timedelta(days=offset)
    assert rules.plan(today=day, **sc) == rules.plan(today=day, **sc)  # type: ignore[arg-type]


def _next_action_dates(sc: dict[str, object], history: list[rules.HistoryEntry],
                       today: dt.date) -> dict[str, dt.date | None]:
    return {inv.id: rules.next_action_date(company=sc["company"], invoice=inv, customer=sc["customer"],  # type: ignore[arg-type]
                                           policy=sc["policy"], history=history, pauses=sc["pauses"], today=today,  # type: ignore[arg-type]
                                           invoices=sc["invoices"])  # type: ignore[arg-type]
            for inv in sc["invoices"]}  # type: ignore[attr-defined]


def _due(dates: dict[str, dt.date | None], today: dt.date) -> set[str]:
    """What the daily run's index selects: the invoices whose next-action date has come."""
    return {inv_id for inv_id, day in dates.items() if day is not None and day <= today}


@settings(max_examples=30, deadline=None)
@given(scenarios())
def test_a_plan_focused_on_the_invoices_due_decides_exactly_what_a_full_plan_does(sc: dict[str, object]) -> None:
    history: list[rules.HistoryEntry] = []
    for n in range(DAYS):
        day = START + dt.timedelta(days=n)
        todays = rules.plan(today=day, history=history, **sc)  # type: ignore[arg-type]
        focus = _due(_next_action_dates(sc, history, day), day)
        assert rules.plan(today=day, history=history, focus=focus, **sc) == todays  # type: ignore[arg-type]
        for a in todays:
            history.extend(rules.record(a))


@settings(max_examples=30, deadline=None)
@given(scenarios(), st.booleans())
def test_plan_and_next_gives_the_plan_and_the_dates_next_action_date_gives_for_tomorrow(
        sc: dict[str, object], focused: bool) -> None:
    history: list[rules.HistoryEntry] = []
    for n in range(DAYS):
        day = START + dt.timedelta(days=n)
        focus = _due(_next_action_dates(sc, history, day), day) if focused else None
        todays, dates = rules.plan_and_next(today=day, history=history, focus=focus, **sc)  # type: ignore[arg-type]
        assert todays == rules.plan(today=day, history=history, focus=focus, **sc)  # type: ignore[arg-type]
        for a in todays:
            history.extend(rules.record(a))
        expected = _next_action_dates(sc, history, day + dt.timedelta(days=1))
        assert dates == {inv_id: d for inv_id, d in expected.items() if focus is None or inv_id in focus}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.lists(st.sampled_from([0, 0, 0, 10, 15, 20, 30]), min_size=20, max_size=20))
def test_stored_dates_still_find_everything_when_messages_go_out_hours_late(sc: dict[str, object],
                                                                            delays: list[int]) -> None:
    """The daily run keeps the dates ``plan_and_next`` gave, computed as if each message went out on
    time; some go out 10 to 30 hours late (a text held until daytime, a backlog), past midnight in the
    customer's zone. Selecting on the stored dates must still do each day exactly what a full plan does."""
    history: list[rules.HistoryEntry] = []
    stored = _next_action_dates(sc, history, START)
    late = iter(delays * DAYS)
    for n in range(DAYS):
        day = START + dt.timedelta(days=n)
        full = rules.plan(today=day, history=history, **sc)  # type: ignore[arg-type]
        todays, dates = rules.plan_and_next(today=day, history=history, focus=_due(stored, day), **sc)  # type: ignore[arg-type]
        assert todays == full, day
        for a in todays:
            hours = next(late) if isinstance(a, rules.SendReminder) else 0
            history.extend(rules.record(a, at=a.due_at + dt.timedelta(hours=hours)))
        stored.update(dates)
