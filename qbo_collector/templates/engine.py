"""Turn a template set and a reminder context into the message that is sent.

Templates are written by people on the settings page and stored in the database, so they
run in Jinja's immutable sandbox, with no loader (no include, import or extends), no globals,
a short list of filters, and ``StrictUndefined`` (a misspelt placeholder is an error, never a
blank in a customer's email). HTML is autoescaped; subject, text and SMS are not.

``validate()`` is what the settings page calls before saving: it names the line of a mistake
in words a shop owner can act on, and renders the template against sample customers (with
and without the optional parts) so that what is saved will render at send time.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import html as html_lib
import operator
import re
import types
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import jinja2
from babel import Locale, localedata
from babel import dates as babel_dates
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from qbo_collector import errors
from qbo_collector.money import Money
from qbo_collector.templates import catalog
from qbo_collector.templates import context as template_context
from qbo_collector.templates import sms as sms_module
from qbo_collector.templates import terms
from qbo_collector.templates.terms import format_days, format_percent

MAX_SOURCE_LENGTH = 20_000
_MAX_PRODUCT_LENGTH = 10_000  # "x" * n in a template
_MAX_OUTPUT_LENGTH = 2_000_000  # a statement of 1,000 invoices is about 700,000 characters of HTML
_MAX_LOOP_DEPTH = 2
_MAX_EXPONENT = 64
_MAX_INT_BITS = 4_096  # about 1,200 digits: far past any amount, and instant to compute

# Names that are reachable in other Jinja set-ups (Flask, Jinja's defaults) and are a
# classic way out of a sandbox; refused by name so the message says "not allowed".
_FORBIDDEN_NAMES = frozenset({
    "self", "config", "request", "session", "g", "url_for", "get_flashed_messages",
    "lipsum", "cycler", "joiner", "namespace", "range", "dict", "environment", "context",
})
_GROWING_TEXT_METHODS = frozenset({
    "ljust", "rjust", "center", "zfill", "expandtabs", "replace", "join", "format", "format_map", "translate",
})
_FORBIDDEN_ATTRIBUTES = frozenset({"mro", "format_map", "gi_frame", "gi_code", "f_globals", "f_locals"})

# Jinja's own filters that cannot grow a text much: replace, join, wordwrap, urlencode, center,
# indent and format are left out, because chained they turn a short template into gigabytes.
_SAFE_BUILTIN_FILTERS = (
    "abs", "capitalize", "count", "d", "default", "e", "escape", "first", "int", "last", "length",
    "lower", "max", "min", "reverse", "round", "sort", "string", "sum", "title", "trim", "truncate",
    "upper", "wordcount",
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RenderedMessage:
    """One message ready for the channels: ``html`` is a whole document, ``sms`` None when the step sends no text."""

    subject: str
    text: str
    html: str
    sms: str | None


# --------------------------------------------------------------------------- rendering


def render(template: catalog.TemplateSet, context: template_context.ReminderContext) -> RenderedMessage:
    """Render the four parts of ``template`` for ``context``.

    Raises ``errors.InvalidInput`` (field = the part) when the stored template cannot be
    rendered for this customer; nothing is half-rendered.
    """
    names = _namespace(context)
    subject = " ".join(_render_part(template, "subject", names).split())
    text = _tidy(_render_part(template, "text", names))
    body = _render_part(template, "html", names) if template.html.strip() else _html_from_text(text)
    sms = sms_module.plain(_render_part(template, "sms", names)) if template.sms.strip() else None
    return RenderedMessage(
        subject=subject,
        text=text,
        html=_HTML_SHELL.format(lang=names["customer_language"], title=html_lib.escape(subject), body=body.strip()),
        sms=sms or None,
    )


def _render_part(template: catalog.TemplateSet, part: str, names: Mapping[str, Any]) -> str:
    source = getattr(template, part)
    try:
        return _run(_compile(part == "html", source), names)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence for a person
        problem = _explain(exc, source, part)
        raise errors.InvalidInput(
            f"The {template.key} template ({template.language}, {part}) cannot be rendered: {problem.message}",
            field=part, key=template.key, language=template.language, line=problem.line,
        ) from exc


def _namespace(context: template_context.ReminderContext) -> dict[str, Any]:
    names = {field.name: getattr(context, field.name) for field in dataclasses.fields(context)}
    names["locale"] = effective_locale(context.locale, context.customer_language)
    names["invoice"] = context.invoices[0] if context.invoices else None
    names["totals"] = context.totals
    names["fees"] = tuple(line for line in context.invoices if line.fee is not None)
    names["late_fee_terms"] = terms.late_fee_terms(
        context.late_fee_rules or ((context.late_fee_rule,) if context.late_fee_rule else ()),
        context.customer_language, names["locale"],
    )
    return names


def effective_locale(locale: str, language: str) -> str:
    """The locale to write numbers and dates in, in the customer's language.

    A French customer of a company set to en_CA reads "23 novembre 2026" (fr_CA), not
    "November 23, 2026" in the middle of a French sentence.
    """
    parsed = Locale.parse(locale)
    if parsed.language == language:
        return str(parsed)
    if parsed.territory and localedata.exists(f"{language}_{parsed.territory}"):
        return f"{language}_{parsed.territory}"
    return language


def _tidy(text: str) -> str:
    # split on newlines only: str.splitlines() would also break on \x1c-\x1e or U+2028 in a name
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").strip().split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


_URL = re.compile(r"https?://[^\s<>\"']+[^\s<>\"'.,;:!?)]")


def _html_from_text(text: str) -> str:
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        escaped = html_lib.escape(block, quote=True)
        linked = _URL.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append("<p>" + linked.replace("\n", "<br>\n") + "</p>")
    return "\n".join(paragraphs)


_HTML_SHELL = """<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
</head>
<body style="margin:0;padding:24px 12px;background:#f4f4f1;">
<div style="max-width:600px;margin:0 auto;padding:24px;background:#ffffff;border-radius:6px;font-family:Helvetica,Arial,sans-serif;font-size:15px;line-height:1.55;color:#1f2328;">
{body}
</div>
</body>
</html>
"""


# --------------------------------------------------------------------------- filters


def _locale_of(ctx: jinja2.runtime.Context) -> str:
    return str(ctx.get("locale") or "en_US")


def _language_of(ctx: jinja2.runtime.Context) -> str:
    return str(ctx.get("customer_language") or "en")


class _FilterError(ValueError):
    pass


def _defined(value: object) -> None:
    """Let a missing value passed to a filter fail as missing, not as "not an amount"."""
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()


def _kind(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"


@jinja2.pass_context
def _money_filter(ctx: jinja2.runtime.Context, value: object) -> str:
    _defined(value)
    if isinstance(value, Money):
        return value.format(_locale_of(ctx))
    if isinstance(value, (tuple, list)) and value and all(isinstance(v, Money) for v in value):
        return " + ".join(v.format(_locale_of(ctx)) for v in value)
    raise _FilterError(f"the money filter needs an amount, not {_kind(value)}")


_DATE_STYLES = {"fr": "long", "en": "medium"}  # "23 novembre 2026", "Nov 23, 2026"


@jinja2.pass_context
def _date_filter(ctx: jinja2.runtime.Context, value: object, style: str | None = None) -> str:
    _defined(value)
    if not isinstance(value, datetime.date):
        raise _FilterError(f"the date filter needs a date, not {_kind(value)}")
    style = style or _DATE_STYLES.get(_language_of(ctx), "medium")
    if style not in ("short", "medium", "long", "full"):
        raise _FilterError(f"the date filter takes 'short', 'medium', 'long' or 'full', not {style!r}")
    return babel_dates.format_date(value, style, locale=_locale_of(ctx))


@jinja2.pass_context
def _days_filter(ctx: jinja2.runtime.Context, value: object) -> str:
    _defined(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _FilterError(f"the days filter needs a whole number of days, not {_kind(value)}")
    return format_days(value, _locale_of(ctx))


@jinja2.pass_context
def _percent_filter(ctx: jinja2.runtime.Context, value: object) -> str:
    _defined(value)
    if isinstance(value, (bool, float)) or not isinstance(value, (int, Decimal)):
        raise _FilterError(f"the percent filter needs a number, not {_kind(value)}")
    return format_percent(Decimal(value), _locale_of(ctx))


_FILTERS: Mapping[str, Callable[..., Any]] = {
    "money": _money_filter,
    "date": _date_filter,
    "days": _days_filter,
    "percent": _percent_filter,
}


# --------------------------------------------------------------------------- the sandbox


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with repetition, powers and %-formatting capped (a template is not a DoS)."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return attr not in _FORBIDDEN_ATTRIBUTES and super().is_safe_attribute(obj, attr, value)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        # Jinja's signature; text methods that pad or substitute can grow a short template
        # into gigabytes ("x".ljust(10**9), chained .replace()), so they are not callable.
        if isinstance(getattr(__obj, "__self__", None), str) and getattr(__obj, "__name__", "") in _GROWING_TEXT_METHODS:
            raise SecurityError(f"the text method {__obj.__name__}()")
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: jinja2.runtime.Context, operator_name: str, left: Any, right: Any) -> Any:
        if operator_name == "%":
            if isinstance(left, str):  # '%999999999s' % x would allocate a gigabyte
                raise SecurityError("text formatting with %")
            return operator.mod(left, right)
        if operator_name == "**":
            if isinstance(right, (int, float, Decimal)) and abs(right) > _MAX_EXPONENT:
                raise SecurityError(f"a power above {_MAX_EXPONENT}")
            # a small exponent is not enough: (((9**64)**64)**64)**64 takes minutes and gigabytes
            if _whole(left) and _whole(right) and right > 0 and abs(left).bit_length() * right > _MAX_INT_BITS:
                raise SecurityError(f"a number longer than {_MAX_INT_BITS} bits")
            return operator.pow(left, right)
        if _whole(left) and _whole(right) and abs(left).bit_length() + abs(right).bit_length() > _MAX_INT_BITS:
            raise SecurityError(f"a number longer than {_MAX_INT_BITS} bits")
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                if len(sequence) * times > _MAX_PRODUCT_LENGTH:
                    raise SecurityError(f"a repeated text longer than {_MAX_PRODUCT_LENGTH} characters")
        return operator.mul(left, right)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _make_environment(autoescape: bool) -> _Sandbox:
    env = _Sandbox(
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        loader=None,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        auto_reload=False,
        cache_size=0,  # compiled templates are cached by _compile, keyed on the source
    )
    env.globals.clear()
    builtins = env.filters
    env.filters = {name: builtins[name] for name in _SAFE_BUILTIN_FILTERS}
    env.filters.update(_FILTERS)
    return env


_HTML_ENV = _make_environment(autoescape=True)
_TEXT_ENV = _make_environment(autoescape=False)


def _environment(part: str) -> _Sandbox:
    return _HTML_ENV if part == "html" else _TEXT_ENV


def _run(template: jinja2.Template, names: Mapping[str, Any]) -> str:
    """``template.render()``, stopped as soon as the output passes the size limit."""
    chunks, size = [], 0
    for chunk in template.generate(names):
        size += len(chunk)
        if size > _MAX_OUTPUT_LENGTH:
            raise SecurityError(f"a message longer than {_MAX_OUTPUT_LENGTH:,} characters")
        chunks.append(chunk)
    return "".join(chunks)


@functools.lru_cache(maxsize=512)
def _compile(html: bool, source: str) -> jinja2.Template:
    return (_HTML_ENV if html else _TEXT_ENV).from_string(source)


# --------------------------------------------------------------------------- validation


# An email with an empty subject or text is refused by SendGrid; a template that renders one for some
# customers (an ``{% if %}`` around everything) is refused here, before any customer is concerned.
EMPTY_REFUSED = {
    "subject": "The subject comes out empty for some customers (for example one without a PO): "
               "write a subject that always says something.",
    "text": "The text comes out empty for some customers: write a text that always says something.",
}


@dataclasses.dataclass(frozen=True)
class _Problem:
    message: str
    line: int | None


class _Refused(Exception):
    def __init__(self, problem: _Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def validate(
    source: str, *, part: str, sample: template_context.ReminderContext | None = None, key: str | None = None
) -> None:
    """Refuse a template that would not render, with a sentence naming the line.

    ``part`` is "subject", "text", "html" or "sms". The template is rendered against
    ``sample``, or when none is given against the sample customers in every language, with
    and without the optional parts (PO, payment link, discount…); ``key`` says which of those
    the template is always given (a late fee notice always has ``fee``). Raises
    ``errors.InvalidInput`` with ``field=part`` and ``line``.
    """
    if part not in catalog.PARTS:
        raise errors.InvalidInput(
            f"A template part is one of {', '.join(catalog.PARTS)}, not {part!r}.", field="part"
        )
    if key is not None and key not in catalog.KEYS:
        raise errors.InvalidInput(f"There is no template called {key!r}.", field="key")
    if not isinstance(source, str):
        raise errors.InvalidInput("A template must be text.", field=part)
    if len(source) > MAX_SOURCE_LENGTH:
        raise errors.InvalidInput(
            f"This template is {len(source)} characters long; the limit is {MAX_SOURCE_LENGTH}.", field=part
        )
    try:
        _check_statically(source, part)
        samples = (sample,) if sample is not None else tuple(
            template_context.sample_context(language, minimal=minimal, key=key)
            for language in template_context.LANGUAGES
            for minimal in (False, True)
        )
        for context in samples:
            try:
                said = _run(_compile(part == "html", source), _namespace(context))
            except Exception as exc:  # noqa: BLE001
                raise _Refused(_explain(exc, source, part)) from exc
            if part in EMPTY_REFUSED and not said.strip():
                raise _Refused(_Problem(EMPTY_REFUSED[part], None))
    except _Refused as refused:
        raise errors.InvalidInput(refused.problem.message, field=part, line=refused.problem.line) from None


def _check_statically(source: str, part: str) -> None:
    env = _environment(part)
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise _Refused(_syntax_problem(exc)) from None
    for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        raise _Refused(_Problem(
            f"Line {node.lineno}: templates cannot include, import or extend other templates.", node.lineno
        ))
    # No variables, macros or loops over made-up sequences: a template only shows the data it
    # is given, so its cost is bounded by that data (a doubling {% set %} chain is not).
    for node in _in_line_order(tree, (nodes.Assign, nodes.AssignBlock, nodes.Macro, nodes.CallBlock, nodes.For)):
        if isinstance(node, nodes.For):
            if _loops_over_data(node.iter):
                continue
            message = "a loop can only go over a placeholder such as invoices or totals"
        else:
            message = "templates cannot define variables or macros (set, macro, call)"
        raise _Refused(_Problem(f"Line {node.lineno}: {message}.", node.lineno))
    for depth, loop in _loop_nesting(tree):
        if depth > _MAX_LOOP_DEPTH:
            raise _Refused(_Problem(
                f"Line {loop.lineno}: loops can be nested {_MAX_LOOP_DEPTH} deep at most.", loop.lineno
            ))
    for node in _in_line_order(tree, (nodes.Getattr, nodes.Getitem, nodes.Name)):
        refused = _forbidden_name(node)
        if refused:
            raise _Refused(_Problem(
                f"This template tries to use something that is not allowed: {refused!r} on line {node.lineno}.",
                node.lineno,
            ))
    try:
        unknown = meta.find_undeclared_variables(tree) - set(_available_names())
    except TemplateSyntaxError as exc:  # unknown filter or test
        raise _Refused(_syntax_problem(exc)) from None
    if unknown:
        first = min(
            (n for n in tree.find_all(nodes.Name) if n.name in unknown),
            key=lambda n: n.lineno,
        )
        raise _Refused(_Problem(
            f"Unknown placeholder {first.name!r} on line {first.lineno}; available: {', '.join(_available_names())}.",
            first.lineno,
        ))
    try:
        _compile(part == "html", source)
    except TemplateSyntaxError as exc:  # unknown filter or test
        raise _Refused(_syntax_problem(exc)) from None


def _loop_nesting(node: nodes.Node, depth: int = 0) -> Iterator[tuple[int, nodes.For]]:
    """Every loop with how many loops enclose it (itself included)."""
    for child in node.iter_child_nodes():
        if isinstance(child, nodes.For):
            yield depth + 1, child
            yield from _loop_nesting(child, depth + 1)
        else:
            yield from _loop_nesting(child, depth)


def _loops_over_data(iterable: nodes.Node) -> bool:
    while isinstance(iterable, nodes.Filter) and iterable.node is not None:
        iterable = iterable.node
    while isinstance(iterable, nodes.Getattr):
        iterable = iterable.node
    return isinstance(iterable, nodes.Name)


def _in_line_order(tree: nodes.Node, kinds: tuple[type[nodes.Node], ...]) -> Iterator[nodes.Node]:
    return iter(sorted(tree.find_all(kinds), key=lambda n: n.lineno))


def _forbidden_name(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name) and node.name in _FORBIDDEN_NAMES:
        return node.name
    if isinstance(node, nodes.Getattr) and (node.attr.startswith("_") or node.attr in _FORBIDDEN_ATTRIBUTES):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        if node.arg.value.startswith("_") or node.arg.value in _FORBIDDEN_ATTRIBUTES:
            return node.arg.value
    return None


@functools.cache
def _available_names() -> tuple[str, ...]:
    return tuple(name for name in template_context.PLACEHOLDERS if "." not in name)


def _syntax_problem(exc: TemplateSyntaxError) -> _Problem:
    message = exc.message or "this is not valid template syntax"
    unknown_filter = re.match(r"No filter named '([^']+)'", message)
    if unknown_filter:
        message = (
            f"there is no filter called {unknown_filter.group(1)!r}; available: {', '.join(_FILTERS)}"
            f" and {', '.join(_SAFE_BUILTIN_FILTERS)}"
        )
    return _Problem(f"Line {exc.lineno}: {message}", exc.lineno)


# Field lists shown when a placeholder has a misspelt part after the dot.
_RECORDS: Mapping[str, tuple[str, ...]] = {
    record.__name__: tuple(f.name for f in dataclasses.fields(record))
    for record in (template_context.DiscountOffer, template_context.LateFeeRule, template_context.Promise)
} | {
    "InvoiceLine": tuple(f.name for f in dataclasses.fields(template_context.InvoiceLine)) + ("terms_days",),
    "Money": ("amount", "currency"),
}


def _explain(exc: BaseException, source: str, part: str) -> _Problem:
    """One sentence for a person about why ``source`` failed to render."""
    line = _template_line(exc)
    where = f" on line {line}" if line else ""
    if isinstance(exc, SecurityError):
        return _Problem(f"This template tries to use something that is not allowed{where}: {str(exc).rstrip('.')}.", line)
    if isinstance(exc, TemplateSyntaxError):
        return _syntax_problem(exc)
    if isinstance(exc, UndefinedError):
        message = str(exc)
        undefined = re.fullmatch(r"'([^']+)' is undefined", message)
        if undefined:
            return _Problem(
                f"Unknown placeholder {undefined.group(1)!r}{where}; available: {', '.join(_available_names())}.", line
            )
        missing = re.fullmatch(r"'(.+)' has no attribute '([^']+)'", message)
        if missing:
            owner, attribute = missing.groups()
            path = _attribute_path(source, line, attribute)
            if owner == "None":
                parent = path.rsplit(".", 1)[0] if path else "it"
                return _Problem(
                    f"{parent!r} is empty for some messages, so {path or attribute!r}{where} cannot be shown;"
                    f" put it inside {{% if {parent} %}} … {{% endif %}}.",
                    line,
                )
            for record, fields in _RECORDS.items():
                if re.search(rf"\b{record} object$", owner):
                    return _Problem(
                        f"Unknown placeholder {path or attribute!r}{where}; available: {', '.join(fields)}.", line
                    )
        return _Problem(f"Line {line or '?'}: {message}.", line)
    if isinstance(exc, (_FilterError, TypeError, ValueError, ArithmeticError, LookupError)):
        return _Problem(f"Line {line or '?'}: {exc}.", line)
    return _Problem(f"Line {line or '?'}: this template cannot be rendered ({type(exc).__name__}: {exc}).", line)


def _template_line(exc: BaseException) -> int | None:
    """The template line of the innermost template frame (Jinja rewrites its tracebacks so they point there)."""
    if isinstance(exc, TemplateSyntaxError):
        return exc.lineno
    line = None
    tb: types.TracebackType | None = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _attribute_path(source: str, line: int | None, attribute: str) -> str | None:
    """ "discount.amount" for a failing ``.amount`` on ``line``, when the AST says so."""
    try:
        tree = _TEXT_ENV.parse(source)
    except TemplateSyntaxError:
        return None
    for node in tree.find_all(nodes.Getattr):
        if node.attr == attribute and (line is None or node.lineno == line):
            parts = [node.attr]
            inner = node.node
            while isinstance(inner, nodes.Getattr):
                parts.append(inner.attr)
                inner = inner.node
            if isinstance(inner, nodes.Name):
                parts.append(inner.name)
                return ".".join(reversed(parts))
    return None
