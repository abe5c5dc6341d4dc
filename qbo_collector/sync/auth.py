"""Connecting a QuickBooks company: authorization URL, callback, disconnect.

The web page and ``qbo-collector connect`` both call ``begin`` and ``complete``; a company is
stored only when everything succeeded (tokens exchanged, CompanyInfo read), in one transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets as pysecrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar
from urllib.parse import urlparse

import email_validator
import requests
import tenacity
from intuitlib.client import AuthClient
from intuitlib.config import DISCOVERY_URL as DISCOVERY_URLS
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks import exceptions as qb_exceptions
from sqlalchemy import select

from qbo_collector import config, errors, logs
from qbo_collector.db import models
from qbo_collector.db.secrets import Vault
from qbo_collector.db.session import Database

log = logging.getLogger(__name__)
T = TypeVar("T")

MINOR_VERSION = 75
STATE_TTL = timedelta(minutes=15)
REALM_ID = re.compile(r"[0-9]{1,32}")  # QuickBooks company ids are digits (company.realm_id is String(32))
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
# QBO has no time-zone field we can rely on; a country's main zone is the starting point and
# the owner corrects it on the settings page.
COUNTRY_TIMEZONES = {
    "US": "America/New_York", "CA": "America/Toronto", "FR": "Europe/Paris", "GB": "Europe/London",
    "UK": "Europe/London", "AU": "Australia/Sydney", "NZ": "Pacific/Auckland", "IN": "Asia/Kolkata",
    "BE": "Europe/Brussels", "CH": "Europe/Zurich", "DE": "Europe/Berlin", "ES": "Europe/Madrid",
    "IE": "Europe/Dublin", "JP": "Asia/Tokyo", "MX": "America/Mexico_City", "ZA": "Africa/Johannesburg",
}
COUNTRY_CODES = {"USA": "US", "UNITED STATES": "US", "CANADA": "CA", "FRANCE": "FR", "UNITED KINGDOM": "GB",
                 "AUSTRALIA": "AU", "NEW ZEALAND": "NZ", "INDIA": "IN"}


def is_loopback(url: str) -> bool:
    return (urlparse(url).hostname or "") in LOOPBACK_HOSTS


def allow_loopback_http(settings: config.Settings) -> None:
    """requests-oauthlib refuses http://; allow it only when every Intuit URL is on loopback (the sandbox)."""
    urls = [u for u in (settings.intuit_api_base_url, settings.intuit_environment) if u and "://" in u]
    if urls and all(is_loopback(u) and u.startswith("http://") for u in urls):
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


@contextlib.contextmanager
def map_intuit_errors(action: str) -> Iterator[None]:
    """Translate intuit-oauth / python-quickbooks / network errors into our tree, once."""

    try:
        yield
    except AuthClientError as exc:
        body = (exc.content or b"").decode("utf-8", "replace") if isinstance(exc.content, bytes) else str(exc.content)
        if exc.status_code in (400, 401) and "invalid_grant" in body:
            raise errors.ReconnectNeeded(f"Intuit refused the grant while trying to {action}: the company must be "
                                         "reconnected.", intuit_tid=exc.intuit_tid) from None
        if exc.status_code in (400, 401):
            raise errors.PermanentFailure(f"Intuit refused to {action} (HTTP {exc.status_code}). Check "
                                          "INTUIT_CLIENT_ID, INTUIT_CLIENT_SECRET and INTUIT_REDIRECT_URI.",
                                          code=exc.status_code) from None
        raise errors.TransientFailure(f"Intuit could not {action} right now (HTTP {exc.status_code}); "
                                      "try again in a minute.") from None
    except qb_exceptions.AuthorizationException:
        raise errors.ReconnectNeeded(f"QuickBooks refused the access token while trying to {action}.") from None
    except qb_exceptions.QuickbooksException as exc:
        raise errors.PermanentFailure(f"QuickBooks answered with an error while trying to {action}: "
                                      f"{exc.message} (code {exc.error_code}).", code=exc.error_code) from None
    except requests.RequestException as exc:
        raise errors.TransientFailure(f"Could not reach Intuit to {action}: {type(exc).__name__}.") from None


