"""Sync benchmark: API calls vs the optimum, wall time vs a raw floor, peak RSS (flat when the company doubles).

    python bench/sync.py                      # 100,000 invoices, 60,000 payments, 5,000 customers (make bench)
    python bench/sync.py --scale 0.1          # a tenth of that, for a quick look
    python bench/sync.py --database-url postgresql+psycopg://…/db   # on PostgreSQL (the database is reset)

The sandbox (with Intuit's real rate limits: 10/s, 500/min) runs in this process; every
measured sync runs in a fresh child process, so its peak RSS is the sync's alone.

- API calls: counted by the client and by the sandbox's request log; the optimum of a full
  sync is Σ ⌈rows/1000⌉ per entity (+1 for CompanyInfo), of an incremental sync of ≤ 1000
  changes 1 call. A stream of exactly N×1000 rows costs one extra, empty page (said below).
- Floor: plain ``requests`` + ``json.loads`` of the same pages, paced by the same limiter as
  the sync (Intuit's 10/s), then one bulk insert of (entity, Id, LastUpdatedTime) — what any sync must do
  at least. Target: full sync ≤ 1.5 × floor.
- Peak RSS of the full sync of the company and of the company doubled. Target < 250 MB, flat.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENTITIES = ("Term", "Customer", "Invoice", "Payment", "CreditMemo")


def _settings_values(sb, home: Path, database_url: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"qbo_collector_home": str(home), "qbo_collector_database_url": database_url,
            "intuit_client_id": sb.client_id, "intuit_client_secret": sb.client_secret,
            "intuit_environment": sb.discovery_url, "intuit_api_base_url": sb.api_base_url,
            "intuit_redirect_uri": "http://127.0.0.1:8765/connect/callback"}


def _fresh_database(url: str) -> None:
    from sqlalchemy import MetaData, create_engine

    from qbo_collector.db import migrate
    from qbo_collector.db.session import Database

    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        engine = create_engine(url)
        meta = MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        engine.dispose()
    db = Database(url)
    migrate.upgrade(db)
    db.dispose()


def _connect(sb, values: dict[str, str], realm: str) -> None:  # type: ignore[no-untyped-def]
    """The real OAuth flow (the sandbox auto-approves), as ``qbo-collector connect`` does it."""
    import requests

    from qbo_collector import config
    from qbo_collector.db.secrets import Vault
    from qbo_collector.db.session import Database
    from qbo_collector.sync import auth

    settings = config.load(env_file=None, **values)
    db = Database(settings.database_url)
    sb.next_realm = realm
    url, _ = auth.begin(settings, db, origin="cli")
    location = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
    auth.complete(settings, db, Vault(settings.secret_key()), state=query.get("state"), code=query.get("code"),
                  realm_id=query.get("realmId"))
    db.dispose()


def _child(mode: str, values: dict[str, str], realm: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, "--child", mode, json.dumps(values), realm],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"child {mode} failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["retry_reasons"] = [line.split("reason=", 1)[-1] for line in out.stderr.splitlines() if "retried" in line]
    return result


def child_main(mode: str, values_json: str, realm: str) -> None:
    import logging

    from qbo_collector import config
    from qbo_collector.db.secrets import Vault
    from qbo_collector.db.session import Database

    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("qbo_collector.sync.client").setLevel(logging.INFO)  # retries, with their reason
    settings = config.load(env_file=None, **json.loads(values_json))
    db = Database(settings.database_url)
    vault = Vault(settings.secret_key())
    result: dict[str, object]
    if mode in ("full", "incremental"):
        from qbo_collector.sync import run

        started = time.perf_counter()
        summary = run.sync_company(settings, db, vault, realm, full=mode == "full", limiter=_limiter())
        result = {"seconds": time.perf_counter() - started, "api_calls": summary.api_calls, "ok": summary.ok,
                  "retries": summary.retries,
                  "mode": summary.mode, "written": summary.written, "errors": summary.errors,
                  "line": summary.line()}
    else:
        result = {"seconds": _floor(settings, db, vault, realm)}
    result["maxrss_mb"] = _peak_rss_mb()
    print(json.dumps(result))


def _peak_rss_mb() -> float:
    """This process image's peak RSS. Not ru_maxrss: Linux carries it over exec from the forked
    parent, which holds the whole sandbox company."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _limiter():  # type: ignore[no-untyped-def]
    from qbo_collector.sync import limiter

    if os.environ.get("QBO_BENCH_NO_RATE_LIMIT"):
        return limiter.RateLimiter((limiter.Window(1_000_000, 1.0),))
    return None


