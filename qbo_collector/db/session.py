"""Engine and sessions. SQLite gets WAL, foreign keys and a real ``BEGIN IMMEDIATE`` on demand."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from qbo_collector import config, errors

IMMEDIATE = {"sqlite_begin": "BEGIN IMMEDIATE"}


def make_engine(url: str, **kwargs: object) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise errors.ConfigError(
                    f"The folder of the SQLite database, {Path(path).parent}, cannot be created ({exc.strerror}); set "
                    "QBO_COLLECTOR_DATABASE_URL (or QBO_COLLECTOR_HOME, where it is kept by default) to a place this "
                    "user may write.", variable="QBO_COLLECTOR_DATABASE_URL") from None
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        _sqlite_events(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_events(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # pysqlite's own BEGIN handling is off so that we can say BEGIN IMMEDIATE when a
        # transaction must hold the write lock from its first read (token refresh, leases).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
        # SQLite's own lower() lowers ASCII letters only (lower('Élodie') is 'Élodie'), so the customer search
        # missed names starting with É, À, Ç. Python's lowers every letter, as PostgreSQL's does under a UTF-8
        # LC_CTYPE. No index may use lower(): a connection without this function (the sqlite3 shell) would
        # compute other keys.
        dbapi_conn.create_function("lower", 1, _lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


def _lower(value: object) -> object:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).lower()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


class Database:
    """One engine and its session factory, built from the settings and passed down."""

    def __init__(self, url: str, **engine_kwargs: object) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        writer = self.engine
        if is_sqlite(self.engine):
            # A deferred SQLite transaction that reads and then writes fails at once with "database
            # is locked" when another connection wrote in between (the busy timeout cannot help an
            # upgrade). Writing sessions therefore take the write lock up front; ``reading()`` is
            # for pages that only read.
            writer = self.engine.execution_options(**IMMEDIATE)
        self.sessions = sessionmaker(writer, expire_on_commit=False)
        self.read_sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: config.Settings) -> "Database":
        return cls(settings.database_url)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on error."""
        with self.sessions() as s, s.begin():
            yield s

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for reads only: on SQLite it neither waits for nor blocks writers (WAL)."""
        with self.read_sessions() as s, s.begin():
            yield s

    @contextlib.contextmanager
    def locked_session(self) -> Iterator[Session]:
        """A transaction that holds the database's write lock (SQLite) from its first statement.

        On PostgreSQL use ``with_for_update()`` on the rows instead; this is then a plain transaction.
        """
        with self.engine.connect() as conn:
            if is_sqlite(self.engine):
                conn = conn.execution_options(**IMMEDIATE)
            with Session(bind=conn, expire_on_commit=False) as s, s.begin():
                yield s

    def dispose(self) -> None:
        self.engine.dispose()
