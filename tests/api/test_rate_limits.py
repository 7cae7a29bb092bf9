"""Rate limits through the real app, each set low here: failed authentication, sign-ups and
claim attempts per client address, requests per API key; 429 `rate_limited` + Retry-After."""

from __future__ import annotations

import re

import pytest
import redis
from litestar.testing import TestClient

from runtime.settings import Settings
from tests.api import builders as b
from tests.api.builders import refused
from tests.databases import REDIS_URL
from tests.ratelimits import UNLIMITED
from web.app import create_app

WRONG_KEY = {"Authorization": "Bearer tnr_not-a-key-at-all-0000000000"}
OPS_TOKEN = "ops-secret"


def limited(database_url: str, **settings) -> TestClient:
    """The app with every limit high except those given (e.g. rate_limit_signups="2/hour")."""
    return TestClient(create_app(Settings(database_url=database_url, ops_token=OPS_TOKEN, **{**UNLIMITED, **settings})))


def rate_limited(answer, *, within: int) -> int:
    """Asserts a 429 `rate_limited` answer with a Retry-After of 1..`within` seconds; returns it."""
    refused(answer, 429, "rate_limited")
    retry = int(answer.headers["retry-after"])
    assert 1 <= retry <= within, answer.headers
    assert f"{retry} s" in answer.json()["error"]["message"]
    return retry


def refusals(client, limit: str) -> float:
    """tenure_rate_limited_total{limit=...} as /metrics shows it."""
    text = client.get("/metrics").text
    found = re.search(rf'^tenure_rate_limited_total\{{limit="{limit}"\}} (\S+)$', text, flags=re.M)
    assert found, f"no refusal counter for {limit} in /metrics"
    return float(found.group(1))


def sign_up(client, email: str):
    return client.post("/v1/accounts", json={"email": email, "name": "Eve"})


# --- failed authentication, per address ------------------------------------------------------


def test_wrong_api_keys_past_the_limit_are_refused_even_with_a_right_key_then(database_url):
    with limited(database_url, rate_limit_auth_failures="3/minute") as client:
        ada = b.person(client, "Ada")
        before = refusals(client, "auth_failures")

        for _ in range(3):
            refused(client.get("/v1/me", headers=WRONG_KEY), 401, "unauthorized")
        rate_limited(client.get("/v1/me", headers=WRONG_KEY), within=60)
        # A guess that happens to be right gains nothing from this address now.
        rate_limited(client.get("/v1/me", headers=ada.auth), within=60)

        assert refusals(client, "auth_failures") == before + 2


def test_successful_authentications_are_not_counted_as_failures(database_url):
    with limited(database_url, rate_limit_auth_failures="3/minute") as client:
        ada = b.person(client, "Ada")
        for _ in range(10):
            assert client.get("/v1/me", headers=ada.auth).status_code == 200
        for _ in range(3):  # no key at all is no guess: not counted either
            refused(client.get("/v1/me"), 401, "unauthorized")

        for _ in range(3):
            refused(client.get("/v1/me", headers=WRONG_KEY), 401, "unauthorized")
        rate_limited(client.get("/v1/me", headers=WRONG_KEY), within=60)


def test_wrong_ops_tokens_count_as_failed_authentication_on_the_api_and_the_page(database_url):
    with limited(database_url, rate_limit_auth_failures="2/minute") as client:
        wrong = {"Authorization": "Bearer not-the-ops-token"}
        refused(client.get("/v1/ops/queues", headers=wrong), 401, "unauthorized")
        login = client.post("/ops/login", data={"token": "still-not-it"})
        assert login.status_code == 401 and "not the ops token" in login.text

        rate_limited(client.get("/v1/ops/queues", headers=wrong), within=60)
        page = client.post("/ops/login", data={"token": OPS_TOKEN})
        assert page.status_code == 429, page.text
        assert "Too many failed sign-ins" in page.text
        assert 1 <= int(page.headers["retry-after"]) <= 60
        assert "tenure_ops" not in page.headers.get("set-cookie", "")


# --- sign-ups and claims, per address -----------------------------------------------------------


def test_sign_ups_past_the_limit_are_refused_and_write_nothing(database_url):
    with limited(database_url, rate_limit_signups="2/hour") as client:
        before = refusals(client, "signups")
        assert sign_up(client, "one@example.test").status_code == 201
        assert sign_up(client, "two@example.test").status_code == 201

        retry = rate_limited(sign_up(client, "three@example.test"), within=3600)

        assert retry > 3000  # the window is an hour, and it has just begun
        assert refusals(client, "signups") == before + 1
    with limited(database_url) as fresh:  # nothing was written: the address is still free
        assert sign_up(fresh, "three@example.test").status_code == 201


