"""Webhooks in: Standard Webhooks signatures, one operation per webhook-id, the API's own checks."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import count
from math import floor

from standardwebhooks import Webhook

from runtime.clock import clock
from tables.inbound import InboundMessage
from tables.operations import Operation
from tests.api import builders
from tests.integration.flows import buy, charges_for, db, wait_done

_ids = count(1)


# --- helpers ------------------------------------------------------------------------------------


def rotate(api, who, org) -> dict:
    answer = api.post(f"/v1/resellers/{org}/inbound-secret", headers=who.auth)
    assert answer.status_code == 201, answer.text
    return answer.json()


def signed(
    secret: str, payload: dict | str, *, msg_id: str | None = None, at: datetime | None = None
) -> tuple[str, dict[str, str]]:
    """The body and the three Standard Webhooks headers, signed with `secret`."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    msg_id = msg_id or f"msg_{next(_ids)}"
    at = at or datetime.now(UTC)  # the library checks the real clock, not tenure's
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
        "content-type": "application/json",
    }
    return body, headers


def send(api, org: str, body: str, headers: dict[str, str]):
    return api.post(f"/v1/inbound/{org}", content=body.encode(), headers=headers)


def post(api, org: str, secret: str, payload: dict | str, **kwargs):
    return send(api, org, *signed(secret, payload, **kwargs))


def accepted(api, who, answer, status: int = 202) -> dict:
    assert answer.status_code == status, answer.text
    op = wait_done(api, who, answer.json()["operation"]["id"])
    assert op["status"] == "succeeded", op
    return op


def operation_count() -> int:
    return db(Operation.count().run())


def message_count() -> int:
    return db(InboundMessage.count().run())


def reseller(api, funds: int = 100_000):
    owner = builders.person(api, "Remy")
    org = builders.organization(api, owner, reseller=True)
    if funds:
        builders.fund(api, owner, org, funds)
    return owner, org


def upsert(external_ref: str, name: str = "Dupont", email: str = "dupont@client.test") -> dict:
    return {"type": "client.upserted", "data": {"external_ref": external_ref, "name": name, "email": email}}


def portfolio(api, who, org) -> list[dict]:
    answer = api.get(f"/v1/resellers/{org}/clients", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


# --- the secret -----------------------------------------------------------------------------


def test_a_reseller_gets_a_standard_webhooks_secret_and_rotation_reports_the_old_ones_window(api):
    owner, org = reseller(api, funds=0)

    first = rotate(api, owner, org)
    second = rotate(api, owner, org)

    assert first["secret"].startswith("whsec_")
    assert len(base64.b64decode(first["secret"].removeprefix("whsec_"))) == 24
    assert first["previous_valid_until"] is None
    assert second["secret"] != first["secret"]
    until = datetime.fromisoformat(second["previous_valid_until"])
    assert timedelta(hours=23, minutes=59) < until - clock.now() <= timedelta(hours=24)


def test_only_members_with_webhook_manage_of_a_reseller_rotate_the_secret(api):
    owner, org = reseller(api, funds=0)
    outsider = builders.person(api, "Eve")
    builders.organization(api, outsider, reseller=True)
    viewer = builders.member(api, owner, org, ["org:view", "client:manage"])
    manager = builders.member(api, owner, org, ["webhook:manage"])
    plain_owner = builders.person(api, "Paul")
    plain = builders.organization(api, plain_owner)

    builders.refused(api.post(f"/v1/resellers/{org}/inbound-secret"), 401, "unauthorized")
    builders.refused(api.post(f"/v1/resellers/{org}/inbound-secret", headers=outsider.auth), 404, "not_found")
    builders.refused(api.post(f"/v1/resellers/{org}/inbound-secret", headers=viewer.auth), 403, "permission_denied")
    builders.refused(api.post(f"/v1/resellers/{plain}/inbound-secret", headers=plain_owner.auth), 409, "not_a_reseller")
    assert rotate(api, manager, org)["secret"].startswith("whsec_")


# --- exactly once ---------------------------------------------------------------------------


def test_one_renewal_webhook_posted_five_times_at_once_renews_once(api, workers):
    workers()
    owner, org = reseller(api)
    client_id = builders.client_of(api, owner, org, "Martin")
    product_id = wait_done(api, owner, buy(api, owner, org, "martin.fr", client_id=client_id).json()["id"])["result"][
        "product_id"
    ]
    product = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()
    secret = rotate(api, owner, org)["secret"]
    body, headers = signed(
        secret,
        {
            "type": "renewal.requested",
            "data": {"product_id": product_id, "years": 1, "current_expires_at": product["expires_at"]},
        },
    )

    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: send(api, org, body, headers), range(5)))

    assert sorted(a.status_code for a in answers) == [200, 200, 200, 200, 202], [a.text for a in answers]
    op_ids = {a.json()["operation"]["id"] for a in answers}
    assert len(op_ids) == 1
    op = wait_done(api, owner, op_ids.pop())
    assert (op["status"], op["kind"], op["product_id"]) == ("succeeded", "renewal", product_id)
    renewed = api.get(f"/v1/products/{product_id}", headers=owner.auth).json()
    before, after = (datetime.fromisoformat(p["expires_at"]) for p in (product, renewed))
    assert after.year == before.year + 1 and (after.month, after.day) == (before.month, before.day)
    assert charges_for(org) == [1500, 1500]  # the purchase, then one renewal
    assert db(Operation.count().where(Operation.kind == "renewal").run()) == 1
    assert message_count() == 1

    again = send(api, org, body, headers)  # a resend after it ran: the same operation, nothing more
    assert again.status_code == 200, again.text
    assert again.json()["operation"]["id"] == op["id"]
    assert again.json()["operation"]["status"] == "succeeded"
    assert charges_for(org) == [1500, 1500]


