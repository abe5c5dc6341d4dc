"""The mirror and the program's own records.

Every QBO row is keyed by (company, QBO Id) and upserted idempotently. Money columns are
``Amount`` (exact Decimal) beside a ``currency`` column. Deleted or voided QBO rows are
marked, never removed: history and the activity log keep pointing at them.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from qbo_collector import clock
from qbo_collector.db.types import UTC, Amount, EncryptedText

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """UTC now on the program's clock (``qbo_collector.clock``: the demo's "advance one day" moves it),
    so that every stamp — synced, changed, sent, a run's mark — is on one clock."""
    return clock.now()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTC(), Decimal: Amount(), dict[str, Any]: JSON, date: Date}


class CompanyStatus(str, enum.Enum):
    connected = "connected"
    needs_reconnect = "needs_reconnect"
    disconnected = "disconnected"


class Company(Base):
    """A connected QuickBooks company (realm)."""

    __tablename__ = "company"

    id: Mapped[int] = mapped_column(primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    country: Mapped[str | None] = mapped_column(String(2))
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[CompanyStatus] = mapped_column(Enum(CompanyStatus, native_enum=False, length=20),
                                                  default=CompanyStatus.connected)
    status_reason: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # sender name, reply-to, dry_run, send hour…
    policy: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    connected_at: Mapped[datetime | None]
    last_sync_at: Mapped[datetime | None]
    # The daily run's index (``snapshot.plan_fingerprint``): a full plan when the company's planning
    # inputs changed since the last one, or when it is a week old; otherwise only what is due.
    plan_fingerprint: Mapped[str | None] = mapped_column(String(64))
    full_plan_on: Mapped[date | None]

    token: Mapped["Token | None"] = relationship(back_populates="company", cascade="all, delete-orphan",
                                                 uselist=False)


class Token(Base):
    """The company's OAuth tokens, Fernet-encrypted. ``version`` moves on every rotation."""

    __tablename__ = "token"

    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), primary_key=True)
    access_token: Mapped[str] = mapped_column(EncryptedText)
    refresh_token: Mapped[str] = mapped_column(EncryptedText)
    access_expires_at: Mapped[datetime]
    refresh_expires_at: Mapped[datetime | None]
    refresh_hard_expires_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship(back_populates="token")


class OAuthState(Base):
    """One pending authorization: ``state`` is single-use and expires."""

    __tablename__ = "oauth_state"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    origin: Mapped[str] = mapped_column(String(8))  # "web" | "cli"
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None]


class _Mirrored:
    """Columns every mirrored QBO entity has."""

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    qbo_id: Mapped[str] = mapped_column(String(32))
    sync_token: Mapped[str | None] = mapped_column(String(32))
    qbo_updated_at: Mapped[datetime | None]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    synced_at: Mapped[datetime] = mapped_column(default=utcnow)


class Customer(_Mirrored, Base):
    __tablename__ = "customer"
    __table_args__ = (UniqueConstraint("company_id", "qbo_id"),
                      Index("ix_customer_company_parent", "company_id", "parent_qbo_id"))

    display_name: Mapped[str] = mapped_column(String(500))
    company_name: Mapped[str | None] = mapped_column(String(500))
    given_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    mobile: Mapped[str | None] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(64))
    currency: Mapped[str | None] = mapped_column(String(3))
    balance: Mapped[Decimal] = mapped_column(default=Decimal(0))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    notes: Mapped[str | None] = mapped_column(Text)
    term_qbo_id: Mapped[str | None] = mapped_column(String(32))
    # a job or sub-customer: its parent (ParentRef), and whether it is billed with it (BillWithParent):
    # then reminders go to the parent's email and phone (``snapshot.contact_rows``)
    parent_qbo_id: Mapped[str | None] = mapped_column(String(32))
    bill_with_parent: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(8))  # ours: "en" / "fr"; None → company's
    # the program's own per-customer state
    policy_name: Mapped[str | None] = mapped_column(String(64))
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    fees_waived: Mapped[bool] = mapped_column(Boolean, default=False)
    # the company-local day its invoices began to bear fees under the rules they bear now (given another
    # policy, taken back from exclusion, a waiver lifted): no fee period before it is charged (rules.Customer)
    fees_from: Mapped[date | None]
    email_stopped: Mapped[str | None] = mapped_column(String(64))  # "bounce", "spamreport", "invalid"…
    sms_stopped: Mapped[str | None] = mapped_column(String(64))    # "stop", "21610", "21211"…
    # Set by any change made here (a page, a bounce, a STOP), not by the sync (``synced_at``):
    # the next daily run plans this customer in full.
    changed_at: Mapped[datetime | None] = mapped_column(onupdate=utcnow)


