"""The explicit registry of channel adapters.

Built-ins are listed here, by hand, so that reading this file tells you every way a
message can leave. A plugin adds its own with ``register(MyChannel)``; two adapters
claiming one identifier is a bug and fails at import time, not at the first send.
"""

from __future__ import annotations

from collections.abc import Iterator

from qbo_collector import errors
from qbo_collector.channels import base, email, qbo_notes, sms


class Registry:
    """Identifier → adapter class. Classes, not instances: settings come per company."""

    def __init__(self) -> None:
        self._classes: dict[str, type[base.Channel]] = {}

    def register(self, channel_class: type[base.Channel]) -> type[base.Channel]:
        """Add an adapter class; usable as a decorator. Raises ConfigError on a duplicate identifier."""
        identifier = getattr(channel_class, "identifier", None)
        if not isinstance(identifier, str) or not identifier:
            raise errors.ConfigError(f"{channel_class.__qualname__} has no string 'identifier'; every channel needs one.")
        if identifier in self._classes:
            raise errors.ConfigError(
                f"Two channels claim the identifier {identifier!r}: "
                f"{self._classes[identifier].__qualname__} and {channel_class.__qualname__}."
            )
        self._classes[identifier] = channel_class
        return channel_class

    def get(self, identifier: str) -> type[base.Channel]:
        try:
            return self._classes[identifier]
        except KeyError:
            raise errors.ConfigError(
                f"No channel is called {identifier!r}; known channels: {', '.join(sorted(self._classes))}."
            ) from None

    def __contains__(self, identifier: object) -> bool:
        return identifier in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


CHANNELS = Registry()
CHANNELS.register(email.SendGridEmail)
CHANNELS.register(sms.TwilioSms)
CHANNELS.register(qbo_notes.QboNotes)  # type: ignore[arg-type]  # QuickBooks notes and late fees

register = CHANNELS.register
get = CHANNELS.get