DISCOVERY_TTL = 3600.0  # seconds a process keeps Intuit's discovery document


class _DiscoveryCache:
    """Intuit's OpenID discovery document, per URL, kept for ``DISCOVERY_TTL`` in this process.

    ``AuthClient`` fetches it in its constructor, and one is built for every run of every company
    and every token refresh: without this, a worker serving 1,000 companies would read the same
    document thousands of times a day, and a slow discovery endpoint would slow every run. Only a
    200 answer is kept; a failure is fetched again next time.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._docs: dict[str, tuple[float, bytes, str | None]] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, url: str, fetch: Callable[[], requests.Response]) -> requests.Response:
        with self._lock:
            kept = self._docs.get(url)
        if kept is not None and self.clock() - kept[0] < DISCOVERY_TTL:
            response = requests.Response()
            response.status_code, response._content, response.url = 200, kept[1], url
            response.encoding = kept[2]
            response.headers["Content-Type"] = "application/json"
            return response
        response = fetch()
        self.fetches += 1
        if response.status_code == 200:
            with self._lock:
                self._docs[url] = (self.clock(), response.content, response.encoding)
        return response


DISCOVERY = _DiscoveryCache(time.monotonic)


def discovery_url(environment: str) -> str:
    """The URL ``intuitlib`` reads the discovery document from for ``INTUIT_ENVIRONMENT``."""
    if environment.lower() in ("production", "prod"):
        return str(DISCOVERY_URLS["production"])
    if environment.lower() in ("sandbox", "sand"):
        return str(DISCOVERY_URLS["sandbox"])
    return environment


HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"


class CachingAuthClient(AuthClient):  # type: ignore[misc]
    """``intuitlib``'s AuthClient, unchanged except that its constructor's GET of the discovery
    document goes through ``DISCOVERY``, and that its token requests ask for the refresh token's
    hard expiry (Intuit's 5-year cap, answered only to ``HARD_EXPIRY_HEADER: true``; intuitlib
    sets the answer's ``x_refresh_token_hard_expires_in`` on the client). The client is a
    ``requests.Session``; every other request passes straight through."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if method.upper() == "GET" and url == discovery_url(getattr(self, "environment", None) or ""):
            return DISCOVERY.get(url, lambda: super(CachingAuthClient, self).request(method, url, *args, **kwargs))
        if method.upper() == "POST" and url == getattr(self, "token_endpoint", None):
            kwargs["headers"] = {**(kwargs.get("headers") or {}), HARD_EXPIRY_HEADER: "true"}
        return super().request(method, url, *args, **kwargs)  # type: ignore[no-any-return]


def new_auth_client(settings: config.Settings, *, access_token: str | None = None,
                    refresh_token: str | None = None, realm_id: str | None = None) -> AuthClient:
    settings.require("INTUIT_CLIENT_ID", "INTUIT_CLIENT_SECRET")
    allow_loopback_http(settings)
    logs.secret(settings.intuit_client_secret)
    logs.secret(access_token)
    logs.secret(refresh_token)
    with map_intuit_errors("read the OpenID discovery document"):
        return CachingAuthClient(settings.intuit_client_id, settings.intuit_client_secret, settings.redirect_uri,
                                 settings.intuit_environment, access_token=access_token,
                                 refresh_token=refresh_token, realm_id=realm_id)


def quickbooks_client(settings: config.Settings, auth_client: AuthClient, realm_id: str) -> QuickBooks:
    """A python-quickbooks client on the configured base URL. Amounts parse as Decimal, never float."""
    qb = QuickBooks(auth_client=auth_client, refresh_token=auth_client.refresh_token, company_id=realm_id,
                    minorversion=MINOR_VERSION, use_decimal=True)
    if settings.intuit_api_base_url:
        # api_url is a read-only property choosing between these two; set both.
        qb.api_url_v3 = settings.intuit_api_base_url
        qb.sandbox_api_url_v3 = settings.intuit_api_base_url
    return qb


def begin(settings: config.Settings, db: Database, *, origin: str, user_id: int | None = None) -> tuple[str, str]:
    """Start an authorization: returns (authorization URL, state). The state is single-use."""
    client = new_auth_client(settings)
    state = pysecrets.token_urlsafe(32)
    with db.session() as s:
        s.add(models.OAuthState(state=state, origin=origin, user_id=user_id))
    return client.get_authorization_url([Scopes.ACCOUNTING], state_token=state), state


def _consume_state(db: Database, state: str | None, *, user_id: int | None) -> None:
    if not state:
        raise errors.InvalidInput("The authorization came back without its state; start again from "
                                  "“Connect to QuickBooks”.", field="state")
    now = datetime.now(timezone.utc)
    with db.session() as s:
        row = s.get(models.OAuthState, state, with_for_update=True)
        if row is None or row.used_at is not None or now - row.created_at > STATE_TTL:
            log.warning("oauth callback refused: unknown, used or expired state")
            raise errors.InvalidInput("This authorization link is unknown, expired or already used; start "
                                      "again from “Connect to QuickBooks”.", field="state")
        if row.origin == "web" and row.user_id != user_id:
            log.warning("oauth callback refused: state belongs to another user")
            raise errors.InvalidInput("This authorization was started by another user.", field="state")
        row.used_at = now


def complete(settings: config.Settings, db: Database, vault: Vault, *, state: str | None, code: str | None,
             realm_id: str | None, error: str | None = None, user_id: int | None = None) -> models.Company:
    """Finish an authorization from the callback's query parameters; store the company and its tokens."""
    _consume_state(db, state, user_id=user_id)
    if error:
        log.info("oauth callback: Intuit returned error=%s", error)
        if error == "access_denied":
            raise errors.InvalidInput("The connection was cancelled at Intuit; nothing was changed.", field="error")
        raise errors.InvalidInput(f"Intuit did not authorize the connection ({error}); nothing was changed.",
                                  field="error")
    if not code or not realm_id:
        raise errors.InvalidInput("The authorization came back without a code or a company id.", field="code")
    if not REALM_ID.fullmatch(realm_id):  # it goes into every API path; Intuit's are digits
        log.warning("oauth callback refused: the realmId is not a QuickBooks company id (%d characters)", len(realm_id))
        raise errors.InvalidInput("The authorization came back with a company id that is not one; nothing was "
                                  "stored. Start again from “Connect to QuickBooks”.", field="realmId")
    client = new_auth_client(settings)
    with map_intuit_errors("exchange the authorization code"):
        client.get_bearer_token(code, realm_id=realm_id)
    logs.secret(client.access_token)
    logs.secret(client.refresh_token)
    with map_intuit_errors("read the company's information"):
        info = fetch_company_info(settings, client, realm_id)
    now = datetime.now(timezone.utc)
    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        if company is None:
            company = models.Company(realm_id=realm_id, name=info["name"], settings={})
            s.add(company)
        company.name = info["name"]
        company.country = info["country"]
        company.currency = info["currency"]
        # the zone and language an owner chose on the Channels page outlive a reconnection
        if not (company.settings or {}).get("timezone_set_by_user"):
            company.timezone = info["timezone"]
        if not (company.settings or {}).get("language_set_by_user"):
            company.language = info["language"]
        company.status = models.CompanyStatus.connected
        company.status_reason = None
        company.connected_at = now
        user = s.get(models.User, user_id) if user_id is not None else None
        filled = {key: value for key, value in contact_defaults(info, user.email if user else None).items()
                  if key not in (company.settings or {})}  # never over a setting someone chose, even an empty one
        if filled:
            company.settings = {**(company.settings or {}), **filled}
            log.info("company settings filled from QuickBooks realm=%s: %s", realm_id, ", ".join(sorted(filled)))
        s.flush()
        _store_tokens(s, vault, company, client, now)
        if user_id is not None and s.scalar(select(models.Membership).where(
                models.Membership.user_id == user_id, models.Membership.company_id == company.id)) is None:
            s.add(models.Membership(user_id=user_id, company_id=company.id, role="owner"))
        s.add(models.Activity(company_id=company.id, kind="connected",
                              message=f"Connected to QuickBooks company “{company.name}”.", data={"origin": "web" if user_id else "cli"}))
    log.info("company connected realm=%s name=%s", realm_id, info["name"])
    return company


def _store_tokens(s: Any, vault: Vault, company: models.Company, client: AuthClient, now: datetime) -> None:
    token = s.get(models.Token, company.id)
    values = dict(
        access_token=vault.encrypt(client.access_token),
        refresh_token=vault.encrypt(client.refresh_token),
        access_expires_at=now + timedelta(seconds=int(client.expires_in or 3600)),
        refresh_expires_at=now + timedelta(seconds=int(client.x_refresh_token_expires_in or 8_640_000)),
        refresh_hard_expires_at=_hard_expiry(client, now),
        updated_at=now,
    )
    if token is None:
        s.add(models.Token(company_id=company.id, version=1, **values))
    else:
        for k, v in values.items():
            setattr(token, k, v)
        token.version += 1


def _hard_expiry(client: AuthClient, now: datetime) -> datetime | None:
    seconds = getattr(client, "x_refresh_token_hard_expires_in", None)
    return now + timedelta(seconds=int(seconds)) if seconds else None


RETRYABLE_STATUS = {429, 500, 502, 503, 504}


def _retrying(qb: QuickBooks, fn: Callable[[], T], *, attempts: int = 4) -> T:
    """Retry ``fn`` when QBO answered 429/5xx, judged by the HTTP status (python-quickbooks maps a 429's
    3001 fault to ValidationException, so the exception class cannot tell)."""
    statuses: list[int] = []
    hook = lambda response, *a, **k: statuses.append(response.status_code)  # noqa: E731
    qb.session.hooks["response"].append(hook)
    try:
        for attempt in tenacity.Retrying(
                retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, qb_exceptions.QuickbooksException)
                                                  and bool(statuses) and statuses[-1] in RETRYABLE_STATUS),
                wait=tenacity.wait_exponential_jitter(multiplier=0.5, max=8), stop=tenacity.stop_after_attempt(attempts),
                reraise=True):
            with attempt:
                return fn()
    finally:
        qb.session.hooks["response"].remove(hook)
    raise AssertionError("unreachable")


