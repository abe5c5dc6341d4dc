"""The outbox: actions become rows once (unique dedupe key), and rows move through their states.

    planned → sending → sent | failed | cancelled | unknown

A row is ``sending`` and committed before its provider is called (invariant 4). A row found
in ``sending`` after a crash becomes ``unknown`` — for messages (email, SMS, owner alerts),
which are never resent automatically: ``reconcile_unknown`` settles them from provider
events, and a person decides the rest (``resolve_unknown``). QuickBooks writes are safe to
redo and go back to ``planned`` instead: a fee replays its deterministic ``requestid`` and a
notes write-back rewrites the same section.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from qbo_collector import clock, errors, rules, timeline
from qbo_collector.db import models
from qbo_collector.db.session import Database

log = logging.getLogger(__name__)
S = models.OutboxStatus
MESSAGE_CHANNELS = ("email", "sms", "owner_email", "owner_sms")
REDO_KINDS = ("fee", "note")
# Provider events that prove the provider accepted the message.
ACCEPTED_EVENTS = {
    "sendgrid": {"processed", "delivered", "deferred", "open", "click", "bounce", "spamreport", "unsubscribe",
                 "group_unsubscribe", "group_resubscribe"},
    "twilio": {"accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered", "read"},
}
REFUSED_EVENTS = {"sendgrid": {"dropped"}, "twilio": {"failed", "canceled"}}


# ``provider_id`` of a row sent in the message of another (``dispatch.run.one_message_per_address``:
# a parent's and its jobs' statements, a run's fee notices or owner alerts) until the provider's id is
# known: "with:<that row's id>", whose provider events settle it too
WITH_ROW = "with:"


def lead_of(row: models.Outbox) -> int | None:
    """The id of the row whose message told ``row`` too ("with:<id>"), None when it has none."""
    tail = (row.provider_id or "")[len(WITH_ROW):] if (row.provider_id or "").startswith(WITH_ROW) else ""
    return int(tail) if tail.isdigit() else None


def companions(s: Session, row: models.Outbox) -> list[models.Outbox]:
    """The other rows sent in the same message as ``row`` (``dispatch.run.one_message_per_address``)."""
    same = [models.Outbox.provider_id == f"{WITH_ROW}{row.id}"]
    if row.provider_id and row.provider_id.startswith(WITH_ROW):
        same += [models.Outbox.id == lead_of(row), models.Outbox.provider_id == row.provider_id]
    elif row.provider_id and row.provider_id != "dry-run":
        same.append(models.Outbox.provider_id == row.provider_id)
    return list(s.scalars(select(models.Outbox).where(
        models.Outbox.company_id == row.company_id, models.Outbox.id != row.id, or_(*same))
        .order_by(models.Outbox.id).with_for_update()))


def utcnow() -> dt.datetime:
    return clock.now()  # UTC; the demo's "advance one day" moves it


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlannedRow:
    """One action as the outbox stores it (and as ``plan`` shows it)."""

    due_at: dt.datetime
    kind: str                      # reminder | fee | task | alert
    channel: str | None            # email | sms | qbo_fee | call_task | letter_task | handoff_task | owner_email | owner_sms
    customer_id: str
    customer: str
    invoice_ids: tuple[str, ...]
    invoice_numbers: tuple[str, ...]
    template_key: str | None
    amount: Decimal | None
    currency: str | None
    dedupe_key: str
    reason: str
    step: int | None = None
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)

    def line(self) -> str:
        """One line for a person (``qbo-collector plan``): when, what, for whom, why."""
        what = f"{self.kind} by {self.channel}" if self.channel else self.kind
        numbers = f" (invoice{'s' if len(self.invoice_numbers) > 1 else ''} {', '.join(self.invoice_numbers)})" \
            if self.invoice_numbers else ""
        amount = f" {self.amount} {self.currency}" if self.amount is not None else ""
        return f"{self.due_at:%Y-%m-%d %H:%M} UTC  {what}{amount}, {self.customer}{numbers}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "due_at": self.due_at.isoformat(), "kind": self.kind, "channel": self.channel,
            "customer_id": self.customer_id, "customer": self.customer, "invoice_ids": list(self.invoice_ids),
            "invoice_numbers": list(self.invoice_numbers), "template_key": self.template_key,
            "amount": str(self.amount) if self.amount is not None else None, "currency": self.currency,
            "dedupe_key": self.dedupe_key, "reason": self.reason, "step": self.step,
        }


def _money_json(m: Any) -> dict[str, str] | None:
    return None if m is None else {"amount": str(m.amount), "currency": m.currency}


def rows_for(action: rules.Action, *, customer_name: str, numbers: dict[str, str], balances: dict[str, str],
             due_dates: dict[str, str | None], unreachable_everywhere: bool, owner_phone: bool,
             dry_run: bool) -> list[PlannedRow]:
    """The outbox row(s) of one planned action (an owner alert may go by email and by SMS)."""
    ids = tuple(action.invoice_ids)
    common: dict[str, Any] = dict(
        due_at=action.due_at, customer_id=action.customer_id, customer=customer_name, invoice_ids=ids,
        invoice_numbers=tuple(numbers.get(i, i) for i in ids), reason=action.reason,
    )
    payload: dict[str, Any] = {"on": action.on.isoformat(), "numbers": [numbers.get(i, i) for i in ids],
                               "balances": {i: balances.get(i) for i in ids},
                               "due_dates": {i: due_dates.get(i) for i in ids}}
    prefix = "dryrun:" if dry_run else ""
    key = prefix + action.dedupe_key
    if isinstance(action, rules.SendReminder):
        payload.update(steps=[dataclasses.asdict(r) for r in action.steps], repeat=action.repeat, tone=action.tone,
                       language=action.language,
                       discount=None if action.discount is None else {
                           "percent": str(action.discount.percent), "deadline": action.discount.deadline.isoformat(),
                           **(_money_json(action.discount.amount) or {}), "source": action.discount.source},
                       instalment=None if action.instalment is None else {
                           "due_on": action.instalment.due_on.isoformat(), **(_money_json(action.instalment.amount) or {})})
        return [PlannedRow(kind="reminder", channel=action.channel, template_key=action.template_key, amount=None,
                           currency=None, dedupe_key=key, step=action.step, payload=payload, **common)]
    if isinstance(action, rules.ChargeFee):
        payload.update(fee_kind=action.fee_kind, period=action.period, basis=_money_json(action.basis),
                       credit=_money_json(action.credit), days=action.days,
                       annual_percent=str(action.annual_percent) if action.annual_percent else None)
        if action.paid_on is not None:  # the interest up to the day it was paid: the invoice is paid by then
            payload["paid_on"] = action.paid_on.isoformat()
        return [PlannedRow(kind="fee", channel="qbo_fee", template_key=None, amount=action.amount.amount,
                           currency=action.amount.currency, dedupe_key=key, payload=payload, **common)]
    if isinstance(action, rules.CreateTask):
        payload.update(task=action.task, steps=[dataclasses.asdict(r) for r in action.steps])
        return [PlannedRow(kind="task", channel=f"{action.task}_task", template_key=None, amount=None, currency=None,
                           dedupe_key=key, payload=payload, **common)]
    assert isinstance(action, rules.AlertOwner)
    payload.update(topic=action.topic, steps=[dataclasses.asdict(r) for r in action.steps])
    if action.topic == "unreachable" and unreachable_everywhere:
        # No email and no phone at all: a person has to call (the "a call task instead").
        return [PlannedRow(kind="task", channel="call_task", template_key=None, amount=None, currency=None,
                           dedupe_key=key, payload={**payload, "task": "call"},
                           **{**common, "reason": action.reason.replace("contact them another way", "call them")})]
    said = alert_sentence(action, customer_name=customer_name, numbers=payload["numbers"])
    if said is not None:
        payload["sentence"] = {"key": said.key, "args": said.stored_args()}
    rows = [PlannedRow(kind="alert", channel="owner_email", template_key="owner_alert", amount=None, currency=None,
                       dedupe_key=key, payload=payload, **common)]
    if owner_phone:
        rows.append(PlannedRow(kind="alert", channel="owner_sms", template_key="owner_alert", amount=None,
                               currency=None, dedupe_key=key + ":sms", payload=payload, **common))
    return rows


def alert_sentence(action: rules.AlertOwner, *, customer_name: str, numbers: Sequence[str]) -> timeline.Text | None:
    """The engine's owner alert as a sentence of ``timeline`` built from its figures, for an owner who reads
    another language than the engine's English (which stays the row's ``reason``). None: nothing to tell it from."""
    step = max((r.step for r in action.steps), default=None)
    if action.topic == "late" and action.due_on is not None and numbers:
        return timeline.text("alert.late", invoice=numbers[0], name=customer_name, due=timeline.date(action.due_on))
    if action.topic in ("step", "unreachable") and step is not None and numbers:
        channels = {"channels": timeline.terms("channel", action.channels)} if action.topic == "unreachable" else {}
        return timeline.text(f"alert.{action.topic}", step=step + 1, invoices=timeline.invoices(numbers),
                             num=len(numbers), name=customer_name, **channels)
    if action.topic == "promise_broken" and action.amount is not None and action.until is not None:
        return timeline.text("alert.promise_broken", name=customer_name, until=timeline.date(action.until),
                             amount=timeline.money(action.amount.amount, action.amount.currency))
    held = {"holder": action.holder} if action.holder else {}
    suffix = ".parent" if action.holder else ""
    if action.topic == "credit" and action.amount is not None and action.part is not None and numbers:
        return timeline.text("alert.credit.partial" + suffix, name=customer_name, invoice=numbers[0],
                             amount=timeline.money(action.amount.amount, action.amount.currency),
                             part=timeline.money(action.part.amount, action.part.currency), **held)
    if action.topic == "credit" and action.amount is not None and numbers:
        return timeline.text("alert.credit" + suffix, name=customer_name, invoices=timeline.invoices(numbers),
                             num=len(numbers), amount=timeline.money(action.amount.amount, action.amount.currency),
                             **held)
    if action.topic == "instalment_missed" and action.amount is not None and action.due_on is not None:
        return timeline.text("alert.instalment_missed", name=customer_name, n=action.instalment or "",
                             amount=timeline.money(action.amount.amount, action.amount.currency),
                             due=timeline.date(action.due_on))
    return None


def _insert(s: Session, table: Any) -> Any:
    return (postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


def insert_rows(s: Session, company_id: int, rows: Sequence[PlannedRow], *, dry_run: bool, now: dt.datetime) -> int:
    """INSERT … ON CONFLICT (dedupe_key) DO NOTHING; returns how many rows were new."""
    if not rows:
        return 0
    table = models.Outbox.__table__
    values = [{
        "company_id": company_id, "dedupe_key": r.dedupe_key, "kind": r.kind, "channel": r.channel,
        "status": S.planned.value, "customer_qbo_id": r.customer_id, "invoice_ids": list(r.invoice_ids),
        "step": r.step, "template_key": r.template_key, "amount": r.amount, "currency": r.currency,
        "due_at": r.due_at, "payload": r.payload, "reason": r.reason, "attempts": 0, "dry_run": dry_run,
        "created_at": now, "updated_at": now,
    } for r in sorted(rows, key=lambda r: r.dedupe_key)]  # key order: an overlapping run waits, never deadlocks
    # one statement compiled once, sent as multi-row batches by SQLAlchemy's "insertmanyvalues"
    # (a .values([...]) statement is compiled anew for every batch: ~0.5 ms a row)
    stmt = _insert(s, table).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id)
    return len(s.connection().execute(stmt, values).all())


def enqueue(s: Session, company_id: int, *, dedupe_key: str, kind: str, channel: str, reason: str | timeline.Text,
            customer_id: str | None = None, invoice_ids: Iterable[str] = (), payload: dict[str, Any] | None = None,
            template_key: str | None = None, due_at: dt.datetime | None = None, dry_run: bool = False,
            amount: Decimal | None = None, currency: str | None = None) -> bool:
    """Add one row outside a plan (owner alerts from webhooks, notes write-back, late-fee notices).
    True if it was new. A ``timeline.Text`` reason is stored in English with its key and arguments."""
    now = utcnow()
    key, args = (reason.key, reason.stored_args()) if isinstance(reason, timeline.Text) else (None, None)
    table = models.Outbox.__table__
    stmt = _insert(s, table).values(
        company_id=company_id, dedupe_key=dedupe_key, kind=kind, channel=channel, status=S.planned.value,
        customer_qbo_id=customer_id, invoice_ids=list(invoice_ids), template_key=template_key,
        amount=amount, currency=currency,
        due_at=due_at or now, payload=payload or {}, reason=str(reason), reason_key=key, reason_args=args,
        attempts=0, dry_run=dry_run,
        created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["dedupe_key"]).returning(table.c.id)
    return s.execute(stmt).first() is not None


def set_status(s: Session, row_id: int, status: models.OutboxStatus, reason: str | timeline.Text | None = None, *,
               now: dt.datetime | None = None, **values: Any) -> None:
    """Move a row on; ``reason`` becomes its ``status_reason``, in English (the timeline shows the
    activity row written beside it, which keeps the sentence's key)."""
    now = now or utcnow()
    extra: dict[str, Any] = {"status": status.value, "updated_at": now, **values}
    if reason is not None:
        extra["status_reason"] = str(reason)
    s.execute(update(models.Outbox).where(models.Outbox.id == row_id).values(**extra)
              .execution_options(synchronize_session=False))


def claim(s: Session, row: models.Outbox) -> bool:
    """planned → sending by compare-and-set, in ``s``'s transaction: False when the row is no longer
    ``planned`` (another run took it first)."""
    now = utcnow()
    return s.execute(update(models.Outbox).where(models.Outbox.id == row.id, models.Outbox.status == S.planned)
                     .values(status=S.sending.value, updated_at=now, sending_at=now, attempts=(row.attempts or 0) + 1)
                     .execution_options(synchronize_session=False)).rowcount == 1


# A fee that waits for a setting (no tax code for its line, ``dispatch.run``) stays ``planned`` and keeps
# its dedupe key; ``payload["held"]`` says why and since when: {"cause": …, "tax_code": …, "since": ISO date}
HELD = "held"


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeesHeld:
    """The late fees of a company waiting for a setting: how many, why, and since when."""

    count: int
    cause: str               # ``channels.qbo_notes``: "none" (no fitting tax code) or "chosen" (the chosen one is gone)
    tax_code: str | None     # the Id chosen, when that is the cause
    since: dt.date           # the first day the same cause held a fee


def fees_held(s: Session, company_id: int) -> FeesHeld | None:
    """The company's fees on hold now (the latest cause to hold one), None when none is."""
    payloads = s.scalars(select(models.Outbox.payload).where(
        models.Outbox.company_id == company_id, models.Outbox.kind == "fee", models.Outbox.status == S.planned,
        models.Outbox.dry_run.is_(False)))
    found = [h for h in ((p or {}).get(HELD) for p in payloads) if isinstance(h, dict) and h.get("since")]
    if not found:
        return None
    latest = max(found, key=lambda h: str(h["since"]))
    same = [h for h in found if h.get("cause") == latest.get("cause") and h.get("tax_code") == latest.get("tax_code")]
    return FeesHeld(count=len(found), cause=str(latest.get("cause") or ""), tax_code=latest.get("tax_code"),
                    since=dt.date.fromisoformat(min(str(h["since"]) for h in same)))


KEY_KEPT = 220  # the head of a dedupe key a given-up row keeps, before "#cancelled<id>[#refused]"
REFUSED_MARK = "#refused"


def free_key(s: Session, row: models.Outbox, *, refused: bool = False) -> None:
    """Give a cancelled row's dedupe key up, so the same step can be planned again on fresh figures.
    ``refused``: QuickBooks refused the row's create for good (``refusals`` counts those)."""
    mark = REFUSED_MARK if refused else ""
    s.execute(update(models.Outbox).where(models.Outbox.id == row.id)
              .values(dedupe_key=f"{row.dedupe_key[:KEY_KEPT]}#cancelled{row.id}{mark}")
              .execution_options(synchronize_session=False))
    if row.invoice_ids:
        # its invoices' next-action dates were worked out with the key taken: cleared, the next run reads
        # them again (earlier is always safe) — a paid invoice marked NEVER would never come back otherwise
        s.execute(update(models.Invoice).where(models.Invoice.company_id == row.company_id,
                                               models.Invoice.qbo_id.in_(list(row.invoice_ids)))
                  .values(next_action_on=None).execution_options(synchronize_session=False))


def refusals(s: Session, company_id: int, dedupe_key: str) -> int:
    """How many earlier rows of ``dedupe_key`` QuickBooks refused to create (given up with ``refused``).
    QuickBooks answers a ``requestid`` it has seen with its first answer, a refusal too: a fee posted
    again after one (its customer made active again) needs a requestid of its own, and nothing was
    created under the refused one."""
    out = models.Outbox
    return int(s.scalar(select(func.count()).select_from(out).where(
        out.company_id == company_id, out.dedupe_key.startswith(f"{dedupe_key[:KEY_KEPT]}#cancelled", autoescape=True),
        out.dedupe_key.endswith(REFUSED_MARK))) or 0)


def activity(s: Session, company_id: int | None, kind: str, message: str | timeline.Text, *,
             row: models.Outbox | None = None, customer_id: str | None = None, invoice_id: str | None = None,
             data: dict[str, Any] | None = None, at: dt.datetime | None = None) -> None:
    """One timeline line; a ``timeline.Text`` keeps its key and arguments beside the English sentence."""
    key, args = (message.key, message.stored_args()) if isinstance(message, timeline.Text) else (None, None)
    s.add(models.Activity(
        company_id=company_id, kind=kind, message=str(message), message_key=key, message_args=args, at=at or utcnow(),
        customer_qbo_id=customer_id or (row.customer_qbo_id if row is not None else None),
        invoice_qbo_id=invoice_id or ((row.invoice_ids or [None])[0] if row is not None else None),
        outbox_id=row.id if row is not None else None, data=data or {}))


# --- crash recovery ----------------------------------------------------------------------

def recover_sending(db: Database, *, company_id: int | None = None) -> int:
    """Rows left in ``sending`` by a crash: messages become ``unknown`` (never resent automatically),
    QuickBooks writes (fees, notes) go back to ``planned`` (they are idempotent). Returns how many rows moved.

    Call it only when no dispatcher is running for the company (``run_company`` holds the company's
    dispatch lease when it calls it)."""
    now = utcnow()
    moved = 0
    with db.session() as s:
        q = select(models.Outbox).where(models.Outbox.status == S.sending)
        if company_id is not None:
            q = q.where(models.Outbox.company_id == company_id)
        for row in s.scalars(q.order_by(models.Outbox.id).with_for_update()):  # id order, as every run locks them
            if row.kind in REDO_KINDS:
                set_status(s, row.id, S.planned, "The run stopped while writing to QuickBooks; the write is safe to "
                           "redo (same requestid / same notes) and will be retried.", now=now)
            else:
                set_status(s, row.id, S.unknown, timeline.text("outbox.unknown.crash"), now=now)
                activity(s, row.company_id, "outbox.unknown", timeline.text("outbox.unknown", action=timeline.action(row)),
                         row=row)
            moved += 1
    if moved:
        log.warning("recovered %d outbox row(s) left in sending", moved)
    return moved


def reconcile_unknown(db: Database, *, company_id: int | None = None) -> int:
    """Settle ``unknown`` rows from provider events (SendGrid custom_args outbox_id, Twilio SID); never resends.
    Returns how many rows were settled."""
    settled = 0
    now = utcnow()
    with db.session() as s:
        q = select(models.Outbox).where(models.Outbox.status == S.unknown)
        if company_id is not None:
            q = q.where(models.Outbox.company_id == company_id)
        rows = list(s.scalars(q.order_by(models.Outbox.id)))
        if not rows:
            return 0
        ids = [r.id for r in rows]
        # a row sent in another's message (one message told several rows) is settled by that one's events
        leads = {r.id: lead for r in rows if (lead := lead_of(r)) is not None}
        events = list(s.scalars(select(models.ProviderEvent).where(
            models.ProviderEvent.outbox_id.in_(sorted(set(ids) | set(leads.values()))))))
        by_provider_id = {r.provider_id: r for r in rows if r.provider_id and r.id not in leads}
        if by_provider_id:
            events += list(s.scalars(select(models.ProviderEvent).where(
                models.ProviderEvent.outbox_id.is_(None),
                models.ProviderEvent.event_key.in_([f"{pid}:{st}" for pid in by_provider_id
                                                    for st in ACCEPTED_EVENTS["twilio"] | REFUSED_EVENTS["twilio"]]))))
        by_row: dict[int, list[models.ProviderEvent]] = {}
        for ev in events:
            rid = ev.outbox_id
            if rid is None:
                sid = ev.event_key.split(":", 1)[0]
                rid = by_provider_id[sid].id if sid in by_provider_id else None
            if rid is not None:
                by_row.setdefault(rid, []).append(ev)
        for row in rows:
            found = by_row.get(row.id) or by_row.get(leads.get(row.id, -1)) or []
            provider = "twilio" if row.channel in ("sms", "owner_sms") else "sendgrid"
            accepted = [e for e in found if e.event in ACCEPTED_EVENTS[provider]]
            refused = [e for e in found if e.event in REFUSED_EVENTS[provider]]
            if accepted:
                first = min(accepted, key=lambda e: e.at)
                set_status(s, row.id, S.sent, f"Reconciled: the provider reported '{first.event}' for it, so it "
                           "went out.", now=now, sent_at=first.at)
            elif refused:
                set_status(s, row.id, S.failed, f"Reconciled: the provider reported '{refused[0].event}': it was not "
                           "delivered.", now=now)
            else:
                continue
            activity(s, row.company_id, "outbox.reconciled",
                     timeline.text("outbox.reconciled", action=timeline.action(row)), row=row)
            settled += 1
    return settled


def resolve_unknown(db: Database, outbox_id: int, decision: Literal["sent", "resend", "cancel"],
                    user_id: int | None) -> models.Outbox:
    """A person's decision on an ``unknown`` row: it went out (sent), send it again (resend), or drop it (cancel)."""
    if decision not in ("sent", "resend", "cancel"):
        raise errors.InvalidInput(f"Choose sent, resend or cancel, not {decision!r}.", field="decision")
    now = utcnow()
    with db.session() as s:
        row = s.get(models.Outbox, outbox_id, with_for_update=True)
        if row is None:
            raise errors.InvalidInput(f"There is no outbox row {outbox_id}.", field="outbox_id")
        if row.status != S.unknown:
            raise errors.InvalidInput(f"Row {outbox_id} is {row.status.value}, not unknown: nothing to decide.",
                                      field="outbox_id")
        who = f"user {user_id}" if user_id is not None else "a person"
        # one message told several rows: one answer for all of them
        for each in [row, *(c for c in companions(s, row) if c.status == S.unknown)]:
            if decision == "sent":
                set_status(s, each.id, S.sent, f"Marked as sent by {who}.", now=now, sent_at=each.sending_at or now)
            elif decision == "cancel":
                set_status(s, each.id, S.cancelled, f"Cancelled by {who} after an unknown outcome.", now=now)
            else:
                set_status(s, each.id, S.planned, f"Resend decided by {who} after an unknown outcome.", now=now,
                           due_at=now, provider_id=None)
            said = (timeline.text("outbox.resolved.user", user=user_id, decision=timeline.term("decision", decision),
                                  action=timeline.action(each)) if user_id is not None else
                    timeline.text("outbox.resolved.person", decision=timeline.term("decision", decision),
                                  action=timeline.action(each)))
            activity(s, each.company_id, f"outbox.resolved.{decision}", said, row=each, data={"user_id": user_id})
        s.flush()
        s.refresh(row)
        return row
