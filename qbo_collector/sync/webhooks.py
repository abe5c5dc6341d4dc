"""Intuit's data-change webhooks: signature check and payload reading. Pure (no Flask, no database).

A notification is a hint, not the truth: it only tells us which realms to sync (CDC then
reads the changes). Both payloads are read:

    legacy       {"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [{"name", "id", "operation", "lastUpdated"}]}}]}
    CloudEvents  [{"specversion", "id", "type": "qbo.invoice.updated.v1", "intuitaccountid", "intuitentityid", "time", "data"}]
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from qbo_collector import errors

SIGNATURE_HEADER = "intuit-signature"


@dataclass(frozen=True, kw_only=True)
class Notification:
    realm_id: str
    entity: str | None = None
    entity_id: str | None = None
    operation: str | None = None


def verify(body: bytes, signature: str | None, verifier_token: str) -> bool:
    """base64(HMAC-SHA256(verifier token, raw body)) compared in constant time."""
    if not signature or not verifier_token:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, given)


def parse(body: bytes) -> list[Notification]:
    """Every (realm, entity, id, operation) the payload names; ``InvalidInput`` when it is neither format."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise errors.InvalidInput("The webhook body is not JSON.", field="body") from None
    if isinstance(payload, dict) and isinstance(payload.get("eventNotifications"), list):
        return _legacy(payload["eventNotifications"])
    if isinstance(payload, list):
        return _cloudevents(payload)
    if isinstance(payload, dict) and "specversion" in payload:
        return _cloudevents([payload])
    raise errors.InvalidInput("The webhook body is neither Intuit's legacy nor its CloudEvents format.", field="body")


def _legacy(items: list[Any]) -> list[Notification]:
    out: list[Notification] = []
    for item in items:
        if not isinstance(item, dict) or not item.get("realmId"):
            continue
        realm = str(item["realmId"])
        event = item.get("dataChangeEvent")
        entities = event.get("entities") if isinstance(event, dict) else None
        if not isinstance(entities, list) or not entities:
            out.append(Notification(realm_id=realm))
            continue
        for entity in entities:
            if isinstance(entity, dict):
                out.append(Notification(realm_id=realm, entity=_str(entity.get("name")), entity_id=_str(entity.get("id")),
                                        operation=_str(entity.get("operation"))))
    return out


def _cloudevents(items: list[Any]) -> list[Notification]:
    out: list[Notification] = []
    for item in items:
        if not isinstance(item, dict) or not item.get("intuitaccountid"):
            continue
        kind = str(item.get("type") or "")
        parts = kind.split(".")  # qbo.invoice.updated.v1
        entity = parts[1] if len(parts) >= 3 and parts[0] == "qbo" else None
        operation = parts[2] if len(parts) >= 3 and parts[0] == "qbo" else None
        out.append(Notification(realm_id=str(item["intuitaccountid"]), entity=entity,
                                entity_id=_str(item.get("intuitentityid")), operation=operation))
    return out


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def realms(notifications: list[Notification]) -> list[str]:
    """The realms named, each once, in order."""
    return list(dict.fromkeys(n.realm_id for n in notifications))