def fetch_company_info(settings: config.Settings, client: AuthClient, realm_id: str) -> dict[str, str]:
    """CompanyInfo and Preferences, read with the tokens the callback has just received.

    Intuit's tokens open only the realm the person authorised; the callback's ``realmId`` is a query
    parameter anyone can change. A 401 or 403 on this first read (Intuit's 403 is fault 3100,
    ApplicationAuthorizationFailed) therefore means the company id is not the one authorised, and
    the connection is refused with ``InvalidInput`` before anything is stored.
    """
    qb = quickbooks_client(settings, client, realm_id)
    statuses: list[int] = []
    qb.session.hooks["response"].append(lambda response, *a, **k: statuses.append(response.status_code))
    try:
        raw = _retrying(qb, lambda: qb.get_single_object("CompanyInfo", realm_id)).get("CompanyInfo", {})
    except qb_exceptions.QuickbooksException as exc:
        if not statuses or statuses[-1] not in (401, 403):
            raise
        log.warning("oauth callback refused realm=%s: QuickBooks answered HTTP %s (code %s) to the CompanyInfo "
                    "read, so this company id is not the one authorised at Intuit", realm_id, statuses[-1],
                    exc.error_code)
        raise errors.InvalidInput(f"The authorization Intuit returned does not give access to company {realm_id}; "
                                  "nothing was stored. Start again from “Connect to QuickBooks” and choose the "
                                  "company there.", field="realmId") from None
    prefs: dict[str, Any] = {}
    try:
        prefs = _retrying(qb, lambda: qb.get(f"{qb.api_url}/company/{realm_id}/preferences")).get("Preferences", {})
    except qb_exceptions.QuickbooksException as exc:  # preferences are a nicety; CompanyInfo is enough
        log.warning("preferences unreadable realm=%s code=%s", realm_id, exc.error_code)
    name = raw.get("CompanyName") or raw.get("LegalName") or f"Company {realm_id}"
    country_raw = (raw.get("Country") or (raw.get("CompanyAddr") or {}).get("Country") or "").strip().upper()
    country = COUNTRY_CODES.get(country_raw, country_raw[:2] or None)
    currency = ((prefs.get("CurrencyPrefs") or {}).get("HomeCurrency") or {}).get("value") or \
        {"FR": "EUR", "GB": "GBP", "CA": "CAD", "AU": "AUD"}.get(country or "", "USD")
    tz = None
    for pair in raw.get("NameValue") or []:
        if "timezone" in str(pair.get("Name", "")).lower().replace("_", ""):
            tz = pair.get("Value")
    tz = _valid_timezone(tz) or COUNTRY_TIMEZONES.get(country or "", "UTC")
    languages = (raw.get("SupportedLanguages") or "en").split(",")
    language = "fr" if country == "FR" or languages[0].strip().lower().startswith("fr") else "en"
    return {"name": name, "country": country or "", "currency": currency, "timezone": tz, "language": language,
            "email": _address(raw.get("Email")), "reply_to": _address(raw.get("CustomerCommunicationEmailAddr"))
            or _address(raw.get("Email")),
            "phone": str((raw.get("PrimaryPhone") or {}).get("FreeFormNumber") or "").strip()[:40]}


