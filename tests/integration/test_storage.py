"""The mirror's storage on SQLite and PostgreSQL: exact money, UTC times, keys, locks, encryption."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from qbo_collector.db import migrate, models


def _downgrade(db, revision: str) -> None:  # type: ignore[no-untyped-def]
    """Take the schema down to ``revision`` (each migration test then upgrades it again)."""
    from alembic import command

    with db.engine.begin() as connection:
        cfg = migrate.alembic_config(db.url)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)


def _company(s, realm="9130000000001", **kw):
    c = models.Company(realm_id=realm, name=kw.pop("name", "Acme"), currency=kw.pop("currency", "USD"), settings={}, **kw)
    s.add(c)
    s.flush()
    return c


def test_migrations_reach_head(db):
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config(db.url)).get_current_head()
    assert migrate.current(db) == head


def test_the_credit_indexes_come_and_go_with_their_migration(db):
    """0009: every run reads the customers' unused credit through these two indexes."""
    from sqlalchemy import inspect

    def indexes() -> set[str]:
        found = inspect(db.engine)
        return {i["name"] for table in ("payment", "credit_memo") for i in found.get_indexes(table)}

    wanted = {"ix_payment_company_unapplied", "ix_credit_memo_company_balance"}
    assert wanted <= indexes()
    _downgrade(db, "0008")
    assert not wanted & indexes()
    migrate.upgrade(db)
    assert wanted <= indexes()


def test_the_customer_parent_columns_come_with_a_full_read_of_the_customers(db):
    """0010: a job's parent and BillWithParent; the customers already mirrored are read again in full."""
    from sqlalchemy import inspect

    def columns() -> set[str]:
        return {c["name"] for c in inspect(db.engine).get_columns("customer")}

    with db.session() as s:
        c = _company(s)
        synced = datetime(2026, 12, 1, tzinfo=timezone.utc)
        s.add_all([models.SyncCursor(company_id=c.id, entity=e, full_sync_at=synced, changed_since=synced)
                   for e in ("Customer", "Invoice")])
    assert {"parent_qbo_id", "bill_with_parent"} <= columns()
    _downgrade(db, "0009")
    assert not {"parent_qbo_id", "bill_with_parent"} & columns()
    migrate.upgrade(db)
    assert {"parent_qbo_id", "bill_with_parent"} <= columns()
    with db.session() as s:
        full = {cur.entity: cur.full_sync_at for cur in s.scalars(select(models.SyncCursor))}
        s.add(models.Customer(company_id=c.id, qbo_id="77", display_name="Kitchen remodel", parent_qbo_id="7"))
    assert full["Customer"] is None and full["Invoice"] is not None  # the next sync reads the customers in full
    with db.session() as s:
        assert s.scalar(select(models.Customer.bill_with_parent).where(models.Customer.qbo_id == "77")) is False


def test_the_customer_parent_index_comes_and_goes_with_its_migration(db):
    """0011: a parent's unused credit pays its billed jobs' invoices; they are found through this index."""
    from sqlalchemy import inspect

    def indexes() -> set[str]:
        return {i["name"] for i in inspect(db.engine).get_indexes("customer")}

    assert "ix_customer_company_parent" in indexes()
    _downgrade(db, "0010")
    assert "ix_customer_company_parent" not in indexes()
    migrate.upgrade(db)
    assert "ix_customer_company_parent" in indexes()


def test_invoice_fee_lines_come_with_their_migration_and_a_full_read_where_fees_were_flagged(db):
    """0012: the fee lines of an invoice (``late_fee_mode`` "line"). The mapping used to flag any invoice
    with one "Late fee" line as a fee invoice; the companies with a flagged invoice read their invoices
    in full at the next sync, which sets both columns again from the lines. The others are left alone."""
    from sqlalchemy import inspect

    def columns() -> set[str]:
        return {c["name"] for c in inspect(db.engine).get_columns("invoice")}

    synced = datetime(2026, 12, 1, tzinfo=timezone.utc)
    with db.session() as s:
        flagged, clean = _company(s), models.Company(realm_id="2", name="Other", currency="USD")
        s.add(clean)
        s.flush()
        s.add(models.Invoice(company_id=flagged.id, qbo_id="9", customer_qbo_id="1", currency="USD",
                             total=Decimal("1015"), balance=Decimal("1015"), is_late_fee=True))
        s.add(models.Invoice(company_id=clean.id, qbo_id="9", customer_qbo_id="1", currency="USD",
                             total=Decimal("1000"), balance=Decimal("1000")))
        s.add_all([models.SyncCursor(company_id=c.id, entity=e, full_sync_at=synced, changed_since=synced)
                   for c in (flagged, clean) for e in ("Customer", "Invoice")])
        ids = {"flagged": flagged.id, "clean": clean.id}
    _downgrade(db, "0011")
    assert "fee_lines" not in columns()
    migrate.upgrade(db)
    assert "fee_lines" in columns()
    with db.session() as s:
        full = {(cur.company_id, cur.entity): cur.full_sync_at for cur in s.scalars(select(models.SyncCursor))}
        assert set(s.scalars(select(models.Invoice.fee_lines))) == {Decimal(0)}
    assert full == {(ids["flagged"], "Customer"): synced, (ids["flagged"], "Invoice"): None,
                    (ids["clean"], "Customer"): synced, (ids["clean"], "Invoice"): synced}


