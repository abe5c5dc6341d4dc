"""HTML is escaped, plain text is left alone, and the subject stays one line."""

from __future__ import annotations

import pytest

from qbo_collector import templates


@pytest.mark.parametrize("language", templates.LANGUAGES, ids=["in English", "in French"])
def test_html_escapes_a_hostile_customer_name(context_factory, language: str) -> None:
    context = context_factory(language, customer_name='<script>alert("x")</script>')
    message = templates.render(templates.default("reminder_overdue_gentle", language), context)
    assert "<script>" not in message.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in message.html
    assert '<script>alert("x")</script>' in message.text


@pytest.mark.parametrize("language", templates.LANGUAGES, ids=["in English", "in French"])
def test_text_and_sms_keep_apostrophes_and_ampersands(context_factory, language: str) -> None:
    context = context_factory(language, customer_name="O'Brien & Sons", company_name="Smith & Wesson's Bakery")
    message = templates.render(templates.default("reminder_before_due", language), context)
    assert "O'Brien & Sons" in message.text
    assert "&amp;" not in message.text and "&#39;" not in message.text
    assert message.sms.startswith("Smith & Wesson's Bakery")
    assert "Smith & Wesson's Bakery" in message.subject
    assert "O&#39;Brien &amp; Sons" in message.html
    assert "<title>" in message.html and "Smith &amp; Wesson&#x27;s Bakery" in message.html


def test_subject_is_one_line_whatever_the_data(context_factory) -> None:
    context = context_factory("en", company_name="Evil\r\nBcc: victim@example.com")
    subject = templates.render(templates.default("reminder_due_today", "en"), context).subject
    assert "\n" not in subject and "\r" not in subject


def test_empty_html_is_made_from_the_text(context_factory) -> None:
    template = templates.TemplateSet(
        key="reminder_due_today", language="en", subject="Hi",
        text="Hello {{ customer_name }},\n\nPay online: {{ invoice.payment_link }}\nThanks", html="", sms="",
    )
    message = templates.render(template, context_factory("en"))
    assert "<p>Hello O&#x27;Brien &amp; Sons Landscaping,</p>" in message.html
    assert '<a href="https://connect.intuit.com/pay/invoice/scs-v1-4f2a9c71e0b84d2f">' in message.html
    assert "<br>" in message.html
    assert message.sms is None


def test_sms_uses_plain_spaces_so_french_amounts_stay_gsm7(context_factory) -> None:
    message = templates.render(templates.default("reminder_due_today", "fr"), context_factory("fr"))
    assert "1 234,50 €" in message.sms
    assert "\xa0" not in message.sms and "\u202f" not in message.sms
