"""Exit codes and messages of `qbo-collector run|sync|plan|report`, as cron or a person sees them: 0 done,
1 something needs a person (the run's problems, a company to reconnect), 2 nothing to work on or a
wrong --realm — stdout then stays empty, so `--json` output is never half a document."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from qbo_collector import clock, config, errors, leases
from qbo_collector.db import models
from qbo_collector.db.session import Database
from tests.integration import test_dispatch_support as ds

ROOT = Path(__file__).resolve().parents[2]
CONNECT_HOW = "on the Connect page of the web app (`qbo-collector serve`) or with `qbo-collector connect`"


def _env(settings: config.Settings, db: Database | None = None) -> dict[str, str]:
    """The environment of a CLI process that sees what ``settings`` and ``db`` hold."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QBO_COLLECTOR_", "INTUIT_", "SENDGRID_", "TWILIO_"))}
    for setting in config.SETTINGS:
        value = getattr(settings, setting.name.lower(), None)
        if value is not None:
            env[setting.name] = str(value)
    if db is not None:
        env["QBO_COLLECTOR_DATABASE_URL"] = db.url
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qbo_collector.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)


def _said(result: subprocess.CompletedProcess[str]) -> str:
    """stderr without the JSON log lines."""
    return "\n".join(line for line in result.stderr.splitlines() if not line.startswith("{"))


# -- nothing to work on ---------------------------------------------------------------------------

