"""No secret issued during a reseller's day (API keys, claim tokens, endpoint and inbound
secrets, the ops token) is written into an event, an operation, a delivery, a log line or a page."""

from __future__ import annotations

import json
import time

from tables.events import Event
from tables.inbound import InboundMessage
from tables.operations import Operation
from tables.webhooks import Delivery, DeliveryAttempt
from tests.api import builders
from tests.integration.flows import buy, db, renew, wait_done
from tests.integration.receiver import Receiver
from tests.integration.test_inbound import accepted, post, rotate

OPS = {"Authorization": "Bearer ops-secret"}


def dump(table) -> str:
    return json.dumps(db(table.select().run()), default=str)


def wait_delivered(api, who, org, endpoint, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        items = api.get(
            f"/v1/organizations/{org}/webhook-endpoints/{endpoint}/deliveries?limit=200", headers=who.auth
        ).json()["items"]
        if len(items) >= at_least and all(d["status"] == "succeeded" for d in items):
            return
        assert time.monotonic() < deadline, items
        time.sleep(0.1)


def test_a_reseller_day_writes_no_secret_anywhere(api, workers, settings, capfd):
    workers()
    receiver = Receiver()
    base = receiver.start()
    secrets: list[str] = [settings.ops_token]
    try:
        owner = builders.person(api, "Remy")
        colleague = builders.person(api, "Cora")
        secrets += [owner.key, colleague.key]
        reseller = builders.organization(api, owner, reseller=True)
        builders.fund(api, owner, reseller, 500_000)
        team = builders.team(api, owner, reseller, ["client:manage", "product:view"])
        builders.add_to_team(api, owner, reseller, team, colleague)
        hook = api.post(
            f"/v1/organizations/{reseller}/webhook-endpoints",
            headers=owner.auth,
            json={"url": base + "/hooks", "event_types": []},
        ).json()
        receiver.secrets["/hooks"] = hook["secret"]
        first_inbound = rotate(api, owner, reseller)["secret"]
        inbound = rotate(api, owner, reseller)["secret"]
        secrets += [hook["secret"], first_inbound, inbound]

        leaving = builders.client_of(api, owner, reseller, "Martin")
        staying = builders.client_of(api, owner, reseller, "Dupont")
        bought = wait_done(api, owner, buy(api, owner, reseller, "martin.fr", client_id=leaving).json()["id"])
        product = api.get(f"/v1/products/{bought['result']['product_id']}", headers=owner.auth).json()
        wait_done(api, owner, renew(api, owner, product).json()["id"])
        accepted(
            api,
            owner,
            post(
                api,
                reseller,
                inbound,
                {
                    "type": "purchase.requested",
                    "data": {
                        "kind": "domain",
                        "name": "dupont.fr",
                        "years": 1,
                        "payment_method": "prepaid",
                        "client_id": staying,
                    },
                },
            ),
        )
        release = api.post(
            f"/v1/resellers/{reseller}/clients/{leaving}/release",
            json={"owner_email": "pierre@martin.test"},
            headers=colleague.auth,
        )
        first_token = wait_done(api, colleague, release.json()["id"])["result"]["claim_token"]
        reissued = api.post(f"/v1/resellers/{reseller}/clients/{leaving}/claim", headers=colleague.auth).json()
        claimed = api.post("/v1/accounts/claim", json={"claim_token": reissued["claim_token"]}).json()
        secrets += [first_token, reissued["claim_token"], claimed["api_key"]]
        api.get("/v1/me", headers={"Authorization": f"Bearer {owner.key}x"})  # a wrong key, logged as refused

        wait_delivered(api, owner, reseller, hook["id"], at_least=8)
        pages = [
            api.get("/ops", headers=OPS).text,
            api.get("/v1/ops/operations", headers=OPS).text,
            api.get("/v1/ops/queues", headers=OPS).text,
            api.get(f"/v1/organizations/{reseller}/webhook-endpoints/{hook['id']}/deliveries", headers=owner.auth).text,
            api.get(f"/v1/resellers/{reseller}/clients/{leaving}", headers=owner.auth).text,
            api.get(f"/v1/operations/{release.json()['id']}", headers=owner.auth).text,
            api.get(f"/v1/organizations/{reseller}/operations", headers=owner.auth).text,
            api.get(f"/v1/organizations/{reseller}/operations", headers={**owner.auth, "Accept": "text/csv"}).text,
            api.get(f"/v1/resellers/{reseller}/clients?status=all", headers={**owner.auth, "Accept": "text/csv"}).text,
        ]
    finally:
        receiver.stop()
    logs = capfd.readouterr()
    written = {
        "events": dump(Event),
        "operations": dump(Operation),
        "deliveries": dump(Delivery),
        "delivery attempts": dump(DeliveryAttempt),
        "inbound messages": dump(InboundMessage),
        "webhooks received": json.dumps([(r.type, r.data) for r in receiver.received]),
        "pages": "\n".join(pages),
        "logs": logs.out + logs.err,
    }

    assert len(set(secrets)) == len(secrets) == 9 and all(len(s) >= 10 for s in secrets)
    assert "client.released" in written["webhooks received"]  # the places searched are not empty
    assert "operation_accepted" in written["logs"]
    leaks = [(place, secret[:8] + "…") for place, text in written.items() for secret in secrets if secret in text]
    assert leaks == []
