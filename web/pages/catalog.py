"""Sentences of other packages that the pages show, listed so the translation catalogue has them.

The rules engine and the templates package write their messages in English; the pages pass
them through ``gettext`` (``forms.translate``, ``message_of``). A sentence missing from
this list is simply shown in English.
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - gettext_noop
    return message


POLICY_MESSAGES = (
    N_("Choose at least one channel for this step."),
    N_("Each channel may appear once per step."),
    N_("Allow at least one weekday."),
    N_("Weekdays are numbered 0 (Monday) to 6 (Sunday)."),
    N_("A flat fee needs an amount for at least one currency."),
    N_("An indemnity fee needs an amount for at least one currency."),
    N_("A percent fee needs a percent."),
    N_("An interest fee needs a percent."),
    N_("Interest is billed per period: choose monthly or every N days."),
    N_("The recovery indemnity is charged once per invoice."),
    N_("Say every how many days the fee repeats."),
    N_("Use at most one fee rule of each kind."),
    N_("The first step has no previous step: count it from the due date or the invoice date."),
    N_("Use at most 20 steps."),
    N_("Two discount tiers have the same number of days."),
    N_("The earlier the payment, the larger the discount: each tier must give less than the one before."),
    N_("Text messages may only go out between 8:00 and 21:00: choose a send hour from 8 to 20."),
)

# templates.engine.EMPTY_REFUSED: a template whose subject or text renders empty for some customers
TEMPLATE_MESSAGES = (
    N_("The subject comes out empty for some customers (for example one without a PO): "
       "write a subject that always says something."),
    N_("The text comes out empty for some customers: write a text that always says something."),
)

# templates.PLACEHOLDERS and templates.FILTERS, shown next to the template editor
PLACEHOLDER_HELP = (
    N_("Your company's name."),
    N_("The person or team signing the message."),
    N_("The address replies go to (may be empty)."),
    N_("Your phone number (may be empty)."),
    N_("The customer's name as in QuickBooks."),
    N_("The customer's language: en or fr."),
    N_("How amounts and dates are written, e.g. fr_CA."),
    N_("Today's date; write {{ today|date }}."),
    N_("The invoice this reminder is about (the first of invoices)."),
    N_("The invoice number."),
    N_("The invoice date; write {{ invoice.issue_date|date }}."),
    N_("The due date; write {{ invoice.due_date|date }}."),
    N_("Days given to pay (30 = due within 30 days, 0 = due on receipt)."),
    N_("The invoice total; write {{ invoice.total|money }}."),
    N_("What is still unpaid; write {{ invoice.balance|money }}."),
    N_("Days past the due date; write {{ invoice.days_overdue|days }}."),
    N_("The customer's purchase order number (may be empty)."),
    N_("The QuickBooks pay-online link (may be empty)."),
    N_("The job or sub-customer the invoice is for, when the message goes to the parent it is billed with (may be empty)."),
    N_("All invoices in this message: {% for line in invoices %}…{% endfor %}."),
    N_("The amount due, one per currency: {% for total in totals %}{{ total|money }}{% endfor %}."),
    N_("The amount due as the dispatcher gave it; {{ total_due|money }} joins currencies."),
    N_("Early-payment discount offer (may be empty)."),
    N_("What the customer saves; write {{ discount.amount|money }}."),
    N_("Pay by this date to get the discount."),
    N_("The discount rate; write {{ discount.percent|percent }}."),
    N_("Your late-fee policy as one sentence in the customer's language (may be empty)."),
    N_("Your late-fee policy as data: kind, rate, amount, grace_days, period (may be empty)."),
    N_("Every late-fee rule as data, the first being late_fee_rule; each with kind (flat, percent, interest, indemnity), rate, amount, grace_days, period (once, month, days), every_days and ecb_points."),
    N_("The late fee just charged (late fee notice only)."),
    N_("Late fee notice: the invoices a late fee was just added to, each with line.fee; more than one when one email tells the fees of a run."),
    N_("The customer's promise to pay (promise broken only)."),
    N_("The amount promised."),
    N_("The date promised."),
    N_("The reminder step's tone, as set in the schedule."),
    N_("Owner alerts only: what happened, in one sentence."),
    N_("Owner alerts only: where to act (may be empty)."),
    N_("Owner alerts only: everything a run tells you, each with alert, action_link, customer_name and invoice; more than one when one message tells them all."),
    N_("An amount as the customer reads it: 1 234,50 € or $1,234.50."),
    N_("A date as the customer reads it: 23 novembre 2026 or Nov 23, 2026; date('long') for the long form."),
    N_("A number of days with the right plural: 1 day, 3 days / 1 jour, 3 jours."),
    N_("A percentage: 1.5% / 1,5 %."),
    N_("A fallback for an empty placeholder: {{ invoice.po_number|default('none') }}."),
    N_("Jinja's usual filters."),
)
