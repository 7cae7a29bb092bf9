"""Invariant 6 by fuzzing: every documented operation, fed generated input, never answers 5xx
and answers what the OpenAPI schema says (schemathesis over the running app), on each backend.

`schemathesis run --checks all` (status codes, content types, response schemas, headers,
Allow on 405, missing auth, negative data refused, valid data accepted) runs as a user would
run it, with 0 failures expected; tenure's business refusals of schema-valid data (403, 404,
409, 422) count as accepted, a 400 does not.

Schemathesis generates strings that match the schema (and keeps NUL out of path
parameters on purpose), so a second run takes its cases and puts a control character
into one of their strings — a path parameter, a query parameter or a string anywhere in
the body — as an attacker would: each must get a JSON 4xx, never a 5xx.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.settings import Settings
from tables import engine
from tests.api import builders
from tests.conftest import BACKENDS
from tests.e2e.conftest import free_port, wait_for_port
from tests.ratelimits import UNLIMITED
from web.app import create_app
from web.http_protocol import JsonErrorsProtocol

# NUL (PostgreSQL refuses it), other C0 controls, a line break, DEL and a C1 control.
CONTROL_CHARACTERS = ["\x00", "\x01", "\x08", "\x1b", "\n", "\x7f", "\x85"]


@pytest.fixture(scope="module", params=BACKENDS)
def served(request, tmp_path_factory, sqlite_template):
    """The real app under uvicorn on each backend (in-process broker), a reseller owner, real ids."""
    from tests import databases

    if request.param == "sqlite":
        url = databases.sqlite_copy(sqlite_template, tmp_path_factory.mktemp("fuzz"))
    else:
        url = request.getfixturevalue("postgres_url")
        asyncio.run(databases.truncate_postgres(engine.for_url(url)))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Settings(database_url=url, ops_token="fuzz", **UNLIMITED)),
            host="127.0.0.1",
            port=port,
            log_config=None,
            http=JsonErrorsProtocol,
        )
    )  # as `tenure web` serves
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


def auth_for(operation, owner) -> dict[str, str]:
    return {"Authorization": "Bearer fuzz"} if operation.path.startswith("/v1/ops") else owner.auth


def use_real_ids(case, real_ids: dict[str, str]) -> None:
    """Real ids reach the checks behind the 404s."""
    for name, value in real_ids.items():
        if case.path_parameters and name in case.path_parameters:
            case.path_parameters[name] = value


def error_shape_problem(response) -> str | None:
    """Why a 4xx answer is not `{"error": {"code", "message"}}` JSON, or None."""
    content_type = (response.headers.get("content-type") or [""])[0]  # schemathesis: name -> values
    if not content_type.startswith("application/json"):
        return f"answered {content_type!r}"
    error = response.json().get("error") if isinstance(response.json(), dict) else None
    if not (isinstance(error, dict) and error.get("code") and error.get("message")):
        return "no error code and message"
    return None


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
        token = auth_for(operation, owner)

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            use_real_ids(case, real_ids)
            response = case.call(base_url=base, headers=token)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")
            elif response.status_code >= 400 and (problem := error_shape_problem(response)):
                failures.append(f"{case.method} {case.formatted_path} -> {response.status_code} {problem}")

        check()

    assert operations >= 30
    assert failures == []
    assert sum(n for status, n in seen.items() if status < 300) > 50  # it reached the handlers


def string_slots(case) -> list[tuple[str, str, object, object]]:
    """Every string a case sends, as (kind, field name, container, key): path and query
    parameters, and each string anywhere in a JSON body (a list item is named by its list)."""
    slots: list[tuple[str, str, object, object]] = []
    for name in case.path_parameters or {}:
        slots.append(("path", name, case.path_parameters, name))
    for name, value in (case.query or {}).items():
        if not isinstance(value, list):
            slots.append(("query", name, case.query, name))
    todo: list[tuple[str, object]] = [("body", case.body)]
    while todo:
        name, item = todo.pop()
        pairs = (
            ((key, key) for key in item)
            if isinstance(item, dict)
            else ((index, name) for index in range(len(item)))
            if isinstance(item, list)
            else ()
        )
        for key, field in pairs:
            if isinstance(item[key], str):
                slots.append(("body", str(field), item, key))
            else:
                todo.append((str(field), item[key]))
    return slots


@pytest.mark.slow
def test_no_string_with_a_control_character_gets_a_server_error(served):
    base, owner, real_ids = served
    schema = schemathesis.openapi.from_url(f"{base}/schema/openapi.json")
    failures: list[str] = []
    operations = 0
    kinds: set[str] = set()
    refused_naming_it = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        token = auth_for(operation, owner)

        @given(case=operation.as_strategy(), data=st.data())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case, data) -> None:
            nonlocal refused_naming_it
            use_real_ids(case, real_ids)
            char = data.draw(st.sampled_from(CONTROL_CHARACTERS), label="char")
            slots = string_slots(case)
            if slots:
                kind, field, container, key = data.draw(st.sampled_from(slots), label="where")
                text = str(container[key])
                at = data.draw(st.integers(0, len(text)), label="at")
                # A path parameter goes into the URL as is: encode it as a client would.
                container[key] = text[:at] + (quote(char) if kind == "path" else char) + text[at:]
            else:  # nothing to carry it: an extra query parameter still reaches the app
                kind, field = "query", "extra"
                case.query = {**(case.query or {}), field: f"x{char}"}
            kinds.add(kind)
            response = case.call(base_url=base, headers=token)
            label = f"{case.method} {operation.path} with {char!r} in {kind} {field!r}"
            if response.status_code >= 500:
                failures.append(f"{label} -> {response.status_code}: {response.text[:200]}")
            elif response.status_code < 400:
                failures.append(f"{label} -> {response.status_code}: accepted")
            elif problem := error_shape_problem(response):
                failures.append(f"{label} -> {response.status_code} {problem}")
            elif response.json()["error"]["code"] == "invalid_request":
                refused_naming_it += field in response.json()["error"]["message"]

        check()

    assert operations >= 30
    assert failures == []
    assert kinds == {"path", "query", "body"}
    assert refused_naming_it > 100, refused_naming_it  # most refusals name the poisoned field


SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
ROOT = Path(__file__).resolve().parents[2]
# The stateful phase generates positive data only: in its mixed mode a negative step's
# path value (say "\x0b\x01…" for endpoint_id, rightly refused with 400) is carried by an
# inferred `$request.path.*` link into the next step, which is then judged as valid data
# (ST202, reproduced with seed 207695097784611149618600113679959224021). Negative data is
# still sent by the coverage and fuzzing phases and by the control-character run above.
CONFIG = """
[parameters]
"path.org_id" = "{org_id}"
"path.client_id" = "{client_id}"

[phases.stateful.generation]
mode = "positive"

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422", "429"]

[[operations]]
include-path-regex = "^/v1/ops/"
headers = {{ Authorization = "Bearer fuzz" }}
"""


@pytest.mark.slow
def test_schemathesis_with_every_check_finds_no_mismatch(served, tmp_path):
    base, owner, real_ids = served
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.format(**real_ids))
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.e2e.schemathesis_hooks",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }

    done = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{base}/schema/openapi.json",
            "--checks",
            "all",
            "--header",
            f"Authorization: {owner.auth['Authorization']}",
            "--max-examples",
            "5",
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--workers",
            "1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    report = done.stdout[-8000:] + done.stderr[-2000:]
    assert done.returncode == 0, report  # any failure or error exits non-zero
    assert "Test cases:" in report and "passed" in report, report
