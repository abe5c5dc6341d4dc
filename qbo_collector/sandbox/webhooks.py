"""Intuit's data-change webhooks: debounced, signed, sent from a background thread.

Changes arriving within ``debounce`` seconds of the first pending one go out in one POST
(as Intuit batches them). The signature is ``intuit-signature`` =
base64(HMAC-SHA256(verifier token, raw body)). Bodies: the legacy
``{"eventNotifications": [...]}`` or the CloudEvents array.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import requests

OPERATION_VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided",
                   "Emailed": "emailed", "Merge": "merged"}


@dataclass(frozen=True)
class Change:
    realm: str
    entity: str
    id: str
    operation: str
    last_updated: str


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    signature: str
    status: int | None        # None: connection failed
    attempt: int


def sign(verifier_token: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()).decode()


def legacy_body(changes: list[Change]) -> bytes:
    by_realm: dict[str, list[dict[str, str]]] = {}
    for c in changes:
        by_realm.setdefault(c.realm, []).append(
            {"name": c.entity, "id": c.id, "operation": c.operation, "lastUpdated": c.last_updated})
    return json.dumps({"eventNotifications": [
        {"realmId": realm, "dataChangeEvent": {"entities": entities}} for realm, entities in by_realm.items()
    ]}).encode()


def cloudevents_body(changes: list[Change]) -> bytes:
    return json.dumps([{
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "intuit.com",
        "type": f"qbo.{c.entity.lower()}.{OPERATION_VERBS.get(c.operation, c.operation.lower())}.v1",
        "time": c.last_updated,
        "intuitaccountid": c.realm,
        "intuitentityid": c.id,
        "datacontenttype": "application/json",
        "data": {},
    } for c in changes]).encode()


class WebhookSender:
    """Queues changes and POSTs them; ``settings()`` returns (url, verifier token, format) at send time."""

    def __init__(self, settings: Callable[[], tuple[str | None, str, str]], *, debounce: float = 0.2,
                 retries: int = 2, retry_delay: float = 0.3, timeout: float = 3.0) -> None:
        self._settings = settings
        self.debounce, self.retries, self.retry_delay, self.timeout = debounce, retries, retry_delay, timeout
        self._pending: list[Change] = []
        self._in_flight = 0
        self._cond = threading.Condition()
        self._stopped = False
        self.deliveries: list[Delivery] = []
        self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
        self._thread.start()

    def notify(self, realm: str, entity: str, id_: str, operation: str, last_updated: str) -> None:
        url, _, _ = self._settings()
        if not url:
            return
        with self._cond:
            self._pending.append(Change(realm, entity, id_, operation, last_updated))
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued change has been delivered (or given up on)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
            time.sleep(self.debounce)
            with self._cond:
                batch, self._pending = self._pending, []
                self._in_flight += 1
            try:
                self._send(batch)
            except Exception:   # a broken receiver must never kill the sender thread
                pass
            finally:
                with self._cond:
                    self._in_flight -= 1
                    self._cond.notify_all()

    def _send(self, batch: list[Change]) -> None:
        url, token, fmt = self._settings()
        if not url or not batch:
            return
        body = cloudevents_body(batch) if fmt == "cloudevents" else legacy_body(batch)
        signature = sign(token or "", body)
        headers: dict[str, Any] = {"Content-Type": "application/json", "intuit-signature": signature,
                                   "User-Agent": "intuit-sandbox-webhooks"}
        for attempt in range(1, self.retries + 2):
            status: int | None
            try:
                status = requests.post(url, data=body, headers=headers, timeout=self.timeout).status_code
            except requests.RequestException:
                status = None
            self.deliveries.append(Delivery(url, body, signature, status, attempt))
            if status is not None and 200 <= status < 300:
                return
            time.sleep(self.retry_delay)
