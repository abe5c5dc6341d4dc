"""Incremental sync through Change Data Capture, from the stored cursor.

One CDC call names every stream (1 API call when at most 1000 objects changed). The call
starts ``OVERLAP`` before the cursor, for clock skew between Intuit's servers; re-reading
a boundary row is harmless because upserts are idempotent. Rows come back whole; deleted
ones as ``{"Id", "status": "Deleted"}`` and are marked; voided invoices are ordinary
updates (Balance 0, "Voided") that the mapper recognises.

A window of 1000 objects or more is truncated by QBO, so it is split: each such entity is
read again on its own, and while it still fills a response the window's start moves forward.
CDC answers oldest first, but deleted objects after all the active ones: a full answer that
holds deletions holds every active change, and the start moves to the newest deletion read;
a full answer of active changes only says nothing about the deletions of its window, which
no narrower window can show, so that entity is read in full instead (its deletions are then
the rows the full sync does not see). The cursor of an entity moves, in the same transaction
as its rows, only to a point up to which everything has been committed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, update

from qbo_collector import errors
from qbo_collector.db.session import Database
from qbo_collector.sync import client as client_mod
from qbo_collector.sync import full, mirror, streams
from qbo_collector.sync.summary import SyncSummary

log = logging.getLogger(__name__)

MAX_OBJECTS = 1000                # QBO's cap on one CDC response
MAX_AGE = timedelta(days=30)      # how far back CDC reaches
AGE_MARGIN = timedelta(hours=1)   # fall back to a full sync a little before QBO would refuse
OVERLAP = timedelta(seconds=30)  # the cursor is server time: this only covers lag between Intuit servers
STEP_BACK = timedelta(seconds=1)  # QBO's timestamps have whole seconds


class WindowTooOld(errors.QboCollectorError):
    """The CDC cursor is older than QBO's 30 days: a full sync is needed."""


class CannotSplit(errors.QboCollectorError):
    """More than 1000 changes share one second: the window cannot be narrowed; a full sync is needed."""


def too_old(changed_since: datetime | None, now: datetime) -> bool:
    return changed_since is None or now - changed_since > MAX_AGE - AGE_MARGIN


def _row_time(row: dict) -> datetime | None:  # type: ignore[type-arg]
    meta = row.get("MetaData") if isinstance(row, dict) else None
    return streams.parse_time(meta.get("LastUpdatedTime")) if isinstance(meta, dict) else None


def _is_deleted(row: dict) -> bool:  # type: ignore[type-arg]
    return isinstance(row, dict) and str(row.get("status", "")).lower() == "deleted"


def _read(qbo: client_mod.QboClient, entities: list[str], since: datetime) -> dict[str, list[dict]]:  # type: ignore[type-arg]
    try:
        return qbo.cdc(entities, since)
    except errors.PermanentFailure as exc:
        if "changedsince" in exc.message.lower():
            raise WindowTooOld(exc.message) from None
        raise