def _address(value: Any) -> str:
    """A plain email address from QuickBooks' ``{"Address": …}``, or "" when it is missing or not one."""
    address = str((value or {}).get("Address") or "").strip() if isinstance(value, dict) else ""
    try:
        return email_validator.validate_email(address, check_deliverability=False).normalized if address else ""
    except email_validator.EmailNotValidError:
        return ""


def contact_defaults(info: dict[str, str], user_email: str | None) -> dict[str, str]:
    """The company's channel settings a first connection fills in, from QuickBooks' CompanyInfo and the
    person who connected: where alerts and the weekly digest go (``owner_email``: that person, else
    the company's email), where customers' replies go (``reply_to``: the address QuickBooks writes to
    customers from), and the phone number the messages give (``company_phone``). Empty ones are left out."""
    values = {"owner_email": user_email or info.get("email", ""), "reply_to": info.get("reply_to", ""),
              "company_phone": info.get("phone", "")}
    return {key: value for key, value in values.items() if value}


def _valid_timezone(name: str | None) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name:
        return None
    try:
        ZoneInfo(name)
        return name
    except (ZoneInfoNotFoundError, ValueError):
        return None


def disconnect(settings: config.Settings, db: Database, vault: Vault, realm_id: str) -> None:
    """Revoke the grant at Intuit (best effort) and forget the tokens; the mirror and history stay."""
    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        if company is None:
            raise errors.InvalidInput(f"No company with realm {realm_id} is connected.", field="realm")
        token = s.get(models.Token, company.id)
        ciphertext = token.refresh_token if token else None
    refresh = None
    if ciphertext:
        try:
            refresh = vault.decrypt(ciphertext)
        except errors.ConfigError as exc:  # the key changed: the tokens are forgotten all the same
            log.warning("revoke skipped realm=%s: %s", realm_id, exc.message)
    revoked = False
    if refresh:
        try:
            with map_intuit_errors("revoke the grant"):
                new_auth_client(settings).revoke(token=refresh)
            revoked = True
        except errors.QboCollectorError as exc:
            log.warning("revoke failed realm=%s: %s", realm_id, exc.message)
    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm_id))
        assert company is not None
        token = s.get(models.Token, company.id)
        if token is not None:
            s.delete(token)
        company.status = models.CompanyStatus.disconnected
        company.status_reason = "Disconnected by a user."
        s.add(models.Activity(company_id=company.id, kind="disconnected",
                              message="Disconnected from QuickBooks" + ("" if revoked else
                                                                        " (Intuit could not be told; the grant "
                                                                        "expires by itself)") + "."))
