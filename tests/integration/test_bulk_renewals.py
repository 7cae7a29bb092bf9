"""Bulk renewals: one exactly-once renewal operation per item, and a batch that reports each outcome."""

from __future__ import annotations

from collections import Counter

from tables import events
from tables.operations import Operation
from tests.api import builders
from tests.integration.flows import buy, charges_for, db, wait_all, wait_done
from worker.actors.batches import execute_batch
from worker.actors.renewals import renewal
from worker.execution import run_operation
from worker.queue import operation_message
from worker.relay import relay

STALE = "2030-01-01T00:00:00Z"


def bought_products(api, owner, org, names: list[str]) -> list[dict]:
    ops = wait_all(api, owner, [buy(api, owner, org, name).json()["id"] for name in names])
    assert {op["status"] for op in ops} == {"succeeded"}, ops
    return [api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json() for op in ops]


def item(product: dict, guard: str | None = None, **extra) -> dict:
    return {"product_id": product["id"], "years": 1, "current_expires_at": guard or product["expires_at"], **extra}


def renew_many(api, who, org, items: list[dict], **headers):
    return api.post(f"/v1/organizations/{org}/renewals", json={"items": items}, headers={**who.auth, **headers})


def children_of(batch_id: str) -> list[dict]:
    return db(
        Operation.select(Operation.id, Operation.product_id, Operation.status)
        .where(Operation.parent_id == batch_id)
        .run()
    )


def test_a_batch_renews_each_item_once_and_reports_every_outcome(api, workers):
    workers()
    owner, org = builders.funded(api, 100_000)
    other_owner, other = builders.funded(api, 10_000)
    mine = bought_products(api, owner, org, [f"bulk{i}.fr" for i in range(8)])
    theirs = bought_products(api, other_owner, other, ["theirs.fr"])[0]
    items = (
        [item(p) for p in mine[:6]]
        + [item(p, STALE) for p in mine[6:]]
        + [item(theirs), {**item(mine[0]), "product_id": "prd_nope"}]
    )

    answer = renew_many(api, owner, org, items)

    assert answer.status_code == 202, answer.text
    assert answer.json()["kind"] == "renewal_batch"
    batch = wait_done(api, owner, answer.json()["id"])
    assert batch["status"] == "succeeded", batch
    result = batch["result"]
    assert (result["total_items"], result["renewed_items"], result["failed_items"]) == (10, 6, 4)
    outcomes = result["items"]
    assert [o["product_id"] for o in outcomes] == [i["product_id"] for i in items]
    assert [o["status"] for o in outcomes] == ["succeeded"] * 6 + ["failed"] * 4
    assert [o["error"]["code"] for o in outcomes[6:]] == [
        "expiry_mismatch",
        "expiry_mismatch",
        "not_found",
        "not_found",
    ]
    assert [o["operation_id"] for o in outcomes[8:]] == [None, None]  # never touched: no operation at all
    assert outcomes[8]["error"]["message"] == outcomes[9]["error"]["message"].replace("prd_nope", theirs["id"])

    for outcome in outcomes[:8]:
        child = api.get(f"/v1/operations/{outcome['operation_id']}", headers=owner.auth).json()
        assert (child["kind"], child["product_id"], child["status"]) == (
            "renewal",
            outcome["product_id"],
            outcome["status"],
        )
    assert charges_for(org) == [1500] * 8 + [1500] * 6
    assert charges_for(other) == [1500]
    assert api.get(f"/v1/products/{theirs['id']}", headers=other_owner.auth).json() == theirs
    renewed = Counter(e["product_id"] for e in db(events.of(org, "product.renewed")))
    assert renewed == Counter(p["id"] for p in mine[:6])
    finished = [e for e in db(events.of(org, "operation.succeeded")) if e["operation_id"] == batch["id"]]
    assert [e["data"] for e in finished] == [
        {"kind": "renewal_batch", "result": {"total_items": 10, "renewed_items": 6, "failed_items": 4}}
    ]


def test_running_a_batch_again_makes_no_second_child_and_charges_nothing_more(api, workers, sender, broker):
    worker = workers()
    owner, org = builders.funded(api, 100_000)
    mine = bought_products(api, owner, org, [f"again{i}.fr" for i in range(4)])
    worker.pause()
    answer = renew_many(api, owner, org, [item(p) for p in mine])
    batch_id = answer.json()["id"]

    db(execute_batch(batch_id, sender))  # the batch message delivered twice, before any child ran
    db(execute_batch(batch_id, sender))
    worker.resume()
    batch = wait_done(api, owner, batch_id)
    sender.send(operation_message("renewal_batch", batch_id))  # and once more after it finished
    db(execute_batch(batch_id, sender))
    broker.join("operations", interval=10, timeout=20_000)

    assert batch["status"] == "succeeded" and batch["result"]["renewed_items"] == 4
    assert sorted(c["product_id"] for c in children_of(batch_id)) == sorted(p["id"] for p in mine)
    assert charges_for(org) == [1500] * 4 + [1500] * 4
    assert wait_done(api, owner, batch_id)["result"] == batch["result"]


