"""`tenure backup` / `tenure restore` for the embedded mode (SQLite), around a running demo.

The backup is taken while the demo serves a stream of writes (clients, top-ups,
purchases run by its in-process workers); it must be one consistent moment: a sound
file whose ledger balances and whose succeeded purchases all have their product. The
restore refuses while the demo runs, and brings everything back on a machine that lost
the data folder, the key file included (an inbound secret made before still verifies).
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.api import builders
from tests.e2e.conftest import TENURE, free_port, tenure_env, wait_for_port
from tests.e2e.test_embedded import KEY_LINE, RESELLER_LINE
from tests.integration.test_inbound import signed, upsert

DEMO_DB = "sqlite:///var/demo.sqlite3"


def demo_env() -> dict[str, str]:
    env = tenure_env("unused")
    del env["TENURE_DATABASE_URL"], env["TENURE_SECRET_KEY"]  # the demo's defaults: var/, a key file
    return env


def start_demo(processes, workdir: Path) -> tuple[str, builders.Person, str]:
    port = free_port()
    demo = processes.tenure("demo", "demo", "--port", str(port), env=demo_env(), cwd=workdir)
    wait_for_port(port, 60, proc=demo)
    printed = demo.output()
    keys, reseller = KEY_LINE.findall(printed), RESELLER_LINE.search(printed)
    assert len(keys) == 2 and reseller, printed
    return f"http://127.0.0.1:{port}", builders.Person("", "reseller@demo.test", keys[1]), reseller.group(1)


def tenure(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [TENURE, *args, "--database", DEMO_DB], cwd=workdir, env=demo_env(), capture_output=True, text=True, timeout=60
    )


class Writer(threading.Thread):
    """Writes through the API until stopped: a client, a top-up and a purchase per round."""

    def __init__(self, base: str, who: builders.Person, org: str) -> None:
        super().__init__(daemon=True)
        self.base, self.who, self.org = base, who, org
        self.stop = threading.Event()
        self.rounds = 0
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.base, timeout=30) as http:
                while not self.stop.is_set():
                    builders.client_of(http, self.who, self.org, f"Writer{self.rounds}")
                    builders.fund(http, self.who, self.org, 2_000)
                    answer = http.post(
                        f"/v1/organizations/{self.org}/purchases",
                        headers=self.who.auth,
                        json={
                            "kind": "domain",
                            "name": f"backup-{self.rounds}.fr",
                            "years": 1,
                            "payment_method": "prepaid",
                        },
                    )
                    assert answer.status_code == 202, answer.text
                    self.rounds += 1
        except BaseException as exc:  # reported by the test
            self.failure = exc


def consistent(path: Path) -> dict[str, int]:
    """Opens the file as SQLite does and checks the invariants one moment satisfies."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        sums = conn.execute("SELECT currency, SUM(amount) FROM ledger_entries GROUP BY currency").fetchall()
        assert sums == [("EUR", 0)], sums
        orphans = conn.execute(
            "SELECT COUNT(*) FROM operations o WHERE o.kind = 'purchase' AND o.status = 'succeeded' "
            "AND NOT EXISTS (SELECT 1 FROM products p WHERE p.id = o.product_id)"
        ).fetchone()[0]
        assert orphans == 0
        return {
            "clients": conn.execute("SELECT COUNT(*) FROM clients").fetchone()[0],
            "purchases": conn.execute("SELECT COUNT(*) FROM operations WHERE kind = 'purchase'").fetchone()[0],
        }
    finally:
        conn.close()


def clients_listed(http: httpx.Client, who: builders.Person, org: str) -> list[str]:
    names, cursor = [], None
    while True:
        page = http.get(
            f"/v1/resellers/{org}/clients",
            headers=who.auth,
            params={"limit": 200, **({"after": cursor} if cursor else {})},
        ).json()
        names += [c["id"] for c in page["items"]]
        cursor = page.get("next_cursor")
        if not cursor:
            return names


@pytest.mark.slow
def test_a_backup_taken_under_writes_is_consistent_and_restore_brings_back_data_and_key(processes, tmp_path):
    workdir = tmp_path / "demo"
    workdir.mkdir()
    base, reseller, org = start_demo(processes, workdir)
    demo = processes.started[-1]
    key_file = workdir / "var" / "demo.sqlite3.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    with httpx.Client(base_url=base, timeout=30) as http:
        inbound = http.post(f"/v1/resellers/{org}/inbound-secret", headers=reseller.auth)
        assert inbound.status_code == 201, inbound.text
    inbound_secret = inbound.json()["secret"]

    writer = Writer(base, reseller, org)
    writer.start()
    backups = []
    try:
        while writer.rounds < 3 and writer.failure is None:
            time.sleep(0.05)
        for n in range(3):  # each while the writer goes on
            rounds_before = writer.rounds
            path = tmp_path / f"backup-{n}.sqlite3"
            done = tenure(workdir, "backup", str(path))
            assert done.returncode == 0, done.stderr
            assert f"its secret key: {path}.key" in done.stdout
            backups.append((path, rounds_before, writer.rounds))
        refused = tenure(workdir, "restore", str(backups[-1][0]))
        assert refused.returncode == 2 and "in use by a running tenure process" in refused.stderr, refused
        again = tenure(workdir, "backup", str(backups[0][0]))
        assert again.returncode == 2 and "--force" in again.stderr
    finally:
        writer.stop.set()
        writer.join(30)
    assert writer.failure is None, writer.failure
    assert demo.alive(), demo.tail()

    for path, rounds_before, rounds_after in backups:
        counts = consistent(path)
        assert (path.with_name(path.name + ".key")).read_text() == key_file.read_text()
        assert (path.with_name(path.name + ".key")).stat().st_mode & 0o777 == 0o600
        # The demo's 2 clients and 6 purchases, plus the writer's rounds up to the backup's moment.
        assert 2 + rounds_before <= counts["clients"] <= 2 + rounds_after + 1, (counts, rounds_before, rounds_after)
        assert counts["purchases"] >= 6 + rounds_before
    demo.stop()

    # A new machine: the data folder is gone; the last backup and its key come back.
    chosen, _, _ = backups[-1]
    expected = consistent(chosen)
    for leftover in (workdir / "var").iterdir():
        leftover.unlink()
    restored = tenure(workdir, "restore", str(chosen))
    assert restored.returncode == 0, restored.stderr
    assert key_file.read_text() == chosen.with_name(chosen.name + ".key").read_text()
    assert key_file.stat().st_mode & 0o777 == 0o600

    base, reseller, org_again = start_demo(processes, workdir)
    assert org_again == org
    with httpx.Client(base_url=base, timeout=30) as http:
        names = clients_listed(http, reseller, org)
        assert len(names) == expected["clients"]
        body, headers = signed(inbound_secret, upsert("after-restore"))
        answer = http.post(f"/v1/inbound/{org}", content=body.encode(), headers=headers)
        assert answer.status_code == 202, answer.text  # the secret decrypts with the restored key


def test_backup_and_restore_refuse_postgresql_and_say_what_to_use(tmp_path):
    env = {**tenure_env("postgresql://postgres@127.0.0.1:1/none")}
    for command in ("backup", "restore"):
        done = subprocess.run(
            [TENURE, command, str(tmp_path / "x.sqlite3")], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2 and re.search(r"pg_basebackup.*pg_dump", done.stderr), done.stderr
