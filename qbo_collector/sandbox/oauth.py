"""Intuit's OAuth 2.0 server, as the unmodified ``intuitlib.AuthClient`` sees it.

Discovery document, consent page (or auto-approve), token endpoint (authorization_code,
refresh_token with rotation and a grace period for the previous refresh token) and
revocation. Tokens are opaque random strings; lifetimes run on the sandbox clock.
"""

from __future__ import annotations

import base64
import binascii
import html
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import flask

from qbo_collector.sandbox import common

if TYPE_CHECKING:
    from qbo_collector.sandbox.server import Sandbox

ACCESS_TOKEN_SECONDS = 3600
REFRESH_ROLLING_SECONDS = 100 * 24 * 3600
REFRESH_HARD_SECONDS = 5 * 365 * 24 * 3600
CODE_SECONDS = 300
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
DISCOVERY_PATH = "/.well-known/openid-configuration"


@dataclass
class Grant:
    """One connection of the app to one realm; revoking it kills every token it issued."""

    realm: str
    client_id: str
    scope: str
    created: datetime
    revoked: bool = False


@dataclass
class AccessToken:
    grant: Grant
    expires: datetime


@dataclass
class RefreshToken:
    grant: Grant
    expires: datetime
    superseded: datetime | None = None   # when a newer refresh token replaced it


@dataclass
class AuthCode:
    realm: str
    client_id: str
    redirect_uri: str
    scope: str
    expires: datetime
    used: bool = False


