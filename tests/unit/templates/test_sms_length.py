"""SMS length as carriers count it: GSM-7 160/153, UCS-2 70/67."""

from __future__ import annotations

import pytest

from qbo_collector.templates import sms


@pytest.mark.parametrize(
    ("text", "encoding", "length", "segments"),
    [
        ("", "GSM-7", 0, 0),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("Réglé à 1 234,50 € ? Merci !", "GSM-7", 29, 1),
        ("€" * 80, "GSM-7", 160, 1),
        ("{}[]", "GSM-7", 8, 1),
        ("a" * 70 + "ê", "UCS-2", 71, 2),
        ("ç" * 70, "UCS-2", 70, 1),
        ("x" * 134, "GSM-7", 134, 1),
        ("ê" * 134, "UCS-2", 134, 2),
        ("ê" * 135, "UCS-2", 135, 3),
        ("🙂" * 35, "UCS-2", 70, 1),
    ],
    ids=[
        "an empty text costs nothing",
        "160 plain characters fit one segment",
        "161 take two",
        "306 still fit two",
        "307 take three",
        "French accents é è à and the euro sign are GSM-7",
        "the euro sign counts twice",
        "braces and brackets count twice",
        "one circumflex switches to UCS-2",
        "lowercase c-cedilla is not GSM-7",
        "134 plain characters",
        "134 UCS-2 characters fit two segments",
        "135 take three",
        "an emoji counts as two UTF-16 units",
    ],
)
def test_segments(text: str, encoding: str, length: int, segments: int) -> None:
    assert sms.encoding(text) == encoding
    assert sms.length(text) == length
    assert sms.segments(text) == segments


def test_plain_swaps_typography_for_gsm7() -> None:
    assert sms.plain("1\u202f234,50\xa0€ \u2014 l\u2019addition\n\n  ok  ") == "1 234,50 € - l'addition\nok"
