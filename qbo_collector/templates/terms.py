"""The late-fee terms: the company's fee rules told to the customer in one plain sentence.

Pure: ``late_fee_terms(rules, language, locale)`` → "A late fee of $25.00 is added for every
15 days an invoice remains unpaid after its due date." Each rule is one clause with its own
timing; several rules are joined in one sentence ("…, and a fixed recovery indemnity of €40.00
per invoice applies…"). Amounts, rates and day counts are written by Babel for ``locale``.
The French wording of interest and of the indemnity is the Code de commerce's (art. L441-10,
D441-5): "pénalités de retard", "indemnité forfaitaire pour frais de recouvrement".
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from babel import numbers as babel_numbers
from babel import units as babel_units

from qbo_collector.templates import context as template_context

# (language, kind, period) → (with grace days, without); "fee" kinds are flat and percent.
# {fee} the amount or rate, {every} "15 days", {grace} "10 days", {rate} the annual rate with its ECB note.
_CLAUSES: dict[tuple[str, str, str], tuple[str, str]] = {
    ("en", "fee", "once"): (
        "A one-time late fee of {fee} is added when an invoice remains unpaid {grace} after its due date",
        "A one-time late fee of {fee} is added when an invoice is not paid by its due date",
    ),
    ("en", "fee", "month"): (
        "A late fee of {fee} is added for each month an invoice remains unpaid, starting {grace} after its due date",
        "A late fee of {fee} is added for each month an invoice remains unpaid after its due date",
    ),
    ("en", "fee", "days"): (
        "A late fee of {fee} is added for every {every} an invoice remains unpaid, starting {grace} after its due date",
        "A late fee of {fee} is added for every {every} an invoice remains unpaid after its due date",
    ),
    ("en", "interest", "month"): (
        "Late payment interest of {rate} accrues on overdue amounts starting {grace} after the due date,"
        " billed each month",
        "Late payment interest of {rate} accrues on overdue amounts after the due date, billed each month",
    ),
    ("en", "interest", "days"): (
        "Late payment interest of {rate} accrues on overdue amounts starting {grace} after the due date,"
        " billed every {every}",
        "Late payment interest of {rate} accrues on overdue amounts after the due date, billed every {every}",
    ),
    ("en", "indemnity", "once"): (
        "A fixed recovery indemnity of {fee} per invoice applies when an invoice remains unpaid {grace}"
        " after its due date",
        "A fixed recovery indemnity of {fee} per invoice applies when an invoice is not paid by its due date",
    ),
    ("fr", "fee", "once"): (
        "Des frais de retard uniques de {fee} s'appliquent lorsqu'une facture reste impayée {grace}"
        " après sa date d'échéance",
        "Des frais de retard uniques de {fee} s'appliquent lorsqu'une facture n'est pas réglée"
        " à sa date d'échéance",
    ),
    ("fr", "fee", "month"): (
        "Des frais de retard de {fee} s'appliquent pour chaque mois où une facture reste impayée,"
        " à partir de {grace} après sa date d'échéance",
        "Des frais de retard de {fee} s'appliquent pour chaque mois où une facture reste impayée"
        " après sa date d'échéance",
    ),
    ("fr", "fee", "days"): (
        "Des frais de retard de {fee} s'appliquent pour chaque période de {every} où une facture reste impayée,"
        " à partir de {grace} après sa date d'échéance",
        "Des frais de retard de {fee} s'appliquent pour chaque période de {every} où une facture reste impayée"
        " après sa date d'échéance",
    ),
    ("fr", "interest", "month"): (
        "Des pénalités de retard au taux annuel de {rate} s'appliquent aux sommes impayées à partir de {grace}"
        " après la date d'échéance, facturées chaque mois",
        "Des pénalités de retard au taux annuel de {rate} s'appliquent aux sommes impayées après la date"
        " d'échéance, facturées chaque mois",
    ),
    ("fr", "interest", "days"): (
        "Des pénalités de retard au taux annuel de {rate} s'appliquent aux sommes impayées à partir de {grace}"
        " après la date d'échéance, facturées tous les {every}",
        "Des pénalités de retard au taux annuel de {rate} s'appliquent aux sommes impayées après la date"
        " d'échéance, facturées tous les {every}",
    ),
    ("fr", "indemnity", "once"): (
        "Une indemnité forfaitaire pour frais de recouvrement de {fee} est due par facture restée impayée"
        " {grace} après sa date d'échéance",
        "Une indemnité forfaitaire pour frais de recouvrement de {fee} est due par facture non réglée"
        " à sa date d'échéance",
    ),
}
_PERCENT_OF_BALANCE = {"en": "{rate} of the unpaid balance", "fr": "{rate} du solde impayé"}
_ANNUAL = {"en": "{rate} a year", "fr": "{rate}"}  # French says "au taux annuel de"
_ECB = {"en": " (the ECB rate plus {points} points)", "fr": " (taux BCE + {points} points)"}
_AND = {"en": "and", "fr": "et"}


def late_fee_terms(rules: Sequence[template_context.LateFeeRule], language: str, locale: str) -> str | None:
    """The late-fee policy as one sentence in ``language``, amounts written for ``locale``; None without rules."""
    clauses = [_clause(rule, language, locale) for rule in rules]
    if not clauses:
        return None
    clauses[1:] = [clause[0].lower() + clause[1:] for clause in clauses[1:]]
    if len(clauses) == 1:
        return clauses[0] + "."
    return f"{', '.join(clauses[:-1])}, {_AND[language]} {clauses[-1]}."


def _clause(rule: template_context.LateFeeRule, language: str, locale: str) -> str:
    kind = "fee" if rule.kind in ("flat", "percent") else rule.kind
    with_grace, without_grace = _CLAUSES[(language, kind, rule.period)]
    values = {"fee": "", "rate": "", "every": "", "grace": ""}
    if rule.kind == "percent":
        assert rule.rate is not None  # checked by LateFeeRule
        values["fee"] = _PERCENT_OF_BALANCE[language].format(rate=format_percent(rule.rate, locale))
    elif rule.kind == "interest":
        assert rule.rate is not None
        values["rate"] = _ANNUAL[language].format(rate=format_percent(rule.rate, locale))
        if rule.ecb_points is not None:
            points = babel_numbers.format_decimal(rule.ecb_points.normalize(), locale=locale, decimal_quantization=False)
            values["rate"] += _ECB[language].format(points=points)
    else:
        assert rule.amount is not None
        values["fee"] = rule.amount.format(locale)
    if rule.period == "days":
        assert rule.every_days is not None
        values["every"] = format_days(rule.every_days, locale)
    if rule.grace_days > 0:
        values["grace"] = format_days(rule.grace_days, locale)
        return with_grace.format(**values)
    return without_grace.format(**values)


def format_percent(percent: Decimal, locale: str) -> str:
    """``Decimal("1.5")`` → "1.5%" / "1,5 %" (the templates' ``percent`` filter too)."""
    return babel_numbers.format_percent((percent / 100).normalize(), locale=locale, decimal_quantization=False)


def format_days(count: int, locale: str) -> str:
    """ "3 days" / "3 jours", with the locale's plural rule ("1 jour", "0 jour") (the ``days`` filter too)."""
    return babel_units.format_unit(count, "duration-day", length="long", locale=locale)
