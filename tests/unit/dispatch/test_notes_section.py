"""The program's section of Customer.Notes: the user's words untouched, newest first, ≤ 1000 characters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qbo_collector.channels import qbo_notes as qn

LINE = "2026-11-23 Reminder sent by email: invoice 1042"


@pytest.mark.parametrize(("notes", "lines", "expected"), [
    pytest.param(None, [LINE], f"{qn.START_MARK}\n{LINE}\n{qn.END_MARK}", id="empty notes get a section"),
    pytest.param("Gate code 4411.", [LINE], f"Gate code 4411.\n\n{qn.START_MARK}\n{LINE}\n{qn.END_MARK}",
                 id="the user's text stays first, untouched"),
    pytest.param(f"Mine.\n\n{qn.START_MARK}\nold line\n{qn.END_MARK}\n\nAlso mine.", ["new line"],
                 f"Mine.\n\n{qn.START_MARK}\nnew line\nold line\n{qn.END_MARK}\n\nAlso mine.",
                 id="newest first; text after the section is kept too"),
    pytest.param(f"{qn.START_MARK}\n{LINE}\n{qn.END_MARK}", [LINE], f"{qn.START_MARK}\n{LINE}\n{qn.END_MARK}",
                 id="a retried write-back adds nothing"),
    pytest.param(f"Mine.\n{qn.START_MARK}\nold line", ["new"], f"Mine.\n\n{qn.START_MARK}\nnew\nold line\n{qn.END_MARK}",
                 id="a deleted end marker: our section ran to the end"),
])
def test_merge_notes(notes, lines, expected) -> None:  # type: ignore[no-untyped-def]
    assert qn.merge_notes(notes, lines) == expected


def test_oldest_lines_are_dropped_to_stay_within_the_limit() -> None:
    lines = [f"2026-11-{d:02d} Reminder sent by email: invoice {1000 + d}" for d in range(30, 0, -1)]
    merged = qn.merge_notes("Customer since 2019.", lines)
    assert len(merged) <= qn.NOTES_LIMIT
    _before, kept, _after = qn.split_notes(merged)
    assert kept == lines[:len(kept)] and 10 < len(kept) < 30


def test_a_user_text_that_fills_the_field_is_never_cut() -> None:
    mine = "x" * 1200
    assert qn.merge_notes(mine, [LINE]) == mine


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=600).filter(
    lambda t: qn.START_MARK not in t and qn.END_MARK not in t)


@settings(max_examples=200, deadline=None)
@given(user=text, lines=st.lists(st.text(min_size=1, max_size=120).map(lambda t: " ".join(t.split()) or "x"), max_size=40))
def test_properties(user: str, lines: list[str]) -> None:
    merged = qn.merge_notes(user, lines)
    before, _kept, _after = qn.split_notes(merged)
    assert before == user.rstrip() or merged == user  # the user's words are never changed
    if len(user) < qn.NOTES_LIMIT - 200:
        assert len(merged) <= qn.NOTES_LIMIT
    assert qn.merge_notes(merged, lines) == merged  # writing the same lines again changes nothing


def test_request_ids_are_deterministic_and_short() -> None:
    key = "9341453055757189:fee:13:percent:2026-10-08"
    assert qn.request_id(key) == qn.request_id(key) != qn.request_id(key + "x")
    assert len(qn.request_id(key)) <= 50
