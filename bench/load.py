"""Processes and HTTP load for bench/run: servers on free ports, wrk, resident memory."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.ingress_bench import LUA

REPO = Path(__file__).resolve().parent.parent
TENURE = [sys.executable, "-m", "command.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start(argv: list[str], env: dict[str, str], log: Path, port: int | None = None) -> subprocess.Popen:
    """A process in its own session (stopped with its children), its output in `log`."""
    process = subprocess.Popen(
        argv,
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if port is not None:
        wait_port(port, process)
    return process


def stop(process: subprocess.Popen, grace: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def descendants(pid: int) -> list[int]:
    found = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return []
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except FileNotFoundError:
        return ""


@dataclass
class Load:
    rate: float  # requests/s
    p99_ms: float
    requests: int
    timeouts: int
    errors: int  # connect/read/write errors (an error answer stops the run)


def wrk(url: str, headers: dict[str, str], duration: float, connections: int) -> Load:
    """wrk -t2 with distinct purchase bodies (bench.ingress_bench's script) for `duration` s."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA)
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency", "-s", script.name]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    try:
        done = subprocess.run([*argv, url], capture_output=True, text=True, timeout=duration + 60)
    finally:
        os.unlink(script.name)
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rate is None:
        raise RuntimeError(f"wrk failed: {out}\n{done.stderr}")
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    p99_ms = float(p99.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)] if p99 else 0.0
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    connect, read, write, timeouts = (int(g) for g in sockets.groups()) if sockets else (0, 0, 0, 0)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        raise RuntimeError(f"{non_2xx.group(1)} error answers from {url}:\n{out}")
    return Load(
        rate=float(rate.group(1)),
        p99_ms=p99_ms,
        requests=int(re.search(r"(\d+) requests in", out).group(1)),
        timeouts=timeouts,
        errors=connect + read + write,
    )


PURCHASE_FUNDS = 10_000_000_000  # minor units


def purchase_target(base: str) -> tuple[str, dict[str, str]]:
    """A new account and organization on a tenure server: the purchases URL and its headers."""
    with httpx.Client(base_url=base, timeout=30) as client:
        answer = client.post("/v1/accounts", json={"email": f"bench-{time.time_ns()}@bench.test", "name": "Bench"})
        answer.raise_for_status()
        auth = {"Authorization": f"Bearer {answer.json()['api_key']}", "Content-Type": "application/json"}
        org = client.post("/v1/organizations", json={"name": "Bench", "reseller": False}, headers=auth)
        org.raise_for_status()
        # Prepaid funds for every purchase of a run: the executed purchases succeed (a failing
        # one would cost the workers less than a real one).
        funds = client.post(
            f"/v1/organizations/{org.json()['id']}/funds",
            json={"amount": {"amount": PURCHASE_FUNDS, "currency": "EUR"}},
            headers=auth,
        )
        funds.raise_for_status()
    return f"{base}/v1/organizations/{org.json()['id']}/purchases", auth
