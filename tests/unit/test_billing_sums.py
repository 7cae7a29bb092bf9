"""Running balances, statement totals and the low-balance crossing, without I/O."""

from datetime import UTC, datetime

import pytest

from rules import billing
from rules.errors import CreditLimitExceeded, InvalidMonth, SettlementExceedsOwed
from rules.ledger import check_credit, check_settlement, settle
from rules.money import Money


def line(book, amount, kind, product_kind=None, client_id=None):
    return {"book": book, "amount": amount, "kind": kind, "product_kind": product_kind, "client_id": client_id}


def test_running_position_follows_prepaid_and_invoice_lines():
    lines = [
        line("prepaid", 5000, "topup"),
        line("prepaid", -1500, "purchase"),
        line("invoice", -2400, "purchase"),
        line("invoice", 1000, "settlement"),
    ]

    after = [position for _, position in billing.running(billing.Position(), lines)]

    assert after == [
        billing.Position(5000, 0),
        billing.Position(3500, 0),
        billing.Position(3500, 2400),
        billing.Position(3500, 1400),
    ]


def test_statement_totals_per_kind_and_per_client():
    lines = [
        line("prepaid", 10000, "topup"),
        line("prepaid", -1500, "purchase", "domain", "cli_1"),
        line("prepaid", -1500, "renewal", "domain", "cli_1"),
        line("prepaid", -8000, "restore_fee", "domain", "cli_1"),
        line("invoice", -2400, "purchase", "mailbox", None),
        line("invoice", 400, "settlement"),
    ]

    made = billing.statement("EUR", billing.Position(100, 0), lines).to_dict({"cli_1": "Client One"})

    assert {t["kind"]: t["total"]["amount"] for t in made["totals"]} == {
        "topup": 10000,
        "purchase": 3900,
        "renewal": 1500,
        "restore_fee": 8000,
        "settlement": 400,
    }
    clients = {c["client_id"]: c for c in made["clients"]}
    assert clients["cli_1"]["name"] == "Client One"
    assert clients["cli_1"]["total"]["amount"] == 11000
    assert {t["kind"]: t["total"]["amount"] for t in clients[None]["totals"]} == {"mailbox.purchase": 2400}
    assert made["closing"] == {
        "balance": {"amount": 100 + 10000 - 11000, "currency": "EUR"},
        "owed": {"amount": 2000, "currency": "EUR"},
    }


@pytest.mark.parametrize("text", ["2027-13", "2027-1", "27-01", "", "2027-01-01", "1900-01"])
def test_a_bad_month_is_refused(text):
    with pytest.raises(InvalidMonth):
        billing.month_bounds(text)


def test_december_ends_at_the_next_new_year():
    assert billing.month_bounds("2027-12") == (datetime(2027, 12, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC))


def test_crossing_is_reported_once_per_dip():
    floor = Money.eur(1000)

    assert billing.crossing(Money.eur(999), floor, was_below=False) is True
    assert billing.crossing(Money.eur(10), floor, was_below=True) is None
    assert billing.crossing(Money.eur(1000), floor, was_below=True) is False
    assert billing.crossing(Money.eur(5000), floor, was_below=False) is None


def test_the_floor_is_the_larger_of_threshold_and_forecast():
    assert billing.low_balance_floor(Money.eur(500), Money.eur(3000)) == Money.eur(3000)
    assert billing.low_balance_floor(Money.eur(5000), Money.eur(3000)) == Money.eur(5000)


def test_an_invoice_charge_may_reach_the_limit_but_not_pass_it():
    check_credit(Money.eur(400), Money.eur(1000), Money.eur(600))

    with pytest.raises(CreditLimitExceeded):
        check_credit(Money.eur(400), Money.eur(1000), Money.eur(601))
    with pytest.raises(CreditLimitExceeded):
        check_credit(Money.eur(0), Money.eur(0), Money.eur(1))


def test_a_settlement_cannot_exceed_what_is_owed():
    check_settlement(Money.eur(400), Money.eur(400))
    with pytest.raises(SettlementExceedsOwed):
        check_settlement(Money.eur(400), Money.eur(401))


def test_a_settlement_moves_the_receivable_against_cash():
    entries = settle("org_1", Money.eur(300))

    assert [(e.book, e.amount.amount, e.kind) for e in entries] == [
        ("invoice", 300, "settlement"),
        ("cash", -300, "settlement"),
    ]


def test_a_reseller_client_s_product_is_paid_by_the_reseller_any_other_by_its_organization():
    from rules.billing import payer_of

    assert payer_of("org_r", "org_r") == "org_r"
    assert payer_of("org_a", None) == "org_a"
