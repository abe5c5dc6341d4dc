"""How long a text message is: GSM-7 or UCS-2, and how many segments it costs.

A message in the GSM 03.38 alphabet fits 160 characters in one segment, 153 per segment when
split; one character outside it switches the whole message to UCS-2: 70, then 67. Carriers bill
per segment, and long French texts that slip into UCS-2 cost three times as much.
"""

from __future__ import annotations

import re

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")  # two septets each (escape + character)

# Typographic characters a locale or an editor puts in that have a plain GSM-7 equivalent.
_PLAIN = str.maketrans({
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ",
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "-", "\u2026": "...",
})


def encoding(text: str) -> str:
    """"GSM-7" when every character is in the GSM alphabet, else "UCS-2"."""
    return "GSM-7" if all(c in _GSM7_BASIC or c in _GSM7_EXTENSION for c in text) else "UCS-2"


def length(text: str) -> int:
    """Length in the units carriers count: septets for GSM-7, UTF-16 code units for UCS-2."""
    if encoding(text) == "GSM-7":
        return sum(2 if c in _GSM7_EXTENSION else 1 for c in text)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    """How many segments ``text`` is sent as (0 for an empty text)."""
    units = length(text)
    single, multi = (160, 153) if encoding(text) == "GSM-7" else (70, 67)
    if units == 0:
        return 0
    return 1 if units <= single else -(-units // multi)


def plain(text: str) -> str:
    """Swap typographic spaces, quotes and dashes for GSM-7 ones, and tidy the lines."""
    text = text.translate(_PLAIN).replace("\r\n", "\n").replace("\r", "\n")
    lines = (re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
