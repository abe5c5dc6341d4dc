"""Scaling past one machine: N companies × M open invoices on PostgreSQL, worked by 1, 2 and 4 workers.

For each worker count the database starts empty but for the connected companies; W worker
processes run the real ``scheduler.Ticker`` (full sync, catch-up, daily run with dispatch)
at the same simulated moment until every company's daily run is done. Printed, per W:
companies processed per minute (wall), API calls per company against the optimum read from
the sandbox's request log, and where the workers' time went (sync, catch-up, run, claiming).

    .venv/bin/python bench/scale.py                     # 1,000 companies × 1,000 open invoices
    .venv/bin/python bench/scale.py --companies 100     # smaller, same shape

Needs PostgreSQL: ``--database-url`` or QBO_COLLECTOR_TEST_POSTGRES_URL (``bash .ci/pg-setup`` starts one).
Figures are measured in this run; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qbo_collector import config, rules  # noqa: E402
from qbo_collector.db import migrate, models  # noqa: E402
from qbo_collector.db.secrets import Vault  # noqa: E402
from qbo_collector.db.session import Database  # noqa: E402
from qbo_collector.sandbox import server  # noqa: E402

WORKER = textwrap.dedent("""
    import json, sys, time
    from datetime import datetime
    from qbo_collector import config, scheduler
    from qbo_collector.db.secrets import Vault
    from qbo_collector.db.session import Database
    settings = config.load(env_file=None)
    db = Database(settings.database_url)
    vault = Vault(settings.secret_key())
    now = datetime.fromisoformat(sys.argv[1])
    spent = {"sync": 0.0, "catchup": 0.0, "run": 0.0, "digest": 0.0}
    base = scheduler.default_jobs(settings, db, vault)
    def timed(kind):
        job = getattr(base, kind)
        def run(realm, at):
            started = time.perf_counter()
            try:
                return job(realm, at)
            finally:
                spent[kind] += time.perf_counter() - started
        return run
    jobs = scheduler.Jobs(**{k: timed(k) for k in spent})
    ticker = scheduler.Ticker(settings, db, vault, owner=sys.argv[2], jobs=jobs, now=lambda: now)
    started = time.perf_counter()
    done = failed = 0
    reasons = []
    idle = 0
    while idle < 2:
        report = ticker.tick()
        done += len(report.done); failed += len(report.failed)
        reasons += [f"{kind}: {why}"[:160] for _realm, kind, why in report.failed]
        idle = idle + 1 if not report.done and not report.failed else 0
        if report.failed and not report.done:
            now = now.__class__.fromtimestamp(now.timestamp() + 301, now.tzinfo)  # past the back-off
            ticker.now = lambda: now
    total = time.perf_counter() - started
    print(json.dumps({"done": done, "failed": failed, "seconds": total, "spent": spent, "reasons": reasons[:5]}))
