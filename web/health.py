"""``/healthz``: database reachable (more checks join as the scheduler lands)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    services = current_app.config["QBO"]
    try:
        with services.db.session() as s:
            s.execute(text("SELECT 1"))
    except Exception as exc:  # the reason goes to the operator, not the world
        current_app.logger.warning("healthz: database unreachable: %s", type(exc).__name__)
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
