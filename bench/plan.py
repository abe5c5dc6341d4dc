"""Benchmark: the daily run over 1,000,000 open invoices in 1,000 companies.

Shows that the daily cost follows the number of invoices with something due, not the
number of invoices: the run selects candidates by their stored next-action date (an
index: here a calendar queue of day → invoice numbers, as the database's
``(company_id, next_action_on)`` index would) and plans only their customers, focused on
those invoices, taking their next dates for tomorrow from the same pass
(``rules.plan_and_next``). It is compared with planning every customer, every invoice, and
with a bound measured beside it: only the selected invoices read, planned and recorded, no
next-action date worked out (what no indexed run can go below).

    .venv/bin/python bench/plan.py                # 1,000,000 invoices, a week from a Wednesday
    .venv/bin/python bench/plan.py --invoices 100000 --days 3

Invoices are generated lazily from their number (arrays of due dates and balances, no
objects kept). Two invoices per customer by default (``--per-customer``), 1,000 companies cycling through 16 profiles
(presets × time zones × currencies). The history an invoice would have on the first
morning (what the engine itself decided over the previous 1–30 daily runs) is made by the engine once per
distinct (profile, due date, balance) and reused with the invoice's own ids — the engine
is pure, so identical inputs give identical outputs. Every figure printed is measured (CPU time of this process, so that other programs on a
shared machine do not distort the comparison; the total wall time is printed too);
the full scan is measured every day, on that morning's history, on a random sample of
customers when the run is large, and the time for all of them is then extrapolated and
labelled so. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import array
import datetime as dt
import gc
import random
import sys
import time
import resource
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qbo_collector import rules  # noqa: E402
from qbo_collector.money import Money  # noqa: E402

TODAY = dt.date(2026, 6, 10)  # a Wednesday; the day before is a working day in all four countries
PER_CUSTOMER = 2
COMPANIES = 1000
ZONES = [("America/Los_Angeles", "US", "USD"), ("Europe/Paris", "FR", "EUR"),
         ("Pacific/Auckland", "NZ", "NZD"), ("Asia/Tokyo", "JP", "JPY")]
PRESETS = ["friendly", "firm", "france_b2b", "us_net30"]
BALANCES = [Decimal(v) for v in ("480.5", "1500", "9999.99")]


def due_offset(rng: random.Random) -> int:
    """Days from today to an invoice's due date in an ordinary book on net-30 terms (DSO around 40
    days): 70 % not yet due (up to 45 days ahead), 20 % up to 30 days late, 7 % 31–90 days late,
    3 % 91–180 days late."""
    r = rng.random()
    if r < 0.70:
        return rng.randint(0, 45)
    if r < 0.90:
        return -rng.randint(1, 30)
    if r < 0.97:
        return -rng.randint(31, 90)
    return -rng.randint(91, 180)


class Profile:
    def __init__(self, n: int) -> None:
        tz, country, currency = ZONES[n % len(ZONES)]
        self.index = n
        self.time_zone, self.country, self.currency = tz, country, currency
        self.policy = rules.PRESETS[PRESETS[(n // len(ZONES)) % len(PRESETS)]]


PROFILES = [Profile(n) for n in range(16)]


class Book:
    """1M invoices as arrays: due date (ordinal), balance bucket; everything else derives from the number."""

    def __init__(self, invoices: int, seed: int = 7) -> None:
        rng = random.Random(seed)
        self.n = invoices
        base = TODAY.toordinal()
        self.due = array.array("i", (base + due_offset(rng) for _ in range(invoices)))
        self.bal = array.array("b", (rng.randrange(len(BALANCES)) for _ in range(invoices)))

    @staticmethod
    def customer_of(i: int) -> int:
        return i // PER_CUSTOMER

    @staticmethod
    def company_of_customer(c: int) -> int:
        return c % COMPANIES

    def profile_of_customer(self, c: int) -> Profile:
        return PROFILES[self.company_of_customer(c) % len(PROFILES)]

    def invoice(self, i: int) -> rules.Invoice:
        c = self.customer_of(i)
        p = self.profile_of_customer(c)
        due = dt.date.fromordinal(self.due[i])
        amount = Money(BALANCES[self.bal[i]], p.currency)
        return rules.Invoice(realm=f"realm{self.company_of_customer(c)}", id=f"inv{i}", customer_id=f"cus{c}",
                             currency=p.currency, total=amount, balance=amount, doc_number=str(1000 + i),
                             txn_date=due - dt.timedelta(days=30), due_date=due)


def company_ctx(c: int, book: Book) -> rules.CompanyContext:
    p = book.profile_of_customer(c)
    return _companies[(book.company_of_customer(c), p.index)]


_companies: dict[tuple[int, int], rules.CompanyContext] = {}


def customer_rec(c: int) -> rules.Customer:
    return rules.Customer(id=f"cus{c}", display_name=f"Customer {c}", has_email=True, has_phone=c % 3 == 0)


class Templates:
    """The morning history of a typical invoice (what the engine did on the previous days), per distinct inputs."""

    def __init__(self) -> None:
        self.cache: dict[tuple[int, int, int], tuple[rules.HistoryEntry, ...]] = {}
        self.nad: dict[tuple[int, int, int], int | None] = {}
        self.engine_calls = 0

    def _make(self, key: tuple[int, int, int]) -> None:
        profile_n, due_ord, bal = key
        p = PROFILES[profile_n]
        co = rules.CompanyContext(realm="R", time_zone=p.time_zone, country=p.country, currency=p.currency)
        cu = rules.Customer(id="C", display_name="C", has_email=True, has_phone=False)
        due = dt.date.fromordinal(due_ord)
        amount = Money(BALANCES[bal], p.currency)
        inv = rules.Invoice(realm="R", id="X", customer_id="C", currency=p.currency, total=amount, balance=amount,
                            txn_date=due - dt.timedelta(days=30), due_date=due)
        # As if the program had been running daily for the last 1–30 days (staggered, so that the
        # catch-up of the first run does not line every old invoice up on the same day).
        warm = 1 + (due_ord * 7 + profile_n * 13 + bal) % 30
        history = tuple(h for a in rules.plan_calendar(company=co, invoices=[inv], customer=cu, policy=p.policy,
                                                       today=TODAY - dt.timedelta(days=warm), days=warm)
                        for h in rules.record(a))
        nad = rules.next_action_date(company=co, invoice=inv, customer=cu, policy=p.policy, history=history, today=TODAY)
        self.engine_calls += 2
        self.cache[key] = history
        self.nad[key] = nad.toordinal() if nad else None

    def key(self, book: Book, i: int) -> tuple[int, int, int]:
        return (book.profile_of_customer(book.customer_of(i)).index, book.due[i], book.bal[i])

    def next_action(self, book: Book, i: int) -> int | None:
        k = self.key(book, i)
        if k not in self.nad:
            self._make(k)
        return self.nad[k]

    def history(self, book: Book, i: int) -> list[rules.HistoryEntry]:
        k = self.key(book, i)
        if k not in self.cache:
            self._make(k)
        c = book.customer_of(i)
        realm, inv_id, cus = f"realm{book.company_of_customer(c)}", f"inv{i}", f"cus{c}"
        return [
            rules.HistoryEntry(dedupe_key=h.dedupe_key.replace("R:", realm + ":", 1).replace(":X:", f":{inv_id}:").replace(":C:", f":{cus}:"),
                               kind=h.kind, at=h.at, invoice_ids=frozenset({inv_id}), step=h.step, repeat=h.repeat,
                               amount=h.amount)
            for h in self.cache[k]
        ]


class Runner:
    def __init__(self, book: Book, templates: Templates) -> None:
        self.book, self.templates = book, templates
        self.done: dict[int, list[rules.HistoryEntry]] = defaultdict(list)  # what the runs did, per customer

    def _load(self, c: int) -> tuple[list[rules.Invoice], list[rules.HistoryEntry]]:
        """What the daily run reads from the database for one customer: its invoices and history."""
        book = self.book
        first = c * PER_CUSTOMER
        ids = range(first, min(first + PER_CUSTOMER, book.n))
        invoices = [book.invoice(i) for i in ids]
        history = [h for i in ids for h in self.templates.history(book, i)] + self.done.get(c, [])
        return invoices, history

    def plan_customer(self, c: int, today: dt.date) -> list[rules.Action]:
        invoices, history = self._load(c)
        return rules.plan(company=company_ctx(c, self.book), invoices=invoices, customer=customer_rec(c),
                          policy=self.book.profile_of_customer(c).policy, history=history, today=today)

    def bound_customer(self, c: int, today: dt.date, numbers: list[int]) -> tuple[float, int]:
        """The least a candidate could cost: read only its selected invoices (and the customer's
        history, which the minimum gap between contacts needs), plan them and record the actions, with no next-action date worked out. Returns the
        CPU seconds and the number of actions; changes nothing (call it before ``run_customer``).

        Valid for the shipped presets, which send one message per invoice (a statement would need
        every open invoice of the customer)."""
        started = time.process_time()
        book = self.book
        policy = book.profile_of_customer(c).policy
        assert not policy.group_by_customer
        invoices = [book.invoice(i) for i in numbers]
        first = c * PER_CUSTOMER  # the history is the customer's: its other invoices' contacts count for the gap
        history = [h for i in range(first, min(first + PER_CUSTOMER, book.n)) for h in self.templates.history(book, i)]
        history += self.done.get(c, [])
        actions = rules.plan(company=company_ctx(c, book), invoices=invoices, customer=customer_rec(c),
                             policy=policy, history=history, today=today)
        _entries = [h for a in actions for h in rules.record(a)]
        return time.process_time() - started, len(actions)

    def run_customer(self, c: int, today: dt.date, numbers: list[int]) -> tuple[int, list[tuple[int, int | None]]]:
        """The daily run for one candidate customer: plan focused on its selected invoices (``numbers``),
        record the actions, and take tomorrow's next-action dates of those invoices from the same
        pass (``rules.plan_and_next``).

        Re-indexed: the selected invoices, and any other invoice an action names (a statement lists
        them all). The others keep their stored date: it was after today, and it stays a valid lower
        bound, because what was done today for other invoices can only delay their next action (the
        customer's minimum gap), never bring it forward.
        """
        invoices, history = self._load(c)
        company, customer, policy = company_ctx(c, self.book), customer_rec(c), self.book.profile_of_customer(c).policy
        actions, dates = rules.plan_and_next(company=company, invoices=invoices, customer=customer, policy=policy,
                                             history=history, today=today, focus={f"inv{i}" for i in numbers})
        entries = [h for a in actions for h in rules.record(a)]
        self.done[c].extend(entries)
        named = {i for a in actions for i in a.invoice_ids}.difference(dates)
        if named:
            history.extend(entries)
            tomorrow = today + dt.timedelta(days=1)
            for inv in invoices:
                if inv.id in named:
                    dates[inv.id] = rules.next_action_date(company=company, invoice=inv, customer=customer,
                                                           policy=policy, history=history, today=tomorrow)
        return len(actions), [(int(inv_id[3:]), nad.toordinal() if nad else None) for inv_id, nad in dates.items()]


def fmt(n: float) -> str:
    return f"{n:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--invoices", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=7, help="consecutive daily runs to measure (a week from a Wednesday)")
    ap.add_argument("--sample", type=int, default=10_000, help="customers in the full-scan sample (0: all)")
    ap.add_argument("--per-customer", type=int, default=2, help="open invoices per customer")
    args = ap.parse_args()
    global PER_CUSTOMER
    PER_CUSTOMER = args.per_customer
    t_all = time.process_time()
    wall_all = time.perf_counter()

    for c in range(COMPANIES):
        p = PROFILES[c % len(PROFILES)]
        _companies[(c, p.index)] = rules.CompanyContext(realm=f"realm{c}", time_zone=p.time_zone, country=p.country,
                                                        currency=p.currency)
    t = time.process_time()
    book = Book(args.invoices)
    t_gen = time.process_time() - t
    customers = (book.n + PER_CUSTOMER - 1) // PER_CUSTOMER
    print(f"generated {fmt(book.n)} open invoices, {fmt(customers)} customers, {COMPANIES} companies in {t_gen:.2f} s")

    # The index: next_action_date per invoice, bucketed by day (maintained at sync time in production).
    templates = Templates()
    t = time.process_time()
    buckets: dict[int, array.array] = defaultdict(lambda: array.array("I"))
    never = 0
    for i in range(book.n):
        nad = templates.next_action(book, i)
        if nad is None:
            never += 1
        else:
            buckets[nad].append(i)
    t_index = time.process_time() - t
    print(f"index of next-action dates built in {t_index:.2f} s "
          f"({len(templates.cache):,} distinct (profile, due date, balance) inputs run through the engine; "
          f"{fmt(never)} invoices with no future action)")

    runner = Runner(book, templates)
    # The alternative, measured every day on the same morning state: plan every customer, every invoice.
    rng = random.Random(1)
    sample = list(range(customers)) if not args.sample or args.sample >= customers else rng.sample(range(customers), args.sample)
    measured = len(sample) == customers
    print()
    print(f"{'day':<12}{'candidates':>12}{'customers':>11}{'actions':>9}{'run s':>9}{'cand/s':>10}"
          f"{'scan s':>9}{'speed-up':>10}{'bound s':>9}{'bound':>9}  (CPU)")
    daily = []
    gc.collect()
    for n in range(args.days):
        today = TODAY + dt.timedelta(days=n)
        t = time.process_time()
        scan_actions = sum(len(runner.plan_customer(c, today)) for c in sample)  # reads the morning's history
        scan_s = (time.process_time() - t) * customers / len(sample)
        t0 = time.process_time()
        # Select: the invoices whose stored date has come, grouped by customer.
        by_customer: dict[int, list[int]] = defaultdict(list)
        n_candidates = 0
        for d in sorted(d for d in buckets if d <= today.toordinal()):
            for i in buckets.pop(d):
                by_customer[book.customer_of(i)].append(i)
                n_candidates += 1
        selected = time.process_time() - t0
        # Plan each of their customers, and store the new dates (plan and re-index in one pass).
        acts = 0
        bound_s, bound_acts = 0.0, 0
        tomorrow = (today + dt.timedelta(days=1)).toordinal()
        for c in sorted(by_customer):
            paused = time.process_time()  # the bound's own measurement is not part of the run
            b_s, b_acts = runner.bound_customer(c, today, by_customer[c])
            bound_s, bound_acts = bound_s + b_s, bound_acts + b_acts
            t0 += time.process_time() - paused
            n_actions, nads = runner.run_customer(c, today, by_customer[c])
            acts += n_actions
            for i, nad in nads:
                if nad is not None:
                    buckets[max(nad, tomorrow)].append(i)
        # An invoice an action named without it being selected (a statement) may now sit in two
        # buckets (its old, later one too): a spare early entry only costs one evaluation, never a
        # missed action.
        spent = time.process_time() - t0
        if bound_acts != acts:
            raise SystemExit(f"{today}: the bound planned {bound_acts} actions, the run {acts}: not the same work")
        bound = selected + bound_s
        daily.append((today, n_candidates, len(by_customer), acts, spent, scan_s, scan_actions, bound))
        print(f"{today.isoformat():<12}{fmt(n_candidates):>12}{fmt(len(by_customer)):>11}{fmt(acts):>9}"
              f"{spent:>9.2f}{fmt(n_candidates / spent if spent else 0):>10}{scan_s:>9.2f}{scan_s / spent:>9.1f}x"
              f"{bound:>9.2f}{scan_s / bound:>8.1f}x")

    first_day = daily[0]
    day_total = first_day[4]
    avg_total = sum(d[4] for d in daily) / len(daily)
    full_scan_s = first_day[5]
    avg_scan_s = sum(d[5] for d in daily) / len(daily)
    scan_rate = book.n / full_scan_s
    scan_actions = first_day[6]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t_total = time.process_time() - t_all
    print()
    print("=" * 72)
    print("SUMMARY (measured on this machine, CPU seconds of this process; no time is asserted)")
    print(f"  invoices / customers / companies     {fmt(book.n)} / {fmt(customers)} / {COMPANIES}")
    print(f"  index build (next_action_date)       {t_index:.2f} s  ({book.n / t_index:,.0f} invoices/s)")
    print(f"  daily run, first day                 {day_total:.2f} s  for {fmt(first_day[1])} candidates "
          f"({first_day[1] / book.n:.1%} of invoices), {fmt(first_day[3])} actions")
    print(f"  daily run, average of {len(daily)} days          {avg_total:.2f} s  (plan + re-index)")
    print(f"  daily run throughput                 {book.n / day_total:,.0f} invoices/s covered "
          f"({first_day[1] / day_total:,.0f} candidate invoices/s planned and re-indexed)")
    label = "measured" if measured else f"extrapolated from {fmt(len(sample))} sampled customers"
    print(f"  full scan, every invoice             {full_scan_s:.2f} s first day, {avg_scan_s:.2f} s average "
          f"({scan_rate:,.0f} invoices/s; {label})")
    per_candidate = sum(d[4] for d in daily) / sum(d[1] for d in daily) * 1e6
    print(f"  cost per candidate / per scanned     {per_candidate:.0f} µs / {1e6 / scan_rate:.0f} µs "
          "(a candidate is planned, recorded and re-indexed; most scanned invoices have nothing due)")
    # A customer is the unit that is loaded and planned (statements, the minimum gap, promises need
    # all of its invoices): the speed-up is (customers / candidate customers) x (scanned customer's
    # cost / candidate customer's cost).
    per_customer_scan = PER_CUSTOMER * 1e6 / scan_rate
    print(f"  candidate customers, first day       {fmt(first_day[2])} of {fmt(customers)} ({first_day[2] / customers:.1%}); "
          f"{day_total / first_day[2] * 1e6:.0f} µs each vs {per_customer_scan:.0f} µs per scanned customer")
    print(f"  days run                             {len(daily)} "
          f"({', '.join(f'{d[1] / d[4]:,.0f}' for d in daily)} candidates/s: the cost follows the candidates)")
    print(f"  speed-up of the indexed daily run    {full_scan_s / day_total:.1f}x (first day), "
          f"{avg_scan_s / avg_total:.1f}x (average of {len(daily)} days, each against that morning's scan)")
    week = (6 * avg_total + avg_scan_s) / 7
    print(f"  the product's average day            {week:.2f} s  (indexed runs, and a full plan every 7 days as "
          f"dispatch does: {avg_scan_s / week:.1f}x less than a full plan daily)")
    # The ceiling: even if a candidate customer cost no more than a scanned one, a run that plans
    # customers cannot beat customers ÷ candidate customers over the same days.
    ceiling = customers * len(daily) / sum(d[2] for d in daily)
    invoice_ceiling = book.n * len(daily) / sum(d[1] for d in daily)
    print(f"  ceiling at equal cost                {ceiling:.1f}x over the {len(daily)} days "
          f"(customers x days / candidate customers; {first_day[2] and customers / first_day[2]:.1f}x on the first day); "
          f"{invoice_ceiling:.1f}x if invoices, not customers, were planned")
    bound_first, bound_avg = daily[0][7], sum(d[7] for d in daily) / len(daily)
    print(f"  bound: next dates for free           {full_scan_s / bound_first:.1f}x (first day), "
          f"{avg_scan_s / bound_avg:.1f}x (average of {len(daily)} days): selection, then only the selected invoices "
          f"read, planned and recorded, no next-action date ({bound_avg * 1e6 / (sum(d[1] for d in daily) / len(daily)):.0f} µs "
          "a candidate)")
    share = sum(d[1] for d in daily) / len(daily) / book.n
    print(f"  expected speed-up bound              1 / (share due {share:.1%} x cost ratio "
          f"{per_candidate * scan_rate / 1e6:.1f}) = {1 / (share * per_candidate * scan_rate / 1e6):.1f}x "
          "(fewer steps or fees per invoice → larger)")
    print(f"  actions in the first day's scan sample {fmt(scan_actions)} "
          f"(the indexed run finds the same ones: it only skips invoices with nothing due)")
    print(f"  peak resident memory                   {peak / 2**20:.0f} MiB")
    print(f"  total CPU / wall time of this run    {t_total:.2f} s / {time.perf_counter() - wall_all:.2f} s")
    print("=" * 72)


if __name__ == "__main__":
    main()
