"""A text answers the sender it was sent to (its ``To``): replies, HELP, STOP and START reach the
company texting from that number, never another company with the same person as a customer.

Two companies in one installation, one person a customer of both; the Twilio stand-in signs the
inbound webhooks and keeps opt-outs per sender as Twilio does. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from qbo_collector.db import models
from qbo_collector.sandbox import server
from tests.integration import oauth_helpers
from tests.integration import test_dispatch_support as ds

NUMBER = "+14155550142"                      # the person both companies have as a customer
A_OWN, B_OWN = "+14155550101", "+14155550102"  # each company's own number (Channels page)
SHARED = "+15017122661"                      # the server's TWILIO_FROM_NUMBER (ds.provider_settings)
SECOND = dataclasses.replace(ds.SMALL, name="Second Company US", seed=12)


@dataclasses.dataclass
class Pair:
    a: ds.Env
    b: ds.Env
    person: dict[str, str]  # realm → the person's customer Id there

    def text(self, body: str, *, to: str) -> None:
        """The person texts ``body`` to ``to``; the signed webhook has arrived when this returns."""
        self.a.sb.twilio.inbound(NUMBER, body, to=to)
        self.a.flush()

    def own(self, **senders: str) -> None:
        """Give companies ``a``/``b`` their own sender (``sms_from``)."""
        with self.a.db.session() as s:
            for name, sender in senders.items():
                company = _company(s, getattr(self, name))
                company.settings = {**company.settings, "sms_from": sender}

    def stopped(self) -> dict[str, str | None]:
        with self.a.db.session() as s:
            return {name: s.scalar(select(models.Customer.sms_stopped).where(
                models.Customer.company_id == _company(s, env).id, models.Customer.qbo_id == self.person[env.realm]))
                for name, env in (("a", self.a), ("b", self.b))}

    def timeline(self, kind: str) -> dict[str, int]:
        """How many lines of ``kind`` each company's timeline has."""
        with self.a.db.session() as s:
            return {name: s.scalar(select(func.count()).select_from(models.Activity).where(
                models.Activity.company_id == _company(s, env).id, models.Activity.kind == kind))
                for name, env in (("a", self.a), ("b", self.b))}

    def reply_alerts(self) -> dict[str, list[str]]:
        """The owner alerts about a reply each company has, by their reason."""
        with self.a.db.session() as s:
            return {name: [r.reason for r in s.scalars(select(models.Outbox).where(
                models.Outbox.company_id == _company(s, env).id, models.Outbox.kind == "alert",
                models.Outbox.dedupe_key.contains(":alert:reply:")))]
                for name, env in (("a", self.a), ("b", self.b))}

    def senders_of_texts_to_the_person(self) -> set[str]:
        return {m["from"] for m in self.a.sb.twilio.messages if m["to"] == NUMBER}


def _company(s: Any, env: ds.Env) -> models.Company:
    return s.scalar(select(models.Company).where(models.Company.realm_id == env.realm))


def _give_the_number(sb: server.Sandbox, realm: str) -> str:
    """The active customer with the most open invoices gets the person's mobile; returns its Id."""
    open_ = collections.Counter(i["CustomerRef"]["value"] for i in sb.intuit.entities(realm, "Invoice") if i["Balance"] > 0)
    chosen = max((c for c in sb.intuit.entities(realm, "Customer") if c.get("Active", True) and not c.get("Job")),
                 key=lambda c: open_[c["Id"]])
    sb.intuit.update(realm, "Customer", chosen["Id"], Mobile={"FreeFormNumber": "(415) 555-0142"})
    return str(chosen["Id"])


@pytest.fixture
def pair(sandbox_factory, settings_factory, db) -> Iterator[Pair]:  # type: ignore[no-untyped-def]
    sb = sandbox_factory(companies=[ds.SMALL, SECOND])
    person = {realm: _give_the_number(sb, realm) for realm in sb.intuit.companies}
    policy = ds.text_and_email_policy()
    policy.update(min_gap_days=0, alert_owner_when_late=False)
    a = ds.build(sb, settings_factory, db, policy=policy)  # serves the webhooks of both
    b_realm = next(r for r in sb.intuit.companies if r != a.realm)
    oauth_helpers.connect(a.settings, db, a.vault, realm=b_realm, sandbox=sb)
    b = ds.Env(sb=sb, settings=a.settings, db=db, vault=a.vault, realm=b_realm, web=a.web)
    b.sync()
    with db.session() as s:
        company = _company(s, b)
        company.settings = {"owner_email": "owner@second.example", "sender_name": "Kim Lee"}
        company.policy = policy
    yield Pair(a=a, b=b, person=person)
    ds.stop([a])


