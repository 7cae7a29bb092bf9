"""HTTP tests go through the real app (Litestar's TestClient) on a real database."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from runtime.settings import Settings
from tests.ratelimits import UNLIMITED
from web.app import create_app


@pytest.fixture
def settings(database_url):
    return Settings(database_url=database_url, ops_token="ops-secret", **UNLIMITED)


@pytest.fixture
def client(settings):
    with TestClient(create_app(settings)) as test_client:
        yield test_client
