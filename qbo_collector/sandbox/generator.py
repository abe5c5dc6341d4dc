"""Deterministic sandbox companies: same ``CompanySpec`` and same "today" → identical data.

Built for volume (100,000 invoices in a few seconds): rows are written straight into the
store's tables, and immutable sub-objects (currency and term references) are shared
between rows; the store replaces nested objects instead of mutating them.

What a generated company holds:
- Terms: Due on receipt, Net 15, Net 30, Net 60, "2% 10 Net 30"; accounts and items
  ("Services", "Consulting"; "Late fee" only with ``late_fee_item=True``).
- Outside the US, the country's sales tax codes (``TAX_CODES``: "TVA 20 %" … "Hors champ" in
  France, "20.0% S" … "No VAT" in the UK, "HST ON" … "Out of Scope" in Canada), and the standard
  rate's code on every invoice and credit memo line, as QBO requires there.
- Customers: English and French names (French for FR companies, a share of Quebec customers
  for CA), some without email or phone, a few inactive, countries US/CA/FR/GB with local
  phone formats; foreign-currency customers in multicurrency companies.
- Invoices spread over due buckets relative to today (current, 1–30, 31–60, 61–90, 90+
  days past due), a few without DueDate, PO numbers on some, online payment on most, a
  few with an invalid BillEmail; some voided (amounts zeroed, as QuickBooks Online keeps them),
  some deleted (tombstones for CDC).
- Payments: full and partial (``Line[].LinkedTxn``); credit memos, half of them applied
  to an invoice through a zero-amount Payment (as QBO records it).
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import phonenumbers

from qbo_collector.sandbox import store

BUCKETS = (  # (name, lowest, highest days past due, share of invoices)
    ("current", -45, 0, 0.36),
    ("1-30", 1, 30, 0.24),
    ("31-60", 31, 60, 0.14),
    ("61-90", 61, 90, 0.10),
    ("90+", 91, 400, 0.16),
)

EN_GIVEN = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
            "William", "Susan", "Richard", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Emily",
            "Matthew", "Olivia", "George", "Amelia", "Harry", "Sophie", "Oliver", "Grace", "Jack", "Chloe"]
EN_FAMILY = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
             "Thomas", "Moore", "Jackson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young",
             "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell", "Evans"]
FR_GIVEN = ["Jean", "Marie", "Pierre", "Camille", "Louis", "Léa", "Hugo", "Chloé", "Lucas", "Manon", "Gabriel",
            "Inès", "Arthur", "Zoé", "Jules", "Élodie", "Thomas", "Amélie", "Nicolas", "Céline", "Mathieu",
            "Sophie", "Étienne", "Margaux", "François", "Hélène", "Antoine", "Juliette", "Benoît", "Anaïs"]
FR_FAMILY = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
             "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
             "Morel", "Girard", "André", "Lefebvre", "Mercier", "Dupont", "Lambert", "Bonnet", "Gagnon", "Tremblay"]
EN_BUSINESS = ["Plumbing", "Bakery", "Design Studio", "Consulting", "Landscaping", "Dental Care", "Auto Repair",
               "Catering", "Electric", "Print Shop"]
FR_BUSINESS = ["Plomberie", "Boulangerie", "Studio Graphique", "Conseil", "Paysagisme", "Cabinet Dentaire",
               "Garage", "Traiteur", "Électricité", "Imprimerie"]
EN_SUFFIX = ["LLC", "Inc.", "Ltd", "& Co.", "Group"]
FR_SUFFIX = ["SARL", "SAS", "EURL", "& Fils", "SA"]
CITIES = {
    "US": [("San Francisco", "CA", "94105"), ("Austin", "TX", "73301"), ("Boston", "MA", "02108")],
    "CA": [("Toronto", "ON", "M5H 2N2"), ("Montréal", "QC", "H2Y 1C6"), ("Vancouver", "BC", "V6B 1A1")],
    "FR": [("Paris", "", "75002"), ("Lyon", "", "69002"), ("Bordeaux", "", "33000")],
    "GB": [("London", "", "EC1A 1BB"), ("Manchester", "", "M1 1AE"), ("Leeds", "", "LS1 1UR")],
}
# The sales tax codes a company outside the US starts with (name, description, taxable), standard
# rate first: QBO refuses a sales line without one of them there. The US has no per-line codes.
TAX_CODES = {
    "FR": (("TVA 20 %", "Taux normal", True), ("TVA 10 %", "Taux intermédiaire", True),
           ("TVA 5,5 %", "Taux réduit", True), ("TVA 2,1 %", "Taux particulier", True),
           ("TVA 0 %", "Taux zéro", True), ("Exonéré", "Exonération de TVA", False),
           ("Hors champ", "Hors du champ d'application de la TVA", False)),
    "GB": (("20.0% S", "Standard rate", True), ("5.0% R", "Reduced rate", True),
           ("0.0% Z", "Zero-rated", True), ("Exempt", "Exempt from VAT", False),
           ("No VAT", "Outside the scope of VAT", False)),
    "CA": (("HST ON", "HST Ontario 13%", True), ("GST", "GST 5%", True),
           ("GST/QST QC - 9.975", "GST 5% and QST 9.975%", True), ("Zero-rated", "Zero-rated 0%", True),
           ("Exempt", "Exempt", False), ("Out of Scope", "Outside the scope of GST/HST", False)),
    "AU": (("GST", "GST 10%", True), ("GST free", "GST-free 0%", True), ("Input taxed", "Input taxed", False),
           ("Out of scope", "Outside the scope of GST", False)),
}
DEFAULT_TAX_CODES = (("Standard", "Standard rate", True), ("Exempt", "Exempt", False),
                     ("Out of scope", "Outside the scope of VAT", False))
FOREIGN_CURRENCY = {"CA": "USD", "US": "CAD", "FR": "GBP", "GB": "EUR"}
EXCHANGE_RATES = {("CAD", "USD"): 1.36, ("USD", "CAD"): 0.73, ("EUR", "GBP"): 1.17, ("GBP", "EUR"): 0.86}


@dataclass(frozen=True, kw_only=True)
class CompanySpec:
    """What to generate. Counts are approximate only where noted (voided/deleted come out of ``invoices``)."""

    name: str = "Sandbox Company US"
    country: str = "US"
    currency: str = "USD"
    timezone: str = "America/Los_Angeles"
    language: str = "en"
    customers: int = 50
    invoices: int = 300
    payments: int = 200          # customer payments; credit-memo applications are extra zero-amount Payments
    credit_memos: int | None = None   # default: invoices // 40
    seed: int = 1
    realm_id: str | None = None  # default: derived from seed
    multicurrency: bool | None = None  # default: True for CA
    online_payment: bool = True
    late_fee_item: bool = False
    email: str | None = None


def realm_for(spec: CompanySpec) -> str:
    return spec.realm_id or str(9341450000000000 + random.Random(f"realm:{spec.seed}:{spec.name}").randrange(10**10))


def _phone(rng: random.Random, country: str, mobile: bool) -> str:
    """A number in the country's local format that is really allocated (the same seed, the same number)."""
    for _ in range(50):
        raw = _draw_phone(rng, country, mobile)
        if phonenumbers.is_valid_number(phonenumbers.parse(raw, "US" if country == "CA" else country)):
            return raw
    return raw


