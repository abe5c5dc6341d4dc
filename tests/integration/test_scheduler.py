"""The scheduler's promises, on SQLite and PostgreSQL: once per company per local day, whoever ticks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from qbo_collector import errors, leases, scheduler
from qbo_collector.db import models

ROOT = Path(__file__).resolve().parents[2]

ZONES = {
    "honolulu": "Pacific/Honolulu",        # UTC−10, no DST
    "kiritimati": "Pacific/Kiritimati",    # UTC+14
    "new_york": "America/New_York",        # DST ends 2026-11-01
    "paris": "Europe/Paris",               # DST ends 2026-10-25
    "lord_howe": "Australia/Lord_Howe",    # half-hour DST shift, starts 2026-10-04
    "auckland": "Pacific/Auckland",        # DST starts 2026-09-27
}


class Recorder:
    def __init__(self, fail: dict[tuple[str, str], BaseException] | None = None) -> None:
        self.calls: list[tuple[str, str, datetime]] = []
        self.fail = fail or {}
        self.answers: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    def job(self, kind: str):  # type: ignore[no-untyped-def]
        def run(realm: str, now: datetime) -> object:
            with self._lock:
                self.calls.append((kind, realm, now))
            if (realm, kind) in self.fail:
                raise self.fail[(realm, kind)]
            return self.answers.pop((realm, kind), None)
        return run

    def jobs(self) -> scheduler.Jobs:
        return scheduler.Jobs(sync=self.job("sync"), run=self.job("run"), catchup=self.job("catchup"),
                              digest=self.job("digest"))


def _companies(db, zones: dict[str, str], send_hour: int = 9, last_sync_at: datetime | None = None) -> dict[str, str]:
    with db.session() as s:
        for realm, tz in zones.items():
            s.add(models.Company(realm_id=realm, name=realm, currency="USD", timezone=tz,
                                 settings={"send_hour": send_hour}, last_sync_at=last_sync_at))
    return zones


def _ticker(settings_factory, db, vault, recorder, owner, clock):  # type: ignore[no-untyped-def]
    return scheduler.Ticker(settings_factory(), db, vault, owner=owner, jobs=recorder.jobs(), now=clock)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.at = start

    def __call__(self) -> datetime:
        return self.at


def test_daily_run_once_per_local_day_across_dst_and_time_zones(settings_factory, db, vault):
    _companies(db, ZONES, last_sync_at=datetime(2026, 9, 25, tzinfo=timezone.utc))
    recorder = Recorder()
    start = datetime(2026, 9, 26, 0, 7, tzinfo=timezone.utc)
    clock = FakeClock(start)
    # two schedulers (serve + a worker) ticking alternately every 45 minutes (so every local hour
    # sees a tick) across the DST changes of September to November
    tickers = [_ticker(settings_factory, db, vault, recorder, f"proc-{i}", clock) for i in range(2)]
    end = datetime(2026, 11, 3, tzinfo=timezone.utc)
    i = 0
    while clock.at < end:
        tickers[i % 2].tick()
        clock.at += timedelta(minutes=45)
        i += 1
    runs = [(realm, at.astimezone(ZoneInfo(ZONES[realm]))) for kind, realm, at in recorder.calls if kind == "run"]
    per_day = Counter((realm, local.date()) for realm, local in runs)
    assert per_day and max(per_day.values()) == 1, "a company ran twice on one local day"
    for realm, tz in ZONES.items():
        first = min(local.date() for r, local in runs if r == realm)
        last = max(local.date() for r, local in runs if r == realm)
        days = {local.date() for r, local in runs if r == realm}
        assert days == {first + timedelta(d) for d in range((last - first).days + 1)}, f"{realm} skipped a day"
        assert (last - first).days >= 36
    first_day = {realm: start.astimezone(ZoneInfo(tz)).date() for realm, tz in ZONES.items()}
    assert all(local.hour == 9 for realm, local in runs if local.date() > first_day[realm]), \
        "after the first day, runs happen in the send hour, local time"


def test_a_missed_day_is_caught_up_once_on_restart(settings_factory, db, vault):
    _companies(db, {"paris": "Europe/Paris"}, last_sync_at=datetime(2026, 11, 1, tzinfo=timezone.utc))
    recorder = Recorder()
    clock = FakeClock(datetime(2026, 11, 2, 8, 30, tzinfo=timezone.utc))  # 09:30 in Paris
    ticker = _ticker(settings_factory, db, vault, recorder, "proc", clock)
    ticker.tick()
    clock.at += timedelta(days=4, hours=6)  # the machine was off from Monday to Friday afternoon
    for _ in range(5):
        ticker.tick()
        clock.at += timedelta(minutes=1)
    runs = [at for kind, _r, at in recorder.calls if kind == "run"]
    assert [r.date() for r in runs] == [date(2026, 11, 2), date(2026, 11, 6)]


def test_many_tickers_at_the_same_instant_run_each_work_once(settings_factory, db, vault):
    at = datetime(2026, 11, 23, 16, 0, tzinfo=timezone.utc)  # 10:00 in Chicago, a Monday
    _companies(db, {f"r{i}": "America/Chicago" for i in range(5)}, last_sync_at=at - timedelta(hours=1))
    recorder = Recorder()
    clock = FakeClock(at)
    tickers = [_ticker(settings_factory, db, vault, recorder, f"proc-{i}", clock) for i in range(4)]
    threads = [threading.Thread(target=t.tick) for t in tickers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = Counter((kind, realm) for kind, realm, _ in recorder.calls)
    assert set(counts.values()) == {1}
    assert {kind for kind, _ in counts} == {"sync", "run", "catchup", "digest"}


def test_a_failed_job_is_retried_next_tick_and_others_go_on(settings_factory, db, vault):
    _companies(db, {"good": "UTC", "bad": "UTC"}, last_sync_at=datetime(2026, 11, 1, tzinfo=timezone.utc))
    recorder = Recorder(fail={("bad", "run"): RuntimeError("QBO exploded")})
    clock = FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc))
    ticker = _ticker(settings_factory, db, vault, recorder, "proc", clock)
    report = ticker.tick()
    assert ("good", "run") in report.done and [f[:2] for f in report.failed] == [("bad", "run")]
    with db.session() as s:
        lease = s.get(models.WorkLease, (s.scalar(select(models.Company.id).where(models.Company.realm_id == "bad")), "run"))
        assert lease.owner is None and lease.done_on is None and "QBO exploded" in lease.last_error
    recorder.fail.clear()
    clock.at += timedelta(minutes=1)
    assert ("bad", "run") in ticker.tick().done


def test_reconnect_needed_is_not_retried_all_day(settings_factory, db, vault):
    _companies(db, {"gone": "UTC"}, last_sync_at=datetime(2026, 11, 1, tzinfo=timezone.utc))
    recorder = Recorder(fail={("gone", "run"): errors.ReconnectNeeded()})
    clock = FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc))
    ticker = _ticker(settings_factory, db, vault, recorder, "proc", clock)
    ticker.tick()
    clock.at += timedelta(minutes=5)
    ticker.tick()
    assert sum(1 for kind, _r, _a in recorder.calls if kind == "run") == 1


def test_shutdown_releases_leases_and_marks_the_heartbeat(settings_factory, db, vault):
    _companies(db, {"a": "UTC"})
    now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    with db.session() as s:
        company_id = s.scalar(select(models.Company.id))
    ticker = _ticker(settings_factory, db, vault, Recorder(), "proc", FakeClock(now))
    ticker.heartbeat(now)
    assert leases.claim(db, company_id, "run", "proc", now=now, ttl=timedelta(minutes=30))
    ticker.shutdown()
    assert leases.claim(db, company_id, "run", "other", now=now, ttl=timedelta(minutes=30))
    with db.session() as s:
        assert s.get(models.Worker, "proc").stopped_at == now


KILLED_WORKER = textwrap.dedent("""
    import sys, time
    from datetime import datetime, timezone
    from qbo_collector import config, scheduler
    from qbo_collector.db.secrets import Vault
    from qbo_collector.db.session import Database
    settings = config.load(env_file=None)
    db = Database(settings.database_url)
    now = datetime.fromisoformat(sys.argv[1])
    def hang(realm, at):
        print("working", flush=True)
        time.sleep(600)
    jobs = scheduler.Jobs(sync=hang, run=hang, catchup=hang, digest=hang)
    scheduler.Ticker(settings, db, Vault(settings.secret_key()), owner="doomed", jobs=jobs, now=lambda: now).tick()
