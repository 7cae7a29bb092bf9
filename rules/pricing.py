"""Volume tiers and the price of a term."""

from __future__ import annotations

from dataclasses import dataclass

from rules.money import Money


@dataclass(frozen=True)
class Tier:
    """A discount that applies from a 12-month volume threshold up."""

    name: str
    threshold: Money
    discount_percent: int


DEFAULT_TIERS: tuple[Tier, ...] = (
    Tier("A", Money.eur(0), 0),
    Tier("B", Money.eur(250_000), 10),
    Tier("C", Money.eur(1_000_000), 20),
    Tier("D", Money.eur(5_000_000), 35),
    Tier("E", Money.eur(25_000_000), 50),
)


def _ascending(grid: tuple[Tier, ...]) -> list[Tier]:
    if not grid:
        raise ValueError("a tier grid needs at least one tier")
    return sorted(grid, key=lambda tier: tier.threshold.amount)


def tier_for(volume: Money, grid: tuple[Tier, ...] = DEFAULT_TIERS) -> Tier:
    """The highest tier whose threshold `volume` reaches."""
    tiers = _ascending(grid)
    # Refunds can push a volume below the first threshold; it still gets the base tier.
    reached = tiers[0]
    for tier in tiers:
        if volume >= tier.threshold:
            reached = tier
    return reached


def next_tier(volume: Money, grid: tuple[Tier, ...] = DEFAULT_TIERS) -> Tier | None:
    """The first tier above `volume`, or None at the top."""
    for tier in _ascending(grid):
        if volume < tier.threshold:
            return tier
    return None


def price(yearly: Money, years: int, tier: Tier) -> Money:
    """`years` at the `yearly` price, less the tier's discount."""
    return (yearly * years).discounted(tier.discount_percent)
