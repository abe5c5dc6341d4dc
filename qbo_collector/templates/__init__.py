"""Reminder templates: the texts customers read, and the sandbox that renders them.

    catalog.py   KEYS, TemplateSet, the shipped defaults (defaults/<language>.toml)
    context.py   ReminderContext and its records, PLACEHOLDERS, sample_context()
    engine.py    render(), validate(), the money/date/days/percent filters
    sms.py       GSM-7 / UCS-2 length and segment count
    terms.py     late_fee_terms(): the late-fee rules told in one sentence (en/fr)

Callers import the package: ``templates.render(templates.default(key, "fr"), context)``.
"""

from qbo_collector.templates.catalog import KEYS, PARTS, TemplateSet, default, defaults
from qbo_collector.templates.context import (
    FILTERS,
    LANGUAGES,
    PLACEHOLDERS,
    DiscountOffer,
    InvoiceLine,
    LateFeeRule,
    OwnerAlert,
    Promise,
    ReminderContext,
    sample_context,
)
from qbo_collector.templates.engine import RenderedMessage, render, validate
from qbo_collector.templates.sms import segments as sms_segments

__all__ = [
    "FILTERS", "KEYS", "LANGUAGES", "PARTS", "PLACEHOLDERS",
    "DiscountOffer", "InvoiceLine", "LateFeeRule", "OwnerAlert", "Promise", "ReminderContext", "RenderedMessage", "TemplateSet",
    "default", "defaults", "render", "sample_context", "sms_segments", "validate",
]