""")


def test_a_worker_killed_mid_run_is_taken_over_after_its_lease(settings_factory, db, vault, home):
    now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    _companies(db, {"r": "UTC"}, last_sync_at=now - timedelta(hours=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith("QBO_COLLECTOR_")}
    env.update(QBO_COLLECTOR_HOME=str(home), QBO_COLLECTOR_DATABASE_URL=db.url)
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WORKER, now.isoformat()], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "working"  # it holds the first lease (sync) now
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    recorder = Recorder()
    clock = FakeClock(now + timedelta(minutes=1))
    survivor = _ticker(settings_factory, db, vault, recorder, "survivor", clock)
    survivor.tick()
    assert ("sync", "r") not in {(k, r) for k, r, _ in recorder.calls}, "the dead worker's lease still holds"
    clock.at = now + scheduler.TTL["sync"] + timedelta(seconds=1)
    survivor.tick()
    assert ("sync", "r") in {(k, r) for k, r, _ in recorder.calls}
    assert Counter(k for k, _r, _a in recorder.calls)["run"] == 1


def test_a_run_longer_than_its_lease_keeps_it_while_its_process_lives(settings_factory, db, vault):
    # A daily run of a big company outlasts the run lease (30 min) and the sync lease it holds (20 min):
    # its process renews them, so another process neither runs the day again nor syncs under it.
    now = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    _companies(db, {"r": "UTC"}, last_sync_at=now - timedelta(minutes=5))
    clock = FakeClock(now)
    working, finish = threading.Event(), threading.Event()
    long_calls: list[str] = []

    def long_run(realm: str, at: datetime) -> None:
        long_calls.append(realm)
        working.set()
        assert finish.wait(30)

    busy = scheduler.Ticker(settings_factory(), db, vault, owner="busy", now=clock,
                            jobs=scheduler.Jobs(sync=long_run, run=long_run, catchup=lambda r, a: None,
                                                digest=lambda r, a: None))
    busy.renew_every = 0.02
    busy_tick = threading.Thread(target=busy.tick)
    busy_tick.start()
    try:
        assert working.wait(30)
        clock.at = now + timedelta(minutes=45)
        time.sleep(0.5)  # a few renewals at the new time
        recorder = Recorder()
        _ticker(settings_factory, db, vault, recorder, "other", clock).tick()
        assert {kind for kind, _r, _a in recorder.calls} <= {"digest"}, recorder.calls
    finally:
        finish.set()
        busy_tick.join(30)
    assert long_calls == ["r"]


@pytest.mark.parametrize(
    ("zone", "utc", "expected"),
    [
        pytest.param("Pacific/Honolulu", datetime(2026, 11, 23, 18, 59, tzinfo=timezone.utc), False, id="08:59 in Honolulu is before the send hour"),
        pytest.param("Pacific/Honolulu", datetime(2026, 11, 23, 19, 0, tzinfo=timezone.utc), True, id="09:00 in Honolulu is the send hour"),
        pytest.param("Pacific/Kiritimati", datetime(2026, 11, 22, 19, 0, tzinfo=timezone.utc), True, id="Kiritimati is already on Monday 09:00"),
        pytest.param("Pacific/Kiritimati", datetime(2026, 11, 22, 18, 59, tzinfo=timezone.utc), False, id="one minute earlier it is not"),
    ],
)
def test_due_work_reads_the_company_local_clock(zone, utc, expected):
    company = models.Company(realm_id="r", name="r", currency="USD", timezone=zone, settings={"send_hour": 9},
                             last_sync_at=utc)
    kinds = {d.kind for d in scheduler.due_work(company, utc)}
    assert ("run" in kinds) is expected
    assert "sync" not in kinds  # synced just now


def test_unknown_time_zone_falls_back_to_utc_with_a_log(caplog):
    company = models.Company(realm_id="r", name="r", currency="USD", timezone="Mars/Olympus", settings={},
                             last_sync_at=datetime(2026, 11, 23, 9, tzinfo=timezone.utc))
    kinds = {d.kind for d in scheduler.due_work(company, datetime(2026, 11, 23, 10, tzinfo=timezone.utc))}
    assert "run" in kinds and "unknown time zone" in caplog.text


def test_a_transient_failure_is_retried_the_same_day_after_a_back_off(settings_factory, db, vault):
    _companies(db, {"flaky": "UTC"}, last_sync_at=datetime(2026, 11, 1, tzinfo=timezone.utc))
    recorder = Recorder(fail={("flaky", "run"): errors.TransientFailure("QuickBooks unavailable")})
    clock = FakeClock(datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc))
    ticker = _ticker(settings_factory, db, vault, recorder, "proc", clock)
    ticker.tick()
    recorder.fail.clear()
    clock.at += timedelta(minutes=2)
    assert ("flaky", "run") not in ticker.tick().done  # backing off
    clock.at += scheduler.RETRY_AFTER
    assert ("flaky", "run") in ticker.tick().done
    assert sum(1 for kind, _r, _a in recorder.calls if kind == "run") == 2


def test_a_run_whose_texts_wait_for_daytime_comes_back_when_they_may_go(settings_factory, db, vault):
    # A Paris company's 9:00 run is 3:00 in New York: its texts there may go from 14:00 Paris time.
    _companies(db, {"paris": "Europe/Paris"}, last_sync_at=datetime(2026, 11, 1, tzinfo=timezone.utc))
    recorder = Recorder()
    clock = FakeClock(datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc))  # 9:00 in Paris
    wake = datetime(2026, 11, 24, 13, 0, tzinfo=timezone.utc)             # 8:00 in New York
    recorder.answers[("paris", "run")] = scheduler.Again(wake)
    ticker = _ticker(settings_factory, db, vault, recorder, "proc", clock)
    assert ("paris", "run") in ticker.tick().done
    clock.at = wake - timedelta(minutes=1)
    assert ("paris", "run") not in ticker.tick().done  # not before the texts may go
    clock.at = wake + timedelta(minutes=1)
    assert ("paris", "run") in ticker.tick().done      # then again at the next tick, the same day
    clock.at = wake + timedelta(hours=2)
    assert ("paris", "run") not in ticker.tick().done  # and that run finished the day
    assert sum(1 for kind, _r, _a in recorder.calls if kind == "run") == 2


@pytest.mark.parametrize(
    ("wake", "again"),
    [
        pytest.param(datetime(2026, 11, 24, 13, 0, tzinfo=timezone.utc), True, id="8:00 in New York: the same afternoon"),
        pytest.param(datetime(2026, 11, 25, 7, 59, tzinfo=timezone.utc), True, id="a minute before the next day's run"),
        pytest.param(datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc), False, id="at the next day's run: that run's"),
    ],
)
def test_the_daily_run_job_asks_to_come_back_for_rows_due_before_the_next_run(settings_factory, db, vault,
                                                                             monkeypatch, wake, again):
    # A Paris company's 9:00 run (8:00 UTC): a hold past the next day's 9:00 would delay that run.
    from qbo_collector import dispatch

    _companies(db, {"r1": "Europe/Paris"})
    answers = iter([dispatch.RunSummary(realm="r1", waiting=2, wake_at=wake), dispatch.RunSummary(realm="r1")])
    monkeypatch.setattr(dispatch, "run_company", lambda *args, **kwargs: next(answers))
    monkeypatch.setattr(scheduler, "refresh_figures", lambda *args: None)
    jobs = scheduler.default_jobs(settings_factory(), db, vault)
    now = datetime(2026, 11, 24, 8, 0, tzinfo=timezone.utc)
    first = jobs.run("r1", now)
    assert first == scheduler.Again(wake) if again else isinstance(first, dispatch.RunSummary)
    assert isinstance(jobs.run("r1", now), dispatch.RunSummary)


def test_no_daily_run_before_a_first_sync_nor_during_one(settings_factory, db, vault):
    _companies(db, {"new": "UTC"})
    now = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
    assert {d.kind for d in scheduler.due_work(models.Company(timezone="UTC", settings={}), now)} == {"sync"}
    with db.session() as s:
        company = s.scalar(select(models.Company))
        company.last_sync_at = now - timedelta(minutes=5)
        company_id = company.id
    assert leases.claim(db, company_id, "sync", "another-process", now=now, ttl=timedelta(minutes=20))
    recorder = Recorder()
    ticker = _ticker(settings_factory, db, vault, recorder, "proc", FakeClock(now))
    ticker.tick()
    assert not [c for c in recorder.calls if c[0] == "run"], "ran while another process was syncing"
    leases.release(db, company_id, "sync", "another-process", now=now)
    ticker.tick()
    assert [c[0] for c in recorder.calls if c[0] == "run"] == ["run"]


def test_the_digest_goes_out_once_even_when_clocks_disagree_about_its_lease(settings_factory, db, vault):
    # 2026-11-23 is a Monday. Process A claims the digest at 10:00 by its clock; while A is still
    # sending, process B ticks with a clock two hours ahead, for which A's 10-minute lease has run
    # out. Only the compare-and-set on done_on stands between B and a second email.
    _companies(db, {"r": "UTC"}, last_sync_at=datetime(2026, 11, 23, 9, tzinfo=timezone.utc))
    recorder = Recorder()
    ahead = FakeClock(datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc))
    other = _ticker(settings_factory, db, vault, recorder, "proc-b", ahead)
    inner: list[scheduler.TickReport] = []

    def slow_digest(realm: str, now: datetime) -> None:
        recorder.calls.append(("digest", realm, now))
        inner.append(other.tick())

    jobs = recorder.jobs()
    jobs.digest = slow_digest
    first = scheduler.Ticker(settings_factory(), db, vault, owner="proc-a", jobs=jobs,
                             now=FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)))
    report = first.tick()
    assert ("r", "digest") in report.done
    assert ("r", "digest") not in inner[0].done
    assert Counter(k for k, _r, _a in recorder.calls)["digest"] == 1


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        pytest.param(errors.TransientFailure("SendGrid said 429"), True, id="429 proves nothing was sent: retried"),
        pytest.param(RuntimeError("the digest could not be built"), True, id="a failure before sending: retried"),
        pytest.param("unknown", False, id="a timeout after sending: never sent twice"),
        pytest.param(errors.PermanentFailure("invalid owner address"), False, id="a refused address: not retried"),
    ],
)
def test_a_failed_digest_is_retried_only_when_nothing_went_out(settings_factory, db, vault, failure, retried):
    from qbo_collector.channels.base import OutcomeUnknown

    failure = OutcomeUnknown("SendGrid timed out") if failure == "unknown" else failure
    _companies(db, {"r": "UTC"}, last_sync_at=datetime(2026, 11, 23, 9, tzinfo=timezone.utc))
    recorder = Recorder(fail={("r", "digest"): failure})
    clock = FakeClock(datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc))
    ticker = _ticker(settings_factory, db, vault, recorder, "proc", clock)
    assert [f[:2] for f in ticker.tick().failed] == [("r", "digest")]
    recorder.fail.clear()
    clock.at += scheduler.RETRY_AFTER + timedelta(minutes=1)
    ticker.tick()
    assert Counter(k for k, _r, _a in recorder.calls)["digest"] == (2 if retried else 1)


def test_reminders_due_after_the_send_hour_go_out_when_due_the_same_day(sandbox_factory, settings_factory, db):
    # The company runs at 9:00 (its send hour), its policy sends at 14:00: the 9:00 run plans the day,
    # sends nothing before 14:00 and comes back then, not at the next day's run.
    from tests.integration import test_dispatch_support as ds

    policy = ds.every_day_policy(min_gap_days=0, alert_owner_when_late=False)
    policy["send_window"]["hour"] = 14
    env = ds.build(sandbox_factory(companies=[ds.SMALL]), settings_factory, db, policy=policy)
    try:
        clock = FakeClock(env.now_at(9))
        ticker = scheduler.Ticker(env.settings, env.db, env.vault, owner="proc", now=clock)
        assert (env.realm, "run") in ticker.tick().done
        reminders = env.rows(kind="reminder")
        # 14:00 where each customer is: the company's zone, or the country's for a customer abroad
        assert env.now_at(14) in {r.due_at for r in reminders} and min(r.due_at for r in reminders) > clock.at
        assert all(r.status.value == "planned" for r in reminders)
        assert not [m for m in env.sb.sendgrid.messages if m["to"] != "owner@maple.example"]  # the digest may go
        clock.at = min(r.due_at for r in reminders) - timedelta(minutes=1)
        assert (env.realm, "run") not in ticker.tick().done  # nobody claims the run before a row is due
        assert all(r.status.value == "planned" for r in env.rows(kind="reminder"))
        clock.at = env.now_at(15)
        assert (env.realm, "run") in ticker.tick().done
        after = env.rows(kind="reminder")
        assert not [r for r in after if r.status.value == "planned"], [r.status_reason for r in after]
        assert [r for r in after if r.status.value == "sent"]
        assert [m for m in env.sb.sendgrid.messages if m["to"] != "owner@maple.example"]
        clock.at = env.now_at(16)
        assert (env.realm, "run") not in ticker.tick().done  # and that run finished the day
    finally:
        ds.stop([env])


def test_an_email_to_a_customer_in_another_time_zone_goes_out_at_nine_where_they_are(
        sandbox_factory, settings_factory, db):
    # A Paris company runs at 9:00 Paris time; its customer in the United States is emailed at 9:00 in New
    # York (15:00 in Paris, 14:00 in the weeks the two DST calendars disagree), the same day.
    from qbo_collector import dispatch
    from qbo_collector.sandbox import server
    from tests.integration import test_dispatch_support as ds

    french = server.CompanySpec(name="Boulangerie Martin", country="FR", currency="EUR", timezone="Europe/Paris",
                                language="fr", customers=10, invoices=35, payments=10, seed=12)
    env = ds.build(sandbox_factory(companies=[french]), settings_factory, db,
                   policy=ds.every_day_policy(min_gap_days=0, alert_owner_when_late=False))
    try:
        morning = env.now_at(9)
        planned = dispatch.plan_company(env.settings, env.db, env.realm, on=morning.astimezone(
            ZoneInfo("Europe/Paris")).date())
        abroad = next(p.customer_id for p in planned if p.kind == "reminder" and p.channel == "email")
        env.sb.intuit.update(env.realm, "Customer", abroad,
                             BillAddr={"Line1": "350 Fifth Avenue", "City": "New York", "Country": "USA"})
        env.sync()
        day = morning.astimezone(ZoneInfo("America/New_York")).date()
        nine_there = datetime(day.year, day.month, day.day, 9, tzinfo=ZoneInfo("America/New_York")).astimezone(
            timezone.utc)
        clock = FakeClock(morning)
        ticker = scheduler.Ticker(env.settings, env.db, env.vault, owner="proc", now=clock)

        def steps():  # type: ignore[no-untyped-def]  # (a late-fee notice goes with the fee, at the run)
            return [r for r in env.rows(customer_qbo_id=abroad, channel="email", kind="reminder")
                    if r.template_key != "late_fee_notice"]

        ticks, sent_at, runs = [], [], []
        while clock.at <= env.now_at(23):
            runs += [clock.at] if (env.realm, "run") in ticker.tick().done else []
            ticks.append(clock.at)
            sent_at += [clock.at for r in steps() if r.status.value == "sent" and clock.at not in sent_at]
            clock.at += timedelta(minutes=30)
        rows = steps()
        assert rows and all(r.due_at == nine_there for r in rows)
        assert all(r.status.value == "sent" for r in rows), [(r.status.value, r.status_reason) for r in rows]
        assert sent_at[0] == min(t for t in ticks if t >= nine_there)
        # the day's run, then once at the first tick after each moment a row was due later: no spinning
        later = {r.due_at for r in env.rows() if r.due_at > morning and not r.dry_run and r.kind != "note"}
        assert runs == [morning] + sorted({min(t for t in ticks if t >= at) for at in later if at <= ticks[-1]})
    finally:
        ds.stop([env])


class EmbeddedScheduler:
    """APScheduler's BackgroundScheduler as ``/healthz`` sees it in ``serve`` (the embedded scheduler)."""

    running = True