def test_a_resent_purchase_gets_its_operation_back_not_name_taken(api, workers):
    workers()
    owner, org = reseller(api)
    secret = rotate(api, owner, org)["secret"]
    body, headers = signed(
        secret, {"type": "purchase.requested", "data": {"kind": "domain", "name": "resent.fr", "years": 1}}
    )

    op = accepted(api, owner, send(api, org, body, headers))
    again = send(api, org, body, headers)

    assert again.status_code == 200, again.text
    assert again.json()["operation"]["id"] == op["id"]
    assert again.json()["operation"]["result"]["product_id"] == op["result"]["product_id"]
    assert charges_for(org) == [1500]


def test_a_lost_message_row_is_restored_from_the_operation(api, workers):
    """A crash between the operation's commit and the InboundMessage row loses no dedupe."""
    workers()
    owner, org = reseller(api, funds=0)
    secret = rotate(api, owner, org)["secret"]
    body, headers = signed(secret, upsert("crm-1"))
    first = accepted(api, owner, send(api, org, body, headers))
    db(InboundMessage.delete(force=True).run())

    again = send(api, org, body, headers)

    assert again.status_code == 200, again.text
    assert again.json()["operation"]["id"] == first["id"]
    assert message_count() == 1
    assert db(Operation.count().where(Operation.kind == "client_upsert").run()) == 1


def test_the_same_webhook_id_with_another_body_is_refused(api, workers):
    workers()
    owner, org = reseller(api, funds=0)
    secret = rotate(api, owner, org)["secret"]
    first = accepted(api, owner, post(api, org, secret, upsert("crm-1"), msg_id="msg_same"))
    ops = operation_count()

    other = post(api, org, secret, upsert("crm-2"), msg_id="msg_same")

    builders.refused(other, 422, "idempotency_key_reused")
    assert operation_count() == ops
    same = post(api, org, secret, upsert("crm-1"), msg_id="msg_same")  # re-signed, same body
    assert same.status_code == 200 and same.json()["operation"]["id"] == first["id"]
    assert [c["external_ref"] for c in portfolio(api, owner, org)] == ["crm-1"]


