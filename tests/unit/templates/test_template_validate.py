"""What the settings page refuses before saving, and how it says so."""

from __future__ import annotations

import pytest

from qbo_collector import errors, templates
from qbo_collector.templates import engine


def refusal(source: str, part: str = "text", **kwargs) -> errors.InvalidInput:
    with pytest.raises(errors.InvalidInput) as caught:
        templates.validate(source, part=part, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("source", "message", "line"),
    [
        ("Hello\n\n{{ customer_name } }}", "Line 3: unexpected '}'", 3),
        ("Hello {{ customer_name", "Line 1: unexpected end of template", 1),
        ("a\n{% if invoice %}\nno end", "Line 3: Unexpected end of template", 3),
        ("a\nb\nc\n{% endfor %}", "Line 4: Encountered unknown tag 'endfor'", 4),
        ("x\n{{ invoice.total|moneyy }}", "Line 2: there is no filter called 'moneyy'; available: money, date", 2),
    ],
    ids=[
        "a stray brace names its line",
        "an unclosed placeholder",
        "an if without endif points at the end",
        "an endfor without for",
        "a misspelt filter lists the filters",
    ],
)
def test_syntax_errors_name_the_line(source: str, message: str, line: int) -> None:
    refused = refusal(source)
    assert refused.message.startswith(message), refused.message
    assert refused.context["line"] == line
    assert refused.field == "text"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Hello\n{{ custmer_name }}", "Unknown placeholder 'custmer_name' on line 2; available: company_name, "),
        ("{% if amount_due %}x{% endif %}", "Unknown placeholder 'amount_due' on line 1"),
        ("a\n\n\n{{ invoice.numbr }}", "Unknown placeholder 'invoice.numbr' on line 4; available: number, issue_date"),
        ("{% for line in invoices %}\n{{ line.balanse|money }}\n{% endfor %}",
         "Unknown placeholder 'line.balanse' on line 2; available: number"),
        ("{{ promise.when }}", "Unknown placeholder 'promise.when' on line 1; available: amount, date"),
    ],
    ids=[
        "a misspelt placeholder is named with its line and the list",
        "an unknown name in a condition",
        "a misspelt invoice field lists the invoice fields",
        "a misspelt field inside a loop",
        "a misspelt promise field",
    ],
)
def test_unknown_placeholders_are_named(source: str, message: str) -> None:
    assert refusal(source).message.startswith(message)


def test_harmless_method_calls_still_work(context_factory) -> None:
    template = templates.TemplateSet(
        key="statement", language="en", subject="s",
        text="{{ customer_name.upper() }} {{ invoice.number.startswith('10') }} {{ today.year }}",
    )
    templates.validate(template.text, part="text")
    assert templates.render(template, context_factory("en")).text == "O'BRIEN & SONS LANDSCAPING True 2026"


