"""Companies and their QuickBooks connection: list, connect, callback, reconnect, disconnect, sync now."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from qbo_collector import errors, users
from qbo_collector.db import models
from qbo_collector.sync import auth

bp = Blueprint("connect", __name__)


def _services():  # type: ignore[no-untyped-def]
    return current_app.config["QBO"]


def company_for(s, realm_id: str, *, write: bool = False) -> tuple[models.Company, str]:  # type: ignore[no-untyped-def]
    """The company if the current user may see it (404 otherwise: its existence is not revealed)."""
    company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
    role = users.role_in(s, int(current_user.get_id()), company) if company else None
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
        for company in users.visible_companies(s, int(current_user.get_id())):
            calls_today = s.scalar(select(func.count()).select_from(models.Activity).where(
                models.Activity.company_id == company.id, models.Activity.kind == "sync")) or 0
            rows.append({"company": company, "role": users.role_in(s, int(current_user.get_id()), company),
                         "syncs": calls_today})
    return render_template("companies.html", rows=rows)


@bp.post("/connect/start")
def start():  # type: ignore[no-untyped-def]
    services = _services()
    try:
        url, _state = auth.begin(services.settings, services.db, origin="web", user_id=int(current_user.get_id()))
    except errors.QboCollectorError as exc:
        current_app.logger.warning("connect start failed: %s", exc.message)
        flash(exc.message, "error")
        return redirect(url_for("connect.companies"))
    return redirect(url, code=303)


@bp.get("/connect/callback")
def callback():  # type: ignore[no-untyped-def]
    services = _services()
    user_id = int(current_user.get_id()) if current_user.is_authenticated else None
    try:
        company = auth.complete(services.settings, services.db, services.vault,
                                state=request.args.get("state"), code=request.args.get("code"),
                                realm_id=request.args.get("realmId"), error=request.args.get("error"),
                                user_id=user_id)
    except errors.InvalidInput as exc:
        return render_template("message.html", title="Not connected", message=exc.message), 400
    except errors.QboCollectorError as exc:
        current_app.logger.warning("connect callback failed: %s", exc.message)
        return render_template("message.html", title="Not connected", message=exc.message), 502
    if user_id is None:
        return render_template("message.html", title="Connected",
                               message=f"“{company.name}” is connected. You can close this window.")
    flash(f"“{company.name}” is connected to qbo-collector.")
    return redirect(url_for("connect.companies"))


@bp.post("/companies/<realm_id>/disconnect")
def disconnect(realm_id: str):  # type: ignore[no-untyped-def]
    services = _services()
    with services.db.session() as s:
        company, _role = company_for(s, realm_id, write=True)
        name = company.name
    auth.disconnect(services.settings, services.db, services.vault, realm_id)
    flash(f"“{name}” is disconnected; its history is kept.")
    return redirect(url_for("connect.companies"))


@bp.post("/companies/<realm_id>/sync")
def sync_now(realm_id: str):  # type: ignore[no-untyped-def]
    services = _services()
    with services.db.session() as s:
        company, _role = company_for(s, realm_id, write=True)
        name = company.name
    if services.sync_requests is None:
        flash("The sync engine is not available in this installation.", "error")
    else:
        services.sync_requests.request(realm_id)
        flash(f"A sync of “{name}” is on its way.")
    return redirect(url_for("connect.companies"))
