"""The ``qbo-collector`` command: a thin door into the same functions the web app calls.

Exit codes: 0 done, 1 something failed at run time (Intuit down, company needs reconnecting; for
``run``, any of ``RunSummary.problems``; for ``plan``, a customer left out of the plan), 2 the command or the configuration is wrong, or there is
nothing to work on: no company connected, ``--realm`` naming none (the message names what to fix).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
import threading
import webbrowser
from collections.abc import Callable, Sequence
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from sqlalchemy import Row, exc as sa_exc, make_url, select

from qbo_collector import config, errors, logs
from qbo_collector.db import migrate, models
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database

log = logging.getLogger("qbo_collector")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROBLEMS_LISTED = 20  # per company; a company policy that does not validate skips every customer
CONNECT_HOW = "on the Connect page of the web app (`qbo-collector serve`) or with `qbo-collector connect`"


class Context:
    """Settings, database and vault, built lazily so that `--help` needs no configuration."""

    def __init__(self) -> None:
        self._settings: config.Settings | None = None
        self._db: Database | None = None

    @property
    def settings(self) -> config.Settings:
        if self._settings is None:
            self._settings = config.load()
        return self._settings

    @property
    def db(self) -> Database:
        if self._db is None:
            self._db = Database.from_settings(self.settings)
        return self._db

    @property
    def vault(self) -> Vault:
        return Vault(self.settings.secret_key())

    def upgraded_db(self) -> Database:
        migrate.upgrade(self.db)
        return self.db

    def companies(self) -> list[Row[Any]]:
        """Every company in the database (realm_id, name, status, status_reason), oldest first."""
        with self.db.session() as s:
            return list(s.execute(select(models.Company.realm_id, models.Company.name, models.Company.status,
                                         models.Company.status_reason).order_by(models.Company.id)))

    def realms(self, realm: str | None, *, doing: str, none_ok: bool = False) -> list[str]:
        """The realms a command works on: ``realm`` (any company in the database: a disconnected one
        keeps its mirror and history), else every connected company. InvalidInput (exit 2) saying what
        to do when there is none, unless ``none_ok``."""
        companies = self.companies()
        if realm:
            if any(c.realm_id == realm for c in companies):
                return [realm]
            raise errors.InvalidInput(f"No company with realm {realm}. {_listing(companies)}", field="realm")
        connected = [c.realm_id for c in companies if c.status == models.CompanyStatus.connected]
        if not connected and not none_ok:
            if not companies:
                raise errors.InvalidInput(f"No QuickBooks company is connected, so there is nothing to {doing}. "
                                          f"Connect one {CONNECT_HOW}.", field="realm")
            raise errors.InvalidInput(f"No QuickBooks company is connected, so there is nothing to {doing}. "
                                      f"{_listing(companies)} Reconnect one {CONNECT_HOW}, or name one with "
                                      "--realm to use what was last synced.", field="realm")
        return connected

    def waiting_for_reconnect(self, realm: str | None, *, left_out: str) -> list[str]:
        """Without ``--realm``: the companies that need reconnecting, each told on stderr (they are
        left out of the connected companies a command works on)."""
        if realm:
            return []
        waiting = [c for c in self.companies() if c.status == models.CompanyStatus.needs_reconnect]
        for c in waiting:
            print(f"realm {c.realm_id}: “{c.name}” needs reconnecting ({_reason(c)}), so it was {left_out}. "
                  f"Reconnect it {CONNECT_HOW}.", file=sys.stderr)
        return [c.realm_id for c in waiting]


def _reason(company: Row[Any]) -> str:
    return (company.status_reason or "the QuickBooks grant was refused").rstrip(".")


def _listing(companies: list[Row[Any]]) -> str:
    if not companies:
        return f"No company has been connected yet: connect one {CONNECT_HOW}."
    states = {models.CompanyStatus.connected: lambda c: "connected",
              models.CompanyStatus.needs_reconnect: lambda c: f"needs reconnecting: {_reason(c)}",
              models.CompanyStatus.disconnected: lambda c: "disconnected"}
    return "Companies: " + "; ".join(f"{c.realm_id} “{c.name}” ({states[c.status](c)})" for c in companies) + "."


# -- commands ---------------------------------------------------------------------------------


def cmd_db_upgrade(ctx: Context, args: argparse.Namespace) -> int:
    ctx.upgraded_db()
    print(f"database at revision {migrate.current(ctx.db)}")
    return EXIT_OK


def cmd_user_add(ctx: Context, args: argparse.Namespace) -> int:
    from qbo_collector import users

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("Password: ")
    db = ctx.upgraded_db()
    with db.session() as s:
        user = users.add_user(s, args.email, password, admin=True if args.admin else None, language=args.language)
        for realm in args.company or []:
            company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
            if company is None:
                raise errors.InvalidInput(f"No company with realm {realm}.", field="company")
            users.grant(s, user, company, args.role)
        print(f"user {user.email} added" + (" (sees every company)" if user.is_admin else ""))
    return EXIT_OK


def cmd_connect(ctx: Context, args: argparse.Namespace) -> int:
    from qbo_collector.sync import auth

    db = ctx.upgraded_db()
    settings = ctx.settings
    url, state = auth.begin(settings, db, origin="cli")
    print("Open this address to authorize qbo-collector at Intuit:\n\n  " + url + "\n", flush=True)
    if args.redirect_url:
        query = _query_of(args.redirect_url)
    else:
        redirect = urlparse(settings.redirect_uri)
        if auth.is_loopback(settings.redirect_uri) and redirect.scheme == "http":
            waiter = _OneShotListener(redirect.hostname or "127.0.0.1", redirect.port or 80, redirect.path or "/")
            waiter.start()
            if not args.no_browser:
                webbrowser.open(url)
            print(f"Waiting for Intuit to send you back to {settings.redirect_uri} …", flush=True)
            query = waiter.wait(timeout=args.timeout)
        else:
            if not args.no_browser:
                webbrowser.open(url)
            pasted = input("After approving, paste the full address you were sent to: ").strip()
            query = _query_of(pasted)
    company = auth.complete(settings, db, ctx.vault, state=query.get("state"), code=query.get("code"),
                            realm_id=query.get("realmId"), error=query.get("error"))
    print(f"connected: {company.name} (realm {company.realm_id}, {company.currency}, {company.timezone})")
    return EXIT_OK


def _query_of(url: str) -> dict[str, str]:
    parsed = urlparse(url)
    if not parsed.query:
        raise errors.InvalidInput("That address has no query string; paste the whole address from the browser.",
                                  field="redirect-url")
    return {k: v[0] for k, v in parse_qs(parsed.query).items()}


class _OneShotListener:
    """Receives the one OAuth redirect on the loopback redirect URI, then stops."""

    def __init__(self, host: str, port: int, path: str) -> None:
        self.result: dict[str, str] | None = None
        self._done = threading.Event()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                if parsed.path.rstrip("/") != path.rstrip("/"):
                    self.send_error(404)
                    return
                listener.result = {k: v[0] for k, v in parse_qs(parsed.query).items()}
                body = ("<!doctype html><meta charset=utf-8><title>qbo-collector</title>"
                        "<p>Thank you. You can close this window and return to the terminal.</p>").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                listener._done.set()

            def log_message(self, format: str, *args: object) -> None:  # the query holds the code: never log it
                return

        try:
            self._server = HTTPServer((host, port), Handler)
        except OSError as exc:
            raise errors.ConfigError(f"Cannot listen on {host}:{port} for the OAuth redirect ({exc.strerror}); "
                                     "free the port or pass --redirect-url.", variable="INTUIT_REDIRECT_URI") from None

    def start(self) -> None:
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._done.is_set():
            self._server.handle_request()

    def wait(self, timeout: float) -> dict[str, str]:
        self._server.timeout = 0.5
        if not self._done.wait(timeout):
            self._done.set()
            raise errors.TransientFailure(f"No answer from Intuit within {int(timeout)} s; run connect again.")
        self._server.server_close()
        assert self.result is not None
        return self.result


def cmd_disconnect(ctx: Context, args: argparse.Namespace) -> int:
    from qbo_collector.sync import auth

    auth.disconnect(ctx.settings, ctx.upgraded_db(), ctx.vault, args.realm)
    print(f"disconnected realm {args.realm}; tokens forgotten, history kept")
    return EXIT_OK


def cmd_sandbox(ctx: Context, args: argparse.Namespace) -> int:
    from qbo_collector.sandbox import server

    argv = ["--port", str(args.port), "--seed", str(args.seed)]
    if args.customers is not None:
        argv += ["--customers", str(args.customers)]
    if args.invoices is not None:
        argv += ["--invoices", str(args.invoices)]
    if args.auto_approve:
        argv += ["--auto-approve"]
    return int(server.main(argv) or 0)


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    from pathlib import Path

    from qbo_collector import demo

    home = Path(os.environ.get("QBO_COLLECTOR_HOME") or "./var") / "demo"
    return demo.main(home, port=args.port, host=args.host)


def waitress_options(settings: config.Settings) -> dict[str, object]:
    """How waitress treats X-Forwarded-*: it drops them from every request unless told otherwise.

    With trusted proxies they must reach the app, whose ProxyFix (``web.create_app``) reads exactly
    QBO_COLLECTOR_TRUSTED_PROXY_COUNT hops of them; without, waitress keeps dropping them.
    """
    return {"clear_untrusted_proxy_headers": not settings.trusted_proxy_count}


def cmd_serve(ctx: Context, args: argparse.Namespace) -> int:
    import signal

    import waitress.server

    from qbo_collector import scheduler
    from web import create_app

    db = ctx.upgraded_db()
    app = create_app(ctx.settings, db=db)
    ticker = background = None
    if not args.no_scheduler:
        ticker = scheduler.Ticker(ctx.settings, db, ctx.vault)
        background = scheduler.start_background(ticker)
        app.config["QBO"].extras["scheduler"] = background
    server = waitress.server.create_server(app, host=args.host, port=args.port, threads=args.threads,
                                           ident="qbo-collector", **waitress_options(ctx.settings))

    def stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping after the current requests and work", signum)
        server.close()

    signal.signal(signal.SIGTERM, stop)
    print(f"serving on http://{args.host}:{server.effective_port} (public URL {ctx.settings.public_url})"
          + ("" if ticker else "; scheduler off"), flush=True)
    try:
        server.run()
    except (KeyboardInterrupt, OSError):
        pass
    finally:
        if background is not None and ticker is not None:
            ticker.stopping.set()
            background.shutdown(wait=True)  # finish the current unit of work
            ticker.shutdown()
    return EXIT_OK


def cmd_worker(ctx: Context, args: argparse.Namespace) -> int:
    from qbo_collector import scheduler

    ticker = scheduler.Ticker(ctx.settings, ctx.upgraded_db(), ctx.vault)
    if args.once:
        report = ticker.tick()
        print(f"done {len(report.done)}, failed {len(report.failed)}, claimed elsewhere {report.skipped}")
        for realm, kind, reason in report.failed:
            print(f"  {kind} realm {realm}: {reason}", file=sys.stderr)
        return EXIT_FAILED if report.failed else EXIT_OK
    print(f"worker {ticker.owner} ticking every {args.every} s; SIGTERM stops after the current work", flush=True)
    scheduler.run_forever(ticker, every_seconds=args.every)
    return EXIT_OK


def cmd_plan(ctx: Context, args: argparse.Namespace) -> int:
    from qbo_collector import dispatch

    db = ctx.upgraded_db()
    everything = {}
    realms = ctx.realms(args.realm, doing="plan")
    ctx.waiting_for_reconnect(args.realm,
                              left_out="not planned (name it with --realm to plan from what was last synced)")
    why_failed = []
    for realm in realms:
        on = args.on or _company_today(db, realm)
        problems: list[str] = []
        rows = dispatch.plan_company(ctx.settings, db, realm, on=on, days=args.days, problems=problems)
        everything[realm] = rows
        if not args.json:
            print(f"realm {realm}: {len(rows)} action(s) from {on.isoformat()} over {args.days} day(s)")
            for row in rows:
                print("  " + row.line())
        _print_problems(realm, problems)
        if problems:
            why_failed.append(f"realm {realm} has {len(problems)} customer(s) left out of the plan")
    if args.json:
        print(json.dumps({realm: [r.as_dict() for r in rows] for realm, rows in everything.items()}, indent=2,
                         default=str))
    if why_failed:
        print(f"qbo-collector: exit code 1: {'; '.join(why_failed)} (see above).", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _print_problems(realm: str, problems: Sequence[str]) -> None:
    """On stderr, the first ``PROBLEMS_LISTED`` and how many more."""
    for problem in problems[:PROBLEMS_LISTED]:
        print(f"realm {realm}: problem: {problem}", file=sys.stderr)
    if len(problems) > PROBLEMS_LISTED:
        print(f"realm {realm}: … and {len(problems) - PROBLEMS_LISTED} more problem(s)", file=sys.stderr)


def _company_today(db: Database, realm: str) -> date:
    from qbo_collector import clock, scheduler

    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
        return scheduler.local_now(company, clock.now()).date()


def cmd_run(ctx: Context, args: argparse.Namespace) -> int:
    from datetime import datetime, time, timezone
    from zoneinfo import ZoneInfo

    from qbo_collector import clock, dispatch, scheduler

    db = ctx.upgraded_db()
    waiting = ctx.waiting_for_reconnect(args.realm, left_out="not run")
    why_failed = [f"realm {realm} needs reconnecting" for realm in waiting]
    for realm in ctx.realms(args.realm, doing="run", none_ok=bool(waiting)):
        now = clock.now()
        if args.on:
            with db.session() as s:
                company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
                zone = ZoneInfo(company.timezone or "UTC")
                hour = scheduler.send_hour(company)
            now = datetime.combine(args.on, time(hour), zone).astimezone(timezone.utc)
        try:
            summary = dispatch.run_company(ctx.settings, db, ctx.vault, realm, now=now, dry_run=args.dry_run)
        except errors.ReconnectNeeded as exc:
            why_failed.append(f"realm {realm} needs reconnecting")
            print(f"realm {realm}: {exc.message}", file=sys.stderr)
            continue
        print(f"realm {realm}: {summary.line()}")
        for warning in summary.warnings:
            print(f"realm {realm}: note: {warning}", file=sys.stderr)
        problems = summary.problems
        _print_problems(realm, problems)
        if problems:
            why_failed.append(f"realm {realm} has {len(problems)} problem(s) to act on")
    if why_failed:
        print(f"qbo-collector: exit code 1: {'; '.join(why_failed)} (see above).", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_sync(ctx: Context, args: argparse.Namespace) -> int:
    from qbo_collector.sync import run as sync_run

    db = ctx.upgraded_db()
    waiting = ctx.waiting_for_reconnect(args.realm, left_out="not synced")
    why_failed = [f"realm {realm} needs reconnecting" for realm in waiting]
    for realm in ctx.realms(args.realm, doing="sync", none_ok=bool(waiting)):
        with _progress(enabled=sys.stderr.isatty()) as progress:
            try:
                summary = sync_run.sync_company(ctx.settings, db, ctx.vault, realm, full=args.full, progress=progress)
            except errors.QboCollectorError as exc:
                why_failed.append(f"realm {realm} was not synced")
                print(f"realm {realm}: {exc.message}", file=sys.stderr)
                continue
        print(summary.line())  # "realm R: …", with what failed (QuickBooks unreachable for an entity)
        if not summary.ok:
            why_failed.append(f"realm {realm} was synced only in part")
    if why_failed:
        print(f"qbo-collector: exit code 1: {'; '.join(why_failed)} (see above).", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


class _progress:
    """A rich progress bar on a terminal; plain log lines otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar = None
        self._tasks: dict[str, int] = {}

    def __enter__(self) -> Callable[[str, int, int | None], None]:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), transient=False)
            self._bar.start()
        return self.update

    def update(self, entity: str, done: int, total: int | None) -> None:
        if self._bar is None:
            log.info("sync %s: %d rows%s", entity, done, f" of {total}" if total else "")
            return
        if entity not in self._tasks:
            self._tasks[entity] = self._bar.add_task(entity, total=total)
        self._bar.update(self._tasks[entity], completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def cmd_report(ctx: Context, args: argparse.Namespace) -> int:
    from qbo_collector import reports

    if (args.customers or args.csv) and args.kind != "aging":
        print("qbo-collector: --customers and --csv are options of `report aging` only.", file=sys.stderr)
        return EXIT_USAGE
    if args.csv and args.json:
        print("qbo-collector: choose one of --csv and --json.", file=sys.stderr)
        return EXIT_USAGE
    db = ctx.upgraded_db()
    realms = ctx.realms(args.realm, doing="report on")
    ctx.waiting_for_reconnect(args.realm,
                              left_out="left out (name it with --realm to report on what was last synced)")
    if args.csv and len(realms) > 1:
        print("qbo-collector: --csv writes one company's table: name it with --realm "
              f"({', '.join(realms)}).", file=sys.stderr)
        return EXIT_USAGE
    for realm in realms:
        on = args.on or _company_today(db, realm)  # as the dashboard: the company's date, not the server's
        if args.csv:
            sys.stdout.write(reports.aging_csv(reports.aging_by_customer(db, realm, on), bom=False))
            continue
        report = reports.aging_by_customer if args.customers else \
            {"aging": reports.aging, "dso": reports.dso, "forecast": reports.forecast}[args.kind]
        figures = report(db, realm, on)
        if args.json or args.kind != "aging":
            print(json.dumps(figures, indent=2, sort_keys=False))
        else:
            print((reports.format_aging_by_customer if args.customers else reports.format_aging)(figures))
    return EXIT_OK


# -- parser -----------------------------------------------------------------------------------


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"“{value}” is not a date like 2026-11-23") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qbo-collector", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[Context, argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(fn=fn)
        return p

    dbp = add("db", lambda c, a: EXIT_USAGE, "database maintenance")
    dbsub = dbp.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    dbsub.add_parser("upgrade", help="create or migrate the schema to the newest revision").set_defaults(fn=cmd_db_upgrade)

    userp = add("user", lambda c, a: EXIT_USAGE, "people who use the settings page")
    usersub = userp.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    ua = usersub.add_parser("add", help="add a login (password asked, or read from stdin)")
    ua.add_argument("email")
    ua.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    ua.add_argument("--company", action="append", metavar="REALM", help="give access to this company (repeatable)")
    ua.add_argument("--role", choices=["owner", "viewer"], default="owner")
    ua.add_argument("--admin", action="store_true", help="sees and manages every company (the first user always does)")
    ua.add_argument("--language", choices=["en", "fr"], default="en")
    ua.set_defaults(fn=cmd_user_add)

    cp = add("connect", cmd_connect, "connect a QuickBooks company through Intuit OAuth")
    cp.add_argument("--no-browser", action="store_true", help="print the address instead of opening a browser")
    cp.add_argument("--redirect-url", metavar="URL", help="the address Intuit sent you back to, pasted")
    cp.add_argument("--timeout", type=float, default=600, help="seconds to wait for the redirect (default 600)")

    dp = add("disconnect", cmd_disconnect, "revoke a company's grant and forget its tokens")
    dp.add_argument("--realm", required=True)

    sp = add("sandbox", cmd_sandbox, "run the local Intuit/SendGrid/Twilio stand-ins alone")
    sp.add_argument("--port", type=int, default=8790)
    sp.add_argument("--seed", type=int, default=1)
    sp.add_argument("--customers", type=int)
    sp.add_argument("--invoices", type=int)
    sp.add_argument("--auto-approve", action="store_true", help="approve OAuth consent without a click")

    de = add("demo", cmd_demo, "run everything on the embedded sandbox with two demo companies")
    de.add_argument("--host", default="127.0.0.1")
    de.add_argument("--port", type=int, default=8000, help="web port (0 picks a free one)")

    sv = add("serve", cmd_serve, "serve the web app (pages, OAuth callback, webhooks)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=8000)
    sv.add_argument("--threads", type=int, default=8)

    sv.add_argument("--no-scheduler", action="store_true",
                    help="serve pages and webhooks only (run `qbo-collector worker` elsewhere)")

    wk = add("worker", cmd_worker, "run the scheduler: syncs, daily runs, catch-ups, digests")
    wk.add_argument("--every", type=int, default=60, help="seconds between ticks (default 60)")
    wk.add_argument("--once", action="store_true", help="one tick, then exit (cron-style)")

    pl = add("plan", cmd_plan, "what would happen, changing nothing")
    pl.add_argument("--realm")
    pl.add_argument("--on", type=_date, help="first day (default: today in the company's time zone)")
    pl.add_argument("--days", type=int, default=1)
    pl.add_argument("--json", action="store_true")

    rn = add("run", cmd_run, "carry out what is due now (or on --on DATE at the send hour)")
    rn.add_argument("--realm")
    rn.add_argument("--on", type=_date)
    rn.add_argument("--dry-run", action="store_true", help="plan and log, send nothing")

    sy = add("sync", cmd_sync, "mirror QuickBooks: incremental by default")
    sy.add_argument("--realm")
    sy.add_argument("--full", action="store_true", help="re-read everything instead of changes since the last sync")

    rp = add("report", cmd_report, "figures from the mirror")
    rp.add_argument("kind", choices=["aging", "dso", "forecast"])
    rp.add_argument("--realm")
    rp.add_argument("--on", type=_date, help="as of this date (default: today in the company's time zone)")
    rp.add_argument("--json", action="store_true")
    rp.add_argument("--customers", action="store_true", help="aging: one row per customer and currency")
    rp.add_argument("--csv", action="store_true", help="aging: one row per customer and currency, as CSV")
    return parser


def _database_problem(url: str, exc: sa_exc.OperationalError) -> str:
    """One sentence for a database that cannot be used, with the URL's password hidden."""
    shown = make_url(url).render_as_string(hide_password=True)
    cause = logs.redact((str(exc.orig or exc).strip().splitlines() or ["no answer"])[0])
    if not url.startswith("sqlite"):
        hint = "Check QBO_COLLECTOR_DATABASE_URL, and that the database server is running and reachable from here."
    elif "locked" in cause:
        hint = "Another process held its write lock for over 30 s; try again, or use PostgreSQL for several processes."
    else:
        hint = "Check QBO_COLLECTOR_DATABASE_URL and the file's permissions."
    return f"The database at {shown} cannot be used ({cause}). {hint}"


def main(argv: Sequence[str] | None = None) -> int:
    logs.install()
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(logging.DEBUG if args.verbose else logging.INFO)
    ctx = Context()
    try:
        return args.fn(ctx, args)
    except (errors.ConfigError, errors.InvalidInput) as exc:
        print(f"qbo-collector: {exc.message}", file=sys.stderr)
        return EXIT_USAGE
    except errors.QboCollectorError as exc:
        print(f"qbo-collector: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except sa_exc.OperationalError as exc:  # unreachable, refused, or a SQLite file locked past the busy timeout
        print(f"qbo-collector: {_database_problem(ctx.settings.database_url, exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
