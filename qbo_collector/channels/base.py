"""The channel contract: what every way out (email, SMS, ...) promises the dispatcher.

An adapter is a small class with an ``identifier``, the ``settings_fields`` the settings
page renders for it, and one method, ``send``. It takes plain values (no Flask request,
no database session) and translates its vendor's errors once, at its edge, into the
project's error tree:

    errors.TransientFailure        nothing was sent; the dispatcher may try again later
    └── OutcomeUnknown             the request may have reached the provider; NEVER resend
    errors.PermanentFailure        the provider refused this message for good (.code says why)
    errors.ConfigError             the channel is misconfigured (bad key); nothing was sent

Invariant 4 of DESIGN.md ("a crash never causes a second send") rests on the line
between ``TransientFailure`` and ``OutcomeUnknown``: only an error that proves the
request never reached the provider (a 429, a refused connection) is a plain
``TransientFailure``. A timeout after the request was written, a 5xx or an unreadable
answer is ``OutcomeUnknown``: the provider may have accepted the message, so the outbox
row becomes ``unknown`` and is reconciled from provider events (the ``outbox_id`` travels
in the message's custom arguments / status callback), never resent automatically.
``OutcomeUnknown`` subclasses ``TransientFailure`` so that code which only asks "is this
permanent?" stays right; code that retries must test for ``OutcomeUnknown`` first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from qbo_collector import errors


class OutcomeUnknown(errors.TransientFailure):
    """The provider may or may not have accepted the message: do not send it again; reconcile it from provider events."""


@dataclass(frozen=True)
class Setting:
    """One field of a channel's settings form, rendered by a page that knows no vendor."""

    name: str            # keyword argument of the adapter's constructor
    label: str
    help: str
    secret: bool = False     # shown as a password field, never echoed back
    required: bool = False


@dataclass(frozen=True)
class Attachment:
    """A file sent with an email (an SMS channel takes none)."""

    filename: str
    content: bytes
    mime_type: str = "application/pdf"


@dataclass(frozen=True, kw_only=True)
class OutboundMessage:
    """One message to one recipient, as the outbox row describes it."""

    outbox_id: str                      # travels with the message; provider events carry it back
    realm: str                          # the QuickBooks company it is sent for
    to: str                             # an email address (several: comma-separated), or an E.164 number for SMS
    text: str                           # plain text (the whole body of an SMS)
    subject: str | None = None
    html: str | None = None
    reply_to: str | None = None
    from_name: str | None = None        # the business's name, shown as the sender
    language: str = "en"
    status_callback_url: str | None = None   # SMS: where the provider posts delivery statuses
    custom_args: dict[str, str] = field(default_factory=dict)
    attachments: tuple[Attachment, ...] = ()   # email only


@dataclass(frozen=True)
class Receipt:
    """What the provider answered when it accepted a message."""

    provider_id: str                    # SendGrid X-Message-Id, Twilio message SID
    accepted_at: datetime | None        # the provider's own timestamp, when it gives one
    raw_status: str                     # "202" (SendGrid), "queued"/"accepted" (Twilio)


@runtime_checkable
class Channel(Protocol):
    """A way out. Implement the three members below and ``registry.register`` the class.

    ``identifier``
        Stable short name stored in outbox rows and settings: "email", "sms", ...
    ``settings_fields``
        The constructor's keyword arguments as ``Setting`` rows, so that the settings
        page can render a form for an adapter it has never heard of.
    """

    identifier: str
    settings_fields: list[Setting]

    def send(self, message: OutboundMessage) -> Receipt:
        """Hand one message to the provider and return its receipt.

        Called by the dispatcher after the outbox row is marked ``sending`` and the
        invoice balance was checked fresh; it must make at most ONE provider request
        and must not retry by itself (a library-level retry could send twice).

        Raises:
            errors.TransientFailure: nothing was sent (429, connection refused); the
                dispatcher may try again later, honouring ``retry_after`` if set.
            OutcomeUnknown: the request may have been accepted (timeout after the
                request was written, 5xx, unreadable answer); mark the row ``unknown``
                and do NOT send again automatically.
            errors.PermanentFailure: the provider refused this message (invalid
                address, recipient opted out, ...); ``.code`` holds the provider's code.
            errors.ConfigError: the channel's settings are wrong (rejected API key or
                credentials); nothing was sent, no message will go out until a person
                fixes the named setting.
        """
        ...