@dataclass
class OAuthState:
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    pending: dict[str, dict[str, str]] = field(default_factory=dict)   # consent pages shown
    connected: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class TokenProblem(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class OAuthServer:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.state = OAuthState()

    # --- used by the API ---------------------------------------------------------

    def check_access_token(self, token: str, realm: str) -> None:
        """Raise ``TokenProblem`` unless ``token`` is a live access token for ``realm``."""
        with self.state.lock:
            record = self.state.access.get(token)
            if record is None or record.grant.revoked:
                raise TokenProblem(f"Token revoked or invalid: {token[:8]}…")
            if self.sb.clock.now() >= record.expires:
                raise TokenProblem(f"Token expired: {token[:8]}…")
            if record.grant.realm != str(realm):
                raise PermissionError(realm)

    def issue_tokens_for(self, realm: str, *, client_id: str | None = None) -> dict[str, Any]:
        """Connect without the browser dance (benchmarks, demo): the token response body."""
        grant = Grant(realm=str(realm), client_id=client_id or self.sb.client_id,
                      scope="com.intuit.quickbooks.accounting", created=self.sb.clock.now())
        with self.state.lock:
            self.state.connected.add(grant.realm)
            return self._issue(grant, hard=True)

    def _issue(self, grant: Grant, *, hard: bool) -> dict[str, Any]:
        now = self.sb.clock.now()
        access = secrets.token_urlsafe(32)
        refresh = "RT1-" + secrets.token_urlsafe(24)
        self.state.access[access] = AccessToken(grant, now + timedelta(seconds=ACCESS_TOKEN_SECONDS))
        hard_end = grant.created + timedelta(seconds=REFRESH_HARD_SECONDS)
        rolling = min(now + timedelta(seconds=REFRESH_ROLLING_SECONDS), hard_end)
        self.state.refresh[refresh] = RefreshToken(grant, rolling)
        body: dict[str, Any] = {
            "token_type": "bearer", "access_token": access, "refresh_token": refresh,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "x_refresh_token_expires_in": int((rolling - now).total_seconds()),
        }
        if hard:
            body["x_refresh_token_hard_expires_in"] = int((hard_end - now).total_seconds())
        return body

    # --- HTTP ----------------------------------------------------------------------

    def blueprint(self) -> flask.Blueprint:
        bp = flask.Blueprint("intuit_oauth", __name__)
        bp.add_url_rule(DISCOVERY_PATH, "discovery", self.discovery)
        bp.add_url_rule("/connect/oauth2", "authorize", self.authorize, methods=["GET"])
        bp.add_url_rule("/connect/oauth2/decision", "decision", self.decision, methods=["POST"])
        bp.add_url_rule("/oauth2/v1/tokens/bearer", "token", self.token, methods=["POST"])
        bp.add_url_rule("/oauth2/v1/tokens/revoke", "revoke", self.revoke, methods=["POST"])
        bp.add_url_rule("/oauth2/v1/openid_connect/keys", "jwks", lambda: flask.jsonify({"keys": []}))
        bp.add_url_rule("/v1/openid_connect/userinfo", "userinfo", self.userinfo)
        return bp

    def _log(self, endpoint: str, status: int, realm: str | None = None) -> None:
        self.sb.log.record(common.LoggedRequest(
            service="oauth", endpoint=endpoint, method=flask.request.method, path=flask.request.path,
            status=status, realm=realm, at=self.sb.clock.now()))

    def discovery(self) -> flask.Response:
        base = self.sb.url
        doc = {
            "issuer": base,
            "authorization_endpoint": f"{base}/connect/oauth2",
            "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
            "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{base}/oauth2/v1/tokens/revoke",
            "jwks_uri": f"{base}/oauth2/v1/openid_connect/keys",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone",
                                 "com.intuit.quickbooks.accounting", "com.intuit.quickbooks.payment"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        }
        self._log("discovery", 200)
        return flask.jsonify(doc)

    def _redirect_allowed(self, uri: str) -> bool:
        if self.sb.redirect_uris is not None:
            return uri in self.sb.redirect_uris
        parts = urlsplit(uri)
        return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS

    def _error_page(self, status: int, message: str) -> flask.Response:
        self._log("authorize", status)
        page = f"<!doctype html><title>Intuit sandbox: error</title><h1>Something went wrong</h1><p>{html.escape(message)}</p>"
        return flask.Response(page, status=status, mimetype="text/html")

    @staticmethod
    def _redirect(uri: str, params: dict[str, str]) -> flask.Response:
        sep = "&" if "?" in uri else "?"
        return flask.redirect(f"{uri}{sep}{urlencode(params)}", code=302)

    def authorize(self) -> flask.Response:
        args = flask.request.args
        client_id, redirect_uri = args.get("client_id", ""), args.get("redirect_uri", "")
        state = args.get("state", "")
        if client_id != self.sb.client_id:
            return self._error_page(400, "The client_id is not registered with this sandbox.")
        if not self._redirect_allowed(redirect_uri):
            return self._error_page(400, "The redirect_uri is not registered for this app.")
        if args.get("response_type") != "code":
            self._log("authorize", 302)
            return self._redirect(redirect_uri, {"error": "unsupported_response_type", "state": state})
        scope = args.get("scope", "")
        if "com.intuit.quickbooks.accounting" not in scope.split() and "com.intuit.quickbooks.payment" not in scope.split():
            self._log("authorize", 302)
            return self._redirect(redirect_uri, {"error": "invalid_scope", "state": state})
        realms = list(self.sb.intuit.companies)
        if not realms:
            return self._error_page(400, "This sandbox has no company to connect.")
        if self.sb.auto_approve:
            realm = self._auto_realm(realms)
            self._log("authorize", 302, realm)
            return self._approve(realm, client_id, redirect_uri, scope, state)
        ticket = secrets.token_urlsafe(16)
        with self.state.lock:
            self.state.pending[ticket] = {"client_id": client_id, "redirect_uri": redirect_uri,
                                          "scope": scope, "state": state}
        options = "".join(
            f'<option value="{html.escape(r)}">{html.escape(c.name)} ({html.escape(c.country)}, {html.escape(c.currency)}) — {html.escape(r)}</option>'
            for r, c in self.sb.intuit.companies.items())
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Connect to QuickBooks (sandbox)</title></head>
<body>
<h1>Connect your QuickBooks company</h1>
<p>An app (client id <code>{html.escape(client_id)}</code>) asks to access your accounting data
(<code>{html.escape(scope)}</code>).</p>
<form method="post" action="{self.sb.url}/connect/oauth2/decision">
<input type="hidden" name="ticket" value="{ticket}">
<label for="realm">Company</label>
<select id="realm" name="realm">{options}</select>
<button type="submit" name="decision" value="approve">Connect</button>
<button type="submit" name="decision" value="deny">Cancel</button>
</form>
</body></html>"""
        self._log("authorize", 200)
        return flask.Response(page, mimetype="text/html")

    def _auto_realm(self, realms: list[str]) -> str:
        if self.sb.next_realm and self.sb.next_realm in self.sb.intuit.companies:
            return self.sb.next_realm
        with self.state.lock:
            for realm in realms:
                if realm not in self.state.connected:
                    return realm
        return realms[0]

    def decision(self) -> flask.Response:
        form = flask.request.form
        with self.state.lock:
            pending = self.state.pending.pop(form.get("ticket", ""), None)
        if pending is None:
            return self._error_page(400, "This consent page has expired; start again from the app.")
        if form.get("decision") != "approve":
            self._log("authorize", 302)
            return self._redirect(pending["redirect_uri"], {"error": "access_denied", "state": pending["state"]})
        realm = form.get("realm", "")
        if realm not in self.sb.intuit.companies:
            return self._error_page(400, "Pick one of the listed companies.")
        self._log("authorize", 302, realm)
        return self._approve(realm, pending["client_id"], pending["redirect_uri"], pending["scope"], pending["state"])

    def _approve(self, realm: str, client_id: str, redirect_uri: str, scope: str, state: str) -> flask.Response:
        code = "AB1-" + secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.codes[code] = AuthCode(realm=realm, client_id=client_id, redirect_uri=redirect_uri,
                                              scope=scope, expires=self.sb.clock.now() + timedelta(seconds=CODE_SECONDS))
            self.state.connected.add(realm)
        return self._redirect(redirect_uri, {"code": code, "state": state, "realmId": realm})

    def _client(self) -> str | None:
        header = flask.request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
        else:
            client_id = flask.request.form.get("client_id", "")
            secret = flask.request.form.get("client_secret", "")
        if client_id == self.sb.client_id and secrets.compare_digest(secret, self.sb.client_secret):
            return client_id
        return None

    def _token_error(self, status: int, error: str, realm: str | None = None) -> flask.Response:
        self._log("token", status, realm)
        return flask.Response(f'{{"error":"{error}"}}', status=status, mimetype="application/json",
                              headers={"intuit_tid": secrets.token_hex(8)})

    def token(self) -> flask.Response:
        fate = self.sb.oauth_faults.draw()
        if fate == "timeout":
            time.sleep(self.sb.oauth_faults.timeout_seconds)
        elif fate in ("500", "429"):
            return self._token_error(int(fate), "server_error" if fate == "500" else "too_many_requests")
        client_id = self._client()
        if client_id is None:
            return self._token_error(401, "invalid_client")
        form = flask.request.form
        grant_type = form.get("grant_type")
        hard = flask.request.headers.get("x-include-refresh-token-hard-expires-in", "").lower() == "true"
        now = self.sb.clock.now()
        with self.state.lock:
            if grant_type == "authorization_code":
                code = self.state.codes.get(form.get("code", ""))
                if (code is None or code.used or code.client_id != client_id or now >= code.expires
                        or code.redirect_uri != form.get("redirect_uri")):
                    return self._token_error(400, "invalid_grant")
                code.used = True
                grant = Grant(realm=code.realm, client_id=client_id, scope=code.scope, created=now)
                body = self._issue(grant, hard=hard)
            elif grant_type == "refresh_token":
                record = self.state.refresh.get(form.get("refresh_token", ""))
                if record is None or record.grant.revoked or record.grant.client_id != client_id or now >= record.expires:
                    return self._token_error(400, "invalid_grant")
                grace = timedelta(seconds=self.sb.refresh_grace_seconds)
                if record.superseded is not None and now >= record.superseded + grace:
                    return self._token_error(400, "invalid_grant")
                if record.superseded is None:
                    record.superseded = now
                grant = record.grant
                body = self._issue(grant, hard=hard)
            else:
                return self._token_error(400, "unsupported_grant_type")
        self._log("token", 200, grant.realm)
        return flask.Response(flask.json.dumps(body), mimetype="application/json")

    def revoke(self) -> flask.Response:
        if self._client() is None:
            self._log("revoke", 401)
            return flask.Response('{"error":"invalid_client"}', status=401, mimetype="application/json")
        payload = flask.request.get_json(silent=True) or {}
        token = payload.get("token") or flask.request.form.get("token", "")
        with self.state.lock:
            record: Any = self.state.refresh.get(token) or self.state.access.get(token)
            if record is not None:
                record.grant.revoked = True
                self.state.connected.discard(record.grant.realm)
        self._log("revoke", 200, record.grant.realm if record else None)
        return flask.Response(b"", status=200)

    def userinfo(self) -> flask.Response:
        token = flask.request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        record = self.state.access.get(token)
        if record is None or record.grant.revoked or self.sb.clock.now() >= record.expires:
            return flask.Response('{"error":"invalid_token"}', status=401, mimetype="application/json")
        company = self.sb.intuit.companies.get(record.grant.realm)
        return flask.jsonify({"sub": secrets.token_hex(8), "email": company.email if company else "",
                              "emailVerified": True, "givenName": "Sandbox", "familyName": "Owner"})
