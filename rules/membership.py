"""Team membership rules: an organization always keeps an owner."""

from __future__ import annotations

from rules.errors import LastOwner, PermissionDenied


def _is_sole_owner(owner_ids: frozenset[str], account_id: str) -> bool:
    return owner_ids == frozenset({account_id})


def check_removal(owner_ids: frozenset[str], account_id: str, team_is_owner: bool) -> None:
    """LastOwner if removing `account_id` from the Owner team leaves it empty."""
    if team_is_owner and _is_sole_owner(owner_ids, account_id):
        raise LastOwner("the organization would be left without an owner; add another owner first")


def check_leave(owner_ids: frozenset[str], account_id: str) -> None:
    """LastOwner if `account_id` leaving would leave the organization ownerless."""
    if _is_sole_owner(owner_ids, account_id):
        raise LastOwner(
            "you are the only owner, so the organization would be left without an owner; add another owner first"
        )


def check_grant(caller_granted: frozenset[str], team_permissions: frozenset[str]) -> None:
    """A manager hands out only what they hold: creating a team or adding someone to one
    must not give more than the caller has (no escalation through org:manage)."""
    missing = sorted(team_permissions - caller_granted)
    if missing:
        raise PermissionDenied(f"you can grant only permissions you hold; you lack {', '.join(missing)}")


def check_owner_team_change(caller_is_owner: bool, team_is_owner: bool) -> None:
    """Only owners add people to, or remove them from, the Owner team."""
    if team_is_owner and not caller_is_owner:
        raise PermissionDenied("only members of the Owner team change who is in it")
