"""Fixtures shared by every test layer: a real database per backend, and the app."""

from __future__ import annotations

import pytest

from runtime.clock import clock
from tables import engine
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
        import asyncio

        asyncio.run(databases.truncate_postgres(engine.for_url(url)))
    engine.bind(engine.for_url(url))
    databases.configure_secrets(url)
    return url


@pytest.fixture(autouse=True)
def real_clock():
    clock.reset()
    yield clock
    clock.reset()
