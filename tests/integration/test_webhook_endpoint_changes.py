"""Changing a webhook endpoint: PATCH, secret rotation with a 24 h overlap, test pings;
through the app, real workers and a real receiver that verifies every signature."""

from __future__ import annotations

from datetime import timedelta

from runtime.clock import clock
from tests.api import builders
from tests.api.builders import refused
from tests.integration.flows import buy, wait_done
from tests.integration.test_webhooks_out import settle, subscribe


def endpoints_url(org: str, hook: str = "") -> str:
    return f"/v1/organizations/{org}/webhook-endpoints" + (f"/{hook}" if hook else "")


def ping(api, who, org, hook) -> dict:
    answer = api.post(endpoints_url(org, hook) + "/test", headers=who.auth)
    assert answer.status_code == 202, answer.text
    return answer.json()


def log_of(api, who, org, hook) -> list[dict]:
    answer = api.get(endpoints_url(org, hook) + "/deliveries", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_patch_changes_each_field(api, workers, broker, sender, receiver):
    workers()
    owner, org = builders.funded(api, 100_000)
    hook = subscribe(api, owner, org, receiver, "/old", ["tier.changed"])
    receiver.secrets["/new"] = receiver.secrets["/old"]

    answer = api.patch(
        endpoints_url(org, hook),
        headers=owner.auth,
        json={"url": receiver.base + "/new", "event_types": ["product.purchased"], "description": "billing sync"},
    )

    assert answer.status_code == 200, answer.text
    changed = answer.json()
    assert (changed["url"], changed["event_types"], changed["description"]) == (
        receiver.base + "/new",
        ["product.purchased"],
        "billing sync",
    )
    assert changed["secret"] is None
    wait_done(api, owner, buy(api, owner, org, "patched.fr").json()["id"])
    settle(broker, sender)
    assert [r.type for r in receiver.delivered("/new")] == ["product.purchased"]
    assert receiver.received == receiver.delivered("/new") and receiver.rejected == []

    off = api.patch(endpoints_url(org, hook), headers=owner.auth, json={"enabled": False})
    assert (off.json()["enabled"], off.json()["disabled_reason"]) == (False, "disabled_on_request")
    wait_done(api, owner, buy(api, owner, org, "quiet.fr").json()["id"])
    settle(broker, sender)
    assert [r.type for r in receiver.received] == ["product.purchased"]  # nothing while disabled

    on = api.patch(endpoints_url(org, hook), headers=owner.auth, json={"enabled": True})
    assert (on.json()["enabled"], on.json()["disabled_reason"]) == (True, None)
    listed = api.get(endpoints_url(org), headers=owner.auth).json()
    assert [(e["id"], e["description"]) for e in listed] == [(hook, "billing sync")]


def test_re_enabling_an_endpoint_resumes_its_pending_delivery(api, workers, broker, sender, receiver):
    workers()
    owner, org = builders.funded(api, 100_000)
    hook = subscribe(api, owner, org, receiver, "/later", ["product.purchased"])
    receiver.behaviour = lambda p, wid, attempt: (503, {})
    clock.pin(clock.now())
    wait_done(api, owner, buy(api, owner, org, "later.fr").json()["id"])
    settle(broker, sender)
    assert [(d["status"], d["attempts"]) for d in log_of(api, owner, org, hook)] == [("pending", 1)]

    api.patch(endpoints_url(org, hook), headers=owner.auth, json={"enabled": False})
    assert [d["status"] for d in log_of(api, owner, org, hook)] == ["cancelled"]
    receiver.behaviour = lambda p, wid, attempt: (200, {})
    answer = api.patch(endpoints_url(org, hook), headers=owner.auth, json={"enabled": True})
    assert answer.status_code == 200, answer.text
    settle(broker, sender)

    assert [(d["status"], d["attempts"]) for d in log_of(api, owner, org, hook)] == [("succeeded", 2)]
    assert [r.type for r in receiver.delivered("/later")] == ["product.purchased"]


def test_during_the_overlap_both_secrets_verify_and_after_24_hours_only_the_new(api, workers, broker, sender, receiver):
    workers()
    owner, org = builders.person(api), None
    org = builders.organization(api, owner)
    hook = subscribe(api, owner, org, receiver, "/roll")
    old = receiver.secrets["/roll"]
    clock.pin(clock.now())

    rotated = api.post(endpoints_url(org, hook) + "/secret", headers=owner.auth)

    assert rotated.status_code == 201, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert rotated.json()["previous_valid_until"].startswith((clock.now() + timedelta(hours=24)).date().isoformat())
    for secret in (old, new):  # a receiver that knows only one of them
        receiver.secrets["/roll"] = secret
        ping(api, owner, org, hook)
        settle(broker, sender)
        assert receiver.rejected == []
    assert len(receiver.delivered("/roll")) == 2

    clock.advance(timedelta(hours=24, seconds=1))
    receiver.secrets["/roll"] = new
    ping(api, owner, org, hook)
    settle(broker, sender)
    assert receiver.rejected == [] and len(receiver.delivered("/roll")) == 3
    receiver.secrets["/roll"] = old
    ping(api, owner, org, hook)
    settle(broker, sender)
    assert len(receiver.rejected) == 1 and len(receiver.delivered("/roll")) == 3


def test_a_ping_goes_signed_to_that_endpoint_only_and_shows_in_its_log(api, workers, broker, sender, receiver):
    workers()
    owner = builders.person(api)
    org = builders.organization(api, owner)
    hook = subscribe(api, owner, org, receiver, "/pinged", ["tier.changed"])  # ping is not subscribed to
    other = subscribe(api, owner, org, receiver, "/other")

    sent = ping(api, owner, org, hook)
    settle(broker, sender)

    assert receiver.rejected == []
    assert [(r.type, r.webhook_id, r.data["endpoint_id"]) for r in receiver.delivered("/pinged")] == [
        ("ping", sent["event_id"], hook)
    ]
    assert receiver.delivered("/other") == []
    [logged] = log_of(api, owner, org, hook)
    assert (logged["id"], logged["event_id"], logged["status"]) == (sent["delivery_id"], sent["event_id"], "succeeded")
    assert [a["status_code"] for a in logged["attempt_log"]] == [200]
    assert log_of(api, owner, org, other) == []


def test_another_organizations_endpoint_is_not_found(api, receiver):
    owner, intruder = builders.person(api, "Owner"), builders.person(api, "Eve")
    org, theirs = builders.organization(api, owner), builders.organization(api, intruder)
    hook = subscribe(api, owner, org, receiver, "/mine")

    for path in (endpoints_url(theirs, hook), endpoints_url(org, hook)):
        refused(api.patch(path, headers=intruder.auth, json={"description": "mine now"}), 404, "not_found")
        refused(api.post(path + "/secret", headers=intruder.auth), 404, "not_found")
        refused(api.post(path + "/test", headers=intruder.auth), 404, "not_found")
    assert api.get(endpoints_url(org), headers=owner.auth).json()[0]["description"] == ""
    assert receiver.received == []


def test_bad_changes_are_refused_and_change_nothing(api, receiver):
    owner = builders.person(api)
    org = builders.organization(api, owner)
    hook = subscribe(api, owner, org, receiver, "/keep", ["tier.changed"])
    url = endpoints_url(org, hook)

    refused(api.patch(url, headers=owner.auth, json={"event_types": ["product.bought"]}), 422, "unknown_event_type")
    refused(api.patch(url, headers=owner.auth, json={"event_types": ["ping"]}), 422, "unknown_event_type")
    refused(api.patch(url, headers=owner.auth, json={"url": "not a url at all"}), 422, "invalid_url")
    refused(api.patch(url, headers=owner.auth, json={"url": "ftp://example.com/x"}), 422, "invalid_webhook_url")
    assert api.patch(url, headers=owner.auth, json={"secret": "whsec_mine"}).status_code == 400
    assert api.patch(url, headers=owner.auth, json={"enabled": "yes"}).status_code == 400
    refused(api.patch(endpoints_url(org, "whe_missing"), headers=owner.auth, json={}), 404, "not_found")
    api.patch(url, headers=owner.auth, json={"enabled": False})
    refused(api.post(url + "/test", headers=owner.auth), 409, "endpoint_disabled")

    [endpoint] = api.get(endpoints_url(org), headers=owner.auth).json()
    assert (endpoint["url"], endpoint["event_types"]) == (receiver.base + "/keep", ["tier.changed"])


def test_a_member_without_webhook_manage_cannot_change_an_endpoint(api, receiver):
    owner = builders.person(api)
    org = builders.organization(api, owner)
    hook = subscribe(api, owner, org, receiver, "/guarded")
    viewer = builders.member(api, owner, org, ["org:view"])

    refused(api.patch(endpoints_url(org, hook), headers=viewer.auth, json={"enabled": False}), 403, "permission_denied")
    refused(api.post(endpoints_url(org, hook) + "/secret", headers=viewer.auth), 403, "permission_denied")
