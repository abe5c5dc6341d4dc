"""POST /webhooks/intuit: Intuit's data-change notifications → a debounced incremental sync.

Answers well within Intuit's 3 s: it verifies the signature, reads which realms changed and
hands them to ``sync_requests`` (which syncs in the background); it never calls QuickBooks.
An invalid signature is 401 and logged; realms we do not know are logged and ignored.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request
from sqlalchemy import select

from qbo_collector import errors
from qbo_collector.db import models
from qbo_collector.sync import webhooks

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")


@bp.post("/intuit")
def intuit():  # type: ignore[no-untyped-def]
    services = current_app.config["QBO"]
    body = request.get_data(cache=False)
    token = services.settings.intuit_webhook_verifier_token or ""
    if not token:
        log.error("Intuit webhook refused: INTUIT_WEBHOOK_VERIFIER_TOKEN is not set")
        return {"error": "webhook verification is not configured"}, 401
    if not webhooks.verify(body, request.headers.get(webhooks.SIGNATURE_HEADER), token):
        log.warning("Intuit webhook refused: invalid intuit-signature from %s (%d bytes)",
                    request.remote_addr, len(body))
        return {"error": "invalid signature"}, 401
    try:
        notifications = webhooks.parse(body)
    except errors.InvalidInput as exc:
        log.warning("Intuit webhook ignored: %s", exc.message)
        return {"error": exc.message}, 400
    named = webhooks.realms(notifications)
    with services.db.session() as s:
        known = set(s.scalars(select(models.Company.realm_id).where(
            models.Company.realm_id.in_(named), models.Company.status == models.CompanyStatus.connected)))
    scheduled = []
    for realm in named:
        if realm not in known:
            log.warning("Intuit webhook names realm %s, which is not a connected company; ignored", realm)
            continue
        if services.sync_requests is not None:
            services.sync_requests.request(realm)
        scheduled.append(realm)
    log.info("Intuit webhook: %d notifications, sync scheduled for %s", len(notifications), scheduled or "none")
    return {"scheduled": scheduled}, 200
