"""The price list (rules/price_list.toml): data, read once when rules are imported.

It is package data, like a table of constants: the catalog and the tier grids are built from
it (rules.catalog, rules.pricing), and tests may pass other parsed lists to `parse`."""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Any


def parse(text: str) -> dict[str, dict[str, Any]]:
    """Currency -> {"kinds": {kind: {yearly_price, restore_fee}}, "tiers": [...]}; checked shape."""
    data = tomllib.loads(text)
    for currency, entry in data.items():
        if not (len(currency) == 3 and currency.isupper() and currency.isalpha()):
            raise ValueError(f"price list: {currency!r} is not a currency code such as EUR")
        if not entry.get("kinds") or not entry.get("tiers"):
            raise ValueError(f"price list: {currency} needs both `kinds` and `tiers`")
    return data


PRICE_LIST: dict[str, dict[str, Any]] = parse(
    resources.files("rules").joinpath("price_list.toml").read_text(encoding="utf-8")
)
CURRENCIES: frozenset[str] = frozenset(PRICE_LIST)
