"""Claims on released organizations: states and when a new token may be issued."""

from datetime import UTC, datetime, timedelta

import pytest

from rules import claims
from rules.claims import ClaimStatus
from rules.errors import AlreadyClaimed, ClientNotReleased

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_claim_is_pending_until_it_expires_then_expired():
    expires = claims.expires_at(NOW, 30)

    assert expires == NOW + timedelta(days=30)
    assert claims.status(None, expires, NOW + timedelta(days=29)) is ClaimStatus.PENDING
    assert claims.status(None, expires, expires) is ClaimStatus.EXPIRED


def test_a_claimed_claim_stays_claimed_whatever_its_expiry():
    assert claims.status(NOW, NOW - timedelta(days=1), NOW + timedelta(days=400)) is ClaimStatus.CLAIMED


@pytest.mark.parametrize("state", [ClaimStatus.PENDING, ClaimStatus.EXPIRED])
def test_an_unclaimed_release_can_get_a_new_token(state):
    claims.check_reissue("released", state)


def test_a_claimed_organization_gets_no_new_token():
    with pytest.raises(AlreadyClaimed):
        claims.check_reissue("released", ClaimStatus.CLAIMED)


@pytest.mark.parametrize(("client_status", "state"), [("active", None), ("released", None)])
def test_a_client_not_released_has_no_claim_to_reissue(client_status, state):
    with pytest.raises(ClientNotReleased):
        claims.check_reissue(client_status, state)