def test_the_login_failures_table_comes_and_goes_with_its_migration(db):
    """0013: failed logins in the database, counted alike by every web process."""
    from sqlalchemy import inspect

    def tables() -> set[str]:
        return set(inspect(db.engine).get_table_names())

    with db.session() as s:
        s.add(models.LoginFailure(key="ip:203.0.113.9", at=datetime(2026, 12, 8, 10, tzinfo=timezone.utc)))
    assert {i["name"] for i in inspect(db.engine).get_indexes("login_failure")} == {
        "ix_login_failure_key_at", "ix_login_failure_at"}
    _downgrade(db, "0012")
    assert "login_failure" not in tables()
    migrate.upgrade(db)
    assert "login_failure" in tables()
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(models.LoginFailure)) == 0


def test_the_session_epoch_comes_and_goes_with_its_migration(db):
    """0014: a session counter per user, 0 for the users already there."""
    from sqlalchemy import inspect

    def columns() -> set[str]:
        return {c["name"] for c in inspect(db.engine).get_columns("app_user")}

    _downgrade(db, "0013")
    assert "session_epoch" not in columns()
    with db.engine.begin() as connection:
        connection.execute(text("INSERT INTO app_user (email, password_hash, language, created_at, is_admin) "
                                "VALUES ('a@example.com', 'x', 'en', :at, :no)"),
                           {"at": datetime(2026, 12, 7, tzinfo=timezone.utc), "no": False})
    migrate.upgrade(db)
    with db.session() as s:
        assert s.scalar(select(models.User.session_epoch)) == 0


def test_the_customer_fee_start_comes_and_goes_with_its_migration(db):
    """0015: the day a customer began to bear fees under its present rules; customers already there have none."""
    from datetime import date

    from sqlalchemy import inspect

    def columns() -> set[str]:
        return {c["name"] for c in inspect(db.engine).get_columns("customer")}

    with db.session() as s:
        c = _company(s)
        s.add(models.Customer(company_id=c.id, qbo_id="1", display_name="Acme", fees_from=date(2026, 12, 9)))
    _downgrade(db, "0014")
    assert "fees_from" not in columns()
    migrate.upgrade(db)
    assert "fees_from" in columns()
    with db.session() as s:
        assert s.scalar(select(models.Customer.fees_from)) is None


def test_invoices_paid_before_the_upgrade_are_settled_for_the_planner(db):
    """0016: the interest up to the payment day is billed for invoices paid from this version on; those
    paid before are marked NEVER, so the first run does not bill it months after the customer paid."""
    from datetime import date

    from qbo_collector import snapshot

    with db.session() as s:
        c = _company(s)
        for qbo_id, status, next_on in (("1", models.InvoiceStatus.paid, date(2026, 5, 2)),
                                        ("2", models.InvoiceStatus.paid, None),
                                        ("3", models.InvoiceStatus.open, date(2026, 12, 9))):
            s.add(models.Invoice(company_id=c.id, qbo_id=qbo_id, customer_qbo_id="1", currency="EUR", status=status,
                                 total=Decimal("10000"), balance=Decimal(0 if status.value == "paid" else 10000),
                                 next_action_on=next_on))
    _downgrade(db, "0015")
    migrate.upgrade(db)
    with db.session() as s:
        found = dict(s.execute(select(models.Invoice.qbo_id, models.Invoice.next_action_on)).all())
    assert found == {"1": snapshot.NEVER, "2": snapshot.NEVER, "3": date(2026, 12, 9)}