@pytest.mark.parametrize("embedded", [False, True], ids=["a worker ticks", "the embedded scheduler ticks"])
def test_healthz_stays_up_while_a_long_tick_works_and_goes_down_when_its_heartbeat_is_stale(
        settings_factory, db, vault, embedded):
    # A tick works through every company in turn (30 minutes for 1,000 in the benchmark): its heartbeat,
    # written when it starts, is renewed while it works; once it is 3 minutes old, /healthz says 503.
    from qbo_collector import clock
    from web import create_app

    app = create_app(settings_factory(), db=db)
    if embedded:
        app.config["QBO"].extras["scheduler"] = EmbeddedScheduler()
    client = app.test_client()
    _companies(db, {"big": "UTC"})  # never synced: the tick's one unit of work is a first sync
    working, finish = threading.Event(), threading.Event()

    def long_sync(realm: str, at: datetime) -> None:
        working.set()
        assert finish.wait(30)

    ticker = scheduler.Ticker(settings_factory(), db, vault, owner="proc", jobs=scheduler.Jobs(
        sync=long_sync, run=lambda r, a: None, catchup=lambda r, a: None, digest=lambda r, a: None))
    ticker.renew_every = 0.02
    tick = threading.Thread(target=ticker.tick)
    try:
        tick.start()
        assert working.wait(30)
        assert client.get("/healthz").status_code == 200
        clock.advance(timedelta(minutes=5))  # the sync outlasts the 3-minute window
        time.sleep(0.5)                      # a few renewals at the new time
        body = client.get("/healthz")
        assert body.status_code == 200 and body.get_json()["scheduler"] == "alive"
        finish.set()
        tick.join(30)
        clock.advance(timedelta(minutes=3))  # no tick since: the heartbeat is stale
        body = client.get("/healthz")
        assert body.status_code == 503 and body.get_json()["scheduler"] == "not seen"
    finally:
        finish.set()
        tick.join(30)
        clock.reset()


def test_a_ticker_reads_the_programs_clock_at_each_tick(settings_factory, db, vault, monkeypatch):  # type: ignore[no-untyped-def]
    """Found through the demo: ``now=clock.now`` as a default argument was bound when this module was first
    imported, so a Ticker made later kept that function — a clock a test had frozen then, or not the one
    the demo moves. The Ticker now asks ``clock.now`` at each tick."""
    from qbo_collector import clock as program_clock

    ticker = scheduler.Ticker(settings_factory(), db, vault, owner="reader", jobs=Recorder().jobs())
    moved = datetime(2031, 2, 3, 4, 5, tzinfo=timezone.utc)
    monkeypatch.setattr(program_clock, "now", lambda: moved)
    assert ticker.now() == moved