def test_a_reply_to_a_companys_own_number_reaches_that_company_only(pair: Pair) -> None:
    pair.own(a=A_OWN, b=B_OWN)
    pair.text("I will pay invoice 1042 on Friday, my card was declined", to=A_OWN)
    pair.text("HELP", to=A_OWN)
    alerts = pair.reply_alerts()
    assert len(alerts["a"]) == 1 and "my card was declined" in alerts["a"][0]
    assert alerts["b"] == []
    assert pair.timeline("sms.reply") == {"a": 1, "b": 0}
    assert pair.timeline("sms.help") == {"a": 1, "b": 0}


def test_stop_to_a_companys_own_number_stops_that_company_only_and_start_lifts_it(pair: Pair) -> None:
    pair.own(a=A_OWN, b=B_OWN)
    pair.text("STOP", to=A_OWN)
    assert pair.stopped() == {"a": "stop", "b": None}
    assert pair.timeline("sms.opt_out") == {"a": 1, "b": 0}
    pair.a.run()
    pair.b.run()
    assert pair.senders_of_texts_to_the_person() == {B_OWN}  # B's reminders still go, A's do not
    pair.text("STOP", to=B_OWN)
    pair.text("START", to=A_OWN)
    assert pair.stopped() == {"a": None, "b": "stop"}
    assert pair.timeline("sms.opt_in") == {"a": 1, "b": 0}


def test_twilio_refusing_a_companys_own_number_21610_stops_that_company_only(pair: Pair) -> None:
    """The person opted out at Twilio of A's number (the STOP never reached us): A's text is refused."""
    pair.own(a=A_OWN, b=B_OWN)
    pair.a.sb.twilio.opted_out_of[A_OWN] = {NUMBER}
    pair.a.run()
    assert pair.stopped() == {"a": "21610", "b": None}
    pair.b.run()
    assert pair.senders_of_texts_to_the_person() == {B_OWN}


def test_a_reply_to_the_shared_number_reaches_the_company_that_texted_last(pair: Pair) -> None:
    """Both companies text from the server's number; B texted the person, then A did: A hears the reply."""
    pair.b.run()
    pair.a.run()
    assert pair.senders_of_texts_to_the_person() == {SHARED}
    pair.text("Paid it this morning", to=SHARED)
    alerts = pair.reply_alerts()
    assert len(alerts["a"]) == 1 and "Paid it this morning" in alerts["a"][0]
    assert alerts["b"] == []
    assert pair.timeline("sms.reply") == {"a": 1, "b": 0}


def test_a_reply_to_the_shared_number_nobody_texted_reaches_the_companies_texting_from_it(pair: Pair) -> None:
    """No text of ours is known to have reached the person from it: every company sharing the number
    hears the reply, not one with a number of its own."""
    pair.own(b=B_OWN)
    pair.text("Who is this?", to=SHARED)
    alerts = pair.reply_alerts()
    assert len(alerts["a"]) == 1 and alerts["b"] == []


@pytest.mark.parametrize(("own", "stopped"), [
    pytest.param({}, {"a": "stop", "b": "stop"}, id="both text from the shared number"),
    pytest.param({"b": B_OWN}, {"a": "stop", "b": None}, id="B texts from its own number"),
])
def test_stop_to_the_shared_number_stops_every_company_texting_from_it(pair: Pair, own: dict[str, str],
                                                                       stopped: dict[str, str | None]) -> None:
    """Twilio refuses that number's texts to the person from then on (21610), whichever company sends them."""
    pair.own(**own)
    pair.text("STOP", to=SHARED)
    assert pair.stopped() == stopped
    pair.a.run()
    pair.b.run()
    assert pair.senders_of_texts_to_the_person() == set(own.values())
    pair.text("START", to=SHARED)
    assert pair.stopped() == {"a": None, "b": None}
    assert pair.timeline("sms.opt_in") == {name: int(flag is not None) for name, flag in stopped.items()}
