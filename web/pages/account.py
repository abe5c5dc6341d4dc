"""The user's own settings: the language of the pages."""

from __future__ import annotations

from flask import abort, redirect, request, url_for

from qbo_collector.db import models
from web import auth
from web.pages import LANGUAGES, bp, services, user_id


@bp.post("/account/language")
def language():  # type: ignore[no-untyped-def]
    choice = request.form.get("language", "")
    if choice not in LANGUAGES:
        abort(400)
    with services().db.session() as s:
        user = s.get(models.User, user_id())
        if user is None:
            abort(404)
        user.language = choice
    return redirect(auth._safe_next(request.form.get("next")))  # same-site paths only