def test_amounts_are_exact_decimals_in_sums_and_comparisons(db):
    with db.session() as s:
        c = _company(s)
        for i, bal in enumerate(["0.10", "0.20", "1234567.89", "-5.01"]):
            s.add(models.Invoice(company_id=c.id, qbo_id=str(i), customer_qbo_id="1", currency="USD",
                                 total=Decimal(bal), balance=Decimal(bal)))
    with db.session() as s:
        total = s.scalar(select(func.sum(models.Invoice.balance)))
        positive = s.scalars(select(models.Invoice.balance).where(models.Invoice.balance > Decimal("0.15"))).all()
    assert total == Decimal("1234563.18") and isinstance(total, Decimal)
    assert sorted(positive) == [Decimal("0.20"), Decimal("1234567.89")]


def test_datetimes_come_back_aware_in_utc(db):
    paris = timezone(timedelta(hours=1))
    with db.session() as s:
        c = _company(s)
        c.last_sync_at = datetime(2026, 3, 29, 2, 30, tzinfo=paris)
    with db.session() as s:
        value = s.scalar(select(models.Company.last_sync_at))
    assert value == datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc) and value.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(db):
    with pytest.raises(Exception, match="naive datetime"):
        with db.session() as s:
            c = _company(s)
            c.last_sync_at = datetime(2026, 1, 1)
            s.flush()


def test_one_row_per_company_and_qbo_id(db):
    with pytest.raises(IntegrityError):
        with db.session() as s:
            c = _company(s)
            s.add(models.Customer(company_id=c.id, qbo_id="58", display_name="A"))
            s.add(models.Customer(company_id=c.id, qbo_id="58", display_name="B"))
            s.flush()


def test_same_qbo_id_in_two_companies_is_two_rows(db):
    with db.session() as s:
        a, b = _company(s, "1"), _company(s, "2")
        s.add_all([models.Customer(company_id=a.id, qbo_id="58", display_name="A"),
                   models.Customer(company_id=b.id, qbo_id="58", display_name="B")])
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(models.Customer)) == 2


def test_tokens_are_unreadable_in_the_database(db, vault):
    access, refresh = "access-token-plaintext-AAAA", "refresh-token-plaintext-RRRR"
    with db.session() as s:
        c = _company(s)
        s.add(models.Token(company_id=c.id, access_token=vault.encrypt(access), refresh_token=vault.encrypt(refresh),
                           access_expires_at=datetime.now(timezone.utc)))
    with db.engine.connect() as conn:
        raw = " ".join(str(v) for v in conn.execute(text("SELECT * FROM token")).one())
    assert access not in raw and refresh not in raw
    if db.url.startswith("sqlite"):
        blob = open(db.url.split("///", 1)[1], "rb").read()
        wal = db.url.split("///", 1)[1] + "-wal"
        import os
        if os.path.exists(wal):
            blob += open(wal, "rb").read()
        assert access.encode() not in blob and refresh.encode() not in blob
    with db.session() as s:
        assert vault.decrypt(s.scalar(select(models.Token.refresh_token))) == refresh


def test_locked_transactions_never_lose_an_update(db):
    """Read-modify-write under ``locked_session`` + FOR UPDATE from 4 threads: every increment survives."""
    with db.session() as s:
        c = _company(s)
        s.add(models.Token(company_id=c.id, access_token="x", refresh_token="y",
                           access_expires_at=datetime.now(timezone.utc), version=0))

    def bump() -> None:
        for _ in range(10):
            with db.locked_session() as s:
                token = s.scalar(select(models.Token).with_for_update())
                current = token.version
                s.execute(text("SELECT 1"))  # widen the window between read and write
                token.version = current + 1

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with db.session() as s:
        assert s.scalar(select(models.Token.version)) == 40


def test_deleting_a_company_takes_its_mirror_along(db):
    with db.session() as s:
        c = _company(s)
        s.add(models.Customer(company_id=c.id, qbo_id="1", display_name="A"))
        s.add(models.Activity(company_id=c.id, kind="x", message="m"))
    with db.session() as s:
        s.delete(s.scalar(select(models.Company)))
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(models.Customer)) == 0


