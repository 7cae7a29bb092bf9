"""Fixtures shared by every test layer: a real database per backend, and the app."""

from __future__ import annotations

import asyncio

import pytest

from runtime.clock import clock
from tables import engine
from tables.sqlite_engine import TenureSQLiteEngine
from tests import databases

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    return databases.sqlite_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="session")
def postgres_url():
    return databases.postgres_fresh()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path, sqlite_template):
    """A migrated, empty database on each backend, bound to tenure's tables."""
    if request.param == "sqlite":
        url = databases.sqlite_copy(sqlite_template, tmp_path)
    else:
        url = request.getfixturevalue("postgres_url")
        asyncio.run(databases.truncate_postgres(engine.for_url(url)))
    bound = engine.for_url(url)
    engine.bind(bound)
    databases.configure_secrets(url)
    yield url
    if isinstance(bound, TenureSQLiteEngine):  # its file is this test's alone: its connections go with it
        asyncio.run(bound.close_idle())


@pytest.fixture(autouse=True)
def real_clock():
    clock.reset()
    yield clock
    clock.reset()
