"""Log in and out. Passwords are hashed (werkzeug scrypt); failed logins are rate-limited.

The limit (``users.MAX_FAILURES`` per client address and per account within
``users.FAILURE_WINDOW``) is counted in the database, shared by every web process. The client's
address is ``request.remote_addr``: the peer's, or the one the trusted proxies forwarded when
QBO_COLLECTOR_TRUSTED_PROXY_COUNT is set (``create_app`` applies ProxyFix).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import UserMixin, current_user, login_user, logout_user
from sqlalchemy import update
from sqlalchemy.orm import Session
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Email, Length

from qbo_collector import clock, users
from qbo_collector.db import models

bp = Blueprint("auth", __name__)


@dataclass(frozen=True)
class LoginUser(UserMixin):
    """The logged-in user. The session cookie holds ``"<id>.<session epoch>"``: logging out raises the
    user's epoch, so a copy of a cookie taken before (the session lives in the signed cookie) no
    longer loads anyone — and every other session of that user ends with it."""

    id: int
    email: str
    is_admin: bool
    language: str
    epoch: int = 0

    @classmethod
    def from_row(cls, row: models.User) -> "LoginUser":
        return cls(id=row.id, email=row.email, is_admin=row.is_admin, language=row.language,
                   epoch=row.session_epoch or 0)

    def get_id(self) -> str:
        return f"{self.id}.{self.epoch}"


def load(s: Session, session_id: str) -> LoginUser | None:
    """The user a session's id names, or None when the id is malformed or its epoch has passed."""
    user_id, _dot, epoch = session_id.partition(".")
    if not (user_id.isascii() and user_id.isdigit() and epoch.isascii() and epoch.isdigit()):
        return None
    user = s.get(models.User, int(user_id))
    if user is None or (user.session_epoch or 0) != int(epoch):
        return None
    return LoginUser.from_row(user)


class LoginForm(FlaskForm):
    email = EmailField(lazy_gettext("Email"), validators=[DataRequired(), Email(check_deliverability=False)],
                       filters=[lambda v: v.strip() if isinstance(v, str) else v])
    password = PasswordField(lazy_gettext("Password"), validators=[DataRequired(), Length(max=200)])


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlparse(target).netloc:
        return target
    return url_for("connect.companies")


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    form = LoginForm()
    if form.validate_on_submit():
        email = form.email.data.strip().lower()
        services = current_app.config["QBO"]
        now = clock.now()
        keys = users.login_keys(email, request.remote_addr)
        with services.db.session() as s:  # committed first, so that attempts in flight count each other
            attempt = users.begin_login(s, keys, now=now)
        with services.db.session() as s:
            refused = users.too_many_failures(s, keys, now=now)
            if refused:
                users.withdraw_login(s, attempt)
        if refused:
            current_app.logger.warning("login throttled email=%s ip=%s", email, request.remote_addr)
            return render_template("login.html", form=form,
                                   error=gettext("Too many failed attempts. Wait 15 minutes and try again.")), 429
        with services.db.reading() as s:  # the password hash takes a while: hold no write lock meanwhile
            user = users.authenticate(s, email, form.password.data)
            login_user_row = LoginUser.from_row(user) if user else None
        if login_user_row is None:  # the attempt's rows stay: they are the failure
            current_app.logger.info("login failed email=%s ip=%s", email, request.remote_addr)
            return render_template("login.html", form=form, error=gettext("Wrong email or password.")), 401
        with services.db.session() as s:
            users.login_succeeded(s, attempt)
        login_user(login_user_row)
        return redirect(_safe_next(request.args.get("next")))
    status = 400 if request.method == "POST" else 200
    return render_template("login.html", form=form, error=None), status


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    if current_user.is_authenticated:
        with current_app.config["QBO"].db.session() as s:
            s.execute(update(models.User).where(models.User.id == current_user.id)
                      .values(session_epoch=models.User.session_epoch + 1))
    logout_user()
    flash(gettext("You are logged out."))
    return redirect(url_for("auth.login"))
