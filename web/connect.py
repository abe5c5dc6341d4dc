"""Companies and their QuickBooks connection: list, connect, callback, reconnect, disconnect, sync now."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select

from qbo_collector import clock, dashboard, errors, users
from qbo_collector.db import models
from qbo_collector.sync import auth

bp = Blueprint("connect", __name__)


def _services():  # type: ignore[no-untyped-def]
    return current_app.config["QBO"]


def company_for(s, realm_id: str, *, write: bool = False) -> tuple[models.Company, str]:  # type: ignore[no-untyped-def]
    """The company if the current user may see it (404 otherwise: its existence is not revealed)."""
    company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
    role = users.role_in(s, current_user.id, company) if company else None
    if company is None or role is None:
        abort(404)
    if write and role != "owner":
        abort(403)
    return company, role


@bp.get("/")
def index():  # type: ignore[no-untyped-def]
    return redirect(url_for("connect.companies"))


@bp.get("/companies")
def companies():  # type: ignore[no-untyped-def]
    services = _services()
    with services.db.session() as s:
        rows = []
        companies = users.visible_companies(s, current_user.id)
        calls = dashboard.api_calls_today(s, [c.id for c in companies], clock.now())
        for company in companies:
            rows.append({"company": company, "role": users.role_in(s, current_user.id, company),
                         "api_calls": calls.get(company.id, 0)})
    return render_template("companies.html", rows=rows)


@bp.post("/connect/start")
def start():  # type: ignore[no-untyped-def]
    services = _services()
    try:
        url, _state = auth.begin(services.settings, services.db, origin="web", user_id=current_user.id)
    except errors.QboCollectorError as exc:
        current_app.logger.warning("connect start failed: %s", exc.message)
        flash(gettext(exc.message), "error")
        return redirect(url_for("connect.companies"))
    return redirect(url, code=303)


@bp.get("/connect/callback")
def callback():  # type: ignore[no-untyped-def]
    services = _services()
    user_id = current_user.id if current_user.is_authenticated else None
    try:
        company = auth.complete(services.settings, services.db, services.vault,
                                state=request.args.get("state"), code=request.args.get("code"),
                                realm_id=request.args.get("realmId"), error=request.args.get("error"),
                                user_id=user_id)
    except errors.InvalidInput as exc:
        return render_template("message.html", title=gettext("Not connected"), message=gettext(exc.message)), 400
    except errors.QboCollectorError as exc:
        current_app.logger.warning("connect callback failed: %s", exc.message)
        return render_template("message.html", title=gettext("Not connected"), message=gettext(exc.message)), 502
    if user_id is None:
        return render_template("message.html", title=gettext("Connected"),
                               message=gettext("“%(name)s” is connected. You can close this window.", name=company.name))
    flash(gettext("“%(name)s” is connected to qbo-collector.", name=company.name))
    return redirect(url_for("connect.companies"))


@bp.post("/companies/<realm_id>/disconnect")
def disconnect(realm_id: str):  # type: ignore[no-untyped-def]
    services = _services()
    with services.db.session() as s:
        company, _role = company_for(s, realm_id, write=True)
        name = company.name
    auth.disconnect(services.settings, services.db, services.vault, realm_id)
    flash(gettext("“%(name)s” is disconnected; its history is kept.", name=name))
    return redirect(url_for("connect.companies"))


@bp.post("/companies/<realm_id>/sync")
def sync_now(realm_id: str):  # type: ignore[no-untyped-def]
    services = _services()
    with services.db.session() as s:
        company, _role = company_for(s, realm_id, write=True)
        name = company.name
    if services.sync_requests is None:
        flash(gettext("The sync engine is not available in this installation."), "error")
    else:
        services.sync_requests.request(realm_id)
        flash(gettext("A sync of “%(name)s” is on its way.", name=name))
    return redirect(url_for("connect.companies"))
