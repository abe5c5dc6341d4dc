"""The collection policy: what is sent when, which fees apply. Stored per company as JSON.

A ``Policy`` is a pydantic model: ``Policy.model_validate_json(text)`` reads it (and
refuses anything malformed with a message per field, see ``field_errors``),
``policy.model_dump_json()`` writes it. ``version`` is the format version; bump it and
add a migration in ``upgrade()`` when the shape changes.

Shape (every field has a default; ``PRESETS`` holds the shipped ones)::

    {"version": 1, "name": "friendly",
     "steps": [{"offset_days": -3, "anchor": "due_date", "channels": ["email"],
                "template": "reminder_before_due", "tone": "friendly"}, ...],
     "repeat_last": {"every_days": 14, "max_times": 3},          # or null
     "min_gap_days": 3, "min_balance": {"USD": "5.00"},
     "send_window": {"hour": 9, "minute": 0, "weekdays": [0,1,2,3,4], "skip_holidays": true},
     "group_by_customer": false,
     "late_fees": {"grace_days": 0, "rules": [{"kind": "interest", "percent": "10",
                   "add_ecb_rate": true, "frequency": "monthly"}],
                   "max_count": null, "max_amount": {}, "max_percent_of_principal": null,
                   "notify_customer": true, "fees_from": null},             # set by ``with_fee_start``
     "ecb_rate_percent": "2.15",
     "discount_tiers": [{"days_after_invoice": 10, "percent": "2"}],
     "escalation": {"call_task_after_days": 7, "handoff_after_days": 21},
     "promise_grace_days": 1, "alert_owner_when_late": false, "skip_unsent_invoices": false,
     "payment_plan": {"remind_days_before": 3, "remind_days_after": 1}}

Step anchors: ``due_date`` (negative offset = before), ``invoice_date``, or
``previous_step`` (days after the previous step actually went out, else after its date).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TEMPLATE_KEYS = (
    "reminder_before_due",
    "reminder_due_today",
    "reminder_overdue_gentle",
    "reminder_overdue_firm",
    "reminder_final",
    "statement",
    "late_fee_notice",
    "promise_broken",
    "owner_alert",
)
CHANNELS = ("email", "sms", "call_task", "letter_task", "owner_alert")

TemplateKey = Literal[
    "reminder_before_due", "reminder_due_today", "reminder_overdue_gentle", "reminder_overdue_firm",
    "reminder_final", "statement", "late_fee_notice", "promise_broken", "owner_alert",
]
Channel = Literal["email", "sms", "call_task", "letter_task", "owner_alert"]
Tone = Literal["friendly", "neutral", "firm"]  # no "threatening": the templates never threaten
Percent = Annotated[Decimal, Field(ge=0, le=100)]
Amount = Annotated[Decimal, Field(ge=0)]

CURRENT_VERSION = 1


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _currency_map(value: dict[str, Decimal]) -> dict[str, Decimal]:
    out = {}
    for code, amount in value.items():
        if len(code) != 3 or not code.isalpha():
            raise ValueError(f"{code!r} is not a currency code; use three letters such as EUR or USD.")
        out[code.upper()] = amount
    return out


class Step(_Model):
    """One reminder step."""

    offset_days: int = Field(ge=-365, le=3650)
    anchor: Literal["due_date", "invoice_date", "previous_step"] = "due_date"
    channels: tuple[Channel, ...] = ("email",)
    template: TemplateKey
    tone: Tone = "friendly"

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("Choose at least one channel for this step.")
        if len(set(value)) != len(value):
            raise ValueError("Each channel may appear once per step.")
        return value


class Repeat(_Model):
    """Repeat the last step every ``every_days``, at most ``max_times`` more times."""

    every_days: int = Field(ge=1, le=365)
    max_times: int = Field(ge=1, le=52)


class SendWindow(_Model):
    """When messages and tasks go out: local time, allowed weekdays (0 = Monday), holidays skipped."""

    hour: int = Field(default=9, ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    skip_holidays: bool = True

    @field_validator("weekdays")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("Allow at least one weekday.")
        if any(d < 0 or d > 6 for d in value):
            raise ValueError("Weekdays are numbered 0 (Monday) to 6 (Sunday).")
        return tuple(sorted(set(value)))


class FeeRule(_Model):
    """One kind of late fee.

    flat: ``amount`` per currency each period. percent: ``percent`` of the overdue balance
    each period. interest: simple annual ``percent`` (plus the ECB rate when
    ``add_ecb_rate``), pro-rated per day (actual/365), billed at the end of each period.
    indemnity: fixed ``amount`` per currency, once per invoice (France: €40).
    """

    kind: Literal["flat", "percent", "interest", "indemnity"]
    amount: dict[str, Amount] = {}
    percent: Percent | None = None
    add_ecb_rate: bool = False
    frequency: Literal["once", "every_n_days", "monthly"] = "once"
    every_days: int | None = Field(default=None, ge=1, le=365)

    _amount_codes = field_validator("amount")(_currency_map)

    @model_validator(mode="after")
    def _coherent(self) -> "FeeRule":
        article = "An" if self.kind in ("indemnity", "interest") else "A"
        if self.kind in ("flat", "indemnity") and not self.amount:
            raise ValueError(f"{article} {self.kind} fee needs an amount for at least one currency.")
        if self.kind in ("percent", "interest") and self.percent is None:
            raise ValueError(f"{article} {self.kind} fee needs a percent.")
        if self.kind == "interest" and self.frequency == "once":
            raise ValueError("Interest is billed per period: choose monthly or every N days.")
        if self.kind == "indemnity" and self.frequency != "once":
            raise ValueError("The recovery indemnity is charged once per invoice.")
        if self.frequency == "every_n_days" and self.every_days is None:
            raise ValueError("Say every how many days the fee repeats.")
        return self


class LateFees(_Model):
    """Late fees: rules (at most one per kind), grace days after the due date, and caps per invoice.

    ``notify_customer``: once a fee is posted in QuickBooks, the customer gets an email saying so
    (template ``late_fee_notice``), in the next run. Set by ``with_fee_start``, never on the form:
    ``started``, per fee kind, the day its periods moved or it began to charge — no period of that kind
    that came before is charged, and its interest straddling the day is billed from it; ``fees_from``, the
    day invoices that bore no fee began to (a lower minimum balance, a cap raised, unsent invoices no
    longer left alone) — no period that came before is charged, but nothing is trimmed: the invoices that
    bore fees all along keep every day of theirs. None / empty: no such day.
    """

    rules: tuple[FeeRule, ...] = ()
    grace_days: int = Field(default=0, ge=0, le=365)
    notify_customer: bool = True
    max_count: int | None = Field(default=None, ge=1)
    max_amount: dict[str, Amount] = {}
    max_percent_of_principal: Percent | None = None
    fees_from: dt.date | None = None
    started: dict[str, dt.date] = {}

    _max_codes = field_validator("max_amount")(_currency_map)

    @field_validator("rules")
    @classmethod
    def _one_per_kind(cls, value: tuple[FeeRule, ...]) -> tuple[FeeRule, ...]:
        kinds = [r.kind for r in value]
        if len(set(kinds)) != len(kinds):
            raise ValueError("Use at most one fee rule of each kind.")
        return value


class DiscountTier(_Model):
    """``percent`` off when paid within ``days_after_invoice`` of the invoice date."""

    days_after_invoice: int = Field(ge=0, le=365)
    percent: Decimal = Field(gt=0, le=50)


class Escalation(_Model):
    """After the last step: a call task, then a hand-off task (collections agency / legal) for the owner.

    0 days reads as 1: a task comes the day after what it follows went out. The same day would depend on
    how often the planner runs (an hourly run sees the last step sent at 9:00 and creates the task at
    10:00; the daily run plans both at once and could not), which the engine must never do.
    """

    call_task_after_days: int | None = Field(default=7, ge=0, le=365)
    handoff_after_days: int | None = Field(default=21, ge=0, le=730)

    @field_validator("call_task_after_days", "handoff_after_days")
    @classmethod
    def _the_day_after_at_least(cls, value: int | None) -> int | None:
        return 1 if value == 0 else value


class PaymentPlanReminders(_Model):
    remind_days_before: int = Field(default=3, ge=0, le=60)
    remind_days_after: int = Field(default=1, ge=0, le=60)


class Policy(_Model):
    """A company's (or a customer group's) collection policy. See the module docstring for the JSON shape."""

    version: int = CURRENT_VERSION
    name: str = Field(default="friendly", min_length=1, max_length=64)
    steps: tuple[Step, ...] = ()
    repeat_last: Repeat | None = None
    min_gap_days: int = Field(default=3, ge=0, le=90)
    min_balance: dict[str, Amount] = {}
    send_window: SendWindow = SendWindow()
    group_by_customer: bool = False
    late_fees: LateFees = LateFees()
    ecb_rate_percent: Decimal = Field(default=Decimal("2.15"), ge=-5, le=50)
    discount_tiers: tuple[DiscountTier, ...] = ()
    escalation: Escalation = Escalation()
    promise_grace_days: int = Field(default=1, ge=0, le=30)
    alert_owner_when_late: bool = False
    # leave alone (no reminder, fee or alert) an invoice QuickBooks never emailed nor printed, until it is
    # sent or a person records a promise, dispute, plan or pause on it: the customer may never have seen it
    skip_unsent_invoices: bool = False
    payment_plan: PaymentPlanReminders = PaymentPlanReminders()

    _min_codes = field_validator("min_balance")(_currency_map)

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != CURRENT_VERSION:
            raise ValueError(f"This program reads policy version {CURRENT_VERSION}, not {value}.")
        return value

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: tuple[Step, ...]) -> tuple[Step, ...]:
        if value and value[0].anchor == "previous_step":
            raise ValueError("The first step has no previous step: count it from the due date or the invoice date.")
        if len(value) > 20:
            raise ValueError("Use at most 20 steps.")
        return value

    @field_validator("discount_tiers")
    @classmethod
    def _tiers(cls, value: tuple[DiscountTier, ...]) -> tuple[DiscountTier, ...]:
        tiers = tuple(sorted(value, key=lambda t: t.days_after_invoice))
        for earlier, later in zip(tiers, tiers[1:]):
            if earlier.days_after_invoice == later.days_after_invoice:
                raise ValueError("Two discount tiers have the same number of days.")
            if earlier.percent <= later.percent:
                raise ValueError("The earlier the payment, the larger the discount: each tier must give less than the one before.")
        return tiers

    @model_validator(mode="after")
    def _sms_hours(self) -> "Policy":
        uses_sms = any("sms" in s.channels for s in self.steps)
        if uses_sms and not 8 <= self.send_window.hour <= 20:
            raise ValueError("Text messages may only go out between 8:00 and 21:00: choose a send hour from 8 to 20.")
        return self

    def fee_rule(self, kind: str) -> FeeRule | None:
        return next((r for r in self.late_fees.rules if r.kind == kind), None)


def field_errors(exc: pydantic.ValidationError) -> dict[str, str]:
    """Messages by field path ("steps.0.offset_days"), as the settings page shows them next to each field."""
    out: dict[str, str] = {}
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "policy"
        message = err["msg"].removeprefix("Value error, ")
        out.setdefault(path, message)
    return out


def with_fee_start(old: Policy, new: Policy, on: dt.date) -> Policy:
    """``new``, saved over ``old`` on the company-local date ``on``, with the days its fee rules apply from.

    A kind whose periods move (grace days, its frequency or number of days) or which begins to charge (a
    rule added, a rate from zero, an amount for a currency that had none) is ``started`` on ``on``: its
    periods before were never under these rules — charged now, they would pile up in one run, or bill a
    month a second time under another key. A change that lets invoices bear fees they did not (a lower
    minimum balance, unsent invoices no longer left alone, a cap raised or removed: an invoice that had
    reached it bore none since) sets ``fees_from`` to ``on``: none of their earlier periods is charged,
    and no interest of the invoices that bore fees all along is trimmed. A new rate or amount, or a lower
    cap, moves no period (each keeps its key): nothing changes, and periods missed while the program was
    off are still charged.
    """
    kinds = {rule.kind for rule in new.late_fees.rules}
    started = {k: d for k, d in old.late_fees.started.items() if k in kinds}
    moved = new.late_fees.grace_days != old.late_fees.grace_days
    for rule in new.late_fees.rules:
        before = old.fee_rule(rule.kind)
        if moved or before is None or _grid(before) != _grid(rule) or not _charged_in(rule) <= _charged_in(before):
            started[rule.kind] = on
    fees_from = on if new.late_fees.rules and _lets_more_invoices_bear_fees(old, new) else old.late_fees.fees_from
    if started == new.late_fees.started and fees_from == new.late_fees.fees_from:
        return new
    return new.model_copy(update={"late_fees": new.late_fees.model_copy(update={"fees_from": fees_from,
                                                                                  "started": started})})


def _lets_more_invoices_bear_fees(old: Policy, new: Policy) -> bool:
    if old.skip_unsent_invoices and not new.skip_unsent_invoices:
        return True
    if any(c not in new.min_balance or new.min_balance[c] < m for c, m in old.min_balance.items()):
        return True
    return _raised(old.late_fees.max_count, new.late_fees.max_count) or _raised(
        old.late_fees.max_percent_of_principal, new.late_fees.max_percent_of_principal) or any(
        _raised(m, new.late_fees.max_amount.get(c)) for c, m in old.late_fees.max_amount.items())


def _raised(old: Decimal | int | None, new: Decimal | int | None) -> bool:
    """Whether a cap was raised or removed (None: no cap)."""
    return old is not None and (new is None or new > old)


def _grid(rule: FeeRule) -> tuple[str, int | None]:
    return rule.frequency, rule.every_days if rule.frequency == "every_n_days" else None


def _charged_in(rule: FeeRule) -> set[str]:
    """The currencies the rule charges something in ("*": all)."""
    if rule.kind in ("flat", "indemnity"):
        return {c for c, a in rule.amount.items() if a > 0}
    return {"*"} if (rule.percent or 0) > 0 or (rule.kind == "interest" and rule.add_ecb_rate) else set()


def upgrade(data: dict[str, object]) -> dict[str, object]:
    """Bring stored JSON of an older version to the current one (none yet: version 1 is the first)."""
    return data


_FRIENDLY_STEPS = (
    Step(offset_days=-3, template="reminder_before_due"),
    Step(offset_days=0, template="reminder_due_today"),
    Step(offset_days=7, template="reminder_overdue_gentle"),
    Step(offset_days=21, template="reminder_overdue_firm", tone="neutral"),
    Step(offset_days=45, template="reminder_final", tone="firm"),
)

PRESETS: dict[str, Policy] = {
    "friendly": Policy(
        name="friendly",
        steps=_FRIENDLY_STEPS,
        repeat_last=Repeat(every_days=30, max_times=2),
        min_gap_days=3,
        escalation=Escalation(call_task_after_days=7, handoff_after_days=30),
    ),
    "firm": Policy(
        name="firm",
        steps=(
            Step(offset_days=-2, template="reminder_before_due"),
            Step(offset_days=1, template="reminder_overdue_gentle", channels=("email", "sms"), tone="neutral"),
            Step(offset_days=7, template="reminder_overdue_firm", channels=("email", "sms"), tone="firm"),
            Step(offset_days=14, template="reminder_final", channels=("email", "letter_task"), tone="firm"),
        ),
        repeat_last=Repeat(every_days=7, max_times=4),
        min_gap_days=2,
        alert_owner_when_late=True,
        late_fees=LateFees(
            grace_days=5,
            rules=(FeeRule(kind="percent", percent=Decimal("1.5"), frequency="monthly"),),
            max_percent_of_principal=Decimal(18),
        ),
        escalation=Escalation(call_task_after_days=3, handoff_after_days=14),
    ),
    "france_b2b": Policy(
        name="france_b2b",
        steps=_FRIENDLY_STEPS,
        repeat_last=Repeat(every_days=30, max_times=2),
        # Code de commerce L441-10: interest = ECB refinancing rate + 10 points from the day
        # after the due date, and a fixed €40 recovery indemnity per invoice (D441-5).
        late_fees=LateFees(
            grace_days=0,
            rules=(
                FeeRule(kind="interest", percent=Decimal(10), add_ecb_rate=True, frequency="monthly"),
                FeeRule(kind="indemnity", amount={"EUR": Decimal(40)}),
            ),
        ),
        ecb_rate_percent=Decimal("2.15"),
    ),
    "us_net30": Policy(
        name="us_net30",
        steps=(
            Step(offset_days=-5, template="reminder_before_due"),
            Step(offset_days=0, template="reminder_due_today"),
            Step(offset_days=10, template="reminder_overdue_gentle"),
            Step(offset_days=30, template="reminder_overdue_firm", tone="neutral"),
            Step(offset_days=60, template="reminder_final", tone="firm"),
        ),
        repeat_last=Repeat(every_days=30, max_times=3),
        late_fees=LateFees(
            grace_days=0,
            rules=(FeeRule(kind="percent", percent=Decimal("1.5"), frequency="monthly"),),
        ),
    ),
}
DEFAULT_PRESET = "friendly"


def policy_for(customer_policy: str | None, *, excluded: bool, policies: dict[str, Policy],
               default: str = DEFAULT_PRESET) -> Policy | None:
    """The policy that applies to a customer: its own (by name) if it has one, else the company's default.

    None when the customer is excluded. ``policies`` are the company's named policies
    (the presets merged with its own, e.g. "vip", "always_late"); an unknown name falls
    back to the default rather than leaving a customer unmanaged.
    """
    if excluded:
        return None
    if customer_policy and customer_policy in policies:
        return policies[customer_policy]
    return policies.get(default, PRESETS[DEFAULT_PRESET])