def test_claim_attempts_past_the_limit_are_refused(database_url):
    with limited(database_url, rate_limit_claims="2/hour") as client:
        for attempt in range(2):
            answer = client.post("/v1/accounts/claim", json={"claim_token": f"clm_guess{attempt:040d}"})
            assert answer.status_code not in (201, 429), answer.text

        rate_limited(client.post("/v1/accounts/claim", json={"claim_token": "clm_" + "7" * 43}), within=3600)
        # Sign-ups have their own limit: still open.
        assert sign_up(client, "ada@example.test").status_code == 201


# --- requests per API key ----------------------------------------------------------------------


def test_requests_with_one_key_past_the_limit_are_refused_and_other_keys_go_on(database_url):
    with limited(database_url, rate_limit_per_key="5/minute") as client:
        ada, bob = b.person(client, "Ada"), b.person(client, "Bob")
        before = refusals(client, "per_key")
        for _ in range(5):
            assert client.get("/v1/me", headers=ada.auth).status_code == 200

        rate_limited(client.get("/v1/me", headers=ada.auth), within=60)
        rate_limited(client.post("/v1/organizations", json={"name": "Acme"}, headers=ada.auth), within=60)

        assert client.get("/v1/me", headers=bob.auth).status_code == 200
        assert refusals(client, "per_key") == before + 2


def test_a_limit_set_off_never_refuses(database_url):
    with limited(database_url, rate_limit_per_key="off", rate_limit_signups="off") as client:
        ada = b.person(client, "Ada")
        for _ in range(30):
            assert client.get("/v1/me", headers=ada.auth).status_code == 200


def test_an_invalid_limit_setting_stops_the_app_from_starting_naming_the_variable(database_url):
    with pytest.raises(ValueError, match="TENURE_RATE_LIMIT_PER_KEY='lots'"):
        create_app(Settings(database_url=database_url, rate_limit_per_key="lots"))
    with pytest.raises(ValueError, match="TENURE_RATE_LIMIT_URL"):
        create_app(Settings(database_url=database_url, rate_limit_url="amqp://rabbit:5672/"))


# --- shared across web processes through Redis ---------------------------------------------------


@pytest.fixture
def empty_redis():
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()
    return REDIS_URL


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_web_processes_share_each_limit_through_redis(database_url, empty_redis):
    shared = {"rate_limit_url": empty_redis, "rate_limit_per_key": "4/minute", "rate_limit_auth_failures": "2/minute"}
    with limited(database_url, **shared) as first, limited(database_url, **shared) as second:
        ada = b.person(first, "Ada")
        assert [first.get("/v1/me", headers=ada.auth).status_code for _ in range(2)] == [200, 200]
        assert [second.get("/v1/me", headers=ada.auth).status_code for _ in range(2)] == [200, 200]

        rate_limited(first.get("/v1/me", headers=ada.auth), within=60)
        rate_limited(second.get("/v1/me", headers=ada.auth), within=60)

        refused(first.get("/v1/me", headers=WRONG_KEY), 401, "unauthorized")
        refused(second.get("/v1/me", headers=WRONG_KEY), 401, "unauthorized")
        rate_limited(first.get("/v1/me", headers=WRONG_KEY), within=60)

    windows = redis.Redis.from_url(REDIS_URL)
    try:
        keys = [k.decode() for k in windows.keys("tenure:ratelimit:*")]
    finally:
        windows.close()
    assert any("/per_key/" in k for k in keys) and any("/auth_failures/" in k for k in keys), keys
    assert not any(ada.key in k for k in keys), "an API key must never be written to Redis"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_requests_go_through_when_the_limits_redis_is_unreachable(database_url):
    with limited(
        database_url, rate_limit_url="redis://127.0.0.1:1/0", rate_limit_per_key="2/minute", rate_limit_signups="1/hour"
    ) as client:
        ada = b.person(client, "Ada")
        b.person(client, "Bob")
        for _ in range(5):
            assert client.get("/v1/me", headers=ada.auth).status_code == 200


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_blocks_of_the_per_key_limit_taken_by_two_processes_never_let_a_key_past_it(database_url, empty_redis):
    shared = {"rate_limit_url": empty_redis, "rate_limit_per_key": "100/minute"}  # blocks of 2
    with limited(database_url, **shared) as first, limited(database_url, **shared) as second:
        ada = b.person(first, "Ada")
        answered = {first: [], second: []}
        while not all(429 in codes for codes in answered.values()):
            for client in (first, second):
                if 429 not in answered[client]:
                    answered[client].append(client.get("/v1/me", headers=ada.auth).status_code)

    assert sum(codes.count(200) for codes in answered.values()) == 100
    assert all(codes.count(200) >= 40 for codes in answered.values()), answered  # both took blocks
