"""bench/run --tiny: every benchmark path runs once at a tiny size, so that none of them rots."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.databases import POSTGRES_URL

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_run_tiny_measures_every_path(tmp_path, redis_server):
    if shutil.which("wrk") is None and os.geteuid() != 0:
        pytest.skip("wrk is not installed and bench/run cannot install it without root")
    # A database of its own beside the tests' (bench/run refuses theirs), a private redis-server.
    tests_db = urlparse(POSTGRES_URL)
    database_url = tests_db._replace(path=f"/bench_{tests_db.path.lstrip('/')}").geturl()
    redis_url = redis_server().url
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENURE_")}
    done = subprocess.run(
        [
            str(REPO / "bench" / "run"),
            "--tiny",
            "--database-url",
            database_url,
            "--redis-url",
            redis_url,
            "--json",
            str(out),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    report = json.loads(out.read_text())
    assert [row["path"].split()[0] for row in report["rows"]] == ["P1", "P1", "P2", "P3", "P4", "P5", "P6"]
    for name in (
        "P1.raw.rate",
        "P1.web.rate",
        "P1.web2.rate",
        "P1.demo.rate",
        "P2.tenure",
        "P2.baseline",
        "P4.tenure",
        "P4.baseline",
    ):
        assert report["samples"][name][0] > 0, name
    assert report["notes"]["web_rss_mib"] > 0 and max(report["notes"]["worker_rss_mib"]) > 0
