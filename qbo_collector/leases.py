"""Claiming a company's work so that any number of schedulers and workers never do it twice.

A unit of work is (company, kind). ``claim`` is one conditional UPDATE: it succeeds only when
the lease is free (``lease_until`` passed) and, for daily work, the work is not yet done for
that local date (``done_on < today``). On PostgreSQL the row is first taken with
``SELECT … FOR UPDATE SKIP LOCKED``, so a busy row is skipped instead of waited for; on SQLite
the transaction holds the write lock (``BEGIN IMMEDIATE``). A worker that dies stops renewing
and its lease runs out after ``ttl``; the next tick elsewhere takes the work over. A live one
renews its leases while it works (``kept``), however long the work takes. The outbox's
dedupe keys make a second attempt harmless anyway — leases save the API calls.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from qbo_collector.db import models
from qbo_collector.db.session import Database, is_sqlite

log = logging.getLogger(__name__)

# The (company id, kind) leases the work running in this thread holds (``holding``): work it calls
# that would claim one of them itself (a sync inside the scheduler's sync or run) goes ahead instead.
_HELD: contextvars.ContextVar[frozenset[tuple[int, str]]] = contextvars.ContextVar("held_leases", default=frozenset())
BUSY = "lease_busy"  # the code of the TransientFailure ``exclusive`` raises when another process keeps the lease


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _ensure_row(db: Database, company_id: int, kind: str) -> None:
    insert = sqlite_insert if is_sqlite(db.engine) else pg_insert
    with db.session() as s:
        s.execute(insert(models.WorkLease).values(company_id=company_id, kind=kind).on_conflict_do_nothing())


def claim(db: Database, company_id: int, kind: str, owner: str, *, now: datetime, ttl: timedelta,
          once_for: date | None = None, not_done_since: datetime | None = None) -> bool:
    """Take the (company, kind) lease until ``now + ttl``.

    ``once_for``: refuse if the work is already done for that local date (daily work).
    ``not_done_since``: refuse if it was completed after that moment (recurring work: another
    process may have finished it between our reading the company list and this claim).
    """
    _ensure_row(db, company_id, kind)
    free = or_(models.WorkLease.lease_until.is_(None), models.WorkLease.lease_until < now,
               models.WorkLease.owner == owner)
    condition = and_(models.WorkLease.company_id == company_id, models.WorkLease.kind == kind, free)
    if once_for is not None:
        condition = and_(condition, or_(models.WorkLease.done_on.is_(None), models.WorkLease.done_on < once_for))
    if not_done_since is not None:
        condition = and_(condition, or_(models.WorkLease.done_at.is_(None), models.WorkLease.done_at < not_done_since))
    with db.locked_session() as s:
        if not is_sqlite(db.engine):
            row = s.execute(select(models.WorkLease.company_id).where(
                models.WorkLease.company_id == company_id, models.WorkLease.kind == kind)
                .with_for_update(skip_locked=True)).first()
            if row is None:
                return False  # another process holds the row right now
        result = s.execute(update(models.WorkLease).where(condition)
                           .values(owner=owner, lease_until=now + ttl)
                           .execution_options(synchronize_session=False))
        return result.rowcount == 1


def renew(db: Database, company_id: int, kind: str, owner: str, *, now: datetime, ttl: timedelta) -> bool:
    """Extend a lease we hold; False if it was lost (expired and taken by someone else)."""
    with db.session() as s:
        result = s.execute(update(models.WorkLease).where(
            models.WorkLease.company_id == company_id, models.WorkLease.kind == kind,
            models.WorkLease.owner == owner).values(lease_until=now + ttl)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1


@contextlib.contextmanager
def kept(db: Database, company_id: int, ttls: Mapping[str, timedelta], owner: str, *,
         now: Callable[[], datetime], every: float, beat: Callable[[], None] | None = None) -> Iterator[None]:
    """Renew the leases ``ttls`` (kind → ttl) every ``every`` seconds while the block runs, so that
    work longer than its ttl is not taken over by another process while this one still does it.
    ``beat`` is called as often (the scheduler renews its heartbeat there while a unit of work runs)."""
    stop = threading.Event()

    def renewing() -> None:
        while not stop.wait(every):
            for kind, ttl in ttls.items():
                try:
                    if not renew(db, company_id, kind, owner, now=now(), ttl=ttl) and not stop.is_set():
                        log.warning("lease %s of company %s was lost while its work went on", kind, company_id)
                except Exception:  # the database is away for a moment: the next renewal may succeed
                    log.exception("renewing lease %s of company %s failed", kind, company_id)
            if beat is not None and not stop.is_set():
                beat()

    thread = threading.Thread(target=renewing, name=f"lease-{company_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def release(db: Database, company_id: int, kind: str, owner: str, *, now: datetime,
            done_on: date | None = None, error: str | None = None, hold_for: timedelta | None = None,
            done_at: datetime | None = None) -> None:
    """Give the lease back; record completion (``done_on``) or the error that stopped the work.

    ``hold_for``: nobody may claim the work again before ``now + hold_for`` (back-off after a transient error).
    ``done_at``: the moment the work's data was read (default ``now``): the next run looks for
    changes from there, so that one made while this run was working is not missed.
    """
    values: dict[str, object] = {"owner": None, "lease_until": now + hold_for if hold_for else None,
                                 "last_error": error}
    if error is None:
        values["done_at"] = done_at or now
        if done_on is not None:
            values["done_on"] = done_on
    with db.session() as s:
        s.execute(update(models.WorkLease).where(
            models.WorkLease.company_id == company_id, models.WorkLease.kind == kind,
            models.WorkLease.owner == owner).values(**values).execution_options(synchronize_session=False))


def release_hold(db: Database, company_id: int, kind: str, owner: str) -> None:
    """Give back a lease taken only to exclude others, leaving its completion record as it was."""
    with db.session() as s:
        s.execute(update(models.WorkLease).where(
            models.WorkLease.company_id == company_id, models.WorkLease.kind == kind,
            models.WorkLease.owner == owner).values(owner=None, lease_until=None)
            .execution_options(synchronize_session=False))


def mark_done(db: Database, company_id: int, kind: str, owner: str, *, once_for: date) -> bool:
    """Record daily work as done for ``once_for`` *before* doing it; False if it already was.

    For work a second attempt would repeat visibly (an email with no dedupe key at the provider):
    a compare-and-set on ``done_on`` that holds whatever the clocks of the processes say about
    lease expiry. At most once: a crash after this and before the send loses that one message.
    """
    with db.session() as s:
        result = s.execute(update(models.WorkLease).where(
            models.WorkLease.company_id == company_id, models.WorkLease.kind == kind,
            models.WorkLease.owner == owner,
            or_(models.WorkLease.done_on.is_(None), models.WorkLease.done_on < once_for))
            .values(done_on=once_for).execution_options(synchronize_session=False))
        return result.rowcount == 1


def unmark_done(db: Database, company_id: int, kind: str, owner: str, *, once_for: date) -> None:
    """Undo ``mark_done`` when the work provably did not happen (so the next tick retries it)."""
    with db.session() as s:
        s.execute(update(models.WorkLease).where(
            models.WorkLease.company_id == company_id, models.WorkLease.kind == kind,
            models.WorkLease.owner == owner, models.WorkLease.done_on == once_for)
            .values(done_on=once_for - timedelta(days=1)).execution_options(synchronize_session=False))


def release_all(db: Database, owner: str) -> int:
    """On shutdown: free every lease this process still holds (the work was finished or not started)."""
    with db.session() as s:
        result = s.execute(update(models.WorkLease).where(models.WorkLease.owner == owner)
                           .values(owner=None, lease_until=None).execution_options(synchronize_session=False))
        return result.rowcount


@contextlib.contextmanager
def holding(company_id: int, kinds: Iterable[str]) -> Iterator[None]:
    """Say, for the block and in this thread, that the caller holds these leases of the company."""
    token = _HELD.set(_HELD.get() | {(company_id, kind) for kind in kinds})
    try:
        yield
    finally:
        _HELD.reset(token)


def is_held(company_id: int, kind: str) -> bool:
    return (company_id, kind) in _HELD.get()


@contextlib.contextmanager
def exclusive(db: Database, company_id: int, kind: str, *, ttl: timedelta, now: Callable[[], datetime],
              wait: float, every: float = 60.0, poll: float = 0.5) -> Iterator[None]:
    """Hold the (company, kind) lease for the block, as a worker would, unless this thread already does
    (``holding``): a sync asked for by a webhook, "Sync now" or the command line never runs beside a
    worker's sync, catch-up or daily run of the same company in another process — that would pay for
    the same reads twice, and each process's rate limiter would count only its own calls. Waits up to
    ``wait`` seconds for the other process to give the lease back, then raises ``TransientFailure``
    (code ``BUSY``), having done nothing."""
    if is_held(company_id, kind):
        yield
        return
    from qbo_collector import errors

    owner = f"{default_owner()}:{threading.get_ident()}"
    deadline = time.monotonic() + wait
    while not claim(db, company_id, kind, owner, now=now(), ttl=ttl):
        if _take_from_the_dead(db, company_id, kind, owner, now=now(), ttl=ttl):
            break
        if time.monotonic() >= deadline:
            raise errors.TransientFailure(f"Another worker is doing this company's {kind} right now; "
                                          "try again when it has finished.", code=BUSY)
        time.sleep(poll)
    try:
        with kept(db, company_id, {kind: ttl}, owner, now=now, every=every), holding(company_id, [kind]):
            yield
    finally:
        release_hold(db, company_id, kind, owner)


def _gone(holder: str | None) -> bool:
    """Whether the process named by a lease's owner ("host:pid…") is one of this machine's and has
    exited (SIGKILL, a crash): then it holds nothing, whatever its lease says."""
    host, _, rest = (holder or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, another user's
        return False
    return False


def _take_from_the_dead(db: Database, company_id: int, kind: str, owner: str, *, now: datetime,
                        ttl: timedelta) -> bool:
    """Take the lease over from a process of this machine that died holding it, at once rather than
    after its ttl: a sync run by hand after a killed one must not wait twenty minutes."""
    with db.session() as s:
        holder = s.scalar(select(models.WorkLease.owner).where(models.WorkLease.company_id == company_id,
                                                               models.WorkLease.kind == kind))
    if not _gone(holder):
        return False
    with db.session() as s:
        taken = s.execute(update(models.WorkLease).where(
            models.WorkLease.company_id == company_id, models.WorkLease.kind == kind, models.WorkLease.owner == holder)
            .values(owner=owner, lease_until=now + ttl).execution_options(synchronize_session=False)).rowcount == 1
    if taken:
        log.warning("lease %s of company %s taken over from %s, a process of this machine that exited holding it",
                    kind, company_id, holder)
    return taken
