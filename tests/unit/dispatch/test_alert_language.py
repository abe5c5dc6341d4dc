"""The rules engine's owner alerts in the owner's language, without Flask: the planner states its figures, the
outbox row keeps them as a sentence of ``timeline``, and a reader of the compiled catalogue tells it in French.
An English reader reads the engine's own reason."""

from __future__ import annotations

import re

import pytest
from babel import support

from qbo_collector import rules, timeline, translation
from qbo_collector.dispatch import outbox
from tests.unit.rules.conftest import D, customer, invoice, money, policy, simulate

EVERY_DAY = {"weekdays": [0, 1, 2, 3, 4, 5, 6], "skip_holidays": False}
NO_ESCALATION = {"call_task_after_days": None, "handoff_after_days": None}
FRENCH = translation.reader("fr", "fr_FR")
ENGLISH = translation.reader("en", "en_US")


def _pol(channels: list[str], **overrides: object) -> rules.Policy:
    return policy(steps=[{"offset_days": 0, "template": "reminder_due_today", "channels": channels}], repeat_last=None,
                  min_gap_days=0, send_window=EVERY_DAY, escalation=NO_ESCALATION, **overrides)


def _alert(topic: str, *, pol: rules.Policy, pauses: tuple[rules.Pause, ...] = (),
           cust: rules.Customer | None = None) -> rules.AlertOwner:
    done = simulate(start=D(2026, 3, 30), days=30, invoices=[invoice(doc_number="1042")], pol=pol, pauses=pauses,
                    cust=cust or customer(has_phone=False))
    return next(a for a in done if isinstance(a, rules.AlertOwner) and a.topic == topic)


def _row(action: rules.Action) -> outbox.PlannedRow:
    rows = outbox.rows_for(action, customer_name="Acme Ltd", numbers={"i1": "1042"}, balances={"i1": "1000"},
                           due_dates={"i1": "2026-04-01"}, unreachable_everywhere=False, owner_phone=False,
                           dry_run=False)
    return rows[0]


def _plain(text: str) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


PROMISE = rules.Promise(made_on=D(2026, 4, 3), until=D(2026, 4, 20), amount=money(1000))
PLAN = rules.PaymentPlan(id="p1", agreed_on=D(2026, 4, 3), instalments=(
    rules.Instalment(due_on=D(2026, 4, 15), amount=money(500)), rules.Instalment(due_on=D(2026, 5, 15), amount=money(500))))


@pytest.mark.parametrize(("topic", "pol", "pauses", "cust", "french"), [
    pytest.param("late", _pol(["email"], alert_owner_when_late=True), (), None,
                 "La facture 1042 de Acme Ltd est passée en retard : elle était due le 1 avr. 2026.",
                 id="an invoice became late: its number, the customer, the due date"),
    pytest.param("step", _pol(["owner_alert"]), (), None,
                 "Étape 1 pour la facture 1042 de Acme Ltd : la politique vous demande de relancer ce client vous-même.",
                 id="a step the policy gives the owner to do"),
    pytest.param("unreachable", _pol(["email", "sms"]), (), customer(has_email=False, has_phone=False),
                 "Étape 1 pour la facture 1042 : impossible de joindre Acme Ltd par e-mail, SMS (pas d’adresse ou "
                 "désinscription) : contactez ce client autrement.",
                 id="a customer who cannot be reached: the step's channels, in French"),
    pytest.param("promise_broken", _pol(["email"], promise_grace_days=1), (PROMISE,), None,
                 "Acme Ltd avait promis de payer 1 000,00 $US d’ici le 20 avr. 2026 et ne l’a pas fait : les relances "
                 "reprennent à l’étape suivante.",
                 id="a broken promise: the amount and the date promised"),
    pytest.param("instalment_missed", _pol(["email"]), (PLAN,), None,
                 "Acme Ltd n’a pas réglé l’échéance 1 de 500,00 $US prévue le 15 avr. 2026.",
                 id="a missed instalment: its number, amount and due date"),
])
def test_an_engine_alert_reads_in_french_and_keeps_its_english_reason(topic, pol, pauses, cust, french) -> None:  # type: ignore[no-untyped-def]
    action = _alert(topic, pol=pol, pauses=pauses, cust=cust)
    row = _row(action)
    fields = timeline.action(row)["action"]
    assert row.reason == action.reason and row.payload["sentence"]["key"] == f"alert.{topic}"
    assert _plain(FRENCH.action(fields)) == french
    assert ENGLISH.action(fields) == action.reason  # the engine's own words, as before


