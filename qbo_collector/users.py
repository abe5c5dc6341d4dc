"""People who use the settings page: accounts, roles, which companies they may see, and how
many times a login failed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from qbo_collector import errors
from qbo_collector.db import models

ROLES = ("owner", "viewer")
MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Checked against when the email is unknown, so both paths cost one hash (no user enumeration by timing).
_DUMMY_HASH = generate_password_hash("not-a-real-password")


def add_user(s: Session, email: str, password: str, *, admin: bool | None = None, language: str = "en") -> models.User:
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise errors.InvalidInput(f"“{email}” is not an email address.", field="email")
    if len(password) < MIN_PASSWORD:
        raise errors.InvalidInput(f"The password must have at least {MIN_PASSWORD} characters.", field="password")
    if s.scalar(select(models.User).where(models.User.email == email)) is not None:
        raise errors.InvalidInput(f"A user with the email {email} already exists.", field="email")
    if admin is None:  # the first account is the operator's
        admin = (s.scalar(select(func.count()).select_from(models.User)) or 0) == 0
    user = models.User(email=email, password_hash=generate_password_hash(password), is_admin=admin,
                       language=language if language in ("en", "fr") else "en")
    s.add(user)
    s.flush()
    return user


def authenticate(s: Session, email: str, password: str) -> models.User | None:
    user = s.scalar(select(models.User).where(models.User.email == email.strip().lower()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def grant(s: Session, user: models.User, company: models.Company, role: str) -> None:
    if role not in ROLES:
        raise errors.InvalidInput(f"Role must be one of {', '.join(ROLES)}.", field="role")
    row = s.scalar(select(models.Membership).where(models.Membership.user_id == user.id,
                                                   models.Membership.company_id == company.id))
    if row is None:
        s.add(models.Membership(user_id=user.id, company_id=company.id, role=role))
    else:
        row.role = role


def role_in(s: Session, user_id: int, company: models.Company) -> str | None:
    """The user's role in the company: "owner", "viewer", or None (then the company does not exist for them)."""
    user = s.get(models.User, user_id)
    if user is None:
        return None
    if user.is_admin:
        return "owner"
    return s.scalar(select(models.Membership.role).where(models.Membership.user_id == user_id,
                                                         models.Membership.company_id == company.id))


def owns_every_company(s: Session, user_id: int) -> bool:
    """Whether the user may change every company: an admin, or the owner of each one.

    Actions that touch all companies at once (the demo's clock, which runs the scheduler for
    everyone) need this: "owner changes things" applied to every company they change.
    """
    user = s.get(models.User, user_id)
    if user is None:
        return False
    if user.is_admin:
        return True
    companies = set(s.scalars(select(models.Company.id)))
    owned = set(s.scalars(select(models.Membership.company_id).where(models.Membership.user_id == user_id,
                                                                     models.Membership.role == "owner")))
    return bool(companies) and companies <= owned


def visible_companies(s: Session, user_id: int) -> list[models.Company]:
    user = s.get(models.User, user_id)
    if user is None:
        return []
    query = select(models.Company).order_by(models.Company.name)
    if not user.is_admin:
        query = query.join(models.Membership, models.Membership.company_id == models.Company.id).where(
            models.Membership.user_id == user_id)
    return list(s.scalars(query))


# -- failed logins ----------------------------------------------------------------------------
#
# Five failures per client address and per account within 15 minutes, then 429 until the
# oldest leaves the window (an account at its limit still takes one try from an address with no
# failure: see ``too_many_failures``). The failures are rows of ``login_failure``, so every web process
# counts the same ones. An attempt is written as a failure *before* its password is checked
# and counted in a later transaction: however many attempts run at once, in however many
# processes, none gets past the limit (a check-then-record would let every attempt in flight
# through). A refused attempt takes its rows back (waiting out the 429 is enough); a good
# login takes back its own rows and clears the account's failures, but not the address's: an
# attacker who holds one valid account could otherwise log into it between guesses at other
# accounts and never reach the limit.

MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True, kw_only=True)
class LoginAttempt:
    """One login being checked: the keys it counts against and its rows in ``login_failure``."""

    keys: tuple[str, ...]
    row_ids: tuple[int, ...]

    @property
    def account_key(self) -> str:
        return next(key for key in self.keys if key.startswith("email:"))


def login_keys(email: str, address: str | None) -> tuple[str, str]:
    """What a login's failures count against: the client's address and the account (lower-cased)."""
    return (f"ip:{address}", f"email:{email.strip().lower()}")


def begin_login(s: Session, keys: tuple[str, ...], *, now: datetime) -> LoginAttempt:
    """Record the attempt as a failure of each key, and prune the failures that left the window.

    Commit this before ``too_many_failures`` counts, so that attempts running at once see each other.
    """
    s.execute(delete(models.LoginFailure).where(models.LoginFailure.at <= now - FAILURE_WINDOW))
    rows = [models.LoginFailure(key=key, at=now) for key in keys]
    s.add_all(rows)
    s.flush()
    return LoginAttempt(keys=keys, row_ids=tuple(row.id for row in rows))


def too_many_failures(s: Session, keys: tuple[str, ...], *, now: datetime) -> bool:
    """Whether this attempt is refused: its address had ``MAX_FAILURES`` failures within the window
    before it (the attempt is recorded too, hence the ``>``), or its account had and so had the
    address, once. An account at its limit still lets an address with no failure in the window try
    once: otherwise anyone could lock its owner out for good with a wrong password every few minutes.
    A guesser spreading over many addresses gets one guess per address and window at such an account."""
    counts = dict(s.execute(select(models.LoginFailure.key, func.count())
                            .where(models.LoginFailure.key.in_(keys), models.LoginFailure.at > now - FAILURE_WINDOW)
                            .group_by(models.LoginFailure.key)).all())
    address = next((counts.get(key, 0) for key in keys if key.startswith("ip:")), 0)
    account = next((counts.get(key, 0) for key in keys if key.startswith("email:")), 0)
    return address > MAX_FAILURES or (account > MAX_FAILURES and address > 1)


def withdraw_login(s: Session, attempt: LoginAttempt) -> None:
    """The attempt was refused before its password was checked: it is no failure."""
    s.execute(delete(models.LoginFailure).where(models.LoginFailure.id.in_(attempt.row_ids)))


def login_succeeded(s: Session, attempt: LoginAttempt) -> None:
    """A good password: forget this attempt and the account's failures; the address's stay (see above)."""
    s.execute(delete(models.LoginFailure).where(models.LoginFailure.id.in_(attempt.row_ids)
                                                | (models.LoginFailure.key == attempt.account_key)))
