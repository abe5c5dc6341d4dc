"""``/healthz`` for load balancers and operators: database, scheduler heartbeat, last run per company.

503 when the database is unreachable or no scheduler heartbeat is younger than ``STALE`` (a
deployment with ``serve --no-scheduler`` must run ``worker`` somewhere). A scheduler writes its
heartbeat when a tick starts and renews it about every minute while the tick works, so a long
tick is alive (a unit of work that hangs keeps it, as it keeps its leases; a tick stuck anywhere
else does not); with the embedded scheduler, that scheduler must also be running. The endpoint is public, so it
tells the world only counts (companies, last runs that failed, the oldest last run); the last run
of each company, by realm, is shown to a logged-in admin only — never a company name.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, jsonify
from flask_login import current_user
from sqlalchemy import select, text

from qbo_collector import clock
from qbo_collector.db import models

bp = Blueprint("health", __name__)
STALE = timedelta(minutes=3)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    services = current_app.config["QBO"]
    try:
        with services.db.reading() as s:
            s.execute(text("SELECT 1"))
            now = clock.now()
            seen = s.scalar(select(models.Worker.seen_at).where(models.Worker.stopped_at.is_(None))
                            .order_by(models.Worker.seen_at.desc()).limit(1))
            runs = s.execute(select(models.Company.realm_id, models.WorkLease.done_at, models.WorkLease.last_error)
                             .join(models.WorkLease, models.WorkLease.company_id == models.Company.id)
                             .where(models.WorkLease.kind == "run")).all()
    except Exception as exc:  # the reason goes to the operator's log, not to the world
        current_app.logger.warning("healthz: database unreachable: %s", type(exc).__name__)
        return jsonify(status="error", database="unreachable"), 503
    embedded = services.extras.get("scheduler")
    alive = seen is not None and now - seen < STALE and (embedded is None or bool(embedded.running))
    body = {
        "status": "ok" if alive else "degraded",
        "database": "ok",
        "scheduler": "alive" if alive else "not seen",
        "scheduler_seen_at": seen.isoformat() if seen else None,
        "runs": {"companies": len(runs), "failed": sum(1 for _r, _at, error in runs if error),
                 "oldest_at": min((at for _r, at, _e in runs if at), default=None)},
    }
    if body["runs"]["oldest_at"] is not None:
        body["runs"]["oldest_at"] = body["runs"]["oldest_at"].isoformat()
    if current_user.is_authenticated and current_user.is_admin:
        body["last_run"] = {realm: {"at": at.isoformat() if at else None, "error": bool(error)}
                            for realm, at, error in runs}
    return jsonify(body), 200 if alive else 503
