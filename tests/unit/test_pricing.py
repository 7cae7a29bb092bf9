import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.errors import CurrencyMismatch, UnknownCurrency
from rules.money import Money
from rules.pricing import DEFAULT_TIERS, Tier, next_tier, price, tier_for

volumes = st.integers(min_value=0, max_value=10**10).map(Money.eur)


def tier(name):
    return next(t for t in DEFAULT_TIERS if t.name == name)


def test_default_grid_follows_the_design():
    assert [(t.name, t.threshold.amount, t.discount_percent) for t in DEFAULT_TIERS] == [
        ("A", 0, 0),
        ("B", 250_000, 10),
        ("C", 1_000_000, 20),
        ("D", 5_000_000, 35),
        ("E", 25_000_000, 50),
    ]


@pytest.mark.parametrize(
    ("volume", "name"),
    [
        (0, "A"),
        (249_999, "A"),
        (250_000, "B"),
        (999_999, "B"),
        (1_000_000, "C"),
        (12_000_00, "C"),
        (4_999_999, "C"),
        (5_000_000, "D"),
        (25_000_000, "E"),
        (10**12, "E"),
    ],
)
def test_tier_starts_exactly_at_its_threshold(volume, name):
    assert tier_for(Money.eur(volume)).name == name


def test_volume_below_zero_after_refunds_stays_in_the_base_tier():
    assert tier_for(Money.eur(-500)).name == "A"


def test_volume_against_a_grid_in_another_currency_is_refused():
    with pytest.raises(CurrencyMismatch):
        tier_for(Money(300_000, "USD"), DEFAULT_TIERS)


def test_each_currency_has_its_own_thresholds():
    assert tier_for(Money(260_000, "EUR")).name == "B"
    assert tier_for(Money(260_000, "USD")).name == "A"  # USD's B starts at 2,750.00
    assert tier_for(Money(220_000, "GBP")).name == "B"  # GBP's at 2,150.00
    assert next_tier(Money(0, "USD")).threshold == Money(275_000, "USD")


def test_a_volume_in_a_currency_without_a_grid_is_refused():
    with pytest.raises(UnknownCurrency) as refused:
        tier_for(Money(1, "CHF"))

    assert "EUR, GBP, USD" in refused.value.message


def test_next_tier_is_the_one_above():
    assert next_tier(Money.eur(0)).name == "B"
    assert next_tier(Money.eur(250_000)).name == "C"
    assert next_tier(Money.eur(24_999_999)).name == "E"


def test_top_tier_has_no_next_tier():
    assert next_tier(Money.eur(25_000_000)) is None


def test_a_custom_grid_need_not_be_sorted():
    grid = (Tier("gold", Money.eur(100), 30), Tier("base", Money.eur(0), 0))

    assert tier_for(Money.eur(99), grid).name == "base"
    assert tier_for(Money.eur(100), grid).name == "gold"
    assert next_tier(Money.eur(5), grid).name == "gold"


def test_an_empty_grid_is_refused():
    with pytest.raises(ValueError):
        tier_for(Money.eur(0), ())


def test_price_is_yearly_times_years_less_the_discount():
    assert price(Money.eur(1500), 3, tier("A")) == Money.eur(4500)
    assert price(Money.eur(1500), 3, tier("B")) == Money.eur(4050)
    assert price(Money.eur(2400), 1, tier("D")) == Money.eur(1560)
    assert price(Money.eur(1500), 10, tier("E")) == Money.eur(7500)


def test_price_rounds_half_up_to_the_cent():
    # 333 * 0.65 = 216.45 cents
    assert price(Money.eur(333), 1, tier("D")) == Money.eur(216)
    # 3 * 0.5 = 1.5 cents
    assert price(Money.eur(3), 1, tier("E")) == Money.eur(2)


@given(volumes, volumes)
def test_more_volume_never_means_a_lower_tier(first, second):
    low, high = sorted((first, second))

    assert tier_for(low).discount_percent <= tier_for(high).discount_percent
    assert tier_for(low).threshold <= tier_for(high).threshold


@given(volumes, volumes, st.integers(min_value=0, max_value=10**6), st.integers(1, 10))
def test_more_volume_never_means_a_higher_price(first, second, yearly, years):
    low, high = sorted((first, second))

    assert price(Money.eur(yearly), years, tier_for(high)) <= price(Money.eur(yearly), years, tier_for(low))


@given(volumes)
def test_the_tier_reached_is_at_or_below_volume_and_the_next_is_above(volume):
    reached, upcoming = tier_for(volume), next_tier(volume)

    assert reached.threshold <= volume
    if upcoming is None:
        assert reached.name == "E"
    else:
        assert volume < upcoming.threshold
        assert tier_for(upcoming.threshold) == upcoming


@given(st.integers(min_value=0, max_value=10**6), st.integers(1, 10), volumes)
def test_price_is_between_half_and_full_list_price(yearly, years, volume):
    full = Money.eur(yearly) * years

    result = price(Money.eur(yearly), years, tier_for(volume))

    assert full.discounted(50) <= result <= full
