"""No back-charging when an invoice starts bearing fees under new rules: fees are charged only for the
periods from the day the rules it bears now began to apply to it (the customer given another policy,
taken back from exclusion, its waiver lifted; the policy's fee periods moved). Periods missed while the
program was simply off are still charged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pytest

from qbo_collector import rules
from qbo_collector.rules import policy as policy_mod
from tests.unit.rules.conftest import D, company, customer, invoice, plan, policy

NO_STEPS = dict(steps=[], repeat_last=None, escalation={"call_task_after_days": None, "handoff_after_days": None})
FRIENDLY = policy("friendly", **NO_STEPS)
FIRM = policy("firm", **NO_STEPS)
US_NET30 = policy("us_net30", **NO_STEPS)
FRANCE = policy("france_b2b", **NO_STEPS)
TAKEN_BACK = D(2026, 7, 15)
CAPPED_AT_2 = policy("us_net30", **NO_STEPS, late_fees={**US_NET30.model_dump(mode="json")["late_fees"], "max_count": 2})


def edited(base: rules.Policy, on: dt.date, **late_fees: object) -> rules.Policy:
    """``base`` with ``late_fees`` changed on the policy page on ``on`` (``with_fee_start`` stamps it)."""
    data = base.model_dump(mode="json")
    data["late_fees"].update(late_fees)
    return policy_mod.with_fee_start(base, rules.Policy.model_validate(data), on)


def rate(base: rules.Policy, on: dt.date, percent: str) -> rules.Policy:
    data = base.model_dump(mode="json")
    data["late_fees"]["rules"][0]["percent"] = percent
    return policy_mod.with_fee_start(base, rules.Policy.model_validate(data), on)


def charged(*, before: tuple[rules.Policy, rules.Customer], after: tuple[rules.Policy, rules.Customer],
            change: dt.date, until: dt.date, inv: rules.Invoice | None = None,
            off: Iterable[dt.date] = ()) -> list[tuple[dt.date, str, str, str]]:
    """Plan once a day from the due date to ``until`` (not on the ``off`` days: the program was off),
    with ``before``'s policy and customer until ``change`` and ``after``'s from it; the fees charged."""
    history: list[rules.HistoryEntry] = []
    out: list[tuple[dt.date, str, str, str]] = []
    skipped = set(off)
    day = D(2026, 4, 1)
    while day <= until:
        if day not in skipped:
            pol, cust = after if day >= change else before
            for a in plan(invoices=[inv or invoice()], today=day, history=history, pol=pol, cust=cust):
                history.extend(rules.record(a))
                if isinstance(a, rules.ChargeFee):
                    out.append((a.on, a.fee_kind, str(a.amount.amount), a.period))
        day += dt.timedelta(days=1)
    return out


def days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days)]


@pytest.mark.parametrize(
    ("before", "after", "change", "until", "inv", "off", "expected"),
    [
        # 1.5 % a month from due + 5 grace days: 04-07 … 09-07 were under "friendly", which charges nothing
        pytest.param((FRIENDLY, customer()), (FIRM, customer(fees_from=D(2026, 9, 15))), D(2026, 9, 15),
                     D(2026, 10, 20), None, (),
                     [(D(2026, 10, 7), "percent", "15.00", "2026-10-07")],
                     id="a customer switched from friendly to firm is charged from the switch, not six months at once"),
        pytest.param((FRIENDLY, customer()), (FIRM, customer(fees_from=D(2026, 9, 7))), D(2026, 9, 7),
                     D(2026, 9, 30), None, (),
                     [(D(2026, 9, 7), "percent", "15.00", "2026-09-07")],
                     id="switched on a period's first day: that period is charged"),
        pytest.param((US_NET30, customer()), (FIRM, customer(fees_from=D(2026, 5, 10))), D(2026, 5, 10),
                     D(2026, 6, 10), None, (),
                     [(D(2026, 4, 2), "percent", "15.00", "2026-04-02"), (D(2026, 5, 2), "percent", "15.00", "2026-05-02"),
                      (D(2026, 6, 7), "percent", "15.00", "2026-06-07")],
                     id="switched between two policies with fees: the new one's earlier periods are not charged again"),
        pytest.param((FRANCE, customer(excluded=True)), (FRANCE, customer(fees_from=D(2026, 10, 17))), D(2026, 10, 17),
                     D(2026, 11, 5), invoice(currency="EUR"), (),
                     [(D(2026, 11, 2), "interest", "5.33", "2026-10-02")],  # 1000 × 12.15 % × 16/365
                     id="interest straddling the day a customer is taken back is billed from it, the indemnity's day is past"),
        pytest.param((US_NET30, customer(excluded=True)), (US_NET30, customer(fees_from=TAKEN_BACK)), TAKEN_BACK,
                     D(2026, 8, 10), None, (),
                     [(D(2026, 8, 2), "percent", "15.00", "2026-08-02")],
                     id="an excluded customer taken back is not charged for the months it was excluded"),
        pytest.param((US_NET30, customer(fees_waived=True)), (US_NET30, customer(fees_from=TAKEN_BACK)), TAKEN_BACK,
                     D(2026, 8, 10), None, (),
                     [(D(2026, 8, 2), "percent", "15.00", "2026-08-02")],
                     id="a customer whose fee waiver is lifted is not charged for the months it was waived"),
        pytest.param((US_NET30, customer()), (edited(US_NET30, D(2026, 4, 10), grace_days=3), customer()), D(2026, 4, 10),
                     D(2026, 5, 10), None, (),
                     [(D(2026, 4, 2), "percent", "15.00", "2026-04-02"), (D(2026, 5, 5), "percent", "15.00", "2026-05-05")],
                     id="grace days moved from 0 to 3: April is charged once, not again from the 5th"),
        pytest.param((US_NET30, customer()),
                     (edited(US_NET30, D(2026, 4, 20), rules=[{"kind": "percent", "percent": "1.5",
                                                               "frequency": "every_n_days", "every_days": 14}]),
                      customer()), D(2026, 4, 20), D(2026, 5, 10), None, (),
                     [(D(2026, 4, 2), "percent", "15.00", "2026-04-02"), (D(2026, 4, 30), "percent", "15.00", "2026-04-30")],
                     id="monthly made every 14 days: the fortnights before the change are not charged"),
        pytest.param((US_NET30, customer()), (rate(US_NET30, D(2026, 6, 10), "2"), customer()), D(2026, 6, 10),
                     D(2026, 7, 10), None, days(D(2026, 4, 1), D(2026, 6, 10)),
                     [(D(2026, 6, 10), "percent", "20.00", "2026-04-02"), (D(2026, 6, 10), "percent", "20.00", "2026-05-02"),
                      (D(2026, 6, 10), "percent", "20.00", "2026-06-02"), (D(2026, 7, 2), "percent", "20.00", "2026-07-02")],
                     id="a rate changed while the program was off trims nothing: the missed months are charged"),
        pytest.param((CAPPED_AT_2, customer()), (edited(CAPPED_AT_2, D(2026, 7, 10), max_count=4), customer()),
                     D(2026, 7, 10), D(2026, 8, 10), None, (),
                     [(D(2026, 4, 2), "percent", "15.00", "2026-04-02"), (D(2026, 5, 2), "percent", "15.00", "2026-05-02"),
                      (D(2026, 8, 2), "percent", "15.00", "2026-08-02")],
                     id="a cap raised: the months the cap held are not charged at once, the next one is"),
        pytest.param((US_NET30, customer()), (US_NET30, customer()), D(2026, 6, 10),
                     D(2026, 7, 10), None, days(D(2026, 4, 1), D(2026, 6, 10)),
                     [(D(2026, 6, 10), "percent", "15.00", "2026-04-02"), (D(2026, 6, 10), "percent", "15.00", "2026-05-02"),
                      (D(2026, 6, 10), "percent", "15.00", "2026-06-02"), (D(2026, 7, 2), "percent", "15.00", "2026-07-02")],
                     id="nothing changed: the periods missed while the program was off are each charged"),
    ],
)
def test_fees_start_when_the_rules_the_invoice_bears_began(before, after, change, until, inv, off, expected) -> None:  # type: ignore[no-untyped-def]
    assert charged(before=before, after=after, change=change, until=until, inv=inv, off=off) == expected


def test_the_next_action_date_waits_for_the_first_period_after_the_switch() -> None:
    """The daily run selects on it: the six periods before the switch are not due, the one after is."""
    firm = policy("firm", **NO_STEPS, alert_owner_when_late=False)

    def nad(cust: rules.Customer) -> dt.date | None:
        return rules.next_action_date(company=company(), invoice=invoice(), customer=cust, policy=firm,
                                      today=D(2026, 9, 15))

    assert nad(customer()) == D(2026, 9, 15)  # without the day: every period since April is due
    assert nad(customer(fees_from=D(2026, 9, 15))) == D(2026, 10, 7)


@pytest.mark.parametrize(
    ("change", "what"),
    [
        pytest.param({"late_fees.grace_days": 3}, {"percent"}, id="grace days"),
        pytest.param({"late_fees.rules.0.frequency": "every_n_days", "late_fees.rules.0.every_days": 30}, {"percent"},
                     id="monthly made every N days"),
        pytest.param({"late_fees.rules": [{"kind": "percent", "percent": "1.5", "frequency": "monthly"},
                                          {"kind": "flat", "amount": {"USD": "25"}}]}, {"flat"}, id="a rule added"),
        pytest.param({"min_balance": {}}, "bar", id="a lower minimum balance"),
        pytest.param({"skip_unsent_invoices": False}, "bar", id="unsent invoices no longer left alone"),
        pytest.param({"late_fees.rules.0.percent": "2"}, None, id="a new rate"),
        pytest.param({"late_fees.max_count": 3, "late_fees.max_amount": {"USD": "100"}}, None, id="caps lowered too"),
        pytest.param({"late_fees.max_count": 6}, "bar", id="a count cap raised"),
        pytest.param({"late_fees.max_percent_of_principal": None}, "bar", id="a percent cap removed"),
        pytest.param({"late_fees.max_amount": {"USD": "300"}}, "bar", id="an amount cap raised"),
        pytest.param({"late_fees.max_amount": {}}, "bar", id="an amount cap removed"),
        pytest.param({"late_fees.max_count": 2, "late_fees.max_percent_of_principal": "10"}, None, id="caps lowered"),
        pytest.param({"late_fees.notify_customer": False, "min_gap_days": 5}, None, id="notices and steps"),
        pytest.param({"late_fees.rules": []}, None, id="every rule removed"),
    ],
)
def test_which_policy_changes_start_the_fees_again(change: dict[str, object], what: object) -> None:
    """A kind whose periods move or that begins to charge is ``started`` (its earlier periods barred, its
    interest trimmed); a change that lets more invoices bear fees only bars earlier periods (``fees_from``):
    the invoices that bore fees all along keep their interest; a new rate, a lower cap, nothing."""
    old = policy("us_net30", **NO_STEPS, min_balance={"USD": "50"}, skip_unsent_invoices=True,
                 late_fees={**US_NET30.model_dump(mode="json")["late_fees"], "fees_from": "2026-03-01",
                            "max_count": 4, "max_amount": {"USD": "200"}, "max_percent_of_principal": "18"})
    new_data = old.model_dump(mode="json")
    for path, value in change.items():
        *parents, leaf = path.split(".")
        node = new_data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        node[leaf] = value
    new = policy_mod.with_fee_start(old, rules.Policy.model_validate({**new_data, "late_fees": {
        **new_data["late_fees"], "fees_from": None}}), D(2026, 5, 10))  # as the form posts it: no day
    assert new.late_fees.fees_from == (D(2026, 5, 10) if what == "bar" else D(2026, 3, 1))
    assert new.late_fees.started == ({k: D(2026, 5, 10) for k in what} if isinstance(what, set) else {})


@pytest.mark.parametrize(
    ("old_rule", "new_rule", "starts"),
    [
        pytest.param({"kind": "flat", "amount": {"USD": "25"}}, {"kind": "flat", "amount": {"USD": "25", "EUR": "25"}},
                     True, id="a flat amount for a currency that had none"),
        pytest.param({"kind": "flat", "amount": {"USD": "25"}}, {"kind": "flat", "amount": {"USD": "30"}},
                     False, id="another flat amount in the same currency"),
        pytest.param({"kind": "percent", "percent": "0", "frequency": "monthly"},
                     {"kind": "percent", "percent": "1", "frequency": "monthly"}, True, id="a rate from zero"),
        pytest.param({"kind": "flat", "amount": {"USD": "25"}, "frequency": "once"},
                     {"kind": "flat", "amount": {"USD": "25"}, "frequency": "once", "every_days": 9},
                     False, id="days that only count every N days"),
    ],
)
def test_a_fee_rule_that_begins_to_charge_starts_the_fees_again(old_rule, new_rule, starts) -> None:  # type: ignore[no-untyped-def]
    old = policy(**NO_STEPS, late_fees={"rules": [old_rule]})
    new = policy_mod.with_fee_start(old, policy(**NO_STEPS, late_fees={"rules": [new_rule]}), D(2026, 5, 10))
    assert new.late_fees.started == ({new_rule["kind"]: D(2026, 5, 10)} if starts else {})
    assert new.late_fees.fees_from is None  # the other kinds' invoices keep their days


def test_the_policy_start_survives_a_json_round_trip() -> None:
    stamped = edited(edited(US_NET30, D(2026, 4, 10), grace_days=3), D(2026, 4, 12), max_count=None)
    back = rules.Policy.model_validate_json(stamped.model_dump_json()).late_fees
    assert back.started == {"percent": D(2026, 4, 10)} and back.fees_from is None
    raised = edited(edited(US_NET30, D(2026, 4, 10), max_count=2), D(2026, 4, 12), max_count=3)
    back = rules.Policy.model_validate_json(raised.model_dump_json()).late_fees
    assert back.fees_from == D(2026, 4, 12) and back.started == {}


def test_a_change_that_lets_more_invoices_bear_fees_trims_no_interest_of_the_others() -> None:
    """Found in review: raising a cap (or lowering the minimum balance) set one day for the whole policy,
    and every late invoice's running month of interest was billed from it (13 days of 31). Such a change
    only bars earlier periods: an invoice that bore interest all along keeps every day."""
    capped = policy("france_b2b", **NO_STEPS, late_fees={**FRANCE.model_dump(mode="json")["late_fees"], "max_count": 10})
    raised = edited(capped, D(2026, 5, 20), max_count=20)
    assert raised.late_fees.fees_from == D(2026, 5, 20) and raised.late_fees.started == {}
    got = charged(before=(capped, customer()), after=(raised, customer()), change=D(2026, 5, 20), until=D(2026, 6, 5),
                  inv=invoice(currency="EUR", total=10000))
    assert [(on, kind, amount) for on, kind, amount, _p in got if kind == "interest"] == [
        (D(2026, 5, 2), "interest", "99.86"), (D(2026, 6, 2), "interest", "103.19")]  # 30 and 31 days at 12.15 %
