import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.errors import InsufficientFunds, InvalidMoney, UnknownPaymentMethod
from rules.ledger import Entry, balances, book_balance, charge, check_funds, topup
from rules.money import Money


def test_topup_credits_prepaid_and_balances_against_cash():
    entries = topup("org_1", Money.eur(5000))

    assert Entry("prepaid", "org_1", Money.eur(5000)) in entries
    assert [e.amount for e in entries if e.book == "cash"] == [Money.eur(-5000)]
    assert balances(entries) == {"EUR": Money.eur(0)}


@pytest.mark.parametrize("amount", [0, -100])
def test_topup_of_nothing_or_less_is_refused(amount):
    with pytest.raises(InvalidMoney, match="positive"):
        topup("org_1", Money.eur(amount))


def test_prepaid_charge_debits_the_payers_balance():
    entries = charge("org_1", Money.eur(1500), "prepaid")

    assert sorted((e.book, e.organization_id, e.amount.amount) for e in entries) == [
        ("prepaid", "org_1", -1500),
        ("revenue", "org_1", 1500),
    ]


def test_invoice_charge_records_debt_owed_by_the_payer():
    entries = charge("org_1", Money.eur(1500), "invoice")

    assert sorted((e.book, e.organization_id, e.amount.amount) for e in entries) == [
        ("invoice", "org_1", -1500),
        ("revenue", "org_1", 1500),
    ]


def test_charge_with_an_unknown_method_is_refused():
    with pytest.raises(UnknownPaymentMethod):
        charge("org_1", Money.eur(1500), "card")


def test_negative_charge_is_refused():
    with pytest.raises(InvalidMoney):
        charge("org_1", Money.eur(-1), "prepaid")


def test_prepaid_balance_after_topup_and_charge():
    entries = topup("org_1", Money.eur(5000)) + charge("org_1", Money.eur(1500), "prepaid")

    assert book_balance(entries, "prepaid", "org_1", "EUR") == Money.eur(3500)
    assert book_balance(entries, "prepaid", "org_2", "EUR") == Money.eur(0)


def test_entry_in_an_unknown_book_is_refused():
    with pytest.raises(ValueError):
        Entry("petty-cash", None, Money.eur(1))


def test_enough_funds_pass_the_check():
    check_funds(Money.eur(1500), Money.eur(1500))
    check_funds(Money.eur(2000), Money.eur(1500))


def test_insufficient_funds_names_balance_and_price():
    with pytest.raises(InsufficientFunds) as caught:
        check_funds(Money.eur(1200), Money.eur(1500))

    assert "12.00 EUR" in caught.value.message
    assert "15.00 EUR" in caught.value.message
    assert "3.00 EUR" in caught.value.message


def test_balances_are_kept_per_currency():
    entries = [
        Entry("cash", None, Money.eur(-100)),
        Entry("prepaid", "o", Money.eur(100)),
        Entry("cash", None, Money(-7, "USD")),
    ]

    assert balances(entries) == {"EUR": Money.eur(0), "USD": Money(-7, "USD")}


operations = st.lists(
    st.tuples(
        st.sampled_from(["topup", "prepaid", "invoice"]),
        st.sampled_from(["org_1", "org_2"]),
        st.integers(min_value=1, max_value=10**9),
        st.sampled_from(["EUR", "USD"]),
    ),
    max_size=30,
)


@given(operations)
def test_any_sequence_of_operations_keeps_the_ledger_balanced(ops):
    entries = []
    for kind, org, amount, currency in ops:
        money = Money(amount, currency)
        entries += topup(org, money) if kind == "topup" else charge(org, money, kind)

    assert all(total.amount == 0 for total in balances(entries).values())


@given(operations)
def test_revenue_per_payer_is_what_they_were_charged(ops):
    entries, charged = [], 0
    for kind, org, amount, _ in ops:
        money = Money.eur(amount)
        entries += topup(org, money) if kind == "topup" else charge(org, money, kind)
        if kind != "topup" and org == "org_1":
            charged += amount

    assert book_balance(entries, "revenue", "org_1", "EUR") == Money.eur(charged)
