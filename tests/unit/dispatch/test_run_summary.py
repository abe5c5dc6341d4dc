"""What a run summary counts as a problem (a person must act on it: `qbo-collector run` exits 1) and what
it only tells (exit 0)."""

from __future__ import annotations

import collections

import pytest

from qbo_collector.dispatch import run

EMAIL_MISSING = "Email is not configured (SENDGRID_API_KEY and SENDGRID_FROM_EMAIL): skipped."


def _summary(**fields) -> run.RunSummary:  # type: ignore[no-untyped-def]
    summary = run.RunSummary(realm="r1")
    for name, value in fields.items():
        setattr(summary, name, value)
    return summary


@pytest.mark.parametrize("fields, problem", [
    pytest.param({"errors": ["QuickBooks needs reconnecting: the grant was refused."]}, "needs reconnecting",
                 id="quickbooks needs reconnecting"),
    pytest.param({"errors": ["customer Acme Ltd: The stored 'vip' policy is not valid (steps: …)."]},
                 "customer Acme Ltd", id="a customer skipped for an invalid policy"),
    pytest.param({"unconfigured": collections.Counter({EMAIL_MISSING: 3})},
                 "3 message(s) to customers cancelled: Email is not configured",
                 id="reminders the policy sends by email, email not configured"),
    pytest.param({"deferred": 2}, "2 row(s) deferred", id="a provider down: rows deferred to the next run"),
    pytest.param({"held": 3, "held_reason": "QuickBooks needs a tax code … (company setting fee_tax_code …)."},
                 "3 late fee(s) on hold, not posted: QuickBooks needs a tax code",
                 id="late fees waiting for the tax code of their lines"),
    pytest.param({"statuses": collections.Counter(failed=1)}, "1 row(s) failed for good", id="a template that cannot be written"),
    pytest.param({"statuses": collections.Counter(unknown=1)}, "unknown outcome", id="an ambiguous answer from a provider"),
])
def test_what_a_person_must_act_on_is_a_problem(fields, problem) -> None:  # type: ignore[no-untyped-def]
    summary = _summary(**fields)
    assert len(summary.problems) == 1 and problem in summary.problems[0]
    assert f"1 problem(s): {summary.problems[0]}" in summary.line()


@pytest.mark.parametrize("fields, warning", [
    pytest.param({"errors": ["Another worker is dispatching this company right now; nothing done."], "contended": True},
                 "Another worker", id="another worker holds the company: it does the work"),
    pytest.param({"owner_unconfigured": collections.Counter({EMAIL_MISSING: 2})},
                 "2 owner alert(s) not sent that way: Email is not configured", id="owner alerts in an SMS-only setup"),
])
def test_what_only_needs_telling_is_a_warning(fields, warning) -> None:  # type: ignore[no-untyped-def]
    summary = _summary(**fields)
    assert summary.problems == [] and len(summary.warnings) == 1 and warning in summary.warnings[0]
    assert "problem(s)" not in summary.line() and warning in summary.line()


def test_a_clean_run_has_neither() -> None:
    summary = _summary(statuses=collections.Counter(sent=4, cancelled=1), waiting=2)
    assert summary.problems == [] and summary.warnings == [] and summary.ok
