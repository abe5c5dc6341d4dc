"""Log in and out. Passwords are hashed (werkzeug scrypt); failed logins are rate-limited."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import UserMixin, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, Length

from qbo_collector import users
from qbo_collector.db import models

bp = Blueprint("auth", __name__)

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60


@dataclass(frozen=True)
class LoginUser(UserMixin):
    id: int
    email: str
    is_admin: bool
    language: str

    @classmethod
    def from_row(cls, row: models.User) -> "LoginUser":
        return cls(id=row.id, email=row.email, is_admin=row.is_admin, language=row.language)

    def get_id(self) -> str:
        return str(self.id)


class LoginForm(FlaskForm):
    email = EmailField(lazy_gettext("Email"), validators=[DataRequired(), Email(check_deliverability=False)],
                       filters=[lambda v: v.strip() if isinstance(v, str) else v])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=200)])


class _Throttle:
    """Failed attempts per client address and per account within a sliding window (monotonic clock)."""

    def __init__(self) -> None:
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def blocked(self, *keys: str) -> bool:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                q = self._failures[key]
                while q and now - q[0] > WINDOW_SECONDS:
                    q.popleft()
                if len(q) >= MAX_FAILURES:
                    return True
        return False

    def fail(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures[key].append(time.monotonic())

    def clear(self, *keys: str) -> None:
        """Forget failures of ``keys`` (after a good login), or of everyone when no key is given."""
        with self._lock:
            if not keys:
                self._failures.clear()
            for key in keys:
                self._failures.pop(key, None)


throttle = _Throttle()


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlparse(target).netloc:
        return target
    return url_for("connect.companies")


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        keys = (f"ip:{request.remote_addr}", f"email:{email}")
        if throttle.blocked(*keys):
            current_app.logger.warning("login throttled email=%s ip=%s", email, request.remote_addr)
            return render_template("login.html", form=form,
                                   error=gettext("Too many failed attempts. Wait 15 minutes and try again.")), 429
        services = current_app.config["QBO"]
        with services.db.session() as s:
            user = users.authenticate(s, email, form.password.data)
            login_user_row = LoginUser.from_row(user) if user else None
        if login_user_row is None:
            throttle.fail(*keys)
            current_app.logger.info("login failed email=%s ip=%s", email, request.remote_addr)
            return render_template("login.html", form=form, error=gettext("Wrong email or password.")), 401
        throttle.clear(*keys)
        login_user(login_user_row)
        return redirect(_safe_next(request.args.get("next")))
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form, error=None), status


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    logout_user()
    flash(gettext("You are logged out."))
    return redirect(url_for("auth.login"))