class Term(_Mirrored, Base):
    __tablename__ = "term"
    __table_args__ = (UniqueConstraint("company_id", "qbo_id"),)

    name: Mapped[str] = mapped_column(String(255))
    due_days: Mapped[int | None]
    discount_percent: Mapped[Decimal | None]
    discount_days: Mapped[int | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class InvoiceStatus(str, enum.Enum):
    open = "open"
    paid = "paid"
    voided = "voided"
    deleted = "deleted"


class Invoice(_Mirrored, Base):
    __tablename__ = "invoice"
    __table_args__ = (
        UniqueConstraint("company_id", "qbo_id"),
        Index("ix_invoice_company_customer", "company_id", "customer_qbo_id"),
        Index("ix_invoice_company_next_action", "company_id", "next_action_on"),
        Index("ix_invoice_company_status_due", "company_id", "status", "due_date"),
    )

    doc_number: Mapped[str | None] = mapped_column(String(64))
    customer_qbo_id: Mapped[str] = mapped_column(String(32))
    txn_date: Mapped[date | None]
    due_date: Mapped[date | None]
    due_date_derived: Mapped[str | None] = mapped_column(String(32))  # None, "term", "txn_date"
    total: Mapped[Decimal] = mapped_column(default=Decimal(0))
    balance: Mapped[Decimal] = mapped_column(default=Decimal(0))
    currency: Mapped[str] = mapped_column(String(3))
    term_qbo_id: Mapped[str | None] = mapped_column(String(32))
    bill_email: Mapped[str | None] = mapped_column(String(320))
    po_number: Mapped[str | None] = mapped_column(String(128))
    invoice_link: Mapped[str | None] = mapped_column(Text)
    email_status: Mapped[str | None] = mapped_column(String(32))   # QuickBooks' EmailStatus: NotSet, NeedToSend, EmailSent
    print_status: Mapped[str | None] = mapped_column(String(32))   # PrintStatus: NotSet, NeedToPrint, PrintComplete
    sent_on: Mapped[date | None]   # the day QuickBooks emailed it (DeliveryInfo.DeliveryTime, in its own offset)
    status: Mapped[InvoiceStatus] = mapped_column(Enum(InvoiceStatus, native_enum=False, length=16),
                                                  default=InvoiceStatus.open)
    is_late_fee: Mapped[bool] = mapped_column(Boolean, default=False)  # every item line bills the "Late fee" item
    fee_lines: Mapped[Decimal] = mapped_column(default=Decimal(0))  # its "Late fee" lines (mode line): bear no fee
    fee_for_qbo_id: Mapped[str | None] = mapped_column(String(32))
    fees_waived: Mapped[bool] = mapped_column(Boolean, default=False)
    next_action_on: Mapped[date | None]  # maintained from rules.next_action_date; the daily run's index


class Payment(_Mirrored, Base):
    __tablename__ = "payment"
    __table_args__ = (UniqueConstraint("company_id", "qbo_id"),
                      Index("ix_payment_company_unapplied", "company_id", "unapplied"))

    customer_qbo_id: Mapped[str | None] = mapped_column(String(32))
    txn_date: Mapped[date | None]
    total: Mapped[Decimal] = mapped_column(default=Decimal(0))
    unapplied: Mapped[Decimal] = mapped_column(default=Decimal(0))
    currency: Mapped[str | None] = mapped_column(String(3))


class PaymentLink(Base):
    """Which invoices a payment paid, and how much of each (Payment.Line[].LinkedTxn)."""

    __tablename__ = "payment_link"
    __table_args__ = (
        UniqueConstraint("company_id", "payment_qbo_id", "invoice_qbo_id"),
        Index("ix_payment_link_invoice", "company_id", "invoice_qbo_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    payment_qbo_id: Mapped[str] = mapped_column(String(32))
    invoice_qbo_id: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal]


class CreditMemoLink(Base):
    """Which credit memos a payment used, and how much of each (Payment.Line[].LinkedTxn of type
    CreditMemo: QuickBooks applies a credit memo to an invoice through a payment)."""

    __tablename__ = "credit_memo_link"
    __table_args__ = (
        UniqueConstraint("company_id", "payment_qbo_id", "credit_memo_qbo_id"),
        Index("ix_credit_memo_link_memo", "company_id", "credit_memo_qbo_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    payment_qbo_id: Mapped[str] = mapped_column(String(32))
    credit_memo_qbo_id: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal]


class CreditMemo(_Mirrored, Base):
    __tablename__ = "credit_memo"
    __table_args__ = (UniqueConstraint("company_id", "qbo_id"),
                      Index("ix_credit_memo_company_balance", "company_id", "balance"))

    customer_qbo_id: Mapped[str | None] = mapped_column(String(32))
    doc_number: Mapped[str | None] = mapped_column(String(64))
    txn_date: Mapped[date | None]
    total: Mapped[Decimal] = mapped_column(default=Decimal(0))
    balance: Mapped[Decimal] = mapped_column(default=Decimal(0))  # remaining credit
    currency: Mapped[str | None] = mapped_column(String(3))


class SyncCursor(Base):
    """Where the mirror of one entity stands: CDC cursor and the last full sync."""

    __tablename__ = "sync_cursor"
    __table_args__ = (UniqueConstraint("company_id", "entity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    entity: Mapped[str] = mapped_column(String(32))
    changed_since: Mapped[datetime | None]  # CDC cursor: everything up to here is mirrored
    full_sync_at: Mapped[datetime | None]
    full_sync_position: Mapped[int | None]  # resume point of an interrupted full sync (STARTPOSITION)
    full_sync_started_at: Mapped[datetime | None]


class Activity(Base):
    """The company's timeline: everything the program did or learned, newest last."""

    __tablename__ = "activity"
    __table_args__ = (
        Index("ix_activity_company_at", "company_id", "at"),
        Index("ix_activity_company_customer", "company_id", "customer_qbo_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(64))  # "connected", "reconnect_needed", "email.delivered"…
    customer_qbo_id: Mapped[str | None] = mapped_column(String(32))
    invoice_qbo_id: Mapped[str | None] = mapped_column(String(32))
    outbox_id: Mapped[int | None]
    message: Mapped[str] = mapped_column(Text)  # in English; a person's note as typed
    # ``message`` as a sentence of ``timeline.MESSAGES`` and its arguments, shown in the reader's
    # language; None for rows written before keys existed and for what a person typed
    message_key: Mapped[str | None] = mapped_column(String(64))
    message_args: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)  # sees and connects every company
    # raised at logout: every session cookie issued before it stops working (``web.auth.LoginUser.get_id``)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Membership(Base):
    __tablename__ = "membership"
    __table_args__ = (UniqueConstraint("user_id", "company_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16), default="owner")  # "owner" | "viewer"


# -- the program's own records: what it planned and did, and what people told it --------------


class OutboxStatus(str, enum.Enum):
    """planned → sending → sent | failed | cancelled | unknown (crash while sending; never resent automatically)."""

    planned = "planned"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    cancelled = "cancelled"
    unknown = "unknown"


class Outbox(Base):
    """One action, once. ``dedupe_key`` is unique: a second plan of the same step or fee period is a no-op."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_company_status_due", "company_id", "status", "due_at"),
        Index("ix_outbox_company_customer", "company_id", "customer_qbo_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[str] = mapped_column(String(16))      # "reminder" | "fee" | "task" | "alert" | "note"
    channel: Mapped[str | None] = mapped_column(String(32))  # "email" | "sms" | "qbo_notes" | "call_task" …
    status: Mapped[OutboxStatus] = mapped_column(Enum(OutboxStatus, native_enum=False, length=16),
                                                 default=OutboxStatus.planned)
    customer_qbo_id: Mapped[str | None] = mapped_column(String(32))
    invoice_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    step: Mapped[int | None]
    template_key: Mapped[str | None] = mapped_column(String(64))
    amount: Mapped[Decimal | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    due_at: Mapped[datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    # ``reason`` as a sentence of ``timeline.MESSAGES`` when the program wrote it (a notes line, an
    # alert, a fee notice); None for the rules engine's reasons, which are described from the row
    reason_key: Mapped[str | None] = mapped_column(String(64))
    reason_args: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status_reason: Mapped[str | None] = mapped_column(Text)  # why cancelled / failed / unknown (English)
    provider_id: Mapped[str | None] = mapped_column(String(128), index=True)  # SendGrid message id, Twilio SID, QBO Id
    provider_status: Mapped[str | None] = mapped_column(String(32))  # delivered, opened, bounced… (moves forward only)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    sending_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class Pause(Base):
    """What a person told us about a customer or invoices: promise to pay, dispute, payment plan, manual pause."""

    __tablename__ = "pause"
    __table_args__ = (Index("ix_pause_company_customer", "company_id", "customer_qbo_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # "promise" | "dispute" | "plan" | "manual"
    customer_qbo_id: Mapped[str] = mapped_column(String(32))
    invoice_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # empty: every invoice of the customer
    start_on: Mapped[date]
    until_on: Mapped[date | None]       # promise date / manual resume date
    amount: Mapped[Decimal | None]      # promised amount
    currency: Mapped[str | None] = mapped_column(String(3))
    resolved_on: Mapped[date | None]    # dispute resolved / pause lifted / plan ended
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # plan: {"instalments": [{"due_on", "amount"}]}
    created_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProviderEvent(Base):
    """Events from SendGrid / Twilio, kept once (they retry and duplicate)."""

    __tablename__ = "provider_event"
    __table_args__ = (UniqueConstraint("provider", "event_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    event_key: Mapped[str] = mapped_column(String(255))  # sg_event_id, or message+event+timestamp; SID+status
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


SHARED_SENDER = "shared"  # ``ContactBlock.sender`` of the server's own Twilio sender


class ContactBlock(Base):
    """An address we must not use: a STOP reply, a bounce, a spam report, an invalid number.

    A text opt-out is the person's answer to one sender (Twilio refuses that sender's texts to them
    afterwards, 21610), so a STOP or a 21610 holds for the companies texting from that sender only:
    ``sender`` is a company's own number or messaging service (``sms_channel.sender_id``), or
    ``SHARED_SENDER`` for the server's ``TWILIO_*`` sender that companies without their own share.
    Everything else (email, an invalid number, a landline, a stop kept from before senders were told
    apart) has ``sender`` "" and holds for every company."""

    __tablename__ = "contact_block"
    __table_args__ = (UniqueConstraint("channel", "address", "sender"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))   # "email" | "sms"
    address: Mapped[str] = mapped_column(String(320))  # lower-cased email or E.164 number
    reason: Mapped[str] = mapped_column(String(64))    # "stop", "bounce", "spamreport", "21211", "21610"…
    sender: Mapped[str] = mapped_column(String(64), default="", server_default="")  # "" every sender (see above)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkLease(Base):
    """Who is doing a unit of work for a company, until when, and when it was last done.

    Claimed with one conditional UPDATE (``lease_until < now``, and for daily work ``done_on <
    today``) — on PostgreSQL after ``SELECT … FOR UPDATE SKIP LOCKED`` — so any number of
    schedulers and workers can tick without doing the same work twice.
    """

    __tablename__ = "work_lease"

    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # "sync" | "run" | "catchup" | "digest"
    owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    done_on: Mapped[date | None]        # the company's local date of the last completed daily/weekly work
    done_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class DashboardFigures(Base):
    """A company's dashboard figures, computed in the background after a sync (``dashboard.refresh``).

    Valid for one local date and one state of the mirror (``version``, a digest of
    ``dashboard.mirror_version``); the page reads them instead of aggregating 100,000 invoices.
    """

    __tablename__ = "dashboard_figures"

    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), primary_key=True)
    on: Mapped[date]
    version: Mapped[str] = mapped_column(String(64))
    computed_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class Worker(Base):
    """A scheduler process's heartbeat (``/healthz`` reads it)."""

    __tablename__ = "worker"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    started_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]


class LoginFailure(Base):
    """One failed (or not yet checked) login against one key, ``ip:<address>`` or ``email:<lower-cased>``.

    Kept in the database so that every web process counts the same failures (``users.begin_login``
    and the functions after it); rows older than ``users.FAILURE_WINDOW`` are pruned as new ones
    come. No password is stored.
    """

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_key_at", "key", "at"), Index("ix_login_failure_at", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(330))  # "email:" + an address of up to 320 characters
    at: Mapped[datetime]
