from dataclasses import FrozenInstanceError
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.errors import CurrencyMismatch, InvalidMoney
from rules.money import Money, total

amounts = st.integers(min_value=-(10**12), max_value=10**12)
euros = amounts.map(Money.eur)
percents = st.integers(min_value=0, max_value=100)


@pytest.mark.parametrize("amount", [1.0, 1.5, True, False, "100", None, Decimal("1")])
def test_amount_that_is_not_an_int_is_rejected(amount):
    with pytest.raises(InvalidMoney, match="integer"):
        Money(amount, "EUR")


@pytest.mark.parametrize("currency", ["eur", "EU", "EURO", "ÉUR", "E1R", "", None, 978])
def test_currency_that_is_not_three_uppercase_letters_is_rejected(currency):
    with pytest.raises(InvalidMoney, match="three uppercase letters"):
        Money(100, currency)


def test_invalid_money_is_a_422_with_its_code():
    with pytest.raises(InvalidMoney) as caught:
        Money(1.5, "EUR")

    assert caught.value.code == "invalid_money"


def test_eur_and_zero_build_expected_values():
    assert Money.eur(1500) == Money(1500, "EUR")
    assert Money.zero() == Money(0, "EUR")
    assert Money.zero("USD") == Money(0, "USD")


def test_money_is_immutable():
    money = Money.eur(100)

    with pytest.raises(FrozenInstanceError):
        money.amount = 200  # type: ignore[misc]


def test_equal_amounts_in_different_currencies_are_not_equal():
    assert Money(100, "EUR") != Money(100, "USD")
    assert len({Money.eur(100), Money.eur(100), Money(100, "USD")}) == 2


def test_add_and_subtract_in_one_currency():
    assert Money.eur(1500) + Money.eur(250) == Money.eur(1750)
    assert Money.eur(1500) - Money.eur(2000) == Money.eur(-500)


@pytest.mark.parametrize("operation", ["add", "sub", "lt", "le", "gt", "ge"])
def test_mixing_currencies_raises_currency_mismatch(operation):
    euros, dollars = Money.eur(100), Money(100, "USD")

    with pytest.raises(CurrencyMismatch, match="EUR.*USD"):
        getattr(euros, f"__{operation}__")(dollars)


def test_adding_a_plain_number_is_a_type_error():
    with pytest.raises(TypeError):
        Money.eur(100) + 1  # type: ignore[operator]


def test_negation_flips_the_sign():
    assert -Money.eur(300) == Money.eur(-300)


def test_multiplying_by_an_int_works_on_both_sides():
    assert Money.eur(1500) * 3 == Money.eur(4500)
    assert 3 * Money.eur(1500) == Money.eur(4500)


@pytest.mark.parametrize("factor", [1.5, 2.0, True, Decimal(2)])
def test_multiplying_by_a_non_int_is_rejected(factor):
    with pytest.raises(InvalidMoney):
        Money.eur(100) * factor


def test_comparisons_order_by_amount():
    small, big = Money.eur(100), Money.eur(200)

    assert small < big and small <= big and small <= Money.eur(100)
    assert big > small and big >= small and big >= Money.eur(200)
    assert not big < small


def test_is_negative_only_below_zero():
    assert Money.eur(-1).is_negative()
    assert not Money.eur(0).is_negative()
    assert not Money.eur(1).is_negative()


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        (1500, 10, 1350),
        (5, 10, 5),  # 4.5 rounds up
        (4, 10, 4),  # 3.6
        (14, 35, 9),  # 9.1
        (3, 50, 2),  # 1.5 rounds up
        (1, 50, 1),  # 0.5 rounds up
        (-3, 50, -2),  # a refund mirrors the charge
        (999, 0, 999),
        (999, 100, 0),
    ],
)
def test_discounted_rounds_half_up(amount, percent, expected):
    assert Money.eur(amount).discounted(percent) == Money.eur(expected)


@pytest.mark.parametrize("percent", [-1, 101, 10.0, True, "10"])
def test_discount_outside_0_to_100_percent_is_rejected(percent):
    with pytest.raises(InvalidMoney, match="percent"):
        Money.eur(100).discounted(percent)


@given(amounts, percents)
def test_discounted_matches_decimal_round_half_up(amount, percent):
    exact = Decimal(amount) * (100 - percent) / 100

    result = Money.eur(amount).discounted(percent)

    assert result.amount == int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@given(st.integers(min_value=0, max_value=10**12), percents)
def test_discounted_never_exceeds_the_original_nor_goes_negative(amount, percent):
    result = Money.eur(amount).discounted(percent)

    assert Money.eur(0) <= result <= Money.eur(amount)


@given(st.integers(min_value=0, max_value=10**12), percents, percents)
def test_bigger_discount_never_costs_more(amount, first, second):
    low, high = sorted((first, second))

    assert Money.eur(amount).discounted(high) <= Money.eur(amount).discounted(low)


@given(euros, euros, euros)
def test_addition_is_commutative_and_associative(a, b, c):
    assert a + b == b + a
    assert (a + b) + c == a + (b + c)


@given(euros, euros)
def test_subtraction_undoes_addition(a, b):
    assert a + b - b == a
    assert a - b == a + (-b)


@given(euros, st.integers(min_value=-1000, max_value=1000))
def test_multiplication_is_repeated_addition(money, factor):
    assert (money * factor).amount == money.amount * factor


@given(st.lists(amounts, max_size=20))
def test_total_is_the_sum_of_amounts(values):
    assert total([Money.eur(v) for v in values], "EUR") == Money.eur(sum(values))


def test_total_of_nothing_is_zero_in_that_currency():
    assert total([], "USD") == Money(0, "USD")


def test_total_refuses_a_foreign_item():
    with pytest.raises(CurrencyMismatch):
        total([Money.eur(1), Money(1, "USD")], "EUR")


def test_to_dict_is_the_api_shape():
    assert Money.eur(1500).to_dict() == {"amount": 1500, "currency": "EUR"}


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money.eur(1200), "12.00 EUR"),
        (Money.eur(5), "0.05 EUR"),
        (Money.eur(-1234), "-12.34 EUR"),
        (Money(500, "JPY"), "500 JPY"),
        (Money(12345, "KWD"), "12.345 KWD"),
    ],
)
def test_str_shows_major_units_for_messages(money, text):
    assert str(money) == text
