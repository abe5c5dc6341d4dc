"""QuickBooks write-back against the sandbox: customer notes and late fees, through the real client."""

from __future__ import annotations

from qbo_collector.channels import qbo_notes
from qbo_collector.sync import client as sync_client
from tests.integration import test_sync_support as support


def _writer(settings, db, vault, realm):  # type: ignore[no-untyped-def]
    return qbo_notes.QboNotes(sync_client.QboClient(settings, db, vault, realm, policy=support.FAST,
                                                    limiter=support.UNLIMITED))


def test_a_stale_sync_token_of_an_inactive_customer_is_read_again_and_the_notes_written(
        fresh_sandbox, settings_factory, db, vault):
    # Customer is a list entity: a query sees inactive rows only with "Active IN (true, false)".
    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    customer = sb.intuit.entities(realm, "Customer")[0]
    stale_token = customer["SyncToken"]
    sb.intuit.update(realm, "Customer", customer["Id"], Notes="Moved to Lyon.")
    sb.intuit.delete(realm, "Customer", customer["Id"])             # made inactive in QuickBooks
    result = _writer(settings, db, vault, realm).write_notes(
        [qbo_notes.NoteUpdate(customer["Id"], ["2026-11-20 Late fee waived"], customer.get("Notes"), stale_token)])
    assert not result.failed and customer["Id"] in result.written
    notes = sb.intuit.get(realm, "Customer", customer["Id"])["Notes"]
    assert notes.startswith("Moved to Lyon.") and "2026-11-20 Late fee waived" in notes
