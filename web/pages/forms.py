"""The policy form: a ``rules.Policy`` as flat form fields (named by their JSON path) and back.

Field names are the policy's own paths ("steps.0.offset_days", "send_window.hour"), so the
rules engine's validation errors land next to the field that caused them. Fee rules are
shown one block per kind ("fee.interest.percent"). Amounts are edited in the company's
currency; amounts in other currencies already stored are kept as they are.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pydantic
from flask_babel import gettext
from werkzeug.datastructures import MultiDict

from qbo_collector import money, rules
from qbo_collector.rules import policy as policy_mod

FEE_KINDS = ("flat", "percent", "interest", "indemnity")
EXTRA_STEP_ROWS = 2
EXTRA_TIER_ROWS = 1
# Rows a policy form may name: 20 steps and a few blank or removed ones. A posted row index is
# never looped up to: "steps.99999999.remove" would hold a worker for hours and render gigabytes.
MAX_FORM_ROWS = 64


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rows:
    """Where each list entry of the policy JSON came from on the form, so that an error lands on the
    row the user typed it in: removed and blank rows are left out of the JSON, not of the form."""

    kinds: list[str]  # the fee kind of each entry of late_fees.rules
    steps: list[int]  # the form row of each entry of steps
    tiers: list[int]  # the form row of each entry of discount_tiers


def _s(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    return str(value)


def values_of(policy: rules.Policy, currency: str) -> MultiDict[str, str]:
    """The form's values for ``policy`` (what a GET shows)."""
    v: MultiDict[str, str] = MultiDict()
    v["name"] = policy.name
    for i, step in enumerate(policy.steps):
        v[f"steps.{i}.offset_days"] = _s(step.offset_days)
        v[f"steps.{i}.anchor"] = step.anchor
        v[f"steps.{i}.template"] = step.template
        v[f"steps.{i}.tone"] = step.tone
        for ch in step.channels:
            v.add(f"steps.{i}.channels", ch)
    if policy.repeat_last:
        v["repeat_last.enabled"] = "1"
        v["repeat_last.every_days"] = _s(policy.repeat_last.every_days)
        v["repeat_last.max_times"] = _s(policy.repeat_last.max_times)
    v["min_gap_days"] = _s(policy.min_gap_days)
    v[f"min_balance.{currency}"] = _s(policy.min_balance.get(currency))
    w = policy.send_window
    v["send_window.hour"], v["send_window.minute"] = _s(w.hour), _s(w.minute)
    for d in w.weekdays:
        v.add("send_window.weekdays", str(d))
    v["send_window.skip_holidays"] = _s(w.skip_holidays)
    v["group_by_customer"] = _s(policy.group_by_customer)
    v["alert_owner_when_late"] = _s(policy.alert_owner_when_late)
    v["skip_unsent_invoices"] = _s(policy.skip_unsent_invoices)
    fees = policy.late_fees
    v["late_fees.grace_days"] = _s(fees.grace_days)
    v["late_fees.notify_customer"] = _s(fees.notify_customer)
    v["late_fees.max_count"] = _s(fees.max_count)
    v[f"late_fees.max_amount.{currency}"] = _s(fees.max_amount.get(currency))
    v["late_fees.max_percent_of_principal"] = _s(fees.max_percent_of_principal)
    for rule in fees.rules:
        p = f"fee.{rule.kind}"
        v[f"{p}.enabled"] = "1"
        v[f"{p}.amount"] = _s(rule.amount.get(currency))
        v[f"{p}.percent"] = _s(rule.percent)
        v[f"{p}.add_ecb_rate"] = _s(rule.add_ecb_rate)
        v[f"{p}.frequency"] = rule.frequency
        v[f"{p}.every_days"] = _s(rule.every_days)
    v["ecb_rate_percent"] = _s(policy.ecb_rate_percent)
    for i, tier in enumerate(policy.discount_tiers):
        v[f"discount_tiers.{i}.days_after_invoice"] = _s(tier.days_after_invoice)
        v[f"discount_tiers.{i}.percent"] = _s(tier.percent)
    v["escalation.call_task_after_days"] = _s(policy.escalation.call_task_after_days)
    v["escalation.handoff_after_days"] = _s(policy.escalation.handoff_after_days)
    v["promise_grace_days"] = _s(policy.promise_grace_days)
    v["payment_plan.remind_days_before"] = _s(policy.payment_plan.remind_days_before)
    v["payment_plan.remind_days_after"] = _s(policy.payment_plan.remind_days_after)
    return v


def row_count(values: Mapping[str, Any], prefix: str) -> int:
    """The rows of ``prefix`` the form names, at most ``MAX_FORM_ROWS`` (``too_many_rows`` refuses more)."""
    return min(_last_row(values, prefix) + 1, MAX_FORM_ROWS)


