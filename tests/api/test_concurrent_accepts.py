"""Purchases sent at once: each answered for itself, whatever shares its write (SQLite records
concurrent accepts in one transaction) or its path (the lean accept and the handler's)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from tests.api import builders


def purchase(name: str, payment_method: str = "prepaid") -> dict:
    return {"kind": "domain", "name": name, "years": 1, "payment_method": payment_method}


def test_purchases_sent_at_once_are_each_accepted_once_with_their_own_outcome(client):
    owner = builders.person(client)
    org = builders.organization(client, owner)
    path = f"/v1/organizations/{org}/purchases"
    sends = [({}, purchase(f"at-once-{n}.fr")) for n in range(8)]
    sends += [({"Idempotency-Key": "shared"}, purchase("twin.fr"))] * 3  # one operation for the three
    sends += [({}, {**purchase("bad.fr"), "years": "1"})]  # a lenient body: refused, the rest unharmed
    sends += [({"Dry-Run": "1"}, purchase("dry-run.fr"))]  # the handler's path, beside the others
    start = threading.Barrier(len(sends))

    def send(item):
        headers, body = item
        start.wait()
        return client.post(path, headers={**owner.auth, **headers}, json=body)

    with ThreadPoolExecutor(max_workers=len(sends)) as pool:
        answers = list(pool.map(send, sends))

    plain, twins, lenient, dry_run = answers[:8], answers[8:11], answers[11], answers[12]
    assert [a.status_code for a in plain] == [202] * 8, [a.text for a in plain]
    assert len({a.json()["id"] for a in plain}) == 8
    assert {a.status_code for a in twins} == {202}
    assert len({a.json()["id"] for a in twins}) == 1
    builders.refused(lenient, 400, "invalid_request")
    assert dry_run.status_code == 200 and dry_run.json()["dry_run"] is True
    listed = client.get(f"/v1/organizations/{org}/operations", headers=owner.auth).json()
    assert {op["id"] for op in listed["items"]} == {a.json()["id"] for a in plain + twins}