def test_an_alert_planned_before_its_figures_were_kept_is_described_from_its_fields() -> None:
    row = _row(_alert("late", pol=_pol(["email"], alert_owner_when_late=True)))
    older = {k: v for k, v in timeline.action(row)["action"].items() if k != "sentence"}
    assert _plain(FRENCH.action(older)) == "Alerte pour vous : Une facture est passée en retard, facture 1042, par e-mail pour vous"


def test_a_sentence_the_program_wrote_reads_in_french_outside_flask() -> None:
    text = timeline.text("alert.reconnect", company="Boulangerie Martin", reason=timeline.error("Disconnected by a user."))
    fields = {"kind": "alert", "channel": "owner_email", "reason": text.english(), "reason_key": text.key,
              "reason_args": text.stored_args()}
    assert isinstance(translation.catalogue("fr"), support.Translations)  # the pages' compiled catalogue, found
    said = _plain(FRENCH.action(fields))
    assert said.startswith("QuickBooks doit être reconnecté pour Boulangerie Martin")
    assert "needs to be reconnected" not in said


@pytest.mark.parametrize(("credit", "holder", "key", "french"), [
    pytest.param(1000, None, "alert.credit",
                 "Acme Ltd a 1 000,00 $US d’avoir dans QuickBooks qui n’est appliqué à aucune facture (avoirs, paiements "
                 "non affectés). Il règle la facture 1042 : aucune relance ne part pour elle ; appliquez-lui l’avoir "
                 "dans QuickBooks.", id="credit that settles the invoice"),
    pytest.param(400, None, "alert.credit.partial",
                 "Acme Ltd a 400,00 $US d’avoir dans QuickBooks qui n’est appliqué à aucune facture (avoirs, paiements "
                 "non affectés). Une fois appliqué, il paie 400,00 $US de la facture 1042, dont les relances demandent "
                 "d’ici là la totalité du solde : appliquez-lui l’avoir dans QuickBooks.",
                 id="credit that pays part of it"),
    pytest.param(1000, "Hartley Homes", "alert.credit.parent",
                 "Acme Ltd a 1 000,00 $US d’avoir dans QuickBooks qui n’est appliqué à aucune facture (avoirs, paiements "
                 "non affectés, y compris ceux de Hartley Homes, avec qui il est facturé). Il règle la facture 1042 : "
                 "aucune relance ne part pour elle ; appliquez-lui l’avoir dans QuickBooks.",
                 id="credit of the parent it is billed with that settles the invoice"),
    pytest.param(400, "Hartley Homes", "alert.credit.partial.parent",
                 "Acme Ltd a 400,00 $US d’avoir dans QuickBooks qui n’est appliqué à aucune facture (avoirs, paiements "
                 "non affectés, y compris ceux de Hartley Homes, avec qui il est facturé). Une fois appliqué, il paie "
                 "400,00 $US de la facture 1042, dont les relances demandent d’ici là la totalité du solde : "
                 "appliquez-lui l’avoir dans QuickBooks.",
                 id="credit of the parent it is billed with that pays part of it"),
])
def test_a_credit_alert_reads_in_french(credit: int, holder: str | None, key: str, french: str) -> None:
    action = _alert("credit", pol=_pol(["email"]), cust=customer(has_phone=False, credits=(money(credit),),
                                                                 credit_holder=holder))
    row = _row(action)
    fields = timeline.action(row)["action"]
    assert row.payload["sentence"]["key"] == key
    assert _plain(FRENCH.action(fields)) == french
    assert ENGLISH.action(fields) == action.reason