@pytest.mark.parametrize("args, doing", [
    pytest.param(["report", "aging"], "report on", id="report aging"),
    pytest.param(["report", "aging", "--json"], "report on", id="report aging --json"),
    pytest.param(["report", "dso"], "report on", id="report dso"),
    pytest.param(["report", "forecast"], "report on", id="report forecast"),
    pytest.param(["plan", "--json"], "plan", id="plan --json"),
    pytest.param(["run"], "run", id="run"),
    pytest.param(["sync"], "sync", id="sync"),
])
def test_no_company_connected_says_how_to_connect_one_and_exits_2(settings_factory, args, doing) -> None:  # type: ignore[no-untyped-def]
    result = _cli(_env(settings_factory()), *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""  # nothing, rather than an empty or partial JSON document
    assert (f"qbo-collector: No QuickBooks company is connected, so there is nothing to {doing}. "
            f"Connect one {CONNECT_HOW}.") in _said(result)


@pytest.mark.parametrize("variables, named", [
    pytest.param({"QBO_COLLECTOR_HOME": "/proc/nope"}, "QBO_COLLECTOR_DATABASE_URL", id="a home that cannot be made"),
    pytest.param({"QBO_COLLECTOR_DATABASE_URL": "sqlite:////proc/nope/qbo.db"}, "QBO_COLLECTOR_DATABASE_URL",
                 id="a database folder that cannot be made"),
])
def test_a_folder_that_cannot_be_created_is_one_sentence_naming_the_setting(settings_factory, tmp_path, variables,
                                                                            named) -> None:  # type: ignore[no-untyped-def]
    """Found in review: an OSError from mkdir came out as a traceback (exit 1)."""
    env = {k: v for k, v in _env(settings_factory()).items() if k not in ("QBO_COLLECTOR_DATABASE_URL", "QBO_COLLECTOR_HOME")}
    env |= {"QBO_COLLECTOR_HOME": str(tmp_path), **variables}
    result = _cli(env, "report", "aging")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    said = _said(result)
    assert said.startswith("qbo-collector: The folder") and "cannot be created" in said and named in said
    assert len(said.splitlines()) == 1


def test_a_secret_key_folder_that_cannot_be_created_names_qbo_collector_home(tmp_path) -> None:
    with pytest.raises(errors.ConfigError) as refused:
        config._home_secret_key(Path("/proc/nope"))
    assert refused.value.context["variable"] == "QBO_COLLECTOR_HOME" and "/proc/nope" in refused.value.message


@pytest.fixture
def unconnected(settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    """A database with one company that needs reconnecting and one disconnected on purpose."""
    settings = settings_factory(qbo_collector_database_url=sqlite_db.url)
    with sqlite_db.session() as s:
        s.add(models.Company(realm_id="111", name="Acme Bakery", status=models.CompanyStatus.needs_reconnect,
                             status_reason="Intuit refused the stored grant (invalid_grant)."))
        s.add(models.Company(realm_id="222", name="Old Shop", status=models.CompanyStatus.disconnected))
    return _env(settings)


def test_reports_with_no_company_connected_name_the_companies_and_the_way_out(unconnected) -> None:  # type: ignore[no-untyped-def]
    result = _cli(unconnected, "report", "aging", "--json")
    assert result.returncode == 2 and result.stdout == ""
    said = _said(result)
    assert "No QuickBooks company is connected, so there is nothing to report on." in said
    assert ("Companies: 111 “Acme Bakery” (needs reconnecting: Intuit refused the stored grant (invalid_grant)); "
            "222 “Old Shop” (disconnected).") in said
    assert f"Reconnect one {CONNECT_HOW}, or name one with --realm to use what was last synced." in said
    mirror = _cli(unconnected, "report", "aging", "--json", "--realm", "111")  # what was last synced
    assert mirror.returncode == 0 and '"realm": "111"' in mirror.stdout


@pytest.mark.parametrize("args, realms_in, left_out", [
    pytest.param(["report", "aging", "--json"], lambda doc: [doc["realm"]],
                 "left out (name it with --realm to report on what was last synced)", id="report"),
    pytest.param(["plan", "--json"], lambda doc: list(doc),
                 "not planned (name it with --realm to plan from what was last synced)", id="plan"),
])
def test_reports_and_plans_cover_the_connected_companies_and_name_the_one_left_out(  # type: ignore[no-untyped-def]
        unconnected, sqlite_db, args, realms_in, left_out) -> None:
    with sqlite_db.session() as s:
        s.add(models.Company(realm_id="333", name="Corner Shop"))  # connected, nothing synced yet
    result = _cli(unconnected, *args)
    assert result.returncode == 0, result.stderr
    assert realms_in(json.loads(result.stdout)) == ["333"]
    assert (f"realm 111: “Acme Bakery” needs reconnecting (Intuit refused the stored grant (invalid_grant)), so it "
            f"was {left_out}. Reconnect it {CONNECT_HOW}.") in _said(result)


@pytest.mark.parametrize("command, left_out", [("run", "not run"), ("sync", "not synced")])
def test_a_company_that_needs_reconnecting_fails_run_and_sync(unconnected, command, left_out) -> None:  # type: ignore[no-untyped-def]
    result = _cli(unconnected, command)
    assert result.returncode == 1, result.stderr
    said = _said(result)
    assert (f"realm 111: “Acme Bakery” needs reconnecting (Intuit refused the stored grant (invalid_grant)), so it "
            f"was {left_out}. Reconnect it {CONNECT_HOW}.") in said
    assert said.endswith("qbo-collector: exit code 1: realm 111 needs reconnecting (see above).")
    assert "222" not in said  # disconnected on purpose: nobody has to act


def test_an_unknown_realm_lists_the_known_ones(unconnected) -> None:  # type: ignore[no-untyped-def]
    result = _cli(unconnected, "report", "dso", "--realm", "999")
    assert result.returncode == 2 and result.stdout == ""
    assert _said(result) == ("qbo-collector: No company with realm 999. Companies: 111 “Acme Bakery” (needs "
                             "reconnecting: Intuit refused the stored grant (invalid_grant)); 222 “Old Shop” "
                             "(disconnected).")


# -- `run` on a synced company ---------------------------------------------------------------------

@pytest.fixture
def make_env(sandbox_factory, settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    made = []

    def make(**kwargs):  # type: ignore[no-untyped-def]
        env = ds.build(sandbox_factory(companies=[ds.SMALL]), settings_factory, sqlite_db, **kwargs)
        env.on = env.now_at(12).date().isoformat()  # type: ignore[attr-defined]
        made.append(env)
        return env

    yield make
    for env in made:
        env.web.stop()  # it takes the stand-ins' status callbacks


def test_run_exits_1_when_the_policy_sends_by_email_and_email_is_not_configured(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(email=False)
    result = _cli(_env(env.settings, env.db), "run", "--on", env.on)
    assert result.returncode == 1, result.stderr
    cancelled = [r for r in env.rows(channel="email") if r.status.value == "cancelled"]
    assert cancelled
    said = _said(result)
    assert (f"realm {env.realm}: problem: {len(cancelled)} message(s) to customers cancelled: Email is not "
            "configured (SENDGRID_API_KEY and SENDGRID_FROM_EMAIL): skipped. Configure it, or take that channel "
            "out of the policy's steps.") in said
    assert said.endswith(f"qbo-collector: exit code 1: realm {env.realm} has 1 problem(s) to act on (see above).")
    assert result.stdout.startswith(f"realm {env.realm}: run {env.realm}: ") and "1 problem(s)" in result.stdout


def test_run_by_text_only_without_email_is_done_and_tells_about_the_owner_alerts(make_env) -> None:  # type: ignore[no-untyped-def]
    sms_only = ds.every_day_policy("firm")
    sms_only["steps"] = [{**step, "channels": ["sms"]} for step in sms_only["steps"]]
    env = make_env(email=False, policy=sms_only)
    result = _cli(_env(env.settings, env.db), "run", "--on", env.on)
    assert result.returncode == 0, result.stderr
    assert [r for r in env.rows(channel="sms") if r.status.value == "sent"]
    alerts = [r for r in env.rows(channel="owner_email") if r.status.value == "cancelled"]
    assert alerts  # customers with no mobile number: the owner is told, by email, which is not configured
    said = _said(result)
    assert (f"realm {env.realm}: note: {len(alerts)} owner alert(s) not sent that way: Email is not configured "
            "(SENDGRID_API_KEY and SENDGRID_FROM_EMAIL): skipped.") in said
    assert "problem" not in said and "exit code" not in said


def test_run_exits_1_when_a_customer_is_skipped_for_an_invalid_policy(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(policy={"default": ds.every_day_policy(), "policies": {"vip": {"steps": "every day"}}})
    with env.db.session() as s:
        customer = s.scalars(select(models.Customer).order_by(models.Customer.id)).first()
        customer.policy_name, name = "vip", customer.display_name
    result = _cli(_env(env.settings, env.db), "run", "--on", env.on)
    assert result.returncode == 1, result.stderr
    said = _said(result)
    assert f"realm {env.realm}: problem: customer {name}: The stored 'vip' policy is not valid (" in said
    assert said.endswith(f"qbo-collector: exit code 1: realm {env.realm} has 1 problem(s) to act on (see above).")


@pytest.mark.parametrize("json_out", [False, True], ids=["text", "--json"])
def test_plan_exits_1_and_names_the_customer_it_left_out_for_an_invalid_policy(make_env, json_out) -> None:  # type: ignore[no-untyped-def]
    env = make_env(policy={"default": ds.every_day_policy(), "policies": {"vip": {"steps": "every day"}}})
    clean = _cli(_env(env.settings, env.db), "plan", "--on", env.on, "--json")
    assert clean.returncode == 0, clean.stderr
    assert "problem" not in _said(clean) and "exit code" not in _said(clean)
    with env.db.session() as s:
        customer = s.scalars(select(models.Customer).order_by(models.Customer.id)).first()
        customer.policy_name, name, left_out = "vip", customer.display_name, customer.qbo_id
    result = _cli(_env(env.settings, env.db), "plan", "--on", env.on, *(["--json"] if json_out else []))
    assert result.returncode == 1, result.stderr
    said = _said(result)
    assert f"realm {env.realm}: problem: customer {name}: The stored 'vip' policy is not valid (" in said
    assert said.endswith(f"qbo-collector: exit code 1: realm {env.realm} has 1 customer(s) left out of the plan "
                         "(see above).")
    if json_out:  # stdout is still the whole plan of the others, as one JSON document
        planned = json.loads(result.stdout)[env.realm]
        before = json.loads(clean.stdout)[env.realm]
        assert planned and {r["customer_id"] for r in planned} == {r["customer_id"] for r in before} - {left_out}
    else:
        assert result.stdout.startswith(f"realm {env.realm}: ")
    assert env.rows() == []  # a plan changes nothing


def test_run_while_another_worker_dispatches_the_company_is_not_a_failure(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    with env.db.session() as s:
        company_id = s.scalar(select(models.Company.id).where(models.Company.realm_id == env.realm))
    assert leases.claim(env.db, company_id, "dispatch", "worker-elsewhere", now=clock.now(), ttl=dt.timedelta(minutes=15))
    result = _cli(_env(env.settings, env.db), "run", "--on", env.on)
    assert result.returncode == 0, result.stderr
    assert (f"realm {env.realm}: note: Another worker is dispatching this company right now; nothing done."
            in _said(result))
    assert env.rows() == []


# -- the database cannot be used -------------------------------------------------------------------

def test_a_database_that_cannot_be_reached_is_one_sentence_without_its_password_and_exit_1(settings_factory) -> None:  # type: ignore[no-untyped-def]
    env = _env(settings_factory())
    env["QBO_COLLECTOR_DATABASE_URL"] = "postgresql+psycopg://collector:hunter2-secret@127.0.0.1:1/collector"
    result = _cli(env, "run")
    assert result.returncode == 1 and result.stdout == ""
    said = _said(result)
    assert "Traceback" not in result.stderr and "hunter2-secret" not in result.stderr
    assert said.startswith("qbo-collector: The database at postgresql+psycopg://collector:***@127.0.0.1:1/collector "
                           "cannot be used (connection failed"), said
    assert said.endswith("Check QBO_COLLECTOR_DATABASE_URL, and that the database server is running "
                         "and reachable from here."), said
