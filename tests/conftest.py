"""Shared fixtures. The database and Redis are real (see config/pytest_embedded.py)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.factories import UserFactory

# The `browser_page` fixture (Playwright + Chromium) for browser tests.
pytest_plugins = ["tests.browser_support"]


@pytest.fixture(autouse=True)
def _clear_cache():
    # Rate-limit counters and cached fragments live in Redis; each test starts clean.
    cache.clear()
    yield


@pytest.fixture
def player(db):
    return UserFactory()


@pytest.fixture
def player_client(client, player):
    client.force_login(player)
    return client
