"""Team membership rules: an organization always keeps an owner."""

from __future__ import annotations

from rules.errors import LastOwner


def _is_sole_owner(owner_ids: frozenset[str], account_id: str) -> bool:
    return owner_ids == frozenset({account_id})


def check_removal(owner_ids: frozenset[str], account_id: str, team_is_owner: bool) -> None:
    """LastOwner if removing `account_id` from the Owner team leaves it empty."""
    if team_is_owner and _is_sole_owner(owner_ids, account_id):
        raise LastOwner(
            "the organization would be left without an owner; " "add another owner first"
        )


def check_leave(owner_ids: frozenset[str], account_id: str) -> None:
    """LastOwner if `account_id` leaving would leave the organization ownerless."""
    if _is_sole_owner(owner_ids, account_id):
        raise LastOwner(
            "you are the only owner, so the organization would be left without "
            "an owner; add another owner first"
        )
