"""PostgreSQL stops for 10 s under load: web says so at once, workers retry, nothing is lost or doubled.

A private PostgreSQL, a private redis-server, one `tenure web` and one `tenure worker`.
Two clients keep buying domains on loopback, each purchase with its own Idempotency-Key
and retried on 503 as the answer asks. Midway PostgreSQL is stopped (fast shutdown) and
started again 10 s later. Meanwhile every answer is 503 `database_unavailable` within a
second and `/ready` fails; afterwards the same processes (no restart) accept again, and
every purchase that got a 202 completes exactly once.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from rules.catalog import DEFAULT_CATALOG
from tables import engine
from tests import databases
from tests.api import builders
from tests.e2e.conftest import free_port, tenure_env, wait_for_port
from tests.e2e.support import assert_each_purchase_done_once, wait_until_finished

CLIENTS = 2
NAMES_PER_CLIENT = 60  # bounded: at most 120 purchases (below tier B's threshold)
PRICE = DEFAULT_CATALOG["domain"].yearly_price.amount
FUNDS = 2 * CLIENTS * NAMES_PER_CLIENT * PRICE
PAUSE_S = 0.1  # between a client's requests
WARM_S, OUTAGE_S, AFTER_S = 2.0, 10.0, 3.0
ANSWER_WITHIN_S = 1.0


@dataclass
class Attempt:
    started: float
    ended: float
    status: int
    code: str | None


@dataclass(eq=False)
class Client(threading.Thread):
    """Buys one domain after another; a 503 is retried with the same Idempotency-Key."""

    base: str
    owner: builders.Person
    org: str
    number: int
    stop: threading.Event
    attempts: list[Attempt] = field(default_factory=list)
    accepted: dict[str, str] = field(default_factory=dict)  # name -> operation id
    failure: BaseException | None = None

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base, timeout=30) as http:
                for n in range(NAMES_PER_CLIENT):
                    if self.stop.is_set():
                        return
                    self.buy(http, f"outage-{self.number}-{n:03d}.fr")
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def buy(self, http: httpx.Client, name: str) -> None:
        body = {"kind": "domain", "name": name, "years": 1, "payment_method": "prepaid"}
        headers = {**self.owner.auth, "Idempotency-Key": name}
        deadline = time.monotonic() + OUTAGE_S + 30
        while time.monotonic() < deadline:
            started = time.monotonic()
            answer = http.post(f"/v1/organizations/{self.org}/purchases", json=body, headers=headers)
            ended = time.monotonic()
            error = answer.json().get("error") if answer.status_code >= 400 else None
            self.attempts.append(Attempt(started, ended, answer.status_code, error and error["code"]))
            time.sleep(PAUSE_S)
            if answer.status_code == 202:
                self.accepted[name] = answer.json()["id"]
                return
            assert answer.status_code == 503, answer.text
            assert answer.headers.get("retry-after"), answer.headers
        raise AssertionError(f"{name} was never accepted")


class Readiness(threading.Thread):
    def __init__(self, base: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.base, self.stop = base, stop
        self.polls: list[tuple[float, int, dict]] = []

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            while not self.stop.is_set():
                answer = http.get("/ready")
                self.polls.append((time.monotonic(), answer.status_code, answer.json()))
                time.sleep(0.25)


@pytest.mark.slow
def test_web_answers_503_at_once_while_postgresql_is_down_and_every_accepted_purchase_completes_once(
    postgres_server, redis_server, processes, tmp_path
):
    postgres, redis = postgres_server(), redis_server()
    databases.run_migrate(postgres.url)
    engine.bind(engine.for_url(postgres.url))  # this process checks the outcome
    databases.configure_secrets(postgres.url)

    env = tenure_env(postgres.url, redis.url)
    (tmp_path / "prom").mkdir()
    worker = processes.tenure(
        "worker",
        "worker",
        "--processes",
        "1",
        "--threads",
        "4",
        env={
            **env,
            "TENURE_WORKER_METRICS_PORT": str(free_port()),
            "dramatiq_prom_host": "127.0.0.1",
            "dramatiq_prom_db": str(tmp_path / "prom"),
        },
    )
    port = free_port()
    web = processes.tenure("web", "web", "--port", str(port), env=env)
    wait_for_port(port, 60, proc=web)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as http:
        owner = builders.person(http)
        org = builders.organization(http, owner)
        builders.fund(http, owner, org, FUNDS)
    pids = (web.pid, worker.pid)

    stop, stop_ready = threading.Event(), threading.Event()
    clients = [Client(base, owner, org, n, stop) for n in range(CLIENTS)]
    readiness = Readiness(base, stop_ready)
    for thread in (*clients, readiness):
        thread.start()
    try:
        time.sleep(WARM_S)
        postgres.stop("fast")
        down = time.monotonic()
        time.sleep(OUTAGE_S)
        restarting = time.monotonic()
        postgres.start()
        up = time.monotonic()
        time.sleep(AFTER_S)
    finally:
        stop.set()
        for client in clients:
            client.join(OUTAGE_S + 40)
        stop_ready.set()
        readiness.join(15)
    problems = [f"client {c.number}: {c.failure!r}" for c in clients if c.failure]
    assert not problems, f"{problems}\n{processes.tails()}"

    attempts = sorted(itertools.chain.from_iterable(c.attempts for c in clients), key=lambda a: a.started)
    during = [a for a in attempts if a.started >= down and a.ended <= restarting]
    assert len(during) >= 10, f"only {len(during)} requests while the database was down"
    assert {(a.status, a.code) for a in during} == {(503, "database_unavailable")}
    slowest = max(a.ended - a.started for a in during)
    assert slowest < ANSWER_WITHIN_S, f"a request took {slowest:.2f}s to answer while the database was down"
    assert max(a.ended - a.started for a in attempts) < 5, "a request hung"
    assert {(a.status, a.code) for a in attempts} <= {(202, None), (503, "database_unavailable")}
    assert [a for a in attempts if a.started >= up and a.status == 202], "nothing accepted after the restart"

    polls_down = [(status, body) for at, status, body in readiness.polls if down + 0.5 <= at <= restarting]
    assert polls_down and {status for status, _ in polls_down} == {503}, polls_down[:3]
    assert all(body["checks"]["database"] != "ok" for _, body in polls_down)
    assert readiness.polls[-1][1] == 200, readiness.polls[-1]

    accepted = {name: op for client in clients for name, op in client.accepted.items()}
    names, op_ids = list(accepted), list(accepted.values())
    assert len(set(op_ids)) == len(names) > 20
    settling = time.monotonic()
    wait_until_finished(
        org,
        len(names),
        timeout=40,
        alive=lambda: None if web.alive() and worker.alive() else f"a process died\n{processes.tails()}",
    )
    with httpx.Client(base_url=base, timeout=30) as http:
        prices = assert_each_purchase_done_once(http, owner, org, op_ids, names, FUNDS)
    assert prices == {PRICE: len(names)}
    print(
        f"\n{len(names)} purchases accepted, {len(during)} answers 503 while down (slowest "
        f"{slowest:.3f}s), all done {time.monotonic() - settling:.1f}s after the load ended"
    )
    assert (web.pid, worker.pid) == pids and web.alive() and worker.alive(), "a process was restarted"