def test_an_outbox_dedupe_key_exists_once(db):
    """Invariant 2 rests on this constraint, not on the planner being careful."""
    due = datetime(2026, 11, 23, 14, tzinfo=timezone.utc)
    with db.session() as s:
        c = _company(s)
        s.add(models.Outbox(company_id=c.id, dedupe_key="r:reminder:42:step1", kind="reminder", due_at=due))
    with pytest.raises(IntegrityError):
        with db.session() as s:
            s.add(models.Outbox(company_id=s.scalar(select(models.Company.id)), dedupe_key="r:reminder:42:step1",
                                kind="reminder", due_at=due))
    with db.session() as s:
        assert s.scalar(select(models.Outbox.status)) == models.OutboxStatus.planned


def test_the_sender_of_a_text_stop_comes_and_goes_with_its_migration(db):
    """0017: a text opt-out holds for the sender it answers; the blocks kept before hold for every sender."""
    from sqlalchemy import inspect

    def columns() -> set[str]:
        return {c["name"] for c in inspect(db.engine).get_columns("contact_block")}

    with db.session() as s:
        s.add(models.ContactBlock(channel="sms", address="+14155550142", reason="stop"))
    _downgrade(db, "0016")
    assert "sender" not in columns()
    migrate.upgrade(db)
    with db.session() as s:
        assert s.scalar(select(models.ContactBlock.sender)) == ""  # kept: for every sender
        s.add(models.ContactBlock(channel="sms", address="+14155550142", reason="stop", sender="+14155550101"))
    with pytest.raises(IntegrityError), db.session() as s:
        s.add(models.ContactBlock(channel="sms", address="+14155550142", reason="21610", sender="+14155550101"))
    _downgrade(db, "0016")  # one block per number again: the first one
    with db.engine.connect() as connection:
        assert connection.execute(text("SELECT address, reason FROM contact_block")).all() == [("+14155550142", "stop")]
    migrate.upgrade(db)


def test_a_stopped_email_address_stops_the_customers_using_it_and_no_lookalike(db):
    """``_`` and ``%`` are ordinary characters of an address, not patterns; case and spaces do not matter."""
    from qbo_collector.dispatch.run import block_contact

    with db.session() as s:
        c = _company(s)
        s.add_all([models.Customer(company_id=c.id, qbo_id="1", display_name="Ann", email=" Ann_Lee@Example.com "),
                   models.Customer(company_id=c.id, qbo_id="2", display_name="Annx", email="annxlee@example.com"),
                   models.Customer(company_id=c.id, qbo_id="3", display_name="Pct", email="a%b@example.com"),
                   models.Customer(company_id=c.id, qbo_id="4", display_name="Pc2", email="azzb@example.com")])
    with db.session() as s:
        block_contact(s, "email", "ann_lee@example.com", "bounce")
        block_contact(s, "email", "A%B@example.com", "spamreport")
    with db.session() as s:
        stopped = dict(s.execute(select(models.Customer.qbo_id, models.Customer.email_stopped)).all())
        blocks = sorted(s.scalars(select(models.ContactBlock.address)))
    assert stopped == {"1": "bounce", "2": None, "3": "spamreport", "4": None}
    assert blocks == ["a%b@example.com", "ann_lee@example.com"]


def test_an_invoice_keeps_the_first_day_quickbooks_emailed_it(db):
    """QuickBooks' DeliveryInfo holds the last send: a re-send never moves ``sent_on`` later, and a
    page that says nothing (NULL) never erases it; an earlier day does replace it."""
    from datetime import date

    from qbo_collector.sync import mirror, streams

    with db.session() as s:
        company_id = _company(s).id
    ctx = streams.Context(home_currency="USD", term_days={})
    seen = []
    for sent in (None, "2026-11-02", "2026-12-01", None, "2026-10-30"):
        row = {"Id": "42", "SyncToken": "1", "DocNumber": "1042", "CustomerRef": {"value": "7"}, "TxnDate": "2026-10-01",
               "DueDate": "2026-10-31", "TotalAmt": "100.00", "Balance": "100.00", "CurrencyRef": {"value": "USD"},
               "EmailStatus": "EmailSent" if sent else "NotSet",
               **({"DeliveryInfo": {"DeliveryType": "Email", "DeliveryTime": f"{sent}T10:00:00-08:00"}} if sent else {})}
        with db.session() as s:
            mirror.upsert(s, "invoice", company_id, [streams.map_row(streams.INVOICE, row, ctx).values],
                          datetime(2026, 12, 7, tzinfo=timezone.utc))
        with db.session() as s:
            seen.append(s.scalar(select(models.Invoice.sent_on).where(models.Invoice.qbo_id == "42")))
    assert seen == [None, date(2026, 11, 2), date(2026, 11, 2), date(2026, 11, 2), date(2026, 10, 30)]
