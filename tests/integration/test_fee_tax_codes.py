"""Late fees outside the US carry a tax code: QuickBooks refuses an invoice line without one there
(fault 6000, "Make sure all your transactions have a VAT rate before you save"), so every fee of a
French, British or Canadian company failed. With no code to use, the fees wait (held, not failed), the
owner is told once, and the first run after the code is set posts them all, each once. Real
python-quickbooks over loopback, against the stand-in."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from quickbooks import exceptions
from sqlalchemy import select

from qbo_collector.db import models
from qbo_collector.sandbox import server
from tests.integration import test_dispatch_support as ds
from tests.integration.conftest_sandbox import connect

FRENCH = server.CompanySpec(name="Boulangerie Martin", country="FR", currency="EUR", timezone="Europe/Paris",
                            language="fr", customers=10, invoices=35, payments=10, seed=12)


def _envs(sandbox_factory, settings_factory, database):  # type: ignore[no-untyped-def]
    made = []

    def make(spec=FRENCH, company_settings=(), web=False, **kwargs):  # type: ignore[no-untyped-def]
        kwargs.setdefault("policy", ds.every_day_policy("france_b2b"))
        sb = sandbox_factory(companies=[spec])
        # fees from 40 days back (not only from the day of connection): the €40 of recent invoices is due
        since = (sb.clock.now() - dt.timedelta(days=40)).date().isoformat()
        env = ds.build(sb, settings_factory, database, web=web,
                       company_settings={"fees_from": since, **dict(company_settings)}, **kwargs)
        made.append(env)
        return env

    yield make
    ds.stop(made)


@pytest.fixture
def make_env(sandbox_factory, settings_factory, sqlite_db):  # type: ignore[no-untyped-def]
    yield from _envs(sandbox_factory, settings_factory, sqlite_db)


@pytest.fixture
def make_any_env(sandbox_factory, settings_factory, db):  # type: ignore[no-untyped-def]
    """On SQLite and on PostgreSQL."""
    yield from _envs(sandbox_factory, settings_factory, db)


def _code(env: ds.Env, name: str) -> str:
    return next(c["Id"] for c in env.sb.intuit.entities(env.realm, "TaxCode") if c["Name"] == name)


def _fee_lines(env: ds.Env, fee: models.Outbox) -> list[dict]:
    """The QuickBooks line(s) of a posted fee: its invoice's, or the line marked with its key."""
    if fee.provider_id.startswith("line:"):
        invoice = env.sb.intuit.get(env.realm, "Invoice", fee.invoice_ids[0])
        return [l for l in invoice["Line"] if fee.dedupe_key in str(l.get("Description", ""))]
    invoice = env.sb.intuit.get(env.realm, "Invoice", fee.provider_id)
    return [l for l in invoice["Line"] if l["DetailType"] == "SalesItemLineDetail"]


def _set(env: ds.Env, **settings: str) -> None:
    with env.db.session() as s:
        company = s.scalar(select(models.Company).where(models.Company.realm_id == env.realm))
        company.settings = {**company.settings, **settings}


@pytest.mark.parametrize("mode", ["invoice", "line"])
def test_french_fees_carry_the_out_of_scope_code_and_are_posted(make_env, mode) -> None:  # type: ignore[no-untyped-def]
    env = make_env(company_settings={"late_fee_mode": mode})
    env.run()
    # (in line mode a second fee on an invoice the first one changed is planned again next run)
    fees = [r for r in env.rows(kind="fee") if r.status.value != "cancelled"]
    assert fees and {r.status.value for r in fees} == {"sent"}, {(r.status.value, r.status_reason) for r in fees}
    assert {(r.payload or {}).get("fee_kind") for r in fees} >= {"indemnity"}  # the €40 (and the interest)
    out_of_scope = _code(env, "Hors champ")
    for fee in fees:
        lines = _fee_lines(env, fee)
        assert len(lines) == 1 and lines[0]["SalesItemLineDetail"]["TaxCodeRef"]["value"] == out_of_scope


