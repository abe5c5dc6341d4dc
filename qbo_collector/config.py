"""Settings, read once from the environment / `.env` and passed down.

The names are part of the interface (DESIGN.md). They are declared once, in ``SETTINGS``;
the README's configuration table and the error messages come from that declaration.
Per-company settings (sender name, policy, templates, time zone) live in the database.
"""

from __future__ import annotations

import base64
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cryptography.fernet import Fernet
from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from qbo_collector import errors, logs


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    help: str
    secret: bool = False


SETTINGS: tuple[Setting, ...] = (
    Setting("QBO_COLLECTOR_HOME", "./var", "Folder for the SQLite database, the generated secret key and logs."),
    Setting("QBO_COLLECTOR_DATABASE_URL", "sqlite:///$HOME/qbo-collector.db",
            "SQLAlchemy URL. Use `postgresql+psycopg://user:pass@host/db` for several processes or machines."),
    Setting("QBO_COLLECTOR_SECRET_KEY", "generated in HOME/secret.key (mode 0600)",
            "Fernet key (32 url-safe base64 bytes) that encrypts tokens at rest and signs sessions.", secret=True),
    Setting("QBO_COLLECTOR_PUBLIC_URL", "http://127.0.0.1:8000",
            "Where the web app is reached from outside; webhook and callback URLs are built from it."),
    Setting("QBO_COLLECTOR_TRUSTED_PROXY_COUNT", "0",
            "How many proxies in front of `serve` add themselves to `X-Forwarded-For` (1 for one nginx). "
            "The client's address, which failed logins are counted against, is then read from that header; "
            "at 0 the header is ignored. Set it only when the web processes cannot be reached but through the proxy."),
    Setting("INTUIT_CLIENT_ID", "", "Your Intuit app's client id (developer.intuit.com → Keys)."),
    Setting("INTUIT_CLIENT_SECRET", "", "Your Intuit app's client secret.", secret=True),
    Setting("INTUIT_REDIRECT_URI", "$PUBLIC_URL/connect/callback",
            "OAuth redirect URI registered at Intuit; a loopback URI lets `connect --no-browser` listen for it."),
    Setting("INTUIT_ENVIRONMENT", "sandbox", "`sandbox`, `production`, or the URL of an OpenID discovery document."),
    Setting("INTUIT_API_BASE_URL", "", "Override of the Accounting API v3 base URL (e.g. the local sandbox)."),
    Setting("INTUIT_WEBHOOK_VERIFIER_TOKEN", "", "Verifier token of your Intuit webhook subscription.", secret=True),
    Setting("SENDGRID_API_KEY", "",
            "SendGrid API key with Mail Send permission (and Suppressions, for the customer page's \"resume email\" after a bounce).",
            secret=True),
    Setting("SENDGRID_API_HOST", "", "Override of the SendGrid API host (e.g. the local sandbox)."),
    Setting("SENDGRID_FROM_EMAIL", "", "Verified sender address reminders are sent from."),
    Setting("SENDGRID_WEBHOOK_PUBLIC_KEY", "", "Event Webhook verification key (base64), from SendGrid's settings."),
    Setting("TWILIO_ACCOUNT_SID", "", "Twilio account SID (AC…)."),
    Setting("TWILIO_AUTH_TOKEN", "", "Twilio auth token; also verifies Twilio's webhooks.", secret=True),
    Setting("TWILIO_FROM_NUMBER", "", "Sending number in E.164 (or set TWILIO_MESSAGING_SERVICE_SID)."),
    Setting("TWILIO_MESSAGING_SERVICE_SID", "", "Messaging Service SID (MG…), instead of a from number."),
    Setting("TWILIO_API_BASE_URL", "", "Override of every Twilio API host (e.g. the local sandbox)."),
)

_ENV_NAMES = {s.name.lower(): s.name for s in SETTINGS}


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _check_http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