def sync_streams(qbo: client_mod.QboClient, db: Database, company_id: int, selected: list[streams.Stream],
                 since: datetime, *, summary: SyncSummary, progress: full.Progress | None = None,
                 now: Callable[[], datetime] = full.utcnow, overlap: timedelta = OVERLAP,
                 changed_only: bool = False) -> list[streams.Stream]:
    """Apply every change since ``since`` to the mirror. Returns the streams that need a full sync instead.

    ``overlap``: how far before the cursor to start reading (a periodic catch-up passes a day).
    ``changed_only``: leave alone the rows whose SyncToken the mirror already holds (the dispatcher's
    catch-up: the customers whose notes the last run wrote come back, unchanged since, and must not
    look changed to the next plan).
    """
    if not selected:
        return []
    ctx = full.context(db, company_id, now())
    entities = [s.entity for s in selected]
    start = max(since - overlap, now() - MAX_AGE + AGE_MARGIN)  # a wide catch-up never asks beyond 30 days
    changes = _read(qbo, entities, start)
    answered_at = qbo.last_time or now()
    total = sum(len(rows) for rows in changes.values())
    if len(entities) > 1 and total >= MAX_OBJECTS:
        complete: list[streams.Stream] = []
        split = list(selected)      # QBO caps the whole answer: read each entity on its own
    else:
        split = [s for s in selected if len(changes[s.entity]) >= MAX_OBJECTS]
        complete = [s for s in selected if s not in split]
    new_invoices: list[str] = []
    fallback: list[streams.Stream] = []
    with db.session() as s:
        touched: set[str] = set()
        for stream in complete:
            if _shifted(s, company_id, stream, changes[stream.entity]):
                fallback.append(stream)
            rows = _changed(s, stream, company_id, changes[stream.entity]) if changed_only else changes[stream.entity]
            touched |= _apply(s, stream, company_id, rows, ctx, now(), summary, new_invoices)
            _advance(s, company_id, stream.entity, answered_at)
        mirror.recompute_customer_balances(s, company_id, touched)
    _pay_links(qbo, db, company_id, new_invoices)
    for stream in complete:
        if progress is not None:
            progress(stream.entity, len(changes[stream.entity]), len(changes[stream.entity]))
    for stream in split:
        try:
            _split(qbo, db, company_id, stream, start, ctx, summary=summary, progress=progress, now=now,
                   changed_only=changed_only)
        except CannotSplit as exc:
            log.warning("%s company=%s: %s", stream.entity, company_id, exc.message)
            fallback.append(stream)
    return fallback


def _split(qbo: client_mod.QboClient, db: Database, company_id: int, stream: streams.Stream, start: datetime,
           ctx: streams.Context, *, summary: SyncSummary, progress: full.Progress | None,
           now: Callable[[], datetime], changed_only: bool = False) -> None:
    done = 0
    while True:
        rows = _read(qbo, [stream.entity], start)[stream.entity]
        answered_at = qbo.last_time or now()
        truncated = len(rows) >= MAX_OBJECTS
        if truncated:
            # Deleted objects come after every active one: only they say how far this answer reached.
            newest = max((t for r in rows if _is_deleted(r) for t in [_row_time(r)] if t is not None), default=None)
            if newest is None:
                raise CannotSplit(f"{MAX_OBJECTS} changes of {stream.entity} fill the answer before its deletions; "
                                  "a full sync of it follows")
            if newest - STEP_BACK <= start:
                raise CannotSplit(f"more than {MAX_OBJECTS} changes of {stream.entity} in one second; "
                                  "a full sync of it follows")
            moved_to = newest - STEP_BACK
        new_invoices: list[str] = []
        with db.session() as s:
            if _shifted(s, company_id, stream, rows):
                raise CannotSplit(f"a {stream.entity} was deleted while it was read in full; it is read again")
            touched = _apply(s, stream, company_id, _changed(s, stream, company_id, rows) if changed_only else rows,
                             ctx, now(), summary, new_invoices)
            _advance(s, company_id, stream.entity, moved_to + OVERLAP if truncated else answered_at)
            mirror.recompute_customer_balances(s, company_id, touched)
        _pay_links(qbo, db, company_id, new_invoices)
        done += len(rows)
        if progress is not None:
            progress(stream.entity, done, None)
        if not truncated:
            return
        log.info("CDC window of %s company=%s over %s objects; continuing from %s", stream.entity, company_id,
                 MAX_OBJECTS, moved_to.isoformat())
        start = moved_to


def _apply(s, stream: streams.Stream, company_id: int, rows: list[dict], ctx: streams.Context,  # type: ignore[no-untyped-def,type-arg]
           at: datetime, summary: SyncSummary, new_invoices: list[str] | None = None) -> set[str]:
    keep: tuple[str, ...] = ()
    if stream is streams.INVOICE:
        # CDC rows carry no InvoiceLink (that needs include=invoiceLink on a query): keep the stored one,
        # and note which invoices are new to the mirror (their link is read afterwards).
        keep = ("invoice_link",)
        if new_invoices is not None:
            wanted = [str(r["Id"]) for r in rows if isinstance(r, dict) and r.get("Id") and _needs_link(r)]
            if wanted:
                table = mirror.TABLES["invoice"]
                known = set(s.connection().execute(select(table.c.qbo_id).where(
                    table.c.company_id == company_id, table.c.qbo_id.in_(wanted))).scalars())
                new_invoices.extend(i for i in wanted if i not in known)
    mirror.write_page(s, stream, company_id, rows, ctx, at, summary, keep=keep)
    if stream.table in ("invoice", "payment", "credit_memo"):
        return mirror.customers_touched(s, stream.table, company_id, rows)
    return set()


