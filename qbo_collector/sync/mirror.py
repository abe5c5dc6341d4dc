"""Writing pages into the mirror: bulk upserts keyed by (company, QBO Id), marks, cursors.

One ``INSERT … ON CONFLICT (company_id, qbo_id) DO UPDATE`` per page (executemany), on
SQLite and PostgreSQL alike. Only the mirrored columns are updated: the program's own
columns (``excluded``, ``fees_waived``, ``next_action_on``, ``policy_name``…) are never
touched by a sync. Deleted and voided rows are marked, never removed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Row, Table, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from qbo_collector.db import models

TABLES: dict[str, Table] = {
    "term": models.Term.__table__,  # type: ignore[dict-item]
    "customer": models.Customer.__table__,  # type: ignore[dict-item]
    "invoice": models.Invoice.__table__,  # type: ignore[dict-item]
    "payment": models.Payment.__table__,  # type: ignore[dict-item]
    "credit_memo": models.CreditMemo.__table__,  # type: ignore[dict-item]
}
LINKS: Table = models.PaymentLink.__table__  # type: ignore[assignment]
MEMO_LINKS: Table = models.CreditMemoLink.__table__  # type: ignore[assignment]
# a payment's links: the invoices it paid, the credit memos it used (table, column of the other Id)
LINK_TABLES: dict[str, tuple[Table, str]] = {"payment_link": (LINKS, "invoice_qbo_id"),
                                             "credit_memo_link": (MEMO_LINKS, "credit_memo_qbo_id")}
BALANCE_TABLES = ("invoice", "payment", "credit_memo")  # the tables a customer's balance is derived from
KEY = ("company_id", "qbo_id")
# Columns an update sets to the earliest of the stored and the new value (a NULL never wins):
# QuickBooks' DeliveryInfo holds the *last* time it emailed an invoice, and the day the customer
# first had it is what a late fee counts from.
EARLIEST = {("invoice", "sent_on")}
_log = logging.getLogger("qbo_collector.sync")


def upsert(s: Session, table_name: str, company_id: int, rows: list[dict[str, Any]], now: datetime, *,
           keep: tuple[str, ...] = ()) -> int:
    """Insert or update ``rows`` (mapper output) in one statement; returns how many were written.

    ``keep``: columns an update leaves as they are (the page does not carry them).
    """
    if not rows:
        return 0
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:  # one page may name a row twice (CDC); the last one wins
        unique[row["qbo_id"]] = row
    conn = s.connection()
    columns = ("company_id", "synced_at", *rows[0].keys())
    sql, names, processors, defaults = _upsert_statement(conn.dialect, table_name, columns, keep)
    fixed = {**defaults, "company_id": company_id, "synced_at": now}
    # The statement is compiled once per shape and run through the driver's executemany with
    # SQLAlchemy's own bind processors applied here: the per-row machinery of Core execution
    # costs more than the database does on a page of 1000 rows.
    template = [(processors[n](fixed[n]) if processors[n] is not None else fixed[n]) if n in fixed else None
                for n in names]
    slots = [(i, n, processors[n]) for i, n in enumerate(names) if n not in fixed]
    params: list[list[Any]] = []
    for row in unique.values():
        values = template.copy()
        for i, n, proc in slots:
            v = row[n]
            values[i] = proc(v) if proc is not None else v
        params.append(values)
    if conn.dialect.name == "postgresql":
        # One statement per page: psycopg's executemany is one statement per row.
        update_columns = [c for c in columns if c not in KEY and c not in keep]
        _pg_multi_insert(conn, table_name, names, params,
                         "ON CONFLICT (company_id, qbo_id) DO UPDATE SET " + ", ".join(
                             f"{c} = LEAST({table_name}.{c}, excluded.{c})" if (table_name, c) in EARLIEST
                             else f"{c} = excluded.{c}" for c in update_columns))
    else:
        conn.exec_driver_sql(sql, [tuple(v) for v in params])
    return len(params)


def _pg_multi_insert(conn: Any, table_name: str, names: list[str], rows: list[list[Any]], suffix: str) -> None:
    """One ``INSERT … SELECT FROM unnest(column arrays)``: the statement text does not depend on the
    page's size, so PostgreSQL parses and plans it once, and each column travels as one array."""
    table = TABLES[table_name] if table_name in TABLES else LINK_TABLES[table_name][0]
    # VARCHAR without its length: an explicit cast would silently cut a long value; the
    # column's own length check then applies, as for any INSERT.
    types = [re.sub(r"\(\d+\)", "", table.c[n].type.compile(dialect=conn.dialect)) for n in names]
    sql = (f"INSERT INTO {table_name} ({', '.join(names)}) SELECT * FROM unnest("
           + ", ".join(f"%s::{t}[]" for t in types) + f") {suffix}")
    conn.exec_driver_sql(sql, tuple([row[i] for row in rows] for i in range(len(names))))


_STATEMENTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]],
                  tuple[str, list[str], dict[str, Any], dict[str, Any]]] = {}


def _upsert_statement(dialect: Any, table_name: str, columns: tuple[str, ...],
                      keep: tuple[str, ...]) -> tuple[str, list[str], dict[str, Any], dict[str, Any]]:
    key = (dialect.name, table_name, columns, keep)
    cached = _STATEMENTS.get(key)
    if cached is not None:
        return cached
    table = TABLES[table_name]
    insert_ = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    stmt = insert_(table).values({c: bindparam(c) for c in columns})
    stmt = stmt.on_conflict_do_update(index_elements=list(KEY), set_={
        c: _earliest(table.c[c], getattr(stmt.excluded, c)) if (table_name, c) in EARLIEST else getattr(stmt.excluded, c)
        for c in columns if c not in KEY and c not in keep})
    compiled = stmt.compile(dialect=dialect)
    names = list(compiled.positiontup) if dialect.positional else list(compiled.binds)
    # Columns the page does not carry but that have a Python-side default (the program's own
    # columns: excluded, fees_waived…) are bound too; on insert they take their default.
    defaults = {}
    for n in names:
        if n not in columns:
            default = table.c[n].default
            arg = default.arg if default is not None else None  # type: ignore[attr-defined]
            defaults[n] = arg(None) if callable(arg) else arg
    processors = {n: table.c[n].type._cached_bind_processor(dialect) for n in names}
    _STATEMENTS[key] = (compiled.string, names, processors, defaults)
    return _STATEMENTS[key]


def _earliest(stored: Any, new: Any) -> Any:
    """SQLite's two-argument ``min`` is NULL when either is: the earliest of the two, NULL only when both are."""
    return case((stored.is_(None), new), (new.is_(None), stored), else_=func.min(stored, new))


def mark_deleted(s: Session, table_name: str, company_id: int, qbo_ids: Iterable[str], now: datetime) -> int:
    """Mark rows QBO reported as deleted; rows never mirrored are simply not there."""
    ids = sorted(set(qbo_ids))
    if not ids:
        return 0
    table = TABLES[table_name]
    values: dict[str, Any] = {"deleted": True, "synced_at": now}
    if table_name == "invoice":
        values["status"] = models.InvoiceStatus.deleted.value
    result = s.connection().execute(update(table).where(table.c.company_id == company_id, table.c.qbo_id.in_(ids))
                                    .values(**values))
    if table_name == "payment":
        for links, _column in LINK_TABLES.values():
            s.connection().execute(delete(links).where(links.c.company_id == company_id,
                                                       links.c.payment_qbo_id.in_(ids)))
    return int(result.rowcount or 0)


def mark_unseen_deleted(s: Session, table_name: str, company_id: int, seen_since: datetime, now: datetime) -> int:
    """After a complete full sync: what it did not see is gone from QBO (deleted longer ago than CDC reaches)."""
    table = TABLES[table_name]
    values: dict[str, Any] = {"deleted": True, "synced_at": now}
    if table_name == "invoice":
        values["status"] = models.InvoiceStatus.deleted.value
    result = s.connection().execute(update(table).where(
        table.c.company_id == company_id, table.c.deleted.is_(False), table.c.synced_at < seen_since).values(**values))
    if table_name == "payment" and result.rowcount:
        gone = select(table.c.qbo_id).where(table.c.company_id == company_id, table.c.deleted.is_(True))
        for links, _column in LINK_TABLES.values():
            s.connection().execute(delete(links).where(links.c.company_id == company_id,
                                                       links.c.payment_qbo_id.in_(gone)))
    return int(result.rowcount or 0)


