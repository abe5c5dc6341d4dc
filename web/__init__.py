"""The web door: settings pages, the OAuth callback and the webhooks, over the same functions as the CLI.

``create_app(settings=None, *, db=None)`` is the factory (flaskr style). Every page needs a
login except the endpoints in ``PUBLIC_ENDPOINTS`` (login, OAuth callback, webhooks, health,
static); every POST carries a CSRF token except the webhooks, which are signed instead. Behind
QBO_COLLECTOR_TRUSTED_PROXY_COUNT proxies, the client's address and scheme are read from the
``X-Forwarded-For``/``-Proto`` they add (ProxyFix); otherwise those headers are ignored.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, redirect, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from qbo_collector import config, logs
from qbo_collector.db import models
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database

log = logging.getLogger(__name__)
csrf = CSRFProtect()
login_manager = LoginManager()
PUBLIC_ENDPOINTS = {"auth.login", "connect.callback", "static", "health.healthz"}
PUBLIC_PREFIXES = ("webhooks.", "provider_webhooks.")
# Signed by their senders instead of CSRF; registered when present.
SIGNED_BLUEPRINTS = ("web.webhooks", "web.provider_webhooks")
# Pages of the settings app, registered when present.
PAGE_BLUEPRINTS = ("web.pages",)


@dataclass
class Services:
    """What the views need, built once per app and found at ``current_app.config["QBO"]``."""

    settings: config.Settings
    db: Database
    vault: Vault
    sync_requests: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


def create_app(settings: config.Settings | None = None, *, db: Database | None = None,
               test_config: dict[str, Any] | None = None) -> Flask:
    settings = settings or config.load()
    db = db or Database.from_settings(settings)
    secret = settings.secret_key()
    logs.secret(secret.decode())
    app = Flask(__name__)
    if settings.trusted_proxy_count:
        # Each trusted proxy appends the address it heard from; the client's is that many from the
        # right. Values left of it were written by the client and are never believed.
        n = settings.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=hashlib.sha256(b"qbo-collector/flask-session/" + secret).hexdigest(),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_url.startswith("https://"),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.public_url.startswith("https://"),
        WTF_CSRF_TIME_LIMIT=None,  # tokens are bound to the session, which expires on its own
        MAX_CONTENT_LENGTH=2 * 1024 * 1024,
    )
    if test_config:
        app.config.update(test_config)
    services = Services(settings=settings, db=db, vault=Vault(secret))
    app.config["QBO"] = services
    _sync_requests(services)

    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"

    from web import auth, connect, health

    app.register_blueprint(auth.bp)
    app.register_blueprint(connect.bp)
    app.register_blueprint(health.bp)
    for name in SIGNED_BLUEPRINTS + PAGE_BLUEPRINTS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        if name in SIGNED_BLUEPRINTS:
            csrf.exempt(module.bp)  # signed by the sender instead
        app.register_blueprint(module.bp)
        if hasattr(module, "init_app"):
            module.init_app(app)

    @app.before_request
    def _require_login():  # type: ignore[no-untyped-def]
        endpoint = request.endpoint or ""
        if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith(PUBLIC_PREFIXES):
            return None
        if not current_user.is_authenticated:
            if request.method != "GET" or request.path.startswith("/api/"):
                return ("Log in first.", 401)
            return redirect(url_for("auth.login", next=request.full_path if request.query_string else request.path))
        return None

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy",
                                    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
        return response

    return app


def _sync_requests(services: Services) -> None:
    """The webhook's debounced sync trigger, when the sync engine provides one."""
    try:
        from qbo_collector.sync import run as sync_run
    except ImportError:
        return
    factory = getattr(sync_run, "SyncRequests", None)
    if factory is not None:
        services.sync_requests = factory(services.settings, services.db, services.vault)


@login_manager.user_loader
def _load_user(user_id: str):  # type: ignore[no-untyped-def]
    from flask import current_app

    from web import auth

    services: Services = current_app.config["QBO"]
    with services.db.session() as s:
        return auth.load(s, user_id)
