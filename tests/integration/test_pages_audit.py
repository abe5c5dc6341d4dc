"""Route audit of the company pages: viewers change nothing, other tenants get 404, every page renders.

(test_web_auth.py already walks every route for login and CSRF; this adds the per-company checks.)
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from qbo_collector.db import models
from tests.integration.test_pages_support import browser, frozen_today, owner, pages_app, viewer  # noqa: F401

VALUES = {"customer_id": "1", "action": "promise", "outbox_id": "1"}


def _page_routes(app):  # type: ignore[no-untyped-def]
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("pages.") or "realm_id" not in rule.arguments:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def _path(rule, realm: str) -> str:  # type: ignore[no-untyped-def]
    return rule.build({"realm_id": realm, **{a: VALUES[a] for a in rule.arguments if a != "realm_id"}},
                      append_unknown=False)[1]


def _state(db) -> str:  # type: ignore[no-untyped-def]
    """Everything a page could change, as one comparable string."""
    with db.reading() as s:
        companies = [(c.realm_id, c.settings, c.policy) for c in s.scalars(select(models.Company).order_by(models.Company.id))]
        customers = [(c.qbo_id, c.excluded, c.fees_waived, c.policy_name) for c in s.scalars(select(models.Customer))]
        invoices = [(i.qbo_id, i.fees_waived, i.next_action_on) for i in s.scalars(select(models.Invoice))]
        counts = [s.scalar(select(func.count()).select_from(m)) for m in (models.Pause, models.Activity, models.Outbox)]
        outbox = [(o.dedupe_key, o.status.value) for o in s.scalars(select(models.Outbox))]
    return json.dumps([companies, customers, invoices, counts, outbox], default=str, sort_keys=True)


def test_there_are_company_pages_to_audit(pages_app):
    endpoints = {rule.endpoint for rule, _m in _page_routes(pages_app)}
    assert {"pages.dashboard", "pages.customers", "pages.customer", "pages.upcoming", "pages.policy",
            "pages.templates", "pages.channels", "pages.customer_action", "pages.upcoming_skip"} <= endpoints


def test_a_viewer_sees_every_page_and_can_change_nothing(pages_app, viewer, sqlite_db):
    with sqlite_db.session() as s:  # an unknown row, so that its resolve route has something to refuse
        company = s.scalar(select(models.Company).where(models.Company.realm_id == "111"))
        row = s.scalar(select(models.Outbox).where(models.Outbox.company_id == company.id))
        row.status = models.OutboxStatus.unknown
        VALUES["outbox_id"] = str(row.id)
    before = _state(sqlite_db)
    posts = 0
    for rule, method in _page_routes(pages_app):
        path = _path(rule, "111")
        if method == "GET":
            response = viewer.get(path)
            assert response.status_code == 200, (rule.endpoint, response.status_code)
            if response.mimetype != "text/html":  # a download (the aging CSV): no page to mark read-only
                assert response.headers["Content-Disposition"].startswith("attachment;"), rule.endpoint
                continue
            page = response.get_data(as_text=True)
            assert "Read only" in page, rule.endpoint
            assert 'action="/companies/111/' not in page, rule.endpoint  # no form that would change anything
        else:
            posts += 1
            for action in (("promise", "dispute", "plan", "pause", "resume", "exclude", "policy", "language", "waive",
                            "call", "note", "resume_email")
                           if rule.endpoint == "pages.customer_action" else (None,)):
                target = path if action is None else path.rsplit("/", 1)[0] + f"/{action}"
                response = viewer.post(target, {"until": "2026-12-20", "amount": "10", "note": "x", "outcome": "reached",
                                                "dedupe_key": "x", "decision": "sent", "dry_run": "1",
                                                "language": "fr", "policy_name": "firm",
                                                "dso_target": "30", "do": "save", "subject": "s", "text": "t"})
                assert response.status_code == 403, (rule.endpoint, action, response.status_code)
    assert posts >= 8
    assert _state(sqlite_db) == before


def test_an_owner_of_company_a_gets_404_for_company_b(pages_app, owner, sqlite_db):
    before = _state(sqlite_db)
    for rule, method in _page_routes(pages_app):
        for realm in ("222", "999"):
            path = _path(rule, realm)
            response = owner.get(path) if method == "GET" else owner.post(path, {"note": "x", "dry_run": "1"})
            assert response.status_code == 404, (rule.endpoint, method, realm, response.status_code)
    assert _state(sqlite_db) == before


def test_a_customer_of_another_company_is_not_found(pages_app, owner, sqlite_db):
    with sqlite_db.session() as s:  # customer 77 exists in company B only
        company_b = s.scalar(select(models.Company).where(models.Company.realm_id == "222"))
        s.add(models.Customer(company_id=company_b.id, qbo_id="77", display_name="Only in B"))
    assert owner.get("/companies/111/customers/77").status_code == 404
    assert owner.post("/companies/111/customers/77/note", {"note": "hello"}).status_code == 404
    assert owner.post("/companies/111/customers/1/no-such-action", {"note": "hello"}).status_code == 404


def test_an_unknown_row_of_another_company_is_not_found(pages_app, owner, sqlite_db):
    with sqlite_db.session() as s:
        company_b = s.scalar(select(models.Company).where(models.Company.realm_id == "222"))
        row = s.scalar(select(models.Outbox).where(models.Outbox.company_id == company_b.id))
        row.status = models.OutboxStatus.unknown
        row_id = row.id
    assert owner.post(f"/companies/111/upcoming/unknown/{row_id}", {"decision": "sent"}).status_code == 404
    with sqlite_db.reading() as s:
        assert s.get(models.Outbox, row_id).status == models.OutboxStatus.unknown


@pytest.mark.parametrize("language,expected", [("en", "Where the money stands"), ("fr", "Où en est l’argent")])
def test_every_page_renders_in_both_languages(pages_app, sqlite_db, language, expected):
    b = browser(pages_app, sqlite_db, f"{language}@example.com", language=language)
    assert expected in b.get("/companies/111/dashboard").get_data(as_text=True)
    for path in ("customers", "customers/1", "upcoming", "policy", "templates", "channels",
                 "templates?key=owner_alert&language=en", "templates?key=late_fee_notice&language=fr",
                 "templates?key=promise_broken&language=fr", "customers?all=1&q=dub"):
        response = b.get(f"/companies/111/{path}")
        assert response.status_code == 200, path
        assert f'<html lang="{language}">' in response.get_data(as_text=True)


def test_the_language_switch_is_remembered_and_redirects_on_site(pages_app, owner, sqlite_db):
    response = owner.post("/account/language", {"language": "fr", "next": "//evil.example.com/"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/companies")
    assert "Vos sociétés QuickBooks" in owner.get("/companies").get_data(as_text=True)
    assert owner.post("/account/language", {"language": "de"}).status_code == 400
    owner.post("/account/language", {"language": "en", "next": "/companies/111/policy"})
    assert "Collection policy" in owner.get("/companies/111/policy").get_data(as_text=True)
