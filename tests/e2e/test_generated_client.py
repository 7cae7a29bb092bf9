"""A client generated from the schema by `openapi-python-client` (pinned in requirements.lock),
without a warning, drives a reseller's day against the running app: typed models in, typed
models out, errors parsed as their route's error model."""

from __future__ import annotations

import importlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from runtime.settings import Settings
from tests.e2e.conftest import free_port, wait_for_port
from tests.ratelimits import UNLIMITED
from web.app import create_app
from web.http_protocol import JsonErrorsProtocol
from worker.embedded import Embedded

GENERATOR = str(Path(sys.executable).with_name("openapi-python-client"))
PACKAGE = "tenure_client"


@pytest.fixture
def served(database_url):
    """The app with its workers in-process (the embedded mode), under uvicorn."""
    settings = Settings(database_url=database_url, **UNLIMITED)
    embedded = Embedded(settings)
    port = free_port()
    app = create_app(settings, sender=embedded.sender, extra_lifespans=[embedded.lifespan])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, http=JsonErrorsProtocol))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def generated(served, tmp_path):
    """The client package generated from the served schema, imported; fails on any warning."""
    schema = tmp_path / "openapi.json"
    schema.write_bytes(httpx.get(f"{served}/schema/openapi.json").content)
    config = tmp_path / "generator.yaml"
    config.write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n")
    done = subprocess.run(
        [GENERATOR, "generate", "--path", str(schema), "--meta", "none", "--config", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "warning" not in output.lower(), output
    sys.path.insert(0, str(tmp_path))
    try:
        yield lambda name: importlib.import_module(f"{PACKAGE}.{name}")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_generated_client_runs_a_resellers_day(served, generated):
    client_module, models = generated("client"), generated("models")
    api = lambda name: generated(f"api.{name}")  # noqa: E731

    anonymous = client_module.Client(base_url=served, raise_on_unexpected_status=True)
    account = api("accounts.v1_accounts_create_account").sync(
        client=anonymous, body=models.AccountIn(email="ana@reseller.test", name="Ana")
    )
    assert isinstance(account, models.AccountCreated)
    me = client_module.AuthenticatedClient(base_url=served, token=account.api_key, raise_on_unexpected_status=True)

    org = api("organizations.v1_organizations_create_organization").sync(
        client=me, body=models.OrganizationIn(name="Costa Hosting", reseller=True)
    )
    assert isinstance(org, models.OrganizationOut) and org.reseller is True
    clients = [
        api("resellers.v1_resellers_org_id_clients_create_client").sync(
            org.id, client=me, body=models.ClientIn(name=name, email=f"{name.lower()}@client.test")
        )
        for name in ("Martin", "Dupont")
    ]
    assert all(isinstance(c, models.ClientOut) for c in clients)
    funds = api("billing.v1_organizations_org_id_funds_add_funds").sync(
        org.id,
        client=me,
        idempotency_key="topup-1",
        body=models.FundsIn(amount=models.MoneyIn(amount=100_000, currency="EUR")),
    )
    assert funds.balance.amount == 100_000

    purchase = api("products.v1_organizations_org_id_purchases_purchase")
    accepted = purchase.sync(
        org.id,
        client=me,
        body=models.PurchaseIn(
            kind=models.PurchaseInKind.DOMAIN,
            name="boulangerie-martin.fr",
            years=1,
            payment_method=models.PurchaseInPaymentMethod.PREPAID,
            client=clients[0].id,
        ),
    )
    assert isinstance(accepted, models.OperationOut)
    operation = poll(api("products.v1_operations_operation_id_get_operation"), me, accepted.id)
    assert operation.status == "succeeded", operation

    listed = api("products.v1_organizations_org_id_products_list_products").sync(
        org.id, client=me, client_query=clients[0].id, kind=models.V1OrganizationsOrgIdProductsListProductsKind.DOMAIN
    )
    assert isinstance(listed, models.ProductPage)
    assert [(p.name, p.client_id, p.organization_id) for p in listed.items] == [
        ("boulangerie-martin.fr", clients[0].id, org.id)
    ]
    assert isinstance(listed.items[0], models.ProductOut) and listed.next_cursor is None
    other = api("products.v1_organizations_org_id_products_list_products").sync(
        org.id, client=me, client_query=clients[1].id
    )
    assert other.items == []

    taken = purchase.sync_detailed(
        org.id,
        client=me,
        body=models.PurchaseIn(
            kind=models.PurchaseInKind.DOMAIN,
            name="boulangerie-martin.fr",
            years=1,
            payment_method=models.PurchaseInPaymentMethod.PREPAID,
            client=clients[1].id,
        ),
    )
    assert taken.status_code == 409
    error = taken.parsed.error
    assert type(taken.parsed).__name__.endswith("Response409")
    assert error.code == "name_taken" and type(error.code).__name__.endswith("ErrorCode")
    assert "boulangerie-martin.fr" in error.message


def poll(get_operation, me, operation_id: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        operation = get_operation.sync(operation_id, client=me)
        if operation.status in ("succeeded", "failed") or time.monotonic() > deadline:
            return operation
        time.sleep(0.05)