def _draw_phone(rng: random.Random, country: str, mobile: bool) -> str:
    d = lambda n: "".join(str(rng.randrange(10)) for _ in range(n))  # noqa: E731
    if country == "FR":
        return f"0{rng.choice('67') if mobile else rng.choice('12345')} {d(2)} {d(2)} {d(2)} {d(2)}"
    if country == "GB":
        return f"07{d(3)} {d(6)}" if mobile else f"020 {d(4)} {d(4)}"
    area = {"US": ["415", "512", "617"], "CA": ["416", "514", "604"]}[country]
    return f"({rng.choice(area)}) 555-{d(4)}"


def _slug(text: str) -> str:
    table = str.maketrans("éèêëàâäîïôöùûüçÉÈÊÀÂÎÔÙÛÇ", "eeeeaaaiioouuucEEEAAIOUUC")
    return "".join(c for c in text.translate(table).lower() if c.isalnum() or c == ".")


def generate(spec: CompanySpec, *, now: datetime) -> store.Company:
    """Build a company whose dates are relative to ``now`` (the sandbox clock)."""
    rng = random.Random(spec.seed)
    multicurrency = spec.multicurrency if spec.multicurrency is not None else spec.country == "CA"
    company = store.Company(
        realm=realm_for(spec), name=spec.name, country=spec.country, currency=spec.currency,
        timezone=spec.timezone, language=spec.language,
        email=spec.email or f"billing@{_slug(spec.name.replace(' ', ''))}.example",
        online_payment=spec.online_payment, multicurrency=multicurrency,
    )
    today = company.today(now)
    # Nothing generated is newer than an hour before "now", so a sync started right after
    # generation sees a quiet company; times that would fall later are spread over the 12
    # hours before that (piling them on one instant would flood a CDC window).
    latest = now - timedelta(hours=1)
    tz = company.tz
    stamp_cache: dict[tuple[date, int], str] = {}

    def stamp(day: date, minute_of_day: int) -> str:
        key = (day, minute_of_day)
        text = stamp_cache.get(key)
        if text is None:
            moment = datetime.combine(day, time(minute_of_day // 60, minute_of_day % 60), tzinfo=tz)
            if moment > latest:
                spread = (day.toordinal() * 7919 + minute_of_day * 104729) % (12 * 3600)
                moment = latest - timedelta(seconds=spread)
            text = moment.astimezone(tz).isoformat(timespec="seconds")
            stamp_cache[key] = text
        return text

    iso_cache: dict[date, str] = {}

    def iso(day: date) -> str:   # one string per calendar day, shared by every row of that day
        text = iso_cache.get(day)
        if text is None:
            text = iso_cache[day] = day.isoformat()
        return text

    def money(value: float, currency: str) -> float | int:
        return int(round(value)) if currency in store.ZERO_DECIMAL_CURRENCIES else round(value, 2)

    start_stamp = stamp(today - timedelta(days=700), 9 * 60)
    meta0 = {"CreateTime": start_stamp, "LastUpdatedTime": start_stamp}
    tables = company.tables

    def add(entity: str, row: dict[str, Any], meta: dict[str, str] | None = None) -> dict[str, Any]:
        row["Id"] = company.next_id(entity)
        row.setdefault("SyncToken", "0")
        row["domain"] = "QBO"
        row["sparse"] = False
        row["MetaData"] = meta or dict(meta0)
        tables[entity][row["Id"]] = row
        return row

    # Accounts, items, terms -------------------------------------------------------
    income = add("Account", {"Name": "Services", "AccountType": "Income", "AccountSubType": "ServiceFeeIncome",
                             "Active": True, "FullyQualifiedName": "Services",
                             "CurrencyRef": store.currency_ref(spec.currency)})
    fee_income = add("Account", {"Name": "Late Fee Income", "AccountType": "Income",
                                 "AccountSubType": "OtherPrimaryIncome", "Active": True,
                                 "FullyQualifiedName": "Late Fee Income",
                                 "CurrencyRef": store.currency_ref(spec.currency)})
    items = []
    for name, price in (("Services", 100), ("Consulting", 150)):
        items.append(add("Item", {"Name": name, "FullyQualifiedName": name, "Type": "Service", "Active": True,
                                  "UnitPrice": price, "Taxable": False,
                                  "IncomeAccountRef": {"value": income["Id"], "name": income["Name"]}}))
    if spec.late_fee_item:
        add("Item", {"Name": "Late fee", "FullyQualifiedName": "Late fee", "Type": "Service", "Active": True,
                     "UnitPrice": 0, "Taxable": False,
                     "IncomeAccountRef": {"value": fee_income["Id"], "name": fee_income["Name"]}})
    tax: dict[str, Any] = {}  # what every generated sales line carries: the standard rate, outside the US
    if spec.country != "US":
        codes = [add("TaxCode", {"Name": name, "Description": text, "Active": True, "Hidden": False,
                                 "Taxable": taxable, "TaxGroup": False})
                 for name, text, taxable in TAX_CODES.get(spec.country, DEFAULT_TAX_CODES)]
        tax = {"TaxCodeRef": {"value": codes[0]["Id"]}}
    fr = spec.language.startswith("fr")
    term_specs = [
        ("Due on receipt" if not fr else "Payable à réception", 0, None, None),
        ("Net 15", 15, None, None), ("Net 30", 30, None, None), ("Net 60", 60, None, None),
        ("2% 10 Net 30", 30, 2, 10),
    ]
    terms = []
    for name, days, pct, disc_days in term_specs:
        row: dict[str, Any] = {"Name": name, "Active": True, "Type": "STANDARD", "DueDays": days}
        if pct is not None:
            row["DiscountPercent"] = pct
            row["DiscountDays"] = disc_days
        terms.append(add("Term", row))
    term_refs = [{"value": t["Id"], "name": t["Name"]} for t in terms]
    term_days = [t["DueDays"] for t in terms]
    default_term = 2  # Net 30
    item_refs = [{"value": i["Id"], "name": i["Name"]} for i in items]
    home_ref = store.currency_ref(spec.currency)
    foreign = FOREIGN_CURRENCY.get(spec.country, "USD")
    foreign_ref = store.currency_ref(foreign)
    other_countries = [c for c in CITIES if c != spec.country] if spec.country in CITIES else list(CITIES)

    # Customers --------------------------------------------------------------------
    customers: list[dict[str, Any]] = []
    cust_term: list[int] = []
    used_names: set[str] = set()
    for i in range(spec.customers):
        country = spec.country if spec.country in CITIES and rng.random() < 0.85 else rng.choice(other_countries)
        french = country == "FR" or (country == "CA" and rng.random() < 0.3) or (fr and rng.random() < 0.9)
        given = rng.choice(FR_GIVEN if french else EN_GIVEN)
        family = rng.choice(FR_FAMILY if french else EN_FAMILY)
        business = rng.random() < 0.35
        if business:
            company_name = f"{family} {rng.choice(FR_BUSINESS if french else EN_BUSINESS)} " \
                           f"{rng.choice(FR_SUFFIX if french else EN_SUFFIX)}"
            display = company_name
        else:
            company_name = None
            display = f"{given} {family}"
        if display in used_names:
            display = f"{display} ({i + 1})"
        used_names.add(display)
        city, region, postal = rng.choice(CITIES[country])
        row = {
            "DisplayName": display, "GivenName": given, "FamilyName": family,
            "FullyQualifiedName": display, "PrintOnCheckName": display,
            "Active": rng.random() >= 0.03, "Balance": 0, "BalanceWithJobs": 0,
            "Job": False, "BillWithParent": False, "Taxable": False,
            "BillAddr": {"Line1": f"{rng.randrange(1, 200)} {'rue de la Paix' if french else 'Main Street'}",
                         "City": city, "CountrySubDivisionCode": region, "PostalCode": postal, "Country": country},
        }
        if company_name:
            row["CompanyName"] = company_name
        has_email = rng.random() < 0.85
        if has_email:
            domain = _slug(family) + ("-" + _slug(company_name.split()[1]) if company_name else "") + ".example"
            row["PrimaryEmailAddr"] = {"Address": f"{_slug(given)}.{_slug(family)}{i}@{domain}"}
            row["PreferredDeliveryMethod"] = "Email"
        else:
            row["PreferredDeliveryMethod"] = "Print"
        if rng.random() < 0.75:
            row["PrimaryPhone"] = {"FreeFormNumber": _phone(rng, country, mobile=False)}
        if rng.random() < 0.45:
            row["Mobile"] = {"FreeFormNumber": _phone(rng, country, mobile=True)}
        if multicurrency and rng.random() < 0.25:
            row["CurrencyRef"] = foreign_ref
        else:
            row["CurrencyRef"] = home_ref
        t = rng.choices(range(len(terms)), weights=(10, 15, 50, 10, 15))[0] if rng.random() < 0.7 else default_term
        if t != default_term or rng.random() < 0.5:
            row["SalesTermRef"] = term_refs[t]
        if rng.random() < 0.1:
            row["Notes"] = "Client fidèle depuis 2019." if french else "Long-standing customer since 2019."
        customers.append(add("Customer", row))
        cust_term.append(t)
    cust_refs = [{"value": c["Id"], "name": c["DisplayName"]} for c in customers]
    empty: dict[str, Any] = {}

    # Invoices -----------------------------------------------------------------------
    n_cust = len(customers)
    invoices: list[dict[str, Any]] = []
    bucket_weights = [b[3] for b in BUCKETS]
    bucket_cum = list(itertools.accumulate(bucket_weights))
    ncust_choice = [int(n_cust * (rng.random() ** 1.6)) for _ in range(min(4096, max(1, spec.invoices)))]
    for i in range(spec.invoices if n_cust else 0):
        ci = ncust_choice[i % len(ncust_choice)] if i % 3 else rng.randrange(n_cust)
        cust = customers[ci]
        t = cust_term[ci]
        currency = cust["CurrencyRef"]["value"]
        b = bisect.bisect(bucket_cum, rng.random() * bucket_cum[-1])
        _, lo, hi, _ = BUCKETS[b]
        due = today - timedelta(days=lo + int(rng.random() * (hi - lo + 1)))
        txn = due - timedelta(days=term_days[t])
        if txn > today:
            txn = today
        amount = rng.lognormvariate(6.0, 0.9)
        if currency in store.ZERO_DECIMAL_CURRENCIES:
            amount *= 100
        lines = []
        total = 0.0
        for n in range(1 if rng.random() < 0.7 else 2):
            part = money(amount if n == 0 else amount * rng.uniform(0.1, 0.5), currency)
            total += part
            lines.append({"Id": str(n + 1), "LineNum": n + 1, "Amount": part, "DetailType": "SalesItemLineDetail",
                          "Description": "Services rendered" if not fr else "Prestations",
                          "SalesItemLineDetail": {"ItemRef": item_refs[n], "Qty": 1, "UnitPrice": part,
                                                                  **tax}})
        total = money(total, currency)
        lines.append({"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": empty})
        created = stamp(txn, 480 + int(rng.random() * 600))
        row = {
            "DocNumber": str(1001 + i), "TxnDate": iso(txn), "DueDate": iso(due),
            "TotalAmt": total, "Balance": total,
            "CustomerRef": cust_refs[ci],
            "CurrencyRef": cust["CurrencyRef"], "SalesTermRef": term_refs[t], "Line": lines, "LinkedTxn": [],
            "EmailStatus": "NotSet", "PrintStatus": "NotSet",
            "AllowOnlineCreditCardPayment": spec.online_payment and rng.random() < 0.85,
            "AllowOnlineACHPayment": spec.online_payment and rng.random() < 0.6,
        }
        if currency != spec.currency:
            row["ExchangeRate"] = EXCHANGE_RATES.get((spec.currency, currency), 1)
        email = cust.get("PrimaryEmailAddr")
        if email:
            row["BillEmail"] = {"Address": email["Address"] if rng.random() < 0.98 else "not-an-email"}
            if rng.random() < 0.8:
                row["EmailStatus"] = "EmailSent"
                row["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": created}  # emailed when made
        if row["EmailStatus"] != "EmailSent" and i % 3 == 0:
            row["PrintStatus"] = "PrintComplete"  # mailed on paper (no draw: the rest of the book stays as it was)
        if rng.random() < 0.01:
            del row["DueDate"]
        if rng.random() < 0.2:
            row["CustomField"] = [{"DefinitionId": "1", "Name": "P.O. Number" if not fr else "N° de commande",
                                   "Type": "StringType", "StringValue": f"PO-{10000 + int(rng.random() * 89999)}"}]
        invoices.append(add("Invoice", row, {"CreateTime": created, "LastUpdatedTime": created}))
    company.counters["doc"] = 1000 + spec.invoices

    def payment_day(inv: dict[str, Any]) -> date:
        txn = date.fromisoformat(inv["TxnDate"])
        span = (today - txn).days
        return txn + timedelta(days=int(rng.random() * (max(span, 0) + 1)))

    def link_payment(inv: dict[str, Any], pay_id: str, day: date, minute: int) -> None:
        inv["LinkedTxn"] = inv["LinkedTxn"] + [{"TxnId": pay_id, "TxnType": "Payment"}]
        when = stamp(day, minute)
        if when > inv["MetaData"]["LastUpdatedTime"]:
            inv["MetaData"] = {"CreateTime": inv["MetaData"]["CreateTime"], "LastUpdatedTime": when}
        inv["SyncToken"] = str(int(inv["SyncToken"]) + 1)

    # Payments: full and partial ----------------------------------------------------
    order = list(range(len(invoices)))
    rng.shuffle(order)
    made = 0
    cursor = 0
    while made < spec.payments and invoices:
        if cursor >= len(order):
            order = [k for k in order if invoices[k]["Balance"] > 0]
            if not order:
                break
            cursor = 0
        inv = invoices[order[cursor]]
        cursor += 1
        if inv["Balance"] <= 0:
            continue
        currency = inv["CurrencyRef"]["value"]
        # older invoices are more often paid; current ones more often partially
        amount = inv["Balance"] if rng.random() < 0.72 else money(inv["Balance"] * rng.uniform(0.2, 0.8), currency)
        if amount <= 0:
            continue
        day = payment_day(inv)
        minute = 480 + int(rng.random() * 720)
        when = stamp(day, minute)
        pay = add("Payment", {
            "TxnDate": iso(day), "TotalAmt": amount, "UnappliedAmt": 0,
            "CustomerRef": inv["CustomerRef"], "CurrencyRef": inv["CurrencyRef"], "ProcessPayment": False,
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": inv["Id"], "TxnType": "Invoice"}]}],
        }, {"CreateTime": when, "LastUpdatedTime": when})
        inv["Balance"] = money(inv["Balance"] - amount, currency)
        link_payment(inv, pay["Id"], day, minute)
        made += 1

    # Credit memos, half of them applied --------------------------------------------
    n_memos = spec.credit_memos if spec.credit_memos is not None else spec.invoices // 40
    open_invoices = [inv for inv in invoices if inv["Balance"] > 0]
    for m in range(n_memos if invoices else 0):
        target = rng.choice(open_invoices) if open_invoices else rng.choice(invoices)
        currency = target["CurrencyRef"]["value"]
        total = money(max(target["TotalAmt"] * rng.uniform(0.05, 0.3), 1), currency)
        day = payment_day(target)
        when = stamp(day, rng.randrange(8 * 60, 18 * 60))
        memo = add("CreditMemo", {
            "DocNumber": f"CM-{m + 1}", "TxnDate": iso(day), "TotalAmt": total, "Balance": total,
            "RemainingCredit": total, "CustomerRef": target["CustomerRef"], "CurrencyRef": target["CurrencyRef"],
            "Line": [{"Id": "1", "LineNum": 1, "Amount": total, "DetailType": "SalesItemLineDetail",
                      "Description": "Credit" if not fr else "Avoir",
                      "SalesItemLineDetail": {"ItemRef": item_refs[0], "Qty": 1, "UnitPrice": total, **tax}},
                     {"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}],
        }, {"CreateTime": when, "LastUpdatedTime": when})
        if m % 2 == 0 and target["Balance"] > 0:
            applied = min(total, target["Balance"])
            pay = add("Payment", {
                "TxnDate": iso(day), "TotalAmt": 0, "UnappliedAmt": 0,
                "CustomerRef": target["CustomerRef"], "CurrencyRef": target["CurrencyRef"], "ProcessPayment": False,
                "Line": [{"Amount": applied, "LinkedTxn": [{"TxnId": target["Id"], "TxnType": "Invoice"}]},
                         {"Amount": applied, "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]}],
            }, {"CreateTime": when, "LastUpdatedTime": when})
            target["Balance"] = money(target["Balance"] - applied, currency)
            memo["Balance"] = memo["RemainingCredit"] = money(total - applied, currency)
            link_payment(target, pay["Id"], day, 12 * 60)

    # Voided and deleted invoices (only ones nobody paid) ---------------------------
    untouched = [inv for inv in invoices if not inv["LinkedTxn"]]
    rng.shuffle(untouched)
    n_void = max(1, len(invoices) // 100) if len(untouched) > 4 else 0
    n_del = max(1, len(invoices) // 200) if len(untouched) > 4 else 0
    for inv in untouched[:n_void]:
        day = today - timedelta(days=rng.randrange(0, 60))
        when = stamp(day, rng.randrange(8 * 60, 18 * 60))
        inv = store.voided(inv)  # amounts zeroed, "Voided" in PrivateNote, as QuickBooks Online keeps it
        tables["Invoice"][inv["Id"]] = inv
        inv["SyncToken"] = str(int(inv["SyncToken"]) + 1)
        inv["MetaData"] = {"CreateTime": inv["MetaData"]["CreateTime"],
                           "LastUpdatedTime": max(when, inv["MetaData"]["CreateTime"])}
    for inv in untouched[n_void:n_void + n_del]:
        day = today - timedelta(days=rng.randrange(0, 20))
        when = max(stamp(day, rng.randrange(8 * 60, 18 * 60)), inv["MetaData"]["CreateTime"])
        del tables["Invoice"][inv["Id"]]
        company.tombstones["Invoice"][inv["Id"]] = {
            "Id": inv["Id"], "status": "Deleted", "domain": "QBO",
            "MetaData": {"CreateTime": inv["MetaData"]["CreateTime"], "LastUpdatedTime": when}}

    # Customer balances: open invoices less unused credit ---------------------------
    balances: dict[str, float] = {}
    for inv in tables["Invoice"].values():
        key = inv["CustomerRef"]["value"]
        balances[key] = balances.get(key, 0) + inv["Balance"]
    for memo in tables["CreditMemo"].values():
        key = memo["CustomerRef"]["value"]
        balances[key] = balances.get(key, 0) - memo["Balance"]
    for cust in customers:
        value = money(balances.get(cust["Id"], 0), cust["CurrencyRef"]["value"])
        cust["Balance"] = cust["BalanceWithJobs"] = value

    company.info = _company_info(company, spec, meta0)
    company.preferences = _preferences(company, spec, meta0, terms[default_term])
    return company


def _company_info(company: store.Company, spec: CompanySpec, meta: dict[str, str]) -> dict[str, Any]:
    city, region, postal = CITIES.get(spec.country, CITIES["US"])[0]
    return {
        "Id": "1", "SyncToken": "0", "domain": "QBO", "sparse": False, "MetaData": dict(meta),
        "CompanyName": spec.name, "LegalName": spec.name, "Country": spec.country,
        "CompanyAddr": {"Id": "1", "Line1": "1 Sandbox Way", "City": city, "CountrySubDivisionCode": region,
                        "PostalCode": postal, "Country": spec.country},
        "LegalAddr": {"Id": "1", "Line1": "1 Sandbox Way", "City": city, "PostalCode": postal, "Country": spec.country},
        "Email": {"Address": company.email}, "CustomerCommunicationEmailAddr": {"Address": company.email},
        "PrimaryPhone": {"FreeFormNumber": _phone(random.Random(spec.seed), spec.country if spec.country in CITIES else "US", False)},
        "WebAddr": {}, "FiscalYearStartMonth": "January", "SupportedLanguages": spec.language,
        "CompanyStartDate": "2019-01-01",
        "NameValue": [
            {"Name": "NeoEnabled", "Value": "true"},
            {"Name": "IndustryType", "Value": "Professional services"},
            {"Name": "CompanyType", "Value": "Other"},
            {"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
            {"Name": "PayrollFeature", "Value": "false"},
            {"Name": "AccountantFeature", "Value": "false"},
            {"Name": "IsQbdtMigrated", "Value": "false"},
            {"Name": "SubscriptionStatus", "Value": "PAID"},
            {"Name": "TimeZone", "Value": spec.timezone},
        ],
    }


def _preferences(company: store.Company, spec: CompanySpec, meta: dict[str, str],
                 default_term: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": "1", "SyncToken": "0", "domain": "QBO", "sparse": False, "MetaData": dict(meta),
        "CurrencyPrefs": {"MultiCurrencyEnabled": company.multicurrency,
                          "HomeCurrency": {"value": spec.currency}},
        "SalesFormsPrefs": {
            "ETransactionPaymentEnabled": spec.online_payment, "ETransactionEnabledStatus": "Enabled",
            "AllowDeposit": False, "AllowDiscount": True, "AllowShipping": False,
            "AutoApplyCredit": True, "AutoApplyPayments": True,
            "DefaultTerms": {"value": default_term["Id"]},
            "CustomField": [{"CustomField": [{"Name": "SalesFormsPrefs.UseSalesCustom1", "Type": "BooleanType",
                                              "BooleanValue": True},
                                             {"Name": "SalesFormsPrefs.SalesCustomName1", "Type": "StringType",
                                              "StringValue": "P.O. Number"}]}],
        },
        "EmailMessagesPrefs": {"InvoiceMessage": {"Subject": "Invoice [Invoice No.] from " + spec.name}},
        "AccountingInfoPrefs": {"BookCloseDate": None, "CustomerTerminology": "Customers"},
        "OtherPrefs": {"NameValue": [{"Name": "SalesFormsPrefs.DefaultCustomerMessage", "Value": ""},
                                     {"Name": "CompanyTimeZone", "Value": spec.timezone}]},
    }


def overdue_bucket(due: str | None, today: date) -> str:
    """Which of ``BUCKETS`` an open invoice falls in ("current" when not yet due or no DueDate)."""
    if not due:
        return "current"
    late = (today - date.fromisoformat(due)).days
    for name, lo, hi, _ in BUCKETS:
        if late <= hi and (late >= lo or name == "current"):
            return name
    return "90+"
