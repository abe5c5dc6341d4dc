"""Which rows of a run go out as one message: the statements due to one address of a parent and the
jobs billed with it (``dispatch.run.one_message_per_address``). Pure: rows and customers in memory."""

from __future__ import annotations

from qbo_collector.db import models
from qbo_collector.dispatch.run import one_message_per_address, told_apart

_ids = iter(range(1, 1000))


def _row(customer: str, *, channel: str = "email", template: str = "statement", kind: str = "reminder") -> models.Outbox:
    return models.Outbox(id=next(_ids), kind=kind, channel=channel, customer_qbo_id=customer, template_key=template,
                         invoice_ids=[f"inv-{customer}"])


def _customers() -> dict[str, models.Customer]:
    """H, the parent, reached at its own address; E and O billed with it (reached at H's); B another client."""
    parent = models.Customer(qbo_id="H", display_name="Hartley")
    other = models.Customer(qbo_id="B", display_name="Birch")
    return {"H": parent, "E": parent, "O": parent, "B": other}


def _shape(groups) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return [[f"{r.customer_qbo_id}/{r.channel}/{r.template_key}" for r, _ in g] for g in groups]


def test_the_statements_of_a_parent_and_its_jobs_at_one_address_are_one_message_led_by_the_parents() -> None:
    go = [(_row("E"), "ap@h.example"), (_row("H"), "ap@h.example"), (_row("O"), "ap@h.example")]
    assert _shape(one_message_per_address(go, _customers())) == [
        ["H/email/statement", "E/email/statement", "O/email/statement"]]


def test_without_the_parents_own_statement_the_first_job_leads() -> None:
    go = [(_row("O"), "ap@h.example"), (_row("E"), "ap@h.example")]
    assert _shape(one_message_per_address(go, _customers())) == [["O/email/statement", "E/email/statement"]]


def test_apart_other_channels_reminders_per_invoice_fees_tasks_and_other_clients_at_the_same_address() -> None:
    go = [(_row("E"), "ap@h.example"),
          (_row("O", channel="sms"), "+14155550199"),                  # a text: its own message
          (_row("H", channel="sms"), "+14155550199"),                  # ... with the parent's text
          (_row("O", template="reminder_overdue_gentle"), "ap@h.example"),  # one per invoice: alone
          (_row("H", kind="fee", channel="qbo_fee", template=None), None),
          (_row("B"), "ap@h.example"),                                  # another client, the same bookkeeper
          (_row("H"), "ap@h.example")]
    assert _shape(one_message_per_address(go, _customers())) == [
        ["H/email/statement", "E/email/statement"],
        ["H/sms/statement", "O/sms/statement"],
        ["O/email/reminder_overdue_gentle"],
        ["H/qbo_fee/None"],
        ["B/email/statement"]]


def test_a_row_whose_customer_is_gone_or_with_no_address_goes_alone() -> None:
    go = [(_row("E"), "ap@h.example"), (_row("X"), "ap@h.example"), (_row("O"), None)]
    assert _shape(one_message_per_address(go, _customers())) == [
        ["E/email/statement"], ["X/email/statement"], ["O/email/statement"]]


def test_an_address_reached_two_ways_is_two_messages() -> None:
    """The same parent reached at two address lists (the job's row read before an address change) is
    not merged: the key is the address the run resolved, so nobody gets a message meant for another list."""
    go = [(_row("E"), "ap@h.example"), (_row("O"), "ap@h.example, boss@h.example")]
    assert _shape(one_message_per_address(go, _customers())) == [["E/email/statement"], ["O/email/statement"]]


def test_the_late_fee_notices_of_a_run_are_one_per_address_and_never_mixed_with_a_statement() -> None:
    go = [(_row("H", template="late_fee_notice"), "ap@h.example"),
          (_row("H", template="late_fee_notice"), "ap@h.example"),   # a second fee of the same customer
          (_row("E"), "ap@h.example"),                                # a statement: its own message
          (_row("O", template="late_fee_notice"), "ap@h.example"),   # a unit's fee
          (_row("B", template="late_fee_notice"), "ap@h.example")]   # another client's
    assert _shape(one_message_per_address(go, _customers())) == [
        ["H/email/late_fee_notice", "H/email/late_fee_notice", "O/email/late_fee_notice"],
        ["E/email/statement"],
        ["B/email/late_fee_notice"]]


