"""From the database to the rules engine: mirror rows → ``rules`` records, outbox → history.

    company_context(company) -> rules.CompanyContext
    policy_for(company, customer_row) -> rules.Policy
    load(s, company, *, today, customer_ids=None, dry_run=False) -> list[CustomerSnapshot]
    shared_credits(s, company, today) -> SharedCredit   # unused credit, a parent's shared with jobs billed with it
    refresh_next_action(s, snapshots, *, dates) -> int
    contact_rows(s, company_id, customers) -> {customer_id: the row its reminders reach (a parent billed for it)}
    credit_on_invoices(s, company, customer_id, today) -> ({invoice id: credit settling it}, {invoice id: part paid})
    settled_by_credit(s, company, customer_ids, today) -> {invoice id: (the credit settling it, its parent holder)}
    credit_to_apply(s, company, today) -> [CreditToApply]   # the weekly digest's list
    candidate_customers(s, company, *, today, since=None) -> {customer_id: invoice ids to evaluate, or None: all}

Decisions where the issue is silent:

- Policy: ``company.policy`` is either one policy (the JSON of ``rules.Policy``) or
  ``{"default": {...}, "policies": {name: {...}}}``. A customer's ``policy_name`` is looked
  up in ``policies``, then in ``rules.PRESETS``; otherwise the company's default, else the
  ``friendly`` preset. A stored policy that does not validate stops that company's run with
  the field errors in the reason (never a half-applied policy).
- Contact points: the customer's email must be present and not stopped (bounce, spam
  report, invalid); the phone is the mobile number if QuickBooks has one, else the main
  number, parsed to E.164 with the customer's country (else the company's) as the default
  region. A number that does not parse means "no phone" (logged), never a crash.
- Unused credit (``rules.Customer.credits``): the customer's credit memos' remaining credit and
  payments' unapplied amounts (deleted ones aside), per currency, read for every load (the
  ``(company, unapplied)`` and ``(company, balance)`` indexes keep that to the few rows with credit).
  Contacts: a job or sub-customer billed with its parent is reached at the parent's address, and so
  are the parent and its other billed jobs: the messages sent there for any of them count as contacts
  of each (bare entries, no invoice, no step: the minimum gap between two contacts is the address's).
  A job or sub-customer billed with its parent also counts the part of its parent's credit its
  invoices take once the parent's own invoices have theirs (``shared_credits``): a contractor often
  records the client's payment on the client, not on the job. The parent's own invoices come first
  because the money is recorded on it; across its jobs, the oldest due first, as applying it would.
- Fee start: the company's first fee day (``fees_from``), the customer's own (``Customer.fees_from``,
  stamped by the case-work functions when it is given another policy or taken back from exclusion)
  and the policy's (``late_fees.fees_from``, stamped by the policy page when a change moves the fee
  periods), the latest of them: no fee period before it is charged.
- Language "en"/"fr" (the customer's, else the company's; anything else reads English).
  Time zone: a customer whose country differs from the company's gets that country's main
  zone, so quiet hours are read where the phone rings.
- History: every outbox row of the customer, cancelled ones included, except rows that gave
  their dedupe key up (a row cancelled because its invoice changed is renamed
  ``<key>#cancelled<id>`` so that the step is planned again on fresh figures). Dry-run rows are a separate history: a company trying the program in dry-run
  mode never blocks the real reminders it later sends.
- ``Invoice.next_action_on`` is the earliest ``rules.next_action_date`` of the invoice,
  from the day after the run that evaluated it (a run plans the whole day's actions;
  ``rules.plan_and_next`` gives the dates in the same pass). ``NEVER`` (9999-12-31) means
  nothing will happen unless something changes; None means not known yet. A run evaluates
  only the invoices whose date has come or is unknown (``candidate_customers``). Paid invoices are
  read too (not fee invoices, not waived) until a run marks them ``NEVER``: one paid late may owe the
  interest up to the day it was paid, which the payments linked to it (``payments_of``) date. The others
  of the same customer keep theirs, still a lower bound. What could move a date earlier makes the customer a candidate in full: its
  invoices, payments or credit memos (its unused credit) or its own row synced since the last run, anything of that
  kind of a parent whose credit may pay its invoices, or of another customer billed with that parent, a pause recorded, a change made here
  (``Customer.changed_at``: flags, bounces, STOPs; the case-work functions also clear the
  dates). A change that concerns every customer (policy, settings, zone, terms, engine
  version: ``plan_fingerprint``) makes the next run a full plan, and so does a week without one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import json
import logging
import re
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import babel
import holidays as holidays_lib
from babel import languages as babel_languages
import pydantic
from sqlalchemy import and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from qbo_collector import errors, reports, rules
from qbo_collector.rules import model as rules_model
from qbo_collector.channels import sms as sms_channel
from qbo_collector.db import models
from qbo_collector.money import Money

log = logging.getLogger(__name__)

COUNTRY_CODES = {"USA": "US", "UNITED STATES": "US", "UNITED STATES OF AMERICA": "US", "CANADA": "CA",
                 "FRANCE": "FR", "UNITED KINGDOM": "GB", "UK": "GB", "GREAT BRITAIN": "GB", "AUSTRALIA": "AU",
                 "NEW ZEALAND": "NZ", "INDIA": "IN", "BELGIQUE": "BE", "BELGIUM": "BE", "SUISSE": "CH",
                 "SWITZERLAND": "CH", "GERMANY": "DE", "SPAIN": "ES", "IRELAND": "IE"}
COUNTRY_TIMEZONES = {
    "US": "America/New_York", "CA": "America/Toronto", "FR": "Europe/Paris", "GB": "Europe/London",
    "AU": "Australia/Sydney", "NZ": "Pacific/Auckland", "IN": "Asia/Kolkata", "BE": "Europe/Brussels",
    "CH": "Europe/Zurich", "DE": "Europe/Berlin", "ES": "Europe/Madrid", "IE": "Europe/Dublin",
}
FAR_FUTURE = dt.date(9999, 12, 31)
DRY_PREFIX = "dryrun:"
FREED_MARK = "#cancelled"
_KIND_TO_HISTORY = {"reminder": "reminder", "fee": "fee", "task": "task", "alert": "alert"}


def country_code(value: str | None) -> str | None:
    """"FR", "France", "USA", "Allemagne" → ISO 3166 alpha-2, or None. Names in English or French
    (Babel's territory names), and the usual short forms."""
    if not value:
        return None
    text = value.strip().upper()
    if len(text) == 2 and text.isalpha():
        return "GB" if text == "UK" else text
    return COUNTRY_CODES.get(text) or _territory_names().get(text)


@functools.cache
def _territory_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for locale in ("en", "fr"):
        for code, name in babel.Locale.parse(locale).territories.items():
            if len(code) == 2 and code.isalpha() and code != "ZZ":
                names.setdefault(name.upper(), code)
    return names


def company_context(company: models.Company) -> rules.CompanyContext:
    country = country_code(company.country) or "US"
    if country not in holidays_lib.list_supported_countries():
        country = "US"
    return rules.CompanyContext(realm=company.realm_id, time_zone=company.timezone or "UTC", country=country,
                                currency=company.currency or "USD",
                                subdivision=(company.settings or {}).get("holiday_subdivision"),
                                fees_from=fees_from(company))


def fees_from(company: models.Company) -> dt.date | None:
    """The first fee day: ``settings["fees_from"]`` (ISO date, set by the owner to back-charge on purpose),
    else the local date the company was first connected — no pile of back-dated fees on day one."""
    chosen = (company.settings or {}).get("fees_from")
    if isinstance(chosen, str):
        try:
            return dt.date.fromisoformat(chosen)
        except ValueError:
            log.warning("ignoring malformed settings.fees_from %r realm=%s", chosen, company.realm_id)
    if company.created_at is None:
        return None
    try:
        zone = zoneinfo.ZoneInfo(company.timezone or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return company.created_at.astimezone(zone).date()


def _validate_policy(data: Any, where: str) -> rules.Policy:
    try:
        return _parsed_policy(json.dumps(data, sort_keys=True, default=str))
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{k}: {v}" for k, v in rules.field_errors(exc).items())
        raise errors.InvalidInput(f"The stored {where} policy is not valid ({problems}); fix it on the settings page.",
                                  field="policy") from None


@functools.lru_cache(maxsize=256)
def _parsed_policy(text: str) -> rules.Policy:
    """One validated (frozen) ``Policy`` per stored JSON: validating costs far more than planning a
    customer, and the engine's per-policy memos (slot days) only help when customers share the object."""
    return rules.Policy.model_validate(json.loads(text))


def policy_for(company: models.Company, customer: models.Customer | None = None) -> rules.Policy:
    """The policy that applies to ``customer`` (see the module docstring). Raises InvalidInput."""
    stored = company.policy or {}
    named: dict[str, Any] = stored.get("policies") or {} if isinstance(stored, dict) else {}
    name = customer.policy_name if customer is not None else None
    if name:
        if name in named:
            return _validate_policy(named[name], repr(name))
        if name in rules.PRESETS:
            return rules.PRESETS[name]
        log.warning("customer %s names unknown policy %r; the company's default applies",
                    customer.qbo_id if customer else "?", name)
    if isinstance(stored, dict) and "default" in stored:
        default = stored["default"]
        if isinstance(default, str):
            return rules.PRESETS.get(default, rules.PRESETS["friendly"])
        return _validate_policy(default, "default")
    if isinstance(stored, dict) and stored and "policies" not in stored:
        return _validate_policy(stored, "company")
    return rules.PRESETS["friendly"]


# --- contact points ----------------------------------------------------------------------

def customer_region(company: models.Company, customer: models.Customer) -> str | None:
    return country_code(customer.country) or country_code(company.country)


PARENT_LEVELS = 5  # QuickBooks nests sub-customers and jobs at most five levels deep


def contact_rows(s: Session, company_id: int, customers: Mapping[str, models.Customer]) -> dict[str, models.Customer]:
    """Customer id → the row whose email, phone, stops, name, language and country its reminders use.
    A job or sub-customer billed with its parent (QuickBooks' ``BillWithParent``) is reached at its
    parent's (up the chain, for a job of a sub-customer itself billed with its parent): QuickBooks
    bills the parent for it, and its own contact fields are often a copy made when it was created,
    stale once the parent's are corrected. Otherwise, or when the parent is not in the mirror (or
    deleted), its own row. Parents not in ``customers`` are read, one query per level."""
    rows: dict[str, models.Customer] = dict(customers)
    for _ in range(PARENT_LEVELS):
        missing = sorted({c.parent_qbo_id for c in rows.values()
                          if c.bill_with_parent and c.parent_qbo_id and c.parent_qbo_id not in rows})
        if not missing:
            break
        found = _chunked(s, models.Customer, company_id, missing)
        if not found:
            break
        rows.update((p.qbo_id, p) for p in found)
    out: dict[str, models.Customer] = {}
    for cid, row in customers.items():
        contact = row
        for _ in range(PARENT_LEVELS):
            parent = rows.get(contact.parent_qbo_id or "") if contact.bill_with_parent else None
            if parent is None or parent.deleted:
                break
            contact = parent
        out[cid] = contact
    return out


def contact_families(s: Session, company_id: int) -> dict[str, set[str]]:
    """Customer → every customer reached at its email and phone (``contact_rows``): itself and the jobs
    and sub-customers billed with it, at any depth. Only customers that have some are in the answer.
    One query through the ``(company, parent)`` index (and one per level of parents not in it)."""
    cus = models.Customer
    billed = {c.qbo_id: c for c in s.scalars(select(cus).where(
        cus.company_id == company_id, cus.parent_qbo_id.is_not(None), cus.bill_with_parent.is_(True),
        cus.deleted.is_(False)))}
    families: dict[str, set[str]] = {}
    for cid, contact in contact_rows(s, company_id, billed).items() if billed else ():
        if contact.qbo_id != cid:
            families.setdefault(contact.qbo_id, {contact.qbo_id}).add(cid)
    return families


CONTACT_MEMORY = dt.timedelta(days=92)  # more than the longest minimum gap a policy may set (90 days)


def _contacts_only(entries: Iterable[rules.HistoryEntry], *, zone: str, today: dt.date) -> list[rules.HistoryEntry]:
    """The messages among ``entries`` as bare contacts (no invoice, no step, a key of their own): what a
    message sent to the same address for another customer means to this one's plan — the minimum gap.

    One per day it went out (in the contact's ``zone``) and day it was planned for, which is all the gap
    reads, and none older than a gap can reach from ``today``: a parent with hundreds of jobs gives each
    a list bounded by the days, not by the jobs."""
    kept: dict[tuple[dt.date, dt.date | None], rules.HistoryEntry] = {}
    oldest = today - CONTACT_MEMORY
    for h in entries:
        if h.kind != "reminder":
            continue
        day = rules.calendar.local_date(h.at, zone)
        if day < oldest:
            continue
        seen = kept.get((day, h.on))
        if seen is None or h.at < seen.at:
            kept[(day, h.on)] = rules.HistoryEntry(dedupe_key=f"{h.dedupe_key}#contact", kind="reminder", at=h.at,
                                                   on=h.on)
    return sorted(kept.values(), key=lambda h: (h.at, h.dedupe_key))


def billed_below(s: Session, company_id: int, parents: Sequence[str]) -> dict[str, str]:
    """Customer → its parent, for every job or sub-customer billed with one of ``parents``
    (``BillWithParent``), down the chain (a job of a sub-customer itself billed with its parent):
    one query per level, through the ``(company, parent)`` index. Deleted ones aside."""
    cus = models.Customer
    found: dict[str, str] = {}
    level = sorted(set(parents))
    for _ in range(PARENT_LEVELS):
        if not level:
            break
        rows = list(_in_chunks(s, select(cus).where(cus.company_id == company_id, cus.bill_with_parent.is_(True),
                                                    cus.deleted.is_(False)), cus.parent_qbo_id, level))
        new = {r.qbo_id: r.parent_qbo_id for r in rows if r.qbo_id not in found}  # a holder may be billed with another
        found.update(new)
        level = sorted(new)
    return found


def _families(parents: Mapping[str, str], holders: Iterable[str]) -> dict[str, set[str]]:
    """Holder → the customers of ``parents`` (customer → parent) below it, at any depth."""
    holding = set(holders)
    families: dict[str, set[str]] = {}
    for child in parents:
        up, seen = parents[child], {child}
        while up not in seen:
            if up in holding:
                families.setdefault(up, set()).add(child)
            seen.add(up)
            if up not in parents:
                break
            up = parents[up]
    return families


def credit_families(s: Session, company: models.Company) -> dict[str, set[str]]:
    """Customer with unused credit → the customers billed with it, at any depth (``billed_below``):
    the customers whose invoices its credit may pay. Empty, after one query, when there are none."""
    holders = sorted(c for c in reports.unused_credits(s, company.id, company.currency or "USD") if c)
    return _families(billed_below(s, company.id, holders), holders) if holders else {}


@dataclasses.dataclass(frozen=True)
class SharedCredit:
    """Unused credit as the engine counts it (``shared_credits``)."""

    credits: dict[str, dict[str, Decimal]]  # customer → currency → its own credit plus the share of its parents'
    shares: dict[str, dict[str, Decimal]]   # customer → currency → the share of its parents' credit alone
    givers: dict[str, str]                  # customer that takes part of a parent's credit → that parent
    names: dict[str, str]                   # those parents → their names
    families: dict[str, set[str]]           # customer with credit → the customers billed with it (any depth)

    def holder(self, customer_id: str) -> str | None:
        """The name of the parent whose credit the customer takes part of, if any."""
        giver = self.givers.get(customer_id)
        return None if giver is None else self.names.get(giver, giver)


def shared_credits(s: Session, company: models.Company, today: dt.date,
                   own: dict[str, dict[str, Decimal]] | None = None) -> SharedCredit:
    """The customers' unused credit (``reports.unused_credits``, or ``own`` when already read) as
    the engine counts it on ``today``: a job or sub-customer billed with its parent also counts the
    part of the parent's credit its open invoices take once the parent's own invoices have theirs
    (``rules.planner.parent_credit_shares``, disputed invoices skipped). A payment a contractor
    records on the client rather than on the job pays the job's invoices all the same.

    Reads nothing more than the credit unless a customer with credit has customers billed with it:
    then one query per level for them, and their open invoices and pauses."""
    own = own if own is not None else reports.unused_credits(s, company.id, company.currency or "USD")
    holders = sorted(c for c, v in own.items() if c and any(a > 0 for a in v.values()))
    parents = billed_below(s, company.id, holders) if holders else {}
    if not parents:
        return SharedCredit(credits=own, shares={}, givers={}, names={}, families={})
    families = _families(parents, own)
    concerned = sorted(set(parents) | set(families))
    inv = models.Invoice
    terms = {t.qbo_id: t for t in s.scalars(select(models.Term).where(models.Term.company_id == company.id))}
    invoices = [invoice_record(company.realm_id, r, terms) for r in _of_customers(
        s, inv, company.id, concerned, inv.deleted.is_(False), inv.status == models.InvoiceStatus.open, inv.balance > 0)]
    pauses: dict[str, list[rules.Pause]] = defaultdict(list)
    for row in _of_customers(s, models.Pause, company.id, concerned):
        record = pause_record(row, company.currency or "USD")
        if record is not None:
            pauses[row.customer_qbo_id].append(record)
    by_customer: dict[str, list[rules.Invoice]] = defaultdict(list)
    for invoice in invoices:
        by_customer[invoice.customer_id].append(invoice)
    skip = frozenset().union(*(rules.planner.disputed(mine, pauses.get(c, ()), today) for c, mine in by_customer.items()))
    shares, givers = rules.planner.parent_credit_shares(
        invoices, {c: own[c] for c in concerned if c in own}, parents, skip)
    if not shares:
        return SharedCredit(credits=own, shares={}, givers={}, names={}, families=families)
    names = dict(s.execute(select(models.Customer.qbo_id, models.Customer.display_name).where(
        models.Customer.company_id == company.id, models.Customer.qbo_id.in_(sorted(set(givers.values()))))).all())
    credits = {c: dict(v) for c, v in own.items()}
    for customer, share in shares.items():
        mine = credits.setdefault(customer, {})
        for currency, amount in share.items():
            mine[currency] = mine.get(currency, Decimal(0)) + amount
    return SharedCredit(credits=credits, shares=shares, givers=givers, names=names, families=families)


def email_addresses(raw: str | None) -> list[str]:
    """The addresses in a QuickBooks email field: one, or several separated by commas (QuickBooks
    takes "ap@acme.com, bob@acme.com" and sends its own invoices to each)."""
    return [a.strip() for a in re.split(r"[,;]", raw or "") if a.strip()]


def phone_e164(company: models.Company, customer: models.Customer) -> str | None:
    """The customer's mobile (else main) number in E.164, or None when absent or unparseable."""
    region = customer_region(company, customer)
    for raw in (customer.mobile, customer.phone):
        if not raw:
            continue
        try:
            return sms_channel.to_e164(raw, region)
        except errors.InvalidInput as exc:
            log.info("customer %s of %s: %s", customer.qbo_id, company.realm_id, exc.message)
    return None


def sms_sender(company: models.Company) -> str:
    """The sender the company's texts go out from, as ``ContactBlock.sender`` names it: its own number
    or messaging service (Channels page) in ``sms_channel.sender_id`` form, else ``SHARED_SENDER``."""
    own = str((company.settings or {}).get("sms_from") or "").strip()
    return sms_channel.sender_id(own) if own else models.SHARED_SENDER


def sms_blocks_for(company: models.Company) -> tuple[str, str]:
    """The ``ContactBlock.sender`` values that hold for the company's texts: every sender's and its own."""
    return "", sms_sender(company)


LANGUAGES = ("en", "fr")  # the languages reminders are written in


def language_of(company: models.Company, customer: models.Customer) -> str:
    """The language of the customer's reminders (``language_choice`` says why)."""
    return language_choice(company, customer)[0]


def language_choice(company: models.Company, customer: models.Customer) -> tuple[str, str, str | None]:
    """(language, why, country code). ``why``: "person" (chosen on the customer page), "company"
    (the customer's country is unknown or the company's own, or it speaks the company's language:
    Canada for a French or an English company, Belgium or Switzerland for a French one),
    "country" (another country: the first of its official languages reminders are written in —
    France, Monaco, Belgium, Switzerland, Luxembourg, Senegal, Haiti… read French — else English)."""
    own = (company.language or "en")[:2].lower()
    own = own if own in LANGUAGES else "en"
    chosen = (customer.language or "")[:2].lower()
    if chosen in LANGUAGES:
        return chosen, "person", None
    mine, theirs = country_code(customer.country), country_code(company.country)
    if mine is None or mine == theirs:
        return own, "company", mine
    official = [code.split("_")[0] for code in babel_languages.get_official_languages(mine)]
    if own in official:
        return own, "company", mine
    return next((code for code in official if code in LANGUAGES), "en"), "country", mine


def time_zone_of(company: models.Company, customer: models.Customer) -> str | None:
    mine = country_code(customer.country)
    if mine and mine != country_code(company.country) and mine in COUNTRY_TIMEZONES:
        return COUNTRY_TIMEZONES[mine]
    return None


@dataclasses.dataclass
class CustomerSnapshot:
    """One customer as the planner and the dispatcher see it."""

    row: models.Customer
    customer: rules.Customer
    invoices: list[rules.Invoice]
    invoice_rows: dict[str, models.Invoice]
    history: list[rules.HistoryEntry]
    pauses: list[rules.Pause]
    policy: rules.Policy | None
    policy_error: str | None
    email: str | None
    phone: str | None


def _to_money(amount: Decimal | None, currency: str) -> Money:
    return Money(Decimal(amount or 0), currency)


def invoice_record(realm: str, row: models.Invoice, terms: dict[str, models.Term],
                   payments: Sequence[tuple[dt.date, Decimal]] = ()) -> rules.Invoice:
    """``payments``: (day, amount applied to it) of the money applied to it (``payments_of``)."""
    term = terms.get(row.term_qbo_id or "")
    discount = None
    if term is not None and term.discount_percent and term.discount_days is not None:
        discount = rules.TermDiscount(percent=Decimal(term.discount_percent), days=int(term.discount_days))
    currency = row.currency or "USD"
    return rules.Invoice(
        realm=realm, id=row.qbo_id, customer_id=row.customer_qbo_id, currency=currency,
        total=_to_money(row.total, currency), balance=_to_money(row.balance, currency),
        txn_date=row.txn_date,
        # A derived due date is handed back as "none" so the engine derives it again and says so.
        due_date=None if row.due_date_derived else row.due_date,
        doc_number=row.doc_number, status=row.status.value if row.status else "open",
        term_due_days=term.due_days if term is not None else None, term_discount=discount,
        is_late_fee=bool(row.is_late_fee), fee_lines=_to_money(row.fee_lines, currency) if row.fee_lines else None,
        waived_fee=bool(row.fees_waived), po_number=row.po_number,
        invoice_link=row.invoice_link, sent=was_sent(row.email_status, row.print_status), sent_on=row.sent_on,
        payments=tuple(rules.Payment(on=on, amount=_to_money(amount, currency)) for on, amount in payments),
    )


def payments_of(s: Session, company_id: int, invoice_ids: Sequence[str]) -> dict[str, list[tuple[dt.date, Decimal]]]:
    """Invoice id → (day, amount) of each payment applied to it, oldest first: the payments' links
    (``Payment.Line[].LinkedTxn``; a credit memo applied to an invoice is a payment too), deleted
    payments and payments without a date aside. Through the ``(company, invoice)`` link index."""
    link, pay, memo_link, memo = models.PaymentLink, models.Payment, models.CreditMemoLink, models.CreditMemo
    found: dict[str, list[tuple[dt.date, Decimal]]] = defaultdict(list)
    ids = sorted(set(invoice_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        rows = s.execute(
            select(link.invoice_qbo_id, link.payment_qbo_id, pay.txn_date, link.amount)
            .join(pay, and_(pay.company_id == link.company_id, pay.qbo_id == link.payment_qbo_id))
            .where(link.company_id == company_id, link.invoice_qbo_id.in_(ids[start:start + _IN_CHUNK]),
                   pay.deleted.is_(False), pay.txn_date.is_not(None))
            .order_by(pay.txn_date, link.id)).all()
        given = _credit_given_on(s, company_id, sorted({payment for _i, payment, _on, _a in rows}))
        for invoice_id, payment, on, amount in rows:
            found[invoice_id].append((min(on, given[payment]) if payment in given else on, Decimal(amount)))
    for applied in found.values():
        applied.sort(key=lambda row: row[0])
    return found


def _credit_given_on(s: Session, company_id: int, payment_ids: Sequence[str]) -> dict[str, dt.date]:
    """Of ``payment_ids``, those that only apply credit memos (no money in them: credit memos pay all they
    pay), with the earliest day of their credit memos. Such a payment settled its invoices when the credit
    was given, not on the day someone applied it in QuickBooks: no interest runs on what the credit paid."""
    link, memo_link, memo = models.PaymentLink, models.CreditMemoLink, models.CreditMemo
    out: dict[str, dt.date] = {}
    for start in range(0, len(payment_ids), _IN_CHUNK):
        chunk = list(payment_ids[start:start + _IN_CHUNK])
        credit = {payment: (Decimal(total), given_on) for payment, total, given_on in s.execute(
            select(memo_link.payment_qbo_id, func.sum(memo_link.amount), func.min(memo.txn_date))
            .join(memo, and_(memo.company_id == memo_link.company_id, memo.qbo_id == memo_link.credit_memo_qbo_id))
            .where(memo_link.company_id == company_id, memo_link.payment_qbo_id.in_(chunk))
            .group_by(memo_link.payment_qbo_id))}
        if not credit:
            continue
        for payment, paid in s.execute(select(link.payment_qbo_id, func.sum(link.amount))
                                       .where(link.company_id == company_id, link.payment_qbo_id.in_(sorted(credit)))
                                       .group_by(link.payment_qbo_id)):
            total, given_on = credit[payment]
            if given_on is not None and total >= Decimal(paid):
                out[payment] = given_on
    return out


def _paid_pending() -> Any:
    """The paid invoices that may still owe the interest up to the day they were paid: not fee invoices,
    not waived, and not yet marked ``NEVER`` by a run (``rules.next_action_date`` says when it is billed)."""
    inv = models.Invoice
    return and_(inv.status == models.InvoiceStatus.paid, inv.is_late_fee.is_(False), inv.fees_waived.is_(False),
                inv.total > 0, or_(inv.next_action_on.is_(None), inv.next_action_on != NEVER))


def left_unsent(s: Session, company: models.Company, customer_ids: Sequence[str] | None = None
                ) -> list[tuple[models.Invoice, models.Customer]]:
    """The open invoices the reminders leave alone because QuickBooks never emailed nor printed them
    (``rules.Policy.skip_unsent_invoices``), as the engine sees them: the customer's policy asks for it,
    the invoice is not a late fee, and no promise, dispute or payment plan the engine reads covers it.
    In the company's currency, the largest balance first, then each other currency apart (as
    ``dashboard.top_late_customers``: no exchange rates). ``customer_ids``: only those customers' invoices."""
    inv, cust = models.Invoice, models.Customer
    query = (select(inv, cust).join(cust, and_(cust.company_id == inv.company_id, cust.qbo_id == inv.customer_qbo_id))
             .where(inv.company_id == company.id, inv.status == models.InvoiceStatus.open, inv.deleted.is_(False),
                    inv.balance > 0, inv.is_late_fee.is_not(True), inv.email_status.is_not(None),
                    inv.email_status != "EmailSent", func.coalesce(inv.print_status, "") != "PrintComplete",
                    cust.deleted.is_(False), cust.excluded.is_not(True))
             .order_by(case((inv.currency == company.currency, 0), else_=1), inv.currency, inv.balance.desc(), inv.id))
    if customer_ids is not None:
        query = query.where(inv.customer_qbo_id.in_(list(customer_ids)))
    asks: dict[str | None, rules.Policy | None] = {}
    found: list[tuple[models.Invoice, models.Customer]] = []
    for invoice, customer in s.execute(query):
        if customer.policy_name not in asks:
            try:
                policy: rules.Policy | None = policy_for(company, customer)
            except errors.InvalidInput:
                policy = None  # that customer is not planned at all (the run says why)
            asks[customer.policy_name] = policy if policy is not None and policy.skip_unsent_invoices else None
        policy = asks[customer.policy_name]
        if policy is not None and invoice.balance >= policy.min_balance.get(invoice.currency, 0):
            found.append((invoice, customer))  # below the minimum nothing is sent anyway
    if not found:
        return found
    known: dict[str, list[rules.Pause]] = {}
    owners = sorted({c.qbo_id for _, c in found})
    for row in _of_customers(s, models.Pause, company.id, owners):
        record = pause_record(row, company.currency or "USD")
        if record is not None and not isinstance(record, rules.ManualPause):
            known.setdefault(row.customer_qbo_id, []).append(record)
    return [(i, c) for i, c in found if not any(rules_model.covers(p, i.qbo_id) for p in known.get(c.qbo_id, ()))]


def credit_on_invoices(s: Session, company: models.Company, customer_id: str, today: dt.date
                       ) -> tuple[dict[str, Money], dict[str, Money]]:
    """What the customer's unused credit does to its open invoices, as the engine sees them
    (``rules.planner.credit_parts``: oldest due first, a disputed invoice skipped): the invoices it
    settles in full, each with the credit of its currency, and the one per currency it pays only
    part of, with that part. Both empty when the customer has no unused credit."""
    snaps = load(s, company, today=today, customer_ids=[customer_id])
    if not snaps or not snaps[0].customer.credits:
        return {}, {}
    snap = snaps[0]
    credit = {m.currency: m for m in snap.customer.credits}
    covered, partial = rules.planner.credit_parts(snap.invoices, snap.customer, snap.pauses, today=today)
    currency = {i.id: i.currency for i in snap.invoices}
    return ({i.id: credit[i.currency] for i in snap.invoices if i.id in covered},
            {iid: Money(part, currency[iid]).rounded() for iid, part in partial.items()})


def settled_by_credit(s: Session, company: models.Company, customer_ids: Sequence[str], today: dt.date
                      ) -> dict[str, tuple[Money, str | None]]:
    """The open invoices of ``customer_ids`` their unused credit settles in full (as ``credit_on_invoices``,
    in one load): invoice id → (the credit of its currency, the parent whose credit counts, if any)."""
    out: dict[str, tuple[Money, str | None]] = {}
    for snap in load(s, company, today=today, customer_ids=customer_ids) if customer_ids else []:
        if not snap.customer.credits:
            continue
        credit = {m.currency: m for m in snap.customer.credits}
        covered, _partial = rules.planner.credit_parts(snap.invoices, snap.customer, snap.pauses, today=today)
        out.update((i.id, (credit[i.currency], snap.customer.credit_holder)) for i in snap.invoices if i.id in covered)
    return out


@dataclasses.dataclass(frozen=True)
class CreditToApply:
    """A customer's unused credit in one currency that settles some of its open invoices in full, or
    else pays part of one (``part``)."""

    customer_id: str
    name: str
    credit: Money
    numbers: tuple[str, ...]   # the invoices it settles, oldest due first (or the one it pays part of)
    settles: Decimal           # their balances together (or the part it pays)
    part: Money | None = None  # set when it settles none in full: what it pays of ``numbers[0]``
    holder: str | None = None  # the parent it is billed with, when the credit counts the parent's


def credit_to_apply(s: Session, company: models.Company, today: dt.date) -> list[CreditToApply]:
    """Every customer whose unused credit settles open invoices in full (the ones the reminders leave
    alone, ``rules.credit_covered``) or, settling none, pays part of one (reminded for its whole
    balance meanwhile), per currency: in the company's currency, the largest amount first, then each other
    currency apart (as ``dashboard.top_late_customers``). Reads only the customers with credit."""
    holders = sorted(c for c in shared_credits(s, company, today).credits if c)
    found: list[CreditToApply] = []
    for snap in load(s, company, today=today, customer_ids=holders) if holders else []:
        covered, partial = rules.planner.credit_parts(snap.invoices, snap.customer, snap.pauses, today=today)
        for credit in snap.customer.credits:
            mine = [i for i, _due in rules.planner.oldest_first(snap.invoices) if i.currency == credit.currency]
            settled = [i for i in mine if i.id in covered]
            partly = [i for i in mine if i.id in partial]
            if settled:
                found.append(CreditToApply(
                    customer_id=snap.customer.id, name=snap.customer.display_name, credit=credit.rounded(),
                    numbers=tuple(i.doc_number or i.id for i in settled),
                    settles=sum((i.balance.amount for i in settled), Decimal(0)), holder=snap.customer.credit_holder))
            elif partly:
                part = Money(partial[partly[0].id], credit.currency).rounded()
                found.append(CreditToApply(
                    customer_id=snap.customer.id, name=snap.customer.display_name, credit=credit.rounded(),
                    numbers=(partly[0].doc_number or partly[0].id,), settles=part.amount, part=part,
                    holder=snap.customer.credit_holder))
    return sorted(found, key=lambda c: (c.credit.currency != company.currency, c.credit.currency, -c.settles,
                                        c.name.casefold()))


def was_sent(email_status: str | None, print_status: str | None) -> bool:
    """Whether QuickBooks says the customer was sent the invoice: emailed (``EmailSent``) or printed
    (``PrintComplete``). An invoice QuickBooks says nothing about (no EmailStatus) counts as sent."""
    return email_status is None or email_status == "EmailSent" or print_status == "PrintComplete"


def history_entries(row: models.Outbox) -> list[rules.HistoryEntry]:
    """What an outbox row means to the planner (``rules.record`` read back from storage)."""
    kind = _KIND_TO_HISTORY.get(row.kind)
    if kind is None:
        return []
    # Never before its due time: a row is only claimed once due, so a sent_at earlier than due_at
    # means clocks that disagree (a skewed worker, a simulated "now"); the planner and the stored
    # next-action dates count from the due time.
    at = max(row.sent_at or row.due_at, row.due_at)
    key = row.dedupe_key.removeprefix(DRY_PREFIX)
    payload = row.payload or {}
    # The day the planner decided it for: a text held until daytime moves its due_at, not this.
    on = _iso_date(payload.get("on"))
    steps = payload.get("steps") or []
    if steps:
        return [rules.HistoryEntry(dedupe_key=key, kind=kind, at=at, on=on,  # type: ignore[arg-type]
                                   invoice_ids=frozenset({str(ref["invoice_id"])}), step=int(ref["step"]),
                                   repeat=int(ref.get("repeat", 0))) for ref in steps]
    amount = Money(Decimal(row.amount), row.currency or "USD") if row.kind == "fee" and row.amount is not None else None
    return [rules.HistoryEntry(dedupe_key=key, kind=kind, at=at, on=on,  # type: ignore[arg-type]
                               invoice_ids=frozenset(row.invoice_ids or ()), amount=amount)]


def _iso_date(value: object) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _held_until(row: models.Pause, ids: frozenset[str]) -> rules.ManualPause | None:
    """A promise or a plan a person closed: from then on it holds nothing, but the days it held stay
    held — the fee periods that fell in them stay waived and the steps go on from where they were.
    Forgetting it (as was done) charged the suspended fees back at once and jumped to the last step."""
    assert row.resolved_on is not None
    if row.resolved_on <= row.start_on:
        return None  # closed the day it was made: it held nothing
    return rules.ManualPause(start=row.start_on, resume_on=row.resolved_on, invoice_ids=ids, note=row.note or "")


def pause_record(row: models.Pause, default_currency: str) -> rules.Pause | None:
    ids = frozenset(str(i) for i in (row.invoice_ids or ()))
    data = row.data or {}
    try:
        if row.kind == "promise":
            if row.until_on is None:
                return None  # a promise without a date pauses nothing
            if row.resolved_on is not None and row.resolved_on <= row.until_on:
                return _held_until(row, ids)  # closed early by a person
            currency = row.currency or default_currency
            made = data.get("open_balance_when_made")
            return rules.Promise(made_on=row.start_on, until=row.until_on,
                                 amount=Money(Decimal(row.amount or 0), currency), invoice_ids=ids,
                                 open_balance_when_made=Money(Decimal(str(made)), currency) if made is not None else None)
        if row.kind == "dispute":
            return rules.Dispute(opened_on=row.start_on, invoice_ids=ids, resolved_on=row.resolved_on)
        if row.kind == "plan":
            currency = row.currency or default_currency
            instalments = tuple(
                rules.Instalment(due_on=dt.date.fromisoformat(str(i["due_on"])),
                                 amount=Money(Decimal(str(i["amount"])), currency))
                for i in data.get("instalments") or ())
            if row.resolved_on is not None:
                return _held_until(row, ids)  # cancelled by a person
            return rules.PaymentPlan(id=str(row.id), agreed_on=row.start_on, instalments=instalments, invoice_ids=ids)
        if row.kind == "manual":
            ends = [d for d in (row.until_on, row.resolved_on) if d is not None]
            return rules.ManualPause(start=row.start_on, resume_on=min(ends) if ends else FAR_FUTURE,
                                     invoice_ids=ids, note=row.note or "")
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        log.warning("pause %s of customer %s skipped: %s", row.id, row.customer_qbo_id, exc)
        return None
    log.warning("pause %s has unknown kind %r; skipped", row.id, row.kind)
    return None


def load(s: Session, company: models.Company, *, today: dt.date, customer_ids: Iterable[str] | None = None,
         dry_run: bool = False) -> list[CustomerSnapshot]:
    """Snapshots of the company's customers that have open invoices (all, or ``customer_ids``), their
    unused credit counted as on ``today`` (``shared_credits``: a dispute decides where a parent's goes).

    With ``customer_ids``, only those customers' rows are read (invoices, history, pauses, contact
    blocks, through the ``(company_id, customer_qbo_id)`` indexes, 500 ids per query): an indexed
    run reads what its candidates need, not the whole company."""
    inv = models.Invoice
    # the open invoices, and the paid ones whose interest up to the payment day may be left to bill
    open_ = (inv.deleted.is_(False), or_(and_(inv.status == models.InvoiceStatus.open, inv.balance > 0), _paid_pending()))
    by_customer: dict[str, list[models.Invoice]] = defaultdict(list)
    if customer_ids is None:
        invoice_rows: Iterable[models.Invoice] = s.scalars(select(inv).where(inv.company_id == company.id, *open_))
    else:
        invoice_rows = _of_customers(s, inv, company.id, sorted(set(customer_ids)), *open_)
    for row in invoice_rows:
        by_customer[row.customer_qbo_id].append(row)
    if not by_customer:
        return []
    ids = sorted(by_customer)
    whole = customer_ids is None  # every customer with an open invoice: one scan of the company is cheaper
    customers = {c.qbo_id: c for c in _chunked(s, models.Customer, company.id, ids)}
    terms = {t.qbo_id: t for t in s.scalars(select(models.Term).where(models.Term.company_id == company.id))}
    history: dict[str, list[rules.HistoryEntry]] = defaultdict(list)
    out = models.Outbox
    kept = (~out.dedupe_key.contains(FREED_MARK), out.dry_run.is_(dry_run), out.kind.in_(tuple(_KIND_TO_HISTORY)))
    # Ordered by id, in both loads: a customer's history and pauses come in the same order whether
    # the run loads every customer or only some (the database owes no order without ORDER BY).
    outbox_rows = (s.scalars(select(out).where(out.company_id == company.id, *kept).order_by(out.id)) if whole
                   else _of_customers(s, out, company.id, ids, *kept))
    families = contact_families(s, company.id)  # a parent and the jobs billed with it share one address
    sharing = {c for members in families.values() if members & by_customer.keys() for c in members}
    for orow in outbox_rows:
        if orow.customer_qbo_id in by_customer or (whole and orow.customer_qbo_id in sharing):
            history[orow.customer_qbo_id].extend(history_entries(orow))
    if not whole and sharing - by_customer.keys():
        for orow in _of_customers(s, out, company.id, sorted(sharing - by_customer.keys()), *kept,
                                  out.kind == "reminder"):
            history[orow.customer_qbo_id].extend(history_entries(orow))
    pauses: dict[str, list[rules.Pause]] = defaultdict(list)
    pause_rows = (s.scalars(select(models.Pause).where(models.Pause.company_id == company.id).order_by(models.Pause.id))
                  if whole
                  else _of_customers(s, models.Pause, company.id, ids))
    for prow in pause_rows:
        if prow.customer_qbo_id in by_customer:
            record = pause_record(prow, company.currency or "USD")
            if record is not None:
                pauses[prow.customer_qbo_id].append(record)
    live = {cid: crow for cid, crow in customers.items() if not crow.deleted}
    contacts = contact_rows(s, company.id, live)  # a job billed with its parent: the parent's
    emails = {cid: (crow.email or "").strip() or None for cid, crow in contacts.items()}
    phones = {cid: phone_e164(company, crow) for cid, crow in contacts.items()}
    blocked_emails = _blocked(s, "email", {a.lower() for e in emails.values() for a in email_addresses(e)})
    blocked_phones = _blocked(s, "sms", {p for p in phones.values() if p}, senders=sms_blocks_for(company))
    # the few customers with unused credit, through the (company, unapplied|balance) indexes
    shared = shared_credits(s, company, today)  # with the share of a parent's a job billed with it takes
    credits = shared.credits
    realm = company.realm_id
    paid = payments_of(s, company.id, [r.qbo_id for rows_ in by_customer.values() for r in rows_])
    # One policy lookup per policy name, not per customer (it serialises the stored JSON to find the
    # validated copy; an unknown name is then logged once a load, not once per customer).
    policies: dict[str | None, tuple[rules.Policy | None, str | None]] = {}
    snaps: list[CustomerSnapshot] = []
    bare: dict[str, list[rules.HistoryEntry]] = {}  # contact → the contacts made at its address
    for cid in ids:
        crow = live.get(cid)
        if crow is None:
            log.warning("invoices of customer %s (company %s) skipped: the customer is not in the mirror", cid, realm)
            continue
        email, phone, contact = emails[cid], phones[cid], contacts[cid]
        opted: set[str] = set()
        if email and (contact.email_stopped or all(a.lower() in blocked_emails for a in email_addresses(email))):
            opted.add("email")
        if phone and (contact.sms_stopped or phone in blocked_phones):
            opted.add("sms")
        if crow.policy_name not in policies:
            try:
                policies[crow.policy_name] = policy_for(company, crow), None
            except errors.InvalidInput as exc:
                policies[crow.policy_name] = None, exc.message
        policy, problem = policies[crow.policy_name]
        record = rules.Customer(
            id=cid, display_name=crow.display_name, language=language_of(company, contact),  # type: ignore[arg-type]
            country=customer_region(company, contact), time_zone=time_zone_of(company, contact),
            has_email=email is not None, has_phone=phone is not None, policy_name=crow.policy_name,
            excluded=bool(crow.excluded) or not crow.active, fees_waived=bool(crow.fees_waived),
            opted_out=frozenset(opted),
            credits=tuple(Money(a, c) for c, a in sorted((credits.get(cid) or {}).items()) if a > 0),
            credit_holder=shared.holder(cid), fees_from=crow.fees_from)
        rows = sorted(by_customer[cid], key=lambda r: r.qbo_id)
        # the messages sent to the same address for the parent or a job billed with it count as contacts
        mine = history.get(cid, [])
        if contact.qbo_id in families:
            if contact.qbo_id not in bare:  # once per address (its own messages among them change nothing)
                bare[contact.qbo_id] = _contacts_only(
                    (h for o in sorted(families[contact.qbo_id]) for h in history.get(o, ())),
                    zone=record.time_zone or company.timezone or "UTC", today=today)
            mine = [*mine, *bare[contact.qbo_id]]
        snaps.append(CustomerSnapshot(
            row=crow, customer=record, invoices=[invoice_record(realm, r, terms, paid.get(r.qbo_id, ())) for r in rows],
            invoice_rows={r.qbo_id: r for r in rows}, history=mine, pauses=pauses.get(cid, []),
            policy=policy, policy_error=problem, email=email, phone=phone))
    return snaps


_IN_CHUNK = 500


def _in_chunks(s: Session, query: Any, column: Any, values: Sequence[str]) -> Iterator[Any]:
    """``query`` with ``column IN values``, ``_IN_CHUNK`` values per statement."""
    for start in range(0, len(values), _IN_CHUNK):
        yield from s.scalars(query.where(column.in_(values[start:start + _IN_CHUNK])))


def _chunked(s: Session, model: Any, company_id: int, ids: Sequence[str]) -> list[Any]:
    return list(_in_chunks(s, select(model).where(model.company_id == company_id), model.qbo_id, ids))


def _of_customers(s: Session, model: Any, company_id: int, customer_ids: Sequence[str], *where: Any) -> Iterator[Any]:
    """The company's ``model`` rows (with ``where``) of these customers."""
    return _in_chunks(s, select(model).where(model.company_id == company_id, *where).order_by(model.id),
                      model.customer_qbo_id, customer_ids)


def _blocked(s: Session, channel: str, addresses: set[str], *, senders: Sequence[str] = ("",)) -> set[str]:
    """Which of ``addresses`` are blocked on ``channel`` by a block of one of ``senders`` (``ContactBlock``)."""
    block = models.ContactBlock
    return set(_in_chunks(s, select(block.address).where(block.channel == channel, block.sender.in_(senders)),
                          block.address, sorted(addresses)))


NEVER = dt.date(9999, 12, 31)  # stored for "nothing will happen unless something changes"


def refresh_next_action(s: Session, snapshots: Iterable[CustomerSnapshot], *,
                        dates: dict[str, dict[str, dt.date | None]]) -> int:
    """Store the next-action dates a run worked out (``dates``: customer → invoice → date, from
    ``rules.plan_and_next``) on the snapshot invoices; returns how many rows changed.

    An invoice the engine says nothing will ever happen to (past every step, fee and task, an
    excluded customer…) gets ``NEVER``, so that runs stop selecting it; what could change that
    clears or bypasses the date (see ``candidate_customers``). A customer without a valid policy
    gets None (unknown: planned again, and its problem reported, at each run). An invoice
    without a date (outside the run's focus, or its customer failed to plan) keeps its stored one.
    """
    changes = []
    for snap in snapshots:
        found = ({i: NEVER if d is None else d for i, d in dates.get(snap.customer.id, {}).items()}
                 if snap.policy is not None else dict.fromkeys(snap.invoice_rows))
        for invoice_id, nxt in found.items():
            row = snap.invoice_rows.get(invoice_id)
            if row is not None and row.next_action_on != nxt:
                changes.append({"row_id": row.id, "next_on": nxt})
    if changes:  # one executemany, in row order: an overlapping run locks the same rows in the same order
        changes.sort(key=lambda c: c["row_id"])
        table = models.Invoice.__table__
        s.connection().execute(update(table).where(table.c.id == bindparam("row_id"))
                               .values(next_action_on=bindparam("next_on")), changes)
    return len(changes)


def candidate_customers(s: Session, company: models.Company, *, today: dt.date,
                        since: dt.datetime | None = None) -> dict[str, set[str] | None]:
    """Customers to plan in a run that is not a full plan, each with the invoices to evaluate
    (``rules.plan``'s ``focus``): those whose next action is due or unknown. None evaluates all of
    the customer's invoices: one of them (open or not) or the customer's own row was synced or
    changed since ``since``, or a pause of theirs was recorded since."""
    inv = models.Invoice
    open_ = (inv.company_id == company.id, inv.deleted.is_(False), inv.status == models.InvoiceStatus.open)
    found: dict[str, set[str] | None] = {}
    for customer_id, invoice_id in s.execute(select(inv.customer_qbo_id, inv.qbo_id).where(
            inv.company_id == company.id, inv.deleted.is_(False),
            or_(inv.status == models.InvoiceStatus.open, _paid_pending()),
            or_(inv.next_action_on.is_(None), inv.next_action_on <= today))):
        found.setdefault(customer_id, set()).add(invoice_id)  # type: ignore[union-attr]
    if since is not None:
        # any invoice of theirs: one paid, voided or deleted since can bring a statement back for the others
        changed = set(s.scalars(select(inv.customer_qbo_id).distinct().where(
            inv.company_id == company.id, inv.synced_at >= since)))
        changed |= set(s.scalars(select(models.Pause.customer_qbo_id).where(
            models.Pause.company_id == company.id, models.Pause.created_at >= since)))
        for credit in (models.Payment, models.CreditMemo):  # unused credit may now settle an invoice, or no longer
            changed |= set(s.scalars(select(credit.customer_qbo_id).distinct().where(
                credit.company_id == company.id, credit.synced_at >= since, credit.customer_qbo_id.is_not(None))))
        cus = models.Customer  # the customer's own row: synced, or changed here (flags, bounce, STOP)
        changed |= set(s.scalars(select(inv.customer_qbo_id).distinct().join(
            cus, (cus.company_id == inv.company_id) & (cus.qbo_id == inv.customer_qbo_id)).where(
            *open_, or_(cus.synced_at >= since, cus.changed_at >= since))))
        # a job billed with its parent is reached at the parent's: the parent's row too (one level up;
        # deeper chains are caught by the weekly full plan)
        parent = aliased(models.Customer)
        changed |= set(s.scalars(select(inv.customer_qbo_id).distinct().join(
            cus, (cus.company_id == inv.company_id) & (cus.qbo_id == inv.customer_qbo_id)).join(
            parent, (parent.company_id == cus.company_id) & (parent.qbo_id == cus.parent_qbo_id)).where(
            *open_, cus.bill_with_parent.is_(True), or_(parent.synced_at >= since, parent.changed_at >= since))))
        # a customer's credit also pays the invoices of those billed with it (``shared_credits``): when
        # anything of that family changed (the credit, an invoice, a row), all of it
        for holder, family in credit_families(s, company).items():
            if holder in changed or family & changed:
                changed |= family
        # a parent and the jobs billed with it share one address, so one's messages delay the others' (the
        # minimum gap): when one of them changed (a message of theirs cancelled and its key given up), all
        for members in contact_families(s, company.id).values():
            if members & changed:
                changed |= members
        found.update(dict.fromkeys(changed))
    return found


PLAN_INPUTS_VERSION = 6  # bump when the planner or what it reads changes: every company is planned in full again


def plan_fingerprint(s: Session, company: models.Company) -> str:
    """A digest of what the plan of every customer of ``company`` reads beyond its own rows:
    the policy (with the named ones), the company's settings, zone, country, currency and
    language, the terms (which give due dates to invoices without one) and the engine's version.
    When it differs from the stored one, the daily run plans every customer again."""
    terms = s.execute(select(func.count(), func.max(models.Term.synced_at)).where(
        models.Term.company_id == company.id)).one()
    data = {"v": PLAN_INPUTS_VERSION, "policy": company.policy, "settings": company.settings,
            "zone": company.timezone, "country": company.country, "currency": company.currency,
            "language": company.language, "terms": [terms[0], terms[1].isoformat() if terms[1] else None]}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
