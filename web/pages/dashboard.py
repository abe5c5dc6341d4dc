"""Dashboard: aging, DSO with its target and trend, expected cash, late customers, reminders' effect."""

from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal

from flask import Response, flash, redirect, render_template, request, url_for
from babel import numbers
from flask_babel import format_date, format_decimal, get_locale, gettext

from qbo_collector import dashboard as figures
from qbo_collector import errors, reports
from web.pages import bp, charts, company_session, message_of, services, today_for

log = logging.getLogger(__name__)
BUCKET_LABELS = {"current": "Current", "1-30": "1–30", "31-60": "31–60", "61-90": "61–90", "90+": "90+"}


@bp.get("/companies/<realm_id>/dashboard")
def dashboard(realm_id: str):  # type: ignore[no-untyped-def]
    with company_session(realm_id) as (_s, company, role):
        on = today_for(company)
    data = figures.build(services().db, realm_id, on)
    return render_template("pages/dashboard.html", company=company, role=role, tab="dashboard", d=data,
                           charts=_charts(data), buckets=reports.AGING_BUCKETS, error=None)


@bp.get("/companies/<realm_id>/dashboard/aging.csv")
def aging_csv(realm_id: str):  # type: ignore[no-untyped-def]
    """The aging by customer as a spreadsheet (``reports.aging_csv``); ``?on=YYYY-MM-DD`` for a past day."""
    with company_session(realm_id) as (_s, company, _role):
        on = today_for(company)
    typed = request.args.get("on", "").strip()
    if typed:
        try:
            on = date.fromisoformat(typed)
        except ValueError:
            log.info("dashboard: aging.csv refused realm=%s: on=%r is not a date", realm_id, typed[:40])
            return Response(gettext("“%(value)s” is not a date like 2026-11-23.", value=typed[:40]) + "\n", status=400,
                            mimetype="text/plain")
    body = reports.aging_csv(reports.aging_by_customer(services().db, realm_id, on))
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="aging-{realm_id}-{on.isoformat()}.csv"',
        "Cache-Control": "no-store"})


@bp.post("/companies/<realm_id>/dashboard/target")
def dso_target(realm_id: str):  # type: ignore[no-untyped-def]
    with company_session(realm_id, write=True) as (_s, company, role):
        try:
            target = figures.parse_target(request.form.get("dso_target", ""))
        except errors.InvalidInput as exc:
            error = message_of(exc)
        else:
            company.settings = {**(company.settings or {}), "dso_target": str(target) if target is not None else None}
            flash(gettext("The DSO target is saved."))
            return redirect(url_for("pages.dashboard", realm_id=realm_id))
        on = today_for(company)
    data = figures.build(services().db, realm_id, on)
    return render_template("pages/dashboard.html", company=company, role=role, tab="dashboard", d=data,
                           charts=_charts(data), buckets=reports.AGING_BUCKETS, error=error,
                           typed=request.form.get("dso_target", "")), 400


def _charts(d: figures.Dashboard) -> dict[str, object]:
    """The SVG charts; those drawn from the mirror are kept while it does not change (pygal takes ~50 ms each)."""
    key = ("charts", d.version, str(get_locale()), d.dso_target)
    out = dict(figures.memo(key, lambda: _mirror_charts(d)))
    r = d.reminders
    out["reminders"] = charts.weekly_bars(
        [format_date(w[0], "d MMM") for w in r.weeks],
        [(gettext("Reminders sent"), [float(w[1]) for w in r.weeks]),
         (gettext("Followed by a payment"), [float(w[2]) for w in r.weeks])],
        lambda v: format_decimal(v, format="#,##0")) if r.sent else None
    return out


def _mirror_charts(d: figures.Dashboard) -> dict[str, object]:
    out: dict[str, object] = {"aging": {}, "cash": {}}
    for currency, buckets in d.aging.items():
        out["aging"][currency] = charts.aging(  # type: ignore[index]
            [(gettext(BUCKET_LABELS[b]) if b == "current" else BUCKET_LABELS[b], buckets[b]) for b in reports.AGING_BUCKETS],
            _money(currency), gettext("Open balance by days past due"))
    main = d.currency if any(d.currency in p.values for p in d.trend) else next(
        (c for p in d.trend for c in p.values), None)
    if main is not None:
        series: list[tuple[str, list[float | None]]] = [
            (gettext("DSO, %(days)s days", days=w), [_f(p.values.get(main, {}).get(w)) for p in d.trend])
            for w in figures.DSO_WINDOWS]
        if d.dso_target is not None:
            series.append((gettext("Target") + "*", [float(d.dso_target)] * len(d.trend)))
        out["trend"] = charts.dso_trend([format_date(p.on, "MMM yy") for p in d.trend], series, _days)
        out["trend_currency"] = main
    for currency, weeks in d.cash.items():
        out["cash"][currency] = charts.weekly_bars(  # type: ignore[index]
            [format_date(w.start, "d MMM") for w in weeks],
            [(gettext("Expected (weighted by probability)"), [float(w.expected) for w in weeks]),
             (gettext("Predicted to be paid"), [float(w.open_balance) for w in weeks])],
            _money(currency))
    return out


def _f(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def _days(value: float) -> str:
    return gettext("%(n)s days", n=format_decimal(value, format="#,##0.#"))


def _money(currency: str):  # type: ignore[no-untyped-def]
    locale = str(get_locale())
    return lambda value: numbers.format_compact_currency(value, currency, locale=locale, fraction_digits=1)
