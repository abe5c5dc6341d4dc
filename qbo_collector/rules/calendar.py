"""Local calendar: allowed send days (weekdays, public holidays) and the UTC instant of a local send time."""

from __future__ import annotations

import calendar as pycalendar
import datetime as dt
import functools
import zoneinfo

import holidays as holidays_lib

from qbo_collector.rules import model, policy as policy_mod

UTC = dt.timezone.utc


@functools.lru_cache(maxsize=256)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


@functools.lru_cache(maxsize=1024)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[dt.date]:
    return frozenset(holidays_lib.country_holidays(country.upper(), subdiv=subdivision, years=year).keys())


def is_holiday(company: model.CompanyContext, day: dt.date) -> bool:
    return day in _holiday_dates(company.country, company.subdivision, day.year)


def is_send_day(company: model.CompanyContext, window: policy_mod.SendWindow, day: dt.date) -> bool:
    if day.weekday() not in window.weekdays:
        return False
    return not (window.skip_holidays and is_holiday(company, day))


def next_send_day(company: model.CompanyContext, window: policy_mod.SendWindow, day: dt.date) -> dt.date:
    """``day`` itself when allowed, else the next allowed day (a step due on a holiday goes out the day after)."""
    for _ in range(400):
        if is_send_day(company, window, day):
            return day
        day += dt.timedelta(days=1)
    return day  # unreachable with at least one weekday allowed: a year has no 400 holidays


def local_instant(day: dt.date, window: policy_mod.SendWindow, time_zone: str) -> dt.datetime:
    """The UTC instant of ``day`` at the window's local hour in ``time_zone``.

    Built from the local date, so a 17:00 send in Los Angeles lands on the next UTC day
    and is never skipped. A local time that does not exist (spring-forward gap) is read
    with the offset before the change, i.e. shifted forward by the gap; an ambiguous one
    (fall-back) takes the first occurrence.
    """
    return _local_instant(day, window.hour, window.minute, time_zone)


@functools.lru_cache(maxsize=4096)  # a calendar fact: every action of a day in one zone shares it
def _local_instant(day: dt.date, hour: int, minute: int, time_zone: str) -> dt.datetime:
    local = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone(time_zone))
    return local.astimezone(UTC)


def local_date(at: dt.datetime, time_zone: str) -> dt.date:
    return at.astimezone(zone(time_zone)).date()


def add_months(day: dt.date, months: int) -> dt.date:
    """Same day ``months`` later, clamped to the month's end (Jan 31 → Feb 28/29; Feb 29 → Feb 28)."""
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return dt.date(year, month, min(day.day, pycalendar.monthrange(year, month)[1]))
