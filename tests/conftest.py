"""Shared fixtures. The database and Redis are real (see config/pytest_embedded.py)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.factories import UserFactory

# The `browser_page` fixture (Playwright + Chromium) for browser tests.
pytest_plugins = ["tests.browser_support"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Argon2 (the production hasher: 100 MB and several passes per hash) in every
    # factory and login makes the suite crawl on a small machine. Tests hash with MD5;
    # tests/accounts/test_signup.py checks that production settings use Argon2.
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]


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