class Settings(BaseSettings):
    """Every setting of the program. Build it with ``load()``, which turns errors into ``ConfigError``."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=False, frozen=True)

    qbo_collector_home: Path = Path("./var")
    qbo_collector_database_url: str | None = None
    qbo_collector_secret_key: str | None = None
    qbo_collector_public_url: str = "http://127.0.0.1:8000"
    qbo_collector_trusted_proxy_count: int = 0
    intuit_client_id: str | None = None
    intuit_client_secret: str | None = None
    intuit_redirect_uri: str | None = None
    intuit_environment: str = "sandbox"
    intuit_api_base_url: str | None = None
    intuit_webhook_verifier_token: str | None = None
    sendgrid_api_key: str | None = None
    sendgrid_api_host: str | None = None
    sendgrid_from_email: str | None = None
    sendgrid_webhook_public_key: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _blanks(cls, value: Any) -> Any:
        return _blank_to_none(value)

    @field_validator("qbo_collector_trusted_proxy_count", mode="before")
    @classmethod
    def _proxy_count_blank(cls, value: Any) -> Any:
        return 0 if _blank_to_none(value) is None else value  # blank means the default, as for the others

    @field_validator("qbo_collector_trusted_proxy_count")
    @classmethod
    def _proxy_count(cls, value: int) -> int:
        if not 0 <= value <= 10:
            raise ValueError("must be the number of proxies in front of the web app, from 0 to 10")
        return value

    @field_validator("qbo_collector_public_url", "intuit_redirect_uri", "intuit_api_base_url",
                     "sendgrid_api_host", "twilio_api_base_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _check_http_url(value)

    @field_validator("intuit_environment")
    @classmethod
    def _environment(cls, value: str) -> str:
        if value.lower() in ("sandbox", "production"):
            return value.lower()
        _check_http_url(value)
        return value

    @field_validator("qbo_collector_database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not (value.startswith("sqlite") or value.startswith("postgresql")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg:// URL")
        return value

    @field_validator("qbo_collector_secret_key")
    @classmethod
    def _secret_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            if len(base64.urlsafe_b64decode(value.encode())) != 32:
                raise ValueError
        except (ValueError, TypeError):
            raise ValueError("must be a Fernet key: 32 bytes, url-safe base64 (make one with "
                             "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)")
        return value

    @field_validator("twilio_from_number")
    @classmethod
    def _from_number(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("+") and value[1:].isdigit() and 8 <= len(value) <= 16):
            raise ValueError("must be an E.164 number such as +15551234567")
        return value

    # -- derived values -------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.qbo_collector_home

    @property
    def database_url(self) -> str:
        if self.qbo_collector_database_url:
            return self.qbo_collector_database_url
        return f"sqlite:///{(self.home / 'qbo-collector.db').resolve()}"

    @property
    def public_url(self) -> str:
        return self.qbo_collector_public_url

    @property
    def trusted_proxy_count(self) -> int:
        return self.qbo_collector_trusted_proxy_count

    @property
    def redirect_uri(self) -> str:
        return self.intuit_redirect_uri or f"{self.public_url}/connect/callback"

    def secret_key(self) -> bytes:
        """The Fernet key: the configured one, else the one kept in HOME (made on first use, mode 0600)."""
        if self.qbo_collector_secret_key:
            return self.qbo_collector_secret_key.encode()
        return _home_secret_key(self.home)

    def require(self, *names: str) -> None:
        """Raise one ``ConfigError`` naming the first of ``names`` that is not set."""
        for name in names:
            if getattr(self, name.lower()) in (None, ""):
                setting = next(s for s in SETTINGS if s.name == name)
                raise errors.ConfigError(f"{name} is not set. {setting.help}", variable=name)


def _home_secret_key(home: Path) -> bytes:
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise errors.ConfigError(f"The folder QBO_COLLECTOR_HOME names, {home}, cannot be created ({exc.strerror}); "
                                 "point it at a folder this user may write, or set QBO_COLLECTOR_SECRET_KEY.",
                                 variable="QBO_COLLECTOR_HOME") from None
    path = home / "secret.key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise errors.ConfigError(
                f"{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`.",
                variable="QBO_COLLECTOR_SECRET_KEY")
        key = path.read_bytes().strip()
        try:
            Fernet(key)
        except ValueError as exc:
            raise errors.ConfigError(f"{path} does not hold a valid Fernet key; remove it only if no tokens "
                                     "were stored with it.", variable="QBO_COLLECTOR_SECRET_KEY") from exc
        return key
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


def load(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read the settings; one ``ConfigError`` naming the variable when a value is malformed."""
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        name = _ENV_NAMES.get(field, field.upper())
        message = str(first["msg"]).removeprefix("Value error, ")
        raise errors.ConfigError(f"{name} {message}.", variable=name) from None
    for declared in SETTINGS:  # a secret setting never appears in a log line, whatever logs it
        if declared.secret:
            value = getattr(settings, declared.name.lower(), None)
            logs.secret(value if isinstance(value, str) else None)
    return settings


def markdown_table() -> str:
    """The README's configuration table, from the declaration."""
    rows = ["| Variable | Default | What it is |", "| --- | --- | --- |"]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default else "—"
        rows.append(f"| `{s.name}` | {default} | {s.help}{' *(secret)*' if s.secret else ''} |")
    return "\n".join(rows)
