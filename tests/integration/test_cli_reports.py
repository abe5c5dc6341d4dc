"""`qbo-collector report aging|dso|forecast` and `plan --json` over a synced sandbox company, as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from qbo_collector import reports
from qbo_collector.sync import run as sync_run
from tests.integration import oauth_helpers

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def synced(settings_factory, sqlite_db, vault, sandbox, sandbox_realms):
    settings = oauth_helpers.sandbox_settings(settings_factory, sandbox, qbo_collector_database_url=sqlite_db.url)
    realm = sandbox_realms["en"]
    oauth_helpers.connect(settings, sqlite_db, vault, realm=realm, sandbox=sandbox)
    sync_run.sync_company(settings, sqlite_db, vault, realm, full=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QBO_COLLECTOR_", "INTUIT_"))}
    env.update(QBO_COLLECTOR_HOME=str(settings.home), QBO_COLLECTOR_DATABASE_URL=sqlite_db.url,
               INTUIT_CLIENT_ID=settings.intuit_client_id, INTUIT_CLIENT_SECRET=settings.intuit_client_secret,
               INTUIT_ENVIRONMENT=settings.intuit_environment, INTUIT_API_BASE_URL=settings.intuit_api_base_url)
    return realm, env


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "qbo_collector.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_report_dso_and_forecast_print_json(synced):
    realm, env = synced
    dso = _cli(env, "report", "dso", "--realm", realm, "--on", "2026-11-23")
    assert dso.returncode == 0, dso.stderr
    figures = json.loads(dso.stdout)
    assert figures["realm"] == realm and figures["formula"] == "receivables / credit sales x days"
    usd = figures["currencies"]["USD"]
    assert set(usd) == {"30d", "90d"} and Decimal(usd["30d"]["receivables"]) >= 0
    forecast = _cli(env, "report", "forecast", "--realm", realm, "--on", "2026-11-23")
    assert forecast.returncode == 0, forecast.stderr
    usd = json.loads(forecast.stdout)["currencies"]["USD"]
    weeks = usd["weeks"]
    assert weeks and all(Decimal(w["expected"]) <= Decimal(w["predicted_unweighted"]) for w in weeks)
    assert Decimal(usd["disputed"]) == 0  # nothing in dispute (the dashboard tests cover a dispute)


def test_report_aging_by_customer_as_text_json_and_csv(synced, sqlite_db):
    realm, env = synced
    want = reports.aging_by_customer(sqlite_db, realm, date(2026, 11, 23))["customers"]
    assert want
    as_json = _cli(env, "report", "aging", "--customers", "--json", "--realm", realm, "--on", "2026-11-23")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["customers"] == want
    text = _cli(env, "report", "aging", "--customers", "--realm", realm, "--on", "2026-11-23")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[1].split()[:2] == ["customer", "currency"] and len(lines) == 2 + len(want)
    assert all(lines[2 + i].startswith(r["name"]) and lines[2 + i].endswith(r["net"]) for i, r in enumerate(want))
    as_csv = _cli(env, "report", "aging", "--csv", "--realm", realm, "--on", "2026-11-23")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))  # no byte-order mark on a terminal or a pipe
    assert [(r["customer_id"], r["net"]) for r in rows] == [(w["customer_id"], w["net"]) for w in want]
    for args, said in ((("dso", "--csv"), "options of `report aging` only"),
                       (("aging", "--csv", "--json"), "choose one of --csv and --json")):
        refused = _cli(env, "report", *args, "--realm", realm)
        assert refused.returncode == 2 and said in refused.stderr and refused.stdout == ""


def test_report_aging_csv_of_several_companies_asks_which(synced, settings_factory, sqlite_db, vault, sandbox,
                                                          sandbox_realms):
    realm, env = synced
    assert _cli(env, "report", "aging", "--csv").returncode == 0  # one company connected: that one
    settings = oauth_helpers.sandbox_settings(settings_factory, sandbox, qbo_collector_database_url=sqlite_db.url)
    oauth_helpers.connect(settings, sqlite_db, vault, realm=sandbox_realms["fr"], sandbox=sandbox)
    refused = _cli(env, "report", "aging", "--csv")
    assert refused.returncode == 2 and refused.stdout == ""
    assert "name it with --realm" in refused.stderr and realm in refused.stderr and sandbox_realms["fr"] in refused.stderr


def test_plan_json_changes_nothing(synced):
    realm, env = synced
    first = _cli(env, "plan", "--realm", realm, "--days", "7", "--json")
    assert first.returncode == 0, first.stderr
    rows = json.loads(first.stdout)[realm]
    assert all({"dedupe_key", "due_at", "reason"} <= set(r) for r in rows)
    again = _cli(env, "plan", "--realm", realm, "--days", "7", "--json")
    assert json.loads(again.stdout)[realm] == rows  # nothing was written: the same plan twice
    text = _cli(env, "plan", "--realm", realm, "--days", "7")
    lines = text.stdout.splitlines()
    assert text.returncode == 0 and lines[0].startswith(f"realm {realm}: {len(rows)} action(s)")
    first_row = rows[0]
    assert lines[1].startswith("  " + first_row["due_at"][:16].replace("T", " ") + " UTC  ")
    assert first_row["reason"] in lines[1] and "PlannedRow(" not in text.stdout


def test_unknown_realm_is_exit_2_with_a_sentence(synced):
    _realm, env = synced
    result = _cli(env, "report", "dso", "--realm", "nope")
    assert result.returncode == 2 and "No company with realm nope" in result.stderr


@pytest.mark.parametrize("kind", ["aging", "dso", "forecast"])
def test_report_without_on_is_as_of_today_in_the_company_time_zone(kind, sqlite_db, home, monkeypatch, capsys):
    """Without --on, a report is as of the company's local date on the program's clock, as the dashboard is —
    not the server's date (here the company is 14 hours ahead of UTC, already on the next day)."""
    from datetime import date, datetime, timezone

    from qbo_collector import cli, clock
    from tests.integration.test_pages_support import seed

    seed(sqlite_db, realm="111", timezone="Pacific/Kiritimati", today=date(2031, 3, 1))
    monkeypatch.setattr(clock, "now", lambda: datetime(2031, 3, 1, 20, tzinfo=timezone.utc))
    for name in [k for k in os.environ if k.startswith(("QBO_COLLECTOR_", "INTUIT_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("QBO_COLLECTOR_HOME", str(home))
    monkeypatch.setenv("QBO_COLLECTOR_DATABASE_URL", sqlite_db.url)
    assert cli.main(["report", kind, "--realm", "111", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["on"] == "2031-03-02"