def too_many_rows(values: Mapping[str, Any]) -> bool:
    """Whether the form names a step or discount row past ``MAX_FORM_ROWS``: refused, never looped up to."""
    return any(_last_row(values, prefix) >= MAX_FORM_ROWS for prefix in ("steps", "discount_tiers"))


def _last_row(values: Mapping[str, Any], prefix: str) -> int:
    last = -1
    for key in values:
        parts = key.split(".")
        if parts[0] == prefix and len(parts) > 1 and parts[1].isascii() and parts[1].isdigit():
            last = max(last, int(parts[1]) if len(parts[1]) < 9 else MAX_FORM_ROWS)
    return last


def _num(text: str | None) -> str | None:
    """A number as typed, in English or French (``money.parse_typed``: "1,000" is a thousand, "1 000,50"
    and "1,5" have a decimal comma), or None when blank; what does not read as a number is handed on as
    typed, for the policy's validation to refuse with its own message."""
    t = (text or "").strip()
    if not t:
        return None
    try:
        return str(money.parse_typed(t))
    except ValueError:
        return t


def data_from(form: MultiDict[str, str], currency: str, stored: rules.Policy | None) -> tuple[dict[str, Any], Rows]:
    """The policy JSON from the posted form, and where its list entries came from on the form."""
    f = form.get
    data: dict[str, Any] = {"version": policy_mod.CURRENT_VERSION, "name": (f("name") or "").strip()}
    steps, step_rows = [], []
    for i in range(row_count(form, "steps")):
        p = f"steps.{i}"
        if form.get(f"{p}.remove") or (_num(f(f"{p}.offset_days")) is None and not f(f"{p}.template")):
            continue
        step_rows.append(i)
        steps.append({"offset_days": _num(f(f"{p}.offset_days")), "anchor": f(f"{p}.anchor") or "due_date",
                      "template": f(f"{p}.template") or None, "tone": f(f"{p}.tone") or "friendly",
                      "channels": form.getlist(f"{p}.channels")})
    data["steps"] = steps
    data["repeat_last"] = ({"every_days": _num(f("repeat_last.every_days")),
                            "max_times": _num(f("repeat_last.max_times"))} if f("repeat_last.enabled") else None)
    data["min_gap_days"] = _num(f("min_gap_days"))
    data["min_balance"] = _merge(stored.min_balance if stored else {}, currency, _num(f(f"min_balance.{currency}")))
    data["send_window"] = {"hour": _num(f("send_window.hour")), "minute": _num(f("send_window.minute")) or "0",
                           "weekdays": form.getlist("send_window.weekdays"),
                           "skip_holidays": bool(f("send_window.skip_holidays"))}
    data["group_by_customer"] = bool(f("group_by_customer"))
    data["alert_owner_when_late"] = bool(f("alert_owner_when_late"))
    data["skip_unsent_invoices"] = bool(f("skip_unsent_invoices"))
    kinds: list[str] = []
    fee_rules = []
    for kind in FEE_KINDS:
        p = f"fee.{kind}"
        if not f(f"{p}.enabled"):
            continue
        kinds.append(kind)
        old = stored.fee_rule(kind) if stored else None
        rule: dict[str, Any] = {"kind": kind}
        if kind in ("flat", "indemnity"):
            rule["amount"] = _merge(old.amount if old else {}, currency, _num(f(f"{p}.amount")))
        if kind in ("percent", "interest"):
            rule["percent"] = _num(f(f"{p}.percent"))
        if kind == "interest":
            rule["add_ecb_rate"] = bool(f(f"{p}.add_ecb_rate"))
        rule["frequency"] = "once" if kind == "indemnity" else (f(f"{p}.frequency") or "monthly")
        if rule["frequency"] == "every_n_days":
            rule["every_days"] = _num(f(f"{p}.every_days"))
        fee_rules.append(rule)
    data["late_fees"] = {
        "rules": fee_rules, "grace_days": _num(f("late_fees.grace_days")) or "0",
        "max_count": _num(f("late_fees.max_count")),
        "max_amount": _merge(stored.late_fees.max_amount if stored else {}, currency,
                             _num(f(f"late_fees.max_amount.{currency}"))),
        "max_percent_of_principal": _num(f("late_fees.max_percent_of_principal")),
        "notify_customer": bool(f("late_fees.notify_customer")),
    }
    data["ecb_rate_percent"] = _num(f("ecb_rate_percent")) or "0"
    tiers, tier_rows = [], []
    for i in range(row_count(form, "discount_tiers")):
        p = f"discount_tiers.{i}"
        days, pct = _num(f(f"{p}.days_after_invoice")), _num(f(f"{p}.percent"))
        if days is None and pct is None:
            continue
        tier_rows.append(i)
        tiers.append({"days_after_invoice": days, "percent": pct})
    data["discount_tiers"] = tiers
    data["escalation"] = {"call_task_after_days": _num(f("escalation.call_task_after_days")),
                          "handoff_after_days": _num(f("escalation.handoff_after_days"))}
    data["promise_grace_days"] = _num(f("promise_grace_days"))
    data["payment_plan"] = {"remind_days_before": _num(f("payment_plan.remind_days_before")),
                            "remind_days_after": _num(f("payment_plan.remind_days_after"))}
    return _drop_none(data), Rows(kinds=kinds, steps=step_rows, tiers=tier_rows)