def test_an_api_idempotency_key_shaped_like_a_webhook_id_does_not_take_the_webhooks_place(api, workers):
    """An API caller sending `Idempotency-Key: inbound:<id>` must not block the webhook <id>."""
    workers()
    owner, org = reseller(api)
    secret = rotate(api, owner, org)["secret"]
    by_api = buy(api, owner, org, "squatter.fr", key="inbound:msg_future")
    assert by_api.status_code == 202, by_api.text

    webhook = accepted(api, owner, post(api, org, secret, upsert("crm-1"), msg_id="msg_future"))

    assert webhook["id"] != by_api.json()["id"]
    assert webhook["kind"] == "client_upsert"
    assert wait_done(api, owner, by_api.json()["id"])["kind"] == "purchase"
    assert [c["external_ref"] for c in portfolio(api, owner, org)] == ["crm-1"]
    # Each one replays as its own.
    again = buy(api, owner, org, "squatter.fr", key="inbound:msg_future")
    assert again.status_code == 202 and again.json()["id"] == by_api.json()["id"]
    resent = post(api, org, secret, upsert("crm-1"), msg_id="msg_future")
    assert resent.status_code == 200 and resent.json()["operation"]["id"] == webhook["id"]


def test_a_webhook_recorded_under_the_older_key_is_still_found(api, workers):
    """Operations made by webhooks before their keys left the API's namespace keep deduping."""
    workers()
    owner, org = reseller(api, funds=0)
    secret = rotate(api, owner, org)["secret"]
    body, headers = signed(secret, upsert("crm-1"), msg_id="msg_old")
    first = accepted(api, owner, send(api, org, body, headers))
    db(Operation.update({Operation.idem_key: f"{org}:inbound:msg_old"}).where(Operation.id == first["id"]).run())
    db(InboundMessage.delete(force=True).run())  # only the operation's key is left to find it

    again = send(api, org, body, headers)

    assert again.status_code == 200, again.text
    assert again.json()["operation"]["id"] == first["id"]
    assert db(Operation.count().where(Operation.kind == "client_upsert").run()) == 1


# --- each type ------------------------------------------------------------------------------


def test_a_purchase_for_a_client_named_by_its_external_ref(api, workers):
    workers()
    owner, org = reseller(api)
    client_id = builders.client_of(api, owner, org, "Martin", external_ref="crm-42")
    secret = rotate(api, owner, org)["secret"]

    op = accepted(
        api,
        owner,
        post(
            api,
            org,
            secret,
            {
                "type": "purchase.requested",
                "data": {"kind": "domain", "name": "Martin-Shop.FR", "years": 2, "client_ref": "crm-42"},
            },
        ),
    )

    assert op["kind"] == "purchase"
    product = api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json()
    assert (product["name"], product["client_id"], product["reseller_id"], product["organization_id"]) == (
        "martin-shop.fr",
        client_id,
        org,
        org,
    )
    assert charges_for(org) == [3000]
    assert [(c["id"], c["product_count"]) for c in portfolio(api, owner, org)] == [(client_id, 1)]


def test_client_upserted_creates_then_updates_the_client(api, workers):
    workers()
    owner, org = reseller(api, funds=0)
    secret = rotate(api, owner, org)["secret"]

    created = accepted(api, owner, post(api, org, secret, upsert("crm-7", "Dupont", "dupont@client.test")))
    updated = accepted(api, owner, post(api, org, secret, upsert("crm-7", " Dupont SA ", "Compta@Dupont.test")))

    assert created["kind"] == "client_upsert" and created["result"]["created"] is True
    assert updated["result"] == {"client_id": created["result"]["client_id"], "external_ref": "crm-7", "created": False}
    clients = portfolio(api, owner, org)
    assert [(c["id"], c["external_ref"], c["name"], c["email"]) for c in clients] == [
        (created["result"]["client_id"], "crm-7", "Dupont SA", "compta@dupont.test")
    ]


