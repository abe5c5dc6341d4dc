"""Policy: presets, JSON round-trip, and validation messages per field for the settings page."""

from __future__ import annotations

import json

import pydantic
import pytest

from qbo_collector import rules
from qbo_collector.rules import policy as policy_mod

SHARED_TEMPLATE_KEYS = (
    "reminder_before_due", "reminder_due_today", "reminder_overdue_gentle", "reminder_overdue_firm",
    "reminder_final", "statement", "late_fee_notice", "promise_broken", "owner_alert",
)


@pytest.mark.parametrize("name", sorted(rules.PRESETS))
def test_preset_survives_a_json_round_trip(name: str) -> None:
    preset = rules.PRESETS[name]
    assert rules.Policy.model_validate_json(preset.model_dump_json()) == preset


def test_presets_shipped_and_friendly_is_the_default() -> None:
    assert set(rules.PRESETS) == {"friendly", "firm", "france_b2b", "us_net30"}
    assert rules.Policy().name == policy_mod.DEFAULT_PRESET == "friendly"


def test_template_keys_and_channels_are_the_shared_lists() -> None:
    assert rules.TEMPLATE_KEYS == SHARED_TEMPLATE_KEYS
    assert rules.CHANNELS == ("email", "sms", "call_task", "letter_task", "owner_alert")
    used = {s.template for p in rules.PRESETS.values() for s in p.steps}
    assert used <= set(SHARED_TEMPLATE_KEYS)


def test_france_preset_is_ecb_plus_ten_and_forty_euros() -> None:
    france = rules.PRESETS["france_b2b"]
    interest, indemnity = france.fee_rule("interest"), france.fee_rule("indemnity")
    assert interest is not None and indemnity is not None
    assert (interest.percent, interest.add_ecb_rate, str(france.ecb_rate_percent)) == (10, True, "2.15")
    assert indemnity.amount == {"EUR": 40}


def test_json_shape_example() -> None:
    text = json.dumps({
        "version": 1, "name": "vip",
        "steps": [{"offset_days": -3, "template": "reminder_before_due"},
                  {"offset_days": 5, "anchor": "previous_step", "channels": ["email", "sms"], "template": "reminder_overdue_gentle"}],
        "repeat_last": {"every_days": 14, "max_times": 3},
        "min_balance": {"usd": "5.00"},
        "late_fees": {"grace_days": 3, "rules": [{"kind": "flat", "amount": {"USD": "25"}}], "max_count": 1},
        "discount_tiers": [{"days_after_invoice": 20, "percent": "1"}, {"days_after_invoice": 10, "percent": "2"}],
    })
    pol = rules.Policy.model_validate_json(text)
    assert pol.min_balance == {"USD": 5} and [t.days_after_invoice for t in pol.discount_tiers] == [10, 20]


@pytest.mark.parametrize(
    ("patch", "field", "words"),
    [
        pytest.param({"steps": [{"offset_days": 1, "template": "reminder_angry"}]}, "steps.0.template", "Input should be",
                     id="unknown template key is refused on its field"),
        pytest.param({"steps": [{"offset_days": 1, "template": "statement", "channels": ["fax"]}]}, "steps.0.channels.0",
                     "Input should be", id="unknown channel is refused"),
        pytest.param({"steps": [{"offset_days": 1, "template": "statement", "channels": []}]}, "steps.0.channels",
                     "at least one channel", id="a step without a channel is refused"),
        pytest.param({"steps": [{"offset_days": 1, "template": "statement", "tone": "threatening"}]}, "steps.0.tone",
                     "Input should be", id="threatening is not a tone"),
        pytest.param({"steps": [{"offset_days": 1, "anchor": "previous_step", "template": "statement"}]}, "steps",
                     "first step has no previous step", id="first step counted from a previous one is refused"),
        pytest.param({"send_window": {"hour": 24}}, "send_window.hour", "less than or equal to 23", id="send hour 24 is refused"),
        pytest.param({"send_window": {"weekdays": []}}, "send_window.weekdays", "at least one weekday", id="no weekday is refused"),
        pytest.param({"steps": [{"offset_days": 1, "template": "statement", "channels": ["sms"]}], "send_window": {"hour": 22}},
                     "policy", "between 8:00 and 21:00", id="text messages at 22:00 are refused"),
        pytest.param({"late_fees": {"rules": [{"kind": "interest", "percent": "10"}]}}, "late_fees.rules.0",
                     "monthly or every N days", id="interest charged once is refused"),
        pytest.param({"late_fees": {"rules": [{"kind": "flat"}]}}, "late_fees.rules.0", "needs an amount",
                     id="flat fee without an amount is refused"),
        pytest.param({"late_fees": {"rules": [{"kind": "percent", "percent": "150"}]}}, "late_fees.rules.0.percent",
                     "less than or equal to 100", id="percent over 100 is refused"),
        pytest.param({"late_fees": {"rules": [{"kind": "flat", "amount": {"DOLLARS": "5"}}]}}, "late_fees.rules.0.amount",
                     "not a currency code", id="amount in a made-up currency is refused"),
        pytest.param({"late_fees": {"rules": [{"kind": "flat", "amount": {"USD": "5"}}, {"kind": "flat", "amount": {"USD": "6"}}]}},
                     "late_fees.rules", "at most one fee rule of each kind", id="two flat fee rules are refused"),
        pytest.param({"discount_tiers": [{"days_after_invoice": 10, "percent": "1"}, {"days_after_invoice": 20, "percent": "2"}]},
                     "discount_tiers", "the earlier the payment", id="a later tier with a larger discount is refused"),
        pytest.param({"min_gap_days": -1}, "min_gap_days", "greater than or equal to 0", id="negative gap is refused"),
        pytest.param({"version": 2}, "version", "policy version 1", id="unknown version is refused"),
        pytest.param({"surprise": True}, "surprise", "Extra inputs", id="unknown field is refused"),
    ],
)
def test_validation_message_per_field(patch: dict[str, object], field: str, words: str) -> None:
    data = {**rules.PRESETS["friendly"].model_dump(mode="json"), **patch}
    with pytest.raises(pydantic.ValidationError) as caught:
        rules.Policy.model_validate(data)
    messages = rules.field_errors(caught.value)
    assert field in messages, messages
    assert words.lower() in messages[field].lower()
