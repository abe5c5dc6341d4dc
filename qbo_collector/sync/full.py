"""Full sync of one stream: pages of 1000, each committed with its resume position.

Memory does not grow with the company: one page is held at a time. The page and the
cursor's ``full_sync_position`` are committed in one transaction, so a sync killed at any
point resumes at the first page it had not committed (re-reading nothing twice, losing
nothing). The API-call optimum is kept: no COUNT query, and the loop stops on a page
shorter than 1000 rows (a stream of exactly N×1000 rows costs one extra, empty page).

The first page's server time becomes the stream's CDC cursor, so the next incremental
sync picks up whatever changed while the full sync was reading. When the last page is
committed, rows the full sync did not see are marked deleted: QBO deleted them longer
ago than CDC reaches back.

QBO paging has no snapshot: a row deleted during a full sync shifts the rows after it up
by one position, so one row may be skipped. The first CDC read after the full sync sees
that deletion (its time falls inside the full sync) and reads the stream in full again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from qbo_collector.db import models
from qbo_collector.db.session import Database
from qbo_collector.sync import client as client_mod
from qbo_collector.sync import mirror, streams
from qbo_collector.sync.summary import SyncSummary

log = logging.getLogger(__name__)

Progress = Callable[[str, int, "int | None"], None]


def utcnow() -> datetime:
    return models.utcnow()  # the program's clock: what the sync stamps compares with the dispatcher's marks


def context(db: Database, company_id: int, now: datetime) -> streams.Context:
    with db.session() as s:
        company = s.get(models.Company, company_id)
        assert company is not None
        return streams.Context(home_currency=company.currency or "USD",
                               term_days=mirror.term_days(s, company_id), now=now)


def sync_stream(qbo: client_mod.QboClient, db: Database, company_id: int, stream: streams.Stream, *,
                summary: SyncSummary, fresh: bool, progress: Progress | None = None,
                now: Callable[[], datetime] = utcnow) -> None:
    """Read every row of ``stream`` into the mirror (resuming an interrupted run unless ``fresh``)."""
    if stream.table is None:
        _company_info(qbo, db, company_id, summary=summary, now=now)
        return
    with db.session() as s:
        cur = mirror.cursor(s, company_id, stream.entity)
        if fresh or cur.full_sync_started_at is None or not cur.full_sync_position:
            cur.full_sync_started_at = now()
            cur.full_sync_position = 1
            first = True
        else:
            first = False
            log.info("resuming full sync of %s company=%s at row %s", stream.entity, company_id,
                     cur.full_sync_position)
        position, seen_since = cur.full_sync_position, cur.full_sync_started_at
    ctx = context(db, company_id, now())
    done = position - 1
    cursors = models.SyncCursor.__table__
    pages = _Prefetch(qbo, stream, position)
    try:
        for position, rows, server_time in pages:
            last = len(rows) < streams.PAGE_SIZE
            stamp = now()
            with db.session() as s:
                mirror.write_page(s, stream, company_id, rows, ctx, stamp, summary)
                if not (first or last):  # the common case, kept cheap: one UPDATE in the page's transaction
                    s.connection().execute(update(cursors).where(
                        cursors.c.company_id == company_id, cursors.c.entity == stream.entity,
                    ).values(full_sync_position=position + len(rows)))
                else:
                    _first_or_last(s, company_id, stream, position + len(rows), first=first, last=last,
                                   server_time=server_time, stamp=stamp, seen_since=seen_since, summary=summary)
                    first = False
            done += len(rows)
            if progress is not None:
                progress(stream.entity, done, None)
    finally:
        pages.close()


def _first_or_last(s: Any, company_id: int, stream: streams.Stream, next_position: int, *, first: bool, last: bool,
                   server_time: datetime | None, stamp: datetime, seen_since: datetime, summary: SyncSummary) -> None:
    cur = mirror.cursor(s, company_id, stream.entity)
    if first:
        # Everything changed after this instant (server time) is for CDC to read.
        cur.changed_since = server_time or stamp
    if last:
        assert stream.table is not None
        swept = mirror.mark_unseen_deleted(s, stream.table, company_id, seen_since, stamp)
        if swept:
            log.info("full sync of %s company=%s: %s rows no longer in QuickBooks marked deleted",
                     stream.entity, company_id, swept)
            summary.add(stream.entity, deleted=swept)
        # Server time, like the CDC cursor: CDC compares deletions with it (see cdc._shifted).
        cur.full_sync_at = server_time or stamp
        cur.full_sync_position = None
        cur.full_sync_started_at = None
    else:
        cur.full_sync_position = next_position


class _Prefetch:
    """Reads the stream's pages one ahead in a thread, so the network wait overlaps the writing.

    At most three pages are in memory (being read, waiting, being written). Only committed
    pages count for resuming: a page read ahead and lost in a crash is simply read again.
    """

    def __init__(self, qbo: client_mod.QboClient, stream: streams.Stream, position: int) -> None:
        self.qbo, self.stream, self.position = qbo, stream, position
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"qbo-pages-{stream.entity}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        position = self.position
        try:
            while not self._stop.is_set():
                response = self.qbo.query(self.stream.query(start=position), include=self.stream.include)
                rows = response.get(self.stream.entity) or []
                if not isinstance(rows, list):
                    rows = []
                self._put((position, rows, self.qbo.last_time))
                if len(rows) < streams.PAGE_SIZE:
                    return
                position += len(rows)
        except BaseException as exc:  # handed to the reader, raised there
            self._put(exc)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[tuple[int, list[dict[str, Any]], datetime | None]]:
        while True:
            item = self._queue.get()
            if isinstance(item, BaseException):
                raise item
            position, rows, server_time = item  # type: ignore[misc]
            yield position, rows, server_time
            if len(rows) < streams.PAGE_SIZE:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _company_info(qbo: client_mod.QboClient, db: Database, company_id: int, *, summary: SyncSummary,
                  now: Callable[[], datetime]) -> None:
    response = qbo.query("SELECT * FROM CompanyInfo")
    rows = response.get("CompanyInfo") or []
    values = streams.company_info(rows[0]) if rows and isinstance(rows[0], dict) else {}
    with db.session() as s:
        company = s.get(models.Company, company_id)
        assert company is not None
        for key, value in values.items():
            setattr(company, key, value)
        cur = mirror.cursor(s, company_id, "CompanyInfo")
        cur.full_sync_at = now()
        cur.changed_since = qbo.last_time or now()
    summary.add("CompanyInfo", written=1 if values else 0)


def company_id_for(db: Database, realm_id: str) -> int | None:
    with db.session() as s:
        return s.scalar(select(models.Company.id).where(models.Company.realm_id == realm_id))
