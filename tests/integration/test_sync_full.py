"""Full sync over real HTTP against the sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from qbo_collector.db import models
from qbo_collector.sync import run, streams
from tests.integration import test_sync_support as support


def test_full_sync_mirror_equals_the_source_with_the_optimum_of_calls(sandbox, sandbox_realms, settings_factory, db, vault):
    realm = sandbox_realms["en"]
    settings = support.connect(settings_factory, db, vault, sandbox, realm)
    before = sandbox.log.count("intuit", "query", realm=realm)
    seen = []
    summary = run.sync_company(settings, db, vault, realm, progress=lambda *a: seen.append(a),
                               policy=support.FAST, limiter=support.UNLIMITED)
    assert summary.ok, summary.errors
    assert summary.mode == "full"
    support.assert_mirror_equals_source(db, sandbox, realm)
    optimum = sum(-(-max(len(sandbox.intuit.entities(realm, e)), 1) // streams.PAGE_SIZE)
                  for e in ("Term", "Customer", "Invoice", "Payment", "CreditMemo")) + 1  # + CompanyInfo
    assert summary.api_calls == optimum
    assert sandbox.log.count("intuit", "query", realm=realm) - before == optimum
    assert ("Invoice", len(sandbox.intuit.entities(realm, "Invoice")), None) in seen
    with db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == realm))
        assert company.last_sync_at is not None
        activity = s.scalars(select(models.Activity).where(models.Activity.company_id == company.id,
                                                           models.Activity.kind == "sync")).one()
        assert activity.data["api_calls"] == optimum
        assert activity.data["written"]["Invoice"] == len(sandbox.intuit.entities(realm, "Invoice"))
    assert "API calls" in summary.line()


def test_full_sync_is_idempotent_and_keeps_the_programs_own_columns(sandbox, sandbox_realms, settings_factory, db, vault):
    realm = sandbox_realms["fr"]
    settings = support.connect(settings_factory, db, vault, sandbox, realm)
    run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED)
    with db.session() as s:
        customer = s.scalars(select(models.Customer)).first()
        customer.excluded = True
        customer.policy_name = "gentle"
        key = customer.qbo_id
        count = s.scalar(select(func.count()).select_from(models.Invoice))
    again = run.sync_company(settings, db, vault, realm, full=True, policy=support.FAST, limiter=support.UNLIMITED)
    assert again.mode == "full" and again.ok
    support.assert_mirror_equals_source(db, sandbox, realm)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(models.Invoice)) == count
        customer = s.scalar(select(models.Customer).where(models.Customer.qbo_id == key))
        assert customer.excluded is True and customer.policy_name == "gentle"


def test_sync_all_syncs_every_connected_company(sandbox, sandbox_realms, settings_factory, db, vault):
    settings = support.connect(settings_factory, db, vault, sandbox, sandbox_realms["en"])
    support.connect(settings_factory, db, vault, sandbox, sandbox_realms["fr"])
    results = run.sync_all(settings, db, vault, policy=support.FAST)
    assert [r.realm for r in results] == [sandbox_realms["en"], sandbox_realms["fr"]]
    assert all(r.ok and r.mode == "full" for r in results)
    for realm in sandbox_realms.values():
        support.assert_mirror_equals_source(db, sandbox, realm)
    again = run.sync_all(settings, db, vault, policy=support.FAST)
    assert [r.mode for r in again] == ["incremental", "incremental"]


def test_a_deletion_during_a_full_sync_makes_the_next_sync_read_the_stream_again(sandbox_factory, settings_factory,
                                                                                 db, vault):
    from datetime import timedelta

    from qbo_collector.sandbox import server

    sb = sandbox_factory(companies=[server.CompanySpec(name="Shifty Co", customers=30, invoices=3600, payments=50,
                                                       seed=4)])
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    first_id = min((r["Id"] for r in sb.intuit.entities(realm, "Invoice")), key=int)
    deleted = []

    def progress(entity, done, total):  # type: ignore[no-untyped-def]
        if entity == "Invoice" and done == 1000 and not deleted:
            sb.intuit.delete(realm, "Invoice", first_id)     # every later row moves one position up
            deleted.append(first_id)
            sb.clock.advance(timedelta(seconds=2))

    summary = run.sync_company(settings, db, vault, realm, progress=progress, policy=support.FAST,
                               limiter=support.UNLIMITED)
    assert summary.ok and deleted
    live = {r["Id"] for r in sb.intuit.entities(realm, "Invoice")}
    mirrored = set(support.mirror(db, realm, models.Invoice, ["qbo_id"]))
    assert len(live - mirrored) == 1                          # the row that crossed a page boundary
    again = run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED)
    assert again.ok and again.mode == "mixed"                 # CDC saw the deletion, then Invoice in full
    support.assert_mirror_equals_source(db, sb, realm)
    assert first_id in support.deleted_ids(db, realm, models.Invoice)
    calm = run.sync_company(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED)
    assert calm.mode == "incremental" and calm.api_calls == 1