def _changed(s, stream: streams.Stream, company_id: int, rows: list[dict]) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    """``rows`` without those the mirror already holds at the same SyncToken (deletions always kept)."""
    table = mirror.TABLES[stream.table]
    ids = [str(r["Id"]) for r in rows if isinstance(r, dict) and r.get("Id") and not _is_deleted(r)]
    if not ids:
        return rows
    known = dict(s.connection().execute(select(table.c.qbo_id, table.c.sync_token).where(
        table.c.company_id == company_id, table.c.qbo_id.in_(ids), table.c.deleted.is_(False))).all())
    return [r for r in rows if not (isinstance(r, dict) and not _is_deleted(r) and r.get("SyncToken") is not None
                                    and known.get(str(r.get("Id"))) == str(r["SyncToken"]))]


def _needs_link(row: dict) -> bool:  # type: ignore[type-arg]
    online = row.get("AllowOnlineCreditCardPayment") or row.get("AllowOnlineACHPayment")
    email = (row.get("BillEmail") or {}).get("Address") if isinstance(row.get("BillEmail"), dict) else None
    try:
        open_ = float(row.get("Balance") or 0) > 0
    except (TypeError, ValueError):
        open_ = False
    return bool(online and email and open_ and "InvoiceLink" not in row and str(row.get("status", "")) != "Deleted")


def _pay_links(qbo: client_mod.QboClient, db: Database, company_id: int, new_invoices: list[str]) -> None:
    """Invoices new to the mirror get their pay link: one query per 500, none when no invoice is new."""
    missing = sorted(set(new_invoices), key=lambda x: (len(x), x))
    table = mirror.TABLES["invoice"]
    for i in range(0, len(missing), 500):
        chunk = missing[i:i + 500]
        where = "Id IN (" + ", ".join(f"'{x}'" for x in chunk) + ")"
        try:
            response = qbo.query(streams.build_query("Invoice", where=where), include="invoiceLink")
        except (errors.TransientFailure, errors.PermanentFailure) as exc:
            log.warning("pay links of %s new invoices not read company=%s: %s", len(chunk), company_id, exc.message)
            return
        links = {str(r["Id"]): r["InvoiceLink"] for r in response.get("Invoice") or ()
                 if isinstance(r, dict) and r.get("InvoiceLink")}
        if links:
            with db.session() as s:
                for qbo_id, link in links.items():
                    s.connection().execute(update(table).where(table.c.company_id == company_id,
                                                               table.c.qbo_id == qbo_id).values(invoice_link=link))


def _shifted(s, company_id: int, stream: streams.Stream, rows: list[dict]) -> bool:  # type: ignore[no-untyped-def,type-arg]
    """True when a row of ``stream`` was deleted while the stream's last full sync was reading it.

    Pages are positions, not a snapshot: such a deletion moves the rows after it one place up,
    and the one that crossed a page boundary was never read. The full sync ran from the
    cursor (its first page's server time) to ``full_sync_at`` (its last page's).
    """
    if stream.table not in ("invoice", "payment", "credit_memo"):
        return False
    cur = mirror.cursor(s, company_id, stream.entity)
    if cur.full_sync_at is None or cur.changed_since is None or cur.changed_since >= cur.full_sync_at:
        return False
    for row in rows:
        if _is_deleted(row):
            moment = _row_time(row)
            if moment is not None and cur.changed_since <= moment < cur.full_sync_at:
                log.warning("%s %s company=%s was deleted during the full sync of %s; reading it again",
                            stream.entity, row.get("Id"), company_id, stream.entity)
                return True
    return False


def _advance(s, company_id: int, entity: str, to: datetime) -> None:  # type: ignore[no-untyped-def]
    cur = mirror.cursor(s, company_id, entity)
    # Cursors only move forward: a slower concurrent sync must not pull one back.
    if cur.changed_since is None or to > cur.changed_since:
        cur.changed_since = to
