"""Which templates exist, and the texts shipped with the program.

The rules engine names its steps with these keys; a company may override any of them (per
language) on the settings page, and the dispatcher falls back to ``default(key, language)``.
The shipped texts live in ``defaults/<language>.toml``, one table per key.
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from importlib import resources

from qbo_collector import errors
from qbo_collector.rules.policy import TEMPLATE_KEYS
from qbo_collector.templates.context import LANGUAGES

# The rules engine names the steps; a template exists for each name it can emit.
KEYS = TEMPLATE_KEYS

PARTS = ("subject", "text", "html", "sms")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TemplateSet:
    """The four parts of one message, as Jinja sources.

    ``html`` is the body only: the engine wraps it in the document shell. An empty ``html``
    is made from the text; an empty ``sms`` means no text message for this step.
    """

    key: str
    language: str
    subject: str
    text: str
    html: str = ""
    sms: str = ""

    def __post_init__(self) -> None:
        if self.key not in KEYS:
            raise errors.InvalidInput(f"There is no template called {self.key!r}.", field="key")
        if self.language not in LANGUAGES:
            raise errors.InvalidInput(
                f"Templates are written in {' or '.join(LANGUAGES)}, not {self.language!r}.", field="language"
            )


def defaults(language: str) -> dict[str, TemplateSet]:
    """The shipped templates in ``language``, by key (a fresh dict; the sets are immutable)."""
    return dict(_load(_check_language(language)))


def default(key: str, language: str) -> TemplateSet:
    """The shipped template ``key`` in ``language``."""
    if key not in KEYS:
        raise errors.InvalidInput(f"There is no template called {key!r}.", field="key")
    return _load(_check_language(language))[key]


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise errors.InvalidInput(
            f"Templates are written in {' or '.join(LANGUAGES)}, not {language!r}.", field="language"
        )
    return language


@functools.cache
def _load(language: str) -> dict[str, TemplateSet]:
    source = resources.files("qbo_collector.templates").joinpath("defaults", f"{language}.toml")
    table = tomllib.loads(source.read_text(encoding="utf-8"))
    missing = [key for key in KEYS if key not in table]
    if missing:  # a packaging mistake, caught by the unit tests
        raise RuntimeError(f"defaults/{language}.toml lacks {', '.join(missing)}")
    return {key: TemplateSet(key=key, language=language, **table[key]) for key in KEYS}
