import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.errors import LastOwner
from rules.membership import check_leave, check_removal

ids = st.sampled_from(["a", "b", "c", "d"])


def test_last_owner_cannot_be_removed_from_the_owner_team():
    with pytest.raises(LastOwner, match="add another owner first") as caught:
        check_removal(frozenset({"alice"}), "alice", team_is_owner=True)

    assert caught.value.code == "last_owner"


def test_one_of_two_owners_can_be_removed():
    check_removal(frozenset({"alice", "bob"}), "alice", team_is_owner=True)


def test_sole_owner_can_be_removed_from_another_team():
    check_removal(frozenset({"alice"}), "alice", team_is_owner=False)


def test_removing_someone_who_is_not_an_owner_keeps_the_owner():
    check_removal(frozenset({"alice"}), "bob", team_is_owner=True)


def test_last_owner_cannot_leave():
    with pytest.raises(LastOwner, match="add another owner first"):
        check_leave(frozenset({"alice"}), "alice")


def test_owner_can_leave_when_another_owner_remains():
    check_leave(frozenset({"alice", "bob"}), "alice")


def test_member_who_is_not_an_owner_can_leave():
    check_leave(frozenset({"alice"}), "carol")


@given(st.frozensets(ids), ids, st.booleans())
def test_removal_is_refused_exactly_when_no_owner_would_remain(owners, account, owner_team):
    leaves_none = owner_team and owners - {account} == frozenset() and account in owners

    try:
        check_removal(owners, account, owner_team)
        refused = False
    except LastOwner:
        refused = True

    assert refused == leaves_none


@given(st.frozensets(ids), ids)
def test_leaving_is_refused_exactly_when_no_owner_would_remain(owners, account):
    leaves_none = account in owners and len(owners) == 1

    try:
        check_leave(owners, account)
        refused = False
    except LastOwner:
        refused = True

    assert refused == leaves_none


def test_a_manager_cannot_grant_a_permission_they_do_not_hold():
    import pytest

    from rules.errors import PermissionDenied
    from rules.membership import check_grant

    check_grant(frozenset({"org:manage", "product:view"}), frozenset({"product:view"}))
    with pytest.raises(PermissionDenied, match="billing:manage"):
        check_grant(frozenset({"org:manage"}), frozenset({"billing:manage"}))


def test_only_owners_change_the_owner_team():
    import pytest

    from rules.errors import PermissionDenied
    from rules.membership import check_owner_team_change

    check_owner_team_change(caller_is_owner=True, team_is_owner=True)
    check_owner_team_change(caller_is_owner=False, team_is_owner=False)
    with pytest.raises(PermissionDenied):
        check_owner_team_change(caller_is_owner=False, team_is_owner=True)
