"""A reseller rehearsing a year in a sandbox, beside a production reseller: the scenario of
tests/integration/test_test_clocks.py and bench/test_clock_bench.py.

Through the public API: a sandbox reseller with `clients` clients buys `products` domains in
three waves ten simulated days apart (the clock moved by test-clock advances), one in four with
autorenew off; a production reseller buys some of the same names. Then one advance moves
the sandbox `months` months ahead. `expected_*` say what the lifecycle rules give.
"""

from __future__ import annotations

import calendar
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rules import pricing
from rules.catalog import DEFAULT_CATALOG, kind_of
from rules.lifecycle import State, add_years, rfc3339, state_at
from rules.money import Money
from rules.schedule import states_passed
from tables.events import Event
from tables.ledger import LedgerEntry
from tables.products import Product
from tests.api import builders
from tests.integration.flows import buy, db, wait_all, wait_done
from tests.integration.receiver import Receiver

DOMAIN = kind_of(DEFAULT_CATALOG, "domain")
WAVES = 3
WAVE_GAP = timedelta(days=10)
SHARED_NAMES = 5  # names the production reseller holds too


def add_months(moment: datetime, months: int) -> datetime:
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def name_of(index: int) -> str:
    return f"rehearsal-{index:04d}.fr"


def autorenews(index: int) -> bool:
    return index % 4 != 0


@dataclass
class Rehearsal:
    owner: builders.Person
    sandbox: str
    production: str
    production_products: list[str]
    bought_at: dict[str, datetime] = field(default_factory=dict)  # sandbox product id -> its clock then
    index_of: dict[str, int] = field(default_factory=dict)
    advance_op: dict | None = None
    advanced_to: datetime | None = None
    advance_seconds: float = 0.0


def subscribe(api, who, org, receiver: Receiver, path: str) -> None:
    answer = api.post(
        f"/v1/organizations/{org}/webhook-endpoints",
        headers=who.auth,
        json={"url": receiver.base + path, "event_types": []},
    )
    assert answer.status_code == 201, answer.text
    receiver.secrets[path] = answer.json()["secret"]


def settle(broker) -> None:
    for queue in ("operations", "tiers", "webhooks"):
        broker.join(queue, interval=10, timeout=120_000)


def advance(api, who, org, to: datetime, timeout: float = 300.0) -> dict:
    answer = api.post(f"/v1/organizations/{org}/test-clock", json={"advance_to": to.isoformat()}, headers=who.auth)
    assert answer.status_code == 202, answer.text
    return wait_done(api, who, answer.json()["id"], timeout=timeout)


def clock_of(api, who, org) -> datetime:
    return datetime.fromisoformat(api.get(f"/v1/organizations/{org}/test-clock", headers=who.auth).json()["now"])


