"""The settings and review pages of one company: dashboard, customers, upcoming, policy, templates, channels.

Every view is a few lines: it finds the company through ``connect.company_for`` (404 for
other tenants, 403 for viewers on POST), calls into the package (``casework``,
``dashboard``, ``rules``, ``templates``, ``dispatch``) and renders. ``init_app`` sets up
Flask-Babel (French or English from the user's setting, money and dates in that locale)
and the Jinja filters the templates share.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from flask import Blueprint, Flask, current_app, g, request
from flask_babel import (Babel, format_currency, format_date, format_datetime, format_decimal, format_percent, format_time,
                         get_locale, gettext, lazy_gettext)
from flask_login import current_user

from qbo_collector import clock, errors
from qbo_collector.db import models
from qbo_collector.dispatch import outbox
from qbo_collector.rules import calendar as rules_calendar

bp = Blueprint("pages", __name__)
LANGUAGES = ("en", "fr")
_LOCALES = {"en": "en_US", "fr": "fr_FR"}


def services():  # type: ignore[no-untyped-def]
    return current_app.config["QBO"]


def user_id() -> int:
    return current_user.id


@contextlib.contextmanager
def company_session(realm_id: str, *, write: bool = False) -> Iterator[tuple[Any, models.Company, str]]:
    """A session and the company the current user may see (``write``: an owner), committed on exit."""
    from web import connect

    db = services().db
    with (db.session() if write else db.reading()) as s:
        company, role = connect.company_for(s, realm_id, write=write)
        g.company_tz = company.timezone or "UTC"
        yield s, company, role


def today_for(company: models.Company) -> dt.date:
    """The company's local date (the demo's clock may be advanced)."""
    try:
        return rules_calendar.local_date(clock.now(), company.timezone or "UTC")
    except Exception:  # noqa: BLE001 - an unknown zone in the mirror must not break a page
        return clock.now().date()


def message_of(exc: errors.QboCollectorError) -> str:
    """The error's sentence in the user's language when the catalogue has it."""
    return gettext(exc.message)  # type: ignore[no-any-return]


def _locale() -> str:
    if current_user and current_user.is_authenticated and getattr(current_user, "language", None) in LANGUAGES:
        return _LOCALES[current_user.language]
    best = request.accept_languages.best_match(LANGUAGES) if request else None
    return _LOCALES.get(best or "en", "en_US")


def _timezone() -> str:
    return getattr(g, "company_tz", None) or "UTC"


def money_filter(amount: object, currency: str | None = None) -> str:
    if amount is None or amount == "":
        return ""
    if currency is None and hasattr(amount, "currency"):
        amount, currency = amount.amount, amount.currency  # type: ignore[union-attr]
    value = Decimal(str(amount))
    return format_currency(value, currency or "USD")  # type: ignore[no-any-return]


def date_filter(value: object, style: str = "medium") -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = dt.date.fromisoformat(value[:10])
    if isinstance(value, dt.datetime):
        if style == "medium":  # "Nov 23, 2026, 10:34 AM" / "23 nov. 2026, 10:34"
            return f"{format_date(value, 'medium')}, {format_time(value, 'short')}"
        return format_datetime(value, style)  # type: ignore[no-any-return]
    return format_date(value, style)  # type: ignore[no-any-return]


def local_filter(value: dt.datetime | None, zone: str | None) -> str:
    """A UTC instant in the company's time zone: "Nov 23, 2026, 11:02 AM" / "23 nov. 2026, 11:02"."""
    if value is None:
        return ""
    try:
        local = value.astimezone(rules_calendar.zone(zone or "UTC")).replace(tzinfo=None)
    except Exception:  # noqa: BLE001 - an unknown zone in the mirror: show UTC
        local = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return f"{format_date(local, 'medium', rebase=False)}, {format_time(local, 'short', rebase=False)}"


def time_filter(value: dt.datetime | None) -> str:
    return format_time(value, "short") if value else ""  # type: ignore[no-any-return]


def number_filter(value: object, digits: int = 1) -> str:
    if value is None:
        return "—"
    return format_decimal(Decimal(str(value)), format="#,##0." + "0" * digits if digits else "#,##0")  # type: ignore[no-any-return]


def percent_filter(value: object) -> str:
    """A share (0.25) as the user writes it: "25%" / "25 %"."""
    if value is None:
        return "—"
    return format_percent(Decimal(str(value)), format="#,##0.##%")  # type: ignore[no-any-return]


def rate_filter(value: object) -> str:
    """A rate given in percent (12.15) as the user writes it: "12.15%" / "12,15 %"."""
    if value is None:
        return "—"
    return format_percent(Decimal(str(value)) / 100, format="#,##0.##%")  # type: ignore[no-any-return]


def country_filter(code: str | None) -> str:
    """An ISO country code in the user's language: "FR" → "France" / "France", "DE" → "Germany" / "Allemagne"."""
    if not code:
        return ""
    return get_locale().territories.get(code, code)  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en_US")
    Babel(app, locale_selector=_locale, timezone_selector=_timezone)
    app.jinja_env.filters.update(money=money_filter, date=date_filter, time=time_filter, local=local_filter, number=number_filter,
                                 percent=percent_filter, rate=rate_filter, country_name=country_filter)
    app.jinja_env.add_extension("jinja2.ext.do")

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"LANGUAGES": LANGUAGES, "current_language": _locale()[:2], "STATE_LABELS": STATE_LABELS,
                "fees_held": fees_held}


def fees_held(company: models.Company) -> outbox.FeesHeld | None:
    """The company's late fees on hold for want of a tax code (``dispatch.outbox.fees_held``), read once a request:
    the company bar and the Channels page say so."""
    memo = g.setdefault("fees_held", {})
    if company.id not in memo:
        with services().db.reading() as s:
            memo[company.id] = outbox.fees_held(s, company.id)
    return memo[company.id]  # type: ignore[no-any-return]


STATE_LABELS = {
    "excluded": lazy_gettext("excluded"),
    "disputed": lazy_gettext("disputed"),
    "promised": lazy_gettext("promised"),
    "plan": lazy_gettext("payment plan"),
    "paused": lazy_gettext("paused"),
    "opted_out": lazy_gettext("opted out"),
    "bounced": lazy_gettext("bounced"),
}

from web.pages import account, customers, dashboard, policy, settings, upcoming  # noqa: E402,F401  (routes)
