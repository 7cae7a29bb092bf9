"""Volume tiers and the price of a term."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rules.errors import UnknownCurrency
from rules.money import Money
from rules.price_list import PRICE_LIST


@dataclass(frozen=True)
class Tier:
    """A discount that applies from a 12-month volume threshold up."""

    name: str
    threshold: Money
    discount_percent: int


def grids_from(price_list: Mapping[str, Any]) -> dict[str, tuple[Tier, ...]]:
    """Currency -> its tier grid, from a parsed price list (rules.price_list)."""
    return {
        currency: tuple(Tier(t["name"], Money(t["from"], currency), t["discount_percent"]) for t in entry["tiers"])
        for currency, entry in price_list.items()
    }


TIER_GRIDS: dict[str, tuple[Tier, ...]] = grids_from(PRICE_LIST)
DEFAULT_TIERS: tuple[Tier, ...] = TIER_GRIDS["EUR"]


def grid_for(currency: str) -> tuple[Tier, ...]:
    """The tiers of `currency`: thresholds are in the currency the volume is counted in."""
    try:
        return TIER_GRIDS[currency]
    except KeyError:
        raise UnknownCurrency(
            f"no tier grid in {currency!r}; accepted currencies are: {', '.join(sorted(TIER_GRIDS))}"
        ) from None


def _ascending(grid: tuple[Tier, ...]) -> list[Tier]:
    if not grid:
        raise ValueError("a tier grid needs at least one tier")
    return sorted(grid, key=lambda tier: tier.threshold.amount)


def tier_for(volume: Money, grid: tuple[Tier, ...] | None = None) -> Tier:
    """The highest tier whose threshold `volume` reaches (grid: the volume's currency's)."""
    tiers = _ascending(grid if grid is not None else grid_for(volume.currency))
    # Refunds can push a volume below the first threshold; it still gets the base tier.
    reached = tiers[0]
    for tier in tiers:
        if volume >= tier.threshold:
            reached = tier
    return reached


def next_tier(volume: Money, grid: tuple[Tier, ...] | None = None) -> Tier | None:
    """The first tier above `volume`, or None at the top."""
    for tier in _ascending(grid if grid is not None else grid_for(volume.currency)):
        if volume < tier.threshold:
            return tier
    return None


def price(yearly: Money, years: int, tier: Tier) -> Money:
    """`years` at the `yearly` price, less the tier's discount."""
    return (yearly * years).discounted(tier.discount_percent)