def _floor(settings, db, vault, realm: str) -> float:  # type: ignore[no-untyped-def]
    """Plain requests + json.loads of the same pages (paced at 10/s), then one bulk insert."""
    import requests
    from sqlalchemy import text

    from qbo_collector.sync import limiter, streams, tokens

    token = tokens.TokenManager(settings, db, vault, realm).access_token()
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/json",
                            "Content-Type": "application/text"})
    pace = _limiter() or limiter.RateLimiter()
    url = f"{settings.intuit_api_base_url}/company/{realm}/query"
    started = time.perf_counter()
    keep: list[tuple[str, str, str]] = []
    for stream in streams.STREAMS:
        start = 1
        while True:
            statement = stream.query(start=start) if stream.table else "SELECT * FROM CompanyInfo"
            params = {"minorversion": "75", **({"include": stream.include} if stream.include else {})}
            slot = pace.acquire(realm)
            answer = session.post(url, data=statement, params=params, timeout=120)
            pace.done(slot)
            rows = json.loads(answer.text)["QueryResponse"].get(stream.entity) or []
            keep.extend((stream.entity, r["Id"], r.get("MetaData", {}).get("LastUpdatedTime", "")) for r in rows)
            if not stream.table or len(rows) < streams.PAGE_SIZE:
                break
            start += len(rows)
    with db.engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_floor (entity VARCHAR(32), qbo_id VARCHAR(32), "
                          "updated VARCHAR(40))"))
        conn.execute(text("INSERT INTO bench_floor VALUES (:e, :i, :u)"), [{"e": e, "i": i, "u": u} for e, i, u in keep])
    return time.perf_counter() - started


