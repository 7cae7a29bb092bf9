"""The production topology as real processes, through a reseller's whole day.

PostgreSQL, a private redis-server, 2 × `tenure web` (ports A and B), 2 × `tenure worker`,
2 × `tenure scheduler`, and a real verifying webhook receiver on 127.0.0.1. The reseller's
back office talks to both web processes in turn: purchases (some replayed with the same
Idempotency-Key on the other process), renewals, signed inbound webhooks (each posted twice,
once per process), a client upsert and a release. Midway, one worker's whole process group
and one scheduler get SIGKILL and stay dead: the survivors carry the rest (the relay sends
again what the dead worker held, once TENURE_RELAY_STALL_SECONDS have passed).

At the end every effect happened exactly once: one product per accepted purchase, one
renewal per renewal operation, one revenue entry per charge, a balanced ledger, the balance
the charges explain, the released client's products in its new organization, and each event
delivered to the receiver once, correctly signed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import floor
from pathlib import Path

import asyncpg
import httpx
import msgspec
import pytest
from standardwebhooks import Webhook

from rules.catalog import DEFAULT_CATALOG
from tables.clients import Client
from tables.events import Event
from tables.ledger import LedgerEntry
from tables.operations import Operation
from tables.products import Product
from tables.webhooks import LEASE, Delivery, DeliveryAttempt
from tests.api import builders
from tests.e2e.conftest import Proc, free_port, tenure_env, wait_for_port
from tests.integration.flows import FINISHED, db, ledger_sums
from tests.integration.receiver import Receiver

STALL_S = 2
OPS_TOKEN = "topology-ops-token"
FUNDS = 300_000  # 3,000.00 EUR: the day spends about a third, and stays in tier A (below 2,500.00)
PRICE = {kind: entry.yearly_price.amount for kind, entry in DEFAULT_CATALOG.items()}
SETTLE_S = 60  # after the day's last request, for every operation and delivery to finish
HOOK_PATH = "/hooks/reseller"
KILL_WAIT_S = 3  # how long a kill may wait for a moment that strands no delivery
LANDING_S = 5.0  # at most, after SIGSTOP, for the frozen process's last packets to reach Redis and PostgreSQL
SENDING_S = 0.05  # a running process sends a delivery it made within this (stranded: unsent for longer)


# --- the topology -----------------------------------------------------------------------------


@dataclass
class Topology:
    web: list[Proc]
    workers: list[Proc]
    schedulers: list[Proc]
    ports: list[int]
    broker_ids: list[str]  # the Dramatiq broker id (in Redis) of each worker's consumer process
    killed: list[Proc] = field(default_factory=list)

    def survivors_dead(self) -> str | None:
        dead = [p.name for p in (*self.web, *self.workers, *self.schedulers) if p not in self.killed and not p.alive()]
        return f"{', '.join(dead)} died" if dead else None


def start_topology(processes, redis, database_url: str, tmp_path) -> Topology:
    base_env = tenure_env(
        database_url,
        redis.url,
        TENURE_RELAY_STALL_SECONDS=str(STALL_S),
        TENURE_ALLOW_PRIVATE_WEBHOOK_URLS="1",
        TENURE_OPS_TOKEN=OPS_TOKEN,
    )

    def worker_env(n: int) -> dict[str, str]:
        # Each worker its own metrics port and Prometheus directory: none of the machine's 9191.
        prom_dir = tmp_path / f"prom-{n}"
        prom_dir.mkdir()
        return {
            **base_env,
            "TENURE_WORKER_METRICS_PORT": str(free_port()),
            "dramatiq_prom_host": "127.0.0.1",
            "dramatiq_prom_db": str(prom_dir),
        }

    # The second worker starts once the first polls Redis. Web and scheduler processes send
    # nothing before the day begins, so each new consumer heartbeat in Redis is the worker just
    # started: the killer watches each consumer's unacknowledged messages to choose its moment.
    first = processes.tenure("worker-1", "worker", "--processes", "1", "--threads", "4", env=worker_env(1))
    ports = [free_port(), free_port()]
    web = [
        processes.tenure(f"web-{name}", "web", "--port", str(port), env=base_env)
        for name, port in zip("ab", ports, strict=True)
    ]
    schedulers = [processes.tenure(f"scheduler-{n}", "scheduler", env=base_env) for n in (1, 2)]
    first_id = new_consumer_id(redis, first, known=set())
    second = processes.tenure("worker-2", "worker", "--processes", "1", "--threads", "4", env=worker_env(2))
    second_id = new_consumer_id(redis, second, known={first_id})
    for proc, port in zip(web, ports, strict=True):
        wait_for_port(port, 60, proc=proc)
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
    for proc in (first, second, *schedulers):
        assert proc.alive(), proc.tail()
    return Topology(web, [first, second], schedulers, ports, [first_id, second_id])


def heartbeats(redis) -> list[str]:
    client = redis.client()
    try:
        return [member.decode() for member in client.zrange("dramatiq:__heartbeats__", 0, -1)]
    finally:
        client.close()


def new_consumer_id(redis, worker: Proc, known: set[str]) -> str:
    """The broker id `worker` polls Redis with: the one heartbeat that is not `known`."""
    deadline = time.monotonic() + 30
    while not (new := set(heartbeats(redis)) - known):
        assert worker.alive(), f"{worker.name} died while starting\n{worker.tail()}"
        assert time.monotonic() < deadline, f"{worker.name} never polled Redis\n{worker.tail()}"
        time.sleep(0.05)
    assert len(new) == 1, f"more than {worker.name} talks to Redis: {new}"
    return new.pop()


def held(client, broker_id: str, queue: str) -> int:
    """Messages of `queue` this consumer took from Redis and has not acknowledged yet."""
    return sum(client.scard(f"dramatiq:__acks__.{broker_id}.{name}") for name in (queue, f"{queue}.DQ"))


def unsent_deliveries(client) -> set[str]:
    """Deliveries made (and leased for their first attempt) whose message is nowhere in Redis.

    Queued and taken-but-unacknowledged messages both stay in the queue's `.msgs` hash.
    """
    waiting = {
        row["id"]
        for row in db(
            Delivery.select(Delivery.id).where((Delivery.status == "pending") & (Delivery.attempts == 0)).run()
        )
    }
    if not waiting:
        return set()
    sent: set[str] = set()
    for key in ("dramatiq:webhooks.msgs", "dramatiq:webhooks.DQ.msgs"):
        for raw in client.hvals(key):
            ids = json.loads(raw)["args"][0]  # a batch of delivery ids (one id in older messages)
            sent.update([ids] if isinstance(ids, str) else ids)
    return waiting - sent


def stranded_deliveries(client) -> set[str]:
    """Unsent deliveries that stay unsent a moment later: those of a frozen process.

    (A running process sends its own within milliseconds of making them.)
    """
    stranded = unsent_deliveries(client)
    deadline = time.monotonic() + SENDING_S
    while stranded and time.monotonic() < deadline:
        time.sleep(0.005)
        stranded &= unsent_deliveries(client)
    return stranded


def socket_inodes(pgid: int) -> set[str]:
    """The inodes of the sockets open in process group `pgid` (every process of it)."""
    inodes: set[str] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[2]) != pgid:
                continue
            for fd in (stat.parent / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError, IndexError):
            continue  # a process that exited meanwhile
    return inodes


def unsent_bytes(inodes: set[str]) -> int:
    """Bytes written to these TCP sockets that the peer has not acknowledged yet."""
    total = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                total += int(fields[4].split(":")[0], 16)
    return total


def wait_landed(proc: Proc, timeout: float = LANDING_S) -> None:
    """Once `proc`'s group is frozen: polls until what it wrote to its TCP connections (Redis,
    PostgreSQL) has reached the other end, or `timeout` passes."""
    inodes = socket_inodes(proc.pid)
    deadline = time.monotonic() + timeout
    while unsent_bytes(inodes) and time.monotonic() < deadline:
        time.sleep(0.005)


def freeze_then_kill(proc: Proc, fit: Callable[[], bool], anyway_after: float) -> bool:
    """SIGSTOPs the process group and, once what it already sent has landed, SIGKILLs it if
    `fit()` (or `anyway_after` has passed); otherwise lets it run on (SIGCONT)."""
    proc.kill(signal.SIGSTOP)
    try:
        wait_landed(proc)
        kill = fit() or time.monotonic() > anyway_after
    except BaseException:
        proc.kill(signal.SIGCONT)
        raise
    if not kill:
        proc.kill(signal.SIGCONT)
        return False
    proc.kill(signal.SIGKILL)  # the whole group: for a worker, its main, worker and exposition processes
    proc.popen.wait(timeout=10)
    return True


class Killer(threading.Thread):
    """SIGKILLs the process group of a worker that holds operations (whichever does first).

    Holding operations is the point: the relay must send them again. A delivery message the
    worker held, or one it had not sent yet for a delivery it just made, comes back only when
    that delivery's lease runs out (two minutes; Redis gives a dead consumer's messages back
    later still). The final wait allows for that, but the test would take two minutes more:
    so the worker is frozen first and killed only if it strands no delivery, else thawed and
    tried again. After KILL_WAIT_S, or once hurried, any worker holding operations will do
    (on a starved machine every worker always holds prefetched deliveries).
    """

    def __init__(self, redis, topology: Topology, day: Day) -> None:
        super().__init__(daemon=True)
        self.redis, self.topology, self.day = redis, topology, day
        self.go = threading.Event()
        self.cancelled = False
        self.anyway_after = float("inf")
        self.report: dict = {}

    def hurry(self) -> None:
        self.anyway_after = 0.0

    def cancel(self) -> None:
        self.cancelled = True
        self.go.set()

    def run(self) -> None:
        self.go.wait()
        if self.cancelled:
            return
        pairs = list(zip(self.topology.workers, self.topology.broker_ids, strict=True))
        client = self.redis.client()
        started = time.monotonic()
        self.anyway_after = min(self.anyway_after, started + KILL_WAIT_S)
        freezes = 0
        try:
            while not self.cancelled:
                for worker, broker_id in pairs:
                    if not held(client, broker_id, "operations"):
                        continue
                    freezes += 1
                    if freeze_then_kill(
                        worker,
                        lambda b=broker_id: (
                            held(client, b, "operations") > 0
                            and not held(client, b, "webhooks")
                            and not stranded_deliveries(client)
                        ),
                        self.anyway_after,
                    ):
                        self.topology.killed.append(worker)
                        self.report = {
                            "worker": worker.name,
                            "after_s": round(time.monotonic() - started, 3),
                            "freezes": freezes,
                            "operations_held": held(client, broker_id, "operations"),
                            "deliveries_held": held(client, broker_id, "webhooks"),
                            "purchases_accepted": len(self.day.purchases),
                            "purchases": dict(
                                Counter(
                                    db(
                                        Operation.select(Operation.status)
                                        .where(
                                            (Operation.organization_id == self.day.org) & (Operation.kind == "purchase")
                                        )
                                        .output(as_list=True)
                                        .run()
                                    )
                                )
                            ),
                        }
                        return
                time.sleep(0.002)
        finally:
            client.close()


class BalanceHold(threading.Thread):
    """Holds the payer's balance row (SELECT ... FOR UPDATE in an open transaction) until
    released: a worker charging that payer waits, holding its operations, so that the Killer
    finds its moment however fast the workers run on the machine of the day."""

    def __init__(self, database_url: str, organization_id: str) -> None:
        super().__init__(daemon=True)
        self.database_url, self.organization_id = database_url, organization_id
        self.holding, self.release = threading.Event(), threading.Event()

    def run(self) -> None:
        asyncio.run(self._hold())

    async def _hold(self) -> None:
        conn = await asyncpg.connect(self.database_url)
        try:
            async with conn.transaction():
                await conn.execute("SELECT 1 FROM balances WHERE organization_id = $1 FOR UPDATE", self.organization_id)
                self.holding.set()
                while not self.release.is_set():
                    await asyncio.sleep(0.01)
        finally:
            await conn.close()


def kill_scheduler(redis, topology: Topology) -> int:
    """SIGKILLs the first scheduler at a moment it strands no delivery (see Killer); answers the tries."""
    scheduler, client = topology.schedulers[0], redis.client()
    anyway_after = time.monotonic() + KILL_WAIT_S
    try:
        for tries in itertools.count(1):
            if freeze_then_kill(scheduler, lambda: not stranded_deliveries(client), anyway_after):
                topology.killed.append(scheduler)
                return tries
            time.sleep(0.05)
    finally:
        client.close()


# --- the back office's side -------------------------------------------------------------------


def signed(secret: str, payload: dict, msg_id: str) -> tuple[bytes, dict[str, str]]:
    """A Standard Webhooks request: the body and its three headers."""
    body = msgspec.json.encode(payload)
    at = datetime.now(UTC)
    return body, {
        "webhook-id": msg_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body.decode()),
        "content-type": "application/json",
    }


@dataclass
class Day:
    """The back office: two API clients (web A and B) and what it expects to have happened."""

    api: list[httpx.Client]
    owner: builders.Person | None = None
    org: str = ""
    inbound_secret: str = ""
    turn: int = 0
    purchases: dict[str, dict] = field(default_factory=dict)  # op id -> {name, kind, client}
    renewals: dict[str, str] = field(default_factory=dict)  # op id -> product id
    others: dict[str, str] = field(default_factory=dict)  # op id -> kind (release, client_upsert)
    claimed: dict = field(default_factory=dict)  # the released organization's claim answer
    replays: int = 0  # requests answered with an operation an earlier request made

    def next(self) -> httpx.Client:
        """The web processes in turn, as a load balancer would."""
        self.turn += 1
        return self.api[self.turn % 2]

    @property
    def auth(self) -> dict[str, str]:
        return self.owner.auth

    def buy(
        self, name: str, kind: str, client: str | None, key: str | None = None, at: httpx.Client | None = None
    ) -> dict:
        body = {"kind": kind, "name": name, "years": 1, "payment_method": "prepaid"}
        if client:
            body["client"] = client
        headers = {**self.auth, **({"Idempotency-Key": key} if key else {})}
        answer = (at or self.next()).post(f"/v1/organizations/{self.org}/purchases", json=body, headers=headers)
        assert answer.status_code == 202, (name, answer.status_code, answer.text)
        return answer.json()

    def purchase(self, index: int, client: str | None) -> str:
        """Buys one product; every third is sent twice with one Idempotency-Key, to A and to B."""
        kind = {7: "hosting", 12: "certificate"}.get(index, "mailbox" if index % 9 == 4 else "domain")
        name = f"day-{index:02d}.example.fr"
        if index % 3:
            op = self.buy(name, kind, client)
        else:
            key = f"purchase-{index}"
            if index % 6:  # one after the other
                op = self.buy(name, kind, client, key, at=self.api[0])
                again = self.buy(name, kind, client, key, at=self.api[1])
            else:  # at the same time
                with ThreadPoolExecutor(2) as pool:
                    op, again = pool.map(lambda at: self.buy(name, kind, client, key, at=at), self.api)
            assert again["id"] == op["id"], (op, again)
            self.replays += 1
        self.purchases[op["id"]] = {"name": name, "kind": kind, "client": client}
        return op["id"]

    def renew(self, product: dict, key: str, twice: bool) -> str:
        body = {"years": 1, "current_expires_at": product["expires_at"], "payment_method": "prepaid"}
        headers = {**self.auth, "Idempotency-Key": key}
        targets = self.api if twice else [self.next()]
        answers = [at.post(f"/v1/products/{product['id']}/renewals", json=body, headers=headers) for at in targets]
        assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
        ids = {a.json()["id"] for a in answers}
        assert len(ids) == 1, ids
        self.replays += len(answers) - 1
        op_id = ids.pop()
        self.renewals[op_id] = product["id"]
        return op_id

    def inbound(self, payload: dict, msg_id: str) -> str:
        """Posts the signed webhook to A (202), then the very same request to B (200, same operation)."""
        body, headers = signed(self.inbound_secret, payload, msg_id)
        first = self.api[0].post(f"/v1/inbound/{self.org}", content=body, headers=headers)
        again = self.api[1].post(f"/v1/inbound/{self.org}", content=body, headers=headers)
        assert first.status_code == 202, first.text
        assert again.status_code == 200, again.text
        op_id = first.json()["operation"]["id"]
        assert again.json()["operation"]["id"] == op_id
        self.replays += 1
        return op_id

    def operation(self, op_id: str) -> dict:
        answer = self.next().get(f"/v1/operations/{op_id}", headers=self.auth)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def wait(self, op_ids, timeout: float, topology: Topology) -> dict[str, dict]:
        """Each operation once finished, polled through both web processes."""
        done: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while True:
            for op_id in op_ids:
                if op_id not in done and (op := self.operation(op_id))["status"] in FINISHED:
                    done[op_id] = op
            if len(done) == len(set(op_ids)):
                return done
            problem = topology.survivors_dead()
            assert not problem, problem
            assert time.monotonic() < deadline, f"{len(set(op_ids)) - len(done)} operations unfinished after {timeout}s"
            time.sleep(0.2)

    def product(self, product_id: str) -> dict:
        answer = self.next().get(f"/v1/products/{product_id}", headers=self.auth)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def deliveries(self, endpoint: str) -> list[dict]:
        items, cursor = [], None
        while True:
            params = {"limit": 200, **({"after": cursor} if cursor else {})}
            answer = self.next().get(
                f"/v1/organizations/{self.org}/webhook-endpoints/{endpoint}/deliveries",
                params=params,
                headers=self.auth,
            )
            assert answer.status_code == 200, answer.text
            page = answer.json()
            items += page["items"]
            if not (cursor := page["next_cursor"]):
                return items


# --- the test ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_resellers_day_on_the_production_topology_survives_kills_with_every_effect_once(
    database_url, redis_server, processes, tmp_path
):
    started = time.monotonic()
    redis = redis_server()
    receiver = Receiver()
    hooks_base = receiver.start()
    api: list[httpx.Client] = []
    try:
        topology = start_topology(processes, redis, database_url, tmp_path)
        api += [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=20) for port in topology.ports]
        timings = {"started": round(time.monotonic() - started, 1)}
        run_the_day(Day(api), topology, redis, receiver, hooks_base, timings, database_url)
        timings["total"] = round(time.monotonic() - started, 1)
        print(f"\ntopology day: {timings}")
    except (AssertionError, httpx.HTTPError) as failure:
        raise AssertionError(f"{type(failure).__name__}: {failure}\n{processes.tails()}") from None
    finally:
        for client in api:
            client.close()
        receiver.stop()


def run_the_day(
    day: Day, topology: Topology, redis, receiver: Receiver, hooks_base: str, timings: dict, database_url: str
) -> None:
    t0 = time.monotonic()
    a, b = day.api

    # Morning: the reseller, its money, its endpoint and inbound secret, its clients.
    day.owner = builders.person(a, "Reseller")
    day.org = builders.organization(b, day.owner, reseller=True, name="Day Reseller")
    funds = {"amount": {"amount": FUNDS, "currency": "EUR"}}
    topups = [
        at.post(
            f"/v1/organizations/{day.org}/funds", json=funds, headers={**day.auth, "Idempotency-Key": "morning-topup"}
        )
        for at in (a, b)
    ]
    assert [t.status_code for t in topups] == [201, 201], [t.text for t in topups]
    assert topups[0].json()["operation_id"] == topups[1].json()["operation_id"]
    assert topups[1].json()["balance"]["amount"] == FUNDS
    endpoint = a.post(
        f"/v1/organizations/{day.org}/webhook-endpoints",
        headers=day.auth,
        json={"url": hooks_base + HOOK_PATH, "event_types": []},
    )
    assert endpoint.status_code == 201, endpoint.text
    receiver.secrets[HOOK_PATH] = endpoint.json()["secret"]
    endpoint_id = endpoint.json()["id"]
    secret = b.post(f"/v1/resellers/{day.org}/inbound-secret", headers=day.auth)
    assert secret.status_code == 201, secret.text
    day.inbound_secret = secret.json()["secret"]
    released, kept_1, kept_2 = (
        builders.client_of(day.next(), day.owner, day.org, name) for name in ("Leaving", "Martin", "Durand")
    )
    clients = [released, kept_1, kept_2]

    # The white-label site creates a client, then renames it (two webhooks, each sent twice).
    upsert = {
        "type": "client.upserted",
        "data": {"external_ref": "crm-42", "name": "Petit", "email": "petit@client.test"},
    }
    created = day.inbound(upsert, "msg-upsert-1")
    day.others[created] = "client_upsert"
    first_upsert = day.wait([created], 30, topology)[created]
    assert first_upsert["status"] == "succeeded", first_upsert
    upserted_client = first_upsert["result"]["client_id"]
    renamed = day.inbound({**upsert, "data": {**upsert["data"], "name": "Petit & Fils"}}, "msg-upsert-2")
    day.others[renamed] = "client_upsert"

    # Purchases in three waves of concurrent requests; a worker dies once the first is accepted
    # (in the second wave, unless no moment there suits: see Killer), then a scheduler. While
    # the second wave runs, the reseller's balance row is held: the workers charging it wait
    # there, holding their operations, until the Killer has struck (or given up).
    owners = [None, *clients, *clients]  # who owns each product in turn: mostly clients
    waves = [range(0, 9), range(9, 21), range(21, 27)]
    killer = Killer(redis, topology, day)
    killer.start()
    hold = BalanceHold(database_url, day.org)
    try:
        for number, wave in enumerate(waves):
            if number == 1:
                hold.start()
                assert hold.holding.wait(10), "the balance row could not be held"
            with ThreadPoolExecutor(4) as pool:
                list(pool.map(lambda i: day.purchase(i, owners[i % len(owners)]), wave))
            if number == 0:
                killer.go.set()
            if number == 1:
                killer.join(timeout=15)  # the wave's operations wait on the held balance row
                hold.release.set()
            if number == 2 and not killer.report:
                killer.hurry()  # the last accepted operations are the last chance
                killer.join(timeout=15)
            if killer.report and "scheduler_freezes" not in killer.report:
                killer.report["scheduler_freezes"] = kill_scheduler(redis, topology)
                timings["killed_at"] = round(time.monotonic() - t0, 1)
        assert killer.report, "no worker held an operation while the purchases ran"
        assert killer.report["operations_held"] > 0, killer.report
        timings["kill"] = killer.report
    finally:
        hold.release.set()
        killer.cancel()
    # The white-label site sells three products to the client it created.
    for index in range(27, 30):
        payload = {
            "type": "purchase.requested",
            "data": {"kind": "domain", "name": f"day-{index:02d}.example.fr", "years": 1, "client_ref": "crm-42"},
        }
        op_id = day.inbound(payload, f"msg-purchase-{index}")
        day.purchases[op_id] = {"name": f"day-{index:02d}.example.fr", "kind": "domain", "client": upserted_client}
    assert len(day.purchases) == 30
    bought = day.wait(list(day.purchases), 60, topology)
    assert {op["status"] for op in bought.values()} == {"succeeded"}, [
        op for op in bought.values() if op["status"] != "succeeded"
    ][:3]
    product_of = {op_id: op["result"]["product_id"] for op_id, op in bought.items()}
    timings["purchases_done"] = round(time.monotonic() - t0, 1)

    # Renewals: ten through the API (four sent twice, to A and B), three through webhooks.
    by_client: dict[str | None, list[str]] = {}
    for op_id, plan in day.purchases.items():
        by_client.setdefault(plan["client"], []).append(product_of[op_id])
    for products in by_client.values():
        products.sort()
    through_api = by_client[None][:2] + by_client[released][:3] + by_client[kept_1][:3] + by_client[kept_2][:2]
    through_hooks = [by_client[kept_1][3], by_client[kept_2][3], by_client[upserted_client][0]]
    before = {pid: day.product(pid)["expires_at"] for pid in through_api + through_hooks}
    for n, product_id in enumerate(through_api):
        day.renew({"id": product_id, "expires_at": before[product_id]}, f"renew-{n}", twice=n % 3 == 0)
    for n, product_id in enumerate(through_hooks):
        payload = {
            "type": "renewal.requested",
            "data": {"product_id": product_id, "years": 1, "current_expires_at": before[product_id]},
        }
        op_id = day.inbound(payload, f"msg-renewal-{n}")
        day.renewals[op_id] = product_id
    assert len(day.renewals) == 13
    renewed = day.wait(list(day.renewals), 60, topology)
    assert {op["status"] for op in renewed.values()} == {"succeeded"}, [
        op for op in renewed.values() if op["status"] != "succeeded"
    ][:3]

    # Evening: the leaving client is released (the request sent to A, then replayed on B).
    release_body = {"owner_email": "leaving-owner@client.test"}
    releases = [
        at.post(
            f"/v1/resellers/{day.org}/clients/{released}/release",
            json=release_body,
            headers={**day.auth, "Idempotency-Key": "release-leaving"},
        )
        for at in (a, b)
    ]
    assert [r.status_code for r in releases] == [202, 202], [r.text for r in releases]
    release_op = releases[0].json()["id"]
    assert releases[1].json()["id"] == release_op
    day.replays += 1
    day.others[release_op] = "release"
    timings["day_done"] = round(time.monotonic() - t0, 1)

    every_op = [*day.purchases, *day.renewals, *day.others]
    finished = {**bought, **renewed, **day.wait(list(day.others), SETTLE_S, topology)}
    assert {op["status"] for op in finished.values()} == {"succeeded"}, [
        op for op in finished.values() if op["status"] != "succeeded"
    ][:3]
    # The released client's owner presents the claim token its first reader was shown.
    claim = day.next().post("/v1/accounts/claim", json={"claim_token": finished[release_op]["result"]["claim_token"]})
    assert claim.status_code == 201, claim.text
    day.claimed = claim.json()
    expected_events = Counter(
        {
            "operation.succeeded": len(every_op),
            "product.purchased": 30,
            "product.renewed": 13,
            "client.released": 1,
            "organization.claimed": 1,
        }
    )
    deliveries = wait_for_deliveries(day, topology, endpoint_id, sum(expected_events.values()))
    timings["settled"] = round(time.monotonic() - t0, 1)
    timings["replayed_requests"] = day.replays
    timings["operations_run_twice"] = db(
        Operation.count().where((Operation.organization_id == day.org) & (Operation.attempts > 1)).run()
    )

    check_everything_once(
        day, finished, product_of, before, released, upserted_client, expected_events, deliveries, receiver
    )
    assert len(topology.killed) == 2 and not any(proc.alive() for proc in topology.killed)
    assert not topology.survivors_dead(), topology.survivors_dead()


def wait_for_deliveries(day: Day, topology: Topology, endpoint_id: str, expected: int) -> list[dict]:
    """Polls the deliveries list until `expected` deliveries all succeeded.

    A delivery whose message the killed worker (or scheduler) held comes back only when its
    lease runs out: then the deadline moves to that lease's end, plus some margin.
    """
    deadline = time.monotonic() + SETTLE_S
    hard_deadline = deadline + LEASE.total_seconds() + 15
    extended = False
    while True:
        deliveries = day.deliveries(endpoint_id)
        statuses = Counter(d["status"] for d in deliveries)
        if len(deliveries) >= expected and set(statuses) == {"succeeded"}:
            return deliveries
        assert not {"failed", "cancelled"} & set(statuses), statuses
        problem = topology.survivors_dead()
        assert not problem, problem
        leases = db(
            Delivery.select(Delivery.leased_until)
            .where(
                (Delivery.endpoint_id == endpoint_id)
                & (Delivery.status == "pending")
                & Delivery.leased_until.is_not_null()
            )
            .output(as_list=True)
            .run()
        )
        if leases:
            lease_left = (max(leases) - datetime.now(UTC)).total_seconds() + 10
            if time.monotonic() + lease_left > deadline:
                deadline, extended = min(time.monotonic() + lease_left, hard_deadline), True
        assert time.monotonic() < deadline, (
            f"{len(deliveries)} deliveries of {expected} ({dict(statuses)}) after the deadline"
            + (" (extended for a stranded lease)" if extended else "")
        )
        time.sleep(0.5)


def check_everything_once(
    day: Day,
    finished: dict[str, dict],
    product_of: dict[str, str],
    before: dict[str, str],
    released: str,
    upserted_client: str,
    expected_events: Counter,
    deliveries: list[dict],
    receiver: Receiver,
) -> None:
    org = day.org
    release_op = next(op_id for op_id, kind in day.others.items() if kind == "release")
    new_org = finished[release_op]["result"]["organization_id"]

    # Operations: exactly the ones the back office got answers for, each of its kind, each once.
    ops = db(
        Operation.select(Operation.id, Operation.kind, Operation.status, Operation.product_id, Operation.result)
        .where(Operation.organization_id == org)
        .output(load_json=True)
        .run()
    )
    kinds = Counter(op["kind"] for op in ops)
    assert kinds == Counter({"purchase": 30, "renewal": 13, "client_upsert": 2, "release": 1, "topup": 1}), kinds
    assert {op["id"] for op in ops if op["kind"] != "topup"} == set(finished)
    assert {op["status"] for op in ops} == {"succeeded"}

    # Products: one per purchase, where each belongs after the release.
    products = db(
        Product.select(
            Product.id, Product.name, Product.organization, Product.client, Product.reseller, Product.expires_at
        )
        .where(Product.organization.is_in([org, new_org]))
        .run()
    )
    assert len(products) == 30, f"{len(products)} products for 30 purchases"
    by_id = {p["id"]: p for p in products}
    assert set(by_id) == set(product_of.values())
    for op_id, plan in day.purchases.items():
        product = by_id[product_of[op_id]]
        assert product["name"] == plan["name"], (product, plan)
        if plan["client"] == released:
            assert (product["organization"], product["client"], product["reseller"]) == (new_org, None, None)
        else:
            assert (product["organization"], product["client"]) == (org, plan["client"]), (product, plan)
    moved = {product_of[op_id] for op_id, plan in day.purchases.items() if plan["client"] == released}
    assert set(finished[release_op]["result"]["product_ids"]) == moved

    # Renewals: each renewed product a year later than before, exactly once.
    renewed = Counter(day.renewals.values())
    assert set(renewed.values()) == {1} and len(renewed) == 13
    for product_id in renewed:
        was = datetime.fromisoformat(before[product_id]).astimezone(UTC)
        now = by_id[product_id]["expires_at"].astimezone(UTC)
        assert (now.year, now.month, now.day) == (was.year + 1, was.month, was.day), (product_id, was, now)
    unrenewed = set(by_id) - set(renewed)
    for op_id in day.purchases:
        if product_of[op_id] in unrenewed:
            assert by_id[product_of[op_id]]["expires_at"] == datetime.fromisoformat(
                finished[op_id]["result"]["expires_at"]
            )

    # Money: one revenue entry per charging operation, at its price; the ledger balances.
    revenue = db(
        LedgerEntry.select(LedgerEntry.operation_id, LedgerEntry.amount)
        .where((LedgerEntry.organization_id == org) & (LedgerEntry.book == "revenue"))
        .run()
    )
    charging = set(day.purchases) | set(day.renewals)
    per_op = Counter(entry["operation_id"] for entry in revenue)
    assert set(per_op) == charging and set(per_op.values()) == {1}, (
        f"{len(revenue)} revenue entries for {len(charging)} charges; twice: "
        f"{[op for op, n in per_op.items() if n > 1][:5]}"
    )
    for entry in revenue:
        assert entry["amount"] == finished[entry["operation_id"]]["result"]["price"]["amount"], entry
    for op_id, plan in day.purchases.items():
        assert finished[op_id]["result"]["price"]["amount"] == PRICE[plan["kind"]], (op_id, plan)
    charged = sum(entry["amount"] for entry in revenue)
    assert ledger_sums() == {"EUR": 0}
    assert builders.balance(day.next(), day.owner, org) == FUNDS - charged
    billing = day.next().get(f"/v1/organizations/{org}/billing", headers=day.auth).json()
    assert billing["tier"] == "A", billing

    # Clients: the leaving one released to the new organization, the upserted one renamed.
    portfolio = db(
        Client.select(Client.id, Client.status, Client.released_to, Client.name).where(Client.reseller == org).run()
    )
    status = {c["id"]: (c["status"], c["released_to"]) for c in portfolio}
    assert status.pop(released) == ("released", new_org)
    assert set(status.values()) == {("active", None)} and len(status) == 3
    assert next(c["name"] for c in portfolio if c["id"] == upserted_client) == "Petit & Fils"
    assert day.claimed["organization_id"] == new_org
    new_owner = {"Authorization": f"Bearer {day.claimed['api_key']}"}
    listed = day.next().get(f"/v1/organizations/{new_org}/products", headers=new_owner)
    assert listed.status_code == 200, listed.text
    assert {p["id"] for p in listed.json()["items"]} == moved

    # Events: one of each kind per effect, told to the reseller.
    events = db(Event.select(Event.id, Event.type, Event.operation_id).where(Event.organization_id == org).run())
    assert Counter(e["type"] for e in events) == expected_events
    for kind, op_ids in (
        ("product.purchased", day.purchases),
        ("product.renewed", day.renewals),
        ("operation.succeeded", finished),
    ):
        assert Counter(e["operation_id"] for e in events if e["type"] == kind) == Counter(set(op_ids)), kind

    # Deliveries: one per event, all succeeded; the receiver verified every signature and got
    # each event once, unless a killed worker's attempt reached it and died before recording it.
    assert receiver.rejected == []
    assert sorted(d["event_id"] for d in deliveries) == sorted(e["id"] for e in events)
    got = Counter(r.webhook_id for r in receiver.delivered(HOOK_PATH))
    assert set(got) == {e["id"] for e in events}
    twice = {event_id for event_id, n in got.items() if n > 1}
    if twice:
        rows = db(
            Delivery.select(Delivery.id, Delivery.event_id, Delivery.attempts)
            .where(Delivery.event_id.is_in(sorted(twice)))
            .run()
        )
        logged = Counter(
            a["delivery_id"]
            for a in db(
                DeliveryAttempt.select(DeliveryAttempt.delivery_id)
                .where(DeliveryAttempt.delivery_id.is_in([r["id"] for r in rows]))
                .run()
            )
        )
        unexplained = [r for r in rows if got[r["event_id"]] - 1 > r["attempts"] - logged[r["id"]]]
        assert not unexplained, f"events delivered twice with no lost attempt: {unexplained}"
        print(f"\n{len(twice)} event(s) delivered again after an attempt lost with the killed worker")
    received = Counter(r.type for r in receiver.delivered(HOOK_PATH) if r.webhook_id not in twice)
    received.update(next(e["type"] for e in events if e["id"] == event_id) for event_id in twice)
    assert received == expected_events
    assert not [r for r in receiver.received if not 200 <= r.answered < 300]