def test_the_owners_fee_tax_code_wins(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    exempt = _code(env, "Exonéré")
    _set(env, fee_tax_code=exempt)
    env.run()
    fees = env.rows(kind="fee")
    assert fees and {r.status.value for r in fees} == {"sent"}
    assert {l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for f in fees for l in _fee_lines(env, f)} == {exempt}


def _only_rates(env: ds.Env) -> None:
    """The owner's list holds only rates: no code reads out of scope, no VAT or exempt."""
    for name in ("Hors champ", "Exonéré"):
        env.sb.intuit.update(env.realm, "TaxCode", _code(env, name), Active=False)


def _fee_documents(env: ds.Env) -> list[dict]:
    """What QuickBooks holds of fees: fee invoices, and fee lines on the original invoices."""
    return [i for i in env.sb.intuit.entities(env.realm, "Invoice") if "Late fee" in str(i.get("PrivateNote"))
            or any("Late fee" in str(l.get("Description", "")) for l in i.get("Line") or ())]


def _held_alerts(env: ds.Env) -> list[models.Outbox]:
    return [r for r in env.rows(kind="alert") if (r.payload or {}).get("topic") == "fee_tax_code"]


def _owner_mails(env: ds.Env, words: str) -> list[dict]:
    return [m for m in env.sb.sendgrid.messages if m["to"] == "owner@maple.example" and words in m["text"]]


@pytest.mark.parametrize("mode", ["invoice", "line"])
def test_with_no_fitting_code_fees_wait_the_owner_is_told_once_and_every_one_is_posted_once_it_is_set(
        make_any_env, mode) -> None:  # type: ignore[no-untyped-def]
    env = make_any_env(company_settings={"late_fee_mode": mode})
    _only_rates(env)
    # three runs: today, tomorrow, and after another month of interest came due
    summaries = [env.run(now=env.now_at(12, days=days)) for days in (0, 1, 40)]
    held = env.rows(kind="fee")
    # no pile of failures: each period is one row, waiting with what to set, its dedupe key kept
    assert held and {r.status.value for r in held} == {"planned"}, {(r.status.value, r.status_reason) for r in held}
    assert not [r for r in held if "#cancelled" in r.dedupe_key]
    assert all("fee_tax_code" in r.status_reason and r.payload["held"]["cause"] == "none" for r in held)
    assert {r.payload["held"]["since"] for r in held} == {env.now_at(12).date().isoformat()}
    first_run = summaries[0].held
    assert 0 < first_run < len(held)  # the later month's interest (and invoices late since) wait too
    for summary in summaries:
        assert not summary.statuses["failed"] and summary.held
        [problem] = [p for p in summary.problems if "on hold" in p]
        assert problem.startswith(f"{summary.held} late fee(s) on hold, not posted: ") and "fee_tax_code" in problem
    # the owner is told once, in the run that first held them, in the company's language (French)
    assert [(r.channel, r.status.value) for r in _held_alerts(env)] == [("owner_email", "sent")]
    assert len(_owner_mails(env, "Les frais de retard de Boulangerie Martin sont en attente")) == 1
    # nothing posted, nobody told of a fee
    assert not _fee_documents(env)
    assert not env.rows(template_key="late_fee_notice")

    zero = _code(env, "TVA 0 %")
    _set(env, fee_tax_code=zero)
    summary = env.run(now=env.now_at(13, days=40))
    assert not summary.held and not summary.statuses["failed"], summary.problems
    fees = env.rows(kind="fee")
    posted = [r for r in fees if r.status.value == "sent"]
    # every period held is posted, once (one row, one fee in QuickBooks, its dedupe key unchanged)
    assert sorted(r.dedupe_key for r in posted) == sorted(r.dedupe_key for r in held)
    assert len(fees) == len(held)
    lines = [l for f in posted for l in _fee_lines(env, f)]
    assert len(lines) == len(posted) and {l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for l in lines} == {zero}
    if mode == "invoice":
        assert len({r.provider_id for r in posted}) == len(_fee_documents(env)) == len(posted)
    # each customer is told of a fee only once it is posted
    notices = env.rows(template_key="late_fee_notice")
    sent_at = {r.dedupe_key: r.sent_at for r in posted}
    assert notices and all(n.created_at >= sent_at[n.payload["fee_key"]] for n in notices)
    assert len(_held_alerts(env)) == 1  # and the owner was not told again


def test_a_chosen_code_that_is_not_active_holds_the_fees_and_is_told_as_its_own_cause(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    _only_rates(env)
    env.run()
    [none] = _held_alerts(env)
    _set(env, fee_tax_code="999")  # a code the company does not have: a cause of its own, told once too
    for days in (1, 2):
        summary = env.run(now=env.now_at(12, days=days))
        assert summary.held and "Id 999" in summary.problems[-1]
    held = env.rows(kind="fee")
    assert {r.status.value for r in held} == {"planned"}
    assert {(r.payload["held"]["cause"], r.payload["held"]["tax_code"]) for r in held} == {("chosen", "999")}
    alerts = _held_alerts(env)
    assert [r.id for r in alerts if r.id != none.id and r.channel == "owner_email"] and len(alerts) == 2
    assert "(identifiant 999, fee_tax_code)" in alerts[-1].payload["said"]["fr"]
    # a fitting code appears in QuickBooks and the setting is cleared: the next run posts them all
    env.sb.intuit.update(env.realm, "TaxCode", _code(env, "Hors champ"), Active=True)
    _set(env, fee_tax_code="")
    env.run(now=env.now_at(12, days=3))
    fees = env.rows(kind="fee")
    assert {r.status.value for r in fees} == {"sent"} and len(fees) == len(held)
    out_of_scope = _code(env, "Hors champ")
    assert {l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for f in fees for l in _fee_lines(env, f)} == {out_of_scope}


@pytest.mark.parametrize(("language", "said", "english"), [
    pytest.param("fr", "Les frais de retard de Boulangerie Martin sont en attente\u00a0: QuickBooks exige un code de "
                 "taxe sur chaque ligne de facture", False, id="a French owner reads it in French"),
    pytest.param("en", "Late fees of Boulangerie Martin are on hold: QuickBooks asks for a tax code on every "
                 "invoice line", True, id="an English owner in English"),
])
def test_the_owner_reads_the_fees_on_hold_alert_in_the_company_language(make_env, language, said, english) -> None:  # type: ignore[no-untyped-def]
    env = make_env()
    with env.db.session() as s:
        s.scalar(select(models.Company)).language = language
    _only_rates(env)
    env.run()
    [mail] = _owner_mails(env, said)
    assert said[:40] in mail["subject"] and said in mail["html"]
    assert f"/companies/{env.realm}/channels#fee_tax_code" in mail["text"]
    for part in (mail["subject"], mail["text"], mail["html"]):
        assert ("Late fees of" in part) is english and ("are on hold" in part) is english


def test_the_pages_say_the_fees_are_on_hold_until_they_are_posted(make_env) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_pages_support import browser

    env = make_env(web=True)
    owner = browser(env.web.app, env.db, "owner@maple.example", realm=env.realm)
    channels = f"/companies/{env.realm}/channels"
    assert 'id="fees-held' not in owner.get(channels).get_data(as_text=True)
    _only_rates(env)
    env.run()
    n = len(env.rows(kind="fee"))
    page = owner.get(channels).get_data(as_text=True)
    assert 'id="fees-held-badge"' in page and "Late fees on hold" in page
    assert "Late fees are on hold since" in page and "none of your QuickBooks tax codes is named out of scope" in page
    assert f"{n} late fees wait." in page
    dashboard = owner.get(f"/companies/{env.realm}/dashboard").get_data(as_text=True)
    assert 'id="fees-held-badge"' in dashboard and f'href="{channels}#fees-held"' in dashboard
    upcoming = owner.get(f"/companies/{env.realm}/upcoming?kind=fee").get_data(as_text=True)
    assert upcoming.count(">on hold</a>") == n
    _set(env, fee_tax_code=_code(env, "TVA 0 %"))
    env.run(now=env.now_at(13))
    for url in (channels, f"/companies/{env.realm}/dashboard"):
        assert 'id="fees-held' not in owner.get(url).get_data(as_text=True)


def test_a_us_companys_fees_carry_no_tax_code(make_env) -> None:  # type: ignore[no-untyped-def]
    env = make_env(ds.SMALL, policy=ds.every_day_policy())
    assert not env.run().held
    fees = env.rows(kind="fee")
    assert fees and {r.status.value for r in fees} == {"sent"}
    assert all("TaxCodeRef" not in l["SalesItemLineDetail"] for f in fees for l in _fee_lines(env, f))
    assert not env.sb.intuit.entities(env.realm, "TaxCode")


def test_the_stand_in_refuses_a_vat_less_line_outside_the_us(sandbox_factory) -> None:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(companies=[FRENCH, ds.SMALL])
    fr_realm, us_realm = list(sb.intuit.companies)
    conn = connect(sb, fr_realm)
    codes = {c["Name"]: c for c in conn.qb.query("SELECT * FROM TaxCode")["QueryResponse"]["TaxCode"]}
    assert {"TVA 20 %", "TVA 5,5 %", "TVA 0 %", "Exonéré", "Hors champ"} <= set(codes)
    assert {k for k in codes["Hors champ"]} >= {"Id", "Name", "Description", "Active", "Taxable"}
    line = {"Amount": 40, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {"ItemRef": {"value": "1"}}}
    body = {"CustomerRef": {"value": "1"}, "Line": [line]}
    for detail in ({}, {"TaxCodeRef": {"value": "999"}}):
        refused = dict(body, Line=[dict(line, SalesItemLineDetail={"ItemRef": {"value": "1"}, **detail})])
        with pytest.raises(exceptions.QuickbooksException) as err:
            conn.qb.create_object("Invoice", json.dumps(refused))
        assert err.value.error_code == 6000
        assert "Make sure all your transactions have a VAT rate before you save." in err.value.detail
    made = conn.qb.create_object("Invoice", json.dumps(dict(body, Line=[dict(line, SalesItemLineDetail={
        "ItemRef": {"value": "1"}, "TaxCodeRef": {"value": codes["Hors champ"]["Id"]}})])))["Invoice"]
    assert made["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"]["value"] == codes["Hors champ"]["Id"]
    # an update through the API is held to the same rule
    with pytest.raises(exceptions.QuickbooksException) as err:
        conn.qb.update_object("Invoice", json.dumps({"Id": made["Id"], "SyncToken": made["SyncToken"], "sparse": True,
                                                     "Line": [line]}))
    assert err.value.error_code == 6000
    # the US has no per-line codes
    us = connect(sb, us_realm)
    assert us.qb.create_object("Invoice", json.dumps(body))["Invoice"]["TotalAmt"] == 40


@pytest.mark.parametrize("how", ["customer waived", "excluded", "policy without fees"])
def test_a_fee_on_hold_that_is_no_longer_owed_is_cancelled_not_posted(make_env, how) -> None:  # type: ignore[no-untyped-def]
    """A fee on hold can wait weeks for its setting: the customer's fees waived, the customer excluded
    or given a policy without fees meanwhile, it is cancelled when the code comes, not posted."""
    from qbo_collector import casework

    env = make_env()
    _only_rates(env)
    env.run()
    held = env.rows(kind="fee")
    assert held and {r.status.value for r in held} == {"planned"}
    customer_id = held[0].customer_qbo_id
    with env.db.session() as s:
        company = s.scalar(select(models.Company))
        if how == "customer waived":
            casework.waive_fee(s, company, customer_id, on=env.now_at(12).date())
        elif how == "excluded":
            casework.exclude(s, company, customer_id, excluded=True, on=env.now_at(12).date())
        else:
            casework.assign_policy(s, company, customer_id, "friendly", on=env.now_at(12).date())  # no fees
    _set(env, fee_tax_code=_code(env, "TVA 0 %"))
    env.run(now=env.now_at(13, days=1))
    mine = [r for r in env.rows(kind="fee") if r.customer_qbo_id == customer_id]
    assert mine and {r.status.value for r in mine} == {"cancelled"}
    assert all(r.status_reason.startswith("Cancelled: late fees on invoice") for r in mine)
    others = [r for r in env.rows(kind="fee") if r.customer_qbo_id != customer_id]
    assert not others or {r.status.value for r in others} == {"sent"}  # the other customers' fees go
