"""`tenure web --workers N`: N processes serve one port, each configured from the environment."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.api import builders
from tests.e2e.conftest import free_port, tenure_env, wait_for_port
from tests.integration.flows import buy


def serving_children(pid: int) -> list[int]:
    """The processes uvicorn started to serve (multiprocessing's spawned children of `pid`)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def wait_for_children(pid: int, count: int, timeout: float = 20.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while len(children := serving_children(pid)) < count:
        assert time.monotonic() < deadline, f"{len(children)} serving processes, wanted {count}"
        time.sleep(0.1)
    return children


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_web_processes_accept_purchases_and_one_killed_is_replaced(database_url, redis_server, processes):
    redis = redis_server()
    port = free_port()
    env = tenure_env(database_url, redis.url)
    web = processes.tenure("web", "web", "--port", str(port), "--workers", "2", env=env)
    wait_for_port(port, proc=web)
    first = wait_for_children(web.pid, 2)

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as api:
        owner, org = builders.funded(api, 10_000)
        accepted = [buy(api, owner, org, f"workers-{n}.fr") for n in range(20)]
        assert [a.status_code for a in accepted] == [202] * 20

        processes_before = set(first)
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while True:
            now = set(serving_children(web.pid))
            if len(now) == 2 and now != processes_before:
                break
            assert time.monotonic() < deadline, "the killed web process was not replaced"
            time.sleep(0.1)
        assert [buy(api, owner, org, f"after-{n}.fr").status_code for n in range(10)] == [202] * 10
    web.stop()
    assert not web.alive()