def test_the_owners_alerts_of_a_run_are_one_email_and_one_text_whatever_the_customers() -> None:
    go = [(_row("H", kind="alert", channel="owner_email", template=None), "owner@m.example"),
          (_row("E"), "ap@h.example"),
          (_row("B", kind="alert", channel="owner_email", template=None), "owner@m.example"),
          (_row("B", kind="alert", channel="owner_sms", template=None), "+15555550100"),
          (_row("X", kind="alert", channel="owner_email", template=None), "owner@m.example"),  # a customer gone
          (_row("H", kind="alert", channel="owner_sms", template=None), "+15555550100"),
          (_row("H", kind="alert", channel="owner_sms", template=None), None)]  # waits for daytime: no address
    assert _shape(one_message_per_address(go, _customers())) == [
        ["H/owner_email/None", "B/owner_email/None", "X/owner_email/None"],
        ["E/email/statement"],
        ["B/owner_sms/None", "H/owner_sms/None"],
        ["H/owner_sms/None"]]


def test_a_template_the_owner_edited_without_its_list_keeps_its_rows_apart() -> None:
    """A late-fee notice edited to name only ``invoice`` and ``fee`` would tell the first fee of a merged
    email and none of the others: its rows go out one message each, as do the owner's alerts when the
    edited alert template has no ``alerts``. An edit that keeps the list merges as before."""
    company = models.Company(settings={"templates": {
        "en": {"late_fee_notice": {"subject": "Fee", "text": "A fee of {{ fee|money }} on {{ invoice.number }}.",
                                   "html": "<p>{{ fee|money }}</p>", "sms": "Fee"},
               "statement": {"subject": "S", "text": "{% for line in invoices %}{{ line.number }}{% endfor %}",
                             "html": "", "sms": "S"}},
        "fr": {"owner_alert": {"subject": "A", "text": "{{ alert }}", "html": "<p>{{ alert }}</p>", "sms": "A"}}}})
    apart = told_apart(company)
    assert apart == {"late_fee_notice", "owner_alert"}
    go = [(_row("H", template="late_fee_notice"), "ap@h.example"), (_row("O", template="late_fee_notice"), "ap@h.example"),
          (_row("H"), "ap@h.example"), (_row("E"), "ap@h.example"),
          (_row("H", kind="alert", channel="owner_email", template=None), "owner@m.example"),
          (_row("B", kind="alert", channel="owner_email", template=None), "owner@m.example")]
    assert _shape(one_message_per_address(go, _customers(), apart)) == [
        ["H/email/late_fee_notice"], ["O/email/late_fee_notice"], ["H/email/statement", "E/email/statement"],
        ["H/owner_email/None"], ["B/owner_email/None"]]
    assert told_apart(models.Company(settings={})) == set()


def test_the_owners_most_pressing_alert_comes_first_and_leads_the_message() -> None:
    """Its subject and text name the first alert: a reconnect before a customer's reply before the late
    invoices, each kind in the order it was due."""
    def alert(customer: str, topic: str) -> tuple[models.Outbox, str]:
        row = _row(customer, kind="alert", channel="owner_email", template=None)
        row.payload = {"topic": topic}
        return row, "owner@m.example"

    go = [alert("H", "late"), alert("B", "late"), alert("E", "reply"), alert("H", "credit"), alert("O", "reconnect"),
          alert("B", "something new")]
    [group] = one_message_per_address(go, _customers())
    assert [(r.customer_qbo_id, r.payload["topic"]) for r, _ in group] == [
        ("O", "reconnect"), ("E", "reply"), ("H", "credit"), ("H", "late"), ("B", "late"), ("B", "something new")]
