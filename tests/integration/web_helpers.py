"""Drive the Flask app like a browser would: real sessions, real CSRF tokens."""

from __future__ import annotations

import re

from qbo_collector import users
from qbo_collector.db import models

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:  # type: ignore[no-untyped-def]
    page = client.get(path).get_data(as_text=True)
    found = CSRF.search(page)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def make_user(db, email: str, password: str = "correct horse battery", *, admin: bool = False,  # type: ignore[no-untyped-def]
              companies: dict[str, str] | None = None) -> int:
    with db.session() as s:
        user = users.add_user(s, email, password, admin=admin)
        for realm, role in (companies or {}).items():
            company = s.query(models.Company).filter_by(realm_id=realm).one()
            users.grant(s, user, company, role)
        return user.id


def login(client, email: str, password: str = "correct horse battery"):  # type: ignore[no-untyped-def]
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})