def test_release_requested_releases_the_client(api, workers):
    workers()
    owner, org = reseller(api)
    client_id = builders.client_of(api, owner, org, "Martin", external_ref="crm-9")
    product_id = wait_done(api, owner, buy(api, owner, org, "martin.fr", client_id=client_id).json()["id"])["result"][
        "product_id"
    ]
    secret = rotate(api, owner, org)["secret"]

    op = accepted(
        api,
        owner,
        post(
            api,
            org,
            secret,
            {"type": "release.requested", "data": {"client_ref": "crm-9", "owner_email": "pierre@martin.test"}},
        ),
    )

    assert op["kind"] == "release" and op["result"]["product_ids"] == [product_id]
    assert portfolio(api, owner, org) == []
    released = api.get(f"/v1/resellers/{org}/clients/{client_id}", headers=owner.auth).json()
    assert (released["status"], released["released_to"]) == ("released", op["result"]["organization_id"])
    again = post(
        api,
        org,
        secret,
        {"type": "release.requested", "data": {"client_id": client_id, "owner_email": "pierre@martin.test"}},
    )
    builders.refused(again, 409, "client_not_active")


# --- refused: nothing is written ------------------------------------------------------------


def test_bad_signatures_are_refused_alike_and_write_nothing(api):
    owner, org = reseller(api, funds=0)
    secret = rotate(api, owner, org)["secret"]
    other_owner, other_org = reseller(api, funds=0)
    other_secret = rotate(api, other_owner, other_org)["secret"]
    plain_owner = builders.person(api, "Paul")
    plain = builders.organization(api, plain_owner)
    payload = upsert("crm-1")
    body, headers = signed(secret, payload)
    ops, messages = operation_count(), message_count()

    altered = body.replace("crm-1", "crm-2")
    cases = {
        "wrong secret": send(api, org, *signed("whsec_" + base64.b64encode(b"x" * 24).decode(), payload)),
        "10 minutes old": post(api, org, secret, payload, at=datetime.now(UTC) - timedelta(minutes=10)),
        "10 minutes ahead": post(api, org, secret, payload, at=datetime.now(UTC) + timedelta(minutes=10)),
        "altered body": send(api, org, altered, headers),
        "no headers": send(api, org, body, {"content-type": "application/json"}),
        "no signature": send(api, org, body, {k: v for k, v in headers.items() if k != "webhook-signature"}),
        "no id": send(api, org, body, {k: v for k, v in headers.items() if k != "webhook-id"}),
        "other id": send(api, org, body, {**headers, "webhook-id": "msg_other"}),
        "garbled signature": send(api, org, body, {**headers, "webhook-signature": "nonsense"}),
        "another reseller's secret": post(api, org, other_secret, payload),
        "signed for another reseller": send(api, other_org, body, headers),
        "not a reseller": send(api, plain, body, headers),
        "unknown organization": send(api, "org_nope", body, headers),
    }

    messages_seen = set()
    for case, answer in cases.items():
        assert answer.status_code == 401, (case, answer.text)
        assert answer.json()["error"]["code"] == "invalid_signature", (case, answer.text)
        messages_seen.add(answer.json()["error"]["message"])
    assert len(messages_seen) == 1  # the same answer for every reason: nothing is revealed
    assert (operation_count(), message_count()) == (ops, messages)
    assert portfolio(api, owner, org) == []


def test_a_reseller_without_a_secret_is_refused(api):
    owner, org = reseller(api, funds=0)
    ops = operation_count()

    answer = post(api, org, "whsec_" + base64.b64encode(b"\0" * 24).decode(), upsert("crm-1"))

    builders.refused(answer, 401, "invalid_signature")
    assert operation_count() == ops


def test_a_rotated_secret_works_for_24_hours_then_is_refused(api, workers):
    workers()
    owner, org = reseller(api, funds=0)
    old = rotate(api, owner, org)["secret"]
    new = rotate(api, owner, org)["secret"]

    accepted(api, owner, post(api, org, old, upsert("crm-1")))
    accepted(api, owner, post(api, org, new, upsert("crm-2")))
    clock.advance(timedelta(hours=23, minutes=50))  # tenure's clock only: signatures use real time
    accepted(api, owner, post(api, org, old, upsert("crm-3")))
    ops = operation_count()
    clock.advance(timedelta(minutes=20))

    builders.refused(post(api, org, old, upsert("crm-4")), 401, "invalid_signature")
    assert operation_count() == ops
    accepted(api, owner, post(api, org, new, upsert("crm-5")))
    assert sorted(c["external_ref"] for c in portfolio(api, owner, org)) == ["crm-1", "crm-2", "crm-3", "crm-5"]


