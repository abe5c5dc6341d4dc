"""Three scheduling processes on one PostgreSQL database over a simulated week: everything once.

Each process runs the real ``scheduler.Ticker`` (sync → daily run → dispatch) against the
sandbox over HTTP, with its own simulated clock stepping an hour at a time through the same
week; they run concurrently, drift apart, and race for every unit of work. Afterwards each
outbox dedupe key was sent at most once, the SendGrid and Twilio stand-ins saw each outbox id
at most once, and QBO holds each late fee once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from qbo_collector import rules
from qbo_collector.db import models
from qbo_collector.sandbox import server
from qbo_collector.sync import run as sync_run
from tests.conftest import PG_URL, _postgres_database
from tests.integration import oauth_helpers

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROCESS = textwrap.dedent("""
    import sys
    from datetime import datetime, timedelta
    from qbo_collector import config, scheduler
    from qbo_collector.db.secrets import Vault
    from qbo_collector.db.session import Database
    settings = config.load(env_file=None)
    db = Database(settings.database_url)
    start, hours, name = datetime.fromisoformat(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    moment = {"now": start}
    ticker = scheduler.Ticker(settings, db, Vault(settings.secret_key()), owner=name, now=lambda: moment["now"])
    done = 0
    for hour in range(hours):
        moment["now"] = start + timedelta(hours=hour)
        done += len(ticker.tick().done)
    print(done)
""")


@pytest.fixture
def pg_url():
    if not PG_URL:
        pytest.skip("QBO_COLLECTOR_TEST_POSTGRES_URL is not set (.ci/run sets it after starting PostgreSQL)")
    yield from _postgres_database()


def test_two_workers_and_a_serve_over_a_week_do_everything_once(pg_url, settings_factory, tmp_path):
    from qbo_collector.db import migrate
    from qbo_collector.db.secrets import Vault
    from qbo_collector.db.session import Database

    sb = server.Sandbox(seed=5, auto_approve=True)
    realms = [sb.add_company(server.CompanySpec(name="Week Co US", country="US", currency="USD",
                                                timezone="America/Denver", language="en",
                                                customers=12, invoices=45, payments=10, seed=21)),
              sb.add_company(server.CompanySpec(name="Semaine SARL", country="FR", currency="EUR",
                                                timezone="Europe/Paris", language="fr",
                                                customers=10, invoices=40, payments=8, seed=22))]
    sb.start()
    try:
        settings = oauth_helpers.sandbox_settings(
            settings_factory, sb, qbo_collector_database_url=pg_url,
            sendgrid_api_key=sb.sendgrid.api_key, sendgrid_api_host=sb.sendgrid_host,
            sendgrid_from_email="ar@example.com", twilio_account_sid=sb.twilio.account_sid,
            twilio_auth_token=sb.twilio.auth_token, twilio_from_number=sb.twilio.phone_number,
            twilio_api_base_url=sb.twilio_base_url)
        db = Database(pg_url)
        migrate.upgrade(db)
        vault = Vault(settings.secret_key())
        for realm, preset in zip(realms, ("us_net30", "france_b2b")):
            oauth_helpers.connect(settings, db, vault, realm=realm, sandbox=sb)
            with db.session() as s:
                company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
                company.policy = rules.PRESETS[preset].model_dump(mode="json")
                company.settings = {**company.settings, "send_hour": 9, "owner_email": "owner@example.com",
                                    "sender_name": company.name}
            sync_run.sync_company(settings, db, vault, realm, full=True)

        env = {k: v for k, v in os.environ.items() if not k.startswith(("QBO_COLLECTOR_", "INTUIT_", "SENDGRID_", "TWILIO_"))}
        env.update(QBO_COLLECTOR_HOME=str(settings.home), QBO_COLLECTOR_DATABASE_URL=pg_url,
                   INTUIT_CLIENT_ID=settings.intuit_client_id, INTUIT_CLIENT_SECRET=settings.intuit_client_secret,
                   INTUIT_ENVIRONMENT=settings.intuit_environment, INTUIT_API_BASE_URL=settings.intuit_api_base_url,
                   INTUIT_REDIRECT_URI=settings.redirect_uri, SENDGRID_API_KEY=settings.sendgrid_api_key,
                   SENDGRID_API_HOST=settings.sendgrid_api_host, SENDGRID_FROM_EMAIL=settings.sendgrid_from_email,
                   TWILIO_ACCOUNT_SID=settings.twilio_account_sid, TWILIO_AUTH_TOKEN=settings.twilio_auth_token,
                   TWILIO_FROM_NUMBER=settings.twilio_from_number, TWILIO_API_BASE_URL=settings.twilio_api_base_url)
        today = sb.clock.now().date()
        start = datetime.combine(today, time(0), timezone.utc)
        names = ["serve-embedded", "worker-1", "worker-2"]
        procs = [subprocess.Popen([sys.executable, "-c", PROCESS, start.isoformat(), str(7 * 24), name], env=env,
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name in names]
        results = [p.communicate(timeout=900) for p in procs]
        for p, (out, err) in zip(procs, results):
            assert p.returncode == 0, err[-3000:]
        work_done = sum(int(out.strip().splitlines()[-1]) for out, _ in results)

        with db.session() as s:
            rows = list(s.scalars(select(models.Outbox)))
            runs = list(s.scalars(select(models.WorkLease).where(models.WorkLease.kind == "run")))
        sent = [r for r in rows if r.status == models.OutboxStatus.sent]
        assert sent, "a week of reminders sent nothing"
        assert all(r.done_on is not None and r.done_on >= today + timedelta(days=5) for r in runs)
        assert Counter(r.dedupe_key for r in rows).most_common(1)[0][1] == 1
        emails = Counter(m["custom_args"].get("outbox_id") for m in sb.sendgrid.messages)
        texts = Counter(m.get("outbox_id") or m.get("sid") for m in sb.twilio.messages)
        assert not emails or emails.most_common(1)[0][1] == 1, "an email went out twice"
        assert not texts or texts.most_common(1)[0][1] == 1, "an SMS went out twice"
        fee_rows = [r for r in sent if r.kind == "fee"]
        fee_invoices = [inv for realm in realms for inv in sb.intuit.entities(realm, "Invoice")
                        if any("late fee" in str(line).lower() for line in inv.get("Line", []))]
        provider_ids = Counter(r.provider_id for r in fee_rows)
        qbo_fee_ids = {inv["Id"] for inv in fee_invoices}
        diagnostics = (f"fee rows {len(fee_rows)}, distinct provider ids {len(provider_ids)}, "
                       f"shared ids {[(k, n) for k, n in provider_ids.items() if n > 1][:5]}, "
                       f"QBO fee invoices {len(qbo_fee_ids)}, in QBO not in outbox "
                       f"{sorted(qbo_fee_ids - set(provider_ids))[:5]}, sample line "
                       f"{[inv.get('Line') for inv in fee_invoices if inv['Id'] not in provider_ids][:1]}")
        assert qbo_fee_ids == set(provider_ids), diagnostics
        print(f"work units done {work_done}; outbox rows {len(rows)}, sent {len(sent)}, fees {len(fee_rows)}; "
              f"emails {sum(emails.values())}, texts {len(sb.twilio.messages)}")
    finally:
        sb.stop()
