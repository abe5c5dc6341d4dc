"""The customer timeline and the Upcoming page in the reader's language.

A row that carries a ``qbo_collector.timeline`` key is shown as that sentence of the
catalogue, its dates and amounts formatted by Babel in the reader's locale; a row without
one (written before keys existed, or a person's own note) is shown as stored. A rules-engine
reason (an outbox row without a key) is English: English readers see it, others the alert's
sentence or a description built from the row's fields. The work is ``qbo_collector.translation``'s
(the dispatcher writes owner alerts with it); this module gives it the user's locale and catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import get_locale, get_translations

from qbo_collector import timeline, translation
from qbo_collector.db import models


def reader() -> translation.Reader:
    """The current user's reader (Flask-Babel's locale and catalogue)."""
    locale = get_locale()
    return translation.Reader(locale=str(locale) if locale is not None else "en_US", translations=get_translations())


def sentence(key: str | None, args: Mapping[str, Any] | None, fallback: str) -> str:
    return reader().sentence(key, args, fallback)


def term(group: str, word: str | None) -> str:
    return reader().term(group, word)


def action(fields: Mapping[str, Any]) -> str:
    return reader().action(fields)


def outbox_text(row: models.Outbox) -> str:
    """What an outbox row shown on the timeline is about."""
    return action(timeline.action(row)["action"])


def outbox_reason(row: Any, invoices: list[str]) -> str | None:
    """Why an outbox row (or a planned one) exists; None when only its fields could tell, as the Upcoming
    page's columns do. ``invoices``: its invoice numbers."""
    return reader().reason({**timeline.action(row)["action"], "invoices": invoices})


def status_text(reason: str | None) -> str:
    """An outbox row's ``status_reason`` (stored in English): translated when the catalogue has the sentence."""
    return reader().value(timeline.error(reason)) if reason else ""