def replace_links(s: Session, company_id: int, links: Mapping[str, Mapping[str, Decimal]],
                  table_name: str = "payment_link") -> None:
    """Payment → invoices it paid (or, with ``table_name="credit_memo_link"``, credit memos it used):
    the payments' links are replaced by what QBO says now."""
    if not links:
        return
    table, column = LINK_TABLES[table_name]
    conn = s.connection()
    conn.execute(delete(table).where(table.c.company_id == company_id, table.c.payment_qbo_id.in_(sorted(links))))
    params = [{"company_id": company_id, "payment_qbo_id": payment, column: other, "amount": amount}
              for payment, per_txn in links.items() for other, amount in per_txn.items() if amount != 0]
    if not params:
        return
    if conn.dialect.name == "postgresql":
        amount = table.c.amount.type._cached_bind_processor(conn.dialect)
        _pg_multi_insert(conn, table_name, ["company_id", "payment_qbo_id", column, "amount"],
                         [[p["company_id"], p["payment_qbo_id"], p[column], amount(p["amount"])]
                          for p in params], "")
    else:
        conn.execute(insert(table), params)


def cursor(s: Session, company_id: int, entity: str, *, lock: bool = False) -> models.SyncCursor:
    stmt = select(models.SyncCursor).where(models.SyncCursor.company_id == company_id,
                                           models.SyncCursor.entity == entity)
    if lock:
        stmt = stmt.with_for_update()
    row = s.scalar(stmt)
    if row is None:
        row = models.SyncCursor(company_id=company_id, entity=entity)
        s.add(row)
        s.flush()
    return row


def cursors(s: Session, company_id: int) -> dict[str, models.SyncCursor]:
    return {c.entity: c for c in s.scalars(select(models.SyncCursor).where(models.SyncCursor.company_id == company_id))}


def term_days(s: Session, company_id: int) -> dict[str, int]:
    t = models.Term
    return {qbo_id: days for qbo_id, days in s.execute(
        select(t.qbo_id, t.due_days).where(t.company_id == company_id, t.due_days.is_not(None)))}


def write_page(s: Session, stream: Any, company_id: int, rows: list[Any], ctx: Any, now: datetime,
               summary: Any, *, keep: tuple[str, ...] = ()) -> int:
    """Map, log-and-skip bad rows, upsert, mark deleted ones, refresh payment links. Returns rows written."""
    from qbo_collector.sync import streams

    live: list[dict[str, Any]] = []
    gone: list[str] = []
    links: dict[str, dict[str, Decimal]] = {}
    memo_links: dict[str, dict[str, Decimal]] = {}
    for raw in rows:
        if isinstance(raw, dict) and str(raw.get("status", "")).lower() == "deleted" and raw.get("Id"):
            gone.append(str(raw["Id"]))
            continue
        try:
            mapped = streams.map_row(stream, raw, ctx)
        except streams.BadRecord as exc:
            ident = raw.get("Id") if isinstance(raw, dict) else None
            _log.warning("skipped %s Id=%s company=%s: %s", stream.entity, ident, company_id, exc)
            summary.skip(stream.entity, str(ident), str(exc))
            continue
        for warning in mapped.warnings:
            # an invoice without BillEmail is common and not an error: reminders use the customer's address
            _log.log(logging.DEBUG if warning == "no BillEmail" else logging.WARNING, "%s Id=%s company=%s: %s",
                     stream.entity, mapped.values["qbo_id"], company_id, warning)
        live.append(mapped.values)
        if mapped.links is not None:
            links[mapped.values["qbo_id"]] = mapped.links
        if mapped.memo_links is not None:
            memo_links[mapped.values["qbo_id"]] = mapped.memo_links
    stopped = _stopped(s, company_id, live) if stream.table == "customer" else {}
    back = _made_active(s, company_id, live) if stream.table == "customer" else []
    written = upsert(s, stream.table, company_id, live, now, keep=keep)
    if stopped:
        recheck_stops(s, company_id, stopped, now)
    if back:
        fees_restart(s, company_id, back, now)
    replace_links(s, company_id, links)
    replace_links(s, company_id, memo_links, "credit_memo_link")
    deleted = mark_deleted(s, stream.table, company_id, gone, now)
    summary.add(stream.entity, written=written, deleted=len(gone))
    del deleted
    return written + len(gone)