def test_a_batch_that_missed_its_last_childs_notice_is_finished_by_the_relay(api, workers, sender, broker):
    worker = workers()
    owner, org = builders.funded(api, 100_000)
    mine = bought_products(api, owner, org, ["lost1.fr", "lost2.fr"])
    worker.pause()
    batch_id = renew_many(api, owner, org, [item(p) for p in mine]).json()["id"]
    db(execute_batch(batch_id, sender))
    broker.flush_all()  # the children's messages are lost...
    for child in children_of(batch_id):  # ...and they run without telling the batch
        assert db(run_operation(child["id"], renewal))[0] == "succeeded"
    assert api.get(f"/v1/operations/{batch_id}", headers=owner.auth).json()["status"] == "running"

    worker.resume()
    assert db(relay(sender, stall_seconds=0)) >= 1
    batch = wait_done(api, owner, batch_id)

    assert batch["status"] == "succeeded"
    assert batch["result"]["renewed_items"] == 2
    assert charges_for(org) == [1500] * 4


def test_a_dry_run_batch_quotes_the_total_and_the_items_that_would_fail(api, workers):
    workers()
    owner, org = builders.funded(api, 12_000 + 4 * 1500)  # after 4 purchases: 8 renewals of 15.00 EUR
    other_owner, other = builders.funded(api, 10_000)
    mine = bought_products(api, owner, org, [f"dry{i}.fr" for i in range(4)])
    theirs = bought_products(api, other_owner, other, ["dry-theirs.fr"])[0]
    items = [item(mine[0], years=2), item(mine[1], years=3), item(mine[2], STALE), item(theirs), item(mine[3], years=9)]

    answer = renew_many(api, owner, org, items, **{"Dry-Run": "1"})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["would_fail"] is None
    assert [(i["product_id"], i["would_fail"] and i["would_fail"]["code"]) for i in body["items"]] == [
        (mine[0]["id"], None),
        (mine[1]["id"], None),
        (mine[2]["id"], "expiry_mismatch"),
        (theirs["id"], "not_found"),
        (mine[3]["id"], "insufficient_funds"),
    ]  # 135.00 EUR: more than is left
    assert body["failing_items"] == 3
    assert body["quote"]["price"] == {"amount": 5 * 1500, "currency": "EUR"}
    assert (body["quote"]["payer"], body["quote"]["payment_method"], body["quote"]["tier"]) == (org, "prepaid", "A")
    assert body["items"][4]["quote"]["price"]["amount"] == 9 * 1500
    assert db(Operation.count().where(Operation.kind.is_in(["renewal", "renewal_batch"])).run()) == 0

    real = wait_done(api, owner, renew_many(api, owner, org, items).json()["id"])
    assert [o["error"] and o["error"]["code"] for o in real["result"]["items"]] == [
        i["would_fail"] and i["would_fail"]["code"] for i in body["items"]
    ]
    assert sum(charges_for(org)) - 4 * 1500 == body["quote"]["price"]["amount"]


def test_only_members_who_may_see_products_read_a_batch(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)
    viewer = builders.member(api, owner, org, ["org:view"])
    reader = builders.member(api, owner, org, ["product:view"])
    outsider = builders.person(api, "Eve")
    builders.organization(api, outsider)
    product = bought_products(api, owner, org, ["read.fr"])[0]
    batch_id = renew_many(api, owner, org, [item(product)], **{"Idempotency-Key": "bulk-1"}).json()["id"]
    wait_done(api, owner, batch_id)

    assert api.get(f"/v1/operations/{batch_id}", headers=reader.auth).status_code == 200
    builders.refused(api.get(f"/v1/operations/{batch_id}", headers=viewer.auth), 404, "not_found")
    builders.refused(api.get(f"/v1/operations/{batch_id}", headers=outsider.auth), 404, "not_found")
    again = renew_many(api, owner, org, [item(product)], **{"Idempotency-Key": "bulk-1"})
    assert (again.status_code, again.json()["id"]) == (202, batch_id)
    builders.refused(
        renew_many(api, owner, org, [item(product, years=2)], **{"Idempotency-Key": "bulk-1"}),
        422,
        "idempotency_key_reused",
    )
    assert charges_for(org) == [1500, 1500]


def test_a_batch_waiting_on_its_items_longer_than_the_age_bound_is_not_failed(api, workers, sender, broker):
    """The age bound is for operations whose own work keeps raising; a batch only waits on its
    items (each bounded itself), so a long backlog of them must not fail it."""
    from datetime import timedelta

    from runtime.clock import clock
    from worker.execution import Bounds

    worker = workers()
    owner, org = builders.funded(api, 100_000)
    mine = bought_products(api, owner, org, ["slow1.fr", "slow2.fr"])
    worker.pause()
    batch_id = renew_many(api, owner, org, [item(p) for p in mine]).json()["id"]
    db(execute_batch(batch_id, sender))
    broker.flush_all()  # the items wait (their messages lost) while the batch is running

    clock.advance(timedelta(hours=2))
    db(relay(sender, stall_seconds=0, bounds=Bounds(max_attempts=10, max_age_seconds=3600)))
    worker.resume()
    batch = wait_done(api, owner, batch_id)

    assert batch["status"] == "succeeded", batch
    assert batch["result"]["renewed_items"] == 2
