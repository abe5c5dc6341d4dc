"""The late-fee rule told to the customer: every kind and frequency of the policy, in English and French."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qbo_collector import errors, rules, templates
from qbo_collector.dispatch import messages
from qbo_collector.money import Money
from qbo_collector.rules import policy as policy_mod
from qbo_collector.templates import terms

NB = "\xa0"


def _policy(*fee_rules: policy_mod.FeeRule, grace_days: int = 0) -> rules.Policy:
    return rules.Policy(late_fees=policy_mod.LateFees(rules=fee_rules, grace_days=grace_days))


def _flat(**kw: object) -> policy_mod.FeeRule:
    return policy_mod.FeeRule(kind="flat", amount={"USD": Decimal(25), "EUR": Decimal(25)}, **kw)  # type: ignore[arg-type]


def _percent(**kw: object) -> policy_mod.FeeRule:
    return policy_mod.FeeRule(kind="percent", percent=Decimal("1.5"), **kw)  # type: ignore[arg-type]


def _interest(**kw: object) -> policy_mod.FeeRule:
    return policy_mod.FeeRule(kind="interest", percent=Decimal(8), **kw)  # type: ignore[arg-type]


EVERY_15 = {"frequency": "every_n_days", "every_days": 15}
MONTHLY = {"frequency": "monthly"}


def sentence(policy: rules.Policy, language: str) -> str | None:
    currency, locale = ("EUR", "fr_FR") if language == "fr" else ("USD", "en_US")
    return terms.late_fee_terms(messages.late_fee_rules(policy, currency), language, locale)


@pytest.mark.parametrize(
    ("policy", "english", "french"),
    [
        # flat
        (_policy(_flat()),
         "A one-time late fee of $25.00 is added when an invoice is not paid by its due date.",
         f"Des frais de retard uniques de 25,00{NB}€ s'appliquent lorsqu'une facture n'est pas réglée"
         " à sa date d'échéance."),
        (_policy(_flat(**EVERY_15)),
         "A late fee of $25.00 is added for every 15 days an invoice remains unpaid after its due date.",
         f"Des frais de retard de 25,00{NB}€ s'appliquent pour chaque période de 15{NB}jours où une facture"
         " reste impayée après sa date d'échéance."),
        (_policy(_flat(**MONTHLY)),
         "A late fee of $25.00 is added for each month an invoice remains unpaid after its due date.",
         f"Des frais de retard de 25,00{NB}€ s'appliquent pour chaque mois où une facture reste impayée"
         " après sa date d'échéance."),
        # percent
        (_policy(_percent()),
         "A one-time late fee of 1.5% of the unpaid balance is added when an invoice is not paid by its due date.",
         f"Des frais de retard uniques de 1,5{NB}% du solde impayé s'appliquent lorsqu'une facture n'est pas"
         " réglée à sa date d'échéance."),
        (_policy(_percent(**EVERY_15)),
         "A late fee of 1.5% of the unpaid balance is added for every 15 days an invoice remains unpaid after"
         " its due date.",
         f"Des frais de retard de 1,5{NB}% du solde impayé s'appliquent pour chaque période de 15{NB}jours où une"
         " facture reste impayée après sa date d'échéance."),
        (_policy(_percent(**MONTHLY)),
         "A late fee of 1.5% of the unpaid balance is added for each month an invoice remains unpaid after its"
         " due date.",
         f"Des frais de retard de 1,5{NB}% du solde impayé s'appliquent pour chaque mois où une facture reste"
         " impayée après sa date d'échéance."),
        # interest (never once: the policy refuses it)
        (_policy(_interest(**EVERY_15)),
         "Late payment interest of 8% a year accrues on overdue amounts after the due date, billed every 15 days.",
         f"Des pénalités de retard au taux annuel de 8{NB}% s'appliquent aux sommes impayées après la date"
         f" d'échéance, facturées tous les 15{NB}jours."),
        (_policy(_interest(**MONTHLY)),
         "Late payment interest of 8% a year accrues on overdue amounts after the due date, billed each month.",
         f"Des pénalités de retard au taux annuel de 8{NB}% s'appliquent aux sommes impayées après la date"
         " d'échéance, facturées chaque mois."),
        # indemnity (only once: the policy refuses the others)
        (_policy(policy_mod.FeeRule(kind="indemnity", amount={"USD": Decimal(40), "EUR": Decimal(40)})),
         "A fixed recovery indemnity of $40.00 per invoice applies when an invoice is not paid by its due date.",
         f"Une indemnité forfaitaire pour frais de recouvrement de 40,00{NB}€ est due par facture non réglée"
         " à sa date d'échéance."),
        # grace days
        (_policy(_flat(**EVERY_15), grace_days=3),
         "A late fee of $25.00 is added for every 15 days an invoice remains unpaid, starting 3 days after its"
         " due date.",
         f"Des frais de retard de 25,00{NB}€ s'appliquent pour chaque période de 15{NB}jours où une facture reste"
         f" impayée, à partir de 3{NB}jours après sa date d'échéance."),
        (_policy(_interest(**MONTHLY), grace_days=1),
         "Late payment interest of 8% a year accrues on overdue amounts starting 1 day after the due date,"
         " billed each month.",
         f"Des pénalités de retard au taux annuel de 8{NB}% s'appliquent aux sommes impayées à partir de 1{NB}jour"
         " après la date d'échéance, facturées chaque mois."),
        # several rules: one sentence
        (_policy(_flat(**MONTHLY), _interest(**EVERY_15)),
         "A late fee of $25.00 is added for each month an invoice remains unpaid after its due date, and late"
         " payment interest of 8% a year accrues on overdue amounts after the due date, billed every 15 days.",
         f"Des frais de retard de 25,00{NB}€ s'appliquent pour chaque mois où une facture reste impayée après sa"
         f" date d'échéance, et des pénalités de retard au taux annuel de 8{NB}% s'appliquent aux sommes"
         f" impayées après la date d'échéance, facturées tous les 15{NB}jours."),
        # presets
        (rules.PRESETS["france_b2b"],
         # the indemnity is set in EUR only: a USD invoice is not told it
         "Late payment interest of 12.15% a year (the ECB rate plus 10 points) accrues on overdue amounts after"
         " the due date, billed each month.",
         f"Des pénalités de retard au taux annuel de 12,15{NB}% (taux BCE + 10 points) s'appliquent aux sommes"
         " impayées après la date d'échéance, facturées chaque mois, et une indemnité forfaitaire pour frais de"
         f" recouvrement de 40,00{NB}€ est due par facture non réglée à sa date d'échéance."),
        (rules.PRESETS["us_net30"],
         "A late fee of 1.5% of the unpaid balance is added for each month an invoice remains unpaid after its"
         " due date.",
         f"Des frais de retard de 1,5{NB}% du solde impayé s'appliquent pour chaque mois où une facture reste"
         " impayée après sa date d'échéance."),
        (rules.PRESETS["firm"],
         "A late fee of 1.5% of the unpaid balance is added for each month an invoice remains unpaid, starting"
         " 5 days after its due date.",
         f"Des frais de retard de 1,5{NB}% du solde impayé s'appliquent pour chaque mois où une facture reste"
         f" impayée, à partir de 5{NB}jours après sa date d'échéance."),
    ],
    ids=[
        "flat fee once", "flat fee every 15 days", "flat fee monthly",
        "percent fee once", "percent fee every 15 days", "percent fee monthly",
        "interest every 15 days", "interest monthly",
        "recovery indemnity",
        "flat fee every 15 days after 3 days of grace", "interest monthly after 1 day of grace",
        "a flat fee and interest in one sentence",
        "france_b2b preset: ECB interest and the 40 euro indemnity", "us_net30 preset", "firm preset",
    ],
)
def test_the_late_fee_sentence_says_what_the_policy_charges(policy: rules.Policy, english: str, french: str) -> None:
    assert sentence(policy, "en") == english
    assert sentence(policy, "fr") == french


def test_a_french_b2b_customer_in_euros_is_told_both_rules_in_english_too() -> None:
    told = messages.late_fee_rules(rules.PRESETS["france_b2b"], "EUR")
    assert terms.late_fee_terms(told, "en", "en_US") == (
        "Late payment interest of 12.15% a year (the ECB rate plus 10 points) accrues on overdue amounts after"
        " the due date, billed each month, and a fixed recovery indemnity of €40.00 per invoice applies when an"
        " invoice is not paid by its due date.")


def test_no_policy_or_no_fee_rule_says_nothing() -> None:
    assert messages.late_fee_rules(None, "USD") == ()
    assert sentence(rules.PRESETS["friendly"], "en") is None
    assert sentence(_policy(policy_mod.FeeRule(kind="indemnity", amount={"EUR": Decimal(40)})), "en") is None


def test_the_sentence_never_threatens() -> None:
    policies = [rules.PRESETS[name] for name in rules.PRESETS] + [_policy(_flat(**EVERY_15), _interest(**MONTHLY))]
    for policy in policies:
        for language in ("en", "fr"):
            said = (sentence(policy, language) or "").lower()
            assert not any(word in said for word in ("legal action", "court", "poursuite", "tribunal", "huissier"))


@pytest.mark.parametrize(
    "kwargs",
    [{"kind": "interest", "rate": Decimal(8), "period": "once"},
     {"kind": "indemnity", "amount": None},
     {"kind": "flat", "amount": Money.of("25", "USD"), "period": "days"}],
    ids=["interest charged once", "indemnity without an amount", "every N days without N"],
)
def test_a_rule_the_policy_cannot_hold_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(errors.InvalidInput):
        templates.LateFeeRule(**kwargs)  # type: ignore[arg-type]
