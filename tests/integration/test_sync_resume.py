"""A full sync killed with SIGKILL mid-way resumes where it stopped: nothing lost, nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from qbo_collector.db import models
from qbo_collector.sandbox import server
from qbo_collector.sync import run
from tests.integration import test_sync_support as support

CHILD = """
import json, sys
from qbo_collector import config
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database
from qbo_collector.sync import client, run
args = json.loads(sys.argv[1])
settings = config.load(env_file=None, **args["settings"])
run.sync_company(settings, Database(args["db"]), Vault(settings.secret_key()), args["realm"],
                 policy=client.RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02))
"""


def _count(db, model) -> int:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_a_sync_killed_mid_way_resumes_without_loss_or_duplicates(sandbox_factory, settings_factory, db, vault):
    spec = server.CompanySpec(name="Kill Co", customers=120, invoices=5200, payments=2600, seed=9)
    sb = sandbox_factory(companies=[spec])
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    sb.intuit_faults.latency_seconds = 0.2          # slow enough to be killed between pages
    args = {"settings": json.loads(json.dumps(settings.model_dump(), default=str)), "db": db.url, "realm": realm}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(args)], cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 60
        while _count(db, models.Invoice) < 2000:
            assert child.poll() is None, "the sync finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    killed_at = _count(db, models.Invoice)
    assert 2000 <= killed_at < len(sb.intuit.entities(realm, "Invoice"))
    with db.session() as s:
        cursor = s.scalar(select(models.SyncCursor).where(models.SyncCursor.entity == "Invoice"))
        assert cursor.full_sync_position == killed_at + 1     # the committed pages, exactly

    sb.intuit_faults.latency_seconds = 0
    resumed = run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED)
    assert resumed.ok, resumed.errors
    assert resumed.mode in ("resumed", "mixed")
    assert resumed.written["Invoice"] == len(sb.intuit.entities(realm, "Invoice")) - killed_at  # no page read twice
    assert resumed.written.get("Customer", 0) == 0             # finished streams: only their CDC changes (none)
    support.assert_mirror_equals_source(db, sb, realm)
    assert _count(db, models.Invoice) == len(sb.intuit.entities(realm, "Invoice")) + len(
        [i for i in support.deleted_ids(db, realm, models.Invoice)])
    again = run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED)
    assert again.mode == "incremental"