""")


def _connect_all(sb: server.Sandbox, db: Database, vault: Vault, realms: list[str], preset: str) -> None:
    """Companies and tokens straight from the sandbox (the OAuth flow has its own tests)."""
    now = datetime.now(timezone.utc)
    policy = rules.PRESETS[preset].model_dump(mode="json")
    with db.session() as s:
        for realm in realms:
            body = sb.connect(realm)
            company = models.Company(realm_id=realm, name=sb.intuit.companies[realm].name, currency="USD",
                                     country="US", timezone="UTC", language="en", policy=policy,
                                     settings={"send_hour": 9}, connected_at=now)
            s.add(company)
            s.flush()
            s.add(models.Token(company_id=company.id, access_token=vault.encrypt(body["access_token"]),
                               refresh_token=vault.encrypt(body["refresh_token"]),
                               access_expires_at=now + timedelta(seconds=body["expires_in"])))


def _optimum_sync_calls(sb: server.Sandbox, realm: str) -> int:
    """Σ ⌈rows/1000⌉ per entity (an entity with no rows still costs one query) + CompanyInfo."""
    calls = 1
    for entity in ("Customer", "Invoice", "Payment", "CreditMemo", "Term"):
        calls += max(1, math.ceil(len(sb.intuit.entities(realm, entity)) / 1000))
    return calls


def measure(workers: int, *, sb: server.Sandbox, realms: list[str], admin_url: str, home: Path,
            now: datetime, preset: str) -> dict:
    name = f"qbo_scale_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        settings = config.load(env_file=None, qbo_collector_home=home)
        db = Database(url)
        migrate.upgrade(db)
        vault = Vault(settings.secret_key())
        _connect_all(sb, db, vault, realms, preset)
        sb.log.clear()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("QBO_COLLECTOR_", "INTUIT_"))}
        env.update(QBO_COLLECTOR_HOME=str(home), QBO_COLLECTOR_DATABASE_URL=url,
                   INTUIT_CLIENT_ID=sb.client_id, INTUIT_CLIENT_SECRET=sb.client_secret,
                   INTUIT_ENVIRONMENT=sb.discovery_url, INTUIT_API_BASE_URL=sb.api_base_url,
                   INTUIT_REDIRECT_URI="http://127.0.0.1:8765/connect/callback")
        started = time.perf_counter()
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, now.isoformat(), f"w{i}"], env=env, cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(workers)]
        outputs = [p.communicate() for p in procs]
        wall = time.perf_counter() - started
        reports = []
        for p, (out, err) in zip(procs, outputs):
            if p.returncode != 0:
                raise SystemExit(f"worker failed:\n{err[-3000:]}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
        with db.session() as s:
            runs_done = s.scalar(select(func.count()).select_from(models.WorkLease).where(
                models.WorkLease.kind == "run", models.WorkLease.done_on == now.date())) or 0
            sent = s.scalar(select(func.count()).select_from(models.Outbox).where(
                models.Outbox.status == models.OutboxStatus.sent)) or 0
        counts = Counter()
        for entry in sb.log.entries():
            if entry.service == "intuit":
                counts[entry.endpoint.split(":")[0]] += 1
        calls = sum(counts.values())
        db.dispose()
        return {"workers": workers, "wall": wall, "runs_done": runs_done, "sent": sent, "calls": calls,
                "by_endpoint": dict(counts), "reports": reports}
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--invoices", type=int, default=1000, help="open invoices per company")
    parser.add_argument("--customers", type=int, default=50, help="customers per company")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--preset", default="friendly", choices=sorted(rules.PRESETS))
    parser.add_argument("--database-url", default=os.environ.get("QBO_COLLECTOR_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if not args.database_url or not args.database_url.startswith("postgresql"):
        raise SystemExit("bench/scale.py needs PostgreSQL: --database-url or QBO_COLLECTOR_TEST_POSTGRES_URL "
                         "(`bash .ci/pg-setup` starts one)")
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    t0 = time.perf_counter()
    sb = server.Sandbox(seed=9, auto_approve=True, rate_limit_per_second=None, rate_limit_per_minute=None,
                        batch_limit_per_minute=None)
    realms = [sb.add_company(server.CompanySpec(name=f"Scale Co {i}", country="US", currency="USD",
                                                timezone="UTC", language="en", customers=args.customers,
                                                invoices=args.invoices, payments=0, credit_memos=0, seed=1000 + i))
              for i in range(args.companies)]
    sb.start()
    open_invoices = sum(1 for r in realms[:5] for inv in sb.intuit.entities(r, "Invoice") if inv.get("Balance"))
    print(f"sandbox: {args.companies} companies × {args.invoices} invoices ({open_invoices / min(5, len(realms)):.0f} "
          f"open in the first five on average), generated in {time.perf_counter() - t0:.1f} s")
    optimum_sync = sum(_optimum_sync_calls(sb, r) for r in realms) / len(realms)
    # a Tuesday 10:00 UTC after the data's today: send hour passed, no digest
    now = datetime.combine(sb.clock.now().date(), datetime.min.time(), timezone.utc) + timedelta(hours=10)
    while now.weekday() != 1:
        now += timedelta(days=1)
    with tempfile.TemporaryDirectory() as tmp:
        results = [measure(int(w), sb=sb, realms=realms, admin_url=args.database_url, home=Path(tmp), now=now,
                           preset=args.preset) for w in args.workers.split(",")]
    sb.stop()

    print()
    print(f"{'workers':>7} {'wall s':>8} {'companies/min':>14} {'runs done':>9} {'sent':>7} "
          f"{'calls/company':>13} {'sync optimum':>12}")
    for r in results:
        print(f"{r['workers']:>7} {r['wall']:>8.1f} {len(realms) / r['wall'] * 60:>14.0f} {r['runs_done']:>9} "
              f"{r['sent']:>7} {r['calls'] / len(realms):>13.2f} {optimum_sync:>12.2f}")
    print()
    for r in results:
        spent = Counter()
        for rep in r["reports"]:
            spent.update(rep["spent"])
        busy = sum(spent.values())
        total = sum(rep["seconds"] for rep in r["reports"])
        parts = ", ".join(f"{k} {v:.1f} s ({v / total:.0%})" for k, v in spent.most_common() if v)
        print(f"{r['workers']} worker(s): {parts}, claiming/ticking {total - busy:.1f} s ({(total - busy) / total:.0%}); "
              f"API calls by endpoint {r['by_endpoint']}")
        reasons = [why for rep in r["reports"] for why in rep["reasons"]]
        if reasons:
            print(f"   retried after: {reasons[:3]}")


if __name__ == "__main__":
    main()
