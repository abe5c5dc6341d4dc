"""The dispatcher: plan → outbox → claim → freshness check → send → record.

Public API (the CLI and the scheduler call these)::

    plan_company(settings, db, realm_id, *, on, days=1, problems=None) -> list[PlannedRow]  # changes nothing
    run_company(settings, db, vault, realm_id, *, now=None, dry_run=False) -> RunSummary
    run_all(settings, db, vault, *, now=None, dry_run=False) -> list[RunSummary]
    recover_sending(db) -> int          # rows left in "sending" by a crash → unknown (messages)
    reconcile_unknown(db) -> int        # settle "unknown" rows from provider events; never resends
    resolve_unknown(db, outbox_id, decision, user_id)   # "sent" | "resend" | "cancel", from the page
    waive_fee(settings, db, vault, outbox_id, user_id)  # voids the fee invoice in QuickBooks

``outbox`` holds the row states and crash recovery, ``messages`` what a message says,
``run`` the run itself (its docstring lists every decision and the company settings read).
"""

from qbo_collector.dispatch import events, messages, outbox, run
from qbo_collector.dispatch.outbox import PlannedRow, reconcile_unknown, recover_sending, resolve_unknown
from qbo_collector.dispatch.run import RunSummary, SendRetry, plan_company, run_all, run_company, waive_fee

__all__ = [
    "PlannedRow", "RunSummary", "SendRetry", "events", "messages", "outbox", "plan_company", "reconcile_unknown",
    "recover_sending", "resolve_unknown", "run", "run_all", "run_company", "waive_fee",
]
