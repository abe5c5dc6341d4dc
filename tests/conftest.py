"""Shared fixtures: settings in a temporary HOME, and a migrated database on SQLite and PostgreSQL.

PostgreSQL variants run when QBO_COLLECTOR_TEST_POSTGRES_URL points at a server (``.ci/run``
installs and starts one from Debian packages); without it they are skipped with that reason.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from qbo_collector import config
from qbo_collector.db import migrate
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database

if importlib.util.find_spec("tests.integration.conftest_sandbox") is not None:
    pytest_plugins = ["tests.integration.conftest_sandbox"]

PG_URL = os.environ.get("QBO_COLLECTOR_TEST_POSTGRES_URL")

# QBO_COLLECTOR_TEST_WALL_CLOCK=2026-12-08T06:30:00+00:00 runs the suite as if the wall clock read that
# time (time-machine, ticking; PostgreSQL and subprocesses keep the real clock). Tests give runs a
# time of day in the company's zone: the suite must pass whatever the hour and day it runs at.
WALL_CLOCK = os.environ.get("QBO_COLLECTOR_TEST_WALL_CLOCK")


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """``qbo-collector`` commands run in a test point the root logger at that test's captured stderr
    (``logs.configure``); put the handlers back after it, so that no later test logs into a closed
    stream ("--- Logging error ---")."""
    import logging

    from qbo_collector import logs

    root = logging.getLogger()
    level = root.level
    yield
    root.handlers[:] = [h for h in root.handlers if h.get_name() != logs.HANDLER_NAME]
    root.setLevel(level)


def pytest_configure(config: pytest.Config) -> None:
    if WALL_CLOCK:
        import datetime

        import time_machine

        travel = time_machine.travel(datetime.datetime.fromisoformat(WALL_CLOCK), tick=True)
        travel.start()
        config.add_cleanup(travel.stop)


def pytest_report_header(config: pytest.Config) -> str | None:
    return f"wall clock moved to {WALL_CLOCK} (QBO_COLLECTOR_TEST_WALL_CLOCK)" if WALL_CLOCK else None


# Tests never read a developer's .env or environment by accident.
for _name in [s.name for s in config.SETTINGS]:
    os.environ.pop(_name, None)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def _postgres_database() -> Iterator[str]:
    assert PG_URL
    name = f"qbo_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, home: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{home / 'test.db'}"
        return
    if not PG_URL:
        pytest.skip("QBO_COLLECTOR_TEST_POSTGRES_URL is not set (.ci/run sets it after starting PostgreSQL)")
    yield from _postgres_database()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(home: Path) -> Iterator[Database]:
    """SQLite only, for tests whose subject is not the database."""
    database = Database(f"sqlite:///{home / 'test.db'}")
    migrate.upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def settings_factory(home: Path):  # type: ignore[no-untyped-def]
    def make(**overrides: object) -> config.Settings:
        values = {"qbo_collector_home": home, **overrides}
        return config.load(env_file=None, **values)

    return make


@pytest.fixture
def vault(settings_factory) -> Vault:  # type: ignore[no-untyped-def]
    return Vault(settings_factory().secret_key())
