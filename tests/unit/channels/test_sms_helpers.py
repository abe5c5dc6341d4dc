"""Pure SMS helpers: phone numbers, segments, fitting a text with its link, quiet hours, keywords."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from qbo_collector import errors
from qbo_collector.channels import sms

# ------------------------------------------------------------------ E.164


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("06 12 34 56 78", "FR", "+33612345678"),          # French mobile written nationally
    ("+33 6 12 34 56 78", "US", "+33612345678"),       # international form ignores the default region
    ("0033 6 12 34 56 78", "FR", "+33612345678"),      # 00 international prefix from France
    ("(415) 555-2671", "US", "+14155552671"),          # US number with punctuation
    ("415.555.2671", "us", "+14155552671"),            # region code in lower case
    ("+1 415 555 2671", None, "+14155552671"),         # no default region needed with +
    ("07911 123456", "GB", "+447911123456"),           # UK mobile
    ("+44 20 7946 0958", "GB", "+442079460958"),       # London landline is still a valid number
], ids=[
    "french mobile written nationally",
    "international french number with a us default",
    "french number with 00 prefix",
    "us number with punctuation",
    "lower case region code",
    "us number with plus and no region",
    "uk mobile written nationally",
    "london landline",
])
def test_to_e164_formats_valid_numbers(raw: str, region: str | None, expected: str) -> None:
    assert sms.to_e164(raw, region) == expected


@pytest.mark.parametrize(("raw", "region", "says"), [
    ("", "US", "empty"),
    ("   ", "US", "empty"),
    ("hello", "US", "not a phone number"),
    ("+1555", None, "not a valid phone number"),
    ("06 12 34", "FR", "not a valid phone number"),
    ("612345678", None, "country code"),
], ids=[
    "empty string",
    "only spaces",
    "words",
    "too short us number",
    "truncated french number",
    "national number without any region",
])
def test_to_e164_refuses_garbage_with_a_clear_message(raw: str, region: str | None, says: str) -> None:
    with pytest.raises(errors.InvalidInput, match=says) as caught:
        sms.to_e164(raw, region)
    assert caught.value.field == "phone"


@pytest.mark.parametrize(("raw", "expected"), [
    ("+1 (415) 555-0101", "+14155550101"),                  # a number, however it is spaced
    (" +14155550101 ", "+14155550101"),
    ("MG" + "AB" * 16, "MG" + "ab" * 16),                    # a messaging service, its hex in lower case
    ("Acme", "Acme"),                                        # an alphanumeric sender ID, as written
], ids=["spaced number", "number with spaces around", "messaging service in upper case", "alphanumeric sender"])
def test_sender_id_writes_one_sender_one_way(raw: str, expected: str) -> None:
    assert sms.sender_id(raw) == expected


# ------------------------------------------------------------------ segments


@pytest.mark.parametrize(("text", "expected"), [
    ("", 1),
    ("a" * 160, 1),
    ("a" * 161, 2),
    ("a" * 306, 2),
    ("a" * 307, 3),
    ("é" * 160, 1),                 # é is in GSM-7
    ("€" * 80, 1),                  # extension characters cost two septets
    ("€" * 81, 2),
    ("a" * 152 + "€", 1),           # 154 septets still fit a single segment
    ("a" * 159 + "€", 2),           # 161 septets: the escape pair moves to part two
    ("ê" * 70, 1),                  # ê is not GSM-7: UCS-2, 70 per segment
    ("ê" * 71, 2),
    ("ç" + "a" * 100, 2),           # one ç turns 101 chars into two UCS-2 parts (GSM would fit one)
    ("😀" * 35, 1),                 # an emoji takes two UTF-16 units
    ("😀" * 36, 2),
    ("a" * 66 + "😀" + "a" * 66, 3),  # 134 units, but the emoji cannot straddle parts one and two
], ids=[
    "empty text is one segment",
    "160 gsm characters fit one segment",
    "161 gsm characters need two",
    "306 gsm characters fit two parts of 153",
    "307 gsm characters need three",
    "accented e is gsm and fits 160",
    "80 euro signs are 160 septets",
    "81 euro signs spill over",
    "escape pair within the single limit",
    "escape pair pushes past 160",
    "circumflex forces ucs2 and 70 fits",
    "71 ucs2 characters need two",
    "one cedilla switches the whole text to ucs2",
    "35 emoji are 70 units",
    "36 emoji need two segments",
    "surrogate pair is never split",
])
def test_segments(text: str, expected: int) -> None:
    assert sms.segments(text) == expected


# ------------------------------------------------------------------ fit_sms

LINK = "https://pay.example.com/i/8f2c1a"


def test_fit_sms_leaves_a_short_text_alone_and_appends_the_link() -> None:
    assert sms.fit_sms("Invoice 1042 is overdue. Pay:", LINK) == f"Invoice 1042 is overdue. Pay: {LINK}"


def test_fit_sms_moves_a_link_already_in_the_text_to_the_end_once() -> None:
    assert sms.fit_sms(f"Pay {LINK} today", LINK) == f"Pay today {LINK}"


@pytest.mark.parametrize(("text", "max_segments"), [
    ("Your invoice 1042 from Acme is now 15 days overdue. " * 12, 2),
    ("Your invoice 1042 from Acme is now 15 days overdue. " * 12, 1),
    ("Votre facture 1042 est en retard depuis quinze jours, merci de régler. " * 8, 1),
    ("Ihre Rechnung 1042 ist überfällig – bitte zahlen Sie heute. " * 8, 2),
    ("Paiement reçu ? Sinon payez ici, c'est très simple 👍 " * 8, 1),
], ids=[
    "long gsm text cut to two segments",
    "long gsm text cut to one segment",
    "french gsm text cut to one segment",
    "german text with an en dash (ucs2) cut to two segments",
    "text with an emoji cut to one segment",
])
def test_fit_sms_shortens_but_keeps_the_link(text: str, max_segments: int) -> None:
    fitted = sms.fit_sms(text, LINK, max_segments)
    assert fitted.endswith(" " + LINK)
    assert sms.segments(fitted) <= max_segments
    assert fitted.count(LINK) == 1
    body = fitted.removesuffix(" " + LINK)
    assert body.endswith(("...", "…"))
    assert len(body) > 25  # it kept as much text as fits, not a stub


def test_fit_sms_does_not_switch_a_gsm_text_to_ucs2_with_its_ellipsis() -> None:
    fitted = sms.fit_sms("Invoice 1042 is overdue. " * 20, LINK, 1)
    assert sms.is_gsm7(fitted) and "..." in fitted


def test_fit_sms_refuses_a_link_that_alone_is_too_long() -> None:
    with pytest.raises(errors.InvalidInput):
        sms.fit_sms("hi", "https://pay.example.com/" + "x" * 200, 1)


# ------------------------------------------------------------------ quiet hours

NY, PARIS, LA = ZoneInfo("America/New_York"), ZoneInfo("Europe/Paris"), ZoneInfo("America/Los_Angeles")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


@pytest.mark.parametrize(("local", "quiet"), [
    (datetime(2026, 6, 1, 7, 59, tzinfo=NY), True),
    (datetime(2026, 6, 1, 8, 0, tzinfo=NY), False),
    (datetime(2026, 6, 1, 20, 59, tzinfo=NY), False),
    (datetime(2026, 6, 1, 21, 0, tzinfo=NY), True),
    (datetime(2026, 6, 1, 0, 30, tzinfo=NY), True),
], ids=[
    "one minute before eight is quiet",
    "eight sharp is allowed",
    "eight fifty-nine pm is allowed",
    "nine pm sharp is quiet",
    "half past midnight is quiet",
])
def test_is_quiet_hours(local: datetime, quiet: bool) -> None:
    assert sms.is_quiet_hours(local) is quiet


@pytest.mark.parametrize(("now", "tz", "expected"), [
    (utc(2026, 6, 1, 15, 0), NY, utc(2026, 6, 1, 15, 0)),     # 11:00 in New York: now
    (utc(2026, 6, 1, 10, 0), NY, utc(2026, 6, 1, 12, 0)),     # 06:00 EDT → 08:00 EDT the same day
    (utc(2026, 6, 2, 2, 0), NY, utc(2026, 6, 2, 12, 0)),      # 22:00 EDT on June 1 (already June 2 in UTC) → 08:00 June 2
    (utc(2026, 6, 2, 3, 30), LA, utc(2026, 6, 2, 3, 30)),     # 20:30 PDT on June 1: still allowed
    (utc(2026, 3, 8, 6, 0), NY, utc(2026, 3, 8, 12, 0)),      # 01:00 EST on spring-forward day → 08:00 EDT (UTC-4)
    (utc(2026, 3, 7, 23, 0), "America/New_York", utc(2026, 3, 7, 23, 0)),  # 18:00 EST, zone given by name
    (utc(2026, 11, 1, 5, 30), NY, utc(2026, 11, 1, 13, 0)),   # 01:30 EDT on fall-back day → 08:00 EST (UTC-5)
    (utc(2026, 3, 29, 0, 30), PARIS, utc(2026, 3, 29, 6, 0)), # 01:30 CET on Paris spring-forward → 08:00 CEST
    (utc(2026, 12, 31, 23, 30), PARIS, utc(2027, 1, 1, 7, 0)),# 00:30 on New Year's Day in Paris → 08:00 CET
], ids=[
    "inside the window the answer is now",
    "early morning waits for eight the same day",
    "late evening in new york waits for eight next morning across utc midnight",
    "eight thirty pm in los angeles is still allowed",
    "spring forward night waits for eight edt",
    "six pm the evening before spring forward is allowed",
    "fall back night waits for eight est",
    "paris spring forward night waits for eight cest",
    "after midnight on new year waits for eight",
])
def test_next_allowed_send(now: datetime, tz: object, expected: datetime) -> None:
    got = sms.next_allowed_send(now, tz)  # type: ignore[arg-type]
    assert got == expected and got.tzinfo is not None
    assert not sms.is_quiet_hours(got.astimezone(tz if not isinstance(tz, str) else ZoneInfo(tz)))


def test_next_allowed_send_refuses_naive_times_and_unknown_zones() -> None:
    with pytest.raises(ValueError):
        sms.next_allowed_send(datetime(2026, 6, 1, 12), NY)
    with pytest.raises(errors.InvalidInput, match="time zone"):
        sms.next_allowed_send(utc(2026, 6, 1, 12), "Mars/Olympus_Mons")


@pytest.mark.parametrize(("number", "zones"), [
    ("+14155552671", ("America/Los_Angeles",)),
    ("+12125550100", ("America/New_York",)),
    ("+18085550142", ("Pacific/Honolulu",)),
    ("+33612345678", ("Europe/Paris",)),
    ("not a number", ()),
], ids=[
    "a san francisco number is in los angeles time",
    "a manhattan number is in new york time",
    "a honolulu number is in hawaii time",
    "a french mobile is in paris time",
    "garbage has no zone",
])
def test_number_time_zones(number: str, zones: tuple[str, ...]) -> None:
    assert sms.number_time_zones(number) == zones


@pytest.mark.parametrize(("now", "zones", "expected"), [
    (utc(2026, 6, 1, 13, 0), ("America/New_York", "America/Chicago"), utc(2026, 6, 1, 13, 0)),   # 9:00 / 8:00: now
    (utc(2026, 6, 1, 12, 30), ("America/New_York", "America/Chicago"), utc(2026, 6, 1, 13, 0)),  # 8:30 NY, 7:30 Chicago
    (utc(2026, 6, 2, 0, 30), ("America/New_York", "America/Chicago"), utc(2026, 6, 2, 0, 30)),   # 20:30 NY, 19:30 Chicago
    (utc(2026, 6, 2, 1, 30), ("America/New_York", "America/Chicago"), utc(2026, 6, 2, 13, 0)),  # 21:30 NY: next day, 8:00 Chicago
], ids=[
    "daytime in both zones is now",
    "waits for eight in the later zone",
    "evening in both zones is still allowed",
    "after nine in the earlier zone waits for the next morning in the later one",
])
def test_next_allowed_send_in_several_zones_is_daytime_in_all(now: datetime, zones: tuple[str, ...],
                                                              expected: datetime) -> None:
    assert sms.next_allowed_send(now, zones) == expected


def test_zones_with_no_daytime_in_common_are_refused() -> None:
    with pytest.raises(errors.InvalidInput, match="no daytime"):
        sms.next_allowed_send(utc(2026, 6, 1, 12), ("UTC", "Asia/Shanghai", "America/Los_Angeles"))


# ------------------------------------------------------------------ keywords


@pytest.mark.parametrize(("body", "keyword"), [
    ("STOP", "stop"), ("stop", "stop"), ("  Stop \n", "stop"), ("Stop.", "stop"),
    ("STOPALL", "stop"), ("unsubscribe", "stop"), ("Cancel", "stop"), ("END", "stop"),
    ("quit", "stop"), ("REVOKE", "stop"), ("optout", "stop"),
    ("START", "start"), ("yes", "start"), ("Unstop", "start"),
    ("HELP", "help"), ("info", "help"),
    ("please stop texting me", None), ("STOP IT", None), ("stopp", None), ("", None), (None, None),
    ("I paid yesterday", None), ("OPT OUT", None),
], ids=[
    "upper case stop", "lower case stop", "stop with whitespace around", "stop with a full stop",
    "stopall", "unsubscribe", "cancel", "end",
    "quit", "revoke", "optout",
    "start", "yes opts back in", "unstop",
    "help", "info is help",
    "stop inside a sentence is not a keyword", "stop followed by a word", "misspelt stop", "empty body", "no body",
    "an ordinary reply", "opt out with a space is not the keyword",
])
def test_parse_keyword(body: str | None, keyword: str | None) -> None:
    assert sms.parse_keyword(body) == keyword


# ------------------------------------------------------------------ base URL rewriting


@pytest.mark.parametrize(("url", "base_url", "expected"), [
    ("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", "http://127.0.0.1:5000/twilio",
     "http://127.0.0.1:5000/twilio/2010-04-01/Accounts/AC1/Messages.json"),
    ("https://messaging.twilio.com/v1/Services?PageSize=50", "http://127.0.0.1:5000/twilio/",
     "http://127.0.0.1:5000/twilio/v1/Services?PageSize=50"),
    ("https://api.twilio.com/2010-04-01/Accounts.json", None, "https://api.twilio.com/2010-04-01/Accounts.json"),
    ("https://example.com/other", "http://127.0.0.1:5000", "https://example.com/other"),
    ("https://eviltwilio.com/x", "http://127.0.0.1:5000", "https://eviltwilio.com/x"),
], ids=[
    "api domain goes to the sandbox with its prefix",
    "any other twilio domain too keeping the query and ignoring a trailing slash",
    "no base url leaves twilio alone",
    "non twilio urls are left alone",
    "a look-alike domain is not twilio",
])
def test_rebase_url(url: str, base_url: str | None, expected: str) -> None:
    assert sms.rebase_url(url, base_url) == expected
