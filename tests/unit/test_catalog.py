import json

import pytest

from rules.catalog import DEFAULT_CATALOG, ProductKind, kind_of
from rules.errors import UnknownProductKind
from rules.money import Money


def test_default_catalog_sells_the_four_design_kinds():
    assert set(DEFAULT_CATALOG) == {"domain", "mailbox", "hosting", "certificate"}
    assert all(entry.kind == key for key, entry in DEFAULT_CATALOG.items())


@pytest.mark.parametrize(
    ("kind", "yearly", "restore"),
    [
        ("domain", 1500, 8000),
        ("mailbox", 2400, 2400),
        ("hosting", 6000, 6000),
        ("certificate", 5000, 5000),
    ],
)
def test_default_prices(kind, yearly, restore):
    entry = DEFAULT_CATALOG[kind]

    assert entry.yearly_price == Money.eur(yearly)
    assert entry.restore_fee == Money.eur(restore)


def test_default_lifecycle_periods_follow_the_design():
    domain = DEFAULT_CATALOG["domain"]

    assert (domain.grace_days, domain.redemption_days, domain.pending_delete_days) == (30, 30, 5)
    assert (domain.min_years, domain.max_years, domain.max_years_ahead) == (1, 10, 10)
    assert domain.autorenew_days_before == (31, 15, 1)
    assert domain.reminder_days_before == (30, 7, 1)


def test_to_dict_is_json_ready_with_money_as_objects():
    data = DEFAULT_CATALOG["domain"].to_dict()

    assert json.loads(json.dumps(data)) == data
    assert data["kind"] == "domain"
    assert data["yearly_price"] == {"amount": 1500, "currency": "EUR"}
    assert data["restore_fee"] == {"amount": 8000, "currency": "EUR"}
    assert data["autorenew_days_before"] == [31, 15, 1]
    assert data["grace_days"] == 30


def test_kind_of_finds_a_known_kind():
    assert kind_of(DEFAULT_CATALOG, "hosting") is DEFAULT_CATALOG["hosting"]


def test_unknown_kind_lists_the_valid_kinds():
    with pytest.raises(UnknownProductKind) as caught:
        kind_of(DEFAULT_CATALOG, "boat")

    assert "'boat'" in caught.value.message
    assert "certificate, domain, hosting, mailbox" in caught.value.message


def test_kind_of_reads_a_changed_catalog():
    custom = {"vps": ProductKind("vps", Money.eur(9900), Money.eur(0), grace_days=7)}

    assert kind_of(custom, "vps").grace_days == 7
    with pytest.raises(UnknownProductKind):
        kind_of(custom, "domain")


@pytest.mark.parametrize(
    "changes",
    [
        {"restore_fee": Money(100, "USD")},
        {"yearly_price": Money.eur(-1)},
        {"grace_days": -1},
        {"min_years": 0},
        {"min_years": 5, "max_years": 4},
        {"max_years": 11},
        {"autorenew_days_before": (31, 0)},
    ],
)
def test_inconsistent_catalog_entry_is_refused(changes):
    fields = {"kind": "x", "yearly_price": Money.eur(100), "restore_fee": Money.eur(100)}

    with pytest.raises(ValueError):
        ProductKind(**(fields | changes))


def test_each_currency_has_its_own_price_list_for_the_same_kinds():
    from rules.catalog import CATALOGS, catalog_for

    assert set(CATALOGS) == {"EUR", "USD", "GBP"}
    for currency, kinds in CATALOGS.items():
        assert set(kinds) == set(DEFAULT_CATALOG)
        assert {k.yearly_price.currency for k in kinds.values()} == {currency}
    assert catalog_for("USD")["domain"].yearly_price == Money(1700, "USD")


def test_a_currency_without_a_price_list_is_refused_with_the_accepted_ones():
    from rules.catalog import catalog_for
    from rules.errors import UnknownCurrency

    with pytest.raises(UnknownCurrency) as refused:
        catalog_for("JPY")

    assert refused.value.code == "unknown_currency"
    assert "EUR, GBP, USD" in refused.value.message


def test_the_price_list_prices_exactly_the_kinds_sold_in_every_currency():
    from rules.catalog import CATALOGS, Kind

    for kinds in CATALOGS.values():
        assert sorted(kinds) == sorted(Kind)