def test_loop_variables_are_not_unknown() -> None:
    templates.validate(
        "{% for line in invoices|sort(attribute='due_date') %}{{ loop.index }}/{{ invoices|length }}"
        " {{ line.number }}{% endfor %}{% for total in totals %}{{ total|money }}{% endfor %}",
        part="text",
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("a\n{% set a = 'xxxxxxxxxx' %}{% set a = a ~ a %}{{ a }}",
         "Line 2: templates cannot define variables or macros (set, macro, call)."),
        ("{% macro f(n) %}{{ f(n - 1) }}{{ f(n - 1) }}{% endmacro %}{{ f(40) }}",
         "Line 1: templates cannot define variables or macros (set, macro, call)."),
        ("{% for a in 'x' * 10000 %}{% for b in 'x' * 10000 %}.{% endfor %}{% endfor %}",
         "Line 1: a loop can only go over a placeholder such as invoices or totals."),
        ("{{ 'x'|replace('x', 'xxxxxxxxxx')|replace('x', 'xxxxxxxxxx') }}",
         "Line 1: there is no filter called 'replace'"),
        ("{{ ('x' * 10000)|list|join('x' * 10000) }}", "Line 1: there is no filter called 'join'"),
        ("{% for a in invoices %}{% for b in invoices %}\n{% for c in invoices %}{% endfor %}{% endfor %}{% endfor %}",
         "Line 2: loops can be nested 2 deep at most."),
        ("{% for a in customer_name %}{% for b in customer_name %}{{ 'x' * 10000 }}{{ 'x' * 10000 }}{% endfor %}{% endfor %}",
         "This template tries to use something that is not allowed: a message longer than 2,000,000 characters."),
        ("{{ customer_name.ljust(1000000000) }}",
         "This template tries to use something that is not allowed on line 1: the text method ljust()"),
        ("{{ customer_name.replace('O', 'x' * 9999).replace('x', 'x' * 9999) }}",
         "This template tries to use something that is not allowed on line 1: the text method replace()"),
        ("{{ '%999999999s' % 'x' }}", "This template tries to use something that is not allowed on line 1: text formatting with %"),
        ("{{ (((9**64)**64)**64)**64 }}",
         "This template tries to use something that is not allowed on line 1: a number longer than 4096 bits"),
        ("{{ (9**64)**64 * (9**64)**64 }}",
         "This template tries to use something that is not allowed on line 1: a number longer than 4096 bits"),
    ],
    ids=[
        "a doubling set chain is refused",
        "a recursive macro is refused",
        "nested loops over made-up strings are refused",
        "replace, which multiplies a text, is not offered",
        "join with a huge separator is not offered",
        "loops three deep are refused",
        "output beyond two million characters is stopped while rendering",
        "padding a name to a gigabyte is refused",
        "chained text replacement is refused",
        "printf padding with a huge width is refused",
        "chained powers, each under the exponent cap, are refused at once (found in review: minutes of CPU)",
        "a product of two huge numbers is refused",
    ],
)
def test_templates_that_would_exhaust_the_server_are_refused(source: str, message: str) -> None:
    assert refusal(source).message.startswith(message)


@pytest.mark.parametrize("part", ["subject", "text"])
def test_a_subject_or_text_that_comes_out_empty_for_some_customers_is_refused(part: str) -> None:
    """Found in review: SendGrid refuses an email with no subject (400), which used to be taken for a
    bad address and stopped every customer's email. Such a template is refused when it is saved."""
    refused = refusal("{% if invoice and invoice.po_number %}PO {{ invoice.po_number }}{% endif %}", part=part)
    assert refused.message == engine.EMPTY_REFUSED[part] and refused.context["field"] == part
    engine.validate("Invoice{% if invoice and invoice.po_number %} PO {{ invoice.po_number }}{% endif %}", part=part)
    engine.validate("{% if invoice and invoice.po_number %}PO {{ invoice.po_number }}{% endif %}", part="html")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Line 1\n{{ discount.amount|money }}",
         "'discount' is empty for some messages, so 'discount.amount' on line 2 cannot be shown;"
         " put it inside {% if discount %} … {% endif %}."),
        ("{{ invoice.po_number|upper }}", None),
        ("{{ invoice.payment_link }}", None),
    ],
    ids=[
        "an optional record used without if is refused",
        "an empty PO number is just empty",
        "an empty link is just empty",
    ],
)
def test_optional_parts_must_be_guarded(source: str, message: str | None) -> None:
    if message is None:
        templates.validate(source, part="text")
    else:
        assert refusal(source).message == message


