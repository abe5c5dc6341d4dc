"""QuickBooks write-back against the sandbox: customer notes and late fees, through the real client."""

from __future__ import annotations

import json

from qbo_collector.channels import qbo_notes
from qbo_collector.sync import client as sync_client
from qbo_collector.sync import limiter
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


class _FakeClock:
    def __init__(self) -> None:
        self.now, self.slept = 0.0, []  # type: ignore[var-annotated]

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_batch_requests_are_held_to_intuits_batch_window_and_other_requests_are_not(
        fresh_sandbox, settings_factory, db, vault):
    # Intuit allows 40 batch requests a minute per realm: a run writing notes for thousands of
    # customers must wait for the window, not meet 429s it cannot back off long enough from.
    sb = fresh_sandbox
    realm = next(iter(sb.intuit.companies))
    settings = support.connect(settings_factory, db, vault, sb, realm)
    clock = _FakeClock()
    batches = limiter.RateLimiter((limiter.Window(2, 60.0),), clock=clock, sleep=clock.sleep)
    qbo = sync_client.QboClient(settings, db, vault, realm, policy=support.FAST, limiter=support.UNLIMITED,
                                batch_limiter=batches)
    for _ in range(3):
        qbo.query("SELECT * FROM Term")
    assert clock.slept == []
    body = json.dumps({"BatchItemRequest": [{"bId": "1", "Query": "SELECT * FROM Term"}]})
    for _ in range(3):
        answer = qbo.call("read terms in a batch", lambda qb: qb.batch_operation(body))
        assert answer["BatchItemResponse"][0]["QueryResponse"]["Term"]
    assert clock.slept == [60.0]                                    # the third waited for the first to leave
    assert limiter.INTUIT_BATCH_WINDOWS == (limiter.Window(40, 61.0),)
    # the product's clients share Intuit's windows; a caller that chose its own limiter (the tests,
    # the benchmarks) and no batch one is held by its limiter alone
    assert sync_client.QboClient(settings, db, vault, realm).batch_limiter is limiter.BATCHES
    assert sync_client.QboClient(settings, db, vault, realm, limiter=support.UNLIMITED).batch_limiter is None