def optimum(sb, realm: str) -> tuple[int, int, list[str]]:  # type: ignore[no-untyped-def]
    """(Σ ⌈rows/1000⌉ + 1 for CompanyInfo, empty pages needed after exact multiples of 1000, notes)."""
    calls, probes, notes = 1, 0, []
    for entity in ENTITIES:
        rows = len(sb.intuit.entities(realm, entity))
        calls += max(1, -(-rows // 1000))
        if rows and rows % 1000 == 0:
            probes += 1
            notes.append(f"{entity} has exactly {rows} rows: a page of 1000 never says it is the last, so the "
                         "sync reads one more, empty page (no COUNT query, which would cost a call every time)")
    return calls, probes, notes


def verdict(calls: int, best: int, probes: int, retries: int = 0) -> str:
    if retries:
        return verdict(calls - retries, best, probes) + f" (+{retries} retried after a transient failure)"
    if calls == best:
        return "EQUAL"
    if calls == best + probes:
        return f"EQUAL + {probes} empty page(s) after exact multiples of 1000 (see note)"
    return "ABOVE" if calls > best else "BELOW"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 100,000 invoices, 60,000 payments, 5,000 customers")
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    parser.add_argument("--no-double", action="store_true", help="skip the doubled company (RSS flatness)")
    parser.add_argument("--no-rate-limit", action="store_true",
                        help="lift Intuit's 10/s on both sides: compares processing, not the rate limit")
    args = parser.parse_args()

    from qbo_collector.sandbox import server
    from qbo_collector.sandbox.generator import CompanySpec

    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    tmp = Path(tempfile.mkdtemp(prefix="qbo-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    if args.no_rate_limit:
        os.environ["QBO_BENCH_NO_RATE_LIMIT"] = "1"
        sb = server.Sandbox(seed=7, auto_approve=True, rate_limit_per_second=None, rate_limit_per_minute=None)
    else:
        sb = server.Sandbox(seed=7, auto_approve=True)    # Intuit's limits on: 10/s, 500/min per realm
    n_inv, n_pay, n_cust = int(100_000 * args.scale), int(60_000 * args.scale), int(5_000 * args.scale)
    t0 = time.perf_counter()
    realm = sb.add_company(CompanySpec(name="Bench Co", customers=n_cust, invoices=n_inv, payments=n_pay, seed=1))
    print(f"sandbox company generated in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{len(sb.intuit.entities(realm, e))} {e}" for e in ENTITIES))
    sb.start()
    try:
        values = _settings_values(sb, tmp / "home", url)
        _fresh_database(url)
        _connect(sb, values, realm)
        best, probes, notes = optimum(sb, realm)

        before = sb.log.count("intuit", realm=realm)
        full = _child("full", values, realm)
        served = sb.log.count("intuit", realm=realm) - before
        assert full["ok"], full["errors"]

        changes = 0
        invoices = [r["Id"] for r in sb.intuit.entities(realm, "Invoice") if r["Balance"] > 0]
        for invoice_id in invoices[:400]:
            sb.intuit.update(realm, "Invoice", invoice_id, PrivateNote="bench")
            changes += 1
        for invoice_id in invoices[400:699]:
            sb.intuit.pay_invoice(realm, invoice_id)          # a payment and an invoice update each
            changes += 2
        before = sb.log.count("intuit", realm=realm)
        incremental = _child("incremental", values, realm)
        inc_served = sb.log.count("intuit", realm=realm) - before

        floor = _child("floor", values, realm)

        doubled = None
        if not args.no_double:
            realm2 = sb.add_company(CompanySpec(name="Bench Co Doubled", customers=2 * n_cust, invoices=2 * n_inv,
                                                payments=2 * n_pay, seed=2))
            _fresh_database(url)
            _connect(sb, values, realm2)
            doubled = _child("full", values, realm2)
            doubled["optimum"], doubled["probes"], _ = optimum(sb, realm2)

        print()
        print(f"database: {url.split('://')[0]}   company: {n_inv} invoices, {n_pay} payments, {n_cust} customers"
              f"   rate limit: {'lifted' if args.no_rate_limit else 'Intuit 10/s, 500/min (sandbox and client)'}")
        print(f"full sync         : {full['api_calls']} API calls (sandbox served {served}); optimum {best}"
              f"  -> {verdict(int(full['api_calls']), best, probes, int(full['retries']))}")
        for note in notes:
            print(f"                    note: {note}")
        print(f"incremental sync  : {incremental['api_calls']} API call(s) for {changes} changed objects "
              f"(sandbox served {inc_served}); optimum 1  -> {'EQUAL' if incremental['api_calls'] == 1 else 'ABOVE'}")
        print("                    (1000 objects or more in one answer is QBO's cap: the window is then split)")
        ratio = full["seconds"] / floor["seconds"]
        print(f"wall time         : full sync {full['seconds']:.1f} s, raw floor {floor['seconds']:.1f} s"
              f"  -> {ratio:.2f}x (target <= 1.5x)")
        print(f"peak RSS          : full sync {full['maxrss_mb']:.0f} MB (target < 250 MB)")
        if doubled is not None:
            print(f"doubled company   : {doubled['api_calls']} API calls (optimum {doubled['optimum']}: "
                  f"{verdict(int(doubled['api_calls']), int(doubled['optimum']), int(doubled['probes']), int(doubled['retries']))}), "
                  f"{doubled['seconds']:.1f} s, peak RSS {doubled['maxrss_mb']:.0f} MB"
                  f" ({doubled['maxrss_mb'] - full['maxrss_mb']:+.0f} MB vs the company)")
        for name, result in (("full sync", full), ("doubled company", doubled or {})):
            for reason in result.get("retry_reasons", []):
                print(f"retried ({name}) : {reason}")
        print(f"summary line      : {full['line']}")
    finally:
        sb.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