def revoke_previous(api, who, org):
    return api.delete(f"/v1/resellers/{org}/inbound-secret/previous", headers=who.auth)


def test_revoking_the_previous_secret_refuses_it_at_once_and_keeps_the_current_one(api, workers):
    workers()
    owner, org = reseller(api, funds=0)
    old = rotate(api, owner, org)["secret"]
    new = rotate(api, owner, org)["secret"]
    accepted(api, owner, post(api, org, old, upsert("crm-1")))  # within its 24 h

    answer = revoke_previous(api, owner, org)

    assert answer.status_code == 204, answer.text
    assert answer.content == b""
    ops = operation_count()
    builders.refused(post(api, org, old, upsert("crm-2")), 401, "invalid_signature")
    assert operation_count() == ops
    accepted(api, owner, post(api, org, new, upsert("crm-3")))
    assert revoke_previous(api, owner, org).status_code == 204  # nothing left to end: still 204
    accepted(api, owner, post(api, org, new, upsert("crm-4")))
    assert sorted(c["external_ref"] for c in portfolio(api, owner, org)) == ["crm-1", "crm-3", "crm-4"]


def test_only_members_with_webhook_manage_of_the_reseller_revoke_its_previous_secret(api, workers):
    workers()
    owner, org = reseller(api, funds=0)
    old = rotate(api, owner, org)["secret"]
    rotate(api, owner, org)
    outsider = builders.person(api, "Eve")
    outsiders_org = builders.organization(api, outsider, reseller=True)
    rotate(api, outsider, outsiders_org)
    viewer = builders.member(api, owner, org, ["org:view", "client:manage"])
    plain_owner = builders.person(api, "Paul")
    plain = builders.organization(api, plain_owner)
    path = f"/v1/resellers/{org}/inbound-secret/previous"

    builders.refused(api.delete(path), 401, "unauthorized")
    builders.refused(revoke_previous(api, outsider, org), 404, "not_found")
    builders.refused(revoke_previous(api, viewer, org), 403, "permission_denied")
    builders.refused(revoke_previous(api, plain_owner, plain), 409, "not_a_reseller")
    builders.refused(revoke_previous(api, outsider, "org_nope"), 404, "not_found")
    accepted(api, owner, post(api, org, old, upsert("crm-1")))  # none of those ended it

    manager = builders.member(api, owner, org, ["webhook:manage"])
    assert revoke_previous(api, manager, org).status_code == 204
    builders.refused(post(api, org, old, upsert("crm-2")), 401, "invalid_signature")


# --- refused after the signature holds: the API's checks --------------------------------------


