"""Chaos: the dispatcher is killed with SIGKILL at random points in 200 runs, with 20 % provider faults.

The sandbox (QuickBooks, SendGrid, Twilio) and the web app receiving the provider webhooks run
in this test process. A helper process (this module run as a script) imports everything once
and then forks one dispatcher per run, killing it after a random short delay; each run is a
later business day (two runs a day), so every run has work to do. Afterwards, with the faults
off, one last run finishes what is due. Then:

- no message was sent twice (the stand-ins' messages counted by outbox id),
- every message the stand-ins hold belongs to a row that is ``sent`` or ``unknown``,
- no late fee exists twice in QuickBooks (fee invoices counted by their key),
- every row that came due is sent, cancelled, failed or unknown, each with a reason,
- an invoice paid between plan and send got nothing.

The seed is printed (``-s`` shows it); set ``CHAOS_SEED`` to replay a run.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

RUNS = 200
RUNS_PER_DAY = 2
KILL_SPAN = 1.25  # kill delays are drawn up to this many times the last finished run's length


def _child_main(argv: list[str]) -> int:
    """The helper process: fork a dispatcher per run and kill it after a random delay."""
    import signal
    import time

    from qbo_collector import config, dispatch
    from qbo_collector.db.secrets import Vault
    from qbo_collector.db.session import Database
    from qbo_collector.sync import client as qbo_client
    from qbo_collector.sync import limiter

    realm, seed, runs, base = argv[0], int(argv[1]), int(argv[2]), dt.datetime.fromisoformat(argv[3])
    settings = config.load(env_file=None)
    vault = Vault(settings.secret_key())
    fast_qbo = qbo_client.RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05, max_retry_after=0.05,
                                      connect_timeout=2.0, read_timeout=5.0)
    unlimited = limiter.RateLimiter(windows=(limiter.Window(10_000, 1.0),))
    retry = dispatch.SendRetry(attempts=2, initial_wait=0.01, max_wait=0.05)
    rng = random.Random(seed)
    killed = 0
    # Kills land mid-run on a fast machine as on a slow one: the delays scale with how long a run
    # takes here (the first run is not killed and gives the first measure; a run that finishes
    # before its kill moment replaces it, a killed one lasted at least its delay).
    run_length: float | None = None
    for k in range(runs):
        now = base + dt.timedelta(days=k // RUNS_PER_DAY)
        delay = float("inf") if run_length is None else rng.uniform(0.0, KILL_SPAN * run_length)
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                db = Database(settings.database_url)
                dispatch.run_company(settings, db, vault, realm, now=now, retry=retry, qbo_policy=fast_qbo,
                                     limiter=unlimited, lease_ttl=dt.timedelta(0))
            except BaseException as exc:  # noqa: BLE001 - report and leave; the parent judges the state
                print(f"run {k}: {exc!r}", file=sys.stderr, flush=True)
                code = 1
            os._exit(code)
        deadline = started + delay
        finished, status = 0, 0
        while time.monotonic() < deadline:  # a run that ends before its kill moment does not hold the next one up
            finished, status = os.waitpid(pid, os.WNOHANG)
            if finished:
                run_length = time.monotonic() - started
                break
            time.sleep(0.005)
        if not finished:
            run_length = max(run_length or 0.0, delay)  # a killed run lasted at least this long
            os.kill(pid, signal.SIGKILL)
            _pid, status = os.waitpid(pid, 0)
        killed += os.WIFSIGNALED(status)
    print(f"KILLED {killed}", flush=True)
    return 0


@pytest.mark.slow
def test_sigkill_at_random_points_never_sends_twice(sandbox_factory, settings_factory, sqlite_db, home: Path) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from qbo_collector import dispatch
    from qbo_collector.db import models
    from tests.integration import test_dispatch_support as ds

    seed = int(os.environ.get("CHAOS_SEED") or random.SystemRandom().randrange(1_000_000))
    print(f"\nchaos seed: {seed} (CHAOS_SEED={seed} replays it)")
    sb = sandbox_factory(companies=[ds.SMALL], seed=seed)
    realm = next(iter(sb.intuit.companies))
    env = ds.build(sb, settings_factory, sqlite_db, company_settings={"owner_phone": "+14155550100"})
    try:
        base = env.now_at(12)
        # An invoice paid in QuickBooks after the mirror was read: every run plans it, none may act on it.
        planned = dispatch.plan_company(env.settings, env.db, realm, on=base.date())
        paid = next(p.invoice_ids[0] for p in planned if p.kind == "reminder" and len(p.invoice_ids) == 1)
        sb.intuit.pay_invoice(realm, paid)
        for knobs in (sb.sendgrid_faults, sb.twilio_faults):
            knobs.error_rate, knobs.throttle_rate = 0.10, 0.10

        child_env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDGRID_", "TWILIO_", "INTUIT_"))}
        child_env.update({
            "OAUTHLIB_INSECURE_TRANSPORT": "1", "QBO_COLLECTOR_HOME": str(home),
            "QBO_COLLECTOR_DATABASE_URL": env.db.url, "QBO_COLLECTOR_PUBLIC_URL": env.settings.public_url,
            "INTUIT_CLIENT_ID": env.settings.intuit_client_id, "INTUIT_CLIENT_SECRET": env.settings.intuit_client_secret,
            "INTUIT_ENVIRONMENT": env.settings.intuit_environment, "INTUIT_API_BASE_URL": env.settings.intuit_api_base_url,
            "INTUIT_REDIRECT_URI": env.settings.redirect_uri,
            "SENDGRID_API_KEY": env.settings.sendgrid_api_key, "SENDGRID_API_HOST": env.settings.sendgrid_api_host,
            "SENDGRID_FROM_EMAIL": env.settings.sendgrid_from_email,
            "TWILIO_ACCOUNT_SID": env.settings.twilio_account_sid, "TWILIO_AUTH_TOKEN": env.settings.twilio_auth_token,
            "TWILIO_FROM_NUMBER": env.settings.twilio_from_number, "TWILIO_API_BASE_URL": env.settings.twilio_api_base_url,
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        })
        done = subprocess.run([sys.executable, __file__, realm, str(seed), str(RUNS), base.isoformat()],
                              env=child_env, capture_output=True, text=True, timeout=600, cwd=str(home))
        assert done.returncode == 0, done.stderr[-3000:]
        killed = int(re.search(r"KILLED (\d+)", done.stdout).group(1))  # type: ignore[union-attr]
        print(f"{RUNS} runs, {killed} killed mid-run")

        # the aftermath: faults off, crash leftovers recovered, one clean run, events delivered
        for knobs in (sb.sendgrid_faults, sb.twilio_faults):
            knobs.reset()
        last = base + dt.timedelta(days=(RUNS - 1) // RUNS_PER_DAY)
        final = env.run(now=last)
        env.flush()
        dispatch.reconcile_unknown(env.db)

        rows = env.rows()
        statuses = collections.Counter(r.status.value for r in rows)
        print(f"rows: {dict(statuses)}; emails {len(sb.sendgrid.messages)}, texts {len(sb.twilio.messages)}; "
              f"final run: {final.line()}")
        assert RUNS // 10 <= killed < RUNS, "the kills must land mid-run often, and some runs must finish"

        emails = collections.Counter(m["custom_args"].get("outbox_id") for m in sb.sendgrid.messages)
        texts = collections.Counter(m["status_callback"].split("outbox_id=")[1] for m in sb.twilio.messages)
        assert max(emails.values()) == 1, [k for k, n in emails.items() if n > 1]
        assert max(texts.values()) == 1, [k for k, n in texts.items() if n > 1]
        by_id = {str(r.id): r for r in rows}
        for outbox_id in list(emails) + list(texts):
            assert by_id[outbox_id].status.value in ("sent", "unknown"), (outbox_id, by_id[outbox_id].status)

        fee_keys = collections.Counter()
        for invoice in sb.intuit.entities(realm, "Invoice"):
            found = re.search(r"\[(.+)\]$", invoice.get("PrivateNote") or "")
            if found:
                fee_keys[found.group(1)] += 1
        assert fee_keys and max(fee_keys.values()) == 1
        assert {r.dedupe_key for r in rows if r.kind == "fee" and r.status.value == "sent"} == set(fee_keys)

        for r in rows:
            if r.due_at <= last:
                assert r.status.value in ("sent", "cancelled", "failed", "unknown"), (r.id, r.kind, r.status, r.status_reason)
            if r.status.value != "planned":
                assert r.status_reason, (r.id, r.status)

        about_paid = [r for r in rows if paid in (r.invoice_ids or [])]
        assert about_paid and all(r.status.value == "cancelled" and "paid" in r.status_reason for r in about_paid)
        touched = {str(r.id) for r in about_paid}
        assert not touched & (set(emails) | set(texts))
        with env.db.session() as s:
            assert s.scalar(select(models.Invoice.status).where(models.Invoice.qbo_id == paid)).value == "paid"
    finally:
        if env.web is not None:
            env.web.stop()


if __name__ == "__main__":
    raise SystemExit(_child_main(sys.argv[1:]))
