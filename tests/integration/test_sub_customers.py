"""Jobs and sub-customers in QuickBooks (``Job``, ``ParentRef``): one billed with its parent
(``BillWithParent``) is reminded at its parent's email, with its parent's stops and name, since
QuickBooks bills the parent for it; one that is not keeps its own. Through a real sync and run on
SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from qbo_collector import snapshot
from qbo_collector.db import models
from tests.integration import test_dispatch_support as ds
from tests.integration.test_pages_support import browser


env = pytest.fixture(ds.quiet_env, name="env")


def _invoice(env, customer_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A 500 invoice of the customer, two days late."""
    return ds.invoice(env, customer_id, env.now_at(12).date() - dt.timedelta(days=2))


def _family(env, parent_email: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:  # type: ignore[no-untyped-def]
    """A parent customer, a job billed with it (carrying the stale copy of an old address QuickBooks made
    when the job was created) and a job billed on its own, each of the jobs owing one late invoice."""
    sb, realm = env.sb, env.realm
    parent = sb.intuit.create(realm, "Customer", {"DisplayName": "Hartley Homes", "BillAddr": {"Country": "US"},
                                                  "PrimaryEmailAddr": {"Address": parent_email}})
    kitchen = sb.intuit.create(realm, "Customer", {
        "DisplayName": "Kitchen remodel", "Job": True, "ParentRef": {"value": parent["Id"]}, "BillWithParent": True,
        "PrimaryEmailAddr": {"Address": "old-ap@hartley.example"}, "BillAddr": {"Country": "US"}})
    garage = sb.intuit.create(realm, "Customer", {
        "DisplayName": "Garage build", "Job": True, "ParentRef": {"value": parent["Id"]}, "BillWithParent": False,
        "PrimaryEmailAddr": {"Address": "site@garage.example"}, "BillAddr": {"Country": "US"}})
    return parent, kitchen, garage


def _to(env, invoice: dict[str, Any]) -> set[str]:  # type: ignore[no-untyped-def]
    """Where the reminders naming ``invoice`` were emailed."""
    return {m["to"] for m in env.sb.sendgrid.messages if f" {invoice['DocNumber']}" in m["text"]
            and m["to"] != "owner@maple.example"}


def test_a_job_billed_with_its_parent_is_reminded_at_the_parents_address(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    parent, kitchen, garage = _family(env, "ap@hartley.example")
    billed, own = _invoice(env, kitchen["Id"]), _invoice(env, garage["Id"])
    env.sync()
    with env.db.session() as s:
        rows = {c.qbo_id: c for c in s.scalars(select(models.Customer).where(
            models.Customer.qbo_id.in_([parent["Id"], kitchen["Id"], garage["Id"]])))}
        assert (rows[kitchen["Id"]].parent_qbo_id, rows[kitchen["Id"]].bill_with_parent) == (parent["Id"], True)
        assert (rows[garage["Id"]].parent_qbo_id, rows[garage["Id"]].bill_with_parent) == (parent["Id"], False)
        assert rows[parent["Id"]].parent_qbo_id is None and rows[parent["Id"]].bill_with_parent is False

    summary = env.run()
    assert summary.ok, summary.problems
    assert _to(env, billed) == {"ap@hartley.example"}    # the parent's current address, not the job's stale copy
    assert _to(env, own) == {"site@garage.example"}      # not billed with the parent: its own
    [mail] = [m for m in sb.sendgrid.messages if m["to"] == "ap@hartley.example"]
    assert "Hartley Homes" in mail["text"] and "Kitchen remodel" not in mail["text"].split("\n", 1)[0]
    [reminder] = [r for r in env.rows(kind="reminder") if billed["Id"] in (r.invoice_ids or ())]
    assert reminder.customer_qbo_id == kitchen["Id"] and reminder.status.value == "sent"  # the job's own timeline
    notes = sb.intuit.get(realm, "Customer", kitchen["Id"]).get("Notes") or ""
    assert "Reminder sent by email" in notes  # written back on the job's record in QuickBooks

    for language, said in (("en", "Billed with its parent, Hartley Homes: reminders go to the parent’s email and "
                                  "phone (ap@hartley.example), in the parent’s language."),
                           ("fr", "Facturé avec son parent, Hartley Homes\u00a0: les relances vont à l’e-mail et au "
                                  "téléphone du parent (ap@hartley.example), dans la langue du parent.")):
        reader = browser(env.web.app, env.db, f"owner-{language}@maple.example", realm=realm, language=language)
        page = reader.get(f"/companies/{realm}/customers/{kitchen['Id']}").get_data(as_text=True)
        assert said in page and f"/customers/{parent['Id']}\"" in page, language
        assert "Billed with its parent" not in reader.get(
            f"/companies/{realm}/customers/{garage['Id']}").get_data(as_text=True)


def test_the_parents_bounce_stops_the_job_and_the_list_names_the_parent(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    parent, kitchen, _garage = _family(env, "ap-bounce@hartley.example")  # "bounce" addresses bounce in the sandbox
    _invoice(env, kitchen["Id"])
    env.sync()
    assert env.run().ok
    env.flush()  # the bounce event reaches the webhook: the parent's address is stopped
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        stopped = s.scalar(select(models.Customer.email_stopped).where(models.Customer.qbo_id == parent["Id"]))
        assert stopped == "bounce"
        [snap] = snapshot.load(s, company, customer_ids=[kitchen["Id"]])
        assert snap.customer.opted_out == frozenset({"email"}) and snap.email == "ap-bounce@hartley.example"
    owner = browser(env.web.app, env.db, "owner@maple.example", realm=realm)
    page = owner.get(f"/companies/{realm}/customers?unreachable=1&all=1").get_data(as_text=True)
    assert "Hartley Homes" in page and "Kitchen remodel" not in page  # fix it on the parent, where it is


def test_a_change_to_the_parent_makes_its_jobs_candidates_of_the_next_run(env) -> None:  # type: ignore[no-untyped-def]
    sb, realm = env.sb, env.realm
    parent, kitchen, garage = _family(env, "ap@hartley.example")
    _invoice(env, kitchen["Id"]), _invoice(env, garage["Id"])
    sb.clock.advance(dt.timedelta(minutes=5))  # out of the next CDC read's 30-second overlap
    env.sync()
    before = dt.datetime.now(dt.timezone.utc)
    sb.intuit.update(realm, "Customer", parent["Id"], PrimaryEmailAddr={"Address": "billing@hartley.example"})
    env.sync()  # only the parent's row changed
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        found = snapshot.candidate_customers(s, company, today=dt.date(2000, 1, 1), since=before)
    assert found.get(kitchen["Id"], "absent") is None  # planned in full: its contact changed
    assert found[garage["Id"]] is not None              # only its invoice never planned: its own address did not
