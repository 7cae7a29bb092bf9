"""Process-level fixtures: a private redis-server, a private PostgreSQL, `tenure` subprocesses,
free ports.

Every process started here runs in its own session (process group) and is killed
at teardown, whatever happened in the test. Nothing here touches the machine's
shared Redis: each test gets its own redis-server on a free port, without
persistence.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.databases import secret_key
from tests.ratelimits import UNLIMITED_ENV

TENURE = str(Path(sys.executable).with_name("tenure"))
STOP_GRACE_S = 5.0


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class Proc:
    """A subprocess in its own process group, with its output in a file."""

    name: str
    popen: subprocess.Popen
    log_path: Path
    _log: object = field(repr=False, default=None)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} (pid {self.pid}, rc {self.popen.poll()}) ---\n{self.output()[-chars:]}"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signals the whole group (a Dramatiq worker forks its worker processes)."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM the leader, then SIGKILL the whole group after `grace_s`; reaps the leader.

        Only the leader gets SIGTERM: Dramatiq's main process forwards it to its worker
        processes, and a worker process signalled twice "kills" itself with sys.exit, which
        hangs on the AsyncIO middleware's non-daemon loop thread.
        """
        if self.alive():
            try:
                self.popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        self.kill(signal.SIGKILL)  # the leader may be gone while its children are not
        try:
            self.popen.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        if self._log is not None:
            self._log.close()
            self._log = None


class Processes:
    """Starts subprocesses for one test and stops every one of them at teardown."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Proc] = []

    def start(
        self, name: str, argv: list[str], *, env: dict[str, str] | None = None, cwd: str | Path | None = None
    ) -> Proc:
        log_path = self.directory / f"{name}-{len(self.started)}.log"
        log = open(log_path, "wb")
        popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        proc = Proc(name, popen, log_path, log)
        self.started.append(proc)
        return proc

    def tenure(self, name: str, *args: str, env: dict[str, str], cwd: str | Path | None = None) -> Proc:
        return self.start(name, [TENURE, *args], env=env, cwd=cwd)

    def tails(self) -> str:
        """Each process's last lines, after every `unhandled_error` record in full (the tail
        alone often holds only the noise that followed it)."""
        unexpected = [
            f"--- {proc.name}: {line}"
            for proc in self.started
            for line in proc.output().splitlines()
            if '"unhandled_error"' in line
        ]
        return "\n".join([*unexpected, *(proc.tail() for proc in self.started)])

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()


def tenure_env(database_url: str, broker_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a `tenure` process: this one's, minus TENURE_* settings, plus these
    (and the test session's TENURE_SECRET_KEY, unless `extra` sets it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_") or k.startswith("TENURE_TEST_")}
    env["TENURE_DATABASE_URL"] = database_url
    env["TENURE_SECRET_KEY"] = secret_key()
    if broker_url:
        env["TENURE_BROKER_URL"] = broker_url
    env["PYTHONUNBUFFERED"] = "1"
    env.update(UNLIMITED_ENV)
    env.update(extra)
    return env


def wait_for_port(port: int, timeout: float = 60.0, *, proc: Proc | None = None, host: str = "127.0.0.1") -> None:
    """Returns once something accepts TCP connections on `port`; fails if `proc` dies first."""
    deadline = time.monotonic() + timeout
    while not port_open(port, host):
        if proc is not None and not proc.alive():
            raise AssertionError(f"{proc.name} exited before listening on {port}\n{proc.tail()}")
        if time.monotonic() > deadline:
            detail = proc.tail() if proc is not None else ""
            raise AssertionError(f"nothing listens on {host}:{port} after {timeout}s\n{detail}")
        time.sleep(0.05)


@pytest.fixture
def processes(tmp_path):
    """Start subprocesses with `processes.start(...)`/`.tenure(...)`; all are stopped at teardown."""
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


@dataclass
class RedisServer:
    port: int
    launcher: Callable[[RedisServer], None] = field(repr=False)
    proc: Proc | None = None

    def start(self) -> RedisServer:
        self.launcher(self)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)


@pytest.fixture
def redis_server(processes, tmp_path):
    """Factory: `redis_server(port=None, start=True)` -> a private, non-persistent redis-server.

    With `start=False` the port is reserved in name only: nothing listens until `.start()`.
    Fails (never skips) when `redis-server` is not installed.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: the process-level tests need it (apt-get install redis-server)")

    def launch(server: RedisServer) -> None:
        assert not port_open(server.port), f"port {server.port} is already taken"
        workdir = tmp_path / f"redis-{server.port}"
        workdir.mkdir(exist_ok=True)
        server.proc = processes.start(
            f"redis-{server.port}",
            [
                binary,
                "--port",
                str(server.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(workdir),
            ],
        )
        wait_for_port(server.port, 30.0, proc=server.proc)
        deadline = time.monotonic() + 10.0
        client = server.client()
        try:
            while True:
                try:
                    if client.ping():
                        break
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.05)
        finally:
            client.close()

    def make(port: int | None = None, start: bool = True) -> RedisServer:
        server = RedisServer(port or free_port(), launch)
        return server.start() if start else server

    return make


# --- a private PostgreSQL -------------------------------------------------------------------


def postgres_bin(name: str) -> str:
    """The newest installed PostgreSQL's `name` (initdb, pg_ctl); fails when there is none."""
    found = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    binary = str(found[-1]) if found else shutil.which(name)
    if binary is None:
        pytest.fail(
            f"PostgreSQL's {name} is not installed: the database outage test needs it (apt-get install postgresql)"
        )
    return binary


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster (trust auth, no fsync) on 127.0.0.1:`port`.

    As root, PostgreSQL's programs run as the `postgres` user (initdb refuses root).
    """

    directory: Path
    port: int
    as_user: list[str]
    pg_ctl: str

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*self.as_user, *argv], capture_output=True, text=True, timeout=timeout, cwd=self.directory
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{self.log()}"
            )
        return done

    def log(self) -> str:
        path = self.directory / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        self.run(
            self.pg_ctl,
            "start",
            "-D",
            str(self.data),
            "-l",
            str(self.directory / "postgres.log"),
            "-w",
            "-t",
            "30",
            "-o",
            options,
        )

    def stop(self, mode: str = "fast") -> None:
        self.run(self.pg_ctl, "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "30")

    def running(self) -> bool:
        return (
            subprocess.run(
                [*self.as_user, self.pg_ctl, "status", "-D", str(self.data)], capture_output=True, timeout=30
            ).returncode
            == 0
        )


@pytest.fixture
def postgres_server():
    """Factory: a fresh private PostgreSQL, started; stopped and deleted at teardown. Fails
    (never skips) when PostgreSQL is not installed or cannot start."""
    made: list[PostgresServer] = []

    def make() -> PostgresServer:
        initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
        directory = Path(tempfile.mkdtemp(prefix="tenure-pg-"))  # tmp_path is root's alone: not there
        as_user: list[str] = []
        if os.geteuid() == 0:
            import pwd

            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root, PostgreSQL needs a `postgres` user to run as")
            os.chown(directory, account.pw_uid, account.pw_gid)
            as_user = ["runuser", "-u", "postgres", "--"]
        server = PostgresServer(directory, free_port(), as_user, pg_ctl)
        made.append(server)
        server.run(
            initdb,
            "-D",
            str(server.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        server.start()
        return server

    try:
        yield make
    finally:
        for server in made:
            try:
                if server.running():
                    server.stop("immediate")
            finally:
                shutil.rmtree(server.directory, ignore_errors=True)