def build(api, broker, receiver: Receiver, *, products: int, clients: int) -> Rehearsal:
    owner = builders.person(api, "Rehearser")
    answer = api.post(
        "/v1/organizations", json={"name": "Rehearsal", "reseller": True, "sandbox": True}, headers=owner.auth
    )
    assert answer.status_code == 201, answer.text
    sandbox = answer.json()["id"]
    production = builders.organization(api, owner, reseller=True, name="Live")
    for org in (sandbox, production):
        builders.fund(api, owner, org, 100_000_000)
    subscribe(api, owner, sandbox, receiver, "/sandbox")
    subscribe(api, owner, production, receiver, "/production")

    live = wait_all(api, owner, [buy(api, owner, production, name_of(i)).json()["id"] for i in range(SHARED_NAMES)])
    assert {op["status"] for op in live} == {"succeeded"}, live
    client_ids = [builders.client_of(api, owner, sandbox, f"Client{c}") for c in range(clients)]
    rehearsal = Rehearsal(owner, sandbox, production, [op["result"]["product_id"] for op in live])
    per_wave = -(-products // WAVES)
    for wave in range(WAVES):
        if wave:
            assert advance(api, owner, sandbox, clock_of(api, owner, sandbox) + WAVE_GAP)["status"] == "succeeded"
        at = clock_of(api, owner, sandbox)
        indexes = range(wave * per_wave, min(products, (wave + 1) * per_wave))
        ops = [buy(api, owner, sandbox, name_of(i), client_id=client_ids[i % clients]).json()["id"] for i in indexes]
        for index, op in zip(indexes, wait_all(api, owner, ops, timeout=120), strict=True):
            assert op["status"] == "succeeded", op
            product_id = op["result"]["product_id"]
            rehearsal.bought_at[product_id], rehearsal.index_of[product_id] = at, index
            if not autorenews(index):
                patched = api.patch(f"/v1/products/{product_id}", json={"autorenew": False}, headers=owner.auth)
                assert patched.status_code == 200, patched.text
        settle(broker)
    return rehearsal


def rehearse(api, broker, rehearsal: Rehearsal, months: int) -> None:
    """The one timed call: the sandbox's clock `months` months ahead, every delivery made."""
    target = add_months(clock_of(api, rehearsal.owner, rehearsal.sandbox), months)
    started = time.monotonic()
    rehearsal.advance_op = advance(api, rehearsal.owner, rehearsal.sandbox, target)
    settle(broker)
    rehearsal.advance_seconds = time.monotonic() - started
    rehearsal.advanced_to = target


def expected_product(rehearsal: Rehearsal, product_id: str) -> tuple[str, datetime, Counter]:
    """(state, expires_at, its event types) as the lifecycle rules give them at the end."""
    bought, end = rehearsal.bought_at[product_id], rehearsal.advanced_to
    expires = add_years(bought, 1)
    types = Counter({"product.purchased": 1, "operation.succeeded": 1})
    if autorenews(rehearsal.index_of[product_id]):  # renewed at the first attempt, 31 days before
        assert end >= expires - timedelta(days=max(DOMAIN.autorenew_days_before))
        types.update({"product.renewed": 1, "operation.succeeded": 1})
        return State.ACTIVE.value, add_years(expires, 1), types
    types["product.expiring"] = sum(1 for d in DOMAIN.reminder_days_before if expires - timedelta(days=d) <= end)
    for state in states_passed(DOMAIN, State.ACTIVE, expires, end):
        types["product.expired" if state is State.GRACE else "product.state_changed"] += 1
    return state_at(DOMAIN, expires, end).value, expires, +types


def expected_tier(org: str, end: datetime) -> str:
    """The tier of the payer's revenue over the 12 months before `end` (what the daily job computes)."""
    rows = db(
        LedgerEntry.select(LedgerEntry.amount, LedgerEntry.created_at)
        .where((LedgerEntry.organization_id == org) & (LedgerEntry.book == "revenue"))
        .run()
    )
    volume = sum(r["amount"] for r in rows if r["created_at"] >= add_years(end, -1) and r["created_at"] <= end)
    return pricing.tier_for(Money(volume, "EUR")).name


def check(api, receiver: Receiver, rehearsal: Rehearsal) -> None:
    """Every expected event arrived once, in order of simulated time; the products are where the
    rules put them; production is untouched."""
    assert rehearsal.advance_op["status"] == "succeeded", rehearsal.advance_op
    assert receiver.rejected == []
    recorded = db(
        Event.select(Event.id, Event.type, Event.product_id, Event.created_at)
        .where(Event.organization_id == rehearsal.sandbox)
        .run()
    )
    got = receiver.delivered("/sandbox")
    assert Counter(r.webhook_id for r in got) == Counter({e["id"]: 1 for e in recorded}), "each event once"
    stamps = [r.timestamp for r in got]
    assert stamps == sorted(stamps), "in order of simulated time"
    assert all(r.sandbox for r in got)
    assert max(stamps) == rfc3339(rehearsal.advanced_to)

    products = {p["id"]: p for p in db(Product.select().where(Product.organization == rehearsal.sandbox).run())}
    assert set(products) == set(rehearsal.bought_at)
    by_product: dict[str, Counter] = {}
    for event in recorded:
        if event["product_id"]:
            by_product.setdefault(event["product_id"], Counter())[event["type"]] += 1
    for product_id, product in products.items():
        state, expires, types = expected_product(rehearsal, product_id)
        assert (product["state"], product["expires_at"]) == (state, expires), product
        assert by_product[product_id] == types, (product_id, by_product[product_id], types)
    assert sum(1 for e in recorded if e["type"] == "product.expiring") > 0
    billing = api.get(f"/v1/organizations/{rehearsal.sandbox}/billing", headers=rehearsal.owner.auth).json()
    tier = expected_tier(rehearsal.sandbox, rehearsal.advanced_to)
    assert billing["tier"] == tier, (billing, tier)

    for product_id in rehearsal.production_products:
        product = api.get(f"/v1/products/{product_id}", headers=rehearsal.owner.auth).json()
        assert product["state"] == "active" and product["autorenew"] is True
    untouched = Counter(
        e["type"] for e in db(Event.select(Event.type).where(Event.organization_id == rehearsal.production).run())
    )
    assert set(untouched) <= {"product.purchased", "operation.succeeded", "tier.changed"}, untouched
    assert not any(r.sandbox for r in receiver.delivered("/production"))
