"""Connect a sandbox company through the real OAuth flow (authorize → redirect → callback → tokens)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import requests

from qbo_collector import config
from qbo_collector.db import models
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database
from qbo_collector.sync import auth


def sandbox_settings(settings_factory, sandbox, **overrides):  # type: ignore[no-untyped-def]
    values = dict(
        intuit_client_id=sandbox.client_id,
        intuit_client_secret=sandbox.client_secret,
        intuit_environment=sandbox.discovery_url,
        intuit_api_base_url=sandbox.api_base_url,
        intuit_redirect_uri="http://127.0.0.1:8765/connect/callback",
        intuit_webhook_verifier_token=getattr(sandbox, "webhook_verifier_token", None) or "verifier-token-for-tests",
    )
    values.update(overrides)
    return settings_factory(**values)


def authorize(settings: config.Settings, db: Database, *, origin: str = "cli", user_id: int | None = None,
              realm: str | None = None, sandbox=None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Start the flow and follow the sandbox's auto-approve redirect; returns the callback's query."""
    if sandbox is not None and realm is not None:
        sandbox.next_realm = realm
    url, _state = auth.begin(settings, db, origin=origin, user_id=user_id)
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code in (302, 303), response.text[:500]
    location = response.headers["Location"]
    assert location.startswith(settings.redirect_uri), location
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def connect(settings: config.Settings, db: Database, vault: Vault, *, realm: str | None = None,
            sandbox=None, user_id: int | None = None) -> models.Company:  # type: ignore[no-untyped-def]
    query = authorize(settings, db, origin="web" if user_id else "cli", user_id=user_id, realm=realm, sandbox=sandbox)
    return auth.complete(settings, db, vault, state=query.get("state"), code=query.get("code"),
                         realm_id=query.get("realmId"), error=query.get("error"), user_id=user_id)
