"""Invariant 6 by fuzzing: every documented operation, fed generated input, never answers 5xx
and answers what the OpenAPI schema says (schemathesis over the running app)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from tables.settings import Settings
from tests.api import builders
from tests.e2e.conftest import free_port, wait_for_port
from tests.ratelimits import UNLIMITED
from web.app import create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory, sqlite_template):
    """The real app under uvicorn on SQLite (in-process broker), a reseller owner, real ids."""
    from tests import databases

    url = databases.sqlite_copy(sqlite_template, tmp_path_factory.mktemp("fuzz"))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(database_url=url, ops_token="fuzz", **UNLIMITED)),
                                           host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base) as client:
        owner, org = builders.funded(client, 100_000, reseller=True)
        client_id = builders.client_of(client, owner, org)
    yield base, owner, {"org_id": org, "client_id": client_id}
    server.should_exit = True
    deadline = time.monotonic() + 10
    while thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.slow
def test_no_generated_request_gets_a_server_error(served):
    base, owner, real_ids = served
    schema = schemathesis.openapi.from_url(f"{base}/schema/openapi.json")
    failures: list[str] = []
    operations = 0
    seen: dict[int, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        token = {"Authorization": "Bearer fuzz"} if operation.path.startswith("/v1/ops") else owner.auth

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            for name, value in real_ids.items():  # real ids reach the checks behind the 404s
                if case.path_parameters and name in case.path_parameters:
                    case.path_parameters[name] = value
            response = case.call(base_url=base, headers=token)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: "
                                f"{response.text[:200]}")

        check()

    assert operations >= 30
    assert failures == []
    assert sum(n for status, n in seen.items() if status < 300) > 50  # it reached the handlers