def _made_active(s: Session, company_id: int, rows: list[dict[str, Any]]) -> list[str]:
    """The page's customers the mirror holds as inactive and QuickBooks now says are active."""
    c = models.Customer
    active = sorted({r["qbo_id"] for r in rows if r.get("active")})
    found: list[str] = []
    for start in range(0, len(active), 500):
        found += s.scalars(select(c.qbo_id).where(c.company_id == company_id, c.active.is_(False),
                                                  c.qbo_id.in_(active[start:start + 500])))
    return found


def fees_restart(s: Session, company_id: int, customer_ids: list[str], now: datetime) -> None:
    """Customers made active again in QuickBooks bear fees from the company-local day it was seen, like a
    customer taken back from an exclusion (``rules.Customer.fees_from``): the periods while inactive were
    never charged, and charging them on return would post every month since in one run."""
    company = s.get(models.Company, company_id)
    try:
        zone = ZoneInfo((company.timezone if company else None) or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    today = now.astimezone(zone).date()
    c = models.Customer
    for customer in s.scalars(select(c).where(c.company_id == company_id, c.qbo_id.in_(customer_ids))):
        customer.fees_from = today if customer.fees_from is None else max(customer.fees_from, today)
    _log.info("customers made active again company=%s: fees count from %s for %s", company_id, today,
              ", ".join(customer_ids[:20]))


_CONTACT_COLUMNS = ("email", "phone", "mobile", "country")


def _stopped(s: Session, company_id: int, rows: list[dict[str, Any]]) -> dict[str, Row[Any]]:
    """The page's customers whose email or texts are stopped, with their contact columns before the page."""
    c = models.Customer
    ids = sorted({r["qbo_id"] for r in rows})
    found: dict[str, Row[Any]] = {}
    for start in range(0, len(ids), 500):
        for row in s.execute(select(c.qbo_id, *(getattr(c, n) for n in _CONTACT_COLUMNS))
                             .where(c.company_id == company_id, c.qbo_id.in_(ids[start:start + 500]),
                                    or_(c.email_stopped.is_not(None), c.sms_stopped.is_not(None)))):
            found[row.qbo_id] = row
    return found


def recheck_stops(s: Session, company_id: int, before: Mapping[str, Row[Any]], now: datetime) -> None:
    """A stopped email or phone replaced in QuickBooks (the usual answer to a bounce) starts again.

    A stop belongs to an address (``ContactBlock``, for every company, or for a text opt-out the
    companies texting from the sender it was sent to); the customer's flag says
    its current address is stopped. When the sync brings another address, the flag is worked out
    again from the blocks of the new one: cleared (with a timeline line) unless it is stopped too.
    The same number written differently stays stopped: numbers are compared in E.164."""
    from qbo_collector import snapshot, timeline
    from qbo_collector.dispatch import outbox

    c, block = models.Customer, models.ContactBlock
    company = s.get(models.Company, company_id)
    assert company is not None
    for customer in s.scalars(select(c).where(c.company_id == company_id, c.qbo_id.in_(sorted(before)))
                              .order_by(c.qbo_id).execution_options(populate_existing=True)):
        old = before[customer.qbo_id]
        if customer.email_stopped and _changed_email(old.email, customer.email):
            addresses = [a.lower() for a in snapshot.email_addresses(customer.email)]
            reasons = dict(s.execute(select(block.address, block.reason).where(
                block.channel == "email", block.address.in_(addresses or [""]))).all())
            still = reasons[addresses[0]] if addresses and all(a in reasons for a in addresses) else None
            if still is None and addresses:
                outbox.activity(s, company_id, "email.address_changed", timeline.text(
                    "email.address_changed", name=customer.display_name, address=customer.email or ""),
                    customer_id=customer.qbo_id, at=now)
                _log.info("customer %s of company %s: new email address, email resumes", customer.qbo_id, company_id)
            customer.email_stopped = still
        if customer.sms_stopped and any(getattr(old, n) != getattr(customer, n) for n in ("phone", "mobile", "country")):
            was = models.Customer(qbo_id=customer.qbo_id, **{n: getattr(old, n) for n in _CONTACT_COLUMNS})
            number = snapshot.phone_e164(company, customer)
            if number == snapshot.phone_e164(company, was):
                continue  # the same number, written another way
            still = s.scalar(select(block.reason).where(block.channel == "sms", block.address == number,
                                                        block.sender.in_(snapshot.sms_blocks_for(company)))
                             .order_by(block.id).limit(1)) if number else None
            if still is None and number:
                outbox.activity(s, company_id, "sms.number_changed", timeline.text(
                    "sms.number_changed", name=customer.display_name, number=number),
                    customer_id=customer.qbo_id, at=now)
                _log.info("customer %s of company %s: new phone number, texts resume", customer.qbo_id, company_id)
            customer.sms_stopped = still


def _changed_email(before: str | None, after: str | None) -> bool:
    def norm(raw: str | None) -> list[str]:
        from qbo_collector import snapshot
        return sorted(a.lower() for a in snapshot.email_addresses(raw))
    return norm(before) != norm(after)


def customers_touched(s: Session, table_name: str, company_id: int, rows: list[Any]) -> set[str]:
    """Customers whose balance the rows (live or deleted) may have changed."""
    found: set[str] = set()
    gone: list[str] = []
    for raw in rows:
        if not isinstance(raw, dict):
            continue
        ref = raw.get("CustomerRef")
        if isinstance(ref, dict) and ref.get("value"):
            found.add(str(ref["value"]))
        elif raw.get("Id"):
            gone.append(str(raw["Id"]))
    if gone and table_name in ("invoice", "payment", "credit_memo"):
        table = TABLES[table_name]
        found.update(c for c in s.connection().execute(select(table.c.customer_qbo_id).where(
            table.c.company_id == company_id, table.c.qbo_id.in_(gone))).scalars() if c)
    return found


def customer_ids(s: Session, company_id: int) -> list[str]:
    table = TABLES["customer"]
    return list(s.connection().execute(select(table.c.qbo_id).where(table.c.company_id == company_id)).scalars())


def recompute_customer_balances(s: Session, company_id: int, customer_ids: Iterable[str]) -> int:
    """A customer's open balance = its invoices' balances − unused credit − unapplied payments.

    QBO changes Customer.Balance without touching the customer's LastUpdatedTime, so CDC does
    not report it; the mirror derives it from the rows CDC did report.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return 0
    conn = s.connection()
    totals: dict[str, Decimal] = {i: Decimal(0) for i in ids}
    for table_name, column, sign in (("invoice", "balance", 1), ("credit_memo", "balance", -1),
                                     ("payment", "unapplied", -1)):
        table = TABLES[table_name]
        for chunk in _chunks(ids, 500):
            for customer, amount in conn.execute(
                    select(table.c.customer_qbo_id, func.sum(table.c[column]))
                    .where(table.c.company_id == company_id, table.c.deleted.is_(False),
                           table.c.customer_qbo_id.in_(chunk))
                    .group_by(table.c.customer_qbo_id)):
                totals[customer] += sign * (amount or Decimal(0))
    table = TABLES["customer"]
    for customer, balance in totals.items():
        conn.execute(update(table).where(table.c.company_id == company_id, table.c.qbo_id == customer)
                     .values(balance=balance))
    return len(totals)


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
