"""The embedded default: one process, SQLite, Dramatiq's in-process broker, no Redis."""

from __future__ import annotations

import re

import httpx
import pytest
from dramatiq.brokers.stub import StubBroker
from litestar.testing import TestClient

from runtime.settings import Settings
from tests.api import builders
from tests.e2e.conftest import free_port, tenure_env, wait_for_port
from tests.integration.flows import balance, buy, charges_for, ledger_sums, wait_done
from tests.ratelimits import UNLIMITED
from web.app import create_app
from worker.embedded import Embedded


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_embedded_mode_runs_purchases_in_process(database_url):
    settings = Settings(database_url=database_url, **UNLIMITED)  # no broker URL: in-process
    embedded = Embedded(settings)
    assert isinstance(embedded.broker, StubBroker)

    with TestClient(create_app(settings, sender=embedded.sender, extra_lifespans=[embedded.lifespan])) as api:
        owner, org = builders.funded(api, 10_000)

        answer = buy(api, owner, org, "embarque.fr")
        assert answer.status_code == 202, answer.text
        op = wait_done(api, owner, answer.json()["id"], timeout=20)

        assert op["status"] == "succeeded", op
        product = api.get(f"/v1/products/{op['result']['product_id']}", headers=owner.auth).json()
        assert (product["name"], product["organization_id"], product["state"]) == ("embarque.fr", org, "active")
        assert balance(api, owner, org) == 10_000 - 1500
    assert charges_for(org) == [1500]
    assert ledger_sums() == {"EUR": 0}


KEY_LINE = re.compile(r"^\s*API key:\s*(\S+)\s*$", re.MULTILINE)
RESELLER_LINE = re.compile(r"^reseller (\S+), owner", re.MULTILINE)


@pytest.mark.slow
def test_tenure_demo_serves_the_seeded_data(processes, tmp_path):
    workdir = tmp_path / "demo"
    workdir.mkdir()
    port = free_port()
    env = tenure_env("unused")
    del env["TENURE_DATABASE_URL"]  # the demo's own default: ./var/demo.sqlite3
    demo = processes.tenure("demo", "demo", "--port", str(port), env=env, cwd=workdir)
    wait_for_port(port, 60, proc=demo)

    printed = demo.output()
    keys = KEY_LINE.findall(printed)
    reseller = RESELLER_LINE.search(printed)
    assert len(keys) == 2 and reseller, printed
    reseller_id, reseller_key = reseller.group(1), keys[1]
    assert (workdir / "var" / "demo.sqlite3").exists()

    auth = {"Authorization": f"Bearer {reseller_key}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth, timeout=10) as http:
        me = http.get("/v1/me")
        assert me.status_code == 200, me.text
        assert reseller_id in [org["id"] for org in me.json()["organizations"]]
        assert [org["reseller"] for org in me.json()["organizations"]] == [True]

        clients = http.get(f"/v1/resellers/{reseller_id}/clients")
        assert clients.status_code == 200, clients.text
        assert len(clients.json()["items"]) == 2

        products = http.get(f"/v1/organizations/{reseller_id}/products")
        assert products.status_code == 200, products.text
        names = {p["name"] for p in products.json()["items"]}
        assert names, products.json()
        assert "demo-reseller.com" in names