def _merge(old: Mapping[str, Decimal], currency: str, typed: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {k: str(v) for k, v in old.items() if k != currency}
    if typed is not None:
        out[currency] = typed
    return out


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    """Blank fields fall back to the policy's defaults, except where blank means "none"."""
    keep_none = {"repeat_last", "max_count", "max_percent_of_principal", "call_task_after_days", "handoff_after_days"}
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, dict):
            v = _drop_none(v)
        if v is None and k not in keep_none:
            continue
        out[k] = v
    return out


def validate(data: dict[str, Any], rows: Rows) -> tuple[rules.Policy | None, dict[str, str]]:
    """The policy, or the messages by form field (in the user's language)."""
    try:
        return rules.Policy.model_validate(data), {}
    except pydantic.ValidationError as exc:
        return None, errors_by_field(exc, rows)


def errors_by_field(exc: pydantic.ValidationError, rows: Rows) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        for name, posted in (("steps", rows.steps), ("discount_tiers", rows.tiers)):
            if loc[:1] == [name] and len(loc) >= 2 and loc[1].isdigit() and int(loc[1]) < len(posted):
                loc[1] = str(posted[int(loc[1])])  # the JSON's n-th entry is the form's row posted[n]
        kinds = rows.kinds
        if loc[:2] == ["late_fees", "rules"] and len(loc) >= 3 and loc[2].isdigit() and int(loc[2]) < len(kinds):
            kind = kinds[int(loc[2])]
            field = f"fee.{kind}" + ("." + loc[3] if len(loc) > 3 else "")
            if len(loc) > 4:  # amount.EUR → the amount field
                field = f"fee.{kind}.{loc[3]}"
        else:
            field = ".".join(p for p in loc if not p.startswith("function-")) or "policy"
        if field.startswith("steps.") and field.count(".") == 1:
            field += ".offset_days"  # a whole-step error shows on its first field
        if field.startswith("discount_tiers.") and field.count(".") == 1:
            field += ".percent"
        out.setdefault(field, translate(err))
    return out


def translate(err: Mapping[str, Any]) -> str:
    """A pydantic error as a sentence in the user's language."""
    kind, ctx = err.get("type", ""), err.get("ctx") or {}
    if kind == "value_error":
        return gettext(str(err["msg"]).removeprefix("Value error, "))  # type: ignore[no-any-return]
    if kind in ("int_parsing", "int_from_float", "int_type"):
        return gettext("Enter a whole number.")  # type: ignore[no-any-return]
    if kind in ("decimal_parsing", "decimal_type", "float_parsing"):
        return gettext("Enter a number, such as 1.5.")  # type: ignore[no-any-return]
    if kind in ("greater_than_equal",):
        return gettext("Enter %(n)s or more.", n=ctx.get("ge"))  # type: ignore[no-any-return]
    if kind in ("greater_than",):
        return gettext("Enter more than %(n)s.", n=ctx.get("gt"))  # type: ignore[no-any-return]
    if kind in ("less_than_equal",):
        return gettext("Enter %(n)s or less.", n=ctx.get("le"))  # type: ignore[no-any-return]
    if kind in ("less_than",):
        return gettext("Enter less than %(n)s.", n=ctx.get("lt"))  # type: ignore[no-any-return]
    if kind in ("literal_error", "enum"):
        return gettext("Choose one of the listed values.")  # type: ignore[no-any-return]
    if kind in ("missing", "string_too_short"):
        return gettext("This field is required.")  # type: ignore[no-any-return]
    if kind == "string_too_long":
        return gettext("This is too long.")  # type: ignore[no-any-return]
    if kind in ("decimal_max_places", "decimal_max_digits", "decimal_whole_digits"):
        return gettext("This number has too many digits.")  # type: ignore[no-any-return]
    if kind == "extra_forbidden":
        return gettext("This field is not part of a policy.")  # type: ignore[no-any-return]
    return gettext(str(err.get("msg", "")))  # type: ignore[no-any-return]


def dump(policy: rules.Policy) -> dict[str, Any]:
    return json.loads(policy.model_dump_json())  # type: ignore[no-any-return]
