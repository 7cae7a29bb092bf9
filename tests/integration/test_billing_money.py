"""What is owed, what was paid and what is coming, through the app, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest

from runtime.clock import clock
from tables import events
from tests.api import builders
from tests.api.builders import refused
from tests.integration.flows import buy, db, ledger_sums, renew, wait_done


def billing(api, who, org) -> dict:
    answer = api.get(f"/v1/organizations/{org}/billing", headers=who.auth)
    assert answer.status_code == 200, answer.text
    return answer.json()


def settle(api, who, org, amount, key="settle-1", currency="EUR"):
    headers = {**who.auth, **({"Idempotency-Key": key} if key else {})}
    return api.post(
        f"/v1/organizations/{org}/billing/settlements",
        json={"amount": {"amount": amount, "currency": currency}},
        headers=headers,
    )


def bought(api, who, org, name, **kwargs) -> dict:
    op = wait_done(api, who, buy(api, who, org, name, **kwargs).json()["id"])
    assert op["status"] == "succeeded", op
    return api.get(f"/v1/products/{op['result']['product_id']}", headers=who.auth).json()


def transactions(api, who, org, **query) -> list[dict]:
    items, after = [], None
    while True:
        params = {**query, **({"after": after} if after else {})}
        answer = api.get(f"/v1/organizations/{org}/billing/transactions", params=params, headers=who.auth)
        assert answer.status_code == 200, answer.text
        items += answer.json()["items"]
        after = answer.json()["next_cursor"]
        if after is None:
            return items


def test_an_invoice_purchase_is_owed_up_to_the_credit_limit_and_no_further(api, workers):
    workers()
    owner = builders.person(api)
    org = builders.organization(api, owner)

    first = wait_done(api, owner, buy(api, owner, org, "none.fr", payment_method="invoice").json()["id"])
    assert first["status"] == "failed"
    assert first["error"]["code"] == "credit_limit_exceeded"
    assert billing(api, owner, org)["credit_limit"] == {"amount": 0, "currency": "EUR"}

    builders.credit_limit(api, org, 4000)
    bought(api, owner, org, "one.fr", payment_method="invoice")
    bought(api, owner, org, "two.fr", payment_method="invoice")
    third = wait_done(api, owner, buy(api, owner, org, "three.fr", payment_method="invoice").json()["id"])

    assert third["error"]["code"] == "credit_limit_exceeded"
    assert "settle" in third["error"]["message"]
    summary = billing(api, owner, org)
    assert summary["owed"] == {"amount": 3000, "currency": "EUR"}
    assert summary["credit_limit"] == {"amount": 4000, "currency": "EUR"}
    assert summary["balance"]["amount"] == 0
    assert ledger_sums() == {"EUR": 0}


def test_an_organization_cannot_set_its_own_credit_limit(api):
    owner = builders.person(api)
    org = builders.organization(api, owner)

    answer = api.put(
        f"/v1/ops/organizations/{org}/credit-limit",
        json={"credit_limit": {"amount": 10**9, "currency": "EUR"}},
        headers=owner.auth,
    )

    assert answer.status_code == 401
    assert billing(api, owner, org)["credit_limit"]["amount"] == 0


def test_a_settlement_pays_off_what_is_owed_once_per_key_and_never_more(api, workers):
    workers()
    owner = builders.person(api)
    org = builders.organization(api, owner)
    builders.credit_limit(api, org, 10_000)
    bought(api, owner, org, "owed.fr", payment_method="invoice")

    refused(settle(api, owner, org, 500, key=None), 422, "idempotency_key_required")
    refused(settle(api, owner, org, 1501), 409, "settlement_exceeds_owed")
    refused(settle(api, owner, org, 500, currency="USD"), 409, "currency_mismatch")
    first = settle(api, owner, org, 500)
    replay = settle(api, owner, org, 500)

    assert first.status_code == 201, first.text
    assert first.json()["owed"] == {"amount": 1000, "currency": "EUR"}
    assert replay.json() == first.json()
    refused(settle(api, owner, org, 600), 422, "idempotency_key_reused")
    assert billing(api, owner, org)["owed"]["amount"] == 1000
    assert settle(api, owner, org, 1000, key="settle-2").json()["owed"]["amount"] == 0
    assert ledger_sums() == {"EUR": 0}


def test_settling_needs_billing_manage(api, workers):
    owner = builders.person(api)
    org = builders.organization(api, owner)
    viewer = builders.member(api, owner, org, ["billing:view"], "Val")

    refused(settle(api, viewer, org, 1), 403, "permission_denied")
    assert billing(api, viewer, org)["owed"]["amount"] == 0


def test_transactions_list_each_line_with_the_balance_and_owed_after_it(api, workers):
    workers()
    owner, org = builders.funded(api, 20_000)
    builders.credit_limit(api, org, 10_000)
    product = bought(api, owner, org, "lines.fr")
    bought(api, owner, org, "box", kind="mailbox", payment_method="invoice")
    clock.pin(datetime.fromisoformat(product["expires_at"]) + timedelta(days=40))  # redemption
    assert wait_done(api, owner, renew(api, owner, product).json()["id"])["status"] == "succeeded"
    assert settle(api, owner, org, 2400).status_code == 201

    lines = transactions(api, owner, org, limit=2)

    assert [(line["kind"], line["book"], line["amount"]["amount"]) for line in lines] == [
        ("topup", "prepaid", 20_000),
        ("purchase", "prepaid", -1500),
        ("purchase", "invoice", -2400),
        ("renewal", "prepaid", -1500),
        ("restore_fee", "prepaid", -8000),
        ("settlement", "invoice", 2400),
    ]
    assert [(line["balance"]["amount"], line["owed"]["amount"]) for line in lines] == [
        (20_000, 0),
        (18_500, 0),
        (18_500, 2400),
        (17_000, 2400),
        (9000, 2400),
        (9000, 0),
    ]
    assert lines[1]["product_id"] == lines[3]["product_id"] == product["id"]
    assert lines[2]["product_kind"] == "mailbox"
    assert billing(api, owner, org)["balance"]["amount"] == lines[-1]["balance"]["amount"]

    renewed_at = lines[3]["created_at"]
    later = transactions(api, owner, org, since=renewed_at)
    assert [line["kind"] for line in later] == ["renewal", "restore_fee", "settlement"]
    assert later[0]["balance"]["amount"] == 17_000  # running from the very first line
    earlier = transactions(api, owner, org, until=renewed_at)
    assert [line["kind"] for line in earlier] == ["topup", "purchase", "purchase"]

    exported = api.get(f"/v1/organizations/{org}/billing/transactions", headers={**owner.auth, "Accept": "text/csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["kind"], int(r["amount"]), int(r["balance"]), int(r["owed"])) for r in rows] == [
        (line["kind"], line["amount"]["amount"], line["balance"]["amount"], line["owed"]["amount"]) for line in lines
    ]


def test_transactions_need_billing_view_and_a_cursor_from_the_list(api):
    owner, org = builders.funded(api, 100)
    stranger = builders.person(api, "Eve")
    member = builders.member(api, owner, org, ["product:view"], "Pat")
    url = f"/v1/organizations/{org}/billing/transactions"

    assert api.get(url, headers=stranger.auth).status_code == 404
    refused(api.get(url, headers=member.auth), 403, "permission_denied")
    refused(api.get(url, params={"after": "nope"}, headers=owner.auth), 400, "invalid_cursor")
    refused(api.get(url, params={"since": "2027-01-01T00:00:00"}, headers=owner.auth), 400, "invalid_request")


def test_a_statement_sums_a_month_per_kind_and_per_client(api, workers):
    workers()
    clock.pin(datetime.fromisoformat("2027-03-10T12:00:00+00:00"))
    owner, reseller = builders.funded(api, 50_000, reseller=True)
    builders.credit_limit(api, reseller, 10_000)
    client_id = builders.client_of(api, owner, reseller, name="Bistro")
    bought(api, owner, reseller, "bistro.fr", client_id=client_id)
    bought(api, owner, reseller, "mail", kind="mailbox", client_id=client_id, payment_method="invoice")
    bought(api, owner, reseller, "own.fr")
    settle(api, owner, reseller, 400)
    clock.pin(datetime.fromisoformat("2027-04-02T12:00:00+00:00"))
    bought(api, owner, reseller, "april.fr")
    url = f"/v1/organizations/{reseller}/billing/statements"

    march = api.get(f"{url}/2027-03", headers=owner.auth)

    assert march.status_code == 200, march.text
    body = march.json()
    assert {t["kind"]: t["total"]["amount"] for t in body["totals"]} == {
        "topup": 50_000,
        "purchase": 1500 + 2400 + 1500,
        "settlement": 400,
    }
    clients = {c["client_id"]: c for c in body["clients"]}
    assert clients[client_id]["name"] == "Bistro"
    assert {t["kind"]: t["total"]["amount"] for t in clients[client_id]["totals"]} == {
        "domain.purchase": 1500,
        "mailbox.purchase": 2400,
    }
    assert clients[None]["total"]["amount"] == 1500
    assert body["opening"]["balance"]["amount"] == 0
    assert body["closing"] == {
        "balance": {"amount": 47_000, "currency": "EUR"},
        "owed": {"amount": 2000, "currency": "EUR"},
    }
    april = api.get(f"{url}/2027-04", headers=owner.auth).json()
    assert april["opening"] == body["closing"]
    assert {t["kind"]: t["total"]["amount"] for t in april["totals"]} == {"purchase": 1500}

    exported = api.get(f"{url}/2027-03", headers={**owner.auth, "Accept": "text/csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {
        "section": "client",
        "client_id": client_id,
        "client_name": "Bistro",
        "kind": "mailbox.purchase",
        "amount": "2400",
        "currency": "EUR",
    } in rows

    page = api.get(f"{url}/2027-03", headers={**owner.auth, "Accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "Bistro" in page.text and "24.00 EUR" in page.text


@pytest.mark.parametrize("month", ["2027-13", "march", "2027-3", "2027-03-01"])
def test_a_bad_month_is_a_400_with_a_code(api, month):
    owner, org = builders.funded(api, 100)

    message = refused(
        api.get(f"/v1/organizations/{org}/billing/statements/{month}", headers=owner.auth), 400, "invalid_month"
    )

    assert "YYYY-MM" in message


def low_balance_events(org: str) -> list[dict]:
    return db(events.of(org, "billing.low_balance"))


def test_low_balance_is_told_once_per_crossing(api, workers):
    workers()
    owner, org = builders.funded(api, 10_000)
    answer = api.patch(
        f"/v1/organizations/{org}/billing",
        json={"low_balance_threshold": {"amount": 6000, "currency": "EUR"}},
        headers=owner.auth,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["low_balance_threshold"] == {"amount": 6000, "currency": "EUR"}

    bought(api, owner, org, "a.fr")  # 8500: above
    bought(api, owner, org, "b.fr")  # 7000: above
    bought(api, owner, org, "c.fr")  # 5500: crossed
    bought(api, owner, org, "d.fr")  # 4000: still below
    assert len(low_balance_events(org)) == 1
    assert billing(api, owner, org)["below_low_balance"] is True
    builders.fund(api, owner, org, 5000)  # 9000: above again
    assert billing(api, owner, org)["below_low_balance"] is False
    bought(api, owner, org, "e.fr")  # 7500
    bought(api, owner, org, "f.fr")  # 6000: not below
    assert len(low_balance_events(org)) == 1
    bought(api, owner, org, "g.fr")  # 4500: crossed again

    told = low_balance_events(org)
    assert len(told) == 2
    assert told[-1]["data"]["balance"] == {"amount": 4500, "currency": "EUR"}
    assert told[-1]["data"]["low_balance_threshold"]["amount"] == 6000


def test_the_threshold_needs_billing_manage_and_the_organization_currency(api):
    owner, org = builders.funded(api, 100)
    viewer = builders.member(api, owner, org, ["billing:view"], "Val")
    url = f"/v1/organizations/{org}/billing"

    refused(
        api.patch(url, json={"low_balance_threshold": {"amount": 1, "currency": "EUR"}}, headers=viewer.auth),
        403,
        "permission_denied",
    )
    refused(
        api.patch(url, json={"low_balance_threshold": {"amount": 1, "currency": "GBP"}}, headers=owner.auth),
        409,
        "currency_mismatch",
    )


def test_the_autorenew_forecast_counts_what_falls_due_within_31_days(api, workers):
    workers()
    owner, org = builders.funded(api, 100_000)
    soon = bought(api, owner, org, "soon.fr")
    bought(api, owner, org, "box", kind="mailbox")
    bought(api, owner, org, "later.fr", years=2)  # two years ahead: not in the window
    off = bought(api, owner, org, "off.fr")
    api.patch(f"/v1/products/{off['id']}", json={"autorenew": False}, headers=owner.auth)
    assert billing(api, owner, org)["autorenew_forecast"] == {"amount": 0, "currency": "EUR", "products": 0}

    clock.pin(datetime.fromisoformat(soon["expires_at"]) - timedelta(days=20))

    forecast = billing(api, owner, org)["autorenew_forecast"]
    assert forecast == {"amount": 1500 + 2400, "currency": "EUR", "products": 2}


def test_a_usd_organization_buys_from_the_usd_price_list_and_refuses_euros(api, workers):
    workers()
    owner = builders.person(api)
    created = api.post("/v1/organizations", json={"name": "Yankee", "currency": "USD"}, headers=owner.auth)
    org = created.json()["id"]
    refused(
        api.post(
            f"/v1/organizations/{org}/funds", json={"amount": {"amount": 5000, "currency": "EUR"}}, headers=owner.auth
        ),
        409,
        "currency_mismatch",
    )
    answer = api.post(
        f"/v1/organizations/{org}/funds", json={"amount": {"amount": 5000, "currency": "USD"}}, headers=owner.auth
    )
    assert answer.status_code == 201, answer.text

    op = wait_done(api, owner, buy(api, owner, org, "yankee.com").json()["id"])

    assert op["result"]["price"] == {"amount": 1700, "currency": "USD"}
    summary = billing(api, owner, org)
    assert summary["balance"] == {"amount": 3300, "currency": "USD"}
    assert summary["next_tier_at"] == {"amount": 275_000, "currency": "USD"}
    assert ledger_sums() == {"USD": 0}
    assert api.get("/v1/catalog", params={"currency": "USD"}).json()["kinds"][0]["yearly_price"]["currency"] == "USD"


def test_a_released_client_keeps_the_resellers_currency(api, workers):
    workers()
    owner = builders.person(api)
    reseller = api.post(
        "/v1/organizations", json={"name": "Brit", "reseller": True, "currency": "GBP"}, headers=owner.auth
    ).json()["id"]
    client_id = builders.client_of(api, owner, reseller)

    done = wait_done(
        api,
        owner,
        api.post(
            f"/v1/resellers/{reseller}/clients/{client_id}/release",
            json={"owner_email": "new@owner.test"},
            headers=owner.auth,
        ).json()["id"],
    )
    claimed = api.post("/v1/accounts/claim", json={"claim_token": done["result"]["claim_token"]})
    new_owner = builders.Person(id=claimed.json()["account_id"], email="new@owner.test", key=claimed.json()["api_key"])
    released = done["result"]["organization_id"]

    assert api.get(f"/v1/organizations/{released}", headers=new_owner.auth).json()["currency"] == "GBP"
    assert billing(api, new_owner, released)["balance"] == {"amount": 0, "currency": "GBP"}


def test_low_balance_is_told_when_the_balance_cannot_pay_the_autorenewals_due(api, workers):
    workers()
    owner, org = builders.funded(api, 5000)
    soon = bought(api, owner, org, "soon.fr")  # 3500 left
    clock.pin(datetime.fromisoformat(soon["expires_at"]) - timedelta(days=20))  # its autorenewal is due
    assert billing(api, owner, org)["autorenew_forecast"]["amount"] == 1500
    assert low_balance_events(org) == []

    bought(api, owner, org, "box", kind="mailbox")  # 1100 left: less than the 1500 due

    told = low_balance_events(org)
    assert len(told) == 1
    assert told[0]["data"]["autorenew_forecast"] == {"amount": 1500, "currency": "EUR", "products": 1}
    assert told[0]["data"]["balance"] == {"amount": 1100, "currency": "EUR"}


def test_the_openapi_schema_lists_billing_low_balance_and_the_billing_routes(api):
    schema = api.get("/schema/openapi.json").json()

    assert "billing.low_balance" in str(schema["components"]["schemas"])
    for path in (
        "/v1/organizations/{org_id}/billing/transactions",
        "/v1/organizations/{org_id}/billing/statements/{month}",
        "/v1/organizations/{org_id}/billing/settlements",
        "/v1/ops/organizations/{org_id}/credit-limit",
    ):
        assert path in schema["paths"]


def test_the_daily_recalculation_warns_when_autorenewals_come_due_without_a_charge(api, workers, broker, sender):
    from worker import sweeps

    workers()
    owner, org = builders.funded(api, 2000)
    soon = bought(api, owner, org, "soon.fr")  # 500 left; nothing due for a year
    broker.join("tiers", interval=10, timeout=20_000)
    assert low_balance_events(org) == []

    clock.pin(datetime.fromisoformat(soon["expires_at"]) - timedelta(days=20))
    db(sweeps.recalculate_tiers(sender))
    broker.join("tiers", interval=10, timeout=20_000)

    told = low_balance_events(org)
    assert [e["data"]["autorenew_forecast"]["amount"] for e in told] == [1500]
    db(sweeps.recalculate_tiers(sender))  # the next day: still below, not told again
    broker.join("tiers", interval=10, timeout=20_000)
    assert len(low_balance_events(org)) == 1
