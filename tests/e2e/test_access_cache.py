"""The access cache's revocation bound, across processes: a key revoked, or a member removed,
through one web process is refused by another `tenure web` within TENURE_AUTH_CACHE_SECONDS."""

from __future__ import annotations

import time

import httpx
import pytest
from litestar.testing import TestClient

from runtime.settings import Settings
from tests.api import builders
from tests.e2e.conftest import free_port, tenure_env, wait_for_port
from tests.ratelimits import UNLIMITED
from web.app import create_app

CACHE_S = 1.0
SLACK_S = 3.0  # a request's own time on a loaded machine


def refused_within(api: httpx.Client, path: str, headers: dict, status: int, bound_s: float) -> float:
    """Polls `path` until it answers `status`; fails past `bound_s`; answers the seconds it took."""
    start = time.monotonic()
    while True:
        answer = api.get(path, headers=headers)
        waited = time.monotonic() - start
        if answer.status_code == status:
            return waited
        assert answer.status_code == 200, answer.text
        assert waited < bound_s, f"still {answer.status_code} {waited:.1f} s after the revocation"
        time.sleep(0.05)


@pytest.fixture
def two_web_processes(database_url, redis_server, processes):
    """`tenure web` in a subprocess, and the app in this process: two processes, two caches."""
    redis = redis_server()
    port = free_port()
    env = tenure_env(database_url, redis.url, TENURE_AUTH_CACHE_SECONDS=str(CACHE_S))
    web = processes.tenure("web", "web", "--port", str(port), env=env)
    wait_for_port(port, proc=web)
    here = TestClient(
        create_app(Settings(database_url=database_url, broker_url=redis.url, auth_cache_seconds=CACHE_S, **UNLIMITED))
    )
    with here, httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as there:
        yield here, there


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_key_revoked_in_one_process_is_refused_by_another_within_the_cache_bound(two_web_processes):
    here, there = two_web_processes
    ada = builders.person(there, "Ada")
    made = there.post("/v1/me/keys", json={"name": "ci"}, headers=ada.auth).json()
    second = {"Authorization": f"Bearer {made['api_key']}"}
    assert there.get("/v1/me", headers=second).status_code == 200  # now in the other process's cache

    assert here.delete(f"/v1/me/keys/{made['id']}", headers=ada.auth).status_code == 204
    assert here.get("/v1/me", headers=second).status_code == 401  # at once where it was revoked

    refused_within(there, "/v1/me", second, 401, CACHE_S + SLACK_S)
    assert there.get("/v1/me", headers=ada.auth).status_code == 200  # the other key still works


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_member_removed_in_one_process_loses_access_in_another_within_the_cache_bound(two_web_processes):
    here, there = two_web_processes
    owner, org = builders.funded(there, 1_000)
    bob = builders.member(there, owner, org, ["org:view", "product:view"])
    assert there.get(f"/v1/organizations/{org}", headers=bob.auth).status_code == 200

    team_id = next(t["id"] for t in builders.teams_of(here, owner, org) if any(m["id"] == bob.id for m in t["members"]))
    removed = here.delete(f"/v1/organizations/{org}/teams/{team_id}/members/{bob.id}", headers=owner.auth)
    assert removed.status_code == 204, removed.text
    assert here.get(f"/v1/organizations/{org}", headers=bob.auth).status_code == 404

    refused_within(there, f"/v1/organizations/{org}", bob.auth, 404, CACHE_S + SLACK_S)
