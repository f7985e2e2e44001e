"""pytest plugin: real PostgreSQL and Redis for the tests.

Loaded with `-p config.pytest_embedded` (see pyproject.toml) so it runs before
pytest-django reads the settings. It reuses config.embedded, the code the run
command uses.
"""

from __future__ import annotations

import os

import pytest

from config.embedded import ensure_services

_services = None


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args) -> None:
    global _services
    # Tests use the source static files; production serves the collected, hashed ones.
    os.environ.setdefault(
        "STATICFILES_BACKEND", "django.contrib.staticfiles.storage.StaticFilesStorage"
    )
    os.environ.setdefault("WHITENOISE_USE_FINDERS", "true")
    _services = ensure_services(redis_name=os.environ.get("EMBEDDED_REDIS_NAME", "redis-test"))
    if _services.started:
        print(f"embedded for tests: {', '.join(_services.started)}")


def pytest_unconfigure(config) -> None:
    if _services is not None:
        _services.stop()
