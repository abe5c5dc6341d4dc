"""Whatever a customer or company is called, every default renders and the HTML stays safe."""

from __future__ import annotations

import markupsafe
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbo_collector import templates

# Names as QuickBooks holds them: any printable text (control characters are not names).
names = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60)


@pytest.mark.parametrize("language", templates.LANGUAGES, ids=["in English", "in French"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(customer_name=names, company_name=names)
def test_any_names_render_every_default_safely(context_factory, language: str, customer_name: str, company_name: str) -> None:
    context = context_factory(language, customer_name=customer_name, company_name=company_name)
    for key, template in templates.defaults(language).items():
        message = templates.render(template, context)
        assert "\n" not in message.subject and "\r" not in message.subject
        if key != "owner_alert":
            assert customer_name.strip() in message.text or not customer_name.strip()
            assert str(markupsafe.escape(customer_name)) in message.html  # escaped, whatever it holds