def test_key_says_what_is_always_present() -> None:
    templates.validate("{{ fee|money }}", part="text", key="late_fee_notice")
    assert "'fee'" in refusal("x\n{{ fee.amount }}", key="reminder_overdue_firm").message
    templates.validate("{{ alert }}", part="sms", key="owner_alert")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.mro() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__ }}",
        "{{ joiner }}",
        "{{ namespace() }}",
        "{{ range(10) }}",
        "{{ config }}",
        "{{ config.items() }}",
        "{{ request.application }}",
        "{{ self }}",
        "{{ self._TemplateReference__context }}",
        "{{ invoice['__class__'] }}",
        "{{ invoice.total.__class__.__base__.__subclasses__() }}",
        "{{ '{0.__class__}'.format(invoice) }}",
        "{{ invoice.total.amount.__class__ }}",
        "{% include 'secrets.txt' %}",
        "{% extends 'base.html' %}",
        "{% import 'macros.html' as m %}",
        "{{ 'x' * 100000000 }}",
        "{{ 9 ** 999999 }}",
    ],
    ids=[
        "the class hierarchy of a string",
        "mro through a call",
        "the globals of a Jinja helper",
        "lipsum globals",
        "the joiner helper",
        "the namespace helper",
        "range is not offered",
        "Flask's config",
        "Flask's config items",
        "Flask's request",
        "the template itself",
        "the template's private context",
        "underscore names by subscript",
        "subclasses through a Money",
        "str.format reaching an attribute",
        "the class of a Decimal",
        "include of a file",
        "extends",
        "import",
        "a huge repeated string",
        "a huge power",
    ],
)
@pytest.mark.parametrize("part", ["text", "html"], ids=["in text", "in html"])
def test_sandbox_escapes_are_refused(source: str, part: str) -> None:
    refused = refusal(source, part=part)
    assert "not allowed" in refused.message or "cannot include, import or extend" in refused.message
    assert refused.context["line"] == 1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ customer_name|money }}", "Line 1: the money filter needs an amount, not str"),
        ("{{ invoice.number|date }}", "Line 1: the date filter needs a date"),
        ("{{ today|date('weird') }}", "Line 1: the date filter takes 'short', 'medium', 'long' or 'full'"),
        ("{{ invoice.total|days }}", "Line 1: the days filter needs a whole number of days"),
    ],
    ids=["money on a name", "date on a number", "an unknown date style", "days on an amount"],
)
def test_filters_explain_what_they_need(source: str, message: str) -> None:
    assert refusal(source).message.startswith(message)


def test_an_explicit_sample_is_used(context_factory) -> None:
    templates.validate("{{ discount.amount|money }}", part="text", sample=context_factory("en"))
    with pytest.raises(errors.InvalidInput):
        templates.validate("{{ discount.amount|money }}", part="text", sample=context_factory("en", minimal=True))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"part": "body"}, "part"),
        ({"part": "text", "key": "nope"}, "key"),
    ],
    ids=["an unknown part", "an unknown key"],
)
def test_validate_refuses_bad_arguments(kwargs, field: str) -> None:
    assert refusal("hi", **kwargs).field == field


def test_overlong_templates_are_refused() -> None:
    assert "the limit is" in refusal("x" * 20_001).message


def test_render_reports_a_stored_template_that_breaks(context_factory) -> None:
    template = templates.TemplateSet(key="reminder_final", language="en", subject="s", text="a\n{{ discount.amount }}")
    with pytest.raises(errors.InvalidInput) as caught:
        templates.render(template, context_factory("en", minimal=True))
    assert caught.value.message.startswith("The reminder_final template (en, text) cannot be rendered:")
    assert caught.value.context["line"] == 2


def test_template_set_refuses_unknown_keys_and_languages() -> None:
    with pytest.raises(errors.InvalidInput):
        templates.TemplateSet(key="nope", language="en", subject="", text="")
    with pytest.raises(errors.InvalidInput):
        templates.TemplateSet(key="statement", language="es", subject="", text="")


def test_placeholders_are_documented_and_all_of_them_work() -> None:
    assert all(description.strip() for description in templates.PLACEHOLDERS.values())
    for name in templates.PLACEHOLDERS:
        if name.split(".")[0] in ("discount", "promise", "late_fee_rule", "fee", "alert", "action_link"):
            source = f"{name}: {{% if {name.split('.')[0]} %}}{{{{ {name} }}}}{{% endif %}}"  # never empty
        else:
            source = f"{{{{ {name} }}}}"
        templates.validate(source, part="text")
