"""The prefilter that finds who replied by text: every way of writing the number is kept."""

from __future__ import annotations

import re

import pytest

from qbo_collector.channels import sms as sms_channel
from qbo_collector.dispatch import events


def _like(pattern: str, text: str) -> bool:
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("%")), text, re.DOTALL) is not None


@pytest.mark.parametrize(
    ("stored", "region"),
    [
        ("(415) 555-0100 x12", "US"),  # an extension after the number
        ("415.555.0100 ext. 12", "US"),  # dots and a spelt-out extension
        ("+1 415 555 0100", "US"),
        ("1-415-555-0100", "US"),  # the trunk prefix before it
        ("+33 (0)6 12 34 56 78", "FR"),
        ("06.12.34.56.78", "FR"),
        ("0033 6 12 34 56 78", "FR"),  # the international prefix before it
    ],
    ids=["US with an extension", "US with dots and ext.", "US in international form",
         "US with the trunk prefix", "France with (0)", "France with dots", "France with 00 33"],
)
def test_every_writing_of_the_number_passes_the_prefilter(stored: str, region: str) -> None:
    number = sms_channel.to_e164(stored, region)
    pattern = events._digits_in_order(number)
    assert pattern is not None and _like(pattern, stored)


def test_other_numbers_do_not_pass_the_prefilter() -> None:
    pattern = events._digits_in_order("+14155550100")
    assert not _like(pattern, "(415) 555-0142")
    assert not _like(pattern, "(415) 555-0100"[:-1])
    assert events._digits_in_order("alphanumeric") is None