def test_unknown_types_and_invalid_data_are_refused_with_a_code_and_write_nothing(api):
    owner, org = reseller(api)
    client_id = builders.client_of(api, owner, org, "Martin", external_ref="crm-1")
    secret = rotate(api, owner, org)["secret"]
    ops, messages = operation_count(), message_count()

    def purchase(**data):
        return {"type": "purchase.requested", "data": {"kind": "domain", "name": "ok.fr", "years": 1, **data}}

    cases = [
        ({"type": "invoice.paid", "data": {}}, 422, "invalid_webhook", "invoice.paid"),
        ("not json", 422, "invalid_webhook", "JSON"),
        ([1, 2], 422, "invalid_webhook", "object"),
        ({"data": {}}, 422, "invalid_webhook", "type"),
        ({"type": "client.upserted"}, 422, "invalid_webhook", "data"),
        (upsert("crm-2", email="not-an-email"), 422, "invalid_webhook", "email"),
        (
            {"type": "client.upserted", "data": {"external_ref": "x", "name": "N", "email": "n@n.test", "extra": 1}},
            422,
            "invalid_webhook",
            "extra",
        ),
        (purchase(years="two"), 422, "invalid_webhook", "years"),
        (purchase(years=0), 422, "invalid_term", "years"),
        (purchase(name="not a domain"), 422, "invalid_name", "not a domain"),
        (purchase(kind="yacht"), 422, "unknown_product_kind", "yacht"),
        (purchase(payment_method="cash"), 422, "unknown_payment_method", "cash"),
        (purchase(client_id=client_id, client_ref="crm-1"), 422, "invalid_webhook", "client_ref"),
        (purchase(client_ref="crm-unknown"), 404, "not_found", "crm-unknown"),
        (purchase(client_id="cli_unknown"), 404, "not_found", "cli_unknown"),
        (
            {
                "type": "renewal.requested",
                "data": {"product_id": "prd_nope", "years": 1, "current_expires_at": "2030-01-01T00:00:00Z"},
            },
            404,
            "not_found",
            "prd_nope",
        ),
        (
            {"type": "renewal.requested", "data": {"product_id": "prd_nope", "years": 1, "current_expires_at": "soon"}},
            422,
            "invalid_webhook",
            "current_expires_at",
        ),
        ({"type": "release.requested", "data": {"owner_email": "p@p.test"}}, 422, "invalid_webhook", "client"),
        (
            {"type": "release.requested", "data": {"client_id": "cli_unknown", "owner_email": "p@p.test"}},
            404,
            "not_found",
            "cli_unknown",
        ),
    ]
    for payload, status, code, named in cases:
        answer = post(api, org, secret, payload)
        message = builders.refused(answer, status, code)
        assert named.lower() in message.lower(), (payload, message)
    too_long = post(api, org, secret, upsert("crm-2"), msg_id="m" * 201)
    assert "webhook-id" in builders.refused(too_long, 422, "invalid_webhook")
    assert (operation_count(), message_count()) == (ops, messages)


def test_a_webhook_cannot_reach_another_resellers_product_or_client(api, workers):
    workers()
    owner, org = reseller(api)
    other_owner, other_org = reseller(api)
    theirs_client = builders.client_of(api, other_owner, other_org, "Theirs", external_ref="crm-1")
    theirs = wait_done(api, other_owner, buy(api, other_owner, other_org, "theirs.fr").json()["id"])
    product = api.get(f"/v1/products/{theirs['result']['product_id']}", headers=other_owner.auth).json()
    secret = rotate(api, owner, org)["secret"]
    ops = operation_count()

    renewal = post(
        api,
        org,
        secret,
        {
            "type": "renewal.requested",
            "data": {"product_id": product["id"], "years": 1, "current_expires_at": product["expires_at"]},
        },
    )
    release = post(
        api, org, secret, {"type": "release.requested", "data": {"client_id": theirs_client, "owner_email": "p@p.test"}}
    )
    by_ref = post(
        api,
        org,
        secret,
        {
            "type": "purchase.requested",
            "data": {"kind": "domain", "name": "mine.fr", "years": 1, "client_ref": "crm-1"},
        },
    )

    builders.refused(renewal, 404, "not_found")
    builders.refused(release, 404, "not_found")
    builders.refused(by_ref, 404, "not_found")
    assert operation_count() == ops
    assert charges_for(other_org) == [1500]


def test_the_schema_shows_the_inbound_route_needs_no_key_and_the_secret_route_does(api):
    schema = api.get("/schema/openapi.json").json()

    inbound = schema["paths"]["/v1/inbound/{org_id}"]["post"]
    rotation = schema["paths"]["/v1/resellers/{org_id}/inbound-secret"]["post"]
    assert inbound.get("security") in ([], [{}])  # signed instead
    assert rotation.get("security", schema["security"]) == schema["security"]
    assert {"201"} <= set(rotation["responses"]) and {"202"} <= set(inbound["responses"])
    revocation = schema["paths"]["/v1/resellers/{org_id}/inbound-secret/previous"]["delete"]
    assert revocation.get("security", schema["security"]) == schema["security"]
    assert "204" in revocation["responses"]
