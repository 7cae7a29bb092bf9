"""The /ops page's sign-in cookie: a signed session that expires, never the ops token."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie

from litestar.testing import TestClient

from runtime.settings import Settings
from tests.ratelimits import UNLIMITED
from web.app import create_app

TOKEN = "ops-secret-token-4f9c2a"


def app(database_url: str, token: str = TOKEN, **settings) -> TestClient:
    return TestClient(create_app(Settings(database_url=database_url, ops_token=token, **{**UNLIMITED, **settings})))


def sign_in(client: TestClient, token: str = TOKEN) -> tuple[str, SimpleCookie]:
    """Logs in through the form; the cookie's value and its attributes (jar emptied after)."""
    answer = client.post("/ops/login", data={"token": token}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    header = answer.headers["set-cookie"]
    cookie = SimpleCookie()
    cookie.load(header)
    client.cookies.clear()
    return header, cookie


def signed_in(client: TestClient, value: str) -> bool:
    answer = client.get("/ops/fragment", headers={"Cookie": f"tenure_ops={value}"})
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


def test_the_cookie_holds_a_session_not_the_token(database_url):
    with app(database_url) as client:
        header, cookie = sign_in(client)

        assert TOKEN not in header
        morsel = cookie["tenure_ops"]
        assert morsel.value and TOKEN not in morsel.value
        assert morsel["httponly"] and morsel["samesite"].lower() == "strict"
        assert int(morsel["max-age"]) == 12 * 3600
        assert not morsel["secure"]  # plain http here
        assert signed_in(client, morsel.value)
        # The JSON ops API takes the session too.
        assert client.get("/v1/ops/queues", headers={"Cookie": f"tenure_ops={morsel.value}"}).status_code == 200


def test_the_cookie_is_secure_over_https(database_url):
    with TestClient(
        create_app(Settings(database_url=database_url, ops_token=TOKEN, **UNLIMITED)),
        base_url="https://testserver.local",
    ) as client:
        _, cookie = sign_in(client)

        assert cookie["tenure_ops"]["secure"]


def test_the_raw_token_in_the_cookie_is_not_a_session(database_url):
    with app(database_url) as client:
        assert not signed_in(client, TOKEN)


def test_a_session_expires_after_the_configured_hours(database_url, real_clock):
    with app(database_url, ops_session_hours=2) as client:
        _, cookie = sign_in(client)
        value = cookie["tenure_ops"].value
        assert int(cookie["tenure_ops"]["max-age"]) == 2 * 3600

        real_clock.advance(timedelta(hours=1, minutes=59))
        assert signed_in(client, value)
        real_clock.advance(timedelta(minutes=2))
        assert not signed_in(client, value)


def test_a_tampered_session_is_refused(database_url):
    with app(database_url) as client:
        _, cookie = sign_in(client)
        expires, mac = cookie["tenure_ops"].value.split(".")
        later = str(int(expires) + 3600)
        flipped = ("A" if mac[0] != "A" else "B") + mac[1:]

        for forged in (
            f"{later}.{mac}",
            f"{expires}.{flipped}",
            f"{expires}.",
            expires,
            f"{expires}.{mac}x",
            f"99999999999.{mac}",
        ):
            assert not signed_in(client, forged), forged
        assert signed_in(client, f"{expires}.{mac}")


def test_a_session_longer_than_the_current_setting_allows_is_refused(database_url):
    with app(database_url, ops_session_hours=12) as client:
        _, cookie = sign_in(client)
        value = cookie["tenure_ops"].value
    with app(database_url, ops_session_hours=1) as shorter:
        assert not signed_in(shorter, value)


def test_rotating_the_ops_token_ends_every_session(database_url):
    with app(database_url, token=TOKEN) as before:
        _, cookie = sign_in(before)
        value = cookie["tenure_ops"].value
    with app(database_url, token=TOKEN) as restarted:  # same token: the session lives on
        assert signed_in(restarted, value)
    with app(database_url, token="a-new-ops-token-77d1") as rotated:
        assert not signed_in(rotated, value)
        assert rotated.get("/v1/ops/queues", headers={"Cookie": f"tenure_ops={value}"}).status_code == 401


def test_signing_out_clears_the_cookie(database_url):
    with app(database_url) as client:
        sign_in(client)
        answer = client.post("/ops/logout", follow_redirects=False)

        assert answer.status_code == 303
        cookie = SimpleCookie()
        cookie.load(answer.headers["set-cookie"])
        assert cookie["tenure_ops"].value == "" and cookie["tenure_ops"]["max-age"] == "0"
